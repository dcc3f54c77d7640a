"""Checks of the course's core exercises: the student's function against the package, on fresh random inputs.

Each ``check_*`` takes the student's function, calls it on inputs built to reach every case of the equation,
and compares it with the package function that defines the recipe:

    check_group_zscore    A_i = (s_i - mean_g) / (std_g + eps), std with n - 1     vs advantage.grpo_advantages
    check_policy_loss     L_t = max(-A r_t, -A clip(r_t, 1 - eps_low, 1 + eps_high)),
                          L_t = min(L_t, -A c) where A < 0, loss = token mean      vs loss.policy_loss
    check_update_step     logp -> ratio -> loss -> backward -> clip grad norm -> AdamW step
                                                                                   vs the same with the package
    check_predicted_rewards, check_response_logprob   notebooks 01 and 02 (padding made non-zero)
    check_total_responses, check_least_helped,
    check_tokens_per_optimizer_step                    notebooks 00 and 05, against the config and the table

A wrong answer raises ``exercises.ExerciseFailed`` whose message names the case that fails (e.g. "a group
of one response") and never prints the expected values. The JustRL choices the checks pin down (numbered as
in the modules' docstrings): advantage.py 3 (unbiased std, eps outside the sqrt), 4 (a group of one), 5
(all-equal groups give 0); loss.py 1 (clip-higher), 2 (dual clip), 3 (token-mean). ``tests/test_exercises.py``
feeds each check the reference solution (must pass) and plausible wrong answers (each must fail).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable

import torch

from justrl_lite.advantage import grpo_advantages
from justrl_lite.config import JustRLConfig
from justrl_lite.course.exercises import expect
from justrl_lite.logprobs import token_logprobs
from justrl_lite.loss import policy_loss
from justrl_lite.policy import make_optimizer
from justrl_lite.trainer import clip_and_step


def _close(got: object, want: torch.Tensor, atol: float) -> bool:
    """True when ``got`` is a tensor of ``want``'s shape, finite where ``want`` is, within ``atol``."""
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return False
    return bool(torch.allclose(got.detach().to(torch.float64), want.to(torch.float64), rtol=1e-6, atol=atol))


# ---- notebook 03b: the group z-score ------------------------------------------------------------

def check_group_zscore(group_zscore: Callable, seed: int | None = None) -> None:
    """``group_zscore(scores (N,), group_ids (N,), eps) -> (N,)`` against ``grpo_advantages``, case by case."""
    rng = random.Random(random.randrange(2**32) if seed is None else seed)
    eps = 1e-6
    cases = [
        ("a group of 8 scores of +1 / -1 (compare your std with the equation: which denominator?)",
         [1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0, -1.0], [0] * 8),
        ("two groups with non-contiguous prompt ids (each response is standardised within its own group)",
         [1.0, 0.5, -1.0, 2.0, -1.0, 0.0], [7, 3, 7, 3, 7, 3]),
        ("a group of one response (verl's convention, choice 4 of advantage.py)", [1.0, -1.0, 0.5], [4, 9, 2]),
        ("a group whose scores are all equal (every A must be 0, no NaN)", [0.1] * 5 + [-1.0] * 3,
         [1] * 5 + [2] * 3),
        ("a group whose std is tiny (where does eps go, and how big is it?)", [0.0, 1e-6, 0.0, 1e-6], [0] * 4),
    ]
    for _ in range(5):  # fresh random batches: groups of 1..12 responses, real-valued scores, shuffled
        scores, ids = [], []
        for g in rng.sample(range(10**6), rng.randint(1, 8)):
            size = rng.randint(1, 12)
            scores += [rng.choice([1.0, -1.0, rng.uniform(-3, 3)]) for _ in range(size)]
            ids += [g] * size
        order = rng.sample(range(len(scores)), len(scores))
        cases.append(("random groups of 1 to 12 responses with real-valued scores",
                      [scores[i] for i in order], [ids[i] for i in order]))
    for what, scores, ids in cases:
        s, g = torch.tensor(scores, dtype=torch.float64), torch.tensor(ids)  # (N,), (N,)
        want = grpo_advantages(s, g, eps=eps)  # (N,)
        got = group_zscore(s.clone(), g.clone(), eps)
        expect(isinstance(got, torch.Tensor) and got.shape == want.shape,
               f"return a tensor of shape (N,) = {tuple(want.shape)}, one advantage per response")
        expect(not torch.isnan(got).any(), f"NaN in your advantages on {what}")
        expect(_close(got, want, atol=1e-9), f"wrong on {what}")


