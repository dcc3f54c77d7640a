"""HFRollout: sampling log-probs, EOS/padding masks, truncation, seeding, prompt-major groups."""

from __future__ import annotations

import copy
import importlib.util
import math

import pytest
import torch

from justrl_lite.rollout import HFRollout, RolloutBatch
from justrl_lite.vllm_rollout import VLLMRollout

TRAINING = dict(temperature=1.0, top_p=1.0, top_k=-1)


def with_eos_probability(model, eos_id: int, p_eos: float):
    """A copy of ``model`` whose EOS token has probability about ``p_eos`` at every step (at temperature 1).

    The random tiny model spreads its mass almost evenly over the vocabulary, so it would rarely stop;
    a bias on the EOS logit makes stopping common without touching the rest of the network.
    """
    m = copy.deepcopy(model)
    vocab, hidden = m.lm_head.weight.shape
    head = torch.nn.Linear(hidden, vocab, bias=True)
    head.weight = torch.nn.Parameter(m.lm_head.weight.detach().clone())
    head.bias.data.zero_()
    head.bias.data[eos_id] = math.log(p_eos * (vocab - 1) / (1 - p_eos))
    m.lm_head = head
    return m.eval()


@pytest.fixture(scope="module")
def stopping_model(tiny_model_and_tokenizer):
    model, tokenizer = tiny_model_and_tokenizer
    return with_eos_probability(model, tokenizer.eos_token_id, p_eos=0.15)


def nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """(R, V) logits -> the same with -inf outside the smallest top-probability set reaching mass top_p."""
    probs, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)
    mass_before = probs.cumsum(dim=-1) - probs  # (R, V) mass of strictly more likely tokens
    keep_sorted = mass_before < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def forward_logprobs(model, batch: RolloutBatch, row: int, temperature: float, top_p: float) -> torch.Tensor:
    """Log-probs of row ``row``'s response recomputed by one plain forward pass on [prompt | response], unpadded."""
    prompt = batch.prompt_ids[row][batch.prompt_mask[row].bool()]
    response = batch.response_ids[row][batch.response_mask[row].bool()]
    ids = torch.cat([prompt, response])[None]  # (1, P + R)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float() / temperature  # (R, V)
    if top_p < 1:
        logits = nucleus(logits, top_p)
    return torch.log_softmax(logits, dim=-1).gather(1, response[:, None])[:, 0]  # (R,)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 1.0), (0.7, 0.9)])
@pytest.mark.parametrize("batch_size", [None, 3])
def test_sampling_logprobs_match_a_forward_pass(stopping_model, tiny_model_and_tokenizer, toy_prompts,
                                                temperature, top_p, batch_size):
    _, tokenizer = tiny_model_and_tokenizer
    engine = HFRollout(stopping_model, tokenizer, batch_size=batch_size)
    batch = engine.generate(toy_prompts, 2, temperature=temperature, top_p=top_p, top_k=-1, max_new_tokens=10,
                            seed=0)
    assert batch.sampling_logprobs.dtype == torch.float32
    for row in range(len(batch.texts)):
        n_tokens = int(batch.response_mask[row].sum())
        expected = forward_logprobs(stopping_model, batch, row, temperature, top_p)
        torch.testing.assert_close(batch.sampling_logprobs[row, :n_tokens], expected, atol=1e-4, rtol=0)
        assert torch.all(batch.sampling_logprobs[row, n_tokens:] == 0)


def test_nucleus_logprobs_are_renormalised(stopping_model, tiny_model_and_tokenizer, toy_prompts):
    """With top_p < 1 a kept token is more likely than under the full tempered distribution."""
    _, tokenizer = tiny_model_and_tokenizer
    batch = HFRollout(stopping_model, tokenizer).generate(toy_prompts, 2, temperature=0.7, top_p=0.5, top_k=-1,
                                                          max_new_tokens=6, seed=1)
    for row in range(len(batch.texts)):
        n_tokens = int(batch.response_mask[row].sum())
        full = forward_logprobs(stopping_model, batch, row, 0.7, top_p=1.0)
        assert torch.all(batch.sampling_logprobs[row, :n_tokens] > full + 1e-3)


