"""Notebook rows: the authors' files, else the hub (mocked here: no internet), else the specimens that ship."""

from __future__ import annotations

import socket

import pytest

from justrl_lite.benchmarks import BENCHMARKS
from justrl_lite.boxed import last_boxed_only_string
from justrl_lite.course import notebook_data as nd
from justrl_lite.data import DataError
from justrl_lite.verifier import DAPO_INNER_WINDOW, dapo_reward

ALL = [*BENCHMARKS, nd.DAPO]


def test_every_name_ships_specimens_in_the_authors_schema():
    found = nd.benchmark_rows(ALL, data_dir="", hub=False, say=lambda _: None)
    assert found.source == dict.fromkeys(ALL, "specimens") and not found.real
    for name, rows in found.rows.items():
        assert rows, name
        for r in rows:
            assert r.problem and r.ground_truth and r.messages[-1]["role"] == "user", (name, r)
            # every specimen answer, written as the last box, earns the strict reward (none is mis-stored)
            if len(f"\\boxed{{{r.answer}}}") <= DAPO_INNER_WINDOW:
                assert dapo_reward(f"So the answer is \\boxed{{{r.answer}}}.", r.answer) == 1.0, (name, r.answer)
    # the formats the notebooks teach with
    aime24 = found.rows["AIME24"]
    assert all(last_boxed_only_string(r.ground_truth) == r.ground_truth != r.answer for r in aime24)
    assert sum("\\frac" in r.answer for r in found.rows["MATH-500"]) >= 8
    assert any(r.answer.startswith("$") for r in found.rows["OlympiadBench"])
    assert any(len(f"\\boxed{{{r.answer}}}") > DAPO_INNER_WINDOW for r in found.rows["OlympiadBench"])
    assert all(r.id.startswith(name) and "specimen" in r.id for name in BENCHMARKS if name in ("AIME24", "MATH-500")
               for r in found.rows[name])
    assert sum(p.stat().st_size for p in nd.SPECIMENS_DIR.glob("*.jsonl")) < 100_000  # small files only


def test_local_files_win(shared_data_dir):
    found = nd.benchmark_rows(["AIME24", "MATH-500", nd.DAPO], data_dir=str(shared_data_dir), limit=None, hub=False,
                              say=lambda _: None)
    assert found.source == dict.fromkeys(["AIME24", "MATH-500", nd.DAPO], "local") and found.real
    assert len(found.rows["AIME24"]) == BENCHMARKS["AIME24"].n_rows
    assert len(found.rows[nd.DAPO]) == 17_917
    assert "note:" not in found.message and str(shared_data_dir) in found.message


def test_hub_when_reachable_and_one_message_when_not(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(hub_id, split=None, streaming=False):
        calls.append((hub_id, split, streaming))
        if hub_id == "MathArena/aime_2025":
            raise ConnectionError("simulated outage")
        records = [{"problem": f"p{i}", "answer": str(i)} for i in range(50)]
        return iter(records) if streaming else datasets.Dataset.from_list(records)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    import justrl_lite.data

    monkeypatch.setattr(justrl_lite.data, "probe_failure", lambda: None)  # data.py's own probe: the hub answers
    said = []
    found = nd.benchmark_rows(["AIME24", "AIME25", nd.DAPO], data_dir="", limit=5, hub=True, say=said.append)
    assert found.source == {"AIME24": "hub", "AIME25": "specimens", nd.DAPO: "hub"}
    assert [r.answer for r in found.rows["AIME24"]] == ["0", "1", "2", "3", "4"]
    assert len(found.rows[nd.DAPO]) == 5 and found.rows[nd.DAPO][0].data_source == "math_dapo"
    assert (nd.DAPO_HUB_ID, "train", True) in calls  # DAPO streamed, never downloaded whole
    assert said == [found.message] and "simulated outage" in found.message and "made-up problems" in found.message

    # unreachable hub: probed once, no dataset call, one message
    calls.clear()
    monkeypatch.setattr(nd, "hub_reachable", lambda: False)
    said.clear()
    found = nd.benchmark_rows(["AIME24", "MATH-500"], data_dir="", say=said.append)
    assert calls == [] and len(said) == 1 and "hub is not reachable" in said[0]
    assert found.source == dict.fromkeys(["AIME24", "MATH-500"], "specimens")


def test_hub_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not nd.hub_reachable()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        assert nd.hub_reachable(timeout=2)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")  # closed now
    assert not nd.hub_reachable(timeout=2)


def test_unknown_name_is_one_clear_error():
    with pytest.raises(DataError, match="unknown benchmark"):
        nd.benchmark_rows(["AIME2099"], hub=False, say=lambda _: None)


def test_gpu_demo_is_opt_in_and_picks_float16_without_bfloat16(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    run, why = nd.gpu_demo_plan({})
    assert not run and nd.GPU_DEMO_ENV in why                            # not asked for: nothing downloads
    assert nd.gpu_demo_plan({nd.GPU_DEMO_ENV: "1"}) == (True, "float16")  # a T4: no bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert nd.gpu_demo_plan({nd.GPU_DEMO_ENV: "1"}) == (True, "bfloat16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert nd.gpu_demo_plan({nd.GPU_DEMO_ENV: "1"}) == (False, "skipped: no CUDA GPU")