# ---- notebook 04: the clipped policy loss -------------------------------------------------------

LOSS_BRANCHES = [  # (what, advantage, ratio r = pi_new / pi_old), for clip_ratio_low 0.2, high 0.28, c 10
    ("A > 0 and r inside [1 - clip_ratio_low, 1 + clip_ratio_high]", 1.5, 1.1),
    ("A > 0 and r between 1 + clip_ratio_low and 1 + clip_ratio_high (clip-higher)", 1.5, 1.25),
    ("A > 0 and r above 1 + clip_ratio_high", 1.5, 1.6),
    ("A > 0 and r below 1 - clip_ratio_low", 1.5, 0.5),
    ("A < 0 and r below 1 - clip_ratio_low", -0.7, 0.5),
    ("A < 0 and r above 1 + clip_ratio_high but below clip_ratio_c", -0.7, 3.0),
    ("A < 0 and r above clip_ratio_c (dual clip)", -0.7, 30.0),
    ("A = 0", 0.0, 2.0),
]
CLIP = {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 10.0}


def _package_loss(logp_new, logp_old, adv, mask, clip) -> torch.Tensor:
    return policy_loss(logp_new, logp_old, adv, mask, **clip, loss_agg_mode="token-mean")[0]


def _compare_loss(clipped_policy_loss: Callable, what: str, logp_old: torch.Tensor, log_ratio: torch.Tensor,
                  adv: torch.Tensor, mask: torch.Tensor, clip: dict) -> None:
    """Value and gradient w.r.t. logp_new of the student's loss vs the package's, on one batch."""
    mine = (logp_old + log_ratio).requires_grad_(True)  # (B, T)
    ref = (logp_old + log_ratio).requires_grad_(True)  # (B, T)
    want = _package_loss(ref, logp_old, adv, mask, clip)
    (want_grad,) = torch.autograd.grad(want, ref)
    got = clipped_policy_loss(mine, logp_old.clone(), adv.clone(), mask.clone(), clip["clip_ratio_low"],
                              clip["clip_ratio_high"], clip["clip_ratio_c"])
    expect(isinstance(got, torch.Tensor) and got.dim() == 0, "return the loss as a 0-dimensional tensor")
    expect(_close(got, want.detach(), atol=1e-6), f"wrong loss value on {what}")
    expect(got.requires_grad, "the loss must keep the gradient to logp_new (no .item(), .detach() or numpy)")
    (got_grad,) = torch.autograd.grad(got, mine, allow_unused=True)
    expect(got_grad is not None and _close(got_grad, want_grad, atol=1e-6), f"wrong gradient on {what}")


def check_policy_loss(clipped_policy_loss: Callable, seed: int | None = None) -> None:
    """``clipped_policy_loss(logp_new, logp_old, advantages (B,), response_mask, low, high, c) -> scalar``:
    every branch of the clip on its own, then token-mean aggregation over a padded batch, vs ``policy_loss``."""
    gen = torch.Generator().manual_seed(random.randrange(2**32) if seed is None else seed)
    for what, a, r in LOSS_BRANCHES:  # one response of 3 tokens, all in the same branch
        logp_old = -torch.rand(1, 3, generator=gen, dtype=torch.float64) - 0.5  # (1, 3)
        log_ratio = torch.full((1, 3), float(torch.tensor(r).log()), dtype=torch.float64)  # (1, 3)
        _compare_loss(clipped_policy_loss, f"tokens with {what}", logp_old, log_ratio,
                      torch.tensor([a], dtype=torch.float64), torch.ones(1, 3, dtype=torch.long), CLIP)
    # a padded batch: responses of different lengths, every branch mixed in, padding holding garbage log-probs
    lengths = torch.tensor([2, 7, 4, 1, 6])  # (B,)
    B, T = len(lengths), int(lengths.max())
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    logp_old = -torch.rand(B, T, generator=gen, dtype=torch.float64) - 0.1  # (B, T)
    idx = torch.randint(len(LOSS_BRANCHES), (B, T), generator=gen)  # (B, T) a branch per token
    log_ratio = torch.tensor([b[2] for b in LOSS_BRANCHES], dtype=torch.float64).log()[idx]  # (B, T)
    log_ratio = torch.where(mask.bool(), log_ratio, torch.full_like(log_ratio, 5.0))  # padding: garbage
    adv = torch.tensor([1.3, -0.4, 0.9, -1.1, 0.6], dtype=torch.float64)  # (B,)
    for low, high in ((0.2, 0.28), (0.1, 0.5)):  # JustRL's range, then another: no constant written in
        clip = {"clip_ratio_low": low, "clip_ratio_high": high, "clip_ratio_c": 10.0}
        _compare_loss(clipped_policy_loss, "a batch of responses of different lengths with padding (how many "
                      "tokens does each response weigh, and what counts as a token?)",
                      logp_old, log_ratio, adv, mask, clip)


