"""Row kernels (`fusion.RowKernel`) on every device: reductions over trailing dims and the
kernels that feed on them run as one kernel, phase after phase per row (a row softmax is one
kernel launch). Values against NumPy; kernel counts on the compiled devices.

Sizes are picked for the CUDA launcher under the simulator (32 threads a block at most, 2
blocks, 4 elements a thread in `exact`): rows of 5 take the thread-per-row variant; rows of 64
the block-per-row one holding the row in registers (`exact`: 4 elements for each of 16
threads, one 16-byte vector of float32 or two of float64); rows of 20 and 70 the block-per-row loop (`block`), with idle threads, and with more
elements than threads and more rows than blocks.
"""
from __future__ import annotations

import ast

import numpy as np
import pytest

import numlazy as nl

from .conftest import assert_like_numpy, np_call, on, reduction_tolerance

COMPILED = ("cpu", "cuda")
SHAPES = [(3, 5), (5, 20), (3, 64), (3, 70)]


def step(device, expected_kernels=None):
    """Run the step; on compiled devices, check how many kernels it launched."""
    nl.metrics.reset()
    nl.mark_step(device)
    if expected_kernels is not None and device.split(":")[0] in COMPILED:
        assert nl.metrics.counter_value("KernelLaunch") == expected_kernels


def softmax(x, axis=-1):
    e = nl.exp(x - nl.max(x, axis=axis, keepdims=True))
    return e, e / nl.sum(e, axis=axis, keepdims=True)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e, e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_softmax_is_one_kernel(device, shape, dtype):
    host = np.random.default_rng(0).normal(size=shape).astype(dtype) * 4
    e, out = softmax(on(device, host))
    step(device, 1)
    want_e, want = np_softmax(host)
    tol = dict(rtol=2e-6, atol=0) if dtype == "float32" else dict(rtol=1e-14, atol=0)
    assert_like_numpy(out, want, **tol)
    del e


@pytest.mark.parametrize("shape", [(3, 5), (3, 70)], ids=str)
def test_row_softmax_with_the_exponentials_kept(device, shape):
    host = np.random.default_rng(1).normal(size=shape).astype("float32")
    e, out = softmax(on(device, host))
    step(device, 1)
    want_e, want = np_softmax(host)
    assert_like_numpy(e, want_e, rtol=2e-6)
    assert_like_numpy(out, want, rtol=2e-6)


