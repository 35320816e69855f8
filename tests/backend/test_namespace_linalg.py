"""`nl.linalg` on every device against NumPy: the host ops (NumPy's LAPACK, counted
`fallback::linalg.<name>`), the fused ones (norms, diagonal, trace, outer, cross, matrix_power,
matrix_rank), the standard's result tuples, and bad input (the standard's exception type, a
message naming the argument).

Sizes are tiny: 3x3 matrices, a batch of two.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import numlazy as nl
from numlazy import fusion
from numlazy.ir import Graph

from .conftest import assert_like_numpy, on

pytestmark = pytest.mark.filterwarnings("ignore::numlazy.executor.RecompileWarning")

L = nl.linalg
TOL = dict(rtol=1e-10, atol=1e-10)


def _counter(name) -> int:
    return nl.metrics.counter_value(name) or 0


def _matrices(shape=(2, 3, 3), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _spd(n=3):
    a = _matrices((2, n, n), 1)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


# One case per host op: (name, numlazy call, NumPy result, input).
HOST_CASES = {
    "cholesky": (lambda x: L.cholesky(x), lambda a: np.linalg.cholesky(a), _spd()),
    "cholesky-upper": (lambda x: L.cholesky(x, upper=True),
                       lambda a: np.linalg.cholesky(a, upper=True), _spd()),
    "det": (L.det, np.linalg.det, _matrices()),
    "eigvalsh": (L.eigvalsh, np.linalg.eigvalsh, _spd()),
    "inv": (L.inv, np.linalg.inv, _matrices()),
    "pinv": (L.pinv, np.linalg.pinv, _matrices((2, 3, 2))),
    "svdvals": (L.svdvals, np.linalg.svdvals, _matrices((3, 2))),
    "solve": (lambda x: L.solve(x, x[0]), lambda a: np.linalg.solve(a, a[0]), _matrices()),
    "solve-vector": (lambda x: L.solve(x[0], x[0, 0]), lambda a: np.linalg.solve(a[0], a[0, 0]),
                     _matrices()),
}


@pytest.mark.parametrize("case", sorted(HOST_CASES))
def test_host_op(device, case):
    fn, ref, a = HOST_CASES[case]
    name = "linalg." + case.split("-")[0]
    before = _counter(f"fallback::{name}")
    assert_like_numpy(fn(on(device, a)), ref(a), **TOL)
    assert _counter(f"fallback::{name}") == before + (device != "numpy")   # interpreted
    assert_like_numpy(fn(on(device, a, "float32")), ref(a.astype("float32")), rtol=1e-4,
                      atol=1e-5)


def test_factorization_results(device):
    """The standard's namedtuples and field names; factors that rebuild their input."""
    a, s = _matrices((2, 3, 2)), _spd()
    w, v = L.eigh(on(device, s))
    assert L.eigh(on(device, s))._fields == ("eigenvalues", "eigenvectors")
    assert_like_numpy(w, np.linalg.eigvalsh(s), **TOL)
    assert_like_numpy(v @ (w[..., None] * v.mT), s, **TOL)
    for mode, k in (("reduced", 2), ("complete", 3)):
        q, r = L.qr(on(device, a), mode=mode)
        assert L.qr(on(device, a))._fields == ("Q", "R") and q.shape == (2, 3, k)
        assert_like_numpy(q @ r, a, **TOL)
    sign, logabsdet = L.slogdet(on(device, _matrices()))
    assert L.slogdet(on(device, s))._fields == ("sign", "logabsdet")
    assert_like_numpy(sign * nl.exp(logabsdet), np.linalg.det(_matrices()), **TOL)
    for full in (True, False):
        u, sv, vh = L.svd(on(device, a), full_matrices=full)
        assert L.svd(on(device, a))._fields == ("U", "S", "Vh")
        assert u.shape == ((2, 3, 3) if full else (2, 3, 2)) and vh.shape == (2, 2, 2)
        assert_like_numpy(u[..., :2] * sv[:, None, :] @ vh, a, **TOL)


# --- fused: views, reductions, elementwise --------------------------------------------------

@pytest.mark.parametrize("offset", [0, 1, -2, 5])
def test_diagonal_and_trace(device, offset):
    a = _matrices((2, 3, 4))
    assert_like_numpy(L.diagonal(on(device, a) * 2, offset=offset),
                      np.diagonal(a * 2, offset, -2, -1))
    assert_like_numpy(L.trace(on(device, a), offset=offset),
                      np.trace(a, offset, -2, -1), **TOL)
    ints = np.arange(9, dtype="int8").reshape(3, 3)
    assert_like_numpy(L.trace(on(device, ints), offset=offset), np.trace(ints, offset))


def test_outer_cross_matrix_power_rank(device):
    before = _counter("fallback::linalg.inv")
    u, v = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])
    assert_like_numpy(L.outer(on(device, u), on(device, v[:2])), np.outer(u, v[:2]))
    a = _matrices((2, 3, 3))
    assert_like_numpy(L.cross(on(device, a), on(device, v)), np.cross(a, v), **TOL)
    assert_like_numpy(L.cross(on(device, a), on(device, a[0]), axis=-2),
                      np.cross(a, a[0], axis=-2), **TOL)
    for n in (0, 1, 3, 4):
        assert_like_numpy(L.matrix_power(on(device, a), n), np.linalg.matrix_power(a, n), **TOL)
    ints = np.array([[1, 2], [0, 1]], "int32")
    assert_like_numpy(L.matrix_power(on(device, ints), 3), np.linalg.matrix_power(ints, 3))
    assert _counter("fallback::linalg.inv") == before        # no inverse needed so far
    assert_like_numpy(L.matrix_power(on(device, a), -2), np.linalg.matrix_power(a, -2),
                      rtol=1e-9, atol=1e-9)
    low = np.array([[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]])
    assert_like_numpy(L.matrix_rank(on(device, low)), np.linalg.matrix_rank(low))
    assert_like_numpy(L.matrix_rank(on(device, low), rtol=0.9), np.linalg.matrix_rank(
        low, rtol=0.9))


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf], ids=str)
def test_matrix_norm(device, ord):
    a = _matrices((2, 3, 4))
    assert_like_numpy(L.matrix_norm(on(device, a), ord=ord),
                      np.linalg.norm(a, ord=ord, axis=(-2, -1)), **TOL)
    assert_like_numpy(L.matrix_norm(on(device, a), ord=ord, keepdims=True),
                      np.linalg.norm(a, ord=ord, axis=(-2, -1), keepdims=True), **TOL)


