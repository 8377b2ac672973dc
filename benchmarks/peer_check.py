"""Cross-check estbench's NB201 / NB301 scores against scores published by other projects.

NB201 peers (``nb201/peers/`` under the data directory, see the data README):

- ``naslib_zc_nb201.json``: NAS-Bench-Suite-Zero (automl/NASLib), 725 archs per dataset,
  13 zero-cost proxies and the arch's ``val_accuracy``. Keys are NASLib op-index tuples
  over the edges (1<-0),(2<-0),(3<-0),(2<-1),(3<-1),(3<-2) with op codes 0 skip_connect,
  1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3 (estbench's arch strings list
  the edges as (1<-0),(2<-0),(2<-1),(3<-0),(3<-1),(3<-2)). NASLib stores synflow as a
  sign-preserving log and NaN/inf as -1e8 (before the log, so synflow's sentinel is
  -log(1e8)); sentinels and non-finite values are excluded.
- ``naswot_bayeswatch.csv.gz``: the score of all 15,625 archs in the NASWOT authors'
  ``results/arch_score_acc.pd`` (column ``naswot``). It is compared with both
  ``relu_logdet`` and ``jacob_cov``: its values (all negative, -273 .. -2.5e6, never
  above -256) are the paper's v1 Jacobian-correlation score at batch 256, not log|K|
  (estbench's jacob_cov at batch 256 has the same median, -283 vs -284 on 30 archs, and
  tau 0.75-0.84 with it; relu_logdet only ~0.53).

NB301 peer (``--space nb301``): ``nb301/naslib_zc_nb301.json``, the same 725-arch suite
on DARTS (cifar10; no zen), keyed by NASLib's compact string (``genotype.from_naslib``,
mapped to the store's ``genotype.to_str``). It has no sentinel, non-finite or missing
value (the rules still apply); synflow (36 .. 118) is the signed log; params and flops
are exact linear functions of the op counts (params: C=32, 8 cells, BN without affine).

What the investigation found (100 NASLib archs, estbench seed 20, one batch): every
measure agrees with NASLib about as well as estbench agrees with itself under another
init seed and batch (``--ref-store``), so the differences are the peers' own seeds and
batches: NASLib scored a fresh random (augmented) training batch of 32 per arch, its
medians match estbench's at ``--batch-size 32`` (jacov -33.1 vs -33.5, nwot 387 vs 406,
grad_norm 22.5 vs 24.0). nwot: NASLib hooks each nn.ReLU once, estbench (like NASWOT's
own code) also hooks the ReLUConvBN wrappers; that shifts log|K| (384 vs 406) but not
the ranks. flops: NASLib also counts the 3x3 average pools (1.29 MFLOPs each), fvcore
does not (tau 0.97). synflow: same float64 pass, NASLib logs it (medians 58.1 vs 58.2).
plain and grasp are mostly noise on both sides (estbench vs itself: 0.11 and 0.63).

estbench's side: the store's ``score_mean`` joined with ``archs`` on the arch string,
averaged over seeds (and, through the view, batches); for each estimator the config
with the most scored archs is used.

For each pair it prints the number of common archs, Kendall tau-b between estbench and
the peer, and each one's Kendall tau-b against NASLib's ``val_accuracy`` on those archs
(raw scores, no sign flips: a measure whose lower values are better shows a negative
tau), so that a disagreement can be judged by whether it matters.

    python benchmarks/peer_check.py [--space nb201|nb301] --store STORE [--data-dir DIR] [--dataset cifar10]
    python benchmarks/peer_check.py [--space S] --write-archs FILE [--sample N] [--sample-seed S]
        # then: estbench score --space S --archs FILE ...
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NASLIB_FILE = "nb201/peers/naslib_zc_nb201.json"
NASWOT_FILE = "nb201/peers/naswot_bayeswatch.csv.gz"
NASLIB_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")

# NASLib op code -> NB201 op name
NASLIB_OPS = {0: "skip_connect", 1: "none", 2: "nor_conv_3x3", 3: "nor_conv_1x1", 4: "avg_pool_3x3"}
# NASLib measure -> estbench estimator (None: estbench has no counterpart)
NASLIB_MEASURES: dict[str, str | None] = {
    "epe_nas": "epe_nas",
    "fisher": "fisher",
    "flops": "flops",
    "grad_norm": "grad_norm",
    "grasp": "grasp",
    "jacov": "jacob_cov",
    "l2_norm": "l2_norm",
    "nwot": "relu_logdet",
    "params": "params",
    "plain": "plain",
    "snip": "snip",
    "synflow": "synflow",
    "zen": "zen",
}
NASLIB_SENTINEL = -1e8
# The NASWOT authors' file holds one score; both candidates are compared.
NASWOT_MEASURES = ("relu_logdet", "jacob_cov")
NB301_NASLIB_FILES = ("nb301/naslib_zc_nb301.json", "nb301/zc_nasbench301.json")  # ours, NASLib's own name


# ---- peers ----------------------------------------------------------------------------
def naslib_key_to_arch_str(key: str | tuple[int, ...]) -> str:
    """``"(0, 2, 3, 2, 3, 1)"`` (edges (1<-0),(2<-0),(3<-0),(2<-1),(3<-1),(3<-2)) ->
    ``|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|``."""
    codes = ast.literal_eval(key) if isinstance(key, str) else tuple(key)
    if len(codes) != 6 or any(c not in NASLIB_OPS for c in codes):
        raise ValueError(f"not a NASLib NB201 op-index tuple: {key!r}")
    e10, e20, e30, e21, e31, e32 = (NASLIB_OPS[c] for c in codes)
    return f"|{e10}~0|+|{e20}~0|{e21}~1|+|{e30}~0|{e31}~1|{e32}~2|"


def nb301_key_to_arch_str(key: str) -> str:
    """NASLib's compact ``"[[(input, op) x 8], [...]]"`` -> estbench's NB301 string."""
    from estbench.spaces.nb301 import genotype as gt

    return gt.to_str(gt.from_naslib(key))


@dataclass(frozen=True)
class PeerSpace:
    """What differs between the spaces: the peer files, the key mapping, the measure pairs."""

    label: str
    naslib_files: tuple[str, ...]  # candidates under the data directory, first found wins
    key_to_arch: Callable[[str], str]
    measures: dict[str, str | None]  # NASLib measure -> estbench estimator
    datasets: tuple[str, ...]
    naswot_file: str | None = None


NB301_MEASURES = {m: e for m, e in NASLIB_MEASURES.items() if m != "zen"}  # NB301's file has no zen
SPACES = {
    "nb201": PeerSpace("NB201", (NASLIB_FILE,), naslib_key_to_arch_str, NASLIB_MEASURES, NASLIB_DATASETS, NASWOT_FILE),
    "nb301": PeerSpace("NB301", NB301_NASLIB_FILES, nb301_key_to_arch_str, NB301_MEASURES, ("cifar10",)),
}


def _finite(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass
class NaslibPeer:
    scores: dict[str, dict[str, float]]  # NASLib measure -> arch_str -> score (valid only)
    excluded: dict[str, int]  # NASLib measure -> number of sentinel / non-finite / missing
    accuracy: dict[str, float]  # arch_str -> val_accuracy
    archs: list[str]  # every arch string of the file (for the dataset), file order
    measures: dict[str, str | None] = field(default_factory=lambda: dict(NASLIB_MEASURES))  # the pairs compared


def load_naslib(path: str | Path, dataset: str = "cifar10", space: str = "nb201") -> NaslibPeer:
    spec = SPACES[space]
    with open(path) as fh:
        data = json.load(fh)
    if dataset not in data:
        raise SystemExit(f"{path}: no dataset {dataset!r} (has {', '.join(data)})")
    scores: dict[str, dict[str, float]] = {m: {} for m in spec.measures}
    excluded = dict.fromkeys(spec.measures, 0)
    accuracy: dict[str, float] = {}
    archs = []
    for key, rec in data[dataset].items():
        arch = spec.key_to_arch(key)
        archs.append(arch)
        acc = _finite(rec.get("val_accuracy"))
        if acc is not None:
            accuracy[arch] = acc
        for m in spec.measures:
            v = _finite((rec.get(m) or {}).get("score"))
            sentinel = NASLIB_SENTINEL if m != "synflow" else -math.log(-NASLIB_SENTINEL)
            if v is None or v == NASLIB_SENTINEL or (m == "synflow" and math.isclose(v, sentinel)):
                excluded[m] += 1
            else:
                scores[m][arch] = v
    return NaslibPeer(scores, excluded, accuracy, archs, dict(spec.measures))


def load_naswot(path: str | Path) -> tuple[dict[str, float], int]:
    """(arch_str -> score, number of rows without a finite score)."""
    out, missing = {}, 0
    with gzip.open(path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            v = _finite(row.get("naswot"))
            if v is None:
                missing += 1
            else:
                out[row["arch_str"]] = v
    return out, missing


# ---- estbench ---------------------------------------------------------------------------
@dataclass
class EstbenchScores:
    values: dict[str, dict[str, float]]  # estimator -> arch_str -> mean score
    config: dict[str, dict]  # estimator -> settings of the chosen config


def load_estbench(store_path: str | Path, space: str = "nb201") -> EstbenchScores:
    """Mean score per arch (over seeds and batches) of each estimator's best-covered config."""
    from estbench.store.store import Store

    with Store(str(store_path), read_only=True) as st:
        _, rows = st.query(
            "SELECT s.estimator, s.config_hash, count(DISTINCT s.arch_id) AS n FROM score_mean s "
            "WHERE s.space = ? AND s.value IS NOT NULL AND isfinite(s.value) "
            "GROUP BY 1, 2 ORDER BY 1, n DESC, 2",
            [space],
        )
        chosen: dict[str, str] = {}
        for est, chash, _ in rows:
            chosen.setdefault(est, chash)
        values: dict[str, dict[str, float]] = {}
        config: dict[str, dict] = {}
        for est, chash in chosen.items():
            _, vals = st.query(
                "SELECT a.arch_str, avg(s.value) FROM score_mean s JOIN archs a USING (space, arch_id) "
                "WHERE s.space = ? AND s.estimator = ? AND s.config_hash = ? "
                "AND s.value IS NOT NULL AND isfinite(s.value) GROUP BY a.arch_str",
                [space, est, chash],
            )
            values[est] = {a: float(v) for a, v in vals}
            _, cfg = st.query("SELECT config FROM configs WHERE config_hash = ?", [chash])
            config[est] = json.loads(cfg[0][0]) if cfg else {}
    return EstbenchScores(values, config)


