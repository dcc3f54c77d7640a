"""Checkpoints that survive a crash mid-write, a damaged file and a full disk; exact resume; bounded disk.

A checkpoint ``<output_dir>/checkpoints/step_000050/`` holds:
  - ``policy/``        the policy in Hugging Face format (``save_pretrained``; a LoRA adapter when LoRA is on),
                       loadable by ``AutoModelForCausalLM.from_pretrained`` and by ``justrl_lite.evaluate``.
                       It holds the float32 master weights whatever the compute dtype (``policy.py``), so
                       resume is exact; ``python -m justrl_lite.scale.export`` writes a bf16 copy for sharing;
  - ``tokenizer`` files beside it, and ``policy/justrl_prompt.json``: the prompt suffix the policy was trained
                       with, so ``evaluate`` can prompt it the same way (``prompts.py``);
  - ``optimizer.pt``   AdamW moments and the learning-rate schedule position;
  - ``state.json``     the step, data position and RNG states;
  - ``manifest.json``  written last: the size and SHA-256 of every other file.

Size: float32 weights (4 bytes/parameter) + AdamW's two float32 moments (8) = 12 bytes per trained parameter,
about 21 GB for DeepSeek-R1-Distill-Qwen-1.5B's 1.78B parameters (``checkpoint_bytes``).

The numbered choices:
  1. Atomic publication: everything is written into ``step_000050.tmp-<pid>``, the manifest last, then renamed
     into place (a rename within one folder is atomic on POSIX); ``latest`` is a small text file replaced
     atomically after the rename. A run killed at any instant leaves the previous checkpoint as ``latest``.
  2. Verification: a checkpoint counts only if its manifest matches its files (``verify_checkpoint``).
     ``find_resume_checkpoint`` walks back from ``latest`` to the newest step that verifies, naming the ones it
     skips and why; a damaged newest checkpoint costs ``save_every`` steps, not the run.
  3. Leftovers: ``*.tmp-*`` folders of a run that died mid-save are removed at the next start
     (``remove_temporary``).
  4. A failed write (disk full, no permission) removes its temporary folder and stops with one line naming the
     last good checkpoint and the space a checkpoint needs (``CheckpointError``).
  5. Retention (``prune_checkpoints``): keep the newest ``keep_checkpoints`` (0 = all), plus every step that is
     a multiple of ``keep_every_steps`` (0 = none) as a milestone; ``latest`` is never removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from justrl_lite.errors import JustRLError

LATEST = "latest"
MANIFEST = "manifest.json"
PROMPT_FILE = "justrl_prompt.json"
"""In a ``policy/`` folder (and an exported one): ``{"training_prompt_suffix": ...}``."""


class CheckpointError(JustRLError, RuntimeError):
    """A checkpoint is missing, unreadable or cannot be written; the message says which and what to do."""


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def checkpoint_bytes(model, optimizer_moments: int = 2) -> int:
    """Bytes of one checkpoint: float32 trained weights + ``optimizer_moments`` float32 AdamW moments each
    (frozen base weights of a LoRA run are not saved)."""
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # 4 bytes (weights) + 4 bytes per moment, per trained parameter
    return trained * 4 * (1 + optimizer_moments)


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
                    state: dict[str, Any], *, prompt_suffix: str | None = None) -> Path:
    """Write a complete, verified checkpoint for ``step`` atomically and point ``latest`` at it (choices 1, 4)."""
    root = checkpoint_root(output_dir)
    final = root / f"step_{step:06d}"
    tmp = root / f"{final.name}.tmp-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        _write_files(tmp, step, model, tokenizer, optimizer, scheduler, state, prompt_suffix)
        write_manifest(tmp)  # last: a folder with a matching manifest is complete
        _fsync_tree(tmp)
        if final.exists():  # a previous run wrote this step: replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
        latest_tmp = root / f"{LATEST}.tmp-{os.getpid()}"
        latest_tmp.write_text(final.name + "\n")
        os.replace(latest_tmp, root / LATEST)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        good = _newest_complete(root)
        try:
            free = f"{_gb(shutil.disk_usage(root if root.exists() else Path(output_dir)).free)} is free"
        except OSError:
            free = "the free space is unknown"
        raise CheckpointError(
            f"cannot write the step-{step} checkpoint in {root} ({e.strerror or e}); last good checkpoint: "
            f"{good or 'none'}; a checkpoint needs about {_gb(checkpoint_bytes(model))} and {free}. "
            f"Free space (or lower keep_checkpoints=), then rerun with --resume.") from e
    return final


def _write_files(folder: Path, step: int, model, tokenizer, optimizer, scheduler, state: dict[str, Any],
                 prompt_suffix: str | None) -> None:
    """Every file of a checkpoint except the manifest (tests replace this to simulate a full disk)."""
    model.save_pretrained(folder / "policy", safe_serialization=True)
    tokenizer.save_pretrained(folder / "policy")
    if prompt_suffix is not None:
        write_prompt_file(folder / "policy", prompt_suffix)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, folder / "optimizer.pt")
    (folder / "state.json").write_text(json.dumps({"step": step, **state, "rng": rng_state()}))


def write_prompt_file(policy_dir: str | Path, prompt_suffix: str) -> None:
    """Record the training prompt suffix beside a policy (read by ``read_prompt_file``)."""
    Path(policy_dir, PROMPT_FILE).write_text(json.dumps({"training_prompt_suffix": prompt_suffix}))


def read_prompt_file(policy_dir: str | Path) -> str | None:
    """The training prompt suffix recorded beside a policy, or None (not a justrl_lite checkpoint)."""
    path = Path(policy_dir, PROMPT_FILE)
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("training_prompt_suffix")


# ---- verification (choice 2) -----------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """``manifest.json``: {relative path: [bytes, sha256]} of every file in ``folder``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {str(p.relative_to(folder)): [p.stat().st_size, _sha256(p)] for p in files}
    (folder / MANIFEST).write_text(json.dumps({"files": entries}, indent=1))


