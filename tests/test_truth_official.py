"""Readers of the official NATS-Bench / NAS-Bench-201 files, on tiny fixtures built
with the same nesting as the official files (ArchResults / ResultsCount state dicts)."""

from __future__ import annotations

import bz2
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest

from estbench.errors import BadInput, MissingData
from estbench.truth.official import (
    OFFICIAL_METRICS,
    nats_arch_list,
    nb201_pth_arch_list,
    read_nats_simple,
    read_nb201_pth,
)

# Real NB201 architecture strings; ids are this fixture's order.
ARCHS = [
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
]
ARCH_IDS = {a: i for i, a in enumerate(ARCHS)}
SEEDS = (777, 888)
# eval sets per dataset, as in the official files
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("ori-test", "x-valid", "x-test"),
    "ImageNet16-120": ("ori-test", "x-valid", "x-test"),
}
DATASET_NO = {"cifar10-valid": 1, "cifar10": 2, "cifar100": 3, "ImageNet16-120": 4}
SET_NO = {"x-valid": 1, "x-test": 2, "ori-test": 3}


def final_acc(index: int, dataset: str, eval_set: str, seed: int, epochs: int) -> float:
    """A distinct accuracy for every (arch, dataset, eval set, seed, schedule)."""
    return 10 * index + DATASET_NO[dataset] + SET_NO[eval_set] / 10 + (seed - 777) / 100 + epochs / 1000


def expected(index: int, metric: str, epochs: int = 200) -> float:
    split = OFFICIAL_METRICS[metric]
    return sum(final_acc(index, split.dataset, split.eval_set, s, epochs) for s in SEEDS) / len(SEEDS)


def results_count(index: int, dataset: str, seed: int, epochs: int) -> dict:
    """A ResultsCount state dict; earlier epochs hold a decoy value (1.0)."""
    accs, losses = {}, {}
    for eval_set in EVAL_SETS[dataset]:
        for e in range(epochs):
            accs[f"{eval_set}@{e}"] = final_acc(index, dataset, eval_set, seed, epochs) if e == epochs - 1 else 1.0
            losses[f"{eval_set}@{e}"] = 2.0
    return {
        "name": dataset,
        "net_state_dict": None,
        "train_acc1es": {e: 50.0 for e in range(epochs)},
        "train_acc5es": None,
        "train_losses": {e: 1.0 for e in range(epochs)},
        "train_times": OrderedDict((e, 3.0) for e in range(epochs)),
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": ARCHS[index], "class_num": 10},
        "params": 0.5,
        "flop": 80.0,
        "seed": str(seed),
        "epochs": epochs,
        "latency": [0.01],
        "eval_names": list(EVAL_SETS[dataset]),
        "eval_acc1es": accs,
        "eval_times": {k: 0.5 for k in accs},
        "eval_losses": losses,
    }


def arch_results(index: int, epochs: int, datasets=tuple(EVAL_SETS)) -> dict:
    """An ArchResults state dict."""
    return {
        "arch_index": index,
        "arch_str": ARCHS[index],
        "all_results": {(d, s): results_count(index, d, s, epochs) for d in datasets for s in SEEDS},
        "dataset_seed": {d: list(SEEDS) for d in datasets},
        "clear_net_done": True,
    }


def save_pbz2(obj, path: Path) -> None:
    with bz2.BZ2File(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)


@pytest.fixture
def nats_dir(tmp_path: Path) -> Path:
    root = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    save_pbz2(
        {"meta_archs": list(ARCHS), "total_archs": 3, "arch2infos": None, "evaluated_indexes": set()},
        root / "meta.pickle.pbz2",
    )
    for i in range(len(ARCHS)):
        save_pbz2(OrderedDict({"12": arch_results(i, 12), "200": arch_results(i, 200)}), root / f"{i:06d}.pickle.pbz2")
    return root


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def nb201_archive(less_datasets=tuple(EVAL_SETS)) -> dict:
    return {
        "meta_archs": list(ARCHS),
        "arch2infos": {
            i: {"less": arch_results(i, 12, less_datasets), "full": arch_results(i, 200)} for i in range(len(ARCHS))
        },
        "evaluated_indexes": list(range(len(ARCHS))),
    }


@pytest.fixture
def pth_file(tmp_path: Path, torch) -> Path:
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save(nb201_archive(), path)
    return path


