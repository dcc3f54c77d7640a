"""The policy loss: PPO ratio clip with "clip-higher" and dual clip, token-mean aggregation.

Per response token t (advantage A, from ``advantage.py``; log-probs at the sampling temperature, from
``logprobs.py``, which also holds ``token_logprobs`` and ``entropy_from_logits``):

    r_t  = exp(log pi_new(y_t) - log pi_old(y_t))
    L1_t = -A * r_t
    L2_t = -A * clip(r_t, 1 - clip_ratio_low, 1 + clip_ratio_high)
    L_t  = max(L1_t, L2_t)
    L_t  = min(L_t, -A * clip_ratio_c)          only where A < 0   (dual clip)
    loss = sum_t L_t / (number of response tokens)                  ("token-mean")

JustRL's fixed choices, and where they depart from textbook PPO / GRPO:
  1. Asymmetric "clip-higher" range [1 - 0.2, 1 + 0.28] (DAPO); textbook PPO clips symmetrically at 0.2.
     A larger upper bound lets unlikely tokens with A > 0 gain more probability per step: exploration.
  2. Dual clip c = 10 (Ye et al. 2020): for A < 0 the loss is capped at -A * c, so one token whose ratio
     exploded cannot dominate the update. Textbook PPO has no such cap (its loss is unbounded for A < 0).
  3. "token-mean" aggregation: every response token of the mini-batch weighs the same, so long responses
     count more than short ones. Textbook GRPO averages within each sequence first ("seq-mean-token-mean").
  4. No KL term (kl_coef = 0, no reference model) and no entropy bonus (entropy_coeff = 0). Textbook GRPO adds
     beta * KL(pi || pi_ref) with the k3 estimator; ``kl_penalty_k3`` is here only for that comparison.
  5. Log-probs divide the logits by the sampling temperature (1.0 in JustRL), as the sampler did.
  6. pi_old is the training model itself before the step's first update (one epoch, 4 mini-batches), so on
     the first mini-batch r_t = 1 up to numerics, and clipping only acts on the 2nd-4th updates.
  7. Gradient accumulation over micro-batches follows the authors' vendored verl by default
     (``micro_batch_scale("authors", ...)``), which is not exactly a mini-batch token mean; see that function.
"""

from __future__ import annotations

import torch
from torch import Tensor

from justrl_lite.config_checks import LOSS_AGG_MODES, MICRO_BATCH_WEIGHTINGS

LOG_RATIO_CLAMP = 20.0
"""|log r| is clamped to this before exp (as verl): exp(20) ~ 5e8 is finite in float32 and bfloat16."""


# ---- aggregation --------------------------------------------------------------------------------

def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """sum(x * mask) / sum(mask) over all elements; 0 (not NaN) when the mask is empty.

    ``mask`` is a 0/1 (or bool) tensor of the shape of ``x``; nonzero entries count as 1. Padding is selected
    away (``torch.where``), not multiplied by 0, so an inf or NaN there cannot leak into the mean.
    """
    _check_same_shape(x=x, mask=mask)
    keep = mask != 0
    count = keep.sum().to(x.dtype)
    # mean = sum_i x_i m_i / sum_i m_i   (an empty mask divides 0 by 1)
    total = torch.where(keep, x, torch.zeros_like(x)).sum()
    return total / torch.where(count > 0, count, torch.ones_like(count))


def aggregate_loss(loss_mat: Tensor, mask: Tensor, mode: str) -> Tensor:
    """Reduce per-token losses (B, T) to one scalar, counting only tokens where ``mask`` (B, T) is 1.

    - ``token-mean`` (JustRL): sum over all tokens / number of tokens.
    - ``seq-mean-token-mean``: mean over sequences of each sequence's token mean (textbook GRPO).
    - ``seq-mean-token-sum``: mean over sequences of each sequence's token sum.
    Sequences without any token are left out of the sequence means (as upstream verl); an all-empty batch
    gives 0, never NaN.
    """
    if mode not in LOSS_AGG_MODES:
        raise ValueError(f"unknown loss_agg_mode {mode!r}: choose one of {LOSS_AGG_MODES} "
                         "(JustRL: 'token-mean')")
    _check_same_shape(loss_mat=loss_mat, mask=mask)
    if loss_mat.dim() != 2:
        raise ValueError(f"loss_mat and mask must be (B, T), got shape {tuple(loss_mat.shape)}")
    if mode == "token-mean":
        # loss = sum_{i,t} L_{i,t} m_{i,t} / sum_{i,t} m_{i,t}
        return masked_mean(loss_mat, mask)

    keep = mask != 0  # (B, T)
    tokens = keep.sum(dim=-1).to(loss_mat.dtype)  # (B,)
    seq_sum = torch.where(keep, loss_mat, torch.zeros_like(loss_mat)).sum(dim=-1)  # (B,)
    if mode == "seq-mean-token-mean":
        # per sequence: (1/|y_i|) sum_t L_{i,t}
        seq_loss = seq_sum / torch.where(tokens > 0, tokens, torch.ones_like(tokens))  # (B,)
    else:
        # per sequence: sum_t L_{i,t}
        seq_loss = seq_sum  # (B,)
    # loss = mean over the sequences that hold at least one token
    return masked_mean(seq_loss, tokens > 0)


