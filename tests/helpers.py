"""Small helpers shared by several test modules (imported as ``from helpers import ...``)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest


def fresh_rng(label: str = "seed") -> tuple[random.Random, int]:
    """A generator on a fresh seed (or ``$JUSTRL_TEST_SEED``), printed so a failure can be replayed."""
    seed = int(os.environ.get("JUSTRL_TEST_SEED", random.SystemRandom().randrange(2**32)))
    print(f"{label}: {seed} (replay with JUSTRL_TEST_SEED={seed})")
    return random.Random(seed), seed


def boxed(answer: str) -> str:
    return "\\boxed{" + answer + "}"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def needs_file(path: Path, what: str, command: str) -> pytest.MarkDecorator:
    """Skip unless ``path`` exists, saying which command makes it."""
    return pytest.mark.skipif(not Path(path).exists(), reason=f"no {what}: run `{command}`")
