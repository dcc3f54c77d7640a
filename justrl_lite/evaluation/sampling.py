"""The samples of the evaluation protocol: which problems, which seeds, how they are drawn and graded, appended.

    sample j of problem p = one response to p's prompt drawn with seed ``base_seed + j`` (j < N of avg@N),
                            graded at once and appended to ``<benchmark>.jsonl`` (``evaluation/files.py``)

``resolve_benchmarks`` turns ``--benchmarks`` ("all", names, local files) into sources with their N;
``generate_benchmark`` draws every (problem, seed) missing from a results file, so an interrupted run resumes
where it stopped. The protocol's numbers (items 3 and 5 of ``evaluate.py``'s docstring) are the defaults of
``SamplingSettings``; ``evaluate.evaluate`` runs all of it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from justrl_lite.benchmarks import BENCHMARKS, find_benchmark
from justrl_lite.config import EVAL_PROMPT_SUFFIX, resolve_path
from justrl_lite.data import MathRow
from justrl_lite.evaluation.files import EvaluationError, append_records, missing_samples, result_record
from justrl_lite.grading.grade import EVAL_GRADER, grade_many
from justrl_lite.grading.pool import DEFAULT_TIMEOUT, GraderPool
from justrl_lite.prompts import build_messages, encode_prompts

# ---- the protocol's numbers -----------------------------------------------------------------------------

EVAL_TEMPERATURE = 0.7
EVAL_TOP_P = 0.9
EVAL_MAX_NEW_TOKENS = 31744
DEFAULT_BASE_SEED = 0
"""Sample j of every problem uses seed ``base_seed + j``."""
OTHER_SOURCE_N_SAMPLES = 4
"""Samples per problem for a source that is not one of the nine benchmarks (e.g. the toy held-out split)."""
GRADE_TIMEOUT = DEFAULT_TIMEOUT
"""Seconds one SymPy equivalence check may take (``grader_pool.DEFAULT_TIMEOUT``); past it, wrong."""

# ---- what to evaluate -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkSource:
    """One thing to evaluate on: its name (table column and file name), where its rows come from, and N."""

    name: str
    source: str
    n_samples: int


def resolve_benchmarks(spec: str | Sequence[str], n_samples: int | None = None) -> list[BenchmarkSource]:
    """``"all"``, a comma list or a list of benchmark names / local files (``NAME=PATH`` names a file).

    Names ignore case, ``-`` and ``_`` (``math500``, ``olympiad-bench``). N is the paper's for the nine
    benchmarks, ``OTHER_SOURCE_N_SAMPLES`` for anything else, and ``n_samples`` for all when given.
    """
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p and p.strip()]
    if not parts:
        raise EvaluationError("no benchmarks given: pass --benchmarks all, or names such as AIME24,MATH-500")
    if n_samples is not None and n_samples < 1:
        raise EvaluationError(f"--n-samples must be >= 1, got {n_samples}")
    if any(p.lower() == "all" for p in parts):
        parts = list(BENCHMARKS)
    sources = [_resolve_one(part, n_samples) for part in parts]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise EvaluationError(f"benchmark names repeat in {names}: give files distinct names with NAME=PATH")
    return sources


def _resolve_one(part: str, n_samples: int | None) -> BenchmarkSource:
    name, _, where = part.partition("=") if "=" in part else ("", "", part)
    spec = None if name else find_benchmark(where)
    if spec is not None:
        return BenchmarkSource(spec.name, spec.name, n_samples or spec.n_samples)
    local = Path(resolve_path(where))
    if local.is_file() or "/" in where:  # a local file, or a hub dataset id that load_rows will try
        return BenchmarkSource(name or _file_label(Path(where)), str(local) if local.is_file() else where,
                               n_samples or OTHER_SOURCE_N_SAMPLES)
    raise EvaluationError(f"unknown benchmark {part!r}: choose from {', '.join(BENCHMARKS)} or 'all', or "
                          f"pass a local .parquet/.jsonl file (optionally as NAME=PATH)")


def _file_label(path: Path) -> str:
    """``data/toy/test.jsonl`` -> ``toy-test`` (a bare split name says little); ``foo.parquet`` -> ``foo``."""
    if path.stem.lower() in ("test", "train", "val", "validation", "eval") and path.parent.name:
        return f"{path.parent.name}-{path.stem}"
    return path.stem


def sample_seeds(base_seed: int, n_samples: int) -> list[int]:
    """Seed of sample j (0-based) of every problem: ``base_seed + j``."""
    return [base_seed + j for j in range(n_samples)]


# ---- grading --------------------------------------------------------------------------------------------

def rule_grade(responses: Sequence[str], answers: Sequence[str], *, timeout: float = GRADE_TIMEOUT,
               pool: GraderPool | None = None, grader: str = EVAL_GRADER) -> list[bool]:
    """``grading.grade`` of each pair by ``grader``, through ``grade_many``: string rules in this process, SymPy
    checks spread over the grader's worker subprocesses, each bounded by ``timeout`` seconds."""
    return [bool(v) for v in grade_many(list(responses), list(answers), timeout, pool=pool, grader=grader)]


