"""CIFAR-10 pipeline on tiny fixtures in both formats; one `data` test on the real tarball."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from estbench.data import cifar10 as c10
from estbench.data.cifar10 import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CLASSES,
    ImageSet,
    fixed_batches,
    load_cifar10,
    noise_batches,
    train_valid_split,
)
from estbench.data.lookup import DataDir
from estbench.errors import BadInput, MissingData

pytestmark = pytest.mark.own_cache  # these test the cache: each starts with an empty one


def only(path: Path) -> DataDir:
    """A DataDir that looks in ``path`` alone (never at ../shared/data or ./data)."""
    d = DataDir(path)
    d.dirs = [path]
    return d


# ---------- fixtures: official python batches ----------


def write_batches(folder: Path, per_batch: int = 3, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fake cifar-10-batches-py; returns the HWC images and labels written per split."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    out: dict[str, list] = {"train": [[], []], "test": [[], []]}
    for name, split in [(f"data_batch_{i}", "train") for i in range(1, 6)] + [("test_batch", "test")]:
        hwc = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        rows = hwc.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # official rows: R plane, G plane, B plane
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": rows, b"labels": labels, b"batch_label": name.encode()}, fh)
        out[split][0].append(hwc)
        out[split][1].append(labels)
    return {s: (np.concatenate(i), np.concatenate(lab).astype(np.int64)) for s, (i, lab) in out.items()}


def test_batches_rows_become_hwc_images(tmp_path):
    want = write_batches(tmp_path / "cifar-10-batches-py")
    for split, n in [("train", 15), ("test", 3)]:
        s = load_cifar10(only(tmp_path), split)
        assert s.images.shape == (n, 32, 32, 3) and s.images.dtype == np.uint8
        assert s.labels.shape == (n,) and s.labels.dtype == np.int64
        np.testing.assert_array_equal(s.images, want[split][0])
        np.testing.assert_array_equal(s.labels, want[split][1])
        assert s.kind == "cifar-10-batches-py" and len(s) == n
        assert s.source == f"cifar-10-batches-py:{(tmp_path / 'cifar-10-batches-py').resolve()}"


def test_batches_found_under_cifar10_folder_and_preferred_over_tarball(tmp_path):
    write_batches(tmp_path / "cifar10" / "cifar-10-batches-py")
    write_tarball(tmp_path / "cifar10" / "cifar10-jpeg-q75.tar.gz")
    assert load_cifar10(only(tmp_path), "test").kind == "cifar-10-batches-py"


def test_imageset_is_read_only(tmp_path):
    write_batches(tmp_path / "cifar-10-batches-py")
    s = load_cifar10(only(tmp_path), "test")
    with pytest.raises(ValueError):
        s.images[0, 0, 0, 0] = 1


# ---------- fixtures: JPEG tarball ----------

# (split, class, number) -> a flat colour that encodes where the image came from
FILES = [("train", c, n) for c in ("bird", "airplane", "truck") for n in (2, 0, 1)] + [
    ("test", c, n) for c in ("cat", "airplane") for n in (1, 0)
]


def colour(split: str, cls: str, num: int, shift: int = 0) -> tuple[int, int, int]:
    return (20 * CLASSES.index(cls) + shift, 60 * num + 10, 200 if split == "train" else 40)


def jpeg(rgb: tuple[int, int, int], size: int = 32) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_tarball(path: Path, shift: int = 0, extra: dict[str, bytes] | None = None) -> Path:
    """Official layout, members deliberately out of order (the loader must sort them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        add(tar, "cifar10/README.md", b"readme")
        for split, cls, num in FILES:
            add(tar, f"cifar10/{split}/{cls}/{num:04d}.jpg", jpeg(colour(split, cls, num, shift)))
        for name, payload in (extra or {}).items():
            add(tar, name, payload)
    return path


@pytest.fixture
def tarball(tmp_path) -> Path:
    return write_tarball(tmp_path / "cifar10" / "cifar10-jpeg-q75.tar.gz")


def expected(split: str, shift: int = 0) -> list[tuple[int, tuple[int, int, int]]]:
    keys = sorted((CLASSES.index(c), n) for s, c, n in FILES if s == split)
    return [(ci, colour(split, CLASSES[ci], n, shift)) for ci, n in keys]


@pytest.mark.parametrize("split", ["train", "test"])
def test_tarball_class_then_number_order(tmp_path, tarball, split):
    s = load_cifar10(only(tmp_path), split)
    want = expected(split)
    assert s.images.shape == (len(want), 32, 32, 3) and s.images.dtype == np.uint8
    assert s.labels.dtype == np.int64
    assert s.labels.tolist() == [ci for ci, _ in want]
    got = s.images.reshape(len(want), -1, 3).mean(axis=1)
    np.testing.assert_allclose(got, [rgb for _, rgb in want], atol=3)  # JPEG: flat colours decode within a few levels
    assert s.kind == "cifar10-jpeg-q75" and s.source.endswith(str(tarball.resolve()))


def test_tarball_decoded_once_then_cached(tmp_path, tarball, monkeypatch):
    first = load_cifar10(only(tmp_path), "train")

    def boom(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(c10, "_decode_tarball", boom)
    again = load_cifar10(only(tmp_path), "train")
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    cache = Path(os.environ["ESTBENCH_CACHE"])
    assert len(list(cache.glob("cifar10-train-*.npz"))) == 1
    assert not list(cache.glob("*.tmp"))  # the atomic write left no temp file behind
    with pytest.raises(AssertionError):  # the other split has its own cache entry
        load_cifar10(only(tmp_path), "test")


def test_changed_tarball_invalidates_cache(tmp_path, tarball):
    load_cifar10(only(tmp_path), "train")
    st = tarball.stat()
    write_tarball(tarball, shift=7)
    os.utime(tarball, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a coarse clock must not hide the change
    s = load_cifar10(only(tmp_path), "train")
    np.testing.assert_allclose(
        s.images.reshape(len(s), -1, 3).mean(axis=1), [rgb for _, rgb in expected("train", 7)], atol=3
    )


def test_damaged_cache_is_a_miss(tmp_path, tarball):
    load_cifar10(only(tmp_path), "test")
    (entry,) = Path(os.environ["ESTBENCH_CACHE"]).glob("cifar10-test-*.npz")
    entry.write_bytes(b"not an npz")
    assert load_cifar10(only(tmp_path), "test").labels.tolist() == [ci for ci, _ in expected("test")]


# ---------- error paths ----------


def test_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(MissingData) as e:
        load_cifar10(only(tmp_path), "train")
    msg = str(e.value)
    for part in ("cifar-10-batches-py", "cifar10/cifar-10-batches-py", "cifar10-jpeg-q75.tar.gz", "kriz/cifar.html"):
        assert part in msg
    assert "\n" not in msg


def test_unknown_split(tmp_path):
    with pytest.raises(BadInput, match="unknown CIFAR-10 split 'valid'"):
        load_cifar10(only(tmp_path), "valid")


def test_not_a_gzip(tmp_path):
    p = tmp_path / "cifar10" / "cifar10-jpeg-q75.tar.gz"
    p.parent.mkdir()
    p.write_bytes(b"this is not a tarball" * 10)
    with pytest.raises(BadInput, match="not a readable .tar.gz"):
        load_cifar10(only(tmp_path), "train")


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"cifar10/train/cat/0000.jpg": b"garbage"}, "cannot decode cifar10/train/cat/0000.jpg"),
        ({"cifar10/train/unicorn/0000.jpg": jpeg((1, 2, 3))}, "unknown class 'unicorn'"),
        ({"cifar10/train/cat/0000.jpg": jpeg((1, 2, 3), size=16)}, "is 16x16, expected 32x32"),
    ],
)
def test_bad_tarball_members(tmp_path, extra, match):
    write_tarball(tmp_path / "cifar10" / "cifar10-jpeg-q75.tar.gz", extra=extra)
    with pytest.raises(BadInput, match=match):
        load_cifar10(only(tmp_path), "train")


