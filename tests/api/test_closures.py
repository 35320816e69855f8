"""Step closures: order, timing, exception semantics ("never lost", "never deadlocks"),
threads."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import numlazy as nl
from numlazy import closures
from numlazy.closures import AsyncClosureError


@pytest.fixture(autouse=True)
def drained():
    """No closure or error of one test leaks into the next."""
    yield
    for ctx in closures.all_contexts():
        ctx._closures.clear()
        try:
            ctx.worker.wait()
        except AsyncClosureError:
            pass


def finishes(fn, seconds=10.0):
    """Run fn on a thread; True if it returned (or raised) within `seconds`."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            result["error"] = exc
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive(), result


def test_sync_closures_run_in_order_after_the_step_with_computed_arguments():
    a = nl.asarray(np.arange(4.0))
    loss = nl.sum(a * 2)
    seen = []
    nl.add_step_closure(lambda x: seen.append(("first", x._node.realized, float(x))), (loss,))
    nl.add_step_closure(lambda: seen.append(("second",)))
    assert seen == []
    nl.mark_step()
    assert seen == [("first", True, 12.0), ("second",)]
    assert nl.metrics.counter_value("MarkStep") == 1
    assert (nl.metrics.counter_value("UncachedCompile") or 0) + \
        (nl.metrics.counter_value("CachedCompile") or 0) == 1     # the read ran no step
    nl.mark_step()
    assert len(seen) == 2                                        # a closure runs once


def test_closure_arguments_are_computed_even_outside_the_live_registry():
    a = nl.asarray(np.arange(3.0))
    with pytest.raises(KeyError):
        with nl.step():
            y = a + 1                     # dropped from the registry by the failed step
            raise KeyError
    got = []
    nl.add_step_closure(lambda ys: got.append(ys[0]._node.realized), ([y],))
    nl.mark_step()
    assert got == [True]


def test_a_failing_sync_closure_propagates_and_the_rest_are_not_lost():
    ran = []
    nl.add_step_closure(lambda: ran.append(1))
    nl.add_step_closure(lambda: 1 / 0)
    nl.add_step_closure(lambda: ran.append(3))
    with pytest.raises(ZeroDivisionError):
        nl.mark_step()
    assert ran == [1]
    nl.mark_step()
    assert ran == [1, 3]


def test_run_step_closures_without_a_step():
    ran = []
    nl.add_step_closure(ran.append, ("x",))
    nl.run_step_closures()
    assert ran == ["x"] and nl.metrics.counter_value("MarkStep") is None


def test_add_step_closure_checks_its_argument():
    with pytest.raises(TypeError, match="must be callable"):
        nl.add_step_closure(42)


def test_async_closures_run_in_order_on_a_worker_thread():
    names, order = set(), []
    for i in range(20):
        nl.add_step_closure(lambda i=i: (order.append(i),
                                         names.add(threading.current_thread().name)),
                            run_async=True)
    nl.mark_step()
    nl.wait_device_ops()
    assert order == list(range(20))
    assert names == {"numlazy-closures-cpu"}


def fail(message="boom"):
    raise ValueError(message)


@pytest.mark.parametrize("boundary", ["mark_step", "wait_device_ops", "add_step_closure"])
def test_an_async_error_is_reraised_once_at_the_next_boundary(boundary):
    nl.add_step_closure(fail, run_async=True)
    nl.mark_step()
    closures.get_device_context().worker._unfinished and time.sleep(0.2)
    deadline = time.time() + 5
    while not closures.get_device_context().worker.has_error and time.time() < deadline:
        time.sleep(0.01)
    call = {"mark_step": nl.mark_step, "wait_device_ops": nl.wait_device_ops,
            "add_step_closure": lambda: nl.add_step_closure(print)}[boundary]
    with pytest.raises(AsyncClosureError, match="raised ValueError") as info:
        call()
    assert isinstance(info.value.__cause__, ValueError)
    call()                                            # reported once, not again
    nl.wait_device_ops()


def test_several_async_errors_are_counted_not_dropped():
    for i in range(3):
        nl.add_step_closure(fail, (f"e{i}",), run_async=True)
    nl.run_step_closures()
    with pytest.raises(AsyncClosureError, match=r"e0.*2 later closure\(s\) also failed"):
        nl.wait_device_ops(["cpu"])


def test_a_full_queue_behind_failing_closures_never_deadlocks():
    nl.config.set("max_async_queue", 2)

    def storm():
        for _ in range(50):
            nl.add_step_closure(fail, run_async=True)
            nl.mark_step()
    done, result = finishes(storm)
    assert done, "submission deadlocked"
    assert isinstance(result.get("error"), AsyncClosureError)
    done, _ = finishes(lambda: nl.wait_device_ops(["cpu"]))
    assert done


def test_a_dead_worker_is_replaced_not_waited_on():
    nl.config.set("max_async_queue", 2)
    worker = closures.get_device_context().worker
    ran = []
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    with worker._cond:                     # a full queue whose worker has died
        worker._thread = dead
        for i in range(2):
            worker._queue.append((ran.append, (i,)))
            worker._unfinished += 1
    done, result = finishes(lambda: worker.submit(ran.append, (2,)))
    assert done and "error" not in result
    worker.wait()
    assert ran == [0, 1, 2]


def test_a_full_queue_applies_back_pressure():
    nl.config.set("max_async_queue", 1)
    gate = threading.Event()
    nl.add_step_closure(gate.wait, (10,), run_async=True)
    nl.add_step_closure(lambda: None, run_async=True)
    nl.add_step_closure(lambda: None, run_async=True)
    threading.Timer(0.3, gate.set).start()
    start = time.perf_counter()
    nl.mark_step()                        # waits for room, then returns
    assert 0.2 < time.perf_counter() - start < 10
    nl.wait_device_ops()


