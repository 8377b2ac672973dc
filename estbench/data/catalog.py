"""The files `estbench data get` can download: one table, URLs and checksums in one place.

An entry is downloaded to ``<data dir>/<dest>`` (verified by size and checksum, then
moved into place atomically) and, for archives, unpacked there so that the loader finds
``provides``. ``$ESTBENCH_MIRROR`` replaces the origin: the file is fetched from
``$ESTBENCH_MIRROR/<file name>`` instead (the same checksum applies).

Checksums: CIFAR-10's md5 is the one its authors publish (and torchvision checks). The
NATS-Bench archive's size and sha256 are the ones other public harnesses pin for it; no
download was possible here to confirm them (the development machine has no network),
so a mismatch says which file to fetch by hand."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Remote:
    name: str
    description: str
    url: str
    dest: str  # the downloaded file, relative to the data directory
    size: int  # bytes
    algorithm: str  # md5 | sha256
    checksum: str
    provides: str  # what the loader looks for once it is unpacked (relative to the data dir)
    unpack: str | None = None  # "tar": unpacked into the data directory (then the archive is removed)
    licence: str = ""
    page: str = ""  # where a person gets it by hand

    def source_url(self) -> str:
        mirror = os.environ.get("ESTBENCH_MIRROR")
        return f"{mirror.rstrip('/')}/{os.path.basename(self.dest)}" if mirror else self.url


REMOTES: dict[str, Remote] = {
    r.name: r
    for r in (
        Remote(
            "cifar10",
            "CIFAR-10, python version (the official batches; zero-shot inputs, supernet training)",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "cifar-10-python.tar.gz",
            170_498_071,
            "md5",
            "c58f30108f718f92721af3b95e74349a",
            provides="cifar-10-batches-py",
            unpack="tar",
            licence="no formal licence; cite Krizhevsky (2009)",
            page="https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
        Remote(
            "nats-tss",
            "NATS-Bench topology 'simple' archive (official NB201 ground truth, 2 GB unpacked)",
            "https://drive.usercontent.google.com/download?id=17_saCsj_krKjlCBLOJEpNtzPXArMCqxU&export=download&confirm=t",
            "NATS-tss-v1_0-3ffb9-simple.tar",
            1_145_989_120,
            "sha256",
            "580fd8f3425fed9f495640b0f12ccb7744f89dec7aff263bd75aed37ab0b8bb6",
            provides="NATS-tss-v1_0-3ffb9-simple",
            unpack="tar",
            licence="MIT (NATS-Bench)",
            page="https://github.com/D-X-Y/NATS-Bench",
        ),
    )
}


@dataclass(frozen=True)
class Local:
    """Another accepted form of a dataset that is not downloaded by estbench (`data list`)."""

    name: str
    description: str
    paths: tuple[str, ...]  # relative to a data directory, in lookup order


LOCALS: tuple[Local, ...] = (
    Local(
        "cifar10-jpeg",
        "CIFAR-10 as JPEG files (lossy; accepted in place of the batches)",
        ("cifar10/cifar10-jpeg-q75.tar.gz",),
    ),
    Local(
        "nb201-table",
        "NB201 ground truth as an estbench CSV table (15,625 archs, NATS-Bench means)",
        ("nb201/nb201_truth.csv.gz", "nb201/nb201_truth.csv", "nb201_truth.csv.gz"),
    ),
    Local(
        "nb201-pth",
        "NAS-Bench-201 .pth archive (several GB of RAM to read)",
        ("NAS-Bench-201-v1_1-096897.pth", "NAS-Bench-201-v1_0-e61699.pth"),
    ),
)
