"""One-shot estimator core on the toy space: the supernet computes exactly the sampled
path and equals the standalone network, samplers, bit-identical resume, checkpoint
errors, OS evaluation and checkpoint averaging."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats as sps

from estbench.data.cifar10 import ImageSet, fixed_batches
from estbench.errors import BadInput, MissingData, UnknownName
from estbench.estimators.oneshot.evaluate import average_checkpoints, model_from_checkpoint, os_scores
from estbench.estimators.oneshot.train import (
    TrainBatches,
    TrainConfig,
    list_checkpoints,
    load_checkpoint,
    preset_config,
    split_indices,
    train_supernet,
)
from estbench.spaces import get_space
from estbench.spaces.cell.samplers import SAMPLERS, iso_representatives
from estbench.spaces.cell.supernet import AvgPool3x3, CellSupernet, SuperCell

TOY = dict(c=4, n=1, num_classes=10)


@pytest.fixture(scope="module")
def space():
    return get_space("toy")


@pytest.fixture(scope="module")
def cell(space):
    return space.cell


@pytest.fixture(scope="module")
def images() -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet(rng.integers(0, 256, (100, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, 100), "synthetic:test")


def toy_config(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=16, checkpoint_every=2, lr_patience=1, seed=3, **TOY)
    return TrainConfig(**{**base, **kw})


def batch(seed: int = 0, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def randomize_bn(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g))


# ---- supernet ----------------------------------------------------------------------
def test_forward_computes_and_trains_only_the_live_path(cell):
    torch.manual_seed(0)
    net = CellSupernet(cell, **TOY)
    called = set()
    for layer, sc in enumerate(net.cells):
        if isinstance(sc, SuperCell):
            for k, ops in enumerate(sc.edges):
                for op, m in ops.items():
                    m.register_forward_hook(lambda *_, key=(layer, k, op): called.add(key))
    x, y = batch()
    for arch in cell.enumerate():
        called.clear()
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x, arch), y).backward()
        live = cell.live_edges(arch)
        expected = {
            (lay, k, arch[k]) for lay, sc in enumerate(net.cells) if isinstance(sc, SuperCell) for k in range(3)
        }
        expected = {key for key in expected if live[key[1]] and key[2] == "nor_conv_3x3"}
        assert called == expected, arch
        for name, p in net.named_parameters():
            parts = name.split(".")
            if ".edges." in name:
                used = (int(parts[1]), int(parts[3]), parts[4]) in expected
            else:  # shared modules: used unless the arch is degenerate (only the head then)
                used = not cell.is_degenerate(arch) or parts[0] in ("lastact", "classifier")
            assert (p.grad is not None) == used, (arch, name)


def test_degenerate_arch_feeds_zeros_to_the_head(cell):
    net = CellSupernet(cell, **TOY).eval()
    arch = ("none", "none", "nor_conv_3x3")  # the conv reads an all-zero node
    assert cell.is_degenerate(arch)
    x, _ = batch()
    out = net(x, arch)
    assert out.shape == (8, 10) and torch.isfinite(out).all()
    assert torch.allclose(out, out[:1].expand_as(out))  # the same logits for every input


@pytest.mark.parametrize("bn_affine", [False, True])
def test_subnetwork_equals_standalone_network(cell, bn_affine):
    torch.manual_seed(1)
    net = CellSupernet(cell, **TOY, bn_affine=bn_affine, dropout=0.0)
    randomize_bn(net)
    x, _ = batch(2)
    for arch in cell.enumerate():
        alone = net.standalone(arch)
        # a conv on an edge from an unreachable node adds BN(0): 0 only without affine in train mode
        dead_conv = any(op == "nor_conv_3x3" and not live for op, live in zip(arch, cell.live_edges(arch)))
        net.train(), alone.train()
        if not (bn_affine and dead_conv):
            assert torch.allclose(net(x, arch), alone(x), atol=1e-6), arch
        net.eval(), alone.eval()
        if not dead_conv:
            assert torch.allclose(net(x, arch), alone(x), atol=1e-6), arch


def test_nb201_subnetworks_equal_standalone_networks():
    """Every NB201 op (1x1 conv, pool, skip, none) through a tiny NB201 supernet."""
    nb201 = get_space("nb201").cell
    torch.manual_seed(2)
    net = CellSupernet(nb201, c=2, n=1, dropout=0.0)
    randomize_bn(net, 1)
    x, _ = batch(3, n=4)
    rng = np.random.default_rng(0)
    archs = [tuple(rng.choice(nb201.ops, 6)) for _ in range(40)] + [("avg_pool_3x3",) * 6, ("nor_conv_1x1",) * 6]
    for arch in archs:
        alone = net.standalone(arch).train()
        expected = alone(x)
        assert torch.allclose(net(x, arch), expected, atol=1e-6), arch
        with torch.no_grad():  # the evaluation path (pool as a depthwise conv)
            assert torch.allclose(net(x, arch), expected, atol=1e-5), arch


def test_fast_avg_pool_matches_avg_pool2d():
    pool = AvgPool3x3()
    for shape in [(2, 3, 8, 8), (3, 5, 7, 4)]:
        x = torch.randn(shape)
        with torch.no_grad():
            fast = pool(x)
        assert torch.allclose(fast, F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), atol=1e-6)
        assert torch.equal(pool(x), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))


def test_cell_bn_affine_switch(cell):
    plain, affine = CellSupernet(cell, **TOY), CellSupernet(cell, **TOY, bn_affine=True)
    extra = set(dict(affine.named_parameters())) - set(dict(plain.named_parameters()))
    assert extra and all(".edges." in k and k.endswith((".2.weight", ".2.bias")) for k in extra)


# ---- samplers ----------------------------------------------------------------------
def test_uniform_sampler_covers_the_space_uniformly(space, cell):
    s = space.make_sampler("uniform", np.random.default_rng(0))
    counts = Counter(a for _ in range(5400) for a in s.step())
    assert set(counts) == set(cell.enumerate())
    assert sps.chisquare(list(counts.values())).pvalue > 1e-3


def test_deiso_sampler_is_uniform_over_classes(space, cell):
    reps = iso_representatives(cell)
    keys = [cell.canonical(a, "iso") for a in reps]
    assert len(set(keys)) == len(reps) == len({cell.canonical(a, "iso") for a in cell.enumerate()})
    s = space.make_sampler("deiso", np.random.default_rng(0))
    counts = Counter(a for _ in range(1800) for a in s.step())
    assert set(counts) == set(reps)  # only the fixed representatives, every one of them
    assert sps.chisquare(list(counts.values())).pvalue > 1e-3


def test_deiso_nb201_has_6466_classes():
    assert len(iso_representatives(get_space("nb201").cell)) == 6466


@pytest.mark.parametrize("space", ["toy", "nb201"])
def test_fairnas_uses_every_op_once_per_edge(space):
    cell = get_space(space).cell
    s = get_space(space).make_sampler("fairnas", np.random.default_rng(0))
    for _ in range(20):
        archs = s.step()
        assert len(archs) == len(cell.ops)
        for k in range(len(cell.edges)):
            assert sorted(a[k] for a in archs) == sorted(cell.ops)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_samplers_are_deterministic_and_resumable_from_the_rng_state(space, name):
    rng = np.random.default_rng(5)
    sampler = space.make_sampler(name, rng)
    first = [sampler.step() for _ in range(10)]
    state = rng.bit_generator.state
    rest = [sampler.step() for _ in range(10)]
    resumed = np.random.default_rng(0)
    resumed.bit_generator.state = state  # what a checkpoint restores
    again = space.make_sampler(name, resumed)
    assert [again.step() for _ in range(10)] == rest
    fresh = space.make_sampler(name, np.random.default_rng(5))
    assert [fresh.step() for _ in range(10)] == first != rest


def test_unknown_sampler_suggests(space, images, tmp_path):
    with pytest.raises(UnknownName, match="Did you mean uniform"):
        space.make_sampler("unifrom", np.random.default_rng(0))
    with pytest.raises(UnknownName, match="Did you mean uniform"):
        train_supernet(toy_config(sampler="unifrom"), space, images, tmp_path)
    assert not list_checkpoints(tmp_path)


def test_trained_as_maps_classes_to_their_trained_representative(space, cell):
    assert space.trained_as("uniform")(("skip_connect", "none", "none")) == ("skip_connect", "none", "none")
    as_trained = space.trained_as("deiso")
    reps = set(iso_representatives(cell))
    for arch in cell.enumerate():
        rep = as_trained(arch)
        assert rep in reps and cell.canonical(rep, "iso") == cell.canonical(arch, "iso")


# ---- config and data ---------------------------------------------------------------
def test_presets_and_config_errors(space):
    assert preset_config(space, "paper") == TrainConfig(checkpoint_every=100)
    small = preset_config(space, "cpu-small", seed=2020, epochs=None)
    assert (
        small.c < 16
        and small.train_images
        and small.seed == 2020
        and small.epochs == space.presets["cpu-small"]["epochs"]
    )
    assert get_space("nb201").presets == space.presets
    with pytest.raises(UnknownName):
        preset_config(space, "gpu-huge")
    with pytest.raises(BadInput, match="batch_size=0"):
        TrainConfig(batch_size=0)
    with pytest.raises(UnknownName, match="Did you mean fairnas"):
        preset_config(space, "paper", sampler="fair")
    with pytest.raises(BadInput, match="unknown training settings"):
        TrainConfig.from_dict({"epochs": 3, "lrr": 1})


def test_split_and_train_batches(images):
    cfg = toy_config(train_images=50, augment=False)
    train, valid = split_indices(cfg, len(images))
    assert len(train) == 50 and len(valid) == 20 and not set(train) & set(valid)
    assert np.array_equal(train, split_indices(cfg, len(images))[0])
    with pytest.raises(BadInput, match="train_images"):
        split_indices(toy_config(train_images=81), len(images))
    tb = TrainBatches(images, train, cfg, torch.Generator().manual_seed(0))
    x, y = next(tb.epoch())
    assert x.shape == (16, 3, 8, 8) and x.is_contiguous(memory_format=torch.channels_last)
    # unaugmented batches are normalised exactly like the scoring batches
    idx = [int(train[i]) for i in torch.randperm(50, generator=torch.Generator().manual_seed(0))[:16]]
    ref = fixed_batches(images, 1, 1, indices=np.array([idx[0]]))[0][0]
    assert torch.equal(x[:1].contiguous(), ref) and y[0] == images.labels[idx[0]]
    aug = TrainBatches(images, train, toy_config(), torch.Generator().manual_seed(0))
    xa, _ = next(aug.epoch())
    assert xa.shape == x.shape and not torch.equal(xa, x)


def test_augmentation_is_a_padded_random_crop_and_flip(images):
    cfg = toy_config(augment=True)
    idx = np.arange(16)
    tb = TrainBatches(images, idx, cfg, torch.Generator().manual_seed(7))
    x = torch.from_numpy(images.images[:16].copy())
    out = tb._crop_flip(x).numpy()
    g = torch.Generator().manual_seed(7)  # the same draws, in the same order
    dy = torch.randint(0, 9, (16,), generator=g)
    dx = torch.randint(0, 9, (16,), generator=g)
    flip = torch.randint(0, 2, (16,), generator=g)
    padded = np.pad(images.images[:16], ((0, 0), (4, 4), (4, 4), (0, 0)))
    for i in range(16):
        crop = padded[i, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        assert np.array_equal(out[i], crop[:, ::-1] if flip[i] else crop)


# ---- training and checkpoints ------------------------------------------------------
def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "kw", [dict(mc_samples=2, train_images=40), dict(sampler="fairnas", train_images=40, augment=True)]
)
def test_resume_is_bit_identical(space, images, tmp_path, kw):
    cfg = toy_config(**kw)
    full = train_supernet(cfg, space, images, tmp_path / "full")
    assert list(list_checkpoints(tmp_path / "full")) == [2, 4]
    first = train_supernet(toy_config(**{**kw, "epochs": 2}), space, images, tmp_path / "split")
    rest = train_supernet(cfg, space, images, tmp_path / "split", resume=True)
    assert rest[:2] == first and [s.train_loss for s in rest] == [s.train_loss for s in full]
    a, b = load_checkpoint(tmp_path / "full" / "epoch_00004.pt"), load_checkpoint(tmp_path / "split" / "epoch_00004.pt")
    assert same_state(a["model"], b["model"])
    assert a["scheduler"] == b["scheduler"] and a["epoch"] == 4 and len(a["stats"]) == 4
    assert all(np.isfinite(s.train_loss) and s.steps > 0 for s in full)


def test_training_refuses_to_overwrite_or_resume_a_different_run(space, images, tmp_path):
    train_supernet(toy_config(epochs=2), space, images, tmp_path)
    with pytest.raises(BadInput, match="already holds checkpoints"):
        train_supernet(toy_config(epochs=2), space, images, tmp_path)
    with pytest.raises(BadInput, match="lr=0.05"):
        train_supernet(toy_config(epochs=3, lr=0.1), space, images, tmp_path, resume=True)
    assert train_supernet(toy_config(epochs=2), space, images, tmp_path, resume=True)[-1].epoch == 2


def test_bad_checkpoint_files_are_bad_input(tmp_path):
    src = tmp_path / "ok.pt"
    torch.save({"a": torch.zeros(1000)}, src)
    blob = src.read_bytes()
    cases = {"truncated.pt": blob[: len(blob) // 2], "garbage.pt": b"not a checkpoint", "foreign.pt": blob}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(BadInput) as e:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(e.value) and name in str(e.value)
    with pytest.raises(MissingData):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "epoch_00003.pt.tmp").write_bytes(b"")  # a write in flight is not a checkpoint
    assert list_checkpoints(tmp_path) == {}


# ---- OS evaluation and averaging ---------------------------------------------------
@pytest.fixture(scope="module")
def trained(space, images, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train_supernet(toy_config(epochs=3, checkpoint_every=1), space, images, run)
    return run


def test_os_scores_in_range_deterministic_and_model_unchanged(space, cell, images, trained):
    model = model_from_checkpoint(trained / "epoch_00003.pt", space)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    archs = cell.enumerate()
    batches = fixed_batches(images, 10, 2, seed=1)
    rows = list(os_scores(model, archs, batches))
    assert [(a, b) for a, b, *_ in rows] == [(a, b) for a in range(len(archs)) for b in range(2)]
    assert all(0 <= acc <= 1 and np.isfinite(loss) and loss >= 0 and sec >= 0 for _, _, acc, loss, sec in rows)
    again = list(os_scores(model, archs, batches))
    assert [r[:4] for r in rows] == [r[:4] for r in again]
    assert same_state(before, model.state_dict()) and model.training
    recal = list(os_scores(model, archs[:5], batches, bn="recalibrate", recal_batches=fixed_batches(images, 10, 2)))
    assert len(recal) == 10 and all(0 <= r[2] <= 1 for r in recal)
    assert same_state(before, model.state_dict())
    it = os_scores(model, archs, batches)
    next(it)
    assert torch.is_grad_enabled()  # grad mode is off only inside the scoring, not between yields
    it.close()


def test_os_scores_equal_standalone_scores(space, images, trained):
    model = model_from_checkpoint(trained / "epoch_00003.pt", space, channels_last=False)
    x, y = fixed_batches(images, 10, 1, seed=1)[0]
    arch = ("nor_conv_3x3", "skip_connect", "nor_conv_3x3")
    (_, _, acc, loss, _) = next(os_scores(model, [arch], [(x, y)]))
    alone = model.standalone(arch).train()
    with torch.no_grad():
        logits = alone(x)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == (logits.argmax(1) == y).float().mean().item()


def test_os_scores_bad_modes(space, cell, images, trained):
    model = model_from_checkpoint(trained / "epoch_00003.pt", space)
    with pytest.raises(BadInput, match="BN mode"):
        list(os_scores(model, cell.enumerate()[:1], fixed_batches(images, 10, 1), bn="eval"))
    with pytest.raises(BadInput, match="recal_batches"):
        list(os_scores(model, cell.enumerate()[:1], fixed_batches(images, 10, 1), bn="recalibrate"))


def test_average_checkpoints(space, trained):
    paths = [trained / f"epoch_{e:05d}.pt" for e in (1, 2, 3)]
    avg = average_checkpoints(paths)
    states = [load_checkpoint(p)["model"] for p in paths]
    w = "classifier.weight"
    assert torch.allclose(avg[w], (states[0][w] + states[1][w] + states[2][w]) / 3)
    key = next(k for k in avg if k.endswith("num_batches_tracked"))
    assert avg[key] == states[-1][key]
    assert same_state(average_checkpoints(paths[-1:]), states[-1])
    model = model_from_checkpoint(avg, space)
    assert (model.c, model.n, model.bn_affine) == (4, 1, False)
    assert torch.equal(model.state_dict()[w], avg[w])
    with pytest.raises(BadInput):
        average_checkpoints([])
    with pytest.raises(BadInput, match="do not fit"):
        model_from_checkpoint(avg, get_space("nb201"))
