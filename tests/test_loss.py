"""The policy loss and its parts, each checked against a per-token Python re-derivation on fresh inputs."""

from __future__ import annotations

import math
import os
import random

import pytest
import torch

from justrl_lite.logprobs import entropy_from_logits, token_logprobs
from justrl_lite.loss import aggregate_loss, kl_penalty_k3, masked_mean, micro_batch_scale, policy_loss

MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
PAPER_CLIP = dict(clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=10.0)


@pytest.fixture
def seed() -> int:
    """A fresh seed every run; every assertion message prints it so a failure can be replayed."""
    return int.from_bytes(os.urandom(4), "little")


# ---- independent re-derivations (plain Python over floats) --------------------------------------

def reference_aggregate(per_seq: list[list[float]], mode: str) -> float:
    """per_seq[i] = the losses of sequence i's real tokens."""
    if mode == "token-mean":
        tokens = [x for seq in per_seq for x in seq]
        return sum(tokens) / len(tokens) if tokens else 0.0
    seqs = [seq for seq in per_seq if seq]
    if not seqs:
        return 0.0
    if mode == "seq-mean-token-mean":
        return sum(sum(seq) / len(seq) for seq in seqs) / len(seqs)
    return sum(sum(seq) for seq in seqs) / len(seqs)


def reference_policy_loss(new, old, adv, mask, low, high, c, mode):
    """The recipe's formula, one token at a time -> (loss, clip_frac, dual_clip_frac, approx_kl)."""
    per_seq, n_tokens, n_clip, n_dual, kl_sum = [], 0, 0, 0, 0.0
    for i in range(len(new)):
        seq = []
        for t in range(len(new[i])):
            if not mask[i][t]:
                continue
            a = adv[i][t]
            r = math.exp(min(20.0, max(-20.0, new[i][t] - old[i][t])))
            l1 = -a * r
            l2 = -a * min(max(r, 1 - low), 1 + high)
            loss = max(l1, l2)
            if a < 0 and loss > -a * c:
                loss = -a * c
                n_dual += 1
            n_clip += l2 > l1
            kl_sum += old[i][t] - new[i][t]
            n_tokens += 1
            seq.append(loss)
        per_seq.append(seq)
    denom = max(n_tokens, 1)
    return reference_aggregate(per_seq, mode), n_clip / denom, n_dual / denom, kl_sum / denom


def random_mask(rng: random.Random, batch: int, length: int, min_length: int = 0) -> list[list[int]]:
    """Right-padded 0/1 masks of random lengths in [min_length, length]; one sequence is always empty."""
    lengths = [rng.randint(min_length, length) for _ in range(batch)]
    lengths[rng.randrange(batch)] = 0
    return [[1 if t < n else 0 for t in range(length)] for n in lengths]


def straddling_inputs(rng: random.Random, mask: list[list[int]], low: float, high: float, c: float):
    """log-ratios just inside and outside each bound (1 - low, 1 + high, c), advantages of both signs.

    Every (ratio, sign of A) pair sits on at least one real token; the other tokens are drawn at random.
    """
    ratios = [(1 - low) * 0.97, (1 - low) * 1.03, 1.0, (1 + high) * 0.97, (1 + high) * 1.03,
              c * 0.97, c * 1.03, 1e12, 1e-12]
    deck = [(r, sign) for r in ratios for sign in (-1.0, 1.0)]
    real = [(i, t) for i, row in enumerate(mask) for t, m in enumerate(row) if m]
    assert len(real) >= len(deck), "mask too small to hold every case"
    planted = dict(zip(rng.sample(real, len(deck)), deck))
    new, old, adv = [], [], []
    for i, row in enumerate(mask):
        new.append([])
        old.append([])
        adv.append([])
        for t in range(len(row)):
            o = rng.uniform(-8.0, 0.0)
            if (i, t) in planted:
                r, sign = planted[i, t]
                a = sign * rng.uniform(0.05, 3.0)
            else:
                r = rng.choice(ratios) if rng.random() < 0.7 else math.exp(rng.gauss(0.0, 0.5))
                a = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 3.0) if rng.random() < 0.9 else 0.0
            old[i].append(o)
            new[i].append(o + math.log(r * rng.uniform(0.995, 1.005)))
            adv[i].append(a)
    return new, old, adv


# ---- log-probs and entropy ----------------------------------------------------------------------

