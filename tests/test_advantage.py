"""GRPO group z-score advantages: hand-computed cases and an independent loop re-derivation."""

from __future__ import annotations

import math
import os
import random
import statistics

import pytest
import torch

from justrl_lite.advantage import broadcast_to_tokens, grpo_advantages

EPS = 1e-6


@pytest.fixture
def seed() -> int:
    """A fresh seed every run; every assertion message prints it so a failure can be replayed."""
    return int.from_bytes(os.urandom(4), "little")


def reference_advantages(scores: list[float], group_ids: list[int], eps: float,
                         scale_by_std: bool) -> list[float]:
    """The recipe's formula, one group at a time, with the statistics module (no torch)."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group_ids):
        members.setdefault(g, []).append(i)
    out = [0.0] * len(scores)
    for idx in members.values():
        group = [scores[i] for i in idx]
        if len(group) == 1:
            mean, std = 0.0, 1.0
        else:
            mean, std = statistics.mean(group), statistics.stdev(group)  # stdev: the (n - 1) one
        for i in idx:
            out[i] = (scores[i] - mean) / (std + eps) if scale_by_std else scores[i] - mean
    return out


# ---- hand-computed cases ------------------------------------------------------------------------

def test_half_correct_group_of_eight_by_hand():
    # 4 of 8 correct: mean 0, sample variance 8 / 7, std = 1.0690450
    # A = +-1 / (1.0690450 + 1e-6) = +-0.9354135
    scores = torch.tensor([1.0, -1, 1, -1, 1, -1, 1, -1])
    adv = grpo_advantages(scores, torch.zeros(8, dtype=torch.long))
    expected = torch.tensor([0.9354135, -0.9354135] * 4)
    torch.testing.assert_close(adv, expected, rtol=0, atol=2e-7)


def test_one_correct_of_eight_by_hand():
    # mean = -6/8 = -0.75; sum of squares = 1.75^2 + 7 * 0.25^2 = 3.5; std = sqrt(3.5 / 7) = sqrt(0.5)
    # correct: 1.75 / (0.7071068 + 1e-6) = 2.4748702, incorrect: -0.25 / (0.7071068 + 1e-6) = -0.3535529
    scores = torch.tensor([-1.0, -1, -1, 1, -1, -1, -1, -1])
    adv = grpo_advantages(scores, torch.full((8,), 5))
    expected = torch.tensor([-0.3535529] * 3 + [2.4748702] + [-0.3535529] * 4)
    torch.testing.assert_close(adv, expected, rtol=0, atol=5e-7)


@pytest.mark.parametrize("k", range(9))
def test_k_correct_of_eight_closed_form(k):
    # +1 k times, -1 (8 - k) times: mean m = (k - 4) / 4, unbiased std = sqrt(k (8 - k) / 14);
    # A(+1) = (8 - k) / 4 / std, A(-1) = -k / 4 / std; k = 0 or 8: every A = 0.
    scores = torch.tensor([1.0] * k + [-1.0] * (8 - k), dtype=torch.float64)
    adv = grpo_advantages(scores, torch.zeros(8, dtype=torch.long)).tolist()
    std = math.sqrt(k * (8 - k) / 14)
    for a, s in zip(adv, scores.tolist()):
        if k in (0, 8):
            assert a == 0.0
        elif s > 0:
            assert a == pytest.approx((8 - k) / 4 / (std + EPS), abs=1e-12)
        else:
            assert a == pytest.approx(-k / 4 / (std + EPS), abs=1e-12)
    assert sum(adv) == pytest.approx(0.0, abs=1e-12)  # a z-score sums to zero within its group


def test_group_of_one_gets_mean_zero_std_one():
    scores = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    adv = grpo_advantages(scores, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(adv, scores / (1 + EPS))
    torch.testing.assert_close(grpo_advantages(scores, torch.tensor([0, 1, 2]), scale_by_std=False), scores)


def test_all_equal_groups_give_exactly_zero_even_for_non_integer_scores():
    # 0.1 + 0.1 + 0.1 is not 0.3 in floating point; a naive mean would leave a tiny deviation and a
    # nonzero A = dev / (|dev| + eps). The answer must be exactly 0.
    for dtype in (torch.float32, torch.float64):
        scores = torch.tensor([0.1, 0.1, 0.1, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7], dtype=dtype)
        adv = grpo_advantages(scores, torch.tensor([3, 3, 3, 9, 9, 9, 9, 9, 9, 9]))
        assert torch.equal(adv, torch.zeros(10, dtype=dtype)), f"{dtype}: {adv}"


def test_dr_grpo_is_the_centred_score():
    scores = torch.tensor([1.0, -1, -1, -1])
    adv = grpo_advantages(scores, torch.zeros(4, dtype=torch.long), scale_by_std=False)
    torch.testing.assert_close(adv, torch.tensor([1.5, -0.5, -0.5, -0.5]))


# ---- independent re-derivation on fresh random inputs -------------------------------------------

@pytest.mark.parametrize("scale_by_std", [True, False])
def test_matches_loop_on_random_groups(seed, scale_by_std):
    rng = random.Random(seed)
    scores: list[float] = []
    group_ids: list[int] = []
    labels = rng.sample(range(-1000, 10**6), 40)  # arbitrary integer labels, negative ones included
    for g, label in enumerate(labels):
        size = [1, 2, 8][g % 3] if g < 6 else rng.randint(1, 10)  # sizes 1, 2 and 8 always present
        kind = g % 4
        if kind == 0:
            values = [rng.choice([-1.0, 1.0]) for _ in range(size)]  # the paper's binary rewards
        elif kind == 1:
            values = [rng.uniform(-1.0, 1.0)] * size  # all equal: no signal
        else:
            values = [rng.gauss(0.0, 3.0) for _ in range(size)]
        scores += values
        group_ids += [label] * size
    order = list(range(len(scores)))
    rng.shuffle(order)  # groups are not contiguous
    scores = [scores[i] for i in order]
    group_ids = [group_ids[i] for i in order]

    got = grpo_advantages(torch.tensor(scores, dtype=torch.float64), torch.tensor(group_ids),
                          scale_by_std=scale_by_std).tolist()
    want = reference_advantages(scores, group_ids, EPS, scale_by_std)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), f"seed={seed} response {i}: {a} != {b}"


def test_float32_scores_match_loop_and_keep_dtype(seed):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(256, generator=gen)
    group_ids = torch.randint(0, 40, (256,), generator=gen)
    adv = grpo_advantages(scores, group_ids)
    assert adv.dtype == torch.float32
    want = reference_advantages(scores.double().tolist(), group_ids.tolist(), EPS, True)
    torch.testing.assert_close(adv, torch.tensor(want, dtype=torch.float32), rtol=1e-5, atol=1e-5,
                               msg=lambda m: f"seed={seed}: {m}")


def test_permuting_responses_permutes_advantages(seed):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 2, (64,), generator=gen).double() * 2 - 1
    group_ids = torch.arange(8).repeat_interleave(8)
    perm = torch.randperm(64, generator=gen)
    adv = grpo_advantages(scores, group_ids)
    torch.testing.assert_close(grpo_advantages(scores[perm], group_ids[perm]), adv[perm],
                               msg=lambda m: f"seed={seed}: {m}")


def test_integer_scores_are_accepted():
    adv = grpo_advantages(torch.tensor([1, -1]), torch.tensor([0, 0]))
    assert adv.is_floating_point()
    torch.testing.assert_close(adv, torch.tensor([1.0, -1.0]) / (math.sqrt(2) + EPS))


def test_empty_batch():
    adv = grpo_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert adv.shape == (0,)


# ---- broadcasting to tokens ---------------------------------------------------------------------

def test_broadcast_to_tokens_puts_advantage_on_each_token_and_zero_on_padding(seed):
    gen = torch.Generator().manual_seed(seed)
    adv = torch.randn(5, generator=gen)
    lengths = torch.randint(0, 7, (5,), generator=gen)
    mask = (torch.arange(6)[None, :] < lengths[:, None]).long()  # right-padded, one row may be empty
    out = broadcast_to_tokens(adv, mask)
    assert out.shape == (5, 6) and out.dtype == adv.dtype
    for i in range(5):
        for t in range(6):
            want = adv[i].item() if t < lengths[i].item() else 0.0
            assert out[i, t].item() == want, f"seed={seed} row {i} token {t}"


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("scores", "group_ids", "match"),
    [
        (torch.zeros(4), torch.zeros(3, dtype=torch.long), "same shape|shape of scores"),
        (torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long), "1-D"),
        (torch.zeros(4), torch.zeros(4), "integer prompt ids"),
        (torch.tensor([1.0, float("nan")]), torch.zeros(2, dtype=torch.long), "NaN"),
    ],
)
def test_bad_input_raises_one_clear_value_error(scores, group_ids, match):
    with pytest.raises(ValueError, match=match):
        grpo_advantages(scores, group_ids)


def test_broadcast_shape_mismatch_raises():
    with pytest.raises(ValueError, match="N = 3"):
        broadcast_to_tokens(torch.zeros(3), torch.ones(4, 5))
    with pytest.raises(ValueError, match="1-D"):
        broadcast_to_tokens(torch.zeros(3, 1), torch.ones(3, 5))
