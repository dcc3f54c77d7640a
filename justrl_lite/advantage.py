"""GRPO advantages: each response's outcome score, standardised within the group of its prompt.

For the n responses of one prompt with scores s_1..s_n (JustRL: +1 / -1 from the DAPO verifier):

    mean = (1/n) * sum_i s_i
    std  = sqrt( sum_i (s_i - mean)^2 / (n - 1) )          (unbiased, Bessel-corrected)
    A_i  = (s_i - mean) / (std + eps),   eps = 1e-6
    A_{i,t} = A_i  for every response token t              (zero on padding)

JustRL's fixed choices, and where they depart from textbook PPO / GRPO:
  1. No critic: the baseline is the mean score of the prompt's own group of ``rollouts_per_prompt`` = 8
     samples (textbook PPO learns a value function and uses GAE).
  2. The score is an outcome reward: one number per response, the same advantage on every token
     (no per-token credit assignment, no discounting).
  3. The group std is the unbiased (n - 1) one, as verl's ``torch.std``; eps = 1e-6 sits outside the sqrt.
  4. A group of one response gets mean 0 and std 1 (verl's convention), so its advantage is s / (1 + eps).
  5. A group whose responses all score the same gets A = 0: no gradient from that prompt. JustRL keeps such
     groups in the batch (no dynamic sampling, unlike DAPO), so they only dilute the token mean.
  6. ``scale_by_std=False`` gives Dr. GRPO's A_i = s_i - mean, for comparison only; JustRL divides by std.
"""

from __future__ import annotations

import torch
from torch import Tensor


def grpo_advantages(scores: Tensor, group_ids: Tensor, *, eps: float = 1e-6,
                    scale_by_std: bool = True) -> Tensor:
    """Group z-score of ``scores`` (N,) within the groups given by ``group_ids`` (N,) -> advantages (N,).

    ``group_ids`` are any integer labels (e.g. the prompt index); a group's members need not be contiguous.
    Vectorised with ``index_add_``: one pass over the N responses, no Python loop over groups.
    """
    scores = torch.as_tensor(scores)
    group_ids = torch.as_tensor(group_ids)
    _check_inputs(scores, group_ids, eps)
    out_dtype = scores.dtype if scores.is_floating_point() else torch.get_default_dtype()
    if scores.numel() == 0:
        return torch.zeros(0, dtype=out_dtype, device=scores.device)

    # Advantages are constants for the policy gradient: no autograd graph, float64 for the statistics.
    s = scores.detach().to(torch.float64)  # (N,)
    # Relabel the groups 0..G-1; `group` maps each response to its group, `count` is n per group.
    _, group, count = torch.unique(group_ids, return_inverse=True, return_counts=True)  # (N,), (G,)
    n_groups = count.numel()

    # Shift each group by its minimum before averaging (mean and std are shift-invariant): an all-equal group
    # then has deviations of exactly 0, so A = 0 exactly, whatever rounding the mean of e.g. 0.1s would cause.
    shift = torch.full((n_groups,), float("inf"), dtype=torch.float64, device=s.device)
    shift = shift.scatter_reduce(0, group, s, reduce="amin")  # (G,)
    x = s - shift[group]  # (N,)

    # mean_g = (1/n_g) sum_{i in g} x_i
    x_sum = torch.zeros(n_groups, dtype=torch.float64, device=s.device).index_add_(0, group, x)  # (G,)
    n = count.to(torch.float64)  # (G,)
    x_mean = x_sum / n  # (G,)
    # s_i - mean(s_g) = x_i - mean(x_g)
    dev = x - x_mean[group]  # (N,)

    # std_g = sqrt( sum_{i in g} (s_i - mean_g)^2 / (n_g - 1) )   (denominator clamped; n_g = 1 set below)
    sq_sum = torch.zeros(n_groups, dtype=torch.float64, device=s.device)
    sq_sum = sq_sum.index_add_(0, group, dev * dev)  # (G,)
    std = torch.sqrt(sq_sum / (n - 1).clamp(min=1))  # (G,)

    # A group of one: mean 0, std 1 (as verl), so s_i - mean = s_i.
    single = (count == 1)[group]  # (N,)
    dev = torch.where(single, s, dev)  # (N,)
    std = torch.where(count == 1, torch.ones_like(std), std)  # (G,)

    if scale_by_std:
        # A_i = (s_i - mean) / (std + eps)
        adv = dev / (std[group] + eps)  # (N,)
    else:
        # Dr. GRPO: A_i = s_i - mean
        adv = dev  # (N,)
    return adv.to(out_dtype)


def broadcast_to_tokens(advantages: Tensor, response_mask: Tensor) -> Tensor:
    """Put each response's advantage on every one of its tokens: (N,) x (N, R) -> (N, R), 0 on padding."""
    if advantages.dim() != 1:
        raise ValueError(f"advantages must be 1-D (N,), got shape {tuple(advantages.shape)}; "
                         "pass one advantage per response")
    if response_mask.dim() != 2 or response_mask.shape[0] != advantages.shape[0]:
        raise ValueError(f"response_mask must be (N, R) with N = {advantages.shape[0]} (a row per response), "
                         f"got shape {tuple(response_mask.shape)}")
    # A_{i,t} = A_i * mask_{i,t}
    return advantages[:, None] * response_mask.to(advantages.dtype)  # (N, R)


def _check_inputs(scores: Tensor, group_ids: Tensor, eps: float) -> None:
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D (N,), one score per response; got shape {tuple(scores.shape)}")
    if group_ids.shape != scores.shape:
        raise ValueError(f"group_ids must have the shape of scores {tuple(scores.shape)}, got "
                         f"{tuple(group_ids.shape)}; pass one prompt id per response")
    if group_ids.is_floating_point() or group_ids.is_complex() or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must hold integer prompt ids, got dtype {group_ids.dtype}; "
                         "use e.g. RolloutBatch.group_ids (a LongTensor)")
    if scores.dtype == torch.bool or scores.is_complex():
        raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
    if scores.is_floating_point() and not bool(torch.isfinite(scores).all()):
        raise ValueError("scores contain NaN or inf; check the reward function's output")
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"eps must be a number >= 0, got {eps!r}")
