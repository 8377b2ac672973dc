"""The store at the paper protocol's scale (issue 16): `criteria` over 10^7 score rows in
100+ estimator groups under 10 s, and one bias analysis interactive (the same target).

Builds a synthetic NB201 store: every one of the 15,625 archs, synthetic truth
(tests/bias_support.make_store, also 20 zero-shot-like estimators on 3 seeds), then
20 one-shot-like estimators x 5 checkpoint epochs = 100 more groups on every arch x 3
seeds x 2 batches, written in one INSERT .. SELECT (values: the arch's truth plus
hash noise, so the criteria have something to find), and score_arch rebuilt from them. That is 10.3M score rows, about
the size of one space's share of the full protocol. Then runs, each in a fresh process
through the real CLI (wall time including Python start-up, ~0.6 s of it):

- `criteria` (all 122 groups, deiso) and `criteria --protocol iso`
- `criteria -e o00` (one estimator's 5 epochs: what zonemaps on the scores table prune)
- `bias complexity` and `bias op` over every group
- `sql "SELECT count(*) FROM scores"` (the floor: open + one scan)
- the same `criteria` on a Parquet export of the store (`estbench export DIR`,
  then `--store DIR`)

and prints seconds and the ratio to the 10 s target. Run it on an idle machine:

    .venv/bin/python benchmarks/bench_store.py [STORE]   # STORE: reuse / keep the store
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 10.0
SEEDS = (20, 2020, 202020)
N_ONESHOT, EPOCHS, BATCHES = 20, (10, 50, 100, 150, 200), 2

CASES = [
    ["sql", "SELECT count(*) AS rows, count(DISTINCT (estimator, config_hash, epoch)) AS groups FROM scores"],
    ["criteria"],
    ["criteria", "--protocol", "iso"],
    ["criteria", "-e", "o00"],
    ["bias", "complexity"],
    ["bias", "op"],
]


def build(path: str) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import duckdb
    from bias_support import make_store

    from estbench.config import config_hash
    from estbench.store import Store, means

    t = time.perf_counter()
    est = {f"z{i:02d}": ("synflow", 0.3 + 0.1 * i) for i in range(20)}
    make_store(path, "nb201", est, metrics=("cifar10-test",), seeds=SEEDS)
    st = Store(path)
    groups = []
    for i in range(N_ONESHOT):
        name = f"o{i:02d}"
        st.put_estimator(name, "oneshot", True, "synthetic one-shot-like")
        settings = {"space": "nb201", "synthetic": True, "run": name}
        chash = config_hash({"estimator": name, **settings})
        st.put_config(chash, name, settings, label=name)
        groups += [(name, chash, e, 0.5 + 0.2 * i + 2.0 / (1 + e / 50)) for e in EPOCHS]
    con = duckdb.connect(path)
    con.execute("CREATE TEMP TABLE g (estimator VARCHAR, config_hash VARCHAR, epoch INTEGER, noise DOUBLE)")
    con.executemany("INSERT INTO g VALUES (?, ?, ?, ?)", groups)
    con.execute(
        """
        INSERT INTO scores
        SELECT 'nb201', t.arch_id, g.estimator, g.config_hash, g.epoch, s.seed, b.batch,
               t.value + g.noise * (hash(t.arch_id, g.estimator, g.epoch, s.seed, b.batch) % 1000000 / 1e6 - 0.5)
                   * 10,
               'ok', NULL, 0.2, 'bench'
        FROM truth t, g, (SELECT unnest(?) AS seed) s, (SELECT range AS batch FROM range(?)) b
        WHERE t.space = 'nb201' AND t.metric = 'cifar10-test'
        ORDER BY g.estimator, g.config_hash, g.epoch, s.seed, t.arch_id, b.batch
        """,
        [list(SEEDS), BATCHES],
    )
    print(f"synthetic store: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    means.rebuild(con)  # the raw INSERT above bypassed the writers that keep score_arch
    con.close()
    print(f"score_arch from every score row (what migrating a store of this size costs once): "
          f"{time.perf_counter() - t:.1f} s")  # fmt: skip


def run(case: list[str], store: str) -> tuple[float, int]:
    extra = [] if case[0] == "sql" else ["--space", "nb201"]
    cmd = [sys.executable, "-m", "estbench", *case, *extra, "--store", store, "-f", "csv"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{' '.join(case)}: {p.stderr.strip()}")
    if case[0] == "sql":
        print(f"store: {p.stdout.splitlines()[1]} (rows, groups)")
    return dt, p.stdout.count("\n") - 1


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = sys.argv[1] if len(sys.argv) > 1 else str(Path(tmp) / "bench_store.duckdb")
        if not Path(store).exists():
            build(store)
        print(f"store file: {Path(store).stat().st_size / 2**20:.0f} MiB")
        worst = 0.0
        for case in CASES:
            dt, rows = run(case, store)
            worst = max(worst, dt / TARGET)
            print(f"{' '.join(case)[:58]:58s} {dt:6.2f} s  {dt / TARGET:4.2f}x of {TARGET:g} s  ({rows} rows)")
        out = Path(tmp) / "export"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "estbench", "export", str(out), "--store", store], check=True,
                       capture_output=True)  # fmt: skip
        size = sum(p.stat().st_size for p in out.glob("*.parquet")) / 2**20
        print(f"{'export DIR (Parquet)':58s} {time.perf_counter() - t:6.2f} s  ({size:.0f} MiB)")
        dt, rows = run(["criteria"], str(out))
        worst = max(worst, dt / TARGET)
        print(f"{'criteria --store DIR (the Parquet export)':58s} {dt:6.2f} s  {dt / TARGET:4.2f}x of {TARGET:g} s  "
              f"({rows} rows)")  # fmt: skip
        print(f"worst: {worst:.2f}x of the {TARGET:g} s target")


if __name__ == "__main__":
    main()
