"""One training micro-batch of the paper's run on one GPU: peak memory, tokens/s, MFU, beside the estimator's guess.

    python benchmarks/gpu_step.py                  # CUDA GPU: the 1.5B shape, 2 x (1,024 + 15,360) = 32,768 tokens
    python benchmarks/gpu_step.py --cpu-smoke      # tiny sizes on CPU: checks the script itself (CI runs this)

What runs: a random-initialised Qwen2 with DeepSeek-R1-Distill-Qwen-1.5B's shape (hidden 1536, 28 layers, 12 heads,
2 KV heads, MLP 8960, vocabulary 151,936, untied embeddings; built from a hand-written ``Qwen2Config``, nothing is
downloaded) under the paper's precision policy (float32 master weights and AdamW state, bfloat16 autocast compute,
``justrl_lite.policy``) with gradient checkpointing; then the package's own ``compute_old_logprobs`` and
``update_policy`` (one AdamW step) on one micro-batch of ``micro_batch_max_tokens`` = 32,768 tokens. One warm-up
repetition, then ``--repeats`` timed ones.

MFU counts model FLOPs (no recomputation): per token, forward = 2 x (matmul parameters) + attention 2 x 2 x (mean
causal context) x hidden per layer; old-log-prob pass = 1 forward, update = 3 forwards (forward + backward). The
hardware actually does 5 forwards' worth (gradient checkpointing and the log-prob chunks recompute one forward):
that utilisation is printed as HFU.

Not run on a GPU yet: no measured numbers are quoted anywhere from this script.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from justrl_lite.config import JustRLConfig
from justrl_lite.logprobs import compute_old_logprobs
from justrl_lite.policy import make_optimizer
from justrl_lite.rollout import RolloutBatch
from justrl_lite.trainer import update_policy

QWEN2_1P5B = dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                  intermediate_size=8960, vocab_size=151936, tie_word_embeddings=False, max_position_embeddings=131072,
                  rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                  use_sliding_window=False)
"""DeepSeek-R1-Distill-Qwen-1.5B's architecture (its config.json), typed in by hand."""

