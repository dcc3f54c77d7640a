"""The toy world: task, tokenizer, tiny Qwen2 and the committed "distilled reasoner" base."""

from __future__ import annotations

import json
import random

import pytest
import torch
from helpers import needs_file, read_jsonl

from justrl_lite.config import PROJECT_ROOT, TRAIN_PROMPT_SUFFIX
from justrl_lite.toy.model import build_random_model, count_parameters, tiny_qwen2_config
from justrl_lite.toy.task import (
    DATA_SOURCE,
    DemoNoise,
    demonstration,
    make_splits,
    sample_problems,
    solution,
    to_row,
    write_splits,
)
from justrl_lite.toy.tokenizer import BOS_TOKEN, EOS_TOKEN, GENERATION_PROMPT, USER_TOKEN, build_tokenizer
from justrl_lite.verifier import dapo_reward

TOY_DIR = PROJECT_ROOT / "data" / "toy"
BASE_DIR = TOY_DIR / "base"

needs_data = needs_file(TOY_DIR / "test.jsonl", "toy data", "python -m justrl_lite.toy.make_base")
needs_base = needs_file(BASE_DIR / "config.json", "toy base", "python -m justrl_lite.toy.make_base")


@pytest.fixture(scope="module")
def small_tokenizer():
    problems = sample_problems(100, seed=5)
    rng = random.Random(0)
    noisy = DemoNoise(step_error_prob=0.3, check_prob=0.3, wander_prob=0.3)
    texts = [p.text + TRAIN_PROMPT_SUFFIX for p in problems] + [demonstration(p, rng, noisy)[0] for p in problems]
    return build_tokenizer(texts)


# ---- task ---------------------------------------------------------------------------------------

def test_task_is_deterministic_by_seed():
    assert make_splits(300, 50, seed=3) == make_splits(300, 50, seed=3)
    assert make_splits(300, 50, seed=3) != make_splits(300, 50, seed=4)
    p = sample_problems(1, seed=0)[0]
    noise = DemoNoise(step_error_prob=0.5, check_prob=0.5, wander_prob=0.5)
    assert demonstration(p, random.Random(7), noise) == demonstration(p, random.Random(7), noise)


def test_splits_share_no_problem():
    train, test = make_splits(2000, 300, seed=0)
    assert len(train) == 2000 and len(test) == 300
    assert not {p.signature for p in train} & {p.signature for p in test}  # not even the same arithmetic
    assert not {p.text for p in train} & {p.text for p in test}
    excluded = sample_problems(500, seed=9, exclude=[p.signature for p in train + test])
    assert not {p.signature for p in excluded} & {p.signature for p in train + test}


def test_written_files_match_the_generator(tmp_path):
    train_path, test_path = write_splits(tmp_path, n_train=40, n_test=10, seed=2)
    train, test = make_splits(40, 10, seed=2)
    assert read_jsonl(train_path) == [to_row(p, i, "train") for i, p in enumerate(train)]
    assert read_jsonl(test_path) == [to_row(p, i, "test") for i, p in enumerate(test)]


@needs_data
@pytest.mark.parametrize("split", ["train", "test"])
def test_committed_rows_follow_the_dapo_schema(split):
    rows = read_jsonl(TOY_DIR / f"{split}.jsonl")
    assert len(rows) >= (2000 if split == "train" else 400)
    for i, row in enumerate(rows):
        assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
        assert row["data_source"] == DATA_SOURCE and row["ability"] == "math"
        assert len(row["prompt"]) == 1 and row["prompt"][0]["role"] == "user" and row["prompt"][0]["content"]
        assert row["reward_model"]["style"] == "rule"
        truth = row["reward_model"]["ground_truth"]
        assert isinstance(truth, str) and truth == str(int(truth))  # a plain integer string
        assert row["extra_info"]["index"] == i and row["extra_info"]["split"] == split
        assert dapo_reward(row["extra_info"]["solution"], truth) == 1.0