def test_the_worker_never_keeps_python_from_exiting():
    code = ("import time, numlazy as nl\n"
            "nl.add_step_closure(time.sleep, (60,), run_async=True)\n"
            "nl.mark_step()\nprint('exiting')\n")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ))
    assert result.stdout.strip() == "exiting" and time.perf_counter() - start < 30


def test_idle_workers_stop(monkeypatch):
    monkeypatch.setattr(closures, "IDLE_SECONDS", 0.05)
    nl.add_step_closure(lambda: None, run_async=True)
    nl.mark_step()
    nl.wait_device_ops()
    deadline = time.time() + 5
    while closures.get_device_context().worker._thread is not None and time.time() < deadline:
        time.sleep(0.01)
    assert closures.get_device_context().worker._thread is None


def test_get_device_context_is_one_object_per_device_across_threads():
    barrier = threading.Barrier(16)
    found = []

    def get():
        barrier.wait()
        found.append(nl.get_device_context("numpy"))
    threads = [threading.Thread(target=get) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in found}) == 1
    assert found[0] is nl.get_device_context(nl.device("numpy"))
    assert nl.get_device_context() is nl.get_device_context("cpu") is not found[0]
    assert "DeviceContext('numpy'" in repr(found[0])


def test_recording_and_stepping_from_several_threads():
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            for _ in range(15):
                host = rng.random(64)
                a = nl.asarray(host)
                y = nl.exp(a) * 2.0 - a
                s = nl.sum(y)
                got = []
                nl.add_step_closure(lambda s=s: got.append(float(s)))
                nl.mark_step()
                np.testing.assert_allclose(np.asarray(y), np.exp(host) * 2 - host)
                np.testing.assert_allclose(float(s), (np.exp(host) * 2 - host).sum())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]


def test_closures_added_by_a_closure_run_at_the_next_step():
    order = []

    def outer():
        order.append("outer")
        nl.add_step_closure(order.append, ("inner",))
    nl.add_step_closure(outer)
    nl.add_step_closure(order.append, ("second",))
    nl.mark_step()
    assert order == ["outer", "second"]
    nl.mark_step()
    assert order == ["outer", "second", "inner"]


def test_a_failing_sync_closure_keeps_the_step_and_queued_async_closures():
    ran = []
    nl.add_step_closure(ran.append, (1,))
    nl.add_step_closure(fail)
    nl.add_step_closure(ran.append, (3,), run_async=True)
    y = nl.asarray(np.ones(2)) * 5
    with pytest.raises(ValueError, match="boom"):
        nl.mark_step()
    assert y._node.realized and ran == [1]        # the step's results exist
    nl.mark_step()
    nl.wait_device_ops()
    assert ran == [1, 3]


@pytest.mark.parametrize("args", [np.ones(2), "text", 3])
def test_args_must_be_a_tuple_or_list(args):
    with pytest.raises(TypeError, match=r"args must be a tuple or list .* args=\(x,\)"):
        nl.add_step_closure(print, args=args)
    with pytest.raises(TypeError, match=r"args must be a tuple or list .* got Array"):
        nl.add_step_closure(print, args=nl.asarray(np.ones(2)))


def test_run_async_must_be_a_bool():
    with pytest.raises(TypeError, match="run_async must be True or False, got 'no'"):
        nl.add_step_closure(print, run_async="no")


def test_an_async_closure_waiting_for_its_own_worker_raises_instead_of_deadlocking():
    nl.add_step_closure(nl.wait_device_ops, run_async=True)
    nl.mark_step()
    done, result = finishes(nl.wait_device_ops)
    assert done, "wait_device_ops deadlocked"
    error = result.get("error")
    assert isinstance(error, AsyncClosureError)
    assert "its own among them" in str(error.__cause__)


def test_an_async_closure_may_add_closures_and_step_with_a_full_queue():
    nl.config.set("max_async_queue", 1)
    ran = []

    def producer():
        for i in range(3):                       # more than the queue holds
            nl.add_step_closure(ran.append, (i,), run_async=True)
            nl.mark_step()
    nl.add_step_closure(producer, run_async=True)
    nl.mark_step()
    done, result = finishes(nl.wait_device_ops)
    assert done and "error" not in result, result
    nl.wait_device_ops()
    assert sorted(ran) == [0, 1, 2]


def test_get_device_context_rejects_unknown_devices():
    with pytest.raises(ValueError, match="unknown device type 'tpu'; registered types"):
        nl.get_device_context("tpu")
    with pytest.raises(TypeError, match="device must be a string"):
        nl.get_device_context(3)
    assert all(str(c.device) != "tpu" for c in closures.all_contexts())   # none was made


def test_what_exit_would_lose_is_reported_on_stderr():
    # `bad` raises only after the sync closure is added (else that submission re-raises it)
    code = ("import time, numlazy as nl\n"
            "def bad(): time.sleep(0.2); raise ValueError('late failure')\n"
            "nl.add_step_closure(bad, run_async=True)\n"
            "nl.add_step_closure(time.sleep, (60,), run_async=True)\n"
            "nl.mark_step()\n"
            "nl.add_step_closure(print, ('never',))\n"
            "time.sleep(0.5)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ))
    err = result.stderr
    assert "1 step closure(s) on cpu never ran" in err
    assert "1 asynchronous step closure(s) on cpu had not finished at exit" in err
    assert "ValueError: late failure" in err and "never" not in result.stdout
