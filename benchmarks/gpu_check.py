"""The first check to run on a lent GPU: parity, one training step, the resident phase, HF decoding. One JSON.

    python benchmarks/gpu_check.py                  # one H100/H200: the 1.5B shape, at most ~8 minutes
    python benchmarks/gpu_check.py --cpu-smoke      # tiny shapes on CPU in seconds (tests/test_gpu_check.py)

Needs torch and transformers only: no vLLM, no internet. The model is a random-initialised Qwen2 with
DeepSeek-R1-Distill-Qwen-1.5B's shape (hidden 1536, 28 layers, 12 heads, 2 KV heads, MLP 8960, vocabulary
151,936, untied), built from a typed-in config; nothing is downloaded. Every piece is the package's own: the
precision policy and optimizer (``policy.py``), log-probs (``logprobs.py``), the update
(``trainer.update_policy``), the HF sampler (``rollout.HFRollout``), the estimator (``estimate.py``).
Sections of the JSON:

  parity    log-probs on the device in float32 and under bf16 autocast vs a CPU float32 reference; one padded
            bucket vs one pass per row; attention mask vs none on right-padded rows; chunked vs plain
            gradients.
  step      a 2 x 16,384- and a 4 x 7,168-token update (old-log-prob pass + one AdamW step at lr 1e-6):
            seconds, tokens/s, MFU = model FLOPs / (s x peak) with model FLOPs = 4 forwards x tokens x
            ``estimate.forward_flops_per_token`` (no recompute), peak allocated and reserved memory vs the
            estimator's training phase, and the fraction of weights the step moved.
  resident  a one_gpu-like step of 4 updates, then ``empty_cache``: reserved - allocated (fragmentation), free
            memory, and whether a block of vLLM's share (one_gpu's 0.6 of the GPU) can be allocated beside
            training.
  decode    ``HFRollout`` in float32 and in bf16 (autocast, bf16 KV cache): tokens/s and KV bytes per token.

Each section stops being started once ``--budget-s`` (default 420 s) has passed; it is then reported as
skipped. Not run on a GPU yet: no number from this script is quoted anywhere.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import torch

from justrl_lite.config import JustRLConfig
from justrl_lite.logprobs import body_and_head, chunked_logprobs, compute_old_logprobs, sequence_logprobs
from justrl_lite.policy import compute_context, make_optimizer
from justrl_lite.rollout import HFRollout, RolloutBatch
from justrl_lite.scale.device_fit import release_cached_memory
from justrl_lite.scale.estimate import forward_flops_per_token, memory_estimate, shape_from_config
from justrl_lite.trainer import update_policy

QWEN2_1P5B = dict(
    hidden_size=1536,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    intermediate_size=8960,
    vocab_size=151936,
    tie_word_embeddings=False,
    max_position_embeddings=131072,
    rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    use_sliding_window=False,
    eos_token_id=151643,
    pad_token_id=151643,
)
"""DeepSeek-R1-Distill-Qwen-1.5B's architecture (its config.json), typed in by hand."""

SMOKE = dict(
    QWEN2_1P5B,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=512,
    eos_token_id=1,
    pad_token_id=1,
)
"""A small model of the same kind, for ``--cpu-smoke``."""

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0}
"""Dense bf16 peak per GPU (vendor datasheets, SXM parts), matched against
``torch.cuda.get_device_name()``."""

SIZES = {  # (rows, prompt, response) per section; smoke: the same code on tiny shapes
    "gpu": dict(
        parity=(3, 256, 256),
        step=[(2, 1024, 15360), (4, 1024, 6144)],
        resident=(2, 1024, 7168),
        decode=(8, 64, 256),
    ),
    "smoke": dict(parity=(3, 8, 24), step=[(2, 16, 48), (4, 8, 20)], resident=(2, 8, 24), decode=(4, 8, 12)),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--cpu-smoke", action="store_true", help="tiny shapes on CPU: checks the script, measures nothing"
    )
    p.add_argument("--budget-s", type=float, default=420.0, help="start no section after this many seconds")
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="bf16 peak of this GPU (default: from its name)"
    )
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p.parse_args(argv)