# ---- generation -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SamplingSettings:
    """How samples are drawn; the defaults are the paper's protocol (items 3-5 of ``evaluate.py``'s docstring)."""

    temperature: float = EVAL_TEMPERATURE
    top_p: float = EVAL_TOP_P
    max_new_tokens: int = EVAL_MAX_NEW_TOKENS
    base_seed: int = DEFAULT_BASE_SEED
    batch_size: int | None = None
    """Prompts per ``generate`` call (all with one seed); results are saved after each call. None = all."""
    prompt_suffix: str = EVAL_PROMPT_SUFFIX

    def check(self) -> None:
        if not self.temperature > 0:
            raise EvaluationError(f"--temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise EvaluationError(f"--top-p must be in (0, 1], got {self.top_p}")
        if not (isinstance(self.max_new_tokens, int) and self.max_new_tokens > 0):
            raise EvaluationError(f"--max-new-tokens must be a positive integer, got {self.max_new_tokens}")
        if self.batch_size is not None and self.batch_size < 1:
            raise EvaluationError(f"--batch-size must be >= 1, got {self.batch_size}")


def generate_benchmark(engine, tokenizer, rows: Sequence[MathRow], seeds: Sequence[int], path: Path,
                       sampling: SamplingSettings, *, grade_timeout: float = GRADE_TIMEOUT,
                       grade_pool: GraderPool | None = None, grader: str = EVAL_GRADER, desc: str = "",
                       progress: bool = True) -> int:
    """Sample, grade and append every (problem, seed) missing from ``path``; return how many were drawn.

    A problem is its row number (``example_id``); sample j uses ``seeds[j]``. Generation goes seed by seed
    (every problem with the first seed, then the second, ...), ``sampling.batch_size`` prompts per call.
    """
    prompts = [build_messages(row, sampling.prompt_suffix)[-1]["content"] for row in rows]
    todo = missing_samples(path, prompts, seeds)
    total = sum(len(ids) for _, ids in todo)
    if total == 0:
        return 0
    # no length filter at evaluation: every problem is asked
    encoded = encode_prompts(tokenizer, list(rows), sampling.prompt_suffix, max_prompt_length=sys.maxsize)
    prompt_ids = encoded.prompt_ids
    step = sampling.batch_size or len(rows)
    with path.open("a", encoding="utf-8") as fh, \
            tqdm(total=total, desc=desc, unit="sample", disable=not progress) as bar:
        for seed, ids in todo:
            for start in range(0, len(ids), step):
                chunk = ids[start:start + step]
                batch = engine.generate([prompt_ids[i] for i in chunk], 1, temperature=sampling.temperature,
                                        top_p=sampling.top_p, top_k=-1,
                                        max_new_tokens=sampling.max_new_tokens, seed=seed)
                correct = rule_grade(batch.texts, [rows[i].ground_truth for i in chunk],
                                     timeout=grade_timeout, pool=grade_pool, grader=grader)
                lengths = batch.response_mask.sum(-1).tolist()  # (B,) generated tokens, EOS included
                truncated = batch.truncated.tolist()  # (B,)
                append_records(fh, [result_record(i, rows[i], prompts[i], seed, batch.texts[k], correct[k],
                                                  bool(truncated[k]), int(lengths[k]))
                                    for k, i in enumerate(chunk)])
                bar.update(len(chunk))
    return total
