"""Results files of an evaluation: one JSONL line per sample, appended as it is drawn, resumed after a crash.

    <out>/<benchmark>.jsonl      one line per (example_id, seed): the authors' five fields
                                 (example_id, prompt, answer, seed, response), then ours (correct, finish_reason,
                                 response_length, row_id; rule_correct and judge_correct with the judge;
                                 paper_correct and math_verify_correct after a regrade)
    <out>/eval_settings.json     what a resumed run must match (``RESUME_KEYS``)

A crash mid-write leaves at most one unterminated last line: it is dropped and its sample drawn again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from justrl_lite.data import MathRow
from justrl_lite.errors import JustRLError

logger = logging.getLogger(__name__)

RESULTS_SUFFIX = ".jsonl"
SETTINGS_FILE = "eval_settings.json"
RESUME_KEYS = ("model", "temperature", "top_p", "max_new_tokens", "base_seed", "prompt_suffix", "grader")
"""Settings a resumed run must share with the samples already on disk."""
GENERATED_FIELDS = ("example_id", "seed", "response", "correct")
"""Fields a line of our own results file must have (to resume from it)."""
GRADABLE_FIELDS = ("example_id", "answer", "response")
"""Fields a line must have to be regraded (the authors' files also have ``prompt`` and ``seed``)."""


class EvaluationError(JustRLError, ValueError):
    """A problem the user can fix (benchmark, model path, results file, device); the message says how."""


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



# ---- one line, and what is missing -------------------------------------------------------------------------

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
