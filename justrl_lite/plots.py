"""Figures from logged metrics (``metrics.jsonl``), in the layout of the paper's training-dynamics figure.

    python -m justrl_lite.plots runs/tiny/metrics.jsonl --label "tiny run"      # -> runs/tiny/figures/

A verl run (``full_run --engine verl``) plots the same way from its TensorBoard folder or console log:

    python -m justrl_lite.plots runs/justrl-deepseek-1.5b/tensorboard --out figures/verl --label "verl 4x8"

(``justrl_lite.scale.verl_metrics`` maps verl's metric names to ours). Either way it writes
``training_dynamics.png`` (policy entropy, mean reward, mean response length against step: the paper's three panels)
and ``heldout_accuracy.png`` (held-out pass@1 against step). ``plot_runs`` overlays several runs (e.g. the
ablations, several seeds each) as a mean line with a min-max band.

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

from justrl_lite.scale.verl_metrics import read_run_metrics

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


ARM_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))
"""(line style, marker) of arm i's mean line: an arm drawn exactly over another still shows."""


def plot_runs(runs: dict[str, list[Sequence[dict[str, Any]]]], keys: Sequence[tuple[str, str]],
              out_path: str | Path | None = None, *, window: int = 5, caption: str | None = None):
    """Overlay labelled groups of runs (e.g. seeds of one ablation): mean line (group i in ``ARM_STYLES[i]``),
    min-max band, per key."""
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
            style, marker = ARM_STYLES[i % len(ARM_STYLES)]   # a group drawn over another still shows
            ax.plot(steps, scale * stack.mean(0), color=f"C{i}", ls=style, marker=marker, ms=4,
                    markevery=max(1, n // 8), label=f"{label} (n={len(curves)})")
            ax.fill_between(steps, scale * stack.min(0), scale * stack.max(0), color=f"C{i}", alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    _finish(fig, out_path, caption)
    return fig


ARM_PANELS = ((VAL_KEY, "held-out pass@1 (%)"), ("policy/entropy", "policy entropy"),
              ("response_length/mean", "response length (tokens)"),
              ("reward/overlong_frac", "share of responses penalised"))


def arm_curves(group: Sequence[Sequence[dict[str, Any]]], key: str, window: int = 5
               ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Per-seed curves of ``key`` (training keys smoothed, validation raw) and their mean over seeds on the steps
    every seed has reached: (seed curves, mean steps, mean values)."""
    curves = []
    for rows in group:
        steps, values = series([r for r in rows if r["step"] > 0 or key == VAL_KEY], key)
        curves.append((steps, values if key == VAL_KEY else smooth(values, window)))
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return [], np.array([]), np.array([])
    n = min(len(c[0]) for c in curves)
    return curves, curves[0][0][:n], np.stack([c[1][:n] for c in curves]).mean(0)


def overlapping_arms(means: dict[str, tuple[np.ndarray, np.ndarray]], rel_tol: float = 0.01
                     ) -> list[tuple[str, str]]:
    """Pairs of arms whose mean curves lie on each other: on their shared steps, max |a - b| <= rel_tol times
    the panel's value range (an exact copy, or closer than a line's width)."""
    spans = [v for _, v in means.values() if len(v)]
    if not spans:
        return []
    scale = max(float(np.ptp(np.concatenate(spans))), 1e-12)
    labels, pairs = list(means), []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            n = min(len(means[a][0]), len(means[b][0]))
            if n and np.array_equal(means[a][0][:n], means[b][0][:n]) and \
                    np.max(np.abs(means[a][1][:n] - means[b][1][:n])) <= rel_tol * scale:
                pairs.append((a, b))
    return pairs


def plot_arms(runs: dict[str, Sequence[Sequence[dict[str, Any]]]], out_path: str | Path | None = None, *,
              window: int = 5, caption: str | None = None):
    """Ablation arms side by side: held-out pass@1, entropy, length and the share of responses the overlong
    penalty touched, vs step; seeds faint, their mean bold with its own line style and marker
    (``ARM_STYLES``).
    A panel where two arms' means lie on each other says so in its corner (``overlapping_arms``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ARM_PANELS), figsize=(4.4 * len(ARM_PANELS), 3.6))
    for ax, (key, title) in zip(axes, ARM_PANELS):
        scale = 100.0 if key == VAL_KEY else 1.0
        means = {}
        for i, (label, group) in enumerate(runs.items()):
            curves, steps, mean = arm_curves(group, key, window)
            for s, v in curves:
                ax.plot(s, scale * v, color=f"C{i}", alpha=0.25, lw=0.8)
            if len(steps):
                style, marker = ARM_STYLES[i % len(ARM_STYLES)]
                ax.plot(steps, scale * mean, color=f"C{i}", lw=2, ls=style, marker=marker, ms=4,
                        markevery=max(1, len(steps) // 8), label=f"{label} (mean of {len(curves)} seeds)")
                means[label] = (steps, scale * mean)
        overlaps = overlapping_arms(means)
        if overlaps:
            ax.text(0.02, 0.02, "on top of each other:\n" + "\n".join(f"{a} = {b}" for a, b in overlaps),
                    transform=ax.transAxes, fontsize=7, va="bottom", color="0.2")
        ax.set_title(title if key == VAL_KEY else f"{title}, {window}-step mean")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    _finish(fig, out_path, caption)
    return fig


def plot_length_zone(histogram: dict[int, int], budgets: dict[str, tuple[int, int]],
                     out_path: str | Path | None = None, *, caption: str | None = None):
    """The base's response lengths (``{length: count}``) as bars, and per labelled (cap, buffer) budget its
    penalty zone ``(cap - buffer, cap]`` shaded, with the share of responses the zone holds
    (``overlong_zone.zone_share``)."""
    import matplotlib.pyplot as plt

    from justrl_lite.toy.overlong_zone import zone_share

    lengths = [n for n, c in histogram.items() for _ in range(c)]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    xs = sorted(histogram)
    ax.bar(xs, [100 * histogram[x] / len(lengths) for x in xs], width=1.0, color="0.4",
           label="base responses", zorder=3)
    for i, (label, (cap, buffer)) in enumerate(budgets.items()):
        share = zone_share(lengths, cap, buffer)
        ax.axvspan(cap - buffer + 0.5, cap + 0.5, color=f"C{i}", alpha=0.2, hatch="//" if i % 2 else None,
                   label=f"{label}: zone {cap - buffer + 1}-{cap} tokens holds {100 * share:.1f}%")
        ax.axvline(cap + 0.5, color=f"C{i}", ls="--", lw=1)
    ax.set_xlabel("response length (tokens, EOS included)")
    ax.set_ylabel("% of responses")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
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
    p.add_argument("metrics", nargs="?", help="a metrics.jsonl written by the trainer, or a verl run's TensorBoard "
                                              "folder, console log or file-logger JSONL")
    p.add_argument("--ablations", default=None, metavar="STORE",
                   help="instead: an ablation store (<variant>/seed<k>.jsonl, e.g. data/ablations_frac); writes "
                        "<out>/<store name>.png with plot_arms")
    p.add_argument("--out", default=None, help="folder for the PNG files (default: figures/ beside the metrics, "
                   "i.e. in the run folder; runs/figures for --ablations): never the repository's tracked figures/")
    p.add_argument("--label", default="tiny run")
    p.add_argument("--caption", default=None, help="text printed under the figure (e.g. the command that made it)")
    args = p.parse_args(argv)
    if (args.metrics is None) == (args.ablations is None):
        p.error("give either a metrics file/folder or --ablations STORE")
    if args.ablations:
        return _plot_store(Path(args.ablations), Path(args.out or "runs/figures"), args.caption)
    try:
        rows = read_run_metrics(args.metrics)
    except (OSError, ValueError) as e:
        print(f"error: cannot read metrics from {args.metrics}: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no metrics in {args.metrics}; run `python -m justrl_lite.full_run --preset tiny` first",
              file=sys.stderr)
        return 2
    metrics = Path(args.metrics)
    # runs/x/metrics.jsonl and runs/x/tensorboard -> runs/x/figures
    out = Path(args.out) if args.out else metrics.parent / "figures"
    plot_dynamics(rows, out / "training_dynamics.png", label=args.label, caption=args.caption)
    plot_validation(rows, out / "heldout_accuracy.png", label=args.label, caption=args.caption)
    print(f"wrote {out / 'training_dynamics.png'} and {out / 'heldout_accuracy.png'}")
    return 0


def _plot_store(store: Path, out: Path, caption: str | None) -> int:
    from justrl_lite.ablation_report import load_store

    runs = {v: [by_seed[s] for s in sorted(by_seed)] for v, by_seed in load_store(store).items() if by_seed}
    if not runs:
        print(f"error: no <variant>/seed<k>.jsonl in {store}; run the command in {store}/COMMAND first",
              file=sys.stderr)
        return 2
    if caption is None and (store / "COMMAND").exists():
        caption = (store / "COMMAND").read_text().split("  # ")[0].strip()  # the command, not its comment
    path = out / f"{store.name}.png"
    plot_arms(runs, path, caption=caption)
    print(f"wrote {path} ({', '.join(f'{v}: {len(g)} seeds' for v, g in runs.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
