"""How many CPU threads torch uses for a run: chosen on purpose, from the config field ``cpu_threads``.

Why it matters. torch's default is one OpenMP thread per core it can see. Every matmul of a small model is
then split across all of them and each split ends at a barrier: when another process holds one of those
cores, every barrier waits for a time slice, and a run that is mostly tiny kernels (token-by-token sampling)
slows down by an order of magnitude. On the 2-core machine of issue #12, with other jobs running, torch's
default 2 threads made one tiny-preset ``generate`` call 25x slower (67.7 s vs 2.7 s with one thread).

The rule (``choose_cpu_threads``):
  1. ``cpu_threads = N > 0``: exactly N threads (the override; also the way to make float results repeatable
     across runs, since a matmul's summation order can depend on the thread count).
  2. ``cpu_threads = 0`` (auto) and ``OMP_NUM_THREADS`` set: that number (the standard OpenMP knob wins).
  3. auto otherwise: the CPUs this process may run on (``os.sched_getaffinity``) minus the machine's
     1-minute load average (``os.getloadavg``, i.e. cores other jobs keep busy), rounded, at least 1 and at
     most the usable CPUs. An idle 8-core box gets 8; a 2-core box with two busy neighbours gets 1.
Applied once at the start of ``train`` with ``torch.set_num_threads`` when ``device == "cpu"``; GPU runs keep
torch's default (their CPU threads only feed the GPU).
"""

from __future__ import annotations

import os

import torch


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