def test_token_logprobs_match_categorical(seed):
    gen = torch.Generator().manual_seed(seed)
    temperature = 0.3 + 1.7 * torch.rand((), generator=gen).item()
    logits = 4 * torch.randn(3, 5, 11, generator=gen, dtype=torch.float64)
    ids = torch.randint(0, 11, (3, 5), generator=gen)
    want = torch.distributions.Categorical(logits=logits / temperature).log_prob(ids)
    got = token_logprobs(logits, ids, temperature)
    torch.testing.assert_close(got, want, msg=lambda m: f"seed={seed} temperature={temperature}: {m}")
    want = torch.distributions.Categorical(logits=logits).log_prob(ids)
    torch.testing.assert_close(token_logprobs(logits, ids), want, msg=lambda m: f"seed={seed}: {m}")


def test_token_logprobs_gradient_matches_categorical(seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 7, (2, 4), generator=gen)
    (g_ours,) = torch.autograd.grad(token_logprobs(logits, ids, 0.7).sum(), logits)
    reference = torch.distributions.Categorical(logits=logits / 0.7).log_prob(ids)
    (g_ref,) = torch.autograd.grad(reference.sum(), logits)
    torch.testing.assert_close(g_ours, g_ref, msg=lambda m: f"seed={seed}: {m}")


def test_token_logprobs_half_precision_runs_in_float32(seed):
    gen = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(2, 6, 50, generator=gen)).to(torch.bfloat16)
    ids = torch.randint(0, 50, (2, 6), generator=gen)
    got = token_logprobs(logits, ids, 0.8)
    assert got.dtype == torch.float32
    want = torch.distributions.Categorical(logits=logits.float() / 0.8).log_prob(ids)
    torch.testing.assert_close(got, want, msg=lambda m: f"seed={seed}: {m}")
    ent = entropy_from_logits(logits, 0.8)
    torch.testing.assert_close(ent, torch.distributions.Categorical(logits=logits.float() / 0.8).entropy(),
                               msg=lambda m: f"seed={seed}: {m}")


def test_entropy_matches_direct_formula(seed):
    gen = torch.Generator().manual_seed(seed)
    temperature = 0.5 + torch.rand((), generator=gen).item()
    logits = 5 * torch.randn(2, 3, 6, generator=gen, dtype=torch.float64)
    got = entropy_from_logits(logits, temperature)
    for b in range(2):
        for t in range(3):
            z = [x / temperature for x in logits[b, t].tolist()]
            top = max(z)
            total = sum(math.exp(x - top) for x in z)
            p = [math.exp(x - top) / total for x in z]
            # H = -sum_v p_v log p_v
            want = -sum(pv * math.log(pv) for pv in p if pv > 0)
            assert got[b, t].item() == pytest.approx(want, rel=1e-9, abs=1e-12), f"seed={seed} ({b}, {t})"


def test_entropy_bounds():
    uniform = torch.zeros(1, 1, 8)
    assert entropy_from_logits(uniform).item() == pytest.approx(math.log(8))
    peaked = torch.tensor([[[0.0, 1e4, 0.0]]])
    assert entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-6)


# ---- aggregation --------------------------------------------------------------------------------

def test_masked_mean_matches_loop_and_is_zero_when_empty(seed):
    rng = random.Random(seed)
    x = [[rng.gauss(0, 1) for _ in range(7)] for _ in range(4)]
    mask = random_mask(rng, 4, 7)
    picked = [x[i][t] for i in range(4) for t in range(7) if mask[i][t]]
    want = sum(picked) / len(picked) if picked else 0.0
    got = masked_mean(torch.tensor(x, dtype=torch.float64), torch.tensor(mask))
    assert got.item() == pytest.approx(want, rel=1e-12, abs=1e-12), f"seed={seed}"

    x_t = torch.randn(3, 4, requires_grad=True)
    empty = masked_mean(x_t, torch.zeros(3, 4))
    empty.backward()
    assert empty.item() == 0.0 and torch.isfinite(x_t.grad).all()


@pytest.mark.parametrize("mode", MODES)
def test_aggregate_loss_matches_loop(seed, mode):
    rng = random.Random(seed)
    loss_mat = [[rng.gauss(0, 2) for _ in range(9)] for _ in range(6)]
    mask = random_mask(rng, 6, 9)
    want = reference_aggregate([[loss_mat[i][t] for t in range(9) if mask[i][t]] for i in range(6)], mode)
    got = aggregate_loss(torch.tensor(loss_mat, dtype=torch.float64), torch.tensor(mask), mode)
    assert got.item() == pytest.approx(want, rel=1e-12, abs=1e-12), f"seed={seed} mode={mode}"