def test_truncation_is_flagged_exactly_when_no_eos(stopping_model, tiny_model_and_tokenizer, toy_prompts):
    _, tokenizer = tiny_model_and_tokenizer
    max_new = 4
    batch = HFRollout(stopping_model, tokenizer).generate(toy_prompts, 8, max_new_tokens=max_new, seed=2,
                                                          **TRAINING)
    has_eos = torch.tensor([tokenizer.eos_token_id in ids[m.bool()].tolist()
                            for ids, m in zip(batch.response_ids, batch.response_mask)])
    assert torch.equal(batch.truncated, ~has_eos)
    assert batch.truncated.any() and (~batch.truncated).any()  # both kinds occur at p_eos = 0.15 over 4 tokens
    assert torch.all(batch.response_lengths[batch.truncated] == max_new)
    assert torch.all(batch.response_lengths[~batch.truncated] <= max_new)


@pytest.mark.parametrize("pad_is_eos", [False, True])
def test_mask_covers_the_eos_and_nothing_after(stopping_model, tiny_model_and_tokenizer, toy_prompts, pad_is_eos):
    """Also when the pad token *is* the EOS token (DeepSeek-R1-Distill's tokenizer pads with EOS)."""
    _, tokenizer = tiny_model_and_tokenizer
    if pad_is_eos:
        tokenizer = copy.deepcopy(tokenizer)
        tokenizer.pad_token = tokenizer.eos_token
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    batch = HFRollout(stopping_model, tokenizer).generate(toy_prompts, 4, max_new_tokens=12, seed=3, **TRAINING)
    assert (~batch.truncated).sum() >= 2
    for ids, mask, logprobs, text, truncated in zip(batch.response_ids, batch.response_mask,
                                                    batch.sampling_logprobs, batch.texts, batch.truncated):
        n_tokens = int(mask.sum())
        assert torch.all(mask[:n_tokens] == 1) and torch.all(mask[n_tokens:] == 0)  # one run of ones
        assert torch.all(ids[n_tokens:] == pad)
        assert torch.all(logprobs[n_tokens:] == 0) and torch.all(torch.isfinite(logprobs))
        generated = ids[:n_tokens].tolist()
        if not truncated:
            assert generated[-1] == eos and eos not in generated[:-1]  # EOS counted once, as the last token
            assert text == tokenizer.decode(generated[:-1], skip_special_tokens=True)
        assert tokenizer.eos_token not in text


def test_prompts_are_left_padded_and_grouped_prompt_major(stopping_model, tiny_model_and_tokenizer, toy_prompts):
    _, tokenizer = tiny_model_and_tokenizer
    n = 3
    batch = HFRollout(stopping_model, tokenizer, batch_size=5).generate(toy_prompts, n, max_new_tokens=5, seed=4,
                                                                        **TRAINING)
    assert len({len(p) for p in toy_prompts}) > 1  # the batch really mixes prompt lengths
    assert torch.equal(batch.group_ids, torch.arange(len(toy_prompts)).repeat_interleave(n))
    B, P = batch.prompt_ids.shape
    assert B == len(toy_prompts) * n and P == max(len(p) for p in toy_prompts)
    for row in range(B):
        prompt = toy_prompts[int(batch.group_ids[row])]
        assert batch.prompt_mask[row].tolist() == [0] * (P - len(prompt)) + [1] * len(prompt)
        assert batch.prompt_ids[row, P - len(prompt):].tolist() == prompt
        assert torch.all(batch.prompt_ids[row, :P - len(prompt)] == tokenizer.pad_token_id)
    assert batch.response_ids.shape == batch.response_mask.shape == batch.sampling_logprobs.shape
    assert len(batch.texts) == B


def test_same_seed_same_batch_other_seed_other_batch(tiny_model_and_tokenizer, toy_prompts):
    model, tokenizer = tiny_model_and_tokenizer
    engine = HFRollout(model, tokenizer)
    first = engine.generate(toy_prompts, 2, max_new_tokens=8, seed=11, **TRAINING)
    again = engine.generate(toy_prompts, 2, max_new_tokens=8, seed=11, **TRAINING)
    other = engine.generate(toy_prompts, 2, max_new_tokens=8, seed=12, **TRAINING)
    assert torch.equal(first.response_ids, again.response_ids)
    assert torch.equal(first.sampling_logprobs, again.sampling_logprobs)
    assert first.texts == again.texts
    assert not torch.equal(first.response_ids, other.response_ids)


