"""What a training step logs: the phase timer, the metrics assembly on synthetic inputs, and the exact keys (in the
order written to metrics.jsonl) of a real ``train_step`` on a random tiny model."""

from __future__ import annotations

import copy
import math
import os
import random
from types import SimpleNamespace

import pytest
import torch

from justrl_lite.config import PROJECT_ROOT, JustRLConfig
from justrl_lite.data import MathRow
from justrl_lite.metrics import read_metrics
from justrl_lite.rollout import RolloutBatch, RolloutEngine, left_pad
from justrl_lite.step_metrics import PhaseTimer, step_metrics
from justrl_lite.trainer import sample_seed, train, train_step

# the keys of one training step in metrics.jsonl, in order (train() then adds actor/lr, and val/* every val_every)
STEP_KEYS = [
    "actor/pg_loss", "actor/clip_frac", "actor/dual_clip_frac", "actor/approx_kl", "actor/grad_norm",
    "actor/skipped_updates", "actor/updates", "perf/padding_frac", "policy/entropy", "reward/mean",
    "reward/accuracy", "groups/mixed_frac", "response_length/mean", "response_length/max",
    "response_length/truncated_frac", "reward/overlong_frac",
    "rollout/logprob_diff", "time/rollout", "time/reward", "time/old_logprob",
    "time/update", "time/step", "perf/tokens_per_s",
]
UPDATE_KEYS = STEP_KEYS[:8]


class FakeClock:
    def __init__(self, ticks):
        self.ticks = iter(ticks)

    def __call__(self) -> float:
        return next(self.ticks)


def test_phase_timer_times_each_phase_and_the_step_from_first_start_to_last_end():
    timer = PhaseTimer(clock=FakeClock([10.0, 12.5, 12.5, 13.0, 20.0, 24.0]))
    for phase in ("rollout", "reward", "update"):
        with timer(phase):
            pass
    assert timer.time_metrics() == {"time/rollout": 2.5, "time/reward": 0.5, "time/update": 4.0, "time/step": 14.0}
    assert list(timer.time_metrics()) == ["time/rollout", "time/reward", "time/update", "time/step"]
    assert PhaseTimer().time_metrics() == {"time/step": 0.0}


def test_phase_timer_still_records_a_phase_that_raises():
    timer = PhaseTimer(clock=FakeClock([0.0, 3.0]))
    with pytest.raises(RuntimeError), timer("rollout"):
        raise RuntimeError("engine died")
    assert timer.time_metrics() == {"time/rollout": 3.0, "time/step": 3.0}


def random_batch(rng: random.Random, P: int, n: int, R: int) -> tuple[RolloutBatch, torch.Tensor]:
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    B = P * n
    lengths = torch.randint(1, R + 1, (B,), generator=g)                                  # (B,)
    mask = (torch.arange(R)[None, :] < lengths[:, None]).long()                           # (B, R)
    batch = RolloutBatch(prompt_ids=torch.ones(B, 2, dtype=torch.long), prompt_mask=torch.ones(B, 2, dtype=torch.long),
                         response_ids=torch.ones(B, R, dtype=torch.long), response_mask=mask,
                         sampling_logprobs=-torch.rand(B, R, generator=g) * mask, truncated=lengths == R,
                         texts=[""] * B, group_ids=torch.arange(P).repeat_interleave(n))
    return batch, torch.randn(B, R, generator=g) * mask


