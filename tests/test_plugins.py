"""Plugins: a user's estimator or space registered from outside the repo, by
``--plugin FILE`` or by an installed entry point; a broken plugin is one error line."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from tests_support import one_line_error

from estbench import registry
from estbench.cli import app
from estbench.estimators import ESTIMATORS
from estbench.spaces import SPACES

README = Path(__file__).resolve().parents[1] / "README.md"

PLUGIN = '''
from estbench.estimators import ESTIMATORS


def plugin_convs(space, arch, **shape):
    """conv edges x channels"""
    return float(shape["c"] * sum(op.startswith("nor_conv") for op in arch))


ESTIMATORS.register(
    "plugin_convs", plugin_convs, kind="structural", higher_is_better=True, settings=("c", "n", "num_classes"),
    needs="structure", description="conv edges x channels (a test plugin)",
)
'''


@pytest.fixture(autouse=True)
def clean_registries(monkeypatch):
    """The registries are module globals: what a plugin registers here is gone afterwards."""
    monkeypatch.setattr(ESTIMATORS, "_entries", dict(ESTIMATORS._entries))
    monkeypatch.setattr(SPACES, "_entries", dict(SPACES._entries))
    monkeypatch.setattr(registry, "_loaded_entry_points", set())
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(registry.PLUGIN_MODULE_PREFIX) or name.startswith("ep_plugin"):
            del sys.modules[name]


def convs(toy, c: int = 4) -> list[float]:
    return [float(c * sum(op.startswith("nor_conv") for op in toy.parse(s))) for s in toy.arch_list(None)]


def stored(runner, store: str, estimator: str) -> list[float]:
    r = runner.invoke(
        app,
        [
            "sql",
            f"SELECT value FROM scores WHERE estimator = '{estimator}' ORDER BY arch_id",
            "--store",
            store,
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    return [d["value"] for d in json.loads(r.output)]


def test_plugin_file_registers_an_estimator(runner, tmp_path, toy):
    plugin = tmp_path / "elsewhere" / "my_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    store = str(tmp_path / "s.duckdb")
    r = runner.invoke(app, ["--plugin", str(plugin), "score", "--space", "toy", "-e", "plugin_convs", "--store", store])
    assert r.exit_code == 0, r.output
    assert "27 requested, 0 cached, 27 computed (0 failed" in r.output
    assert stored(runner, store, "plugin_convs") == convs(toy)
    # the same file again in this process (a second command) is not registered twice
    r = runner.invoke(app, ["--plugin", str(plugin), "list", "estimators", "-f", "json"])
    assert r.exit_code == 0, r.output
    listed = {d["estimator"]: d for d in json.loads(r.output)}
    assert listed["plugin_convs"]["kind"] == "structural"
    r = runner.invoke(app, ["--plugin", str(plugin), "score", "--space", "toy", "-e", "plugin_convs", "--store", store])
    assert r.exit_code == 0 and "27 cached, 0 computed" in r.output


def test_plugin_registrations_do_not_leak():
    assert "plugin_convs" not in ESTIMATORS and "conv_width" not in ESTIMATORS and "nb201_3ops" not in SPACES


def test_readme_plugin_example_runs(runner, tmp_path):
    """The README's example plugin, as written there: an estimator and a space."""
    section = README.read_text().split("### Plugins", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(code)
    r = runner.invoke(app, ["--plugin", str(plugin), "list", "spaces", "-f", "csv"])
    assert r.exit_code == 0 and "nb201_3ops" in r.output, r.output
    store = str(tmp_path / "s.duckdb")
    args = ["--plugin", str(plugin), "score", "--space", "nb201_3ops", "-e", "conv_width", "-e", "params"]
    r = runner.invoke(app, [*args, "--store", store])
    assert r.exit_code == 0, r.output
    assert r.output.count("729 requested, 0 cached, 729 computed (0 failed, 0 non-finite)") == 2
    values = stored(runner, store, "conv_width")
    assert len(values) == 729 and max(values) == 8 * 1 * 6 and min(values) == 0
    zse = ["--zse", "grad_l1", "--input", "noise-uniform", "--batch-size", "4", "--batches", "2", "--store", store]
    r = runner.invoke(app, ["--plugin", str(plugin), "score", "--space", "toy", *zse])
    assert r.exit_code == 0 and "27 requested, 0 cached, 27 computed (0 failed" in r.output, r.output
    values = stored(runner, store, "grad_l1")
    assert len(values) == 27 * 2 and all(v >= 0 for v in values) and max(values) > 0


def write_dist(site: Path, module: str, body: str, entry_points: str) -> None:
    """An installed distribution: a module and its dist-info with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_entry_point_plugins(runner, tmp_path, monkeypatch, toy):
    site = tmp_path / "site"
    site.mkdir()
    write_dist(
        site,
        "ep_plugin",
        PLUGIN
        + """

def register_space():
    from estbench.spaces import SPACES, get_space

    SPACES.register("ep_toy", get_space("toy"), description="the toy space again (an entry-point plugin)")
""",
        """
        [estbench.estimators]
        ep_estimators = ep_plugin

        [estbench.spaces]
        ep_toy = ep_plugin:register_space
        """,
    )
    monkeypatch.syspath_prepend(str(site))
    r = runner.invoke(app, ["list", "spaces", "-f", "csv"])
    assert r.exit_code == 0 and "ep_toy" in r.output, r.output
    store = str(tmp_path / "s.duckdb")
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "plugin_convs", "--store", store])
    assert r.exit_code == 0 and "27 computed" in r.output, r.output
    assert stored(runner, store, "plugin_convs") == convs(toy)


def test_broken_entry_point_is_one_line(runner, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    write_dist(
        site, "ep_plugin_broken", "import no_such_module_here\n", "[estbench.spaces]\nbroken = ep_plugin_broken\n"
    )
    monkeypatch.syspath_prepend(str(site))
    msg = one_line_error(runner.invoke(app, ["list", "spaces"]))
    assert "plugin broken (estbench.spaces entry point ep_plugin_broken) failed" in msg
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in msg


@pytest.mark.parametrize(
    "body, expected",
    [
        ("x = 1\nraise RuntimeError('boom')\n", "RuntimeError: boom (line 2)"),
        ("def f(:\n", "SyntaxError: "),
        ("from estbench.spaces import SPACES\nSPACES.register('toy', object())\n", "'toy' is registered twice"),
    ],
)
def test_broken_plugin_file_is_one_line(runner, tmp_path, body, expected):
    plugin = tmp_path / "bad_plugin.py"
    plugin.write_text(body)
    msg = one_line_error(runner.invoke(app, ["--plugin", str(plugin), "list", "spaces"]))
    assert f"plugin {plugin} failed" in msg and expected in msg
    assert not any(m.startswith(registry.PLUGIN_MODULE_PREFIX + "bad_plugin") for m in sys.modules)


def test_missing_plugin_file(runner, tmp_path):
    msg = one_line_error(runner.invoke(app, ["--plugin", str(tmp_path / "nope.py"), "list"]))
    assert "nope.py: no such file" in msg
