"""evaluate.py: the nine-benchmark protocol, results files, resume, regrading, the summary table, the CLI.

Every score checked here is recomputed in the test from the JSONL files (or from a rule the test chose),
never read back from the module under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from justrl_lite import evaluate as ev
from justrl_lite.benchmarks import BENCHMARKS, COMPARE_CHOICES, PAPER_RESULTS
from justrl_lite.config import EVAL_PROMPT_SUFFIX, PROJECT_ROOT
from justrl_lite.evaluation.files import GENERATED_FIELDS, EvaluationError, read_results
from justrl_lite.evaluation.judge import (
    CompassVerifierJudge,
    build_judge_prompt,
    judge_unavailable_reason,
    judge_verdict,
)
from justrl_lite.evaluation.regrade import regrade
from justrl_lite.evaluation.sampling import OTHER_SOURCE_N_SAMPLES, resolve_benchmarks, sample_seeds
from justrl_lite.evaluation.scores import build_summary, summarize_records, summary_markdown
from justrl_lite.rollout import HFRollout, RolloutBatch

PAPER_ORDER = ["AIME24", "AIME25", "AMC23", "MATH-500", "Minerva", "OlympiadBench", "HMMT25", "BRUMO25",
               "CMIMC25"]
PAPER_N = {"AIME24": 32, "AIME25": 32, "AMC23": 32, "MATH-500": 4, "Minerva": 4, "OlympiadBench": 4,
           "HMMT25": 32, "BRUMO25": 32, "CMIMC25": 32}
TOY_BASE = PROJECT_ROOT / "data" / "toy" / "base"
TOY_TEST = PROJECT_ROOT / "data" / "toy" / "test.jsonl"
QUIET = dict(progress=False)


# ---- helpers: independent recomputation -----------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def avg_at_n(records: list[dict]) -> float:
    """pass@1 per problem over its samples, then the mean over problems, in % (written out again here)."""
    per_problem: dict[str, list[bool]] = {}
    for r in records:
        per_problem.setdefault(str(r["example_id"]), []).append(bool(r["correct"]))
    return 100.0 * sum(sum(v) / len(v) for v in per_problem.values()) / len(per_problem)


def chat_prompt_ids(tokenizer, problem: str) -> list[int]:
    """The protocol's prompt, built here without data.py: stripped problem + eval suffix, chat template."""
    messages = [{"role": "user", "content": problem.strip() + EVAL_PROMPT_SUFFIX}]
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"])


def fake_batch(texts: list[str], lengths: list[int], truncated: list[bool]) -> RolloutBatch:
    B, R = len(texts), max(lengths)
    mask = torch.tensor([[1] * n + [0] * (R - n) for n in lengths])
    ones = torch.ones(B, 1, dtype=torch.long)
    return RolloutBatch(prompt_ids=ones, prompt_mask=ones.clone(),
                        response_ids=mask.clone(), response_mask=mask, sampling_logprobs=torch.zeros(B, R),
                        truncated=torch.tensor(truncated), texts=texts, group_ids=torch.arange(B))


def scripted_correct(i: int, seed: int) -> bool:
    """Which (problem, seed) the scripted engine answers right: uneven over problems and seeds on purpose."""
    return (3 * i + seed) % 4 in (0, 1) and i % 5 != 4


def scripted_lookup(tokenizer, rows: list[dict]) -> dict[tuple[int, ...], tuple[int, str]]:
    """Prompt token ids -> (example_id, ground truth), for rows read straight from the JSONL file."""
    return {tuple(chat_prompt_ids(tokenizer, r["prompt"][-1]["content"])):
            (i, r["reward_model"]["ground_truth"]) for i, r in enumerate(rows)}


class ScriptedEngine:
    """A RolloutEngine that recognises each prompt and answers right iff ``scripted_correct(i, seed)``."""

    def __init__(self, lookup: dict[tuple[int, ...], tuple[int, str]]):
        self.lookup = lookup
        self.calls: list[tuple[int, int]] = []  # (prompts, seed) per generate call

    def generate(self, prompt_ids, n, *, temperature, top_p, top_k, max_new_tokens, seed):
        assert n == 1 and top_k == -1
        self.calls.append((len(prompt_ids), seed))
        texts, lengths, truncated = [], [], []
        for p in prompt_ids:
            i, answer = self.lookup[tuple(p)]
            texts.append(f"so the total is \\boxed{{{answer if scripted_correct(i, seed) else 1000}}}")
            lengths.append(3 + i)
            truncated.append(seed % 2 == 1)
        return fake_batch(texts, lengths, truncated)


class CountingEngine:
    """Wraps an engine and counts the prompts it is asked to sample."""

    def __init__(self, inner):
        self.inner, self.prompts = inner, 0

    def generate(self, prompt_ids, n, **kwargs):
        self.prompts += len(prompt_ids) * n
        return self.inner.generate(prompt_ids, n, **kwargs)


