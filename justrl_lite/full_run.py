"""``python -m justrl_lite.full_run``: the JustRL run from the command line.

    python -m justrl_lite.full_run                       # the paper's run (needs CUDA GPUs)
    python -m justrl_lite.full_run --preset tiny         # the same recipe on a CPU in minutes
    python -m justrl_lite.full_run --preset tiny total_steps=20 lr=5e-5     # any field, as key=value
    python -m justrl_lite.full_run --preset tiny --resume                   # continue from the latest checkpoint
    python -m justrl_lite.full_run --dry-run             # resolved config, diff vs the paper, compute estimate

Errors a user can cause (a bad value, missing data, no GPU for the paper preset, an unreadable checkpoint)
end in one message and exit code 2, not a traceback.
"""

from __future__ import annotations

import argparse
import sys

from justrl_lite.config import PRESETS, ConfigError, JustRLConfig, diff_table, resolve_path

# Bytes per parameter of a full fine-tuning AdamW state: weights + grads + 2 moments (+ fp32 master for bf16).
_ADAM_BYTES_PER_PARAM = {"float32": 16, "bfloat16": 16, "float16": 16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m justrl_lite.full_run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="starting settings (default: paper)")
    p.add_argument("--config", help="a JSON/YAML file written by JustRLConfig.save (replaces --preset)")
    p.add_argument("--resume", action="store_true", help="continue from output_dir's latest checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and a compute estimate; no run")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar (metrics are still written)")
    p.add_argument("overrides", nargs="*", metavar="field=value", help="override any JustRLConfig field")
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> JustRLConfig:
    cfg = JustRLConfig.load(args.config) if args.config else JustRLConfig.preset(args.preset)
    return cfg.with_overrides(args.overrides) if args.overrides else cfg


def count_parameters(model_name_or_path: str, timeout_s: float = 10.0) -> int | None:
    """Parameters of the model from its config alone (no weights loaded); None when the config is unreachable.

    A hub id is looked up in the local cache first, then online with a deadline (an offline machine would
    otherwise wait out the hub client's retries).
    """
    import threading

    result: list[int] = []

    def lookup() -> None:
        import logging

        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # no retry chatter when offline
        path = resolve_path(model_name_or_path)
        try:
            config = AutoConfig.from_pretrained(path, local_files_only=True)
        except Exception:
            config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        result.append(sum(p.numel() for p in model.parameters()))

    def guarded() -> None:
        try:
            lookup()
        except Exception:
            pass

    worker = threading.Thread(target=guarded, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return result[0] if result else None


def compute_estimate(cfg: JustRLConfig, n_params: int | None) -> str:
    """Tokens sampled per step and per run (at the length cap, and at half of it), and FLOPs when N is known."""
    lines = []
    for label, mean_len in (("at the response cap", cfg.max_response_length),
                            ("at half the cap", cfg.max_response_length // 2)):
        per_step = cfg.responses_per_step * mean_len
        total = per_step * cfg.total_steps
        line = (f"- {label} ({mean_len:,} tokens/response): {per_step:,} response tokens per step, "
                f"{total:,} over {cfg.total_steps:,} steps")
        if n_params:
            # sampling 2N, old log-probs 2N, update 6N (forward + backward) FLOPs per token
            flops = 10 * n_params * total
            line += f"; about {flops:.2e} FLOPs (10 N per token, N = {n_params:,})"
        lines.append(line)
    lines.append(f"- {cfg.responses_per_step:,} responses per step ({cfg.prompts_per_step} prompts x "
                 f"{cfg.rollouts_per_prompt}), {cfg.optimizer_steps_per_step} optimizer steps per step")
    if n_params:
        lines.append(f"- AdamW training state: about {n_params * _ADAM_BYTES_PER_PARAM[cfg.dtype] / 2**30:.1f} GiB "
                     f"before activations")
    return "\n".join(lines)


def dry_run(cfg: JustRLConfig) -> str:
    n_params = count_parameters(cfg.model_name_or_path)
    parts = ["# Resolved config", "```json", _json(cfg), "```", "",
             "# Where it differs from the paper preset",
             diff_table(JustRLConfig.paper(), cfg, names=("paper", "this run")), "",
             "# Compute estimate", compute_estimate(cfg, n_params)]
    if n_params is None:
        parts.append(f"- parameters: unknown (the config of {cfg.model_name_or_path!r} is not reachable from here)")
    return "\n".join(parts)


def _json(cfg: JustRLConfig) -> str:
    import json

    return json.dumps(cfg.to_dict(), indent=2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = resolve_config(args)
        if args.dry_run:
            print(dry_run(cfg))
            return 0
        if cfg.device == "cpu":
            from justrl_lite.threads import choose_cpu_threads

            threads, rule = choose_cpu_threads(cfg.cpu_threads)
            print(f"torch CPU threads: {threads} ({rule}); set cpu_threads=N to override", file=sys.stderr)
        from justrl_lite.checkpoint import CheckpointError
        from justrl_lite.data import DataError
        from justrl_lite.trainer import TrainerError, train

        try:
            result = train(cfg, resume=args.resume, progress=not args.no_progress)
        except (TrainerError, DataError, CheckpointError) as e:
            raise ConfigError(str(e)) from e
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"done: {result.final_step} steps; metrics in {result.metrics_path}; "
          f"plot them with `python -m justrl_lite.plots {result.metrics_path}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
