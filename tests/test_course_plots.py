"""The course figures (justrl_lite/course/plots.py): each data function against an independent re-derivation on
fresh random inputs, and each drawing read back from the figure's artists: it must show exactly that data."""

from __future__ import annotations

import math
import random
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import colors  # noqa: E402

from justrl_lite.course import plots as cp  # noqa: E402
from justrl_lite.logprobs import padding_counts, plan_micro_batches  # noqa: E402

CLIP = dict(clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=10.0)
BASE = Path(__file__).resolve().parents[1] / "data" / "toy" / "base"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fresh_rng() -> tuple[int, random.Random]:
    seed = random.SystemRandom().randrange(2**32)
    print("seed", seed)
    return seed, random.Random(seed)


def by_gid(where, gid: str):
    """The one artist of a figure (or of one of its axes) with this gid."""
    axes = where.axes if hasattr(where, "get_axes") else [where]
    found = [a for ax in axes for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, (gid, len(found))
    return found[0]


# ---- 1. token by token ----------------------------------------------------------------------------------

def hand_status(new: list[float], old: list[float], A: float, low=0.2, high=0.28, c=10.0) -> dict[str, list]:
    """The per-token clip of the loss.py docstring, from the equations (plain Python)."""
    out = {"ratio": [], "loss": [], "grad": [], "ratio_clipped": [], "dual_clipped": []}
    for n, o in zip(new, old):
        r = math.exp(max(-20.0, min(20.0, n - o)))
        l1, l2 = -A * r, -A * min(max(r, 1 - low), 1 + high)
        loss = max(l1, l2)
        dual = A < 0 and loss > -A * c
        clipped = l2 > l1
        out["ratio"].append(r)
        out["loss"].append(-A * c if dual else loss)
        # d(-A r)/d log pi_new = -A r where no clip binds, else 0
        out["grad"].append(0.0 if (dual or clipped) else -A * r)
        out["ratio_clipped"].append(clipped)
        out["dual_clipped"].append(dual)
    return out


def random_response(rng: random.Random, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    old = torch.tensor([rng.uniform(-6.0, -0.01) for _ in range(T)], dtype=torch.float64)
    new = old + torch.tensor([rng.choice([rng.gauss(0, 0.3), rng.uniform(-4, 4)]) for _ in range(T)],
                             dtype=torch.float64)
    return new, old


def test_token_clip_status_matches_the_equations_on_random_tokens():
    _, rng = fresh_rng()
    seen = {"ratio": False, "dual": False, "free": False}
    for A in (1.3, -0.7, -2.1, 0.4, 0.0):
        new, old = random_response(rng, 80)
        got = cp.token_clip_status(new, old, A, **CLIP)
        want = hand_status(new.tolist(), old.tolist(), A)
        for key in ("ratio", "loss", "grad"):
            assert np.allclose(got[key], want[key], rtol=1e-12, atol=1e-12), (A, key)
        for key in ("ratio_clipped", "dual_clipped"):
            assert got[key].tolist() == want[key], (A, key)
        assert got["zeroed"].tolist() == [a or b for a, b in zip(want["ratio_clipped"], want["dual_clipped"])]
        if A != 0:  # where a clip acts the gradient is exactly 0, elsewhere it is not
            assert (got["grad"][got["zeroed"]] == 0).all() and (got["grad"][~got["zeroed"]] != 0).all()
        seen["ratio"] |= bool(got["ratio_clipped"].any())
        seen["dual"] |= bool(got["dual_clipped"].any())
        seen["free"] |= bool((~got["zeroed"]).any())
    assert all(seen.values()), seen  # every branch was exercised


def test_token_clip_status_rejects_a_batch():
    with pytest.raises(ValueError, match="one response"):
        cp.token_clip_status(torch.zeros(2, 3), torch.zeros(2, 3), 1.0, **CLIP)


def test_plot_token_clipping_draws_each_tokens_ratio_and_clip():
    _, rng = fresh_rng()
    responses = []
    for A in (1.5, -0.8):
        new, old = random_response(rng, rng.randint(20, 60))
        tokens = [rng.choice([" 1", "+", "\n", "boxed", "{", "}", "<｜end▁of▁sentence｜>", ""]) for _ in new]
        responses.append(dict(tokens=tokens, advantage=A, **cp.token_clip_status(new, old, A, **CLIP)))
    fig = cp.plot_token_clipping(responses, clip_ratio_low=0.2, clip_ratio_high=0.28, ratio_range=(0.5, 2.0))
    cmap, norm = plt.get_cmap("coolwarm"), colors.LogNorm(0.5, 2.0)
    for i, resp in enumerate(responses):
        texts = [t.get_text() for t in fig.axes[i].texts]
        assert texts == [cp.display_token(t) for t in resp["tokens"]]
        for t in range(len(resp["tokens"])):
            box = by_gid(fig, f"token {i} {t}")
            assert np.allclose(box.get_facecolor(), cmap(norm(resp["ratio"][t])))
            assert (box.get_hatch() is not None) == bool(resp["zeroed"][t])
            edge = cp.DUAL_CLIP_COLOR if resp["dual_clipped"][t] else cp.RATIO_CLIP_COLOR if resp["zeroed"][t] else None
            if edge:
                assert np.allclose(box.get_edgecolor(), colors.to_rgba(edge))
        assert np.allclose(by_gid(fig, f"ratio {i}").get_ydata(), resp["ratio"])
        assert by_gid(fig, f"zeroed {i}").get_xdata().tolist() == np.flatnonzero(resp["zeroed"]).tolist()
        assert f"{int(resp['zeroed'].sum())} of {len(resp['tokens'])} tokens" in fig.axes[i].get_title(loc="left")


def test_display_token_is_never_empty_and_shows_newlines():
    assert cp.display_token("") == "\u2205" and cp.display_token(".\n") == ".\u23ce"
    assert cp.display_token("<｜end▁of▁sentence｜>").startswith("<|")


# ---- 2. advantage for k of n --------------------------------------------------------------------------

def closed_form(k: int, n: int, eps: float) -> tuple[float, float]:
    """(A of a correct response, A of an incorrect one) for k of n correct, scores +1/-1, from notebook 03b."""
    if n == 1:
        return 1 / (1 + eps), -1 / (1 + eps)  # a group of one: mean 0, std 1
    if k in (0, n):
        return 0.0, 0.0
    std = 2 * math.sqrt(k * (n - k) / (n * (n - 1)))
    return (2 * (n - k) / n) / (std + eps), (-2 * k / n) / (std + eps)


@pytest.mark.parametrize("eps", [1e-6, 0.1])
def test_advantage_grid_is_the_closed_form(eps):
    grid = cp.advantage_grid(12, eps=eps)
    assert grid["a_correct"].shape == grid["a_incorrect"].shape == (12, 13)
    for n in range(1, 13):
        for k in range(13):
            a_pos, a_neg = grid["a_correct"][n - 1, k], grid["a_incorrect"][n - 1, k]
            if k > n:
                assert math.isnan(a_pos) and math.isnan(a_neg)
                continue
            want_pos, want_neg = closed_form(k, n, eps)
            assert math.isnan(a_pos) if k == 0 else math.isclose(a_pos, want_pos, rel_tol=1e-12, abs_tol=1e-12)
            assert math.isnan(a_neg) if k == n else math.isclose(a_neg, want_neg, rel_tol=1e-12, abs_tol=1e-12)
    if eps == 1e-6:  # notebook 03b: the lone correct answer of a 1-in-8 group
        assert math.isclose(grid["a_correct"][7, 1], 7 / math.sqrt(8), rel_tol=1e-5)


def test_advantage_grid_rejects_a_bad_size():
    with pytest.raises(ValueError, match="n_max"):
        cp.advantage_grid(0)


def test_plot_advantage_grid_shows_the_grid():
    grid = cp.advantage_grid(9)
    fig = cp.plot_advantage_grid(grid, highlight_n=8, annotate_n_max=6)
    for ax, key in zip(fig.axes[:2], ("a_correct", "a_incorrect")):
        (image,) = ax.get_images()
        shown = image.get_array()
        assert np.array_equal(shown.mask, np.isnan(grid[key]))
        assert np.allclose(shown.filled(0), np.nan_to_num(grid[key]))
        want = [f"{a:.1f}" for (row, _), a in np.ndenumerate(grid[key]) if row + 1 <= 6 and math.isfinite(a)]
        assert all(t.get_fontsize() >= 9 for t in ax.texts)  # legible (issue 21: they were 6 pt)
        assert [t.get_text() for t in ax.texts] == want


# ---- 3. entropy vs temperature -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_engine():
    if not (BASE / "config.json").is_file():
        pytest.skip(f"{BASE} missing: build it with `python -m justrl_lite.toy.make_base`")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from justrl_lite.rollout import HFRollout

    tokenizer = AutoTokenizer.from_pretrained(BASE)
    model = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32).eval()
    prompts = [tokenizer(f"<｜User｜>{q}<｜Assistant｜><think>\n", add_special_tokens=False)["input_ids"]
               for q in ("6 - 1 + 7 =", "3 + 4 - 2 =")]
    return HFRollout(model, tokenizer), prompts


def test_entropy_by_temperature_matches_a_plain_forward_pass(toy_engine):
    engine, prompts = toy_engine
    seed, _ = fresh_rng()
    temps = (0.5, 1.0, 1.6)
    results = cp.entropy_by_temperature(engine, prompts, temps, n=3, max_new_tokens=24, seed=seed)
    assert sorted(results) == list(temps)
    for T in temps:
        batch = engine.generate(prompts, 3, temperature=T, top_p=1.0, top_k=-1, max_new_tokens=24, seed=seed)
        entropies = []
        for row in range(batch.response_ids.shape[0]):
            prompt = batch.prompt_ids[row][batch.prompt_mask[row].bool()]
            response = batch.response_ids[row][batch.response_mask[row].bool()]
            with torch.no_grad():
                logits = engine.model(input_ids=torch.cat([prompt, response])[None]).logits[0, len(prompt) - 1:-1]
            # H_t = -sum_v p_v log p_v, p = softmax(z_t / T)
            logp = torch.log_softmax(logits.double() / T, dim=-1)  # (R_i, V)
            entropies.append(-(logp.exp() * logp).sum(-1))
        assert np.allclose(results[T]["entropy"], torch.cat(entropies).numpy(), rtol=0, atol=1e-4), T
        assert np.array_equal(results[T]["lengths"], batch.response_lengths.numpy())
        assert np.allclose(results[T]["neg_logp"], -batch.sampling_logprobs[batch.response_mask.bool()].numpy())
        assert (results[T]["entropy"] >= -1e-4).all()  # H >= 0 up to float32 rounding of logsumexp - E[z]


def test_plot_entropy_vs_temperature_draws_the_means_and_medians():
    _, rng = fresh_rng()
    results = {T: {"entropy": np.array([rng.uniform(0, 2 * T) for _ in range(rng.randint(5, 40))]),
                   "neg_logp": np.array([rng.uniform(0, 3) for _ in range(10)])} for T in (0.3, 0.7, 1.0, 1.5)}
    fig = cp.plot_entropy_vs_temperature(results, marks={1.0: "training", 0.7: "evaluation"})
    temps = sorted(results)
    mean_line = by_gid(fig, "mean entropy")
    assert mean_line.get_xdata().tolist() == temps
    assert np.allclose(mean_line.get_ydata(), [results[T]["entropy"].mean() for T in temps])
    assert np.allclose(by_gid(fig, "mean neg logp").get_ydata(), [results[T]["neg_logp"].mean() for T in temps])
    for T in temps:
        median = by_gid(fig, f"median {T:g}")
        assert np.allclose(median.get_ydata(), np.median(results[T]["entropy"]))
        # no colour shared with a plotted series (the medians were orange like the -log p line)
        assert median.get_color() not in (mean_line.get_color(), by_gid(fig, "mean neg logp").get_color())


# ---- 4. micro-batches ---------------------------------------------------------------------------------

def check_drawn_plan(ax, plan, seq_lengths):
    """Each micro-batch's bar: its rows' lengths end to end, then its padding as padding_counts counts it."""
    for j, rows in enumerate(plan):
        left = 0
        for r in rows:
            real = by_gid(ax, f"real {j} {r}")
            assert real.get_x() == left and real.get_width() == int(seq_lengths[r])
            left += int(seq_lengths[r])
        pad = by_gid(ax, f"pad {j}")
        padded, computed = padding_counts([rows], seq_lengths)
        assert pad.get_x() == left == computed - padded and pad.get_width() == padded
    padded, computed = padding_counts(plan, seq_lengths)
    assert f"{len(plan)} micro-batches, padding {padded / computed:.0%}" in ax.get_title()


def test_micro_batch_layout_and_plot_follow_the_plan_they_are_given():
    _, rng = fresh_rng()
    seq_lengths = torch.tensor([rng.randint(5, 200) for _ in range(24)] + [50] * 4)
    budget = 600
    plans = {"mini-batch 0": plan_micro_batches(list(range(12)), seq_lengths, budget),
             "mini-batch 1": plan_micro_batches(list(range(12, 24)), seq_lengths, budget),
             "any plan": [[3, 1], [7], [0, 2, 4, 5, 6], [24, 25, 26, 27]]}   # not the planner's: drawn as given
    for plan in plans.values():
        layout = cp.micro_batch_layout(plan, seq_lengths)
        assert [mb["rows"] for mb in layout] == [list(r) for r in plan]
        for mb in layout:
            assert mb["lengths"] == [int(seq_lengths[r]) for r in mb["rows"]] and mb["real"] == sum(mb["lengths"])
            # padding is never negative and never more than padding every row to the micro-batch's longest
            assert mb["real"] <= mb["computed"] <= len(mb["rows"]) * max(mb["lengths"])
            assert mb["padded"] == mb["computed"] - mb["real"]
        assert sum(mb["padded"] for mb in layout) == padding_counts(plan, seq_lengths)[0]
    assert cp.micro_batch_layout([[24, 25, 26, 27]], seq_lengths)[0]["padded"] == 0     # equal lengths: no padding
    fig = cp.plot_micro_batches(plans, seq_lengths, max_tokens=budget)
    top, bottom = fig.axes[:len(plans)], fig.axes[len(plans):]
    for ax, low, plan in zip(top, bottom, plans.values()):
        check_drawn_plan(ax, plan, seq_lengths)
        assert ax.get_lines() == []  # the computed tokens and the budget's measure are on separate axes
        assert [line.get_xdata()[0] for line in low.get_lines()] == [budget]
        for j, rows in enumerate(plan):
            assert by_gid(low, f"budget {j}").get_width() == len(rows) * int(seq_lengths[list(rows)].max())


def test_micro_batch_layout_rejects_an_empty_micro_batch():
    with pytest.raises(ValueError, match="no row"):
        cp.micro_batch_layout([[0], []], torch.tensor([3]))
