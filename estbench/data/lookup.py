"""Where datasets and benchmark files are looked up, in this order: an explicit
``--data-dir``, ``$ESTBENCH_DATA``, ``./data``, the user data directory where `estbench
data get` puts downloads (``$XDG_DATA_HOME/estbench``, default
``~/.local/share/estbench``), then ``../shared/data`` (relative to the working
directory, then to the project checkout) as the last local fallback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from estbench.errors import MissingData

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dirs(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Candidate data directories in lookup order (duplicates removed)."""
    cands: list[Path] = []
    if explicit:
        cands.append(Path(explicit))
    env = os.environ.get("ESTBENCH_DATA")
    if env:
        cands.append(Path(env))
    cands += [Path("data"), user_data_dir(), Path("..") / "shared" / "data", _PROJECT_ROOT.parent / "shared" / "data"]
    seen: set[Path] = set()
    out = []
    for c in cands:
        key = c.resolve()
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def user_data_dir() -> Path:
    """Where downloads go when neither --data-dir nor $ESTBENCH_DATA is given."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "estbench"


class DataDir:
    """Resolves relative data paths against the candidate directories."""

    def __init__(self, explicit: str | os.PathLike | None = None) -> None:
        self.explicit = Path(explicit) if explicit else None
        self.dirs = data_dirs(explicit)

    def find(self, relpaths: str | Iterable[str], what: str, how_to_get: str = "") -> Path:
        """First existing ``dir/rel`` over all dirs and relpaths, else MissingData
        naming every place looked at and how to get the file."""
        rels = [relpaths] if isinstance(relpaths, str) else list(relpaths)
        found = self.find_optional(rels)
        if found is not None:
            return found
        looked = [str(d / r) for d in self.dirs for r in rels]
        msg = f"{what} not found; looked in: {', '.join(looked)}."
        if how_to_get:
            msg += f" {how_to_get}"
        msg += " Point --data-dir or ESTBENCH_DATA at the folder that holds it."
        raise MissingData(msg)

    def find_optional(self, relpaths: str | Iterable[str]) -> Path | None:
        rels = [relpaths] if isinstance(relpaths, str) else list(relpaths)
        if self.explicit is not None and not self.explicit.is_dir():
            raise MissingData(f"--data-dir {self.explicit} is not a directory.")
        for d in self.dirs:
            for r in rels:
                p = d / r
                if p.exists():
                    return p
        return None

    def download_dir(self) -> Path:
        """Where `estbench data get` writes: --data-dir, else $ESTBENCH_DATA, else the user
        data directory (all of them are looked up)."""
        if self.explicit is not None:
            return self.explicit
        env = os.environ.get("ESTBENCH_DATA")
        return Path(env) if env else user_data_dir()

    def cache_dir(self) -> Path:
        """Writable cache for decoded datasets: $ESTBENCH_CACHE or ~/.cache/estbench."""
        base = os.environ.get("ESTBENCH_CACHE") or Path.home() / ".cache" / "estbench"
        path = Path(base)
        path.mkdir(parents=True, exist_ok=True)
        return path
