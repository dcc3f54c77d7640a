"""The same ``JustRLConfig`` launched on verl 0.9.1 (the authors' engine: Ray, FSDP, vLLM), one or many nodes.

    python -m justrl_lite.full_run --engine verl --nnodes 4 --gpus-per-node 8 --dry-run   # print, write script
    python -m justrl_lite.full_run --engine verl --nnodes 1 --gpus-per-node 8             # run it here

This module is a bridge, not a trainer. It (1) writes the training and validation rows as verl parquet files
(chat-message ``prompt`` with the paper's suffix already in the user message, ``data_source``,
``reward_model.ground_truth``, ``extra_info``), (2) renders ``python -m verl.trainer.main_ppo`` with one Hydra
override per recipe field (``verl_overrides``), pointing verl's custom reward at ``justrl_lite.scale.verl_reward``,
and (3) prints where verl 0.9.1 departs from the vendored verl the paper ran (``known_differences``).
A multi-node run needs a Ray cluster started by hand first (docs/multi_gpu.md); verl joins it through
``RAY_ADDRESS``. With the paper preset and 4 x 8 GPUs every override equals the authors' launcher
(thunlp/JustRL ``train/examples/justrl/run_scaling_ssh_distill.sh``; checked in tests/test_verl_engine.py).

Where a verl 0.9.1 launch departs from the paper's run on the vendored verl (``known_differences`` prints them):
  1. token-mean is the true mini-batch token mean (``micro_batch_weighting=global-token-mean``), not the authors'
     per-micro-batch mean weighted by sequence share (only the native trainer has that);
  2. the vendored ``use_boxed_suffix_prompt`` flag is gone: the suffix is written into the parquet prompts;
  3. the vendored ``val_kwargs.max_new_tokens`` is gone: validation samples at ``max_response_length``;
  4. ``trainer.total_training_steps`` stops the run at ``total_steps`` (the authors stopped by hand).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from justrl_lite.config import JustRLConfig, resolve_path
from justrl_lite.config_checks import ConfigError

VERL_VERSION = "0.9.1"
REWARD_FUNCTION_PATH = "pkg://justrl_lite.scale.verl_reward"
"""verl loads ``pkg://`` paths with ``importlib``: justrl_lite must be installed beside verl on every node."""
PROJECT_NAME = "justrl"
TRAIN_SPLIT, VALIDATION_SPLIT = "train", "test"

RENAMED_SINCE_VENDORED = {
    "reward_model.enable": "reward.reward_model.enable",
    "reward_model.reward_manager": "reward.reward_manager.name",
    "+reward_model.reward_kwargs.overlong_buffer_cfg.enable": "+reward.reward_kwargs.overlong_buffer_cfg.enable",
    "+reward_model.reward_kwargs.overlong_buffer_cfg.len": "+reward.reward_kwargs.overlong_buffer_cfg.len",
    "+reward_model.reward_kwargs.overlong_buffer_cfg.penalty_factor":
        "+reward.reward_kwargs.overlong_buffer_cfg.penalty_factor",
}
"""The authors' launcher keys that verl 0.9.1 moved (its ``migrate_legacy_reward_impl`` maps old -> new)."""

NOT_RENDERED = {
    "+data.use_boxed_suffix_prompt": "vendored-only flag; the suffix is written into the parquet user message",
    "+actor_rollout_ref.rollout.val_kwargs.max_new_tokens": "vendored-only; verl 0.9.1 validates at the "
                                                            "training response cap (see known_differences)",
    "data.val_batch_size": "verl 0.9.1 default (null) puts the whole validation set in one batch, as 6312 did",
}
"""The authors' launcher keys the bridge leaves out, and why."""