# ---- notebook 05: one update step by hand -------------------------------------------------------

def _update_case(seed: int):
    """A tiny "model" (a linear map from features to logits) and a padded batch -> everything a step needs."""
    gen = torch.Generator().manual_seed(seed)
    B, T, D, V = 6, 5, 8, 11
    torch.manual_seed(seed)
    model = torch.nn.Linear(D, V)
    features = torch.randn(B, T, D, generator=gen)  # (B, T, D) stands in for a transformer's hidden states
    tokens = torch.randint(V, (B, T), generator=gen)  # (B, T) the sampled response tokens
    lengths = torch.randint(1, T + 1, (B,), generator=gen)  # (B,)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    with torch.no_grad():  # pi_old: the model a little before, so ratios spread over every clip branch
        old_logp = token_logprobs(model(features), tokens) + 0.6 * torch.randn(B, T, generator=gen)  # (B, T)
    advantages = torch.randn(B, generator=gen)  # (B,)
    cfg = JustRLConfig.tiny().replace(lr=1e-2, grad_clip=0.05)  # a small clip, so that clipping binds
    return model, features, tokens, old_logp, advantages, mask, cfg


def reference_update_step(model, optimizer, features, tokens, old_logp, advantages, response_mask,
                          cfg: JustRLConfig) -> float:
    """The package's step: what ``trainer.update_policy`` does for one mini-batch (its ``clip_and_step``)
    -> the gradient norm before clipping."""
    # log pi_new(y_t) at the sampling temperature: (B, T, V), (B, T) -> (B, T)
    logp = token_logprobs(model(features), tokens, cfg.temperature)
    loss, _ = policy_loss(logp, old_logp, advantages, response_mask, clip_ratio_low=cfg.clip_ratio_low,
                          clip_ratio_high=cfg.clip_ratio_high, clip_ratio_c=cfg.clip_ratio_c,
                          loss_agg_mode=cfg.loss_agg_mode)
    optimizer.zero_grad()
    loss.backward()
    # clip the global gradient norm to grad_clip, then one AdamW step: the trainer's own code
    return clip_and_step(model, optimizer, cfg.grad_clip)


def check_update_step(update_step: Callable, seed: int | None = None) -> None:
    """``update_step(model, optimizer, features, tokens, old_logp, advantages, response_mask, cfg) -> float``
    against ``reference_update_step`` for two consecutive steps (AdamW's state carries over), with stale
    gradients left in ``.grad`` before each step."""
    seed = random.randrange(2**32) if seed is None else seed
    model, features, tokens, old_logp, advantages, mask, cfg = _update_case(seed)
    ref_model = copy.deepcopy(model)
    opt, ref_opt = make_optimizer(model, cfg), make_optimizer(ref_model, cfg)
    for step in (1, 2):
        for p in model.parameters():  # left over from an earlier backward pass
            p.grad = torch.full_like(p, 3.0)
        want = reference_update_step(ref_model, ref_opt, features, tokens, old_logp, advantages, mask, cfg)
        got = update_step(model, opt, features, tokens, old_logp.clone(), advantages.clone(), mask.clone(), cfg)
        expect(isinstance(got, float), "return the gradient norm as a Python float (float(...))")
        expect(abs(got - want) <= 1e-4 * max(1.0, abs(want)),
               f"step {step}: the returned number is not the gradient norm of this step's loss, measured "
               "over all parameters before clipping (are the old gradients cleared first?)")
        expect(all(torch.allclose(p, q, rtol=1e-5, atol=1e-7) for p, q in zip(model.parameters(),
                                                                                 ref_model.parameters())),
               f"step {step}: the parameters after your step differ from the recipe's update (is the gradient "
               "norm clipped to cfg.grad_clip before the optimizer steps, and is the loss minimised?)")


# ---- notebooks 01 and 02 ------------------------------------------------------------------------

