"""The estimator's reports: the ``--dry-run`` breakdown and the README's per-preset hardware table.

Each labels which trainer it describes (``estimate.ENGINES``): the native one (one GPU, vLLM colocated) or
verl (FSDP over N GPUs, its numerics modelled as in ``estimate.py``, item 4). The formulas live in
``estimate.py``; this module only lays their numbers out:

    per step = training (model FLOPs / (N x peak x MFU)) + rollout (max(throughput bound, latency floor))

Choices:
  1. Every time figure is printed under a line saying which of its inputs are assumed and which fitted.
  2. The README rows name the command that prints them (``--dry-run`` natively, ``--engine verl --dry-run``).
"""

from __future__ import annotations

from justrl_lite.config import JustRLConfig
from justrl_lite.scale.estimate import (
    PAPER_HARDWARE,
    Assumptions,
    ModelShape,
    advice,
    format_gb,
    memory_estimate,
    model_shape,
    time_estimate,
)

TRAINERS = {
    "native": "the native trainer (one GPU, vLLM colocated)",
    "verl": "verl (FSDP over the GPUs; its bf16 numerics and (tokens x vocab) logits modelled)",
}


def _duration(s: float) -> str:
    return (
        f"{s / 86400:.1f} days"
        if s >= 2 * 86400
        else f"{s / 3600:.1f} h"
        if s >= 3600
        else f"{s / 60:.1f} min"
    )


def estimate_table(
    cfg: JustRLConfig,
    gpus: int,
    gpu_memory_gb: float,
    a: Assumptions | None = None,
    shape: ModelShape | None = None,
    engine: str = "native",
) -> str:
    """The markdown report ``full_run --dry-run`` (engine native) or ``--engine verl --dry-run`` prints."""
    a = a or Assumptions()
    shape, source = (shape, "given") if shape else model_shape(cfg.model_name_or_path)
    m = memory_estimate(cfg, shape, gpus, gpu_memory_gb, a, engine)
    t = time_estimate(cfg, shape, gpus, a)
    lines = [
        f"Trainer: {TRAINERS[engine]}. Model: {shape.parameters:,} parameters (shape: {source}). Hardware: "
        f"{gpus} x {gpu_memory_gb:g} GB GPUs. Formulas: `justrl_lite/scale/estimate.py`.",
        "",
        "| per GPU | rollout (vLLM awake) | training (vLLM asleep) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {format_gb(r) if r else '-'} | {format_gb(tr) if tr else '-'} |"
        for name, (r, tr) in m.rows.items()
    ]
    total, rollout, training = (format_gb(x) for x in (m.gpu_memory, m.rollout, m.training))
    lines.append(f"| **total** of {total} | **{rollout}** | **{training}** |")
    if cfg.rollout_engine == "vllm":
        lines += [
            "",
            f"vLLM's share ({cfg.rollout_gpu_memory_utilization:g} x {gpu_memory_gb:g} GB = "
            f"{format_gb(m.vllm_share)}): bf16 weights {format_gb(2 * shape.parameters)}, KV cache "
            f"{m.kv_tokens:,} tokens ({shape.kv_bytes_per_token(2):,} B/token): "
            f"{m.kv_tokens // m.sequence_tokens} full sequences of "
            f"{m.sequence_tokens:,} tokens.",
        ]
    verdict = "FITS" if m.fits else "DOES NOT FIT"
    tips = advice(cfg, shape, gpus, gpu_memory_gb, a, engine)
    lines += ["", f"**{verdict}** on {gpus} x {gpu_memory_gb:g} GB ({engine})."] + [
        f"- {tip}" for tip in tips
    ]
    if not m.fits and engine == "native":
        lines.append(
            "- or train with verl over several GPUs: `python -m justrl_lite.full_run --engine verl "
            "--nnodes 4 --gpus-per-node 8 --dry-run` (the paper's layout)"
        )
    val = (
        f"{_duration(t.val_s)} per validation x {t.validations}"
        if t.val_s
        else "validation time unknown (val_data size not known)"
    )
    lines += [
        "",
        f"Time (estimates: MFU {a.mfu:g} of {a.peak_tflops:g} TFLOP/s assumed, model FLOPs without "
        f"recompute; {a.decode_tokens_per_s:,.0f} decode tokens/s per GPU fitted to the paper's ~15 days; "
        f"{a.decode_latency_s * 1e3:g} ms per token assumed; mean lengths {a.mean_length_fraction:g} x "
        f"caps):",
        f"- per step: {_duration(t.step_s)} = training {_duration(t.train_s)} "
        f"({t.train_flops_per_step:.2e} FLOPs on {t.tokens_per_step:,.0f} tokens) + rollout "
        f"{_duration(t.rollout_s)}",
        f"- {cfg.total_steps:,} steps: {_duration(t.total_s)} ({val}); {t.gpu_hours:,.0f} GPU-hours",
    ]
    if cfg.device == "cpu":
        lines.append(
            "- device is cpu: these GPU figures do not apply; memory above is host RAM at GPU dtypes"
        )
    return "\n".join(lines)


README_ROWS: tuple[tuple[str, int, str], ...] = (
    ("paper", 32, "verl"),
    ("paper", 1, "native"),
    ("one_gpu", 1, "native"),
    ("tiny", 1, "native"),
)
"""(preset, GPUs, trainer) rows of the README's hardware table, on 80 GB GPUs (``tiny`` runs on a CPU)."""


def hardware_table(
    rows: tuple[tuple[str, int, str], ...] = README_ROWS,
    gpu_memory_gb: float = PAPER_HARDWARE[1],
    a: Assumptions | None = None,
) -> str:
    """Markdown table per (preset, GPUs, trainer): memory per GPU in each phase, fits, time per step and run,
    the command that prints the row's breakdown."""
    a = a or Assumptions()
    from justrl_lite.config_presets import PRESETS

    out = [
        "| preset | what it is for | trainer, GPUs | memory per GPU: rollout / training | time per step "
        "| whole run | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, gpus, engine in rows:
        cfg = JustRLConfig.preset(name)
        shape = model_shape(cfg.model_name_or_path)[0]
        m = memory_estimate(cfg, shape, gpus, gpu_memory_gb, a, engine)
        t = time_estimate(cfg, shape, gpus, a)
        layout = f" --nnodes {max(1, gpus // 8)} --gpus-per-node {min(8, gpus)}" if engine == "verl" else ""
        verl = f" --engine verl{layout}" if engine == "verl" else ""
        command = f"`python -m justrl_lite.full_run --preset {name}{verl} --dry-run`"
        if cfg.device == "cpu":  # the GPU time assumptions do not apply; its time is measured (README)
            out.append(
                f"| `{name}` | {PRESETS[name]} | none (CPU) | {format_gb(m.training)} of RAM (tensors) | "
                f"measured: `data/tiny_run` | measured: `data/tiny_run` ({cfg.total_steps:,} steps) | "
                f"{command} |"
            )
            continue
        fits = "fits" if m.fits else "**does not fit**"
        out.append(
            f"| `{name}` | {PRESETS[name]} | {engine}, {gpus} x {gpu_memory_gb:g} GB | "
            f"{format_gb(m.rollout)} / {format_gb(m.training)}: {fits} | {_duration(t.step_s)} | "
            f"{_duration(t.total_s)} "
            f"({cfg.total_steps:,} steps, {t.gpu_hours:,.0f} GPU-hours) | {command} |"
        )
    return "\n".join(out)
