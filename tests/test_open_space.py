"""Open spaces (too large to enumerate, `SearchSpace.enumerable` False): architectures
enter the store from truth files, `--archs sample:N` and arch files, with ids in arrival
order; a truth entry known only by its canonical key goes to the stored archs with that
key. Tested on a non-registered open variant of the toy space."""

from __future__ import annotations

import pytest

from estbench.data.lookup import DataDir
from estbench.errors import BadInput
from estbench.runs.selection import ensure_archs, select_archs
from estbench.spaces.base import TruthSource, table_source
from estbench.spaces.toy import Toy
from estbench.store import Store
from estbench.truth.load import load_truth
from estbench.truth.model import MetricInfo, TruthTable


class OpenToy(Toy):
    name = "toy-open"
    enumerable = False

    @property
    def truth_sources(self):
        return (
            table_source(self.name, open_space=True),
            TruthSource("keys", (), "test_open_space:read_keys", claims=".keys"),
        )


SPACE = OpenToy()


def read_keys(path, arch_ids, metrics=None):
    """A key-only truth file: lines 'ISO_KEY VALUE' (like NB101's hash-only tables)."""
    keys, vals = [], []
    for line in path.read_text().splitlines():
        k, v = line.rsplit(" ", 1)
        keys.append(k)
        vals.append(float(v))
    t = TruthTable([-1] * len(keys), [""] * len(keys), keys=keys)
    t.add(MetricInfo("cifar10-test", 200, True, str(path)), vals)
    return t


@pytest.fixture
def st(tmp_path):
    return Store(str(tmp_path / "s.duckdb"))


def test_an_open_space_starts_empty_and_refuses_all_with_the_ways_to_fill_it(st):
    assert ensure_archs(st, SPACE, DataDir(None)) == 0
    with pytest.raises(BadInput, match=r"no toy-open architectures yet.*truth load.*sample:N"):
        select_archs(st, SPACE, "all")


def test_sample_draws_distinct_archs_from_the_space_and_is_seeded(st):
    ids = select_archs(st, SPACE, "sample:10@3")
    assert ids == list(range(10))
    strs = st.arch_strings("toy-open")
    assert len(set(strs)) == 10 and all(SPACE.to_str(SPACE.parse(s)) == s for s in strs)
    again = select_archs(st, SPACE, "sample:10@3")  # the same draw: nothing new
    assert again == ids and st.arch_count("toy-open") == 10
    more = select_archs(st, SPACE, "sample:12@4")  # another seed adds what is new, ids follow on
    assert st.arch_count("toy-open") == len(set(strs) | set(st.arch_strings("toy-open")))
    assert max(more) == st.arch_count("toy-open") - 1
    assert select_archs(st, SPACE, "all") == list(range(st.arch_count("toy-open")))
    with pytest.raises(BadInput, match="drew only 27 distinct"):
        select_archs(st, SPACE, "sample:28@0")  # the toy space has 27


def test_a_file_adds_its_archs(st, tmp_path):
    a, b = SPACE.arch_list(None)[5], SPACE.arch_list(None)[7]
    f = tmp_path / "archs.txt"
    f.write_text(f"{b}\n{a}  # comment\n")
    ids = select_archs(st, SPACE, str(f))
    assert st.arch_strings("toy-open") == [b, a] and ids == [0, 1]


def test_truth_brings_its_archs_and_key_rows_reach_every_arch_with_the_key(st, tmp_path):
    archs = SPACE.arch_list(None)
    table = tmp_path / "t.csv"
    table.write_text("arch_str,cifar10_test\n" + "".join(f"{s},{50 + i}\n" for i, s in enumerate(archs[:4])))
    done = load_truth(st, SPACE, DataDir(None), str(table), "auto", [])
    assert done.added_archs == 4 and done.n_values == 4 and st.arch_strings("toy-open") == archs[:4]
    # a key-only file: its value goes to every stored arch of the class, others are counted unmatched
    st2 = Store(str(tmp_path / "k.duckdb"))
    select_archs(st2, SPACE, "sample:27@0")
    facts = st2.arch_facts("toy-open", "deiso")
    key = str(facts["grp"][0])
    members = [int(a) for a, g in zip(facts["arch_id"], facts["grp"]) if str(g) == key]
    kf = tmp_path / "t.keys"
    kf.write_text(f"{key} 71.5\nno-such-key 3.0\n")
    done = load_truth(st2, SPACE, DataDir(None), str(kf), "auto", [])
    assert done.unmatched == 1 and done.added_archs == 0
    assert st2.truth_arch_ids("toy-open", "cifar10-test") == sorted(members)
