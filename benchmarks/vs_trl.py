"""justrl_lite vs Hugging Face TRL's ``GRPOTrainer`` on the tiny recipe: same run, steps alternated, medians.

Both trainers start from ``data/toy/base`` and see the same prompts in the same order. Each training step of
justrl_lite (one rollout batch of 16 prompts x 8 samples, 4 optimizer steps of 32 completions) is followed by
the same step of TRL, in this one process, one torch thread each, so that a busy machine slows both alike.
Per step it records wall time, CPU time (``time.process_time``) and sampled response tokens per second;
after the last step both policies are scored by the SAME held-out validation (``justrl_lite.trainer.validate``
on the toy test split: 128 prompts x 4 samples at temperature 1, the evaluation grader's pass@1, the same
sampling seeds). Prints a table and the per-step time ratio justrl_lite / TRL (median over paired steps).

    python benchmarks/vs_trl.py                          # 20 steps, seeds 1 and 2
    python benchmarks/vs_trl.py --steps 20 --seeds 1 2 3 --json runs/vs_trl.json
    python benchmarks/vs_trl.py --smoke                  # 1 small step each (the CI test runs this)

Needs the optional ``bench`` extra: ``pip install -e ".[bench]"`` (trl==1.16.0).

How the tiny recipe maps onto TRL 1.16 (``GRPOConfig``):
  per_device_train_batch_size = 32 completions (4 prompts x 8) = one PPO mini-batch, gradient_accumulation_steps
  = 1, steps_per_generation = 4 (so one generation of 16 x 8 = 128 completions feeds 4 optimizer steps),
  num_generations = 8, num_iterations = 1, loss_type = "bnpo" (token mean over the local batch = one mini-batch),
  epsilon = 0.2, epsilon_high = 0.28, delta = 10, beta = 0, scale_rewards = "group", temperature 1, top_p 1,
  top_k 0, max_completion_length = 128, shuffle_dataset = False (the dataset is laid out in justrl_lite's step
  order), reward = ``justrl_lite.verifier.dapo_reward`` (the strict box, +1/-1), conversational prompts built
  by ``justrl_lite.data.build_messages`` (TRL applies the same chat template: the token ids are checked equal).

Where the two runs are not the same computation (every inexact point we know of):
  1. Mini-batch composition: TRL shuffles the 128 completions of a generation before cutting them into the 4
     optimizer steps, so a TRL mini-batch mixes groups; justrl_lite takes 4 prompts' groups in order, as the
     authors' engine does: their vendored verl 0.4.0 splits the batch in order (``dp_actor.update_policy``:
     ``batch.split(ppo_mini_batch_size)``; the actor's ``shuffle`` option defaults to false and is not read
     there, nor in later verl's actor). Only verl's ``balance_batch`` (on by default) reorders rows, across
     data-parallel ranks for equal token counts, each rank keeping index order: on the authors' 32 GPUs that
     mixes groups near the mini-batch boundaries; on one rank it is the identity. Kept: a recipe choice.
  2. Advantage epsilon: TRL divides by std + 1e-4, justrl_lite (verl) by std + 1e-6 (both Bessel-corrected).
  3. Dual clip: TRL's ``delta`` is INTELLECT-2's two-sided clip, min(r, delta) in the unclipped term. For
     delta = c = 10 > 1 + epsilon_high it gives the same per-token loss and gradient as verl's dual clip
     (A < 0: min(max(-A r, -A clip(r)), -10 A) = max(-A min(r, 10), -A clip(r)); A > 0: min(r, 10) never
     binds below the 1.28 clip), so this one is exact.
  4. Optimizer and warm-up: a new TRL user gets the HF Trainer's AdamW, which exempts biases and norm weights
     from weight decay, and a warm-up counted in optimizer steps. We pass justrl_lite's own optimizer (decay
     on every parameter) and a schedule stepped per optimizer step that reproduces justrl_lite's per-training-step
     warm-up (lr x min(1, (training step - 1) / 10), so step 1's updates use lr = 0), to remove this difference.
  5. Generation backend: TRL calls transformers ``generate`` on all 128 rows until the longest ends;
     justrl_lite uses ``HFRollout``'s loop that drops finished rows (same sampler, different random stream
     here since TRL's global RNG is seeded differently), so the samples differ but come from the same policy.
  6. Old log-probs: both recompute them with a separate no-grad forward pass before the updates; TRL also
     computes the per-token entropy inside its loss pass (for logging), justrl_lite in the old-log-prob pass.
  7. Micro-batching: TRL runs each 32-completion mini-batch in one forward/backward; the tiny preset's
     micro_batch_max_tokens = 8,192 packs one mini-batch (32 x <= 192 tokens) into one micro-batch too, so
     justrl_lite's "authors" weighting equals TRL's token mean here. justrl_lite computes that micro-batch's
     forward pass in length buckets (``logprobs.forward_buckets``), which changes what is padded, not the loss.
  8. Truncated completions: neither masks them (mask_truncated_completions = False).
  9. Bookkeeping: TRL's timing includes the HF Trainer loop (callbacks, metric gathering, logging every step);
     justrl_lite's includes its metrics dictionary but not writing it (the full train() loop logs it to disk).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from justrl_lite.ablation_report import label
from justrl_lite.config import JustRLConfig
from justrl_lite.policy import load_policy, make_optimizer
from justrl_lite.prompts import build_messages
from justrl_lite.rollout import HFRollout
from justrl_lite.samplers import sampler_for_config
from justrl_lite.trainer import (
    load_prompts,
    make_scheduler,
    prompt_indices,
    seed_everything,
    train_step,
    validate,
)
from justrl_lite.verifier import dapo_reward

TRL_MISSING = "benchmarks/vs_trl.py needs TRL: `pip install -e \".[bench]\"` (trl==1.16.0)."


@dataclass
class Side:
    """Per-step measurements of one trainer."""

    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    param_change: float = 0.0
    """L2 norm of (final - initial) parameters: proof that the trainer updated its policy."""

    def record(self, wall: float, cpu: float, tokens: int, reward: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.tokens.append(tokens)
        self.reward.append(reward)


def recipe(args: argparse.Namespace, seed: int) -> JustRLConfig:
    """The tiny preset at this seed (smoke: 4 prompts x 8, 32-token responses, no warm-up, 8 validation prompts)."""
    cfg = JustRLConfig.tiny().replace(seed=seed, total_steps=args.steps, cpu_threads=args.threads)
    if args.smoke:
        cfg = cfg.replace(prompts_per_step=4, mini_batch_prompts=1, max_response_length=32, lr_warmup_steps=0,
                          val_max_response_length=32, overlong_buffer_len=8, val_max_prompts=8)
    return cfg


def trl_trainer(cfg: JustRLConfig, rows, side: Side, on_training_step, out_dir: str):
    """A TRL GRPOTrainer for ``cfg`` (the mapping in the module docstring) over ``rows`` in step order."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    n = cfg.rollouts_per_prompt
    updates = cfg.optimizer_steps_per_step
    model, tokenizer = load_policy(cfg)
    dataset = Dataset.from_list([{"prompt": build_messages(r, cfg.prompt_suffix), "answer": r.answer} for r in rows])
    generated: list[tuple[int, float]] = []  # (response tokens, mean reward) of each generation

    def strict_reward(completions, answer, completion_ids, **_):
        rewards = [dapo_reward(c[-1]["content"], a) for c, a in zip(completions, answer)]
        generated.append((sum(len(c) for c in completion_ids), sum(rewards) / len(rewards)))
        return rewards

    optimizer = make_optimizer(model, cfg)
    warmup = cfg.lr_warmup_steps
    # lr at optimizer update j (0-based) = lr x min(1, (j // updates) / warmup): justrl_lite's training-step warm-up
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda j: 1.0 if warmup == 0 else min(1.0, (j // updates) / warmup))
    config = GRPOConfig(
        output_dir=out_dir, max_steps=cfg.total_steps * updates, seed=cfg.seed, use_cpu=True, bf16=False,
        per_device_train_batch_size=cfg.mini_batch_prompts * n, gradient_accumulation_steps=1,
        steps_per_generation=updates, num_generations=n, num_iterations=cfg.ppo_epochs,
        max_completion_length=cfg.max_response_length, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0,
        loss_type="bnpo", epsilon=cfg.clip_ratio_low, epsilon_high=cfg.clip_ratio_high, delta=cfg.clip_ratio_c,
        beta=0.0, scale_rewards="group", max_grad_norm=cfg.grad_clip, shuffle_dataset=False,
        learning_rate=cfg.lr, report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
        dataloader_num_workers=0)

    class Alternate(TrainerCallback):
        """After every ``updates`` TRL optimizer steps (one training step): record it, then run justrl_lite's."""

        def on_train_begin(self, *_, **__):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, _args, state, _control, **__):
            if state.global_step % updates:
                return
            side.record(time.perf_counter() - self.t0, time.process_time() - self.c0, *generated[-1])
            on_training_step(state.global_step // updates)
            self.t0, self.c0 = time.perf_counter(), time.process_time()

    trainer = GRPOTrainer(model=model, reward_funcs=strict_reward, args=config, train_dataset=dataset,
                          processing_class=tokenizer, optimizers=(optimizer, scheduler), callbacks=[Alternate()])
    trainer.remove_callback(PrinterCallback)  # TRL still computes and logs its metrics every step; we do not print them
    return trainer, tokenizer


def run_seed(args: argparse.Namespace, seed: int) -> tuple[Side, Side]:
    """Alternate justrl_lite and TRL steps for one seed; validate both at the end."""
    cfg = recipe(args, seed)
    torch.set_num_threads(args.threads)
    ours, trl = Side("justrl_lite"), Side("TRL GRPOTrainer")

    seed_everything(cfg.seed)
    model, tokenizer = load_policy(cfg)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    engine = sampler_for_config(cfg, model, tokenizer)
    train_prompts = load_prompts(cfg.train_data, tokenizer, cfg.prompt_suffix, cfg.max_prompt_length)
    val_prompts = load_prompts(cfg.val_data, tokenizer, cfg.prompt_suffix, cfg.max_prompt_length)
    order = [i for step in range(1, cfg.total_steps + 1)
             for i in prompt_indices(step, cfg.prompts_per_step, len(train_prompts.rows), cfg.seed)]

    def justrl_step(step: int) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        metrics = train_step(step, model, optimizer, engine, train_prompts, cfg)
        scheduler.step()
        ours.record(time.perf_counter() - t0, time.process_time() - c0,
                    int(metrics["response_length/mean"] * cfg.responses_per_step), metrics["reward/mean"])
        for k, v in metrics.items():
            if k.startswith("time/"):
                ours.phases.setdefault(k, []).append(v)
        if not args.quiet:
            print(f"seed {seed} step {step}: justrl_lite {ours.wall[-1]:.2f} s, TRL {trl.wall[-1]:.2f} s",
                  file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        trainer, trl_tokenizer = trl_trainer(cfg, [train_prompts.rows[i] for i in order], trl, justrl_step, tmp)
        # the same prompt token ids on both sides (TRL applies the chat template itself, as below)
        trl_ids = trl_tokenizer.apply_chat_template([build_messages(train_prompts.rows[i], cfg.prompt_suffix)
                                                     for i in order], add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)["input_ids"]
        assert [list(x) for x in trl_ids] == [train_prompts.prompt_ids[i] for i in order], "TRL sees other prompts"
        base = [p.detach().clone() for p in model.parameters()]
        trainer.train()
        for side, policy in ((ours, model), (trl, trainer.model)):
            side.val = validate(HFRollout(policy, tokenizer), val_prompts, cfg, cfg.total_steps)
            side.param_change = float(
                sum((p.detach() - b).pow(2).sum() for p, b in zip(policy.parameters(), base)).sqrt())
    return ours, trl


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pass_at_1_line(results: dict[int, tuple[Side, Side]]) -> str:
    """Held-out pass@1 justrl_lite - TRL paired by seed: mean, SE and the two-sided 95% paired t-test's reading
    (the rule of ``ablation_report.label``)."""
    d = [100 * (ours.val["val/pass@1"] - trl.val["val/pass@1"]) for ours, trl in results.values()]
    if len(d) < 2:
        return f"held-out pass@1 justrl_lite - TRL: {d[0]:+.1f} points (one seed: no test)"
    # SE = sd(d_k) / sqrt(n), sd with n - 1; different when |mean| > t_{0.975, n-1} SE
    mean, se = statistics.fmean(d), statistics.stdev(d) / math.sqrt(len(d))
    verdict = label(mean, se, len(d), "justrl_lite higher", "justrl_lite lower")
    return (f"held-out pass@1 justrl_lite - TRL, paired by seed: {mean:+.2f} +- {se:.2f} points (SE, {len(d)} seeds; "
            f"95% paired t: {verdict})")


def report(results: dict[int, tuple[Side, Side]], steps: int) -> str:
    """Markdown table: per seed and side, median step wall / CPU time, tokens/s, held-out pass@1; then the ratio."""
    lines = [f"| seed | trainer | step wall s (median) | step CPU s (median) | tokens/s (median) | "
             f"held-out pass@1 after {steps} steps |", "|---|---|---|---|---|---|"]
    ratios, cpu_ratios = [], []
    for seed, (ours, trl) in results.items():
        for side in (ours, trl):
            tps = [t / w for t, w in zip(side.tokens, side.wall)]
            lines.append(f"| {seed} | {side.name} | {median(side.wall):.2f} | {median(side.cpu):.2f} | "
                         f"{median(tps):.0f} | {100 * side.val['val/pass@1']:.1f}% |")
        ratios += [a / b for a, b in zip(ours.wall, trl.wall)]
        cpu_ratios += [a / b for a, b in zip(ours.cpu, trl.cpu)]
    lines.append("")
    lines.append(f"per-step wall-time ratio justrl_lite / TRL: median {median(ratios):.2f} over {len(ratios)} "
                 f"paired steps (min {min(ratios):.2f}, max {max(ratios):.2f})")
    lines.append(f"per-step CPU-time ratio justrl_lite / TRL: median {median(cpu_ratios):.2f} "
                 f"(min {min(cpu_ratios):.2f}, max {max(cpu_ratios):.2f})")
    lines.append(pass_at_1_line(results))
    phases = {k: median([v for ours, _ in results.values() for v in ours.phases.get(k, [])])
              for k in ("time/rollout", "time/reward", "time/old_logprob", "time/update", "time/step")}
    lines.append("justrl_lite phases (median s): " + ", ".join(f"{k[5:]} {v:.2f}" for k, v in phases.items()))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="training steps per trainer and seed (default 20)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="run seeds (default 1 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for both trainers (default 1)")
    p.add_argument("--smoke", action="store_true", help="1 small step each: checks that the script runs")
    p.add_argument("--json", help="also write every per-step measurement to this file")
    p.add_argument("--quiet", action="store_true", help="no per-step lines on stderr")
    p.add_argument("--report", nargs="+", metavar="JSON", help="no run: print the table of earlier --json files "
                   "(e.g. one per seed, run in parallel)")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.seeds = 1, args.seeds[:1]
    if args.steps < 1 or args.threads < 1:
        p.error("--steps and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        results, steps = read_results(args.report)
        print(report(results, steps))
        return 0
    try:
        import trl  # noqa: F401
    except ImportError:
        print(f"error: {TRL_MISSING}", file=sys.stderr)
        return 2
    results = {}
    for seed in args.seeds:
        results[seed] = run_seed(args, seed)
        if args.json:  # after every seed, so that a long run keeps what it has measured
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({str(s): {side.name: side.__dict__ for side in pair}
                                                   for s, pair in results.items()}, indent=1) + "\n")
    print(report(results, args.steps))
    return 0


def read_results(paths: list[str]) -> tuple[dict[int, tuple[Side, Side]], int]:
    """Seed -> (justrl_lite, TRL) measurements from files written by --json; and their number of steps."""
    results = {}
    for path in paths:
        for seed, pair in json.loads(Path(path).read_text()).items():
            ours, trl = (Side(**pair[name]) for name in ("justrl_lite", "TRL GRPOTrainer"))
            results[int(seed)] = (ours, trl)
    return results, max(len(ours.wall) for ours, _ in results.values())


if __name__ == "__main__":
    sys.exit(main())
