"""Reference solutions to the exercises of notebooks/04_grpo_loss.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

import torch


def prob_where_clip_starts(p_old: float, eps_high: float) -> float:
    """Exercise 1: for A > 0 the ratio p / p_old is clipped above 1 + eps_high, i.e. once p > p_old (1 + eps_high)."""
    return p_old * (1 + eps_high)


def clipped_policy_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                        response_mask: torch.Tensor, clip_ratio_low: float, clip_ratio_high: float,
                        clip_ratio_c: float) -> torch.Tensor:
    """Exercise 2: PPO clip with clip-higher, dual clip for A < 0, and the token mean over the mask."""
    adv = advantages[:, None].expand_as(logp_new)  # (B, T)
    ratio = torch.exp(logp_new - logp_old)  # (B, T)
    # L = max(-A r, -A clip(r, 1 - low, 1 + high))
    loss = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - clip_ratio_low, 1 + clip_ratio_high))  # (B, T)
    # dual clip: L = min(L, -A c) where A < 0
    loss = torch.where(adv < 0, torch.minimum(loss, -adv * clip_ratio_c), loss)  # (B, T)
    keep = response_mask.bool()  # (B, T)
    return loss[keep].sum() / keep.sum()
