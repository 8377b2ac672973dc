"""AZ-NAS (Lee & Ham, CVPR 2024): the ``az_blocks`` pass on the shared train-mode forward.

Reference: cvlab-yonsei/AZ-NAS @ 5e6683a, ``NB201/ZeroShotProxy/compute_az_nas_score.py``
(``compute_nas_score``) on the features of ``TinyNetwork.extract_cell_features``: the
stem output and the output of every cell (reductions included). Here the blocks are
:func:`..passes.feature_blocks` (stem + ``cells``, or the model's ``zs_blocks()``), their
outputs kept by the shared forward's :class:`..passes.BlockTap`.

Per feature F_l [b, c, h, w] (channels on dim 1): X = F_l as [b*h*w, c] rows, centred;
S = X^T X / (b*h*w); p = eig(S) / sum(eig(S)); E_l = -sum p log(p + 1e-8).

Per consecutive pair, the last first (i = L .. 1): a Rademacher g_out of F_i's shape,
g_in = dF_i/dF_{i-1}^T g_out (a VJP through block i only); an exact identity block
(g_in == g_out) scores -inf; else g_in is pixel-unshuffled to F_i's resolution when they
differ, M = G_in^T G_out / (b*h*w) and, with sigma its largest singular value,
t_i = -sigma - 1/(sigma + 1e-6) + 2.

Deviations from the reference (documented):

- S and its eigenvalues in float64 (the reference: float32). Float32 ``eigvalsh`` of a
  rank-deficient covariance returns tiny negative eigenvalues, so log(p + 1e-8) is nan
  and the architecture gets expressivity -inf: a handful of NB201 architectures and
  almost every NB301 one (its 3c-channel stem has rank <= 27, its cells concatenate
  duplicated parameter-free nodes). Where float32 is finite, both agree to ~1e-6.
- M and its singular values in float64 as well (the VJPs themselves run in the
  network's dtype); relative differences ~1e-6, no degeneracy either way.
- The Rademacher draws come from a ``torch.Generator`` seeded from (seed, batch index)
  with ``randint`` (the reference: ``bernoulli`` on the global RNG stream, whose state
  depends on every architecture scored before; same distribution, different draws).
- A block output that does not depend on the previous one (no graph between them) has
  a zero VJP (t = -1e6 + 2), where the reference's ``autograd.grad`` would raise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from estbench.estimators.zeroshot.hessian import input_gradient_only
from estbench.estimators.zeroshot.measures.aznas import ENTROPY_EPS, SIGMA_EPS
from estbench.estimators.zeroshot.plan import BlockStats


def _flat(t: torch.Tensor) -> torch.Tensor:
    """[b, c, *spatial] -> [b, c, positions] (a view when contiguous)."""
    if t.dim() < 2:
        raise RuntimeError(f"a block output must have a channel dimension, got shape {tuple(t.shape)}")
    return t.reshape(t.shape[0], t.shape[1], -1)


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A^T B / rows for A, B the [b * positions, c] channels-last rows of a and b (the
    reference's ``permute(0,2,3,1).view(-1, c)``), as a batch of per-image products
    (no channels-last copy)."""
    a, b = _flat(a), _flat(b)
    return torch.bmm(a, b.transpose(1, 2)).sum(0) / (a.shape[0] * a.shape[2])


def spectral_entropy(feature: torch.Tensor) -> float:
    """E = -sum p log(p + 1e-8), p the normalised eigenvalues of the biased channel
    covariance of ``feature`` over batch and positions (float64). nan when the
    covariance is zero (a dead block: 0/0), as the reference."""
    x = _flat(feature.detach().to(torch.float64))
    x = x - x.mean((0, 2), keepdim=True)
    s = torch.linalg.eigvalsh(_cross(x, x))
    p = s / s.sum()
    return float((-p * torch.log(p + ENTROPY_EPS)).sum())


def trainability_term(g_in: torch.Tensor, g_out: torch.Tensor) -> float:
    """-sigma - 1/(sigma + 1e-6) + 2 for sigma the top singular value of the
    cross-covariance of the input and output cotangents (-inf for an exact identity)."""
    if g_in.shape == g_out.shape and bool((g_in == g_out).all()):
        return -math.inf
    if g_in.dim() > 2 and g_in.shape[2:] != g_out.shape[2:]:
        if g_in.dim() != 4:
            raise RuntimeError(f"cannot match the resolutions of {tuple(g_in.shape)} and {tuple(g_out.shape)}")
        r = int(g_in.shape[2] / g_out.shape[2])
        if r < 1 or g_in.shape[2] != r * g_out.shape[2] or g_in.shape[3] != r * g_out.shape[3]:
            raise RuntimeError(
                f"block resolution {tuple(g_in.shape[2:])} -> {tuple(g_out.shape[2:])} is not an integer reduction"
            )
        g_in = F.pixel_unshuffle(g_in, r)
    if g_in.shape[0] != g_out.shape[0] or g_in.shape[2:].numel() != g_out.shape[2:].numel():
        raise RuntimeError(f"cotangent shapes do not pair up: {tuple(g_in.shape)} vs {tuple(g_out.shape)}")
    sigma = float(torch.linalg.svdvals(_cross(g_in.to(torch.float64), g_out.to(torch.float64))).max())
    return -sigma - 1.0 / (sigma + SIGMA_EPS) + 2.0


def az_blocks(s) -> BlockStats:  # noqa: ANN001 (engine._State)
    """The entropies of F_0..F_L and the trainability terms of pairs L..1 (see the module
    docstring), on the shared forward's block outputs. The VJPs go block by block on the
    shared graph (kept for later passes when they need it) and compute no weight
    gradient (``input_gradient_only``: the lean double-backward functions of a planned
    grasp would otherwise compute them)."""
    feats = s.fwd.blocks.features()
    entropies = [spectral_entropy(f) for f in feats]
    gen = torch.Generator(device=feats[0].device).manual_seed(s.seed * 1000003 + s.batch)
    retain = s.plan.graph_used_after("az_blocks")
    terms: list[float] = []
    with input_gradient_only():
        for i in reversed(range(1, len(feats))):
            f_out, f_in = feats[i], feats[i - 1]
            # Rademacher +-1 (the reference: (bernoulli(0.5) - 0.5) * 2; randint draws 5x faster)
            g_out = torch.randint(0, 2, f_out.shape, generator=gen, device=f_out.device, dtype=f_out.dtype)
            g_out = g_out.mul_(2).sub_(1)
            g_in = None
            if f_out is f_in:
                g_in = g_out  # a block returning its input unchanged (a candidate's identity cell)
            elif f_out.requires_grad and f_in.requires_grad:
                (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=retain, allow_unused=True)
            if g_in is None:
                g_in = torch.zeros_like(f_in)
            terms.append(trainability_term(g_in.detach(), g_out))
    return BlockStats(entropies, terms)
