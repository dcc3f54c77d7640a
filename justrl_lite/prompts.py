"""The paper's prompts: a ``MathRow`` -> chat messages -> token ids, for training and for evaluation.

    messages = [..., {"role": "user", "content": problem + suffix}]
    prompt_ids = chat_template(messages, add_generation_prompt=True)        # kept iff len(prompt_ids) <= max

JustRL's fixed choices implemented here, and where they depart from common practice:
  1. Training prompt = problem + ``"\\n\\nPlease reason step by step, and put your final answer within
     \\boxed{}."`` appended to the user message *as stored* (the authors' verl ``use_boxed_suffix_prompt``); the
     problem is not stripped (306 DAPO problems end in whitespace and keep it).
  2. Evaluation prompt = ``problem.strip()`` + ``" Please reason step by step, ..."`` (one space; the authors'
     ``evals/gen_vllm.py`` strips the problem first). Both then go through the model's own chat template with
     the generation prompt; no system prompt, no few-shot examples.
  3. DAPO-Math-17k is used as is: no difficulty filtering, no dynamic sampling. The only filter drops prompts
     longer than ``max_prompt_length`` tokens (verl ``filter_overlong_prompts``: kept iff length <= max),
     and the number dropped is returned and logged.
  4. Evaluating a justrl_lite checkpoint uses, by default, the suffix it was trained with (``choose_eval_prompt``),
     saying so and warning that it is not the paper's evaluation prompt; ``--prompt paper`` restores choice 2.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from justrl_lite.config import EVAL_PROMPT_SUFFIX, TRAIN_PROMPT_SUFFIX
from justrl_lite.data import MathRow, with_problem

logger = logging.getLogger(__name__)


def build_messages(row: MathRow, suffix: str, *, strip_problem: bool | None = None) -> list[dict]:
    """The row's chat messages with ``suffix`` appended to the last user message.

    ``strip_problem=None`` does what the authors did: strip the problem for the evaluation suffix
    (``evals/gen_vllm.py``), keep it as stored for anything else (verl training).
    """
    if strip_problem is None:
        strip_problem = suffix == EVAL_PROMPT_SUFFIX
    problem = row.problem.strip() if strip_problem else row.problem
    # content = problem + suffix, on the last user message only
    return [dict(m) for m in with_problem(row, problem + suffix).messages]


@dataclass
class EncodedPrompts:
    """Prompts ready for rollout: the rows kept and their token ids, in the same order."""

    rows: list[MathRow]
    prompt_ids: list[list[int]]
    n_filtered: int
    """Rows dropped because their prompt was longer than ``max_prompt_length`` tokens."""


def encode_prompts(tokenizer, rows: Sequence[MathRow], suffix: str, max_prompt_length: int, *,
                   strip_problem: bool | None = None, batch_size: int = 1024) -> EncodedPrompts:
    """Apply suffix and chat template (``add_generation_prompt=True``); drop and count prompts > max tokens."""
    kept_rows: list[MathRow] = []
    kept_ids: list[list[int]] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        conversations = [build_messages(r, suffix, strip_problem=strip_problem) for r in chunk]
        ids = tokenizer.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                            return_dict=True)["input_ids"]
        for row, prompt_ids in zip(chunk, ids, strict=True):
            # verl filter_overlong_prompts: keep iff len(prompt_ids) <= max_prompt_length
            if len(prompt_ids) <= max_prompt_length:
                kept_rows.append(row)
                kept_ids.append(list(prompt_ids))
    n_filtered = len(rows) - len(kept_rows)
    if n_filtered:
        logger.warning("filtered out %d of %d prompts longer than %d tokens", n_filtered, len(rows), max_prompt_length)
    return EncodedPrompts(rows=kept_rows, prompt_ids=kept_ids, n_filtered=n_filtered)


EVAL_PROMPTS = ("auto", "training", "paper")
"""``evaluate --prompt``: ``paper`` = the paper's evaluation suffix (choice 2); ``training`` = the suffix the
checkpoint recorded (``checkpoint.PROMPT_FILE``), else the recipe's training suffix (choice 1); ``auto`` =
``training`` for a checkpoint that recorded its prompt, ``paper`` for any other model."""


def choose_eval_prompt(prompt: str, recorded: str | None) -> tuple[str, str]:
    """(suffix, one line saying which prompt evaluation uses and whether it is the paper's evaluation prompt).

    ``recorded`` is the training suffix a justrl_lite checkpoint stored beside its policy, or None. ``auto``
    picks it when present, so that evaluation agrees with training's validation: a small model trained on one
    suffix need not carry over to the other (the 1M-parameter toy after 4 steps: 42% with its training suffix,
    11% with the paper's evaluation suffix; ``tests/test_run_folder.py`` measures both).
    """
    if prompt not in EVAL_PROMPTS:
        raise ValueError(f"prompt must be one of {EVAL_PROMPTS}, got {prompt!r}")
    if prompt == "paper" or (prompt == "auto" and recorded is None):
        why = "the model records no training prompt" if prompt == "auto" else "--prompt paper"
        return EVAL_PROMPT_SUFFIX, f"prompt: the paper's evaluation suffix {EVAL_PROMPT_SUFFIX!r} ({why})"
    suffix = recorded if recorded is not None else TRAIN_PROMPT_SUFFIX
    source = "recorded by the checkpoint" if recorded is not None else "the recipe's training suffix"
    note = ("" if suffix == EVAL_PROMPT_SUFFIX else "; warning: this differs from the paper's evaluation prompt, "
            "so scores are not the paper's protocol (--prompt paper uses it)")
    return suffix, f"prompt: the training suffix {suffix!r} ({source}){note}"
