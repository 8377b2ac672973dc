"""The estbench truth-table format."""

import gzip

import pytest

from estbench.errors import BadInput
from estbench.truth.model import metric_from_column
from estbench.truth.table import read_arch_list, read_truth_table


@pytest.mark.parametrize(
    "col, name, epoch, mean",
    [
        ("cifar10_test", "cifar10-test", 200, True),
        ("cifar10_valid_valid", "cifar10-valid-valid", 200, True),
        ("imagenet16_test_1seed", "imagenet16-test-1seed", 200, False),
        ("cifar100_test_12ep_1seed", "cifar100-test-12ep-1seed", 12, False),
    ],
)
def test_metric_names(col, name, epoch, mean):
    info = metric_from_column(col, 200, "f")
    assert (info.name, info.epoch, info.seed_mean) == (name, epoch, mean)


@pytest.mark.parametrize("col", ["accuracy", "cifar10", "cifar10_foo"])
def test_bad_metric_columns(col):
    with pytest.raises(BadInput, match="not a metric column"):
        metric_from_column(col, 200, "f")


def test_read_gz_table_and_filter(tmp_path, toy):
    archs = toy.arch_list(None)
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("index,arch_str,cifar10_test,cifar100_test\n")
        fh.write(f"1,{archs[1]},90.5,\n0,{archs[0]},10,1\n")
    ids = {a: i for i, a in enumerate(archs)}
    t = read_truth_table(path, ids, 200)
    assert t.arch_ids == [1, 0]
    assert t.values["cifar10-test"] == [90.5, 10.0]
    assert sorted(t.rows()) == [(0, "cifar10-test", 10.0), (0, "cifar100-test", 1.0), (1, "cifar10-test", 90.5)]
    only = read_truth_table(path, ids, 200, ["cifar100-test"])
    assert list(only.metrics) == ["cifar100-test"]
    with pytest.raises(BadInput, match="no column for metric"):
        read_truth_table(path, ids, 200, ["imagenet16-test"])


def test_index_mismatch_and_unknown_arch(tmp_path, toy):
    archs = toy.arch_list(None)
    ids = {a: i for i, a in enumerate(archs)}
    path = tmp_path / "t.csv"
    path.write_text(f"index,arch_str,cifar10_test\n5,{archs[0]},1\n")
    with pytest.raises(BadInput, match="index 5"):
        read_truth_table(path, ids, 200)
    path.write_text("index,arch_str,cifar10_test\n0,|foo~0|,1\n")
    with pytest.raises(BadInput, match="not in the space"):
        read_truth_table(path, ids, 200)


def test_arch_list_order(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("index,arch_str,x_test\n1,b,1\n0,a,2\n")
    assert read_arch_list(path) == ["a", "b"]
    path.write_text("index,arch_str,x_test\n2,b,1\n0,a,2\n")
    with pytest.raises(BadInput, match="not 0..1"):
        read_arch_list(path)


def toy_table(tmp_path, toy, rows: list[str]):
    archs = toy.arch_list(None)
    path = tmp_path / "t.csv"
    path.write_text("index,arch_str,cifar10_test\n" + "".join(r.format(a=archs) + "\n" for r in rows))
    return path, {a: i for i, a in enumerate(archs)}


def test_identical_repeated_row_is_read_once(tmp_path, toy):
    path, ids = toy_table(tmp_path, toy, ["0,{a[0]},1.5", "1,{a[1]},2", "0,{a[0]},1.50"])
    t = read_truth_table(path, ids, 200)
    assert t.arch_ids == [0, 1] and t.values["cifar10-test"] == [1.5, 2.0] and t.duplicates == 1


@pytest.mark.parametrize("second", ["0,{a[0]},1.6", "0,{a[0]},"])
def test_conflicting_repeated_row_is_refused(tmp_path, toy, second):
    path, ids = toy_table(tmp_path, toy, ["0,{a[0]},1.5", "1,{a[1]},2", second])
    with pytest.raises(BadInput, match=r"t.csv:4: architecture .* \(id 0\) has other values than on line 2"):
        read_truth_table(path, ids, 200)


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "nan", "1e400"])
def test_non_finite_cells_are_refused(tmp_path, toy, cell):
    path, ids = toy_table(tmp_path, toy, ["0,{a[0]},1.5", "1,{a[1]}," + cell])
    with pytest.raises(BadInput, match=r"t.csv:3: column cifar10_test: .* is not a finite accuracy"):
        read_truth_table(path, ids, 200)


def test_repeated_header_column_is_refused(tmp_path, toy):
    path, ids = toy_table(tmp_path, toy, [])
    path.write_text(f"index,arch_str,cifar10_test,cifar10_test\n0,{toy.arch_list(None)[0]},1,2\n")
    with pytest.raises(BadInput, match="cifar10_test appear more than once"):
        read_truth_table(path, ids, 200)


def test_truth_table_model_refuses_repeats_and_non_finite_values():
    from estbench.truth.model import MetricInfo, TruthTable

    with pytest.raises(BadInput, match=r"architecture b \(id 1\) appears twice"):
        TruthTable([0, 1, 1], ["a", "b", "b"])
    t = TruthTable([0, 1], ["a", "b"])
    with pytest.raises(BadInput, match=r"metric m: inf for b \(id 1\) is not a finite accuracy"):
        t.add(MetricInfo("m", 200, True), [1.0, float("inf")])
    t.add(MetricInfo("m", 200, True), [1.0, None])
    assert t.count("m") == 1
