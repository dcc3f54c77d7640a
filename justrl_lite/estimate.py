"""What a ``JustRLConfig`` costs on N GPUs of M GB: per-GPU memory, and time per step and per run.

Printed by ``python -m justrl_lite.full_run --dry-run [--gpus N] [--gpu-memory-gb M]``. Every number is a
formula of the config, the model's shape and the ``Assumptions`` below; nothing is measured here.

Model shape (``ModelShape``; h = hidden, L = layers, d = head_dim, g = KV heads, I = MLP width, V = vocab):
    P_layer = (h*h + h) + 2*(h*g*d + g*d) + h*h + 3*h*I + 2*h   # q (bias), k and v (bias), o, SwiGLU, 2 RMSNorms
    P = V*h + L*P_layer + h + (0 if tied else V*h)             # embeddings, layers, final norm, lm_head
DeepSeek-R1-Distill-Qwen-1.5B (h 1536, L 28, 12 heads, g 2, d 128, I 8960, V 151,936, untied): P = 1,777,088,000.

Memory per GPU, in bytes (T = ``micro_batch_max_tokens``, the per-GPU token budget of one micro-batch):
  1. fp32 master weights 4P, fp32 gradients 4P, AdamW moments 8P (the precision policy of ``policy.py``:
     fp32 master parameters, bf16 compute). With N > 1 GPUs all three are sharded 1/N (FSDP, as verl does).
  2. bf16 compute copy of the weights: 2P on one GPU (autocast's cast cache); with N > 1, FSDP gathers bf16
     parameters one unit at a time: 2*(V*h*(2 if untied else 1) + P_layer) (the root unit and one layer).
     None for float32 configs.
  3. activations under gradient checkpointing: each layer keeps its input, L*T*h*4 (the residual stream stays
     fp32 under autocast with fp32 parameters); the layer being recomputed holds its saved tensors and their
     gradients, 2 * T*w with w = (18h + 3g*d + 4I) * c bytes per token (c = 2 for bf16 compute, 4 for fp32):
     norms in/out in fp32, q/k/v and rotated q/k, attention out, o_proj in; gate, up, silu(gate), their
     product (about 10% above what transformers' Qwen2 layer saves under bf16 autocast: tests/test_estimate.py).
     Without checkpointing all layers keep theirs: (L + 1)*T*w. Attention is flash/SDPA (no T x T scores).
  4. final hidden states and their gradient, T*h*8, and the log-prob chunk: C*V*4*3 (fp32 logits,
     log-softmax and its gradient for C = ``logprob_chunk_tokens`` tokens; ``logprobs.py`` never holds more).
  5. a fixed reserve (CUDA context, NCCL buffers, allocator fragmentation).
  6. vLLM (``rollout_engine = vllm``, colocated in the same GPU, not put to sleep during training): it takes
     u*M (u = ``rollout_gpu_memory_utilization``): bf16 weights 2P, the rest KV cache of
     2*L*g*d*2 bytes per token (K and V, bf16). Training gets the other (1 - u)*M.
  Fits iff 1-5 <= (1 - u)*M and the KV cache holds one full sequence (prompt + response caps).
  LoRA is not modelled (full fine-tuning is an upper bound).

Time (s = mean sequence tokens = f*(prompt cap + response cap), f = ``mean_length_fraction``):
  tokens per step  = prompts_per_step * rollouts_per_prompt * s
  training FLOPs   = 6*P*tokens*ppo_epochs*(4/3 with checkpointing: one extra forward) + 2*P*tokens (old log-probs)
  training time    = FLOPs / (N * peak * MFU)
  rollout time     = responses * f*response cap / (N * decode tokens/s per GPU)
  validation time  = val prompts * val samples * f*val cap / (N * decode), run at step 0 and every val_every steps
The attention term of the FLOPs (about 4*L*h*s/2 per token forward) is left out: MFU absorbs it.
The MFU, decode throughput, mean length and reserve are assumptions, not measurements: no GPU run of this
package has measured them yet (``benchmarks/gpu_step.py`` is meant to).
"""

from __future__ import annotations

from dataclasses import dataclass

from justrl_lite.config import JustRLConfig, resolve_path

GB = 1e9
PAPER_HARDWARE = (32, 80.0)
"""The authors' run: 32 A800-80GB GPUs (4 nodes x 8), about 15 days per model."""


