"""JustRLConfig: paper preset vs a golden table from the recipe; validation, files, overrides, diff table."""

from __future__ import annotations

import dataclasses
import json

import pytest

from justrl_lite.config import JustRLConfig
from justrl_lite.config_checks import ConfigError
from justrl_lite.config_presets import ONE_GPU_OVERRIDES, ONE_GPU_REASONS, PRESET_REASONS, PRESETS
from justrl_lite.config_tables import diff_table

# The recipe's fixed settings, copied by hand from docs/recipe.md, "The fixed settings" (not from config.py).
RECIPE = {
    # base model, data, prompt
    "model_name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    "train_data": "BytedTsinghua-SIA/DAPO-Math-17k",
    "prompt_suffix": "\n\nPlease reason step by step, and put your final answer within \\boxed{}.",
    "max_prompt_length": 1024,
    "max_response_length": 15360,
    # batch shape: 256 prompts x 8 rollouts, mini-batch of 64 prompts, one epoch
    "prompts_per_step": 256,
    "rollouts_per_prompt": 8,
    "mini_batch_prompts": 64,
    "ppo_epochs": 1,
    # AdamW, constant lr after warm-up, grad clip
    "lr": 1e-6,
    "lr_warmup_steps": 10,
    "adam_betas": (0.9, 0.999),
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    # policy loss: clip-higher, dual clip, token-mean, no KL, no entropy bonus
    "clip_ratio_low": 0.2,
    "clip_ratio_high": 0.28,
    "clip_ratio_c": 10.0,
    "loss_agg_mode": "token-mean",
    "micro_batch_weighting": "authors",
    "kl_coef": 0.0,
    "entropy_coeff": 0.0,
    # rollout sampling: temperature 1.0, top_p 1.0, no top_k
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": -1,
    # reward: strict DAPO verifier, overlong penalty present but off (ablation buffer: last 4k tokens)
    "reward_fn": "dapo",
    "overlong_penalty": False,
    "overlong_buffer_len": 4096,
    # schedule: 4,380 steps (DeepSeek base), validate and save every 50
    "total_steps": 4380,
    "val_every": 50,
    "save_every": 50,
    # evaluation protocol: avg@32, temperature 0.7, top_p 0.9, 31,744 new tokens
    "val_samples_per_prompt": 32,
    "val_temperature": 0.7,
    "val_top_p": 0.9,
    "val_max_response_length": 31744,
    # validation grader: the authors' verl scored AIME24/25/AMC23 validation with math-verify
    # (train/verl/utils/reward_score/__init__.py in thunlp/JustRL)
    "val_grader": "math-verify",
    # full fine-tuning, as the paper
    "lora_rank": 0,
}

# Fields the recipe does not fix: the project's defaults. A new config field must be added to one of the two.
NOT_IN_RECIPE = {
    "val_data": "AIME24,AIME25,AMC23",
    "micro_batch_max_tokens": 32768,
    "adam_eps": 1e-8,
    "rollout_engine": "vllm",
    # the authors' launcher (train/examples/justrl/run_scaling_ssh_distill.sh), with vLLM's sleep mode
    "rollout_gpu_memory_utilization": 0.85,
    "rollout_seeded": False,
    "recompute_old_logprobs": "auto",
    "overlong_penalty_factor": 1.0,
    "val_max_prompts": 0,
    "seed": 1,
    "device": "cuda",
    "dtype": "bfloat16",
    "gradient_checkpointing": True,
    "lora_alpha": 32,
    "output_dir": "runs/justrl-deepseek-1.5b",
    "cpu_threads": 0,
    # checkpoint retention (issue 22): 3 x ~21 GB instead of 88 x ~21 GB (every 50 steps)
    "keep_checkpoints": 3,
    "keep_every_steps": 0,
}

FIELDS = [f.name for f in dataclasses.fields(JustRLConfig)]


# ---- the paper preset ---------------------------------------------------------------------------

def test_golden_table_covers_every_field():
    golden = set(RECIPE) | set(NOT_IN_RECIPE)
    assert not set(RECIPE) & set(NOT_IN_RECIPE)
    assert set(FIELDS) - golden == set(), "new config field(s): add them to RECIPE or NOT_IN_RECIPE here"
    assert golden - set(FIELDS) == set(), "golden table names fields JustRLConfig does not have"


