"""Checkpoints that survive a crash mid-write, and exact resume.

A checkpoint ``<output_dir>/checkpoints/step_000050/`` holds:
  - ``policy/``        the policy in Hugging Face format (``save_pretrained``; a LoRA adapter when LoRA is on),
                       loadable by ``AutoModelForCausalLM.from_pretrained`` and by ``justrl_lite.evaluate``.
                       It holds the float32 master weights whatever the compute dtype (``policy.py``), so
                       resume is exact; ``python -m justrl_lite.scale.export`` writes a bf16 copy for sharing;
  - ``tokenizer`` files beside it, so the folder is self-contained;
  - ``optimizer.pt``   AdamW moments and the learning-rate schedule position;
  - ``state.json``     the step, data position and RNG states.

Atomicity: everything is written into ``step_000050.tmp-<pid>`` and renamed into place only when complete
(a rename within one folder is atomic on POSIX). ``latest`` is a small text file replaced atomically after
the rename. A run killed at any instant leaves either the previous complete checkpoint or the new one as
``latest``, never a half-written one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from justrl_lite.errors import JustRLError

LATEST = "latest"


class CheckpointError(JustRLError, RuntimeError):
    """A checkpoint is missing or unreadable; the message says which file and what to do."""


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states, JSON-serialisable."""
    return {
        "python": _to_json(random.getstate()),
        "numpy": _to_json(np.random.get_state()),
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_from_json(state["python"]))
    np.random.set_state(_from_json(state["numpy"]))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def save_checkpoint(output_dir: str | Path, step: int, model, tokenizer, optimizer, scheduler,
                    state: dict[str, Any]) -> Path:
    """Write a complete checkpoint for ``step`` atomically and point ``latest`` at it."""
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f"{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save_pretrained(tmp / "policy", safe_serialization=True)
    tokenizer.save_pretrained(tmp / "policy")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, **state, "rng": rng_state()}))
    _fsync_tree(tmp)
    if final.exists():  # a previous run wrote this step: replace it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest_tmp = root / f"{LATEST}.tmp-{os.getpid()}"
    latest_tmp.write_text(final.name + "\n")
    os.replace(latest_tmp, root / LATEST)
    return final


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The folder ``latest`` points at, or None when the run has no checkpoint yet."""
    root = checkpoint_root(output_dir)
    pointer = root / LATEST
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    if not (path / "state.json").exists():
        raise CheckpointError(f"{pointer} points at {path}, which has no state.json: the checkpoint is missing or "
                              f"damaged. Delete {pointer} to start over, or point it at another step_* folder.")
    return path


def load_training_state(path: Path, optimizer, scheduler) -> dict[str, Any]:
    """Restore optimizer, schedule and RNG states from a checkpoint folder; return its state.json."""
    try:
        state = json.loads((path / "state.json").read_text())
        blobs = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(blobs["optimizer"])
        scheduler.load_state_dict(blobs["scheduler"])
    except Exception as e:  # unreadable file: one clear message
        raise CheckpointError(f"cannot read the training state in {path} ({type(e).__name__}: {e}). "
                              f"Point {path.parent / LATEST} at an earlier step_* folder or start without --resume.") from e
    set_rng_state(state["rng"])
    return state


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _to_json(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return {"__tuple__": [_to_json(x) for x in obj]}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, list):
        return [_to_json(x) for x in obj]
    return obj


def _from_json(obj: Any) -> Any:
    if isinstance(obj, dict) and "__tuple__" in obj:
        return tuple(_from_json(x) for x in obj["__tuple__"])
    if isinstance(obj, dict) and "__ndarray__" in obj:
        return np.array(obj["__ndarray__"], dtype=obj["dtype"])
    if isinstance(obj, list):
        return [_from_json(x) for x in obj]
    return obj
