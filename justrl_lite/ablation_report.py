"""Summary and verdict of a stored ablation sweep (``<store>/<variant>/seed<k>.jsonl``): the three arms against the
paper's claims, with seeds.

    python -m justrl_lite.ablation_report data/ablations_frac             # table and verdict sentence
    python -m justrl_lite.ablation_report data/ablations_frac --readme README.md   # also rewrite the README block

Per arm and seed: held-out pass@1 (the evaluation grader, the same for every arm) at the last validation and the
mean of the last two validations, and the strict verifier's held-out accuracy ((val/reward + 1) / 2) over the
last two; policy entropy, mean response length, mean reward, truncated fraction and the share of responses the
overlong penalty touched (``reward/overlong_frac``) as means over the last ``WINDOW`` training steps, and that
share over the first ``WINDOW`` steps too.
The verdict pairs the seeds (seed k of an arm against seed k of ``justrl``: the same sampling seeds):

    d_k = x_arm,k - x_justrl,k,    diff = mean_k d_k,    SE = sd(d_k) / sqrt(n)      (n >= 2 paired seeds)

and labels the difference by a two-sided 95% paired t-test, ``|diff| > t_{0.975, n-1} SE`` (``T975``: 4.30 for
3 seeds; a bare ``2 SE`` would call differences at about 80% confidence with 3 seeds): "better"/"worse" for held-out
pass@1 ("higher"/"lower" for entropy), else "no difference (within noise)"; with fewer than 2 paired seeds,
"not enough seeds".
The paper's claims (3,000+ steps at 1.5B): both ablation arms end worse on AIME24, and the overlong penalty
collapses entropy (about 1.3 -> 0.5-0.6).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np

from justrl_lite.ablations import VARIANTS, planned_from_command
from justrl_lite.metrics import read_metrics

VAL_KEY = "val/pass@1"
WINDOW = 10
TRAIN_KEYS = {"policy/entropy": "entropy", "response_length/mean": "length", "reward/mean": "reward",
              "response_length/truncated_frac": "truncated", "reward/overlong_frac": "penalised"}
FINAL_KEYS = {"val_step": "last val step", "val_last": "pass@1 last", "val_last2": "pass@1 last two",
              "strict_last2": "strict pass@1 last two", **TRAIN_KEYS, "penalised_first": "penalised first"}
NO_DIFFERENCE, TOO_FEW = "no difference (within noise)", "not enough seeds"
LABELS = {VAL_KEY: ("better", "worse"), "policy/entropy": ("higher", "lower")}
VERDICT_KEYS = {VAL_KEY: "val_last2", "policy/entropy": "policy/entropy"}   # claim -> summary key it is judged on
PAPER = {VAL_KEY: "worse", "policy/entropy": "lower"}
# Student's t, 97.5% quantile, by degrees of freedom n - 1 (beyond 10 the df-10 value: slightly conservative)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t975(n: int) -> float:
    """The critical value of the paired t-test with n seeds."""
    return T975[min(n - 1, 10)]


def load_store(store: str | Path) -> dict[str, dict[int, list[dict]]]:
    """variant -> seed -> metric rows, for every ``<store>/<variant>/seed<k>.jsonl`` that exists."""
    runs: dict[str, dict[int, list[dict]]] = {v: {} for v in VARIANTS}
    for v in VARIANTS:
        for path in sorted(Path(store, v).glob("seed*.jsonl")):
            match = re.fullmatch(r"seed(\d+)\.jsonl", path.name)
            rows = read_metrics(path) if match else []
            if rows:
                runs[v][int(match.group(1))] = rows
    return runs


def planned(store: str | Path) -> list[tuple[str, int, int]]:
    """(variant, seed, total_steps) of every run the one-line ``<store>/COMMAND`` asks for."""
    plan = planned_from_command(Path(store, "COMMAND").read_text())
    return [(v, s, cfg.total_steps) for (v, s), cfg in plan.items()]


def missing(runs: dict[str, dict[int, list[dict]]], plan: list[tuple[str, int, int]]) -> list[str]:
    """The planned runs that are absent or stop before their last step, in words (empty when complete)."""
    out = []
    for v, s, total in plan:
        rows = runs.get(v, {}).get(s)
        if not rows:
            out.append(f"{v} seed {s}: no metrics")
        elif rows[-1]["step"] < total:
            out.append(f"{v} seed {s}: stops at step {rows[-1]['step']} of {total}")
    return out


def final_values(rows: list[dict], window: int = WINDOW) -> dict[str, float]:
    """One run's final numbers (see the module docstring); ``val_step`` is the step of the last validation."""
    val = [(r["step"], r[VAL_KEY]) for r in rows if VAL_KEY in r] or [(math.nan, math.nan)]
    # strict accuracy from the strict +1/-1 reward on the same held-out samples: a = (r + 1) / 2
    strict = [(r["val/reward"] + 1) / 2 for r in rows if VAL_KEY in r and "val/reward" in r]
    out = {"val_step": float(val[-1][0]), "val_last": float(val[-1][1]),
           "val_last2": float(np.mean([p for _, p in val[-2:]])),
           "strict_last2": float(np.mean(strict[-2:])) if strict else math.nan}
    train = [r for r in rows if r["step"] > 0]
    for key in TRAIN_KEYS:
        values = [r[key] for r in train if isinstance(r.get(key), (int, float))]
        out[key] = float(np.mean(values[-window:])) if values else math.nan
    # the share of responses the overlong penalty touched, over the first `window` steps (last: TRAIN_KEYS)
    first = [r["reward/overlong_frac"] for r in train
             if isinstance(r.get("reward/overlong_frac"), (int, float))]
    out["penalised_first"] = float(np.mean(first[:window])) if first else math.nan
    return out