def make_batch(rows: int, prompt: int, response: int, vocab: int, ragged: bool = False) -> RolloutBatch:
    """Random token ids; ``ragged``: row k's response is shorter by k x response / (2 rows) (right
    padding)."""
    g = torch.Generator().manual_seed(0)
    lengths = [response - (k * response // (2 * rows) if ragged else 0) for k in range(rows)]
    mask = (torch.arange(response)[None, :] < torch.tensor(lengths)[:, None]).long()  # (rows, response)
    return RolloutBatch(
        prompt_ids=torch.randint(2, vocab, (rows, prompt), generator=g),
        prompt_mask=torch.ones(rows, prompt, dtype=torch.long),
        response_ids=torch.randint(2, vocab, (rows, response), generator=g) * mask,
        response_mask=mask,
        sampling_logprobs=torch.zeros(rows, response),
        truncated=torch.zeros(rows, dtype=torch.bool),
        texts=[""] * rows,
        group_ids=torch.zeros(rows, dtype=torch.long),
    )


def config_for(rows: int, prompt: int, response: int, device: str) -> JustRLConfig:
    """The paper's recipe (bf16 compute, fp32 masters, checkpointing, lr 1e-6) on one micro-batch of this
    size."""
    return JustRLConfig.paper().replace(
        device=device,
        rollout_engine="hf",
        prompts_per_step=1,
        mini_batch_prompts=1,
        rollouts_per_prompt=rows,
        max_prompt_length=prompt,
        max_response_length=response,
        overlong_buffer_len=min(4096, response),
        micro_batch_max_tokens=rows * (prompt + response),
    )


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def parity(model, device: str, rows: int, prompt: int, response: int) -> dict:
    """Device log-probs (fp32, bf16) vs CPU fp32; padded vs split buckets; mask vs none; chunked vs plain
    grads."""
    reference = copy.deepcopy(model).to("cpu").eval()
    batch = make_batch(rows, prompt, response, model.config.vocab_size, ragged=True)
    everything = list(range(rows))
    real = batch.response_mask.bool()
    with torch.no_grad():
        cpu, _, _ = sequence_logprobs(reference, batch, everything, 1.0, False)  # (rows, R)
        out = {}
        for dtype in ("float32", "bfloat16"):
            with compute_context(dtype, device):
                logp, _, _ = sequence_logprobs(model.eval(), batch, everything, 1.0, False)
            diff = (logp.cpu() - cpu)[real].abs()
            out[f"{device}_{dtype}_vs_cpu_float32"] = {
                "max_abs": float(diff.max()),
                "mean_abs": float(diff.mean()),
            }
        with compute_context("bfloat16", device):
            padded, _, _ = sequence_logprobs(model, batch, everything, 1.0, False, overhead_tokens=10**9)
            split, _, _ = sequence_logprobs(model, batch, everything, 1.0, False, overhead_tokens=0)
        out["padded_vs_split_buckets_bf16_max_abs"] = float(
            (padded - split)[real.to(padded.device)].abs().max()
        )
        body, _ = body_and_head(model)
        W = prompt + response
        ids = torch.cat([batch.prompt_ids, batch.response_ids], 1).to(device)  # (rows, W) right-padded
        mask = torch.cat([batch.prompt_mask, batch.response_mask], 1).to(device)  # (rows, W)
        positions = torch.arange(W, device=device).expand(rows, W)
        hidden = {}
        for name, m in (("mask", mask), ("none", None)):
            with compute_context("bfloat16", device):
                hidden[name] = body(input_ids=ids, attention_mask=m, position_ids=positions).last_hidden_state
        out["mask_vs_none_bf16_max_abs"] = float((hidden["mask"] - hidden["none"])[mask.bool()].abs().max())
    out["chunked_vs_plain_gradient"] = gradient_parity(model, device, ids[:, :W], mask)
    del reference
    return out


def gradient_parity(model, device: str, ids: torch.Tensor, mask: torch.Tensor) -> dict:
    """Gradient of sum(log pi) w.r.t. the lm_head and the last norm: chunked (checkpointed) vs one plain
    pass."""
    body, head = body_and_head(model)
    model.train()
    grads = {}
    for name in ("chunked", "plain"):
        model.zero_grad(set_to_none=True)
        with compute_context("bfloat16", device):
            h = body(
                input_ids=ids, position_ids=torch.arange(ids.shape[1], device=device).expand_as(ids)
            ).last_hidden_state[:, :-1][mask[:, 1:].bool()]  # (N, H)
            y = ids[:, 1:][mask[:, 1:].bool()]  # (N,)
            if name == "chunked":
                logp, _ = chunked_logprobs(head, h, y, 1.0, False)
            else:
                logp = torch.log_softmax(head(h).float(), -1).gather(1, y[:, None]).squeeze(1)
        logp.sum().backward()
        grads[name] = torch.cat([head.weight.grad.flatten(), body.norm.weight.grad.flatten()]).float()
    model.zero_grad(set_to_none=True)
    model.eval()
    rel = (grads["chunked"] - grads["plain"]).norm() / grads["plain"].norm().clamp_min(1e-30)
    return {"relative_l2": float(rel), "max_abs": float((grads["chunked"] - grads["plain"]).abs().max())}


def one_update(
    model, device: str, rows: int, prompt: int, response: int, peak: float | None, repeats: int
) -> dict:
    """Old-log-prob pass + one AdamW step at lr 1e-6 on one micro-batch: time, MFU, memory, weights moved."""
    cfg = config_for(rows, prompt, response, device)
    optimizer = make_optimizer(model, cfg)  # eager state: counted from the start, as in training
    batch = make_batch(rows, prompt, response, model.config.vocab_size)
    adv = torch.where(torch.arange(rows) % 2 == 0, 1.0, -1.0)[:, None] * batch.response_mask  # (rows, R)
    before = [p.detach().to("cpu", copy=True) for p in model.parameters()]
    times, moved = [], None
    for rep in range(repeats + 1):
        sync(device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        old_logp, _ = compute_old_logprobs(model, batch, cfg)
        update_policy(model, optimizer, batch, old_logp, adv, cfg)
        sync(device)
        times.append(time.perf_counter() - t0)
        if rep == 0:  # the first step's effect on the weights, at lr 1e-6
            changed = sum(int((p.detach().cpu() != b).sum()) for p, b in zip(model.parameters(), before))
            moved = changed / sum(b.numel() for b in before)
    seconds = sum(times[1:]) / max(1, len(times) - 1) if repeats else times[0]
    tokens = rows * (prompt + response)
    shape = shape_from_config(model.config)
    model_flops = (
        4 * tokens * forward_flops_per_token(shape, (prompt + response) / 2)
    )  # old pass 1 + update 3
    est = memory_estimate(cfg, shape, 1, 1e6)  # per item, training phase; the GPU size does not change these
    out = {
        "rows": rows,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "model_flops": model_flops,
        "mfu": model_flops / seconds / (peak * 1e12) if peak else None,
        "weights_moved_fraction_lr_1e-6": moved,
        "estimated_training_gb": est.training / 1e9,
        "estimated_training_gb_without_vllm_and_reserve": sum(
            t for name, (_, t) in est.rows.items() if not name.startswith(("vLLM", "reserve"))
        )
        / 1e9,
    }
    if device == "cuda":
        out |= {
            "peak_allocated_gb": torch.cuda.max_memory_allocated() / 1e9,
            "peak_reserved_gb": torch.cuda.max_memory_reserved() / 1e9,
        }
    del optimizer
    return out


def resident(model, device: str, rows: int, prompt: int, response: int) -> dict:
    """A one_gpu-like step (4 updates of ``rows`` rows, optimizer state resident), then what is left for
    vLLM."""
    cfg = config_for(rows, prompt, response, device).replace(
        prompts_per_step=4, rollouts_per_prompt=rows, mini_batch_prompts=1
    )
    n = cfg.prompts_per_step * cfg.rollouts_per_prompt
    optimizer = make_optimizer(model, cfg)
    batch = make_batch(n, prompt, response, model.config.vocab_size, ragged=True)
    adv = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)[:, None] * batch.response_mask
    old_logp, _ = compute_old_logprobs(model, batch, cfg)
    metrics = update_policy(model, optimizer, batch, old_logp, adv, cfg)
    fragmentation = release_cached_memory()
    out = {"updates": metrics["actor/updates"], "reserved_minus_allocated_gb": fragmentation}
    if device == "cuda":
        free, total = torch.cuda.mem_get_info()
        share = int(JustRLConfig.one_gpu().rollout_gpu_memory_utilization * total)
        try:
            block = torch.empty(share, dtype=torch.uint8, device=device)
            fits = True
            del block
        except torch.OutOfMemoryError:
            fits = False
        out |= {
            "allocated_gb": torch.cuda.memory_allocated() / 1e9,
            "free_gb": free / 1e9,
            "total_gb": total / 1e9,
            "vllm_share_gb": share / 1e9,
            "vllm_share_allocatable": fits,
        }
    del optimizer
    release_cached_memory()
    return out


class _Tokenizer:
    """Just enough of a tokenizer for ``HFRollout`` (ids in, ids out)."""

    def __init__(self, eos: int):
        self.eos_token_id = self.pad_token_id = eos

    def batch_decode(self, rows, skip_special_tokens=True):
        return [" ".join(map(str, r)) for r in rows]


def decode(model, device: str, rows: int, prompt: int, new_tokens: int) -> dict:
    """The package's HF sampler, float32 vs bf16: tokens/s and KV bytes per token."""
    model.eval()
    prompts = make_batch(rows, prompt, 1, model.config.vocab_size).prompt_ids.tolist()
    out = {}
    for dtype in ("float32", "bfloat16"):
        engine = HFRollout(model, _Tokenizer(model.config.eos_token_id), compute_dtype=dtype)
        sync(device)
        t0 = time.perf_counter()
        batch = engine.generate(
            prompts, 1, temperature=1.0, top_p=1.0, top_k=-1, max_new_tokens=new_tokens, seed=0
        )
        sync(device)
        seconds = time.perf_counter() - t0
        generated = int(batch.response_mask.sum())
        out[dtype] = {
            "seconds": seconds,
            "tokens": generated,
            "tokens_per_s": generated / seconds,
            "kv_bytes_per_token": engine.kv_stats.get("kv_bytes_per_token"),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print(
            "error: benchmarks/gpu_check.py measures the 1.5B shape on a CUDA GPU and torch sees none; pass "
            "--cpu-smoke to run it on tiny shapes on CPU (checks the script, measures nothing).",
            file=sys.stderr,
        )
        return 2
    device = "cuda" if cuda and not args.cpu_smoke else "cpu"
    sizes = SIZES["smoke" if args.cpu_smoke else "gpu"]
    start = time.perf_counter()
    torch.manual_seed(0)
    config = Qwen2Config(**(SMOKE if args.cpu_smoke else QWEN2_1P5B))
    with torch.device(device):
        model = Qwen2ForCausalLM(config)  # float32 master weights
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    report: dict = {
        "device": name,
        "smoke": args.cpu_smoke,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "peak_bf16_tflops": peak,
    }

    def section(key: str, run) -> None:
        elapsed = time.perf_counter() - start
        if elapsed > args.budget_s:
            report[key] = {"skipped": f"time budget: {elapsed:.0f} s > {args.budget_s:g} s"}
            return
        try:
            report[key] = run()
        except torch.OutOfMemoryError as e:  # a measurement too: say so and go on
            report[key] = {"out_of_memory": str(e)[:300]}
            release_cached_memory()
        report[key + "_s"] = time.perf_counter() - start - elapsed

    section("parity", lambda: parity(model, device, *sizes["parity"]))
    section("step", lambda: [one_update(model, device, *s, peak, repeats=1) for s in sizes["step"]])
    section("resident", lambda: resident(model, device, *sizes["resident"]))
    section("decode", lambda: decode(model, device, *sizes["decode"]))
    report["total_s"] = time.perf_counter() - start
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
