"""The NB1shot-3 supernet: forwards of sampled, enumerated and loose-end architectures,
exactly the sampled path (unused op modules get no gradient; a block's op module is the
same whatever its inputs; dead blocks left out equal 1shot1's zero-masked forward),
settings read back from weights, layer groups, seeded samplers, presets, and one tiny
training + one-shot scoring run through the trainer and evaluator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from estbench.data.cifar10 import ImageSet
from estbench.errors import BadInput
from estbench.estimators.oneshot.evaluate import model_from_checkpoint, os_scores
from estbench.estimators.oneshot.train import TrainConfig, list_checkpoints, train_supernet
from estbench.spaces.nb101 import oneshot3
from estbench.spaces.nb101 import spec as nb
from estbench.spaces.nb101.presets import PRESETS
from estbench.spaces.nb101.samplers import SAMPLERS
from estbench.spaces.nb101.search_space import NB101OneShot3
from estbench.spaces.nb101.supernet import (
    N_BLOCKS,
    POOL,
    NB101Supernet,
    plan_of,
    supernet_layers,
    supernet_settings,
)

C3, C1, MP = nb.OPS
SMALL = dict(c=4, n=1, num_classes=10, dropout=0.0)


def arch(parents, ops):
    """A configuration from the parents of vertices 1..6 and the ops of blocks 1..5."""
    return oneshot3.to_spec(tuple(tuple(p) for p in parents), tuple(ops))


CHAIN = [(0,), (1,), (2,), (1, 3), (0, 4), (4, 5)]  # in the paper's 14,580
# block 3 is a loose end (nothing takes it), block 2 feeds only it: both dead
LOOSE = [(0,), (1,), (2,), (0, 1), (1, 4), (4, 5)]


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
    return NB101Supernet(**SMALL)


def test_forward_of_several_archs(net):
    x, _ = batch()
    rng = np.random.default_rng(0)
    archs = [oneshot3.sample(rng) for _ in range(4)] + [arch(LOOSE, [C3, C1, MP, C3, C1])]
    archs += [oneshot3.parse(oneshot3.enumerate_archs()[i]) for i in (0, 14579)]
    archs.append(oneshot3.sample(rng, subset="all"))
    only_input = tuple(tuple(int(i == 0 and j == 6) for j in range(7)) for i in range(7))
    archs.append((only_input, ("input", C3, C3, C3, C3, C3, "output")))  # not SS3, but a valid cell
    for a in archs:
        out = net(x, a)
        assert out.shape == (6, 10) and torch.isfinite(out).all()
    a = archs[0]
    assert torch.equal(net.eval()(x, a), net(x, (a.matrix, a.ops)))  # a Spec or a (matrix, ops) pair
    net.train()


def test_default_shape_is_the_papers_1shot1_model():
    net = NB101Supernet()
    assert (net.c, net.n, net.stacks, len(net.cells)) == (16, 3, 3, 9)
    widths = [cell.c for cell in net.cells]
    assert widths == [16] * 3 + [32] * 3 + [64] * 3
    assert [cell.c_in for cell in net.cells] == [16, 80, 80, 80, 160, 160, 160, 320, 320]
    out = net(torch.randn(2, 3, 32, 32), arch(CHAIN, [C3] * 5))
    assert out.shape == (2, 10)


def test_ops_off_the_arch_get_no_gradient(net):
    x, y = batch()
    a = arch(CHAIN, [C3, MP, C1, C3, MP])
    got = grads(net, a, x, y)
    assert got == net.used_parameters(a)
    for i in range(len(net.cells)):
        cell = f"cells.{i}"
        assert f"{cell}.ops.0.{C3}.0.weight" in got and f"{cell}.ops.0.{C1}.0.weight" not in got
        assert not any(k.startswith(f"{cell}.ops.1.") for k in got)  # block 2 is a max-pool
        assert f"{cell}.proj.0.0.weight" in got and f"{cell}.proj.4.0.weight" in got  # blocks 1 and 5 take the input
        assert f"{cell}.proj.1.0.weight" not in got and f"{cell}.proj_out.0.weight" not in got
    # the loose end (block 3) and the block feeding only it (block 2) are not computed at all
    b = arch(LOOSE, [C3, C3, C3, C3, C3])
    got = grads(net, b, x, y)
    assert f"cells.0.ops.0.{C3}.0.weight" in got and f"cells.0.ops.3.{C3}.0.weight" in got
    assert not any(k.startswith(("cells.0.ops.1.", "cells.0.ops.2.")) for k in got)


def test_a_block_uses_one_op_module_whatever_its_inputs(net):
    x, y = batch()
    # block 5 (vertex 5) takes (0, 4) in one arch and (2, 4) in the other: same module
    a = arch(CHAIN, [C1, C1, C1, C1, C3])
    b = arch([(0,), (1,), (2,), (1, 3), (2, 4), (4, 5)], [C1, C1, C1, C1, C3])
    module = net.cells[0].ops[4][C3]
    calls = []
    handle = module.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    try:
        net(x, a)
        net(x, b)
    finally:
        handle.remove()
    assert len(calls) == 2
    key = f"cells.0.ops.4.{C3}.0.weight"
    assert key in grads(net, a, x, y) and key in grads(net, b, x, y)
    assert not torch.equal(net.eval()(x, a), net(x, b))  # different inputs, different function
    net.train()


def reference_forward(net: NB101Supernet, x: torch.Tensor, a) -> torch.Tensor:
    """1shot1's discrete forward: every block computed, inputs and outputs weighted by the
    0/1 entries of the matrix (``model_search.Cell`` with discrete arch weights)."""
    m, ops = a.matrix, a.ops
    x = net.stem(x)
    for cell, down in zip(net.cells, net.downsample):
        if down:
            x = net.pool(x)
        states = []
        for v in range(1, N_BLOCKS + 1):
            total = cell.proj[v - 1](x) * m[0][v] + sum(states[u - 1] * m[u][v] for u in range(1, v))
            op = ops[v]
            states.append(cell.pool(total) if op == POOL else cell.ops[v - 1][op](total))
        x = m[0][6] * cell.proj_out(x) + torch.cat([s * m[v + 1][6] for v, s in enumerate(states)], 1)
    return net.classifier(net.post(x).mean((2, 3)))


@pytest.mark.parametrize("parents", [CHAIN, LOOSE, [(0,), (0,), (0,), (0, 1), (0, 4), (0, 3)]])
def test_leaving_dead_blocks_out_equals_the_zero_masked_forward(parents):
    torch.manual_seed(1)
    net = NB101Supernet(**SMALL, bn_affine=True)
    for p in net.parameters():  # non-trivial BN affine parameters
        p.data.add_(0.1 * torch.randn_like(p))
    x, _ = batch(3)
    for ops in ([C3, C1, MP, C3, C1], [MP, C3, C3, C1, MP]):
        a = arch(parents, ops)
        with torch.no_grad():
            assert torch.allclose(net(x, a), reference_forward(net, x, a), atol=1e-5)
    # configurations that prune alike compute the same function
    a, b = arch(LOOSE, [C3, C1, C1, C3, C1]), arch(LOOSE, [C3, MP, C3, C3, C1])
    assert nb.pruned(a) == nb.pruned(b)
    with torch.no_grad():
        assert torch.equal(net(x, a), net(x, b))


def test_malformed_archs_are_refused(net):
    x, _ = batch()
    good = arch(CHAIN, [C3] * 5)
    with pytest.raises(BadInput, match="7x7"):
        net(x, nb.parse("0100.0010.0001.0000:input,conv3x3-bn-relu,maxpool3x3,output"))
    with pytest.raises(BadInput, match="unknown NB101 op"):
        net(x, (good.matrix, ("input", "conv5x5", *good.ops[2:])))
    with pytest.raises(BadInput, match="no input-to-output path"):
        plan_of(tuple((0,) * 7 for _ in range(7)), good.ops)
    with pytest.raises(BadInput, match="Spec or"):
        net(x, 42)


@pytest.mark.parametrize(
    "shape", [dict(c=4, n=1), dict(c=3, n=2, num_classes=7, bn_affine=True), dict(c=4, n=1, stacks=2)]
)
def test_settings_are_read_back_from_the_weights(shape):
    net = NB101Supernet(**shape)
    settings = supernet_settings(net.state_dict())
    expected = {"c": shape["c"], "n": shape["n"], "num_classes": shape.get("num_classes", 10)}
    expected["bn_affine"] = shape.get("bn_affine", False)
    if "stacks" in shape:
        expected["stacks"] = shape["stacks"]
    assert settings == expected
    NB101Supernet(**settings).load_state_dict(net.state_dict())
    with pytest.raises(KeyError):
        supernet_settings({"stem.0.weight": torch.zeros(4, 3, 3, 3)})


def test_layers_group_every_parameter_in_network_order():
    net = NB101Supernet(c=4, n=2)
    groups = supernet_layers(net)
    assert list(groups) == ["stem", "S1C0", "S1C1", "S2C2", "S2C3", "S3C4", "S3C5", "classifier"]
    assert sum(map(len, groups.values())) == len(list(net.parameters()))
    assert all(k.startswith("cells.2.") for k in groups["S2C2"])
    assert groups["classifier"][-1] == "classifier.bias" and groups["classifier"][0].startswith("post.")


def test_samplers_are_seeded_and_draw_the_space():
    space = NB101OneShot3()
    paper = set(oneshot3.enumerate_archs())

    def draws(name, seed, steps=20):
        s = SAMPLERS.get(name)(space, np.random.default_rng(seed))
        return [[nb.to_str(a) for a in s.step()] for _ in range(steps)]

    for name in ("uniform", "fairnas"):
        assert draws(name, 5) == draws(name, 5)
        assert draws(name, 5) != draws(name, 6)
        assert all(a in paper for step in draws(name, 7) for a in step)
    assert all(len(step) == 1 for step in draws("uniform", 0))
    assert SAMPLERS.meta("fairnas")["per_step"] == 3
    for step in draws("fairnas", 1):
        ops = [nb.parse_raw(a).ops[1:-1] for a in step]
        assert len(step) == 3 and all(sorted(col) == sorted(nb.OPS) for col in zip(*ops))  # each op once per block
    s = SAMPLERS.get("uniform")(space, np.random.default_rng(0))
    first = s.step()[0]
    assert SAMPLERS.get("uniform").trained_as(space)(first) == first


def test_presets_are_training_configs():
    for name, preset in PRESETS.items():
        cfg = TrainConfig.from_dict(preset)
        assert cfg.lr == 0.025, name
    paper = TrainConfig.from_dict(PRESETS["paper"])
    assert (paper.batch_size, paper.epochs, paper.c, paper.n, paper.lr_patience) == (256, 1000, 16, 3, 30)
    assert (paper.weight_decay, paper.momentum, paper.dropout, paper.grad_clip) == (5e-4, 0.9, 0.1, 5.0)


class _WiredSpace(NB101OneShot3):
    """NB1shot-3 with this supernet wired in (an instance only; nothing is registered)."""

    samplers = SAMPLERS
    presets = PRESETS

    def supernet(self, *, c=None, n=None, num_classes=None, bn_affine=False, dropout=0.1, stacks=3):
        s = self.shape(c=c, n=n, num_classes=num_classes)
        return NB101Supernet(s.c, s.n, s.num_classes, stacks, bn_affine, dropout)

    def supernet_settings(self, weights):
        return supernet_settings(weights)


def test_trains_and_scores_through_the_trainer_and_evaluator(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = ImageSet(rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, 40), "synthetic:test")
    space = _WiredSpace()
    cfg = TrainConfig(epochs=2, batch_size=8, checkpoint_every=1, lr_patience=1, c=2, n=1, lr=0.025, sampler="fairnas")
    stats = train_supernet(cfg, space, images, tmp_path)
    assert len(stats) == 2 and all(np.isfinite(s.train_loss) for s in stats)
    checkpoints = list_checkpoints(tmp_path)
    assert sorted(checkpoints) == [1, 2]
    model = model_from_checkpoint(checkpoints[2], space)
    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    x, y = batch(0, 8)
    rows = list(os_scores(model, archs, [(x, y)]))
    assert len(rows) == 3 and all(0 <= acc <= 1 and np.isfinite(loss) for _, _, acc, loss, _ in rows)