# ---- comparison ---------------------------------------------------------------------------
def kendall(a: list[float], b: list[float]) -> float:
    if len(a) < 3:
        return math.nan
    tau = stats.kendalltau(a, b).statistic  # tau-b
    return float(tau) if tau is not None else math.nan


@dataclass
class Row:
    peer: str
    peer_measure: str
    estimator: str
    n: int
    tau: float  # estbench vs peer
    kd_estbench: float  # estbench vs accuracy
    kd_peer: float  # peer vs accuracy
    n_acc: int  # archs with an accuracy among the n
    batch_size: int | None
    med_estbench: float = math.nan  # medians on the common archs (synflow: sign-preserving log, as NASLib)
    med_peer: float = math.nan
    tau_ref: float = math.nan  # estbench vs estbench from --ref-store (another seed / batch): the noise ceiling
    n_ref: int = 0


def signed_log(v: float) -> float:
    """NASLib's synflow transform: log(v) for v > 0, -log(-v) for v < 0, 0 stays 0."""
    return 0.0 if v == 0 else (math.log(v) if v > 0 else -math.log(-v))


def compare_pair(
    peer: str,
    peer_measure: str,
    estimator: str,
    peer_scores: dict[str, float],
    ours: dict[str, float],
    accuracy: dict[str, float],
    batch_size: int | None,
    ref: dict[str, float] | None = None,
) -> Row:
    common = sorted(set(peer_scores) & set(ours))
    p = [peer_scores[a] for a in common]
    e = [ours[a] for a in common]
    with_acc = [a for a in common if a in accuracy]
    acc = [accuracy[a] for a in with_acc]
    shown = [signed_log(v) for v in e] if peer_measure == "synflow" else e
    row = Row(
        peer,
        peer_measure,
        estimator,
        len(common),
        kendall(e, p),
        kendall([ours[a] for a in with_acc], acc),
        kendall([peer_scores[a] for a in with_acc], acc),
        len(with_acc),
        batch_size,
        float(np.median(shown)) if shown else math.nan,
        float(np.median(p)) if p else math.nan,
    )
    if ref is not None:
        both = [a for a in common if a in ref]
        row.tau_ref, row.n_ref = kendall([ours[a] for a in both], [ref[a] for a in both]), len(both)
    return row


