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
    a = nl.asarray(np.random.rand(16), device=device)
    y = nl.sin(a) * 2 + a
    s = nl.sum(y)
    nl.mark_step()
    if device == "cpu":
        assert nl.metrics.counter_value("KernelLaunch") == 1
    np.testing.assert_allclose(float(s), np.sum(np.asarray(y)))
