"""Grade results files again, without generating: ours or the authors' released ones, by both rule graders.

    for every sample:  paper_correct = grade(response, answer, grader="paper")
                       math_verify_correct = grade(response, answer, grader="math-verify")
                       correct = <the chosen grader's verdict>  or  judge (when one is asked)
    per benchmark:     avg@N by each grader, and the samples on which the two graders disagree

The authors' files (``justrl_eval_outputs/<model>/aime24_t0.7_p0.9_n32-MNT31744.jsonl``, thunlp/JustRL
``evals/gen_vllm.py``) hold five fields a line (example_id, prompt, answer, seed, response); the benchmark is read
from the file name. The sources are never changed: graded copies and the summary go to another folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from justrl_lite.benchmarks import find_benchmark
from justrl_lite.config_checks import GRADERS
from justrl_lite.evaluation.files import (
    GRADABLE_FIELDS,
    RESULTS_SUFFIX,
    EvaluationError,
    read_results,
    write_records,
)
from justrl_lite.evaluation.judge import JudgeFn, apply_judge, choose_judge
from justrl_lite.evaluation.scores import (
    GRADER_FIELDS,
    build_summary,
    check_grading,
    summarize_records,
    write_summary,
)
from justrl_lite.grading.grade import EVAL_GRADER, grade_many
from justrl_lite.grading.pool import DEFAULT_TIMEOUT, GraderPool

GRADE_CHUNK = 256
"""Samples graded per call (the progress bar moves per chunk)."""


def benchmark_of_file(path: Path) -> str:
    """Benchmark of a results file: ours (``AIME24.jsonl``) or the authors' (``aime24_t0.7_p0.9_n32-...``)."""
    spec = find_benchmark(path.stem) or find_benchmark(path.stem.split("_")[0])
    return spec.name if spec else path.stem


def regrade(results_dir: str | Path, out_dir: str | Path | None = None, *,
            grade_timeout: float = DEFAULT_TIMEOUT, grade_pool: GraderPool | None = None,
            grader: str = EVAL_GRADER, judge: str | JudgeFn | None = "auto", compare: str | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Grade every ``*.jsonl`` in ``results_dir`` again (ours or the authors' format), without generating.

    Every sample is graded by both rule graders (``paper_correct``, ``math_verify_correct``); ``correct`` is
    ``grader``'s verdict, or-ed with the judge's when there is one (``judge`` as in ``evaluate``). Writes the
    graded files (same names; old judge verdicts dropped) and the summary, which counts per benchmark the
    samples the two graders disagree on, to ``out_dir`` (default ``<results_dir>/regraded``).
    """
    src = Path(results_dir)
    files = sorted(src.glob(f"*{RESULTS_SUFFIX}")) if src.is_dir() else []
    if not files:
        raise EvaluationError(f"no *.jsonl results files in {src}: pass a folder written by an evaluation, "
                              f"or the authors' justrl_eval_outputs/<model> folder")
    check_grading(grader, compare)
    by_name: dict[str, Path] = {}
    for f in files:
        name = benchmark_of_file(f)
        if name in by_name:
            raise EvaluationError(f"{by_name[name].name} and {f.name} both hold results for {name}; keep one")
        by_name[name] = f
    out = Path(out_dir) if out_dir is not None else src / "regraded"
    out.mkdir(parents=True, exist_ok=True)
    judge = choose_judge(judge, compare)
    per_benchmark: dict[str, dict[str, Any]] = {}
    for name, f in by_name.items():
        records = read_results(f, required=GRADABLE_FIELDS, repair=False)
        if not records:
            raise EvaluationError(f"{f} holds no samples; delete it, or run the evaluation again")
        verdicts: dict[str, list[bool]] = {g: [] for g in GRADERS}
        starts = range(0, len(records), GRADE_CHUNK)
        for start in tqdm(starts, desc=f"grading {name}", unit="batch", disable=not progress):
            chunk = records[start:start + GRADE_CHUNK]
            responses, answers = [str(r["response"]) for r in chunk], [str(r["answer"]) for r in chunk]
            for g in GRADERS:
                verdicts[g] += grade_many(responses, answers, grade_timeout, pool=grade_pool, grader=g)
        for k, r in enumerate(records):
            r.pop("rule_correct", None)
            r.pop("judge_correct", None)
            for g in GRADERS:
                r[GRADER_FIELDS[g]] = verdicts[g][k]
            r["correct"] = verdicts[grader][k]
        if judge is not None:
            apply_judge(records, judge)
        write_records(out / f.name, records)
        per_benchmark[name] = summarize_records(records)
    summary = build_summary(per_benchmark, model=f"regraded {src}", grader=grader, judged=judge is not None,
                            settings={"regraded_from": str(src)}, compare=compare)
    write_summary(out, summary)
    return summary


if __name__ == "__main__":  # regrading is a mode of the evaluate command, not a command of its own
    import sys

    sys.exit("python -m justrl_lite.evaluation.regrade is not a command: regrade saved samples with\n"
             "  python -m justrl_lite.evaluate --regrade DIR [--out OUT] [--grader paper|math-verify] [--compare ...]\n"
             "(`python -m justrl_lite.evaluate --help` lists every option)")