def compare(
    ours: EstbenchScores,
    naslib: NaslibPeer | None,
    naswot: dict[str, float] | None,
    dataset: str = "cifar10",
    ref: EstbenchScores | None = None,
) -> list[Row]:
    rows: list[Row] = []
    acc = naslib.accuracy if naslib is not None else {}
    pairs: list[tuple[str, str, str, dict[str, float]]] = []
    if naslib is not None:
        pairs += [(f"naslib:{dataset}", m, e, naslib.scores[m]) for m, e in naslib.measures.items() if e]
    if naswot is not None:
        pairs += [("naswot-authors", "naswot", e, naswot) for e in NASWOT_MEASURES]
    for peer, measure, est, peer_scores in pairs:
        if est not in ours.values:
            continue
        rows.append(
            compare_pair(
                peer,
                measure,
                est,
                peer_scores,
                ours.values[est],
                acc,
                ours.config[est].get("batch_size"),
                ref.values.get(est) if ref is not None else None,
            )  # fmt: skip
        )
    return rows


def _expected_classes(dataset: str) -> int:
    return {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}[dataset]


def _fmt(v: float) -> str:
    return "   nan" if v is None or math.isnan(v) else f"{v:+.3f}"


def _num(v: float) -> str:
    return "nan" if v is None or math.isnan(v) else f"{v:.4g}"


