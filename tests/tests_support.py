"""Helpers shared by test modules (not a test module itself)."""

import pickle

import numpy as np


def write_fake_cifar(root, n_per_batch=20):
    """A tiny cifar-10-batches-py directory in the official pickle format."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        blob = {
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, n_per_batch)),
        }
        with open(d / name, "wb") as fh:
            pickle.dump(blob, fh)
    return root


def one_line_error(r, code: int = 2) -> str:
    """The one ``error:`` line of a failed CLI result (no traceback), checking its exit code."""
    assert r.exit_code == code, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]
