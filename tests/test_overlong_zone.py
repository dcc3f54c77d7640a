"""overlong_zone: the share of responses in the penalty zone, the cap rule against a brute-force
re-derivation, and the committed measurement (data/toy_frac/overlong_zone.json) re-derived from its own
histogram."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from justrl_lite.config import JustRLConfig
from justrl_lite.reward import overlong_penalty
from justrl_lite.toy import overlong_zone as oz
from justrl_lite.toy.fractions import FRACTIONS_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]
ZONE = ROOT / "data" / "toy_frac" / "overlong_zone.json"


@pytest.fixture
def rng():
    seed = random.randrange(2**32)
    print("seed", seed)
    return random.Random(seed)


def test_zone_share_is_the_share_the_penalty_touches(rng):
    for _ in range(200):
        cap = rng.randint(2, 300)
        buffer = rng.randint(1, cap)
        lengths = [rng.randint(1, 2 * cap) for _ in range(rng.randint(1, 50))]
        # a response longer than the cap is truncated to it
        touched = [overlong_penalty(min(n, cap), cap, buffer, 1.0) < 0 for n in lengths]
        assert oz.zone_share(lengths, cap, buffer) == sum(touched) / len(lengths)
    with pytest.raises(ValueError, match="0 < buffer <= cap"):
        oz.zone_share([1], 10, 11)


def test_buffer_keeps_the_papers_proportion():
    assert oz.buffer_for(oz.PAPER_CAP) == oz.PAPER_BUFFER
    assert oz.buffer_for(128) == 34 and oz.buffer_for(52) == 14 and oz.buffer_for(2) == 1


def test_choose_cap_is_the_closest_share_to_the_target(rng):
    for _ in range(30):
        n = rng.randint(5, 300)
        lengths = [rng.choice([rng.randint(20, 45), rng.randint(100, 128)]) for _ in range(n)]
        target = rng.uniform(0.05, 0.5)
        cap, buffer, share = oz.choose_cap(lengths, target)
        assert buffer == oz.buffer_for(cap) and share == oz.zone_share(lengths, cap, buffer)
        # brute force over every cap: none is closer, and a tie goes to the larger cap
        for other in range(2, max(lengths) + 2):
            d = abs(oz.zone_share(lengths, other, oz.buffer_for(other)) - target)
            assert d > abs(share - target) or (d == abs(share - target) and other <= cap)
    with pytest.raises(ValueError, match="no response lengths"):
        oz.choose_cap([])
    with pytest.raises(ValueError, match="target share"):
        oz.choose_cap([3], 1.5)


def test_the_committed_measurement_follows_from_its_histogram():
    z = json.loads(ZONE.read_text())
    lengths = [int(k) for k, c in z["histogram"].items() for _ in range(c)]
    assert len(lengths) == z["samples"] and z["command"].startswith("python -m justrl_lite.toy.overlong_zone")
    assert oz.choose_cap(lengths, z["target_share"]) == (z["max_response_length"], z["overlong_buffer_len"],
                                                         z["zone_share"])
    again = oz.report(lengths, z["target_share"])
    assert json.loads(json.dumps(again)) == {k: v for k, v in z.items() if k != "command"}
    # the reason for the new budget: the old one (128, 32) left the penalty almost nothing to act on
    assert z["old_budget"]["zone_share"] < 0.05 < 0.1 <= z["zone_share"] <= 0.3


def test_base_lengths_samples_the_base_as_a_training_step_does():
    cfg = JustRLConfig.tiny().with_overrides([*FRACTIONS_OVERRIDES, "cpu_threads=1"])
    if not (ROOT / cfg.model_name_or_path / "config.json").exists():
        pytest.skip("fractions base not built")
    lengths = oz.base_lengths(cfg, n_prompts=3, n=2, seed=5, max_new_tokens=40)
    assert len(lengths) == 6 and all(1 <= n <= 40 for n in lengths)
    assert oz.base_lengths(cfg, n_prompts=3, n=2, seed=5, max_new_tokens=40) == lengths     # seeded


def test_cli_writes_the_report(tmp_path, capsys):
    cfg = JustRLConfig.tiny().with_overrides(list(FRACTIONS_OVERRIDES))
    if not (ROOT / cfg.model_name_or_path / "config.json").exists():
        pytest.skip("fractions base not built")
    out = tmp_path / "z.json"
    assert oz.main(["--prompts", "2", "--n", "2", "--out", str(out)]) == 0
    z = json.loads(out.read_text())
    assert z["samples"] == 4 and sum(z["histogram"].values()) == 4
    assert "histogram" not in capsys.readouterr().out
    assert oz.main(["--prompts", "2", "temperature=-1"]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_readme_quotes_the_measured_budget():
    z = json.loads(ZONE.read_text())
    readme = " ".join((ROOT / "README.md").read_text().split())
    cap, buffer = z["max_response_length"], z["overlong_buffer_len"]
    assert (f"cap {cap}, buffer {buffer}, the zone ({cap - buffer + 1}-{cap} tokens) holds "
            f"{100 * z['zone_share']:.1f}% of the base's responses, {100 * z['truncated_share']:.1f}% are longer "
            f"than the cap") in readme
    assert f"{100 * z['old_budget']['zone_share']:.1f}% of them reach the penalty zone" in readme
    assert z["command"] in readme