@pytest.mark.parametrize("with_entropy", [True, False])
def test_step_metrics_match_a_re_derivation_on_random_batches(with_entropy):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    for _ in range(20):
        P, n, R = rng.randint(1, 5), rng.choice([1, 2, 4]), rng.randint(1, 9)
        batch, noise = random_batch(rng, P, n, R)
        old = batch.sampling_logprobs + 0.01 * noise                                      # (B, R)
        scores = [rng.choice([1.0, -1.0]) for _ in range(P * n)]
        penalised = torch.rand(P * n) < 0.5                                               # (B,)
        # an overlong penalty on some responses
        rewards = torch.tensor(scores) - (0.05 + 0.1 * torch.rand(P * n)) * penalised
        entropy = noise.abs() if with_entropy else None
        update = {k: rng.random() for k in UPDATE_KEYS} | ({} if with_entropy else {"policy/entropy": 0.7})
        timer = PhaseTimer(clock=FakeClock([0.0, 1.0, 1.0, 3.0]))
        for phase in ("rollout", "update"):
            with timer(phase):
                pass
        m = step_metrics(update, batch, rewards, scores, old, entropy, n, timer)

        lens = [int(r.sum()) for r in batch.response_mask]
        tokens = [(i, t) for i in range(P * n) for t in range(lens[i])]                   # every response token
        want_entropy = sum(float(entropy[i, t]) for i, t in tokens) / len(tokens) if with_entropy else 0.7
        mixed = [len(set(rewards[p * n:(p + 1) * n].tolist())) > 1 for p in range(P)]
        diff = sum(abs(float(batch.sampling_logprobs[i, t] - old[i, t])) for i, t in tokens) / len(tokens)
        assert {k: m[k] for k in UPDATE_KEYS} == {k: update[k] for k in UPDATE_KEYS}, seed
        assert m["policy/entropy"] == pytest.approx(want_entropy, rel=1e-5), seed
        assert m["reward/mean"] == pytest.approx(float(rewards.sum()) / (P * n), rel=1e-6, abs=1e-7)
        assert m["reward/accuracy"] == sum(s > 0 for s in scores) / len(scores)
        assert m["groups/mixed_frac"] == pytest.approx(sum(mixed) / P)
        assert m["response_length/mean"] == pytest.approx(sum(lens) / len(lens))
        assert m["response_length/max"] == max(lens)
        assert m["response_length/truncated_frac"] == pytest.approx(sum(x == R for x in lens) / len(lens))
        assert m["reward/overlong_frac"] == pytest.approx(float(penalised.float().mean())), seed
        assert m["rollout/logprob_diff"] == pytest.approx(diff, rel=1e-5, abs=1e-8), seed
        assert (m["time/rollout"], m["time/update"], m["time/step"]) == (1.0, 2.0, 3.0)
        assert m["perf/tokens_per_s"] == pytest.approx(sum(lens) / 3.0)


