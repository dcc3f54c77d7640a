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
suite checks tokens, masks and log-probs against ``generate``. transformers' continuous batching
(``generate_batch``, paged attention) was measured first and was 15-19x slower than ``generate`` on CPU for
the tiny preset's rollout batch (README, "Speed").
"""

from __future__ import annotations

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
    """The warpers ``generate`` applies for this config, in its order: temperature, top-k, top-p (neutral ones skipped)."""
    processors = LogitsProcessorList()
    if config.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(config.temperature))
    if config.top_k:
        processors.append(TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=1))
    if config.top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=1))
    return processors


@torch.no_grad()
def sample_dropping_finished(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                             config: GenerationConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial sampling like ``generate``, but rows that emitted EOS leave the batch and the KV cache.

    Returns ((b, T) sampled tokens, pad after EOS; (b, T) log pi_sample of each token, 0 after EOS), on the CPU.
    Each step draws ``torch.multinomial`` over all b rows (finished rows get a one-hot on the pad token), so the
    random stream, and hence every sample, is the one ``generate`` draws for the same seed; only the forward
    pass shrinks to the live rows b' <= b.
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
    cache = DynamicCache(config=model.config)
    step_ids = input_ids                                                               # (b', P) then (b', 1)
    steps = 0
    for t in range(config.max_new_tokens):
        out = model(input_ids=step_ids, attention_mask=attention_mask, position_ids=position_ids,
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
        scores = processors(step_ids, out.logits[:, -1].float())                       # (b', V) processed
        probs = torch.zeros(b, scores.shape[-1], device=device)                        # (b, V)
        probs[:, pad] = 1.0                                                            # finished rows: the pad token
        probs[live] = torch.softmax(scores, dim=-1)
        # y_t ~ softmax(process(z_t)): one draw over all b rows, as generate does
        next_tokens = torch.multinomial(probs, num_samples=1).squeeze(1)[live]        # (b',)
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
