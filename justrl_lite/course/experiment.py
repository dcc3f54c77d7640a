"""The hands-on experiment of notebook 06: change one setting of the recipe, train the tiny model for 30
steps, and put the run beside the recipe's own runs on the same settings (committed, 3 seeds).

    python -m justrl_lite.course.experiment clip_ratio_high=0.2          # your run, under runs/experiment/
    python -m justrl_lite.course.experiment --seeds 1 2 3 --store data/experiment_recipe  # the committed reference

Every run is the ``tiny`` preset (the integer toy, JustRL's fixed recipe) with ``EXPERIMENT_OVERRIDES``: 30
steps, held-out pass@1 (avg@4 over 64 prompts, 256 samples: a standard error of about 3 points) every 10
steps. A change is one of ``KNOBS``; each departs from one numbered JustRL choice:
  1. ``clip_ratio_high``  clip-higher: the ratio is clipped to [1 - 0.2, 1 + 0.28]; 0.2 is PPO's symmetric
                          clip;
  2. ``entropy_coeff``    no entropy bonus (0); a positive value adds  - coeff * H  to the loss;
  3. ``kl_coef``          no KL term (0); a positive value adds a k3 KL to the frozen base;
  4. ``temperature``      rollouts sampled at 1.0;
  5. ``lr``               the tiny preset's 1e-4 (the paper's 1e-6 at 1.5B);
  6. ``rollouts_per_prompt``  n = 8 responses per prompt, the group of the z-score.
The recipe's runs differ between seeds; a change shows only when it leaves their band (the notebook says so).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from justrl_lite.config import PROJECT_ROOT, JustRLConfig
from justrl_lite.config_checks import ConfigError
from justrl_lite.metrics import read_metrics

EXPERIMENT_OVERRIDES = ("total_steps=30", "val_every=10", "save_every=30", "val_max_prompts=64")
"""What the experiment changes from the tiny preset, for every run (yours and the reference)."""
KNOBS = ("clip_ratio_high", "entropy_coeff", "kl_coef", "temperature", "lr", "rollouts_per_prompt")
"""The settings the experiment lets you change (module docstring: what each departs from)."""
REFERENCE = PROJECT_ROOT / "data" / "experiment_recipe"
"""The committed reference: ``seed<k>.jsonl`` per seed and the ``COMMAND`` that wrote them."""
OUT = PROJECT_ROOT / "runs" / "experiment"
"""Where the experiment runs write (git-ignored), whatever the working directory (notebooks run in
notebooks/)."""


def experiment_config(changes: Mapping[str, Any], seed: int = 1, out: str | Path = OUT) -> JustRLConfig:
    """The tiny preset with ``EXPERIMENT_OVERRIDES``, ``changes`` and ``seed``; writes under
    ``out/<changes>/seed<k>``."""
    unknown = sorted(set(changes) - set(KNOBS))
    if unknown:
        raise ConfigError(f"the experiment changes one of {list(KNOBS)}; {unknown} is not one of them "
                          f"(other settings: python -m justrl_lite.full_run with field=value overrides)")
    name = "_".join(f"{k}={v}" for k, v in sorted(changes.items())) or "recipe"
    base = JustRLConfig.tiny().with_overrides(list(EXPERIMENT_OVERRIDES))
    try:
        return base.replace(**changes, seed=seed, output_dir=str(Path(out) / re.sub(r"[^\w.=+-]", "_", name)
                                                                   / f"seed{seed}"))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad experiment change {dict(changes)}: {e}") from e


def run_experiment(changes: Mapping[str, Any], seed: int = 1, out: str | Path = OUT,
                   progress: bool = False) -> list[dict]:
    """Train (or finish, or just read back) the experiment run of ``changes``; returns its metric rows."""
    from justrl_lite.trainer import train

    cfg = experiment_config(changes, seed, out)
    # resume=True: a finished run of the same settings is read back, an interrupted one continues exactly
    train(cfg, resume=True, progress=progress)
    return read_metrics(Path(cfg.output_dir) / "metrics.jsonl")


def load_reference(store: str | Path = REFERENCE) -> list[list[dict]]:
    """The recipe's committed runs on the experiment's settings, one metric list per seed (sorted by seed)."""
    paths = sorted(Path(store).glob("seed*.jsonl"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not paths:
        raise FileNotFoundError(f"no reference runs in {store}: run the command in {Path(store) / 'COMMAND'}")
    return [read_metrics(p) for p in paths]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m justrl_lite.course.experiment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--out", default=str(OUT), help="where runs write (default: <project>/runs/experiment)")
    p.add_argument("--store", default=None, help="copy each finished metrics.jsonl here as seed<k>.jsonl")
    p.add_argument("changes", nargs="*", metavar="knob=value", help=f"one or more of {', '.join(KNOBS)}")
    a = p.parse_args(argv)
    from justrl_lite.config_io import parse_value
    from justrl_lite.policy import TrainerError

    try:
        changes = {}
        for item in a.changes:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"write a change as field=value, e.g. clip_ratio_high=0.2 (got {item!r})")
            changes[key] = parse_value(JustRLConfig, key, value)
        for seed in a.seeds:
            run_experiment(changes, seed, a.out, progress=False)
            if a.store:
                Path(a.store).mkdir(parents=True, exist_ok=True)
                cfg = experiment_config(changes, seed, a.out)
                shutil.copyfile(Path(cfg.output_dir) / "metrics.jsonl", Path(a.store) / f"seed{seed}.jsonl")
    except (ConfigError, TrainerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