# ---- fixtures -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def policy(request):
    """(model, tokenizer): the toy base model if it has been built, else the random tiny model."""
    if (TOY_BASE / "config.json").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return AutoModelForCausalLM.from_pretrained(TOY_BASE).eval(), AutoTokenizer.from_pretrained(TOY_BASE)
    return request.getfixturevalue("tiny_model_and_tokenizer")


@pytest.fixture(scope="module")
def toy_split(tmp_path_factory) -> Path:
    """The toy held-out split: data/toy/test.jsonl, or 20 rows of it written with the toy task's own code."""
    if TOY_TEST.is_file():
        return TOY_TEST
    from justrl_lite.toy.task import make_splits, to_row, write_jsonl

    _, test = make_splits(n_train=40, n_test=20, seed=0)
    path = tmp_path_factory.mktemp("toy") / "test.jsonl"
    write_jsonl([to_row(p, i, "test") for i, p in enumerate(test)], path)
    return path


@pytest.fixture(scope="module")
def model_dir(policy, tmp_path_factory) -> Path:
    """A save_pretrained folder of the policy, for the command line."""
    if (TOY_BASE / "config.json").is_file():
        return TOY_BASE
    model, tokenizer = policy
    path = tmp_path_factory.mktemp("model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def toy_rows(path: Path, limit: int) -> list[dict]:
    return read_jsonl(path)[:limit]


# ---- the paper's numbers and the benchmark list ---------------------------------------------------------

def test_paper_results_are_in_column_order_and_average_to_the_reported_avg():
    for name, entry in PAPER_RESULTS.items():
        assert list(entry["scores"]) == PAPER_ORDER, name
        mean = sum(entry["scores"].values()) / 9
        assert abs(mean - entry["avg"]) < 0.006, (name, mean, entry["avg"])  # the paper rounds to 2 decimals
    assert set(PAPER_RESULTS) == set(COMPARE_CHOICES)


# PAPER_RESULTS against docs/recipe.md ("Reported results"), row by row: tests/test_docs.py,
# test_results_table_matches_paper_results.


def test_resolve_benchmarks_all_names_files_and_errors(toy_split):
    every = resolve_benchmarks("all")
    assert [s.name for s in every] == PAPER_ORDER
    assert {s.name: s.n_samples for s in every} == PAPER_N
    picked = resolve_benchmarks("aime24, olympiad-bench,math500", n_samples=2)
    assert [(s.name, s.n_samples) for s in picked] == [("AIME24", 2), ("OlympiadBench", 2), ("MATH-500", 2)]
    (toy,) = resolve_benchmarks([str(toy_split)])
    assert toy.n_samples == OTHER_SOURCE_N_SAMPLES and toy.name == f"{toy_split.parent.name}-test"
    (named,) = resolve_benchmarks(f"toy={toy_split}")
    assert named.name == "toy" and Path(named.source) == toy_split
    with pytest.raises(EvaluationError, match=r"unknown benchmark 'AIME23'.*AIME24"):
        resolve_benchmarks("AIME24,AIME23")
    with pytest.raises(EvaluationError, match="repeat"):
        resolve_benchmarks(f"a={toy_split},a={toy_split}")


def test_seeds_are_base_plus_sample_index():
    assert sample_seeds(0, 4) == [0, 1, 2, 3]
    assert sample_seeds(100, 3) == [100, 101, 102]


# ---- generation: files, seeds, grading, summary (scripted engine: known answers) ------------------------

def test_scripted_engine_files_and_summary(policy, toy_split, tmp_path):
    _, tokenizer = policy
    rows = toy_rows(toy_split, 7)
    problems = [r["prompt"][-1]["content"] for r in rows]
    answers = [r["reward_model"]["ground_truth"] for r in rows]
    lookup = scripted_lookup(tokenizer, rows)
    engine = ScriptedEngine(lookup)
    out = tmp_path / "out"
    summary = ev.evaluate("scripted", tokenizer, f"toy={toy_split}", out, n_samples=3, base_seed=10, limit=7,
                          batch_size=3, engine=engine, compare="paper-deepseek", **QUIET)

    # one generate call per (seed, batch of <= 3 prompts), seed by seed
    assert engine.calls == [(3, 10), (3, 10), (1, 10), (3, 11), (3, 11), (1, 11), (3, 12), (3, 12), (1, 12)]
    records = read_jsonl(out / "toy.jsonl")
    assert len(records) == 7 * 3
    assert {(r["example_id"], r["seed"]) for r in records} == {(i, s) for i in range(7) for s in (10, 11, 12)}
    for r in records:
        i, seed = r["example_id"], r["seed"]
        # the authors' five fields first
        assert list(r)[:5] == ["example_id", "prompt", "answer", "seed", "response"]
        assert r["prompt"] == problems[i].strip() + EVAL_PROMPT_SUFFIX
        assert r["answer"] == answers[i]
        assert r["correct"] is scripted_correct(i, seed)
        assert r["finish_reason"] == ("length" if seed % 2 else "stop")
        assert r["response_length"] == 3 + i

    expected = 100.0 * sum(sum(scripted_correct(i, s) for s in (10, 11, 12)) / 3 for i in range(7)) / 7
    assert 0 < expected < 100
    assert avg_at_n(records) == pytest.approx(expected)
    toy = summary["benchmarks"]["toy"]
    assert toy["pass@1"] == pytest.approx(expected)
    assert (toy["problems"], toy["samples"], toy["samples_per_problem"], toy["complete"]) == (7, 21, 3, True)
    assert toy["truncated_pct"] == pytest.approx(100.0 / 3)
    assert toy["mean_response_length"] == pytest.approx(sum(3 + i for i in range(7)) / 7)
    per_problem = [sum(scripted_correct(i, s) for s in (10, 11, 12)) / 3 for i in range(7)]
    assert toy["solved_by_all"] == per_problem.count(1.0) and toy["solved_by_none"] == per_problem.count(0.0)
    assert summary["average"] == pytest.approx(expected)

    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["benchmarks"]["toy"]["pass@1"] == pytest.approx(expected)
    md = (out / "summary.md").read_text()
    assert f"| scripted | rule-only (paper grader) | {expected:.2f} | {expected:.2f} |" in md
    # no paper number for the toy column; the paper's row says how it was graded
    assert "| JustRL-DeepSeek-1.5B (paper) | rule + judge (paper grader, CompassVerifier-3B) | - | - |" in md
    assert "Not like for like" in md  # rule-only beside judge-assisted is flagged

    # nothing left to do: a second run generates nothing and gives the same summary
    again = ScriptedEngine(lookup)
    summary2 = ev.evaluate("scripted", tokenizer, f"toy={toy_split}", out, n_samples=3, base_seed=10, limit=7,
                           batch_size=3, engine=again, **QUIET)
    assert again.calls == [] and summary2["benchmarks"]["toy"]["pass@1"] == pytest.approx(expected)

    # a larger N resumes: only the new seed is drawn, and the summary covers the 4 seeds
    more = ScriptedEngine(lookup)
    summary4 = ev.evaluate("scripted", tokenizer, f"toy={toy_split}", out, n_samples=4, base_seed=10, limit=7,
                           batch_size=7, engine=more, **QUIET)
    assert more.calls == [(7, 13)]
    expected4 = 100.0 * sum(sum(scripted_correct(i, s) for s in range(10, 14)) / 4 for i in range(7)) / 7
    assert summary4["benchmarks"]["toy"]["pass@1"] == pytest.approx(expected4)
    assert avg_at_n(read_jsonl(out / "toy.jsonl")) == pytest.approx(expected4)

    # other sampling settings must not mix with the samples on disk
    with pytest.raises(EvaluationError, match="temperature=0.7.*temperature=1.0"):
        ev.evaluate("scripted", tokenizer, f"toy={toy_split}", out, n_samples=3, base_seed=10, limit=7,
                    temperature=1.0, engine=ScriptedEngine(lookup), **QUIET)


def test_run_interrupted_between_batches_resumes_where_it_stopped(policy, toy_split, tmp_path):
    _, tokenizer = policy
    rows = toy_rows(toy_split, 6)
    lookup = scripted_lookup(tokenizer, rows)

    class Interrupted(ScriptedEngine):
        def generate(self, prompt_ids, n, **kwargs):
            if len(self.calls) == 3:
                raise KeyboardInterrupt  # Ctrl-C (or a kill) after three batches
            return super().generate(prompt_ids, n, **kwargs)

    kwargs = dict(n_samples=2, limit=6, batch_size=4, **QUIET)
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate("scripted", tokenizer, f"toy={toy_split}", tmp_path, engine=Interrupted(lookup), **kwargs)
    # batches: seed 0 -> problems 0-3, 4-5; seed 1 -> problems 0-3 (then the interrupt)
    partial = read_jsonl(tmp_path / "toy.jsonl")
    done = [(r["example_id"], r["seed"]) for r in partial]
    assert done == [(i, 0) for i in range(6)] + [(i, 1) for i in range(4)]
    rest = ScriptedEngine(lookup)
    summary = ev.evaluate("scripted", tokenizer, f"toy={toy_split}", tmp_path, engine=rest, **kwargs)
    assert rest.calls == [(2, 1)]  # only problems 4 and 5 with seed 1 were missing
    expected = 100.0 * sum(sum(scripted_correct(i, s) for s in (0, 1)) / 2 for i in range(6)) / 6
    assert summary["benchmarks"]["toy"]["pass@1"] == pytest.approx(expected)
    assert avg_at_n(read_jsonl(tmp_path / "toy.jsonl")) == pytest.approx(expected)


def test_summary_averages_per_problem_first():
    # problem 0: 1 of 1 right, problem 1: 1 of 3 right -> avg@N = (1 + 1/3) / 2, not 2 / 4
    records = [{"example_id": 0, "seed": 0, "correct": True}] + [
        {"example_id": 1, "seed": s, "correct": s == 0} for s in range(3)]
    s = summarize_records(records)
    assert s["pass@1"] == pytest.approx(100.0 * (1 + 1 / 3) / 2)
    assert (s["problems"], s["samples"], s["samples_per_problem"], s["complete"]) == (2, 4, 3, False)
    assert (s["solved_by_all"], s["solved_by_none"]) == (1, 0)
    md = summary_markdown(build_summary({"AIME25": s, "AIME24": s}, model="m"))
    assert md.splitlines()[0] == "| model | grading | AIME24 (@3) | AIME25 (@3) | avg |"  # the paper's order
    assert "| AIME24 | 2 | 3 (incomplete) | 66.67 |" in md


# ---- the tiny model: toy split with resume after a crash, and the real benchmark files ------------------

def test_tiny_model_on_toy_split_resumes_after_truncation(policy, toy_split, tmp_path):
    model, tokenizer = policy
    out = tmp_path / "out"
    kwargs = dict(n_samples=2, max_new_tokens=16, limit=4, batch_size=2, **QUIET)
    first = CountingEngine(HFRollout(model, tokenizer))
    ev.evaluate(model, tokenizer, f"toy={toy_split}", out, engine=first, **kwargs)
    path = out / "toy.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert first.prompts == 8 and len(lines) == 8
    for r in map(json.loads, lines):
        assert r["finish_reason"] in ("stop", "length") and 1 <= r["response_length"] <= 16
        assert r["correct"] in (True, False)

    # a crash mid-write: three complete lines and half of the fourth
    path.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    second = CountingEngine(HFRollout(model, tokenizer))
    summary = ev.evaluate(model, tokenizer, f"toy={toy_split}", out, engine=second, **kwargs)
    assert second.prompts == 5  # only the missing samples are drawn again
    new_lines = path.read_bytes().splitlines(keepends=True)
    assert new_lines[:3] == lines[:3]
    records = [json.loads(x) for x in new_lines]
    assert sorted((r["example_id"], r["seed"]) for r in records) == [(i, s) for i in range(4) for s in (0, 1)]
    assert summary["benchmarks"]["toy"]["pass@1"] == pytest.approx(avg_at_n(records))
    assert summary["benchmarks"]["toy"]["samples"] == 8


@pytest.mark.slow
def test_nine_real_benchmarks_five_rows_each(policy, shared_data_dir, tmp_path):
    model, tokenizer = policy
    out = tmp_path / "out"
    summary = ev.evaluate(model, tokenizer, "all", out, n_samples=2, max_new_tokens=16, limit=5, batch_size=5,
                          data_dir=str(shared_data_dir), compare="paper-nemotron", **QUIET)
    assert list(summary["benchmarks"]) == PAPER_ORDER
    files = {spec.name: spec.local_file for spec in BENCHMARKS.values()}
    for name in PAPER_ORDER:
        df = pd.read_parquet(shared_data_dir / files[name]).head(5)
        if "problem" in df.columns:  # HMMT25, BRUMO25, CMIMC25
            problems, truths = list(df["problem"]), [str(a) for a in df["answer"]]
        else:
            problems = [p[-1]["content"] for p in df["prompt"]]
            truths = [rm["ground_truth"] for rm in df["reward_model"]]
        records = read_jsonl(out / f"{name}.jsonl")
        assert len(records) == 10
        assert {(r["example_id"], r["seed"]) for r in records} == {(i, s) for i in range(5) for s in (0, 1)}
        for r in records:
            assert r["prompt"] == problems[r["example_id"]].strip() + EVAL_PROMPT_SUFFIX
            assert r["answer"] == truths[r["example_id"]]
            assert 1 <= r["response_length"] <= 16
        s = summary["benchmarks"][name]
        assert (s["problems"], s["samples_per_problem"]) == (5, 2)
        assert s["pass@1"] == pytest.approx(avg_at_n(records))
    scores = [avg_at_n(read_jsonl(out / f"{n}.jsonl")) for n in PAPER_ORDER]
    assert summary["average"] == pytest.approx(sum(scores) / 9)
    header, _, ours, paper = (out / "summary.md").read_text().splitlines()[:4]
    assert header == "| model | grading | " + " | ".join(f"{n} (@2)" for n in PAPER_ORDER) + " | avg |"
    assert ours.startswith("| ") and "| rule-only (paper grader) |" in ours
    assert paper == ("| JustRL-Nemotron-1.5B (paper) | rule + judge (paper grader, CompassVerifier-3B) | 69.69 | 62.92 "
                     "| 96.02 | 94.15 | 30.24 | 76.59 | 40.63 | 66.88 | 41.72 | 64.32 |")


# ---- results files: truncated and malformed lines -------------------------------------------------------

def test_read_results_tolerates_only_a_truncated_last_line(tmp_path):
    good = [json.dumps({"example_id": i, "seed": 0, "response": "r", "correct": False}) + "\n"
            for i in range(2)]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(good) + '{"example_id": 2, "se')
    kept = read_results(path, required=GENERATED_FIELDS, repair=True)
    assert [r["example_id"] for r in kept] == [0, 1]
    assert path.read_text() == "".join(good)  # the broken tail is cut, so appends start on a fresh line

    path.write_text("".join(good).rstrip("\n"))  # a complete last line that lost only its newline
    assert len(read_results(path, required=GENERATED_FIELDS, repair=True)) == 2
    assert path.read_text() == "".join(good)

    path.write_text(good[0] + "not json\n" + good[1])
    with pytest.raises(EvaluationError, match=r"x.jsonl, line 2: not valid JSON.*delete that line"):
        read_results(path, required=GENERATED_FIELDS, repair=True)
    path.write_text(good[0] + json.dumps({"example_id": 1}) + "\n")
    missing = r"line 2: missing field\(s\) \['seed', 'response', 'correct'\]"
    with pytest.raises(EvaluationError, match=missing):
        read_results(path, required=GENERATED_FIELDS, repair=True)


