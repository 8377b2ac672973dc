"""TE-NAS's passes (github:VITA-Group/TENAS @ 9df78ff): the NTK Gram of the shared
train-mode forward (``ntk``) and the linear-region count of the space's thin network
(``linear_regions``). Their measures are in :mod:`..measures.tenas`."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

from estbench.estimators.zeroshot.measures.tenas import LR_CROP, LR_CROP_BATCH, LR_CROPS
from estbench.estimators.zeroshot.plan import NTKGram, RegionCount

if TYPE_CHECKING:
    from estbench.estimators.zeroshot.engine import _State

# Images per batched VJP (memory ~ that many copies of one backward's activation
# gradients); 0: one plain backward per image. On CPU the batched VJP took ~2x the time
# of the plain loop (NB201 c=16, batch 32 and 64, one thread), so the CPU loops.
NTK_CHUNK = 64
NTK_CPU_CHUNK = 0


# ---- ntk ----------------------------------------------------------------------------------
def ntk_parameters(net: nn.Module) -> tuple[list[torch.Tensor], list[str]]:
    """The parameters the reference's NTK differentiates: every one whose name contains
    'weight' (conv, linear and BN gamma; not biases, BN beta or architecture weights),
    in ``named_parameters()`` order; and the names of those skipped because they do not
    require grad (a caller's model: ``passes.preserved`` only switches conv/linear on)."""
    used, skipped = [], []
    for name, p in net.named_parameters():
        if "weight" in name:
            (used if p.requires_grad else skipped).append((name, p))
    return [p for _, p in used], [n for n, _ in skipped]


def per_image_gradients(
    out: torch.Tensor, params: list[torch.Tensor], *, retain_graph: bool, chunk: int | None = None
) -> list[torch.Tensor | None]:
    """d out[i] / d p for every image i and parameter p, [batch, *p.shape] (None: p is not
    on the graph): batched VJPs with rows of the identity as cotangents, ``chunk``
    images at a time (default :data:`NTK_CHUNK`, on CPU :data:`NTK_CPU_CHUNK`; 0: one
    plain backward per image). Either way they are exactly the reference's B backward
    passes, not a per-sample trick: with BN on batch statistics every image's output
    depends on every image. Should a batched VJP fail (a missing batching rule, memory),
    the remaining images get one backward each; the graph is retained up to the last
    call, which frees it unless ``retain_graph``."""
    b = out.shape[0]
    if chunk is None:
        chunk = NTK_CPU_CHUNK if out.device.type == "cpu" else NTK_CHUNK
    eye = torch.eye(b, dtype=out.dtype, device=out.device) if chunk > 0 else None
    parts: list[list[torch.Tensor | None]] = []  # per call: per parameter [rows, *p.shape] or None
    sizes: list[int] = []  # the rows of each call
    start, batched, batched_error = 0, chunk > 0, None
    while start < b:
        stop = min(start + chunk, b) if batched else start + 1
        keep = retain_graph or stop < b
        if batched:
            try:
                parts.append(
                    list(
                        torch.autograd.grad(
                            out, params, eye[start:stop], retain_graph=keep, allow_unused=True, is_grads_batched=True
                        )
                    )
                )
            except (RuntimeError, NotImplementedError) as exc:
                batched, batched_error = False, exc
                if out.is_cuda:
                    torch.cuda.empty_cache()
                continue
        else:
            try:
                grads = torch.autograd.grad(out[start], params, retain_graph=keep, allow_unused=True)
            except RuntimeError as exc:
                after = f" after the batched VJP failed ({batched_error})" if batched_error is not None else ""
                raise RuntimeError(f"per-image NTK gradients failed{after}: {exc}") from exc
            parts.append([None if g is None else g.unsqueeze(0) for g in grads])
        sizes.append(stop - start)
        start = stop
    if len(parts) == 1:
        return parts[0]
    merged: list[torch.Tensor | None] = []
    for k, p in enumerate(params):
        rows = [part[k] for part in parts]
        if all(r is None for r in rows):
            merged.append(None)
            continue
        merged.append(torch.cat([p.new_zeros(n, *p.shape) if r is None else r for r, n in zip(rows, sizes)]))
        for part in parts:
            part[k] = None  # free as we go
    return merged


def ntk(s: _State) -> NTKGram:
    """K = J J^T (float64 [batch, batch]), J_i = d(sum_c logits[i, c]) / d(weights) on the
    shared train-mode forward (``get_ntk_n``: ``logit[i:i+1].backward(ones)`` per image,
    the grads of the parameters named '*weight*' that received one, flattened and
    concatenated). The Gram is accumulated per parameter in float64 (the reference:
    fp32), so J is never concatenated. Weights that do not require grad are skipped,
    with a warning (their columns are missing from J: the value then differs from the
    reference's); no weight on the graph at all gives K = 0 (the measure: nan)."""
    logits = s.fwd.logits
    params, skipped = ntk_parameters(s.net)
    if skipped:
        warnings.warn(
            f"ntk: {len(skipped)} weight(s) do not require grad and are left out of the NTK "
            f"({', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''})",
            stacklevel=2,
        )
    b = logits.shape[0]
    kernel = torch.zeros(b, b, dtype=torch.float64, device=logits.device)
    if not params or not logits.requires_grad:
        return NTKGram(kernel.cpu())
    grads = per_image_gradients(logits.sum(1), params, retain_graph=s.plan.graph_used_after("ntk"))
    for k in range(len(grads)):
        g, grads[k] = grads[k], None  # free as we go
        if g is not None:
            j = g.reshape(b, -1).double()
            kernel += j @ j.T
    return NTKGram(kernel.cpu())


# ---- linear_regions -------------------------------------------------------------------------
def lr_crops(x: torch.Tensor, generator: torch.Generator, n: int = LR_CROPS, side: int = LR_CROP) -> torch.Tensor:
    """``n`` one-channel ``side`` x ``side`` crops of the images ``x`` [B, C, H, W]: for each,
    an image, a channel and a top-left corner drawn uniformly (the reference's
    RandomCrop(3) + RandChannel(1) on shuffled training images), [n, 1, side, side]."""
    b, c, h, w = x.shape
    if h < side or w < side:
        raise RuntimeError(f"linear_regions: {side}x{side} crops need images of at least that size, not {h}x{w}")
    draw = lambda hi: torch.randint(0, hi, (n,), generator=generator)  # noqa: E731
    img, ch, top, left = draw(b), draw(c), draw(h - side + 1), draw(w - side + 1)
    offs = torch.arange(side)
    rows = (top[:, None] + offs)[:, :, None]  # [n, side, 1]
    cols = (left[:, None] + offs)[:, None, :]  # [n, 1, side]
    idx = [t.to(x.device) for t in (img[:, None, None], ch[:, None, None], rows, cols)]
    return x.detach()[idx[0], idx[1], idx[2], idx[3]].unsqueeze(1)


def activation_codes(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The binary codes (output > 0) of every ``nn.ReLU`` call with a 4-D input, flattened
    per sample and concatenated in call order, uint8 [batch, neurons]; one train-mode
    forward under no_grad (the reference's hooks on ``isinstance(m, nn.ReLU)``)."""
    codes: list[torch.Tensor] = []

    def keep(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        if inputs[0].dim() == 4:
            codes.append((out.flatten(1) > 0).to(torch.uint8))

    handles = [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net.train()(x)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        raise RuntimeError("linear_regions: the thin network has no nn.ReLU with a 4-D input to hook")
    return torch.cat(codes, 1)


def thin_network(s: _State) -> nn.Module:
    """The space's thin network (``extras["thin_build"]``), built from torch seeded with
    the run's seed in a forked RNG (the same network for every batch and whatever was
    drawn before; the global RNG is left as it was), on the batch's device and dtype."""
    build = (s.extras or {}).get("thin_build")
    if build is None:
        raise RuntimeError(
            "linear_regions needs the space's thin network (extras['thin_build'], from the space's "
            "thin_network()); none was given: the space has none, or the model was scored on its own"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        net = build()
    if net is None:
        raise RuntimeError("linear_regions: the space's thin_build() returned no network")
    return net.to(device=s.x.device, dtype=s.x.dtype)


def linear_regions(s: _State) -> RegionCount:
    """TE-NAS's linear-region count: LR_CROPS one-channel crops of the batch's images
    (generator seeded from (seed, batch)), fed to the thin network in train mode in
    batches of LR_CROP_BATCH (BN on each batch's statistics); the distinct rows of the
    stacked ReLU codes (``calc_LR``'s sum of 1 / #identical rows, exactly). The crops
    come from the batch's images, drawn with replacement (the reference crops 3000
    different shuffled training images). The main network is not touched."""
    net = thin_network(s)
    generator = torch.Generator().manual_seed(s.seed * 1000003 + s.batch)
    crops = lr_crops(s.x, generator)
    codes = torch.cat([activation_codes(net, chunk) for chunk in crops.split(LR_CROP_BATCH)])
    return RegionCount(int(torch.unique(codes, dim=0).shape[0]), int(codes.shape[0]))
