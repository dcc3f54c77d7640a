"""Chunked log-probs == the plain definition (values and gradients), length-aware micro-batch plans, and the
memory bound of the log-prob step at the 1.5B model's vocabulary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from fractions import Fraction

import pytest
import torch

import justrl_lite.logprobs as lp_mod
from justrl_lite.config import PROJECT_ROOT, JustRLConfig
from justrl_lite.logprobs import (
    compute_old_logprobs,
    forward_buckets,
    micro_batches,
    padding_counts,
    plan_micro_batches,
    sequence_lengths,
    sequence_logprobs,
)
from justrl_lite.rollout import RolloutBatch
from justrl_lite.trainer import update_policy


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little")


def random_batch(vocab: int, pad_id: int, B: int, P: int, R: int, seed: int, n: int = 2) -> RolloutBatch:
    """Random tokens, left-padded prompts and right-padded responses of ragged lengths (one empty response)."""
    g = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(3, vocab, (B, P), generator=g)
    response_ids = torch.randint(3, vocab, (B, R), generator=g)
    prompt_mask = torch.zeros(B, P, dtype=torch.long)
    response_mask = torch.zeros(B, R, dtype=torch.long)
    for b in range(B):
        pl = int(torch.randint(1, P + 1, (1,), generator=g))
        rl = 0 if b == 1 else int(torch.randint(1, R + 1, (1,), generator=g))
        prompt_mask[b, P - pl:] = 1
        prompt_ids[b, : P - pl] = pad_id
        response_mask[b, :rl] = 1
        response_ids[b, rl:] = pad_id
    return RolloutBatch(prompt_ids=prompt_ids, prompt_mask=prompt_mask, response_ids=response_ids,
                        response_mask=response_mask, sampling_logprobs=torch.zeros(B, R),
                        truncated=torch.zeros(B, dtype=torch.bool), texts=[""] * B,
                        group_ids=torch.arange(B // n).repeat_interleave(n))


def plain_logprobs(model, batch: RolloutBatch, rows: list[int], temperature: float):
    """The definition, the old way: left-padded [prompt | response], full (b, T, V) float32 logits, log_softmax."""
    ids = torch.cat([batch.prompt_ids[rows], batch.response_ids[rows]], 1)                  # (b, P+R)
    att = torch.cat([batch.prompt_mask[rows], batch.response_mask[rows]], 1)               # (b, P+R)
    pos = (att.cumsum(-1) - 1).clamp(min=0)                                                 # (b, P+R)
    R = batch.response_ids.shape[1]
    logits = model(input_ids=ids, attention_mask=att, position_ids=pos).logits[:, -R - 1:-1].float()
    logprobs = torch.log_softmax(logits / temperature, -1)                                  # (b, R, V)
    picked = logprobs.gather(-1, batch.response_ids[rows, :, None]).squeeze(-1)             # (b, R)
    entropy = -(logprobs.exp() * logprobs).sum(-1)                                          # (b, R)
    mask = batch.response_mask[rows].float()
    return picked * mask, entropy * mask


@pytest.mark.parametrize("temperature,overhead", [(1.0, None), (0.7, 0), (1.0, 10**9)])
def test_chunked_logprobs_equal_plain_values_and_gradients(tiny_model_and_tokenizer, monkeypatch, temperature,
                                                            overhead):
    """Whatever the forward buckets (default, one per distinct length, one for all rows), the log-probs, entropies
    and their gradients are those of the plain full-logits computation."""
    model, tokenizer = tiny_model_and_tokenizer
    seed = fresh_seed()
    batch = random_batch(len(tokenizer), tokenizer.pad_token_id, B=6, P=7, R=9, seed=seed)
    rows = [4, 0, 1, 3, 5]
    monkeypatch.setattr(lp_mod, "LOGPROB_CHUNK_BYTES", 4 * len(tokenizer) * 5)  # chunks of 5 tokens
    assert lp_mod.chunk_tokens(len(tokenizer)) == 5
    weights = torch.randn(len(rows), 9, generator=torch.Generator().manual_seed(seed))
    params = [p for p in model.parameters()]

    model.zero_grad()
    logp, ent, mask = sequence_logprobs(model, batch, rows, temperature, with_entropy=True,
                                        overhead_tokens=overhead)  # (b, R')
    R = logp.shape[1]
    ((logp * weights[:, :R]).sum() + ent.sum()).backward()
    got = [p.grad.clone() for p in params]

    model.zero_grad()
    want_lp, want_ent = plain_logprobs(model, batch, rows, temperature)
    ((want_lp * weights).sum() + want_ent.sum()).backward()
    want = [p.grad.clone() for p in params]
    model.zero_grad()

    assert torch.equal(mask.cpu(), batch.response_mask[rows, :R])
    torch.testing.assert_close(logp, want_lp[:, :R], rtol=0, atol=1e-5, msg=lambda m: f"seed {seed}: {m}")
    torch.testing.assert_close(ent, want_ent[:, :R], rtol=0, atol=1e-5, msg=lambda m: f"seed {seed}: {m}")
    assert (logp[rows.index(1)] == 0).all() and (logp * (1 - mask) == 0).all()   # the empty response and padding are 0
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5, msg=lambda m: f"seed {seed}: {m}")


def test_chunked_logprobs_through_a_lora_wrapper(tiny_model_and_tokenizer):
    """A peft-wrapped policy: the body and lm_head are found through the wrapper, the adapter is applied."""
    import copy

    from peft import LoraConfig, get_peft_model

    from justrl_lite.policy import LORA_TARGETS

    model, tokenizer = tiny_model_and_tokenizer
    seed = fresh_seed()
    torch.manual_seed(seed)
    lora = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # a trained-looking adapter (peft starts it at 0)
    batch = random_batch(len(tokenizer), tokenizer.pad_token_id, B=4, P=6, R=7, seed=seed)
    with torch.no_grad():
        logp, _, _ = sequence_logprobs(lora, batch, [0, 1, 2, 3], 1.0, with_entropy=False)
        want, _ = plain_logprobs(lora, batch, [0, 1, 2, 3], 1.0)
        base, _ = plain_logprobs(model, batch, [0, 1, 2, 3], 1.0)
    torch.testing.assert_close(logp, want[:, : logp.shape[1]], rtol=0, atol=1e-5)
    assert (want - base).abs().max() > 1e-3  # the adapter changed the log-probs, and they were counted


def test_length_aware_plan_packs_every_row_within_budget_and_cuts_padding():
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 60, (50,), generator=g)
    rows = list(range(50))
    plan = plan_micro_batches(rows, lengths, 150)
    assert sorted(r for mb in plan for r in mb) == rows, seed
    for mb in plan:
        assert len(mb) == 1 or len(mb) * int(lengths[mb].max()) <= 150, (seed, mb)
    # padding as computed: per micro-batch, its forward buckets of rows x their own longest
    padded, computed = padding_counts(plan, lengths)
    assert computed == sum(len(b) * max(int(lengths[r]) for r in b)
                           for mb in plan for b in forward_buckets(mb, lengths))
    assert padded == computed - int(lengths.sum())
    one_forward = padding_counts(plan, lengths, overhead_tokens=10**9)
    assert one_forward[1] == sum(len(mb) * max(int(lengths[r]) for r in mb) for mb in plan) >= computed
    # alternating short and long rows: in order every micro-batch pads the short ones; sorted, almost none
    alternating = torch.tensor([10, 100] * 8)
    in_order = padding_counts(micro_batches(list(range(16)), alternating, 400), alternating, overhead_tokens=10**9)
    sorted_plan = padding_counts(plan_micro_batches(list(range(16)), alternating, 400), alternating, 10**9)
    assert in_order[0] / in_order[1] > 0.4 and sorted_plan[0] == 0


def _brute_force_buckets(lengths: list[int], overhead: int) -> float:
    """Cheapest cost over ALL ways to cut the descending-sorted lengths into contiguous buckets (2^(n-1) of them)."""
    s = sorted(lengths, reverse=True)
    best = float("inf")
    for cuts in range(2 ** (len(s) - 1)):
        bounds = [0] + [i + 1 for i in range(len(s) - 1) if cuts >> i & 1] + [len(s)]
        cost = sum((b - a) * s[a] + overhead for a, b in zip(bounds, bounds[1:]))
        best = min(best, cost)
    return best


def test_forward_buckets_are_the_cheapest_split_of_the_sorted_rows():
    """DP over distinct lengths == brute force over every contiguous split; each row once; extremes behave."""
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    for trial in range(30):
        n = int(torch.randint(1, 11, (1,), generator=g))
        lengths = torch.randint(1, 40, (n,), generator=g)
        if trial % 3 == 0:
            lengths = lengths // 8 * 8 + 1  # many ties
        overhead = int(torch.randint(0, 60, (1,), generator=g))
        rows = torch.randperm(n, generator=g).tolist()
        buckets = forward_buckets(rows, lengths, overhead)
        assert sorted(r for b in buckets for r in b) == sorted(rows), seed
        flat = [r for b in buckets for r in b]
        assert [int(lengths[r]) for r in flat] == sorted((int(x) for x in lengths), reverse=True), seed
        cost = sum(len(b) * int(lengths[b].max()) + overhead for b in buckets)
        assert cost == _brute_force_buckets(lengths.tolist(), overhead), (seed, lengths.tolist(), overhead)
    lengths = torch.tensor([5, 9, 5, 7, 9])
    assert forward_buckets([0, 1, 2, 3, 4], lengths, 0) == [[1, 4], [3], [0, 2]]   # no padding at all
    assert forward_buckets([0, 1, 2, 3, 4], lengths, 10**9) == [[1, 4, 3, 0, 2]]   # one pass, longest first
    assert forward_buckets([], lengths, 16) == []
    with_empty = torch.tensor([5, 0, 5, 0])                  # rows 1 and 3: no response token (sequence_lengths 0)
    assert forward_buckets([0, 1, 2, 3], with_empty, 0) == [[0, 2]] and forward_buckets([1, 3], with_empty, 0) == []
    with pytest.raises(ValueError, match="overhead_tokens must be >= 0"):
        forward_buckets([0], lengths, -1)


def _capture_grads(model, batch, old_logp, adv, cfg):
    params = [p for p in model.parameters() if p.requires_grad]
    captured = {}

    class Capture(torch.optim.SGD):
        def step(self, closure=None):
            captured.setdefault("all", []).append([None if p.grad is None else p.grad.clone() for p in params])
            captured["grads"] = captured["all"][-1]

    metrics = update_policy(model, Capture(params, lr=0.0), batch, old_logp, adv, cfg)
    return captured["grads"], metrics, captured["all"]


def test_global_token_mean_gradient_does_not_depend_on_the_plan_but_authors_does(tiny_model_and_tokenizer):
    """Two plans of one mini-batch (budget 40 vs 400 tokens): same gradient to 1e-6 under global-token-mean;
    under ``authors`` each micro-batch is token-averaged on its own, so the plan changes the gradient, unless every
    micro-batch of the 40-token plan holds the same response tokens per sequence (n_k / m_k = N / M): then the
    authors' scale m_k / M is n_k / N exactly, and the two weightings give the same gradient, bit for bit. About one
    draw in 20,000 is such a tie (seed 2222859979: micro-batches of 9 tokens in 3 rows and 15 in 5)."""
    model, tokenizer = tiny_model_and_tokenizer
    seed = fresh_seed()
    batch = random_batch(len(tokenizer), tokenizer.pad_token_id, B=8, P=8, R=12, seed=seed, n=4)
    cfg = JustRLConfig.tiny().replace(prompts_per_step=2, mini_batch_prompts=2, rollouts_per_prompt=4,
                                      max_prompt_length=8, max_response_length=12, overlong_buffer_len=8,
                                      micro_batch_max_tokens=400, grad_clip=1e9)
    old_logp, _ = compute_old_logprobs(model, batch, cfg)
    adv = torch.randn(8, 1, generator=torch.Generator().manual_seed(seed)) * batch.response_mask
    lengths = sequence_lengths(batch)
    plan = plan_micro_batches(list(range(8)), lengths, 40)
    assert len(plan) > 1
    assert len(plan_micro_batches(list(range(8)), lengths, 400)) == 1
    tokens = batch.response_mask.sum(-1)                                                  # (B,)
    per_sequence = {Fraction(int(tokens[rows].sum()), len(rows)) for rows in plan}       # n_k / m_k, exactly
    grads = {}
    for weighting in ("global-token-mean", "authors"):
        for budget in (40, 400):
            c = cfg.replace(micro_batch_weighting=weighting, micro_batch_max_tokens=budget)
            grads[weighting, budget], metrics, _ = _capture_grads(model, batch, old_logp, adv, c)
            assert 0 <= metrics["perf/padding_frac"] < 1
    for a, b in zip(grads["global-token-mean", 40], grads["global-token-mean", 400]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda m: f"seed {seed}: {m}")
    gap = max(float((a - b).abs().max()) for a, b in zip(grads["authors", 40], grads["authors", 400]))
    if len(per_sequence) > 1:
        assert gap > 1e-5, (seed, gap, per_sequence)
    else:  # a tie: the authors' weighting is the token mean on this plan
        assert all(torch.equal(a, b) for a, b in zip(grads["authors", 40], grads["global-token-mean", 40])), seed


@pytest.mark.parametrize("weighting", ["authors", "global-token-mean"])
def test_forward_buckets_do_not_change_the_update_under_either_weighting(tiny_model_and_tokenizer, monkeypatch,
                                                                         weighting):
    """Buckets only split a micro-batch's forward pass, never its loss: one micro-batch computed as one padded pass
    or as one pass per distinct length gives the same gradient (1e-6), under the authors' weighting too."""
    model, tokenizer = tiny_model_and_tokenizer
    seed = fresh_seed()
    batch = random_batch(len(tokenizer), tokenizer.pad_token_id, B=8, P=8, R=12, seed=seed, n=4)
    cfg = JustRLConfig.tiny().replace(prompts_per_step=2, mini_batch_prompts=2, rollouts_per_prompt=4,
                                      max_prompt_length=8, max_response_length=12, overlong_buffer_len=8,
                                      micro_batch_max_tokens=400, grad_clip=1e9, micro_batch_weighting=weighting)
    old_logp, _ = compute_old_logprobs(model, batch, cfg)
    adv = torch.randn(8, 1, generator=torch.Generator().manual_seed(seed)) * batch.response_mask
    lengths = sequence_lengths(batch)
    assert len(plan_micro_batches(list(range(8)), lengths, 400)) == 1
    assert len(forward_buckets(list(range(8)), lengths, 0)) > 1
    grads, padding = {}, {}
    for overhead in (0, 10**9):
        monkeypatch.setattr(lp_mod, "FORWARD_OVERHEAD_TOKENS", overhead)
        grads[overhead], metrics, _ = _capture_grads(model, batch, old_logp, adv, cfg)
        padding[overhead] = metrics["perf/padding_frac"]
    for a, b in zip(grads[0], grads[10**9]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda m: f"seed {seed}: {m}")
    assert padding[0] == 0 < padding[10**9], padding   # and the metric reports what was computed


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from justrl_lite.config import JustRLConfig
    from justrl_lite.policy import make_optimizer
    from justrl_lite.rollout import RolloutBatch
    from justrl_lite.trainer import compute_old_logprobs, update_policy

    torch.manual_seed(0)
    V, P, R = 151936, 384, 16000                      # 2 x (384 + 16,000) = 32,768 tokens
    config = Qwen2Config(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)
    model = Qwen2ForCausalLM(config)
    model.gradient_checkpointing_enable()
    B = 2
    batch = RolloutBatch(prompt_ids=torch.randint(0, V, (B, P)), prompt_mask=torch.ones(B, P, dtype=torch.long),
                         response_ids=torch.randint(0, V, (B, R)), response_mask=torch.ones(B, R, dtype=torch.long),
                         sampling_logprobs=torch.zeros(B, R), truncated=torch.zeros(B, dtype=torch.bool),
                         texts=["", ""], group_ids=torch.zeros(B, dtype=torch.long))
    cfg = JustRLConfig.paper().replace(device="cpu", rollout_engine="hf", dtype=sys.argv[1], rollouts_per_prompt=2,
                                       prompts_per_step=1, mini_batch_prompts=1, max_response_length=R,
                                       max_prompt_length=P, micro_batch_max_tokens=B * (P + R))
    old_logp, entropy = compute_old_logprobs(model, batch, cfg)
    adv = torch.tensor([[1.0], [-1.0]]) * batch.response_mask
    metrics = update_policy(model, make_optimizer(model, cfg), batch, old_logp, adv, cfg)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9   # Linux: KiB
    print(json.dumps({"peak_gb": peak_gb, "updates": metrics["actor/updates"],
                      "finite": bool(torch.isfinite(old_logp).all() and torch.isfinite(entropy).all())}))
