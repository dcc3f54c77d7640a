"""Reference solutions to the exercises of notebooks/03b_advantage.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

import torch


def group_zscore(scores: torch.Tensor, group_ids: torch.Tensor, eps: float) -> torch.Tensor:
    """Exercise 1: per group, A_i = (s_i - mean) / (std + eps) with the unbiased (n - 1) std; a group of one
    gets mean 0 and std 1."""
    out = torch.zeros_like(scores, dtype=torch.float64)  # (N,)
    for g in group_ids.unique():
        members = group_ids == g  # (N,)
        s = scores[members].to(torch.float64)  # (n_g,)
        if s.numel() == 1:
            mean, std = 0.0, 1.0
        else:
            # s_bar = (1/n) sum_i s_i ; sigma = sqrt(sum_i (s_i - s_bar)^2 / (n - 1))
            mean, std = s.mean(), s.std(correction=1)
        out[members] = (s - mean) / (std + eps)
    return out
