"""The one reduction the formulas share (torch imported when it runs, so that measure
modules can be imported, and registered, without torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def total(terms: list[Tensor]) -> float:
    """Sum of per-layer scalars in float64, one host sync. (The reference accumulates in
    the network's dtype; the difference is rounding only.)"""
    if not terms:
        return 0.0
    import torch

    return float(torch.stack([t.to(torch.float64) for t in terms]).sum().item())
