"""What one training step measures: seconds per phase (``PhaseTimer``), the update's sums (``UpdateCounters``)
and the step's metrics (``step_metrics``).

Kept out of ``trainer.train_step`` so that it reads as the recipe's steps; every key and its meaning is listed in
``metrics.py``, the file they are written to. The phases, in the order a step runs them:
  rollout       sample the responses (and put vLLM to sleep)
  reward        score them and compute the advantages
  old_logprob   logp_old (and a reference model's log-probs, when ``kl_coef`` > 0)
  update        the mini-batch updates (and the new weights into vLLM)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from justrl_lite.loss import masked_mean

if TYPE_CHECKING:
    from justrl_lite.rollout import RolloutBatch


class PhaseTimer:
    """Wall-clock seconds of the named phases of one step: ``with timer("rollout"): ...``.

    ``time_metrics()`` gives ``time/<phase>`` for each phase in the order run, and ``time/step``: from the start of
    the first phase to the end of the last.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self.start: float | None = None
        self.end: float | None = None

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t = self.clock()
        if self.start is None:
            self.start = t
        try:
            yield
        finally:
            self.end = self.clock()
            self.seconds[phase] = self.seconds.get(phase, 0.0) + self.end - t

    @property
    def step_seconds(self) -> float:
        return 0.0 if self.start is None else self.end - self.start

    def time_metrics(self) -> dict[str, float]:
        return {**{f"time/{phase}": s for phase, s in self.seconds.items()}, "time/step": self.step_seconds}


def step_metrics(update: dict[str, float], batch: RolloutBatch, rewards: torch.Tensor, scores: list[float],
                 old_logprobs: torch.Tensor, entropy: torch.Tensor | None, rollouts_per_prompt: int,
                 timer: PhaseTimer) -> dict[str, Any]:
    """One training step's metrics: the keys of this module's docstring, in the order they are logged.

    ``update``: what ``update_policy`` measured (``actor/*``, ``perf/padding_frac``); ``rewards`` (B,) the rewards
    used for the advantage; ``scores`` (B,) the verifier's; ``old_logprobs`` (B, R); ``entropy`` (B, R) from the
    old-log-prob pass, or None when ``update`` measured it.
    """
    mask = batch.response_mask.float()                                                   # (B, R)
    lengths = batch.response_mask.sum(-1)                                                # (B,)
    groups = rewards.view(-1, rollouts_per_prompt)                                       # (P, n)
    metrics = dict(update)
    if entropy is not None:
        metrics["policy/entropy"] = float(masked_mean(entropy, mask))
    metrics.update({
        "reward/mean": float(rewards.mean()),
        "reward/accuracy": float(np.mean([s > 0 for s in scores])),
        "groups/mixed_frac": float((groups.max(1).values != groups.min(1).values).float().mean()),
        "response_length/mean": float(lengths.float().mean()),
        "response_length/max": float(lengths.max()),
        "response_length/truncated_frac": float(batch.truncated.float().mean()),
        # share of responses the overlong penalty touched: reward below the verifier's score (0 with it off)
        "reward/overlong_frac": float(np.mean([r < s for r, s in zip(rewards.tolist(), scores)])),
        "rollout/logprob_diff": float(masked_mean((batch.sampling_logprobs - old_logprobs).abs(), mask)),
        **timer.time_metrics(),
        "perf/tokens_per_s": float(lengths.sum()) / max(timer.step_seconds, 1e-9),
    })
    return metrics


@dataclass
class UpdateCounters:
    """Sums over one ``update_policy`` call, turned into the ``actor/*`` metrics by ``metrics``."""

    pg_loss: float = 0.0
    clip_frac: float = 0.0        # token-weighted sums of the per-micro-batch fractions
    dual_clip_frac: float = 0.0
    approx_kl: float = 0.0
    entropy: float = 0.0
    tokens: float = 0.0
    padded: float = 0.0           # padded / computed tokens of the micro-batches (rows x longest, summed)
    computed: float = 0.0
    grad_norms: list[float] = field(default_factory=list)

    def add_micro_batch(self, m: dict, ent: torch.Tensor | None, mask: torch.Tensor) -> None:
        tokens = float(mask.sum())
        self.clip_frac += float(m["clip_frac"]) * tokens
        self.dual_clip_frac += float(m["dual_clip_frac"]) * tokens
        self.approx_kl += float(m["approx_kl"]) * tokens
        if ent is not None:
            self.entropy += float((ent.detach() * mask).sum())
        self.tokens += tokens

    def metrics(self, log_entropy: bool) -> dict[str, float]:
        n_updates = max(1, len(self.grad_norms))
        tokens = max(1.0, self.tokens)
        out = {
            "actor/pg_loss": self.pg_loss / n_updates,
            "actor/clip_frac": self.clip_frac / tokens,
            "actor/dual_clip_frac": self.dual_clip_frac / tokens,
            "actor/approx_kl": self.approx_kl / tokens,
            "actor/grad_norm": float(np.mean(self.grad_norms)) if self.grad_norms else 0.0,
            "actor/skipped_updates": float(sum(not np.isfinite(g) for g in self.grad_norms)),
            "actor/updates": float(len(self.grad_norms)),
            "perf/padding_frac": self.padded / max(1.0, self.computed),
        }
        if log_entropy:
            out["policy/entropy"] = self.entropy / tokens
        return out
