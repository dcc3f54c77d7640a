"""The core exercises' checks (justrl_lite/course/exercise_checks.py) are fair: the reference solution passes, each
plausible wrong answer fails, and no failure message gives the answer away (no expected values printed)."""

from __future__ import annotations

import re

import pytest
import torch

from justrl_lite.course import exercise_checks as checks
from justrl_lite.course.exercises import ExerciseFailed, load_solutions
from justrl_lite.loss import policy_loss

ZSCORE = load_solutions("03b_advantage").group_zscore
LOSS = load_solutions("04_grpo_loss").clipped_policy_loss
STEP = load_solutions("05_training_loop").update_step


def fails_without_the_answer(check, wrong, *args) -> str:
    """Run the check on a wrong answer: it must raise ExerciseFailed with a message free of numbers."""
    with pytest.raises(ExerciseFailed) as info:
        check(wrong, *args)
    message = str(info.value)
    assert message and not re.search(r"\d\.\d", message), f"the message prints a value: {message}"
    return message


# ---- group z-score -------------------------------------------------------------------------------

def _zscore(scores, group_ids, eps, *, correction=1, eps_inside=False, one="verl", by_group=True):
    out = torch.zeros_like(scores, dtype=torch.float64)
    for g in (group_ids.unique() if by_group else [None]):
        members = group_ids == g if by_group else torch.ones_like(group_ids, dtype=torch.bool)
        s = scores[members].double()
        if s.numel() == 1 and one == "verl":
            mean, std = 0.0, torch.tensor(1.0)
        elif s.numel() == 1 and one == "zero":
            out[members] = 0.0
            continue
        else:
            mean, std = s.mean(), s.std(correction=correction)
        out[members] = (s - mean) / (torch.sqrt(std**2 + eps) if eps_inside else std + eps)
    return out


ZSCORE_WRONG = {
    "biased std (divide by n)": lambda s, g, e: _zscore(s, g, e, correction=0),
    "eps inside the square root": lambda s, g, e: _zscore(s, g, e, eps_inside=True),
    "no eps": lambda s, g, e: _zscore(s, g, 0.0),
    "eps 1e-8 written in": lambda s, g, e: _zscore(s, g, 1e-8),
    "group of one -> NaN (torch.std of one number)": lambda s, g, e: _zscore(s, g, e, one="torch"),
    "group of one -> 0": lambda s, g, e: _zscore(s, g, e, one="zero"),
    "one z-score over the whole batch": lambda s, g, e: _zscore(s, g, e, by_group=False),
    "mean baseline only (Dr. GRPO)": lambda s, g, e: s - torch.stack([s[g == x].mean() for x in g]),
}


def test_group_zscore_check_passes_the_reference_and_the_package():
    for seed in range(3):
        checks.check_group_zscore(ZSCORE, seed=seed)


@pytest.mark.parametrize("name", ZSCORE_WRONG)
def test_group_zscore_check_fails_each_wrong_answer(name):
    fails_without_the_answer(checks.check_group_zscore, ZSCORE_WRONG[name])


# ---- clipped policy loss -------------------------------------------------------------------------

def _loss(lp, lo, adv, mask, low, high, c, *, sym=False, dual=True, agg="token-mean", pessimism=torch.maximum):
    a = adv[:, None].expand_as(lp)
    r = torch.exp(lp - lo)
    hi = low if sym else high
    loss = pessimism(-a * r, -a * r.clamp(1 - low, 1 + hi))
    if dual:
        loss = torch.where(a < 0, torch.minimum(loss, -a * c), loss)
    m = mask.bool()
    if agg == "token-mean":
        return loss[m].sum() / m.sum()
    if agg == "seq-mean":
        return torch.stack([loss[i][m[i]].mean() for i in range(len(m))]).mean()
    if agg == "unmasked":
        return loss.mean()
    if agg == "off-by-one":
        return loss[m].sum() / (m.sum() - 1)
    raise ValueError(agg)


