"""Make the toy "distilled reasoner": supervised fine-tuning of a tiny Qwen2 on imperfect demonstrations.

DeepSeek-R1-Distill-Qwen-1.5B, the paper's base, is a small model fine-tuned on a bigger model's reasoning
traces: it knows how to solve many problems but samples mistakes and long detours (about 30% on AIME24,
responses of ~8k tokens). This module builds the same situation in miniature:

  1. demonstrations come from ``task.demonstration`` with ``SFT_NOISE``: each step slips (off by 1 or 2, carried
     on) with probability 0.15, 20% of steps get a redundant ``Check:`` line, and 15% of solutions wander
     ("Wait, let me check again.") for rounds that run past the 128-token response cap;
  2. each epoch draws *fresh* noise for every problem, so the model learns the noise as a distribution
     (right most of the time) rather than memorising particular wrong answers;
  3. the SFT problems are drawn apart from both RL splits (no signature shared with train or test), as the
     distillation data of the paper's base was not DAPO-Math-17k;
  4. the loss is the next-token cross-entropy on response tokens only (prompt tokens are masked), with the
     response ending in the eos token, exactly the text RL will later sample. It is the per-batch token mean
     over length-bucketed batches, so a token of a long (wandering) demonstration weighs less than one of a
     short demonstration: the base wanders about half as often as its teacher (8% of responses truncated,
     not 15%), the same aggregation effect as in the paper's "token-mean" discussion.

The result knows the skill (greedy decoding solves nearly every held-out problem) but at temperature 1.0 it
slips and sometimes wanders: pass@1 of about 37%, pass@8 of about 96%, so almost every GRPO group of 8 holds
both right and wrong answers, the signal JustRL learns from.

Command (writes ``data/toy/{train,test}.jsonl``, ``data/toy/base/`` and ``data/toy/base/make_base_report.json``;
about 3 minutes of SFT on 2 idle CPU cores, then 1-2 minutes of evaluation)::

    python -m justrl_lite.toy.make_base
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase, Qwen2ForCausalLM

from justrl_lite.config import TRAIN_PROMPT_SUFFIX
from justrl_lite.toy.model import build_random_model, count_parameters
from justrl_lite.toy.task import (
    DEFAULT_DIR,
    N_TEST,
    N_TRAIN,
    DemoNoise,
    Problem,
    demonstration,
    make_splits,
    sample_problems,
    solution,
    write_splits,
)
from justrl_lite.toy.tokenizer import build_tokenizer
from justrl_lite.verifier import dapo_reward

SFT_NOISE = DemoNoise(step_error_prob=0.15, check_prob=0.2, wander_prob=0.15, wander_rounds=(4, 5))
"""The imperfect teacher the base imitates (see ``task.DemoNoise``): slips, redundant checks, wandering."""

RESPONSE_CAP = 128
"""Response-token cap of evaluation (the tiny preset's ``max_response_length``): wandering runs past it."""


@dataclass
class SFTArgs:
    """Supervised fine-tuning settings of the toy base."""

    n_sft_problems: int = 20000
    """Distinct SFT problems (none shared with train or test); each epoch re-draws their demonstration noise."""

    epochs: int = 1
    """Passes over the SFT problems."""

    batch_size: int = 16
    """Sequences per optimizer step."""

    lr: float = 3e-3
    """Peak AdamW learning rate (linear warm-up, then cosine decay to 10%)."""

    warmup_steps: int = 50
    """Optimizer steps of linear warm-up."""

    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""

    max_response_tokens: int = 96
    """Demonstrations are cut after this many tokens: wandering ones run past the RL cap anyway."""

    model_overrides: dict = field(default_factory=dict)
    """Changes to the toy Qwen2 architecture (``model.TINY_QWEN2_DEFAULTS``)."""

    seed: int = 0
    """Seed of the SFT problems, the noise, the initialisation and the batch order."""

    num_threads: int = 2
    """CPU threads torch may use."""


# ---- encoding -----------------------------------------------------------------------------------

def prompt_text(tokenizer: PreTrainedTokenizerBase, problem_text: str) -> str:
    """The RL prompt: problem + the paper's suffix, through the chat template with the generation prompt."""
    messages = [{"role": "user", "content": problem_text + TRAIN_PROMPT_SUFFIX}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, problem_text: str) -> list[int]:
    return tokenizer(prompt_text(tokenizer, problem_text), add_special_tokens=False)["input_ids"]


def encode_example(tokenizer: PreTrainedTokenizerBase, problem_text: str, response: str,
                   max_response_tokens: int | None = None) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one SFT example: prompt tokens are masked with -100, the response ends in eos.

    ``max_response_tokens`` cuts longer responses (a wandering one past the RL cap need not be learnt to its end).
    """
    prompt_ids = encode_prompt(tokenizer, problem_text)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    response_ids = response_ids[:max_response_tokens]
    return prompt_ids + response_ids, [-100] * len(prompt_ids) + response_ids


def tokenizer_corpus(problems: list[Problem], seed: int) -> list[str]:
    """Texts the BPE is trained on: prompts, noisy demonstrations, and every number 0..99 with and without a space
    (so each number that can occur is one token)."""
    rng = random.Random(seed)
    noisy = DemoNoise(step_error_prob=0.5, check_prob=0.5, wander_prob=0.5, wander_rounds=(1, 1))
    texts = [p.text + TRAIN_PROMPT_SUFFIX for p in problems]
    texts += [demonstration(p, rng, noisy)[0] for p in problems]
    texts += [" ".join(str(i) for i in range(100)), "".join(f"{{{i}}}" for i in range(100))]
    return texts


def pad_batch(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad (input_ids, labels) pairs into tensors; padding is masked out of attention and loss."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)  # (B, T)
    for i, (ids, lab) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention_mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def length_bucketed_batches(examples: list, batch_size: int, rng: random.Random) -> list[list]:
    """Shuffle, sort by length inside windows of 16 batches (less padding), then shuffle the batches."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = 16 * batch_size
    batches = []
    for s in range(0, len(order), window):
        chunk = sorted(order[s : s + window], key=lambda i: len(examples[i][0]))
        batches += [[examples[i] for i in chunk[b : b + batch_size]] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


# ---- supervised fine-tuning ---------------------------------------------------------------------

def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak``, then cosine decay to 10% of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def sft(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, problems: list[Problem],
        args: SFTArgs, noise: DemoNoise = SFT_NOISE, demonstrate: Callable = demonstration) -> list[float]:
    """Fine-tune ``model`` in place on noisy demonstrations of ``problems``; returns the loss per step.

    ``demonstrate(problem, rng, noise)[0]`` writes one demonstration (another task passes its own).
    """
    rng = random.Random(args.seed)
    steps_per_epoch = math.ceil(len(problems) / args.batch_size)
    total = args.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98),
                                  weight_decay=args.weight_decay)
    model.train()
    losses, step = [], 0
    bar = tqdm(total=total, desc="SFT", unit="step")
    for _ in range(args.epochs):
        # fresh noise every epoch: the model sees a distribution of demonstrations per problem
        examples = [encode_example(tokenizer, p.text, demonstrate(p, rng, noise)[0], args.max_response_tokens)
                    for p in problems]
        for batch in length_bucketed_batches(examples, args.batch_size, rng):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, args.lr, args.warmup_steps)
            loss = model(**pad_batch(batch, tokenizer.pad_token_id)).loss  # mean over response tokens
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    bar.close()
    model.eval()
    return losses


