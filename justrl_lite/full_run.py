"""``python -m justrl_lite.full_run``: the JustRL run from the command line.

    python -m justrl_lite.full_run --preset one_gpu      # the recipe on one 80 GB GPU (native trainer)
    python -m justrl_lite.full_run --engine verl --nnodes 4 --gpus-per-node 8   # the paper's run, verl on 32 GPUs
    python -m justrl_lite.full_run --preset tiny         # the same recipe on a CPU in minutes
    python -m justrl_lite.full_run --preset tiny total_steps=20 lr=5e-5     # any field, as key=value
    python -m justrl_lite.full_run --preset tiny --resume                   # continue from the latest checkpoint
    python -m justrl_lite.full_run --preset tiny --overwrite                # replace the run in output_dir
    python -m justrl_lite.full_run --dry-run             # resolved config, diff vs the paper, memory/time on 1 GPU
    python -m justrl_lite.full_run --preset one_gpu --dry-run --gpu-memory-gb 80   # ... of one_gpu
    python -m justrl_lite.full_run --engine verl --nnodes 4 --gpus-per-node 8 --dry-run   # the verl launch (4 x 8)
                                                         # and verl's memory/time estimate on 32 GPUs

The native trainer runs on one GPU: a config that does not fit it is refused before any model is loaded.

Errors a user can cause (a bad value, missing data, no GPU for the paper preset, an unreadable checkpoint,
an output_dir holding another run, a full disk) end in one message and exit code 2, not a traceback.
At the end a run prints its held-out pass@1 at each validation, where its checkpoint and metrics are, and
draws its figures into ``<output_dir>/figures`` (``report``).
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
    p.add_argument("--resume", action="store_true",
                   help="continue from output_dir's newest checkpoint that verifies (fresh when it has none)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run already in output_dir (metrics, checkpoints, figures) and start over")
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
    """The preset or ``--config`` file, then the ``field=value`` overrides. A ``--config`` that is a run folder's
    own ``config.json`` trains in that folder, wherever it has been moved or copied (unless ``output_dir=`` is
    given): the ``output_dir`` stored inside it is where the run was, not where it is."""
    from pathlib import Path

    cfg = JustRLConfig.load(args.config) if args.config else JustRLConfig.preset(args.preset)
    folder = Path(args.config).resolve().parent if args.config else None
    overridden = any(o.split("=", 1)[0].strip() == "output_dir" for o in args.overrides)
    if folder is not None and (folder / "checkpoints").is_dir() and not overridden:
        if Path(cfg.output_dir).resolve() != folder:
            print(f"output_dir: {folder} (the folder of --config; its config.json said {cfg.output_dir})",
                  file=sys.stderr)
        cfg = cfg.replace(output_dir=str(folder))
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
                      f"# Memory and time estimate ({gpus} x {gpu_memory_gb:g} GB)", estimate, "",
                      "# Checkpoint disk", checkpoint_disk(cfg)])


def checkpoint_disk(cfg: JustRLConfig) -> str:
    """One checkpoint's size (12 bytes per trained parameter, ``checkpoint.checkpoint_bytes``) and the disk the
    run's retained checkpoints need (``keep_checkpoints``, ``keep_every_steps``)."""
    from justrl_lite.scale.estimate import model_shape

    try:
        params = model_shape(cfg.model_name_or_path)[0].parameters
    except ValueError as e:
        return f"no estimate: {e}"
    if cfg.lora_rank > 0:
        return "LoRA: a checkpoint holds only the adapter and its AdamW moments (a small fraction of the model)"
    # fp32 weights + two fp32 AdamW moments
    one = params * 12
    saves = cfg.total_steps // cfg.save_every + (cfg.total_steps % cfg.save_every > 0)
    milestones = cfg.total_steps // cfg.keep_every_steps if cfg.keep_every_steps else 0
    kept = saves if cfg.keep_checkpoints == 0 else min(saves, cfg.keep_checkpoints + milestones)
    # one more is written (in a temporary folder) before the oldest is deleted
    peak = min(saves, kept + 1)
    return (f"one checkpoint: {one / 1e9:.3g} GB ({params:,} parameters x 12 bytes: fp32 weights + AdamW moments); "
            f"{saves} saves (save_every={cfg.save_every}), {kept} kept (keep_checkpoints={cfg.keep_checkpoints}, "
            f"keep_every_steps={cfg.keep_every_steps}): the run needs about {peak * one / 1e9:.3g} GB of disk")


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
            from justrl_lite.policy import choose_cpu_threads

            threads, rule = choose_cpu_threads(cfg.cpu_threads)
            print(f"torch CPU threads: {threads} ({rule}); set cpu_threads=N to override", file=sys.stderr)
        from justrl_lite.policy import check_device
        from justrl_lite.trainer import train

        check_device(cfg)  # no GPU for a GPU preset says so first (train() checks again, before any load)
        check_model_reachable(cfg)  # an unreachable hub model says so in one line, not after a minute of retries
        result = train(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    except JustRLError as e:  # a config, data, checkpoint or device problem: its message says what to do
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report(result))
    return 0


def check_model_reachable(cfg: JustRLConfig) -> None:
    """A hub model with the hub out of reach: one line now, not a minute of retries later (``hub.py``)."""
    from pathlib import Path

    from justrl_lite.config import resolve_path
    from justrl_lite.hub import model_unreachable_reason

    if Path(resolve_path(cfg.model_name_or_path)).exists():
        return
    reason = model_unreachable_reason(cfg.model_name_or_path)
    if reason is not None:
        raise ConfigError(f"model_name_or_path={cfg.model_name_or_path!r} is not a local folder and the hub cannot "
                          f"serve it ({reason}): point model_name_or_path at a local model folder")


def report(result) -> str:
    """The end of a run in a few lines: held-out pass@1 at each validation, the checkpoint, metrics, figures."""
    from justrl_lite.checkpoint import LATEST, checkpoint_root
    from justrl_lite.metrics import read_metrics

    rows = read_metrics(result.metrics_path)
    scores = ", ".join(f"step {r['step']}: {100 * r['val/pass@1']:.1f}%" for r in rows if "val/pass@1" in r)
    pointer = checkpoint_root(result.output_dir) / LATEST  # just published by this run: not hashed again
    checkpoint = pointer.parent / pointer.read_text().strip() if pointer.is_file() else None
    lines = [f"done: {result.final_step} steps", f"held-out pass@1 at each validation: {scores or 'none'}",
             f"checkpoint: {checkpoint}", f"metrics: {result.metrics_path}"]
    figures = result.output_dir / "figures"
    try:
        from justrl_lite.plots import plot_dynamics, plot_validation
    except ImportError as e:  # matplotlib is an optional extra
        lines.append(f"figures: none ({e}); pip install matplotlib")
    else:
        plot_dynamics(rows, figures / "training_dynamics.png", label=result.output_dir.name)
        plot_validation(rows, figures / "heldout_accuracy.png", label=result.output_dir.name)
        lines.append(f"figures: {figures}/training_dynamics.png, heldout_accuracy.png")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