def summarise(runs: dict[str, dict[int, list[dict]]], window: int = WINDOW) -> dict[str, dict]:
    """arm -> {"seeds": [...], "per_seed": {key: array over seeds}, "mean": {key: float}}, arms with >= 1 seed."""
    summary = {}
    for v, by_seed in runs.items():
        if not by_seed:
            continue
        seeds = sorted(by_seed)
        finals = [final_values(by_seed[s], window) for s in seeds]
        per_seed = {k: np.array([f[k] for f in finals]) for k in FINAL_KEYS}
        summary[v] = {"seeds": seeds, "per_seed": per_seed, "mean": {k: float(x.mean()) for k, x in per_seed.items()}}
    return summary


def paired_difference(arm: dict, ref: dict, key: str) -> tuple[float, float, int]:
    """(mean paired difference arm - ref over their shared seeds, its standard error sd/sqrt(n), n)."""
    shared = sorted(set(arm["seeds"]) & set(ref["seeds"]))
    d = np.array([arm["per_seed"][key][arm["seeds"].index(s)] - ref["per_seed"][key][ref["seeds"].index(s)]
                  for s in shared])
    if len(d) < 2:
        return (float(d.mean()) if len(d) else math.nan), math.nan, len(d)
    # SE = sd(d_k) / sqrt(n), sd with n - 1
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d)


def label(diff: float, se: float, n: int, up: str, down: str) -> str:
    """The stated rule: ``up``/``down`` when |diff| > t_{0.975, n-1} SE (n >= 2), else no difference."""
    if n < 2:
        return TOO_FEW
    # two-sided 95% paired t-test: |mean d| > t_{0.975, n-1} sd(d) / sqrt(n)
    if abs(diff) > t975(n) * se:
        return up if diff > 0 else down
    return NO_DIFFERENCE


def verdicts(summary: dict[str, dict]) -> list[dict]:
    """One row per (ablation arm, claim): the paired difference to ``justrl``, its SE, n, label, paper's label."""
    out = []
    for v in list(VARIANTS)[1:]:
        for claim, key in VERDICT_KEYS.items():
            if v not in summary or "justrl" not in summary:
                diff, se, n = math.nan, math.nan, 0
            else:
                diff, se, n = paired_difference(summary[v], summary["justrl"], key)
            out.append({"arm": v, "claim": claim, "key": key, "diff": diff, "se": se, "n": n,
                        "label": label(diff, se, n, *LABELS[claim]), "paper": PAPER[claim]})
    return out


