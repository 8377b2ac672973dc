"""One renderer for rows. ``table`` is a rich table for people; ``csv``, ``json`` and
``markdown`` print nothing but the rows, ``latex`` a booktabs table that compiles as
printed (with the title as its caption) (machine formats keep full precision, human
formats round floats to ``digits``)."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Sequence

from estbench.errors import BadInput

FORMATS = ("table", "csv", "json", "markdown", "latex")
MACHINE_FORMATS = ("csv", "json")  # every column, full precision; the others are for people


def _human(v: Any, digits: int) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if abs(v) >= 1e7:
            return f"{v:.{digits}e}"
        return f"{v:.{digits}f}"
    return str(v)


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if hasattr(v, "item"):  # numpy scalars
        return _plain(v.item())
    return v


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str = "table",
    title: str | None = None,
    digits: int = 3,
    width: int | None = None,
) -> str:
    """Return the rows rendered in ``fmt``. A table is as wide as its contents, or
    ``width`` columns at most (default: the terminal's when stdout is one)."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "table":
        return _table(list(columns), [list(r) for r in rows], title, digits, width)
    return _RENDERERS[fmt](list(columns), [list(r) for r in rows], title, digits)


def _csv(cols, rows, title, digits) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if v is None else _plain(v) for v in r])
    return buf.getvalue()


def _json(cols, rows, title, digits) -> str:
    return json.dumps([{c: _plain(v) for c, v in zip(cols, r)} for r in rows], indent=1) + "\n"


def _markdown(cols, rows, title, digits) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(esc(_human(v, digits)) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_LATEX_ESC = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    "<": r"\textless{}",  # OT1 fonts print these three as other glyphs
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "\n": " ",  # one table row per line
    "\r": " ",
    "\t": " ",
    "\u00b1": r"$\pm$",  # the few non-Latin-1 signs an analysis may print
    "\u03c4": r"$\tau$",
    "\u03c1": r"$\rho$",
    "\u2264": r"$\leq$",
    "\u2265": r"$\geq$",
    "\u2212": "-",
    "\u2026": r"\ldots{}",
}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX text: every special character escaped, so it compiles as
    printed. A leading ``[`` or ``*`` is braced: after ``\\\\``, ``\\toprule`` or
    ``\\midrule`` it would be read as that command's optional argument."""
    out = "".join(_LATEX_ESC.get(ch, ch) for ch in text)
    return "{" + out[0] + "}" + out[1:] if out[:1] in ("[", "*") else out


def _latex(cols, rows, title, digits) -> str:
    """A booktabs ``tabular`` (numeric columns right-aligned). With a title, inside a
    ``table`` float with the title as its ``\\caption``: the output compiles as it is in
    any document with ``\\usepackage{booktabs}`` and the provenance the title carries
    (truth, protocol, intervals) stays with the table; the ``tabular`` alone is the lines
    between ``\\begin{tabular}`` and ``\\end{tabular}``."""
    numeric = [
        any(isinstance(r[j], (int, float, Decimal)) and not isinstance(r[j], bool) for r in rows)
        for j in range(len(cols))
    ]
    spec = "".join("r" if n else "l" for n in numeric) or "l"
    body = [
        r"\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join(latex_escape(str(c)) for c in cols) + r" \\",
        r"\midrule",
    ]
    body += [" & ".join(latex_escape(_human(v, digits)) for v in r) + r" \\" for r in rows]
    body += [r"\bottomrule", r"\end{tabular}"]
    if title:
        body = [r"\begin{table}[htbp]", r"\centering", r"\caption{" + latex_escape(title) + "}", *body, r"\end{table}"]
    return "\n".join(body) + "\n"


def _table(cols, rows, title, digits, width: int | None = None) -> str:
    import shutil
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title) if title else None, show_lines=False)  # "[...]" in a title is text too
    for i, c in enumerate(cols):
        numeric = any(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows)
        table.add_column(escape(c), justify="right" if numeric else "left")
    for r in rows:
        table.add_row(*(escape(_human(v, digits)) for v in r))  # "[x]" is text, not markup
    if width is None:  # a pipe or a file gets the whole table, a terminal what fits
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 10_000
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(table)
    return console.file.getvalue()


_RENDERERS = {"csv": _csv, "json": _json, "markdown": _markdown, "latex": _latex}