def _row_buffers(device, arrays):
    """The positions the step's schedule gives buffers, and the row kernel's kept values."""
    from numlazy import fusion, ir
    from numlazy.registry import backend_for
    graph = ir.Graph([a._node for a in arrays])
    backend = backend_for(arrays[0].device)
    schedule = fusion.partition(graph, backend.can_lower, backend.fuses_rows)
    rows = [p for k in schedule.kernels for p in getattr(k, "rows", ())]
    return [graph.nodes[p] for p in schedule.buffers], [graph.nodes[p] for p in rows]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_row_values_nobody_else_reads_get_no_buffer(device, shape):
    host = np.random.default_rng(7).normal(size=shape)
    x = on(device, host)
    inv = 1.0 / nl.sum(x * x, axis=1)                       # a phase over the rows only
    y = x * nl.expand_dims(inv, axis=1) - nl.max(x, axis=1, keepdims=True)
    _, out = softmax(x)
    kept = nl.min(x, axis=1)                                 # the step returns it
    z = x - nl.expand_dims(kept, axis=1)
    del inv
    if device.split(":")[0] in COMPILED:
        buffers, rows = _row_buffers(device, [y, out, kept, z])
        assert {id(n) for n in buffers} == {id(a._node) for a in (y, out, kept, z)}
        assert sorted(n.op for n in rows) == ["max", "sum", "sum"]     # one max: hash-consed
    step(device, 1)
    assert_like_numpy(y, host / (host * host).sum(1, keepdims=True) - host.max(1, keepdims=True),
                      rtol=1e-12)
    assert_like_numpy(out, np_softmax(host)[1], rtol=1e-13)
    assert_like_numpy(kept, host.min(1))
    assert_like_numpy(z, host - host.min(1, keepdims=True))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_row_phases_of_every_reduction_kind(device, shape):
    rng = np.random.default_rng(2)
    host = rng.integers(-5, 5, size=shape).astype("float32")
    host[1] = -np.inf                              # no element beats argmax's init
    host[-1, shape[1] // 2] = np.nan               # max/min/argmax see NaN first
    x = on(device, host)
    hi, lo = nl.argmax(x, axis=1), nl.min(x, axis=1)
    big = nl.any(x > 3, axis=1)
    low = nl.argmin(x, axis=1)
    centered = x - nl.min(x, axis=1, keepdims=True)
    per_row = nl.max(x, axis=1) - lo + nl.astype(big, "float32")    # a phase over rows only
    step(device, 1)
    with np.errstate(invalid="ignore"):
        assert_like_numpy(hi, np.argmax(host, axis=1))
        assert_like_numpy(lo, np.min(host, axis=1))
        assert_like_numpy(big, np.any(host > 3, axis=1))
        assert_like_numpy(low, np.argmin(host, axis=1))
        assert_like_numpy(centered, host - host.min(axis=1, keepdims=True))
        assert_like_numpy(per_row, host.max(1) - host.min(1) + (host > 3).any(1))


@pytest.mark.parametrize("shape", [(3, 5), (3, 70)], ids=str)
@pytest.mark.parametrize("dtype", ["bool", "int32", "uint8"])
def test_row_kernels_of_integers_and_bools(device, shape, dtype):
    host = np.random.default_rng(3).integers(0, 3, size=shape).astype(dtype)
    host[0] = 0                                    # all-False / all-zero row
    x = on(device, host)
    arg, total = nl.argmax(x, axis=1), nl.sum(x, axis=1, keepdims=True)
    alls, anys = nl.all(x, axis=1), nl.any(x, axis=1)
    share = nl.astype(x, "float64") / (nl.astype(total, "float64") + 1)
    step(device)
    assert_like_numpy(arg, np.argmax(host, axis=1))
    assert_like_numpy(total, np.sum(host, axis=1, keepdims=True))
    assert_like_numpy(alls, np.all(host, axis=1))
    assert_like_numpy(anys, np.any(host, axis=1))
    assert_like_numpy(share, host / (host.sum(1, keepdims=True) + 1.0))


@pytest.mark.parametrize("keepdims", [False, True])
def test_row_kernel_keepdims(device, keepdims):
    host = np.random.default_rng(4).random((5, 20))
    x = on(device, host)
    s = nl.sum(x, axis=1, keepdims=keepdims)
    m = nl.mean(x * x, axis=1, keepdims=keepdims)
    scaled = x / (nl.reshape(s, (5, 1)) if not keepdims else s)
    step(device)
    want_s = host.sum(1, keepdims=keepdims)
    assert_like_numpy(s, want_s, **reduction_tolerance("float64"))
    assert_like_numpy(m, (host * host).mean(1, keepdims=keepdims), **reduction_tolerance("float64"))
    assert_like_numpy(scaled, host / host.sum(1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("axes", [(1, 2), (2,)], ids=["outer1", "outer2"])
@pytest.mark.parametrize("shape", [(2, 3, 2), (2, 3, 20)], ids=str)
def test_row_kernels_of_rank_3(device, axes, shape):
    host = np.random.default_rng(5).normal(size=shape).astype("float32")
    x = on(device, host)
    e, out = softmax(x, axis=axes)
    z = (x - nl.mean(x, axis=axes, keepdims=True)) / nl.std(x, axis=axes, keepdims=True)
    arg = nl.argmax(x, axis=-1) if len(axes) == 1 else None
    del e
    step(device)
    assert_like_numpy(out, np_softmax(host, axis=axes)[1], rtol=2e-6)
    want_z = np_call(lambda h: (h - h.mean(axes, keepdims=True)) / h.std(axes, keepdims=True),
                     host)
    assert_like_numpy(z, want_z, rtol=1e-4, atol=1e-5)
    if arg is not None:
        assert_like_numpy(arg, np.argmax(host, axis=-1))


def test_rows_of_a_view(device):
    host = np.random.default_rng(6).normal(size=(20, 6)).astype("float32")
    x = nl.permute_dims(on(device, host), (1, 0))[::-1]            # (6, 20), read through a map
    _, out = softmax(x)
    step(device, 1)
    assert_like_numpy(out, np_softmax(host.T[::-1])[1], rtol=2e-6)


def test_argmax_of_rows_that_never_beat_the_init(device):
    """Not only row kernels: an axis reduction and a full reduction alone, too."""
    flags = np.zeros((3, 20), bool)
    lows = np.full((3, 20), -np.inf, "float32")
    highs = np.full((3, 20), np.iinfo(np.int32).max, "int32")
    for host in (flags, lows):
        assert_like_numpy(nl.argmax(on(device, host), axis=1), np.zeros(3, np.int64))
        assert_like_numpy(nl.argmax(on(device, host)), np.int64(0))
    assert_like_numpy(nl.argmin(on(device, highs), axis=1), np.zeros(3, np.int64))


def _barrier_parents(tree):
    """For each `cuda.syncthreads()` call in `tree`, the statements that enclose it."""
    found = []

    def visit(node, parents):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "cuda.syncthreads":
            found.append(parents)
        for child in ast.iter_child_nodes(node):
            visit(child, parents + [node] if isinstance(node, ast.stmt) else parents)
    visit(tree, [])
    return found


@pytest.mark.parametrize("simulator", [False, True])
def test_cuda_row_kernel_barriers_are_reached_by_every_thread(simulator):
    """In the generated `block` and `exact` kernels no barrier sits under a branch or a loop
    whose trip count differs between the threads of a block: only under the loop over the
    block's rows and the reduction tree's loop over halving strides. (On a GPU a barrier some
    threads skip is undefined behaviour; the simulator does not always notice.)"""
    render = pytest.importorskip("numlazy_cuda.render")
    from numlazy.codegen import RowParts
    from numlazy.fusion import RowKernel, partition
    from numlazy.ir import Graph

    m = nl.asarray(np.ones((2, 3, 4), "float32"), device="numpy")
    _, out = softmax(m)
    every = [nl.argmax(m, axis=-1), nl.any(m > 0, axis=-1), m - nl.min(m, axis=-1, keepdims=True),
             nl.max(m, axis=-1) - nl.min(m, axis=-1)]
    _, rank3 = softmax(m, axis=(1, 2))
    for arrays in ([out], every, [rank3]):
        graph = Graph([a._node for a in arrays])
        kernels = [k for k in partition(graph, lambda op: True, True).kernels
                   if isinstance(k, RowKernel)]
        assert kernels
        for kernel in kernels:
            source = render.render(RowParts(graph, kernel), simulator)
            blocks = [f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef)
                      and f.name in ("block", "exact")]
            assert len(blocks) == 2
            for block in blocks:
                barriers = _barrier_parents(block)
                assert len(barriers) >= len(kernel.phases)
                for parents in barriers:
                    for p in parents[1:]:
                        uniform = (isinstance(p, ast.For) and ast.unparse(p.target) == "g") or \
                            (isinstance(p, ast.While) and ast.unparse(p.test) == "s > 0")
                        assert uniform or isinstance(p, ast.Expr), ast.unparse(p)[:200]


def test_cpu_row_softmax_computes_each_exp_once():
    """The sum phase stores exp(x - max) in the output; the division reads it back."""
    from numlazy import fusion, ir
    from numlazy.registry import backend_for
    host = np.random.default_rng(8).normal(size=(3, 70))
    x = on("cpu", host)
    _, out = softmax(x)
    graph = ir.Graph([out._node])
    backend = backend_for(out.device)
    (kernel,) = fusion.partition(graph, backend.can_lower, backend.fuses_rows).kernels
    source = backend.kernel_source(kernel, graph)
    body = source[source.index("def serial"):]
    division = body[body.rindex("for i1 in"):]            # the last phase: reads, divides
    assert "exp" in body and "exp" not in division and "o9[i0, i1] = " in division
    step("cpu", 1)
    assert_like_numpy(out, np_softmax(host)[1], rtol=1e-13)
