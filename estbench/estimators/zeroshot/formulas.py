"""The score formulas of the zero-shot measures, grouped by the pass that feeds them.

Pure functions: tensors or arrays a pass produced in, one float out. Only conv and
linear weights are scored (the reference's ``get_layer_metric_array``); a layer whose
gradient is missing (``None``, not on any path to the loss) scores 0, as in the
reference. Per-layer sums are accumulated in float64 (the reference accumulates in the
network's dtype; the difference is rounding only).

References checked (SamsungLabs/zero-cost-nas ``foresight/pruners/measures/*.py``, the
paper's fork zhouzx17/zero-cost-nas for ``relu_logdet``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

Tensor = torch.Tensor

JACOB_K = 1e-5  # the reference's k in -sum(log(v + k) + 1 / (v + k))


def _total(terms: list[Tensor]) -> float:
    """Sum of per-layer scalars in float64, one host sync."""
    if not terms:
        return 0.0
    return float(torch.stack([t.to(torch.float64) for t in terms]).sum().item())


# ---- ce_backward: one CE forward + backward ----------------------------------------
def grad_norm(grads: Sequence[Tensor | None]) -> float:
    """Sum over layers of the L2 norm of each layer's whole weight gradient
    (``grad_norm.py``: ``l.weight.grad.norm()`` per layer, then summed)."""
    return _total([g.norm() for g in grads if g is not None])


def plain(weights: Sequence[Tensor], grads: Sequence[Tensor | None]) -> float:
    """Signed sum of w * dL/dw (``plain.py``)."""
    return _total([(w * g).sum() for w, g in zip(weights, grads) if g is not None])


def snip(weights: Sequence[Tensor], grads: Sequence[Tensor | None]) -> float:
    """Sum of |w * dL/dw|. The reference differentiates w.r.t. a ones mask on each weight
    (``snip.py``), whose gradient is exactly w * dL/dw."""
    return _total([(w * g).abs().sum() for w, g in zip(weights, grads) if g is not None])


def fisher_channel_products(act: Tensor, grad: Tensor) -> Tensor:
    """g_nk = sum over spatial positions of act * dL/dact, [batch, channels] (``fisher.py``
    hook), without materialising the product."""
    return torch.linalg.vecdot(act.flatten(2), grad.flatten(2)) if act.dim() > 2 else act * grad


def fisher(layers: Sequence[tuple[int, Sequence[Tensor]]]) -> float:
    """``layers``: per conv/linear layer, (fan_in, [g_nk per call]) where g_nk comes from
    the layer's output (:func:`fisher_channel_products`). Per output channel k:
    0.5 * mean_n(g_nk^2), summed over calls; the reference then broadcasts each channel
    value over the channel's weights (``reshape_elements``), so it enters the total
    fan_in times (fan_in = weight.shape[1:].numel())."""
    terms = []
    for fan_in, calls in layers:
        if calls:
            per_channel = sum(0.5 * g_nk.pow(2).mean(0) for g_nk in calls)
            terms.append(per_channel.abs().sum() * fan_in)
    return _total(terms)


# ---- grasp: Hessian-gradient product -------------------------------------------------
def grasp(weights: Sequence[Tensor], hessian_grads: Sequence[Tensor | None]) -> float:
    """Signed sum of -w * (H g) (``grasp.py``: ``-layer.weight.data * layer.weight.grad``
    after ``z.backward()``)."""
    return _total([(-w * h).sum() for w, h in zip(weights, hessian_grads) if h is not None])


# ---- synflow / synflow_bn ---------------------------------------------------------------
def synflow(abs_weights: Sequence[Tensor], grads: Sequence[Tensor | None]) -> float:
    """Sum of |w * dR/dw| with w the absolute (float64) weights (``synflow.py``). float64
    is needed: the BN-free NB201 network reaches ~1e50, beyond float32's range."""
    return _total([(w * g).abs().sum() for w, g in zip(abs_weights, grads) if g is not None])


