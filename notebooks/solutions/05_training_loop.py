"""Reference solutions to the exercises of notebooks/05_training_loop.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

import torch

from justrl_lite.config import JustRLConfig
from justrl_lite.loss import policy_loss
from justrl_lite.rollout import RolloutBatch


def zero_advantage_share(advantages: torch.Tensor, response_mask: torch.Tensor) -> tuple[int, float]:
    """Exercise 1: the responses with A = 0 (their group scored all the same) and their tokens' share."""
    zero = advantages == 0  # (B,)
    return int(zero.sum()), float(response_mask[zero].sum() / response_mask.sum())


def tokens_per_optimizer_step(batch: RolloutBatch, cfg: JustRLConfig) -> list[int]:
    """Exercise 2: mini-batches are consecutive runs of mini_batch_prompts x rollouts_per_prompt rows."""
    per_mini = cfg.mini_batch_prompts * cfg.rollouts_per_prompt
    B = batch.response_mask.shape[0]
    return [int(batch.response_mask[s:s + per_mini].sum()) for s in range(0, B, per_mini)]


def max_response_tokens_per_optimizer_step(cfg: JustRLConfig) -> int:
    """Exercise 2: every response of the mini-batch at max_response_length tokens."""
    return cfg.mini_batch_prompts * cfg.rollouts_per_prompt * cfg.max_response_length


def update_step(model, optimizer, features: torch.Tensor, tokens: torch.Tensor, old_logp: torch.Tensor,
                advantages: torch.Tensor, response_mask: torch.Tensor, cfg: JustRLConfig) -> float:
    """Exercise 3: log-probs -> clipped token-mean loss -> backward -> clip the grad norm -> AdamW step."""
    logits = model(features)  # (B, T, V)
    # log pi(y_t) = logits[y_t] / temperature - logsumexp(logits / temperature)
    logp = torch.log_softmax(logits / cfg.temperature, dim=-1).gather(-1, tokens[..., None]).squeeze(-1)  # (B, T)
    loss, _ = policy_loss(logp, old_logp, advantages, response_mask, clip_ratio_low=cfg.clip_ratio_low,
                          clip_ratio_high=cfg.clip_ratio_high, clip_ratio_c=cfg.clip_ratio_c,
                          loss_agg_mode=cfg.loss_agg_mode)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return float(grad_norm)
