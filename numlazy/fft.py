"""The array API's `fft` extension (2023.12): `nl.fft.fft(x)`, `nl.fft.rfftn(x, s=...)`...

The transforms are host ops of the op table: every device runs NumPy's FFT (pocketfft) on the
input's values, counted as `fallback::<name>`, inside the step like `sort`. Results have the
standard's dtypes, not NumPy's: float32 or complex64 input gives complex64 (float32 for the
real-output `irfft*`/`hfft`). `fftfreq`/`rfftfreq` are creation arithmetic and
`fftshift`/`ifftshift` a `roll` (a fused gather), so they run as generated kernels.

    >>> import numpy as np, numlazy as nl
    >>> x = nl.asarray(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    >>> y = nl.fft.rfft(x)
    >>> y.dtype, np.asarray(y).tolist()
    (dtype('complex64'), [(10+0j), (-2+2j), (-2+0j)])
"""
from __future__ import annotations

import operator

from . import api, ir
from . import dtypes as dt
from ._array import Array

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

NORMS = ("backward", "ortho", "forward")


def _input(name: str, x, real: bool) -> Array:
    """`x` as an array of a floating dtype (a real one where `real`)."""
    (x,), _ = api._operands(name, (x,))
    accepted = "float32, float64" if real else "float32, float64, complex64, complex128"
    if x.dtype.kind not in ("f" if real else "fc"):
        raise TypeError(f"{name}: x must have a {'real ' if real else ''}floating-point dtype "
                        f"({accepted}), got {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name}: x must have at least one dimension")
    return x


def _check_norm(name: str, norm) -> str:
    if norm not in NORMS:
        raise ValueError(f"{name}: norm must be one of {', '.join(map(repr, NORMS))}, got "
                         f"{norm!r}")
    return norm


def _length(name: str, label: str, n) -> int:
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{name}: {label} must be an int, got {n!r}") from None
    if n < 1:
        raise ValueError(f"{name}: {label} must be at least 1, got {n}")
    return n


def _complex_of(d):
    return dt.complex64 if d in (dt.float32, dt.complex64) else dt.complex128


def _node(name, x: Array, lengths, axes, norm, shape, dtype, one_d: bool) -> Array:
    attrs = (lengths[0] if one_d else tuple(lengths), axes[0] if one_d else tuple(axes), norm)
    return Array(ir.make(name, (x._node,), attrs, (), tuple(shape), dtype, x.device))


# -- one-dimensional transforms ---------------------------------------------------------------

def _transform_1d(name, x, n, axis, norm, *, real_in=False, real_out=False):
    x = _input(name, x, real_in)
    norm = _check_norm(name, norm)
    ax = api._axis(name, x.ndim, axis)
    m = x.shape[ax]
    if n is None:
        n = 2 * (m - 1) if real_out else m
        if n < 1:
            raise ValueError(f"{name}: the default length 2 * (x.shape[{axis}] - 1) is {n}; "
                             f"pass n")
    n = _length(name, "n", n)
    shape = list(x.shape)
    shape[ax] = n // 2 + 1 if real_in else n
    dtype = dt.real_dtype(_complex_of(x.dtype)) if real_out else _complex_of(x.dtype)
    return _node(name, x, (n,), (ax,), norm, shape, dtype, one_d=True)


def fft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The one-dimensional discrete Fourier transform along `axis` (length `n`: x is cut or
    zero-padded); `norm` is "backward" (no scaling), "ortho" or "forward" (1/n)."""
    return _transform_1d("fft", x, n, axis, norm)


def ifft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The inverse of `fft` ("backward" scales by 1/n)."""
    return _transform_1d("ifft", x, n, axis, norm)


def rfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """`fft` of a real array: the n // 2 + 1 non-negative frequencies."""
    return _transform_1d("rfft", x, n, axis, norm, real_in=True)


def irfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The inverse of `rfft`: a real array of length `n` (default 2 * (m - 1))."""
    return _transform_1d("irfft", x, n, axis, norm, real_out=True)


def hfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The transform of a signal with Hermitian symmetry (given by its first half): a real
    array of length `n` (default 2 * (m - 1))."""
    return _transform_1d("hfft", x, n, axis, norm, real_out=True)


def ihfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The inverse of `hfft`, of a real array: n // 2 + 1 complex values."""
    return _transform_1d("ihfft", x, n, axis, norm, real_in=True)


# -- n-dimensional transforms -----------------------------------------------------------------

def _transform_nd(name, x, s, axes, norm, *, real_in=False, real_out=False):
    x = _input(name, x, real_in)
    norm = _check_norm(name, norm)
    if s is not None and not isinstance(s, (tuple, list)):
        raise TypeError(f"{name}: s must be a tuple of ints or None, got {s!r}")
    if axes is None:
        axes = tuple(range(x.ndim)) if s is None else tuple(range(x.ndim - len(s), x.ndim))
    elif not isinstance(axes, (tuple, list)):
        raise TypeError(f"{name}: axes must be a tuple of ints or None, got {axes!r}")
    axes = [api._axis(name, x.ndim, a) for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}: repeated axis in axes {tuple(axes)}")
    if s is None:
        s = [x.shape[a] for a in axes]
        if real_out:
            s[-1] = 2 * (s[-1] - 1)
    if len(s) != len(axes):
        raise ValueError(f"{name}: s {tuple(s)} and axes {tuple(axes)} must have the same "
                         f"length")
    s = [_length(name, "each entry of s", v) for v in s]
    shape = list(x.shape)
    for a, v in zip(axes, s):
        shape[a] = v
    if real_in:
        shape[axes[-1]] = s[-1] // 2 + 1
    dtype = dt.real_dtype(_complex_of(x.dtype)) if real_out else _complex_of(x.dtype)
    return _node(name, x, s, axes, norm, shape, dtype, one_d=False)


def fftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """The n-dimensional discrete Fourier transform over `axes` (all by default, or the last
    len(s)), each cut or zero-padded to the lengths `s`."""
    return _transform_nd("fftn", x, s, axes, norm)


def ifftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """The inverse of `fftn`."""
    return _transform_nd("ifftn", x, s, axes, norm)


def rfftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """`fftn` of a real array; the last axis keeps its s[-1] // 2 + 1 non-negative
    frequencies."""
    return _transform_nd("rfftn", x, s, axes, norm, real_in=True)


def irfftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """The inverse of `rfftn`: a real array (the last axis of length s[-1], default
    2 * (m - 1))."""
    return _transform_nd("irfftn", x, s, axes, norm, real_out=True)


# -- frequencies and shifts: generated kernels -------------------------------------------------

def _spacing(name: str, n, d) -> tuple:
    n = _length(name, "n", n)
    if type(d) not in (int, float) or isinstance(d, bool):
        raise TypeError(f"{name}: d must be a Python float, got {d!r}")
    return n, float(d)


def fftfreq(n, /, *, d=1.0, device=None) -> Array:
    """The sample frequencies of an `fft` of length n: [0, 1, ..., -(n // 2), ..., -1] / (d * n)
    (float64)."""
    n, d = _spacing("fftfreq", n, d)
    k = api.arange(n, device=device)
    k = api.where(api.less(k, (n + 1) // 2), k, api.subtract(k, n))
    return api.divide(k, d * n)


def rfftfreq(n, /, *, d=1.0, device=None) -> Array:
    """The sample frequencies of an `rfft` of length n: [0, 1, ..., n // 2] / (d * n)
    (float64)."""
    n, d = _spacing("rfftfreq", n, d)
    return api.divide(api.arange(n // 2 + 1, device=device), d * n)


def _shift(name: str, x, axes, sign: int) -> Array:
    (x,), _ = api._operands(name, (x,))
    if axes is None:
        axes = tuple(range(x.ndim))
    axes = axes if isinstance(axes, (tuple, list)) else (axes,)
    axes = tuple(api._axis(name, x.ndim, a) for a in axes)
    if not axes:
        return x
    shifts = tuple(sign * (x.shape[a] // 2) for a in axes)
    return api.roll(x, shifts, axis=axes)


def fftshift(x, /, *, axes=None) -> Array:
    """`x` with the zero frequency moved to the centre of each axis in `axes` (all by
    default): a roll by n // 2."""
    return _shift("fftshift", x, axes, 1)


def ifftshift(x, /, *, axes=None) -> Array:
    """The inverse of `fftshift`: a roll by -(n // 2)."""
    return _shift("ifftshift", x, axes, -1)