# ---- the clipped policy loss --------------------------------------------------------------------

def policy_loss(
    logp_new: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    clip_ratio_low: float,
    clip_ratio_high: float,
    clip_ratio_c: float,
    loss_agg_mode: str,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO clip with clip-higher and dual clip, aggregated by ``loss_agg_mode`` -> (loss, metrics).

    ``logp_new`` (B, T) carries the gradient; ``logp_old`` (B, T) and ``advantages`` (B, T) or (B,) are
    constants (detached here). Metrics are detached scalars, token means over ``response_mask``:
    ``clip_frac`` (L2 > L1: the ratio clip is active), ``dual_clip_frac`` (A < 0 and the cap -A * c binds),
    ``approx_kl`` = mean(logp_old - logp_new).
    """
    _check_clip(clip_ratio_low, clip_ratio_high, clip_ratio_c)
    if loss_agg_mode not in LOSS_AGG_MODES:
        raise ValueError(f"unknown loss_agg_mode {loss_agg_mode!r}: choose one of {LOSS_AGG_MODES} "
                         "(JustRL: 'token-mean')")
    if advantages.dim() == 1 and logp_new.dim() == 2 and advantages.shape[0] == logp_new.shape[0]:
        advantages = advantages[:, None].expand_as(logp_new)  # (B,) -> (B, T)
    _check_same_shape(logp_new=logp_new, logp_old=logp_old, advantages=advantages,
                      response_mask=response_mask)
    if logp_new.dim() != 2:
        raise ValueError(f"log-probs must be (B, T), got shape {tuple(logp_new.shape)}")
    logp_old = logp_old.detach()  # (B, T)
    adv = advantages.detach().to(logp_new.dtype)  # (B, T)

    # log r_t = log pi_new - log pi_old, clamped to [-20, 20] before exp for numerical safety (as verl):
    # a stale or garbage log-prob then gives a large but finite ratio instead of inf (and inf * 0 = NaN).
    log_ratio = torch.clamp(logp_new - logp_old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    # r_t = exp(log r_t)
    ratio = torch.exp(log_ratio)  # (B, T)

    # L1 = -A r
    loss_unclipped = -adv * ratio  # (B, T)
    # L2 = -A clip(r, 1 - clip_ratio_low, 1 + clip_ratio_high)
    loss_clipped = -adv * torch.clamp(ratio, 1.0 - clip_ratio_low, 1.0 + clip_ratio_high)  # (B, T)
    # L = max(L1, L2): the pessimistic (larger-loss) of the two
    loss_clip = torch.maximum(loss_unclipped, loss_clipped)  # (B, T)
    # dual clip, for A < 0 only: L = min(L, -A c)
    loss_cap = -adv * clip_ratio_c  # (B, T)
    negative = adv < 0  # (B, T)
    loss_mat = torch.where(negative, torch.minimum(loss_clip, loss_cap), loss_clip)  # (B, T)

    loss = aggregate_loss(loss_mat, response_mask, loss_agg_mode)

    with torch.no_grad():
        ratio_clipped = loss_clipped > loss_unclipped  # (B, T)
        dual_clipped = negative & (loss_clip > loss_cap)  # (B, T)
        metrics = {
            "clip_frac": masked_mean(ratio_clipped.to(logp_new.dtype), response_mask),
            "dual_clip_frac": masked_mean(dual_clipped.to(logp_new.dtype), response_mask),
            # approx KL(old || new) ~ mean_t (log pi_old - log pi_new)
            "approx_kl": masked_mean(logp_old - logp_new.detach(), response_mask),
        }
    return loss, metrics


# ---- gradient accumulation over micro-batches ---------------------------------------------------

def micro_batch_scale(weighting: str, *, micro_seqs: int, mini_seqs: int, micro_tokens: int,
                      mini_tokens: int) -> float:
    """Factor that multiplies one micro-batch's token-mean loss before ``backward()`` (gradient accumulation).

    A mini-batch (one optimizer step) of M sequences and N response tokens is split into micro-batches k of
    m_k sequences and n_k tokens, each loss being a token mean over its own micro-batch:

    - ``"authors"`` (the vendored verl JustRL ran): scale_k = m_k / M. Token t of micro-batch k then gets the
      gradient weight m_k / (M n_k). That equals the true token-mean weight 1 / N only when every micro-batch
      has the same tokens per sequence (n_k / m_k = N / M). With token-budget micro-batches holding different
      numbers of tokens, tokens of micro-batches with shorter responses weigh more, tokens of longer ones
      less: the result is somewhere between a token mean and a sequence mean. It therefore depends on the
      micro-batch plan (which rows share a micro-batch: ``logprobs.plan_micro_batches`` sorts rows by length, and
      ``micro_batch_max_tokens`` sets the budget). Upstream verl later treated this as a bug and normalised by
      the mini-batch's token count.
    - ``"global-token-mean"``: scale_k = n_k / N, so sum_k scale_k * (1/n_k) sum_{t in k} L_t
      = (1/N) sum_t L_t, exactly the mini-batch token mean, however the tokens are split (plan-independent:
      tests/test_logprobs.py).
    """
    if weighting not in MICRO_BATCH_WEIGHTINGS:
        raise ValueError(f"unknown micro_batch_weighting {weighting!r}: "
                         f"choose one of {MICRO_BATCH_WEIGHTINGS}")
    micro_seqs = _count("micro_seqs", micro_seqs)
    mini_seqs = _count("mini_seqs", mini_seqs)
    micro_tokens = _count("micro_tokens", micro_tokens)
    mini_tokens = _count("mini_tokens", mini_tokens)
    if not 0 < micro_seqs <= mini_seqs:
        raise ValueError(f"need 0 < micro_seqs <= mini_seqs, got micro_seqs={micro_seqs}, "
                         f"mini_seqs={mini_seqs}")
    if not 0 <= micro_tokens <= mini_tokens or mini_tokens == 0:
        raise ValueError(f"need 0 <= micro_tokens <= mini_tokens and mini_tokens > 0, got micro_tokens="
                         f"{micro_tokens}, mini_tokens={mini_tokens} (count response-mask tokens)")
    if weighting == "authors":
        # scale_k = m_k / M
        return micro_seqs / mini_seqs
    # scale_k = n_k / N
    return micro_tokens / mini_tokens


# ---- optional KL penalty (not part of JustRL) ---------------------------------------------------

def kl_penalty_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref) (Schulman's low-variance estimator): (B, T) -> (B, T).

    Not part of the JustRL recipe (kl_coef = 0, no reference model); used only when ``kl_coef > 0``, to show
    what textbook GRPO adds. k3 >= 0, unbiased for the KL when tokens are sampled from pi.
    """
    _check_same_shape(logp=logp, ref_logp=ref_logp)
    # d = log pi_ref - log pi, clamped to [-20, 20] for the same numerical safety as the ratio
    d = torch.clamp(ref_logp - logp, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    # k3 = exp(d) - d - 1
    return torch.exp(d) - d - 1.0  # (B, T)


# ---- input checks -------------------------------------------------------------------------------

def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shape mismatch: {listing}; these must all have the same shape")


def _check_clip(clip_ratio_low: float, clip_ratio_high: float, clip_ratio_c: float) -> None:
    for name, value in (("clip_ratio_low", clip_ratio_low), ("clip_ratio_high", clip_ratio_high),
                        ("clip_ratio_c", clip_ratio_c)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
    if not 0 < clip_ratio_low < 1:
        raise ValueError(f"clip_ratio_low must be in (0, 1) (JustRL: 0.2), got {clip_ratio_low!r}")
    if not clip_ratio_high > 0:
        raise ValueError(f"clip_ratio_high must be > 0 (JustRL: 0.28), got {clip_ratio_high!r}")
    if not clip_ratio_c > 1:
        raise ValueError(f"clip_ratio_c must be > 1 (JustRL: 10.0), got {clip_ratio_c!r}")


def _count(name: str, value: int | Tensor) -> int:
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number of sequences or tokens, got {value!r}")
    return int(value)
