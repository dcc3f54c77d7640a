"""Issue 22: run folders are never overwritten unasked, checkpoints verify and survive damage and full disks,
retention bounds disk, and evaluation prompts a trained checkpoint as training did."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from justrl_lite import checkpoint as ckpt
from justrl_lite.config import PROJECT_ROOT, TRAIN_PROMPT_SUFFIX, JustRLConfig
from justrl_lite.metrics import read_metrics

TOY_BASE = PROJECT_ROOT / "data" / "toy" / "base"
needs_toy = pytest.mark.skipif(not (TOY_BASE / "config.json").exists(),
                               reason="no toy base: run `python -m justrl_lite.toy.make_base`")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# 4 steps of 8 prompts; checkpoints at 2 and 4; validation (32 prompts x 4 samples) at 0 and 4
RUN = ["total_steps=4", "prompts_per_step=8", "mini_batch_prompts=2", "val_every=4", "save_every=2",
       "val_max_prompts=32", "val_samples_per_prompt=4"]


def full_run(out: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [a for a in args if a.startswith("--")]  # after the field=value list (argparse's nargs="*")
    cmd = [sys.executable, "-m", "justrl_lite.full_run", "--preset", "tiny", "--no-progress",
           f"output_dir={out}", *[a for a in args if a not in flags], *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT, env=ENV)


def error_line(done: subprocess.CompletedProcess) -> str:
    """The run's last stderr line, after checking it ended with one clear error."""
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """(a finished 4-step tiny run folder, its stdout); tests copy it before changing anything."""
    if not (TOY_BASE / "config.json").exists():
        pytest.skip("no toy base")
    out = tmp_path_factory.mktemp("runs") / "tiny"
    done = full_run(out, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def copy_of(run_dir: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / name))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "tensorboard" not in p.parts}


# ---- the end of a run ---------------------------------------------------------------------------------------

