"""``python -m justrl_lite.scale.export CHECKPOINT --dtype bfloat16 --out DIR``: a checkpoint -> a Hugging Face folder.

A checkpoint's ``policy/`` holds the float32 master weights (or a float32 LoRA adapter), so that resume is exact
(``policy.py``). For sharing, evaluation (``python -m justrl_lite.evaluate --model DIR``) and vLLM, this writes
model + tokenizer in the chosen dtype, a LoRA adapter merged into its base. CHECKPOINT is a ``step_*`` folder or a
run's ``output_dir`` (then its newest checkpoint that verifies). The training prompt suffix the checkpoint
recorded is copied too (``checkpoint.PROMPT_FILE``). A non-empty ``--out`` is refused: nothing is overwritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from justrl_lite.checkpoint import latest_checkpoint, read_prompt_file, write_prompt_file
from justrl_lite.config_checks import DTYPES
from justrl_lite.errors import JustRLError
from justrl_lite.evaluation.engine import load_model


class ExportError(JustRLError, RuntimeError):
    """The checkpoint or the output folder cannot be used; the message says what to pass."""


def find_policy(checkpoint: str | Path) -> Path:
    """The ``policy/`` folder of a ``step_*`` checkpoint, or of a run folder's latest checkpoint."""
    path = Path(checkpoint)
    if (path / "checkpoints").is_dir():
        path = latest_checkpoint(path) or path
    if not (path / "policy").is_dir():
        raise ExportError(f"{checkpoint} has no policy/ folder: pass a checkpoint folder such as "
                          f"runs/tiny/checkpoints/step_000100, or a run's output_dir")
    return path / "policy"


def export_checkpoint(checkpoint: str | Path, out: str | Path, dtype: str = "bfloat16") -> Path:
    """Write the checkpoint's policy (LoRA merged) and tokenizer to ``out`` in ``dtype``; return ``out``."""
    if dtype not in DTYPES:
        raise ExportError(f"--dtype must be one of {DTYPES}, got {dtype!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} is not empty: pass --out a new or empty folder (nothing was written)")
    policy = find_policy(checkpoint)
    _, tokenizer = load_model(str(policy), device="cpu", dtype="float32", load_weights=False)
    adapter = policy / "adapter_config.json"
    if adapter.exists():  # LoRA: the float32 base + the adapter, merged
        from peft import PeftModel

        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        run_config = policy.parents[2] / "config.json"
        if run_config.exists():  # the run's own (possibly relative) base path
            base = json.loads(run_config.read_text())["model_name_or_path"]
        model, _ = load_model(base, device="cpu", dtype="float32")
        model = PeftModel.from_pretrained(model, str(policy)).merge_and_unload()
    else:
        model, _ = load_model(str(policy), device="cpu", dtype="float32")
    model = model.to(getattr(torch, dtype))
    model.config.use_cache = True  # training turned the KV cache off for gradient checkpointing
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    recorded = read_prompt_file(policy)
    if recorded is not None:  # evaluate --prompt auto prompts the export as it was trained
        write_prompt_file(out, recorded)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m justrl_lite.scale.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a checkpoints/step_* folder, or a run's output_dir (its latest checkpoint)")
    p.add_argument("--out", required=True, help="a new or empty folder to write (model + tokenizer)")
    p.add_argument("--dtype", default="bfloat16", choices=DTYPES, help="dtype of the written weights")
    args = p.parse_args(argv)
    try:
        out = export_checkpoint(args.checkpoint, args.out, args.dtype)
    except JustRLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({args.dtype}); evaluate it with `python -m justrl_lite.evaluate --model {out} ...`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