@dataclass(frozen=True)
class ModelShape:
    """A Qwen2/Llama-style decoder: the numbers that set memory and FLOPs."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    qkv_bias: bool = True

    @property
    def layer_parameters(self) -> int:
        h, kv = self.hidden, self.kv_heads * self.head_dim
        attn = h * self.heads * self.head_dim + 2 * h * kv + self.heads * self.head_dim * h
        bias = (self.heads * self.head_dim + 2 * kv) if self.qkv_bias else 0
        return attn + bias + 3 * h * self.intermediate + 2 * h

    @property
    def embedding_parameters(self) -> int:
        return self.vocab * self.hidden

    @property
    def parameters(self) -> int:
        head = 0 if self.tied else self.embedding_parameters
        return self.embedding_parameters + self.layers * self.layer_parameters + self.hidden + head

    def kv_bytes_per_token(self, nbytes: int = 2) -> int:
        """K and V of every layer for one token."""
        return 2 * self.layers * self.kv_heads * self.head_dim * nbytes


_QWEN2_1P5B = ModelShape(hidden=1536, layers=28, heads=12, kv_heads=2, head_dim=128, intermediate=8960,
                         vocab=151936, tied=False)
KNOWN_SHAPES: dict[str, ModelShape] = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": _QWEN2_1P5B,
    # assumed (its config was not read): a Qwen2.5-Math-1.5B fine-tune, same shape; untied is the larger count
    "nvidia/OpenMath-Nemotron-1.5B": _QWEN2_1P5B,
}
"""Shapes of the paper's two bases, used when their config cannot be read (no hub, no cache)."""


def shape_from_config(config) -> ModelShape:
    """A ``ModelShape`` from a ``transformers`` config (Qwen2 has q/k/v biases; others say ``attention_bias``)."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return ModelShape(hidden=config.hidden_size, layers=config.num_hidden_layers, heads=heads,
                      kv_heads=getattr(config, "num_key_value_heads", None) or heads, head_dim=head_dim,
                      intermediate=config.intermediate_size, vocab=config.vocab_size,
                      tied=bool(getattr(config, "tie_word_embeddings", False)),
                      qkv_bias=config.model_type == "qwen2" or bool(getattr(config, "attention_bias", False)))


def model_shape(model_name_or_path: str) -> tuple[ModelShape, str]:
    """The shape and its source: the config (local folder or hub cache; no network), else ``KNOWN_SHAPES``."""
    import logging

    from transformers import AutoConfig

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    path = resolve_path(model_name_or_path)
    try:
        return shape_from_config(AutoConfig.from_pretrained(path, local_files_only=True)), f"its config, {path}"
    except Exception as e:  # not a folder, not cached, or not a decoder config
        if model_name_or_path in KNOWN_SHAPES:
            return KNOWN_SHAPES[model_name_or_path], "the KNOWN_SHAPES table; its config is not reachable here"
        raise ValueError(f"cannot read the config of {model_name_or_path!r} ({type(e).__name__}): download it "
                         f"once (huggingface-cli download), point model_name_or_path at a local folder, or add its "
                         f"shape to KNOWN_SHAPES") from e


@dataclass(frozen=True)
class Assumptions:
    """Numbers the estimate rests on that no GPU run of this package has measured yet."""

    mfu: float = 0.35
    """Model FLOPs utilisation of training (forward, backward, recompute)."""
    peak_tflops: float = 312.0
    """Dense bf16 peak of one GPU (A100/A800: 312; H100 SXM: 989)."""
    decode_tokens_per_s: float = 2500.0
    """vLLM sampled tokens per second per GPU over a whole rollout, long-response tail included. Chosen so that the
    paper preset on 32 GPUs comes out near the paper's ~15 days: that row calibrates this number, it predicts nothing."""
    mean_length_fraction: float = 0.5
    """Mean prompt/response length as a share of its cap (the paper: ~8k of 15,360 at the start, 4-5k later)."""
    reserve_gb: float = 2.0
    """CUDA context, NCCL buffers and allocator fragmentation per GPU (none on a CPU)."""
    logprob_chunk_tokens: int = 1024
    """Tokens per lm_head + log-softmax chunk in ``logprobs.py`` (a config field of that name wins)."""


