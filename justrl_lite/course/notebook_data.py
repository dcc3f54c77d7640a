"""Benchmark rows wherever a notebook runs: the authors' files, else the hub, else the specimens that ship.

    found = benchmark_rows(["AIME24", "MATH-500"])   # found.rows[name] -> list[MathRow]; one line says from where

For each name (a benchmark of ``BENCHMARKS`` or ``"DAPO-Math-17k"``), the first source that has it:
  1. the authors' file in ``$JUSTRL_DATA_DIR`` (developers and CI: ``../shared/justrl_data``);
  2. its public hub copy (``BENCHMARKS[name].hub_id``; DAPO-Math-17k streamed, first rows only) when the hub
     answers a connection within ``HUB_PROBE_TIMEOUT_S`` (Colab). The probe runs once per call, so an offline
     kernel prints one line instead of a retry loop per dataset;
  3. ``data/specimens/<file>.jsonl``: a few rows per benchmark, written for this course, in the schema and the
     answer format each benchmark stores (AIME24's boxed ground truths, MATH-500's LaTeX, OlympiadBench's
     ``$...$``). Their problems are made up: a count over them describes the formats, not the benchmarks.
Hub copies are not the authors' files (``benchmarks.BENCHMARKS`` docstring: AIME24's answers are not boxed
there, row counts differ); ``found.source[name]`` says which one a notebook got.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from justrl_lite.benchmarks import BENCHMARKS
from justrl_lite.config import PROJECT_ROOT
from justrl_lite.data import DATA_DIR_ENV, DataError, MathRow, load_rows, parse_row

SPECIMENS_DIR = PROJECT_ROOT / "data" / "specimens"
"""The rows that ship: one JSONL per benchmark, named like the authors' files (``AIME24_test.jsonl``)."""

DAPO = "DAPO-Math-17k"
DAPO_LOCAL_FILE = "DAPO-Math-17k_dedup17917_from_MasterVito-SvS.parquet"
"""The authors' de-duplicated, template-free training set, as named in ``../shared/justrl_data``."""
DAPO_HUB_ID = "BytedTsinghua-SIA/DAPO-Math-17k"
"""The hub original (1.79M rows: 17,917 problems x 100, DAPO's instruction kept); ``JustRLConfig.train_data``."""

HUB_PROBE_TIMEOUT_S = 5.0
"""Seconds to wait for a TCP connection to the hub before using the specimens."""

KINDS = {"local": "the authors' files", "hub": "the Hugging Face hub", "specimens": "the specimens in data/specimens"}


@dataclass
class Found:
    """Rows per name, and where each came from (``"local"``, ``"hub"`` or ``"specimens"``)."""

    rows: dict[str, list[MathRow]] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    message: str = ""

    @property
    def real(self) -> bool:
        """True when no name fell back to the specimens."""
        return "specimens" not in self.source.values()


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """False under ``HF_HUB_OFFLINE=1``; else whether the hub's host accepts a TCP connection in time."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _local_file(name: str) -> str:
    return DAPO_LOCAL_FILE if name == DAPO else BENCHMARKS[name].local_file


def specimen_path(name: str) -> Path:
    """``data/specimens/<authors' file name>.jsonl`` (DAPO-Math-17k: ``DAPO-Math-17k_train.jsonl``)."""
    stem = "DAPO-Math-17k_train" if name == DAPO else Path(BENCHMARKS[name].local_file).stem
    return SPECIMENS_DIR / f"{stem}.jsonl"


def _from_hub(name: str, limit: int | None) -> list[MathRow]:
    if name != DAPO:  # the local file is known to be absent here, so load_rows goes to the hub copy
        return load_rows(name, limit=limit, data_dir=os.devnull)
    import datasets  # DAPO's hub copy is 1.79M rows: stream the first ones instead of downloading it all

    stream = datasets.load_dataset(DAPO_HUB_ID, split="train", streaming=True)
    rows = []
    for i, record in enumerate(stream):
        if limit is not None and i >= limit:
            break
        rows.append(parse_row(record, origin=f"dataset {DAPO_HUB_ID}", row=i, default_source="math_dapo"))
    return rows


def benchmark_rows(names: list[str], *, limit: int | None = None, data_dir: str | None = None,
                   hub: bool | None = None, say=print) -> Found:
    """Rows of each name from the first source that has it (module docstring); ``say`` gets one summary line.

    ``data_dir`` defaults to ``$JUSTRL_DATA_DIR``; ``hub=None`` probes the hub (at most once), True/False forces.
    """
    unknown = [n for n in names if n != DAPO and n not in BENCHMARKS]
    if unknown:
        raise DataError(f"unknown benchmark(s) {unknown}: pick from {[*BENCHMARKS, DAPO]}")
    folder = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV, "")
    found, errors = Found(), []
    for name in names:
        local = Path(folder) / _local_file(name) if folder else None
        if local is not None and local.is_file():
            found.rows[name], found.source[name] = load_rows(str(local), limit=limit), "local"
            continue
        if hub is None:
            hub = hub_reachable()
        if hub:
            try:
                found.rows[name], found.source[name] = _from_hub(name, limit), "hub"
                continue
            except Exception as e:  # network, auth and missing-dataset errors come in many types
                errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
        found.rows[name], found.source[name] = load_rows(str(specimen_path(name)), limit=limit), "specimens"
    found.message = _summary(found, folder, hub, errors)
    say(found.message)
    return found


def _summary(found: Found, folder: str, hub: bool | None, errors: list[str]) -> str:
    parts = []
    for kind, label in KINDS.items():
        got = [f"{n} ({len(found.rows[n])})" for n in found.rows if found.source[n] == kind]
        if got:
            parts.append(f"{', '.join(got)} from {label}" + (f" ({folder})" if kind == "local" else ""))
    line = "rows: " + "; ".join(parts)
    if not found.real:
        why = (f"no ${DATA_DIR_ENV} folder holding them" + (f" ({folder})" if folder else "") + " and "
               + ("the hub failed: " + " | ".join(errors) if errors else "the Hugging Face hub is not reachable"))
        line += (f".\nnote: {why}. The specimens show each benchmark's stored format with made-up problems: "
                 f"what the cells count over them describes the formats, not the benchmarks.")
    return line


# ---- notebook 07's GPU demo: opt-in, and a dtype the GPU has ----------------------------------------

GPU_DEMO_ENV = "JUSTRL_GPU_DEMO"
"""Set to 1 to run notebook 07's GPU cells (they download the 1.5B weights, several GB, and take minutes)."""


def gpu_demo_plan(environ: dict[str, str] | None = None) -> tuple[bool, str]:
    """(run, dtype or the reason it does not run) for notebook 07's GPU cells.

    Runs only when ``$JUSTRL_GPU_DEMO`` is 1 and CUDA is there; the dtype is bfloat16 where the GPU supports it
    and float16 otherwise (a Colab T4 has no bfloat16)."""
    import torch

    environ = os.environ if environ is None else environ
    if environ.get(GPU_DEMO_ENV, "").strip() not in ("1", "true", "yes"):
        return False, (f"skipped (opt-in): set {GPU_DEMO_ENV}=1 before starting Jupyter to run it; it downloads "
                       "the 1.5B weights (several GB)")
    if not torch.cuda.is_available():
        return False, "skipped: no CUDA GPU"
    return True, "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