# ---- input_grad -----------------------------------------------------------------------
def jacob_cov(jacobian: np.ndarray, k: float = JACOB_K) -> float:
    """-sum(log(v + k) + 1/(v + k)) over the eigenvalues v of the correlation matrix of
    the per-image input gradients (``jacob_cov.py``).

    Deviation: the reference uses the general solver ``np.linalg.eig``; the correlation
    matrix is symmetric, so we use ``np.linalg.eigvalsh`` (real eigenvalues by
    construction, same values up to rounding). A non-finite correlation (an image with a
    constant gradient, e.g. a network whose output ignores its input) gives nan, as the
    reference's ``except: nan`` does."""
    jac = np.asarray(jacobian, dtype=np.float64).reshape(len(jacobian), -1)
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
        if not np.all(np.isfinite(corr)):
            return math.nan
        v = np.linalg.eigvalsh(corr)
        return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


# ---- relu_forward ----------------------------------------------------------------------
# The NASWOT kernel K = c c^T + (1 - c)(1 - c)^T for the binary codes c = (x > 0) of the
# ReLU inputs counts, for each pair of images, the positions where their codes agree
# (exact integers, float64 [batch, batch]). On CPU: bit-packed XOR + popcount (about 2x
# faster than a float GEMM there; passes.ReluKernel packs every ReLU input and compares
# them once); elsewhere one matmul per ReLU input.
BITS = hasattr(np, "bitwise_count")  # numpy >= 2.0


def pack_codes(relu_input: Tensor) -> np.ndarray:
    """The binary codes (x > 0) of one ReLU input, bit-packed per image ([batch, bytes])."""
    return np.packbits((relu_input.detach().flatten(1) > 0).cpu().numpy(), axis=1)


def agreements_packed(segments: Sequence[tuple[np.ndarray, int]]) -> Tensor:
    """Agreements summed over several code segments, each (packed codes, number of codes).
    Agreements are additive over positions, so the segments are concatenated and
    compared once (each segment's zero padding agrees everywhere and is not counted)."""
    packed = np.concatenate([codes for codes, _ in segments], axis=1)
    return torch.from_numpy(sum(n for _, n in segments) - _hamming(packed))


def agreements_bits(x: Tensor) -> Tensor:
    return agreements_packed([(pack_codes(x), x.shape[1])])


def agreements_matmul(x: Tensor) -> Tensor:
    """With s = 2c - 1 in {-1, 1}, s s^T = agreements - disagreements, so agreements =
    (D + s s^T) / 2: integers, exact in float32 below 2^24 (float64 above)."""
    d = x.shape[1]
    s = torch.where(x > 0, 1.0, -1.0).to(torch.float32 if d < 2**24 else torch.float64)
    return torch.mm(s, s.T).to(torch.float64).add_(d).div_(2)


def _hamming(packed: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances of bit-packed rows (float64): row i against rows i..n-1
    (the upper triangle, mirrored), one XOR + popcount per row into reused buffers."""
    n, width = packed.shape
    words = np.zeros((n, -(-width // 8) * 8), np.uint8)  # pad to whole uint64 words
    words[:, :width] = packed
    words = words.view(np.uint64)
    out = np.zeros((n, n), np.float64)
    xor = np.empty_like(words)
    count = np.empty(words.shape, np.uint8)
    for i in range(n):
        m = n - i
        np.bitwise_xor(words[i:], words[i], out=xor[:m])
        np.bitwise_count(xor[:m], out=count[:m])
        d = count[:m].sum(axis=1, dtype=np.uint32)  # <= 64 per word: exact below 2^26 words
        out[i, i:] = d
        out[i:, i] = d
    return out


def relu_logdet(kernel: np.ndarray) -> float:
    """log|K| (``relu_logdet.py`` returns ``np.linalg.slogdet(K)[1]`` whatever the sign; K
    is a sum of Gram matrices, so the sign is +1, or 0 with logdet -inf when singular)."""
    _, logdet = np.linalg.slogdet(np.asarray(kernel, dtype=np.float64))
    return float(logdet)