LOSS_WRONG = {
    "symmetric clip (0.2 both sides)": lambda *a: _loss(*a, sym=True),
    "no dual clip": lambda *a: _loss(*a, dual=False),
    "sequence mean of token means": lambda *a: _loss(*a, agg="seq-mean"),
    "mean over padding too (unmasked)": lambda *a: _loss(*a, agg="unmasked"),
    "off-by-one token count": lambda *a: _loss(*a, agg="off-by-one"),
    "min instead of max (optimistic)": lambda *a: _loss(*a, pessimism=torch.minimum),
    "only the clipped term": lambda *a: _loss(*a, pessimism=lambda x, y: y),
    "the loss detached (a number, no gradient)": lambda *a: _loss(*a).detach(),
    "clip-higher 0.28 written in": lambda lp, lo, adv, m, low, high, c: _loss(lp, lo, adv, m, low, 0.28, c),
}


def test_policy_loss_check_passes_the_reference_and_the_package():
    def package(lp, lo, adv, mask, low, high, c):
        return policy_loss(lp, lo, adv, mask, clip_ratio_low=low, clip_ratio_high=high, clip_ratio_c=c,
                           loss_agg_mode="token-mean")[0]
    for seed in range(3):
        checks.check_policy_loss(LOSS, seed=seed)
        checks.check_policy_loss(package, seed=seed)


@pytest.mark.parametrize("name", LOSS_WRONG)
def test_policy_loss_check_fails_each_wrong_answer(name):
    fails_without_the_answer(checks.check_policy_loss, LOSS_WRONG[name])


# ---- one update step -----------------------------------------------------------------------------

def _step(model, opt, x, y, old, adv, mask, cfg, *, clip=True, zero=True, order="clip-step", sign=1.0,
          agg=None, norm_after=False):
    logp = torch.log_softmax(model(x), -1).gather(-1, y[..., None]).squeeze(-1)
    loss, _ = policy_loss(logp, old, adv, mask, clip_ratio_low=cfg.clip_ratio_low,
                          clip_ratio_high=cfg.clip_ratio_high, clip_ratio_c=cfg.clip_ratio_c,
                          loss_agg_mode=agg or cfg.loss_agg_mode)
    if zero:
        opt.zero_grad()
    (sign * loss).backward()
    if order == "step-clip":
        opt.step()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if clip else float("inf"))
    if order == "clip-step":
        opt.step()
    if norm_after:
        norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    return float(norm)


STEP_WRONG = {
    "no gradient clip": lambda *a: _step(*a, clip=False),
    "no zero_grad (stale gradients)": lambda *a: _step(*a, zero=False),
    "clip after the optimizer step": lambda *a: _step(*a, order="step-clip"),
    "gradient ascent on the loss": lambda *a: _step(*a, sign=-1.0),
    "sequence-mean loss": lambda *a: _step(*a, agg="seq-mean-token-mean"),
    "returns the norm after clipping": lambda *a: _step(*a, norm_after=True),
}


def test_update_step_check_passes_the_reference_and_the_package():
    for seed in range(3):
        checks.check_update_step(STEP, seed=seed)
        checks.check_update_step(checks.reference_update_step, seed=seed)


@pytest.mark.parametrize("name", STEP_WRONG)
def test_update_step_check_fails_each_wrong_answer(name):
    fails_without_the_answer(checks.check_update_step, STEP_WRONG[name])


# ---- notebooks 01 and 02 -------------------------------------------------------------------------

def test_predicted_rewards_check_says_how_many_are_wrong_never_which():
    truth = [1.0, -1.0, -1.0, 1.0, -1.0, -1.0]
    checks.check_predicted_rewards([1, -1, -1, 1, -1, -1], truth)
    for wrong in ([1] * 6, [1, -1, -1, 1, -1, 1], [1, -1, -1, 1, -1], [1, 0, -1, 1, -1, -1]):
        with pytest.raises(ExerciseFailed) as info:
            checks.check_predicted_rewards(wrong, truth)
        message = str(info.value)
        assert str(truth) not in message and str([int(t) for t in truth]) not in message
        assert not re.search(r"\[.*\]|responses? \d", message), message  # no list, no index of a response


class _Batch:  # what response_logprob reads of a RolloutBatch
    def __init__(self, seed: int):
        gen = torch.Generator().manual_seed(seed)
        lengths = torch.tensor([3, 6, 1, 5])
        self.response_mask = (torch.arange(6)[None, :] < lengths[:, None]).long()  # (4, 6)
        self.sampling_logprobs = -torch.rand(4, 6, generator=gen) * self.response_mask  # 0 on padding