""")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_logprob_step_at_the_1p5b_vocabulary_stays_under_4_gb():
    """Old-log-prob pass + one update on 2 x 16,384 tokens in one micro-batch, vocabulary 151,936, tiny body.

    The plain computation would hold the (2, 16,000, 151,936) logits in float32: 2 x 16,000 x 151,936 x 4 bytes
    = 19.4 GB for one copy, before log-softmax and entropy temporaries (issue 9 measured it dying past 9.9 GB
    under a 12 GB cap). Chunked, the peak is the model (2 x 151,936 x 64 x 4 bytes = 78 MB of embeddings, x4 with
    gradient and AdamW state) plus a few 256 MiB logit chunks: measured 1.76 GB peak RSS (123 s of CPU time). Run
    with float32 compute: the logit chunks are float32 under either precision, and CPUs without native bf16 (this
    project's CI) run bf16 matmuls far slower.
    """
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, "float32"], capture_output=True, text=True,
                          timeout=1800, cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["finite"] and result["updates"] == 1
    assert result["peak_gb"] < 4.0, result


def test_a_micro_batch_of_empty_responses_is_skipped(tiny_model_and_tokenizer):
    """Rows without a response token carry no gradient: their micro-batch is skipped, not back-propagated."""
    model, tokenizer = tiny_model_and_tokenizer
    batch = random_batch(len(tokenizer), tokenizer.pad_token_id, B=4, P=5, R=6, seed=fresh_seed())
    batch.response_mask[:2] = 0                                      # the first group: two empty responses
    cfg = JustRLConfig.tiny().replace(prompts_per_step=2, mini_batch_prompts=1, rollouts_per_prompt=2,
                                      max_prompt_length=5, max_response_length=6, overlong_buffer_len=4)
    old_logp, _ = compute_old_logprobs(model, batch, cfg)
    _, metrics, steps = _capture_grads(model, batch, old_logp, torch.ones(4, 6) * batch.response_mask, cfg)
    assert metrics["actor/updates"] == 2 and metrics["actor/skipped_updates"] == 0
    assert all(g is None for g in steps[0])                           # the empty group: no gradient at all
    assert all(g is not None and torch.isfinite(g).all() for g in steps[1])


def test_rows_without_a_response_token_cost_no_forward_pass(tiny_model_and_tokenizer):
    """A bucket of empty responses is not run; a micro-batch of only empty responses gives (b, 0) tensors."""
    model, tokenizer = tiny_model_and_tokenizer
    batch = random_batch(len(tokenizer), tokenizer.pad_token_id, B=4, P=5, R=6, seed=fresh_seed())
    batch.response_mask[:2] = 0
    assert sequence_lengths(batch)[:2].tolist() == [0, 0]    # they cost no token, whatever their prompt
    calls = []
    hook = model.get_decoder().register_forward_pre_hook(lambda m, a, kw: calls.append(kw["input_ids"].shape[0]),
                                                         with_kwargs=True)
    try:
        with torch.no_grad():
            logp, ent, mask = sequence_logprobs(model, batch, [0, 1], 1.0, with_entropy=True)
            assert logp.shape == ent.shape == mask.shape == (2, 0) and calls == []
            logp, _, mask = sequence_logprobs(model, batch, [0, 2, 1, 3], 1.0, with_entropy=False, overhead_tokens=0)
    finally:
        hook.remove()
    assert sum(calls) == 2 and (logp[[0, 2]] == 0).all() and (logp[[1, 3]] != 0).any()   # only rows 2 and 3 ran
