"""``estbench report --html``: the paper's figures and tables from any store, in one
self-contained HTML file (``page``), and each figure as PDF + PNG (``--figures DIR``).

``build_report(ctx)`` runs every registered section (``base.all_sections``) against the
report context; a section either returns its figures and tables or raises ``Missing``
with the line that names the command filling it. Each figure is drawn once and saved
in every format asked for, then closed."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from estbench.errors import BadInput
from estbench.report.html.base import Missing, Section, SectionInfo, all_sections

DPI = 100


@dataclass
class Report:
    title: str
    meta: list[str]
    built: list[tuple[SectionInfo, Section, list[str]]] = field(default_factory=list)  # + figure html
    missing: list[tuple[SectionInfo, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # written under --figures
    figure_count: int = 0


def section_keys() -> list[str]:
    return [s.key for s in all_sections()]


def build_report(
    ctx,
    only: list[str] | None = None,
    figures_dir: str | Path | None = None,
    on_section: Callable[[SectionInfo], None] | None = None,
) -> Report:
    """Build every section (or those named in ``only``) and render its figures."""
    from estbench import __version__
    from estbench.report.html.page import figure_html

    infos = all_sections()
    if only:
        known = {s.key for s in infos}
        for k in only:
            if k not in known:
                from estbench.analysis.points import known_names

                known_names("report section", sorted(known)).entry(k)  # raises with suggestions
        infos = [s for s in infos if s.key in only]
    out_dir = Path(figures_dir) if figures_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    rep = Report(
        title=f"estbench report: {ctx.space} vs {ctx.truth}",
        meta=[ctx.option_text(), f"store {ctx.st.path}; estbench {__version__}"],
    )
    for info in infos:
        if on_section:
            on_section(info)
        try:
            sec = info.build(ctx)
        except Missing as e:
            rep.missing.append((info, str(e)))
            continue
        except BadInput as e:  # data present but not enough for this section (e.g. too few points)
            rep.missing.append((info, f"not drawn: {e}"))
            continue
        if sec.empty():
            rep.missing.append((info, "; ".join(sec.notes) or "nothing to show"))
            continue
        figs = []
        for f in sec.figures:
            png, size = _render(f, out_dir, rep.files)
            figs.append(figure_html(f.name, f.caption, f.alt, png, size))
            rep.figure_count += 1
        rep.built.append((info, sec, figs))
    return rep


_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _render(f, out_dir: Path | None, files: list[Path]) -> tuple[bytes, tuple[int, int]]:
    """PNG bytes and pixel size of figure ``f``; with ``out_dir`` also NAME.pdf and
    NAME.png there. The figure is closed afterwards."""
    buf = io.BytesIO()
    f.fig.savefig(buf, format="png", dpi=DPI)
    png = buf.getvalue()
    size = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # the IHDR chunk's width, height
    if out_dir is not None:
        stem = _NAME.sub("_", f.name).strip("_") or "figure"
        for ext in ("png", "pdf"):
            path = out_dir / f"{stem}.{ext}"
            if ext == "png":
                _atomic_write(path, png)
            else:
                b = io.BytesIO()
                f.fig.savefig(b, format="pdf")
                _atomic_write(path, b.getvalue())
            files.append(path)
    f.fig.clear()
    return png, size


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_html(rep: Report, path: str | Path) -> Path:
    """Write the page to ``path`` (a temporary file renamed into place)."""
    from estbench.report.html.page import page

    p = Path(path)
    if p.parent and not p.parent.exists():
        raise BadInput(f"--html {path}: folder {p.parent} does not exist")
    _atomic_write(p, page(rep.title, rep.meta, rep.built, rep.missing).encode("utf-8"))
    return p
