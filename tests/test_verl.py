"""verl 0.9.1 itself against the bridge: it composes our command, loads our reward, and its GRPO math is ours.

Runs only where verl is installed (`make test-verl`: .venv-verl, CPU torch, transformers 5.10):
    .venv-verl/bin/python -m pytest -o addopts="-ra" -m verl tests/test_verl.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

verl = pytest.importorskip("verl")
pytestmark = pytest.mark.verl

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from authors_launcher import AUTHORS_LAUNCHER  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from justrl_lite.advantage import broadcast_to_tokens, grpo_advantages  # noqa: E402
from justrl_lite.config import JustRLConfig  # noqa: E402
from justrl_lite.data import load_rows  # noqa: E402
from justrl_lite.loss import policy_loss  # noqa: E402
from justrl_lite.scale.verl_launch import (  # noqa: E402
    NOT_RENDERED,
    RENAMED_SINCE_VENDORED,
    REWARD_FUNCTION_PATH,
    VERL_VERSION,
    command_lines,
    verl_overrides,
)
from justrl_lite.scale.verl_reward import compute_score  # noqa: E402

DAPO_FILE = "DAPO-Math-17k_dedup17917_from_MasterVito-SvS.parquet"


def test_installed_verl_is_the_bridged_version():
    assert verl.__version__ == VERL_VERSION


def lookup(tree: dict, key: str):
    node = tree
    for part in key.lstrip("+").split("."):
        node = node[part]
    return node


def test_verl_composes_the_paper_4x8_command_with_the_authors_values(tmp_path):
    cfg = JustRLConfig.paper().replace(output_dir=str(tmp_path / "run"))
    overrides = verl_overrides(cfg, nnodes=4, gpus_per_node=8, train_file=str(tmp_path / "train.parquet"),
                               val_file=str(tmp_path / "val.parquet"))
    argv = command_lines(overrides, python=sys.executable) + ["--cfg", "job"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    composed = yaml.safe_load(result.stdout)
    for key, value in overrides.items():  # every rendered value, as verl's Hydra composed it
        assert lookup(composed, key) == value, (key, lookup(composed, key), value)
    for key, value in AUTHORS_LAUNCHER.items():  # and the authors' launcher, through verl 0.9.1's renames
        if key not in NOT_RENDERED:
            assert lookup(composed, RENAMED_SINCE_VENDORED.get(key, key)) == value, key
    # what verl fills in by itself stays the recipe's too
    assert lookup(composed, "actor_rollout_ref.actor.policy_loss.loss_mode") == "vanilla"
    assert lookup(composed, "actor_rollout_ref.actor.optim.betas") == [0.9, 0.999]
    assert lookup(composed, "algorithm.norm_adv_by_std_in_grpo") is True

    # verl's own optimizer factory, fed the composed actor optimizer config, builds the recipe's AdamW
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.config.optimizer import build_optimizer

    optim_config = omega_conf_to_dataclass(OmegaConf.create(lookup(composed, "actor_rollout_ref.actor.optim")))
    optimizer = build_optimizer(torch.nn.Linear(2, 2).parameters(), optim_config)
    group = optimizer.param_groups[0]
    assert type(optimizer) is torch.optim.AdamW
    assert (group["lr"], group["weight_decay"], tuple(group["betas"]), group["eps"]) == (
        cfg.lr, cfg.weight_decay, cfg.adam_betas, cfg.adam_eps)
    assert optim_config.clip_grad == cfg.grad_clip and optim_config.lr_warmup_steps == cfg.lr_warmup_steps


def dapo_responses(rows, rng: random.Random) -> list[tuple[str, str]]:
    """(response, ground truth) pairs that exercise every branch of the strict box rule."""
    pairs = []
    for row in rows:
        truth = row.ground_truth
        filler = "Let me think. " * rng.randint(0, 30)
        pairs += [
            (f"{filler}So the answer is \\boxed{{{truth}}}.", truth),                        # correct
            (f"{filler}\\boxed{{{truth}}} and then I keep talking" + " for a while" * 10, truth),  # box too early
            (f"{filler}So the answer is \\boxed{{{truth} }}", truth),                        # not exact
            (f"{filler}\\boxed{{0}} no wait \\boxed{{{truth}}}", truth),                      # last box counts
            (f"{filler}Answer: {truth}", truth),                                              # no box
            (f"\\boxed{{\\frac{{{truth}}}{{1}}}}", truth),                                    # nested braces
        ]
    return pairs


def test_verl_loads_our_reward_and_agrees_with_its_strict_dapo_score():
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.reward_score import math_dapo

    data_dir = Path(os.environ["JUSTRL_DATA_DIR"])
    if not (data_dir / DAPO_FILE).is_file():
        pytest.skip(f"{DAPO_FILE} not in {data_dir}")
    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": REWARD_FUNCTION_PATH, "name": "compute_score", "reward_kwargs": {"verifier": "dapo"}}}})
    reward_fn = get_custom_reward_fn(config)
    rows = load_rows(str(data_dir / DAPO_FILE), limit=300)
    pairs = dapo_responses(rows, random.Random(0))
    ours = [reward_fn(data_source="math_dapo", solution_str=r, ground_truth=t, extra_info={"split": "train"})["score"]
            for r, t in pairs]
    theirs = [math_dapo.compute_score(r, t, strict_box_verify=True)["score"] for r, t in pairs]
    assert ours == theirs
    assert 0.2 < ours.count(1.0) / len(ours) < 0.5  # both outcomes are exercised


def random_group_scores(gen: torch.Generator, n_prompts: int, n: int) -> tuple[torch.Tensor, np.ndarray]:
    scores = torch.where(torch.rand(n_prompts * n, generator=gen) < 0.4, 1.0, -1.0)
    scores[:n] = 1.0  # one all-correct group: zero advantage
    perm = torch.randperm(n_prompts * n, generator=gen)
    index = np.array([f"prompt-{i // n}" for i in range(n_prompts * n)], dtype=object)[perm.numpy()]
    return scores[perm], index


def test_verl_grpo_advantage_equals_ours():
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    gen = torch.Generator().manual_seed(1)
    for n in (2, 8):
        scores, index = random_group_scores(gen, 12, n)
        lengths = torch.randint(1, 20, (len(scores),), generator=gen)
        mask = (torch.arange(20)[None, :] < lengths[:, None]).float()  # (B, T)
        token_rewards = torch.zeros_like(mask)
        token_rewards[torch.arange(len(scores)), lengths - 1] = scores  # outcome reward on the last token
        theirs, _ = compute_grpo_outcome_advantage(token_rewards, mask, index, epsilon=1e-6)
        group_ids = torch.tensor([int(s.split("-")[1]) for s in index])
        ours = broadcast_to_tokens(grpo_advantages(scores, group_ids, eps=1e-6), mask)
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_verl_clipped_policy_loss_equals_ours_with_dual_clip_and_token_mean():
    from verl.trainer.ppo.core_algos import agg_loss, compute_policy_loss_vanilla

    gen = torch.Generator().manual_seed(2)
    cfg = JustRLConfig.paper()
    B, T = 16, 24
    mask = (torch.arange(T)[None, :] < torch.randint(1, T + 1, (B,), generator=gen)[:, None]).float()  # (B, T)
    logp_old = -torch.rand(B, T, generator=gen) * 3  # (B, T)
    jumps = 3.0 * (torch.rand(B, T, generator=gen) < 0.1)  # (B, T): some ratios above c = 10 (dual clip)
    logp_new = logp_old + torch.randn(B, T, generator=gen) * 0.6 + jumps  # (B, T): ratios well outside [0.8, 1.28]
    adv = torch.randn(B, generator=gen)[:, None].expand(B, T) * 2  # (B, T)
    actor = OmegaConf.create({"clip_ratio": 0.2, "clip_ratio_low": cfg.clip_ratio_low,
                              "clip_ratio_high": cfg.clip_ratio_high, "clip_ratio_c": cfg.clip_ratio_c,
                              "global_batch_info": {}})
    theirs, their_metrics = compute_policy_loss_vanilla(logp_old, logp_new, adv, mask, loss_agg_mode="token-mean",
                                                        config=actor)
    ours, our_metrics = policy_loss(logp_new, logp_old, adv, mask, clip_ratio_low=cfg.clip_ratio_low,
                                    clip_ratio_high=cfg.clip_ratio_high, clip_ratio_c=cfg.clip_ratio_c,
                                    loss_agg_mode="token-mean")
    torch.testing.assert_close(ours, theirs)
    assert our_metrics["clip_frac"].item() == pytest.approx(their_metrics["actor/pg_clipfrac"])
    assert our_metrics["dual_clip_frac"].item() == pytest.approx(their_metrics["actor/pg_clipfrac_lower"])
    assert our_metrics["approx_kl"].item() == pytest.approx(their_metrics["actor/ppo_kl"], abs=1e-6)
    assert 0 < our_metrics["dual_clip_frac"].item() and 0 < our_metrics["clip_frac"].item()

    # Upstream token-mean over micro-batches divides by the whole mini-batch's tokens: our global-token-mean.
    per_token = torch.rand(B, T, generator=gen)  # (B, T)
    n_tokens = mask.sum()
    micro = [agg_loss(per_token[i:i + 5], mask[i:i + 5], "token-mean", batch_num_tokens=n_tokens)
             for i in range(0, B, 5)]
    torch.testing.assert_close(sum(micro), (per_token * mask).sum() / n_tokens)


def test_verl_dapo_reward_manager_scores_decoded_responses_with_our_reward():
    """Our reward inside verl's own DAPO reward manager: decoding, +1/-1, and verl's overlong penalty on top."""
    import asyncio

    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager

    tokenizer = AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[1] / "data" / "toy" / "base")
    max_resp_len, buffer = 30, 10  # responses longer than 20 tokens are penalised
    config = OmegaConf.create({"reward": {
        "custom_reward_function": {"path": REWARD_FUNCTION_PATH, "name": "compute_score",
                                   "reward_kwargs": {"verifier": "dapo"}},
        "reward_manager": {"source": "register", "name": "dapo"},
        "reward_kwargs": {"max_resp_len": max_resp_len,
                          "overlong_buffer_cfg": {"enable": True, "len": buffer, "penalty_factor": 1.0, "log": True}},
    }})
    manager = load_reward_manager(config, tokenizer)
    prompt = tokenizer("What is 6 - 1?")["input_ids"]
    cases = [("So 6 - 1 = 5. \\boxed{5}", "5", {"split": "train"}),
             ("So 6 - 1 = 5. \\boxed{5.0}", "5", {"split": "train"}),
             ("So 6 - 1 = 5. \\boxed{5.0}", "5", {"split": "test"}),
             ("So 6 - 1 = 5. 5 - 0 = 5. Done. \\boxed{5}", "5", {"split": "train"})]  # 24 tokens: penalised
    penalties = []
    for text, truth, extra_info in cases:
        response = tokenizer(text)["input_ids"]
        pad = max_resp_len - len(response)
        batch = {"prompts": torch.tensor([prompt]), "responses": torch.tensor([response + [0] * pad]),
                 "attention_mask": torch.tensor([[1] * (len(prompt) + len(response)) + [0] * pad])}
        data = DataProto.from_dict(tensors=batch, non_tensors={
            "data_source": np.array(["math_dapo"], dtype=object),
            "reward_model": np.array([{"ground_truth": truth}], dtype=object),
            "extra_info": np.array([extra_info], dtype=object)})
        result = asyncio.get_event_loop().run_until_complete(manager.run_single(data))
        ours = compute_score("math_dapo", tokenizer.decode(response, skip_special_tokens=True), truth, extra_info)
        # verl's overlong penalty: min(-(L - (max_resp_len - buffer)) / buffer, 0)
        penalty = min(-(len(response) - (max_resp_len - buffer)) / buffer, 0.0)
        penalties.append(penalty)
        assert result["reward_score"] == pytest.approx(ours["score"] + penalty)
        assert result["reward_extra_info"]["acc"] == ours["acc"]
    assert [compute_score("m", t, g, e)["acc"] for t, g, e in cases] == [1.0, 0.0, 1.0, 1.0]
    assert penalties[:3] == [0.0, 0.0, 0.0] and penalties[3] < 0
