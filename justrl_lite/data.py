"""Math prompts for JustRL: DAPO-Math-17k for training, nine benchmarks for evaluation, the paper's prompts.

Every source becomes one row type, ``MathRow`` (chat messages, ground truth, data source, id); the prompts
built from rows are ``prompts.py``.

Two row schemas are read (from a hub id through ``datasets.load_dataset``, or a local parquet / JSONL file):
  * verl rows (DAPO-Math-17k, AIME24/25, AMC23, MATH-500, Minerva, OlympiadBench, the toy task):
    ``prompt`` (list of {role, content}), ``reward_model.ground_truth``, ``data_source``, ``extra_info.index``;
  * problem/answer rows (MathArena's HMMT25, BRUMO25, CMIMC25 and most hub copies): ``problem`` (or
    ``question``), ``answer``, optionally ``problem_idx`` / ``id``.

JustRL's fixed choices implemented here, and where they depart from common practice (the prompts': ``prompts.py``):
  1. The hub original of DAPO-Math-17k wraps every problem in DAPO's own instruction ("Solve the following
     math problem step by step. The last line of your response should be of the form Answer: $Answer ...")
     and repeats each problem 100 times. The authors appended their ``\\boxed{}`` suffix to that text, so the
     model is told both "end with `Answer: ...`" and "put the answer in \\boxed{}", and the DAPO reward
     only accepts the box. That conflicting instruction is the default here (it is what the paper trained
     on); ``strip_dapo_template=True`` removes DAPO's wrapper and ``dedup=True`` drops exact repeats of
     (problem, ground truth), for users who want the clean form. The copy in ``../shared/justrl_data`` is
     already template-free (17,917 rows; it still holds 616 exact repeats, so ``dedup=True`` leaves 17,301).
  2. Ground truths are kept exactly as stored (AIME24 stores ``\\boxed{204}``, OlympiadBench some ``$...$``):
     the strict training reward compares strings, so any normalisation would change the reward.

Local files are read with pyarrow (parquet) and ``json`` (JSONL) rather than ``datasets`` so that a bad row
can be reported by its number; hub datasets go through ``datasets.load_dataset``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from justrl_lite.benchmarks import BENCHMARKS, BenchmarkSpec, find_benchmark
from justrl_lite.boxed import last_boxed_only_string, remove_boxed
from justrl_lite.config import PROJECT_ROOT
from justrl_lite.errors import JustRLError
from justrl_lite.hub import offline_variable, probe_failure

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "JUSTRL_DATA_DIR"
"""Environment variable naming a folder of local data files (used when ``data_dir`` is not given)."""

SHARED_DATA_DIR = PROJECT_ROOT.parent / "shared" / "justrl_data"
"""The default local data folder (``../shared/justrl_data`` from the project root), after ``$JUSTRL_DATA_DIR``."""

LOCAL_TRAINING_SETS = {"BytedTsinghua-SIA/DAPO-Math-17k": "DAPO-Math-17k_dedup17917_from_MasterVito-SvS.parquet"}
"""Hub training sets -> their file in a local data folder. The local DAPO copy is template-free and de-duplicated
(17,917 rows; choice 1): a run that reads it says so."""


def local_data_dirs(data_dir: str | None = None) -> list[Path]:
    """Where local copies are looked for, training and evaluation alike: ``data_dir`` if given, else
    ``$JUSTRL_DATA_DIR`` then ``../shared/justrl_data``."""
    if data_dir:
        return [Path(data_dir)]
    env = os.environ.get(DATA_DIR_ENV)
    return ([Path(env)] if env else []) + [SHARED_DATA_DIR]


def find_local_copy(file_name: str, data_dir: str | None = None) -> Path | None:
    return next((d / file_name for d in local_data_dirs(data_dir) if (d / file_name).is_file()), None)

LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json")

DAPO_TEMPLATE_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_TEMPLATE_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'
"""DAPO's instruction wrapper around every problem of the hub original of DAPO-Math-17k."""


class DataError(JustRLError, ValueError):
    """A data source is missing or a row is malformed; the message names the file, the row and what to do."""


