"""Evaluate a model the way JustRL reports it: nine math benchmarks, pass@1 averaged over N samples (avg@N).

    score(benchmark) = 100 * mean over problems p of ( mean over the N samples j of p of correct(p, j) )
    average          = unweighted mean of the benchmark scores (the paper's "Avg" column)

The paper's fixed evaluation choices (``docs/recipe.md``, "How the paper evaluates"; the
authors' ``evals/gen_vllm.py`` and ``evals/grade.py`` in github thunlp/JustRL):
  1. Nine benchmarks, in the results table's column order: AIME24, AIME25, AMC23, MATH-500, Minerva,
     OlympiadBench, HMMT25, BRUMO25, CMIMC25 (``benchmarks.BENCHMARKS``).
  2. N = 32 samples per problem for AIME24, AIME25, AMC23, HMMT25, BRUMO25, CMIMC25; N = 4 for MATH-500,
     Minerva and OlympiadBench.
  3. Sampling: temperature 0.7, top_p 0.9, no top_k, at most 31,744 new tokens (a response that hits the
     cap is graded as it is).
  4. Prompt: ``problem.strip() + " Please reason step by step, and put your final answer within \\boxed{}."``
     (one space; training uses two newlines) as the only user message, through the model's chat template
     with the generation prompt. No system prompt, no few-shot examples. ``--prompt`` (``prompts.EVAL_PROMPTS``)
     names it ``paper``; ``training`` is the suffix the model was trained with. Default ``auto``: a justrl_lite
     checkpoint that recorded its training suffix is prompted with it, so evaluation agrees with training's
     validation; any other model gets the paper's. The choice is printed, with a warning when it is not the
     paper's evaluation prompt.
  5. One seed per sample. The authors draw N random seeds per benchmark; here sample j of every problem
     uses seed ``base_seed + j`` (default ``base_seed`` = 0), so a run is repeatable and every sample is
     known by (example_id, seed): that is what makes an interrupted run resumable.
     Drawing, grading and appending the samples is ``evaluation/sampling.py``.
  6. Rule grading by the authors' rule grader (``grader="paper"``, the default: ``grading/paper_grader.py``): the last
     ``\\boxed`` of the response against the answer (a boxed ground truth is unboxed), MATH normalisation, then
     SymPy with their integer, fraction and tuple rules. ``grader="math-verify"`` is ours (``grading/grade.py``).
  7. A model judge for what the rule grader rejects: ``opencompass/CompassVerifier-3B`` through vLLM, greedy,
     2,048 tokens, the authors' prompt with an empty question, correct iff it answers exactly "A"
     (``evaluation/judge.py``). It is asked when comparing with the paper (``--compare``) and a CUDA GPU with vLLM
     is there, or with ``--judge``; it can only raise a score. Every table row names its grading (rule-only or
     rule + judge).

Where this module departs from the authors' scripts, and why:
  * Seeds are ``base_seed + j`` rather than random (item 5). With the transformers engine one seed drives
    a whole ``generate`` call, so a sample also depends on which prompts share its batch (a resumed run
    draws valid samples, not bit-identical ones); vLLM derives one seed per prompt from the call's seed.
    Either way each problem gets N different seeds, which is all avg@N needs.
  * SymPy runs in killable worker processes with a time limit (``--grade-timeout``): an answer the authors'
    grader would hang on counts as wrong here.
  * Results are appended and flushed after every ``generate`` call, and resumed, instead of being written
    once at the end.

Files in ``out_dir``: ``<benchmark>.jsonl``, one line per sample: ``example_id`` (row number in the
benchmark file, as the authors'), ``prompt`` (the user message), ``answer`` (the ground truth as stored),
``seed``, ``response`` (the authors' five fields), then ``correct``, ``finish_reason`` (``stop`` or
``length``), ``response_length`` (tokens, EOS included), ``row_id``; with the judge also ``rule_correct``
and ``judge_correct`` (``evaluation/files.py``). ``eval_settings.json`` (what a resumed run must match),
``summary.json`` and ``summary.md`` (``evaluation/scores.py``). ``regrade`` (``evaluation/regrade.py``) grades such
files again, or the authors' released ones, without generating, by both rule graders, and counts per benchmark the
samples they disagree on.

Command line (``python -m justrl_lite.evaluate --help``)::

    python -m justrl_lite.evaluate --model hbx/JustRL-DeepSeek-1.5B --benchmarks all \\
        --out runs/eval/justrl-deepseek --engine vllm --compare paper-deepseek
    python -m justrl_lite.evaluate --model data/toy/base --benchmarks AIME24,MATH-500 --limit 5 \\
        --n-samples 2 --max-new-tokens 64 --data-dir ../shared/justrl_data --out runs/eval/toy --device cpu
    python -m justrl_lite.evaluate --regrade justrl_eval_outputs/JustRL-DeepSeek-1.5B --compare paper-deepseek
    python -m justrl_lite.evaluate --model runs/tiny --benchmarks toy=data/toy/test.jsonl --n-samples 4 \
        --temperature 1.0 --top-p 1.0 --max-new-tokens 128 --grader math-verify --out runs/eval/tiny   # a run
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from justrl_lite.benchmarks import COMPARE_CHOICES
from justrl_lite.checkpoint import CheckpointError, read_prompt_file, resolve_policy_folder
from justrl_lite.config_checks import GRADERS
from justrl_lite.data import DataError, MathRow, load_rows
from justrl_lite.errors import JustRLError
from justrl_lite.evaluation.engine import (
    HF_BATCH_SIZE,
    _cuda_available,
    default_engine,
    load_model,
    make_eval_sampler,
)
from justrl_lite.evaluation.files import (
    GENERATED_FIELDS,
    RESULTS_SUFFIX,
    EvaluationError,
    check_settings,
    read_results,
    save_settings,
    write_records,
)
from justrl_lite.evaluation.judge import JUDGE_MODEL, JudgeFn, apply_judge, choose_judge
from justrl_lite.evaluation.regrade import regrade
from justrl_lite.evaluation.sampling import (
    DEFAULT_BASE_SEED,
    EVAL_MAX_NEW_TOKENS,
    EVAL_TEMPERATURE,
    EVAL_TOP_P,
    GRADE_TIMEOUT,
    BenchmarkSource,
    SamplingSettings,
    generate_benchmark,
    resolve_benchmarks,
    sample_seeds,
)
from justrl_lite.evaluation.scores import (
    build_summary,
    check_grading,
    summarize_records,
    summary_markdown,
    write_summary,
)
from justrl_lite.grading.grade import EVAL_GRADER
from justrl_lite.grading.pool import GraderPool
from justrl_lite.hub import model_unreachable_reason
from justrl_lite.prompts import EVAL_PROMPTS, choose_eval_prompt, encode_prompts

logger = logging.getLogger(__name__)

def _load_rows(source: BenchmarkSource, limit: int | None, data_dir: str | None) -> list[MathRow]:
    try:
        return load_rows(source.source, limit=limit, data_dir=data_dir)
    except DataError as e:
        raise EvaluationError(f"benchmark {source.name}: {e}") from e


def _longest_prompt(tokenizer, rows_by_bench: dict[str, list[MathRow]], suffix: str) -> int:
    return max(len(ids) for rows in rows_by_bench.values()
               for ids in encode_prompts(tokenizer, rows, suffix, max_prompt_length=sys.maxsize).prompt_ids)


# ---- the Python API -------------------------------------------------------------------------------------

def evaluate(model, tokenizer=None, benchmarks: str | Sequence[str] = "all",
             out_dir: str | Path | None = None, *, n_samples: int | None = None,
             temperature: float = EVAL_TEMPERATURE, top_p: float = EVAL_TOP_P,
             max_new_tokens: int = EVAL_MAX_NEW_TOKENS, base_seed: int = DEFAULT_BASE_SEED,
             batch_size: int | None = None, limit: int | None = None, data_dir: str | None = None,
             engine: Any = None, device: str | None = None, dtype: str | None = None,
             grade_timeout: float = GRADE_TIMEOUT, grade_pool: GraderPool | None = None,
             grader: str = EVAL_GRADER, judge: str | JudgeFn | None = "auto", compare: str | None = None,
             prompt: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Evaluate ``model`` and return the summary dict (also written to ``out_dir``).

    ``model`` may be a run folder (its newest verified checkpoint) or a ``step_*`` folder. ``prompt`` is
    ``"auto"`` (the training suffix a justrl_lite checkpoint recorded, else the paper's), ``"training"`` or
    ``"paper"`` (``prompts.choose_eval_prompt``); the choice is printed to stderr.

    ``grader`` names the rule grader (``"paper"``, the authors', by default; or ``"math-verify"``); ``judge`` is
    ``"auto"`` (the CompassVerifier judge when ``compare`` is given and a CUDA GPU with vLLM is there), ``"on"``,
    ``"off"``/None, or a ``JudgeFn``.

    ``model`` is a folder / hub id (loaded here), or a loaded model with its ``tokenizer``. ``engine`` is
    ``"hf"``, ``"vllm"`` (default on CUDA; ``"hf"`` on CPU) or a ready ``RolloutEngine`` (then ``tokenizer``
    encodes the prompts). Samples go to
    ``<out_dir>/<benchmark>.jsonl`` as they are drawn; running again resumes. ``batch_size`` defaults to
    ``HF_BATCH_SIZE`` with ``"hf"`` and all prompts otherwise. The protocol is in the module docstring.
    """
    if out_dir is None:
        raise EvaluationError("evaluate(..., out_dir=...): say where the results go")
    if engine is None:
        engine = default_engine(device)
    if batch_size is None and engine == "hf":
        batch_size = HF_BATCH_SIZE
    if isinstance(model, (str, Path)) and Path(model).is_dir():
        try:
            model = resolve_policy_folder(model)  # a run or step_* folder -> its policy/
        except CheckpointError as e:
            raise EvaluationError(str(e)) from e
    recorded = read_prompt_file(model) if isinstance(model, Path) else None
    if prompt not in EVAL_PROMPTS:
        raise EvaluationError(f"--prompt must be one of {EVAL_PROMPTS}, got {prompt!r}")
    suffix, said = choose_eval_prompt(prompt, recorded)
    sampling = SamplingSettings(temperature, top_p, max_new_tokens, base_seed, batch_size, prompt_suffix=suffix)
    sampling.check()
    sources = resolve_benchmarks(benchmarks, n_samples)
    if limit is not None and limit < 1:
        raise EvaluationError(f"--limit must be >= 1, got {limit}")
    check_grading(grader, compare)
    model_path = str(model) if isinstance(model, (str, Path)) else None
    label = model_path or getattr(model, "name_or_path", "") or "in-memory model"
    # every benchmark is read before the model is loaded: a bad one fails in seconds, not after minutes
    rows_by_bench = {s.name: _load_rows(s, limit, data_dir) for s in sources}
    # a hub model with the hub out of reach: one line now, not a minute of retries (hub.py)
    loads_from_hub = (isinstance(model, str) and not Path(model).exists()
                      and (isinstance(engine, str) or tokenizer is None))
    unreachable = model_unreachable_reason(model) if loads_from_hub else None
    if unreachable is not None:
        raise EvaluationError(f"--model {model!r} is not a local folder and the hub cannot serve it "
                              f"({unreachable}): pass a local model folder")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"model": label, **asdict(sampling), "engine": engine if isinstance(engine, str) else "custom",
                "n_samples": {s.name: s.n_samples for s in sources}, "limit": limit, "grader": grader}
    check_settings(out, settings)
    judge = choose_judge(judge, compare)

    if isinstance(engine, str):
        device = device or ("cuda" if _cuda_available() else "cpu")
        dtype = dtype or ("bfloat16" if device == "cuda" else "float32")
        if model_path is not None:
            model, tokenizer = load_model(model_path, device=device, dtype=dtype,
                                          load_weights=engine != "vllm")
        elif tokenizer is None:
            raise EvaluationError("evaluate(model, tokenizer, ...): a loaded model needs its tokenizer")
        longest = _longest_prompt(tokenizer, rows_by_bench, sampling.prompt_suffix) + max_new_tokens
        engine = make_eval_sampler(engine, model, tokenizer, model_path=model_path, max_model_len=longest,
                                   seed=base_seed, dtype=dtype, sequence_tokens=longest, batch_size=batch_size)
    elif tokenizer is None:
        if model_path is None:
            raise EvaluationError("evaluate(model, tokenizer, engine=...): pass the tokenizer of the "
                                  "engine's model")
        _, tokenizer = load_model(model_path, device="cpu", dtype="float32", load_weights=False)
    save_settings(out, settings)  # only now: a model that fails to load leaves nothing to resume against
    print(said, file=sys.stderr)  # which prompt, once the model has loaded

    for s in sources:
        generate_benchmark(engine, tokenizer, rows_by_bench[s.name], sample_seeds(base_seed, s.n_samples),
                           out / f"{s.name}{RESULTS_SUFFIX}", sampling, grade_timeout=grade_timeout,
                           grade_pool=grade_pool, grader=grader, desc=f"{s.name} (@{s.n_samples})",
                           progress=progress)
    if judge is not None and hasattr(engine, "sleep"):
        engine.sleep()  # the policy's vLLM engine gives the GPU to the judge's
    per_benchmark: dict[str, dict[str, Any]] = {}
    for s in sources:
        rows, path = rows_by_bench[s.name], out / f"{s.name}{RESULTS_SUFFIX}"
        seeds = sample_seeds(base_seed, s.n_samples)
        records = read_results(path, required=GENERATED_FIELDS, repair=True)
        if judge is not None and apply_judge(records, judge):
            write_records(path, records)
        # the file may hold more (an earlier run with a larger N or no --limit): summarise this run's samples
        wanted = {(str(i), seed) for i in range(len(rows)) for seed in seeds}
        mine = [r for r in records if (str(r["example_id"]), r["seed"]) in wanted]
        per_benchmark[s.name] = summarize_records(mine)
    summary = build_summary(per_benchmark, model=label, grader=grader, judged=judge is not None,
                            settings=settings, compare=compare)
    write_summary(out, summary)
    return summary


