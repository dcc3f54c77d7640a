"""ablations: the command line notebook 06 parses its stored command with, and the runs one command plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from justrl_lite import ablations
from justrl_lite.config import JustRLConfig
from justrl_lite.config_checks import ConfigError


def test_planned_runs_follow_the_command():
    args = ablations.build_parser().parse_args(
        ["--seeds", "4", "5", "--variants", "overlong", "justrl", "--out", "o", "total_steps=7"])
    runs = ablations.planned_runs(args)
    assert [(v, s) for v, s, _ in runs] == [("overlong", 4), ("overlong", 5), ("justrl", 4), ("justrl", 5)]
    base = JustRLConfig.tiny().replace(total_steps=7)
    for variant, seed, cfg in runs:
        assert cfg == base.replace(**ablations.VARIANTS[variant], seed=seed,
                                   output_dir=str(Path("o") / variant / f"seed{seed}"))
    assert runs[0][2].overlong_penalty and not runs[2][2].overlong_penalty


def test_parser_defaults_and_errors():
    args = ablations.build_parser().parse_args([])
    assert (args.seeds, args.variants, args.out, args.store) == ([1, 2, 3], list(ablations.VARIANTS),
                                                                "runs/ablations", None)
    assert len(ablations.planned_runs(args)) == 3 * len(ablations.VARIANTS)
    with pytest.raises(SystemExit):
        ablations.build_parser().parse_args(["--variants", "kl"])
    with pytest.raises(ConfigError, match="unknown ablation"):
        ablations.variant_config(JustRLConfig.tiny(), "kl", 1, Path("o"))
