"""The estimator: parameter counts against models built on the meta device, memory and time recomputed by hand."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

from justrl_lite.config import JustRLConfig
from justrl_lite.scale.estimate import (
    KNOWN_SHAPES,
    Assumptions,
    ModelShape,
    advice,
    forward_flops_per_token,
    memory_estimate,
    model_shape,
    shape_from_config,
    time_estimate,
    val_prompts,
)
from justrl_lite.scale.estimate_report import hardware_table

ROOT = Path(__file__).resolve().parents[1]
DEEPSEEK = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
GB = 1e9


def meta_count(config) -> int:
    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    return sum(p.numel() for p in model.parameters())


def deepseek_config() -> Qwen2Config:
    """DeepSeek-R1-Distill-Qwen-1.5B's shape, typed in by hand from its published config."""
    return Qwen2Config(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                       intermediate_size=8960, vocab_size=151936, tie_word_embeddings=False)


# ---- shapes and parameter counts ------------------------------------------------------------------

def test_deepseek_parameter_count_three_ways():
    shape = KNOWN_SHAPES[DEEPSEEK]
    # by hand: embeddings + lm_head, then per layer q/k/v (with biases), o, SwiGLU, two RMSNorms, final norm
    per_layer = (1536 * 1536 + 1536) + 2 * (1536 * 256 + 256) + 1536 * 1536 + 3 * 1536 * 8960 + 2 * 1536
    by_hand = 2 * 151936 * 1536 + 28 * per_layer + 1536
    assert by_hand == 1_777_088_000
    assert shape.parameters == by_hand
    assert meta_count(deepseek_config()) == by_hand
    assert shape_from_config(deepseek_config()) == shape
    assert KNOWN_SHAPES["nvidia/OpenMath-Nemotron-1.5B"] == shape  # assumed the same shape (scale/estimate.py says so)


def test_parameter_formula_matches_transformers_on_random_shapes():
    rng = random.Random(0)
    for _ in range(6):
        heads = rng.choice([2, 4, 8])
        kv = rng.choice([k for k in (1, 2, 4) if heads % k == 0])
        head_dim = rng.choice([8, 16])
        config = Qwen2Config(hidden_size=heads * head_dim, num_hidden_layers=rng.randint(1, 5),
                             num_attention_heads=heads, num_key_value_heads=kv,
                             intermediate_size=rng.randint(16, 200), vocab_size=rng.randint(50, 5000),
                             tie_word_embeddings=rng.random() < 0.5)
        assert shape_from_config(config).parameters == meta_count(config), config


def test_toy_base_shape_is_read_from_its_config():
    shape, source = model_shape("data/toy/base")
    assert "config" in source
    model = AutoModelForCausalLM.from_pretrained(ROOT / "data" / "toy" / "base")
    assert shape.parameters == sum(p.numel() for p in model.parameters())
    assert shape.tied and shape.hidden == 128 and shape.layers == 4


def test_unreachable_hub_id_falls_back_to_the_table_or_fails_clearly():
    shape, source = model_shape(DEEPSEEK)
    assert shape == KNOWN_SHAPES[DEEPSEEK]
    if "KNOWN_SHAPES" not in source:
        pytest.skip("this machine has the model's config cached")
    with pytest.raises(ValueError, match="cannot read the config of 'nobody/no-such-model'.*KNOWN_SHAPES"):
        model_shape("nobody/no-such-model")


# ---- memory, by hand ------------------------------------------------------------------------------

P = 1_777_088_000
LAYER = 46_797_824  # per_layer above
KV_PER_TOKEN = 2 * 28 * 2 * 128 * 2  # K and V, 28 layers, 2 KV heads of 128, bf16


def flat(rows: dict[str, tuple[float, float]]) -> list[float]:
    return [x for pair in rows.values() for x in pair]


