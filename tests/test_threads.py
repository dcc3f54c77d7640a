"""cpu_threads: the documented rule (override, OMP_NUM_THREADS, usable CPUs minus load) and its application."""

from __future__ import annotations

import pytest
import torch

from justrl_lite.config import JustRLConfig
from justrl_lite.policy import apply_cpu_threads, choose_cpu_threads, usable_cpus


@pytest.mark.parametrize(("requested", "cpus", "load", "env", "want"), [
    (3, 2, 5.0, "4", 3),        # an explicit value wins over everything
    (0, 8, 0.0, "2", 2),        # OMP_NUM_THREADS next
    (0, 8, 0.2, "", 8),         # idle machine: every usable CPU
    (0, 2, 0.3, "", 2),         # a little of our own start-up load does not cost a thread
    (0, 2, 1.0, "", 1),         # one busy neighbour on 2 cores
    (0, 2, 6.0, "", 1),         # overloaded: never fewer than one
    (0, 4, 1.6, "", 2),         # round(4 - 1.6) = 2
    (0, 4, 1.4, "", 3),         # round(4 - 1.4) = 3
    (0, 2, -0.0, "junk", 2),    # an unreadable OMP_NUM_THREADS is ignored
])
def test_rule(requested, cpus, load, env, want):
    threads, rule = choose_cpu_threads(requested, cpus=cpus, load=load, env=env)
    assert threads == want
    assert rule  # the reason is reported


def test_usable_cpus_is_the_affinity_mask():
    import os

    assert usable_cpus() == (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())


def test_apply_sets_torch_threads_on_cpu_only():
    before = torch.get_num_threads()
    try:
        assert apply_cpu_threads(JustRLConfig.tiny().replace(cpu_threads=1)) == 1
        assert torch.get_num_threads() == 1
        torch.set_num_threads(1)
        assert apply_cpu_threads(JustRLConfig.paper().replace(cpu_threads=2)) is None  # GPU run: untouched
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_resume_may_change_cpu_threads_but_not_the_recipe(tmp_path):
    from justrl_lite.policy import TrainerError
    from justrl_lite.trainer import _check_same_run

    cfg = JustRLConfig.tiny().replace(output_dir=str(tmp_path))
    cfg.save(tmp_path / "config.json")
    _check_same_run(tmp_path, cfg.replace(cpu_threads=2), checkpoint=tmp_path)  # a machine setting: allowed
    with pytest.raises(TrainerError, match="lr"):
        _check_same_run(tmp_path, cfg.replace(lr=1e-3, cpu_threads=2), checkpoint=tmp_path)


def test_full_run_reports_its_thread_choice(tmp_path, capsys):
    from justrl_lite import full_run

    before = torch.get_num_threads()
    try:
        code = full_run.main(["--preset", "tiny", "--no-progress", "cpu_threads=1", f"output_dir={tmp_path}",
                              f"model_name_or_path={tmp_path / 'no-such-model'}"])
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    assert code == 2 and "torch CPU threads: 1 (cpu_threads=1)" in err and "error: model path" in err