@needs_data
def test_committed_files_are_what_the_generator_writes():
    train, test = make_splits()
    assert read_jsonl(TOY_DIR / "train.jsonl") == [to_row(p, i, "train") for i, p in enumerate(train)]
    assert read_jsonl(TOY_DIR / "test.jsonl") == [to_row(p, i, "test") for i, p in enumerate(test)]


def test_problems_use_distinct_small_numbers_and_stay_in_range():
    from justrl_lite.toy.task import MAX_TOTAL, OPERAND_RANGE, START_RANGE

    for p in sample_problems(500, seed=11):
        numbers = [p.start] + [abs(c) for c in p.changes]
        assert len(set(numbers)) == len(numbers)  # the "next term" lookup is never ambiguous
        assert START_RANGE[0] <= p.start <= START_RANGE[1]
        assert all(OPERAND_RANGE[0] <= abs(c) <= OPERAND_RANGE[1] for c in p.changes)
        totals = [p.start + sum(p.changes[: i + 1]) for i in range(len(p.changes))]
        assert all(0 <= t <= MAX_TOTAL for t in totals) and totals[-1] == p.answer


@needs_data
def test_committed_splits_are_disjoint():
    problems = [{r["prompt"][0]["content"] for r in read_jsonl(TOY_DIR / f"{s}.jsonl")} for s in ("train", "test")]
    assert not problems[0] & problems[1]


def test_correct_demonstrations_score_plus_one_and_slipped_ones_minus_one():
    problems = sample_problems(400, seed=1)
    rng = random.Random(0)
    for p in problems:
        assert dapo_reward(solution(p), str(p.answer)) == 1.0
        assert str(p.answer) in solution(p).splitlines()[-1]
    noise = DemoNoise(step_error_prob=0.3, check_prob=0.3, wander_prob=0.3)
    outcomes = []
    for p in problems:
        text, correct = demonstration(p, rng, noise)
        assert dapo_reward(text, str(p.answer)) == (1.0 if correct else -1.0)
        outcomes.append(correct)
    assert 0.1 < sum(outcomes) / len(outcomes) < 0.9  # the noise really produces both kinds


def test_noise_makes_slips_checks_and_wandering():
    p = sample_problems(1, seed=0)[0]
    clean = solution(p)
    assert "Check:" not in clean and "Wait" not in clean
    wander, _ = demonstration(p, random.Random(0), DemoNoise(wander_prob=1.0))
    assert wander.count("Wait, let me check again.") >= 3 and len(wander) > 2 * len(clean)
    checked, correct = demonstration(p, random.Random(0), DemoNoise(check_prob=1.0))
    assert checked.count("Check:") == len(p.changes) and correct
    slipped = [demonstration(p, random.Random(s), DemoNoise(step_error_prob=1.0))[1] for s in range(20)]
    assert not all(slipped)


# ---- tokenizer ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Mia has \\boxed{42} apples.",
    "She gives away 3: 12 - 3 = 9.\n</think>\n\nTom has \\boxed{0} cards.",
    "  odd   spacing\t\tand unseen words: Zyx, ünïcödé, 😀, 123456789 {}[]",
])
def test_tokenizer_round_trips_text_exactly(small_tokenizer, text):
    ids = small_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert small_tokenizer.decode(ids, skip_special_tokens=True) == text
    with_eos = ids + [small_tokenizer.eos_token_id]
    assert small_tokenizer.decode(with_eos, skip_special_tokens=True) == text


def test_words_and_numbers_are_single_tokens(small_tokenizer):
    for word in (" answer", " 17", "17", " 0", "</think>", "\n\n"):
        assert len(small_tokenizer(word, add_special_tokens=False)["input_ids"]) == 1, word


