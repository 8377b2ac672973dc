"""Supernet checkpoints: ``run_dir/epoch_{E:05d}.pt`` written atomically (temp file in the
same folder, then ``os.replace``), read back with ``weights_only`` so that a checkpoint
file can hold tensors and plain data only, never code."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from estbench.errors import BadInput, MissingData

FORMAT = "estbench-supernet"
VERSION = 1
REQUIRED = ("format", "version", "epoch", "config", "model", "stats")
_NAME = re.compile(r"^epoch_(\d{5,})\.pt$")


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / f"epoch_{epoch:05d}.pt"


def list_checkpoints(run_dir: Path) -> dict[int, Path]:
    """epoch -> checkpoint file, sorted by epoch (temp files and other names ignored)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return {}
    found = {int(m.group(1)): p for p in run_dir.iterdir() if (m := _NAME.match(p.name)) and p.is_file()}
    return dict(sorted(found.items()))


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` so that a reader sees the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, "version": VERSION, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """A checkpoint's content on the CPU; BadInput (one line) for a file that is missing,
    truncated, corrupt or not an estbench supernet checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise MissingData(f"no supernet checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip, pickle and EOF errors all mean the same thing here
        reason = " ".join(str(e).split())[:160]
        raise BadInput(f"{path} is not a readable supernet checkpoint ({type(e).__name__}: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise BadInput(f"{path} is not an estbench supernet checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise BadInput(f"{path}: checkpoint lacks {', '.join(missing)}")
    if state["version"] != VERSION:
        raise BadInput(f"{path}: checkpoint format version {state['version']}, this estbench reads {VERSION}")
    return state