# ---- regrading, including the authors' released format --------------------------------------------------

AUTHORS_AIME = [  # (example_id, answer as the authors store it, response, correct?)
    (0, "\\boxed{204}", "... so the walk takes \\boxed{204} minutes.", True),
    (0, "\\boxed{204}", "... so the walk takes \\boxed{240} minutes.", False),
    (1, "\\boxed{25}", "Hence $xy = \\boxed{25}$.", True),
    (1, "\\boxed{25}", "I am not sure; maybe 25.", False),  # no box: wrong, whatever the text says
    (2, "\\boxed{33}", "\\boxed{33} ... wait, recheck: \\boxed{34}", False),  # the last box counts
    (2, "\\boxed{33}", "\\boxed{34} ... no: \\boxed{33}", True),
]
AUTHORS_MATH = [
    (0, "\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", True),
    (0, "\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3, \\pi)}", False),
    (1, "\\frac{14}{3}", "\\boxed{\\dfrac{14}{3}}", True),  # MATH normalisation: dfrac -> frac
    (1, "\\frac{14}{3}", "\\boxed{14/3}", True),
    (2, "9", "\\boxed{10}", False),
    (2, "9", "\\boxed{10}", False),
]


def write_authors_file(path: Path, rows: list[tuple]) -> None:
    with path.open("w") as f:
        for k, (i, answer, response, _) in enumerate(rows):
            record = {"example_id": i, "prompt": f"Problem {i}." + EVAL_PROMPT_SUFFIX, "answer": answer,
                      "seed": 1_000_003 * k % 2**31, "response": response}  # the authors' five fields
            f.write(json.dumps(record) + "\n")


