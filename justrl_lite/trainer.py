"""The JustRL training loop: single-stage GRPO with one fixed set of hyperparameters.

One training step (the paper's numbers in brackets):
  1. draw ``prompts_per_step`` [256] prompts in a fixed shuffled order (one pass over the data per epoch);
  2. sample ``rollouts_per_prompt`` [8] responses for each at temperature [1.0]            -> rollout.py
  3. score each response: +1 if its last box equals the answer exactly, else -1            -> reward.py
  4. A_i = (s_i - mean(s_group)) / (std(s_group) + 1e-6), the same for every token of i    -> advantage.py
  5. logp_old = log pi_theta(y_t | x, y_<t), computed by the training model before any update     -> logprobs.py
     (or the sampler's own log-probs when it is this model at this precision: ``recompute_old_logprobs``);
  6. for each mini-batch of ``mini_batch_prompts`` [64] prompts ([4] optimizer steps per rollout batch):
       for each micro-batch (rows sorted by length, at most ``micro_batch_max_tokens`` [32,768] tokens):
           L = token-mean of max(-A r_t, -A clip(r_t, 1 - 0.2, 1 + 0.28)), dual-clipped at -10 A for A < 0
           backward(L * micro-batch weight)                                                 -> loss.py
       clip the global grad norm to [1.0]; AdamW step (betas 0.9/0.999, weight decay 0.1);
  7. lr = 1e-6 * min(1, (step - 1) / 10) at training step ``step`` (1-based): linear warm-up over [10] training
     steps, then constant (``make_scheduler``).

Each item's code sits under a ``# N.`` comment in ``train_step`` (1-6) or ``train`` (7); ``course/algorithm.py`` reads
them to draw Algorithm 1 with the functions that implement each step (``python -m justrl_lite.course.algorithm``).

JustRL's fixed choices, and where they depart from textbook GRPO/PPO:
  1. No KL term and no reference model (``kl_coef`` = 0); no entropy bonus (``entropy_coeff`` = 0).
  2. Clip-higher (0.2 / 0.28) and dual clip (10), token-mean aggregation.
  3. No curriculum, no dynamic sampling: groups whose responses all score the same stay in the batch with
     A = 0 (they add no gradient but still count in the token mean).
  4. No length penalty; truncated responses are kept and usually score -1.
  5. Constant learning rate after warm-up. As in verl, warm-up is counted in *training* steps and the
     schedule is stepped once per rollout batch, so the first step's updates use lr = 0.
  6. Precision (``policy.py``): float32 master weights and AdamW state, forward/backward in ``dtype`` [bf16].
  7. One epoch over the data: the paper stopped at 4,380 steps, within its first pass over DAPO-Math-17k.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from justrl_lite.advantage import broadcast_to_tokens, grpo_advantages
from justrl_lite.checkpoint import (
    load_training_state,
    prepare_output_dir,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from justrl_lite.config import JustRLConfig, resolve_path
from justrl_lite.data import load_rows
from justrl_lite.grading.grade import grade_many
from justrl_lite.logprobs import (
    compute_old_logprobs,
    compute_ref_logprobs,
    forward_overhead_tokens,
    padding_counts,
    plan_micro_batches,
    reuse_sampling_logprobs,
    sequence_lengths,
    sequence_logprobs,
)
from justrl_lite.loss import aggregate_loss, kl_penalty_k3, micro_batch_scale, policy_loss
from justrl_lite.metrics import MetricsLogger
from justrl_lite.policy import (
    TrainerError,
    apply_cpu_threads,
    check_device,
    compute_context,
    load_policy,
    make_optimizer,
)
from justrl_lite.prompts import EncodedPrompts, encode_prompts
from justrl_lite.reward import score_responses
from justrl_lite.rollout import RolloutBatch, RolloutEngine
from justrl_lite.samplers import check_vllm, sampler_for_config
from justrl_lite.scale.device_fit import check_fits_device, device_memory_bytes, release_cached_memory
from justrl_lite.step_metrics import PhaseTimer, UpdateCounters, step_metrics
from justrl_lite.verifier import dapo_reward


@dataclass
class TrainResult:
    output_dir: Path
    metrics_path: Path
    final_step: int


# ---- set-up -------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: JustRLConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``lr_warmup_steps`` training steps, then constant (stepped once per training step)."""
    warmup = cfg.lr_warmup_steps
    # k = scheduler steps taken = training step - 1:  lr(k) = lr * min(1, k / warmup)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 if warmup == 0 else min(1.0, step / warmup))