def check_predicted_rewards(predictions: object, truth: list[float]) -> None:
    """Quiz answers vs the verifier's rewards: says how many are wrong, never which (that would give it away)."""
    expect(isinstance(predictions, (list, tuple)) and len(predictions) == len(truth),
           f"give one prediction (+1 or -1) per response: a list of {len(truth)}")
    expect(all(p in (1, -1) for p in predictions), "every prediction is +1 or -1")
    wrong = sum(p != t for p, t in zip(predictions, truth))
    expect(wrong == 0, f"{wrong} of your {len(truth)} predictions are wrong; re-read the verifier's rules above")


def check_response_logprob(response_logprob: Callable, batch, expected: list[float]) -> None:
    """``response_logprob(batch, row)`` on a copy of ``batch`` whose padding log-probs are NOT zero, so only
    a sum over the response mask gives ``expected[row]`` (e.g. a forward pass over [prompt | response])."""
    logp = batch.sampling_logprobs.clone()  # (B, R)
    pad = batch.response_mask == 0  # (B, R)
    logp[pad] = -2.5  # what a sampler may leave in padding; the mask says which tokens are real
    noisy = copy.copy(batch)
    noisy.sampling_logprobs = logp
    for row, want in enumerate(expected):
        got = response_logprob(noisy, row)
        expect(isinstance(got, float), "return a Python float (float(...))")
        expect(abs(got - want) < 1e-2, f"row {row}: wrong log-likelihood (which positions hold the response's "
                                       "tokens, and does your sum include anything else?)")


# ---- notebooks 00 and 05: counting ----------------------------------------------------------------

def check_total_responses(total_responses: Callable) -> None:
    """``total_responses(cfg)`` on the paper preset, the tiny one and a few made-up configs."""
    rng = random.Random()
    configs = [("the paper preset", JustRLConfig.paper()), ("the tiny preset", JustRLConfig.tiny())]
    for _ in range(3):
        prompts = rng.choice([4, 8, 32])
        configs.append(("a made-up config", JustRLConfig.tiny().replace(
            prompts_per_step=prompts, mini_batch_prompts=prompts // 4, rollouts_per_prompt=rng.choice([2, 4, 16]),
            total_steps=rng.randint(3, 500))))
    for what, cfg in configs:
        want = cfg.prompts_per_step * cfg.rollouts_per_prompt * cfg.total_steps
        got = total_responses(cfg)
        expect(isinstance(got, int), "return a whole number (int)")
        expect(got == want, f"wrong for {what}: which config fields multiply, and are they all there?")


def check_tokens_per_optimizer_step(tokens_per_optimizer_step: Callable, max_tokens: Callable, batch,
                                    cfg: JustRLConfig) -> None:
    """Per mini-batch response tokens of ``batch`` (prompt-major rows, mini-batches of whole groups, in order)
    and the cap when every response is ``max_response_length`` long, on ``cfg`` and the paper preset."""
    per_mini = cfg.mini_batch_prompts * cfg.rollouts_per_prompt  # rows per optimizer step
    mask = batch.response_mask  # (B, R)
    want = [int(mask[s:s + per_mini].sum()) for s in range(0, mask.shape[0], per_mini)]
    got = tokens_per_optimizer_step(batch, cfg)
    expect(isinstance(got, list) and len(got) == len(want),
           "return one number per optimizer step (how many mini-batches does one rollout batch make?)")
    expect(sum(got) == int(mask.sum()), "the mini-batches' tokens must add up to the batch's response tokens "
                                        "(padding is not a response token)")
    expect(got == want, "right total, wrong split: which rows make up each mini-batch?")
    for what, c in (("this config", cfg), ("the paper preset", JustRLConfig.paper())):
        want_max = c.mini_batch_prompts * c.rollouts_per_prompt * c.max_response_length
        expect(max_tokens(c) == want_max, f"the cap is wrong for {what}: how many responses does a mini-batch "
                                          "hold, and how long can each be?")


def check_least_helped(least_helped: Callable, results, columns: list[str]) -> None:
    """``least_helped(results, base, rl)`` on every (base, RL) pair of rows of the table, and on the same table
    with its columns in reverse order (a column name, found from the numbers, not a position)."""
    rows = list(results.index)
    pairs = [(rows[0], rows[1]), (rows[2], rows[3])] if len(rows) >= 4 else [(rows[0], rows[1])]
    for table in (results, results[list(reversed(columns))]):
        for base, rl in pairs:
            gain = table.loc[rl, columns].astype(float) - table.loc[base, columns].astype(float)
            got = least_helped(table, base, rl)
            expect(isinstance(got, str) and got in columns, "return the name of one benchmark column")
            expect(got == str(gain.idxmin()), "not the column of the smallest gain (RL row minus base row) for "
                                              "one of the model pairs, or the answer depends on the column order")
