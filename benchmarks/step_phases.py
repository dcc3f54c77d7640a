"""Where a tiny justrl_lite training step spends its time, per phase, for several rollout paths side by side.

Runs the tiny preset's training steps (``justrl_lite.trainer.train_step``, no validation) for copies of the run
that differ only in how ``HFRollout`` decodes: ``generate`` (transformers ``generate``, every row computed until
the longest one ends; the path before issue #12), ``drop-finished-v1`` (finished rows leave the batch and the KV
cache; each token drawn by ``torch.multinomial`` over all rows, each row's prompt prefilled on its own) and
``drop-finished`` (the default: the same, with the draw's exponentials computed for the live rows only,
``decode.race_sample``, and each prompt prefilled once for its n rows). All draw the same samples for the same
seed, so the copies train identically and each step's phases can be compared one to one. Steps alternate between the
copies (A, B, A, B, ...) so that a busy machine slows both alike. Two tables: the median wall seconds of each phase
from the step's ``time/*`` metrics with its share of the step, and the median process CPU seconds of the same phases
(``time.process_time`` around ``engine.generate``, ``compute_old_logprobs`` and ``update_policy``; reward and
bookkeeping are the rest), which a loaded machine disturbs much less than wall time.

    python benchmarks/step_phases.py                       # 6 steps each, 1 torch thread
    python benchmarks/step_phases.py --steps 10 --threads 2 --variants drop-finished
    python benchmarks/step_phases.py --steps 6 --variants drop-finished-v1,drop-finished
    python benchmarks/step_phases.py --from-metrics data/tiny_run/metrics.jsonl --last-step 40   # a logged run
    python benchmarks/step_phases.py --from-metrics data/speed/FILE.jsonl --to-pass 0.75   # time to 75% held-out

``--to-pass X`` reads a logged run: the first validated step whose ``val/pass@1`` >= X, and the summed
``time/step`` of steps 1 to it (validation itself is not step time), with the phases of those steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

import justrl_lite.decode as decode
import justrl_lite.trainer as trainer
from justrl_lite.config import JustRLConfig
from justrl_lite.logprobs import compute_old_logprobs
from justrl_lite.policy import load_policy, make_optimizer
from justrl_lite.rollout import HFRollout
from justrl_lite.trainer import load_prompts, make_scheduler, seed_everything, train_step

PHASES = ("time/rollout", "time/reward", "time/old_logprob", "time/update", "time/step")
VARIANTS = {"generate": (False, False), "drop-finished-v1": (True, False), "drop-finished": (True, True)}
"""Rollout path -> (HFRollout drops finished rows, race draw and shared prefill where torch allows them)."""


class CPUClock:
    """Accumulates process CPU seconds spent inside wrapped functions, per phase name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, phase: str, fn):
        def timed(*args, **kwargs):
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.process_time() - c0
        return timed


def make_run(cfg: JustRLConfig, drop_finished: bool, newest: bool = True):
    """(model, optimizer, scheduler, engine, prompts) of a fresh tiny run."""
    seed_everything(cfg.seed)
    model, tokenizer = load_policy(cfg)
    optimizer = make_optimizer(model, cfg)
    engine = HFRollout(model, tokenizer, drop_finished=drop_finished)
    if not newest:  # torch.multinomial over all rows (the identity race_sample rests on declared absent), and
        # every row's prompt prefilled on its own (repeats = 1)
        chunk = engine._generate_chunk
        engine._generate_chunk = lambda prompts, config, repeats=1: chunk(prompts, config, 1)
        generate = engine.generate

        def with_multinomial(*args, **kwargs):
            real, decode.exponential_is_log_of_uniform = decode.exponential_is_log_of_uniform, lambda: False
            try:
                return generate(*args, **kwargs)
            finally:
                decode.exponential_is_log_of_uniform = real
        engine.generate = with_multinomial
    return (model, optimizer, make_scheduler(optimizer, cfg), engine,
            load_prompts(cfg.train_data, tokenizer, cfg.prompt_suffix, cfg.max_prompt_length))