# ---- rows -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MathRow:
    """One math problem with its ground truth, in chat form."""

    id: str
    """Stable id: ``extra_info.index`` of verl rows (e.g. ``"AIME24-0"``), else ``"<data_source>-<row>"``."""

    messages: tuple[dict, ...]
    """Chat messages as stored; the problem is the last user message's content."""

    ground_truth: str
    """The answer exactly as stored (benchmarks may store ``"\\boxed{204}"``)."""

    data_source: str
    """Where the row comes from (``"AIME24"``, ``"DAPO-17k"``, ``"math_dapo"``, ...)."""

    @property
    def problem(self) -> str:
        """Content of the last user message."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def answer(self) -> str:
        """``ground_truth`` with one outer ``\\boxed{}`` removed, if the whole string is one box."""
        if last_boxed_only_string(self.ground_truth) == self.ground_truth:
            return remove_boxed(self.ground_truth)
        return self.ground_truth


# ---- loading ----------------------------------------------------------------------------------------------

def load_rows(source: str, *, limit: int | None = None, data_dir: str | None = None,
              strip_dapo_template: bool = False, dedup: bool = False) -> list[MathRow]:
    """Load math rows from a benchmark name (``"AIME24"``), a hub dataset id or a local parquet/JSONL path.

    A benchmark name resolves to ``<data_dir>/<local_file>`` when that file exists (``data_dir`` defaults to
    ``$JUSTRL_DATA_DIR``), else to its hub copy. A hub id may end in ``:split`` (``"HuggingFaceH4/MATH-500:test"``);
    a local folder is read like a hub dataset repository (e.g. a ``git clone`` of one).
    ``strip_dapo_template`` removes DAPO's instruction wrapper from problems; ``dedup`` drops rows whose
    (problem, ground truth) repeats an earlier row. ``limit`` keeps the first rows (after dedup).
    Several sources separated by commas (``"AIME24,AIME25,AMC23"``, as in ``config.val_data``) are concatenated.
    """
    if isinstance(source, str) and "," in source and not Path(source).exists():
        parts = [part.strip() for part in source.split(",") if part.strip()]
    else:
        parts = [source]
    rows: list[MathRow] = []
    seen: set[tuple[str, str]] = set()
    if limit is not None and limit < 1:
        raise ValueError(f"limit = {limit}: must be >= 1 (or None for all rows)")
    for part in parts:
        if limit is not None and len(rows) >= limit:
            break
        origin, records, default_source = _open_source(part, data_dir)
        n_records = 0
        for i, record in records:
            if limit is not None and len(rows) >= limit:
                break
            n_records += 1
            row = parse_row(record, origin=origin, row=i, default_source=default_source)
            if strip_dapo_template:
                row = with_problem(row, strip_dapo_instruction(row.problem))
            if dedup:
                key = (row.problem, row.ground_truth)
                if key in seen:
                    continue
                seen.add(key)
            rows.append(row)
        if n_records == 0:
            raise DataError(f"{origin}: no rows found; pass a file or dataset that holds math problems")
    return rows


def _open_source(source: str, data_dir: str | None) -> tuple[str, Iterator[tuple[int, dict]], str]:
    """(description for messages, iterator of (row number, record), data source name for schema-2 rows)."""
    if not isinstance(source, str) or not source.strip():
        raise DataError(f"data source {source!r} is empty: pass a benchmark name, a hub id or a parquet/JSONL path")
    spec = find_benchmark(source)
    if spec is not None:
        path = find_local_copy(spec.local_file, data_dir)
        if path is not None:
            return str(path), _read_local(path), spec.name
        folders = " or ".join(str(d) for d in local_data_dirs(data_dir))
        return _open_hub(spec.hub_id, spec.hub_split, spec.name, tried_folder=folders, spec=spec)
    if source in LOCAL_TRAINING_SETS and find_local_copy(LOCAL_TRAINING_SETS[source], data_dir) is not None:
        path = find_local_copy(LOCAL_TRAINING_SETS[source], data_dir)
        logger.warning("%s: reading the local copy %s (template-free, de-duplicated) instead of the hub", source,
                       path)
        return str(path), _read_local(path), _source_name(path)
    if source.endswith(LOCAL_SUFFIXES) or Path(source).is_file():
        path = _find_local(source)
        return str(path), _read_local(path), _source_name(path)
    folder_path = next((p for p in (Path(source), PROJECT_ROOT / source) if p.is_dir()), None)
    if folder_path is not None:  # a local copy of a hub dataset repository (e.g. a git clone of it)
        return _open_hub(str(folder_path), "", folder_path.name, tried_folder=None, spec=None)
    if re.fullmatch(r"[\w.-]+/[\w.-]+(:[\w.-]+)?", source):
        hub_id, _, split = source.partition(":")
        return _open_hub(hub_id, split, hub_id.split("/")[-1], tried_folder=None, spec=None)
    known = ", ".join(BENCHMARKS)
    raise DataError(f"data source {source!r} is neither a benchmark name ({known}), a local .parquet/.jsonl/.json "
                    f"file or dataset folder, nor a hub id of the form 'owner/name'")


def _find_local(source: str) -> Path:
    """``source`` against the working directory, then the project root (as ``config.resolve_path``)."""
    candidates = [Path(source)] if Path(source).is_absolute() else [Path.cwd() / source, PROJECT_ROOT / source]
    candidates = list(dict.fromkeys(candidates))
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise DataError(f"data file {source!r} not found (looked in: {tried}); pass an existing parquet/JSONL path, "
                    f"a benchmark name (local copies: ${DATA_DIR_ENV}, evaluate --data-dir, or {SHARED_DATA_DIR}), "
                    f"or a hub dataset id")


def _source_name(path: Path) -> str:
    spec = find_benchmark(path.stem.removesuffix("_test"))
    return spec.name if spec else path.stem


def _read_local(path: Path) -> Iterator[tuple[int, dict]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            records = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for unreadable files
            raise DataError(f"{path}: not a readable parquet file ({e}); re-export it with pandas.to_parquet") from e
        return iter(enumerate(records))
    return _read_json(path)


def _read_json(path: Path) -> Iterator[tuple[int, dict]]:
    """JSON lines (one object a line), or one JSON list of objects when the whole file parses as a list."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 JSON lines") from e
    if path.suffix == ".json":
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # fall through: JSON lines in a .json file
        if isinstance(whole, list):
            yield from enumerate(whole)
            return
    row = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}, row {row} (line {lineno}): not valid JSON ({e.msg}); "
                            "fix or remove the line") from e
        yield row, record
        row += 1