def test_tarball_without_split(tmp_path):
    p = tmp_path / "cifar10" / "cifar10-jpeg-q75.tar.gz"
    p.parent.mkdir()
    with tarfile.open(p, "w:gz") as tar:
        add(tar, "cifar10/test/cat/0000.jpg", jpeg((0, 0, 0)))
    with pytest.raises(BadInput, match="holds no train images"):
        load_cifar10(only(tmp_path), "train")


def test_bad_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_batches(folder)
    (folder / "test_batch").write_bytes(b"\x80garbage")
    with pytest.raises(BadInput, match="not a CIFAR-10 python batch"):
        load_cifar10(only(tmp_path), "test")
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(BadInput, match=r"expected data \[N,3072\]"):
        load_cifar10(only(tmp_path), "test")
    (folder / "data_batch_3").unlink()
    with pytest.raises(BadInput, match="lacks data_batch_3"):
        load_cifar10(only(tmp_path), "train")


def test_batches_in_the_official_python2_layout_load(tmp_path):
    """The official files are protocol-2 pickles naming numpy.core.multiarray (numpy 1);
    the restricted unpickler admits exactly what they hold."""
    want = write_batches(tmp_path / "cifar-10-batches-py")
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        f = tmp_path / "cifar-10-batches-py" / name
        with open(f, "rb") as fh:
            d = pickle.load(fh)
        d[b"filenames"] = [b"x.png"] * len(d[b"labels"])
        d[b"labels"] = [np.int64(v) for v in d[b"labels"]]  # numpy scalars, as some re-packed copies hold
        blob = pickle.dumps(d, protocol=2).replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
        assert b"numpy.core.multiarray\n_reconstruct" in blob
        f.write_bytes(blob)
    got = load_cifar10(only(tmp_path), "train")
    assert np.array_equal(got.images, want["train"][0]) and np.array_equal(got.labels, want["train"][1])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_malicious_batch_never_runs(tmp_path, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    write_batches(folder)
    marker = tmp_path / "pwned"
    payload = type("Payload", (), {"__reduce__": lambda self: (os.system, (f"touch '{marker}'",))})()
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": payload, b"labels": [0]}, fh, protocol=protocol)
    with pytest.raises(BadInput, match=r"test_batch is not a CIFAR-10 python batch .*refused to load .*system"):
        load_cifar10(only(tmp_path), "test")
    assert not marker.exists()


# ---------- fixed batches ----------


def numbered_set(n: int = 40) -> ImageSet:
    """Labels are the image indices, so a batch's labels say which images it drew."""
    rng = np.random.default_rng(1)
    return ImageSet(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n, dtype=np.int64), "fake:x")


