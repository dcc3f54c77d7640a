"""The hand-made CPU draw of ``decode.sample_dropping_finished``: the exponential race torch's multinomial runs,
on the same random stream, computed for the live rows only."""

from __future__ import annotations

import os

import pytest
import torch
from test_rollout import TRAINING, stopping_model  # noqa: F401  (fixture)

import justrl_lite.decode as decode
from justrl_lite.decode import exponential_is_log_of_uniform, race_sample
from justrl_lite.rollout import HFRollout


def test_this_torch_draws_exponentials_from_float64_uniforms():
    """The identity the fast path rests on holds here, so the generate-equality tests exercise the fast path."""
    assert exponential_is_log_of_uniform()


def test_race_sample_is_multinomial_on_the_full_batch_same_draws_same_stream():
    seed = int.from_bytes(os.urandom(4), "little")
    g = torch.Generator().manual_seed(seed)
    for trial in range(20):
        b, V = int(torch.randint(1, 40, (1,), generator=g)), int(torch.randint(2, 600, (1,), generator=g))
        live = torch.randperm(b, generator=g)[: int(torch.randint(1, b + 1, (1,), generator=g))].sort().values
        logits = torch.randn(len(live), V, generator=g) * 3
        if trial % 2:
            logits[:, : V // 2] = -float("inf")  # filtered tokens (top-k / top-p) have probability 0
        probs = torch.softmax(logits, -1)                                   # (b', V)
        full = torch.zeros(b, V)
        full[:, 0] = 1.0
        full[live] = probs
        torch.manual_seed(seed + trial)
        want, want_next = torch.multinomial(full, 1).squeeze(1)[live], torch.rand(3)
        torch.manual_seed(seed + trial)
        got, got_next = race_sample(probs, live, b), torch.rand(3)
        assert torch.equal(got, want), (seed, trial)
        assert torch.equal(got_next, want_next), (seed, trial)      # the generator ends where multinomial leaves it
    with pytest.raises(RuntimeError, match="nan"):
        race_sample(torch.tensor([[0.5, float("nan")]]), torch.tensor([0]), 1)


def test_without_the_identity_multinomial_itself_gives_the_same_batch(stopping_model, tiny_model_and_tokenizer,  # noqa: F811
                                                                       toy_prompts, monkeypatch):
    """Fallback (another torch, or a GPU): torch.multinomial is called, and the batch is the same."""
    _, tokenizer = tiny_model_and_tokenizer
    engine = HFRollout(stopping_model, tokenizer)
    fast = engine.generate(toy_prompts[:4], 4, max_new_tokens=24, seed=7, **TRAINING)
    monkeypatch.setattr(decode, "exponential_is_log_of_uniform", lambda: False)
    calls = []
    real = torch.multinomial
    monkeypatch.setattr(torch, "multinomial", lambda *a, **k: calls.append(1) or real(*a, **k))
    slow = engine.generate(toy_prompts[:4], 4, max_new_tokens=24, seed=7, **TRAINING)
    assert calls and torch.equal(fast.response_ids, slow.response_ids)
    torch.testing.assert_close(fast.sampling_logprobs, slow.sampling_logprobs, rtol=0, atol=0)