@pytest.mark.parametrize("name", list(RECIPE) + list(NOT_IN_RECIPE))
def test_paper_preset_equals_golden_table(name):
    want = RECIPE.get(name, NOT_IN_RECIPE.get(name))
    got = getattr(JustRLConfig.paper(), name)
    assert got == want and type(got) is type(want), f"{name}: paper() has {got!r}, the recipe says {want!r}"


def test_paper_preset_derived_quantities():
    cfg = JustRLConfig.paper()
    assert cfg.responses_per_step == 2048
    assert cfg.optimizer_steps_per_step == 4
    assert JustRLConfig() == cfg
    assert JustRLConfig.preset("paper") == cfg and JustRLConfig.preset("tiny") == JustRLConfig.tiny()
    assert JustRLConfig.preset("one_gpu") == JustRLConfig.one_gpu()


FIXED_CHOICES = ("rollouts_per_prompt", "ppo_epochs", "lr_warmup_steps", "adam_betas", "weight_decay",
                 "grad_clip", "clip_ratio_low", "clip_ratio_high", "clip_ratio_c", "loss_agg_mode",
                 "micro_batch_weighting", "kl_coef", "entropy_coeff", "temperature", "top_p", "top_k",
                 "reward_fn", "overlong_penalty", "prompt_suffix")


@pytest.mark.parametrize("preset", ["tiny", "one_gpu"])
def test_smaller_presets_keep_the_fixed_choices(preset):
    paper, small = JustRLConfig.paper(), JustRLConfig.preset(preset)
    for name in FIXED_CHOICES:
        assert getattr(small, name) == RECIPE[name] == getattr(paper, name), name
    assert small.optimizer_steps_per_step == paper.optimizer_steps_per_step == 4


def test_one_gpu_changes_only_scale():
    """Golden: one_gpu is the paper's base, data, lr, precision and token budget; only these fields move."""
    one = JustRLConfig.one_gpu()
    for name in ("model_name_or_path", "train_data", "val_data", "max_prompt_length", "lr", "adam_eps",
                 "micro_batch_max_tokens", "rollout_engine", "device", "dtype", "gradient_checkpointing",
                 "lora_rank", "val_every", "save_every", "val_temperature", "val_top_p", "val_max_prompts"):
        assert getattr(one, name) == RECIPE.get(name, NOT_IN_RECIPE.get(name)), name
    changed = {f for f in FIELDS if getattr(one, f) != getattr(JustRLConfig.paper(), f)}
    assert changed == set(ONE_GPU_OVERRIDES) == set(ONE_GPU_REASONS)
    assert one.responses_per_step == 128 and one.max_response_length + one.max_prompt_length <= 32768


def test_every_preset_has_reasons_for_each_change():
    assert set(PRESETS) == set(PRESET_REASONS) == {"paper", "one_gpu", "tiny"}
    for name in PRESETS:
        cfg = JustRLConfig.preset(name)
        changed = {f for f in FIELDS if getattr(cfg, f) != getattr(JustRLConfig.paper(), f)}
        assert changed <= set(PRESET_REASONS[name]), (name, changed - set(PRESET_REASONS[name]))
        table = diff_table(JustRLConfig.paper(), cfg, PRESET_REASONS[name], names=("paper", name))
        assert all(not row.endswith("|  |") for row in table.splitlines()), table


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        JustRLConfig.preset("huge")