def test_memory_of_the_paper_preset_on_one_gpu_by_hand():
    cfg = JustRLConfig.paper()
    m = memory_estimate(cfg, KNOWN_SHAPES[DEEPSEEK], 1, 80)
    T, h = 32768, 1536
    w = (18 * 1536 + 3 * 256 + 4 * 8960) * 2  # bytes one layer saves per token (bf16)
    want = {  # (rollout phase: vLLM awake, training phase: vLLM asleep)
        "vLLM": (0.85 * 80 * GB, 1 * GB),  # its share u*M; asleep, its CUDA graphs (assumed 1 GB)
        "master": (4 * P, 4 * P), "grads": (0, 4 * P), "adam": (8 * P, 8 * P), "copy": (0, 2 * P),
        "activations": (0, 28 * T * h * 4 + 2 * T * w),
        "chunk": (0, T * h * 8 + 1766 * 151936 * 4 * 3),  # 1,766 tokens: 1 GiB of fp32 logits (CUDA)
        "reserve": (2 * GB, 2 * GB),
    }
    assert flat(m.rows) == pytest.approx(flat(want))
    assert m.rollout == pytest.approx(68 * GB + 12 * P + 2 * GB)  # 91.3 GB: vLLM's 0.85 beside the fp32 state
    assert m.training == pytest.approx(sum(t for _, t in want.values()))  # 52.7 GB
    assert KNOWN_SHAPES[DEEPSEEK].kv_bytes_per_token() == KV_PER_TOKEN == 28_672
    assert m.kv_tokens == int((0.85 * 80 * GB - 2 * P) // KV_PER_TOKEN)
    assert m.training <= 80 * GB < m.rollout and not m.fits


def test_both_phases_on_random_hardware_and_budgets():
    """rollout = u*M + 12P/N + reserve; training = 16P/N + copy + activations + chunk + reserve + vLLM asleep."""
    seed, shape = random.randrange(10**6), KNOWN_SHAPES[DEEPSEEK]
    rng = random.Random(seed)
    a = Assumptions(reserve_gb=rng.uniform(0, 4), vllm_asleep_gb=rng.uniform(0, 3))
    for _ in range(20):
        n, M, u = rng.choice([1, 2, 4, 8, 32]), rng.choice([24, 40, 80, 141]), rng.randint(5, 95) / 100
        T = rng.choice([16384, 20480, 32768])
        cfg = JustRLConfig.paper().replace(rollout_gpu_memory_utilization=u, micro_batch_max_tokens=T)
        m = memory_estimate(cfg, shape, n, M, a, "native" if n == 1 else "verl")
        copy = 2 * P if n == 1 else 2 * (2 * 151936 * 1536 + LAYER)
        # native: an fp32 residual and one 1,766-token log-prob chunk; verl: a bf16 residual and the (T x V) logits
        residual, logits = (4, T * 1536 * 8 + 1766 * 151936 * 12) if n == 1 else (2, T * 151936 * 6 + T * 1536 * 4)
        act = 28 * T * 1536 * residual + 2 * T * (18 * 1536 + 3 * 256 + 4 * 8960) * 2
        rollout = u * M * GB + 12 * P / n + a.reserve_gb * GB
        training = 16 * P / n + copy + act + logits + (a.reserve_gb + a.vllm_asleep_gb) * GB
        kv = int((u * M * GB - 2 * P) // KV_PER_TOKEN) if u * M * GB > 2 * P else 0
        assert (m.rollout, m.training) == pytest.approx((rollout, training)), (seed, n, M, u, T)
        assert m.kv_tokens == kv and m.fits == (max(rollout, training) <= M * GB and kv >= 16384), seed


def test_verl_shards_the_fp32_state_on_32_gpus_with_its_own_numerics():
    cfg = JustRLConfig.paper()
    one, many = memory_estimate(cfg, KNOWN_SHAPES[DEEPSEEK], 1, 80), memory_estimate(cfg, KNOWN_SHAPES[DEEPSEEK], 32,
                                                                                    80, engine="verl")
    for name in ("fp32 master weights (4P/N)", "fp32 gradients (4P/N)", "AdamW moments (8P/N)"):
        assert many.rows[name] == pytest.approx(tuple(x / 32 for x in one.rows[name]))
    assert many.rows["bfloat16 compute copy of weights"] == (0, 2 * (2 * 151936 * 1536 + LAYER))  # root + one layer
    T, w = 32768, (18 * 1536 + 3 * 256 + 4 * 8960) * 2
    assert many.rows["activations (checkpointed)"] == (0, 28 * T * 1536 * 2 + 2 * T * w)  # bf16 residual
    # the whole micro-batch's logits: ~10 GB in bf16 at 32k tokens (review D6), plus their fp32 log-softmax
    assert many.rows["(tokens x vocab) logits, bf16 + fp32 log-softmax (verl)"] == (0, T * 151936 * 6 + T * 1536 * 4)
    with pytest.raises(ValueError, match="native trainer runs on one GPU"):
        memory_estimate(cfg, KNOWN_SHAPES[DEEPSEEK], 32, 80)
    assert many.rollout == pytest.approx(68 * GB + 12 * P / 32 + 2 * GB)  # 70.7 GB: the state sharded beside vLLM
    assert many.fits


def saved_bytes(config: Qwen2Config, tokens: int) -> int:
    """Bytes autograd saves in one transformers Qwen2 decoder layer under bf16 autocast (fp32 parameters)."""
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    hidden = torch.randn(1, tokens, config.hidden_size, requires_grad=True)  # (1, T, h)
    positions = torch.arange(tokens)[None]
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.model.layers[0](hidden, position_embeddings=model.model.rotary_emb(hidden, positions),
                              attention_mask=None, position_ids=positions)
    return sum(storages.values())


def test_layer_working_set_matches_what_transformers_saves():
    """w = (18h + 3gd + 4I) x 2 bytes per token, against a real Qwen2 layer on random shapes (slope in T)."""
    rng = random.Random(1)
    for _ in range(3):
        heads = rng.choice([4, 6, 8])
        kv = rng.choice([k for k in (1, 2) if heads % k == 0])
        config = Qwen2Config(hidden_size=heads * 32, intermediate_size=rng.randint(300, 1200),
                             num_attention_heads=heads, num_key_value_heads=kv, num_hidden_layers=1, vocab_size=10)
        per_token = (saved_bytes(config, 768) - saved_bytes(config, 256)) / 512
        shape = shape_from_config(config)
        w = memory_rows_w(shape)
        assert 0.85 * w <= per_token <= w, (config, per_token, w)  # the formula is a slight over-estimate


def test_checkpointed_layer_inputs_are_fp32_under_autocast():
    """Why the checkpoints cost L*T*h*4: with fp32 parameters the residual stream stays fp32 under bf16 autocast."""
    config = Qwen2Config(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                         num_hidden_layers=2, vocab_size=10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = Qwen2ForCausalLM(config)(torch.randint(0, 10, (1, 8)), output_hidden_states=True)
    assert all(h.dtype == torch.float32 for h in out.hidden_states)
    assert out.logits.dtype == torch.bfloat16  # the lm_head runs in bf16; logprobs.py upcasts one chunk at a time


def memory_rows_w(shape: ModelShape) -> float:
    """w from the estimator itself: the activation row minus the checkpoints, over 2T (bf16, checkpointed)."""
    T = 4096
    cfg = JustRLConfig.paper().replace(micro_batch_max_tokens=T, max_response_length=2048, overlong_buffer_len=1024)
    rows = memory_estimate(cfg, shape, 1, 80).rows
    return (rows["activations (checkpointed)"][1] - shape.layers * T * shape.hidden * 4) / (2 * T)


def test_checkpointing_and_float32_change_what_they_should():
    shape = KNOWN_SHAPES[DEEPSEEK]
    cfg = JustRLConfig.paper().replace(gradient_checkpointing=False, dtype="float32")
    rows = memory_estimate(cfg, shape, 1, 80).rows
    w = (18 * 1536 + 3 * 256 + 4 * 8960) * 4
    assert rows["activations (no checkpointing)"] == (0, 29 * 32768 * w)
    assert rows["compute copy of weights (none)"] == (0, 0)
    hf = memory_estimate(JustRLConfig.paper().replace(rollout_engine="hf"), shape, 1, 80)
    assert hf.vllm_share == 0 and hf.rollout == pytest.approx(12 * P + 2 * GB)  # no vLLM in either phase


def test_advice_says_which_phase_and_names_a_change_that_fits():
    cfg, shape, a = JustRLConfig.paper(), KNOWN_SHAPES[DEEPSEEK], Assumptions()
    tips = advice(cfg, shape, 1, 80, a)  # the paper on one GPU: rollouts overflow, training alone would fit
    assert tips[0].startswith("rollouts: vLLM's share 68.0 GB + what training keeps resident beside it 23.3 GB")
    assert not any(t.startswith("training") for t in tips)
    assert "set `rollout_gpu_memory_utilization=0.7`" in tips[1]
    assert memory_estimate(cfg.replace(rollout_gpu_memory_utilization=0.7), shape, 1, 80).fits
    assert not memory_estimate(cfg.replace(rollout_gpu_memory_utilization=0.75), shape, 1, 80).fits
    assert len(tips) == 2 and not any("GPUs" in t for t in tips)  # the native trainer uses one GPU
    verl_tips = advice(cfg, shape, 1, 80, a, "verl")
    assert "or use 8 GPUs (`--nnodes 1 --gpus-per-node 8`" in verl_tips[-1]
    assert memory_estimate(cfg, shape, 8, 80, a, "verl").fits
    small = cfg.replace(rollout_gpu_memory_utilization=0.4)  # a 48 GB GPU: training (52.7 GB) overflows instead
    tips = advice(small, shape, 1, 48, a)
    assert tips[0].startswith("training (vLLM asleep): 52.7 GB > 48.0 GB")
    tokens = int(next(t for t in tips if "micro_batch_max_tokens" in t).split("=")[1].split("`")[0])
    assert memory_estimate(small.replace(micro_batch_max_tokens=tokens), shape, 1, 48).fits
    assert not memory_estimate(small.replace(micro_batch_max_tokens=tokens + 1024), shape, 1, 48).fits
    tiny_kv = advice(cfg.replace(rollout_gpu_memory_utilization=0.05), shape, 1, 80, a)
    assert "less than one sequence" in tiny_kv[0]
    assert advice(cfg, shape, 32, 80, a, "verl") == []


# ---- time, by hand --------------------------------------------------------------------------------

def test_model_flops_count_matmul_parameters_and_attention():
    shape = KNOWN_SHAPES[DEEPSEEK]
    # per layer: q, o 1536^2 each; k, v 1536 x 256 each; MLP 3 x 1536 x 8960; plus lm_head 1536 x 151,936
    matmul = 28 * (2 * 1536**2 + 2 * 1536 * 256 + 3 * 1536 * 8960) + 1536 * 151936
    assert matmul == 1_543_569_408  # + embedding 233,373,696 + biases and norms 144,896 = 1,777,088,000 parameters
    assert forward_flops_per_token(shape, 0) == 2 * matmul
    assert forward_flops_per_token(shape, 1000) - 2 * matmul == 4 * 28 * 12 * 128 * 1000


def test_time_of_the_paper_preset_on_32_gpus_by_hand():
    a = Assumptions(mfu=0.35, peak_tflops=312, decode_tokens_per_s=2500, mean_length_fraction=0.5,
                    decode_latency_s=0.012)
    t = time_estimate(JustRLConfig.paper(), KNOWN_SHAPES[DEEPSEEK], 32, a)
    s = 0.5 * (1024 + 15360)
    tokens = 2048 * s
    # (3 x 1 epoch + 1 old-log-prob pass) forwards of model FLOPs, no recompute
    flops = 4 * (2 * 1_543_569_408 + 4 * 28 * 12 * 128 * s / 2) * tokens
    train_s = flops / (32 * 312e12 * 0.35)
    rollout_s = max(2048 * 0.5 * 15360 / (32 * 2500), 15360 * 0.012)
    val_s = max((30 + 30 + 40) * 32 * 0.5 * 31744 / (32 * 2500), 31744 * 0.012)  # AIME24+AIME25+AMC23, avg@32
    total = 4380 * (train_s + rollout_s) + (4380 // 50 + 1) * val_s
    assert (t.tokens_per_step, t.train_flops_per_step) == pytest.approx((tokens, flops))
    assert (t.train_s, t.rollout_s, t.val_s) == pytest.approx((train_s, rollout_s, val_s))
    assert t.total_s == pytest.approx(total) and t.gpu_hours == pytest.approx(total * 32 / 3600)


def test_val_prompts_counts_benchmarks_and_jsonl_rows():
    assert val_prompts(JustRLConfig.paper()) == 100
    assert val_prompts(JustRLConfig.paper().replace(val_max_prompts=7)) == 7
    lines = (ROOT / "data" / "toy" / "test.jsonl").read_text().splitlines()
    assert val_prompts(JustRLConfig.tiny().replace(val_max_prompts=0)) == sum(1 for ln in lines if ln.strip())
    assert val_prompts(JustRLConfig.paper().replace(val_data="some/hub-dataset")) is None


# ---- presets --------------------------------------------------------------------------------------

def test_paper_fits_32_gpus_not_one_and_one_gpu_fits_one_with_a_step_of_minutes():
    shape = KNOWN_SHAPES[DEEPSEEK]
    paper, one = JustRLConfig.paper(), JustRLConfig.one_gpu()
    alone = memory_estimate(paper, shape, 1, 80)
    assert not alone.fits and alone.training <= 80 * GB  # only the rollout phase overflows on one GPU
    assert memory_estimate(paper, shape, 32, 80, engine="verl").fits
    m = memory_estimate(one, shape, 1, 80)
    assert m.fits and m.kv_tokens // m.sequence_tokens >= one.responses_per_step  # a whole step's responses at once
    t = time_estimate(one, shape, 1)
    assert 2 * 60 <= t.step_s <= 10 * 60, t.step_s
    assert t.total_s < 7 * 86400


def test_one_gpu_reasons_quote_the_estimator():
    from justrl_lite.config_presets import ONE_GPU_REASONS

    one, shape = JustRLConfig.one_gpu(), KNOWN_SHAPES[DEEPSEEK]
    m, paper = memory_estimate(one, shape, 1, 80), memory_estimate(JustRLConfig.paper(), shape, 1, 80)
    why = ONE_GPU_REASONS["rollout_gpu_memory_utilization"]
    assert f"training keeps {round((m.rollout - m.vllm_share) / GB)} GB resident" in why
    assert f"0.85 would need {round(paper.rollout / GB)} GB of 80" in why
    assert f"vLLM's {round(m.vllm_share / GB)} GB" in why and f"{round(m.rollout / GB)} GB in all" in why
    assert f"{m.kv_tokens // m.sequence_tokens} full sequences" in why and f"all {one.responses_per_step} " in why
    assert f"{one.total_steps * one.prompts_per_step:,} prompts" in ONE_GPU_REASONS["total_steps"]


def test_hardware_table_rows():
    table = hardware_table().splitlines()
    assert len(table) == 6 and "does not fit" in table[3] and "does not fit" not in table[2] + table[4]
    assert "| verl, 32 x 80 GB |" in table[2] and "--engine verl --nnodes 4 --gpus-per-node 8 --dry-run" in table[2]
    assert "| native, 1 x 80 GB |" in table[3] and "--preset one_gpu --dry-run`" in table[4]
    assert table[5].startswith("| `tiny` |") and "none (CPU)" in table[5] and "measured" in table[5]


# ---- the command line -----------------------------------------------------------------------------

def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "justrl_lite.full_run", "--dry-run", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_dry_run_of_one_gpu_prints_its_reasons_and_a_fit():
    done = dry_run("--preset", "one_gpu")
    assert done.returncode == 0, done.stderr
    assert "| `prompts_per_step` | `256` | `16` | 16 x 8 = 128 responses" in done.stdout
    assert "# Memory and time estimate (1 x 80 GB)" in done.stdout and "**FITS** on 1 x 80 GB" in done.stdout


def test_dry_run_of_paper_is_the_native_trainer_on_one_gpu_and_names_verl():
    done = dry_run("--gpu-memory-gb", "80", "--mfu", "0.5", "--decode-tokens-per-s", "1000")
    assert done.returncode == 0, done.stderr
    assert "Trainer: the native trainer (one GPU" in done.stdout
    assert "**DOES NOT FIT** on 1 x 80 GB (native)" in done.stdout
    assert "`rollout_gpu_memory_utilization=0.7`" in done.stdout and "--gpus " not in done.stdout
    assert "--engine verl --nnodes 4 --gpus-per-node 8 --dry-run" in done.stdout
    assert "MFU 0.5 of 312 TFLOP/s assumed" in done.stdout and "1,000 decode tokens/s per GPU fitted" in done.stdout


def test_dry_run_refuses_several_gpus_for_the_native_trainer():
    done = dry_run("--gpus", "8")
    assert done.returncode == 2 and "native trainer uses one GPU" in done.stderr
    assert "--engine verl --nnodes 1 --gpus-per-node 8 --dry-run" in done.stderr and "Traceback" not in done.stderr


def test_dry_run_bad_flag_is_one_clear_error():
    done = dry_run("--gpus", "0")
    assert done.returncode == 2 and "--gpus" in done.stderr and "Traceback" not in done.stderr


def test_dry_run_unknown_model_says_why_there_is_no_estimate():
    done = dry_run("--preset", "one_gpu", "model_name_or_path=nobody/no-such-model")
    assert done.returncode == 0, done.stderr
    assert "no estimate: cannot read the config of 'nobody/no-such-model'" in done.stdout


def test_model_shape_is_a_plain_dataclass():
    s = ModelShape(hidden=8, layers=1, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=10, tied=True)
    assert s.parameters == 10 * 8 + (8 * 8 + 8 + 2 * (8 * 4 + 4) + 8 * 8 + 3 * 8 * 16 + 2 * 8) + 8
