"""The paper's two ablations, at toy scale, several seeds each: ``python -m justrl_lite.ablations``.

Variants (everything else is the ``tiny`` preset, i.e. JustRL's fixed recipe):
  1. ``justrl``          the recipe itself;
  2. ``overlong``        + DAPO's overlong penalty on the last ``overlong_buffer_len`` tokens of the budget
                         (the paper: AIME24 plateaus near 50% instead of 55%, entropy falls to about 0.5-0.6);
  3. ``overlong+lenient``  + additionally the lenient verifier (the paper: plateau near 45%).

Each run writes its own ``metrics.jsonl``; the stored copies under ``data/ablations/<variant>/seed<k>.jsonl``
are what notebook 06 reads. Runs already complete in ``--out`` are skipped, so an interrupted sweep resumes.

    python -m justrl_lite.ablations --seeds 1 2 3 --out runs/ablations --store data/ablations total_steps=60
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from justrl_lite.config import JustRLConfig
from justrl_lite.config_checks import ConfigError
from justrl_lite.errors import JustRLError
from justrl_lite.metrics import read_metrics

VARIANTS: dict[str, dict[str, object]] = {
    "justrl": {},
    "overlong": {"overlong_penalty": True},
    "overlong+lenient": {"overlong_penalty": True, "reward_fn": "lenient"},
}


def variant_config(base: JustRLConfig, variant: str, seed: int, out_dir: Path) -> JustRLConfig:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown ablation {variant!r}: choose from {sorted(VARIANTS)}")
    return base.replace(**VARIANTS[variant], seed=seed, output_dir=str(out_dir / variant / f"seed{seed}"))


def is_complete(cfg: JustRLConfig) -> bool:
    """The run ends exactly at ``total_steps`` (a run resumed with a smaller ``total_steps`` is not complete:
    it resumes from its checkpoint at that step, and ``train`` drops the lines after it)."""
    rows = read_metrics(Path(cfg.output_dir) / "metrics.jsonl")
    return bool(rows) and rows[-1]["step"] == cfg.total_steps


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m justrl_lite.ablations`` (notebook 06 parses the stored command with it)."""
    p = argparse.ArgumentParser(prog="python -m justrl_lite.ablations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", default="runs/ablations", help="where the runs write (checkpoints, logs)")
    p.add_argument("--store", default=None, help="copy each finished metrics.jsonl here as <variant>/seed<k>.jsonl")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="field=value", help="overrides of the tiny preset for all runs")
    return p


def planned_runs(args: argparse.Namespace) -> list[tuple[str, int, JustRLConfig]]:
    """(variant, seed, config) of every run one parsed command asks for, in the order ``main`` runs them."""
    base = JustRLConfig.tiny().with_overrides(args.overrides) if args.overrides else JustRLConfig.tiny()
    return [(variant, seed, variant_config(base, variant, seed, Path(args.out)))
            for variant in args.variants for seed in args.seeds]


def module_calls(command: str, module: str) -> list[list[str]]:
    """The arguments of every ``python -m <module>`` in a stored one-line shell command, each up to the next
    ``&&``, ``||``, ``;``, ``|`` or redirection; a trailing ``# note`` is not an argument. Raises
    ``ValueError`` when the line holds no such call."""
    # punctuation_chars: ";", "&&", ">" are tokens of their own even when written against a word
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    tokens = list(lexer)
    calls = []
    for i, token in enumerate(tokens):
        if token == module:
            rest = tokens[i + 1:]
            stop = next((j for j, t in enumerate(rest) if t[0] in ";&|<>"), len(rest))
            calls.append(rest[:stop])
    if not calls:
        raise ValueError(f"expected `python -m {module}` in the command {command!r}")
    return calls


def planned_from_command(command: str) -> dict[tuple[str, int], JustRLConfig]:
    """(variant, seed) -> config of every run a stored ablation command asks for (all its calls, planned
    exactly as ``main`` plans them). A run planned twice with different settings is an error: the store would
    mix them."""
    plan: dict[tuple[str, int], JustRLConfig] = {}
    for call in module_calls(command, "justrl_lite.ablations"):
        for variant, seed, cfg in planned_runs(build_parser().parse_args(call)):
            if plan.get((variant, seed), cfg) != cfg:
                raise ValueError(f"the command runs {variant} seed {seed} twice with different settings")
            plan[(variant, seed)] = cfg
    return plan


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from justrl_lite.trainer import train

    try:
        for variant, seed, cfg in planned_runs(args):
            if not is_complete(cfg):
                print(f"== {variant} seed {seed} -> {cfg.output_dir}", flush=True)
                train(cfg, resume=True, progress=not args.no_progress)
            if args.store:
                dest = Path(args.store) / variant / f"seed{seed}.jsonl"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(cfg.output_dir) / "metrics.jsonl", dest)
    except JustRLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