SMOKE = dict(QWEN2_1P5B, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=128, vocab_size=512)
"""A few-thousand-parameter model of the same kind, for ``--cpu-smoke``."""

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0}
"""Dense bf16 peak per GPU (vendor datasheets, SXM parts), matched against ``torch.cuda.get_device_name()``."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-smoke", action="store_true", help="tiny model and 2 x 64 tokens on CPU")
    p.add_argument("--prompt-tokens", type=int, default=None, help="per row (default 1,024; smoke 16)")
    p.add_argument("--response-tokens", type=int, default=None, help="per row (default 15,360; smoke 48)")
    p.add_argument("--rows", type=int, default=2, help="sequences in the micro-batch (default 2)")
    p.add_argument("--repeats", type=int, default=2, help="timed repetitions after one warm-up")
    p.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak of this GPU (default: from its name)")
    return p.parse_args(argv)


def forward_flops(config, tokens: int, seq_len: int) -> float:
    """Model FLOPs of one forward over ``tokens`` tokens in sequences of ``seq_len`` (see the module docstring)."""
    h, layers, inter, V = config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    matmul_params = layers * (2 * h * h + 2 * h * kv + 3 * h * inter) + h * V   # q, o, k, v, MLP; lm_head
    # attention: QK^T and AV, 2 FLOPs per multiply-add, over a mean causal context of seq_len / 2
    attention = layers * 2 * 2 * (seq_len / 2) * h
    return tokens * (2 * matmul_params + attention)


def make_batch(rows: int, prompt: int, response: int, vocab: int, device: str) -> RolloutBatch:
    g = torch.Generator().manual_seed(0)
    return RolloutBatch(prompt_ids=torch.randint(0, vocab, (rows, prompt), generator=g),
                        prompt_mask=torch.ones(rows, prompt, dtype=torch.long),
                        response_ids=torch.randint(0, vocab, (rows, response), generator=g),
                        response_mask=torch.ones(rows, response, dtype=torch.long),
                        sampling_logprobs=torch.zeros(rows, response), truncated=torch.zeros(rows, dtype=torch.bool),
                        texts=[""] * rows, group_ids=torch.zeros(rows, dtype=torch.long))


def estimator_line(cfg: JustRLConfig, config, peak_tflops: float | None) -> str:
    """The estimator's memory and time for this micro-batch, if ``justrl_lite.scale.estimate`` exists here."""
    try:
        from justrl_lite.scale import estimate
    except ImportError:
        return "estimator not available (justrl_lite.scale.estimate is not in this checkout)"
    try:
        shape = estimate.shape_from_config(config)
        a = estimate.Assumptions(mean_length_fraction=1.0, **({"peak_tflops": peak_tflops} if peak_tflops else {}))
        mem = estimate.memory_estimate(cfg, shape, 1, 1e6, a).training
        t = estimate.time_estimate(cfg, shape, 1, a).train_s
        return f"estimator: peak training memory {mem / 1e9:.1f} GB, old-log-prob pass + update {t:.2f} s"
    except Exception as e:  # another engineer's module: report, do not crash the benchmark
        return f"estimator not available ({type(e).__name__}: {e})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print("error: benchmarks/gpu_step.py measures a 1.5B training step on a CUDA GPU and torch sees none; "
              "pass --cpu-smoke to run it on tiny sizes on CPU (checks the script, measures nothing).", file=sys.stderr)
        return 2
    device = "cuda" if cuda and not args.cpu_smoke else "cpu"
    prompt = args.prompt_tokens or (16 if args.cpu_smoke else 1024)
    response = args.response_tokens or (48 if args.cpu_smoke else 15360)
    tokens = args.rows * (prompt + response)
    config = Qwen2Config(**(SMOKE if args.cpu_smoke else QWEN2_1P5B))
    cfg = JustRLConfig.paper().replace(device=device, rollout_engine="hf", prompts_per_step=1, mini_batch_prompts=1,
                                       rollouts_per_prompt=args.rows, max_prompt_length=prompt,
                                       max_response_length=response, overlong_buffer_len=min(4096, response),
                                       micro_batch_max_tokens=tokens)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)                                   # float32 master weights
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    optimizer = make_optimizer(model, cfg)
    batch = make_batch(args.rows, prompt, response, config.vocab_size, device)
    adv = torch.where(torch.arange(args.rows) % 2 == 0, 1.0, -1.0)[:, None] * batch.response_mask
    n_params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    print(f"{name}: Qwen2 of {n_params:,} parameters, {args.rows} x ({prompt} + {response}) = {tokens:,} tokens, "
          f"dtype={cfg.dtype} compute, float32 masters, gradient checkpointing")

    times = []
    for rep in range(args.repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        old_logp, _ = compute_old_logprobs(model, batch, cfg)
        metrics = update_policy(model, optimizer, batch, old_logp, adv, cfg)
        if device == "cuda":
            torch.cuda.synchronize()
        if rep > 0:  # the first repetition warms up kernels and allocates the AdamW state
            times.append(time.perf_counter() - t0)
        assert metrics["actor/updates"] == 1 and metrics["actor/skipped_updates"] == 0, metrics
    step_s = sum(times) / len(times)
    model_flops = 4 * forward_flops(config, tokens, prompt + response)    # old pass 1x + update 3x
    hardware_flops = 5 * forward_flops(config, tokens, prompt + response) # + recomputed forward
    print(f"old-log-prob pass + one update: {step_s:.2f} s, {tokens / step_s:,.0f} tokens/s")
    if device == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB allocated, "
              f"{torch.cuda.max_memory_reserved() / 1e9:.1f} GB reserved")
    if peak:
        print(f"MFU {model_flops / step_s / (peak * 1e12):.1%}, HFU {hardware_flops / step_s / (peak * 1e12):.1%} "
              f"(bf16 peak {peak:g} TFLOPS)")
    else:
        print("MFU: unknown peak for this device; pass --peak-tflops")
    print(estimator_line(cfg, config, peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
