"""The verl bridge without verl: rendered overrides, data files, reward function, verl log reading.

The tests that run verl itself (composition, reward loader, core_algos parity) are in tests/test_verl.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from authors_launcher import AUTHORS_LAUNCHER, AUTHORS_RUN_SPECIFIC

from justrl_lite.config import TRAIN_PROMPT_SUFFIX, JustRLConfig
from justrl_lite.config_checks import ConfigError
from justrl_lite.full_run import main as full_run_main
from justrl_lite.scale.verl_launch import (
    NOT_IN_OVERRIDES,
    NOT_RENDERED,
    RENAMED_SINCE_VENDORED,
    command_lines,
    hydra_value,
    known_differences,
    stream,
    verl_overrides,
)
from justrl_lite.scale.verl_metrics import read_run_metrics
from justrl_lite.scale.verl_reward import compute_score

ROOT = Path(__file__).resolve().parents[1]
DAPO_FILE = "DAPO-Math-17k_dedup17917_from_MasterVito-SvS.parquet"


def paper_overrides(**changes) -> dict:
    cfg = JustRLConfig.paper().replace(**{"output_dir": "/runs/x", **changes})
    return verl_overrides(cfg, nnodes=4, gpus_per_node=8, train_file="/d/train.parquet", val_file="/d/val.parquet")


# ---- the command --------------------------------------------------------------------------------

def test_paper_4x8_carries_every_value_of_the_authors_launcher():
    rendered = paper_overrides()
    for key, value in AUTHORS_LAUNCHER.items():
        if key in NOT_RENDERED:
            assert key not in rendered
            continue
        ours = RENAMED_SINCE_VENDORED.get(key, key)
        assert ours in rendered, f"{key} (verl 0.9.1: {ours}) is not rendered"
        assert rendered[ours] == value and type(rendered[ours]) in (type(value), float), (key, rendered[ours], value)
    # run-specific values: same kind of thing, our paths
    assert Path(rendered["actor_rollout_ref.model.path"]).name == Path(
        AUTHORS_RUN_SPECIFIC["actor_rollout_ref.model.path"]).name
    assert rendered["trainer.default_local_dir"] == "/runs/x/checkpoints"
    assert rendered["trainer.validation_data_dir"] == "/runs/x/validation"
    assert rendered["data.train_files"] == "/d/train.parquet"


# A different valid value for every config field, to check that each one reaches the rendered command.
OTHER_VALUES = dict(
    model_name_or_path="nvidia/OpenMath-Nemotron-1.5B", max_prompt_length=2048, max_response_length=8192,
    prompts_per_step=128, rollouts_per_prompt=16, mini_batch_prompts=32, ppo_epochs=2, micro_batch_max_tokens=40000,
    lr=2e-6, lr_warmup_steps=0, adam_betas=(0.9, 0.95), adam_eps=1e-6, weight_decay=0.0, grad_clip=0.5,
    clip_ratio_low=0.1, clip_ratio_high=0.3, clip_ratio_c=3.0, loss_agg_mode="seq-mean-token-mean",
    kl_coef=0.001, entropy_coeff=0.01,
    temperature=0.8, top_p=0.95, top_k=50, rollout_gpu_memory_utilization=0.7, reward_fn="lenient",
    overlong_penalty=True, overlong_buffer_len=1024, overlong_penalty_factor=0.5, total_steps=3440, val_every=25,
    save_every=100, val_samples_per_prompt=16, val_temperature=0.6, val_top_p=0.95, val_max_prompts=10,
    val_grader="paper", seed=7,
    dtype="float16", gradient_checkpointing=False, lora_rank=8, lora_alpha=16, output_dir="/runs/y",
)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(JustRLConfig)])
def test_every_config_field_reaches_the_command_or_says_why_not(field):
    if field in NOT_IN_OVERRIDES:
        assert field not in OTHER_VALUES
        return
    if field == "rollout_engine":  # the one other value is refused with a clear message
        with pytest.raises(ConfigError, match="rollout_engine=vllm"):
            paper_overrides(rollout_engine="hf")
        return
    assert field in OTHER_VALUES, f"new config field {field}: map it in verl_overrides or list it in NOT_IN_OVERRIDES"
    changed = {k: v for k, v in paper_overrides(**{field: OTHER_VALUES[field]}).items()
               if paper_overrides().get(k) != v}
    assert changed, f"{field} does not change the verl command"


def test_kl_and_lenient_and_overlong_map_to_verl_switches():
    o = paper_overrides(kl_coef=0.001, reward_fn="lenient", overlong_penalty=True)
    assert o["actor_rollout_ref.actor.use_kl_loss"] is True and o["actor_rollout_ref.actor.kl_loss_coef"] == 0.001
    assert o["algorithm.use_kl_in_reward"] is False  # never a KL in the reward
    assert o["+reward.custom_reward_function.reward_kwargs.verifier"] == "lenient"
    assert o["+reward.reward_kwargs.overlong_buffer_cfg.enable"] is True


@pytest.mark.parametrize(("nnodes", "gpus", "ok"), [(1, 8, True), (4, 8, True), (1, 3, False), (3, 8, False)])
def test_mini_batch_must_split_evenly_over_gpus(nnodes, gpus, ok):
    cfg = JustRLConfig.paper()  # 64 prompts x 8 = 512 responses per mini-batch
    kwargs = dict(nnodes=nnodes, gpus_per_node=gpus, train_file="t", val_file="v")
    if ok:
        assert verl_overrides(cfg, **kwargs)["trainer.nnodes"] == nnodes
    else:
        with pytest.raises(ConfigError, match="divide evenly"):
            verl_overrides(cfg, **kwargs)


def test_hydra_values_and_argv():
    assert hydra_value(True) == "True" and hydra_value(1e-6) == "1e-06" and hydra_value(10.0) == "10.0"
    assert hydra_value(["console", "tensorboard"]) == "[console,tensorboard]"
    assert hydra_value([0.9, 0.999]) == "[0.9,0.999]" and hydra_value({"eps": 1e-8}) == "{eps:1e-08}"
    argv = command_lines({"a.b": 1, "+c": "x"})
    assert argv == ["python", "-m", "verl.trainer.main_ppo", "a.b=1", "+c=x"]


def test_known_differences_name_the_vendored_only_options():
    text = "\n".join(known_differences(JustRLConfig.paper()))
    for needle in ("micro_batch_weighting=authors", "use_boxed_suffix_prompt", "max_new_tokens", "31744",
                   "only the native trainer"):
        assert needle in text
    assert "only the native trainer" not in "\n".join(
        known_differences(JustRLConfig.paper().replace(micro_batch_weighting="global-token-mean")))


# ---- the command line and the data files ------------------------------------------------------------

def test_dry_run_writes_script_and_verl_parquet(tmp_path, capsys):
    out = tmp_path / "run"
    code = full_run_main(["--engine", "verl", "--nnodes", "1", "--gpus-per-node", "8", "--dry-run", "--preset",
                          "tiny", "rollout_engine=vllm", f"output_dir={out}"])
    assert code == 0
    printed = capsys.readouterr().out
    script = (out / "verl_command.sh").read_text()
    assert printed.startswith(script.strip())  # then verl's estimate on its 8 GPUs
    assert "# verl's memory and time estimate (8 x 80 GB)" in printed and "Trainer: verl (FSDP" in printed
    lines = script.splitlines()
    assert "python -m verl.trainer.main_ppo \\" in lines
    assert "    data.train_batch_size=16 \\" in lines  # one override per line
    assert "    trainer.nnodes=1 \\" in lines and "    trainer.n_gpus_per_node=8" in lines
    assert any("verl.model_merger merge --backend fsdp" in line and "global_step_100/actor" in line for line in lines)
    assert any("justrl_lite.evaluate --model" in line and "--compare paper-deepseek" in line for line in lines)
    assert any("micro_batch_weighting" in line for line in lines)
    assert f"export TENSORBOARD_DIR={out.resolve()}/tensorboard" in lines

    train = pq.read_table(out / "verl_data" / "train.parquet").to_pylist()
    val = pq.read_table(out / "verl_data" / "val.parquet").to_pylist()
    source = [json.loads(line) for line in (ROOT / "data/toy/train.jsonl").read_text().splitlines()]
    assert len(train) == len(source) == 4000 and len(val) == 500
    for row, original in zip(train[:50], source):
        assert row["prompt"] == [{"role": "user", "content": original["prompt"][0]["content"] + TRAIN_PROMPT_SUFFIX}]
        assert row["reward_model"]["ground_truth"] == original["reward_model"]["ground_truth"]
        assert row["data_source"] == "toy-arith" and row["extra_info"]["split"] == "train"
    assert {r["extra_info"]["split"] for r in val} == {"test"}
    assert f"data.train_files={out.resolve()}/verl_data/train.parquet" in script


def test_real_dapo_and_benchmark_rows(tmp_path):
    data_dir = Path(os.environ["JUSTRL_DATA_DIR"])
    if not (data_dir / DAPO_FILE).is_file():
        pytest.skip(f"{DAPO_FILE} not in {data_dir}")
    from justrl_lite.scale.verl_launch import write_verl_data

    cfg = JustRLConfig.paper().replace(train_data=str(data_dir / DAPO_FILE), val_data="AIME24,AMC23")
    train_path, val_path = write_verl_data(cfg, tmp_path)
    train = pq.read_table(train_path)
    val = pq.read_table(val_path).to_pylist()
    assert train.num_rows == 17917
    assert len(val) == 70 and {r["data_source"] for r in val} == {"AIME24", "AMC23"}
    assert all(r["prompt"][-1]["content"].endswith(TRAIN_PROMPT_SUFFIX) for r in val)


@pytest.mark.parametrize(("overrides", "match"), [
    (["--preset", "tiny"], "rollout_engine=vllm"),
    (["--gpus-per-node", "3"], "divide evenly"),
    (["train_data=missing.parquet"], "train data for verl"),
])
def test_cli_errors_are_one_message(tmp_path, capsys, overrides, match):
    code = full_run_main(["--engine", "verl", "--dry-run", f"output_dir={tmp_path}", *overrides])
    assert code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


# ---- the reward -------------------------------------------------------------------------------------

def test_reward_training_rows_are_strict_and_validation_rows_use_the_grader():
    train, val = {"split": "train"}, {"split": "test"}
    far_box = "The answer is \\boxed{1/2}." + " and so on" * 20  # box more than 100 characters from the end
    assert compute_score("math_dapo", "so \\boxed{42}", "42", train) == {"score": 1.0, "acc": 1.0}
    assert compute_score("math_dapo", "so \\boxed{42.0}", "42", train) == {"score": -1.0, "acc": 0.0}
    assert compute_score("math_dapo", far_box, "1/2", train) == {"score": -1.0, "acc": 0.0}
    # validation: +1/-1 strict reward as score, the evaluation grader's verdict as acc
    assert compute_score("AIME24", "so \\boxed{42.0}", "42", val) == {"score": -1.0, "acc": 1.0}
    assert compute_score("AIME24", far_box, "\\frac{1}{2}", val) == {"score": -1.0, "acc": 1.0}
    assert compute_score("AIME24", "so \\boxed{41}", "42", val) == {"score": -1.0, "acc": 0.0}
    # val_grader: 84/2 for 42 is right for math-verify, wrong for the authors' rule grader (integers strictly)
    assert compute_score("AIME24", "so \\boxed{\\frac{84}{2}}", "42", val)["acc"] == 1.0
    assert compute_score("AIME24", "so \\boxed{\\frac{84}{2}}", "42", val, val_grader="paper")["acc"] == 0.0
    # the lenient ablation verifier on training rows
    assert compute_score("math_dapo", "so \\boxed{42.0}", "42", train, verifier="lenient")["score"] == 1.0
    with pytest.raises(ValueError, match="reward_fn"):
        compute_score("math_dapo", "x", "1", train, verifier="robust")


def test_reward_module_imports_nothing_heavy():
    code = ("import sys, justrl_lite.scale.verl_reward; "
            "heavy = sorted(m for m in ('torch', 'transformers', 'sympy', 'math_verify', 'numpy') "
            "if m in sys.modules); "
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"heavy modules imported by justrl_lite.scale.verl_reward: {result.stdout}"


# ---- verl's logs -> our figures ------------------------------------------------------------------

VERL_STEPS = {
    0: {"val-core/AIME24/acc/mean@32": 0.25, "val-core/AMC23/acc/mean@32": 0.75, "val-aux/AIME24/score/mean@32": -0.5},
    1: {"critic/score/mean": -0.6, "actor/entropy": 1.3, "response_length/mean": 8000.0, "actor/pg_clipfrac": 0.01},
    2: {"critic/score/mean": -0.4, "actor/entropy": 1.25, "response_length/mean": 7500.0, "actor/pg_clipfrac": 0.02},
}


def check_rows(rows):
    by_step = {r["step"]: r for r in rows}
    assert sorted(by_step) == [0, 1, 2]
    assert by_step[0]["val/pass@1"] == pytest.approx(0.5)  # mean over the two benchmarks
    assert by_step[0]["val/pass@1/AIME24"] == pytest.approx(0.25)
    assert by_step[0]["val/reward/AIME24"] == pytest.approx(-0.5)
    assert by_step[2]["reward/mean"] == pytest.approx(-0.4) and by_step[1]["policy/entropy"] == pytest.approx(1.3)
    assert by_step[2]["response_length/mean"] == pytest.approx(7500.0)
    assert by_step[2]["actor/clip_frac"] == pytest.approx(0.02)


def test_plots_read_verl_tensorboard_console_and_file_logs(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "tensorboard"
    writer = SummaryWriter(str(tb))
    for step, metrics in VERL_STEPS.items():
        for k, v in metrics.items():
            writer.add_scalar(k, v, step)
    writer.close()
    check_rows(read_run_metrics(tb))

    console = tmp_path / "verl_console.log"
    lines = ["(TaskRunner pid=1) some start-up line"]
    for step, metrics in VERL_STEPS.items():  # verl's console logger: pprint of each number, " - " between
        lines.append("(TaskRunner pid=1) " + " - ".join([f"step:{step}"] + [
            f"{k}:np.float64({v})" if i % 2 else f"{k}:{v}" for i, (k, v) in enumerate(metrics.items())]))
    console.write_text("\n".join(lines) + "\n")
    check_rows(read_run_metrics(console))

    file_log = tmp_path / "justrl.jsonl"
    file_log.write_text("".join(json.dumps({"step": s, "data": m}) + "\n" for s, m in VERL_STEPS.items()))
    check_rows(read_run_metrics(file_log))

    from justrl_lite.plots import main as plots_main

    assert plots_main([str(tb), "--out", str(tmp_path / "fig"), "--label", "verl"]) == 0
    assert (tmp_path / "fig" / "training_dynamics.png").stat().st_size > 0
    assert (tmp_path / "fig" / "heldout_accuracy.png").stat().st_size > 0
    assert plots_main([str(tmp_path / "nothing-here"), "--out", str(tmp_path / "fig")]) == 2


def test_run_streams_the_output_and_keeps_a_log(tmp_path, capsys):
    code = "import sys; print('step:1 - actor/entropy:1.25'); print('step:2 - actor/entropy:1.5'); sys.exit(3)"
    rc = stream([sys.executable, "-c", code], dict(os.environ), tmp_path / "verl_console.log")
    assert rc == 3
    assert "step:2 - actor/entropy:1.5" in capsys.readouterr().out
    rows = read_run_metrics(tmp_path / "verl_console.log")
    assert [r["policy/entropy"] for r in rows] == [1.25, 1.5]


def test_running_without_verl_installed_says_how_to_get_it(tmp_path, capsys):
    try:
        import verl  # noqa: F401
        pytest.skip("verl is installed here: this checks the message where it is not")
    except ImportError:
        pass
    code = full_run_main(["--engine", "verl", "--preset", "tiny", "rollout_engine=vllm", f"output_dir={tmp_path}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "verl is not installed" in err and "make venv-verl" in err
    assert (tmp_path / "verl_command.sh").is_file()  # the script is written either way
