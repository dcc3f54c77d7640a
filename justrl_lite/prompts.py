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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from justrl_lite.config import EVAL_PROMPT_SUFFIX
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
