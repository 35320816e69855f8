"""Fusion decisions, asserted as kernel counts (the machinery, not only the values)."""
import numpy as np
import pytest

import numlazy as nl
from numlazy import fusion
from numlazy.ir import Graph


def schedule(*arrays, can_lower=lambda op: True):
    return fusion.partition(Graph([a._node for a in arrays]), can_lower)


def vectors(n=8, count=3, dtype=np.float64):
    rng = np.random.default_rng(0)
    return [nl.asarray(rng.random(n).astype(dtype)) for _ in range(count)]


def test_elementwise_chain_is_one_kernel():
    a, b, c = vectors()
    y = nl.sin(a) * b + 0.5 * c * c - a
    assert len(schedule(y)) == 1


def test_chain_and_its_sum_share_one_pass():
    a, b, c = vectors()
    y = nl.sin(a) * b + 0.5 * c * c - a
    s = nl.sum(y, axis=0)
    sched = schedule(y, s)
    assert len(sched) == 1
    (k,) = sched.kernels
    assert k.reduce is not None and len(k.stores) == 1


def test_row_softmax_is_at_most_three_kernels():
    x = nl.asarray(np.random.rand(4, 5))
    e = nl.exp(x - nl.max(x, axis=1, keepdims=True))
    out = e / nl.sum(e, axis=1, keepdims=True)
    assert len(schedule(out)) <= 3
    assert len(schedule(out, e)) <= 3          # e kept alive: stored by the sum's pass


def test_outputs_of_one_shape_share_a_kernel():
    a, b, _ = vectors()
    assert len(schedule(a + b, a * b, nl.exp(a))) == 1


def test_view_of_pending_value_is_an_index_map_not_a_kernel():
    x = nl.asarray(np.random.rand(4, 6))
    y = (x * 2).T[::-1, 1:3] + 1
    assert len(schedule(y)) == 1


def test_reading_own_output_at_another_index_splits_kernels():
    x = nl.asarray(np.random.rand(4, 4))
    y = x * 2
    z = y.T + 1                                  # z needs y at transposed positions
    sched = schedule(y, z)
    # Legal either way; what must never happen is a kernel reading a buffer it writes.
    for k in sched.kernels:
        assert not set(k.reads) & set(k.outputs)


def test_dependent_reduction_is_not_fused_into_a_cycle():
    a, _, _ = vectors()
    e = a - nl.mean(a)
    s = nl.sum(e * nl.max(e))
    sched = schedule(e, s)
    order = [p for k in sched.kernels for p in k.outputs]
    assert len(order) == len(set(order))
    assert len(sched) == 3


def test_matmul_is_a_host_kernel_reading_views_without_copies():
    x = nl.asarray(np.random.rand(3, 4))
    sched = schedule(x.T @ x)
    (k,) = sched.kernels
    assert isinstance(k, fusion.HostKernel) and not k.fallback


def test_op_a_backend_cannot_lower_goes_to_the_interpreter():
    a, b, _ = vectors()
    sched = schedule(nl.hypot(a, b) + 1, can_lower=lambda op: op != "hypot")
    kinds = [type(k).__name__ for k in sched.kernels]
    assert kinds == ["HostKernel", "LoopKernel"] and sched.kernels[0].fallback


@pytest.mark.parametrize("device", ["cpu", "numpy"])
def test_kernel_launches_are_counted(device):
    nl.mark_step()                   # arrays other tests left pending are not counted here
    nl.metrics.reset()
    a = nl.asarray(np.random.rand(16), device=device)
    y = nl.sin(a) * 2 + a
    s = nl.sum(y)
    nl.mark_step()
    if device == "cpu":
        assert nl.metrics.counter_value("KernelLaunch") == 1
    np.testing.assert_allclose(float(s), np.sum(np.asarray(y)))


def row_schedule(*arrays):
    return fusion.partition(Graph([a._node for a in arrays]), lambda op: True, rows=True)


def softmax_parts(x):
    e = nl.exp(x - nl.max(x, axis=1, keepdims=True))
    return e, e / nl.sum(e, axis=1, keepdims=True)


def test_row_softmax_is_one_row_kernel_with_three_phases():
    x = nl.asarray(np.random.rand(4, 5))
    e, out = softmax_parts(x)
    for outputs in ((out,), (out, e)):
        (k,) = row_schedule(*outputs).kernels
        assert isinstance(k, fusion.RowKernel) and len(k.phases) == 3 and k.outer == 1


def test_rows_do_not_fuse_when_a_phase_reads_another_row():
    x = nl.asarray(np.random.rand(4, 5))
    m = nl.flip(nl.max(x, axis=1), axis=0)          # row i needs the max of row 3 - i
    y = x - nl.expand_dims(m, axis=1)
    sched = row_schedule(y)
    assert len(sched) == 2
    np.testing.assert_allclose(np.asarray(y), np.asarray(x) - np.asarray(x).max(1)[::-1, None])


def test_reductions_over_leading_axes_do_not_form_rows():
    x = nl.asarray(np.random.rand(4, 5))
    y = x - nl.mean(x, axis=0)
    assert not any(isinstance(k, fusion.RowKernel) for k in row_schedule(y).kernels)


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4)])
def test_row_kernels_compute_the_right_values(shape):
    host = np.random.default_rng(2).random(shape)
    x = nl.asarray(host)
    e, out = softmax_parts(x)
    z = (x - nl.mean(x, axis=-1, keepdims=True)) / nl.std(x, axis=-1, keepdims=True)
    nl.mark_step()
    ex = np.exp(host - host.max(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(e), ex)
    np.testing.assert_allclose(np.asarray(out), ex / ex.sum(1, keepdims=True))
    ref = (host - host.mean(-1, keepdims=True)) / host.std(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(z), ref, rtol=1e-12)


def test_matrix_vector_products_fuse_with_their_consumers():
    rng = np.random.default_rng(3)
    X_h, w_h, y_h = rng.normal(size=(40, 6)), rng.normal(size=6), rng.random(40)
    X, w, y = nl.asarray(X_h), nl.asarray(w_h), nl.asarray(y_h)
    r = 1.0 / (1.0 + nl.exp(-(X @ w))) - y
    grad = X.T @ r
    sched = row_schedule(grad, r)
    assert len(sched) == 2          # a row pass (X @ w, sigmoid) and a column pass (X.T @ r)
    assert not any(isinstance(k, fusion.HostKernel) for k in sched.kernels)
    r_h = 1.0 / (1.0 + np.exp(-(X_h @ w_h))) - y_h
    np.testing.assert_allclose(np.asarray(grad), X_h.T @ r_h, rtol=1e-12)


def test_values_constant_along_inner_loops_are_hoisted():
    from numlazy.codegen import KernelParts
    x = nl.asarray(np.random.rand(4, 5))
    v = nl.asarray(np.random.rand(4))
    y = x * nl.expand_dims(nl.exp(v), axis=1)
    (k,) = schedule(y).kernels
    parts = KernelParts(Graph([y._node]), k)
    exp_line = [d for line, d in zip(parts.lines, parts.line_dims) if "exp(" in line]
    assert exp_line == [frozenset({0})]             # depends on the row only