NOT_IN_OVERRIDES = {
    "train_data": "written to <output_dir>/verl_data/train.parquet, which data.train_files names",
    "val_data": "written to <output_dir>/verl_data/val.parquet, which data.val_files names",
    "prompt_suffix": "written into each parquet row's user message",
    "micro_batch_weighting": "verl 0.9.1 always takes the mini-batch token mean (known_differences)",
    "val_max_response_length": "no upstream key: verl validates at max_response_length (known_differences)",
    "device": "verl runs on CUDA GPUs",
    "recompute_old_logprobs": "verl always recomputes logp_old with the actor (its sampler is vLLM in bf16)",
    "cpu_threads": "a CPU setting of the native trainer; verl runs on GPUs",
    "rollout_seeded": "an option of the native VLLMRollout (a seed per request); verl seeds its own rollout workers",
    "keep_checkpoints": "the native trainer's retention (checkpoint.prune_checkpoints); verl keeps its own checkpoints",
    "keep_every_steps": "the native trainer's milestone checkpoints; verl keeps its own checkpoints",
}
"""JustRLConfig fields with no verl override of their own, and what the bridge does with them."""


# ---- the overrides ------------------------------------------------------------------------------

def verl_overrides(cfg: JustRLConfig, *, nnodes: int, gpus_per_node: int, train_file: str, val_file: str,
                   output_dir: str | None = None) -> dict[str, Any]:
    """Hydra key -> value for ``verl.trainer.main_ppo``, one entry per recipe field (``+`` = key new to verl)."""
    check_launchable(cfg, nnodes=nnodes, gpus_per_node=gpus_per_node)
    out = str(Path(output_dir or cfg.output_dir).resolve())
    actor, rollout = "actor_rollout_ref.actor", "actor_rollout_ref.rollout"
    return {
        # GRPO: group z-score advantage, no critic; no KL anywhere (JustRL choice 3)
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": True,
        "algorithm.use_kl_in_reward": False,
        "algorithm.kl_ctrl.kl_coef": 0.0,
        # data: files written by write_verl_data; prompts longer than max_prompt_length are dropped
        "data.train_files": train_file,
        "data.val_files": val_file,
        "data.train_batch_size": cfg.prompts_per_step,
        "data.max_prompt_length": cfg.max_prompt_length,
        "data.max_response_length": cfg.max_response_length,
        "data.filter_overlong_prompts": True,
        "data.truncation": "error",
        "data.shuffle": True,
        "data.seed": cfg.seed,
        "data.val_max_samples": cfg.val_max_prompts or -1,
        # policy model
        "actor_rollout_ref.model.path": local_or_hub(cfg.model_name_or_path),
        "actor_rollout_ref.model.use_remove_padding": True,
        "actor_rollout_ref.model.enable_gradient_checkpointing": cfg.gradient_checkpointing,
        "actor_rollout_ref.model.lora_rank": cfg.lora_rank,
        "actor_rollout_ref.model.lora_alpha": cfg.lora_alpha,
        # AdamW, constant lr after linear warm-up
        f"{actor}.optim.lr": cfg.lr,
        f"{actor}.optim.lr_warmup_steps": cfg.lr_warmup_steps,
        f"{actor}.optim.lr_scheduler_type": "constant",
        f"{actor}.optim.weight_decay": cfg.weight_decay,
        f"{actor}.optim.betas": list(cfg.adam_betas),
        f"{actor}.optim.override_optimizer_config": {"eps": cfg.adam_eps},  # extra AdamW constructor arguments
        f"{actor}.optim.clip_grad": cfg.grad_clip,
        f"{actor}.grad_clip": cfg.grad_clip,
        # PPO mini-batches (in prompts: verl multiplies by rollout.n), token-budget micro-batches
        f"{actor}.ppo_mini_batch_size": cfg.mini_batch_prompts,
        f"{actor}.ppo_epochs": cfg.ppo_epochs,
        f"{actor}.ppo_micro_batch_size_per_gpu": 1,
        f"{actor}.use_dynamic_bsz": True,
        f"{actor}.ppo_max_token_len_per_gpu": cfg.micro_batch_max_tokens,
        # loss: clip-higher + dual clip, token-mean, no KL loss, no entropy bonus
        f"{actor}.clip_ratio_low": cfg.clip_ratio_low,
        f"{actor}.clip_ratio_high": cfg.clip_ratio_high,
        f"{actor}.clip_ratio_c": cfg.clip_ratio_c,
        f"{actor}.loss_agg_mode": cfg.loss_agg_mode,
        f"{actor}.entropy_coeff": cfg.entropy_coeff,
        f"{actor}.use_kl_loss": cfg.kl_coef > 0,
        f"{actor}.kl_loss_coef": cfg.kl_coef,
        f"{actor}.kl_loss_type": "low_var_kl",
        f"{actor}.ulysses_sequence_parallel_size": 1,
        f"{actor}.fsdp_config.param_offload": False,
        f"{actor}.fsdp_config.optimizer_offload": False,
        "actor_rollout_ref.ref.fsdp_config.param_offload": True,
        # rollout: vLLM, n samples per prompt at temperature 1, no top-p / top-k
        f"{rollout}.name": cfg.rollout_engine,
        f"{rollout}.n": cfg.rollouts_per_prompt,
        f"{rollout}.temperature": cfg.temperature,
        f"{rollout}.top_p": cfg.top_p,
        f"{rollout}.top_k": cfg.top_k,
        f"{rollout}.dtype": cfg.dtype,
        f"{rollout}.gpu_memory_utilization": cfg.rollout_gpu_memory_utilization,
        f"{rollout}.tensor_model_parallel_size": 1,
        f"{rollout}.max_num_batched_tokens": cfg.micro_batch_max_tokens,
        # validation sampling: the paper's evaluation protocol, avg@k
        f"{rollout}.val_kwargs.do_sample": True,
        f"{rollout}.val_kwargs.n": cfg.val_samples_per_prompt,
        f"{rollout}.val_kwargs.temperature": cfg.val_temperature,
        f"{rollout}.val_kwargs.top_p": cfg.val_top_p,
        # reward: our strict DAPO reward through verl's DAPO manager (overlong buffer off unless the ablation)
        "reward.reward_model.enable": False,
        "reward.reward_manager.name": "dapo",
        "reward.custom_reward_function.path": REWARD_FUNCTION_PATH,
        "reward.custom_reward_function.name": "compute_score",
        "+reward.custom_reward_function.reward_kwargs.verifier": cfg.reward_fn,
        "+reward.custom_reward_function.reward_kwargs.val_grader": cfg.val_grader,
        "+reward.reward_kwargs.max_resp_len": cfg.max_response_length,
        "+reward.reward_kwargs.overlong_buffer_cfg.enable": cfg.overlong_penalty,
        "+reward.reward_kwargs.overlong_buffer_cfg.len": cfg.overlong_buffer_len,
        "+reward.reward_kwargs.overlong_buffer_cfg.penalty_factor": cfg.overlong_penalty_factor,
        "+reward.reward_kwargs.overlong_buffer_cfg.log": False,
        # schedule, logging, checkpoints, cluster shape
        "trainer.val_before_train": True,
        "trainer.test_freq": cfg.val_every,
        "trainer.save_freq": cfg.save_every,
        "trainer.total_epochs": 1,
        "trainer.total_training_steps": cfg.total_steps,
        "trainer.logger": ["console", "tensorboard"],
        "trainer.project_name": PROJECT_NAME,
        "trainer.experiment_name": Path(out).name,
        "trainer.default_local_dir": f"{out}/checkpoints",
        "trainer.validation_data_dir": f"{out}/validation",
        "trainer.nnodes": nnodes,
        "trainer.n_gpus_per_node": gpus_per_node,
    }