def rewrite(path: Path, change) -> None:
    with bz2.BZ2File(path, "rb") as fh:
        obj = pickle.load(fh)
    change(obj)
    save_pbz2(obj, path)


def check_table(table, epochs: int = 200, metrics=tuple(OFFICIAL_METRICS)) -> None:
    assert table.arch_ids == [0, 1, 2]
    assert table.arch_strs == ARCHS
    assert list(table.metrics) == list(metrics)
    for name in metrics:
        info = table.metrics[name]
        assert info.epoch == epochs and info.seed_mean and info.higher_is_better
        assert table.values[name] == pytest.approx([expected(i, name, epochs) for i in range(3)])


# ---- NATS-Bench simple directory -------------------------------------------------------


def test_nats_arch_list(nats_dir):
    assert nats_arch_list(nats_dir) == ARCHS


def test_read_nats_simple_all_metrics_are_seed_means_at_last_epoch(nats_dir):
    table = read_nats_simple(nats_dir, ARCH_IDS)
    check_table(table)
    # spot-check the split mapping by hand: cifar100-test is cifar100 x-test, not ori-test
    # (arch 2, cifar100, x-test, mean of seeds 777/888, 200 epochs)
    assert table.values["cifar100-test"][2] == pytest.approx(20 + 3 + 0.2 + (0 + 1.11) / 2 + 0.2)
    assert table.metrics["cifar10-test"].source == str(nats_dir)


def test_read_nats_simple_hp12(nats_dir):
    check_table(read_nats_simple(nats_dir, ARCH_IDS, hp="12"), epochs=12)


def test_read_nats_simple_metric_filter(nats_dir):
    table = read_nats_simple(nats_dir, ARCH_IDS, metrics=["imagenet16-valid", "cifar10-valid-valid"])
    check_table(table, metrics=("imagenet16-valid", "cifar10-valid-valid"))
    assert len(list(table.rows())) == 6


def test_unknown_metric(nats_dir):
    with pytest.raises(BadInput, match="unknown metric.*cifar10-train"):
        read_nats_simple(nats_dir, ARCH_IDS, metrics=["cifar10-train"])


def test_unpadded_file_names_are_accepted(nats_dir):
    (nats_dir / "000001.pickle.pbz2").rename(nats_dir / "1.pickle.pbz2")
    check_table(read_nats_simple(nats_dir, ARCH_IDS))


def test_missing_meta(nats_dir):
    (nats_dir / "meta.pickle.pbz2").unlink()
    with pytest.raises(MissingData, match="meta.pickle.pbz2 does not exist"):
        nats_arch_list(nats_dir)
    with pytest.raises(MissingData, match="meta.pickle.pbz2"):
        read_nats_simple(nats_dir, ARCH_IDS)


def test_not_a_directory(tmp_path):
    with pytest.raises(MissingData, match="not a directory"):
        nats_arch_list(tmp_path / "nope")


def test_meta_without_meta_archs(nats_dir):
    save_pbz2({"total_archs": 3}, nats_dir / "meta.pickle.pbz2")
    with pytest.raises(BadInput, match="missing key 'meta_archs'"):
        nats_arch_list(nats_dir)


def test_missing_arch_file(nats_dir):
    (nats_dir / "000001.pickle.pbz2").unlink()
    with pytest.raises(MissingData, match="000001.pickle.pbz2 does not exist"):
        read_nats_simple(nats_dir, ARCH_IDS)


@pytest.mark.parametrize(
    "content",
    [b"not bz2 at all", bz2.compress(b"not a pickle"), bz2.compress(pickle.dumps({"200": 1}))[:20]],
    ids=["not-bz2", "not-pickle", "truncated"],
)
def test_corrupt_arch_file(nats_dir, content):
    (nats_dir / "000002.pickle.pbz2").write_bytes(content)
    with pytest.raises(BadInput, match="000002.pickle.pbz2: not a readable bz2-compressed pickle") as err:
        read_nats_simple(nats_dir, ARCH_IDS)
    assert "\n" not in str(err.value)


def test_arch_index_mismatch_in_file(nats_dir):
    rewrite(nats_dir / "000001.pickle.pbz2", lambda o: o["200"].update(arch_str=ARCHS[2]))
    with pytest.raises(BadInput, match=r"000001.pickle.pbz2: index 1 holds .* id 2") as err:
        read_nats_simple(nats_dir, ARCH_IDS)
    assert ARCHS[2] in str(err.value)


