"""Lean double backward for grasp's Hessian-gradient product (CPU).

grasp differentiates the CE weight gradients once more. On CPU two of PyTorch's generic
double-backward formulas dominate that pass:

- batch norm (``batchnorm_double_backward``): some forty full-size elementwise
  operations per layer;
- convolution (``_convolution_double_backward``): its weight term is a convolution of
  transposed tensors (the batch as channels, the output map as kernel), a shape the
  oneDNN kernels handle badly.

Inside :func:`lean_double_backward`, train-mode ``F.batch_norm`` and ``F.conv2d`` calls on
CPU run through the custom autograd functions below. Forward and first backward call
the very kernels PyTorch calls (``native_batch_norm`` / ``native_batch_norm_backward``,
``convolution`` / ``convolution_backward``), so outputs, running statistics and every
first-order gradient are bit-identical; only the double backward differs, by float32
rounding (``gradgradcheck`` in float64 is in the tests).

Convolution, first backward gI = convT(gO, w), gW = corr(x, gO), gB = S(gO); for
cotangents (ggI, ggW, ggB), since <ggI, gI> = <gO, conv(ggI, w)> and
<ggW, gW> = <gO, conv(x, ggW)>:

    d/dgO = conv(ggI, w) + conv(x, ggW) + ggB
    d/dx  = input gradient of conv(x, ggW) at output gradient gO    (convolution_backward)
    d/dw  = weight gradient of conv(ggI, w) at output gradient gO   (convolution_backward)

Batch norm, per channel, with sums S over batch and space (M terms), r = 1/sqrt(var +
eps), xh = (x - mean) r and P(v) = v - S(v)/M - xh S(v xh)/M (the projection BN's
backward applies): gx = gamma r P(gy), ggamma = S(gy xh), gbeta = S(gy). For cotangents
u (on gx), ug (on ggamma), ub (on gbeta):

    d/dgy    = gamma r P(u) + ug xh + ub
    d/dgamma = r S(u P(gy))
    d/dx     = -(gamma r^2 / M) (C xh + B P(gy) + A P(u)) + ug r P(gy)

with A = S(gy xh), B = S(u xh), C = S(u gy) - S(u) S(gy)/M - A B/M. (r depends on x
through var: dr/dx = -r^2 xh / M, and dxh_j/dx_i = r (delta_ij - 1/M - xh_i xh_j / M), so
dA/dx = r P(gy) and dB/dx = r P(u).)

Other devices keep PyTorch's functions (cuDNN there), so their values match plain
scoring."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

aten = torch.ops.aten
_STATE = threading.local()  # .input_only: the running backward wants no parameter gradient


@contextlib.contextmanager
def input_gradient_only() -> Iterator[None]:
    """Declare that backward passes run in this block need no parameter gradient (the
    jacob_cov input-gradient pass). PyTorch's own nodes know which outputs a backward
    call needs; a custom function only sees ``requires_grad``, so without this it would
    also compute every weight gradient there."""
    previous = getattr(_STATE, "input_only", False)
    _STATE.input_only = True
    try:
        yield
    finally:
        _STATE.input_only = previous


def _params_needed() -> bool:
    return not getattr(_STATE, "input_only", False)


_BN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
_BN_DEFAULTS = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5}
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}


# ---- batch norm -------------------------------------------------------------------------
def _per_channel(t: torch.Tensor) -> list[int]:
    return [1, -1] + [1] * (t.dim() - 2)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel sum of a * b, shape [1, C, 1, ...] (without materialising a * b)."""
    n, c = a.shape[:2]
    return torch.linalg.vecdot(a.reshape(n, c, -1), b.reshape(n, c, -1)).sum(0).view(_per_channel(a))


def _sum(a: torch.Tensor) -> torch.Tensor:
    return a.sum(dim=[d for d in range(a.dim()) if d != 1], keepdim=True)


