"""The bookkeeping of the stored runs notebook 06 reads (moved out of the notebook's teaching path): every
step once, validation where the config says, held-out pass@1 a count over its samples, and the facts that hold
by construction in ``trainer.train_step`` (mean reward 2a - 1 without a penalty, the penalty's bounds, entropy
and length ranges, the lr warm-up). Each stored file is checked against the config its COMMAND plans."""

from __future__ import annotations

import json
import math

import pytest

from justrl_lite import ablations, full_run
from justrl_lite.ablation_report import load_store
from justrl_lite.config import PROJECT_ROOT, JustRLConfig
from justrl_lite.metrics import read_metrics

VAL = "val/pass@1"
DATA = PROJECT_ROOT / "data"


def check_structure(rows: list[dict], cfg: JustRLConfig) -> None:
    """Steps 0..total once each; step 0 only validation; validation at 0, every val_every and the last step;
    held-out pass@1 an integer count over min(val_max_prompts, held-out prompts) x val_samples_per_prompt."""
    assert [r["step"] for r in rows] == list(range(cfg.total_steps + 1))
    assert "policy/entropy" not in rows[0] and VAL in rows[0]
    want = sorted({0, cfg.total_steps, *range(cfg.val_every, cfg.total_steps + 1, cfg.val_every)})
    assert [r["step"] for r in rows if VAL in r] == want
    prompts = min(cfg.val_max_prompts or rows[0]["val_prompts"], rows[0]["val_prompts"])
    n_val = prompts * cfg.val_samples_per_prompt
    for r in rows:
        if VAL in r:
            assert abs(r[VAL] * n_val - round(r[VAL] * n_val)) < 1e-6, r["step"]


def check_by_construction(rows: list[dict], cfg: JustRLConfig, vocab_size: int) -> None:
    """Per training step: the reward identity or the penalty's bounds, entropy in (0, ln|V|], lengths in
    [1, cap] with the truncated ones at the cap, and lr_t = lr * min(1, (t - 1) / warm-up)."""
    B = cfg.responses_per_step
    tol = 1e-9 if B & (B - 1) == 0 else 1e-6            # a float32 mean of +-1 over 2^k responses is exact
    for r in rows[1:]:
        # mean penalty per response = r_mean - (2a - 1), in [-kappa, 0]
        penalty = r["reward/mean"] - (2 * r["reward/accuracy"] - 1)
        if cfg.overlong_penalty:
            assert -cfg.overlong_penalty_factor - 1e-6 <= penalty <= 1e-6, r["step"]
            # each truncated response pays the full kappa; each penalised one pays at most kappa
            assert -penalty >= cfg.overlong_penalty_factor * r["response_length/truncated_frac"] - 1e-6
            if "reward/overlong_frac" in r:
                assert -penalty <= cfg.overlong_penalty_factor * r["reward/overlong_frac"] + 1e-6
                assert r["reward/overlong_frac"] >= r["response_length/truncated_frac"] - 1e-9
                assert (r["reward/overlong_frac"] > 0) == (penalty < -1e-7)
        else:
            assert abs(penalty) <= tol, r["step"]
            assert r.get("reward/overlong_frac", 0.0) == 0.0
        assert math.isfinite(r["policy/entropy"]) and 0 < r["policy/entropy"] <= math.log(vocab_size)
        assert 1 <= r["response_length/mean"] <= r["response_length/max"] <= cfg.max_response_length
        assert 0 <= r["response_length/truncated_frac"] <= 1
        at_cap = r["response_length/truncated_frac"] * cfg.max_response_length
        assert r["response_length/mean"] >= at_cap - 1e-9
        if r["response_length/truncated_frac"] > 0:
            assert r["response_length/max"] == cfg.max_response_length
        warm = 1.0 if cfg.lr_warmup_steps == 0 else min(1.0, (r["step"] - 1) / cfg.lr_warmup_steps)
        assert math.isclose(r["actor/lr"], cfg.lr * warm, rel_tol=1e-9, abs_tol=1e-15), r["step"]


def vocab(cfg: JustRLConfig) -> int:
    return json.loads((PROJECT_ROOT / cfg.model_name_or_path / "config.json").read_text())["vocab_size"]


def test_the_tiny_run_logs_are_consistent():
    command = (DATA / "tiny_run" / "COMMAND").read_text()
    (call,) = ablations.module_calls(command, "justrl_lite.full_run")
    cfg = full_run.resolve_config(full_run.parse_args(call))
    rows = read_metrics(DATA / "tiny_run" / "metrics.jsonl")
    check_structure(rows, cfg)
    check_by_construction(rows, cfg, vocab(cfg))


@pytest.mark.parametrize("store", ["ablations", "ablations_frac"])
def test_every_stored_ablation_run_matches_its_planned_config(store):
    plan = ablations.planned_from_command((DATA / store / "COMMAND").read_text())
    runs = load_store(DATA / store)
    stored = [(v, s) for v, by_seed in runs.items() for s in by_seed]
    assert stored, f"no runs stored in data/{store}"
    assert set(stored) <= set(plan), f"data/{store} holds runs its COMMAND does not plan"
    for v, s in stored:
        rows, cfg = runs[v][s], plan[(v, s)]
        if rows[-1]["step"] == cfg.total_steps:
            check_structure(rows, cfg)
        else:   # a sweep still going: its steps so far, each once
            assert [r["step"] for r in rows] == list(range(rows[-1]["step"] + 1))
        check_by_construction(rows, cfg, vocab(cfg))


def test_the_checks_fail_on_broken_logs():
    cfg = JustRLConfig.tiny().replace(total_steps=2, val_every=1, overlong_penalty=True,
                                      max_response_length=10,
                                      overlong_buffer_len=4)
    row = {"reward/mean": -1.5, "reward/accuracy": 0.0, "reward/overlong_frac": 0.5, "policy/entropy": 0.5,
           "response_length/mean": 8.0, "response_length/max": 10, "response_length/truncated_frac": 0.5,
           "actor/lr": 0.0}
    good = [{"step": 0, VAL: 0.5, "val_prompts": 4}, {"step": 1, **row, VAL: 0.25},
            {"step": 2, **row, "actor/lr": cfg.lr / cfg.lr_warmup_steps, VAL: 0.25}]
    check_structure(good, cfg)
    check_by_construction(good, cfg, 100)
    broken = [
        (check_structure, [good[0], good[2]]),                                        # a missing step
        (check_structure, [{**good[0], VAL: 0.3}, *good[1:]]),                         # 0.3 of 16 samples
        # the mean penalty (0.5) above what a share of 0.1 of responses can pay
        (check_by_construction, [good[0], {**good[1], "reward/overlong_frac": 0.1}, good[2]]),
        (check_by_construction, [good[0], {**good[1], "actor/lr": 1.0}, good[2]]),     # lr off the warm-up
        (check_by_construction, [good[0], {**good[1], "response_length/max": 9}, good[2]]),  # truncated < cap
    ]
    for check, rows in broken:
        with pytest.raises(AssertionError):
            check(rows, cfg) if check is check_structure else check(rows, cfg, 100)
