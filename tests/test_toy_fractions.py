"""The fractions toy: written forms, solution paths, splits, the strict/lenient disagreement and the committed base."""

from __future__ import annotations

import random
import re
from collections import Counter
from fractions import Fraction

import pytest
import torch
from helpers import needs_file, read_jsonl

from justrl_lite.config import PROJECT_ROOT, TRAIN_PROMPT_SUFFIX, JustRLConfig
from justrl_lite.grading.grade import grade_many
from justrl_lite.toy.fractions import (
    DATA_SOURCE,
    DENOMINATORS,
    FRACTIONS_OVERRIDES,
    PATHS,
    TERM_CHOICES,
    WRITTEN_FORMS,
    FracNoise,
    demonstration,
    make_splits,
    path_of,
    sample_problems,
    solution,
    to_row,
    write_answer,
    write_splits,
)
from justrl_lite.toy.make_fractions_base import FRAC_SFT_NOISE, mean_token_entropy, tokenizer_corpus
from justrl_lite.verifier import dapo_reward

FRAC_DIR = PROJECT_ROOT / "data" / "toy_frac"
BASE_DIR = FRAC_DIR / "base"
needs_data = needs_file(FRAC_DIR / "test.jsonl", "fractions data", "python -m justrl_lite.toy.make_fractions_base")
needs_base = needs_file(BASE_DIR / "config.json", "fractions base", "python -m justrl_lite.toy.make_fractions_base")


def parse_written(text: str) -> Fraction:
    """An independent reader of every written form: integer, decimal, a/b, \\frac{a}{b}, \\dfrac{a}{b}, signed."""
    m = re.fullmatch(r"(-?)\\d?frac\{(\d+)\}\{(\d+)\}", text)
    if m:
        return Fraction(int(m[2]), int(m[3])) * (-1 if m[1] else 1)
    m = re.fullmatch(r"(-?\d+)/(\d+)", text)
    if m:
        return Fraction(int(m[1]), int(m[2]))
    assert re.fullmatch(r"-?\d+(\.\d+)?", text), text
    return Fraction(text)  # Fraction reads decimal strings exactly


def boxed(text: str) -> str:
    return re.search(r"\\boxed\{(.*)\}\.$", text)[1]


def random_values(n: int, seed: int) -> list[Fraction]:
    rng = random.Random(seed)
    return [Fraction(rng.randint(-30, 30), rng.choice(DENOMINATORS)) for _ in range(n)]


# ---- the task -----------------------------------------------------------------------------------

def test_task_is_deterministic_by_seed():
    assert make_splits(300, 50, seed=3) == make_splits(300, 50, seed=3)
    assert make_splits(300, 50, seed=3) != make_splits(300, 50, seed=4)
    p = sample_problems(1, seed=0)[0]
    assert demonstration(p, random.Random(7), FRAC_SFT_NOISE) == demonstration(p, random.Random(7), FRAC_SFT_NOISE)


def test_splits_share_no_problem():
    train, test = make_splits(2000, 300, seed=0)
    assert len(train) == 2000 and len(test) == 300
    assert not {p.signature for p in train} & {p.signature for p in test}
    assert not {p.text for p in train} & {p.text for p in test}
    excluded = sample_problems(500, seed=9, exclude=[p.signature for p in train + test])
    assert not {p.signature for p in excluded} & {p.signature for p in train + test}


def test_problems_mix_difficulties_signs_and_integers():
    problems = sample_problems(1000, seed=11)
    assert {len(p.changes) + 1 for p in problems} == set(TERM_CHOICES)
    for p in problems:
        numbers = [p.start] + [abs(c) for c in p.changes]
        assert len(set(numbers)) == len(numbers) and p.denominator in DENOMINATORS
        assert p.text.count(f"/{p.denominator}") == len(numbers)
        assert p.answer == sum(Fraction(n, p.denominator) for n in [p.start, *p.changes])
    answers = [p.answer for p in problems]
    assert 0.1 < sum(a < 0 for a in answers) / len(answers) < 0.5  # negative answers occur
    assert 0.1 < sum(a.denominator == 1 for a in answers) / len(answers) < 0.5  # so do integers
    assert sum(a.denominator > 1 for a in answers) / len(answers) > 0.5  # mostly fractions