@pytest.mark.parametrize("mode", MODES)
def test_aggregate_loss_without_tokens_is_zero_not_nan(mode):
    loss_mat = torch.randn(3, 5, requires_grad=True)
    loss = aggregate_loss(loss_mat, torch.zeros(3, 5, dtype=torch.long), mode)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(loss_mat.grad, torch.zeros(3, 5))


def test_aggregation_modes_differ_on_unequal_lengths_by_hand():
    # sequence 0: one token of loss 1; sequence 1: three tokens of loss 3
    loss_mat = torch.tensor([[1.0, 0, 0], [3, 3, 3]])
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    assert aggregate_loss(loss_mat, mask, "token-mean").item() == pytest.approx(10 / 4)
    assert aggregate_loss(loss_mat, mask, "seq-mean-token-mean").item() == pytest.approx((1 + 3) / 2)
    assert aggregate_loss(loss_mat, mask, "seq-mean-token-sum").item() == pytest.approx((1 + 9) / 2)


# ---- the policy loss ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bounds", ["paper", "random"])
def test_policy_loss_matches_per_token_loop(seed, mode, bounds):
    rng = random.Random(seed)
    if bounds == "paper":
        low, high, c = 0.2, 0.28, 10.0
    else:
        low, high, c = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5), rng.uniform(1.5, 20.0)
    mask = random_mask(rng, 8, 12, min_length=3)
    new, old, adv = straddling_inputs(rng, mask, low, high, c)
    want = reference_policy_loss(new, old, adv, mask, low, high, c, mode)
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    loss, metrics = policy_loss(t(new), t(old), t(adv), torch.tensor(mask), clip_ratio_low=low,
                                clip_ratio_high=high, clip_ratio_c=c, loss_agg_mode=mode)
    names = ("clip_frac", "dual_clip_frac", "approx_kl")
    got = (loss.item(), *(metrics[name].item() for name in names))
    for name, g, w in zip(("loss", *names), got, want):
        assert g == pytest.approx(w, rel=1e-10, abs=1e-10), f"seed={seed} mode={mode} bounds={bounds}: {name}"
    assert want[1] > 0 and want[2] > 0, f"seed={seed}: the inputs should exercise both clips"
    assert all(not m.requires_grad for m in metrics.values())