def expected_avg(rows: list[tuple]) -> float:
    by: dict[int, list[bool]] = {}
    for i, _, _, ok in rows:
        by.setdefault(i, []).append(ok)
    return 100.0 * sum(sum(v) / len(v) for v in by.values()) / len(by)


@pytest.fixture
def authors_dir(tmp_path) -> Path:
    d = tmp_path / "JustRL-DeepSeek-1.5B"
    d.mkdir()
    write_authors_file(d / "aime24_t0.7_p0.9_n32-MNT31744.jsonl", AUTHORS_AIME)
    write_authors_file(d / "math-500_t0.7_p0.9_n4-MNT31744.jsonl", AUTHORS_MATH)
    return d


def test_regrade_authors_format(authors_dir, tmp_path):
    before = {f.name: f.read_bytes() for f in authors_dir.iterdir()}
    summary = regrade(authors_dir, tmp_path / "regraded", compare="paper-deepseek", **QUIET)
    after = {f.name: f.read_bytes() for f in authors_dir.iterdir() if f.is_file()}
    assert after == before  # the sources are untouched
    assert list(summary["benchmarks"]) == ["AIME24", "MATH-500"]  # the paper's order, names from file names
    for name, rows, file in (("AIME24", AUTHORS_AIME, "aime24_t0.7_p0.9_n32-MNT31744.jsonl"),
                             ("MATH-500", AUTHORS_MATH, "math-500_t0.7_p0.9_n4-MNT31744.jsonl")):
        graded = read_jsonl(tmp_path / "regraded" / file)
        assert [r["correct"] for r in graded] == [ok for *_, ok in rows]
        assert [r["response"] for r in graded] == [resp for _, _, resp, _ in rows]
        assert summary["benchmarks"][name]["pass@1"] == pytest.approx(expected_avg(rows))
        assert summary["benchmarks"][name]["pass@1"] == pytest.approx(avg_at_n(graded))
    assert summary["average"] == pytest.approx((expected_avg(AUTHORS_AIME) + expected_avg(AUTHORS_MATH)) / 2)
    md = (tmp_path / "regraded" / "summary.md").read_text()
    paper_avg = (52.60 + 91.65) / 2
    assert f"| JustRL-DeepSeek-1.5B (paper) | rule + judge (paper grader, CompassVerifier-3B) | 52.60 | 91.65 | " \
           f"{paper_avg:.2f}* |" in md
    assert (tmp_path / "regraded" / "summary.json").is_file()