def verify_checkpoint(folder: Path) -> str | None:
    """None when ``folder``'s files match its manifest, else the first reason they do not."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return f"no {MANIFEST} (cut short, or written before manifests)"
    try:
        entries = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as e:
        return f"unreadable {MANIFEST} ({e})"
    for name, (size, digest) in entries.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {size}"
        if _sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def _steps(root: Path) -> list[Path]:
    """The published ``step_*`` folders, newest first."""
    found = [p for p in root.glob("step_*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)


def _newest_complete(root: Path) -> Path | None:
    return next((p for p in _steps(root) if (p / MANIFEST).is_file()), None) if root.is_dir() else None


def find_resume_checkpoint(output_dir: str | Path) -> tuple[Path | None, list[str]]:
    """(newest checkpoint at or before ``latest`` that verifies, one line per checkpoint skipped and why).

    (None, []) when the run has no checkpoint; ``CheckpointError`` when it has some and none verifies.
    """
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return None, []
    candidates = _steps(root)
    pointer = root / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if name[5:].isdigit():  # steps written after `latest` by a run that died are not trusted
            candidates = [p for p in candidates if int(p.name[5:]) <= int(name[5:])]
    skipped = []
    for path in candidates:
        reason = verify_checkpoint(path)
        if reason is None:
            return path, skipped
        skipped.append(f"skipped {path.name}: {reason}")
    if not candidates:
        return None, []
    raise CheckpointError(f"no checkpoint in {root} verifies ({'; '.join(skipped)}): start without --resume "
                          f"(with --overwrite) or restore a step_* folder from a copy.")


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run folder that verifies (each file is read once to check its SHA-256), or None
    when it has none yet."""
    return find_resume_checkpoint(output_dir)[0]


def resolve_policy_folder(path: str | Path) -> Path:
    """A run folder -> its newest verified checkpoint's ``policy/``; a ``step_*`` folder -> its ``policy/``;
    anything else unchanged (a model folder or hub id)."""
    path = Path(path)
    if checkpoint_root(path).is_dir():
        checkpoint = latest_checkpoint(path)
        if checkpoint is None:
            raise CheckpointError(f"{path} is a run folder without a checkpoint yet: pass a model folder, or "
                                  f"wait for the run's first save (save_every=)")
        path = checkpoint
    return path / "policy" if (path / "policy").is_dir() else path


def remove_temporary(output_dir: str | Path) -> list[Path]:
    """Delete the ``*.tmp-*`` leftovers of a save that never finished (choice 3); return what was removed."""
    root = checkpoint_root(output_dir)
    gone = [p for p in root.glob("*.tmp-*")] if root.is_dir() else []
    for p in gone:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return gone


def prune_checkpoints(output_dir: str | Path, keep: int, keep_every: int = 0) -> list[Path]:
    """Delete checkpoints beyond the newest ``keep`` (0 = keep all) that are not milestones (choice 5)."""
    if keep <= 0:
        return []
    steps = _steps(checkpoint_root(output_dir))
    doomed = [p for p in steps[keep:] if not (keep_every > 0 and int(p.name[5:]) % keep_every == 0)]
    for p in doomed:
        shutil.rmtree(p)
    return doomed


RUN_FILES = ("metrics.jsonl", "checkpoints", "tensorboard", "figures", "config.json")
"""What a run writes in its ``output_dir`` (``--overwrite`` deletes exactly these)."""


def prepare_output_dir(out: Path, *, resume: bool, overwrite: bool) -> Path | None:
    """Refuse to mix two runs in ``out``; return the checkpoint to resume from (None: start at step 0)."""
    if resume and overwrite:
        raise CheckpointError("--resume continues the run in output_dir and --overwrite deletes it: pass one")
    for leftover in remove_temporary(out):
        print(f"removed {leftover}, left by a save that never finished", file=sys.stderr)
    held = [name for name in RUN_FILES[:3] if (out / name).exists()]
    if overwrite:
        for name in RUN_FILES:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        return None
    if not resume:
        if held:
            raise CheckpointError(f"{out} holds another run ({', '.join(held)}): pass --resume to continue it, "
                               f"--overwrite to replace it, or output_dir=<another folder>")
        return None
    checkpoint, skipped = find_resume_checkpoint(out)
    for line in skipped:
        print(f"--resume: {line}", file=sys.stderr)
    if checkpoint is None:
        print(f"--resume: no checkpoint in {out}; starting fresh from step 0", file=sys.stderr)
    else:
        print(f"--resume: continuing from {checkpoint}", file=sys.stderr)
    return checkpoint


def load_training_state(path: Path, optimizer, scheduler) -> dict[str, Any]:
    """Restore optimizer, schedule and RNG states from a checkpoint folder; return its state.json."""
    try:
        state = json.loads((path / "state.json").read_text())
        blobs = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(blobs["optimizer"])
        scheduler.load_state_dict(blobs["scheduler"])
    except Exception as e:  # unreadable file: one clear message
        raise CheckpointError(f"cannot read the training state in {path} ({type(e).__name__}: {e}). "
                              f"Move {path} aside and rerun with --resume (the previous checkpoint is used), "
                              f"or start over with --overwrite.") from e
    set_rng_state(state["rng"])
    return state


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e7 else f"{n / 1e6:.1f} MB"


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
