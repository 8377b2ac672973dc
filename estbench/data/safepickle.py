"""Unpickling benchmark and dataset files without running code from them.

The official NATS-Bench archives and CIFAR-10 python batches are pickles, and a pickle
can name any importable callable (``os.system``...) to be called while it loads. These
files hold plain data only: dicts, lists, tuples, sets, strings, numbers, bytes,
OrderedDicts and numpy arrays/scalars. :class:`RestrictedUnpickler` admits exactly
those globals and refuses every other one before it is imported or called.
:func:`torch_safe_globals` is the same numpy allowlist for ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import pickle
from typing import IO, Any

# (module, name) as written in a pickle -> (module, name) of the object to use; numpy 2
# moved numpy.core to numpy._core, and pickles from either version name either one.
_NUMPY_CORE = ("numpy._core", "numpy.core")
ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("collections", "OrderedDict"): ("collections",),
    ("builtins", "set"): ("builtins",),
    ("builtins", "frozenset"): ("builtins",),
    ("builtins", "bytearray"): ("builtins",),
    ("builtins", "complex"): ("builtins",),
    ("_codecs", "encode"): ("_codecs",),  # how protocol-2 pickles written by Python 3 store bytes
    ("numpy", "ndarray"): ("numpy",),
    ("numpy", "dtype"): ("numpy",),
    **{(f"{core}.multiarray", n): tuple(f"{c}.multiarray" for c in _NUMPY_CORE) for core in _NUMPY_CORE
       for n in ("_reconstruct", "scalar")},
    **{(f"{core}.numeric", "_frombuffer"): tuple(f"{c}.numeric" for c in _NUMPY_CORE) for core in _NUMPY_CORE},
}  # fmt: skip


def _resolve(module: str, name: str) -> Any:
    for candidate in ALLOWED[(module, name)]:
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler that refuses every global outside :data:`ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__.set) mean what pickle's own find_class maps them to
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: the file may only hold plain data (it could run code)"
            )
        return _resolve(module, name)


def restricted_load(fh: IO[bytes], encoding: str = "ASCII") -> Any:
    """``pickle.load(fh)`` that admits plain data only (UnpicklingError otherwise)."""
    return RestrictedUnpickler(fh, encoding=encoding).load()


def torch_safe_globals() -> list:
    """The numpy objects of :data:`ALLOWED` for ``torch.serialization.safe_globals``,
    each under every name a pickle may use for it."""
    out = []
    for (module, name), _ in ALLOWED.items():
        if module.startswith("numpy"):
            try:
                out.append((_resolve(module, name), f"{module}.{name}"))
            except pickle.UnpicklingError:
                continue
    import numpy as np

    # torch's unpickler BUILDs a dtype's state only for allowlisted types: the dtype classes
    out += [type(np.dtype(t)) for t in "?bBhHiIlLqQefdgFDGSUV"]
    return out
