"""The self-contained HTML page: one file with its CSS inline and every figure embedded
as a base64 PNG, so it opens with no network and can be mailed or attached. Each
section is a ``<section data-section="KEY">``; each figure an ``<img>`` with its
pixel size; sections the store has no data for are listed at the end with the line
that says which command fills them."""

from __future__ import annotations

import base64
import html
import math
import re
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:1.2em 2em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;
padding-bottom:.2em} .paper{color:#777;font-weight:normal;font-size:.8em}
.meta{color:#555;font-size:.9em} .blurb{color:#333;max-width:64em}
nav ol{columns:2;font-size:.92em} nav .missing a{color:#999}
figure{margin:1em 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.88em;color:#444;max-width:60em}
table{border-collapse:collapse;font-size:.86em;margin:.8em 0;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-size:.92em;color:#444;padding-bottom:.3em}
th,td{border-bottom:1px solid #e5e5e5;padding:.22em .6em;text-align:right;white-space:nowrap}
th{background:#f6f6f6} td.text,th.text{text-align:left} td.best{font-weight:700;background:#eef6ee}
.scroll{overflow-x:auto} ul.notes{font-size:.88em;color:#555} li.missing{margin:.3em 0}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


_CODE = re.compile(r"`([^`]+)`")


def prose(text: Any) -> str:
    """Escaped text with its `backticked` commands set as <code>."""
    return _CODE.sub(r"<code>\1</code>", esc(text))


def cell_text(v: Any, digits: int) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 10 ** -(digits + 1)):
            return f"{v:.{digits}e}"
        return f"{v:.{digits}f}"
    if hasattr(v, "item"):
        return cell_text(v.item(), digits)
    return str(v)


def table_html(t) -> str:
    """A ``Table`` as an HTML table (numbers right-aligned, best cells bold)."""
    numeric = [
        any(isinstance(r[j], (int, float)) and not isinstance(r[j], bool) for r in t.rows)
        for j in range(len(t.columns))
    ]
    out = ['<div class="scroll"><table>']
    if t.title:
        out.append(f"<caption>{esc(t.title)}</caption>")
    out.append(
        "<thead><tr>"
        + "".join(f'<th class="{"num" if n else "text"}">{esc(c)}</th>' for c, n in zip(t.columns, numeric))
        + "</tr></thead><tbody>"
    )
    for i, r in enumerate(t.rows):
        cells = []
        for j, v in enumerate(r):
            cls = ("num" if numeric[j] else "text") + (" best" if (i, j) in t.best else "")
            cells.append(f'<td class="{cls}">{esc(cell_text(v, t.digits))}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def figure_html(name: str, caption: str, alt: str, png: bytes, size: tuple[int, int]) -> str:
    data = base64.b64encode(png).decode("ascii")
    w, h = size
    return (
        f'<figure data-figure="{esc(name)}"><img src="data:image/png;base64,{data}" width="{w}" height="{h}" '
        f'alt="{esc(alt or caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
    )


def page(title: str, meta: list[str], built: list, missing: list) -> str:
    """The whole page: ``built`` is (info, section, figure html list) per shown section,
    ``missing`` (info, line) per section without data."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1>",
        *(f'<p class="meta">{esc(m)}</p>' for m in meta),
        "<nav><ol>",
        *(f'<li><a href="#{esc(info.key)}">{esc(info.title)}</a></li>' for info, _, _ in built),
        *(f'<li class="missing"><a href="#missing">{esc(info.title)} (no data)</a></li>' for info, _ in missing),
        "</ol></nav></header><main>",
    ]
    for info, sec, figs in built:
        parts.append(f'<section id="{esc(info.key)}" class="report-section" data-section="{esc(info.key)}">')
        paper = f' <span class="paper">(paper {esc(info.paper)})</span>' if info.paper else ""
        parts.append(f"<h2>{esc(info.title)}{paper}</h2>")
        parts.append(f'<p class="blurb">{prose(info.blurb)}</p>')
        parts.extend(figs)
        parts.extend(table_html(t) for t in sec.tables)
        if sec.notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{prose(n)}</li>" for n in sec.notes) + "</ul>")
        parts.append("</section>")
    if missing:
        parts.append('<section id="missing" class="missing-sections"><h2>Not in this store</h2><ul>')
        parts += [
            f'<li class="missing" data-missing="{esc(info.key)}"><b>{esc(info.title)}</b>: {prose(line)}</li>'
            for info, line in missing
        ]
        parts.append("</ul></section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)
