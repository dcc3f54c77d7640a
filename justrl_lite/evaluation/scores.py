"""Summaries of an evaluation: avg@N per benchmark, the paper's table layout, every column labelled by its grading.

    pass@1(p)        = (correct samples of problem p) / (samples of p)
    score(benchmark) = 100 * mean over problems of pass@1(p)                  (avg@N)
    average          = unweighted mean of the benchmark scores                (the paper's "avg")

Grading is named on every row, so that rule-only and judge-assisted scores are never mixed silently:
  1. "rule-only (<grader> grader)": the rule grader's verdicts (``paper`` or ``math-verify``);
  2. "rule + judge": the rule grader, and the CompassVerifier judge for what it rejected (the paper's protocol);
  3. the paper's own rows (``benchmarks.PAPER_RESULTS``) are rule + judge.
After a regrade the per-benchmark table also shows both rule graders and how many samples they disagree on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from justrl_lite.benchmarks import BENCHMARKS, COMPARE_CHOICES, PAPER_RESULTS
from justrl_lite.evaluation.files import EvaluationError
from justrl_lite.grading.grade import check_grader

GRADER_FIELDS = {"paper": "paper_correct", "math-verify": "math_verify_correct"}
"""Per-sample field holding each rule grader's verdict (written by a regrade)."""


def _avg_at_n(by_problem: dict[str, list[dict]], verdict) -> float:
    # score = 100 * mean_p (correct samples of p / samples of p)
    per_problem = [sum(bool(verdict(r)) for r in rs) / len(rs) for rs in by_problem.values()]
    return 100.0 * sum(per_problem) / len(per_problem)


def summarize_records(records: Sequence[dict]) -> dict[str, Any]:
    """avg@N of one benchmark: pass@1 of each problem over its samples, then the mean over problems (in %)."""
    by_problem: dict[str, list[dict]] = {}
    for r in records:
        by_problem.setdefault(str(r["example_id"]), []).append(r)
    if not by_problem:
        raise EvaluationError("no samples to summarise")
    per_problem = [sum(bool(r["correct"]) for r in rs) / len(rs) for rs in by_problem.values()]
    counts = [len(rs) for rs in by_problem.values()]
    summary: dict[str, Any] = {
        "pass@1": _avg_at_n(by_problem, lambda r: r["correct"]),
        "problems": len(by_problem),
        "samples": len(records),
        "samples_per_problem": max(counts),
        "complete": min(counts) == max(counts),
        "solved_by_all": sum(p == 1.0 for p in per_problem),
        "solved_by_none": sum(p == 0.0 for p in per_problem),
    }
    lengths = [r["response_length"] for r in records if isinstance(r.get("response_length"), int)]
    if lengths:
        summary["mean_response_length"] = sum(lengths) / len(lengths)
    if any("finish_reason" in r for r in records):
        truncated = sum(r.get("finish_reason") == "length" for r in records)
        summary["truncated_pct"] = 100.0 * truncated / len(records)
    if any("rule_correct" in r for r in records):
        summary["pass@1_rule"] = _avg_at_n(by_problem, lambda r: r.get("rule_correct", r["correct"]))
        summary["judge_rescued"] = sum(bool(r.get("judge_correct")) for r in records)
    if all(field in r for r in records for field in GRADER_FIELDS.values()):
        for grader, field in GRADER_FIELDS.items():
            summary[f"pass@1_{grader}"] = _avg_at_n(by_problem, lambda r, f=field: r[f])
        summary["grader_disagreements"] = sum(bool(r["paper_correct"]) != bool(r["math_verify_correct"])
                                              for r in records)
    return summary


def build_summary(per_benchmark: dict[str, dict[str, Any]], *, model: str, grader: str = "paper",
                  judged: bool = False, settings: dict[str, Any] | None = None,
                  compare: str | None = None) -> dict[str, Any]:
    """The whole table: benchmarks in the paper's column order (others after), the averages, the comparison."""
    order = [b for b in BENCHMARKS if b in per_benchmark] + [b for b in per_benchmark if b not in BENCHMARKS]
    scores = [per_benchmark[b]["pass@1"] for b in order]
    summary: dict[str, Any] = {
        "model": model,
        "grader": grader,
        "judge": judged,
        "grading": f"rule + judge ({grader} grader, {_JUDGE_NAME})" if judged else f"rule-only ({grader} grader)",
        "settings": settings or {},
        "benchmarks": {b: per_benchmark[b] for b in order},
        "average": sum(scores) / len(scores),
    }
    if judged and all("pass@1_rule" in per_benchmark[b] for b in order):
        summary["average_rule"] = sum(per_benchmark[b]["pass@1_rule"] for b in order) / len(order)
    if compare is not None:
        summary["compare"] = {"name": compare, "grading": f"rule + judge (paper grader, {_JUDGE_NAME})",
                              **paper_results(compare)}
    return summary


