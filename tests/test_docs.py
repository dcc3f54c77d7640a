"""docs/recipe.md and docs/glossary.md stay true: the settings table agrees with JustRLConfig.paper(), the results
table with the package's PAPER_RESULTS, and every number the glossary quotes from a command is what that command
prints today."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from justrl_lite.config import JustRLConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "docs" / "recipe.md"
GLOSSARY = ROOT / "docs" / "glossary.md"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the first markdown table whose header line starts with `header`, as cell lists."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def renderings(value) -> list[str]:
    """Ways a config value may be written in prose: 15360 -> 15,360; 1e-06 -> 1e-6; 10.0 -> 10; False -> none."""
    if isinstance(value, bool):
        return ["True", "on", "yes"] if value else ["False", "off", "none"]
    if isinstance(value, int):
        return [str(value), f"{value:,}"]
    if isinstance(value, float):
        forms = {repr(value), f"{value:g}", re.sub(r"e-0(\d)", r"e-\1", f"{value:g}")}
        if value.is_integer():
            forms.add(str(int(value)))
        return sorted(forms)
    if isinstance(value, tuple):
        return [f"({', '.join(repr(v) for v in value)})"]
    return [str(value), str(value).replace("\n", "\\n")]


def appears(candidate: str, text: str) -> bool:
    """`candidate` occurs in `text` as a whole token (so '1' does not match inside '1.5B' or '15,360')."""
    return re.search(rf"(?<![\w.])(?<!\d,){re.escape(candidate)}(?!\w|[.,]\d)", text) is not None


def test_settings_table_matches_the_paper_preset():
    paper = JustRLConfig.paper()
    rows = table_rows(RECIPE.read_text(), "| what | value |")
    checked = []
    for what, value_text, fields in rows:
        for field in re.findall(r"`(\w+)`", fields):
            if not hasattr(paper, field):
                continue
            value = getattr(paper, field)
            assert any(appears(c, value_text) for c in renderings(value)), \
                f"docs/recipe.md, row {what!r}: {field} = {value!r} is not stated in {value_text!r}"
            checked.append(field)
    assert len(checked) >= 25, checked
    for essential in ("clip_ratio_low", "clip_ratio_high", "clip_ratio_c", "loss_agg_mode", "kl_coef",
                      "entropy_coeff", "rollouts_per_prompt", "lr", "total_steps"):
        assert essential in checked


def test_renderings_and_appears_can_fail():
    assert not any(appears(c, "global norm 1.0") for c in renderings(0.1))
    assert not appears("1", "a 1.5B model with 15,360 tokens")
    assert appears("1e-6", "lr 1e-6, warm-up") and "1e-6" in renderings(1e-6)


def paper_results() -> dict:
    for module in ("justrl_lite.benchmarks", "justrl_lite.evaluate"):   # wherever the table lives now
        try:
            return importlib.import_module(module).PAPER_RESULTS
        except (ImportError, AttributeError):
            continue
    pytest.fail("no PAPER_RESULTS in justrl_lite.benchmarks or justrl_lite.evaluate")


def test_results_table_matches_paper_results():
    labels = {"DeepSeek-R1-Distill-Qwen-1.5B (base)": "paper-deepseek-base", "JustRL-DeepSeek-1.5B": "paper-deepseek",
              "OpenMath-Nemotron-1.5B (base)": "paper-nemotron-base", "JustRL-Nemotron-1.5B": "paper-nemotron"}
    rows = table_rows(RECIPE.read_text(), "| model | AIME24 |")
    results = paper_results()
    assert [r[0] for r in rows] == list(labels)
    for label, *numbers in rows:
        expected = results[labels[label]]
        assert [float(x) for x in numbers[:9]] == list(expected["scores"].values()), label
        assert float(numbers[9]) == expected["avg"], label


def glossary_commands() -> list[tuple[str, str]]:
    """(command, the prose that follows it) for each ```bash python -c ...``` block of docs/glossary.md."""
    text = GLOSSARY.read_text()
    blocks = list(re.finditer(r"```bash\n\s*python -c (['\"])(.*?)\1\n\s*```", text, re.S))
    ends = [b.start() for b in blocks[1:]] + [len(text)]
    return [(b.group(2), text[b.end():min(end, b.end() + 400)]) for b, end in zip(blocks, ends)]


@pytest.mark.parametrize("block", glossary_commands(), ids=lambda b: re.sub(r"\W+", "_", b[0][50:90]))
def test_glossary_numbers_are_what_their_command_prints(block: tuple[str, str]):
    code, prose = block
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    printed = [n for n in NUMBER.findall(out) if not re.fullmatch(r"[0-9]", n)]   # skip seed ids / dict keys
    assert printed, out
    quoted = NUMBER.findall(prose)
    for n in printed:
        assert n in quoted, f"docs/glossary.md quotes {quoted}, but the command prints {n} ({out.strip()})"


def test_glossary_has_the_commands():
    assert len(glossary_commands()) == 2
