"""nl.compile: trace once per signature, replay without tracing, refuse what cannot replay."""
import numpy as np
import pytest

import numlazy as nl
from numlazy import executor
from numlazy.executor import TraceError


def chain(a, b):
    return nl.sin(a) * b + 0.5 * b * b - a, nl.sum(a * b)


def np_chain(a, b):
    return np.sin(a) * b + 0.5 * b * b - a, np.sum(a * b)


def counts():
    m = nl.metrics
    return tuple(m.counter_value(n) or 0 for n in ("UncachedCompile", "CachedCompile",
                                                   "MarkStep"))


def test_replays_without_tracing_or_stepping():
    calls = []

    def fn(a, b):
        calls.append(1)
        return chain(a, b)
    f = nl.compile(fn)
    rng = np.random.default_rng(0)
    for i in range(4):
        ha, hb = rng.random(100), rng.random(100)
        y, s = f(nl.asarray(ha), nl.asarray(hb))
        if i == 0:
            after_first = counts()
        ry, rs = np_chain(ha, hb)
        assert y._node.realized and s._node.realized
        np.testing.assert_allclose(np.asarray(y), ry, rtol=1e-12)
        np.testing.assert_allclose(float(s), rs, rtol=1e-12)
    assert len(calls) == 1 and f.traces == 1 and f.__name__ == "fn"
    assert counts() == after_first                    # no lookups, compiles or steps
    assert len(executor.live_arrays()) == 0


def test_retraces_on_a_new_signature():
    f = nl.compile(chain)
    f(nl.asarray(np.ones(10)), nl.asarray(np.ones(10)))
    f(nl.asarray(np.ones(12)), nl.asarray(np.ones(12)))            # new shape
    f(nl.asarray(np.ones(10, np.float32)), nl.asarray(np.ones(10, np.float32)))  # new dtype
    f(nl.asarray(np.ones(10)), nl.asarray(np.ones(10)))
    assert f.traces == 3


def test_scalars_kwargs_trees_numpy_inputs_and_passthrough_outputs():
    @nl.compile
    def f(params, x, *, scale):
        w, b = params["w"], params["b"]
        return {"out": (w * x + b) * scale, "w": w, "tag": "done"}
    w, b = nl.asarray(np.arange(3.0)), nl.asarray(np.ones(3))
    r = f({"w": w, "b": b}, np.full(3, 2.0), scale=3.0)
    assert r["out"].tolist() == [3.0, 9.0, 15.0] and r["w"] is w and r["tag"] == "done"
    r = f({"w": w, "b": b}, np.full(3, 1.0), scale=3.0)
    assert r["out"].tolist() == [3.0, 6.0, 9.0] and f.traces == 1
    r = f({"w": w, "b": b}, np.full(3, 1.0), scale=1.0)          # scalars are static
    assert r["out"].tolist() == [1.0, 2.0, 3.0] and f.traces == 2


def test_pending_inputs_are_computed_first():
    f = nl.compile(lambda x: x * 2)
    a = nl.asarray(np.arange(3.0)) + 1
    assert f(a).tolist() == [2.0, 4.0, 6.0]


def test_numpy_device():
    f = nl.compile(chain)
    ha = np.linspace(0, 1, 7)
    for _ in range(2):
        y, s = f(nl.asarray(ha, device="numpy"), nl.asarray(ha, device="numpy"))
        np.testing.assert_allclose(np.asarray(y), np_chain(ha, ha)[0])
        assert str(y.device) == "numpy"
    assert f.traces == 1


@pytest.mark.parametrize("body, message", [
    (lambda x: x * 2 if float(nl.sum(x)) > 0 else x, "read the value"),
    (lambda x: x * 2 if nl.sum(x) > 0 else x, "read the value"),
    (lambda x: np.asarray(x) + 1, "read the value"),
    (lambda x: (nl.mark_step(), x)[1], "ran a step"),
])
def test_refuses_data_dependent_functions(body, message):
    before = len(executor.live_arrays())
    with pytest.raises(TraceError, match=message):
        nl.compile(body)(nl.asarray(np.ones(3)))
    assert len(executor.live_arrays()) == before
    assert float(nl.sum(nl.asarray(np.ones(3)))) == 3.0     # reads work again afterwards


