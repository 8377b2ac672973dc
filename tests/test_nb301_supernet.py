"""The NB301 (DARTS) supernet: forwards of sampled and hand-made genotypes, exactly the
chosen path (unused (edge, op) modules get no gradient; a pair uses its edge's module
whatever the other pairs; the discrete forward equals DARTS's MixedOp with one-hot
weights), settings read back from weights, layer groups, seeded samplers, presets, and
one tiny training + one-shot scoring run through the trainer and evaluator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from estbench.data.cifar10 import ImageSet
from estbench.errors import BadInput
from estbench.estimators.oneshot.evaluate import model_from_checkpoint, os_scores
from estbench.estimators.oneshot.train import TrainConfig, list_checkpoints, train_supernet
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301.presets import PRESETS
from estbench.spaces.nb301.samplers import SAMPLERS
from estbench.spaces.nb301.supernet import NB301Supernet, edge_of, layout, supernet_layers, supernet_settings

SMALL = dict(c=2, n=5, num_classes=10, dropout=0.0)  # cells N R N R N
DARTS_V2 = gt.make(
    [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
     ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
     ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)  # fmt: skip
POOLS = gt.make(  # no parametrised op, except the reduction cell's stride-2 skip_connect (FactorizedReduce)
    [("max_pool_3x3", 0), ("avg_pool_3x3", 1)]
    + [p for j in range(1, 4) for p in (("avg_pool_3x3", 0), ("skip_connect", j + 1))],
    [("skip_connect", 0), ("avg_pool_3x3", 1)]
    + [p for j in range(1, 4) for p in (("max_pool_3x3", 1), ("skip_connect", j + 1))],
)


class Space:
    """A stand-in with the one method the samplers call."""

    def sample(self, rng: np.random.Generator) -> gt.Genotype:
        return gt.sample(rng)


def batch(seed=0, n=6, size=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def grads(net, a, x, y):
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x, a), y).backward()
    return {k for k, p in net.named_parameters() if p.grad is not None}


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return NB301Supernet(**SMALL)


def test_forward_of_several_genotypes(net):
    x, _ = batch()
    rng = np.random.default_rng(0)
    for a in [gt.sample(rng) for _ in range(4)] + [DARTS_V2, POOLS]:
        out = net(x, a)
        assert out.shape == (6, 10) and torch.isfinite(out).all()
    net.eval()
    assert torch.equal(net(x, DARTS_V2), net(x, (DARTS_V2.normal, DARTS_V2.reduce)))  # a Genotype or a pair
    net.train()
    assert net(torch.randn(2, 3, 16, 16), DARTS_V2).shape == (2, 10)


def test_default_shape_is_the_darts_search_network():
    assert [k for k, (red, _) in enumerate(layout(8)) if red] == [2, 5]
    assert [k for k, (_, prev) in enumerate(layout(8)) if prev] == [3, 6]
    assert [red for red, _ in layout(1)] == [True]  # n // 3 == 2n // 3 == 0: one reduction
    net = NB301Supernet(c=16, n=8)
    assert net.stem[0].out_channels == 48 and net.classifier.in_features == 4 * 64
    assert [type(cell.pre0).__name__ for cell in net.cells[2:5]] == ["ReLUConvBN", "FactorizedReduce", "ReLUConvBN"]
    assert len(net.cells[0].edges) == 14 and all(set(e) == set(gt.OPS) for e in net.cells[0].edges)
    assert net(torch.randn(2, 3, 32, 32), DARTS_V2).shape == (2, 10)


def test_only_the_chosen_modules_get_gradients(net):
    x, y = batch()
    for a in (DARTS_V2, POOLS, gt.sample(np.random.default_rng(3))):
        assert grads(net, a, x, y) == net.used_parameters(a)
    got = grads(net, DARTS_V2, x, y)
    normal, reduce = net.cells[0], net.cells[1]
    assert not normal.reduction and reduce.reduction
    # normal node 3 reads inputs 0 (skip, no parameters) and 2 (dil_conv_3x3, edge 9 + 2)
    assert "cells.0.edges.11.dil_conv_3x3.1.weight" in got
    assert not any(k.startswith("cells.0.edges.9.") or k.startswith("cells.0.edges.10.") for k in got)
    assert not any(k.startswith("cells.0.edges.0.sep_conv_5x5.") for k in got)
    # the reduction cell's pools and node-to-node skips have no parameters: only the preprocessing
    assert {k.split(".")[2] for k in got if k.startswith("cells.1.")} == {"pre0", "pre1"}
    # a stride-2 skip_connect (reduction cell, a cell input) is a FactorizedReduce with weights
    assert "cells.1.edges.0.skip_connect.conv_1.weight" in grads(net, POOLS, x, y)
    assert not any(k.startswith("cells.0.edges.") for k in grads(net, POOLS, x, y))  # pools and skips only


def test_genotypes_sharing_an_edge_op_share_its_module(net):
    x, y = batch()
    rng = np.random.default_rng(5)
    a, b = gt.sample(rng), gt.sample(rng)
    # both take sep_conv_5x5 from input 0 at normal node 2; everything else differs
    a = gt.make(a.normal[:4] + (("sep_conv_5x5", 0), ("avg_pool_3x3", 3)) + a.normal[6:], a.reduce)
    b = gt.make(b.normal[:4] + (("sep_conv_5x5", 0), ("max_pool_3x3", 1)) + b.normal[6:], b.reduce)
    module = net.cells[0].edges[edge_of(2, 0)]["sep_conv_5x5"]
    calls = []
    handle = module.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        net(x, a)
        net(x, b)
    finally:
        handle.remove()
    assert len(calls) == 2
    key = f"cells.0.edges.{edge_of(2, 0)}.sep_conv_5x5.1.weight"
    assert key in grads(net, a, x, y) and key in grads(net, b, x, y)
    # the same op from another input is another module
    c = gt.make(a.normal[:4] + (("sep_conv_5x5", 1), ("avg_pool_3x3", 3)) + a.normal[6:], a.reduce)
    got = grads(net, c, x, y)
    assert key not in got and f"cells.0.edges.{edge_of(2, 1)}.sep_conv_5x5.1.weight" in got


def mixed_forward(net: NB301Supernet, x: torch.Tensor, a: gt.Genotype) -> torch.Tensor:
    """DARTS ``model_search`` with one-hot architecture weights: every op of every edge
    computed, weighted 1 where the genotype picks it and 0 elsewhere."""
    s0 = s1 = net.stem(x)
    for cell in net.cells:
        chosen = a.reduce if cell.reduction else a.normal
        weights = {(edge_of(k // 2, i), op) for k, (op, i) in enumerate(chosen)}
        states = [cell.pre0(s0), cell.pre1(s1)]
        for j in range(gt.NODES):
            states.append(
                sum(
                    float((edge_of(j, i), op) in weights) * cell.edges[edge_of(j, i)][op](states[i])
                    for i in range(2 + j)
                    for op in gt.OPS
                )
            )
        s0, s1 = s1, torch.cat(states[2:], 1)
    return net.classifier(net.global_pooling(s1).flatten(1))


def test_the_discrete_path_equals_the_one_hot_mixed_op():
    torch.manual_seed(1)
    net = NB301Supernet(**{**SMALL, "n": 4}, bn_affine=True)  # N R R N: back-to-back reductions
    for p in net.parameters():  # non-trivial BN affine parameters
        p.data.add_(0.1 * torch.randn_like(p))
    x, _ = batch(3)
    rng = np.random.default_rng(2)
    for a in (DARTS_V2, POOLS, gt.sample(rng), gt.sample(rng)):
        with torch.no_grad():
            assert torch.allclose(net(x, a), mixed_forward(net, x, a), atol=1e-5)


def test_malformed_genotypes_are_refused(net):
    x, _ = batch()
    with pytest.raises(BadInput, match="Genotype or"):
        net(x, 42)
    with pytest.raises(BadInput, match="unknown op 'conv_7x7'"):
        net(x, gt.Genotype((("conv_7x7", 0),) + DARTS_V2.normal[1:], DARTS_V2.reduce))
    with pytest.raises(BadInput, match="node 0 of the reduce cell takes input 2"):
        net(x, gt.Genotype(DARTS_V2.normal, (("max_pool_3x3", 0), ("max_pool_3x3", 2)) + DARTS_V2.reduce[2:]))
    with pytest.raises(BadInput, match="positive"):
        NB301Supernet(c=0)


@pytest.mark.parametrize("shape", [dict(c=2, n=5), dict(c=3, n=2, num_classes=7, bn_affine=True), dict(c=2, n=8)])
def test_settings_are_read_back_from_the_weights(shape):
    net = NB301Supernet(**shape)
    settings = supernet_settings(net.state_dict())
    assert settings == {"num_classes": 10, "bn_affine": False, **shape}
    NB301Supernet(**settings).load_state_dict(net.state_dict())
    with pytest.raises(KeyError):
        supernet_settings({"stem.0.weight": torch.zeros(6, 3, 3, 3), "classifier.weight": torch.zeros(10, 8)})
    with pytest.raises(KeyError):  # NB201's supernet
        supernet_settings({"stem.0.weight": torch.zeros(6, 3, 3, 3), "cells.0.edges.0.nor_conv_3x3.1.weight": 0})


def test_layers_group_every_parameter_once_in_network_order():
    net = NB301Supernet(**SMALL)
    groups = supernet_layers(net)
    assert list(groups) == ["stem", "S1C0", "S2R1", "S2C2", "S3R3", "S3C4", "classifier"]
    names = [k for k, _ in net.named_parameters()]
    assert [k for g in groups.values() for k in g] == names  # each once, in network order
    assert all(k.startswith("cells.3.") for k in groups["S3R3"])
    eight = list(supernet_layers(NB301Supernet(c=2, n=8)))
    assert eight == ["stem", "S1C0", "S1C1", "S2R2", "S2C3", "S2C4", "S3R5", "S3C6", "S3C7", "classifier"]


def test_samplers_are_seeded_and_fairnas_uses_every_op_once_per_position():
    space = Space()

    def draws(name, seed, steps=10):
        s = SAMPLERS.get(name)(space, np.random.default_rng(seed))
        return [s.step() for _ in range(steps)]

    for name in ("uniform", "fairnas"):
        assert draws(name, 5) == draws(name, 5)
        assert draws(name, 5) != draws(name, 6)
        assert all(gt.make(a.normal, a.reduce) == a for step in draws(name, 7) for a in step)  # valid, sorted
    assert [step[0] for step in draws("uniform", 3)] == (lambda r: [gt.sample(r) for _ in range(10)])(
        np.random.default_rng(3)
    )
    assert SAMPLERS.meta("fairnas")["per_step"] == 7
    for step in draws("fairnas", 1):
        assert len(step) == 7
        for name in gt.CELL_TYPES:
            for pos in range(8):
                assert sorted(a.cell(name)[pos][0] for a in step) == sorted(gt.OPS)  # each op once per position
            for k in range(2):  # node 0 always reads both cell inputs: fair per edge too
                assert sorted(a.cell(name)[k] for a in step) == sorted((op, k) for op in gt.OPS)
    # the inputs are the space's draws: the first 7 draws of the generator
    rng = np.random.default_rng(2)
    first = [space.sample(rng) for _ in range(7)]
    step = SAMPLERS.get("fairnas")(space, np.random.default_rng(2)).step()
    assert [[i for _, i in a.normal + a.reduce] for a in step] == [[i for _, i in a.normal + a.reduce] for a in first]
    assert SAMPLERS.get("uniform").trained_as(space)(first[0]) == first[0]


def test_presets_are_training_configs():
    for preset in PRESETS.values():
        TrainConfig.from_dict(preset)
    paper = TrainConfig.from_dict(PRESETS["paper"])
    assert (paper.batch_size, paper.lr, paper.epochs, paper.c, paper.n, paper.lr_patience) == (
        256,
        0.05,
        1500,
        16,
        8,
        30,
    )
    assert (paper.weight_decay, paper.momentum, paper.dropout, paper.grad_clip, paper.bn_affine) == (
        5e-4, 0.9, 0.1, 5.0, False,
    )  # fmt: skip
    small = TrainConfig.from_dict(PRESETS["cpu-small"])
    assert small.epochs // small.checkpoint_every >= 2


def test_trains_and_scores_through_the_trainer_and_evaluator(tmp_path):
    from estbench.spaces.nb301.search_space import NB301

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = ImageSet(rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, 40), "synthetic:test")
    space = NB301()
    cfg = TrainConfig(epochs=2, batch_size=8, checkpoint_every=1, lr_patience=1, c=2, n=2, sampler="fairnas")
    stats = train_supernet(cfg, space, images, tmp_path)
    assert len(stats) == 2 and all(np.isfinite(s.train_loss) for s in stats)
    checkpoints = list_checkpoints(tmp_path)
    assert sorted(checkpoints) == [1, 2]
    model = model_from_checkpoint(checkpoints[2], space)
    assert isinstance(model, NB301Supernet) and (model.c, model.n) == (2, 2)
    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    rows = list(os_scores(model, archs, [batch(0, 8)]))
    assert len(rows) == 3 and all(0 <= acc <= 1 and np.isfinite(loss) for _, _, acc, loss, _ in rows)
