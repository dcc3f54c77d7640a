"""Verifiers: the strict DAPO box reward that JustRL trains with (more to come: lenient, grade).

    reward(response, ground_truth) = +1  if  unbox(last_boxed(response[-300:][-100:])) == ground_truth
                                     -1  otherwise

JustRL's fixed choices:
  1. Binary outcome reward, +1 / -1 (not 1 / 0), placed on the last response token.
  2. Only the last 300 characters, then the last 100 of those, are searched: a box must close the response.
  3. The last ``\\boxed{`` is brace-matched; no box, or an unclosed one, scores -1.
  4. Exact string equality with the ground truth as given: no normalisation, no SymPy (strict on purpose; the
     paper found a lenient verifier hurt).
"""

from __future__ import annotations

BOX_OPEN = "\\boxed{"
DAPO_OUTER_WINDOW = 300
DAPO_INNER_WINDOW = 100


def last_boxed_only_string(text: str) -> str | None:
    """The last ``\\boxed{...}`` of ``text`` with brace-matched content, or None (no box, or never closed)."""
    start = text.rfind(BOX_OPEN)
    if start < 0:
        return None
    depth = 0
    for i in range(start + len(BOX_OPEN) - 1, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def remove_boxed(boxed: str) -> str:
    """``\\boxed{x}`` -> ``x``."""
    if not (boxed.startswith(BOX_OPEN) and boxed.endswith("}")):
        raise ValueError(f"not a boxed string: {boxed[:50]!r}")
    return boxed[len(BOX_OPEN) : -1]


def dapo_reward(response: str, ground_truth: str) -> float:
    """The strict-box DAPO reward JustRL trains with: +1.0 if the last box equals ``ground_truth`` exactly, else -1.0."""
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