def render(rows: list[Row], naslib: NaslibPeer | None, ours: EstbenchScores, dataset: str) -> str:
    with_ref = any(r.n_ref for r in rows)
    head = (
        f"{'peer':<15} {'peer measure':<12} {'estbench':<12} {'bs':>4} {'n':>4} "
        f"{'tau(est,peer)':>13} {'KD est':>7} {'KD peer':>7} {'n_acc':>5} {'med est':>9} {'med peer':>9}"
        + (f" {'tau(est,ref)':>12}" if with_ref else "")
    )
    lines = [
        f"Kendall tau-b; KD = tau-b against NASLib val_accuracy ({dataset}) on the common archs with one;",
        "raw scores (no sign flips); medians on the common archs (estbench synflow shown as NASLib's signed log).",
        "bs = estbench batch size of the chosen config"
        + ("; tau(est,ref) = estbench vs --ref-store (the noise ceiling)." if with_ref else "."),
        head,
        "-" * len(head),
    ]
    for r in rows:
        lines.append(
            f"{r.peer:<15} {r.peer_measure:<12} {r.estimator:<12} {r.batch_size or '-':>4} {r.n:>4} "
            f"{_fmt(r.tau):>13} {_fmt(r.kd_estbench):>7} {_fmt(r.kd_peer):>7} {r.n_acc:>5} "
            f"{_num(r.med_estbench):>9} {_num(r.med_peer):>9}" + (f" {_fmt(r.tau_ref):>12}" if with_ref else "")
        )
    classes = {e: c.get("num_classes") for e, c in ours.config.items() if c.get("num_classes") is not None}
    wrong = sorted(e for e, c in classes.items() if c != _expected_classes(dataset))
    if wrong:
        lines.append(
            f"warning: {', '.join(wrong)} were scored for another class count than NASLib's {dataset} network "
            f"({_expected_classes(dataset)} classes, other images{', 16x16' if dataset.startswith('ImageNet') else ''}):"
            " these rows compare different settings"
        )
    if naslib is not None:
        skipped = [m for m, e in naslib.measures.items() if e is None]
        missing = [m for m, e in naslib.measures.items() if e is not None and e not in ours.values]
        excl = {m: n for m, n in naslib.excluded.items() if n}
        if skipped:
            lines.append(f"NASLib measures without an estbench counterpart: {', '.join(skipped)}")
        if missing:
            lines.append(f"not in the store (score them to compare): {', '.join(missing)}")
        if excl:
            lines.append("NASLib values excluded (sentinel -1e8 / non-finite / missing): "
                         + ", ".join(f"{m} {n}" for m, n in excl.items()))  # fmt: skip
    return "\n".join(lines)


