"""Row labels of the report tables."""

from __future__ import annotations

import json

from estbench.analysis.evaluate import GroupCriteria
from estbench.report.tables import group_label


def group(estimator, config_hash, config=None, label=None, epoch=0):
    return GroupCriteria(estimator, config_hash, epoch, {}, label=label, config=json.dumps(config) if config else None)


def test_one_config_is_just_the_estimator():
    g = group("plain", "aaaaaaaaaaaa", {"init": "fresh"})
    assert group_label([g], g) == "plain"


def test_configs_are_told_apart_by_the_settings_that_differ():
    a = group("plain", "aaaaaaaaaaaa", {"init": "fresh", "batch_size": 64, "n": 5})
    b = group("plain", "bbbbbbbbbbbb", {"init": "supernet-init", "batch_size": 64, "n": 5})
    c = group("synflow", "cccccccccccc", {"init": "fresh"})
    groups = [a, b, c]
    assert [group_label(groups, g) for g in groups] == ["plain [init=fresh]", "plain [init=supernet-init]", "synflow"]


def test_run_label_wins_and_long_or_missing_differences_fall_back_to_the_hash():
    run = group("os_acc", "aaaaaaaaaaaa", {"run": "x"}, label="uniform-s20", epoch=50)
    other = group("os_acc", "bbbbbbbbbbbb", {"run": "y"}, label="deiso-s20", epoch=50)
    assert group_label([run, other], run) == "os_acc [uniform-s20] @ep50"
    long_a = group("vote", "aaaaaaaaaaaa", {"experts": {"synflow": "a" * 12, "jacob_cov": "b" * 12}})
    long_b = group("vote", "bbbbbbbbbbbb", {"experts": {"synflow": "c" * 12, "jacob_cov": "d" * 12}})
    assert group_label([long_a, long_b], long_a) == "vote [aaaaaa]"
    bare_a, bare_b = group("x", "aaaaaaaaaaaa"), group("x", "bbbbbbbbbbbb")
    assert group_label([bare_a, bare_b], bare_b) == "x [bbbbbb]"