# ---- command line ---------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m justrl_lite.evaluate", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", help="model folder (save_pretrained), a training run's folder or step_* checkpoint, "
                   "or a hub id, e.g. hbx/JustRL-DeepSeek-1.5B")
    p.add_argument("--prompt", choices=EVAL_PROMPTS, default="auto", help="prompt suffix: 'paper' (the paper's "
                   "evaluation prompt), 'training' (the one the checkpoint was trained with); 'auto': training for "
                   "a justrl_lite checkpoint that recorded it, else paper")
    p.add_argument("--benchmarks", default="all", help="'all', or a comma list of benchmark names or local "
                   "files (NAME=PATH names one), e.g. AIME24,MATH-500")
    p.add_argument("--out", help="output folder (a JSONL per benchmark, summary.json, summary.md); an "
                   "existing one is resumed")
    p.add_argument("--regrade", metavar="DIR", help="grade the *.jsonl results in DIR again, without "
                   "generating (also the authors' released outputs); writes to --out, default DIR/regraded")
    p.add_argument("--n-samples", type=int, default=None, help="samples per problem for every benchmark "
                   "(default: the paper's, 32 or 4)")
    p.add_argument("--temperature", type=float, default=EVAL_TEMPERATURE)
    p.add_argument("--top-p", type=float, default=EVAL_TOP_P)
    p.add_argument("--max-new-tokens", type=int, default=EVAL_MAX_NEW_TOKENS)
    p.add_argument("--seed", type=int, default=DEFAULT_BASE_SEED, help="base seed: sample j uses seed + j")
    p.add_argument("--limit", type=int, default=None, help="only the first LIMIT problems of each benchmark")
    p.add_argument("--data-dir", default=None, help="folder of the benchmark parquet files (default: "
                   "$JUSTRL_DATA_DIR, else the hub)")
    p.add_argument("--engine", choices=("hf", "vllm"), default=None,
                   help="default: vllm on CUDA (hf decodes 8 prompts at a time, token by token), hf on CPU")
    p.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda when available")
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None,
                   help="default: bfloat16 on cuda, float32 on cpu")
    p.add_argument("--batch-size", type=int, default=None, help=f"prompts per generate call (default: "
                   f"{HF_BATCH_SIZE} with hf, all with vllm); results are saved after each call")
    p.add_argument("--grade-timeout", type=float, default=GRADE_TIMEOUT, help="seconds per SymPy check")
    p.add_argument("--grade-workers", type=int, default=None, help="grader subprocesses (default: up to 4)")
    p.add_argument("--grader", choices=GRADERS, default=EVAL_GRADER, help="rule grader: the authors' (paper), "
                   "whose decisions the paper's numbers came from, or ours (math-verify)")
    p.add_argument("--judge", action="store_const", const="on", default="auto", help=f"also ask {JUDGE_MODEL} "
                   "(CUDA and vLLM only) about samples the rule grader rejects; it can only raise scores. Default: "
                   "asked when --compare is given and it can run here")
    p.add_argument("--no-judge", dest="judge", action="store_const", const="off", help="never ask the judge")
    p.add_argument("--compare", choices=COMPARE_CHOICES, default=None,
                   help="show the paper's numbers alongside")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.regrade is None and (args.model is None or args.out is None):
            raise EvaluationError("pass --model and --out to evaluate, or --regrade DIR to grade existing "
                                  "results")
        pool = GraderPool(max_workers=args.grade_workers) if args.grade_workers else None
        common = dict(grade_timeout=args.grade_timeout, grade_pool=pool, grader=args.grader, judge=args.judge,
                      compare=args.compare, progress=not args.no_progress)
        if args.regrade is not None:
            summary = regrade(args.regrade, args.out, **common)
        else:
            summary = evaluate(args.model, None, args.benchmarks, args.out, n_samples=args.n_samples,
                               temperature=args.temperature, top_p=args.top_p,
                               max_new_tokens=args.max_new_tokens, base_seed=args.seed,
                               batch_size=args.batch_size, limit=args.limit, data_dir=args.data_dir,
                               engine=args.engine, device=args.device, dtype=args.dtype, prompt=args.prompt,
                               **common)
        print(summary_markdown(summary))
        return 0
    except JustRLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
