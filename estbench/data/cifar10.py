"""CIFAR-10 input pipeline: load a split from the official python batches or the JPEG
tarball (decoded once, cached as .npz), then cut fixed, normalized batches of images or
of noise for scoring, and a deterministic train/valid split for supernet training."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from estbench.data.lookup import DataDir
from estbench.data.safepickle import restricted_load
from estbench.errors import BadInput

if TYPE_CHECKING:
    import torch

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "test")

BATCHES_DIRS = ("cifar-10-batches-py", "cifar10/cifar-10-batches-py")
TARBALL = "cifar10/cifar10-jpeg-q75.tar.gz"
_BATCH_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_HOW_TO_GET = (
    "Run `estbench data get cifar10` (downloads and verifies the official python version, 163 MB), or get it "
    "from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it so that the data directory holds "
    "cifar-10-batches-py/; zero-shot scores on noise need no data (--input noise-uniform)."
)
_MEMBER = re.compile(r"(?:^|/)(train|test)/([a-z]+)/(\d+)\.jpe?g$")
_CACHE_VERSION = "1"  # bump when the decoded layout changes, so old caches are ignored


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images uint8 [N,32,32,3] (HWC, RGB), labels int64 [N], and which source gave them
    (``"<kind>:<path>"``, kind being ``cifar-10-batches-py`` or ``cifar10-jpeg-q75``)."""

    images: np.ndarray
    labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        # read-only so that a cached, shared set cannot be changed behind a caller's back
        self.images.setflags(write=False)
        self.labels.setflags(write=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def kind(self) -> str:
        """The source kind without the path (stable across machines, fit for config hashes)."""
        return self.source.split(":", 1)[0]


def load_cifar10(data: DataDir, split: str) -> ImageSet:
    """One CIFAR-10 split, from the official batches if present anywhere, else the JPEG tarball.

    The tarball's images come class by class in label order, files by number: NOT the
    official interleaved order, which the tarball does not record."""
    if split not in SPLITS:
        raise BadInput(f"unknown CIFAR-10 split {split!r}; choose one of: {', '.join(SPLITS)}.")
    # the lossless official batches win over the lossy tarball wherever each one lives
    path = data.find_optional(BATCHES_DIRS) or data.find([*BATCHES_DIRS, TARBALL], "CIFAR-10", _HOW_TO_GET)
    path = path.resolve()  # the source string names the file itself, not a cwd-relative path
    if path.is_dir():
        images, labels = _load_batches(path, split)
        return ImageSet(images, labels, f"cifar-10-batches-py:{path}")
    images, labels = _cached(path, split, data.cache_dir())
    return ImageSet(images, labels, f"cifar10-jpeg-q75:{path}")


def _load_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the pickled batches; rows are CHW-flattened, so reshape then move C last."""
    imgs, labs = [], []
    for name in _BATCH_FILES[split]:
        f = folder / name
        if not f.is_file():
            raise BadInput(f"CIFAR-10 batches folder {folder} lacks {name}; re-unpack cifar-10-python.tar.gz.")
        try:
            with open(f, "rb") as fh:
                d = restricted_load(fh, encoding="bytes")  # plain data only: a crafted batch runs nothing
            rows = np.asarray(d[b"data"], dtype=np.uint8)
            lab = np.asarray(d[b"labels"], dtype=np.int64)
        except Exception as e:  # pickle raises many types on damaged files
            raise BadInput(f"{f} is not a CIFAR-10 python batch ({type(e).__name__}: {e}).") from None
        if rows.ndim != 2 or rows.shape[1] != 3072 or lab.shape != (rows.shape[0],):
            raise BadInput(f"{f}: expected data [N,3072] and N labels, got {rows.shape} and {lab.shape}.")
        if lab.size and (lab.min() < 0 or lab.max() >= len(CLASSES)):
            raise BadInput(f"{f}: labels outside 0..{len(CLASSES) - 1}.")
        imgs.append(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labs.append(lab)
    return np.ascontiguousarray(np.concatenate(imgs)), np.concatenate(labs)


def _cache_path(src: Path, split: str, cache_dir: Path) -> Path:
    st = src.stat()
    key = f"{_CACHE_VERSION}|{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{split}"
    return cache_dir / f"cifar10-{split}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _cached(src: Path, split: str, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decoded arrays from the cache, decoding and caching them on a miss."""
    cache = _cache_path(src, split, cache_dir)
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return z["images"], z["labels"]
        except Exception:  # a damaged cache is only a miss: decode again and overwrite it
            pass
    images, labels = _decode_tarball(src, split)
    _write_npz_atomic(cache, images=images, labels=labels)
    return images, labels


def _write_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write to a temp file in the same folder, then rename, so that concurrent or killed
    runs never leave a half-written cache that a later run would trust."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # uncompressed: loading must be far cheaper than decoding
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _decode_tarball(src: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode every JPEG of ``split`` in the tarball; order class by class, files by number."""
    from PIL import Image

    found: dict[tuple[int, int], np.ndarray] = {}
    try:
        with tarfile.open(src, "r|gz") as tar:  # streaming: one sequential pass over the gzip
            for m in tar:
                hit = _MEMBER.search(m.name)
                if not m.isfile() or hit is None or hit.group(1) != split:
                    continue
                if hit.group(2) not in CLASSES:
                    raise BadInput(f"{src}: member {m.name} has unknown class {hit.group(2)!r}.")
                key = (CLASSES.index(hit.group(2)), int(hit.group(3)))
                if key in found:
                    raise BadInput(f"{src}: duplicate image {m.name}.")
                try:
                    with Image.open(io.BytesIO(tar.extractfile(m).read())) as im:
                        arr = np.asarray(im.convert("RGB"))
                except Exception as e:
                    raise BadInput(f"{src}: cannot decode {m.name} ({type(e).__name__}: {e}).") from None
                if arr.shape != (32, 32, 3):
                    raise BadInput(f"{src}: {m.name} is {arr.shape[1]}x{arr.shape[0]}, expected 32x32.")
                found[key] = arr
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise BadInput(f"{src} is not a readable .tar.gz ({type(e).__name__}: {e}).") from None
    if not found:
        raise BadInput(f"{src} holds no {split} images (expected cifar10/{split}/<class>/NNNN.jpg).")
    keys = sorted(found)
    return np.stack([found[k] for k in keys]), np.array([c for c, _ in keys], dtype=np.int64)


def _normalize(x01: np.ndarray) -> np.ndarray:
    """[N,C,H,W] float32 in 0..1 -> standardised with the CIFAR-10 channel statistics."""
    mean = np.asarray(CIFAR10_MEAN, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(CIFAR10_STD, dtype=np.float32).reshape(1, -1, 1, 1)
    return (x01 - mean) / std


def fixed_batches(
    images: ImageSet, batch_size: int, n_batches: int, seed: int = 0, indices: np.ndarray | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` unaugmented, normalized float32 NCHW batches drawn without replacement
    from ``indices`` (default all). One permutation per seed, cut in order, so batch b is
    the same whatever ``n_batches`` is."""
    import torch

    pool = np.arange(len(images)) if indices is None else np.asarray(indices)
    if pool.ndim != 1 or not np.issubdtype(pool.dtype, np.integer):
        raise BadInput("indices must be a 1-D integer array.")
    if pool.size and (pool.min() < 0 or pool.max() >= len(images)):
        raise BadInput(f"indices must lie in 0..{len(images) - 1}.")
    if np.unique(pool).size != pool.size:
        raise BadInput("indices contain duplicates; batches are drawn without replacement.")
    if batch_size < 1 or n_batches < 1:
        raise BadInput(f"batch_size and n_batches must be >= 1 (got {batch_size}, {n_batches}).")
    if batch_size * n_batches > pool.size:
        raise BadInput(f"{n_batches} batches of {batch_size} need {batch_size * n_batches} images; only {pool.size}.")
    order = np.random.default_rng(seed).permutation(pool)
    out = []
    for b in range(n_batches):
        idx = order[b * batch_size : (b + 1) * batch_size]
        x = images.images[idx].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        out.append((torch.from_numpy(_normalize(x)), torch.from_numpy(images.labels[idx].copy())))
    return out


def _uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # normalized like images would be, so its scale matches what the network sees from data
    if shape[1] != len(CIFAR10_MEAN):
        raise BadInput(f"noise-uniform is normalized per RGB channel; needs 3 channels, got {shape[1]}.")
    return _normalize(rng.random(shape, dtype=np.float32))


def _gaussian(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)


NOISE_KINDS: dict[str, Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]] = {
    "noise-uniform": _uniform,
    "noise-gaussian": _gaussian,
}


def noise_batches(
    kind: str,
    batch_size: int,
    n_batches: int,
    seed: int = 0,
    shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of noise inputs with random labels (paper appendix B.1): ``noise-uniform``
    (U[0,1) then CIFAR-normalized) or ``noise-gaussian`` (N(0,1) as is). Drawn batch after
    batch from one generator, so batch b does not depend on ``n_batches``."""
    import torch

    make = NOISE_KINDS.get(kind)
    if make is None:
        raise BadInput(f"unknown noise kind {kind!r}; choose one of: {', '.join(NOISE_KINDS)}.")
    if batch_size < 1 or n_batches < 1:
        raise BadInput(f"batch_size and n_batches must be >= 1 (got {batch_size}, {n_batches}).")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        x = make(rng, (batch_size, *shape))
        y = rng.integers(0, num_classes, size=batch_size, dtype=np.int64)
        out.append((torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)))
    return out


def train_valid_split(n: int, valid_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted index arrays (train, valid) covering 0..n-1; valid has
    round(n * valid_fraction) indices (the paper's 80/20 supernet split)."""
    if not 0.0 < valid_fraction < 1.0:
        raise BadInput(f"valid_fraction must be in (0, 1), got {valid_fraction}.")
    n_valid = round(n * valid_fraction)
    if n_valid < 1 or n_valid >= n:
        raise BadInput(f"cannot split {n} items with valid_fraction {valid_fraction} into two non-empty parts.")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])
