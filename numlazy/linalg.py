"""`numlazy.linalg`: the array API standard's linear algebra extension (2023.12).

What is elementwise, a reduction or a view is recorded with those ops and fuses like any other
code: `vector_norm`, `matrix_norm` (except the singular-value norms), `diagonal` (a strided
view), `trace`, `outer`, `cross`, `matrix_power` (matmuls), `matrix_rank`'s count. The
factorizations and solvers (`cholesky, det, eigh, eigvalsh, inv, pinv, qr, slogdet, solve,
svd, svdvals`) are host ops: NumPy's LAPACK runs them on every device, counted as
`fallback::linalg.<name>`, and a singular matrix raises NumPy's `LinAlgError` at the step.
They take floating-point arrays (float32, float64) of matrices in the last two axes.

    >>> import numpy as np, numlazy as nl
    >>> a = nl.asarray([[4.0, 1.0], [1.0, 3.0]])
    >>> round(float(nl.linalg.det(a)), 6), nl.linalg.eigvalsh(a).shape
    (11.0, (2,))
"""
from __future__ import annotations

import builtins
import collections
import math

import numpy as np

from . import api, ir
from . import dtypes as dt
from ._array import Array
from .api import matmul, matrix_transpose, tensordot, vecdot  # noqa: F401 - re-exported

EighResult = collections.namedtuple("EighResult", "eigenvalues eigenvectors")
QRResult = collections.namedtuple("QRResult", "Q R")
SlogdetResult = collections.namedtuple("SlogdetResult", "sign logabsdet")
SVDResult = collections.namedtuple("SVDResult", "U S Vh")


# --- arguments -----------------------------------------------------------------------------

def _matrices(name: str, x, *, square: bool = False, floating: bool = True) -> Array:
    """`x` as an array of matrices (at least 2-D; square if asked; float if asked)."""
    (x,), _ = api._operands(f"linalg.{name}", (x,))
    if floating and not dt.is_float(x.dtype):
        raise TypeError(f"linalg.{name}: x must have a floating-point dtype (float32, "
                        f"float64), got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"linalg.{name}: x must have at least 2 dimensions, got shape "
                         f"{x.shape}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"linalg.{name}: x must be (a stack of) square matrices, got shape "
                         f"{x.shape}")
    return x


def _host(name: str, srcs, attrs, shape, rt=()) -> Array:
    x = srcs[0]
    return Array(ir.make(f"linalg.{name}", tuple(s._node for s in srcs), attrs, rt,
                         tuple(shape), x.dtype, x.device))


def _real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_))


def _int(name: str, arg: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"linalg.{name}: {arg} must be an int, got {api._describe(value)}")
    return int(value)


# --- factorizations and solvers: host ops --------------------------------------------------

def cholesky(x, /, *, upper: bool = False) -> Array:
    """The Cholesky factor of symmetric positive-definite matrices: lower triangular L with
    x = L @ L.mT, or upper U = L.mT with x = U.mT @ U when `upper`."""
    x = _matrices("cholesky", x, square=True)
    return _host("cholesky", (x,), (bool(upper),), x.shape)


def det(x, /) -> Array:
    """Determinants of square matrices."""
    x = _matrices("det", x, square=True)
    return _host("det", (x,), (), x.shape[:-2])


