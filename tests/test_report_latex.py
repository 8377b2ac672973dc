"""`--format latex` compiles as text: balanced environments, one booktabs row per
estimator, as many cells in every row as in the header, every special character of an
estimator label escaped (checked by unescaping the cells back to the labels markdown
prints). With pdflatex (and booktabs) on the machine, the tables are compiled for real."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from bias_support import make_store
from conftest import app

from estbench.report.render import latex_escape, render

# names with every LaTeX special; snip gets a second config, so its rows are labelled
# "snip [c=null,init=null]" and "snip [c=16,init=he_%]"
ESTIMATORS = {"syn_flow%": ("synflow", 0.5), "snip": ("snip", 0.4), "a&b#$~^{x}\\y <|>": ("grad_norm", 0.6)}
SPECIALS = set("&%$#_{}~^\\<>|")
COMMANDS = {
    r"\textasciitilde{}": "~",
    r"\textasciicircum{}": "^",
    r"\textbackslash{}": "\\",
    r"\textless{}": "<",
    r"\textgreater{}": ">",
    r"\textbar{}": "|",
    r"\ldots{}": "\u2026",
    r"$\pm$": "\u00b1",
    r"$\tau$": "\u03c4",
    r"$\rho$": "\u03c1",
    r"$\leq$": "\u2264",
    r"$\geq$": "\u2265",
}
TOKEN = re.compile("|".join(re.escape(c) for c in COMMANDS) + r"|\\[&%$#_{}]|\{[\[*]\}|.", re.S)
AMP = re.compile(r"(?<!\\)&")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    from estbench.config import config_hash
    from estbench.store import ScoreKey, ScoreRow, Store

    path = str(tmp_path_factory.mktemp("latex") / "syn.duckdb")
    syn = make_store(path, "toy", ESTIMATORS)
    st = Store(path)
    with st.session():
        settings = {"space": "toy", "synthetic": True, "c": 16, "init": "he_%"}
        chash = config_hash({"estimator": "snip", **settings})
        st.put_config(chash, "snip", settings)
        key = ScoreKey("toy", "snip", chash, 0, 20)
        truth = syn.truth["cifar10-test"]
        st.upsert_scores([ScoreRow.of(key, i, 0, float(-v), 0.0, None) for i, v in enumerate(truth)])
    return path


def unescape(cell: str) -> str:
    """The text a LaTeX cell prints; fails on a special character left unescaped."""
    out = []
    for tok in TOKEN.findall(cell):
        if tok in COMMANDS:
            out.append(COMMANDS[tok])
        elif len(tok) == 2 and tok[0] == "\\":
            out.append(tok[1])
        elif len(tok) == 3 and tok[0] == "{":
            out.append(tok[1])
        else:
            assert tok not in SPECIALS, f"unescaped {tok!r} in {cell!r}"
            out.append(tok)
    return "".join(out)


def parse(tex: str) -> tuple[list[str], list[list[str]]]:
    """Check the structure of one rendered table; return its header and body cells."""
    lines = tex.strip().splitlines()
    stack = []
    for line in lines:
        for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", line):
            if kind == "begin":
                stack.append(env)
            else:
                assert stack and stack.pop() == env, f"\\end{{{env}}} closes nothing:\n{tex}"
    assert not stack, f"unclosed {stack}:\n{tex}"
    begin = next(line for line in lines if line.startswith(r"\begin{tabular}"))
    spec = re.fullmatch(r"\\begin\{tabular\}\{([lrc]+)\}", begin).group(1)
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert lines.count(rule) == 1, tex
    top, mid, bottom = (lines.index(r) for r in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert lines.index(begin) + 1 == top and top + 2 == mid < bottom, tex
    header, body = lines[top + 1], lines[mid + 1 : bottom]
    for row in [header, *body]:
        assert row.endswith(r" \\") and row.count(r"\\") == 1, row  # the row's end, no other
        assert len(AMP.findall(row)) == len(AMP.findall(header)) == len(spec) - 1, row
    cells = [[c.strip() for c in AMP.split(row[:-3])] for row in body]
    return [c.strip() for c in AMP.split(header[:-3])], cells


def markdown_first_column(md: str) -> list[str]:
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]  # after the header
    return [re.split(r"(?<!\\)\|", row)[1].strip().replace("\\|", "|") for row in rows]


def invoke(runner, store: str, *args: str, fmt: str) -> str:
    r = runner.invoke(app(), [*args, "--space", "toy", "--store", store, "--format", fmt])
    assert r.exit_code == 0, r.output
    return r.output


CASES = [("report",), ("criteria",), ("bias", "complexity")]


@pytest.mark.parametrize("case", CASES, ids=" ".join)
def test_one_row_per_estimator(runner, store, case):
    tex = invoke(runner, store, *case, fmt="latex")
    header, cells = parse(tex)
    labels = markdown_first_column(invoke(runner, store, *case, fmt="markdown"))  # the same rows, other escapes
    assert header[0] == "estimator"
    assert len(cells) == len(labels) == len(ESTIMATORS) + 3  # + params, flops, snip's second config
    assert [unescape(r[0]) for r in cells] == labels
    assert {"syn_flow%", "snip [c=16,init=he_%]", "a&b#$~^{x}\\y <|>"} <= set(labels)
    for row in cells:
        for cell in row:
            unescape(cell)
    assert tex.count(r"\caption{") == 1 and tex.startswith(r"\begin{table}")


def test_ci_cells_and_other_bias_tables(runner, store):
    for case in (
        ("report", "--protocol", "iso", "--ci", "95", "--resamples", "20"),
        ("bias", "agreement"),
        ("bias", "op"),
    ):
        header, cells = parse(invoke(runner, store, *case, fmt="latex"))
        assert cells
        for row in cells:
            for cell in row:
                unescape(cell)


def test_escape_every_special():
    text = "a&b%c$d#e_f{g}h~i^j\\k<l>m|n\u00b1\u03c4\u2212"
    out = latex_escape(text)
    assert unescape(out) == text.replace("\u2212", "-")
    assert latex_escape("[c=16]") == "{[}c=16]" and latex_escape("*x") == "{*}x"  # not an optional argument
    assert latex_escape("two\nlines") == "two lines"


def test_title_is_a_caption_and_untitled_is_a_bare_tabular():
    cols, rows = ["estimator", "kd", "note"], [["[x]", 0.5, None], ["y_1", float("nan"), "50%"]]
    bare = render(cols, rows, "latex")
    assert bare.startswith(r"\begin{tabular}{lrl}") and r"\caption" not in bare
    header, cells = parse(bare)
    assert header == cols and cells == [["{[}x]", "0.500", ""], [r"y\_1", "nan", r"50\%"]]
    titled = render(cols, rows, "latex", title="K = 5% & more")
    assert r"\caption{K = 5\% \& more}" in titled and parse(titled) == (header, cells)


DOC = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\usepackage[margin=5mm,landscape]{geometry}
\begin{document}
%s
\end{document}
"""


@pytest.mark.skipif(
    shutil.which("pdflatex") is None or shutil.which("kpsewhich") is None, reason="pdflatex is not installed"
)
def test_compiles_with_pdflatex(runner, store, tmp_path):
    if not subprocess.run(["kpsewhich", "booktabs.sty"], capture_output=True, text=True).stdout.strip():
        pytest.skip("booktabs.sty is not installed")
    tables = [invoke(runner, store, *case, fmt="latex") for case in CASES]
    tables.append(render(["a"], [["[x] *y"]], "latex"))
    doc = tmp_path / "t.tex"
    doc.write_text(DOC % "\n\\clearpage\n".join(tables))
    p = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and (tmp_path / "t.pdf").stat().st_size > 0, p.stdout[-3000:]
