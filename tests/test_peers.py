"""Peer cross-check on real data: estbench's NB201 scores against the scores published by
NASLib (NAS-Bench-Suite-Zero, ``nb201/peers/naslib_zc_nb201.json``) and by the NASWOT
authors (``nb201/peers/naswot_bayeswatch.csv.gz``), through ``benchmarks/peer_check.py``.

30 of NASLib's 725 archs (seeded) are scored with the CLI at NASLib's batch size (32, one
batch) with measures whose peer ranks estbench should reproduce up to the init seed and
the images of the batch. Thresholds (Kendall tau-b, n = 30) come from the 100-arch
investigation (batch 32; see the module constants): each sits well below the measured
agreement, and far above what a broken measure gives (a random permutation of the
scores has tau ~ N(0, 0.13) at n = 30; the test checks that too).
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.data

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
N_ARCHS = 30
SAMPLE_SEED = 0

# (peer, peer measure, estbench estimator) -> minimum tau-b at n = 30, with what was
# measured on 100 NASLib archs at batch 32 (estbench seed 20, 1 batch):
THRESHOLDS = {
    # exact: both are the same linear function of #conv3x3 / #conv1x1 (ties included)
    ("naslib", "params", "params"): 0.99,  # measured 1.000
    # data-free and float64 on both sides; NASLib logs it. Only the init seed differs.
    ("naslib", "synflow", "synflow"): 0.85,  # measured 0.978
    # same formula; estbench also hooks the ReLUConvBN wrappers (conv-edge codes count
    # twice, like NASWOT's own code), NASLib skips its own wrapper classes; other images
    ("naslib", "nwot", "relu_logdet"): 0.80,  # measured 0.942
    # NASLib: other init, other (augmented) batch of 32
    ("naslib", "snip", "snip"): 0.75,  # measured 0.924
    # the NASWOT authors' file holds the v1 Jacobian-correlation score (batch 256), not
    # log|K|: it is checked against jacob_cov (measured 0.802 at batch 32; relu_logdet
    # only 0.531, about what two accuracy-correlated measures share)
    ("naswot-authors", "naswot", "jacob_cov"): 0.55,
}
MEASURES = ("params", "synflow", "relu_logdet", "snip", "jacob_cov")


def _peer_check():
    name = "_estbench_peer_check"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "peer_check.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up while the file runs
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def pc():
    if not (SHARED_DATA / "nb201" / "peers" / "naslib_zc_nb201.json").is_file():
        pytest.skip(f"peer data not found under {SHARED_DATA}")
    return _peer_check()


@pytest.fixture(scope="module")
def naslib(pc):
    return pc.load_naslib(SHARED_DATA / pc.NASLIB_FILE, "cifar10")


@pytest.fixture(scope="module")
def naswot(pc):
    return pc.load_naswot(SHARED_DATA / pc.NASWOT_FILE)[0]


@pytest.fixture(scope="module")
def scored(pc, naslib, tmp_path_factory):
    """A store with N_ARCHS NASLib archs scored at batch 32 (one subprocess, one thread)."""
    tmp = tmp_path_factory.mktemp("peers")
    archs = tmp / "archs.txt"
    pc.write_archs(archs, naslib.archs, N_ARCHS, SAMPLE_SEED, "cifar10")
    store = tmp / "peers.duckdb"
    cmd = [sys.executable, "-m", "estbench", "score", "--space", "nb201", "--archs", str(archs)]
    cmd += [a for m in MEASURES for a in ("-e", m)]
    cmd += ["--batch-size", "32", "--batches", "1", "--seed", "20"]
    cmd += ["--store", str(store), "--data-dir", str(SHARED_DATA)]
    env = {k: v for k, v in os.environ.items() if k not in ("ESTBENCH_STORE", "ESTBENCH_DATA")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return pc.load_estbench(store)


def test_naslib_keys_map_to_nb201_strings(pc, naslib):
    from estbench.spaces import get_space

    sp = get_space("nb201")
    # edge order (1<-0),(2<-0),(3<-0),(2<-1),(3<-1),(3<-2) -> string order
    assert pc.naslib_key_to_arch_str("(0, 1, 2, 3, 4, 0)") == (
        "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
    )
    assert len(set(naslib.archs)) == 725
    for a in naslib.archs:
        arch = sp.parse(a)
        assert sp.to_str(arch) == a
        expected = 73_306 + 243_040 * arch.count("nor_conv_3x3") + 28_000 * arch.count("nor_conv_1x1")
        assert naslib.scores["params"][a] * 1e6 == pytest.approx(expected, abs=0.5)
    # params depend only on op counts; topology checks the edge order: the one arch whose
    # NASLib scores are all sentinels / zeros (no input-output path) is degenerate here too
    dead = [a for a in naslib.archs if a not in naslib.scores["nwot"]]
    assert len(dead) == 1 and sp.is_degenerate(sp.parse(dead[0]))
    assert naslib.scores["synflow"].get(dead[0], 0.0) == 0.0
    assert sum(sp.is_degenerate(sp.parse(a)) for a in naslib.archs) == 1


def test_naslib_sentinels_are_excluded(naslib):
    for m, values in naslib.scores.items():
        assert all(math.isfinite(v) and v != -1e8 for v in values.values()), m
    assert naslib.excluded["zen"] == 725  # not in this copy of the file
    assert naslib.excluded["jacov"] == 1 and naslib.excluded["nwot"] == 1


def _tau(pc, scored, peer_scores, est):
    ours = scored.values[est]
    common = sorted(set(ours) & set(peer_scores))
    return common, pc.kendall([ours[a] for a in common], [peer_scores[a] for a in common])


@pytest.mark.parametrize("key", list(THRESHOLDS), ids=lambda k: f"{k[0]}-{k[1]}-{k[2]}")
def test_agreement_with_peer(pc, scored, naslib, naswot, key):
    peer, measure, est = key
    peer_scores = naslib.scores[measure] if peer == "naslib" else naswot
    common, tau = _tau(pc, scored, peer_scores, est)
    assert len(common) >= N_ARCHS - 1  # at most the one degenerate arch drops out
    assert scored.config[est].get("batch_size", 32) == 32
    threshold = THRESHOLDS[key]
    assert tau >= threshold, f"{est} vs {peer}:{measure}: tau {tau:.3f} < {threshold}"

    # the threshold has teeth: estbench's scores shuffled over the archs fail it
    rng = np.random.default_rng(0)
    ours = [scored.values[est][a] for a in common]
    peers = [peer_scores[a] for a in common]
    shuffled = [pc.kendall(list(rng.permutation(ours)), peers) for _ in range(20)]
    assert max(shuffled) < threshold


def test_compare_table(pc, scored, naslib, naswot):
    rows = pc.compare(scored, naslib, naswot, "cifar10")
    by = {(r.peer.split(":")[0], r.peer_measure, r.estimator): r for r in rows}
    assert set(THRESHOLDS) <= set(by)
    r = by[("naslib", "params", "params")]
    assert r.n == N_ARCHS and r.n_acc == N_ARCHS
    assert r.kd_estbench == pytest.approx(r.kd_peer)  # identical ranks, identical KD
    assert r.med_peer * 1e6 == pytest.approx(r.med_estbench)
    # synflow medians in NASLib's scale (signed log): same network, same float64 pass
    s = by[("naslib", "synflow", "synflow")]
    assert abs(s.med_estbench - s.med_peer) < 5
    text = pc.render(rows, naslib, scored, "cifar10")
    assert "relu_logdet" in text and "not in the store" in text
