"""The CUDA backend's 16-byte accesses (numlazy_cuda/vector.py): which elementwise kernels and
full reductions get them, and that their values are right for every length, aligned or not
(on a GPU or Numba's simulator)."""
import numpy as np
import pytest

import numlazy as nl
from numlazy import cache, fusion
from numlazy.codegen import KernelParts, RowParts
from numlazy.ir import Graph

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
render = pytest.importorskip("numlazy_cuda.render")


def _parts(y, parts=KernelParts):
    """The kernel parts (`KernelParts` or `RowParts`) of the one kernel computing `y`."""
    graph = Graph([y._node])
    (kernel,) = fusion.partition(graph, lambda op: True, True).kernels
    return parts(graph, kernel)


def _chain(dtype, n=64, extra=lambda a: 0):
    a, b, c = (nl.asarray(np.arange(n, dtype=dtype) + k) for k in range(3))
    if np.dtype(dtype).kind == "i":
        return a * b + 3 * c * c - a + extra(a)
    return nl.sin(a) * b + 0.5 * c * c - a + extra(a)


@pytest.mark.parametrize("dtype, lanes", [("float32", 4), ("int32", 4), ("float64", 2),
                                          ("int64", 2)])
def test_rank_1_kernels_read_and_write_16_bytes_at_a_time(dtype, lanes):
    source = render.render(_parts(_chain(dtype)), simulator=False)
    assert f"LANES = {lanes}" in source
    assert source.count("= vldg(") == 3            # a, b, c: one load each per iteration
    assert source.count("vstore(") == 1
    assert "aligned16(" in source                  # checked at run time, scalar otherwise


def test_views_keep_their_index_maps_inside_the_vector_loop():
    y = _chain("float32", extra=lambda a: a[::-1])
    source = render.render(_parts(y), simulator=False)
    assert "LANES = 4" in source and "i0 = j * 4 + 3" in source


@pytest.mark.parametrize("case", ["bool output", "mixed itemsizes", "rank 2"])
def test_kernels_without_one_itemsize_or_of_rank_2_stay_scalar(case):
    a = nl.asarray(np.arange(64, dtype=np.float32))
    if case == "bool output":
        y = a > 3
    elif case == "mixed itemsizes":
        y = a * nl.asarray(np.arange(64.0))
    else:
        y = nl.sin(nl.reshape(a, (8, 8))) + 1
    source = render.render(_parts(y), simulator=False)
    assert "LANES = 1" in source and "vldg(" not in source


@pytest.mark.parametrize("op", ["sum", "max", "argmax"])
def test_rank_1_full_reductions_read_16_bytes_at_a_time(op):
    a, b = (nl.asarray(np.arange(64, dtype=np.float32) + k) for k in range(2))
    source = render.render(_parts(getattr(nl, op)(a * b)), simulator=False)
    partial = source[source.index("def partial"):source.index("def final")]
    assert partial.count("= vldg(") == 2 and "aligned16(a0) and aligned16(a1)" in partial
    assert "for f in range(start, total" in partial           # the scalar tail after it


def _cuda_device():
    for name in nl.list_backends():
        if name.startswith("cuda"):
            try:
                nl.registry.backend_for(nl.device(name))
                return name
            except RuntimeError:
                pass
    pytest.skip("no GPU and no CUDA simulator")


@pytest.mark.parametrize("n", [1, 3, 4, 5, 37, 1027])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vector_loop_and_its_tail_give_numpys_values(n, dtype):
    device = _cuda_device()
    host = [np.linspace(-3, 3, n).astype(dtype) + k for k in range(3)]
    a, b, c = (nl.asarray(h, device=device) for h in host)
    got = np.asarray(nl.sin(a) * b + 0.5 * c * c - a)
    a, b, c = host
    np.testing.assert_allclose(got, np.sin(a) * b + 0.5 * c * c - a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 4, 5, 37, 1027])
