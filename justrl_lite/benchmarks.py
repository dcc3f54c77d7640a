"""The nine benchmarks of the paper's results table and the table itself: each fact written once.

    BENCHMARKS[name]      = where the problems live and N, the samples per problem of avg@N
    PAPER_RESULTS[model]  = the paper's pass@1 (%) per benchmark and its average, graded rule + judge

The paper's choices recorded here:
  1. Nine benchmarks, in the results table's column order: AIME24, AIME25, AMC23, MATH-500, Minerva,
     OlympiadBench, HMMT25, BRUMO25, CMIMC25.
  2. N = 32 for AIME24, AIME25, AMC23, HMMT25, BRUMO25, CMIMC25; N = 4 for MATH-500, Minerva, OlympiadBench.
  3. The paper's scores were graded by the authors' rule grader and, for what it rejected, the
     CompassVerifier-3B judge (thunlp/JustRL ``evals/grade.py``): compare them with judge-assisted scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---- the nine benchmarks ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkSpec:
    """One evaluation benchmark: where it lives and how many samples per problem the paper averages."""

    name: str
    """Column name in the paper's results table."""

    local_file: str
    """File name in the authors' data layout (as in ``../shared/justrl_data``)."""

    hub_id: str
    """A public Hugging Face copy, used when no local file is found (see ``BENCHMARKS`` for provenance)."""

    hub_split: str
    """Split of ``hub_id`` holding the problems."""

    n_samples: int
    """N in avg@N: pass@1 averaged over N samples per problem."""

    n_rows: int
    """Problems in the authors' file."""


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("AIME24", "AIME24_test.parquet", "HuggingFaceH4/aime_2024", "train", 32, 30),
        BenchmarkSpec("AIME25", "AIME25_test.parquet", "MathArena/aime_2025", "train", 32, 30),
        BenchmarkSpec("AMC23", "AMC23_test.parquet", "math-ai/amc23", "test", 32, 40),
        BenchmarkSpec("MATH-500", "MATH-500_test.parquet", "HuggingFaceH4/MATH-500", "test", 4, 500),
        BenchmarkSpec("Minerva", "Minerva_test.parquet", "math-ai/minervamath", "test", 4, 272),
        BenchmarkSpec("OlympiadBench", "Olympiad-Bench_test.parquet", "math-ai/olympiadbench", "test", 4, 674),
        BenchmarkSpec("HMMT25", "HMMT25_test.parquet", "MathArena/hmmt_feb_2025", "train", 32, 30),
        BenchmarkSpec("BRUMO25", "BRUMO25_test.parquet", "MathArena/brumo_2025", "train", 32, 30),
        BenchmarkSpec("CMIMC25", "CMIMC25_test.parquet", "MathArena/cmimc_2025", "train", 32, 40),
    )
}
"""The nine benchmarks in the paper's column order.

Provenance of ``hub_id``: the authors ship their evaluation files inside their GitHub repository
(thunlp/JustRL ``data/<name>/test.parquet``, read by ``evals/gen_vllm.py``), not on the hub. The ids here are
well-known public copies of the same problems, chosen by us: MathArena's for the 2025 contests (the same
``problem_idx, problem, answer`` schema as the authors' HMMT25/BRUMO25/CMIMC25 files), HuggingFaceH4's for
AIME24 and MATH-500, math-ai's for AMC23, Minerva and OlympiadBench. They are not byte-identical to the
authors' files (e.g. the public OlympiadBench copy has 675 rows, the authors' 674; AIME24 answers are not
boxed there); for exact reproduction point ``data_dir`` / ``JUSTRL_DATA_DIR`` at the authors' files."""


def _key(name: str) -> str:
    return re.sub(r"[-_ ]", "", name).lower()


def find_benchmark(name: str) -> BenchmarkSpec | None:
    """The benchmark called ``name`` (case, ``-`` and ``_`` ignored: ``"olympiad-bench"``, ``"math500"``), or None."""
    for spec in BENCHMARKS.values():
        if _key(name) in (_key(spec.name), _key(Path(spec.local_file).stem.removesuffix("_test"))):
            return spec
    return None



# ---- the paper's results table ---------------------------------------------------------------------------

COMPARE_CHOICES = ("paper-deepseek", "paper-nemotron", "paper-deepseek-base", "paper-nemotron-base")

# Source: docs/recipe.md, section "Reported results" (the paper's tables, arXiv 2512.16649, also in
# the README of github thunlp/JustRL). pass@1 in %, avg@32 / avg@4 as in item 2; "avg" is the paper's own.
PAPER_RESULTS: dict[str, dict[str, Any]] = {
    "paper-deepseek-base": {
        "label": "DeepSeek-R1-Distill-Qwen-1.5B (paper)",
        "scores": {"AIME24": 29.90, "AIME25": 22.40, "AMC23": 63.82, "MATH-500": 84.90, "Minerva": 34.65,
                   "OlympiadBench": 45.95, "HMMT25": 13.44, "BRUMO25": 30.94, "CMIMC25": 12.89},
        "avg": 37.65,
    },
    "paper-deepseek": {
        "label": "JustRL-DeepSeek-1.5B (paper)",
        "scores": {"AIME24": 52.60, "AIME25": 38.75, "AMC23": 91.02, "MATH-500": 91.65, "Minerva": 51.47,
                   "OlympiadBench": 67.99, "HMMT25": 21.98, "BRUMO25": 52.71, "CMIMC25": 25.63},
        "avg": 54.87,
    },
    "paper-nemotron-base": {
        "label": "OpenMath-Nemotron-1.5B (paper)",
        "scores": {"AIME24": 58.75, "AIME25": 48.44, "AMC23": 90.55, "MATH-500": 92.40, "Minerva": 26.93,
                   "OlympiadBench": 71.70, "HMMT25": 30.10, "BRUMO25": 61.67, "CMIMC25": 30.08},
        "avg": 56.74,
    },
    "paper-nemotron": {
        "label": "JustRL-Nemotron-1.5B (paper)",
        "scores": {"AIME24": 69.69, "AIME25": 62.92, "AMC23": 96.02, "MATH-500": 94.15, "Minerva": 30.24,
                   "OlympiadBench": 76.59, "HMMT25": 40.63, "BRUMO25": 66.88, "CMIMC25": 41.72},
        "avg": 64.32,
    },
}