# ---- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rollouts_per_prompt", 1),
        ("clip_ratio_low", 1.5),
        ("clip_ratio_low", 0.0),
        ("clip_ratio_high", -0.1),
        ("clip_ratio_c", 1.0),
        ("mini_batch_prompts", 48),  # does not divide 256
        ("mini_batch_prompts", 0),
        ("prompts_per_step", 0),
        ("lr", 0.0),
        ("lr", -1e-6),
        ("lr_warmup_steps", -1),
        ("max_response_length", -5),
        ("max_prompt_length", -1),
        ("micro_batch_max_tokens", 100),  # cannot hold one full sequence
        ("loss_agg_mode", "mean"),
        ("micro_batch_weighting", "per-token"),
        ("recompute_old_logprobs", "sometimes"),
        ("recompute_old_logprobs", False),
        ("kl_coef", -0.1),
        ("entropy_coeff", -0.01),
        ("adam_betas", (0.9, 1.0)),
        ("adam_betas", (0.9,)),
        ("weight_decay", -0.1),
        ("grad_clip", 0.0),
        ("temperature", 0.0),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_k", 0),
        ("reward_fn", "robust"),
        ("rollout_engine", "sglang"),
        ("rollout_gpu_memory_utilization", 1.0),
        ("rollout_seeded", 1),
        ("overlong_buffer_len", 0),
        ("overlong_buffer_len", 20000),  # longer than max_response_length
        ("total_steps", 0),
        ("val_every", 0),
        ("val_grader", "sympy"),
        ("save_every", -50),
        ("keep_checkpoints", -1),
        ("keep_every_steps", 2.5),
        ("device", "tpu"),
        ("dtype", "float8"),
        ("lora_rank", -1),
        ("model_name_or_path", ""),
        ("overlong_penalty", "yes"),
        ("rollouts_per_prompt", 8.0),
        ("cpu_threads", -1),
        ("cpu_threads", 1.5),
        ("cpu_threads", True),
    ],
)
def test_impossible_values_name_the_field(name, value):
    with pytest.raises(ConfigError) as err:
        JustRLConfig.paper().replace(**{name: value})
    assert f"`{name}`" in str(err.value), str(err.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# ---- files --------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
@pytest.mark.parametrize("preset", ["paper", "tiny", "changed"])
def test_save_load_round_trip(tmp_path, suffix, preset):
    if preset == "changed":
        cfg = JustRLConfig.tiny().replace(adam_betas=(0.8, 0.95), overlong_penalty=True, lr=3e-5,
                                          prompt_suffix="\n\nA | b \\boxed{} : 'q' \"x\"\n")
    else:
        cfg = JustRLConfig.preset(preset)
    path = tmp_path / "sub" / f"config{suffix}"
    cfg.save(path)
    loaded = JustRLConfig.load(path)
    assert loaded == cfg
    assert isinstance(loaded.adam_betas, tuple)


def test_saved_json_is_plain_field_mapping(tmp_path):
    JustRLConfig.paper().save(tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert list(data) == FIELDS
    assert data["adam_betas"] == [0.9, 0.999] and data["clip_ratio_high"] == 0.28


def test_missing_keys_take_the_paper_value(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"lr": 2e-6}))
    assert JustRLConfig.load(tmp_path / "c.json") == JustRLConfig.paper().replace(lr=2e-6)


def test_yaml_numbers_written_by_hand(tmp_path):
    # PyYAML reads `1e-6` (no dot) as a string; a hand-written config with the paper's lr must still load
    (tmp_path / "c.yaml").write_text("lr: 1e-6\nclip_ratio_c: 10\nadam_betas: [0.9, 0.999]\n")
    cfg = JustRLConfig.load(tmp_path / "c.yaml")
    assert cfg.lr == 1e-6 and type(cfg.lr) is float and cfg.clip_ratio_c == 10.0


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("bad.json", "{not json", "not valid json"),
        ("bad.yaml", "lr: [1e-6\n", "not valid yaml"),
        ("list.json", "[1, 2]", "must hold a mapping"),
        ("empty.yaml", "", "must hold a mapping"),
        ("unknown.json", '{"learning_rate": 1e-6}', "unknown config field.*learning_rate"),
        ("type.json", '{"rollouts_per_prompt": "eight"}', "`rollouts_per_prompt`"),
        ("null.json", '{"lr": null}', "`lr`"),
        ("betas.json", '{"adam_betas": 0.9}', "`adam_betas`"),
        ("betas_null.json", '{"adam_betas": null}', "`adam_betas`"),
    ],
)
def test_malformed_files_give_config_error(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=match):
        JustRLConfig.load(tmp_path / name)


def test_missing_file_gives_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        JustRLConfig.load(tmp_path / "nope.json")