def test_clip_higher_is_asymmetric():
    # A > 0, r = 1.25: inside [0.8, 1.28], unclipped (a symmetric 0.2 clip would clip it at 1.2)
    # A < 0, r = 0.75: below 0.8, clipped to 0.8 (the loss cannot push it lower)
    logp_old = torch.zeros(2, 1, dtype=torch.float64)
    logp_new = torch.log(torch.tensor([[1.25], [0.75]], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    mask = torch.ones(2, 1)
    losses, clip_fracs, grads = [], [], []
    for i in range(2):
        loss, metrics = policy_loss(logp_new[i:i + 1], logp_old[i:i + 1], adv[i:i + 1], mask[i:i + 1],
                                    **PAPER_CLIP, loss_agg_mode="token-mean")
        (grad,) = torch.autograd.grad(loss, logp_new)
        losses.append(loss.item())
        clip_fracs.append(metrics["clip_frac"].item())
        grads.append(grad[i, 0].item())
    assert losses == pytest.approx([-1.25, 0.8])
    assert clip_fracs == [0.0, 1.0]
    assert grads[0] == pytest.approx(-1.25) and grads[1] == 0.0

    symmetric, metrics = policy_loss(logp_new[:1], logp_old[:1], adv[:1], mask[:1], clip_ratio_low=0.2,
                                     clip_ratio_high=0.2, clip_ratio_c=10.0, loss_agg_mode="token-mean")
    assert symmetric.item() == pytest.approx(-1.2) and metrics["clip_frac"].item() == 1.0


def test_dual_clip_caps_negative_advantage_loss_by_hand():
    # A = -1, r = 20: L1 = 20, L2 = 1.28, max = 20, dual cap -A c = 10 -> L = 10, no gradient
    logp_new = torch.tensor([[math.log(20.0)]], dtype=torch.float64, requires_grad=True)
    loss, metrics = policy_loss(logp_new, torch.zeros(1, 1, dtype=torch.float64), torch.tensor([[-1.0]]),
                                torch.ones(1, 1), **PAPER_CLIP, loss_agg_mode="token-mean")
    loss.backward()
    assert loss.item() == pytest.approx(10.0)
    assert metrics["dual_clip_frac"].item() == 1.0 and metrics["clip_frac"].item() == 0.0
    assert logp_new.grad.item() == 0.0
    # the same token with A = +1 is clipped by the ratio clip (1.28), not by the dual clip
    loss, metrics = policy_loss(logp_new, torch.zeros(1, 1, dtype=torch.float64), torch.tensor([[1.0]]),
                                torch.ones(1, 1), **PAPER_CLIP, loss_agg_mode="token-mean")
    assert loss.item() == pytest.approx(-1.28)
    assert metrics["dual_clip_frac"].item() == 0.0 and metrics["clip_frac"].item() == 1.0


def test_first_mini_batch_has_ratio_one_and_the_policy_gradient(seed):
    # pi_new = pi_old: no clipping, loss = -mean(A), d loss / d logp_t = -A_t / N
    gen = torch.Generator().manual_seed(seed)
    logp = -torch.rand(4, 6, generator=gen, dtype=torch.float64) * 5
    adv = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    mask = torch.ones(4, 6)
    logp_new = logp.clone().requires_grad_()
    loss, metrics = policy_loss(logp_new, logp, adv, mask, **PAPER_CLIP, loss_agg_mode="token-mean")
    loss.backward()
    torch.testing.assert_close(loss, -adv.mean(), msg=lambda m: f"seed={seed}: {m}")
    torch.testing.assert_close(logp_new.grad, -adv / 24, msg=lambda m: f"seed={seed}: {m}")
    assert metrics["clip_frac"].item() == 0.0 and metrics["approx_kl"].item() == 0.0


def test_gradient_is_zero_where_clipped_and_minus_a_r_over_n_elsewhere(seed):
    rng = random.Random(seed)
    mask = random_mask(rng, 6, 10, min_length=4)
    new, old, adv = straddling_inputs(rng, mask, 0.2, 0.28, 10.0)
    logp_new = torch.tensor(new, dtype=torch.float64, requires_grad=True)
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    loss, _ = policy_loss(logp_new, t(old), t(adv), torch.tensor(mask), **PAPER_CLIP,
                          loss_agg_mode="token-mean")
    loss.backward()
    n_tokens = sum(map(sum, mask))
    for i in range(6):
        for t in range(10):
            a, d = adv[i][t], new[i][t] - old[i][t]
            r = math.exp(min(20.0, max(-20.0, d)))
            clipped = (a > 0 and r > 1.28) or (a < 0 and r < 0.8) or (a < 0 and r > 10.0) or abs(d) > 20
            # d(-A r)/d logp_new = -A r, weighted 1/N by the token mean; 0 where a clip is active or padding
            want = 0.0 if (clipped or not mask[i][t]) else -a * r / n_tokens
            assert logp_new.grad[i, t].item() == pytest.approx(want, rel=1e-9, abs=1e-12), \
                f"seed={seed} token ({i}, {t}) r={r} A={a}"


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_float64(seed, mode):
    gen = torch.Generator().manual_seed(seed)
    # ratios kept away from the kinks at 0.8, 1.28 and 10 so finite differences are valid
    ratios = torch.tensor([0.5, 0.9, 1.1, 1.5, 20.0], dtype=torch.float64)
    log_ratio = ratios.log()[torch.randint(0, 5, (3, 4), generator=gen)]
    logp_old = -torch.rand(3, 4, generator=gen, dtype=torch.float64)
    advantages = torch.tensor([0.7, -1.3, 1.3, -0.7], dtype=torch.float64)
    adv = advantages[torch.randint(0, 4, (3, 4), generator=gen)]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    logp_new = (logp_old + log_ratio).requires_grad_()
    f = lambda x: policy_loss(x, logp_old, adv, mask, **PAPER_CLIP, loss_agg_mode=mode)[0]
    assert torch.autograd.gradcheck(f, (logp_new,)), f"seed={seed}"


def test_no_gradient_flows_to_old_logprobs_or_advantages():
    logp_old = torch.zeros(2, 3, requires_grad=True)
    adv = torch.ones(2, 3, requires_grad=True)
    logp_new = torch.full((2, 3), 0.1, requires_grad=True)
    loss, _ = policy_loss(logp_new, logp_old, adv, torch.ones(2, 3), **PAPER_CLIP, loss_agg_mode="token-mean")
    loss.backward()
    assert logp_old.grad is None and adv.grad is None and logp_new.grad is not None


def test_per_sequence_advantages_broadcast(seed):
    gen = torch.Generator().manual_seed(seed)
    logp_new, logp_old = torch.randn(3, 5, generator=gen), torch.randn(3, 5, generator=gen)
    adv = torch.randn(3, generator=gen)
    mask = torch.ones(3, 5)
    a, _ = policy_loss(logp_new, logp_old, adv, mask, **PAPER_CLIP, loss_agg_mode="token-mean")
    b, _ = policy_loss(logp_new, logp_old, adv[:, None].expand(3, 5), mask, **PAPER_CLIP,
                       loss_agg_mode="token-mean")
    assert a.item() == b.item(), f"seed={seed}"


def test_extreme_log_ratios_and_padding_garbage_stay_finite():
    # log-ratios of +-1000 are clamped to +-20 before exp; -inf old log-probs on padding do not leak
    logp_new = torch.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    logp_old = torch.tensor([[0.0, 0.0, float("-inf")]])
    mask = torch.tensor([[1, 1, 0]])
    for a in (1.0, -1.0):
        loss, metrics = policy_loss(logp_new, logp_old, torch.full((1, 3), a), mask, **PAPER_CLIP,
                                    loss_agg_mode="token-mean")
        (grad,) = torch.autograd.grad(loss, logp_new)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        assert all(torch.isfinite(m) for m in metrics.values())
    # A = -1: token 0 capped at 10 (dual clip), token 1 clipped at 0.8 -> (10 + 0.8) / 2
    assert loss.item() == pytest.approx(5.4)


# ---- micro-batch accumulation -------------------------------------------------------------------

def test_micro_batch_scale_by_hand():
    kw = dict(micro_seqs=2, mini_seqs=8, micro_tokens=100, mini_tokens=1000)
    assert micro_batch_scale("authors", **kw) == 0.25
    assert micro_batch_scale("global-token-mean", **kw) == 0.1
    assert micro_batch_scale("global-token-mean", micro_seqs=torch.tensor(2), mini_seqs=8,
                             micro_tokens=torch.tensor(100), mini_tokens=torch.tensor(1000)) == 0.1


def _accumulated_grad(weighting, logp_new0, logp_old, adv, mask, splits):
    """One mini-batch processed as micro-batches: sum_k scale_k * token_mean_k, backward per micro-batch."""
    logp_new = logp_new0.clone().requires_grad_()
    for rows in splits:
        loss, _ = policy_loss(logp_new[rows], logp_old[rows], adv[rows], mask[rows], **PAPER_CLIP,
                              loss_agg_mode="token-mean")
        scale = micro_batch_scale(weighting, micro_seqs=len(rows), mini_seqs=mask.shape[0],
                                  micro_tokens=mask[rows].sum(), mini_tokens=mask.sum())
        (scale * loss).backward()
    return logp_new.grad


def _mini_batch(gen, lengths, width=10):
    m = len(lengths)
    logp_old = -torch.rand(m, width, generator=gen, dtype=torch.float64) * 3
    # ratios in (0.85, 1.2): no clipping, so every token carries gradient -A r
    logp_new = logp_old + (0.85 + 0.35 * torch.rand(m, width, generator=gen, dtype=torch.float64)).log()
    adv = torch.randn(m, 1, generator=gen, dtype=torch.float64).expand(m, width)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    return logp_new, logp_old, adv, mask


def test_micro_batch_weightings_differ_when_token_counts_differ(seed):
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    # 6 sequences, two micro-batches of 3: short responses in the first, long ones in the second
    lengths = [rng.randint(1, 3) for _ in range(3)] + [rng.randint(6, 10) for _ in range(3)]
    logp_new, logp_old, adv, mask = _mini_batch(gen, lengths)
    splits = [[0, 1, 2], [3, 4, 5]]

    full = logp_new.clone().requires_grad_()
    policy_loss(full, logp_old, adv, mask, **PAPER_CLIP, loss_agg_mode="token-mean")[0].backward()
    g_global = _accumulated_grad("global-token-mean", logp_new, logp_old, adv, mask, splits)
    g_authors = _accumulated_grad("authors", logp_new, logp_old, adv, mask, splits)

    # "global-token-mean" accumulated over micro-batches = one token mean over the whole mini-batch
    torch.testing.assert_close(g_global, full.grad, msg=lambda m: f"seed={seed} lengths={lengths}: {m}")
    assert not torch.allclose(g_authors, g_global), f"seed={seed} lengths={lengths}"
    # the authors' weighting gives token t of micro-batch k the weight m_k / (M n_k) instead of 1 / N
    ratio = (logp_new - logp_old).exp()
    for k, rows in enumerate(splits):
        n_k = sum(lengths[i] for i in rows)
        for i in rows:
            for t in range(10):
                weight = len(rows) / (6 * n_k)
                want = -adv[i, t].item() * ratio[i, t].item() * weight if t < lengths[i] else 0.0
                assert g_authors[i, t].item() == pytest.approx(want, rel=1e-9, abs=1e-15), \
                    f"seed={seed} micro-batch {k} token ({i}, {t})"


def test_micro_batch_weightings_agree_when_token_counts_are_equal(seed):
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    first = [rng.randint(1, 10) for _ in range(3)]
    second = first[:]
    rng.shuffle(second)  # same number of sequences and of tokens in both micro-batches
    logp_new, logp_old, adv, mask = _mini_batch(gen, first + second)
    splits = [[0, 1, 2], [3, 4, 5]]
    full = logp_new.clone().requires_grad_()
    policy_loss(full, logp_old, adv, mask, **PAPER_CLIP, loss_agg_mode="token-mean")[0].backward()
    g_global = _accumulated_grad("global-token-mean", logp_new, logp_old, adv, mask, splits)
    g_authors = _accumulated_grad("authors", logp_new, logp_old, adv, mask, splits)
    torch.testing.assert_close(g_authors, g_global, msg=lambda m: f"seed={seed}: {m}")
    torch.testing.assert_close(g_global, full.grad, msg=lambda m: f"seed={seed}: {m}")


# ---- KL (not part of JustRL) --------------------------------------------------------------------

def test_kl_k3_matches_formula_and_is_nonnegative(seed):
    rng = random.Random(seed)
    logp = [[rng.uniform(-10, 0) for _ in range(5)] for _ in range(3)]
    ref = [[rng.uniform(-10, 0) for _ in range(5)] for _ in range(3)]
    got = kl_penalty_k3(torch.tensor(logp, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64))
    for i in range(3):
        for t in range(5):
            d = ref[i][t] - logp[i][t]
            assert got[i, t].item() == pytest.approx(math.exp(d) - d - 1, rel=1e-12), f"seed={seed}"
    assert (got >= 0).all()
    assert kl_penalty_k3(torch.zeros(2, 2), torch.zeros(2, 2)).abs().max().item() == 0.0


# ---- bad input ----------------------------------------------------------------------------------

def test_bad_input_raises_one_clear_value_error():
    x = torch.zeros(2, 3)
    ok = dict(**PAPER_CLIP, loss_agg_mode="token-mean")
    with pytest.raises(ValueError, match="unknown loss_agg_mode 'mean'.*token-mean"):
        policy_loss(x, x, x, x, **{**ok, "loss_agg_mode": "mean"})
    with pytest.raises(ValueError, match="unknown loss_agg_mode"):
        aggregate_loss(x, x, "seq-mean")
    with pytest.raises(ValueError, match="shape mismatch.*logp_old"):
        policy_loss(x, torch.zeros(2, 4), x, x, **ok)
    with pytest.raises(ValueError, match="clip_ratio_low"):
        policy_loss(x, x, x, x, **{**ok, "clip_ratio_low": 1.5})
    with pytest.raises(ValueError, match="clip_ratio_c"):
        policy_loss(x, x, x, x, **{**ok, "clip_ratio_c": 0.5})
    with pytest.raises(ValueError, match="clip_ratio_high"):
        policy_loss(x, x, x, x, **{**ok, "clip_ratio_high": "0.28"})
    with pytest.raises(ValueError, match="token_ids must be"):
        token_logprobs(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(torch.zeros(2, 3, 5), torch.zeros(2, 3, dtype=torch.long), temperature=0.0)
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        entropy_from_logits(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown micro_batch_weighting"):
        micro_batch_scale("tokens", micro_seqs=1, mini_seqs=2, micro_tokens=1, mini_tokens=2)
    with pytest.raises(ValueError, match="micro_seqs <= mini_seqs"):
        micro_batch_scale("authors", micro_seqs=3, mini_seqs=2, micro_tokens=1, mini_tokens=2)
    with pytest.raises(ValueError, match="mini_tokens > 0"):
        micro_batch_scale("global-token-mean", micro_seqs=1, mini_seqs=2, micro_tokens=0, mini_tokens=0)
    with pytest.raises(ValueError, match="whole number"):
        micro_batch_scale("authors", micro_seqs=1.5, mini_seqs=2, micro_tokens=1, mini_tokens=2)