def test_every_written_form_reads_as_the_value_and_only_the_canonical_one_is_the_ground_truth():
    for value in random_values(300, seed=1):
        forms = {form: write_answer(value, form) for form in WRITTEN_FORMS}
        assert all(parse_written(text) == value for text in forms.values()), forms
        if value.denominator == 1:
            assert set(forms.values()) == {str(value.numerator)}
        else:
            assert len(set(forms.values())) == len(WRITTEN_FORMS), forms  # four different strings
    assert write_answer(Fraction(3, 4), "latex") == "\\frac{3}{4}"
    assert write_answer(Fraction(-1, 2), "latex") == "-\\frac{1}{2}"
    assert [write_answer(Fraction(-3, 8), f) for f in WRITTEN_FORMS] == [
        "-\\frac{3}{8}", "-\\dfrac{3}{8}", "-3/8", "-0.375"]
    with pytest.raises(ValueError, match="written form"):
        write_answer(Fraction(1, 2), "roman")


def test_the_real_verifiers_disagree_exactly_on_the_non_canonical_forms():
    values = [v for v in random_values(60, seed=2) if v.denominator > 1]
    truths, responses, forms = [], [], []
    for value in values:
        for form in WRITTEN_FORMS:
            truths.append(write_answer(value, "latex"))
            responses.append(f"x\n</think>\n\nThe answer is \\boxed{{{write_answer(value, form)}}}.")
            forms.append(form)
    lenient = grade_many(responses, truths)
    strict = [dapo_reward(r, t) > 0 for r, t in zip(responses, truths)]
    assert all(lenient), [r for r, ok in zip(responses, lenient) if not ok]  # every form is right for the grader
    assert strict == [f == "latex" for f in forms]  # only the canonical string is right for the training reward
    wrong = [f"x </think> \\boxed{{{write_answer(v + Fraction(1, 10), f)}}}." for v in values for f in WRITTEN_FORMS]
    assert not any(grade_many(wrong, [write_answer(v, "latex") for v in values for _ in WRITTEN_FORMS]))


def test_every_path_does_correct_arithmetic_and_ends_at_the_answer():
    for p in sample_problems(200, seed=4):
        texts = {path: solution(p, path) for path in PATHS}
        for text in texts.values():
            assert parse_written(boxed(text)) == p.answer and dapo_reward(text, p.ground_truth) == 1.0
            work = text.split("</think>")[0].splitlines()
            assert work[0] == f"All over {p.denominator}."
            for line in work[1:]:  # every line is true arithmetic, re-evaluated here
                left, right = line.rstrip(".").split(" = ")
                if "/" in left:  # the reducing line: n/d = a/b or an integer
                    assert Fraction(left) == parse_written(right)
                else:
                    assert eval(left) == int(right)  # noqa: S307 (our own generated integers)
        ops = len(p.changes)
        lines = {path: texts[path].split("</think>")[0].count("\n") for path in PATHS}
        assert lines["stepwise"] == lines["grouped"] == lines["shortcut"] + ops - 1  # different lengths
        assert path_of(texts["shortcut"]) == "shortcut"
        assert path_of(texts["stepwise"]) == path_of(texts["grouped"]) == "careful"
        grouped_signs = [line.split()[1] for line in texts["grouped"].splitlines()[1 : ops + 1]]
        assert grouped_signs == sorted(grouped_signs)  # additions ("+") before subtractions ("-"): another order


