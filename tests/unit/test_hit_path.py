"""The cache-hit path: a cached step skips fusion and code generation, reads its arguments
from the program's plan, and still computes this step's data, scalars and sizes."""
import gc

import numpy as np
import pytest

import numlazy as nl
from numlazy import executor, fusion, ir


def _step(a, b, k):
    y = (nl.sin(a) * b + k) / (b + 1.0) - nl.exp(-a) * 0.5 + nl.abs(a - k)
    nl.mark_step()
    return y


def _reference(a, b, k):
    return (np.sin(a) * b + k) / (b + 1.0) - np.exp(-a) * 0.5 + np.abs(a - k)


def test_a_hit_does_not_partition_again(monkeypatch):
    a, b = nl.asarray(np.random.rand(50)), nl.asarray(np.random.rand(50))
    _step(a, b, 0.5)
    calls = []
    monkeypatch.setattr(fusion, "partition", lambda *args: calls.append(args))
    compiles = nl.metrics.counter_value("UncachedCompile") or 0
    _step(a, b, 1.5)
    assert calls == [] and (nl.metrics.counter_value("UncachedCompile") or 0) == compiles


@pytest.mark.parametrize("n", [7, 1000, 40000])      # serial and parallel variants
def test_a_hit_with_new_data_scalars_and_sizes_is_right(n):
    rng = np.random.default_rng(n)
    _step(nl.asarray(rng.random(3)), nl.asarray(rng.random(3)), 0.0)
    compiles = nl.metrics.counter_value("UncachedCompile") or 0
    for k in (0.25, -3.0, 7):
        a_h, b_h = rng.random(n), rng.random(n)
        y = _step(nl.asarray(a_h), nl.asarray(b_h), k)
        np.testing.assert_allclose(np.asarray(y), _reference(a_h, b_h, k), rtol=1e-12)
    assert (nl.metrics.counter_value("UncachedCompile") or 0) == compiles
    assert nl.metrics.counter_value("CachedCompile") >= 3


def test_the_plan_counts_launches_and_handles_rank_0_outputs():
    x = nl.asarray(np.arange(6.0).reshape(2, 3))
    for scale in (1.0, 2.0):
        s = nl.sum(x * scale)
        t = x * scale + 1
        nl.metrics.reset()
        nl.mark_step()
        assert float(s) == 15.0 * scale
        np.testing.assert_array_equal(np.asarray(t), np.arange(6.0).reshape(2, 3) * scale + 1)
        assert nl.metrics.counter_value("KernelLaunch") == 1


def test_the_fast_recording_path_matches_the_general_one():
    a = nl.asarray(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    i = nl.asarray(np.array([1, 2, 3], dtype=np.int8))
    # Python scalars stay weak; NumPy operands take the general path.
    assert (a + 1.0).dtype == np.float32 and (2 * a).dtype == np.float32
    assert (i + 1).dtype == np.int8 and (i + 1.5).dtype == np.float64
    assert (a + i).dtype == np.float32 and (i + True).dtype == np.int8
    with pytest.raises(OverflowError, match="out of bounds for int8"):
        i + 300
    with pytest.raises(OverflowError, match="out of bounds for int8"):
        300 - i
    np.testing.assert_allclose(np.asarray(1.0 - a), 1.0 - np.array([1, 2, 3], np.float32))
    np.testing.assert_allclose(np.asarray(nl.sqrt(a)), np.sqrt([1, 2, 3]).astype(np.float32),
                               rtol=1e-6)


def test_fast_broadcasting_and_keepdims_record_the_general_paths_graph():
    x = nl.asarray(np.arange(6.0).reshape(2, 3))
    col = nl.asarray(np.array([[1.0], [2.0]]))
    fast = x - nl.max(x, axis=1, keepdims=True)
    general = nl.subtract(nl.broadcast_to(x, (2, 3)),
                          nl.broadcast_to(nl.expand_dims(nl.max(x, axis=1), axis=1), (2, 3)))
    assert fast._node is general._node                      # hash-consed: the same node
    assert (x + col)._node is nl.add(x, nl.broadcast_to(col, (2, 3)))._node
    assert (col * x[0]).shape == (2, 3) and (x[0] * col).dtype == np.float64
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(2,\) cannot be broadcast"):
        x + nl.asarray(np.ones(2))
    np.testing.assert_array_equal(np.asarray(x[0] + col),
                                  np.arange(3.0) + np.array([[1.0], [2.0]]))


def test_hash_consing_still_shares_equal_nodes_and_sweeps_dead_ones(monkeypatch):
    a = nl.asarray(np.ones(4))
    assert (a * a)._node is (a * a)._node
    gc.collect()
    ir._sweep()                                       # what other tests left dead is gone
    monkeypatch.setattr(ir, "_sweep_at", 10**9)       # and no sweep until asked for below
    others = [nl.asarray(np.full(4, k)) for k in range(50)]
    start = len(ir._interned)
    a + 1.0                                           # over a new scalar: nothing to share
    assert len(ir._interned) == start
    kept = [a * b for b in others]                    # 50 live entries
    assert len(ir._interned) >= start + 50
    del kept
    gc.collect()                                      # now dead, still in the table
    monkeypatch.setattr(ir, "_sweep_at", len(ir._interned))
    a - others[0]                                     # one more entry: a sweep
    assert len(ir._interned) <= start + 2 and ir._sweep_at == ir._SWEEP_MIN


def test_dead_arrays_leave_the_live_registry_at_the_next_step():
    a = nl.asarray(np.ones(4))
    for _ in range(100):
        a + 1.0
    nl.mark_step()
    assert len(executor._live) < 10


def test_deep_graphs_walk_without_recursion_errors():
    a = nl.asarray(np.ones(2))
    x = a
    for _ in range(3000):
        x = nl.negative(x)
    g = ir.Graph([x._node])
    assert len(g) == 3001 and g.outputs == (3000,)
    shallow = a * 2 + a
    g1 = ir.Graph([shallow._node])
    g2 = ir.Graph.__new__(ir.Graph)
    g2._walk([shallow._node], g2._visit)
    assert g1.key == g2.key and g1.nodes == g2.nodes      # both walks: one order


def test_the_lru_answers_a_repeated_hit_without_losing_recency():
    from numlazy.cache import LRU
    evicted = []
    lru = LRU(lambda: 2, on_evict=lambda k, v: evicted.append(k))
    lru.put(("a",), 1)
    lru.put(("b",), 2)
    assert lru.get(("a",)) == 1 and lru.get(("a",)) == 1      # the second: the last hit
    assert lru.keys() == [("b",), ("a",)]
    lru.put(("c",), 3)
    assert evicted == [("b",)] and lru.get(("b",)) is None and lru.get(("a",)) == 1
    lru.clear()
    assert lru.get(("a",)) is None