def test_a_run_ends_with_its_scores_checkpoint_metrics_and_figures(run):
    out, stdout = run
    val = [r for r in read_metrics(out / "metrics.jsonl") if "val/pass@1" in r]
    want = ", ".join(f"step {r['step']}: {100 * r['val/pass@1']:.1f}%" for r in val)
    assert [r["step"] for r in val] == [0, 4]
    assert f"held-out pass@1 at each validation: {want}" in stdout
    assert f"checkpoint: {out / 'checkpoints' / 'step_000004'}" in stdout
    assert f"metrics: {out / 'metrics.jsonl'}" in stdout
    for name in ("training_dynamics.png", "heldout_accuracy.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    assert ckpt.verify_checkpoint(out / "checkpoints" / "step_000004") is None
    assert ckpt.read_prompt_file(out / "checkpoints" / "step_000004" / "policy") == TRAIN_PROMPT_SUFFIX


# ---- nothing overwritten unasked ------------------------------------------------------------------------------

@needs_toy
def test_a_second_run_into_a_run_folder_is_refused_and_loses_nothing(run, tmp_path):
    out = copy_of(run[0], tmp_path)
    before = snapshot(out)
    line = error_line(full_run(out, *RUN))
    assert "holds another run" in line and "--resume" in line and "--overwrite" in line
    assert snapshot(out) == before


@needs_toy
def test_overwrite_replaces_the_old_run_whole(run, tmp_path):
    out = copy_of(run[0], tmp_path)
    done = full_run(out, "--overwrite", "total_steps=1", "prompts_per_step=8", "mini_batch_prompts=2",
                    "val_max_prompts=4", "val_samples_per_prompt=2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [0, 1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step_000001"]


@needs_toy
def test_resume_without_a_checkpoint_says_it_starts_fresh(tmp_path):
    done = full_run(tmp_path / "new", "--resume", "total_steps=1", "prompts_per_step=8", "mini_batch_prompts=2",
                    "val_max_prompts=4", "val_samples_per_prompt=2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"--resume: no checkpoint in {tmp_path / 'new'}; starting fresh from step 0" in done.stderr


# ---- verified checkpoints ----------------------------------------------------------------------------------

@needs_toy
def test_a_moved_run_resumes_past_a_damaged_newest_checkpoint_and_a_leftover(run, tmp_path):
    """Moved folder (output_dir in its config.json is stale), damaged step 4, a half-written step 6 folder."""
    out = copy_of(run[0], tmp_path, "moved")
    weights = out / "checkpoints" / "step_000004" / "policy" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, wrong checksum
    weights.write_bytes(bytes(data))
    leftover = out / "checkpoints" / "step_000006.tmp-999"
    (leftover / "policy").mkdir(parents=True)
    (leftover / "policy" / "model.safetensors").write_bytes(b"half")
    done = full_run(out, *RUN[1:], "total_steps=5", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--resume: skipped step_000004: policy/model.safetensors does not match its checksum" in done.stderr
    assert f"--resume: continuing from {out / 'checkpoints' / 'step_000002'}" in done.stderr
    assert f"removed {leftover}" in done.stderr and not leftover.exists()
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [0, 1, 2, 3, 4, 5]
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_000005"
    assert ckpt.verify_checkpoint(out / "checkpoints" / "step_000004") is None  # rewritten by the resumed run


@needs_toy
def test_a_moved_run_resumes_from_its_own_config_file(run, tmp_path):
    """``--config MOVED/config.json --resume``: the output_dir stored in the file (the old place) does not pin it."""
    out = copy_of(run[0], tmp_path, "elsewhere")
    assert json.loads((out / "config.json").read_text())["output_dir"] == str(run[0])
    cmd = [sys.executable, "-m", "justrl_lite.full_run", "--config", str(out / "config.json"), "--no-progress",
           "total_steps=5", "--resume"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"output_dir: {out} (the folder of --config" in done.stderr
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [0, 1, 2, 3, 4, 5]
    assert [r["step"] for r in read_metrics(run[0] / "metrics.jsonl")] == [0, 1, 2, 3, 4]  # the original: untouched


@needs_toy
def test_resume_stops_with_one_line_when_no_checkpoint_verifies(run, tmp_path):
    out = copy_of(run[0], tmp_path)
    for step in ("step_000002", "step_000004"):
        opt = out / "checkpoints" / step / "optimizer.pt"
        opt.write_bytes(opt.read_bytes()[:100])  # cut short
    before = snapshot(out)
    line = error_line(full_run(out, *RUN, "--resume"))
    assert line.startswith(f"error: no checkpoint in {out / 'checkpoints'} verifies")
    assert "skipped step_000004: optimizer.pt has 100 bytes" in line and "skipped step_000002" in line
    assert snapshot(out) == before


def test_a_failed_save_names_the_last_good_checkpoint_and_the_space_needed(tiny_model_and_tokenizer, tmp_path,
                                                                          monkeypatch):
    import torch

    from justrl_lite.trainer import make_scheduler

    model, tokenizer = tiny_model_and_tokenizer
    cfg = JustRLConfig.tiny()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    good = ckpt.save_checkpoint(tmp_path, 1, model, tokenizer, optimizer, make_scheduler(optimizer, cfg), {})

    def disk_full(folder, *args):
        (folder / "policy").mkdir()
        (folder / "policy" / "model.safetensors").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "_write_files", disk_full)
    with pytest.raises(ckpt.CheckpointError) as e:
        ckpt.save_checkpoint(tmp_path, 2, model, tokenizer, optimizer, make_scheduler(optimizer, cfg), {})
    message = str(e.value)
    assert "\n" not in message and "No space left on device" in message
    assert f"last good checkpoint: {good}" in message
    assert f"needs about {ckpt._gb(ckpt.checkpoint_bytes(model))}" in message and "--resume" in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_000001"]
    assert ckpt.latest_checkpoint(tmp_path) == good


@needs_toy
def test_a_full_disk_during_a_run_ends_in_one_line(tmp_path, monkeypatch, capsys):
    from justrl_lite import full_run as cli

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "_write_files", disk_full)
    rc = cli.main(["--preset", "tiny", "--no-progress", f"output_dir={tmp_path / 'run'}", "total_steps=1",
                   "prompts_per_step=8", "mini_batch_prompts=2", "val_max_prompts=4", "val_samples_per_prompt=2"])
    assert rc == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: cannot write the step-1 checkpoint") and "last good checkpoint: none" in last
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp-*"))


# ---- retention ------------------------------------------------------------------------------------------------

def test_retention_keeps_the_newest_and_the_milestones(tmp_path):
    for step in range(1, 11):
        (tmp_path / "checkpoints" / f"step_{step:06d}").mkdir(parents=True)
    ckpt.prune_checkpoints(tmp_path, keep=3, keep_every=4)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == \
        ["step_000004", "step_000008", "step_000009", "step_000010"]
    ckpt.prune_checkpoints(tmp_path, keep=0)  # 0 keeps all
    assert len(list((tmp_path / "checkpoints").iterdir())) == 4


def test_dry_run_states_the_checkpoint_size_and_the_disk_the_run_needs():
    from justrl_lite.scale.estimate import model_shape

    cfg = JustRLConfig.paper()
    done = subprocess.run([sys.executable, "-m", "justrl_lite.full_run", "--dry-run"], capture_output=True,
                          text=True, timeout=120, cwd=PROJECT_ROOT, env=ENV)
    assert done.returncode == 0, done.stderr
    params = model_shape(cfg.model_name_or_path)[0].parameters
    one = params * 12 / 1e9  # fp32 weights + two AdamW moments
    assert f"one checkpoint: {one:.3g} GB" in done.stdout
    # 3 kept + the one being written before the oldest goes; 88 saves without retention
    assert "88 saves (save_every=50), 3 kept" in done.stdout
    assert f"the run needs about {4 * one:.3g} GB of disk" in done.stdout


# ---- evaluation agrees with training ---------------------------------------------------------------------------

@needs_toy
def test_evaluating_a_run_folder_reproduces_training_validation_and_names_its_prompt(run, tmp_path, capsys):
    """The 4-step checkpoint on the same 32 toy test problems x 4 samples, sampled as validation samples them.

    Training's validation at step 4 and ``evaluate --model RUN_FOLDER`` (auto: the recorded training suffix)
    agree within noise (128 samples: std about 0.045); the paper's evaluation suffix scores far lower.
    """
    from justrl_lite import evaluate

    out = run[0]
    cfg = JustRLConfig.tiny()
    val = {r["step"]: r["val/pass@1"] for r in read_metrics(out / "metrics.jsonl") if "val/pass@1" in r}[4]
    scores, said = {}, {}
    for prompt in ("auto", "paper"):
        argv = ["--model", str(out), "--benchmarks", f"toy={PROJECT_ROOT / cfg.val_data}", "--limit", "32",
                "--n-samples", "4", "--temperature", str(cfg.val_temperature), "--top-p", str(cfg.val_top_p),
                "--max-new-tokens", str(cfg.val_max_response_length), "--grader", cfg.val_grader, "--device",
                "cpu", "--no-judge", "--no-progress", "--out", str(tmp_path / prompt), "--prompt", prompt]
        assert evaluate.main(argv) == 0
        said[prompt] = capsys.readouterr().err
        scores[prompt] = json.loads((tmp_path / prompt / "summary.json").read_text())
    pass1 = {p: s["benchmarks"]["toy"]["pass@1"] / 100 for p, s in scores.items()}
    print(f"validation at step 4: {val:.3f}; evaluate --prompt auto: {pass1['auto']:.3f}, paper: {pass1['paper']:.3f}")
    assert abs(pass1["auto"] - val) <= 0.15, (pass1, val)
    assert pass1["paper"] <= pass1["auto"] - 0.15, (pass1, val)
    assert "prompt: the training suffix" in said["auto"] and "recorded by the checkpoint" in said["auto"]
    assert "warning: this differs from the paper's evaluation prompt" in said["auto"]
    assert "prompt: the paper's evaluation suffix" in said["paper"]
    assert scores["auto"]["model"] == str(out / "checkpoints" / "step_000004" / "policy")


@needs_toy
def test_evaluate_on_a_run_folder_without_a_checkpoint_is_one_clear_error(tmp_path, capsys):
    from justrl_lite import evaluate

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    rc = evaluate.main(["--model", str(tmp_path / "run"), "--benchmarks", "toy=data/toy/test.jsonl",
                        "--out", str(tmp_path / "eval"), "--device", "cpu"])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: {tmp_path / 'run'} is a run folder without a checkpoint yet")


@needs_toy
def test_export_refuses_a_non_empty_folder_and_carries_the_training_prompt(run, tmp_path):
    from justrl_lite.scale.export import ExportError, export_checkpoint

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_checkpoint(run[0], taken)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    out = export_checkpoint(run[0], tmp_path / "exported")
    assert ckpt.read_prompt_file(out) == TRAIN_PROMPT_SUFFIX
    assert (out / "config.json").is_file()


@needs_toy
def test_make_demo_is_the_tiny_run_and_passes_its_flags():
    recipe = (PROJECT_ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "-m justrl_lite.full_run --preset tiny $(DEMO_ARGS)" in recipe


def test_plots_write_into_the_run_folder_by_default(run, tmp_path):
    from justrl_lite import plots

    out = copy_of(run[0], tmp_path)
    shutil.rmtree(out / "figures")
    assert plots.main([str(out / "metrics.jsonl")]) == 0
    assert {p.name for p in (out / "figures").iterdir()} == {"training_dynamics.png", "heldout_accuracy.png"}