def load_prompts(source: str, tokenizer, suffix: str, max_prompt_length: int) -> EncodedPrompts:
    """Rows from one or more comma-separated sources, encoded with the chat template; over-long prompts dropped."""
    rows = [row for part in source.split(",") if part.strip() for row in load_rows(resolve_path(part.strip()))]
    return encode_prompts(tokenizer, rows, suffix, max_prompt_length)


# ---- data order ---------------------------------------------------------------------------------

def prompt_indices(step: int, prompts_per_step: int, n_rows: int, seed: int) -> list[int]:
    """Indices of the prompts of training step ``step`` (1-based): a fixed shuffle per epoch, read in order."""
    start = (step - 1) * prompts_per_step
    orders: dict[int, list[int]] = {}
    out = []
    for pos in range(start, start + prompts_per_step):
        epoch, offset = divmod(pos, n_rows)
        if epoch not in orders:
            gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            orders[epoch] = torch.randperm(n_rows, generator=gen).tolist()
        out.append(orders[epoch][offset])
    return out


def sample_seed(seed: int, step: int, purpose: int) -> int:
    """A distinct, reproducible sampling seed per (run seed, step, purpose): resume replays the same samples."""
    return (seed * 1_000_003 + step * 7_919 + purpose * 104_729) % 2**31


# ---- the update ----------------------------------------------------------------------------------

def micro_batch_loss(model, batch: RolloutBatch, rows: list[int], old_logp: torch.Tensor,
                     token_advantages: torch.Tensor, cfg: JustRLConfig, ref_logp: torch.Tensor | None,
                     with_entropy: bool) -> tuple[torch.Tensor, dict, torch.Tensor | None, torch.Tensor]:
    """The clipped policy loss of one micro-batch (rows of one mini-batch), forward in ``compute_context``.

    Returns ``(loss, policy_loss metrics, entropy (b, R') or None, mask (b, R'))``; R' is the bucket's longest
    response. The entropy bonus and the KL term are the ablations' (JustRL sets both coefficients to 0).
    """
    device = next(model.parameters()).device
    with compute_context(cfg, device):
        logp, ent, mask = sequence_logprobs(model, batch, rows, cfg.temperature, with_entropy)   # (b, R')
        R = logp.shape[1]
        old = old_logp[rows, :R].to(device)                                                      # (b, R')
        adv = token_advantages[rows, :R].to(device)                                              # (b, R')
        loss, m = policy_loss(logp, old, adv, mask, clip_ratio_low=cfg.clip_ratio_low,
                              clip_ratio_high=cfg.clip_ratio_high, clip_ratio_c=cfg.clip_ratio_c,
                              loss_agg_mode=cfg.loss_agg_mode)
        if cfg.entropy_coeff > 0:  # not in JustRL: entropy bonus
            loss = loss - cfg.entropy_coeff * aggregate_loss(ent, mask, cfg.loss_agg_mode)
        if cfg.kl_coef > 0 and ref_logp is not None:  # not in JustRL: KL(pi || pi_ref), k3 estimator
            kl = kl_penalty_k3(logp, ref_logp[rows, :R].to(device))
            loss = loss + cfg.kl_coef * aggregate_loss(kl, mask, cfg.loss_agg_mode)
    return loss, m, ent, mask


