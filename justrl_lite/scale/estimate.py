"""What a ``JustRLConfig`` costs on N GPUs of M GB: per-GPU memory, and time per step and per run.

Printed by ``python -m justrl_lite.full_run --dry-run [--gpu-memory-gb M]`` for the native trainer (one GPU, vLLM
colocated) and by ``--engine verl --nnodes n --gpus-per-node g --dry-run`` for verl on N = n x g GPUs (FSDP). Every
number is a formula of the config, the model's shape and the ``Assumptions`` below; nothing is measured here.

Model shape (``ModelShape``; h = hidden, L = layers, d = head_dim, g = KV heads, I = MLP width, V = vocab):
    P_layer = (h*h + h) + 2*(h*g*d + g*d) + h*h + 3*h*I + 2*h   # q (bias), k and v (bias), o, SwiGLU, 2 RMSNorms
    P = V*h + L*P_layer + h + (0 if tied else V*h)             # embeddings, layers, final norm, lm_head
DeepSeek-R1-Distill-Qwen-1.5B (h 1536, L 28, 12 heads, g 2, d 128, I 8960, V 151,936, untied): P = 1,777,088,000.

Memory per GPU, in bytes, in the two phases of a step (T = ``micro_batch_max_tokens``, M = GPU memory):
  1. fp32 master weights 4P and AdamW moments 8P (``policy.py``: fp32 master parameters, bf16 compute): resident
     in both phases. fp32 gradients 4P: training phase only (``zero_grad(set_to_none=True)`` frees them before
     vLLM wakes). Under verl all three are sharded 1/N (FSDP).
  2. bf16 compute copy of the weights (none for float32): 2P on one GPU (autocast's cast cache); with N > 1,
     FSDP gathers them one unit at a time: 2*(V*h*(2 if untied else 1) + P_layer) (the root unit, one layer).
  3. activations under gradient checkpointing: every layer's input, L*T*h*4 (the residual stream stays fp32
     under autocast with fp32 parameters), plus the recomputed layer's saved tensors and their gradients, 2*T*w,
     w = (18h + 3g*d + 4I)*c bytes per token (c = 2 in bf16, 4 in fp32: norms in/out in fp32, q/k/v, rotated q/k,
     attention out, o_proj in, gate, up, silu(gate), their product; about 10% above what transformers' Qwen2
     layer saves: tests/test_estimate.py). Without checkpointing (L + 1)*T*w. Flash/SDPA: no T x T scores.
  4. native: final hidden states and their gradient, T*h*8, and the log-prob chunk: C*V*4*3 (fp32 logits,
     log-softmax and its gradient for C = ``logprobs.chunk_tokens(V, device)`` tokens (1,766 at V = 151,936 on
     CUDA, 441 on CPU)).
     verl's numerics (modelled from its dp_actor, not measured): FSDP casts the parameters to bf16, so the residual
     stream is bf16 (L*T*h*2 in item 3) and the whole micro-batch's (T x V) logits exist at once: T*V*2 (bf16)
     + T*V*4 (its fp32 log-softmax) + T*h*4.
  5. a fixed reserve in both phases (CUDA context, NCCL buffers, allocator fragmentation).
  6. vLLM (``rollout_engine = vllm``, colocated): awake, u*M (u = ``rollout_gpu_memory_utilization``): bf16
     weights 2P, the rest KV cache of 2*L*g*d*2 bytes per token (K, V in bf16). Asleep (level 2, CUDA only:
     weights discarded, KV cache freed; vLLM docs, "Sleep Mode"), its CUDA graphs: ``vllm_asleep_gb``.
  rollout phase  (vLLM awake, sampling)             = u*M + (4P + 8P)/N + reserve
  training phase (vLLM asleep: old log-probs, update) = (4P + 4P + 8P)/N + 2-5 + ``vllm_asleep_gb``
  Fits iff both are <= M and the KV cache, u*M - 2P, holds one full sequence (prompt + response caps).
  Assumed: PyTorch's cache hands back training's freed blocks before vLLM wakes. LoRA is not modelled.

Time (s = mean sequence tokens = f*(prompt cap + response cap), f = ``mean_length_fraction``):
  tokens per step  = prompts_per_step * rollouts_per_prompt * s
  model FLOPs of one forward per token (``forward_flops_per_token``, the one definition ``benchmarks/gpu_check.py``
  shares) = 2 * (matmul parameters: projections, MLP, lm_head) + 4 * L * heads * d * s/2 (attention, mean
  causal context s/2); training = (3 * ppo_epochs + 1) forwards (forward + backward per epoch, the old-log-prob
  pass). Recomputation (checkpointing, log-prob chunks) is not counted: that would be HFU, not MFU.
  training time    = FLOPs / (N * peak * MFU)
  rollout time     = max(responses * f*response cap / (N * decode tokens/s per GPU),  response cap * latency)
                     (the floor: the longest response decodes one token after another)
  validation time  = the same at the validation cap and samples, at step 0 and every val_every steps
MFU, per-token latency, mean length, reserve and vLLM's asleep share are assumptions; the decode rate is fitted (the
paper row, 32 GPUs, to the paper's ~15 days). No GPU run of this package has measured any of them yet
(``benchmarks/gpu_check.py`` is meant to).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from justrl_lite.config import JustRLConfig, resolve_path
from justrl_lite.logprobs import chunk_tokens

GB = 1e9
VLLM_ROW = "vLLM: weights + KV cache awake; CUDA graphs asleep (assumption)"
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
    """Model FLOPs utilisation of training (``forward_flops_per_token``: no recompute counted). Assumed."""
    peak_tflops: float = 312.0
    """Dense bf16 peak of one GPU (A100/A800: 312; H100 SXM: 989)."""
    decode_tokens_per_s: float = 2350.0
    """vLLM sampled tokens per second per GPU over a whole rollout, long-response tail included. Fitted: chosen so
    that the paper preset on 32 GPUs (verl) comes out near the paper's ~15 days (re-fitted to 2,350 when the FLOPs
    became model FLOPs and the latency floor was added; 2,500 before): that row calibrates it, it predicts nothing."""
    decode_latency_s: float = 0.012
    """Seconds per decoded token of one sequence (one vLLM decode step of a 1.5B model); the floor of a rollout is
    response cap x this. Assumed, not measured."""
    mean_length_fraction: float = 0.5
    """Mean prompt/response length as a share of its cap (the paper: ~8k of 15,360 at the start, 4-5k later)."""
    reserve_gb: float = 2.0
    """CUDA context, NCCL buffers and allocator fragmentation per GPU (none on a CPU)."""
    vllm_asleep_gb: float = 1.0
    """What vLLM keeps on the GPU asleep (level 2 frees only its weights and KV cache): captured CUDA graphs and
    buffers outside its sleep pool. Users report about 1 GB per GPU for 30B models on 4 GPUs (vllm#32714)."""


ENGINES = ("native", "verl")
"""The trainer being estimated: this package's (one GPU) or verl (FSDP over N GPUs)."""


def memory_rows(cfg: JustRLConfig, shape: ModelShape, gpus: int, gpu_memory_gb: float,
                a: Assumptions, engine: str = "native") -> dict[str, tuple[float, float]]:
    """Bytes per GPU by item (items 1-6 of the module docstring): (rollout phase, training phase)."""
    if engine not in ENGINES or (engine == "native" and gpus != 1):
        raise ValueError(f"the native trainer runs on one GPU (got gpus={gpus}, engine={engine!r}); "
                         f"multi-GPU estimates are verl's: engine='verl' (`--engine verl`)")
    P, h, T, V, N = shape.parameters, shape.hidden, cfg.micro_batch_max_tokens, shape.vocab, gpus
    verl = engine == "verl"
    c = 4 if cfg.dtype == "float32" else 2
    chunk = min(T, chunk_tokens(V, cfg.device))  # the chunk logprobs.py uses: 1 GiB of fp32 logits on CUDA
    # w: bytes per token one decoder layer saves for backward
    w = (18 * h + 3 * shape.kv_heads * shape.head_dim + 4 * shape.intermediate) * c
    # checkpointed: every layer's fp32 input, L*T*h*4, plus one layer's saved tensors and their gradients, 2*T*w;
    # otherwise every layer's saved tensors, plus the gradients of the one in backward, (L + 1)*T*w
    residual = 2 if verl and cfg.dtype != "float32" else 4  # verl: FSDP's bf16 parameters, a bf16 residual
    activations = (shape.layers * T * h * residual + 2 * T * w if cfg.gradient_checkpointing
                   else (shape.layers + 1) * T * w)
    # bf16 copy: 2P (autocast cache) on one GPU; FSDP: the root unit (embeddings, lm_head) and one layer at a time
    root = shape.embedding_parameters * (1 if shape.tied else 2)
    compute_copy = 0 if cfg.dtype == "float32" else 2 * P if N == 1 else 2 * (root + shape.layer_parameters)
    cuda, vllm = cfg.device == "cuda", cfg.rollout_engine == "vllm"
    reserve, share = a.reserve_gb * GB if cuda else 0.0, cfg.rollout_gpu_memory_utilization * gpu_memory_gb * GB
    # vLLM awake: u*M; asleep (CUDA only; on CPU it has no sleep mode): what stays outside its sleep pool
    rows = {VLLM_ROW: (share, a.vllm_asleep_gb * GB if cuda else share)} if vllm else {}
    return rows | {
        "fp32 master weights (4P/N)": (4 * P / N, 4 * P / N),
        "fp32 gradients (4P/N)": (0.0, 4 * P / N),
        "AdamW moments (8P/N)": (8 * P / N, 8 * P / N),
        f"{cfg.dtype} compute copy of weights" if compute_copy else "compute copy of weights (none)":
            (0.0, compute_copy),
        "activations (checkpointed)" if cfg.gradient_checkpointing else "activations (no checkpointing)":
            (0.0, activations),
        # native: final hidden + fp32 gradient, T*h*8; fp32 logits, log-softmax, gradient of one chunk, C*V*4*3
        # verl: the micro-batch's (T x V) logits in bf16 and their fp32 log-softmax, T*V*6, + T*h*4
        **({"(tokens x vocab) logits, bf16 + fp32 log-softmax (verl)": (0.0, T * V * 6 + T * h * 4)} if verl else
           {f"final hidden + log-prob chunk ({chunk} tokens)": (0.0, T * h * 8 + chunk * V * 4 * 3)}),
        "reserve (assumption)": (reserve, reserve),
    }


@dataclass
class MemoryEstimate:
    rows: dict[str, tuple[float, float]]
    """Bytes per GPU by item: (rollout phase, vLLM awake; training phase, vLLM asleep)."""
    gpu_memory: float
    vllm_share: float
    kv_tokens: int
    sequence_tokens: int
    rollout: float = field(init=False)
    training: float = field(init=False)

    def __post_init__(self) -> None:  # each phase's total: the sum of its column
        self.rollout, self.training = (sum(col) for col in zip(*self.rows.values()))

    @property
    def fits(self) -> bool:
        return max(self.rollout, self.training) <= self.gpu_memory and self.kv_tokens >= self.sequence_tokens


def memory_estimate(cfg: JustRLConfig, shape: ModelShape, gpus: int, gpu_memory_gb: float,
                    a: Assumptions = Assumptions(), engine: str = "native") -> MemoryEstimate:
    rows = memory_rows(cfg, shape, gpus, gpu_memory_gb, a, engine)
    seq = cfg.max_prompt_length + cfg.max_response_length
    share = rows[VLLM_ROW][0] if VLLM_ROW in rows else 0.0
    # KV tokens = (u*M - 2P) / (2 * L * g * d * 2 bytes); transformers generate: its KV cache is not modelled
    kv_tokens = max(0, int((share - 2 * shape.parameters) // shape.kv_bytes_per_token(2))) if share else seq
    return MemoryEstimate(rows, gpu_memory_gb * GB, share, kv_tokens, seq)


def advice(cfg: JustRLConfig, shape: ModelShape, gpus: int, gpu_memory_gb: float, a: Assumptions,
           engine: str = "native") -> list[str]:
    """Why a config does not fit, and which single change makes it fit (empty when it fits). More GPUs are
    advised only for verl: the native trainer uses one."""
    m = memory_estimate(cfg, shape, gpus, gpu_memory_gb, a, engine)
    if m.fits:
        return []
    fits = lambda c, n=gpus: memory_estimate(c, shape, n, gpu_memory_gb, a, engine).fits  # noqa: E731
    tips, seq, M = [], m.sequence_tokens, format_gb(m.gpu_memory)
    if m.kv_tokens < seq:
        tips.append(f"the vLLM share holds {m.kv_tokens:,} KV tokens, less than one sequence ({seq:,}): "
                    f"raise `rollout_gpu_memory_utilization` or lower `max_response_length`")
    if m.rollout > m.gpu_memory:
        tips.append(f"rollouts: vLLM's share {format_gb(m.vllm_share)} + what training keeps resident beside it "
                    f"{format_gb(m.rollout - m.vllm_share)} (fp32 master weights and AdamW moments, reserve) = "
                    f"{format_gb(m.rollout)} > {M}")
    if m.training > m.gpu_memory:
        tips.append(f"training (vLLM asleep): {format_gb(m.training)} > {M}")
    tokens = next((t for t in range(cfg.micro_batch_max_tokens - 1024, seq - 1, -1024)
                   if fits(cfg.replace(micro_batch_max_tokens=t))), None)
    u = next((x / 100 for x in range(round(cfg.rollout_gpu_memory_utilization * 100) - 5, 4, -5)
              if VLLM_ROW in m.rows and fits(cfg.replace(rollout_gpu_memory_utilization=x / 100))), None)
    more = engine == "verl" and next((n for n in (8, 16, 32, 64) if n > gpus and fits(cfg, n)), None)
    fixes = [fix for ok, fix in (
        (tokens, f"set `micro_batch_max_tokens={tokens}` (activations scale with it; >= one sequence, {seq:,})"),
        (u, f"set `rollout_gpu_memory_utilization={u}` (a smaller KV cache beside training's resident state)"),
        (more, f"use {more} GPUs (`--nnodes {max(1, (more or 8) // 8)} --gpus-per-node {min(8, more or 8)}`: "
               f"FSDP shards the fp32 weights, gradients and AdamW moments)")) if ok]
    fixes = fixes or ["no single change found: use fewer response tokens, LoRA, or GPUs with more memory"]
    return tips + [("or " if i else "") + fix for i, fix in enumerate(fixes)]


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
    from justrl_lite.benchmarks import find_benchmark

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


def forward_flops_per_token(shape: ModelShape, context: float) -> float:
    """Model FLOPs of one forward pass per token: 2 x matmul parameters + attention at mean causal ``context``.

    matmul parameters = L x (q, k, v, o projections + 3 MLP matrices) + V*h (the lm_head, tied or not); the input
    embedding is a lookup, and biases and norms are not matmuls (1,543,569,408 of DeepSeek-R1-Distill-Qwen-1.5B's
    1,777,088,000 parameters); attention = L x (Q K^T and A V: 2 x context x heads x d) x 2 FLOPs per multiply-add.
    """
    qd, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    layer = 2 * shape.hidden * qd + 2 * shape.hidden * kv + 3 * shape.hidden * shape.intermediate
    matmul = shape.layers * layer + shape.embedding_parameters
    return 2 * matmul + 4 * shape.layers * qd * context


def time_estimate(cfg: JustRLConfig, shape: ModelShape, gpus: int, a: Assumptions = Assumptions()) -> TimeEstimate:
    f = a.mean_length_fraction
    seq = f * (cfg.max_prompt_length + cfg.max_response_length)
    tokens = cfg.responses_per_step * seq
    # model FLOPs = (3 x epochs + 1 old-log-prob pass) x forward FLOPs per token x tokens (no recompute: MFU)
    flops = (3 * cfg.ppo_epochs + 1) * forward_flops_per_token(shape, seq / 2) * tokens
    train_s = flops / (gpus * a.peak_tflops * 1e12 * a.mfu)

    def decode_s(responses: float, cap: int) -> float:  # max(throughput bound, the longest response's latency)
        return max(responses * f * cap / (gpus * a.decode_tokens_per_s), cap * a.decode_latency_s)

    rollout_s = decode_s(cfg.responses_per_step, cfg.max_response_length)
    n_val = val_prompts(cfg)
    val_s = decode_s(n_val * cfg.val_samples_per_prompt, cfg.val_max_response_length) if n_val else 0.0
    validations = cfg.total_steps // cfg.val_every + 1
    total = cfg.total_steps * (train_s + rollout_s) + validations * val_s
    return TimeEstimate(tokens, flops, train_s, rollout_s, val_s, validations, total, total * gpus / 3600)


def format_gb(x: float) -> str:
    return f"{x / GB:.1f} GB" if x >= 0.1 * GB else f"{x / 1e6:.1f} MB"
