"""Data loading: the real files, both row schemas, the paper's prompts, length filtering, DAPO's hub format,
and one clear error per malformed row or missing file."""

from __future__ import annotations

import json
import logging
import re

import pandas as pd
import pytest

from justrl_lite.benchmarks import BENCHMARKS
from justrl_lite.config import EVAL_PROMPT_SUFFIX, TRAIN_PROMPT_SUFFIX
from justrl_lite.data import DAPO_TEMPLATE_PREFIX, DAPO_TEMPLATE_SUFFIX, DataError, MathRow, load_rows
from justrl_lite.prompts import build_messages, encode_prompts

DAPO_LOCAL = "DAPO-Math-17k_dedup17917_from_MasterVito-SvS.parquet"


def readme_row_counts(data_dir) -> dict[str, int]:
    """file name -> rows, read from the data folder's README table (e.g. ``| AIME24_test.parquet | 30 | ...``)."""
    counts = {}
    for line in (data_dir / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*(\S+\.parquet)\s*\|\s*([\d,]+)\s*\|", line)
        if m:
            counts[m.group(1)] = int(m.group(2).replace(",", ""))
    return counts


@pytest.fixture
def offline_hub(monkeypatch):
    """Make hub look-ups fail at once (this machine has no network; the real code path is still taken)."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


# ---- the real files ---------------------------------------------------------------------------------------

def test_every_file_loads_with_the_readme_row_count(shared_data_dir):
    counts = readme_row_counts(shared_data_dir)
    assert set(counts) == {spec.local_file for spec in BENCHMARKS.values()} | {DAPO_LOCAL}
    for spec in BENCHMARKS.values():
        rows = load_rows(spec.name, data_dir=str(shared_data_dir))
        assert len(rows) == counts[spec.local_file] == spec.n_rows, spec.name
        assert len({r.id for r in rows}) == len(rows)  # ids are unique
    assert len(load_rows(str(shared_data_dir / DAPO_LOCAL))) == counts[DAPO_LOCAL]


def test_benchmarks_are_the_papers_nine_in_column_order():
    assert list(BENCHMARKS) == ["AIME24", "AIME25", "AMC23", "MATH-500", "Minerva", "OlympiadBench", "HMMT25",
                                "BRUMO25", "CMIMC25"]
    n32 = {"AIME24", "AIME25", "AMC23", "HMMT25", "BRUMO25", "CMIMC25"}
    assert {name: spec.n_samples for name, spec in BENCHMARKS.items()} == {
        name: 32 if name in n32 else 4 for name in BENCHMARKS}


def test_verl_rows_keep_messages_and_ground_truth_as_stored(shared_data_dir):
    raw = pd.read_parquet(shared_data_dir / "AIME24_test.parquet")
    rows = load_rows("AIME24", data_dir=str(shared_data_dir))
    for row, (_, rec) in zip(rows, raw.iterrows()):
        assert row.id == rec["extra_info"]["index"]
        assert row.data_source == rec["data_source"] == "AIME24"
        assert row.problem == rec["prompt"][0]["content"]
        assert row.ground_truth == rec["reward_model"]["ground_truth"]  # stored boxed, kept boxed
        assert row.ground_truth == "\\boxed{" + row.answer + "}"


def test_problem_answer_rows_become_one_user_message(shared_data_dir):
    raw = pd.read_parquet(shared_data_dir / "HMMT25_test.parquet")
    rows = load_rows("HMMT25", data_dir=str(shared_data_dir))
    for i, (row, (_, rec)) in enumerate(zip(rows, raw.iterrows())):
        assert row.messages == ({"role": "user", "content": rec["problem"]},)
        assert row.ground_truth == row.answer == rec["answer"]
        assert row.data_source == "HMMT25" and row.id == f"HMMT25-{i}"


def test_benchmark_names_resolve_through_the_data_dir_env_var(shared_data_dir, monkeypatch):
    monkeypatch.setenv("JUSTRL_DATA_DIR", str(shared_data_dir))
    by_name = load_rows("OlympiadBench")
    assert [r.id for r in load_rows("olympiad-bench")] == [r.id for r in by_name]
    assert [r.id for r in load_rows(str(shared_data_dir / "Olympiad-Bench_test.parquet"))] == [r.id for r in by_name]


def test_benchmark_without_local_copy_goes_to_the_hub_and_says_where_it_looked(offline_hub, monkeypatch, tmp_path):
    monkeypatch.delenv("JUSTRL_DATA_DIR", raising=False)
    with pytest.raises(DataError) as e:
        load_rows("AIME25", data_dir=str(tmp_path))
    message = str(e.value)
    assert BENCHMARKS["AIME25"].hub_id in message and "AIME25_test.parquet" in message
    assert str(tmp_path) in message and "JUSTRL_DATA_DIR" in message


def test_limit_keeps_the_first_rows(shared_data_dir):
    full = load_rows("MATH-500", data_dir=str(shared_data_dir))
    assert load_rows("MATH-500", data_dir=str(shared_data_dir), limit=7) == full[:7]


def test_comma_separated_sources_are_concatenated(shared_data_dir):
    """``config.val_data`` names several sets, e.g. the authors' validation sets AIME24, AIME25 and AMC23."""
    parts = [load_rows(name, data_dir=str(shared_data_dir)) for name in ("AIME24", "AIME25", "AMC23")]
    both = load_rows("AIME24, AIME25,AMC23", data_dir=str(shared_data_dir))
    assert both == parts[0] + parts[1] + parts[2]
    assert load_rows("AIME24,AIME25", data_dir=str(shared_data_dir), limit=35) == (parts[0] + parts[1])[:35]


# ---- prompts ----------------------------------------------------------------------------------------------

def test_training_and_evaluation_prompts_end_with_their_suffix(shared_data_dir, tiny_model_and_tokenizer):
    from justrl_lite.toy.tokenizer import BOS_TOKEN, GENERATION_PROMPT, USER_TOKEN

    _, tokenizer = tiny_model_and_tokenizer
    dapo = load_rows(str(shared_data_dir / DAPO_LOCAL))
    padded = next(r for r in dapo if r.problem != r.problem.strip())  # a DAPO problem ending in whitespace
    cmimc = next(r for r in load_rows("CMIMC25", data_dir=str(shared_data_dir)) if r.problem != r.problem.strip())
    cases = [(padded, TRAIN_PROMPT_SUFFIX, padded.problem),          # training: appended to the text as stored
             (cmimc, EVAL_PROMPT_SUFFIX, cmimc.problem.strip())]     # evaluation: problem stripped first
    for row, suffix, problem in cases:
        messages = build_messages(row, suffix)
        assert messages[-1] == {"role": "user", "content": problem + suffix}
        encoded = encode_prompts(tokenizer, [row], suffix, max_prompt_length=10_000)
        text = tokenizer.decode(encoded.prompt_ids[0], skip_special_tokens=False)
        assert text == BOS_TOKEN + USER_TOKEN + problem + suffix + GENERATION_PROMPT


def test_overlong_prompts_are_dropped_and_counted(shared_data_dir, tiny_model_and_tokenizer, caplog):
    _, tokenizer = tiny_model_and_tokenizer
    rows = load_rows("Minerva", data_dir=str(shared_data_dir), limit=120)
    lengths = [len(tokenizer.apply_chat_template(build_messages(r, EVAL_PROMPT_SUFFIX), add_generation_prompt=True,
                                                 return_dict=True)["input_ids"]) for r in rows]
    limit = sorted(lengths)[len(lengths) // 2]  # a real prompt length: that prompt sits exactly on the limit
    with caplog.at_level(logging.WARNING, logger="justrl_lite.prompts"):
        encoded = encode_prompts(tokenizer, rows, EVAL_PROMPT_SUFFIX, max_prompt_length=limit, batch_size=50)
    expected_kept = [r for r, n in zip(rows, lengths) if n <= limit]
    assert 0 < encoded.n_filtered == sum(n > limit for n in lengths) < len(rows)
    assert encoded.rows == expected_kept
    assert [len(ids) for ids in encoded.prompt_ids] == [n for n in lengths if n <= limit]
    assert limit in [len(ids) for ids in encoded.prompt_ids]  # "longer than" the maximum: equal is kept
    assert f"filtered out {encoded.n_filtered} of {len(rows)}" in caplog.text


def test_answer_unboxes_only_a_single_outer_box():
    def row(gt):
        return MathRow(id="x", messages=({"role": "user", "content": "q"},), ground_truth=gt, data_source="t")

    assert row("\\boxed{\\frac{1}{2}}").answer == "\\frac{1}{2}"
    assert row("\\boxed{1} and \\boxed{2}").answer == "\\boxed{1} and \\boxed{2}"
    assert row("$2^{1009}$").answer == "$2^{1009}$"


# ---- DAPO-Math-17k as the hub ships it --------------------------------------------------------------------

def hub_style_dapo_rows(local_rows: list[MathRow], repeats: int) -> list[dict]:
    """Rows as in BytedTsinghua-SIA/DAPO-Math-17k: DAPO's instruction around the problem, each problem repeated."""
    out = []
    for k, r in enumerate(local_rows):
        for _ in range(repeats):
            out.append({
                "data_source": "math_dapo",
                "prompt": [{"role": "user", "content": DAPO_TEMPLATE_PREFIX + r.problem + DAPO_TEMPLATE_SUFFIX}],
                "ability": "MATH",
                "reward_model": {"ground_truth": r.ground_truth, "style": "rule-lighteval/MATH_v2"},
                "extra_info": {"index": f"uuid-{k:04d}"},
            })
    return out


@pytest.fixture
def hub_dapo_jsonl(shared_data_dir, tmp_path):
    local = load_rows(str(shared_data_dir / DAPO_LOCAL), limit=3)
    path = tmp_path / "dapo-math-17k.jsonl"
    path.write_text("".join(json.dumps(rec) + "\n" for rec in hub_style_dapo_rows(local, repeats=4)))
    return path, local


def test_hub_dapo_format_loads_as_is_by_default(hub_dapo_jsonl):
    path, local = hub_dapo_jsonl
    rows = load_rows(str(path))
    assert len(rows) == 4 * len(local)
    assert all(r.data_source == "math_dapo" and "Answer: $Answer" in r.problem for r in rows)
    # the authors' prompt: their \boxed{} suffix after DAPO's "Answer:" instruction (both instructions present)
    content = build_messages(rows[0], TRAIN_PROMPT_SUFFIX)[-1]["content"]
    assert content.startswith(DAPO_TEMPLATE_PREFIX) and content.endswith(DAPO_TEMPLATE_SUFFIX + TRAIN_PROMPT_SUFFIX)


def test_hub_dapo_format_cleans_to_the_local_copy(hub_dapo_jsonl):
    path, local = hub_dapo_jsonl
    clean = load_rows(str(path), strip_dapo_template=True, dedup=True)
    assert [(r.problem, r.ground_truth) for r in clean] == [(r.problem, r.ground_truth) for r in local]
    assert [r.problem for r in load_rows(str(path), dedup=True)] == [DAPO_TEMPLATE_PREFIX + r.problem +
                                                                     DAPO_TEMPLATE_SUFFIX for r in local]
    assert len(load_rows(str(path), strip_dapo_template=True)) == 4 * len(local)


def test_dataset_folder_goes_through_datasets_load_dataset(shared_data_dir, tmp_path):
    """A local copy of a hub dataset repository (parquet under data/) is read by the hub code path."""
    local = load_rows(str(shared_data_dir / DAPO_LOCAL), limit=2)
    repo = tmp_path / "DAPO-Math-17k"
    (repo / "data").mkdir(parents=True)
    pd.DataFrame(hub_style_dapo_rows(local, repeats=3)).to_parquet(repo / "data" / "train-00000-of-00001.parquet")
    rows = load_rows(str(repo), strip_dapo_template=True)
    assert [(r.problem, r.ground_truth) for r in rows] == [(r.problem, r.ground_truth) for r in local for _ in range(3)]
    assert rows[0].id == "uuid-0000"


# ---- errors -----------------------------------------------------------------------------------------------

GOOD_VERL = {"prompt": [{"role": "user", "content": "1+1?"}], "reward_model": {"ground_truth": "2"},
             "data_source": "t"}
GOOD_PLAIN = {"problem_idx": 1, "problem": "2+2?", "answer": 4}


@pytest.mark.parametrize("bad,what", [
    ({"prompt": [{"role": "user", "content": "1+1?"}], "data_source": "t"}, "missing answer"),
    ({**GOOD_VERL, "reward_model": {"ground_truth": None}}, "missing answer"),
    ({**GOOD_VERL, "reward_model": {"ground_truth": "  "}}, "missing answer"),
    ({**GOOD_VERL, "reward_model": {"ground_truth": ["2"]}}, "must be a string"),
    ({**GOOD_VERL, "prompt": [{"role": "user", "content": "   "}]}, "empty prompt"),
    ({**GOOD_VERL, "prompt": "1+1?"}, "list of"),
    ({**GOOD_VERL, "prompt": [{"role": "user", "content": 7}]}, "'content': str"),
    ({**GOOD_VERL, "prompt": [{"role": "system", "content": "be brief"}]}, "no user message"),
    ({"problem": "", "answer": "1"}, "empty prompt"),
    ({"problem": 3, "answer": "1"}, "empty prompt"),
    ({"problem": "3+3?"}, "missing answer"),
    ({"problem": "3+3?", "answer": 6.0}, "must be a string"),
    ({"question_text": "3+3?", "solution": "6"}, "unknown schema"),
])
def test_a_malformed_row_names_the_file_and_the_row(tmp_path, bad, what):
    path = tmp_path / "bad.jsonl"
    good = GOOD_VERL if "prompt" in bad or "reward_model" in bad else GOOD_PLAIN
    path.write_text("".join(json.dumps(rec) + "\n" for rec in (good, good, bad, good)))
    with pytest.raises(DataError, match=re.escape(f"{path}, row 2: ") + ".*" + re.escape(what) + ".*fix or remove"):
        load_rows(str(path))


def test_good_rows_of_both_schemas_parse(tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_text(json.dumps(GOOD_VERL) + "\n\n" + json.dumps(GOOD_VERL) + "\n")
    assert [r.id for r in load_rows(str(path))] == ["t-0", "t-1"]  # blank lines are skipped
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([GOOD_PLAIN, {"question": "5+5?", "answer": "10"}]))
    rows = load_rows(str(plain))
    assert [(r.problem, r.ground_truth, r.data_source) for r in rows] == [
        ("2+2?", "4", "plain"), ("5+5?", "10", "plain")]


def test_malformed_parquet_row_and_bad_json_line_are_located(tmp_path):
    parquet = tmp_path / "bad.parquet"
    pd.DataFrame({"problem": ["a?", "b?", "c?"], "answer": ["1", None, "3"]}).to_parquet(parquet)
    with pytest.raises(DataError, match=re.escape(f"{parquet}, row 1: missing answer")):
        load_rows(str(parquet))
    jsonl = tmp_path / "broken.jsonl"
    jsonl.write_text(json.dumps(GOOD_VERL) + "\n\n{not json\n")
    with pytest.raises(DataError, match=re.escape(f"{jsonl}, row 1 (line 3): not valid JSON")):
        load_rows(str(jsonl))


def test_missing_file_says_where_it_looked_and_what_to_pass(tmp_path):
    with pytest.raises(DataError, match=r"not found \(looked in: .*missing\.parquet.*\).*parquet/JSONL path"):
        load_rows("no/such/missing.parquet")
    with pytest.raises(DataError, match="neither a benchmark name"):
        load_rows("what is this?")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        load_rows(str(empty))
