"""Rollout throughput of ``HFRollout`` on the tiny model, next to what the machine's matmuls can do.

One rollout batch of the tiny preset's shape: 16 prompts x 8 samples = 128 sequences, temperature 1.0,
up to 128 new tokens. Prints

    generated tokens / s                     (EOS included, padding after EOS excluded)
    model FLOPs per generated token ~ 2 x parameters   (one multiply-add per weight; attention ignored)
    achieved GFLOP/s = tokens/s x FLOPs/token
    machine float32 matmul GFLOP/s          (best of timed 1024 x 1024 matmuls, 2 n^3 FLOPs each)

so the share of the machine's peak that token-by-token sampling reaches is visible. Uses ``data/toy/base``
if it exists (the SFT'd toy base, which stops at EOS), else a random tiny model (which rarely stops).

    python benchmarks/rollout_throughput.py [--threads 1] [--max-new-tokens 128]
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from justrl_lite.config import PROJECT_ROOT, TRAIN_PROMPT_SUFFIX
from justrl_lite.data import MathRow
from justrl_lite.prompts import encode_prompts
from justrl_lite.rollout import HFRollout
from justrl_lite.toy.model import build_random_model, count_parameters
from justrl_lite.toy.task import demonstration, sample_problems
from justrl_lite.toy.tokenizer import build_tokenizer

BASE_DIR = PROJECT_ROOT / "data" / "toy" / "base"


def matmul_gflops(n: int = 1024, repeats: int = 10, trials: int = 3) -> float:
    """Best float32 GFLOP/s over ``trials`` timings of ``repeats`` (n x n) @ (n x n) products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * repeats / best / 1e9


def load_policy() -> tuple[torch.nn.Module, object, str]:
    """(model, tokenizer, description): the toy base if it has been built, else a random tiny model."""
    if (BASE_DIR / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(BASE_DIR, dtype=torch.float32).eval()
        return model, AutoTokenizer.from_pretrained(BASE_DIR), f"toy base ({BASE_DIR})"
    problems = sample_problems(200, seed=0)
    rng = random.Random(0)
    tokenizer = build_tokenizer([p.text for p in problems] + [demonstration(p, rng)[0] for p in problems]
                                + [TRAIN_PROMPT_SUFFIX])
    return build_random_model(tokenizer, seed=0), tokenizer, "random tiny model (data/toy/base not built yet)"


def toy_prompts(tokenizer, n_prompts: int) -> list[list[int]]:
    rows = [MathRow(id=f"bench-{i}", messages=({"role": "user", "content": p.text},), ground_truth=str(p.answer),
                    data_source="toy-arith") for i, p in enumerate(sample_problems(n_prompts, seed=99))]
    return encode_prompts(tokenizer, rows, TRAIN_PROMPT_SUFFIX, max_prompt_length=1024).prompt_ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (keep small on shared machines)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per generate call (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    model, tokenizer, what = load_policy()
    prompts = toy_prompts(tokenizer, args.prompts)
    engine = HFRollout(model, tokenizer, batch_size=args.batch_size)
    sampling = dict(temperature=1.0, top_p=1.0, top_k=-1)
    engine.generate(prompts[:2], 2, max_new_tokens=8, seed=0, **sampling)  # warm-up

    start = time.perf_counter()
    batch = engine.generate(prompts, args.n, max_new_tokens=args.max_new_tokens, seed=0, **sampling)
    seconds = time.perf_counter() - start
    generated = int(batch.response_mask.sum())
    tokens_per_s = generated / seconds
    flops_per_token = 2 * count_parameters(model)
    achieved = tokens_per_s * flops_per_token / 1e9
    peak = matmul_gflops()

    print(f"policy:              {what}, {count_parameters(model):,} parameters, float32, {args.threads} thread(s)")
    print(f"rollout batch:       {len(prompts)} prompts x {args.n} = {len(batch.texts)} sequences, "
          f"prompt length {batch.prompt_ids.shape[1]}, max_new_tokens {args.max_new_tokens}")
    print(f"generated:           {generated:,} tokens in {seconds:.2f} s "
          f"(mean length {batch.response_lengths.float().mean():.1f}, truncated {int(batch.truncated.sum())})")
    print(f"throughput:          {tokens_per_s:,.0f} tokens/s")
    print(f"FLOPs per token:     {flops_per_token / 1e6:.2f} MFLOP (2 x parameters)")
    print(f"achieved:            {achieved:.2f} GFLOP/s")
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s (1024 x 1024, {args.threads} thread(s))")
    print(f"share of peak:       {100 * achieved / peak:.1f} %")


if __name__ == "__main__":
    main()