def eigh(x, /) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices."""
    x = _matrices("eigh", x, square=True)
    return EighResult(_host("eigh", (x,), (0,), x.shape[:-1]), _host("eigh", (x,), (1,), x.shape))


def eigvalsh(x, /) -> Array:
    """Eigenvalues (ascending) of symmetric matrices."""
    x = _matrices("eigvalsh", x, square=True)
    return _host("eigvalsh", (x,), (), x.shape[:-1])


def inv(x, /) -> Array:
    """Inverses of square matrices."""
    x = _matrices("inv", x, square=True)
    return _host("inv", (x,), (), x.shape)


def _default_rtol(x: Array) -> float:
    return builtins.max(x.shape[-2:]) * float(np.finfo(x.dtype).eps)


def pinv(x, /, *, rtol=None) -> Array:
    """Moore-Penrose pseudo-inverses; singular values below `rtol` (a float; default
    max(M, N) * eps) times the largest are treated as zero."""
    x = _matrices("pinv", x)
    if rtol is not None and not _real(rtol):
        raise TypeError(f"linalg.pinv: rtol must be a float or None, got "
                        f"{api._describe(rtol)}")
    rtol = _default_rtol(x) if rtol is None else float(rtol)
    return _host("pinv", (x,), (), x.shape[:-2] + x.shape[:-3:-1], (np.float64(rtol),))


def qr(x, /, *, mode: str = "reduced") -> QRResult:
    """QR factorizations: Q with orthonormal columns and upper triangular R; `mode` "reduced"
    (Q is M x K, K = min(M, N)) or "complete" (Q is M x M)."""
    x = _matrices("qr", x)
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}")
    *batch, m, n = x.shape
    k = m if mode == "complete" else builtins.min(m, n)
    return QRResult(_host("qr", (x,), (mode, 0), (*batch, m, k)),
                    _host("qr", (x,), (mode, 1), (*batch, k, n)))


def slogdet(x, /) -> SlogdetResult:
    """Sign and natural log of the absolute value of determinants (no overflow)."""
    x = _matrices("slogdet", x, square=True)
    return SlogdetResult(*(_host("slogdet", (x,), (i,), x.shape[:-2]) for i in range(2)))


def solve(x1, x2, /) -> Array:
    """Solutions of x1 @ result = x2 for square x1; a 1-D x2 is one vector (NumPy 2's rule),
    otherwise x2 holds matrices whose batch dims broadcast with x1's."""
    x1 = _matrices("solve", x1, square=True)
    (x2,), _ = api._operands("linalg.solve", (x2,))
    if x2.device != x1.device:
        raise ValueError(f"linalg.solve: x1 is on {x1.device}, x2 on {x2.device}")
    if x2.ndim == 0 or not dt.is_float(x2.dtype):
        raise TypeError(f"linalg.solve: x2 must be a floating-point array of at least one "
                        f"dimension, got {x2.dtype} of shape {x2.shape}")
    m = x1.shape[-1]
    rows = x2.shape[0] if x2.ndim == 1 else x2.shape[-2]
    if rows != m:
        raise ValueError(f"linalg.solve: x2 of shape {x2.shape} does not match the matrices "
                         f"of x1 (shape {x1.shape}): {rows} rows, expected {m}")
    if x2.ndim == 1:
        shape = x1.shape[:-1]
    else:
        shape = api._broadcast_shape("linalg.solve", [x1.shape[:-2], x2.shape[:-2]]) + \
            x2.shape[-2:]
    dtype = dt.result_type(x1.dtype, x2.dtype)
    x1, x2 = api.astype(x1, dtype, copy=False), api.astype(x2, dtype, copy=False)
    return _host("solve", (x1, x2), (), shape)


def svd(x, /, *, full_matrices: bool = True) -> SVDResult:
    """Singular value decompositions x = U @ diag(S) @ Vh, singular values descending."""
    x = _matrices("svd", x)
    *batch, m, n = x.shape
    k = builtins.min(m, n)
    full = bool(full_matrices)
    shapes = ((*batch, m, m if full else k), (*batch, k), (*batch, n if full else k, n))
    return SVDResult(*(_host("svd", (x,), (full, i), s) for i, s in enumerate(shapes)))


def svdvals(x, /) -> Array:
    """Singular values, descending."""
    x = _matrices("svdvals", x)
    return _host("svdvals", (x,), (), x.shape[:-2] + (builtins.min(x.shape[-2:]),))


# --- views, reductions and elementwise code (fused) ----------------------------------------

def diagonal(x, /, *, offset: int = 0) -> Array:
    """The `offset`-th diagonal of the matrices in the last two axes (positive: above the
    main diagonal): a strided view of the matrices seen flat, no copy."""
    x = _matrices("diagonal", x, floating=False)
    offset = _int("diagonal", "offset", offset)
    *batch, m, n = x.shape
    length = builtins.max(0, builtins.min(m, n - offset) if offset >= 0 else
                          builtins.min(m + offset, n))
    start = offset if offset >= 0 else -offset * n
    flat = api.reshape(x, (*batch, m * n))
    lead = (slice(None),) * len(batch)
    if length == 0:
        return flat[lead + (slice(0, 0),)]
    return flat[lead + (slice(start, start + (length - 1) * (n + 1) + 1, n + 1),)]


def trace(x, /, *, offset: int = 0, dtype=None) -> Array:
    """Sums along the `offset`-th diagonals (integers sum in the default integer type)."""
    return api.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def outer(x1, x2, /) -> Array:
    """The outer product of two vectors: x1[i] * x2[j] (a broadcast multiply)."""
    (x1, x2), _ = api._operands("linalg.outer", (x1, x2))
    for arg, v in (("x1", x1), ("x2", x2)):
        if not isinstance(v, Array) or v.ndim != 1:
            raise ValueError(f"linalg.outer: {arg} must be a 1-D array, got shape "
                             f"{getattr(v, 'shape', ())}")
    return api.multiply(x1[:, None], x2[None, :])


def cross(x1, x2, /, *, axis: int = -1) -> Array:
    """Cross products of 3-vectors along `axis` (the other axes broadcast): three fused
    elementwise expressions joined by a gather."""
    (x1, x2), _ = api._operands("linalg.cross", (x1, x2))
    shape = api._broadcast_shape("linalg.cross", [x1.shape, x2.shape])
    ax = api._axis("linalg.cross", len(shape), axis)
    if shape[ax] != 3:
        raise ValueError(f"linalg.cross: axis {axis} must have size 3, got shapes {x1.shape} "
                         f"and {x2.shape}")
    if x1.dtype == dt.bool_ or x2.dtype == dt.bool_:
        raise TypeError("linalg.cross: x1 and x2 must have numeric dtypes, got bool")
    a = api.unstack(api.broadcast_to(x1, shape), axis=ax)
    b = api.unstack(api.broadcast_to(x2, shape), axis=ax)
    mul, sub = api.multiply, api.subtract
    parts = [sub(mul(a[1], b[2]), mul(a[2], b[1])), sub(mul(a[2], b[0]), mul(a[0], b[2])),
             sub(mul(a[0], b[1]), mul(a[1], b[0]))]
    return api.stack(parts, axis=ax)


def matrix_power(x, n, /) -> Array:
    """x multiplied by itself `n` times (square matrices): repeated squaring with matmul;
    n = 0 gives identities, a negative n powers the inverse."""
    x = _matrices("matrix_power", x, square=True, floating=False)
    n = _int("matrix_power", "n", n)
    if n == 0:
        eye = api.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        return api.astype(api.broadcast_to(eye, x.shape), x.dtype)
    if n < 0:
        if not dt.is_float(x.dtype):
            raise TypeError(f"linalg.matrix_power: a negative n needs a floating-point x, "
                            f"got {x.dtype}")
        x, n = inv(x), -n
    result = None
    while n:
        if n & 1:
            result = x if result is None else matmul(result, x)
        n >>= 1
        if n:
            x = matmul(x, x)
    return result


def matrix_rank(x, /, *, rtol=None) -> Array:
    """The number of singular values above `rtol` (a float or an array broadcasting against
    the batch dims; default max(M, N) * eps) times the largest."""
    x = _matrices("matrix_rank", x)
    s = svdvals(x)
    if rtol is None:
        rtol = _default_rtol(x)
    elif isinstance(rtol, Array):
        rtol = api.expand_dims(rtol, axis=-1)
    elif not _real(rtol):
        raise TypeError(f"linalg.matrix_rank: rtol must be a float, an array or None, got "
                        f"{api._describe(rtol)}")
    tol = api.multiply(api.max(s, axis=-1, keepdims=True), rtol)
    return api.sum(api.greater(s, tol), axis=-1)


_MATRIX_ORDS = ("'fro'", "'nuc'", "1", "-1", "2", "-2", "inf", "-inf")


def matrix_norm(x, /, *, keepdims: bool = False, ord="fro") -> Array:
    """Norms of the matrices in the last two axes: `ord` "fro" (Frobenius), "nuc" (sum of
    singular values), 1 / -1 (max / min column sum of |x|), inf / -inf (row sums), 2 / -2
    (largest / smallest singular value; these and "nuc" run svdvals on the host)."""
    x = _matrices("matrix_norm", x)
    if ord == "fro":
        out = api.sqrt(api.sum(api.multiply(x, x), axis=(-2, -1)))
    elif ord == "nuc" or ord in (2, -2) and not isinstance(ord, bool):
        s = svdvals(x)
        out = api.sum(s, axis=-1) if ord == "nuc" else \
            (api.max if ord == 2 else api.min)(s, axis=-1)
    elif ord in (1, -1, math.inf, -math.inf) and not isinstance(ord, bool):
        sums = api.sum(api.abs(x), axis=-2 if ord in (1, -1) else -1)
        out = (api.max if ord > 0 else api.min)(sums, axis=-1)
    else:
        raise ValueError(f"linalg.matrix_norm: ord must be one of {', '.join(_MATRIX_ORDS)}, "
                         f"got {ord!r}")
    return api.reshape(out, out.shape + (1, 1)) if keepdims else out


def vector_norm(x, /, *, axis=None, keepdims: bool = False, ord=2) -> Array:
    """p-norms over `axis` (None: all elements; an int or a tuple): `ord` 2 (Euclidean),
    1, inf (max |x|), -inf (min |x|), 0 (number of non-zeros), or any other real p
    (sum(|x|**p) ** (1/p)). Integer inputs are converted to float64 first; complex inputs
    give the real norm of their moduli (float32 for complex64)."""
    (x,), _ = api._operands("linalg.vector_norm", (x,))
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"linalg.vector_norm: ord must be an int, a float or +/-inf, got "
                        f"{api._describe(ord)}")
    api._axes("linalg.vector_norm", x.ndim, axis)          # checked here, named here
    if not (dt.is_float(x.dtype) or dt.is_complex(x.dtype)):
        x = api.astype(x, dt.default_float)
    reduce = dict(axis=axis, keepdims=keepdims)
    size = api.abs(x)                          # real: a complex input gives a real norm
    if ord == 2:
        return api.sqrt(api.sum(api.multiply(size, size), **reduce))
    if ord == 1:
        return api.sum(size, **reduce)
    if ord == math.inf:
        return api.max(size, **reduce)
    if ord == -math.inf:
        return api.min(size, **reduce)
    if ord == 0:
        return api.astype(api.sum(api.not_equal(x, 0), **reduce), size.dtype)
    p = float(ord)
    return api.pow(api.sum(api.pow(size, p), **reduce), 1.0 / p)


__all__ = sorted(["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
                  "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose", "outer",
                  "pinv", "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace",
                  "vecdot", "vector_norm"])
