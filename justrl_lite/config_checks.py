"""Validation of a ``JustRLConfig``: the allowed values of each field, and one clear error for the first that is not.

``JustRLConfig.__post_init__`` runs ``validate``, so an impossible config is never built: it stops with one
``ConfigError`` naming the field, its value and what it accepts. The choice tuples below are the allowed values of
the string fields (``loss.py`` and ``config_io.py`` use them too). A new config field gets its check here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from justrl_lite.errors import JustRLError

if TYPE_CHECKING:
    from justrl_lite.config import JustRLConfig

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
MICRO_BATCH_WEIGHTINGS = ("authors", "global-token-mean")
REWARD_FNS = ("dapo", "lenient")
ROLLOUT_ENGINES = ("hf", "vllm")
DEVICES = ("cuda", "cpu")
DTYPES = ("bfloat16", "float32", "float16")
OLD_LOGPROB_MODES = ("auto", "always", "never")
GRADERS = ("paper", "math-verify")
"""The evaluation graders (``grading/grade.py``): ``paper``, the authors' rule grader; ``math-verify``, our
normaliser, a numeric tolerance, then math-verify. Listed here, at the bottom of the import graph, so that
validating ``val_grader`` does not load the grading stack."""


class ConfigError(JustRLError, ValueError):
    """A configuration value is impossible; the message names the field and what it accepts."""


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"config field `{name}` = {value!r} is invalid: {allowed}")


def validate(c: JustRLConfig) -> None:
    """Raise ``ConfigError`` naming the first impossible field and its allowed range."""
    for name in ("max_prompt_length", "max_response_length", "prompts_per_step", "mini_batch_prompts",
                 "ppo_epochs", "micro_batch_max_tokens", "total_steps", "val_every", "save_every",
                 "val_samples_per_prompt", "val_max_response_length"):
        v = getattr(c, name)
        _check(isinstance(v, int) and not isinstance(v, bool) and v > 0, name, v, "must be a positive integer")
    _check(isinstance(c.rollouts_per_prompt, int) and c.rollouts_per_prompt >= 2, "rollouts_per_prompt",
           c.rollouts_per_prompt, "must be an integer >= 2 (a group of one has no baseline)")
    _check(c.prompts_per_step % c.mini_batch_prompts == 0, "mini_batch_prompts", c.mini_batch_prompts,
           f"must divide prompts_per_step ({c.prompts_per_step})")
    _check(c.mini_batch_prompts <= c.prompts_per_step, "mini_batch_prompts", c.mini_batch_prompts,
           f"must be <= prompts_per_step ({c.prompts_per_step})")
    _check(c.micro_batch_max_tokens >= c.max_prompt_length + c.max_response_length, "micro_batch_max_tokens",
           c.micro_batch_max_tokens, f"must hold one full sequence (>= max_prompt_length + max_response_length = "
           f"{c.max_prompt_length + c.max_response_length})")
    _check(_is_num(c.lr) and c.lr > 0, "lr", c.lr, "must be a positive number")
    _check(isinstance(c.lr_warmup_steps, int) and c.lr_warmup_steps >= 0, "lr_warmup_steps", c.lr_warmup_steps,
           "must be an integer >= 0")
    _check(isinstance(c.adam_betas, tuple) and len(c.adam_betas) == 2
           and all(_is_num(b) and 0 <= b < 1 for b in c.adam_betas), "adam_betas", c.adam_betas,
           "must be two numbers in [0, 1)")
    _check(_is_num(c.adam_eps) and c.adam_eps > 0, "adam_eps", c.adam_eps, "must be > 0")
    _check(_is_num(c.weight_decay) and c.weight_decay >= 0, "weight_decay", c.weight_decay, "must be >= 0")
    _check(_is_num(c.grad_clip) and c.grad_clip > 0, "grad_clip", c.grad_clip, "must be > 0")
    _check(_is_num(c.clip_ratio_low) and 0 < c.clip_ratio_low < 1, "clip_ratio_low", c.clip_ratio_low,
           "must be in (0, 1)")
    _check(_is_num(c.clip_ratio_high) and c.clip_ratio_high > 0, "clip_ratio_high", c.clip_ratio_high, "must be > 0")
    _check(_is_num(c.clip_ratio_c) and c.clip_ratio_c > 1, "clip_ratio_c", c.clip_ratio_c, "must be > 1")
    _check(c.loss_agg_mode in LOSS_AGG_MODES, "loss_agg_mode", c.loss_agg_mode, f"must be one of {LOSS_AGG_MODES}")
    _check(c.micro_batch_weighting in MICRO_BATCH_WEIGHTINGS, "micro_batch_weighting", c.micro_batch_weighting,
           f"must be one of {MICRO_BATCH_WEIGHTINGS}")
    _check(_is_num(c.kl_coef) and c.kl_coef >= 0, "kl_coef", c.kl_coef, "must be >= 0 (JustRL: 0)")
    _check(_is_num(c.entropy_coeff) and c.entropy_coeff >= 0, "entropy_coeff", c.entropy_coeff,
           "must be >= 0 (JustRL: 0)")
    _check(_is_num(c.temperature) and c.temperature > 0, "temperature", c.temperature, "must be > 0")
    _check(_is_num(c.top_p) and 0 < c.top_p <= 1, "top_p", c.top_p, "must be in (0, 1]")
    _check(isinstance(c.top_k, int) and (c.top_k == -1 or c.top_k > 0), "top_k", c.top_k, "must be -1 (off) or > 0")
    _check(_is_num(c.rollout_gpu_memory_utilization) and 0 < c.rollout_gpu_memory_utilization < 1,
           "rollout_gpu_memory_utilization", c.rollout_gpu_memory_utilization, "must be in (0, 1)")
    _check(c.recompute_old_logprobs in OLD_LOGPROB_MODES, "recompute_old_logprobs", c.recompute_old_logprobs,
           f"must be one of {OLD_LOGPROB_MODES}")
    _check(c.rollout_engine in ROLLOUT_ENGINES, "rollout_engine", c.rollout_engine, f"must be one of {ROLLOUT_ENGINES}")
    _check(isinstance(c.rollout_seeded, bool), "rollout_seeded", c.rollout_seeded, "must be true or false")
    _check(c.reward_fn in REWARD_FNS, "reward_fn", c.reward_fn, f"must be one of {REWARD_FNS}")
    _check(isinstance(c.overlong_penalty, bool), "overlong_penalty", c.overlong_penalty, "must be true or false")
    _check(isinstance(c.overlong_buffer_len, int) and 0 < c.overlong_buffer_len <= c.max_response_length,
           "overlong_buffer_len", c.overlong_buffer_len, f"must be in [1, max_response_length={c.max_response_length}]")
    _check(_is_num(c.overlong_penalty_factor) and c.overlong_penalty_factor >= 0, "overlong_penalty_factor",
           c.overlong_penalty_factor, "must be >= 0")
    _check(_is_num(c.val_temperature) and c.val_temperature > 0, "val_temperature", c.val_temperature, "must be > 0")
    _check(_is_num(c.val_top_p) and 0 < c.val_top_p <= 1, "val_top_p", c.val_top_p, "must be in (0, 1]")
    _check(isinstance(c.val_max_prompts, int) and c.val_max_prompts >= 0, "val_max_prompts", c.val_max_prompts,
           "must be an integer >= 0 (0 = all)")
    _check(c.val_grader in GRADERS, "val_grader", c.val_grader, f"must be one of {GRADERS}")
    for name in ("keep_checkpoints", "keep_every_steps"):
        v = getattr(c, name)
        _check(isinstance(v, int) and not isinstance(v, bool) and v >= 0, name, v, "must be an integer >= 0 (0 = off)")
    _check(isinstance(c.seed, int), "seed", c.seed, "must be an integer")
    _check(c.device in DEVICES, "device", c.device, f"must be one of {DEVICES}")
    _check(c.dtype in DTYPES, "dtype", c.dtype, f"must be one of {DTYPES}")
    _check(isinstance(c.lora_rank, int) and c.lora_rank >= 0, "lora_rank", c.lora_rank, "must be an integer >= 0")
    _check(isinstance(c.lora_alpha, int) and c.lora_alpha > 0, "lora_alpha", c.lora_alpha, "must be a positive integer")
    _check(isinstance(c.cpu_threads, int) and not isinstance(c.cpu_threads, bool) and c.cpu_threads >= 0,
           "cpu_threads", c.cpu_threads, "must be an integer >= 0 (0 = choose from the usable CPUs and the load)")
    for name in ("model_name_or_path", "train_data", "val_data", "output_dir"):
        v = getattr(c, name)
        _check(isinstance(v, str) and v.strip() != "", name, v, "must be a non-empty string")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
