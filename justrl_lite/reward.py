"""From sampled responses to scalar rewards: the verifier score, plus the (disabled) DAPO overlong penalty.

    reward_i = verifier(response_i, ground_truth_i)                          in {+1, -1}
             + overlong_i                                                    (only when overlong_penalty is on)
    overlong_i = min(0, -(len_i - (L_max - L_buffer)) / L_buffer * factor)   DAPO's soft length penalty

The reward is an *outcome* reward: verl places it on the last response token and zeros elsewhere; GRPO then
sums the token scores back into one number per response, which is what this module returns directly.

JustRL's fixed choices:
  1. Verifier: ``dapo_reward`` (strict box, exact string). The paper's ablation swaps in ``lenient_reward``.
  2. No length penalty: the DAPO overlong buffer (4,096 tokens) is configured but disabled. Turning it on is
     the paper's first ablation, which collapsed entropy and lowered AIME24.
  3. Truncated responses are neither masked nor penalised: they usually lack a box and score -1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from justrl_lite.verifier import dapo_reward, lenient_reward

VERIFIERS: dict[str, Callable[[str, str], float]] = {"dapo": dapo_reward, "lenient": lenient_reward}


def overlong_penalty(response_length: int, max_response_length: int, buffer_len: int, factor: float) -> float:
    """DAPO's soft overlong penalty: 0 before the buffer, falling linearly to -factor at the length cap."""
    expected_length = max_response_length - buffer_len
    # overlong = min(0, -(len - (L_max - L_buffer)) / L_buffer * factor)
    return min(0.0, -(response_length - expected_length) / buffer_len * factor)


def score_responses(
    texts: Sequence[str],
    ground_truths: Sequence[str],
    response_lengths: Sequence[int],
    *,
    reward_fn: str,
    use_overlong_penalty: bool,
    max_response_length: int,
    overlong_buffer_len: int,
    overlong_penalty_factor: float,
) -> tuple[list[float], list[float]]:
    """Return (rewards used for the advantage, raw verifier scores) for each response."""
    if reward_fn not in VERIFIERS:
        raise ValueError(f"unknown reward_fn {reward_fn!r}: choose one of {sorted(VERIFIERS)}")
    if not (len(texts) == len(ground_truths) == len(response_lengths)):
        raise ValueError("texts, ground_truths and response_lengths must have the same length")
    verifier = VERIFIERS[reward_fn]
    scores = [verifier(text, gt) for text, gt in zip(texts, ground_truths)]
    if not use_overlong_penalty:
        return list(scores), scores
    rewards = [
        s + overlong_penalty(n, max_response_length, overlong_buffer_len, overlong_penalty_factor)
        for s, n in zip(scores, response_lengths)
    ]
    return rewards, scores
