"""Every option or field a message names exists; regrade's command line; local data for training and evaluation
alike; hub look-ups that fail in seconds when the hub cannot be reached (issue 22, item 7)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from justrl_lite.config import PROJECT_ROOT, JustRLConfig

PACKAGE = PROJECT_ROOT / "justrl_lite"


def _text(node: ast.AST) -> str:
    """The literal text of the strings under ``node``; an f-string's ``{...}`` parts become ``{}``."""
    parts = []
    for n in ast.walk(node):
        if isinstance(n, ast.JoinedStr):
            parts.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values))
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            parts.append(n.value)
    return " ".join(parts)


def _messages() -> list[tuple[str, int, str]]:
    """(file, line, text) of every raised error, print/error/warning call and UPPER_CASE message constant."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n in ast.walk(ast.parse(path.read_text())):
            node = None
            if isinstance(n, ast.Raise) and n.exc is not None:
                node = n.exc
            elif isinstance(n, ast.Call) and (getattr(n.func, "id", None) == "print"
                                              or getattr(n.func, "attr", None) in ("error", "warning", "warn")):
                node = n
            elif isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in n.targets):
                node = n.value
            if node is not None:
                found.append((str(path.relative_to(PROJECT_ROOT)), n.lineno, _text(node)))
    return found


def _parser_options() -> set[str]:
    """Every ``--option`` an ``add_argument`` call of the package declares, and argparse's ``--help``."""
    options = {"--help"}
    for path in PACKAGE.rglob("*.py"):
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "add_argument":
                options |= {a.value for a in n.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")}
    return options


def _python_keywords() -> dict[str, object]:
    """``name=`` mentions that are keyword arguments of a Python call the message names, not config fields."""
    from justrl_lite.evaluate import evaluate
    from justrl_lite.evaluation.judge import CompassVerifierJudge
    from justrl_lite.loss import micro_batch_scale
    from justrl_lite.scale.estimate import memory_rows
    from justrl_lite.scale.verl_reward import compute_score
    from justrl_lite.toy.overlong_zone import zone_share
    from justrl_lite.vllm_rollout import VLLMRollout

    return {"out_dir": evaluate, "engine": evaluate, "generate": CompassVerifierJudge,
            "micro_seqs": micro_batch_scale, "mini_seqs": micro_batch_scale, "micro_tokens": micro_batch_scale,
            "mini_tokens": micro_batch_scale, "verifier": compute_score, "gpus": memory_rows,
            "seeded": VLLMRollout, "cap": zone_share, "buffer": zone_share}


EXTERNAL = {"logprobs", "flat_logprobs"}
"""vLLM ``SamplingParams`` fields, named by an internal consistency error in vllm_rollout.py (vLLM is not
importable in this venv, so they are not checked here)."""


def test_every_option_and_field_a_message_names_exists():
    options, fields = _parser_options(), {f.name for f in dataclasses.fields(JustRLConfig)}
    keywords = _python_keywords()
    for name, func in keywords.items():
        assert name in inspect.signature(func).parameters, (name, func)
    messages = _messages()
    assert len(messages) > 100  # the collector sees the package's messages
    bad = []
    for where, line, text in messages:
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", text):
            if option not in options:
                bad.append(f"{where}:{line}: {option}")
        # name= followed by a value or nothing is a hint; name={...} reports a value
        for name in re.findall(r"(?<![\w.$])([a-z_][a-z0-9_]*)=(?![={])", text):
            if name not in fields and name not in keywords and name not in EXTERNAL and name != "field":
                bad.append(f"{where}:{line}: {name}=")
    assert not bad, "messages name options or fields that do not exist: " + "; ".join(sorted(set(bad)))


def test_the_collector_catches_the_hints_issue_22_found():
    """The two wrong hints of issue 22, put back in a message, would fail the test above."""
    options, fields = _parser_options(), {f.name for f in dataclasses.fields(JustRLConfig)}
    assert "--engine" in options  # evaluate --engine hf exists: the vLLM hint now says `evaluate --engine hf`
    assert "data_dir" not in fields and "data_dir" not in _python_keywords()
    vllm_hint = next(t for w, _, t in _messages() if w.endswith("vllm_rollout.py") and "needs vLLM" in t)
    assert "evaluate --engine hf" in vllm_hint and "rollout_engine=hf" in vllm_hint


def test_regrade_is_not_a_command_and_says_which_one_is():
    """Regrading is `evaluate --regrade`; running the module says so in one message (not silence and exit 0)."""
    for args in (["--help"], ["/nonexistent/results"]):
        done = subprocess.run([sys.executable, "-m", "justrl_lite.evaluation.regrade", *args], capture_output=True,
                              text=True, timeout=120, cwd=PROJECT_ROOT)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "python -m justrl_lite.evaluate --regrade DIR" in done.stderr
    done = subprocess.run([sys.executable, "-m", "justrl_lite.evaluate", "--regrade", "/nonexistent/results"],
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert done.returncode == 2 and done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_training_and_evaluation_find_local_data_the_same_way(shared_data_dir, monkeypatch, caplog):
    from justrl_lite import data

    for env in (str(shared_data_dir), None):  # $JUSTRL_DATA_DIR, else the default ../shared/justrl_data
        if env is None:
            monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
            monkeypatch.setattr(data, "SHARED_DATA_DIR", shared_data_dir)
        else:
            monkeypatch.setenv(data.DATA_DIR_ENV, env)
        train = data.load_rows(JustRLConfig.paper().train_data, limit=2)
        aime = data.load_rows("AIME24", limit=2)
        assert len(train) == len(aime) == 2
        assert data.local_data_dirs()[-1] == shared_data_dir
    assert "DAPO-Math-17k_dedup17917_from_MasterVito-SvS.parquet" in caplog.text  # says which copy it reads


def test_hub_lookups_fail_in_seconds_when_the_hub_is_unreachable(monkeypatch, tmp_path, capsys):
    from justrl_lite import data, evaluate, hub

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once
    for var in hub.OFFLINE_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    hub.probe_failure.cache_clear()
    start = time.perf_counter()
    with pytest.raises(data.DataError, match=r"127\.0\.0\.1:9 is unreachable"):
        data.load_rows("someone/no-such-dataset")
    rc = evaluate.main(["--model", "someone/no-such-model", "--benchmarks", "toy=data/toy/test.jsonl",
                        "--out", str(tmp_path / "eval"), "--device", "cpu"])
    assert rc == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: --model 'someone/no-such-model' is not a local folder") and "unreachable" in line
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE" in hub.model_unreachable_reason("someone/no-such-model")
    assert time.perf_counter() - start < 10
    hub.probe_failure.cache_clear()
    assert not (tmp_path / "eval").exists() or not any((tmp_path / "eval").iterdir())


def test_training_on_an_unreachable_hub_model_is_one_line_in_seconds(monkeypatch, tmp_path):
    env = {**__import__("os").environ, "HF_ENDPOINT": "http://127.0.0.1:9", "OMP_NUM_THREADS": "1"}
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(var, None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "justrl_lite.full_run", "--preset", "tiny", "--no-progress",
                           "model_name_or_path=someone/no-such-model", f"output_dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: model_name_or_path='someone/no-such-model'")
    assert time.perf_counter() - start < 30
    assert not Path(tmp_path / "run").exists()


def test_every_command_the_docs_name_is_a_module_with_a_main():
    """``python -m justrl_lite.X`` in the package, README, docs and notebooks names a module that runs as a command."""
    import ast as _ast
    from pathlib import Path as _Path

    named = set()
    for folder, pattern in (("justrl_lite", "*.py"), ("docs", "*.md"), ("notebooks", "*.ipynb"), (".", "README.md")):
        for p in (PROJECT_ROOT / folder).rglob(pattern) if folder != "." else [PROJECT_ROOT / "README.md"]:
            named |= set(re.findall(r"python -m (justrl_lite(?:\.[a-z_]+)+)", p.read_text()))
    assert "justrl_lite.full_run" in named
    bad = []
    for module in sorted(named):
        path = _Path(PROJECT_ROOT, *module.split("."))
        source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__main__.py"
        if not source.is_file():
            bad.append(f"{module}: no such module")
            continue
        tree = _ast.parse(source.read_text())
        if not any(isinstance(n, _ast.If) and "__main__" in _ast.unparse(n.test) for n in tree.body):
            bad.append(f"{module}: not a command (no __main__ block)")
    assert not bad, bad