def test_chat_template_renders_like_deepseek_r1_distill(small_tokenizer):
    tok = small_tokenizer
    messages = [{"role": "user", "content": "What is 2 + 2?" + TRAIN_PROMPT_SUFFIX}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == BOS_TOKEN + USER_TOKEN + messages[0]["content"] + GENERATION_PROMPT
    assert text.endswith("<｜Assistant｜><think>\n")
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": "4"}], tokenize=False)
    assert full.endswith("<｜Assistant｜>4" + EOS_TOKEN)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3


def test_tokenizer_survives_save_and_autotokenizer_load(small_tokenizer, tmp_path):
    """transformers rebuilds a Qwen2Tokenizer around the saved vocabulary when config.json says qwen2: the
    loaded tokenizer must still encode every text exactly as the one the model was trained with."""
    from transformers import AutoTokenizer

    build_random_model(small_tokenizer, seed=0).save_pretrained(tmp_path)
    small_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == len(small_tokenizer) and loaded.get_vocab() == small_tokenizer.get_vocab()
    rng = random.Random(1)
    noisy = DemoNoise(step_error_prob=0.3, check_prob=0.3, wander_prob=0.3)
    texts = [p.text + TRAIN_PROMPT_SUFFIX for p in sample_problems(50, seed=8)]
    texts += [demonstration(p, rng, noisy)[0] for p in sample_problems(50, seed=9)]
    texts += ["x  14 a114b 2024 \\boxed{-3} ünï 😀\t\r\n"]
    for text in texts:
        assert loaded(text)["input_ids"] == small_tokenizer(text)["input_ids"], text
    messages = [{"role": "user", "content": texts[0]}]
    assert (loaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            == small_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    assert (loaded.pad_token_id, loaded.eos_token_id, loaded.bos_token_id, loaded.padding_side) == (
        small_tokenizer.pad_token_id, small_tokenizer.eos_token_id, small_tokenizer.bos_token_id, "left")


def test_tokenizer_is_deterministic():
    texts = [p.text for p in sample_problems(50, seed=2)]
    assert build_tokenizer(texts).get_vocab() == build_tokenizer(texts).get_vocab()


# ---- model --------------------------------------------------------------------------------------

def test_random_model_is_a_tiny_deterministic_qwen2(small_tokenizer):
    a, b = build_random_model(small_tokenizer, seed=0), build_random_model(small_tokenizer, seed=0)
    c = build_random_model(small_tokenizer, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))
    assert type(a).__name__ == "Qwen2ForCausalLM"
    assert a.config.hidden_size // a.config.num_attention_heads == 64
    assert count_parameters(a) < 5_000_000
    assert a.config.eos_token_id == small_tokenizer.eos_token_id
    logits = a(torch.tensor([[small_tokenizer.bos_token_id, 5, 6]])).logits
    assert logits.shape == (1, 3, len(small_tokenizer))


def test_config_overrides_win_and_bad_heads_are_refused():
    assert tiny_qwen2_config(100, num_hidden_layers=2).num_hidden_layers == 2
    with pytest.raises(ValueError, match="divisible"):
        tiny_qwen2_config(100, hidden_size=100, num_attention_heads=3)


# ---- supervised fine-tuning ---------------------------------------------------------------------

def test_sft_examples_mask_the_prompt_and_end_in_eos(small_tokenizer):
    from justrl_lite.toy.make_base import encode_example, encode_prompt

    p = sample_problems(1, seed=3)[0]
    ids, labels = encode_example(small_tokenizer, p.text, solution(p))
    prompt = encode_prompt(small_tokenizer, p.text)
    assert ids[: len(prompt)] == prompt and labels[: len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt) :] == ids[len(prompt) :] and ids[-1] == small_tokenizer.eos_token_id
    assert small_tokenizer.decode(ids[len(prompt) :], skip_special_tokens=True) == solution(p)
    _, cut = encode_example(small_tokenizer, p.text, solution(p), max_response_tokens=5)
    assert len(cut) == len(prompt) + 5


def test_a_few_sft_steps_lower_the_loss(small_tokenizer):
    from justrl_lite.toy.make_base import SFTArgs, sft

    model = build_random_model(small_tokenizer, seed=0)
    args = SFTArgs(batch_size=16, epochs=2, lr=3e-3, warmup_steps=2)
    losses = sft(model, small_tokenizer, sample_problems(96, seed=6), args)
    assert len(losses) == 12 and sum(losses[-3:]) < 0.8 * sum(losses[:3])
    assert not model.training