class RandomEngine(RolloutEngine):
    """A rollout engine of random responses: half of them box the right answer."""

    def __init__(self, pad_id: int, vocab: int):
        self.pad_id, self.vocab = pad_id, vocab

    def generate(self, prompt_ids, n, *, temperature, top_p, top_k, max_new_tokens, seed):
        g = torch.Generator().manual_seed(seed)
        B, R = len(prompt_ids) * n, 6
        ids, mask = left_pad([p for p in prompt_ids for _ in range(n)], self.pad_id)
        lengths = torch.randint(1, R + 1, (B,), generator=g)
        response_mask = (torch.arange(R)[None, :] < lengths[:, None]).long()
        return RolloutBatch(prompt_ids=ids, prompt_mask=mask,
                            response_ids=torch.randint(5, self.vocab, (B, R), generator=g) * response_mask,
                            response_mask=response_mask,
                            sampling_logprobs=-torch.rand(B, R, generator=g) * response_mask,
                            truncated=lengths == R, texts=["\\boxed{1}", "no"] * (B // 2),
                            group_ids=torch.arange(len(prompt_ids)).repeat_interleave(n))


@pytest.mark.parametrize("recompute", ["always", "never"])
def test_a_training_step_logs_exactly_the_documented_keys_in_order(tiny_model_and_tokenizer, recompute):
    model, tokenizer = tiny_model_and_tokenizer
    model = copy.deepcopy(model)
    cfg = JustRLConfig.tiny().replace(prompts_per_step=2, mini_batch_prompts=1, rollouts_per_prompt=4,
                                      recompute_old_logprobs=recompute)
    rows = [MathRow(id=f"r{i}", messages=({"role": "user", "content": "1?"},), ground_truth="1", data_source="t")
            for i in range(2)]
    prompts = SimpleNamespace(rows=rows, prompt_ids=[[5, 6, 7], [8, 9]], n_filtered=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    m = train_step(1, model, optimizer, RandomEngine(tokenizer.pad_token_id, len(tokenizer)), prompts, cfg)
    assert list(m) == STEP_KEYS
    assert m["actor/updates"] == 2 and m["reward/mean"] == 0.0 and m["reward/accuracy"] == 0.5
    assert (m["rollout/logprob_diff"] == 0) == (recompute == "never")                   # logp_old is the sampler's
    assert min(m[k] for k in STEP_KEYS if k.startswith("time/")) > 0
    assert m["time/step"] == pytest.approx(sum(m[f"time/{p}"] for p in ("rollout", "reward", "old_logprob",
                                                                       "update")), rel=0.05, abs=1e-3)


@pytest.mark.parametrize("penalty", [False, True])
def test_the_overlong_share_is_the_share_of_responses_past_the_start_of_the_buffer(tiny_model_and_tokenizer,
                                                                                   penalty):
    model, tokenizer = tiny_model_and_tokenizer
    # RandomEngine's responses are 1..6 tokens: with cap 6 and buffer 3 the penalty acts on lengths 4, 5, 6
    cfg = JustRLConfig.tiny().replace(prompts_per_step=2, mini_batch_prompts=1, rollouts_per_prompt=8,
                                      max_response_length=6, overlong_buffer_len=3, overlong_penalty=penalty)
    rows = [MathRow(id=f"r{i}", messages=({"role": "user", "content": "1?"},), ground_truth="1",
                    data_source="t") for i in range(2)]
    prompts = SimpleNamespace(rows=rows, prompt_ids=[[5, 6, 7], [8, 9]], n_filtered=0)
    engine = RandomEngine(tokenizer.pad_token_id, len(tokenizer))
    model = copy.deepcopy(model)
    m = train_step(1, model, torch.optim.AdamW(model.parameters(), lr=0.0), engine, prompts, cfg)
    lengths = engine.generate(prompts.prompt_ids, 8, temperature=1.0, top_p=1.0, top_k=-1, max_new_tokens=6,
                              seed=sample_seed(cfg.seed, 1, 0)).response_mask.sum(-1)   # (B,) the same draw
    assert 0 < float((lengths > 3).float().mean()) < 1
    assert m["reward/overlong_frac"] == (float((lengths > 3).float().mean()) if penalty else 0.0)


@pytest.mark.skipif(not (PROJECT_ROOT / "data" / "toy" / "base" / "config.json").exists(), reason="toy base not built")
def test_a_two_step_run_writes_exactly_these_keys_per_line(tmp_path):
    cfg = JustRLConfig.tiny().replace(total_steps=2, prompts_per_step=2, mini_batch_prompts=1, val_every=2,
                                      save_every=2, val_max_prompts=2, val_samples_per_prompt=1,
                                      output_dir=str(tmp_path))
    train(cfg, progress=False)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    val = ["val/pass@1", "val/reward", "val/response_length"]
    assert [list(r) for r in rows] == [
        ["step", "train_prompts", "train_prompts_filtered", "val_prompts", *val],
        ["step", *STEP_KEYS, "actor/lr"],
        ["step", *STEP_KEYS, "actor/lr", *val],
    ]
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for r in rows for v in r.values())


def test_every_logged_key_is_explained_in_the_metrics_module_docstring():
    import justrl_lite.metrics as metrics_module

    for key in [*STEP_KEYS, "actor/lr", "val/pass@1", "val/reward", "val/response_length"]:
        assert key in metrics_module.__doc__, f"explain {key} in justrl_lite/metrics.py's docstring"
