"""Metrics written as the run goes: one JSON line per step, mirrored to TensorBoard.

On resume, lines logged after the checkpoint (by the run that was killed) are dropped, so the file of a
resumed run reads exactly like that of an uninterrupted one.

Logged keys (per training step):
  reward/mean                 mean reward used for the advantage (+1/-1 scale, plus any overlong penalty)
  reward/accuracy             fraction of responses the verifier scored +1
  groups/mixed_frac           fraction of prompts whose n responses did not all score the same (nonzero advantage)
  policy/entropy              masked token mean of the sampling-temperature policy entropy, before the update (when
                              the old-log-prob pass is skipped, ``recompute_old_logprobs``: measured on each
                              mini-batch just before its optimizer step)
  response_length/mean, response_length/max   response tokens (EOS included)
  response_length/truncated_frac   fraction that hit max_response_length
  reward/overlong_frac        fraction of responses the overlong penalty lowered (longer than
                              max_response_length - overlong_buffer_len; 0 when overlong_penalty is off)
  actor/pg_loss               mean of the aggregated policy loss over mini-batches (not a measure of progress)
  actor/clip_frac             fraction of response tokens where the ratio clip is active (L2 > L1)
  actor/dual_clip_frac        fraction of response tokens where the dual clip is active
  actor/approx_kl             mean(logp_old - logp_new) over response tokens
  actor/grad_norm             global gradient norm before clipping (mean over optimizer steps)
  actor/skipped_updates       optimizer steps skipped because the gradient was not finite (as verl)
  actor/updates               optimizer steps taken on this rollout batch (4 in the paper)
  actor/lr                    learning rate of this step
  rollout/logprob_diff        mean |sampler log-prob - trainer log-prob| (inference/training mismatch; 0 when the
                              sampler's log-probs are reused as logp_old)
  time/rollout, time/reward, time/old_logprob, time/update, time/step   seconds
  perf/tokens_per_s           response tokens sampled per second of step time
  perf/padding_frac           padded / computed tokens of the update's forward passes (buckets: rows x longest, summed)
  perf/reserved_minus_allocated_gb   CUDA only: memory PyTorch keeps reserved beyond what is allocated after the
                              update and ``empty_cache``, before vLLM wakes (fragmentation; ``device_fit.py``)
Every ``val_every`` steps also: val/pass@1 (evaluation grader, avg@k), val/reward (mean strict DAPO reward,
whatever ``reward_fn`` trains with), val/response_length.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Append-only JSONL (flushed every line) plus an optional TensorBoard mirror."""

    def __init__(self, output_dir: str | Path, *, resume_step: int | None = None, tensorboard: bool = True):
        self.path = Path(output_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        else:
            keep = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        self._file = open(self.path, "a")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(Path(output_dir) / "tensorboard"), purge_step=purge)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All complete JSON lines of a metrics file (a line cut short by a crash is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/inf; a None in the log means the value was not finite
    return v
