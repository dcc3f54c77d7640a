"""ablation_report: the per-arm summary against a re-derivation on fresh random metrics files, the verdict rule
both ways, the README's verdict block, and the arms figure (plots.plot_arms, ``plots --ablations``)."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest

from justrl_lite import ablation_report as ar
from justrl_lite import plots
from justrl_lite.ablations import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
VAL = ar.VAL_KEY


def fake_run(rng: random.Random, total: int = 23, val_every: int = 5) -> list[dict]:
    rows = [{"step": 0, VAL: rng.random(), "val/reward": rng.uniform(-1, 1)}]
    for t in range(1, total + 1):
        r = {"step": t, **{k: rng.uniform(0.01, 2) for k in ar.TRAIN_KEYS}}
        if t % val_every == 0 or t == total:
            r[VAL], r["val/reward"] = rng.random(), rng.uniform(-1, 1)
        rows.append(r)
    return rows


def write_store(tmp: Path, runs: dict[str, dict[int, list[dict]]]) -> Path:
    for v, by_seed in runs.items():
        (tmp / v).mkdir(parents=True, exist_ok=True)
        for s, rows in by_seed.items():
            (tmp / v / f"seed{s}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp


@pytest.fixture
def rng():
    seed = random.randrange(2**32)
    print("seed", seed)
    return random.Random(seed)


def test_summary_matches_a_rederivation(tmp_path, rng):
    runs = {v: {s: fake_run(rng, total=rng.randint(12, 30)) for s in rng.sample(range(1, 9), 3)} for v in VARIANTS}
    runs["overlong"].pop(min(runs["overlong"]))          # an arm with fewer seeds
    loaded = ar.load_store(write_store(tmp_path, runs))
    assert loaded == runs
    summary = ar.summarise(loaded)
    for v, by_seed in runs.items():
        assert summary[v]["seeds"] == sorted(by_seed)
        for i, s in enumerate(sorted(by_seed)):
            rows = by_seed[s]
            vals = [r[VAL] for r in rows if VAL in r]
            assert summary[v]["per_seed"]["val_last"][i] == vals[-1]
            assert math.isclose(summary[v]["per_seed"]["val_last2"][i], (vals[-1] + vals[-2]) / 2)
            assert summary[v]["per_seed"]["val_step"][i] == rows[-1]["step"]
            strict = [(r["val/reward"] + 1) / 2 for r in rows if VAL in r]
            assert math.isclose(summary[v]["per_seed"]["strict_last2"][i], (strict[-1] + strict[-2]) / 2)
            for k in ar.TRAIN_KEYS:
                want = sum(r[k] for r in rows[-ar.WINDOW:]) / ar.WINDOW
                assert math.isclose(summary[v]["per_seed"][k][i], want, rel_tol=1e-12)
            first = sum(r["reward/overlong_frac"] for r in rows[1:ar.WINDOW + 1]) / ar.WINDOW
            assert math.isclose(summary[v]["per_seed"]["penalised_first"][i], first, rel_tol=1e-12)
        for k, x in summary[v]["per_seed"].items():
            assert math.isclose(summary[v]["mean"][k], sum(x) / len(x), rel_tol=1e-12)
    no_val = ar.final_values([{"step": 0}, {"step": 1, **{k: 1.0 for k in ar.TRAIN_KEYS}}])
    assert math.isnan(no_val["val_last"]) and no_val["policy/entropy"] == 1.0
    table = ar.summary_rows(summary)
    assert len(table) == sum(len(s) + 1 for s in runs.values())
    assert table[3] == {"arm": "justrl", "seed": "mean", **{ar.FINAL_KEYS[k]: summary["justrl"]["mean"][k]
                                                             for k in ar.FINAL_KEYS}}


def test_paired_difference_and_rule_both_ways(rng):
    seeds = [1, 2, 3, 4]
    a, b = [rng.random() for _ in seeds], [rng.random() for _ in seeds]
    arm = {"seeds": seeds, "per_seed": {"k": np.array(a)}}
    ref = {"seeds": [4, 3, 2, 1, 7], "per_seed": {"k": np.array(b[::-1] + [9.0])}}   # other order, extra seed
    diff, se, n = ar.paired_difference(arm, ref, "k")
    d = [x - y for x, y in zip(a, b)]
    m = sum(d) / 4
    assert n == 4 and math.isclose(diff, m)
    assert math.isclose(se, math.sqrt(sum((x - m) ** 2 for x in d) / 3 / 4))
    # the rule: beyond t * SE one way or the other, inside it no difference
    for n in (2, 3, 5, 20):
        se = rng.uniform(0.01, 1)
        t = ar.t975(n)
        assert ar.label(1.01 * t * se, se, n, "better", "worse") == "better"
        assert ar.label(-1.01 * t * se, se, n, "better", "worse") == "worse"
        assert ar.label(0.99 * t * se * rng.choice([-1, 1]), se, n, "up", "down") == ar.NO_DIFFERENCE
    assert ar.t975(3) == 4.303 and ar.label(5.0, 0.0, 1, "up", "down") == ar.TOO_FEW


def test_verdicts_follow_the_data_both_ways(rng):
    def summary_of(shift_val, shift_ent, noise):
        runs = {}
        for v in VARIANTS:
            runs[v] = {}
            for s in (1, 2, 3):
                rows = fake_run(random.Random(s), total=20)
                if v != "justrl":
                    for r in rows:
                        if VAL in r:
                            r[VAL] += shift_val + noise * rng.gauss(0, 1)
                        if "policy/entropy" in r:
                            r["policy/entropy"] += shift_ent + noise * rng.gauss(0, 1)
                runs[v][s] = rows
        return ar.summarise(runs)

    worse = {(r["arm"], r["claim"]): r["label"] for r in ar.verdicts(summary_of(-0.1, -0.2, 1e-4))}
    assert set(worse.values()) == {"worse", "lower"}
    assert worse[("overlong", VAL)] == "worse" and worse[("overlong", "policy/entropy")] == "lower"
    better = {r["label"] for r in ar.verdicts(summary_of(+0.1, +0.2, 1e-4))}
    assert better == {"better", "higher"}
    same = {r["label"] for r in ar.verdicts(summary_of(0.0, 0.0, 0.0))}
    assert same == {ar.NO_DIFFERENCE}
    noisy = ar.verdicts(summary_of(1e-3, 0.0, 1.0))   # a small shift drowned in noise: the rule says so itself
    for r in noisy:
        up, down = ar.LABELS[r["claim"]]
        inside = abs(r["diff"]) <= ar.t975(3) * r["se"]
        assert r["label"] == (ar.NO_DIFFERENCE if inside else up if r["diff"] > 0 else down)
    sentence = ar.verdict_sentence(summary_of(-0.1, -0.2, 1e-4))
    assert sentence.count("-> worse") == 2 and sentence.count("-> lower") == 2 and "\n" not in sentence
    assert sentence.startswith("After 20 steps with 3 seeds per arm") and "4.3 for 3 seeds" in sentence
    # the share of responses the penalty touched, for the arms with the penalty only
    shares = summary_of(-0.1, -0.2, 1e-4)
    for arm in ("overlong", "overlong+lenient"):
        first = 100 * shares[arm]["mean"]["penalised_first"]
        want = (f"{arm} {first:.0f}% in the first {ar.WINDOW} steps and "
                f"{100 * shares[arm]['mean']['reward/overlong_frac']:.0f}% in the last {ar.WINDOW}")
        assert want in sentence
    assert "justrl 0%" not in sentence and sentence.count("% in the first") == 2
    only_ref = ar.summarise({"justrl": {1: fake_run(rng, total=23)}})
    assert {r["label"] for r in ar.verdicts(only_ref)} == {ar.TOO_FEW}
    assert ar.verdict_sentence(only_ref).startswith("After 23 steps with seeds per arm justrl 1, overlong 0")


def test_planned_and_missing(tmp_path, rng):
    (tmp_path / "COMMAND").write_text("OMP_NUM_THREADS=1 python -m justrl_lite.ablations --seeds 1 2 "
                                      "--store x total_steps=20  # a note\n")
    plan = ar.planned(tmp_path)
    assert plan == [(v, s, 20) for v in VARIANTS for s in (1, 2)]
    runs = {v: {1: fake_run(rng, total=20), 2: fake_run(rng, total=20)} for v in VARIANTS}
    assert ar.missing(runs, plan) == []
    runs["overlong"][2] = fake_run(rng, total=12)
    del runs["justrl"][1]
    assert ar.missing(runs, plan) == ["justrl seed 1: no metrics", "overlong seed 2: stops at step 12 of 20"]
    (tmp_path / "COMMAND").write_text("python -m justrl_lite.full_run\n")
    with pytest.raises(ValueError, match="expected `python -m justrl_lite.ablations`"):
        ar.planned(tmp_path)


def test_cli_writes_the_readme_block(tmp_path, rng, capsys):
    store = write_store(tmp_path / "store", {v: {s: fake_run(rng) for s in (1, 2, 3)} for v in VARIANTS})
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- ablations-frac:start -->\nold\n<!-- ablations-frac:end -->\nb\n")
    assert ar.main([str(store), "--readme", str(readme)]) == 0
    want = ar.verdict_sentence(ar.summarise(ar.load_store(store)))
    assert readme.read_text() == f"a\n<!-- ablations-frac:start -->\n{want}\n<!-- ablations-frac:end -->\nb\n"
    assert ar.main([str(tmp_path / "empty")]) == 2
    assert "no runs in" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no <!-- ablations-frac:start -->"):
        ar.replace_readme_block("no markers", want)


def test_readme_verdict_is_generated_from_the_stored_sweep():
    store = ROOT / "data" / "ablations_frac"
    runs = ar.load_store(store)
    if ar.missing(runs, ar.planned(store)):
        pytest.skip(f"{store} does not hold every planned run yet")
    block = re.search(r"<!-- ablations-frac:start -->\n(.*?)\n<!-- ablations-frac:end -->",
                      (ROOT / "README.md").read_text(), flags=re.S)
    assert block, "README lost its ablations-frac markers"
    assert block.group(1) == ar.verdict_sentence(ar.summarise(runs)), (
        "README's fractions verdict is stale: "
        "python -m justrl_lite.ablation_report data/ablations_frac --readme README.md")


def test_plot_arms_draws_seeds_faint_and_their_mean(tmp_path, rng):
    import matplotlib

    matplotlib.use("Agg")
    runs = {v: [fake_run(rng, total=t) for t in (20, 20, 17)] for v in VARIANTS}
    fig = plots.plot_arms(runs, tmp_path / "a.png", window=3)
    assert (tmp_path / "a.png").stat().st_size > 0
    assert [ax.get_title().split(",")[0] for ax in fig.axes] == [t for _, t in plots.ARM_PANELS]
    for ax, (key, _) in zip(fig.axes, plots.ARM_PANELS):
        lines = ax.lines
        assert len(lines) == len(VARIANTS) * 4                     # 3 seeds + their mean per arm
        mean_line = lines[3]
        scale = 100 if key == VAL else 1
        curves = []
        for rows in runs["justrl"]:
            s, v = plots.series([r for r in rows if r["step"] > 0 or key == VAL], key)
            curves.append(v if key == VAL else plots.smooth(v, 3))
        n = min(len(c) for c in curves)
        assert np.allclose(mean_line.get_ydata(), scale * np.mean([c[:n] for c in curves], axis=0))
        assert mean_line.get_linewidth() > lines[0].get_linewidth() and lines[0].get_alpha() < 1


def test_plot_arms_styles_each_arm_and_names_the_arms_drawn_on_top_of_each_other(rng):
    import matplotlib

    matplotlib.use("Agg")
    same = [fake_run(rng, total=20) for _ in range(2)]
    runs = {"justrl": same, "overlong": [list(r) for r in same],
            "overlong+lenient": [fake_run(rng, total=20)] * 2}
    fig = plots.plot_arms(runs, window=3)
    for ax in fig.axes:
        means = [line for line in ax.lines if line.get_linewidth() == 2]
        assert len({(m.get_linestyle(), m.get_marker()) for m in means}) == 3
        notes = [t.get_text() for t in ax.texts]
        assert notes and "justrl = overlong" in notes[0] and "overlong+lenient" not in notes[0]
    steps = np.arange(5.0)
    means = {"a": (steps, steps), "b": (steps, steps + 0.03), "c": (steps, steps + 1)}
    assert plots.overlapping_arms(means) == [("a", "b")]
    assert plots.overlapping_arms({"a": (steps, steps), "b": (steps + 1, steps)}) == []   # other steps


def test_plots_cli_ablations(tmp_path, rng, capsys):
    store = write_store(tmp_path / "ablations_x", {"justrl": {1: fake_run(rng)}, "overlong": {2: fake_run(rng)}})
    assert plots.main(["--ablations", str(store), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "ablations_x.png").stat().st_size > 0
    assert plots.main(["--ablations", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    assert "no <variant>/seed<k>.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plots.main([])


def test_plot_length_zone_shades_each_budgets_zone_with_its_share(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from justrl_lite.toy.overlong_zone import zone_share

    histogram = {10: 5, 30: 3, 45: 2}
    fig = plots.plot_length_zone(histogram, {"a": (50, 10), "b": (40, 15)}, tmp_path / "z.png", caption="cmd")
    assert (tmp_path / "z.png").stat().st_size > 0
    ax = fig.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches[:3]] == [50.0, 30.0, 20.0]     # % of responses
    labels = ax.get_legend_handles_labels()[1]
    lengths = [n for n, c in histogram.items() for _ in range(c)]
    assert f"a: zone 41-50 tokens holds {100 * zone_share(lengths, 50, 10):.1f}%" in labels       # 20.0%
    assert f"b: zone 26-40 tokens holds {100 * zone_share(lengths, 40, 15):.1f}%" in labels       # 50.0%


def test_plot_runs_gives_each_group_its_own_style(rng):
    import matplotlib

    matplotlib.use("Agg")
    same = fake_run(rng, total=12)
    panels = [(VAL, "pass@1"), ("policy/entropy", "H")]
    fig = plots.plot_runs({"recipe": [same], "yours": [list(same)]}, panels)
    for ax in fig.axes:
        a, b = ax.lines
        assert np.array_equal(a.get_ydata(), b.get_ydata())                    # identical runs ...
        assert (a.get_linestyle(), a.get_marker()) != (b.get_linestyle(), b.get_marker())   # ... both visible


def test_readme_reading_of_the_verdict_quotes_the_stored_sweep():
    store = ROOT / "data" / "ablations_frac"
    runs = ar.load_store(store)
    if ar.missing(runs, ar.planned(store)):
        pytest.skip(f"{store} does not hold every planned run yet")
    m = {v: s["mean"] for v, s in ar.summarise(runs).items()}
    readme = " ".join((ROOT / "README.md").read_text().split())
    pct = lambda x: f"{100 * x:.1f}%"                                    # noqa: E731
    quoted = [
        f"(mean of the last two validations: {pct(m['overlong']['val_last2'])} against "
        f"{pct(m['justrl']['val_last2'])})",
        f"({m['overlong']['policy/entropy']:.3f} against {m['justrl']['policy/entropy']:.3f} nats",
        f"from {100 * m['overlong']['penalised_first']:.0f}% in the first 10 steps to "
        f"{100 * m['overlong']['reward/overlong_frac']:.0f}% in the last",
        "mean length over the last 10 steps " + ", ".join(f"{m[v]['response_length/mean']:.1f}" for v in
                                                          ("justrl", "overlong")) + " and "
        f"{m['overlong+lenient']['response_length/mean']:.1f} tokens",
        f"held-out pass@1 is not lower ({pct(m['overlong+lenient']['val_last2'])})",
        f"it is {pct(m['overlong+lenient']['strict_last2'])} against {pct(m['justrl']['strict_last2'])} "
        "for JustRL",
        f"keeps more entropy ({m['overlong+lenient']['policy/entropy']:.3f})",
    ]
    for q in quoted:
        assert q in readme, f"README's reading of the fractions verdict is stale: expected {q!r}"
