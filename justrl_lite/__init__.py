"""justrl_lite: a small, readable reproduction of the JustRL recipe (He et al., 2025).

The recipe, flat, in the order data flows:
    config        - JustRLConfig and the `paper`, `one_gpu` and `tiny` presets; what the presets change and why
                    (config_presets), validation (config_checks), files and overrides (config_io), tables
                    (config_tables)
    data, prompts - DAPO-Math-17k / benchmark rows; the paper's training and evaluation prompts
    hub           - fail fast when the Hugging Face hub cannot be reached
    benchmarks    - the nine benchmarks and the paper's results table
    rollout       - sampling n responses per prompt with per-token log-probs: the sampler interface; transformers
                    (decode), vLLM (vllm_rollout); samplers: the one factory for training and evaluation
    boxed, verifier, reward - the last \\boxed{}; the strict DAPO box reward; the overlong penalty (off in JustRL)
    advantage     - GRPO group z-score advantages
    policy        - loading the policy (float32 master weights, bf16 compute), the optimizer, the device check and
                    the CPU thread count
    logprobs      - memory-safe chunked token log-probs and entropy, micro-batch planning, the log-prob passes
    loss          - the clipped policy loss (clip-higher + dual clip), aggregation
    trainer       - the single-stage training loop; what a step logs (step_metrics, metrics); verified
                    checkpoints and resume (checkpoint)
    errors        - JustRLError, the base of every error a user can cause
    full_run      - `python -m justrl_lite.full_run`: the command line over JustRLConfig
    evaluate      - `python -m justrl_lite.evaluate`: nine benchmarks, avg@k, resumable
    plots         - training-dynamics figures from logged metrics (native runs and verl runs)
    ablations     - the paper's two ablations at toy scale; ablation_report: their summary and verdict

Sub-packages by theme (import each name from its module, e.g. ``justrl_lite.grading.grade``):
    grading/      - evaluation graders: grading/grade (grade, grade_many), grading/paper_grader and
                    grading/latex_text (the authors' rules), grading/pool and grading/worker (SymPy in killable
                    processes)
    evaluation/   - evaluation/engine, evaluation/sampling, evaluation/files, evaluation/judge (CompassVerifier),
                    evaluation/scores, evaluation/regrade
    scale/        - scale/estimate and scale/estimate_report (`full_run --dry-run`), scale/device_fit (the
                    estimate against the GPU's real memory, before any load), scale/export (checkpoint -> HF folder),
                    scale/verl_launch (`full_run --engine verl`), scale/verl_reward, scale/verl_metrics
    course/       - course/exercises and course/exercise_checks (the core exercises' checks), course/colab
                    (set-up cells), course/notebook_data, course/plots (teaching figures), course/algorithm
                    (Algorithm 1 from trainer.py), course/experiment (notebook 06's hands-on run)
    toy/          - the toy tasks (arithmetic; fractions), the tiny Qwen2 bases for CPU runs, and
                    toy/overlong_zone (the fractions sweep's cap and buffer from the base's lengths)
"""

from justrl_lite.config import JustRLConfig

__all__ = ["JustRLConfig"]
__version__ = "0.1.0"
