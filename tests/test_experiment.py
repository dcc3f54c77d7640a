"""experiment: the hands-on experiment's settings, its errors, a (shortened) run and rerun, and the committed
reference runs of the recipe on the experiment's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from justrl_lite.config import PROJECT_ROOT, JustRLConfig
from justrl_lite.config_checks import ConfigError
from justrl_lite.course import experiment
from justrl_lite.metrics import read_metrics


def test_config_is_the_tiny_preset_with_the_experiment_settings_and_the_change(tmp_path):
    cfg = experiment.experiment_config({"clip_ratio_high": 0.2}, seed=2, out=tmp_path)
    want = JustRLConfig.tiny().with_overrides(list(experiment.EXPERIMENT_OVERRIDES))
    out = str(tmp_path / "clip_ratio_high=0.2" / "seed2")
    assert cfg == want.replace(clip_ratio_high=0.2, seed=2, output_dir=out)
    assert (cfg.total_steps, cfg.val_every) == (30, 10)
    assert experiment.experiment_config({}, out=tmp_path).output_dir == str(tmp_path / "recipe" / "seed1")
    with pytest.raises(ConfigError, match="lora_rank.. is not one of them"):
        experiment.experiment_config({"lora_rank": 8})
    with pytest.raises(ConfigError, match="clip_ratio_high"):
        experiment.experiment_config({"clip_ratio_high": -1.0})
    with pytest.raises(ConfigError, match="bad experiment change"):
        experiment.experiment_config({"temperature": "hot"})


@pytest.mark.skipif(not (PROJECT_ROOT / "data" / "toy" / "base" / "config.json").exists(),
                    reason="toy base not built")
def test_a_short_run_trains_once_and_is_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "EXPERIMENT_OVERRIDES",
                        ("total_steps=2", "val_every=2", "save_every=2", "val_max_prompts=2",
                         "prompts_per_step=2",
                         "mini_batch_prompts=1", "val_samples_per_prompt=1", "cpu_threads=1"))
    rows = experiment.run_experiment({"entropy_coeff": 0.01}, seed=3, out=tmp_path)
    assert [r["step"] for r in rows] == [0, 1, 2] and "val/pass@1" in rows[-1]
    path = tmp_path / "entropy_coeff=0.01" / "seed3" / "metrics.jsonl"
    stamp = path.stat().st_mtime_ns
    assert experiment.run_experiment({"entropy_coeff": 0.01}, seed=3, out=tmp_path) == rows
    assert path.stat().st_mtime_ns >= stamp and read_metrics(path) == rows


def test_cli_errors_say_what_to_do(capsys):
    assert experiment.main(["clip_ratio_high"]) == 2
    assert "field=value" in capsys.readouterr().err
    assert experiment.main(["lr=fast"]) == 2
    assert "cannot read 'fast'" in capsys.readouterr().err


def test_the_committed_reference_is_the_recipe_on_the_experiment_settings():
    runs = experiment.load_reference()
    cfg = experiment.experiment_config({})
    command = (experiment.REFERENCE / "COMMAND").read_text()
    assert command.startswith("OMP_NUM_THREADS=1 python -m justrl_lite.course.experiment --seeds")
    seeds = [int(t) for t in command.split("--seeds")[1].split("--")[0].split()]
    assert sorted(int(p.stem[4:]) for p in experiment.REFERENCE.glob("seed*.jsonl")) == seeds
    for rows in runs:
        assert [r["step"] for r in rows] == list(range(cfg.total_steps + 1))
        assert [r["step"] for r in rows if "val/pass@1" in r] == [0, 10, 20, 30]
        assert all(r["reward/overlong_frac"] == 0.0 for r in rows[1:])        # the recipe: no length penalty
    with pytest.raises(FileNotFoundError, match="COMMAND"):
        experiment.load_reference(Path("/nonexistent"))
