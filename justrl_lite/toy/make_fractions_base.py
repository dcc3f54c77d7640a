"""Make the fractions toy's "distilled reasoner": the same recipe as ``make_base``, on the fractions task.

Built exactly as the first toy's base (a real ``Qwen2ForCausalLM`` of ``model.TINY_QWEN2_DEFAULTS``, a byte-level
BPE trained with ``tokenizers`` under DeepSeek-R1-Distill's chat template, SFT by ``make_base.sft``), except:

  1. demonstrations come from ``fractions.demonstration`` with ``FRAC_SFT_NOISE``: paths stepwise / grouped /
     shortcut in proportion 50 / 10 / 40, boxed answers written ``\\frac`` / ``\\dfrac`` / slash / decimal in
     proportion 50 / 10 / 20 / 20, careful lines slipping with probability 0.08 each (right 85% of the time on
     two operations, 78% on three), the shortcut line with probability 0.10 on two operations and 0.40 on three
     (right 90% and 60%), and 10% of solutions wandering past the 128-token cap;
  2. the tokenizer's corpus holds every path and written form, so ``\\frac``, ``\\dfrac``, ``/``, ``.``, ``-`` and
     braces get their own merges; numbers 0..99 stay single tokens (``tokenizer.NUMBER_TOKENS``);
  3. the report scores the base's samples with BOTH verifiers: the strict training reward (``dapo_reward``) and
     the lenient one (``grade_many``, i.e. ``lenient_reward``), their disagreement share, the policy's mean token
     entropy on its own samples, and pass@1 by path (careful / shortcut) and number of operations.

The result (``data/toy_frac/base/make_base_report.json``: 128 held-out problems x 8 samples at temperature 1.0):
strict pass@1 22% (pass@8 80%), lenient pass@1 31% (pass@8 91%), the two verifiers disagree on 9% of samples,
responses of 35 tokens on average (1.6% truncated), mean token entropy 0.14 nats. The careful paths are right far
more often than the shortcut (lenient pass@1 62% / 37% on two / three operations against 13% / 10%), yet 46% of
samples take the shortcut; greedy decoding solves 59% (careful paths 82%): RL has a path, a written form and a
length to choose.

Command (writes ``data/toy_frac/{train,test}.jsonl``, ``data/toy_frac/base/`` and its ``make_base_report.json``;
the committed base took 924 s of SFT with one thread on a 2-core machine shared with other jobs, then about 3
minutes of evaluation)::

    python -m justrl_lite.toy.make_fractions_base --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase, Qwen2ForCausalLM

from justrl_lite.config import TRAIN_PROMPT_SUFFIX
from justrl_lite.grading.grade import grade_many
from justrl_lite.logprobs import entropy_from_logits
from justrl_lite.toy.fractions import (
    DEFAULT_DIR,
    N_TEST,
    N_TRAIN,
    PATHS,
    WRITTEN_FORMS,
    FracNoise,
    Problem,
    demonstration,
    make_splits,
    path_of,
    sample_problems,
    solution,
    write_splits,
)
from justrl_lite.toy.make_base import (
    RESPONSE_CAP,
    SFTArgs,
    base_report,
    encode_example,
    encode_prompt,
    pad_batch,
    sample_responses,
    save_base,
    sft,
)
from justrl_lite.toy.model import build_random_model
from justrl_lite.toy.tokenizer import build_tokenizer
from justrl_lite.verifier import dapo_reward

FRAC_SFT_NOISE = FracNoise(
    path_probs=(0.50, 0.10, 0.40),
    form_probs=(0.50, 0.10, 0.20, 0.20),
    step_error_prob=0.08,
    shortcut_error_prob=0.10,
    shortcut_error_growth=0.30,
    wander_prob=0.10,
    wander_rounds=(3, 5),
)
"""The imperfect teacher the fractions base imitates (see ``fractions.FracNoise``)."""

FRAC_SFT_ARGS = SFTArgs(n_sft_problems=14000, epochs=2, max_response_tokens=112)
"""SFT settings: ``make_base``'s, with two passes over 14,000 problems (fresh noise each pass; one pass of 18,000
learnt the signed arithmetic too poorly: held-out strict pass@1 6%, greedy 28%) and a longer cut."""


def tokenizer_corpus(problems: list[Problem], seed: int) -> list[str]:
    """Texts the BPE is trained on: prompts, and solutions along every path in every written form."""
    rng = random.Random(seed)
    texts = [p.text + TRAIN_PROMPT_SUFFIX for p in problems]
    texts += [solution(p, rng.choice(PATHS), rng.choice(WRITTEN_FORMS)) for p in problems]
    texts += [" ".join(str(i) for i in range(100)), "".join(f"{{{i}}}" for i in range(100))]
    return texts


@torch.no_grad()
def mean_token_entropy(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, problem_texts: list[str],
                       responses: list[str], batch_size: int = 64) -> float:
    """Mean entropy (nats) of the policy's next-token distribution over the response tokens of its own samples.

    H = mean over response tokens t of  -sum_v p(v | x, y_<t) log p(v | x, y_<t)   (temperature 1)

    Responses are re-encoded from their decoded text (byte-level BPE: the same string, nearly always the same
    tokens), capped at ``RESPONSE_CAP`` tokens with eos as in sampling.
    """
    examples = [encode_example(tokenizer, q, r, RESPONSE_CAP) for q, r in zip(problem_texts, responses)]
    total, count = 0.0, 0
    for s in range(0, len(examples), batch_size):
        batch = pad_batch(examples[s : s + batch_size], tokenizer.pad_token_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
        # the distribution at position t predicts token t + 1: score it where token t + 1 is a response token
        entropy = entropy_from_logits(logits[:, :-1])  # (B, T-1)
        mask = batch["labels"][:, 1:] != -100  # (B, T-1)
        total += entropy[mask].sum().item()
        count += mask.sum().item()
    return total / max(count, 1)


def evaluate(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, problems: list[Problem], n: int = 8,
             *, seed: int = 0, temperature: float = 1.0, with_entropy: bool = True) -> dict:
    """Held-out metrics of ``n`` samples per problem under the strict (``dapo_reward``) and the lenient
    (``grade_many``) verifier: pass@1 and pass@n of each, the share of samples the two score differently, mean
    response length (tokens, eos included), truncation rate, mean token entropy and strict / lenient pass@1
    with the share of samples by path (careful / shortcut) and number of operations."""
    prompts = [encode_prompt(tokenizer, p.text) for p in problems]
    texts, lengths, truncated = sample_responses(model, tokenizer, prompts, n, temperature=temperature, seed=seed)
    flat = [p for p in problems for _ in range(n)]
    truths = [p.ground_truth for p in flat]
    strict = [dapo_reward(t, g) > 0 for t, g in zip(texts, truths)]
    lenient = grade_many(texts, truths)

    def pass_at(correct: list[bool]) -> tuple[float, float]:
        groups = [sum(correct[i * n : (i + 1) * n]) for i in range(len(problems))]
        return sum(correct) / len(correct), sum(c > 0 for c in groups) / len(problems)

    by_path: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for p, t, s, le in zip(flat, texts, strict, lenient):
        by_path[f"{path_of(t)}/{len(p.changes)}ops"].append((s, le))
    report = {
        "samples": len(texts),
        "strict_pass@1": pass_at(strict)[0], f"strict_pass@{n}": pass_at(strict)[1],
        "lenient_pass@1": pass_at(lenient)[0], f"lenient_pass@{n}": pass_at(lenient)[1],
        "disagreement": sum(s != le for s, le in zip(strict, lenient)) / len(texts),
        "mean_response_tokens": sum(lengths) / len(lengths),
        "truncated": sum(truncated) / len(truncated),
        "by_path": {k: {"share": len(v) / len(texts), "strict_pass@1": sum(s for s, _ in v) / len(v),
                        "lenient_pass@1": sum(le for _, le in v) / len(v)} for k, v in sorted(by_path.items())},
    }
    if with_entropy:
        report["mean_token_entropy"] = mean_token_entropy(model, tokenizer, [p.text for p in flat], texts)
    return report


def make_base(out_dir: Path = DEFAULT_DIR, args: SFTArgs = FRAC_SFT_ARGS, n_eval: int = 128) -> dict:
    """Write the splits, train tokenizer and base, save them under ``out_dir/base``; returns a report."""
    torch.set_num_threads(args.num_threads)
    write_splits(out_dir, N_TRAIN, N_TEST, seed=0)
    train, test = make_splits(N_TRAIN, N_TEST, seed=0)
    sft_problems = sample_problems(args.n_sft_problems, seed=args.seed + 1,
                                   exclude=[p.signature for p in train + test])
    tokenizer = build_tokenizer(tokenizer_corpus(sft_problems, args.seed))
    model = build_random_model(tokenizer, seed=args.seed, **args.model_overrides)
    t0 = time.time()
    losses = sft(model, tokenizer, sft_problems, args, noise=FRAC_SFT_NOISE, demonstrate=demonstration)
    sft_seconds = time.time() - t0
    evaluation = {
        "eval_command": f"evaluate(test[:{n_eval}], n=8, seed={args.seed}) at temperature 1",
        "heldout_t1": evaluate(model, tokenizer, test[:n_eval], n=8, seed=args.seed),
        "heldout_greedy": evaluate(model, tokenizer, test[:n_eval], n=1, temperature=0.0, with_entropy=False),
    }
    clean_tokens = {path: sum(len(tokenizer(solution(p, path))["input_ids"]) + 1 for p in test) / len(test)
                    for path in PATHS}
    report = base_report(model, tokenizer, test, losses=losses, sft_seconds=sft_seconds,
                         clean_solution_tokens_mean=clean_tokens, sft_args=args, sft_noise=FRAC_SFT_NOISE,
                         evaluation=evaluation)
    save_base(Path(out_dir) / "base", model, tokenizer, report)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the fractions toy base under data/toy_frac/base.")
    parser.add_argument("--out-dir", default=str(DEFAULT_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=FRAC_SFT_ARGS.num_threads, help="torch CPU threads")
    parser.add_argument("--n-sft", type=int, default=FRAC_SFT_ARGS.n_sft_problems, help="SFT problems")
    parser.add_argument("--n-eval", type=int, default=128, help="held-out problems scored (8 samples each)")
    a = parser.parse_args(argv)
    args = SFTArgs(**{**asdict(FRAC_SFT_ARGS), "seed": a.seed, "num_threads": a.threads, "n_sft_problems": a.n_sft})
    report = make_base(Path(a.out_dir), args, n_eval=a.n_eval)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