def clip_and_step(model, optimizer: torch.optim.Optimizer, grad_clip: float) -> float:
    """Clip the global gradient norm to ``grad_clip`` and take one optimizer step; returns the norm before clipping.

    As verl, an update whose gradient is not finite is skipped (its norm, inf or nan, reaches the metrics).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if torch.isfinite(grad_norm):
        optimizer.step()
    else:
        optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)


def update_policy(model, optimizer, batch: RolloutBatch, old_logp: torch.Tensor, token_advantages: torch.Tensor,
                  cfg: JustRLConfig, ref_logp: torch.Tensor | None = None, *,
                  log_entropy: bool = False) -> dict[str, float]:
    """PPO epochs x mini-batches of clipped-policy-gradient updates on one rollout batch.

    Forward passes run in ``compute_context(cfg)`` (bf16/fp16 autocast or float32), backward outside it.
    ``log_entropy`` adds ``policy/entropy``, measured on each mini-batch just before its optimizer step (used when
    the old-log-prob pass, which measures it otherwise, is skipped).
    """
    model.train()
    device = next(model.parameters()).device
    B = batch.response_ids.shape[0]
    seqs_per_mini = cfg.mini_batch_prompts * cfg.rollouts_per_prompt
    lengths = sequence_lengths(batch)                                                   # (B,)
    counters = UpdateCounters()
    with_entropy = cfg.entropy_coeff > 0 or log_entropy
    for _ in range(cfg.ppo_epochs):
        for start in range(0, B, seqs_per_mini):
            mini = list(range(start, min(start + seqs_per_mini, B)))
            mini_tokens = float(batch.response_mask[mini].sum())
            plan = plan_micro_batches(mini, lengths, cfg.micro_batch_max_tokens)
            padded, computed = padding_counts(plan, lengths, forward_overhead_tokens(device.type))
            counters.padded += padded
            counters.computed += computed
            optimizer.zero_grad(set_to_none=True)
            for rows in plan:
                if not batch.response_mask[rows].any():  # only empty responses: no token, no gradient
                    continue
                loss, m, ent, mask = micro_batch_loss(model, batch, rows, old_logp, token_advantages, cfg,
                                                      ref_logp, with_entropy)
                # weight of this micro-batch in the mini-batch loss: authors' (sequence share) or true token mean
                scale = micro_batch_scale(cfg.micro_batch_weighting, micro_seqs=len(rows), mini_seqs=len(mini),
                                          micro_tokens=float(mask.sum()), mini_tokens=mini_tokens)
                (loss * scale).backward()
                counters.pg_loss += float(loss.detach()) * scale
                counters.add_micro_batch(m, ent, mask)
            counters.grad_norms.append(clip_and_step(model, optimizer, cfg.grad_clip))
    optimizer.zero_grad(set_to_none=True)  # free the gradients before vLLM wakes (scale/estimate.py, rollout phase)
    return counters.metrics(log_entropy)


# ---- one step, validation, the loop ---------------------------------------------------------------

def train_step(step: int, model, optimizer, engine: RolloutEngine, prompts: EncodedPrompts, cfg: JustRLConfig,
               ref_model=None) -> dict[str, Any]:
    """Training step ``step``: items 1-6 of the module docstring, in order (item 7, the lr, is ``train``'s)."""
    timer = PhaseTimer()
    with timer("rollout"):
        # 1. draw the step's prompts: a fixed shuffled order, one pass over the data per epoch
        idx = prompt_indices(step, cfg.prompts_per_step, len(prompts.rows), cfg.seed)
        # 2. sample rollouts_per_prompt responses for each at temperature T
        batch = engine.generate([prompts.prompt_ids[i] for i in idx], cfg.rollouts_per_prompt,
                                temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                max_new_tokens=cfg.max_response_length,
                                seed=sample_seed(cfg.seed, step, 0) if engine.seeded else None)
        engine.sleep()  # vLLM frees its GPU memory for the old-log-prob pass and the update (no-op: HF, CPU)
    with timer("reward"):
        # 3. score each response. MathRow.answer: the ground truth with an outer \boxed{} removed (some benchmark
        # files store "\boxed{204}"); DAPO-Math-17k's integer answers are unchanged by it (the authors' reward).
        ground_truths = [prompts.rows[idx[g]].answer for g in batch.group_ids.tolist()]
        rewards, scores = score_responses(batch.texts, ground_truths, batch.response_mask.sum(-1).tolist(),
                                          reward_fn=cfg.reward_fn, use_overlong_penalty=cfg.overlong_penalty,
                                          max_response_length=cfg.max_response_length,
                                          overlong_buffer_len=cfg.overlong_buffer_len,
                                          overlong_penalty_factor=cfg.overlong_penalty_factor)
        rewards = torch.tensor(rewards, dtype=torch.float32)                               # (B,)
        # 4. A_i = (s_i - mean(s_group)) / (std(s_group) + 1e-6), the same on every token of response i
        advantages = grpo_advantages(rewards, batch.group_ids)                             # (B,)
        token_advantages = broadcast_to_tokens(advantages, batch.response_mask)            # (B, R)
    with timer("old_logprob"):
        # 5. logp_old by the training model before any update, or the sampler's when it is this model
        reuse = reuse_sampling_logprobs(cfg, engine.exact_policy_logprobs)
        if reuse:
            old_logp, entropy = batch.sampling_logprobs * batch.response_mask, None         # (B, R)
        else:
            old_logp, entropy = compute_old_logprobs(model, batch, cfg)                    # (B, R) each
        ref_logp = compute_ref_logprobs(ref_model, batch, cfg) if ref_model is not None else None
    with timer("update"):
        # 6. the mini-batch updates: clipped policy gradient, grad-norm clip, AdamW
        update = update_policy(model, optimizer, batch, old_logp, token_advantages, cfg, ref_logp,
                               log_entropy=reuse)
        fragmentation = release_cached_memory()  # reserved - allocated after empty_cache, before vLLM wakes
        engine.sync_weights(model)  # wakes vLLM: its weights come back, the new ones go in, then its KV cache
    # the step's metrics, keyed as metrics.py lists them (train adds actor/lr, and val/* every val_every steps)
    metrics = step_metrics(update, batch, rewards, scores, old_logp, entropy, cfg.rollouts_per_prompt, timer)
    return metrics | ({"perf/reserved_minus_allocated_gb": fragmentation} if fragmentation is not None else {})


def validate(engine: RolloutEngine, prompts: EncodedPrompts, cfg: JustRLConfig, step: int) -> dict[str, float]:
    """avg@k on held-out prompts: the evaluation grader's pass@1 and the training verifier's mean reward."""
    n_prompts = len(prompts.rows) if cfg.val_max_prompts == 0 else min(cfg.val_max_prompts, len(prompts.rows))
    correct, rewards, lengths = [], [], []
    for start in range(0, n_prompts, 64):
        chunk = list(range(start, min(start + 64, n_prompts)))
        batch = engine.generate([prompts.prompt_ids[i] for i in chunk], cfg.val_samples_per_prompt,
                                temperature=cfg.val_temperature, top_p=cfg.val_top_p, top_k=-1,
                                max_new_tokens=cfg.val_max_response_length,
                                seed=sample_seed(cfg.seed, step, 1 + start) if engine.seeded else None)
        answers = [prompts.rows[chunk[g]].answer for g in batch.group_ids.tolist()]
        correct.extend(grade_many(batch.texts, answers, grader=cfg.val_grader))
        rewards.extend(dapo_reward(text, gt) for text, gt in zip(batch.texts, answers))
        lengths.extend(batch.response_mask.sum(-1).tolist())
    return {"val/pass@1": float(np.mean(correct)), "val/reward": float(np.mean(rewards)),
            "val/response_length": float(np.mean(lengths))}


def train(cfg: JustRLConfig, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True) -> TrainResult:
    """Run (or resume) the JustRL loop described in the module docstring; return where its outputs are.

    An ``output_dir`` holding another run is refused unless ``resume`` (continue it from its newest verified
    checkpoint) or ``overwrite`` (delete its metrics, checkpoints and figures first) is given."""
    check_device(cfg)
    check_vllm(cfg.rollout_engine)
    device_bytes = device_memory_bytes(cfg)
    check_fits_device(cfg, device_bytes)  # before any model load: a run that cannot fit stops here, not at step 1
    apply_cpu_threads(cfg)  # a deliberate thread count on CPU (justrl_lite/policy.py)
    out = Path(cfg.output_dir)
    checkpoint = prepare_output_dir(out, resume=resume, overwrite=overwrite)
    _check_same_run(out, cfg, checkpoint)
    seed_everything(cfg.seed)
    model, tokenizer = load_policy(cfg, checkpoint)
    ref_model = copy.deepcopy(model).eval().requires_grad_(False) if cfg.kl_coef > 0 else None
    train_prompts = load_prompts(cfg.train_data, tokenizer, cfg.prompt_suffix, cfg.max_prompt_length)
    val_prompts = load_prompts(cfg.val_data, tokenizer, cfg.prompt_suffix, cfg.max_prompt_length)
    if not train_prompts.rows:
        raise TrainerError(f"no training prompt fits max_prompt_length={cfg.max_prompt_length}: raise it.")
    optimizer = make_optimizer(model, cfg)
    # 7. lr = lr * min(1, (step - 1) / warm-up): read before each step, stepped once after it (the loop below)
    scheduler = make_scheduler(optimizer, cfg)
    # resume: the step, optimizer and schedule of the checkpoint
    start_step = 0
    if checkpoint is not None:
        start_step = int(load_training_state(checkpoint, optimizer, scheduler)["step"])
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")
    logger = MetricsLogger(out, resume_step=start_step if checkpoint is not None else None)
    rng = rng_state()  # after resume restored it; the in-process vLLM re-seeds the global generators at start
    engine = sampler_for_config(cfg, model, tokenizer, device_bytes)
    set_rng_state(rng)
    info = {"train_prompts": len(train_prompts.rows), "train_prompts_filtered": train_prompts.n_filtered,
            "val_prompts": len(val_prompts.rows)}
    if start_step == 0:
        logger.log(0, {**info, **validate(engine, val_prompts, cfg, 0)})

    bar = tqdm(range(start_step + 1, cfg.total_steps + 1), initial=start_step, total=cfg.total_steps,
               desc="JustRL", disable=not progress, dynamic_ncols=True)
    for step in bar:
        lr = optimizer.param_groups[0]["lr"]
        metrics = train_step(step, model, optimizer, engine, train_prompts, cfg, ref_model)
        metrics["actor/lr"] = lr
        scheduler.step()
        if step % cfg.val_every == 0 or step == cfg.total_steps:
            metrics.update(validate(engine, val_prompts, cfg, step))
        logger.log(step, metrics)
        bar.set_postfix(reward=f"{metrics['reward/mean']:+.2f}", acc=f"{metrics['reward/accuracy']:.2f}",
                        ent=f"{metrics['policy/entropy']:.2f}", len=f"{metrics['response_length/mean']:.0f}")
        if step % cfg.save_every == 0 or step == cfg.total_steps:
            save_checkpoint(out, step, model, tokenizer, optimizer, scheduler,
                            {"data_position": step * cfg.prompts_per_step}, prompt_suffix=cfg.prompt_suffix)
            prune_checkpoints(out, cfg.keep_checkpoints, cfg.keep_every_steps)
    logger.close()
    return TrainResult(out, logger.path, cfg.total_steps)


def _check_same_run(out: Path, cfg: JustRLConfig, checkpoint: Path | None) -> None:
    """Resuming with different settings would silently mix two runs: refuse, naming the fields."""
    saved = out / "config.json"
    if checkpoint is None or not saved.exists():
        return
    old = json.loads(saved.read_text())
    new = cfg.to_dict()
    free = ("total_steps", "cpu_threads", "output_dir", "keep_checkpoints", "keep_every_steps")  # a moved folder
    changed = [k for k in new if k not in free and old.get(k) != new[k]]
    if changed:
        raise TrainerError(f"--resume: {out} was started with different values of {changed}. Resume with the same "
                           f"settings (only {', '.join(free)} may change) or choose another output_dir.")
