"""The CUDA backend's 16-byte accesses (numlazy_cuda/vector.py): which elementwise kernels and
full reductions get them, and that their values are right for every length, aligned or not
(on a GPU or Numba's simulator)."""
import numpy as np
import pytest

import numlazy as nl
from numlazy import cache, fusion
from numlazy.codegen import KernelParts
from numlazy.ir import Graph

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
render = pytest.importorskip("numlazy_cuda.render")


def _parts(y) -> KernelParts:
    graph = Graph([y._node])
    (kernel,) = fusion.partition(graph, lambda op: True, True).kernels
    return KernelParts(graph, kernel)


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
