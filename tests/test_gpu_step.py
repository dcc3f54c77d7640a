"""benchmarks/gpu_step.py runs (``--cpu-smoke``) and refuses a CPU without it, in one clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from justrl_lite.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_step.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_cpu_smoke_runs_the_step_and_prints_its_measurements():
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--repeats", "1"], capture_output=True,
                          text=True, timeout=300, cwd=PROJECT_ROOT, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 x (16 + 48) = 128 tokens" in done.stdout
    assert "old-log-prob pass + one update:" in done.stdout and "tokens/s" in done.stdout
    assert "estimator" in done.stdout  # its prediction, or "estimator not available"


def test_without_a_gpu_it_refuses_in_one_message():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300,
                          cwd=PROJECT_ROOT, env=ENV)
    assert done.returncode == 2
    assert "--cpu-smoke" in done.stderr and "Traceback" not in done.stderr


def test_model_flops_of_the_1p5b_shape_by_hand():
    sys.path.insert(0, str(SCRIPT.parent))
    from gpu_step import QWEN2_1P5B, forward_flops
    from transformers import Qwen2Config

    config = Qwen2Config(**QWEN2_1P5B)
    # per layer: q, o 1536^2 each; k, v 1536 x 256 each; MLP 3 x 1536 x 8960; plus lm_head 1536 x 151,936
    matmul = 28 * (2 * 1536**2 + 2 * 1536 * 256 + 3 * 1536 * 8960) + 1536 * 151936
    assert matmul == 1_543_569_408  # + embedding 233,373,696 + biases and norms 144,896 = 1,777,088,000 parameters
    assert forward_flops(config, 10, 0) == 10 * 2 * matmul
    # attention adds 4 x (L / 2) x hidden per layer per token
    assert forward_flops(config, 1, 16384) - forward_flops(config, 1, 0) == 28 * 4 * 8192 * 1536
