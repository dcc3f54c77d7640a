"""The policy: one loader for training, evaluation and export, the precision policy, the optimizer, the device check.

Precision policy (``dtype`` in the config; what each tensor is, and why):

    tensor                                  dtype=float32     dtype=bfloat16 / float16
    trainable parameters (master weights)   float32           float32
    AdamW moments m, v                      float32           float32
    gradients                               float32           float32 (autocast's backward casts to the parameter dtype)
    matmuls of forward and backward         float32           dtype   (torch.autocast(device, dtype))
    logits of one log-prob chunk            float32           dtype, then float32 for log-softmax/entropy
    checkpoint ``policy/``                  float32           float32 (resume is exact)
    exported model (``scale/export.py``)          chosen at export, e.g. bfloat16 for sharing and vLLM

Why the master weights stay float32. AdamW's first steps move every weight by about lr (the update
m / (sqrt(v) + eps) is ~1 in size when the gradient has a steady sign), i.e. by 1e-6 in JustRL. bfloat16 keeps
8 significant bits: two neighbours near w are 2^-7 |w| to 2^-8 |w| apart, so any update smaller than
2^-9 |w| ~ 0.002 |w| rounds back to w. An update of 1e-6 survives only on weights with |w| < ~2.6e-4 to 5.1e-4.
Measured on the toy base (``data/toy/base``, 1M parameters, median |w| = 0.033): adding 1e-6 to every weight in
bfloat16 changes 0.83% of them; in float32 (24 significant bits, threshold 2^-25 |w| ~ 3e-8 |w|) 100%
(tests/test_policy.py::test_an_update_of_1e6_rounds_away_in_bfloat16_but_not_in_float32). One AdamW step at lr 1e-6
on a random toy batch moves every weight whose gradient reaches AdamW's eps (a step of at least lr / 2) under this
policy and about 1% of them with weights stored in bfloat16
(test_one_adamw_step_at_lr_1e6_moves_the_weights_only_with_float32_masters); one training step of the
paper preset at toy size moves 99.93% of all weights (test_paper_preset_one_step_on_cpu_moves_most_weights; the
old bf16-stored path: 0.79%, issue 9). verl, which the authors ran, does the same: FSDP mixed precision with
float32 parameters and bfloat16 compute.

float16 compute is refused on CUDA (``check_device``): no loss scaling is applied, so small float16 gradients
would underflow to zero; the paper's runs use bfloat16. On CPU float16 stays available for experiments.

AdamW's moments are created eagerly (``make_optimizer``), before the first forward pass: 8P bytes allocated
while the device is still unfragmented, not inside segments the first backward's activations just freed (on
one GPU beside vLLM the margin at its wake is a few GB). On CUDA the fused AdamW kernel is used (the default
foreach path makes a 4P transient per step).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from justrl_lite.config import JustRLConfig, resolve_path
from justrl_lite.errors import JustRLError

LOW_PRECISION = ("bfloat16", "float16")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainerError(JustRLError, RuntimeError):
    """A problem the user can fix (model path, resume settings, data size); the message says how."""


class DeviceError(TrainerError):
    """The configured device is not available on this machine."""


class ModelLoadError(TrainerError):
    """A model folder or hub id cannot be loaded; the message says what to pass instead."""


def check_device(cfg: JustRLConfig) -> None:
    """Stop early, with advice, when the config asks for a GPU this machine does not have."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "this config needs a CUDA GPU (device=cuda; the paper ran on 32 A800-80GB GPUs for about 15 days), "
            "but torch sees none. On a CPU machine run the same recipe at toy scale: "
            "`python -m justrl_lite.full_run --preset tiny` (or pass device=cpu rollout_engine=hf to override).")
    if cfg.device == "cuda" and cfg.dtype == "float16":
        raise DeviceError("dtype=float16 on CUDA: this trainer applies no loss scaling, so small float16 gradients "
                          "underflow to zero. Use dtype=bfloat16 (the paper's; Ampere or newer) or dtype=float32.")


def compute_context(dtype: str | JustRLConfig, device: str | torch.device):
    """The context every forward pass of training runs in: autocast to bf16/fp16, or nothing for float32.

    The old-log-prob pass and the update use this same context, so that on the first mini-batch r_t = 1 up to
    the same numerics. Backward is called outside it (as torch recommends); its matmuls follow the forward's.
    """
    name = dtype.dtype if isinstance(dtype, JustRLConfig) else dtype
    if name not in LOW_PRECISION:
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=getattr(torch, name))


