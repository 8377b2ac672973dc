"""One generic registry: named entries with metadata, lazy ``module:attr`` targets and
"did you mean" suggestions for unknown names; and the plugins that add entries from
outside the repo (installed entry points, ``--plugin FILE``)."""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Generic, Iterator, TypeVar

from estbench.errors import BadInput, UnknownName

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    name: str
    target: Any  # the object itself or a lazy "module:attr" string
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> T:
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            self.target = getattr(importlib.import_module(module), attr)
        return self.target


class Registry(Generic[T]):
    """``kind`` names what is registered ("space", "estimator") for error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, target: Any = None, **meta: Any) -> Callable[[Any], Any] | Any:
        """Register ``target`` under ``name``; without a target, act as a decorator."""
        if name != name.lower():
            raise ValueError(f"registry names are lowercase: {name!r}")

        def add(obj: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, obj, dict(meta))
            return obj

        return add if target is None else add(target)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests register throwaway entries and take them out again)."""
        self.entry(name)  # UnknownName for a name that is not there
        del self._entries[name]

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(self.unknown_message(name)) from None

    def get(self, name: str) -> T:
        return self.entry(name).load()

    def meta(self, name: str) -> dict[str, Any]:
        return self.entry(name).meta

    def names(self, pattern: str | None = None, **where: Any) -> list[str]:
        """Registered names, optionally filtered by a glob and by metadata equality."""
        out = []
        for name, e in self._entries.items():
            if pattern and not fnmatch.fnmatch(name, pattern):
                continue
            if any(e.meta.get(k) != v for k, v in where.items()):
                continue
            out.append(name)
        return sorted(out)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def unknown_message(self, name: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(names) or '(none)'}."


# ---- plugins ----------------------------------------------------------------------
# Entry-point groups an installed package can add estimators or spaces through. An
# entry point names a module (importing it registers, e.g. ``ESTIMATORS.register(...)``)
# or a function that registers when called with no arguments.
PLUGIN_GROUPS = ("estbench.estimators", "estbench.spaces")
_loaded_entry_points: set[tuple[str, str, str]] = set()


def load_entry_points(groups: tuple[str, ...] = PLUGIN_GROUPS) -> list[str]:
    """Load every installed plugin of ``groups`` once per process; returns the names
    loaded now. A plugin that fails raises BadInput naming it."""
    from importlib.metadata import entry_points

    loaded = []
    for group in groups:
        for ep in entry_points(group=group):
            key = (group, ep.name, ep.value)
            if key in _loaded_entry_points:
                continue
            where = f"plugin {ep.name} ({group} entry point {ep.value})"
            try:
                obj = ep.load()
                if inspect.isfunction(obj):
                    obj()
                elif not isinstance(obj, ModuleType):
                    raise TypeError(f"names a {type(obj).__name__}; expected a module or a function")
            except Exception as exc:
                raise BadInput(f"{where} failed: {_describe(exc)}") from exc
            _loaded_entry_points.add(key)
            loaded.append(ep.name)
    return loaded


PLUGIN_MODULE_PREFIX = "estbench_plugin_"


def load_plugin_file(path: str | Path) -> ModuleType:
    """Import the Python file ``path`` as a module (once per process and file), so that
    what it registers is there for the command. A missing or failing file raises
    BadInput with the file, the error and the plugin's line."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise BadInput(f"plugin {path}: no such file")
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:8]
    name = PLUGIN_MODULE_PREFIX + re.sub(r"\W", "_", file.stem) + "_" + digest
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise BadInput(f"plugin {path}: not a Python file (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise BadInput(f"plugin {path} failed: {_describe(exc, file)}") from exc
    return module


def _describe(exc: BaseException, file: Path | None = None) -> str:
    """``Type: message``, with the plugin's line where the error was raised."""
    text = f"{type(exc).__name__}: {exc}"
    if file is not None and not isinstance(exc, SyntaxError):  # a SyntaxError names its line
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
        if lines:
            text += f" (line {lines[-1]})"
    return text