_JUDGE_NAME = "CompassVerifier-3B"


def paper_results(name: str) -> dict[str, Any]:
    if name not in PAPER_RESULTS:
        raise EvaluationError(f"unknown --compare {name!r}; choose from {', '.join(COMPARE_CHOICES)}")
    return PAPER_RESULTS[name]


def _row(label: str, cells: list[str], avg: str) -> str:
    return f"| {label} | " + " | ".join(cells) + f" | {avg} |"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The paper's table (its column order, "avg" last; one row per grading) and a per-benchmark detail table."""
    benches = summary["benchmarks"]
    names = list(benches)
    grading = summary.get("grading", "rule-only")
    head = [f"{b} (@{benches[b]['samples_per_problem']})" for b in names]
    table = ["| model | grading | " + " | ".join(head) + " | avg |", "|---" * (len(names) + 3) + "|"]
    if "average_rule" in summary:
        rule = f"rule-only ({summary.get('grader', 'paper')} grader)"
        table.append(_row(f"{summary['model']} | {rule}", [f"{benches[b]['pass@1_rule']:.2f}" for b in names],
                          f"{summary['average_rule']:.2f}"))
    table.append(_row(f"{summary['model']} | {grading}", [f"{benches[b]['pass@1']:.2f}" for b in names],
                      f"{summary['average']:.2f}"))
    notes = []
    if "compare" in summary:
        paper = summary["compare"]
        shown = [paper["scores"][b] for b in names if b in paper["scores"]]
        if set(names) == set(paper["scores"]):
            avg = f"{paper['avg']:.2f}"
        elif shown:
            avg = f"{sum(shown) / len(shown):.2f}*"
            notes.append(f"\\* the paper's scores averaged over the {len(shown)} benchmarks shown (its "
                         f"average over all nine: {paper['avg']:.2f}).")
        else:
            avg = "-"
        cells = [f"{paper['scores'][b]:.2f}" if b in paper["scores"] else "-" for b in names]
        table.append(_row(f"{paper['label']} | {paper['grading']}", cells, avg))
        if not summary.get("judge"):
            notes.append("Not like for like: the paper's row is rule + judge, ours is rule-only (the judge can only "
                         "raise a score); run with --judge on a CUDA GPU with vLLM for a judge-assisted row.")
    detail = ["| benchmark | problems | samples/problem | pass@1 % | rule-only % | solved by all "
              "| solved by none | truncated % | mean length |", "|---" * 9 + "|"]
    for b in names:
        s = benches[b]
        per = str(s["samples_per_problem"]) + ("" if s["complete"] else " (incomplete)")
        rule = f"{s['pass@1_rule']:.2f}" if "pass@1_rule" in s else "-"
        trunc = f"{s['truncated_pct']:.1f}" if "truncated_pct" in s else "-"
        length = f"{s['mean_response_length']:.0f}" if "mean_response_length" in s else "-"
        detail.append(f"| {b} | {s['problems']} | {per} | {s['pass@1']:.2f} | {rule} | {s['solved_by_all']} "
                      f"| {s['solved_by_none']} | {trunc} | {length} |")
    text = "\n".join(table) + "\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    text += "\n" + "\n".join(detail) + "\n"
    if all("grader_disagreements" in benches[b] for b in names):
        graders = ["| benchmark | paper grader % | math-verify grader % | samples | disagreements |",
                   "|---" * 5 + "|"]
        graders += [f"| {b} | {benches[b]['pass@1_paper']:.2f} | {benches[b]['pass@1_math-verify']:.2f} "
                    f"| {benches[b]['samples']} | {benches[b]['grader_disagreements']} |" for b in names]
        text += "\nBoth rule graders, rule-only (a disagreement is a sample one accepts and the other rejects):\n\n"
        text += "\n".join(graders) + "\n"
    return text


def write_summary(out_dir: Path, summary: dict[str, Any]) -> str:
    """Write ``summary.json`` and ``summary.md``; return the markdown."""
    text = summary_markdown(summary)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "summary.md").write_text(text)
    return text


def check_grading(grader: str, compare: str | None) -> None:
    """Stop with one message on an unknown grader, an unknown --compare, or --compare with our grader."""
    try:
        check_grader(grader)
    except ValueError as e:
        raise EvaluationError(f"--grader: {e}") from e
    if compare is not None:
        paper_results(compare)
        if grader != "paper":
            raise EvaluationError(f"--compare {compare} sets our scores beside the paper's, which its own rule "
                                  f"grader decided: use --grader paper (the default) with --compare")
