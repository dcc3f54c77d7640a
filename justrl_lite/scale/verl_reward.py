"""The JustRL reward as a verl custom reward function (``reward.custom_reward_function``, verl 0.9.1).

verl's reward manager decodes each response (special tokens skipped) and calls

    compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=..., **reward_kwargs)

The bridge (``justrl_lite.scale.verl_launch``) points verl at ``pkg://justrl_lite.scale.verl_reward`` /
``compute_score`` and writes ``extra_info.split`` into every parquet row, so one function serves both splits:
  1. training rows (``split`` = ``train``): ``score`` = the strict DAPO box reward, +1/-1 (``dapo_reward``;
     ``verifier="lenient"`` swaps in the ablation's lenient verifier);
  2. validation rows (``split`` = ``test``): ``score`` = the same strict DAPO reward (the native trainer's
     ``val/reward``) and ``acc`` = the validation grader's verdict (``grade`` with ``grader=val_grader``, the
     config field: math-verify by default, as the authors' validation), so verl logs
     ``val-core/<benchmark>/acc/mean@<n>`` = pass@1 averaged over n samples.
``acc`` is returned on both splits (verl needs the same keys in every row of a batch).

Imports stay light (no torch, no transformers): verl loads this file inside every reward worker.
"""

from __future__ import annotations

from typing import Any

from justrl_lite.grading.grade import grade
from justrl_lite.verifier import dapo_reward, lenient_reward

VALIDATION_SPLIT = "test"
VERIFIERS = ("dapo", "lenient")


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None,
                  verifier: str = "dapo", val_grader: str = "math-verify", **_: Any) -> dict[str, float]:
    """{"score": reward on the +1/-1 scale, "acc": 1.0 if correct else 0.0} for one decoded response."""
    if verifier not in VERIFIERS:
        raise ValueError(f"verl reward: verifier={verifier!r}; choose one of {VERIFIERS} (config field reward_fn)")
    split = (extra_info or {}).get("split") if isinstance(extra_info, dict) else None
    if split == VALIDATION_SPLIT:
        correct = grade(solution_str, ground_truth, grader=val_grader)  # config field val_grader
        return {"score": dapo_reward(solution_str, ground_truth), "acc": float(correct)}
    # r = +1 if the last \boxed{} of the last 100 characters equals the ground truth exactly, else -1
    reward = dapo_reward(solution_str, ground_truth) if verifier == "dapo" else lenient_reward(solution_str,
                                                                                              ground_truth)
    return {"score": reward, "acc": float(reward > 0)}