def test_sampling_is_seeded_and_leaves_the_callers_random_state_alone(small_tokenizer):
    from justrl_lite.toy.make_base import encode_prompt, sample_responses

    model = build_random_model(small_tokenizer, seed=0)
    prompts = [encode_prompt(small_tokenizer, p.text) for p in sample_problems(2, seed=12)]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = sample_responses(model, small_tokenizer, prompts, 2, max_new_tokens=6, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert sample_responses(model, small_tokenizer, prompts, 2, max_new_tokens=6, seed=5) == first
    assert sample_responses(model, small_tokenizer, prompts, 2, max_new_tokens=6, seed=6) != first
    texts, lengths, truncated = first
    assert len(texts) == 4 and all(n <= 6 for n in lengths)
    assert all(n == 6 for n, t in zip(lengths, truncated) if t)  # truncated = ran to the cap without eos


# ---- the committed base -------------------------------------------------------------------------

@needs_base
def test_committed_base_is_small_and_loads_like_a_hub_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    size = sum(f.stat().st_size for f in BASE_DIR.rglob("*") if f.is_file())
    assert size <= 20 * 1024 * 1024
    assert (BASE_DIR / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(BASE_DIR)
    tokenizer = AutoTokenizer.from_pretrained(BASE_DIR)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.vocab_size >= len(tokenizer)
    text = "Ava has \\boxed{17} cookies."
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


@needs_base
@needs_data
def test_committed_base_is_a_modest_reasoner_on_the_held_out_split():
    """The role of DeepSeek-R1-Distill-Qwen-1.5B: pass@1 at temperature 1.0 between 20% and 50%."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from justrl_lite.toy.make_base import evaluate

    model = AutoModelForCausalLM.from_pretrained(BASE_DIR).eval()
    tokenizer = AutoTokenizer.from_pretrained(BASE_DIR)
    _, test = make_splits()
    metrics = evaluate(model, tokenizer, test[:48], n=8, seed=0)  # 384 samples
    assert 0.20 <= metrics["pass@1"] <= 0.50, metrics
    assert metrics["pass@8"] >= 0.6, metrics  # most groups of 8 hold a right answer: signal for GRPO
    assert metrics["truncated"] > 0.01, metrics  # some responses wander past the cap: RL can shorten them
    greedy = evaluate(model, tokenizer, test[48:112], n=1, temperature=0.0)
    assert greedy["pass@1"] >= 0.8, greedy  # it knows the skill; sampling at temperature 1.0 is what fails


@pytest.mark.parametrize("task", ["toy", "toy_frac"])
def test_the_shared_report_writer_rewrites_each_committed_base_report_byte_for_byte(task, tmp_path):
    """``make_base.base_report`` + ``save_base`` (used by both toy tasks' scripts): fed the committed run's
    training-time values (SFT time and loss, held-out scores), they rewrite its report byte for byte; the model
    size, vocabulary, prompt lengths and the SFT noise settings are recomputed from the committed base and code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from justrl_lite.toy import fractions, make_base, make_fractions_base
    from justrl_lite.toy import task as arithmetic

    base = PROJECT_ROOT / "data" / task / "base"
    if not (base / "make_base_report.json").exists():
        pytest.skip(f"{base} not built")
    committed = (base / "make_base_report.json").read_text()
    old = json.loads(committed)
    module, noise = ((arithmetic, make_base.SFT_NOISE) if task == "toy"
                     else (fractions, make_fractions_base.FRAC_SFT_NOISE))
    _, test = module.make_splits(module.N_TRAIN, module.N_TEST, seed=0)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    evaluation = {k: v for k, v in old.items() if k in ("eval_command", "heldout_t1", "heldout_greedy")}
    report = make_base.base_report(model, tokenizer, test, losses=[old["final_loss"]],
                                   sft_seconds=old["sft_seconds"],
                                   clean_solution_tokens_mean=old["clean_solution_tokens_mean"],
                                   sft_args=make_base.SFTArgs(**old["sft_args"]), sft_noise=noise,
                                   evaluation=evaluation)
    make_base.save_base(tmp_path, model, tokenizer, report)
    assert (tmp_path / "make_base_report.json").read_text() == committed
