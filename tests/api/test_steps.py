"""The step engine as a user meets it: laziness, mark_step, reads, the compile cache."""
import numpy as np
import pytest

import numlazy as nl
from numlazy import cache


def chain(a, b, c, k=0.5):
    return nl.sin(a) * b + k * c * c - a


def np_chain(a, b, c, k=0.5):
    return np.sin(a) * b + k * c * c - a


def test_nothing_runs_until_the_step():
    a = nl.asarray(np.ones(4))
    y = a * 2
    assert not y._node.realized and nl.metrics.counter_value("UncachedCompile") is None
    nl.mark_step()
    assert y._node.realized and nl.metrics.counter_value("MarkStep") == 1


@pytest.mark.parametrize("device", ["cpu", "numpy"])
def test_new_data_scalars_and_lengths_compile_once(device):
    rng = np.random.default_rng(1)
    for step, n in enumerate([1000, 1001, 40000, 7]):
        host = [rng.random(n) for _ in range(3)]
        a, b, c = (nl.asarray(h, device=device) for h in host)
        k = 0.5 + step
        y = chain(a, b, c, k)
        s = nl.sum(y, axis=0)
        nl.mark_step(device)
        ref = np_chain(*host, k)
        np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-12)
        np.testing.assert_allclose(float(s), ref.sum(), rtol=1e-9)
    assert nl.metrics.counter_value("UncachedCompile") == 1
    assert nl.metrics.counter_value("CachedCompile") == 3


def test_a_new_structure_compiles_and_switching_back_hits_the_cache():
    a = nl.asarray(np.arange(5.0))
    for expr in (lambda: a * 2 + 1, lambda: a * 2 - 1, lambda: a * 3 + 1):
        y = expr()  # noqa: F841 - kept alive: mark_step computes live arrays
        nl.mark_step()
    assert nl.metrics.counter_value("UncachedCompile") == 2
    assert nl.metrics.counter_value("CachedCompile") == 1


def test_reading_a_value_syncs_live_arrays_in_its_subgraph():
    a = nl.asarray(np.arange(4.0))
    t = a * 2
    y = t + 1
    unrelated = a - 5
    assert y.tolist() == [1.0, 3.0, 5.0, 7.0]
    assert t._node.realized and not unrelated._node.realized
    steps = nl.metrics.counter_value("CachedCompile") or 0
    assert t.tolist() == [0.0, 2.0, 4.0, 6.0]          # already computed: no new run
    assert (nl.metrics.counter_value("CachedCompile") or 0) == steps


def test_reads_float_item_bool_print():
    x = nl.sum(nl.asarray(np.arange(4.0)))
    assert float(x) == 6.0 and x.item() == 6.0 and bool(x) and int(x) == 6
    assert repr(x) == "Array(6., dtype=float64, device='cpu')" and str(nl.asarray(np.arange(2)) + 1) == "[1 2]"


def test_read_only_host_view_protects_computed_data():
    y = nl.asarray(np.arange(3.0)) * 2
    host = np.asarray(y)
    with pytest.raises(ValueError):
        host[0] = 5
    copy = np.array(y)
    copy[0] = 5
    assert y.tolist() == [0.0, 2.0, 4.0]


def test_asarray_copies_so_later_mutation_does_not_leak_into_the_step():
    src = np.arange(3.0)
    y = nl.asarray(src) + 1
    src[:] = 100
    assert y.tolist() == [1.0, 2.0, 3.0]
    shared = nl.asarray(src, copy=False)
    assert np.shares_memory(np.asarray(shared), src)


def test_step_context_manager():
    a = nl.asarray(np.ones(3))
    with nl.step():
        y = a + 1
    assert y._node.realized
    with pytest.raises(RuntimeError):
        with nl.step():
            z = a + 2
            raise RuntimeError("user error")
    nl.mark_step()
    assert not z._node.realized                 # dropped from the step...
    assert z.tolist() == [3.0, 3.0, 3.0]        # ...but still computable when read


def test_in_place_operators_rebind_the_array():
    x = nl.asarray(np.arange(3.0))
    x += 1
    x *= 2
    assert x.tolist() == [2.0, 4.0, 6.0]
    i = nl.asarray(np.arange(3))
    with pytest.raises(TypeError, match="in-place"):
        i /= 2


def test_common_subexpressions_are_one_node():
    a = nl.asarray(np.ones(3))
    assert nl.sin(a)._node is nl.sin(a)._node


def test_compile_cache_is_bounded():
    nl.config.set("compile_cache_size", 2)
    a = nl.asarray(np.ones(3))
    for op in (nl.sin, nl.cos, nl.tan, nl.exp):
        y = op(a)  # noqa: F841
        nl.mark_step()
    assert len(cache.programs) <= 2


def test_sync_computes_only_what_it_is_given():
    a = nl.asarray(np.ones(3))
    y, z = a + 1, a + 2
    nl.sync([y])
    assert y._node.realized and not z._node.realized


def test_computed_arrays_do_not_keep_their_graph_alive():
    import weakref
    a = nl.asarray(np.ones(3))
    t = a * 2
    ref = weakref.ref(t._node)
    y = t + 1
    del t
    nl.mark_step()
    assert ref() is None and y._node.srcs == ()
