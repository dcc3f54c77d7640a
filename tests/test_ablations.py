"""ablations: the command line notebook 06 parses its stored command with, and the runs one command plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from justrl_lite import ablations
from justrl_lite.config import JustRLConfig
from justrl_lite.config_checks import ConfigError


def test_planned_runs_follow_the_command():
    args = ablations.build_parser().parse_args(
        ["--seeds", "4", "5", "--variants", "overlong", "justrl", "--out", "o", "total_steps=7"])
    runs = ablations.planned_runs(args)
    assert [(v, s) for v, s, _ in runs] == [("overlong", 4), ("overlong", 5), ("justrl", 4), ("justrl", 5)]
    base = JustRLConfig.tiny().replace(total_steps=7)
    for variant, seed, cfg in runs:
        assert cfg == base.replace(**ablations.VARIANTS[variant], seed=seed,
                                   output_dir=str(Path("o") / variant / f"seed{seed}"))
    assert runs[0][2].overlong_penalty and not runs[2][2].overlong_penalty


def test_parser_defaults_and_errors():
    args = ablations.build_parser().parse_args([])
    assert (args.seeds, args.variants, args.out, args.store) == ([1, 2, 3], list(ablations.VARIANTS),
                                                                "runs/ablations", None)
    assert len(ablations.planned_runs(args)) == 3 * len(ablations.VARIANTS)
    with pytest.raises(SystemExit):
        ablations.build_parser().parse_args(["--variants", "kl"])
    with pytest.raises(ConfigError, match="unknown ablation"):
        ablations.variant_config(JustRLConfig.tiny(), "kl", 1, Path("o"))


def test_module_calls_splits_a_chained_command_and_drops_the_note():
    line = ("OMP_NUM_THREADS=1 python -m justrl_lite.ablations --seeds 1 --out o total_steps=5 && "
            "python -m justrl_lite.ablations --variants justrl --seeds 2 --out o total_steps=5 > log.txt; "
            "python -m justrl_lite.plots x  # note: --seeds 9")
    assert ablations.module_calls(line, "justrl_lite.ablations") == [
        ["--seeds", "1", "--out", "o", "total_steps=5"],
        ["--variants", "justrl", "--seeds", "2", "--out", "o", "total_steps=5"]]
    assert ablations.module_calls(line, "justrl_lite.plots") == [["x"]]
    with pytest.raises(ValueError, match="expected `python -m justrl_lite.full_run`"):
        ablations.module_calls(line, "justrl_lite.full_run")


def test_planned_from_command_unions_the_calls_and_refuses_a_run_planned_twice_differently():
    line = ("python -m justrl_lite.ablations --variants justrl overlong --seeds 1 2 --out o total_steps=7; "
            "python -m justrl_lite.ablations --variants justrl --seeds 3 --out o total_steps=7")
    plan = ablations.planned_from_command(line)
    assert sorted(plan) == [("justrl", 1), ("justrl", 2), ("justrl", 3), ("overlong", 1), ("overlong", 2)]
    args = ablations.build_parser().parse_args(["--variants", "justrl", "--seeds", "3", "--out", "o",
                                                "total_steps=7"])
    assert plan[("justrl", 3)] == ablations.planned_runs(args)[0][2]
    # the same run planned again with the same settings: fine
    assert ablations.planned_from_command(line + " && " + line.split("; ")[1]) == plan
    with pytest.raises(ValueError, match="justrl seed 3 twice"):
        ablations.planned_from_command(line + " && python -m justrl_lite.ablations --variants justrl "
                                       "--seeds 3 --out o "
                                       "total_steps=8")


def test_the_stored_fractions_command_plans_the_three_arms_with_the_measured_cap():
    import json

    root = Path(__file__).resolve().parents[1]
    plan = ablations.planned_from_command((root / "data" / "ablations_frac" / "COMMAND").read_text())
    zone = json.loads((root / "data" / "toy_frac" / "overlong_zone.json").read_text())
    assert sorted({v for v, _ in plan}) == sorted(ablations.VARIANTS)
    assert len(plan) == 3 * len(ablations.VARIANTS)
    for cfg in plan.values():
        assert (cfg.max_response_length, cfg.overlong_buffer_len) == (zone["max_response_length"],
                                                                      zone["overlong_buffer_len"])
        assert cfg.val_max_response_length == cfg.max_response_length and cfg.cpu_threads == 1


def test_a_run_is_complete_only_when_it_ends_at_total_steps(tmp_path):
    import json

    cfg = JustRLConfig.tiny().replace(total_steps=3, output_dir=str(tmp_path))
    assert not ablations.is_complete(cfg)
    # 4: resumed with fewer steps, must be cut back
    for last, complete in ((2, False), (3, True), (4, False)):
        lines = "".join(json.dumps({"step": t}) + "\n" for t in range(last + 1))
        (tmp_path / "metrics.jsonl").write_text(lines)
        assert ablations.is_complete(cfg) == complete
