"""justrl_lite: a small, readable reproduction of the JustRL recipe (He et al., 2025).

Modules, in the order data flows:
    config     - JustRLConfig and the `paper`, `one_gpu` and `tiny` presets (what they change and why: config_presets;
                 validation: config_checks; file I/O: config_io; tables: config_tables)
    benchmarks - the nine benchmarks and the paper's results table
    data       - DAPO-Math-17k / benchmark loaders; prompts: the paper's training and evaluation prompts
    rollout    - sampling responses with per-token log-probs: transformers (decode), vLLM (vllm_rollout)
    boxed      - the last \\boxed{} of a response
    verifier   - the strict DAPO box reward and the lenient ablation reward
    grading    - the evaluation graders: the authors' rule grader (paper_grader, latex_text) and ours (math-verify),
                 SymPy in killable workers (grader_pool, running grader_worker)
    advantage  - GRPO group z-score advantages
    policy     - loading the policy (float32 master weights, bf16 compute), the optimizer, the device check
    logprobs   - memory-safe chunked token log-probs and entropy, micro-batch planning, the old-log-prob pass
    loss       - the clipped policy loss (clip-higher + dual clip), aggregation
    trainer    - the single-stage training loop, checkpoints and resume; what a step logs (step_metrics);
                 Algorithm 1 generated from it (algorithm)
    export     - `python -m justrl_lite.export`: a checkpoint -> a Hugging Face folder in a chosen dtype
    threads    - the CPU thread count of a run
    estimate   - per-GPU memory and time of a config (`full_run --dry-run`)
    full_run   - `python -m justrl_lite.full_run`: the command line over JustRLConfig
    evaluate   - `python -m justrl_lite.evaluate`: nine benchmarks, avg@k, resumable; the samples (eval_sampling),
                 engines (eval_engine), results files (eval_files),
                 the CompassVerifier judge (judge), summaries (scores), regrading by both graders (regrade)
    plots      - training-dynamics figures from logged metrics (native runs and verl runs)
    course_plots - the notebooks' teaching figures: clipping token by token, advantage over (n, k), entropy vs T,
                 micro-batch packing
    verl_engine  - `full_run --engine verl`: the same config rendered as a verl 0.9.1 launch (multi-GPU, multi-node)
    verl_reward  - the JustRL reward as a verl custom reward function (no torch/transformers imports)
    verl_metrics - verl's logged metrics read under the native metric names
    ablations  - the paper's two ablations at toy scale; ablation_report: their summary and verdict
    overlong_zone - the response cap and overlong buffer chosen from the base's measured lengths
    experiment - notebook 06's hands-on run: one knob of the recipe changed, 30 tiny steps
    exercises  - notebook exercises as stubs, solutions injected by JUSTRL_SOLUTIONS=1
    colab      - every notebook's first (set-up) cell and the README's Colab badges, from one URL
    notebook_data - benchmark rows for the notebooks: the authors' files, else the hub, else data/specimens
    toy        - the toy tasks (arithmetic; fractions) and the tiny Qwen2 bases for CPU runs
"""

from justrl_lite.config import JustRLConfig

__all__ = ["JustRLConfig"]
__version__ = "0.1.0"
