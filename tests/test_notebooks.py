"""Notebook hygiene: committed with outputs cleared, the standard python3 kernel, a Colab-ready first cell,
assertions in the cells that compute, and exercises at the end. (nbmake executes them in the same pytest run.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["00_overview", "01_verifier", "02_rollout", "03a_from_reinforce_to_grpo", "03b_advantage",
            "04_grpo_loss", "05_training_loop",
            "06_dynamics_and_ablations", "07_full_run_and_eval"]


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_notebooks_are_ordered_and_complete():
    names = [p.stem for p in notebook_paths()]
    missing = [n for n in EXPECTED if n not in names]
    assert not missing, f"missing notebooks: {missing}"
    assert names == sorted(names)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path: Path):
    nb = json.loads(path.read_text())
    kernelspec = nb["metadata"].get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernel must be the standard python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        assert cell.get("outputs", []) == [], f"{path.name}: code cell {i} keeps outputs; clear them"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} keeps an execution count"
    if (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5):  # cell ids are required from nbformat 4.5 on
        assert all("id" in c for c in nb["cells"]), f"{path.name}: a cell has no id; run nbformat.validator.normalize"
    first = "".join(code[0]["source"])
    assert "import justrl_lite" in first and "JUSTRL_LITE_GIT" in first, (
        f"{path.name}: first cell is not the setup cell")


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_checks_what_it_shows_and_ends_with_exercises(path: Path):
    nb = json.loads(path.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    with_assert = sum(any(word in src for word in ("assert", "expect(", "with checking(")) for src in code[1:])
    assert with_assert >= 0.6 * (len(code) - 1), f"{path.name}: only {with_assert}/{len(code) - 1} cells assert"
    text = " ".join("".join(c["source"]) for c in nb["cells"][-6:]).lower()
    assert "exercise" in text, f"{path.name}: should end with exercises and their check cells"
    uses_package = any("from justrl_lite" in src or "justrl_lite." in src for src in code[1:])
    assert uses_package, f"{path.name}: should import what it teaches from justrl_lite"