def test_regrade_our_own_files_gives_the_same_scores(policy, toy_split, tmp_path):
    _, tokenizer = policy
    rows = toy_rows(toy_split, 5)
    lookup = scripted_lookup(tokenizer, rows)
    first = ev.evaluate("scripted", tokenizer, f"toy={toy_split}", tmp_path / "run", n_samples=4, limit=5,
                        engine=ScriptedEngine(lookup), **QUIET)
    again = regrade(tmp_path / "run", **QUIET)  # default output: <dir>/regraded
    assert again["benchmarks"]["toy"]["pass@1"] == pytest.approx(first["benchmarks"]["toy"]["pass@1"])
    regraded = read_jsonl(tmp_path / "run" / "regraded" / "toy.jsonl")
    # the same lines, each now also holding both rule graders' verdicts (equal on these integer answers)
    assert all(r.pop("paper_correct") == r.pop("math_verify_correct") == r["correct"] for r in regraded)
    assert regraded == read_jsonl(tmp_path / "run" / "toy.jsonl")


def test_regrade_errors(tmp_path):
    with pytest.raises(EvaluationError, match="no \\*.jsonl results files"):
        regrade(tmp_path, **QUIET)
    (tmp_path / "AIME24.jsonl").write_text(json.dumps({"example_id": 0, "response": "x"}) + "\n")
    with pytest.raises(EvaluationError, match=r"missing field\(s\) \['answer'\]"):
        regrade(tmp_path, **QUIET)


