"""Golden cases: behaviour pinned before the house refactor (issue 8) and checked after it.

Every case drives the CLI (the interface that stays) and reads the store with SQL, so it
does not depend on internal module layout. ``python tests/golden_cases.py`` rewrites
the golden files; only do that for an intended behaviour change, and say so in the commit.

- ``toy``: structural criteria of the toy space; the per-batch values of all nine
  zero-shot measures and vote on all 27 toy archs (fresh and supernet-init weights,
  noise input); a toy one-shot train + score run on a CIFAR-10 fixture.
- ``nb201`` (real data): structural criteria on all 15,625 NB201 archs and the nine
  measures on 10 fixed NB201 archs (CIFAR-10 batches)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
STRUCTURAL = ["params", "flops", "relu", "params_live", "flops_live", "relu_live"]
# the paper's nine measures and the two vote rules: what the golden files pinned (`--zse all`
# has since grown the newer proxies of issue 15, which their own tests cover)
PAPER_ZSE = sorted(
    ["grad_norm", "plain", "snip", "grasp", "fisher", "synflow", "synflow_bn", "jacob_cov", "relu_logdet", "vote",
     "vote_borda"]
)  # fmt: skip
PAPER_ZSE_ARGS = [a for n in PAPER_ZSE for a in ("--zse", n)]
NB201_ARCHS = [0, 1, 17, 333, 1462, 4000, 7777, 9999, 12345, 15624]


def _cli(runner, args: list[str]) -> str:
    from estbench.cli import app

    r = runner.invoke(app, args)
    if r.exit_code != 0:
        raise AssertionError(f"estbench {' '.join(args)} failed ({r.exit_code}): {r.output}")
    return r.stdout if hasattr(r, "stdout") else r.output


def _sql(runner, store: str, query: str) -> list:
    return json.loads(_cli(runner, ["sql", query, "--store", store, "-f", "json"]) or "[]")


SCORES = (
    "SELECT s.estimator, a.arch_str, s.epoch, s.seed, s.batch, s.value, s.status "
    "FROM scores s JOIN archs a USING (space, arch_id) WHERE s.estimator IN ({}) "
    "ORDER BY s.estimator, s.config_hash, a.arch_str, s.epoch, s.seed, s.batch"
)


def _score_values(runner, store: str, names: list[str], init_of: dict | None = None) -> list:
    rows = _sql(runner, store, SCORES.format(", ".join(f"'{n}'" for n in names)))
    return [
        [r["estimator"], r["arch_str"], r["epoch"], r["seed"], r["batch"], _f(r["value"]), r["status"]] for r in rows
    ]


def _f(v):
    """Floats as repr strings: bit-identical comparison, inf/nan included."""
    return None if v is None else repr(float(v))


def _criteria(runner, store: str, space: str, truth: str, protocol: str) -> dict:
    out = json.loads(
        _cli(
            runner,
            ["criteria", "--space", space, "--truth", truth, "--protocol", protocol, "--store", store, "-f", "json"],
        )
    )
    keep = ("lc", "kd", "spearman", "mean", "points")
    return {r["estimator"]: {k: _f(r[k]) for k in r if k in keep or "@" in k} for r in out}


def toy_case(tmp: Path) -> dict:
    import csv

    from typer.testing import CliRunner

    sys.path.insert(0, str(HERE))
    from conftest import synthetic_truth
    from tests_support import write_fake_cifar

    from estbench.spaces import get_space

    runner = CliRunner()
    truth = tmp / "toy_truth.csv"
    with open(truth, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch_str", "cifar10_test", "cifar10_valid_valid"])
        w.writerows(synthetic_truth(get_space("toy")))
    store = str(tmp / "golden_toy.duckdb")
    data = write_fake_cifar(tmp / "data", n_per_batch=40)
    common = ["--store", store, "--data-dir", str(data)]
    _cli(runner, ["truth", "load", "--space", "toy", "--file", str(truth), "--store", store])
    _cli(runner, ["score", "--space", "toy", *sum((["-e", e] for e in STRUCTURAL), []), *common])
    out: dict = {"structural_criteria": _criteria(runner, store, "toy", "cifar10-test", "deiso")}
    zs = [*PAPER_ZSE_ARGS, "--input", "noise-uniform", "--batch-size", "8", "--batches", "2", "--seed", "20"]
    _cli(runner, ["score", "--space", "toy", *zs, "--seed", "2020", *common])
    _cli(runner, ["score", "--space", "toy", *zs, "--weights", "supernet-init", *common])
    out["zeroshot"] = _score_values(runner, store, PAPER_ZSE)
    train = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "32", "--checkpoint-every", "1"]
    _cli(runner, ["train", "--space", "toy", "--run", "g1", "--epochs", "2", "--seed", "20", *train, *common])
    _cli(runner, ["score", "--space", "toy", "--ose", "g1", "--epoch", "1", "--epoch", "2", "--batches", "2",
                  "--batch-size", "16", *common])  # fmt: skip
    _cli(runner, ["score", "--space", "toy", "--ose", "g1", "--ensemble", "2", "--batches", "1", "--batch-size", "16",
                  *common])  # fmt: skip
    out["train_epochs"] = [
        [r["epoch"], _f(r["train_loss"]), _f(r["lr"]), r["steps"]]
        for r in _sql(runner, store, "SELECT epoch, train_loss, lr, steps FROM train_epochs ORDER BY epoch")
    ]
    out["oneshot"] = _score_values(runner, store, ["os_acc", "os_loss"])
    return out


def nb201_case(tmp: Path) -> dict:
    from typer.testing import CliRunner

    runner = CliRunner()
    store = str(tmp / "golden_nb201.duckdb")
    _cli(runner, ["truth", "load", "--space", "nb201", "--store", store, "-m", "cifar10-test"])
    _cli(runner, ["score", "--space", "nb201", *sum((["-e", e] for e in STRUCTURAL), []), "--store", store])
    out: dict = {"structural_criteria": _criteria(runner, store, "nb201", "cifar10-test", "deiso")}
    strs = [
        r["arch_str"] for r in _sql(runner, store, "SELECT arch_str FROM archs WHERE space = 'nb201' ORDER BY arch_id")
    ]
    archs = tmp / "archs.txt"
    archs.write_text("\n".join(strs[i] for i in NB201_ARCHS) + "\n")
    _cli(runner, ["score", "--space", "nb201", *PAPER_ZSE_ARGS, "--archs", str(archs), "--batch-size", "16",
                  "--batches", "2", "--seed", "20", "--vote-experts", "relu_logdet,jacob_cov,synflow",
                  "--store", store])  # fmt: skip
    out["zeroshot"] = _score_values(runner, store, PAPER_ZSE)
    return out


def single_threaded(case):
    """Run a case on one torch thread: values are bit-identical for a fixed thread count
    only (reductions split differently across threads)."""

    def run(tmp: Path) -> dict:
        import os

        import torch

        before, env = torch.get_num_threads(), os.environ.get("ESTBENCH_THREADS")
        torch.set_num_threads(1)
        os.environ["ESTBENCH_THREADS"] = "1"  # score and train set torch's threads themselves
        try:
            return case(tmp)
        finally:
            torch.set_num_threads(before)
            if env is None:
                os.environ.pop("ESTBENCH_THREADS", None)
            else:
                os.environ["ESTBENCH_THREADS"] = env

    return run


CASES = {"toy": single_threaded(toy_case), "nb201": single_threaded(nb201_case)}
# vote_borda, vote (from its experts) and the criteria (class truths) are DuckDB averages, whose parallel
# aggregation may sum in any order: compared to 1e-12 relative instead of bit for bit
APPROX = ("vote", "vote_borda")


if __name__ == "__main__":
    import tempfile

    for name in sys.argv[1:] or list(CASES):
        with tempfile.TemporaryDirectory() as d:
            result = CASES[name](Path(d))
        (GOLDEN / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN / f'{name}.json'}")