def test_fixed_batches_shapes_and_normalization():
    s = numbered_set()
    ((x, y),) = fixed_batches(s, 4, 1, seed=3)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    idx = y.numpy()
    manual = (s.images[idx] / 255.0 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)
    np.testing.assert_allclose(x.numpy(), manual.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


def test_fixed_batches_deterministic_prefix_and_without_replacement():
    s = numbered_set()
    five = fixed_batches(s, 8, 5, seed=0)
    one = fixed_batches(s, 8, 1, seed=0)
    assert torch.equal(five[0][0], one[0][0]) and torch.equal(five[0][1], one[0][1])
    again = fixed_batches(s, 8, 5, seed=0)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(five, again))
    drawn = torch.cat([y for _, y in five]).tolist()
    assert sorted(drawn) == list(range(40))  # 5 x 8 = all 40, none twice
    assert fixed_batches(s, 8, 1, seed=1)[0][1].tolist() != one[0][1].tolist()


def test_fixed_batches_from_indices():
    s = numbered_set()
    pool = np.arange(10, 30)
    drawn = torch.cat([y for _, y in fixed_batches(s, 5, 4, indices=pool)]).tolist()
    assert sorted(drawn) == pool.tolist()


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(batch_size=8, n_batches=6), "need 48 images; only 40"),
        (dict(batch_size=0, n_batches=1), "must be >= 1"),
        (dict(batch_size=2, n_batches=1, indices=np.array([0, 40])), "must lie in 0..39"),
        (dict(batch_size=2, n_batches=1, indices=np.array([1, 1])), "duplicates"),
        (dict(batch_size=2, n_batches=1, indices=np.array([0.5, 1.0])), "1-D integer"),
    ],
)
def test_fixed_batches_bad_input(kw, match):
    with pytest.raises(BadInput, match=match):
        fixed_batches(numbered_set(), **kw)