# ---- the judge (opt-in) ---------------------------------------------------------------------------------

def test_judge_is_asked_only_about_rejected_samples_and_can_only_raise(authors_dir, tmp_path):
    asked: list[tuple[str, str, str]] = []

    def says_yes(items):
        asked.extend(items)
        return [True] * len(items)

    rule = regrade(authors_dir, tmp_path / "rule", **QUIET)
    judged = regrade(authors_dir, tmp_path / "judged", judge=says_yes, **QUIET)
    rejected = [("", a, resp) for rows in (AUTHORS_AIME, AUTHORS_MATH) for i, a, resp, ok in rows if not ok]
    # as the authors: an empty question, the answer as stored (AIME24 boxed), the whole response
    assert sorted(asked) == sorted(rejected)
    for name in ("AIME24", "MATH-500"):
        assert judged["benchmarks"][name]["pass@1"] == pytest.approx(100.0)
        assert judged["benchmarks"][name]["pass@1_rule"] == pytest.approx(rule["benchmarks"][name]["pass@1"])
    graded = read_jsonl(tmp_path / "judged" / "aime24_t0.7_p0.9_n32-MNT31744.jsonl")
    assert [(r["rule_correct"], r["judge_correct"]) for r in graded] == [
        (ok, None if ok else True) for *_, ok in AUTHORS_AIME]
    assert judged["benchmarks"]["AIME24"]["judge_rescued"] == sum(not ok for *_, ok in AUTHORS_AIME)

    def says_no(items):
        return [False] * len(items)

    strict = regrade(authors_dir, tmp_path / "strict", judge=says_no, **QUIET)
    for name in ("AIME24", "MATH-500"):
        assert strict["benchmarks"][name]["pass@1"] == pytest.approx(rule["benchmarks"][name]["pass@1"])


def test_judge_during_evaluation_is_asked_once_per_rejected_sample(policy, toy_split, tmp_path):
    _, tokenizer = policy
    rows = toy_rows(toy_split, 5)
    lookup = scripted_lookup(tokenizer, rows)
    asked: list[tuple[str, str, str]] = []

    gold_1 = rows[1]["reward_model"]["ground_truth"]

    def rescues_problem_1(items):  # says "A" for the samples whose ground truth is problem 1's
        asked.extend(items)
        return [gold == gold_1 for _, gold, _ in items]

    kwargs = dict(n_samples=4, limit=5, judge=rescues_problem_1, **QUIET)
    summary = ev.evaluate("scripted", tokenizer, f"toy={toy_split}", tmp_path, engine=ScriptedEngine(lookup),
                          **kwargs)
    wrong = [(i, s) for i in range(5) for s in range(4) if not scripted_correct(i, s)]
    assert len(asked) == len(wrong)
    records = read_jsonl(tmp_path / "toy.jsonl")
    for r in records:
        rule = scripted_correct(r["example_id"], r["seed"])
        assert r["rule_correct"] is rule
        rescued = r["answer"] == gold_1
        assert r["judge_correct"] == (None if rule else rescued)
        assert r["correct"] is (rule or rescued)
    rule_score = 100.0 * sum(sum(scripted_correct(i, s) for s in range(4)) / 4 for i in range(5)) / 5
    toy = summary["benchmarks"]["toy"]
    assert toy["pass@1_rule"] == pytest.approx(rule_score)
    assert toy["pass@1"] == pytest.approx(avg_at_n(records)) and toy["pass@1"] > rule_score
    asked.clear()
    ev.evaluate("scripted", tokenizer, f"toy={toy_split}", tmp_path, engine=ScriptedEngine(lookup), **kwargs)
    assert asked == []  # verdicts on disk are not asked for again


