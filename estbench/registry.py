"""One generic registry: named entries with metadata, lazy ``module:attr`` targets and
"did you mean" suggestions for unknown names."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from estbench.errors import UnknownName

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