def local_or_hub(path: str) -> str:
    """A local model folder as an absolute path (every node resolves it alike); a hub id unchanged."""
    resolved = Path(resolve_path(path))
    return str(resolved.resolve()) if resolved.exists() else path


def check_launchable(cfg: JustRLConfig, *, nnodes: int, gpus_per_node: int) -> None:
    """ConfigError (one message, what to do) for settings verl 0.9.1 cannot run."""
    if not (isinstance(nnodes, int) and nnodes >= 1 and isinstance(gpus_per_node, int) and gpus_per_node >= 1):
        raise ConfigError(f"--nnodes {nnodes} --gpus-per-node {gpus_per_node}: both must be integers >= 1")
    if cfg.rollout_engine != "vllm":
        raise ConfigError(f"rollout_engine={cfg.rollout_engine!r}: the verl engine samples with vLLM servers; "
                          "add rollout_engine=vllm (the `hf` sampler exists only in the native trainer)")
    world = nnodes * gpus_per_node
    # verl splits every mini-batch of responses evenly over the data-parallel ranks
    mini_batch_responses = cfg.mini_batch_prompts * cfg.rollouts_per_prompt
    if mini_batch_responses % world:
        raise ConfigError(f"mini_batch_prompts x rollouts_per_prompt = {mini_batch_responses} responses must divide "
                          f"evenly over {world} GPUs ({nnodes} x {gpus_per_node}); change the GPU count or batch")


