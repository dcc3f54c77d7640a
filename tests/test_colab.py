"""Colab in one click: the setup cells and README badges are the generated ones, and regenerate from one URL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from justrl_lite.course import colab

ROOT = Path(__file__).resolve().parents[1]


def test_setup_cells_and_badges_are_the_generated_ones():
    assert colab.stale(ROOT) == [], "stale setup cells / Colab badges: run `make notebooks-setup`"


def test_url_is_read_from_pyproject_and_badges_point_at_it():
    url = colab.repository_url(ROOT / "pyproject.toml")
    owner, repo = colab.github_owner_repo(url)
    readme = (ROOT / "README.md").read_text()
    for path in colab.notebook_paths(ROOT):
        link = f"https://colab.research.google.com/github/{owner}/{repo}/blob/main/notebooks/{path.name}"
        assert f"({link})" in readme, path.name
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert f'"{url}"' in "".join(first["source"]), path.name


@pytest.mark.parametrize("url, want", [("https://github.com/a-b/c.d", ("a-b", "c.d")),
                                       ("https://github.com/a/b.git", ("a", "b")),
                                       ("https://github.com/a/b/", ("a", "b"))])
def test_owner_and_repo_from_a_github_url(url, want):
    assert colab.github_owner_repo(url) == want


def test_bad_urls_and_missing_markers_give_one_message(tmp_path):
    with pytest.raises(colab.ColabError, match="GitHub only"):
        colab.github_owner_repo("https://gitlab.com/a/b")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[project.urls]\nHomepage = "https://x"\n')
    with pytest.raises(colab.ColabError, match=r"\[project.urls\] Repository"):
        colab.repository_url(tmp_path / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/a/b"\n')
    (tmp_path / "README.md").write_text("# no markers\n")
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(colab.ColabError, match="colab-badges:start"):
        colab.stale(tmp_path)


def test_a_fork_changes_one_line_and_regenerates(tmp_path):
    """Change the URL in a copy of the repo: every notebook and the README go stale; writing fixes only the
    setup cell and the badge block."""
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("solutions"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    old_url = colab.repository_url(ROOT / "pyproject.toml")
    fork = "https://github.com/someone/justrl_fork"
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text().replace(old_url, fork))
    before = {p.name: json.loads(p.read_text()) for p in colab.notebook_paths(tmp_path)}

    changed = colab.stale(tmp_path)
    assert changed == [f"notebooks/{n}" for n in sorted(before)] + ["README.md"]
    assert colab.stale(tmp_path, write=True) == changed
    assert colab.stale(tmp_path) == []

    for path in colab.notebook_paths(tmp_path):
        old, new = before[path.name]["cells"], json.loads(path.read_text())["cells"]
        first = next(i for i, c in enumerate(old) if c["cell_type"] == "code")
        assert "".join(new[first]["source"]) == colab.setup_cell(fork)
        assert [c for i, c in enumerate(new) if i != first] == [c for i, c in enumerate(old) if i != first]
    readme = (tmp_path / "README.md").read_text()
    assert "github/someone/justrl_fork/blob/main/notebooks/00_overview.ipynb" in readme
    assert old_url.removeprefix("https://github.com/") not in readme.split(colab.BADGES_START)[1]
    # everything outside the block is untouched
    original = (ROOT / "README.md").read_text()
    assert readme.split(colab.BADGES_START)[0] == original.split(colab.BADGES_START)[0]
    assert readme.split(colab.BADGES_END)[1] == original.split(colab.BADGES_END)[1]


def test_check_mode_exits_1_on_a_stale_cell(tmp_path, capsys):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("solutions"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "notebooks" / "02_rollout.ipynb"
    nb = json.loads(path.read_text())
    next(c for c in nb["cells"] if c["cell_type"] == "code")["source"].append("\nprint('hand-edited')")
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    assert colab.main(["--check"], root=tmp_path) == 1
    assert "notebooks/02_rollout.ipynb" in capsys.readouterr().err
    assert colab.main([], root=tmp_path) == 0
    assert "rewrote: notebooks/02_rollout.ipynb" in capsys.readouterr().out
    assert colab.main(["--check"], root=tmp_path) == 0
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert colab.main(["--check"], root=tmp_path) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_setup_cell_in_a_clone_without_an_install_finds_the_repo():
    """Branch 2 of the cell: no site-packages at all (python -S), run from notebooks/: the repo root is found
    upward and PROJECT_ROOT is it; no clone, no pip."""
    cell = colab.setup_cell("https://github.com/unused/unused")
    probe = cell + "\nprint(PROJECT_ROOT)\nassert not pathlib.Path('justrl_lite_repo').exists()\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[colab.GIT_ENV] = "/nonexistent"  # would fail loudly if the cell tried to clone
    out = subprocess.run([sys.executable, "-S", "-c", probe], cwd=ROOT / "notebooks", env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == ROOT


def test_setup_cell_says_restart_when_pip_changed_an_imported_package():
    """Step 4 of the setup cell, run as the cell runs it, after a pip install that changed nothing, one that
    upgraded an imported package, and one that removed it."""
    from importlib import metadata

    assert colab.RESTART_CHECK in colab.setup_cell("https://github.com/a/b").replace("\n        ", "\n")
    real = metadata.version("pytest")
    exec(colab.RESTART_CHECK, {"before": {"pytest": real}, "metadata": metadata})  # unchanged: nothing to do
    for before, said in (({"pytest": "0.0.1"}, f"pytest 0.0.1 -> {real}"),
                         ({"no-such-dist-xyz": "1.0"}, "no-such-dist-xyz 1.0 -> removed")):
        with pytest.raises(RuntimeError, match="RESTART THE RUNTIME") as info:
            exec(colab.RESTART_CHECK, {"before": before, "metadata": metadata})
        assert said in str(info.value)