@pytest.mark.parametrize("ord,axis", [(2, None), (1, 1), (math.inf, 0), (-math.inf, -1),
                                      (0, (0, 1)), (3.5, 1)], ids=str)
def test_vector_norm(device, ord, axis):
    x = _matrices((3, 4)) * 3
    before = _counter("fallback::np.linalg.norm")
    expected = np.linalg.norm(x.reshape(-1), ord=ord) if axis is None else \
        np.linalg.norm(x, ord=ord, axis=axis) if isinstance(axis, int) else \
        np.sum(x != 0, axis=axis).astype(float)
    assert_like_numpy(L.vector_norm(on(device, x), ord=ord, axis=axis), expected, **TOL)
    ints = np.arange(-3, 3, dtype="int16")
    assert_like_numpy(L.vector_norm(on(device, ints), ord=ord if axis != (0, 1) else 0),
                      np.linalg.norm(ints.astype(float), ord=ord if axis != (0, 1) else 0),
                      **TOL)
    assert _counter("fallback::np.linalg.norm") == before


@pytest.mark.parametrize("ord", [2, 1, math.inf, 0, 3.0], ids=str)
def test_vector_norm_of_complex(device, ord):
    """A complex input's norm is real (float32 for complex64), of the moduli."""
    z = np.array([[3 + 4j, 1j, 0], [-2, 1 - 1j, 0.5j]], np.complex64)
    got = L.vector_norm(on(device, z), ord=ord, axis=1)
    assert_like_numpy(got, np.linalg.vector_norm(z, ord=ord, axis=1), rtol=1e-5)


def test_tensordot_hands_matmul_no_transposed_views():
    """Numba's CUDA arrays cannot reshape a transposed buffer (nor transpose one beyond 2-D),
    and the simulator does not notice: tensordot copies its permuted operands in a kernel, so
    the views applied to matmul's inputs are reshapes of contiguous buffers only."""
    a, b = nl.asarray(np.ones((3, 2, 4))), nl.asarray(np.ones((4, 3)))
    graph = Graph([nl.tensordot(a, b, axes=((0, 2), (1, 0)))._node])
    schedule = fusion.partition(graph, lambda op: True)
    (matmul,) = [k for k in schedule.kernels if isinstance(k, fusion.HostKernel)]
    views = [graph.nodes[v].op for _, chain in matmul.inputs for v in chain]
    assert views and "permute" not in views


def test_linalg_namespace_reuses_the_main_functions():
    for name in ("matmul", "matrix_transpose", "tensordot", "vecdot"):
        assert getattr(L, name) is getattr(nl, name)


def test_linalg_errors(device):
    sq, rect = on(device, _matrices()), on(device, _matrices((2, 3)))
    with pytest.raises(TypeError, match="linalg.inv: x must have a floating-point dtype"):
        L.inv(on(device, np.eye(2, dtype="int64")))
    with pytest.raises(ValueError, match=r"linalg.det: x must be \(a stack of\) square"):
        L.det(rect)
    with pytest.raises(ValueError, match="linalg.cholesky: x must have at least 2 dim"):
        L.cholesky(on(device, [1.0, 2.0]))
    with pytest.raises(ValueError, match="linalg.qr: mode must be 'reduced' or 'complete'"):
        L.qr(rect, mode="r")
    with pytest.raises(ValueError, match="linalg.matrix_norm: ord must be one of"):
        L.matrix_norm(sq, ord=3)
    with pytest.raises(TypeError, match="linalg.vector_norm: ord must be"):
        L.vector_norm(sq, ord="fro")
    with pytest.raises(ValueError, match="linalg.cross: axis -1 must have size 3"):
        L.cross(sq[..., :2], sq[..., :2])
    with pytest.raises(ValueError, match="linalg.outer: x2 must be a 1-D array"):
        L.outer(on(device, [1.0]), sq)
    with pytest.raises(TypeError, match="linalg.matrix_power: n must be an int"):
        L.matrix_power(sq, 1.5)
    with pytest.raises(TypeError, match="linalg.matrix_power: a negative n needs"):
        L.matrix_power(on(device, np.eye(2, dtype="int32")), -1)
    with pytest.raises(ValueError, match="linalg.solve: x2 of shape"):
        L.solve(sq, on(device, [1.0, 2.0]))
    with pytest.raises(TypeError, match="linalg.diagonal: offset must be an int"):
        L.diagonal(sq, offset=0.5)
    with pytest.raises(TypeError, match="linalg.pinv: rtol must be a float or None"):
        L.pinv(sq, rtol="x")
    with pytest.raises(np.exceptions.AxisError, match="linalg.vector_norm: axis 2"):
        L.vector_norm(rect, axis=2)
    assert_like_numpy(L.pinv(sq, rtol=np.float64(0.5)), np.linalg.pinv(_matrices(), rtol=0.5),
                      **TOL)
