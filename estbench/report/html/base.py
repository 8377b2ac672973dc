"""What a report section is: a registered builder ``build(ctx) -> Section`` that reads
the store through the report context, draws its figures with matplotlib and returns
them with its tables and notes; or raises ``Missing`` with one line saying what data
is absent and which command adds it.

A new section is one module in ``estbench/report/html/sections/`` with a
``@section(...)`` registration; it is found by import (like the analyses) and placed by
its ``order``. Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from estbench.registry import Registry


class Missing(Exception):
    """The store has no data for a section: the message is one line naming what is
    missing and the command that adds it."""


@dataclass
class Figure:
    """One drawn figure: ``name`` is its file stem under ``--figures DIR`` (letters,
    digits, ``-`` and ``_``), ``fig`` a ``matplotlib.figure.Figure``; ``alt`` the text a
    screen reader (and a failed image) shows."""

    name: str
    caption: str
    fig: Any
    alt: str = ""


@dataclass
class Table:
    """A table of the page: the columns, the rows, a title and the (row, column)
    cells to show in bold (the best value of a column)."""

    columns: list[str]
    rows: list[list]
    title: str | None = None
    best: set[tuple[int, int]] = field(default_factory=set)
    digits: int = 3


@dataclass
class Section:
    """A built section: its figures, tables and notes (short lines shown under it)."""

    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.figures or self.tables)


@dataclass(frozen=True)
class SectionInfo:
    key: str
    title: str
    paper: str  # the paper's figures / tables it reproduces, e.g. "Fig. 4, A21, A22"
    blurb: str  # what it shows and how to read it (one paragraph)
    fills: str  # the command(s) that fill it
    order: int
    build: Callable[..., Section]


SECTIONS: Registry = Registry("report section")


def section(
    key: str, *, title: str, paper: str, blurb: str, fills: str, order: int
) -> Callable[[Callable[..., Section]], Callable[..., Section]]:
    """Register the decorated ``build(ctx) -> Section`` as report section ``key``."""

    def add(build: Callable[..., Section]) -> Callable[..., Section]:
        SECTIONS.register(key, SectionInfo(key, title, paper, " ".join(blurb.split()), fills, order, build))
        return build

    return add


def all_sections() -> list[SectionInfo]:
    """Every registered section, in page order (imports the section modules)."""
    import importlib
    import pkgutil

    from estbench.report.html import sections

    for mod in pkgutil.iter_modules(sections.__path__):
        importlib.import_module(f"{sections.__name__}.{mod.name}")
    return sorted((SECTIONS.entry(k).load() for k in SECTIONS.names()), key=lambda s: (s.order, s.key))


def best_cells(columns: list[str], rows: list[list], higher: dict[str, bool]) -> set[tuple[int, int]]:
    """The (row, column) cells holding the best finite value of each column named in
    ``higher`` (True: the largest is best, False: the smallest); ties are all marked."""
    out: set[tuple[int, int]] = set()
    for name, hib in higher.items():
        if name not in columns:
            continue
        j = columns.index(name)
        vals = [(i, r[j]) for i, r in enumerate(rows) if isinstance(r[j], (int, float)) and r[j] == r[j]]
        if not vals:
            continue
        best = max(v for _, v in vals) if hib else min(v for _, v in vals)
        out |= {(i, j) for i, v in vals if v == best}
    return out
