"""Time the tiny preset's update (``trainer.update_policy``) under several forward-bucket overheads, alternated.

Each micro-batch of the update is computed in forward buckets (``justrl_lite.logprobs.forward_buckets``): its
rows sorted by length and cut into runs minimising  sum_k rows_k x longest_k + overhead x buckets. This script
trains ``--warm-steps`` tiny steps (so the response lengths are those of a run, not of the base), samples one
more rollout batch, and then times ``update_policy`` on that same batch with lr = 0 (the policy never changes)
for each ``--overheads`` value in turn, ``--repeats`` rounds, reporting the median seconds and the padded share
of the computed tokens (``perf/padding_frac``). An overhead of -1 stands for the whole micro-batch in ONE forward
pass padded to its longest row (the plan before forward buckets).

    python benchmarks/update_buckets.py                               # overheads -1 0 16 64 256, 5 rounds
    python benchmarks/update_buckets.py --warm-steps 20 --overheads -1 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import justrl_lite.logprobs as logprobs
from justrl_lite.config import JustRLConfig
from justrl_lite.policy import load_policy, make_optimizer
from justrl_lite.samplers import sampler_for_config
from justrl_lite.trainer import (
    load_prompts,
    make_scheduler,
    prompt_indices,
    sample_seed,
    seed_everything,
    train_step,
    update_policy,
)

ONE_FORWARD = 10**12
"""An overhead no padding can outweigh: every micro-batch is one forward pass (what -1 on the command line means)."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warm-steps", type=int, default=10, help="tiny training steps before the timed batch (default 10)")
    p.add_argument("--overheads", type=int, nargs="+", default=[-1, 0, 16, 64, 256],
                   help="forward-bucket overheads in tokens; -1 = one forward per micro-batch")
    p.add_argument("--repeats", type=int, default=5, help="rounds over the overheads (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.warm_steps < 0 or args.repeats < 1 or args.threads < 1 or any(o < -1 for o in args.overheads):
        p.error("--warm-steps >= 0, --repeats and --threads >= 1, overheads >= -1")
    torch.set_num_threads(args.threads)
    cfg = JustRLConfig.tiny().replace(seed=args.seed)
    seed_everything(cfg.seed)
    model, tokenizer = load_policy(cfg)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    engine = sampler_for_config(cfg, model, tokenizer)
    prompts = load_prompts(cfg.train_data, tokenizer, cfg.prompt_suffix, cfg.max_prompt_length)
    for step in range(1, args.warm_steps + 1):
        train_step(step, model, optimizer, engine, prompts, cfg)
        scheduler.step()
    step = args.warm_steps + 1
    idx = prompt_indices(step, cfg.prompts_per_step, len(prompts.rows), cfg.seed)
    batch = engine.generate([prompts.prompt_ids[i] for i in idx], cfg.rollouts_per_prompt, temperature=cfg.temperature,
                            top_p=cfg.top_p, top_k=cfg.top_k, max_new_tokens=cfg.max_response_length,
                            seed=sample_seed(cfg.seed, step, 0))
    old_logp = batch.sampling_logprobs * batch.response_mask                                   # (B, R)
    adv = torch.randn(batch.response_ids.shape[0], 1, generator=torch.Generator().manual_seed(args.seed))
    token_adv = adv * batch.response_mask                                                      # (B, R)
    for group in optimizer.param_groups:
        group["lr"] = 0.0  # every round sees the same policy
    seconds: dict[int, list[float]] = {o: [] for o in args.overheads}
    padding: dict[int, float] = {}
    for _ in range(args.repeats):
        for o in args.overheads:
            logprobs.FORWARD_OVERHEAD_TOKENS = ONE_FORWARD if o == -1 else o
            t0 = time.perf_counter()
            metrics = update_policy(model, optimizer, batch, old_logp, token_adv, cfg, log_entropy=True)
            seconds[o].append(time.perf_counter() - t0)
            padding[o] = metrics["perf/padding_frac"]
    lengths = batch.response_mask.sum(-1).float()
    print(f"tiny update after {args.warm_steps} steps (response length mean {lengths.mean():.0f}, "
          f"max {lengths.max():.0f}), {args.threads} thread(s), median of {args.repeats}")
    print("| forward buckets | update s (median) | padding_frac |")
    print("|---|---|---|")
    for o in args.overheads:
        name = "one per micro-batch" if o == -1 else f"overhead {o} tokens"
        print(f"| {name} | {statistics.median(seconds[o]):.2f} | {padding[o]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
