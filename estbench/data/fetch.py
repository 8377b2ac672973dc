"""`estbench data get`: download a catalogued file with progress, resume a partial
download, verify size and checksum, move it into place atomically, unpack archives.

The partial file is ``<dest>.part`` beside its target; a rerun asks the server for the
rest (an HTTP Range request) and starts over when the server ignores the range. Nothing
reaches the loader's path before it is verified and completely unpacked (unpacking goes
to a temporary folder that is renamed into place)."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from estbench.data.catalog import Remote
from estbench.errors import EstbenchError

CHUNK = 1 << 20
Progress = Callable[[int, int], None]  # (bytes so far, total bytes)


class DownloadError(EstbenchError):
    """The download or its verification failed (exit 1); the message says what to do by hand."""


def by_hand(remote: Remote, data_dir: Path) -> str:
    return (
        f"download {remote.url} (or from {remote.page}) by hand and put it at {data_dir / remote.dest} "
        f"({remote.size:,} bytes, {remote.algorithm} {remote.checksum}); then rerun `estbench data get {remote.name}`"
    )


def fetch(remote: Remote, data_dir: Path, progress: Progress | None = None, timeout: float = 60.0) -> Path:
    """Make ``data_dir / remote.provides`` exist; returns it."""
    target = data_dir / remote.provides
    if target.exists():
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    archive = data_dir / remote.dest
    if not (archive.exists() and _verified(archive, remote)):
        _download(remote, archive, progress, timeout, data_dir)
    if remote.unpack == "tar":
        _unpack(archive, remote, data_dir)
        archive.unlink()
    return target


def _download(remote: Remote, archive: Path, progress: Progress | None, timeout: float, data_dir: Path) -> None:
    part = archive.with_name(archive.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > remote.size:
        part.unlink()
        have = 0
    url = remote.source_url()
    request = urllib.request.Request(url, headers={"User-Agent": "estbench"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:  # the server sent the whole file: start over
                have = 0
            with open(part, "ab" if have else "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    have += len(chunk)
                    if progress:
                        progress(have, remote.size)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        kept = f"; {have:,} bytes kept in {part}, a rerun resumes" if part.exists() and have else ""
        raise DownloadError(
            f"cannot download {remote.name} from {url}: {reason}{kept}. Or {by_hand(remote, data_dir)}"
        ) from None
    if have < remote.size:  # the connection ended early (a server that died, a dropped link)
        raise DownloadError(
            f"download of {remote.name} from {url} stopped at {have:,} of {remote.size:,} bytes; kept in {part}, "
            f"a rerun resumes. Or {by_hand(remote, data_dir)}"
        )
    if not _verified(part, remote):
        got = part.stat().st_size
        part.unlink()
        raise DownloadError(
            f"{remote.name} from {url} failed verification ({got:,} bytes, expected {remote.size:,} with "
            f"{remote.algorithm} {remote.checksum}); nothing was kept. {by_hand(remote, data_dir).capitalize()}"
        )
    os.replace(part, archive)


def _verified(path: Path, remote: Remote) -> bool:
    if path.stat().st_size != remote.size:
        return False
    digest = hashlib.new(remote.algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == remote.checksum


def _unpack(archive: Path, remote: Remote, data_dir: Path) -> None:
    """Unpack into a temporary folder beside the target, then rename ``provides`` into
    place: a killed unpack leaves nothing the loader would take for data."""
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".unpack-") as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")  # no absolute paths, links out or devices
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(
                f"cannot unpack {archive}: {exc}; delete it and rerun `estbench data get {remote.name}`"
            ) from None
        found = Path(tmp) / remote.provides
        if not found.exists():
            raise DownloadError(f"{archive} holds no {remote.provides}; it is not the {remote.name} archive")
        shutil.move(str(found), data_dir / remote.provides)