def test_the_policy_engine_sleeps_before_the_judge_runs(policy, toy_split, tmp_path):
    _, tokenizer = policy
    rows = toy_rows(toy_split, 3)
    events: list[str] = []

    class SleepyEngine(ScriptedEngine):
        def generate(self, *args, **kwargs):
            events.append("generate")
            return super().generate(*args, **kwargs)

        def sleep(self):
            events.append("sleep")

    def judge(items):
        events.append("judge")
        return [False] * len(items)

    ev.evaluate("scripted", tokenizer, [f"a={toy_split}", f"b={toy_split}"], tmp_path, n_samples=4, limit=3,
                engine=SleepyEngine(scripted_lookup(tokenizer, rows)), judge=judge, **QUIET)
    # every benchmark is drawn first, then the policy's engine sleeps, then the judge is asked (GPU memory)
    assert events.index("sleep") > max(i for i, e in enumerate(events) if e == "generate")
    assert events.count("sleep") == 1 and events.index("judge") > events.index("sleep")


def test_judge_prompt_and_verdict_rule():
    prompt = build_judge_prompt("What is 2+2?", "4", "It is \\boxed{4}.")
    for block in ("<Original Question Begin>:\nWhat is 2+2?\n<Original Question End>",
                  "<Standard Answer Begin>:\n4\n<Standard Answer End>",
                  "<Candidate's Answer Begin>: \nIt is \\boxed{4}.\n<Candidate's Answer End>", "A: CORRECT \n",
                  "If the prediction is given with \\boxed{}, please ignore the \\boxed{}"):
        assert block in prompt
    assert judge_verdict("A") and judge_verdict(" A\n")
    assert not judge_verdict("B") and not judge_verdict("A: CORRECT") and not judge_verdict("")


