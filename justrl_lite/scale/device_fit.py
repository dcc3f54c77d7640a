"""Before any model is loaded: does this run fit the GPU it is about to use? Between phases: what is left.

The native trainer runs in one process on one GPU (vLLM colocated). ``estimate.memory_estimate`` gives its two
phases on one GPU of M bytes:

    rollout phase  = u*M (vLLM awake) + 12P (fp32 master weights + AdamW moments) + reserve
    training phase = 16P + compute copy + activations + log-prob chunk + reserve + vLLM asleep

and the run fits iff both are <= M and vLLM's KV cache holds one full sequence. ``check_fits_device``
evaluates that against the device's real memory and stops with one message naming the ways out. The paper
preset on one 80 GB GPU needs ~91 GB in the rollout phase: without this check it passes vLLM's start-up and
the first update, then runs out of memory when vLLM's KV cache wakes.

Choices:
  1. The check runs only on CUDA (``device_memory_bytes`` is None on CPU, where the sizes are host RAM).
  2. The HF sampler's KV cache is not in ``memory_estimate``: ``samplers.hf_rows_that_fit`` is checked
     here too.
  3. Fragmentation is measured, not modelled: ``release_cached_memory`` returns reserved - allocated after
     ``empty_cache`` (logged as ``perf/reserved_minus_allocated_gb``; absent on CPU).
"""

from __future__ import annotations

import torch

from justrl_lite.config import JustRLConfig
from justrl_lite.policy import TrainerError
from justrl_lite.samplers import hf_rows_that_fit
from justrl_lite.scale.estimate import GB, Assumptions, advice, memory_estimate, model_shape

WAYS_OUT = (
    "Ways out: `python -m justrl_lite.full_run --preset one_gpu` (the recipe at reduced scale on one "
    "80 GB GPU), or `python -m justrl_lite.full_run --engine verl --nnodes 4 --gpus-per-node 8` for the "
    "paper's 32-GPU layout (verl shards what this single-GPU trainer cannot)."
)


def device_memory_bytes(cfg: JustRLConfig) -> float | None:
    """Total memory of the GPU the run will use (None when it runs on the CPU)."""
    if cfg.device != "cuda" or not torch.cuda.is_available():
        return None
    return float(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)


def check_fits_device(cfg: JustRLConfig, device_bytes: float | None, a: Assumptions | None = None) -> None:
    """Raise ``TrainerError`` (the estimate, the single changes that fit, the ways out) when the run cannot
    fit.

    ``device_bytes``: the GPU's memory (``device_memory_bytes``); None (CPU) checks nothing.
    """
    if device_bytes is None:
        return
    a = a or Assumptions()
    try:
        shape = model_shape(cfg.model_name_or_path)[0]
    except ValueError:
        return  # the shape is unknown here: the model load that follows says what is wrong with the path
    m = memory_estimate(cfg, shape, 1, device_bytes / GB, a)
    if not m.fits:
        tips = advice(cfg, shape, 1, device_bytes / GB, a)
        raise TrainerError(
            f"this config does not fit this GPU ({device_bytes / GB:.0f} GB; the native trainer uses one "
            f"GPU with vLLM beside it). Estimated: {m.rollout / GB:.1f} GB while sampling, "
            f"{m.training / GB:.1f} GB while training (`python -m justrl_lite.full_run --dry-run "
            f"--gpu-memory-gb {device_bytes / GB:.0f}`, "
            f"formulas in justrl_lite/scale/estimate.py): " + "; ".join(tips) + ". " + WAYS_OUT
        )
    if cfg.rollout_engine == "hf":
        hf_rows_that_fit(cfg, shape, device_bytes, a.reserve_gb * GB)


def release_cached_memory() -> float | None:
    """Hand PyTorch's cached free blocks back to the GPU; return what stays reserved beyond what is
    allocated, in
    GB (segments only partly used: fragmentation). None on a machine without CUDA."""
    if not torch.cuda.is_available():
        return None
    torch.cuda.empty_cache()
    return (torch.cuda.memory_reserved() - torch.cuda.memory_allocated()) / GB
