"""The last ``\\boxed{...}`` of a response: shared by the training reward and the evaluation graders.

    boxed   = text[start : close + 1]     start = last "\\boxed{",  close = the "}" that balances its "{"
    content = boxed[len("\\boxed{") : -1]

Two readings of "the last box" are used, and they differ on purpose:
  1. ``last_boxed_only_string`` (the DAPO reward, our math-verify grader): the last ``\\boxed{`` with its
     brace; an unclosed last box is no answer (no fallback to an earlier box).
  2. ``paper_boxed_answer`` (the authors' rule grader, ``evals/utils.py`` in thunlp/JustRL): the last
     ``\\boxed`` of any kind (``\\boxed 5`` too); its braces are counted from the ``\\boxed`` itself, and
     the content counts only if the box reads exactly ``\\boxed{...}``. So ``\\boxed{5} ... \\boxed 7`` has
     an answer for (1) and none for (2).
"""

from __future__ import annotations

BOX_OPEN = "\\boxed{"
BOX_MACRO = "\\boxed"


def last_boxed_only_string(text: str, max_content_chars: int | None = None) -> str | None:
    """The last ``\\boxed{...}`` of ``text`` with brace-matched content, or None (no box, or never closed).

    ``max_content_chars`` stops the brace scan early: a box whose content is longer counts as never closed.
    """
    start = text.rfind(BOX_OPEN)
    if start < 0:
        return None
    stop = len(text)
    if max_content_chars is not None:
        stop = min(stop, start + len(BOX_OPEN) + max_content_chars + 1)
    depth = 0
    # the scan starts on the "{" of "\boxed{"; the box closes when its braces balance
    for i in range(start + len(BOX_OPEN) - 1, stop):
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


def unbox_ground_truth(ground_truth: str) -> str:
    """Remove one outer ``\\boxed{}`` when the whole ground truth is one box (AIME24 stores ``\\boxed{204}``)."""
    stripped = ground_truth.strip()
    if stripped.startswith(BOX_OPEN) and last_boxed_only_string(stripped) == stripped:
        return remove_boxed(stripped)
    return ground_truth


def paper_boxed_answer(text: str) -> str | None:
    """The authors' answer extraction: content of the last ``\\boxed``, or None.

    From the last ``\\boxed`` the scan counts braces; the box ends at the first ``}`` that brings the count
    back to zero. None when there is no ``\\boxed``, the count never returns to zero, or the box found does
    not read ``\\boxed{...}`` (``\\boxed 5``, ``\\boxed}{}``).
    """
    start = text.rfind(BOX_MACRO)
    if start < 0:
        return None
    depth = 0
    for chunk in range(start, len(text), _CHUNK):
        piece = text[chunk : chunk + _CHUNK]
        opens, closes = piece.count("{"), piece.count("}")
        # a "}" ends the box only from depth 1: skip a piece that can neither fall to 0 nor rise to 1
        if depth - closes >= 1 or depth + opens <= 0:
            depth += opens - closes
            continue
        for offset, ch in enumerate(piece):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    box = text[start : chunk + offset + 1]
                    return box[len(BOX_OPEN) : -1] if box.startswith(BOX_OPEN) else None
    return None


_CHUNK = 4096
"""Characters counted at once by ``paper_boxed_answer`` (long answers are scanned in C, not char by char)."""