# ---- evaluation ---------------------------------------------------------------------------------

@torch.no_grad()
def sample_responses(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, prompts: list[list[int]], n: int,
                     *, max_new_tokens: int = RESPONSE_CAP, temperature: float = 1.0, top_p: float = 1.0,
                     seed: int = 0, batch_size: int = 128) -> tuple[list[str], list[int], list[bool]]:
    """``n`` responses per prompt (prompt-major): decoded texts, token lengths (eos included), truncated flags.

    ``temperature=0`` decodes greedily. The caller's random state is left untouched.
    """
    flat = [ids for ids in prompts for _ in range(n)]
    texts, lengths, truncated = [], [], []
    sampling = (dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if temperature > 0
                else dict(do_sample=False))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for s in tqdm(range(0, len(flat), batch_size), desc="sample", unit="batch", leave=False):
            chunk = flat[s : s + batch_size]
            width = max(len(ids) for ids in chunk)
            pad = [width - len(ids) for ids in chunk]
            input_ids = torch.tensor([[tokenizer.pad_token_id] * k + ids for k, ids in zip(pad, chunk)])  # (b, P)
            attention_mask = (torch.arange(width)[None, :] >= torch.tensor(pad)[:, None]).long()  # (b, P)
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                 **sampling)
            for row in out[:, width:].tolist():  # (b, R)
                stopped = tokenizer.eos_token_id in row
                n_tokens = row.index(tokenizer.eos_token_id) + 1 if stopped else len(row)
                lengths.append(n_tokens)
                truncated.append(not stopped)
                texts.append(tokenizer.decode(row[:n_tokens], skip_special_tokens=True))
    return texts, lengths, truncated


