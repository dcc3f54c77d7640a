"""Token-by-token sampling that stops paying for finished rows (the default decode of ``HFRollout``).

transformers ``generate`` keeps every row of a batch in every forward pass until the longest response ends;
in the tiny preset only about a third of those row-steps hold a live token. ``sample_dropping_finished``
removes a row from the batch, the attention mask and the KV cache (``DynamicCache.batch_select_indices``) as
soon as it emits EOS, and otherwise does what ``generate`` does, step for step:

    z_t = model(y_<t)[:, -1]                      logits of the live rows, float32          (b', V)
    p_t = softmax(process(z_t))                   process = temperature, top-k, top-p warpers of transformers
    y_t ~ multinomial(p_t)                        drawn for ALL b rows (finished rows: one-hot on the pad token)
    log pi_sample(y_t) = log_softmax(process(z_t))[y_t]

Drawing over all b rows keeps the random stream ``generate`` consumes (torch's single-sample multinomial
draws one exponential per entry of the (b, V) matrix), so the same seed gives the same samples; the test
suite checks tokens, masks and log-probs against ``generate``. On CPU the draw is done by hand (``race_sample``):
torch's single-sample multinomial is the exponential race

    y = argmax_v p_v / q_v,      q_v ~ Exp(1) i.i.d.,   q = float32(-log1p(-u)),  u ~ U[0, 1) in float64,

so the uniforms are drawn for all b rows (the same stream) but the exponentials, the division and the argmax only
for the live rows: the (b, V) exponentials were most of a late decoding step, when few rows are left.
``exponential_is_log_of_uniform`` checks that identity on the installed torch, bit for bit; where it fails (or on
GPU, whose generator works differently) ``torch.multinomial`` itself is called.

The n samples of a prompt share it: with ``repeats = n`` the prefill runs each distinct prompt once and copies
its KV cache and last logits to its n rows (``DynamicCache.batch_repeat_interleave``) instead of computing the
same prompt n times. On CPU the copies equal the per-row prefill bit for bit (the tests compare the samples with
``generate``); a GPU matmul library may round a smaller batch differently in the last bit, which changes no
distribution. transformers' continuous batching (``generate_batch``, paged attention) was measured first and was
15-19x slower than ``generate`` on CPU for the tiny preset's rollout batch (README, "Speed").
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
from transformers import DynamicCache, GenerationConfig
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)


def sampling_processors(config: GenerationConfig) -> LogitsProcessorList:
    """The warpers ``generate`` applies for this config, in its order:
    temperature, top-k, top-p (neutral ones skipped)."""
    processors = LogitsProcessorList()
    if config.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(config.temperature))
    if config.top_k:
        processors.append(TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=1))
    if config.top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=1))
    return processors


@cache
def exponential_is_log_of_uniform() -> bool:
    """Whether this torch draws float32 Exp(1) on CPU as float32(-log1p(-u)) from one float64 uniform u per entry:
    same values and the same generator state afterwards (checked once, on a forked random state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(20251130)
        want = torch.empty(64, 129).exponential_(1)                                     # (64, 129)
        want_next = torch.rand(4)
        torch.manual_seed(20251130)
        got = (-torch.log1p(-torch.empty(64, 129, dtype=torch.float64).uniform_())).float()
        got_next = torch.rand(4)
    return torch.equal(want, got) and torch.equal(want_next, got_next)


def race_sample(probs: torch.Tensor, live: torch.Tensor, b: int) -> torch.Tensor:
    """One draw from each row of ``probs`` (b', V) for the live rows ``live`` (b',) of a (b, V) batch, consuming the
    CPU random stream exactly as ``torch.multinomial(full (b, V) probs, 1)`` would (see the module docstring)."""
    if not bool(torch.isfinite(probs).all()) or bool((probs < 0).any()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")  # as multinomial
    u = torch.empty(b, probs.shape[-1], dtype=torch.float64).uniform_()                 # (b, V) all rows' draws
    # q ~ Exp(1): q = -log(1 - u), for the live rows only
    q = (-torch.log1p(-u[live])).float()                                                # (b', V)
    # y = argmax_v p_v / q_v
    return (probs / q).argmax(dim=-1)                                                   # (b',)


class CompactCache(DynamicCache):
    """A ``DynamicCache`` that stores K and V in ``store_dtype`` (the compute dtype, e.g. bfloat16).

    Under autocast with float32 master weights the residual stream, and with it RoPE's rotated keys, stay float32,
    so a plain cache holds float32 K (and V): 4 bytes per value. This one rounds each new K/V to ``store_dtype``
    as it is stored (what bf16 attention rounds them to anyway) and hands attention a copy in the caller's dtype,
    one layer at a time:  bytes per token = 2 x layers x KV heads x head dim x bytes(store_dtype).
    """

    def __init__(self, config: Any, store_dtype: torch.dtype) -> None:
        super().__init__(config=config)
        self.store_dtype = store_dtype

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        keys, values = super().update(key_states.to(self.store_dtype), value_states.to(self.store_dtype),
                                      layer_idx, *args, **kwargs)
        return keys.to(key_states.dtype), values.to(value_states.dtype)


def cache_bytes_per_token(cache: DynamicCache, rows: int) -> float:
    """Bytes the cache holds per (row, position): K and V of every layer, as stored."""
    layers = [layer for layer in cache.layers if getattr(layer, "keys", None) is not None]
    total = sum(layer.keys.nbytes + layer.values.nbytes for layer in layers)
    positions = layers[0].keys.shape[-2] if layers else 0
    return total / max(1, rows * positions)


@torch.no_grad()
def sample_dropping_finished(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                             config: GenerationConfig, repeats: int = 1, kv_dtype: torch.dtype | None = None,
                             stats: dict[str, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial sampling like ``generate``, but rows that emitted EOS leave the batch and the KV cache.

    Returns ((b, T) sampled tokens, pad after EOS; (b, T) log pi_sample of each token, 0 after EOS), on the CPU.
    Each step draws over all b rows (``torch.multinomial`` with finished rows one-hot on the pad token, or on CPU
    ``race_sample``), so the random stream, and hence every sample, is the one ``generate`` draws for the same
    seed; only the forward
    pass shrinks to the live rows b' <= b. ``repeats = n``: rows come in runs of n copies of one prompt, whose
    prefill is computed once (ignored unless the rows really are such copies). ``kv_dtype``: store the KV cache
    in this dtype (``CompactCache``; None = whatever the model computes). ``stats``, when given, receives
    ``kv_bytes_per_token`` (measured on the cache after the prefill).
    """
    device = input_ids.device
    b, pad = input_ids.shape[0], config.pad_token_id
    processors = sampling_processors(config)
    eos = torch.tensor(config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id],
                       device=device)
    tokens = torch.full((b, config.max_new_tokens), pad, dtype=torch.long)             # (b, T_max)
    logprobs = torch.zeros(b, config.max_new_tokens)                                   # (b, T_max)
    live = torch.arange(b, device=device)                                              # (b',) rows still generating
    position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # (b, P) as generate
    cache = DynamicCache(config=model.config) if kv_dtype is None else CompactCache(model.config, kv_dtype)
    step_ids = input_ids                                                               # (b', P) then (b', 1)
    steps = 0
    by_hand = device.type == "cpu" and exponential_is_log_of_uniform()
    shared = repeats > 1 and b % repeats == 0 and torch.equal(
        torch.stack([input_ids, attention_mask]), torch.stack([input_ids, attention_mask])[:, ::repeats]
        .repeat_interleave(repeats, dim=1))
    for t in range(config.max_new_tokens):
        if t == 0 and shared:  # prefill each distinct prompt once, then copy its cache and logits to its rows
            out = model(input_ids=step_ids[::repeats], attention_mask=attention_mask[::repeats],
                        position_ids=position_ids[::repeats], past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache.batch_repeat_interleave(repeats)
            logits = out.logits[:, -1].repeat_interleave(repeats, dim=0)                # (b, V)
        else:
            out = model(input_ids=step_ids, attention_mask=attention_mask, position_ids=position_ids,
                        past_key_values=cache, use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1]                                                 # (b', V)
        if t == 0 and stats is not None:
            stats["kv_bytes_per_token"] = cache_bytes_per_token(cache, len(live))
        scores = processors(step_ids, logits.float())                                  # (b', V) processed
        # y_t ~ softmax(process(z_t)): one draw over all b rows, as generate does
        if by_hand:
            next_tokens = race_sample(torch.softmax(scores, dim=-1), live, b)          # (b',)
        else:
            probs = torch.zeros(b, scores.shape[-1], device=device)                    # (b, V)
            probs[:, pad] = 1.0                                                        # finished rows: the pad token
            probs[live] = torch.softmax(scores, dim=-1)
            next_tokens = torch.multinomial(probs, num_samples=1).squeeze(1)[live]    # (b',)
        # log pi_sample(y_t) = log_softmax(process(z_t))[y_t]
        step_logp = torch.log_softmax(scores, dim=-1).gather(1, next_tokens[:, None]).squeeze(1)  # (b',)
        tokens[live.cpu(), t] = next_tokens.cpu()
        logprobs[live.cpu(), t] = step_logp.cpu()
        steps = t + 1
        going = ~torch.isin(next_tokens, eos)                                          # (b',)
        if not bool(going.any()):
            break
        if not bool(going.all()):  # some rows just ended: drop them from the batch and the cache
            keep = going.nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            live, next_tokens = live[keep], next_tokens[keep]
            attention_mask, position_ids = attention_mask[keep], position_ids[keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(live), 1)], dim=1)  # (b', P+t+1)
        position_ids = position_ids[:, -1:] + 1                                                        # (b', 1)
        step_ids = next_tokens[:, None]                                                                # (b', 1)
    return tokens[:, :steps], logprobs[:, :steps]