# ---- command-line overrides ---------------------------------------------------------------------

def test_overrides_parse_types():
    cfg = JustRLConfig.paper().with_overrides([
        "lr=2e-6", "total_steps=100", "overlong_penalty=true", "adam_betas=(0.8, 0.99)", "clip_ratio_c=3",
        "--top-k=5", "device=cpu", "val_data=AIME24", "weight_decay=0",
    ])
    expected = {"lr": 2e-6, "total_steps": 100, "overlong_penalty": True, "adam_betas": (0.8, 0.99),
                "clip_ratio_c": 3.0, "top_k": 5, "device": "cpu", "val_data": "AIME24", "weight_decay": 0.0}
    for name, want in expected.items():
        got = getattr(cfg, name)
        assert got == want and type(got) is type(want), f"{name}: {got!r}"
    untouched = [f for f in FIELDS if f not in expected]
    assert all(getattr(cfg, f) == getattr(JustRLConfig.paper(), f) for f in untouched)


@pytest.mark.parametrize(("text", "value"), [("on", True), ("1", True), ("yes", True), ("false", False),
                                             ("OFF", False), ("0", False)])
def test_bool_overrides(text, value):
    cfg = JustRLConfig.paper().with_overrides([f"gradient_checkpointing={text}"])
    assert cfg.gradient_checkpointing is value


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("learning_rate=1e-6", "unknown config field 'learning_rate'"),
        ("lr", "must look like field=value"),
        ("lr=abc", "`lr`"),
        ("total_steps=1.5", "`total_steps`"),
        ("total_steps=inf", "`total_steps`"),
        ("overlong_penalty=maybe", "`overlong_penalty`"),
        ("adam_betas=(0.9, x)", "`adam_betas`"),
        ("adam_betas=0.9", "`adam_betas`"),
        ("rollouts_per_prompt=1", "`rollouts_per_prompt`"),
        ("loss_agg_mode=sum", "`loss_agg_mode`"),
    ],
)
def test_bad_overrides_give_config_error(override, match):
    with pytest.raises(ConfigError, match=match):
        JustRLConfig.paper().with_overrides([override])


# ---- the paper-vs-tiny table --------------------------------------------------------------------

def _table_rows(table: str) -> dict[str, list[str]]:
    lines = table.splitlines()
    assert lines[0].startswith("| field |") and set(lines[1]) <= set("|-")
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, line
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_diff_table_lists_every_differing_field_with_a_reason():
    paper, tiny = JustRLConfig.paper(), JustRLConfig.tiny()
    differing = {f for f in FIELDS if getattr(paper, f) != getattr(tiny, f)}
    rows = _table_rows(diff_table(paper, tiny))
    assert set(rows) == differing
    for name, (_, _, reason) in rows.items():
        assert reason, f"no reason given for {name}"
    assert "lr" in rows and "prompts_per_step" in rows


def test_diff_table_of_equal_configs_has_no_rows():
    assert _table_rows(diff_table(JustRLConfig.paper(), JustRLConfig.paper())) == {}


def test_config_io_and_config_tables_serve_the_config_from_their_own_modules():
    from justrl_lite import config_io, config_tables

    paper = JustRLConfig.paper()
    assert config_io.apply_overrides(paper, ["lr=3e-6"]) == paper.with_overrides(["lr=3e-6"]) == paper.replace(lr=3e-6)
    assert config_io.field_type(JustRLConfig, "lr") is float
    assert config_tables.field_names() == [f.name for f in dataclasses.fields(JustRLConfig)]
    assert set(config_tables.field_docs()) == set(config_tables.field_names())   # every field has its docstring
    assert config_tables.recipe_table(paper).count("\n") == len(config_tables.field_names()) + 1


def test_importing_the_config_loads_no_grader_and_no_torch():
    """config sits at the bottom of the import graph: validating val_grader must not load the grading stack."""
    import subprocess
    import sys

    code = ("import sys, justrl_lite.config as c; c.JustRLConfig.tiny(); "
            "print(sorted(m for m in sys.modules if m.startswith(('justrl_lite.grading.grade', 'torch', 'sympy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