def memory_rows(cfg: JustRLConfig, shape: ModelShape, gpus: int, a: Assumptions) -> dict[str, float]:
    """Training bytes per GPU by item (items 1-5 of the module docstring)."""
    P, h, T, V = shape.parameters, shape.hidden, cfg.micro_batch_max_tokens, shape.vocab
    c = 4 if cfg.dtype == "float32" else 2
    chunk = min(T, getattr(cfg, "logprob_chunk_tokens", a.logprob_chunk_tokens))
    # w: bytes per token one decoder layer saves for backward
    w = (18 * h + 3 * shape.kv_heads * shape.head_dim + 4 * shape.intermediate) * c
    if cfg.gradient_checkpointing:
        # every layer's fp32 input, L*T*h*4, plus one layer's saved tensors and their gradients, 2*T*w
        activations = shape.layers * T * h * 4 + 2 * T * w
    else:
        # every layer's saved tensors, plus the gradients of the one in backward
        activations = (shape.layers + 1) * T * w
    if cfg.dtype == "float32":
        compute_copy = 0
    elif gpus == 1:
        compute_copy = 2 * P
    else:
        compute_copy = 2 * (shape.embedding_parameters * (1 if shape.tied else 2) + shape.layer_parameters)
    return {
        "fp32 master weights (4P/N)": 4 * P / gpus,
        "fp32 gradients (4P/N)": 4 * P / gpus,
        "AdamW moments (8P/N)": 8 * P / gpus,
        f"{cfg.dtype} compute copy of weights" if compute_copy else "compute copy of weights (none)": compute_copy,
        "activations (checkpointed)" if cfg.gradient_checkpointing else "activations (no checkpointing)": activations,
        # final hidden states + their fp32 gradient, T*h*8; fp32 logits, log-softmax, gradient of one chunk, C*V*4*3
        f"final hidden + log-prob chunk ({chunk} tokens)": T * h * 8 + chunk * V * 4 * 3,
        "reserve (assumption)": a.reserve_gb * GB if cfg.device == "cuda" else 0.0,
    }


@dataclass
class MemoryEstimate:
    rows: dict[str, float]
    training: float
    training_budget: float
    vllm_share: float
    vllm_weights: float
    kv_tokens: int
    sequence_tokens: int

    @property
    def fits(self) -> bool:
        return self.training <= self.training_budget and self.kv_tokens >= self.sequence_tokens