def test_the_careful_path_is_more_reliable_on_harder_problems():
    problems = sample_problems(3000, seed=6)
    rng = random.Random(0)
    tally = Counter()
    for p in problems:
        for path in ("stepwise", "shortcut"):
            noise = FracNoise(path_probs=tuple(float(q == path) for q in PATHS),
                              step_error_prob=FRAC_SFT_NOISE.step_error_prob,
                              shortcut_error_prob=FRAC_SFT_NOISE.shortcut_error_prob,
                              shortcut_error_growth=FRAC_SFT_NOISE.shortcut_error_growth)
            demo = demonstration(p, rng, noise)
            assert demo.path == path and demo.correct == (parse_written(boxed(demo.text)) == p.answer)
            tally[path, len(p.changes)] += demo.correct
            tally["n", len(p.changes)] += path == "stepwise"
    rate = {k: v / tally["n", k[1]] for k, v in tally.items() if k[0] != "n"}
    easy, hard = min(TERM_CHOICES) - 1, max(TERM_CHOICES) - 1  # operations
    assert rate["shortcut", easy] > rate["stepwise", easy]  # on easy problems the shortcut is fine ...
    assert rate["stepwise", hard] > rate["shortcut", hard] + 0.1  # ... on hard ones the longer careful path wins
    assert rate["stepwise", easy] > rate["stepwise", hard]  # harder problems are harder


def test_strict_and_lenient_disagree_on_a_measurable_share_of_noisy_demonstrations():
    problems = sample_problems(300, seed=8)
    rng = random.Random(0)
    demos = [demonstration(p, rng, FRAC_SFT_NOISE) for p in problems]
    truths = [p.ground_truth for p in problems]
    strict = [dapo_reward(d.text, t) > 0 for d, t in zip(demos, truths)]
    lenient = grade_many([d.text for d in demos], truths)
    assert lenient == [d.correct for d in demos]
    assert strict == [d.correct and boxed(d.text) == t for d, t in zip(demos, truths)]
    share = sum(s != le for s, le in zip(strict, lenient)) / len(demos)
    assert 0.15 < share < 0.5, share
    assert {d.path for d in demos} == set(PATHS) and {d.form for d in demos} == set(WRITTEN_FORMS)
    assert any(d.text.count("Wait, let me check again.") >= 3 for d in demos)


def test_written_files_match_the_generator(tmp_path):
    train_path, test_path = write_splits(tmp_path, n_train=40, n_test=10, seed=2)
    train, test = make_splits(40, 10, seed=2)
    assert read_jsonl(train_path) == [to_row(p, i, "train") for i, p in enumerate(train)]
    assert read_jsonl(test_path) == [to_row(p, i, "test") for i, p in enumerate(test)]


# ---- tokenizer and entropy ----------------------------------------------------------------------

def test_tokenizer_covers_every_form_and_round_trips(tmp_path):
    from justrl_lite.toy.tokenizer import build_tokenizer

    tok = build_tokenizer(tokenizer_corpus(sample_problems(200, seed=3), seed=0))
    rng = random.Random(2)
    texts = [demonstration(p, rng, FRAC_SFT_NOISE).text for p in sample_problems(100, seed=12)]
    texts += [p.text + TRAIN_PROMPT_SUFFIX for p in sample_problems(20, seed=13)]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids, skip_special_tokens=True) == text
    for piece in ("frac", "dfrac", "boxed", "}{", "/", ".", "-"):  # Qwen2's pre-tokenizer splits "\\" off words
        assert len(tok(piece, add_special_tokens=False)["input_ids"]) == 1, piece
    assert len(tok("-\\frac{13}{8}", add_special_tokens=False)["input_ids"]) == 8  # - \\ frac { 13 }{ 8 }


def test_mean_token_entropy_matches_a_direct_computation(tiny_model_and_tokenizer):
    model, tok = tiny_model_and_tokenizer
    questions, responses = ["What is 1/2 + 3/2?", "What is 5/4 - 7/4?"], ["1 + 3 = 4.", "5 - 7 = -2.\n</think>"]
    got = mean_token_entropy(model, tok, questions, responses)
    from justrl_lite.toy.make_base import encode_example

    values = []
    for q, r in zip(questions, responses):
        ids, labels = encode_example(tok, q, r)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)  # (T, V)
        for t in range(1, len(ids)):
            if labels[t] != -100:  # H = -sum p log p of the distribution that predicts token t
                values.append(-(logp[t - 1].exp() * logp[t - 1]).sum().item())
    assert got == pytest.approx(sum(values) / len(values), rel=1e-5)