def test_refuses_in_place_updates_of_inputs():
    def f(x):
        x += 1
        return x
    with pytest.raises(TraceError, match="in place"):
        nl.compile(f)(nl.asarray(np.ones(3)))


def test_refuses_a_trace_that_needs_a_fallback():
    nl.config.set("force_fallback", "exp")
    with pytest.raises(TraceError, match=r"op exp would run on the interpreter \(a fallback"):
        nl.compile(lambda x: nl.exp(x) + 1)(nl.asarray(np.ones(3)))


def test_refuses_bad_arguments():
    with pytest.raises(TypeError, match="expected a callable"):
        nl.compile(3)
    f = nl.compile(lambda x: x)
    with pytest.raises(TypeError, match="unsupported argument of type object"):
        f(object())
    with pytest.raises(TraceError, match="several devices"):
        nl.compile(lambda x, y: (x + 1, y + 1))(nl.asarray(np.ones(2)),
                                                nl.asarray(np.ones(2), device="numpy"))


def test_captured_arrays_are_constants():
    w = nl.asarray(np.full(3, 2.0))
    f = nl.compile(lambda x: x * w)
    assert f(nl.asarray(np.ones(3))).tolist() == [2.0, 2.0, 2.0]
    assert f(nl.asarray(np.full(3, 3.0))).tolist() == [6.0, 6.0, 6.0]


def test_a_code_flag_change_retraces_and_refuses_a_new_fallback():
    f = nl.compile(lambda x: nl.exp(x) + 1)
    assert f(nl.asarray(np.zeros(2))).tolist() == [2.0, 2.0]
    nl.config.set("force_fallback", "exp")          # replaying the old program would ignore it
    with pytest.raises(TraceError, match="op exp would run on the interpreter"):
        f(nl.asarray(np.zeros(2)))
    nl.config.set("force_fallback", "")
    assert f(nl.asarray(np.zeros(2))).tolist() == [2.0, 2.0] and f.traces == 1


def test_numpy_inputs_follow_the_default_device():
    f = nl.compile(lambda x: x * 2)
    assert str(f(np.ones(2)).device) == "cpu"
    with nl.default_device("numpy"):
        y = f(np.ones(2))
    assert str(y.device) == "numpy" and y.tolist() == [2.0, 2.0] and f.traces == 2


def test_traces_are_bounded():
    nl.config.set("compile_cache_size", 2)
    f = nl.compile(lambda x, k: x * k)
    for k in range(5):                               # scalars are static: a trace each
        assert f(nl.asarray(np.ones(2)), float(k)).tolist() == [float(k)] * 2
    assert len(f._replays) == 2 and f.traces == 5


def test_self_containing_arguments_raise():
    loop = [nl.ones(1)]
    loop.append(loop)
    with pytest.raises(ValueError, match="nested more than"):
        nl.compile(lambda xs: xs[0])(loop)


def test_a_step_on_another_thread_does_not_freeze_a_trace():
    import threading
    import time
    started, stepped = threading.Event(), threading.Event()
    warm = nl.asarray(np.ones(2)) * 2.0         # the other thread's step is a fast cache hit
    nl.mark_step()
    del warm

    def fn(x):
        y = x * 2.0
        started.set()
        time.sleep(0.3)                 # another thread tries to step meanwhile
        return y

    def other():
        started.wait(10)
        nl.mark_step()                  # would compute (and freeze) the trace's y
        stepped.set()
    t = threading.Thread(target=other)
    t.start()
    f = nl.compile(fn)
    assert f(nl.asarray(np.ones(2))).tolist() == [2.0, 2.0]
    t.join(10)
    assert stepped.is_set()
    assert f(nl.asarray(np.full(2, 5.0))).tolist() == [10.0, 10.0] and f.traces == 1