def hydra_value(value: Any) -> str:
    """A Python value in Hydra override syntax: ``True``, ``1e-06``, ``[console,tensorboard]``, ``{eps:1e-08}``."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def command_lines(overrides: dict[str, Any], *, python: str = "python") -> list[str]:
    """argv of the verl launch: ``python -m verl.trainer.main_ppo key=value ...``."""
    return [python, "-m", "verl.trainer.main_ppo", *(f"{k}={hydra_value(v)}" for k, v in overrides.items())]


def launch_env(output_dir: str) -> dict[str, str]:
    """Environment the launch needs: verl's tensorboard logger writes to ``$TENSORBOARD_DIR``."""
    return {"TENSORBOARD_DIR": f"{Path(output_dir).resolve()}/tensorboard", "PYTHONUNBUFFERED": "1"}


def render_script(argv: list[str], env: dict[str, str], notes: list[str], after: list[str]) -> str:
    """A bash script: the known differences as comments, then the command with one override per line."""
    lines = ["#!/usr/bin/env bash",
             f"# JustRLConfig -> verl {VERL_VERSION}, rendered by justrl_lite.scale.verl_launch.",
             "# Multi-node: start the Ray cluster first and export RAY_ADDRESS (docs/multi_gpu.md).",
             "# Known differences from the vendored verl the paper ran:"]
    lines += [f"#   - {n}" for n in notes]
    lines += ["set -euo pipefail"] + [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines.append(" ".join(shlex.quote(a) for a in argv[:3]) + " \\")
    lines += [f"    {shlex.quote(a)} \\" for a in argv[3:-1]] + [f"    {shlex.quote(argv[-1])}"]
    lines += ["# After the run (last checkpoint): merge to a Hugging Face folder, evaluate, plot:"]
    lines += [f"#   {c}" for c in after]
    return "\n".join(lines) + "\n"


def after_run_commands(output_dir: str, step: int, model: str = "") -> list[str]:
    """Checkpoint of ``step`` -> Hugging Face folder (verl's model merger) -> the paper's evaluation."""
    out = Path(output_dir).resolve()
    compare = "paper-nemotron" if "nemotron" in model.lower() else "paper-deepseek"
    hf = f"{out}/hf/global_step_{step}"
    return [f"python -m verl.model_merger merge --backend fsdp --local_dir {out}/checkpoints/global_step_{step}/actor "
            f"--target_dir {hf}",
            f"python -m justrl_lite.evaluate --model {hf} --engine vllm --out {out}/eval/global_step_{step} "
            f"--compare {compare}",
            f"python -m justrl_lite.plots {out}/tensorboard --out {out}/figures --label verl"]


# ---- known differences --------------------------------------------------------------------------

def known_differences(cfg: JustRLConfig) -> list[str]:
    """Where this launch departs from the paper's run on the authors' vendored verl, and what the bridge does."""
    notes = [
        f"loss aggregation: verl {VERL_VERSION} token-mean divides by the response tokens of the whole mini-batch "
        "(all micro-batches and GPUs) = micro_batch_weighting=global-token-mean; the authors' vendored verl took "
        "the token mean per micro-batch and weighted it by its share of sequences (micro_batch_weighting=authors)"
        + (" - this config asks for `authors`, which only the native trainer (`--engine native`) reproduces"
           if cfg.micro_batch_weighting == "authors" else ""),
        "prompt suffix: the vendored flag data.use_boxed_suffix_prompt does not exist upstream; the bridge writes "
        f"prompt_suffix={cfg.prompt_suffix!r} into each parquet user message instead",
        f"validation length: the vendored val_kwargs.max_new_tokens does not exist upstream; verl {VERL_VERSION} "
        f"validates at max_response_length={cfg.max_response_length} tokens, not val_max_response_length="
        f"{cfg.val_max_response_length}; for the paper's protocol merge a checkpoint and run "
        "`python -m justrl_lite.evaluate` (docs/multi_gpu.md)",
        f"steps: the authors ran total_epochs=1 and stopped by hand; the bridge sets "
        f"trainer.total_training_steps={cfg.total_steps}",
    ]
    if cfg.device != "cuda":
        notes.append(f"device={cfg.device!r} is ignored: verl runs on CUDA GPUs")
    return notes


# ---- data ---------------------------------------------------------------------------------------

def verl_record(row, suffix: str, split: str) -> dict[str, Any]:
    """One ``MathRow`` as a verl parquet row; the prompt already carries ``suffix`` in its last user message."""
    from justrl_lite.prompts import build_messages

    return {
        "data_source": row.data_source,
        "prompt": build_messages(row, suffix),
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": row.ground_truth},
        "extra_info": {"index": row.id, "split": split},
    }


def write_verl_data(cfg: JustRLConfig, data_dir: str | Path) -> tuple[str, str]:
    """Write ``train.parquet`` and ``val.parquet`` from ``cfg.train_data`` / ``cfg.val_data``; return their paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from justrl_lite.data import DataError, load_rows

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, source, split in (("train", cfg.train_data, TRAIN_SPLIT), ("val", cfg.val_data, VALIDATION_SPLIT)):
        try:
            rows = [row for part in source.split(",") if part.strip() for row in load_rows(resolve_path(part.strip()))]
        except DataError as e:
            raise ConfigError(f"{name} data for verl: {e}") from e
        path = data_dir / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist([verl_record(r, cfg.prompt_suffix, split) for r in rows]), path)
        print(f"wrote {len(rows):,} {name} rows to {path}", file=sys.stderr)
        paths.append(str(path))
    return paths[0], paths[1]


# ---- the command line ---------------------------------------------------------------------------

def run(cfg: JustRLConfig, *, nnodes: int, gpus_per_node: int, dry_run: bool) -> int:
    """Write the data and ``<output_dir>/verl_command.sh``; print the command; run it unless ``dry_run``."""
    check_launchable(cfg, nnodes=nnodes, gpus_per_node=gpus_per_node)
    out = Path(cfg.output_dir)
    train_file, val_file = write_verl_data(cfg, out / "verl_data")
    overrides = verl_overrides(cfg, nnodes=nnodes, gpus_per_node=gpus_per_node, train_file=train_file,
                               val_file=val_file)
    argv, env, notes = command_lines(overrides), launch_env(cfg.output_dir), known_differences(cfg)
    script = render_script(argv, env, notes, after_run_commands(cfg.output_dir, cfg.total_steps,
                                                                        cfg.model_name_or_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / "verl_command.sh").write_text(script)
    print(script)
    print(f"wrote {out / 'verl_command.sh'}", file=sys.stderr)
    if dry_run:
        return 0
    import importlib.util
    import os

    if importlib.util.find_spec("verl") is None:
        raise ConfigError(f"verl is not installed in {sys.executable}: on GPU nodes `pip install "
                          f"\"verl[vllm]=={VERL_VERSION}\"` beside this package (docs/multi_gpu.md); on a CPU machine "
                          "`make venv-verl` builds .venv-verl to check commands; --dry-run only writes the command")

    argv[0] = sys.executable
    return stream(argv, {**os.environ, **env}, out / "verl_console.log")


def stream(argv: list[str], env: dict[str, str], log_path: Path) -> int:
    """Run ``argv``, echoing its output line by line and copying it to ``log_path``; return its exit code."""
    print(f"running {' '.join(argv[:3])} ...; console copied to {log_path}", file=sys.stderr)
    with open(log_path, "w") as log, subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:  # stream to the terminal and keep a copy for `python -m justrl_lite.plots`
            sys.stdout.write(line)
            log.write(line)
            log.flush()
    return proc.returncode
