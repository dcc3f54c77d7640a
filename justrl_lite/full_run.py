"""``python -m justrl_lite.full_run``: the JustRL run from the command line.

    python -m justrl_lite.full_run --preset one_gpu      # the recipe on one 80 GB GPU (native trainer)
    python -m justrl_lite.full_run --engine verl --nnodes 4 --gpus-per-node 8   # the paper's run, verl on 32 GPUs
    python -m justrl_lite.full_run --preset tiny         # the same recipe on a CPU in minutes
    python -m justrl_lite.full_run --preset tiny total_steps=20 lr=5e-5     # any field, as key=value
    python -m justrl_lite.full_run --preset tiny --resume                   # continue from the latest checkpoint
    python -m justrl_lite.full_run --dry-run             # resolved config, diff vs the paper, memory/time on 1 GPU
    python -m justrl_lite.full_run --preset one_gpu --dry-run --gpu-memory-gb 80   # ... of one_gpu
    python -m justrl_lite.full_run --engine verl --nnodes 4 --gpus-per-node 8 --dry-run   # the verl launch (4 x 8)
                                                         # and verl's memory/time estimate on 32 GPUs

The native trainer runs on one GPU: a config that does not fit it is refused before any model is loaded.

Errors a user can cause (a bad value, missing data, no GPU for the paper preset, an unreadable checkpoint)
end in one message and exit code 2, not a traceback.
"""

from __future__ import annotations

import argparse
import sys

from justrl_lite.config import JustRLConfig
from justrl_lite.config_checks import ConfigError
from justrl_lite.config_presets import PRESET_REASONS, PRESETS
from justrl_lite.config_tables import diff_table
from justrl_lite.errors import JustRLError
from justrl_lite.scale.estimate import PAPER_HARDWARE, Assumptions
from justrl_lite.scale.estimate_report import estimate_table


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m justrl_lite.full_run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="starting settings (default: paper)")
    p.add_argument("--config", help="a JSON/YAML file written by JustRLConfig.save (replaces --preset)")
    p.add_argument("--resume", action="store_true", help="continue from output_dir's latest checkpoint")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config, its diff from the paper, and a memory/time estimate; no run")
    est = p.add_argument_group("estimate (with --dry-run; formulas in justrl_lite/scale/estimate.py)")
    est.add_argument("--gpus", type=_positive(int), default=1,
                     help="GPUs: 1, the native trainer's (verl's estimate: --engine verl --nnodes n --gpus-per-node g)")
    est.add_argument("--gpu-memory-gb", type=_positive(float), default=PAPER_HARDWARE[1],
                     help="memory per GPU in GB (default: 80)")
    est.add_argument("--mfu", type=_positive(float), default=Assumptions.mfu,
                     help=f"assumed training MFU (default: {Assumptions.mfu})")
    est.add_argument("--peak-tflops", type=_positive(float), default=Assumptions.peak_tflops,
                     help=f"bf16 dense peak per GPU (default: {Assumptions.peak_tflops:g}, A100/A800)")
    est.add_argument("--decode-tokens-per-s", type=_positive(float), default=Assumptions.decode_tokens_per_s,
                     help=f"assumed vLLM sampled tokens/s per GPU (default: {Assumptions.decode_tokens_per_s:g})")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar (metrics are still written)")
    p.add_argument("--engine", choices=("native", "verl"), default="native",
                   help="native: this package's trainer; verl: render (and run) verl 0.9.1's main_ppo")
    p.add_argument("--nnodes", type=int, default=1, help="--engine verl: nodes in the Ray cluster (default 1)")
    p.add_argument("--gpus-per-node", type=int, default=8, help="--engine verl: GPUs per node (default 8)")
    p.add_argument("overrides", nargs="*", metavar="field=value", help="override any JustRLConfig field")
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> JustRLConfig:
    cfg = JustRLConfig.load(args.config) if args.config else JustRLConfig.preset(args.preset)
    return cfg.with_overrides(args.overrides) if args.overrides else cfg


def dry_run(cfg: JustRLConfig, gpus: int = 1, gpu_memory_gb: float = PAPER_HARDWARE[1],
            assumptions: Assumptions | None = None, preset: str | None = None) -> str:
    """Resolved config, its diff from the paper preset, and the native trainer's ``estimate_table`` (one GPU)."""
    if gpus != 1:
        raise ConfigError(f"--gpus {gpus}: the native trainer uses one GPU, so its estimate is for one. For the "
                          f"paper's multi-GPU layout use verl: `python -m justrl_lite.full_run --engine verl --nnodes "
                          f"{max(1, gpus // 8)} --gpus-per-node {min(8, gpus)} --dry-run` prints verl's estimate")
    names = ("paper", preset if preset and preset != "paper" else "this run")
    estimate = _estimate(cfg, gpus, gpu_memory_gb, assumptions or Assumptions(), "native")
    return "\n".join(["# Resolved config", "```json", _json(cfg), "```", "",
                      "# Where it differs from the paper preset",
                      diff_table(JustRLConfig.paper(), cfg, PRESET_REASONS.get(preset or "", {}), names=names), "",
                      f"# Memory and time estimate ({gpus} x {gpu_memory_gb:g} GB)", estimate])


def _estimate(cfg: JustRLConfig, gpus: int, gpu_memory_gb: float, a: Assumptions, engine: str) -> str:
    try:
        return estimate_table(cfg, gpus, gpu_memory_gb, a, engine=engine)
    except ValueError as e:  # the model's shape is unknown here
        return f"no estimate: {e}"


def _assumptions(args: argparse.Namespace) -> Assumptions:
    return Assumptions(mfu=args.mfu, peak_tflops=args.peak_tflops, decode_tokens_per_s=args.decode_tokens_per_s)


def _json(cfg: JustRLConfig) -> str:
    import json

    return json.dumps(cfg.to_dict(), indent=2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = resolve_config(args)
        if args.engine == "verl":
            from justrl_lite.scale.verl_launch import run

            code = run(cfg, nnodes=args.nnodes, gpus_per_node=args.gpus_per_node, dry_run=args.dry_run)
            if args.dry_run:  # verl's memory and time on its GPUs (after the script, which is printed whole)
                gpus = args.nnodes * args.gpus_per_node
                print(f"\n# verl's memory and time estimate ({gpus} x {args.gpu_memory_gb:g} GB)\n"
                      + _estimate(cfg, gpus, args.gpu_memory_gb, _assumptions(args), "verl"))
            return code
        if args.dry_run:
            print(dry_run(cfg, args.gpus, args.gpu_memory_gb, _assumptions(args),
                          preset=None if args.config else args.preset))
            return 0
        if cfg.device == "cpu":
            from justrl_lite.threads import choose_cpu_threads

            threads, rule = choose_cpu_threads(cfg.cpu_threads)
            print(f"torch CPU threads: {threads} ({rule}); set cpu_threads=N to override", file=sys.stderr)
        from justrl_lite.trainer import train

        result = train(cfg, resume=args.resume, progress=not args.no_progress)
    except JustRLError as e:  # a config, data, checkpoint or device problem: its message says what to do
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"done: {result.final_step} steps; metrics in {result.metrics_path}; "
          f"plot them with `python -m justrl_lite.plots {result.metrics_path}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