def write_archs(
    path: str | Path, archs: list[str], sample: int | None, seed: int, dataset: str, space: str = "nb201"
) -> list[str]:
    chosen = list(archs)
    if sample is not None and sample < len(chosen):
        idx = np.random.default_rng(seed).choice(len(chosen), size=sample, replace=False)
        chosen = [chosen[i] for i in sorted(idx)]
    header = f"# NASLib NAS-Bench-Suite-Zero {SPACES[space].label} archs ({dataset})"
    header += f", random {len(chosen)} of {len(archs)} (seed {seed})" if len(chosen) < len(archs) else ""
    Path(path).write_text(header + "\n" + "\n".join(chosen) + "\n")
    return chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="nb201", choices=tuple(SPACES), help="search space (default nb201)")
    ap.add_argument("--store", help="estbench store with scores of --space")
    ap.add_argument("--data-dir", default=None, help="data directory (default: estbench's lookup)")
    ap.add_argument("--dataset", default="cifar10", choices=NASLIB_DATASETS, help="NASLib dataset")
    ap.add_argument("--write-archs", metavar="FILE", help="write the NASLib archs' strings to FILE and exit")
    ap.add_argument("--sample", type=int, default=None, help="with --write-archs: a random subset of N archs")
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of --sample")
    ap.add_argument("--ref-store", help="a second estbench store (another --seed or --data-seed): noise ceiling")
    ap.add_argument("--format", choices=("table", "json"), default="table")
    args = ap.parse_args(argv)

    from estbench.data.lookup import DataDir

    spec = SPACES[args.space]
    if args.dataset not in spec.datasets:
        ap.error(f"--space {args.space}: NASLib's file has {', '.join(spec.datasets)} only")
    data = DataDir(args.data_dir)
    naslib_path = data.find_optional(spec.naslib_files)
    naswot_path = data.find_optional(spec.naswot_file) if spec.naswot_file else None
    naslib = load_naslib(naslib_path, args.dataset, args.space) if naslib_path else None
    peer_files = [*spec.naslib_files, *([spec.naswot_file] if spec.naswot_file else [])]

    if args.write_archs:
        if naslib is None:
            raise SystemExit(f"{spec.naslib_files[0]} not found under {', '.join(map(str, data.dirs))}")
        chosen = write_archs(args.write_archs, naslib.archs, args.sample, args.sample_seed, args.dataset, args.space)
        print(f"wrote {len(chosen)} arch strings to {args.write_archs}")
        return 0
    if not args.store:
        ap.error("--store is required (or --write-archs)")
    if naslib is None and naswot_path is None:
        raise SystemExit(f"no peer file found ({', '.join(peer_files)})")
    naswot = load_naswot(naswot_path)[0] if naswot_path else None
    ours = load_estbench(args.store, args.space)
    ref = load_estbench(args.ref_store, args.space) if args.ref_store else None
    rows = compare(ours, naslib, naswot, args.dataset, ref)
    if args.format == "json":
        clean = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.__dict__.items()} for r in rows
        ]
        print(json.dumps(clean, indent=1))
    else:
        print(render(rows, naslib, ours, args.dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
