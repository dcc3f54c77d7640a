"""Reference solutions to the exercises of notebooks/03a_from_reinforce_to_grpo.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

import torch


def reinforce_gradient(theta: torch.Tensor, actions: torch.Tensor, scores: torch.Tensor,
                       baseline: float) -> torch.Tensor:
    """Exercise 1: (1/N) sum_i (s_i - b) (e_{a_i} - softmax(theta))."""
    pi = torch.softmax(theta, dim=-1)  # (K,)
    # grad_theta log softmax(theta)[a] = e_a - pi
    score_fn = torch.nn.functional.one_hot(actions, theta.numel()).to(theta.dtype) - pi  # (N, K)
    return ((scores - baseline)[:, None] * score_fn).mean(dim=0)  # (K,)


def importance_weighted_gradient(theta_new: torch.Tensor, theta_old: torch.Tensor, actions: torch.Tensor,
                                 advantages: torch.Tensor) -> torch.Tensor:
    """Exercise 2: (1/N) sum_i r_i A_i (e_{a_i} - pi_new), r_i = pi_new(a_i) / pi_old(a_i)."""
    pi_new = torch.softmax(theta_new, dim=-1)  # (K,)
    pi_old = torch.softmax(theta_old, dim=-1)  # (K,)
    ratio = pi_new[actions] / pi_old[actions]  # (N,)
    score_fn = torch.nn.functional.one_hot(actions, theta_new.numel()).to(theta_new.dtype) - pi_new  # (N, K)
    return ((ratio * advantages)[:, None] * score_fn).mean(dim=0)  # (K,)


def leave_one_out_advantages(scores: torch.Tensor) -> torch.Tensor:
    """Exercise 3: A_i = s_i - (sum_j s_j - s_i) / (n - 1) = n / (n - 1) * (s_i - mean(s))."""
    n = scores.shape[1]
    others_mean = (scores.sum(dim=1, keepdim=True) - scores) / (n - 1)  # (G, n)
    return scores - others_mean  # (G, n)
