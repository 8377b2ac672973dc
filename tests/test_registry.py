import pytest

from estbench.errors import UnknownName
from estbench.estimators import ESTIMATORS
from estbench.registry import Registry
from estbench.spaces import SPACES


def test_register_get_meta_and_lazy_target():
    reg = Registry("thing")
    reg.register("alpha", "math:sqrt", kind="a")

    @reg.register("beta", kind="b")
    def beta():
        return 2

    assert reg.get("alpha")(9) == 3
    assert reg.get("beta")() == 2
    assert reg.names() == ["alpha", "beta"]
    assert reg.names(kind="b") == ["beta"]
    assert reg.names("al*") == ["alpha"]


def test_unknown_name_suggests_and_lists():
    reg = Registry("estimator")
    for n in ("synflow", "snip", "grad_norm"):
        reg.register(n, n)
    with pytest.raises(UnknownName) as exc:
        reg.get("synflw")
    msg = str(exc.value)
    assert "Did you mean synflow" in msg and "Known: grad_norm, snip, synflow" in msg


def test_duplicate_and_uppercase_rejected():
    reg = Registry("x")
    reg.register("a", 1)
    with pytest.raises(ValueError):
        reg.register("a", 2)
    with pytest.raises(ValueError):
        reg.register("Bad", 3)


def test_real_registries_have_metadata():
    assert {"nb201", "toy"} <= set(SPACES.names())
    for name in ESTIMATORS.names():
        meta = ESTIMATORS.meta(name)
        assert meta["kind"] in ("structural", "zeroshot", "oneshot")
        assert isinstance(meta["higher_is_better"], bool)
        assert isinstance(meta["settings"], tuple)