def evaluate(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, problems: list[Problem], n: int = 8,
             *, seed: int = 0, temperature: float = 1.0, top_p: float = 1.0,
             max_new_tokens: int = RESPONSE_CAP) -> dict[str, float]:
    """Held-out metrics of ``n`` samples per problem under ``dapo_reward``: pass@1 (mean over samples), pass@n,
    the share of groups holding both right and wrong answers (GRPO's signal), mean response length (tokens,
    eos included), truncation rate, and sampling speed (sequences per second, batches of 128)."""
    prompts = [encode_prompt(tokenizer, p.text) for p in problems]
    start = time.perf_counter()
    texts, lengths, truncated = sample_responses(model, tokenizer, prompts, n, max_new_tokens=max_new_tokens,
                                                 temperature=temperature, top_p=top_p, seed=seed)
    seconds = time.perf_counter() - start
    answers = [str(p.answer) for p in problems for _ in range(n)]
    correct = [dapo_reward(t, a) > 0 for t, a in zip(texts, answers)]
    per_problem = [sum(correct[i * n : (i + 1) * n]) for i in range(len(problems))]
    return {
        "pass@1": sum(correct) / len(correct),
        f"pass@{n}": sum(c > 0 for c in per_problem) / len(problems),
        "mixed_groups": sum(0 < c < n for c in per_problem) / len(problems),
        "mean_response_tokens": sum(lengths) / len(lengths),
        "truncated": sum(truncated) / len(truncated),
        "sequences_per_second": len(texts) / seconds,
    }


# ---- the command --------------------------------------------------------------------------------

def make_base(out_dir: Path = DEFAULT_DIR, args: SFTArgs | None = None, n_eval: int = N_TEST) -> dict:
    """Write the splits, train tokenizer and base, save them under ``out_dir/base``; returns a report."""
    args = SFTArgs() if args is None else args
    torch.set_num_threads(args.num_threads)
    write_splits(out_dir, N_TRAIN, N_TEST, seed=0)
    train, test = make_splits(N_TRAIN, N_TEST, seed=0)
    sft_problems = sample_problems(args.n_sft_problems, seed=args.seed + 1,
                                   exclude=[p.signature for p in train + test])
    tokenizer = build_tokenizer(tokenizer_corpus(sft_problems, args.seed))
    model = build_random_model(tokenizer, seed=args.seed, **args.model_overrides)
    t0 = time.time()
    losses = sft(model, tokenizer, sft_problems, args)
    sft_seconds = time.time() - t0
    evaluation = {"heldout_t1": evaluate(model, tokenizer, test[:n_eval], n=8, seed=args.seed),
                  "heldout_greedy": evaluate(model, tokenizer, test[:n_eval], n=1, temperature=0.0)}
    clean_tokens = sum(len(tokenizer(solution(p))["input_ids"]) + 1 for p in test) / len(test)
    report = base_report(model, tokenizer, test, losses=losses, sft_seconds=sft_seconds,
                         clean_solution_tokens_mean=clean_tokens, sft_args=args, sft_noise=SFT_NOISE,
                         evaluation=evaluation)
    save_base(Path(out_dir) / "base", model, tokenizer, report)
    return report


def base_report(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase, test: list, *, losses: list[float],
                sft_seconds: float, clean_solution_tokens_mean: Any, sft_args: Any, sft_noise: Any,
                evaluation: dict[str, Any]) -> dict[str, Any]:
    """A toy base's ``make_base_report.json`` (both toy tasks): size, SFT, prompt and solution lengths, then the
    held-out ``evaluation``. ``sft_args`` and ``sft_noise`` are dataclasses; ``test`` the held-out problems."""
    return {
        "parameters": count_parameters(model),
        "vocab_size": len(tokenizer),
        "sft_seconds": round(sft_seconds, 1),
        "final_loss": sum(losses[-50:]) / len(losses[-50:]),
        "prompt_tokens_mean": sum(len(encode_prompt(tokenizer, p.text)) for p in test) / len(test),
        "clean_solution_tokens_mean": clean_solution_tokens_mean,
        "sft_args": asdict(sft_args),
        "sft_noise": asdict(sft_noise),
        **evaluation,
    }


def save_base(base_dir: Path, model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerBase,
              report: dict[str, Any]) -> None:
    """The base model, its tokenizer and its report (``make_base_report.json``) in ``base_dir``."""
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    (Path(base_dir) / "make_base_report.json").write_text(json.dumps(report, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the toy distilled-reasoner base under data/toy/base.")
    parser.add_argument("--out-dir", default=str(DEFAULT_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=SFTArgs.epochs)
    parser.add_argument("--threads", type=int, default=SFTArgs.num_threads,
                        help="torch CPU threads (1 is faster on a busy machine; the committed base used 2)")
    parser.add_argument("--n-eval", type=int, default=N_TEST, help="held-out problems scored at the end")
    a = parser.parse_args(argv)
    args = SFTArgs(seed=a.seed, epochs=a.epochs, num_threads=a.threads)
    report = make_base(Path(a.out_dir), args, n_eval=a.n_eval)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