def memory_estimate(cfg: JustRLConfig, shape: ModelShape, gpus: int, gpu_memory_gb: float,
                    a: Assumptions = Assumptions()) -> MemoryEstimate:
    rows = memory_rows(cfg, shape, gpus, a)
    M = gpu_memory_gb * GB
    seq = cfg.max_prompt_length + cfg.max_response_length
    if cfg.rollout_engine == "vllm":
        share = cfg.rollout_gpu_memory_utilization * M
        weights = 2 * shape.parameters
        # KV tokens = (u*M - 2P) / (2 * L * g * d * 2 bytes)
        kv_tokens = max(0, int((share - weights) // shape.kv_bytes_per_token(2)))
    else:  # transformers generate inside the training process: its KV cache is not modelled
        share, weights, kv_tokens = 0.0, 0.0, seq
    return MemoryEstimate(rows, sum(rows.values()), M - share, share, weights, kv_tokens, seq)


def advice(cfg: JustRLConfig, shape: ModelShape, gpus: int, gpu_memory_gb: float, a: Assumptions) -> list[str]:
    """Which single change makes a config that does not fit fit (empty when it fits)."""
    m = memory_estimate(cfg, shape, gpus, gpu_memory_gb, a)
    if m.fits:
        return []
    tips = []
    if m.kv_tokens < m.sequence_tokens:
        tips.append(f"the vLLM share holds {m.kv_tokens:,} KV tokens, less than one sequence ({m.sequence_tokens:,}): "
                    f"raise `rollout_gpu_memory_utilization` or lower `max_response_length`")
    seq = m.sequence_tokens
    for tokens in range(cfg.micro_batch_max_tokens - 1024, seq - 1, -1024):
        if memory_estimate(cfg.replace(micro_batch_max_tokens=tokens), shape, gpus, gpu_memory_gb, a).fits:
            tips.append(f"set `micro_batch_max_tokens={tokens}` (activations scale with it; >= one sequence, {seq:,})")
            break
    if cfg.rollout_engine == "vllm":
        for u in (x / 100 for x in range(round(cfg.rollout_gpu_memory_utilization * 100) - 5, 4, -5)):
            if memory_estimate(cfg.replace(rollout_gpu_memory_utilization=u), shape, gpus, gpu_memory_gb, a).fits:
                tips.append(f"or set `rollout_gpu_memory_utilization={u:.2f}` (a smaller KV cache for vLLM)")
                break
    more = next((n for n in (2, 4, 8, 16, 32, 64) if n > gpus
                 and memory_estimate(cfg, shape, n, gpu_memory_gb, a).fits), None)
    if more:
        tips.append(f"or use `--gpus {more}` (FSDP shards the fp32 weights, gradients and AdamW state)")
    return tips or ["no single change found: use fewer response tokens, LoRA, or GPUs with more memory"]


@dataclass
class TimeEstimate:
    tokens_per_step: float
    train_flops_per_step: float
    train_s: float
    rollout_s: float
    val_s: float
    validations: int
    total_s: float
    gpu_hours: float

    @property
    def step_s(self) -> float:
        return self.train_s + self.rollout_s


def val_prompts(cfg: JustRLConfig) -> int | None:
    """Held-out prompts per validation: benchmark sizes from ``data.BENCHMARKS``, JSONL lines; None if unknown."""
    from pathlib import Path

    from justrl_lite.data import find_benchmark

    total = 0
    for part in (p.strip() for p in cfg.val_data.split(",") if p.strip()):
        spec, path = find_benchmark(part), Path(resolve_path(part))
        if spec is not None:
            total += spec.n_rows
        elif path.suffix == ".jsonl" and path.is_file():
            total += sum(1 for line in path.open() if line.strip())
        else:
            return None
    return min(total, cfg.val_max_prompts) if cfg.val_max_prompts else total


def time_estimate(cfg: JustRLConfig, shape: ModelShape, gpus: int, a: Assumptions = Assumptions()) -> TimeEstimate:
    f, P = a.mean_length_fraction, shape.parameters
    tokens = cfg.responses_per_step * f * (cfg.max_prompt_length + cfg.max_response_length)
    recompute = 4 / 3 if cfg.gradient_checkpointing else 1.0
    # FLOPs = 6 P tokens x epochs x 4/3 (recompute) + 2 P tokens (old log-probs)
    flops = 6 * P * tokens * cfg.ppo_epochs * recompute + 2 * P * tokens
    train_s = flops / (gpus * a.peak_tflops * 1e12 * a.mfu)
    # rollout = responses x f*response cap / (N x decode tokens/s); validation likewise, at its own cap and samples
    rollout_s = cfg.responses_per_step * f * cfg.max_response_length / (gpus * a.decode_tokens_per_s)
    n_val = val_prompts(cfg)
    val_s = (n_val or 0) * cfg.val_samples_per_prompt * f * cfg.val_max_response_length / (gpus * a.decode_tokens_per_s)
    validations = cfg.total_steps // cfg.val_every + 1
    total = cfg.total_steps * (train_s + rollout_s) + validations * val_s
    return TimeEstimate(tokens, flops, train_s, rollout_s, val_s, validations, total, total * gpus / 3600)


def _gb(x: float) -> str:
    return f"{x / GB:.1f} GB" if x >= 0.1 * GB else f"{x / 1e6:.1f} MB"


def _duration(s: float) -> str:
    return f"{s / 86400:.1f} days" if s >= 2 * 86400 else f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min"


def estimate_table(cfg: JustRLConfig, gpus: int, gpu_memory_gb: float, a: Assumptions = Assumptions(),
                   shape: ModelShape | None = None) -> str:
    """The markdown report ``full_run --dry-run`` prints."""
    source = "given"
    if shape is None:
        shape, source = model_shape(cfg.model_name_or_path)
    m, t = memory_estimate(cfg, shape, gpus, gpu_memory_gb, a), time_estimate(cfg, shape, gpus, a)
    lines = [f"Model: {shape.parameters:,} parameters (shape: {source}). Hardware: {gpus} x "
             f"{gpu_memory_gb:g} GB GPUs. Formulas: `justrl_lite/estimate.py`.", "",
             "| per GPU | memory |", "|---|---|"]
    lines += [f"| {name} | {_gb(v)} |" for name, v in m.rows.items()]
    lines.append(f"| **training total** | **{_gb(m.training)}** of {_gb(m.training_budget)} |")
    if cfg.rollout_engine == "vllm":
        lines.append(f"| vLLM share ({cfg.rollout_gpu_memory_utilization:g} x {gpu_memory_gb:g} GB): bf16 weights "
                     f"{_gb(m.vllm_weights)}, KV cache {m.kv_tokens:,} tokens "
                     f"({shape.kv_bytes_per_token(2):,} B/token; {m.kv_tokens // m.sequence_tokens} full sequences) "
                     f"| {_gb(m.vllm_share)} |")
    verdict = "FITS" if m.fits else "DOES NOT FIT"
    lines += ["", f"**{verdict}** on {gpus} x {gpu_memory_gb:g} GB."] + [f"- {tip}" for tip in
                                                                         advice(cfg, shape, gpus, gpu_memory_gb, a)]
    val = (f"{_duration(t.val_s)} per validation x {t.validations}" if t.val_s
           else "validation time unknown (val_data size not known)")
    lines += ["", f"Time (assumptions, not measurements: MFU {a.mfu:g} of {a.peak_tflops:g} TFLOP/s, "
              f"{a.decode_tokens_per_s:,.0f} decode tokens/s per GPU, mean lengths {a.mean_length_fraction:g} x caps):",
              f"- per step: {_duration(t.step_s)} = training {_duration(t.train_s)} "
              f"({t.train_flops_per_step:.2e} FLOPs on {t.tokens_per_step:,.0f} tokens) + rollout {_duration(t.rollout_s)}",
              f"- {cfg.total_steps:,} steps: {_duration(t.total_s)} ({val}); {t.gpu_hours:,.0f} GPU-hours"]
    if cfg.device == "cpu":
        lines.append("- device is cpu: these GPU figures do not apply; memory above is host RAM at GPU dtypes")
    return "\n".join(lines)


README_ROWS: tuple[tuple[str, int], ...] = (("paper", 32), ("paper", 1), ("one_gpu", 1), ("tiny", 1))
"""(preset, GPUs) rows of the README's hardware table, on 80 GB GPUs (``tiny`` runs on a CPU)."""


def hardware_table(rows: tuple[tuple[str, int], ...] = README_ROWS, gpu_memory_gb: float = PAPER_HARDWARE[1],
                   a: Assumptions = Assumptions()) -> str:
    """Markdown table per (preset, GPUs): training memory per GPU, fits, time per step and per run, the command."""
    from justrl_lite.config import PRESETS

    out = ["| preset | what it is for | GPUs | training memory per GPU | time per step | whole run | command |",
           "|---|---|---|---|---|---|---|"]
    for name, gpus in rows:
        cfg = JustRLConfig.preset(name)
        shape = model_shape(cfg.model_name_or_path)[0]
        m, t = memory_estimate(cfg, shape, gpus, gpu_memory_gb, a), time_estimate(cfg, shape, gpus, a)
        command = f"`python -m justrl_lite.full_run --preset {name} --dry-run --gpus {gpus}`"
        if cfg.device == "cpu":  # the GPU time assumptions do not apply; its time is measured (README)
            command = f"`python -m justrl_lite.full_run --preset {name} --dry-run`"
            out.append(f"| `{name}` | {PRESETS[name]} | none (CPU) | {_gb(m.training)} of RAM (tensors) | measured: "
                       f"`data/tiny_run` | measured: `data/tiny_run` ({cfg.total_steps:,} steps) | {command} |")
            continue
        fits = "fits" if m.fits else "**does not fit**"
        out.append(f"| `{name}` | {PRESETS[name]} | {gpus} x {gpu_memory_gb:g} GB | {_gb(m.training)} of "
                   f"{_gb(m.training_budget)}: {fits} | {_duration(t.step_s)} | {_duration(t.total_s)} "
                   f"({cfg.total_steps:,} steps, {t.gpu_hours:,.0f} GPU-hours) | {command} |")
    return "\n".join(out)