def _open_hub(hub_id: str, split: str, name: str, *, tried_folder: str | None,
              spec: BenchmarkSpec | None) -> tuple[str, Iterator[tuple[int, dict]], str]:
    """``datasets.load_dataset(hub_id, split=...)``; with no split, the only one, else ``train``."""
    import datasets

    where = ""
    if spec is not None:
        where = (f" No local copy: {spec.local_file!r} is not in {tried_folder}. Set ${DATA_DIR_ENV} (or pass "
                 f"evaluate --data-dir) to a folder holding it.")
    offline = None if offline_variable() or Path(hub_id).is_dir() else probe_failure()
    if offline is not None:  # fail now, not after a minute of retries
        raise DataError(f"cannot load hub dataset {hub_id!r}: {offline}.{where} Without the hub pass a local "
                        f"parquet/JSONL path instead.")
    try:
        loaded = datasets.load_dataset(hub_id, split=split or None)
    except Exception as e:  # network, auth and missing-dataset errors come in many types
        raise DataError(f"could not load hub dataset {hub_id!r} ({type(e).__name__}: {e}).{where} On an offline "
                        f"machine pass a local parquet/JSONL path instead.") from e
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if len(splits) == 1:
            split = splits[0]
        elif "train" in splits:
            split = "train"
        else:
            raise DataError(f"hub dataset {hub_id!r} has splits {splits}; pick one as '{hub_id}:<split>'")
        loaded = loaded[split]
    return f"dataset {hub_id}" + (f" (split {split})" if split else ""), iter(enumerate(loaded)), name