class FakeChatTokenizer:
    """Stands in for the judge's tokenizer: a visible chat template."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        assert add_generation_prompt and not tokenize and [m["role"] for m in messages] == ["user"]
        return "<user>" + messages[0]["content"] + "<assistant>"


def test_compass_verifier_judge_with_an_injected_model(authors_dir, tmp_path):
    seen: list[str] = []

    def generate(prompts):  # the judge model: answers " A\n" when the response holds "204", else "B"
        seen.extend(prompts)
        return [" A\n" if "240" in p else "B" for p in prompts]

    judge = CompassVerifierJudge(generate=generate, tokenizer=FakeChatTokenizer())
    summary = regrade(authors_dir, tmp_path / "judged", judge=judge, **QUIET)
    rejected = [(a, resp) for rows in (AUTHORS_AIME, AUTHORS_MATH) for _, a, resp, ok in rows if not ok]
    assert len(seen) == len(rejected)
    for prompt in seen:
        assert prompt.startswith("<user>\nPlease as a grading expert") and prompt.endswith(
            "Judging the correctness of the candidate's answer:\n<assistant>")
    assert sorted(seen) == sorted("<user>" + build_judge_prompt("", a, resp) + "<assistant>" for a, resp in rejected)
    graded = read_jsonl(tmp_path / "judged" / "aime24_t0.7_p0.9_n32-MNT31744.jsonl")
    assert [r["judge_correct"] for r in graded] == [None if ok else "240" in resp for _, _, resp, ok in AUTHORS_AIME]
    assert summary["judge"] and summary["grading"] == "rule + judge (paper grader, CompassVerifier-3B)"
    md = (tmp_path / "judged" / "summary.md").read_text()
    assert "| rule-only (paper grader) |" in md and "| rule + judge (paper grader, CompassVerifier-3B) |" in md
    with pytest.raises(ValueError, match="needs the judge's tokenizer"):
        CompassVerifierJudge(generate=generate)


def test_judge_auto_is_off_without_a_gpu_and_on_fails_in_one_message(authors_dir, tmp_path, caplog):
    if judge_unavailable_reason() is None:
        pytest.skip("a CUDA GPU with vLLM is here: auto would load the real judge")
    summary = regrade(authors_dir, tmp_path / "auto", compare="paper-deepseek", **QUIET)  # judge="auto"
    assert not summary["judge"] and "rule-only" in summary["grading"]
    assert "rule-only scores beside the paper's judge-assisted ones" in caplog.text
    with pytest.raises(EvaluationError, match="drop --judge"):
        regrade(authors_dir, tmp_path / "on", judge="on", **QUIET)


AUTHORS_AMC = [  # (example_id, answer as stored, response, paper grader, our math-verify grader)
    (0, "27", "so \\boxed{27}", True, True),
    (0, "27", "so \\boxed{\\frac{54}{2}}", False, True),  # the paper's strict integer rule
    (1, "36", "\\boxed{36} ... or \\boxed 35", False, True),  # the authors read the last \\boxed, here no box
    (1, "36", "\\boxed{36.0}", True, True),
    (2, "45", "\\boxed{2^{2}+41}", False, True),  # '^{' keeps SymPy away
    (2, "45", "\\boxed{46}", False, False),
]


def test_regrade_reports_both_graders_and_their_disagreements(tmp_path):
    src = tmp_path / "JustRL-DeepSeek-1.5B"
    src.mkdir()
    write_authors_file(src / "amc23_t0.7_p0.9_n32-MNT31744.jsonl", [r[:4] for r in AUTHORS_AMC])
    write_authors_file(src / "aime24_t0.7_p0.9_n32-MNT31744.jsonl", AUTHORS_AIME)
    summary = regrade(src, tmp_path / "paper", compare="paper-deepseek", judge="off", **QUIET)
    amc = summary["benchmarks"]["AMC23"]
    assert amc["pass@1"] == pytest.approx(expected_avg([r[:4] for r in AUTHORS_AMC]))  # correct = paper grader's
    assert amc["pass@1_paper"] == pytest.approx(expected_avg([r[:4] for r in AUTHORS_AMC]))
    assert amc["pass@1_math-verify"] == pytest.approx(expected_avg([(i, a, t, mv) for i, a, t, _, mv in AUTHORS_AMC]))
    assert amc["grader_disagreements"] == sum(p != mv for *_, p, mv in AUTHORS_AMC) == 3
    assert summary["benchmarks"]["AIME24"]["grader_disagreements"] == 0
    graded = read_jsonl(tmp_path / "paper" / "amc23_t0.7_p0.9_n32-MNT31744.jsonl")
    assert [(r["paper_correct"], r["math_verify_correct"]) for r in graded] == [(p, mv) for *_, p, mv in AUTHORS_AMC]
    md = (tmp_path / "paper" / "summary.md").read_text()
    assert "| benchmark | paper grader % | math-verify grader % | samples | disagreements |" in md
    assert f"| AMC23 | {amc['pass@1_paper']:.2f} | {amc['pass@1_math-verify']:.2f} | 6 | 3 |" in md
    ours = regrade(src, tmp_path / "ours", grader="math-verify", **QUIET)
    assert [r["correct"] for r in read_jsonl(tmp_path / "ours" / "amc23_t0.7_p0.9_n32-MNT31744.jsonl")] == [
        mv for *_, mv in AUTHORS_AMC]
    assert ours["grading"] == "rule-only (math-verify grader)"
    with pytest.raises(EvaluationError, match="use --grader paper"):
        regrade(src, tmp_path / "x", grader="math-verify", compare="paper-deepseek", **QUIET)
    with pytest.raises(EvaluationError, match="unknown grader"):
        regrade(src, tmp_path / "x", grader="exact", **QUIET)


def test_cli_regrade_prints_both_graders(tmp_path, capsys):
    src = tmp_path / "released"
    src.mkdir()
    write_authors_file(src / "amc23_t0.7_p0.9_n32-MNT31744.jsonl", [r[:4] for r in AUTHORS_AMC])
    assert ev.main(["--regrade", str(src), "--no-progress", "--no-judge"]) == 0
    out = capsys.readouterr().out
    assert "| AMC23 | " in out and "| 6 | 3 |" in out and "rule-only (paper grader)" in out


# ---- command line ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_end_to_end(model_dir, toy_split, tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "justrl_lite.evaluate", "--model", str(model_dir), "--benchmarks",
           f"toy={toy_split}", "--limit", "3", "--n-samples", "2", "--max-new-tokens", "8", "--out", str(out),
           "--device", "cpu", "--seed", "5", "--no-progress"]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = read_jsonl(out / "toy.jsonl")
    assert sorted((r["example_id"], r["seed"]) for r in records) == [(i, s) for i in range(3) for s in (5, 6)]
    assert all(r["response_length"] <= 8 for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"]["toy"]["pass@1"] == pytest.approx(avg_at_n(records))
    assert summary["settings"]["temperature"] == 0.7 and summary["settings"]["top_p"] == 0.9
    assert f"| {model_dir} | rule-only (paper grader) | {avg_at_n(records):.2f} |" in done.stdout  # printed too


def test_cli_errors_are_one_clear_message(toy_split, tmp_path, capsys, authors_dir):
    def run(*argv: str) -> str:
        assert ev.main(list(argv)) == 2
        return capsys.readouterr().err

    assert "pass --model and --out" in run("--model", "x")
    err = run("--model", str(tmp_path / "no_such_model"), "--benchmarks", f"toy={toy_split}", "--out",
              str(tmp_path / "o"), "--device", "cpu")
    assert err.startswith("error: model path") and "save_pretrained" in err and "Traceback" not in err
    err = run("--model", "m", "--benchmarks", "AIME23", "--out", str(tmp_path))
    assert "unknown benchmark 'AIME23'" in err
    assert "Traceback" not in run("--regrade", str(tmp_path / "empty"))
    if not torch.cuda.is_available():
        err = run("--regrade", str(authors_dir), "--judge")
        assert err.startswith("error: --judge: ") and "CUDA" in err and "drop --judge" in err
