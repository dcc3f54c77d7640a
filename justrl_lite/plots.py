"""Figures from logged metrics (``metrics.jsonl``), in the layout of the paper's training-dynamics figure.

    python -m justrl_lite.plots runs/tiny/metrics.jsonl --out figures/ --label "tiny run"

A verl run (``full_run --engine verl``) plots the same way from its TensorBoard folder or console log:

    python -m justrl_lite.plots runs/justrl-deepseek-1.5b/tensorboard --out figures/verl --label "verl 4x8"

(``justrl_lite.verl_metrics`` maps verl's metric names to ours). Either way it writes ``training_dynamics.png`` (policy entropy, mean reward, mean response length against step: the paper's
three panels) and ``heldout_accuracy.png`` (held-out pass@1 against step). ``plot_runs`` overlays several runs
(e.g. the ablations, several seeds each) as a mean line with a min-max band.

What the paper reports for the DeepSeek base (for comparison, not plotted as data): entropy stays in a band
(about 1.2-1.4), mean reward rises from about -0.6 to +0.4, response length falls from about 8k to 4-5k tokens
by step ~1,000, AIME24 rises from about 28% to 58%.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from justrl_lite.verl_metrics import read_run_metrics

DYNAMICS_PANELS = (
    ("policy/entropy", "policy entropy"),
    ("reward/mean", "mean reward (+1/-1)"),
    ("response_length/mean", "mean response length (tokens)"),
)
VAL_KEY = "val/pass@1"


def series(rows: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` over the rows that have a finite value for it."""
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    if not pts:
        return np.array([]), np.array([])
    steps, values = zip(*pts)
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (window 1 = raw values)."""
    if window <= 1 or len(values) == 0:
        return values
    kernel = np.ones(window)
    sums = np.convolve(values, kernel)[: len(values)]
    counts = np.convolve(np.ones(len(values)), kernel)[: len(values)]
    return sums / counts


def plot_dynamics(rows: Sequence[dict[str, Any]], out_path: str | Path | None = None, *, label: str = "run",
                  window: int = 5, caption: str | None = None):
    """The paper's three panels: entropy, mean reward, response length against training step."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, title) in zip(axes, DYNAMICS_PANELS):
        steps, values = series([r for r in rows if r["step"] > 0], key)
        ax.plot(steps, values, alpha=0.25, color="C0")
        ax.plot(steps, smooth(values, window), color="C0", label=f"{label} (moving mean of {window})")
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    _finish(fig, out_path, caption)
    return fig


def plot_validation(rows: Sequence[dict[str, Any]], out_path: str | Path | None = None, *, label: str = "run",
                    caption: str | None = None):
    """Held-out pass@1 (avg@k) against training step."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    steps, values = series(rows, VAL_KEY)
    ax.plot(steps, 100 * values, marker="o", label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out pass@1 (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _finish(fig, out_path, caption)
    return fig


def plot_runs(runs: dict[str, list[Sequence[dict[str, Any]]]], keys: Sequence[tuple[str, str]],
              out_path: str | Path | None = None, *, window: int = 5, caption: str | None = None):
    """Overlay labelled groups of runs (e.g. seeds of one ablation): mean line, min-max band, per key."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys), 3.6), squeeze=False)
    for ax, (key, title) in zip(axes[0], keys):
        for i, (label, group) in enumerate(runs.items()):
            curves = [series([r for r in rows if r["step"] > 0 or key == VAL_KEY], key) for rows in group]
            curves = [c for c in curves if len(c[0])]
            if not curves:
                continue
            n = min(len(c[0]) for c in curves)
            steps = curves[0][0][:n]
            stack = np.stack([smooth(c[1][:n], 1 if key == VAL_KEY else window) for c in curves])
            scale = 100.0 if key == VAL_KEY else 1.0
            ax.plot(steps, scale * stack.mean(0), color=f"C{i}", label=f"{label} (n={len(curves)})")
            ax.fill_between(steps, scale * stack.min(0), scale * stack.max(0), color=f"C{i}", alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    _finish(fig, out_path, caption)
    return fig


def _finish(fig, out_path: str | Path | None, caption: str | None) -> None:
    lines = 0
    if caption:
        import textwrap

        # about 19 characters of 7-point text per inch of figure width
        wrapped = textwrap.fill(caption, width=int(fig.get_figwidth() * 19))
        lines = wrapped.count("\n") + 1
        fig.text(0.01, 0.005, wrapped, fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.035 * lines * 3.6 / fig.get_figheight() + (0.01 if lines else 0), 1, 1))
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    p = argparse.ArgumentParser(prog="python -m justrl_lite.plots", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", help="a metrics.jsonl written by the trainer, or a verl run's TensorBoard folder, "
                                   "console log or file-logger JSONL")
    p.add_argument("--out", default="figures", help="folder for the PNG files")
    p.add_argument("--label", default="tiny run")
    p.add_argument("--caption", default=None, help="text printed under the figure (e.g. the command that made it)")
    args = p.parse_args(argv)
    try:
        rows = read_run_metrics(args.metrics)
    except (OSError, ValueError) as e:
        print(f"error: cannot read metrics from {args.metrics}: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no metrics in {args.metrics}; run `python -m justrl_lite.full_run --preset tiny` first",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    plot_dynamics(rows, out / "training_dynamics.png", label=args.label, caption=args.caption)
    plot_validation(rows, out / "heldout_accuracy.png", label=args.label, caption=args.caption)
    print(f"wrote {out / 'training_dynamics.png'} and {out / 'heldout_accuracy.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