def load_model(model_path: str, *, device: str, dtype: str, load_weights: bool = True):
    """(model in eval mode, tokenizer) from a local ``save_pretrained`` folder or a hub id, weights in ``dtype``.

    ``load_weights=False`` returns (None, tokenizer). Used by evaluation and export as is, and by ``load_policy``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device cuda was asked for but no CUDA GPU is visible; pass --device cpu")
    if dtype not in ("bfloat16", "float16", "float32"):
        raise ModelLoadError(f"dtype must be bfloat16, float16 or float32, got {dtype!r}")
    resolved = resolve_path(model_path)
    looks_local = model_path.startswith((".", "/", "~")) or model_path.count("/") != 1
    if looks_local and not Path(resolved).is_dir():
        raise ModelLoadError(f"model path {model_path!r} is not a folder: pass a folder written by "
                             f"save_pretrained (e.g. data/toy/base, made by `python -m justrl_lite.toy.make_base`, "
                             f"or one written by `python -m justrl_lite.scale.export`) or a hub id such as "
                             f"hbx/JustRL-DeepSeek-1.5B")
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
        model = None
        if load_weights:
            model = AutoModelForCausalLM.from_pretrained(resolved, dtype=getattr(torch, dtype))
            model = model.to(device).eval()
    except (OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"cannot load model {model_path!r} ({type(e).__name__}: {str(e)[:300]}); pass "
                             f"a folder written by save_pretrained (config.json, weights, tokenizer files) "
                             f"or a hub id this machine can download "
                             f"(e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B)") from e
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_policy(cfg: JustRLConfig, checkpoint: Path | None = None):
    """The trainable policy (float32 master weights, see the module docstring) and its tokenizer.

    From the base (``model_name_or_path``) or from a checkpoint's ``policy/`` (full weights, or a LoRA adapter
    on top of the base).
    """
    full_from_checkpoint = checkpoint is not None and cfg.lora_rank == 0
    source = str(checkpoint / "policy") if full_from_checkpoint else cfg.model_name_or_path
    model, tokenizer = load_model(source, device="cpu", dtype="float32")
    if cfg.lora_rank > 0:
        from peft import LoraConfig, PeftModel, get_peft_model

        if checkpoint is not None:
            model = PeftModel.from_pretrained(model, str(checkpoint / "policy"), is_trainable=True)
        else:
            lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM",
                              target_modules=LORA_TARGETS)
            model = get_peft_model(model, lora)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model.to(cfg.device), tokenizer


def make_optimizer(model, cfg: JustRLConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable (float32) parameters; its moments are float32 like them, created now (eagerly).

    Eager state is what AdamW's first step would create (step 0, m = v = 0), so the first step is bit for bit the
    same (tests/test_policy.py). Fused on CUDA.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and all(p.device.type == "cuda" for p in params)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps,
                                  weight_decay=cfg.weight_decay, fused=fused or None)
    init_adamw_state(optimizer)
    return optimizer


def init_adamw_state(optimizer: torch.optim.Optimizer) -> None:
    """Create every parameter's AdamW state (step 0, m = v = 0) as ``AdamW.step`` would on its first call."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if state:
                continue
            # as torch's Adam._init_group: a scalar step tensor, on the device only when fused or capturable
            on_device = bool(group.get("fused") or group.get("capturable"))
            wide = not on_device and torch.get_default_dtype() == torch.float64
            state["step"] = torch.zeros((), dtype=torch.float64 if wide else torch.float32,
                                        device=p.device if on_device else "cpu")
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group.get("amsgrad"):
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)


# ---- CPU threads: how many torch uses for a run on CPU ---------------------------------------------------
# How many CPU threads torch uses for a run: chosen on purpose, from the config field ``cpu_threads``.
#
# Why it matters. torch's default is one OpenMP thread per core it can see. Every matmul of a small model is
# then split across all of them and each split ends at a barrier: when another process holds one of those
# cores, every barrier waits for a time slice, and a run that is mostly tiny kernels (token-by-token sampling)
# slows down by an order of magnitude. On the 2-core machine of issue #12, with other jobs running, torch's
# default 2 threads made one tiny-preset ``generate`` call 25x slower (67.7 s vs 2.7 s with one thread).
#
# The rule (``choose_cpu_threads``):
#   1. ``cpu_threads = N > 0``: exactly N threads (the override; also the way to make float results repeatable
#      across runs, since a matmul's summation order can depend on the thread count).
#   2. ``cpu_threads = 0`` (auto) and ``OMP_NUM_THREADS`` set: that number (the standard OpenMP knob wins).
#   3. auto otherwise: the CPUs this process may run on (``os.sched_getaffinity``) minus the machine's
#      1-minute load average (``os.getloadavg``, i.e. cores other jobs keep busy), rounded, at least 1 and at
#      most the usable CPUs. An idle 8-core box gets 8; a 2-core box with two busy neighbours gets 1.
# Applied once at the start of ``train`` with ``torch.set_num_threads`` when ``device == "cpu"``; GPU runs keep
# torch's default (their CPU threads only feed the GPU).

def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's total."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_cpu_threads(requested: int, *, cpus: int | None = None, load: float | None = None,
                       env: str | None = None) -> tuple[int, str]:
    """(threads, the rule that chose them) for ``cpu_threads = requested``; see the module docstring.

    ``cpus``, ``load`` and ``env`` default to this machine's affinity, 1-minute load average and
    ``$OMP_NUM_THREADS`` (arguments for tests).
    """
    if requested > 0:
        return requested, f"cpu_threads={requested}"
    env = os.environ.get("OMP_NUM_THREADS") if env is None else env
    if env and env.strip().isdigit() and int(env) > 0:
        return int(env), f"OMP_NUM_THREADS={int(env)}"
    cpus = usable_cpus() if cpus is None else cpus
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    # threads = clamp(round(usable CPUs - 1-minute load), 1, usable CPUs)
    threads = max(1, min(cpus, round(cpus - load)))
    return threads, f"auto: {cpus} usable CPUs, load average {load:.1f}"


def apply_cpu_threads(cfg) -> int | None:
    """Set torch's intra-op threads for a CPU run from ``cfg.cpu_threads``; return the number (None on GPU)."""
    if cfg.device != "cpu":
        return None
    threads, _ = choose_cpu_threads(cfg.cpu_threads)
    torch.set_num_threads(threads)
    return threads
