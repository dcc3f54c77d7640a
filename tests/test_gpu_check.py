"""benchmarks/gpu_check.py: its ``--cpu-smoke`` path runs the four sections on tiny shapes and reports what
the GPU run will report; without a GPU and without --cpu-smoke it refuses in one message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from justrl_lite.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_check.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def smoke() -> dict:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_parity_section_compares_what_it_says(smoke):
    p = smoke["parity"]
    assert p["cpu_float32_vs_cpu_float32"] == {"max_abs": 0.0, "mean_abs": 0.0}  # the same numerics: exact
    assert 0 < p["cpu_bfloat16_vs_cpu_float32"]["max_abs"] < 0.05  # bf16 autocast: close, not equal
    assert p["mask_vs_none_bf16_max_abs"] == 0.0  # right padding under causal attention needs no mask
    assert p["padded_vs_split_buckets_bf16_max_abs"] < 0.05
    assert p["chunked_vs_plain_gradient"]["relative_l2"] < 1e-3


def test_step_section_reports_two_sizes_with_flops_memory_and_moved_weights(smoke):
    a, b = smoke["step"]
    assert (a["rows"], a["tokens"], b["rows"], b["tokens"]) == (2, 128, 4, 112)
    for s in (a, b):
        assert s["seconds"] > 0 and s["tokens_per_s"] == pytest.approx(s["tokens"] / s["seconds"])
        assert s["model_flops"] > 0 and s["mfu"] is None  # no peak known for a CPU
        assert (
            s["weights_moved_fraction_lr_1e-6"] > 0.9
        )  # float32 masters: lr 1e-6 moves (nearly) every weight
        assert 0 < s["estimated_training_gb_without_vllm_and_reserve"] <= s["estimated_training_gb"]


def test_resident_and_decode_sections(smoke):
    assert (
        smoke["resident"]["updates"] == 4 and smoke["resident"]["reserved_minus_allocated_gb"] is None
    )  # no CUDA
    f32, bf16 = smoke["decode"]["float32"], smoke["decode"]["bfloat16"]
    assert f32["tokens"] == bf16["tokens"] == 4 * 12  # a random model rarely stops: every row to the cap
    assert (
        bf16["kv_bytes_per_token"] * 2 == f32["kv_bytes_per_token"] == 2 * 2 * 2 * 16 * 4
    )  # K,V x L x g x d x 4
    assert smoke["total_s"] < 120


def test_without_a_gpu_it_refuses_in_one_message():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env=ENV
    )
    assert done.returncode == 2
    assert "--cpu-smoke" in done.stderr and "Traceback" not in done.stderr
