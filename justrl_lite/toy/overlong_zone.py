"""Where to put the response cap and the overlong buffer so that the overlong ablation tests something.

DAPO's overlong penalty acts only on responses longer than ``L_max - L_b`` tokens
(``reward.overlong_penalty``):

    zone share(L_max, L_b) = P( |y| > L_max - L_b ),     |y| ~ the base policy's response lengths

If almost no response reaches that zone, the "overlong" arm and the recipe are the same experiment. The
paper's budget is L_max = 15,360 with L_b = 4,096 (the zone starts at 11,264 tokens) and its base's responses
average about 8k tokens, so a real share of them reaches the zone. The paper does not report that share; as
a yardstick, an exponential length distribution with the paper's mean puts exp(-11,264 / 8,000) = 24% in
the zone.

The rule (``choose_cap``): keep the paper's buffer-to-cap ratio ``L_b / L_max = 4,096 / 15,360``, and take the
cap whose zone share is closest to ``target`` (ties: the larger cap, which truncates less), the share measured
by sampling the base on the training prompts exactly as a training step does (``trainer.load_prompts``, the HF
engine, temperature 1). Token lengths are integers, so the share moves in steps and is stated as measured:

    L_b(L) = round(L * 4,096 / 15,360),     L_max = argmin_L | zone share(L, L_b(L)) - target |

JustRL's choices this module keeps:
  1. The penalty itself is DAPO's (linear from 0 at ``L_max - L_b`` to ``-factor`` at the cap, factor 1).
  2. The cap applies to every arm (the recipe included), as the paper's 15,360 did: only the penalty differs.
  3. The buffer keeps the paper's proportion of the budget (4,096 of 15,360, about 27%).

    python -m justrl_lite.toy.overlong_zone --out data/toy_frac/overlong_zone.json     # the fractions toy
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from justrl_lite.config import JustRLConfig
from justrl_lite.config_checks import ConfigError

PAPER_CAP, PAPER_BUFFER = 15_360, 4_096
PAPER_BUFFER_RATIO = PAPER_BUFFER / PAPER_CAP
TARGET_SHARE = 0.20
"""The share of the base's responses aimed for in the penalty zone: the middle of a 10-30% band, a little
below the 24% of the exponential yardstick (module docstring), since the paper's share is not reported."""
MEASURE_CAP = 128
"""The cap the base is sampled with to measure its lengths (the tiny preset's; the chosen cap is far below
it)."""


def zone_share(lengths: Sequence[int], cap: int, buffer: int) -> float:
    """Share of responses the penalty would touch under (cap, buffer): length > cap - buffer.

    A response longer than the cap is truncated to it, which is still in the zone, so raw lengths can be used.
    """
    if not 0 < buffer <= cap:
        raise ValueError(f"need 0 < buffer <= cap, got buffer={buffer}, cap={cap}")
    x = np.asarray(lengths)  # (N,)
    # share = P(|y| > L_max - L_b)
    return float(np.mean(x > cap - buffer))


def buffer_for(cap: int, ratio: float = PAPER_BUFFER_RATIO) -> int:
    """The buffer that keeps the paper's proportion of the budget: round(cap * 4,096 / 15,360), at least 1."""
    return max(1, round(cap * ratio))


def choose_cap(lengths: Sequence[int], target: float = TARGET_SHARE,
               ratio: float = PAPER_BUFFER_RATIO) -> tuple[int, int, float]:
    """(cap, buffer, zone share): the cap whose zone share is closest to ``target`` (ties: the larger cap)."""
    if not lengths:
        raise ValueError("no response lengths to choose a cap from: sample the base first")
    if not 0 < target < 1:
        raise ValueError(f"target share must be in (0, 1), got {target}")
    best = None
    for cap in range(2, int(max(lengths)) + 2):
        share = zone_share(lengths, cap, buffer_for(cap, ratio))
        # argmin_L |share(L) - target|; "<=" keeps the larger cap on a tie
        if best is None or abs(share - target) <= abs(best[2] - target):
            best = (cap, buffer_for(cap, ratio), share)
    return best


def base_lengths(cfg: JustRLConfig, n_prompts: int, n: int, seed: int = 0,
                 max_new_tokens: int = MEASURE_CAP) -> list[int]:
    """Response lengths (tokens, EOS included) of ``n`` samples on each of the first ``n_prompts`` training
    prompts, drawn from the base as a training step draws them (chat template, suffix, temperature, top-p)."""
    from justrl_lite.policy import apply_cpu_threads, load_policy
    from justrl_lite.samplers import sampler_for_config
    from justrl_lite.trainer import load_prompts

    apply_cpu_threads(cfg)
    model, tokenizer = load_policy(cfg)
    prompts = load_prompts(cfg.train_data, tokenizer, cfg.prompt_suffix, cfg.max_prompt_length)
    engine = sampler_for_config(cfg, model, tokenizer)
    lengths: list[int] = []
    for start in range(0, min(n_prompts, len(prompts.rows)), 32):
        chunk = prompts.prompt_ids[start: min(start + 32, n_prompts)]
        batch = engine.generate(chunk, n, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                max_new_tokens=max_new_tokens, seed=seed + start)
        lengths.extend(batch.response_mask.sum(-1).tolist())  # (B,) -> B lengths
    return lengths


def report(lengths: Sequence[int], target: float = TARGET_SHARE) -> dict:
    """The measured distribution, the chosen (cap, buffer) and what the old tiny budget (128, 32) gave."""
    cap, buffer, share = choose_cap(lengths, target)
    x = np.asarray(lengths)
    return {
        "samples": len(x), "mean": float(x.mean()),
        "quantiles": {q: float(np.quantile(x, float(q))) for q in ("0.5", "0.8", "0.9", "0.95", "0.99")},
        "target_share": target, "buffer_ratio": PAPER_BUFFER_RATIO,
        "max_response_length": cap, "overlong_buffer_len": buffer, "zone_start": cap - buffer,
        "zone_share": share, "truncated_share": float(np.mean(x > cap)),
        "old_budget": {"max_response_length": 128, "overlong_buffer_len": 32,
                       "zone_share": zone_share(lengths, 128, 32)},
        "histogram": {int(k): int(c) for k, c in zip(*np.unique(x, return_counts=True))},
    }


def main(argv: list[str] | None = None) -> int:
    from justrl_lite.toy.fractions import FRACTIONS_OVERRIDES

    p = argparse.ArgumentParser(prog="python -m justrl_lite.toy.overlong_zone", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=256, help="training prompts sampled (the first ones)")
    p.add_argument("--n", type=int, default=8, help="samples per prompt (the recipe's rollouts_per_prompt)")
    p.add_argument("--target", type=float, default=TARGET_SHARE, help="the share of responses aimed for")
    p.add_argument("--out", default=None, help="write the report (JSON) here")
    p.add_argument("overrides", nargs="*", metavar="field=value",
                   help="overrides of tiny + FRACTIONS_OVERRIDES (the fractions toy's base and data)")
    a = p.parse_args(argv)
    try:
        cfg = JustRLConfig.tiny().with_overrides([*FRACTIONS_OVERRIDES, "cpu_threads=1", *a.overrides])
        out = report(base_lengths(cfg, a.prompts, a.n), a.target)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args = argv if argv is not None else sys.argv[1:]
    out["command"] = "python -m justrl_lite.toy.overlong_zone " + " ".join(args)
    text = json.dumps(out, indent=1)
    if a.out:
        Path(a.out).write_text(text + "\n")
    summary = {k: v for k, v in out.items() if k != "histogram"}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