RESPONSE_LOGPROB_WRONG = {
    "unmasked sum (padding included)": lambda b, row: float(b.sampling_logprobs[row].sum()),
    "off-by-one (last token dropped)": lambda b, row: float(
        b.sampling_logprobs[row][: int(b.response_mask[row].sum()) - 1].sum()),
    "mean instead of sum": lambda b, row: float(b.sampling_logprobs[row][b.response_mask[row].bool()].mean()),
}


def test_response_logprob_check_closes_the_zero_padding_hole():
    batch = _Batch(0)
    expected = [float(batch.sampling_logprobs[i][batch.response_mask[i].bool()].sum()) for i in range(4)]
    checks.check_response_logprob(load_solutions("02_rollout").response_logprob, batch, expected)
    for wrong in RESPONSE_LOGPROB_WRONG.values():
        fails_without_the_answer(checks.check_response_logprob, wrong, batch, expected)


# ---- notebooks 00 and 05: counting ---------------------------------------------------------------

def test_total_responses_check():
    checks.check_total_responses(load_solutions("00_overview").total_responses)
    for wrong in (lambda c: c.prompts_per_step * c.total_steps,                       # samples per prompt left out
                  lambda c: c.prompts_per_step * c.rollouts_per_prompt * (c.total_steps - 1),  # off-by-one
                  lambda c: c.mini_batch_prompts * c.rollouts_per_prompt * c.total_steps,
                  lambda c: float(c.prompts_per_step * c.rollouts_per_prompt * c.total_steps)):
        fails_without_the_answer(checks.check_total_responses, wrong)


def test_tokens_per_optimizer_step_check():
    from justrl_lite.config import JustRLConfig

    solutions = load_solutions("05_training_loop")
    cfg = JustRLConfig.tiny()
    rows = cfg.prompts_per_step * cfg.rollouts_per_prompt
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 40, (rows,), generator=gen)
    batch = type("Batch", (), {"response_mask": (torch.arange(40)[None, :] < lengths[:, None]).long()})()
    good_max = solutions.max_response_tokens_per_optimizer_step
    checks.check_tokens_per_optimizer_step(solutions.tokens_per_optimizer_step, good_max, batch, cfg)
    per = cfg.mini_batch_prompts * cfg.rollouts_per_prompt
    wrong_splits = {
        "padding counted": lambda b, c: [b.response_mask[s:s + per].numel() for s in range(0, rows, per)],
        "mini-batch of prompts, not rows": lambda b, c: [int(b.response_mask[s:s + c.mini_batch_prompts].sum())
                                                         for s in range(0, rows, c.mini_batch_prompts)],
        "strided rows": lambda b, c: [int(b.response_mask[k::rows // per].sum()) for k in range(rows // per)],
    }
    for wrong in wrong_splits.values():
        fails_without_the_answer(checks.check_tokens_per_optimizer_step, wrong, good_max, batch, cfg)
    fails_without_the_answer(checks.check_tokens_per_optimizer_step, solutions.tokens_per_optimizer_step,
                             lambda c: c.prompts_per_step * c.rollouts_per_prompt * c.max_response_length, batch, cfg)


def test_least_helped_check():
    import pandas as pd

    from justrl_lite.benchmarks import BENCHMARKS

    columns = list(BENCHMARKS)
    gen = torch.Generator().manual_seed(1)
    table = pd.DataFrame((torch.rand(4, len(columns), generator=gen) * 80).numpy(), index=["a0", "a1", "b0", "b1"],
                         columns=columns)
    table.loc["a1"] += 5.0
    table.loc["b1"] += 3.0
    table.loc["b1", columns[0]] = table.loc["b0", columns[0]] + 50.0  # the largest gain is never the answer
    checks.check_least_helped(load_solutions("00_overview").least_helped, table, columns)
    least_a = str((table.loc["a1"] - table.loc["a0"]).idxmin())
    for wrong in (lambda t, base, rl: str((t.loc[rl] - t.loc[base]).idxmax()),          # most helped
                  lambda t, base, rl: str(t.loc[rl].idxmin()),                         # lowest RL score
                  lambda t, base, rl: least_a,                                         # one pair read off by eye
                  lambda t, base, rl: columns[int((t.loc[rl] - t.loc[base]).to_numpy().argmin())]):  # by position
        fails_without_the_answer(checks.check_least_helped, wrong, table, columns)
