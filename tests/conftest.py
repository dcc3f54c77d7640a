"""Shared fixtures: a random tiny Qwen2 policy with the toy tokenizer, and the real data folder."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from justrl_lite.config import EVAL_PROMPT_SUFFIX, TRAIN_PROMPT_SUFFIX

SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "justrl_data"
"""The read-only copies of the authors' data (``../shared/justrl_data`` from the project root)."""

# One thread: tiny matmuls gain nothing from more, and on a busy 2-core machine two spinning threads per
# process made a 16-token generation 50x slower (8 s instead of 0.16 s).
torch.set_num_threads(1)

# Benchmark names resolve to the shared copies of the authors' files (also in notebook kernels and subprocesses).
os.environ.setdefault("JUSTRL_DATA_DIR", str(SHARED_DATA_DIR))

# The hub is out of reach on test machines: every hub look-up (ours, datasets', transformers') goes to the loopback
# discard port, refused at once, so no test sends traffic off the machine or waits on retries.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")


@pytest.fixture(scope="session")
def tiny_model_and_tokenizer():
    """(random tiny ``Qwen2ForCausalLM`` in float32 eval mode, toy tokenizer trained on toy problems)."""
    from justrl_lite.toy.model import build_random_model
    from justrl_lite.toy.task import demonstration, sample_problems
    from justrl_lite.toy.tokenizer import build_tokenizer

    problems = sample_problems(200, seed=0)
    rng = random.Random(0)
    texts = [p.text for p in problems] + [demonstration(p, rng)[0] for p in problems]
    tokenizer = build_tokenizer(texts + [TRAIN_PROMPT_SUFFIX, EVAL_PROMPT_SUFFIX])
    model = build_random_model(tokenizer, seed=0)
    return model, tokenizer


@pytest.fixture(scope="session")
def toy_prompts(tiny_model_and_tokenizer) -> list[list[int]]:
    """Four chat-templated toy prompts of different lengths (so left padding is exercised)."""
    from justrl_lite.toy.task import sample_problems

    _, tokenizer = tiny_model_and_tokenizer
    problems = sample_problems(4, seed=123)
    conversations = [[{"role": "user", "content": p.text + TRAIN_PROMPT_SUFFIX}] for p in problems]
    conversations[1][0]["content"] = "Short one?"  # a much shorter prompt in the same batch
    return tokenizer.apply_chat_template(conversations, add_generation_prompt=True, return_dict=True)["input_ids"]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/justrl_data``; tests that need it are skipped where it is absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA_DIR} (only on machines with the shared data folder)")
    return SHARED_DATA_DIR


@pytest.fixture(scope="module")
def pool():
    """A warm grader pool of two workers, one per test module (its stats are that module's alone)."""
    from justrl_lite.grading.pool import GraderPool

    own = GraderPool(max_workers=2)
    own.warm()
    yield own
    own.close()
