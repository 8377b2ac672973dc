"""NB201 on the real data (../shared/data): the paper's Table A9 structural rows."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from estbench.cli import app
from estbench.store.store import Store

pytestmark = pytest.mark.data
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def nb201_store(tmp_path_factory):
    from typer.testing import CliRunner

    if not SHARED_DATA.is_dir():
        pytest.skip("real data not found")
    store = str(tmp_path_factory.mktemp("nb201") / "nb201.duckdb")
    runner = CliRunner()
    for args in (
        ["truth", "load", "--space", "nb201"],
        [
            "score",
            "--space",
            "nb201",
            "-e",
            "params",
            "-e",
            "flops",
            "-e",
            "relu",
            "-e",
            "params_live",
            "-e",
            "relu_live",
        ],
    ):
        r = runner.invoke(app, args + ["--store", store, "--data-dir", str(SHARED_DATA)])
        assert r.exit_code == 0, r.output
    return store


def test_archs_and_truth(nb201_store):
    with Store(nb201_store, read_only=True) as st:
        _, rows = st.query(
            "SELECT count(*), count(DISTINCT iso_key), count(DISTINCT comp_key), count(*) FILTER (WHERE degenerate) FROM archs"
        )
        assert rows[0] == (15625, 6466, 5390, 341)
        _, rows = st.query("SELECT max(value) FROM truth WHERE metric = 'cifar10-test'")
        assert rows[0][0] == pytest.approx(94.3733)


def test_table_a9_structural_rows(nb201_store):
    from typer.testing import CliRunner

    r = CliRunner().invoke(
        app,
        [
            "criteria",
            "--space",
            "nb201",
            "--truth",
            "cifar10-test",
            "--protocol",
            "deiso",
            "--store",
            nb201_store,
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = {d["estimator"]: d for d in json.loads(r.output)}
    for name in ("params", "flops", "relu", "params_live", "relu_live"):
        assert rows[name]["points"] == 6466
    # Paper Table A9, NB201: Param KD 0.606 / SpearmanR 0.784, relu 0.613 / 0.755. The
    # paper's truth is NB201 v1.0 (one training seed for about half the archs); the shared
    # table holds NATS-Bench seed means, which moves these by about 0.003 (see README).
    assert rows["params"]["kd"] == pytest.approx(0.606, abs=0.005)
    assert rows["params"]["spearman"] == pytest.approx(0.784, abs=0.005)
    assert rows["flops"]["kd"] == pytest.approx(rows["params"]["kd"], abs=1e-3)
    assert rows["params_live"]["kd"] == pytest.approx(0.606, abs=0.005)
    assert rows["params_live"]["spearman"] == pytest.approx(0.784, abs=0.005)
    assert rows["relu_live"]["kd"] == pytest.approx(0.613, abs=0.01)
    assert rows["relu_live"]["spearman"] == pytest.approx(0.755, abs=0.01)


def test_killed_score_run_resumes(tmp_path):
    if not SHARED_DATA.is_dir():
        pytest.skip("real data not found")
    store = str(tmp_path / "kill.duckdb")
    cmd = [
        sys.executable,
        "-m",
        "estbench",
        "score",
        "--space",
        "nb201",
        "-e",
        "params",
        "--chunk-size",
        "200",
        "--store",
        store,
        "--data-dir",
        str(SHARED_DATA),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(cmd, check=True, capture_output=True)
    with Store(store, read_only=True) as st:
        _, rows = st.query("SELECT count(*), count(DISTINCT arch_id) FROM scores")
    assert rows[0] == (15625, 15625)