def test_caller_random_state_and_train_mode_are_left_alone(tiny_model_and_tokenizer, toy_prompts):
    model, tokenizer = tiny_model_and_tokenizer
    engine = HFRollout(model, tokenizer)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model.train()
    try:
        engine.generate(toy_prompts[:1], 2, max_new_tokens=3, seed=5, **TRAINING)
        assert model.training  # restored after sampling in eval mode
        assert torch.equal(torch.rand(3), expected)  # our seed did not leak into the global generator
    finally:
        model.eval()
    engine.generate(toy_prompts[:1], 2, max_new_tokens=3, seed=5, **TRAINING)
    assert not model.training


@pytest.mark.parametrize("bad", [dict(n=0), dict(top_k=0), dict(temperature=0.0), dict(top_p=0.0),
                                 dict(max_new_tokens=0), dict(prompt_ids=[[]])])
def test_impossible_arguments_are_refused(tiny_model_and_tokenizer, toy_prompts, bad):
    model, tokenizer = tiny_model_and_tokenizer
    args = dict(prompt_ids=toy_prompts, n=2, temperature=1.0, top_p=1.0, top_k=-1, max_new_tokens=4, seed=0)
    args.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad)) if "prompt_ids" not in bad else "prompt_ids"):
        HFRollout(model, tokenizer).generate(**args)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_rollout_without_vllm_says_how_to_install():
    with pytest.raises(ImportError, match="pip install vllm"):
        VLLMRollout("any/model")


# ---- the default decode loop drops finished rows; it must sample exactly what transformers generate does ---

@pytest.mark.parametrize("sampling", [TRAINING, dict(temperature=0.7, top_p=0.9, top_k=-1),
                                      dict(temperature=1.3, top_p=0.95, top_k=200)])
@pytest.mark.parametrize("batch_size", [None, 5, 8])  # 8: chunks of whole groups (shared prefill); 5: not
def test_dropping_finished_rows_gives_generates_samples(stopping_model, tiny_model_and_tokenizer, toy_prompts,
                                                        sampling, batch_size):
    _, tokenizer = tiny_model_and_tokenizer
    fast = HFRollout(stopping_model, tokenizer, batch_size=batch_size)
    slow = HFRollout(stopping_model, tokenizer, batch_size=batch_size, drop_finished=False)
    assert fast.drop_finished and not slow.drop_finished
    for seed in (0, 1):
        a = fast.generate(toy_prompts[:4], 4, max_new_tokens=24, seed=seed, **sampling)
        b = slow.generate(toy_prompts[:4], 4, max_new_tokens=24, seed=seed, **sampling)
        lengths = a.response_lengths
        assert lengths.min() < lengths.max(), "rows must end at different steps for the test to bite"
        assert torch.equal(a.response_ids, b.response_ids) and torch.equal(a.response_mask, b.response_mask)
        assert torch.equal(a.truncated, b.truncated) and a.texts == b.texts
        assert torch.equal(a.prompt_ids, b.prompt_ids) and torch.equal(a.prompt_mask, b.prompt_mask)
        torch.testing.assert_close(a.sampling_logprobs, b.sampling_logprobs, rtol=0, atol=1e-5)


def test_dropping_finished_rows_shrinks_the_forward_batch(stopping_model, tiny_model_and_tokenizer, toy_prompts):
    """The point of the loop: after a row ends, later forward passes no longer carry it; and the prefill computes
    each of the 4 prompts once for its 4 rows."""
    _, tokenizer = tiny_model_and_tokenizer
    sizes: list[int] = []
    hook = stopping_model.register_forward_pre_hook(lambda m, args, kw: sizes.append(kw["input_ids"].shape[0]),
                                                    with_kwargs=True)
    try:
        batch = HFRollout(stopping_model, tokenizer).generate(toy_prompts[:4], 4, max_new_tokens=24, seed=3, **TRAINING)
    finally:
        hook.remove()
    lengths = batch.response_lengths
    # one forward per decode step; at step t >= 1 the batch holds exactly the rows longer than t tokens so far
    assert len(sizes) == int(lengths.max())
    assert sizes[0] == 4 and sizes[1:] == [int((lengths > t).sum()) for t in range(1, len(sizes))]
    assert sizes[-1] < sizes[1] <= 16