def logged_phases(path: str, last_step: int | None) -> str:
    """Median seconds and share of the total of each phase over the steps logged in a metrics.jsonl file."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows = [r for r in rows if "time/step" in r and (last_step is None or r["step"] <= last_step)]
    if not rows:
        raise SystemExit(f"error: no step with time/* metrics in {path}")
    total = {k: sum(r[k] for r in rows) for k in PHASES}
    cells = [f"{statistics.median(r[k] for r in rows):.2f} ({100 * total[k] / total['time/step']:.0f}%)"
             for k in PHASES[:-1]]
    return "\n".join([
        f"{len(rows)} logged steps of {path}: median wall seconds (share of the summed step time)",
        "| rollout | reward | old log-prob | update | step | summed step time |", "|---|---|---|---|---|---|",
        "| " + " | ".join(cells) + f" | {statistics.median(r['time/step'] for r in rows):.2f} | "
        f"{total['time/step']:.0f} s |"])


def time_to_pass(path: str, target: float) -> str:
    """Summed step time up to the first validation with pass@1 >= target, and the phases of those steps."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    hit = next((r["step"] for r in rows if r.get("step", 0) > 0 and r.get("val/pass@1", -1.0) >= target), None)
    validated = [(r["step"], r["val/pass@1"]) for r in rows if "val/pass@1" in r]
    if hit is None:
        return f"{path}: no validation reached pass@1 >= {target} (validated: {validated})"
    summed = sum(r["time/step"] for r in rows if "time/step" in r and r["step"] <= hit)
    trail = ", ".join(f"{s}: {100 * p:.1f}%" for s, p in validated if s <= hit)
    return (f"{path}: first pass@1 >= {100 * target:.0f}% at step {hit}; summed step time to it {summed:.1f} s\n"
            f"held-out pass@1 by step: {trail}\n" + logged_phases(path, hit))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6, help="training steps per variant (default 6)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--variants", default="generate,drop-finished",
                   help="comma-separated: generate, drop-finished-v1, drop-finished")
    p.add_argument("--from-metrics", metavar="JSONL", help="no run: the phases of a run's metrics.jsonl (time/* keys)")
    p.add_argument("--last-step", type=int, default=None, help="with --from-metrics: only steps 1..N")
    p.add_argument("--to-pass", type=float, default=None, metavar="X",
                   help="with --from-metrics: summed step time to the first val/pass@1 >= X")
    args = p.parse_args(argv)
    if args.from_metrics and args.to_pass is not None:
        print(time_to_pass(args.from_metrics, args.to_pass))
        return 0
    if args.from_metrics:
        print(logged_phases(args.from_metrics, args.last_step))
        return 0
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not names or any(v not in VARIANTS for v in names) or args.steps < 1 or args.threads < 1:
        p.error(f"--variants must name some of {sorted(VARIANTS)}; --steps and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    cfg = JustRLConfig.tiny().replace(seed=args.seed, total_steps=args.steps)
    runs = {v: make_run(cfg, *VARIANTS[v]) for v in names}
    clock = CPUClock()
    trainer.compute_old_logprobs = clock.wrap("old_logprob", compute_old_logprobs)
    trainer.update_policy = clock.wrap("update", trainer.update_policy)
    for v in names:
        runs[v][3].generate = clock.wrap("rollout", runs[v][3].generate)
    wall: dict[str, dict[str, list[float]]] = {v: {k: [] for k in PHASES} for v in names}
    cpu: dict[str, dict[str, list[float]]] = {v: {} for v in names}
    for step in range(1, args.steps + 1):
        for v in names:  # alternate the variants within each step
            model, optimizer, scheduler, engine, prompts = runs[v]
            # a phase the step skips counts 0 (logp_old reused from the sampler: recompute_old_logprobs=auto)
            clock.seconds, c0 = {"rollout": 0.0, "old_logprob": 0.0, "update": 0.0}, time.process_time()
            metrics = train_step(step, model, optimizer, engine, prompts, cfg)
            scheduler.step()
            step_cpu = time.process_time() - c0
            for k in PHASES:
                wall[v][k].append(metrics[k])
            phases_cpu = {**clock.seconds, "step": step_cpu}
            phases_cpu["rest"] = step_cpu - sum(clock.seconds.values())
            for k, x in phases_cpu.items():
                cpu[v].setdefault(k, []).append(x)
            print(f"step {step} {v}: {metrics['time/step']:.2f} s wall, {step_cpu:.2f} s CPU",
                  file=sys.stderr, flush=True)
    print(f"median over {args.steps} tiny steps, {args.threads} torch thread(s)")
    print("\nwall seconds (share of the step)\n")
    print("| rollout path | rollout | reward | old log-prob | update | step |")
    print("|---|---|---|---|---|---|")
    for v in names:
        med = {k: statistics.median(xs) for k, xs in wall[v].items()}
        cells = [f"{med[k]:.2f} ({100 * med[k] / med['time/step']:.0f}%)" for k in PHASES[:-1]]
        print(f"| {v} | " + " | ".join(cells) + f" | {med['time/step']:.2f} |")
    print("\nprocess CPU seconds (share of the step)\n")
    print("| rollout path | rollout | old log-prob | update | reward and rest | step |")
    print("|---|---|---|---|---|---|")
    for v in names:
        med = {k: statistics.median(xs) for k, xs in cpu[v].items()}
        cells = [f"{med[k]:.2f} ({100 * med[k] / med['step']:.0f}%)"
                 for k in ("rollout", "old_logprob", "update", "rest")]
        print(f"| {v} | " + " | ".join(cells) + f" | {med['step']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