def test_vector_reductions_and_their_tail_give_numpys_values(n):
    device = _cuda_device()
    rng = np.random.default_rng(n)
    host = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
    host[0][n // 2] = host[0][n - 1] = 100.0                  # a tie: argmax is the first
    a, b = (nl.asarray(h, device=device) for h in host)
    a_, b_ = host
    got = nl.to_cpu([nl.sum(a * b), nl.max(a - b), nl.argmax(a), nl.argmin(b * 2)])
    np.testing.assert_allclose(got[0], np.sum(a_.astype(np.float64) * b_), rtol=1e-5)
    assert got[1] == np.max(a_ - b_)
    assert got[2] == np.argmax(a_) and got[3] == np.argmin(b_ * 2)


def test_misaligned_arrays_take_the_scalar_loop():
    """A 4-byte offset view is not 16-byte aligned: the kernel must not vector-access it
    (a GPU faults on that; the simulator's vector functions assert it)."""
    device = _cuda_device()
    backend = nl.registry.backend_for(nl.device(device))
    from numba import cuda
    a = nl.asarray(np.zeros(37, np.float32))
    parts = _parts(a * 2.0 + 1.0)
    module = cache.load_module(render.render(parts, backend.simulator))
    host = np.arange(38, dtype=np.float32)
    x = cuda.to_device(host)[1:]                   # 4 bytes past an aligned block
    out = cuda.device_array(37, np.float32)
    args = [np.float32(2.0), np.float32(1.0)]
    module.flat[2, 32]((37,), out, x, *args)
    np.testing.assert_array_equal(out.copy_to_host(), host[1:] * 2 + 1)


# -- row kernels: `exact` holds 16-byte vectors of the row --------------------------------------

def _row_parts(y):
    return _parts(y, RowParts)


def _softmax(x):
    e = nl.exp(x - nl.max(x, axis=1, keepdims=True))
    return e / nl.sum(e, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype, lanes", [("float32", 4), ("float64", 2)])
def test_exact_row_kernels_load_and_store_16_bytes_at_a_time(dtype, lanes):
    source = render.render(_row_parts(_softmax(nl.asarray(np.ones((4, 8), dtype)))),
                           simulator=False)
    exact = source[source.index("def exact"):]
    vectors = render.ROW_CACHE // lanes
    assert exact.count("= vldg(a0, j_") == vectors          # the row's one input, once
    assert exact.count("vstore(o") == vectors and "vec = aligned16(o" in exact
    assert f"(t + 1 * cuda.blockDim.x) * {lanes} + 0" in exact  # vector k of thread t: t + kB


def test_exact_rows_with_mixed_itemsizes_stay_scalar():
    x = nl.asarray(np.ones((4, 8), np.float32))
    y = x / nl.sum(nl.astype(x, nl.float64), axis=1, keepdims=True)   # float64 output
    exact = render.render(_row_parts(y), simulator=False)
    assert "def exact" in exact and "vldg(" not in exact.split("def exact")[1]


def _exact_launch(backend, y, x, out):
    """Run the `exact` kernel of the row kernel computing `y` on device arrays."""
    module = cache.load_module(render.render(_row_parts(y), backend.simulator))
    rows, cols = x.shape
    module.exact[rows, cols // render.row_cache(backend.simulator)]((rows, cols), out, x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exact_rows_give_the_same_bits_aligned_or_not(dtype):
    """A misaligned row array takes the scalar accesses, over the same elements of each
    thread: the row reduces in the same order, to the same bits."""
    device = _cuda_device()
    backend = nl.registry.backend_for(nl.device(device))
    from numba import cuda
    cols = 16 * render.row_cache(backend.simulator)
    host = np.random.default_rng(3).standard_normal(3 * cols + 1).astype(dtype) * 5
    y = _softmax(nl.asarray(np.ones((3, cols), dtype)))
    outs = []
    for x in (cuda.to_device(host[1:].copy().reshape(3, cols)),     # aligned
              cuda.to_device(host)[1:].reshape(3, cols)):             # 4 or 8 bytes past
        out = cuda.device_array((3, cols), dtype)
        _exact_launch(backend, y, x, out)
        outs.append(out.copy_to_host())
    x = host[1:].reshape(3, cols).astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(outs[0], e / e.sum(axis=1, keepdims=True),
                               rtol=1e-5 if dtype == "float32" else 1e-13)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_exact_row_argmax_keeps_the_first_of_ties():
    device = _cuda_device()
    cols = 16 * render.row_cache(nl.registry.backend_for(nl.device(device)).simulator)
    host = np.zeros((4, cols), np.float32)
    for r, ties in enumerate([(0, cols - 1), (5, 6), (cols // 2, 3), (cols - 2, cols - 1)]):
        host[r, list(ties)] = 7.0
    x = nl.asarray(host, device=device)
    got = nl.to_cpu([nl.argmax(x, axis=1), x - nl.max(x, axis=1, keepdims=True)])
    np.testing.assert_array_equal(got[0], np.argmax(host, axis=1))
    np.testing.assert_array_equal(got[1], host - host.max(axis=1, keepdims=True))