class _BatchNormBackward(torch.autograd.Function):
    """BN's backward as a differentiable function of (gy, x, weight)."""

    @staticmethod
    def forward(ctx, gy, x, weight, mean, invstd, eps, mask):  # noqa: ANN001 (autograd API)
        ctx.set_materialize_grads(False)
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            gy, x, weight, None, None, mean, invstd, True, eps, list(mask)
        )
        ctx.save_for_backward(gy, x, weight, mean, invstd)
        return gx, gw, gb

    @staticmethod
    def backward(ctx, u, ug, ub):  # noqa: ANN001
        # Three full-size allocations; everything else is in place or a per-channel
        # reduction (allocating a fresh output costs ~3x an in-place pass on CPU, and
        # addcmul with a broadcast first operand is ~5x slower still).
        gy, x, weight, mean, invstd = ctx.saved_tensors
        need_gy, need_x, need_w = ctx.needs_input_grad[:3]
        shape = _per_channel(x)
        m = x.numel() // x.shape[1]
        r = invstd.view(shape)
        gamma_r = r if weight is None else weight.view(shape) * r
        xh = (x - mean.view(shape)).mul_(r)
        s_gy, a = _sum(gy), _dot(gy, xh)
        p_gy = (gy - s_gy / m).addcmul_(xh, a / m, value=-1.0) if (need_x or need_w) else None
        d_gy = d_x = d_w = None
        extra_gy = None  # ug xh + ub, taken before xh is reused below
        if need_gy and ug is not None:
            extra_gy = xh * ug.view(shape)
        if need_gy and ub is not None:
            extra_gy = ub.view(shape).expand_as(gy).clone() if extra_gy is None else extra_gy.add_(ub.view(shape))
        if u is not None:
            s_u, b = _sum(u), _dot(u, xh)
            p_u = (u - s_u / m).addcmul_(xh, b / m, value=-1.0)
            if need_w and weight is not None:
                d_w = (r * _dot(u, p_gy)).reshape(-1)
            if need_x:
                c = _dot(u, gy) - s_u * s_gy / m - a * b / m
                k = -gamma_r * r / m
                d_x = xh.mul_(k * c).addcmul_(p_gy, k * b).addcmul_(p_u, k * a)
            if need_gy:
                d_gy = p_u.mul_(gamma_r)
        if need_x and ug is not None:
            scale = ug.view(shape) * r
            d_x = p_gy * scale if d_x is None else d_x.addcmul_(p_gy, scale)
        if extra_gy is not None:
            d_gy = extra_gy if d_gy is None else d_gy.add_(extra_gy)
        return d_gy, d_x, d_w, None, None, None, None