# ---- one row ----------------------------------------------------------------------------------------------

def parse_row(record: Any, *, origin: str, row: int, default_source: str) -> MathRow:
    """One stored record (either schema) -> ``MathRow``; a malformed record raises ``DataError`` naming it."""
    def bad(what: str) -> DataError:
        return DataError(f"{origin}, row {row}: {what}; fix or remove this row")

    if not isinstance(record, dict):
        raise bad(f"expected an object with fields, got {type(record).__name__}")
    if "prompt" in record or "reward_model" in record:
        messages = _parse_messages(record.get("prompt"), bad)
        reward_model = record.get("reward_model")
        if not isinstance(reward_model, dict) or reward_model.get("ground_truth") is None:
            raise bad("missing answer: verl rows need reward_model.ground_truth")
        ground_truth = _parse_answer(reward_model["ground_truth"], "reward_model.ground_truth", bad)
        data_source = record.get("data_source") or default_source
        if not isinstance(data_source, str):
            raise bad(f"data_source must be a string, got {type(data_source).__name__}")
        extra_info = record.get("extra_info")
        index = extra_info.get("index") if isinstance(extra_info, dict) else None
        row_id = index if isinstance(index, str) and index else f"{data_source}-{row if index is None else index}"
        return MathRow(id=row_id, messages=messages, ground_truth=ground_truth, data_source=data_source)

    problem_key = next((k for k in ("problem", "question") if k in record), None)
    if problem_key is None:
        raise bad(f"unknown schema (fields {sorted(record)}): expected verl rows (prompt, reward_model) or "
                  f"problem/answer rows (problem or question, answer)")
    problem = record[problem_key]
    if not isinstance(problem, str) or not problem.strip():
        raise bad(f"empty prompt: {problem_key!r} must be a non-empty string, got {problem!r:.60}")
    if record.get("answer") is None:
        raise bad("missing answer: problem/answer rows need an 'answer'")
    ground_truth = _parse_answer(record["answer"], "answer", bad)
    return MathRow(id=f"{default_source}-{row}", messages=({"role": "user", "content": problem},),
                   ground_truth=ground_truth, data_source=default_source)


def _parse_messages(prompt: Any, bad: Callable[[str], DataError]) -> tuple[dict, ...]:
    if not isinstance(prompt, (list, tuple)) or not prompt:
        raise bad(f"prompt must be a non-empty list of {{role, content}} messages, got {type(prompt).__name__}")
    messages = []
    for m in prompt:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise bad(f"each prompt message must be {{'role': str, 'content': str}}, got {m!r:.80}")
        messages.append({"role": m["role"], "content": m["content"]})
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        raise bad("prompt has no user message")
    if not users[-1]["content"].strip():
        raise bad("empty prompt: the last user message has no text")
    return tuple(messages)


def _parse_answer(value: Any, field: str, bad: Callable[[str], DataError]) -> str:
    """Strings as stored; integers (some hub copies store AIME answers as int64) as their decimal string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad(f"{field} must be a string (or an integer), got {type(value).__name__} {value!r:.40}")
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise bad(f"missing answer: {field} is empty")
    return text


def strip_dapo_instruction(problem: str) -> str:
    """Remove DAPO's "Solve the following ... Answer: $Answer ..." wrapper, if present; otherwise unchanged."""
    if problem.startswith(DAPO_TEMPLATE_PREFIX):
        problem = problem[len(DAPO_TEMPLATE_PREFIX):]
    return problem.removesuffix(DAPO_TEMPLATE_SUFFIX)


def with_problem(row: MathRow, problem: str) -> MathRow:
    """``row`` with its last user message replaced by ``problem``."""
    messages = list(row.messages)
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    messages[last] = {**messages[last], "content": problem}
    return MathRow(id=row.id, messages=tuple(messages), ground_truth=row.ground_truth, data_source=row.data_source)