def test_make_base_sft_learns_from_the_fractions_demonstrations():
    """``make_base.sft`` with this task's ``demonstrate``: the fine-tuned text is the fractions demonstrations."""
    from justrl_lite.toy.make_base import SFTArgs, sft
    from justrl_lite.toy.model import build_random_model
    from justrl_lite.toy.tokenizer import build_tokenizer

    problems = sample_problems(96, seed=14)
    tok = build_tokenizer(tokenizer_corpus(problems, seed=0))
    model = build_random_model(tok, seed=0)
    seen = []

    def demonstrate(problem, rng, noise):
        seen.append(problem)
        return demonstration(problem, rng, noise)

    losses = sft(model, tok, problems, SFTArgs(epochs=2, warmup_steps=2), noise=FRAC_SFT_NOISE,
                 demonstrate=demonstrate)
    assert len(losses) == 12 and sum(losses[-3:]) < 0.8 * sum(losses[:3])
    assert seen == problems + problems  # fresh demonstrations of every problem in each of the two passes


# ---- committed data, base and the training config -----------------------------------------------

@needs_data
def test_committed_files_are_what_the_generator_writes_and_follow_the_dapo_schema():
    train, test = make_splits()
    for split, problems in (("train", train), ("test", test)):
        rows = read_jsonl(FRAC_DIR / f"{split}.jsonl")
        assert rows == [to_row(p, i, split) for i, p in enumerate(problems)]
        for row, p in zip(rows, problems):
            assert row["data_source"] == DATA_SOURCE and row["reward_model"]["ground_truth"] == p.ground_truth
            assert dapo_reward(row["extra_info"]["solution"], p.ground_truth) == 1.0


@needs_data
def test_the_tiny_preset_trains_on_the_fractions_task_with_overrides():
    from justrl_lite.data import load_rows

    cfg = JustRLConfig.tiny().with_overrides(list(FRACTIONS_OVERRIDES))
    assert cfg.max_response_length == JustRLConfig.tiny().max_response_length
    rows = load_rows(str(PROJECT_ROOT / cfg.val_data))
    _, test = make_splits()
    assert [r.answer for r in rows] == [p.ground_truth for p in test]
    assert (PROJECT_ROOT / cfg.model_name_or_path / "config.json").exists() == (BASE_DIR / "config.json").exists()


@needs_base
@needs_data
def test_committed_base_is_a_modest_reasoner_whose_verifiers_disagree():
    """pass@1 at temperature 1.0 between 20% and 50% under the training reward, and a measurable share of samples
    that the lenient verifier accepts and the strict one refuses."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from justrl_lite.toy.make_fractions_base import evaluate

    model = AutoModelForCausalLM.from_pretrained(BASE_DIR).eval()
    tokenizer = AutoTokenizer.from_pretrained(BASE_DIR)
    assert sum(f.stat().st_size for f in BASE_DIR.rglob("*") if f.is_file()) <= 20 * 1024 * 1024
    _, test = make_splits()
    m = evaluate(model, tokenizer, test[:32], n=8, seed=0, with_entropy=False)  # 256 samples
    assert 0.20 <= m["strict_pass@1"] <= 0.50, m
    assert m["lenient_pass@1"] >= m["strict_pass@1"] + 0.05, m  # right values in non-canonical forms
    assert m["disagreement"] >= 0.05, m
    assert m["strict_pass@8"] >= 0.6, m  # most groups of 8 hold a reward: signal for GRPO
    assert {k.split("/")[0] for k in m["by_path"]} == {"careful", "shortcut"}, m  # it samples both paths
    hard = f"{max(TERM_CHOICES) - 1}ops"
    assert m["by_path"][f"careful/{hard}"]["lenient_pass@1"] > m["by_path"][f"shortcut/{hard}"]["lenient_pass@1"], m