def test_arch_index_field_mismatch(nats_dir):
    rewrite(nats_dir / "000001.pickle.pbz2", lambda o: o["200"].update(arch_index=7))
    with pytest.raises(BadInput, match="file index 1 but its record says arch_index 7"):
        read_nats_simple(nats_dir, ARCH_IDS)


def test_meta_order_differs_from_space(nats_dir):
    swapped = {ARCHS[0]: 1, ARCHS[1]: 0, ARCHS[2]: 2}
    with pytest.raises(BadInput, match=r"meta_archs\[0\]: index 0 holds .* id 1"):
        read_nats_simple(nats_dir, swapped)


def test_arch_not_in_space(nats_dir):
    with pytest.raises(BadInput, match="not in the space"):
        read_nats_simple(nats_dir, {ARCHS[0]: 0, ARCHS[1]: 1})


def test_missing_hp(nats_dir):
    rewrite(nats_dir / "000000.pickle.pbz2", lambda o: o.pop("200"))
    with pytest.raises(MissingData, match="000000.pickle.pbz2: no results for hp '200' \\(has: '12'\\)"):
        read_nats_simple(nats_dir, ARCH_IDS)


def drop_dataset(obj, dataset="cifar100", hp="200"):
    obj[hp]["dataset_seed"].pop(dataset)
    for s in SEEDS:
        obj[hp]["all_results"].pop((dataset, s))


def test_dataset_missing_for_one_arch(nats_dir):
    rewrite(nats_dir / "000001.pickle.pbz2", drop_dataset)
    with pytest.raises(
        MissingData, match="000001.pickle.pbz2 .*no cifar100 x-valid results \\(hp 200\\) for cifar100-valid"
    ):
        read_nats_simple(nats_dir, ARCH_IDS)
    # metrics of the other datasets still read
    check_table(read_nats_simple(nats_dir, ARCH_IDS, metrics=["cifar10-test"]), metrics=("cifar10-test",))


def test_dataset_missing_everywhere(nats_dir):
    for i in range(3):
        rewrite(nats_dir / f"{i:06d}.pickle.pbz2", drop_dataset)
    table = read_nats_simple(nats_dir, ARCH_IDS)  # by default: the metrics the files have
    assert "cifar100-test" not in table.metrics and "cifar10-test" in table.metrics
    with pytest.raises(MissingData, match="no architecture has cifar100 x-test results"):
        read_nats_simple(nats_dir, ARCH_IDS, metrics=["cifar100-test"])


def test_missing_key_in_run(nats_dir):
    rewrite(nats_dir / "000002.pickle.pbz2", lambda o: o["200"]["all_results"][("cifar10", 888)].pop("eval_acc1es"))
    with pytest.raises(BadInput, match=r"000002.pickle.pbz2 \[cifar10 seed 888\]: missing key 'eval_acc1es'"):
        read_nats_simple(nats_dir, ARCH_IDS)


def test_seed_listed_without_run(nats_dir):
    rewrite(nats_dir / "000000.pickle.pbz2", lambda o: o["200"]["all_results"].pop(("cifar10", 777)))
    with pytest.raises(BadInput, match=r"missing key \('cifar10', 777\)"):
        read_nats_simple(nats_dir, ARCH_IDS)


# ---- NAS-Bench-201 .pth --------------------------------------------------------------


def test_nb201_pth_full_and_less(pth_file):
    assert nb201_pth_arch_list(pth_file) == ARCHS
    check_table(read_nb201_pth(pth_file, ARCH_IDS))
    check_table(
        read_nb201_pth(pth_file, ARCH_IDS, hp="12", metrics=["cifar10-test"]), epochs=12, metrics=("cifar10-test",)
    )


def test_nb201_v10_less_has_only_cifar10_valid(tmp_path, torch):
    path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save(nb201_archive(less_datasets=("cifar10-valid",)), path)
    table = read_nb201_pth(path, ARCH_IDS, hp="12")
    check_table(table, epochs=12, metrics=("cifar10-valid-valid", "cifar10-valid-test"))
    with pytest.raises(MissingData, match="no architecture has cifar10 ori-test"):
        read_nb201_pth(path, ARCH_IDS, hp="12", metrics=["cifar10-test"])