# ---------- noise ----------


@pytest.mark.parametrize("kind", ["noise-uniform", "noise-gaussian"])
def test_noise_batches_deterministic_prefix(kind):
    three = noise_batches(kind, 16, 3, seed=5)
    one = noise_batches(kind, 16, 1, seed=5)
    x, y = three[0]
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, one[0][0]) and torch.equal(y, one[0][1])
    assert not torch.equal(x, noise_batches(kind, 16, 1, seed=6)[0][0])
    assert int(y.min()) >= 0 and int(y.max()) < 10
    y7 = noise_batches(kind, 64, 1, num_classes=3, shape=(3, 8, 8))[0]
    assert y7[0].shape == (64, 3, 8, 8) and set(y7[1].tolist()) <= {0, 1, 2}


def test_noise_uniform_is_normalized_like_images():
    x = noise_batches("noise-uniform", 64, 1)[0][0].numpy()
    for ch, (m, s) in enumerate(zip(CIFAR10_MEAN, CIFAR10_STD)):
        raw = x[:, ch] * s + m  # undo the normalization: back to U[0,1)
        assert raw.min() >= -1e-6 and raw.max() < 1 + 1e-6 and abs(raw.mean() - 0.5) < 0.01


def test_noise_gaussian_is_standard_normal():
    x = noise_batches("noise-gaussian", 64, 1)[0][0].numpy()
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01


def test_noise_bad_kind_lists_kinds():
    with pytest.raises(BadInput, match="noise-uniform, noise-gaussian"):
        noise_batches("noise-pink", 2, 1)
    with pytest.raises(BadInput, match="needs 3 channels"):
        noise_batches("noise-uniform", 2, 1, shape=(1, 8, 8))


# ---------- train / valid split ----------


def test_train_valid_split():
    tr, va = train_valid_split(1000)
    assert len(tr) == 800 and len(va) == 200
    assert not set(tr) & set(va) and sorted(np.concatenate([tr, va]).tolist()) == list(range(1000))
    tr2, va2 = train_valid_split(1000)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert not np.array_equal(va, train_valid_split(1000, seed=1)[1])
    assert len(train_valid_split(10, 0.5)[1]) == 5


@pytest.mark.parametrize("n, frac", [(100, 0.0), (100, 1.0), (1, 0.2), (3, 0.1)])
def test_train_valid_split_bad_input(n, frac):
    with pytest.raises(BadInput):
        train_valid_split(n, frac)


# ---------- real data ----------


@pytest.mark.data
def test_real_tarball(shared_data, capsys):
    if not (shared_data / c10.TARBALL).is_file():
        pytest.skip(f"{c10.TARBALL} not in {shared_data}")
    d = only(shared_data)  # the tarball itself, even if official batches live elsewhere
    t0 = time.perf_counter()
    train, test = load_cifar10(d, "train"), load_cifar10(d, "test")
    t1 = time.perf_counter()
    train2, test2 = load_cifar10(d, "train"), load_cifar10(d, "test")
    t2 = time.perf_counter()
    with capsys.disabled():
        print(f"\nCIFAR-10 tarball: first decode {t1 - t0:.2f} s, cached load {t2 - t1:.2f} s")
    assert train.images.shape == (50000, 32, 32, 3) and test.images.shape == (10000, 32, 32, 3)
    assert np.bincount(train.labels).tolist() == [5000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    np.testing.assert_allclose(train.images.reshape(-1, 3).mean(axis=0), [125.27, 122.93, 113.86], atol=0.5)
    assert train.kind == "cifar10-jpeg-q75"
    np.testing.assert_array_equal(train2.images, train.images)
    np.testing.assert_array_equal(test2.labels, test.labels)
    assert t2 - t1 < (t1 - t0) / 5