def verdict_sentence(summary: dict[str, dict]) -> str:
    """The verdict in one sentence (the README quotes it between ``<!-- ablations-frac:start/end -->``)."""
    rows = verdicts(summary)
    parts = []
    for r in rows:
        what = "held-out pass@1 (mean of the last two validations)" if r["claim"] == VAL_KEY else "final entropy"
        scale, unit = (100, " points") if r["claim"] == VAL_KEY else (1, " nats")
        num = (f"{scale * r['diff']:+.1f} +- {scale * r['se']:.1f}{unit}" if r["claim"] == VAL_KEY
               else f"{r['diff']:+.3f} +- {r['se']:.3f}{unit}") if r["n"] >= 2 else f"{r['n']} paired seed(s)"
        parts.append(f"{r['arm']} vs justrl, {what}: {num} -> {r['label']} (paper: {r['paper']})")
    steps = max((int(np.nanmax(s["per_seed"]["val_step"])) for s in summary.values()), default=0)
    counts = {v: len(summary[v]["seeds"]) if v in summary else 0 for v in VARIANTS}
    n_seeds = min(counts.values())
    seeds = (f"{n_seeds} seeds per arm" if len(set(counts.values())) == 1
             else "seeds per arm " + ", ".join(f"{v} {c}" for v, c in counts.items()))
    rule = f", {t975(n_seeds):.1f} for {n_seeds} seeds" if n_seeds >= 2 else ""
    touched = [f"{v} {100 * summary[v]['mean']['penalised_first']:.0f}% in the first {WINDOW} steps and "
               f"{100 * summary[v]['mean']['reward/overlong_frac']:.0f}% in the last {WINDOW}"
               for v in VARIANTS if v in summary and VARIANTS[v].get("overlong_penalty")
               and math.isfinite(summary[v]["mean"]["penalised_first"])]
    share = (f" The penalty touched (share of responses, mean over seeds): {'; '.join(touched)}."
             if touched else "")
    return (f"After {steps} steps with {seeds} (paired by seed; a difference counts when it "
            f"exceeds t_0.975 standard errors{rule}): " + "; ".join(parts) + "." + share)


def summary_rows(summary: dict[str, dict]) -> list[dict]:
    """The summary as table rows (one per arm and seed, then one mean row per arm)."""
    rows = []
    for v, s in summary.items():
        for i, seed in enumerate(s["seeds"]):
            rows.append({"arm": v, "seed": str(seed), **{FINAL_KEYS[k]: s["per_seed"][k][i] for k in FINAL_KEYS}})
        rows.append({"arm": v, "seed": "mean", **{FINAL_KEYS[k]: s["mean"][k] for k in FINAL_KEYS}})
    return rows


def replace_readme_block(text: str, sentence: str) -> str:
    """``text`` with the block between the ablations-frac markers replaced by ``sentence``."""
    pattern = r"(<!-- ablations-frac:start -->\n)(.*?)(\n<!-- ablations-frac:end -->)"
    if not re.search(pattern, text, flags=re.S):
        raise ValueError("README has no <!-- ablations-frac:start --> ... <!-- ablations-frac:end --> block")
    return re.sub(pattern, lambda m: m.group(1) + sentence + m.group(3), text, flags=re.S)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m justrl_lite.ablation_report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("store", help="folder of <variant>/seed<k>.jsonl (and COMMAND), e.g. data/ablations_frac")
    p.add_argument("--readme", default=None, help="rewrite the verdict block of this README")
    args = p.parse_args(argv)
    runs = load_store(args.store)
    summary = summarise(runs)
    if not summary:
        print(f"error: no runs in {args.store}; run the command in {args.store}/COMMAND first", file=sys.stderr)
        return 2
    if Path(args.store, "COMMAND").exists():
        for line in missing(runs, planned(args.store)):
            print(f"incomplete: {line}")
    for row in summary_rows(summary):
        print("  ".join(f"{k}={x:.4f}" if isinstance(x, float) else f"{k}={x}" for k, x in row.items()))
    sentence = verdict_sentence(summary)
    print(sentence)
    if args.readme:
        path = Path(args.readme)
        path.write_text(replace_readme_block(path.read_text(), sentence))
        print(f"wrote the verdict into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