class _BatchNorm(torch.autograd.Function):
    """Train-mode batch norm whose backward is :class:`_BatchNormBackward`."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):  # noqa: ANN001
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum, eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        ctx.affine = (weight is not None, bias is not None)
        return y

    @staticmethod
    def backward(ctx, gy):  # noqa: ANN001
        x, weight, mean, invstd = ctx.saved_tensors
        need, params = ctx.needs_input_grad, _params_needed()
        mask = (need[0], need[1] and ctx.affine[0] and params, need[2] and ctx.affine[1] and params)
        gx, gw, gb = _BatchNormBackward.apply(gy, x, weight, mean, invstd, ctx.eps, mask)
        return gx, gw, gb, None, None, None, None


# ---- convolution --------------------------------------------------------------------------
class _ConvolutionBackward(torch.autograd.Function):
    """A conv2d's backward as a differentiable function of (gO, x, w)."""

    @staticmethod
    def forward(ctx, g_out, x, weight, params, mask):  # noqa: ANN001
        ctx.set_materialize_grads(False)
        stride, padding, dilation, groups, bias_sizes = params
        g_in, g_w, g_b = aten.convolution_backward(
            g_out, x, weight, bias_sizes, stride, padding, dilation, False, [0, 0], groups, list(mask)
        )
        ctx.save_for_backward(g_out, x, weight)
        ctx.params = params
        return g_in, g_w, g_b

    @staticmethod
    def backward(ctx, gg_in, gg_w, gg_b):  # noqa: ANN001
        g_out, x, weight = ctx.saved_tensors
        stride, padding, dilation, groups, _ = ctx.params
        need_g_out, need_x, need_w = ctx.needs_input_grad[:3]

        def conv(inp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return aten.convolution(inp, w, None, stride, padding, dilation, False, [0, 0], groups)

        def conv_backward(inp: torch.Tensor, w: torch.Tensor, mask: list[bool]) -> tuple:
            return aten.convolution_backward(
                g_out, inp, w, None, stride, padding, dilation, False, [0, 0], groups, mask
            )

        d_g_out = d_x = d_w = None
        if need_g_out:
            if gg_in is not None:
                d_g_out = conv(gg_in, weight)
            if gg_w is not None:
                d_g_out = conv(x, gg_w) if d_g_out is None else d_g_out.add_(conv(x, gg_w))
            if gg_b is not None:
                b = gg_b.view(1, -1, 1, 1)
                d_g_out = b.expand_as(g_out).clone() if d_g_out is None else d_g_out.add_(b)
        if need_x and gg_w is not None:
            d_x = conv_backward(x, gg_w, [True, False, False])[0]
        if need_w and gg_in is not None:
            d_w = conv_backward(gg_in, weight, [False, True, False])[1]
        return d_g_out, d_x, d_w, None, None


class _Convolution(torch.autograd.Function):
    """conv2d whose backward is :class:`_ConvolutionBackward`."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):  # noqa: ANN001
        ctx.save_for_backward(x, weight)
        ctx.params = (stride, padding, dilation, groups, None if bias is None else [weight.shape[0]])
        return aten.convolution(x, weight, bias, stride, padding, dilation, False, [0, 0], groups)

    @staticmethod
    def backward(ctx, g_out):  # noqa: ANN001
        x, weight = ctx.saved_tensors
        need, params = ctx.needs_input_grad, _params_needed()
        mask = (need[0], need[1] and params, need[2] and ctx.params[4] is not None and params)
        g_in, g_w, g_b = _ConvolutionBackward.apply(g_out, x, weight, ctx.params, mask)
        return g_in, g_w, g_b, None, None, None, None


def _pair(v: int | tuple | list) -> list[int]:
    return [int(i) for i in v] if isinstance(v, (tuple, list)) else [int(v), int(v)]


# ---- the mode --------------------------------------------------------------------------
class _Lean(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is F.batch_norm:
            a = {**_BN_DEFAULTS, **dict(zip(_BN_ARGS, args)), **kwargs}
            x = a["input"]
            if a["training"] and x.device.type == "cpu" and x.dim() >= 2 and a["eps"] > 0:
                F._verify_batch_size(x.size())
                return _BatchNorm.apply(
                    x, a["weight"], a["bias"], a["running_mean"], a["running_var"], a["momentum"], a["eps"]
                )
        elif func is F.conv2d:
            a = {**_CONV_DEFAULTS, **dict(zip(_CONV_ARGS, args)), **kwargs}
            x = a["input"]
            if x.device.type == "cpu" and x.dim() == 4 and not isinstance(a["padding"], str):
                return _Convolution.apply(
                    x,
                    a["weight"],
                    a["bias"],
                    _pair(a["stride"]),
                    _pair(a["padding"]),
                    _pair(a["dilation"]),
                    a["groups"],
                )
        return func(*args, **kwargs)


@contextlib.contextmanager
def lean_double_backward(enabled: bool = True) -> Iterator[None]:
    """Route train-mode CPU batch norms and CPU conv2d calls made in this block through
    the functions above (the recorded graph keeps them after the block ends)."""
    if not enabled:
        yield
        return
    with _Lean():
        yield