def test_nb201_bad_hp(pth_file):
    with pytest.raises(BadInput, match="hp '12' and '200', not '90'"):
        read_nb201_pth(pth_file, ARCH_IDS, hp="90")


def test_nb201_missing_file(tmp_path):
    with pytest.raises(MissingData, match="does not exist"):
        read_nb201_pth(tmp_path / "NAS-Bench-201-v1_1-096897.pth", ARCH_IDS)


def test_nb201_corrupt_file(tmp_path, torch):
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(BadInput, match="not a readable NAS-Bench-201 archive") as err:
        nb201_pth_arch_list(path)
    assert "\n" not in str(err.value)


def test_nb201_not_a_dict(tmp_path, torch):
    path = tmp_path / "x.pth"
    torch.save([1, 2], path)
    with pytest.raises(BadInput, match="holds a list"):
        read_nb201_pth(path, ARCH_IDS)


def test_nb201_record_arch_mismatch(tmp_path, torch):
    data = nb201_archive()
    data["arch2infos"][0]["full"]["arch_str"] = ARCHS[1]
    path = tmp_path / "a.pth"
    torch.save(data, path)
    with pytest.raises(BadInput, match=r"arch2infos\[0\]\['full'\]: index 0 holds .* id 1"):
        read_nb201_pth(path, ARCH_IDS)


def test_nb201_missing_dataset_and_key(tmp_path, torch):
    data = nb201_archive()
    drop_dataset(data["arch2infos"][2], "ImageNet16-120", hp="full")
    del data["arch2infos"][1]["less"]
    path = tmp_path / "a.pth"
    torch.save(data, path)
    with pytest.raises(MissingData, match=r"arch2infos\[2\]\['full'\] .*no ImageNet16-120 x-valid"):
        read_nb201_pth(path, ARCH_IDS)
    with pytest.raises(BadInput, match=r"arch2infos\[1\]: missing key 'less'"):
        read_nb201_pth(path, ARCH_IDS, hp="12")


def test_nb201_missing_top_level_key(tmp_path, torch):
    data = nb201_archive()
    del data["arch2infos"]
    path = tmp_path / "a.pth"
    torch.save(data, path)
    with pytest.raises(BadInput, match="missing key 'arch2infos'"):
        read_nb201_pth(path, ARCH_IDS)


def test_numpy_values_in_official_files_are_read(nats_dir, tmp_path, torch):
    """The restricted unpicklers admit numpy scalars and arrays (plain data)."""
    import numpy as np

    def to_numpy(obj):
        for r in obj["200"]["all_results"].values():
            r["eval_acc1es"] = {k: np.float64(v) for k, v in r["eval_acc1es"].items()}
            r["latency"] = np.array(r["latency"])

    for i in range(3):
        rewrite(nats_dir / f"{i:06d}.pickle.pbz2", to_numpy)
    check_table(read_nats_simple(nats_dir, ARCH_IDS))
    data = nb201_archive()
    for i in range(3):
        to_numpy({"200": data["arch2infos"][i]["full"]})
    torch.save(data, tmp_path / "np.pth")
    check_table(read_nb201_pth(tmp_path / "np.pth", ARCH_IDS))


def test_objects_other_than_plain_data_are_refused(nats_dir, tmp_path, torch):
    import datetime

    rewrite(nats_dir / "000002.pickle.pbz2", lambda o: o["200"].update(created=datetime.date(2020, 1, 1)))
    with pytest.raises(BadInput, match=r"000002.pickle.pbz2: .*refused to load datetime.date"):
        read_nats_simple(nats_dir, ARCH_IDS)
    torch.save({**nb201_archive(), "made": datetime.date(2020, 1, 1)}, path := tmp_path / "a.pth")
    with pytest.raises(BadInput, match=r"a.pth: refused to load datetime.date"):
        read_nb201_pth(path, ARCH_IDS)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_official_accuracy_is_refused(nats_dir, bad):
    rewrite(
        nats_dir / "000001.pickle.pbz2",
        lambda o: o["200"]["all_results"][("cifar10", 777)]["eval_acc1es"].update({"ori-test@199": bad}),
    )
    with pytest.raises(BadInput, match=r"000001.pickle.pbz2 \[cifar10 seed 777\]: .* not a finite accuracy"):
        read_nats_simple(nats_dir, ARCH_IDS)
