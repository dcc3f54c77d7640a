"""Rewards: the strict DAPO box reward JustRL trains with, and the lenient reward of the paper's ablation.

Training reward, the "DAPO verifier" (``dapo_reward``):

    window = response[-300:][-100:]
    reward = +1  if  unbox(last_boxed(window)) == ground_truth        (exact string equality)
             -1  otherwise                                           (no box, an unclosed box, any other string)

Lenient ablation reward (``lenient_reward``):

    reward = +1  if  grade(response, ground_truth, grader="math-verify")  else  -1

JustRL's fixed choices, and where they depart from textbook practice:
  1. Binary outcome reward +1 / -1 (not 1 / 0); the caller puts it on the last response token.
  2. Only the last 300 characters, then the last 100 of those, are searched: the box must close the response.
     The 300 cut never changes the result (the last 100 of the last 300 are the last 100); it is kept because
     the authors' code does it.
  3. The last ``\\boxed{`` is brace-matched; no box, or an unclosed one, scores -1 (no fallback to an earlier box).
  4. Exact string equality with the ground truth *as given*: ``0.5`` for ``\\frac{1}{2}``, ``\\dfrac``, one extra
     space all score -1, and so does any answer too long to fit in the 100-character window. Callers pass the
     unboxed answer (``MathRow.answer``), not a boxed ground truth. Textbook math RL (DeepScaleR and others)
     rewards with a lenient, SymPy-backed check instead; the paper's ablation that swapped one in on top of a
     length penalty (``lenient_reward``) plateaued lower on AIME24 (about 45% against 50% with the length
     penalty alone and 55% for plain JustRL), with entropy collapsing.
  5. Evaluation grades leniently on purpose, with other code: ``grading/grade.py`` (the authors' rule grader and
     ours), ``grading/pool.py`` (SymPy in killable workers), ``evaluation/judge.py`` (the CompassVerifier judge).

This module imports neither torch nor SymPy.
"""

from __future__ import annotations

from justrl_lite.boxed import last_boxed_only_string, remove_boxed
from justrl_lite.grading.grade import grade
from justrl_lite.grading.pool import DEFAULT_TIMEOUT, GraderPool

DAPO_OUTER_WINDOW = 300
DAPO_INNER_WINDOW = 100


# ---- training reward: the strict DAPO verifier ----------------------------------------------------------------

def dapo_reward(response: str, ground_truth: str) -> float:
    """The strict-box DAPO reward JustRL trains with: +1.0 if the last box equals
    ``ground_truth`` exactly, else -1.0."""
    if not isinstance(response, str) or not isinstance(ground_truth, str):
        return -1.0
    # 1-2. keep the last 300 characters, then the last 100 of those
    window = response[-DAPO_OUTER_WINDOW:][-DAPO_INNER_WINDOW:]
    # 3. last brace-matched \boxed{...}; none -> incorrect
    boxed = last_boxed_only_string(window)
    if boxed is None:
        return -1.0
    # 4. exact string equality, no normalisation
    return 1.0 if remove_boxed(boxed) == ground_truth else -1.0


# ---- the lenient ablation reward ------------------------------------------------------------------------------

def lenient_reward(response: str, ground_truth: str, timeout: float = DEFAULT_TIMEOUT, *,
                   pool: GraderPool | None = None) -> float:
    """The ablation's lenient (DeepScaleR-style) verifier: +1.0 if our math-verify ``grade`` accepts, else -1.0.

    It searches the whole response for the last box and accepts normalised and SymPy-equivalent answers, so it
    rewards answers the strict ``dapo_reward`` refuses. The paper found that swapping it in made training worse.
    (DeepScaleR's reward also requires a ``</think>`` and grades only the text after it; that format rule is
    left out here.)
    """
    return 1.0 if grade(response, ground_truth, timeout, pool=pool, grader="math-verify") else -1.0
