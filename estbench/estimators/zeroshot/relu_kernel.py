"""The NASWOT code kernel behind ``relu_forward``, accumulated by a forward hook.

K = c c^T + (1 - c)(1 - c)^T for the binary codes c = (x > 0) of the ReLU inputs counts,
for each pair of images, the positions where their codes agree (exact integers, float64
[batch, batch]). On CPU: bit-packed XOR + popcount (about 2x faster than a float GEMM
there; :class:`ReluKernel` packs every ReLU input and compares them once); elsewhere one
matmul per ReLU input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

BITS = hasattr(np, "bitwise_count")  # numpy >= 2.0


def is_relu(module: nn.Module) -> bool:
    """The reference (zhouzx17/zero-cost-nas ``relu_logdet.py``, like NASWOT's original)
    hooks every module whose type name contains "ReLU". On NB201 that includes the
    ``ReLUConvBN`` wrapper, whose input is its inner ReLU's input, so each conv edge's
    codes enter K twice. Kept deliberately, to reproduce the paper's values."""
    return "ReLU" in type(module).__name__


class ReluKernel:
    """Forward hook collecting the NASWOT kernel over every hooked call. Calls fed the
    same tensor (a ReLUConvBN and its ReLU, all conv edges leaving one cell node) are
    counted, not recomputed. On CPU the codes are bit-packed during the forward and
    compared once at the end (:attr:`kernel`): one Hamming pass over all of them
    instead of one per tensor; elsewhere each tensor adds one matmul to the kernel.
    Hooked tensors are kept until the end so that their ids are not reused."""

    def __init__(self) -> None:
        self._packed: dict[tuple[int, int], list] = {}  # CPU: key -> [tensor, codes, n codes, calls]
        self._kernels: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}  # key -> (tensor, K)
        self._sum: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0]
        key = (id(x), x._version)
        if x.device.type == "cpu" and BITS:
            if key in self._packed:
                self._packed[key][3] += 1
            else:
                self._packed[key] = [x, pack_codes(x), x[0].numel(), 1]
            return
        if key not in self._kernels:
            self._kernels[key] = (x, agreements_matmul(x.detach().flatten(1)))
        k = self._kernels[key][1]
        self._sum = k.clone() if self._sum is None else self._sum.add_(k)

    @property
    def kernel(self) -> torch.Tensor | None:
        """The summed kernel (float64, [batch, batch]); None when nothing was hooked."""
        kernel = self._sum
        entries = list(self._packed.values())
        for calls in sorted({e[3] for e in entries}):  # codes seen c times count c times
            k = agreements_packed([(e[1], e[2]) for e in entries if e[3] == calls]) * calls
            kernel = k if kernel is None else kernel + k
        return kernel


def pack_codes(relu_input: torch.Tensor) -> np.ndarray:
    """The binary codes (x > 0) of one ReLU input, bit-packed per image ([batch, bytes])."""
    return np.packbits((relu_input.detach().flatten(1) > 0).cpu().numpy(), axis=1)


def agreements_packed(segments: Sequence[tuple[np.ndarray, int]]) -> torch.Tensor:
    """Agreements summed over several code segments, each (packed codes, number of codes).
    Agreements are additive over positions, so the segments are concatenated and
    compared once (each segment's zero padding agrees everywhere and is not counted)."""
    packed = np.concatenate([codes for codes, _ in segments], axis=1)
    return torch.from_numpy(sum(n for _, n in segments) - _hamming(packed))


def agreements_bits(x: torch.Tensor) -> torch.Tensor:
    return agreements_packed([(pack_codes(x), x.shape[1])])


def agreements_matmul(x: torch.Tensor) -> torch.Tensor:
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
