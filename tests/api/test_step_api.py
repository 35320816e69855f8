"""The step API beyond mark_step: wait_device_ops, sync_multi, get_tensor_id, to_cpu,
save/load."""
import collections
import io
import json
import threading
import time

import numpy as np
import pytest

import numlazy as nl
from numlazy import closures, executor


def test_mark_step_of_one_device_and_wait():
    a = nl.asarray(np.ones(3))
    b = nl.asarray(np.ones(3), device="numpy")
    y, z = a + 1, b + 1
    nl.mark_step("numpy", wait=True)
    assert z._node.realized and not y._node.realized
    nl.mark_step(wait=True)
    assert y._node.realized


def test_wait_device_ops_honours_the_list():
    gate, done = threading.Event(), []
    nl.add_step_closure(lambda: (gate.wait(10), done.append("cpu")), run_async=True)
    nl.mark_step()
    start = time.perf_counter()
    nl.wait_device_ops(["numpy"])                 # does not wait for cpu's closure
    assert time.perf_counter() - start < 2 and done == []
    gate.set()
    nl.wait_device_ops(["cpu"])
    assert done == ["cpu"]
    nl.wait_device_ops()
    nl.wait_device_ops("cpu")
    with pytest.raises(ValueError, match="unknown device type 'tpu'"):
        nl.wait_device_ops(["tpu"])


def test_sync_multi_computes_only_its_arrays():
    a = nl.asarray(np.ones(3))
    y, z = a + 1, a + 2
    nl.sync_multi([y], devices=["cpu"])
    assert y._node.realized and not z._node.realized
    with pytest.raises(ValueError, match="arrays on cpu are not on the listed devices"):
        nl.sync_multi([z], devices=["numpy"])
    with pytest.raises(TypeError, match="expected numlazy arrays, got ndarray"):
        nl.sync_multi([np.ones(2)])
    nl.sync_multi([z])
    assert z._node.realized


def test_get_tensor_id():
    a = nl.asarray(np.ones(2))
    b = a + 1
    assert nl.get_tensor_id(b) > nl.get_tensor_id(a) >= 0
    assert nl.get_tensor_id(a) == nl.get_tensor_id(a)
    for bad in (np.ones(2), 3, None):
        with pytest.raises(TypeError, match="expected a numlazy Array"):
            nl.get_tensor_id(bad)


Pair = collections.namedtuple("Pair", "left right")


def test_to_cpu_nested_in_one_step():
    a = nl.asarray(np.arange(3.0))
    tree = {"x": [a + 1, (a * 2, "label")], "p": Pair(nl.sum(a), 7), "n": None}
    host = nl.to_cpu(tree)
    assert isinstance(host["x"][0], np.ndarray) and host["x"][0].tolist() == [1.0, 2.0, 3.0]
    assert host["x"][1][1] == "label" and isinstance(host["x"][1], tuple)
    assert isinstance(host["p"], Pair) and host["p"].left == 3.0 and host["p"].right == 7
    assert host["n"] is None
    assert nl.metrics.counter_value("UncachedCompile") + \
        (nl.metrics.counter_value("CachedCompile") or 0) == 1
    host["x"][0][0] = 99.0                        # a copy: the array is untouched
    assert nl.to_cpu([a + 1])[0][0] == 1.0
    with pytest.raises(ValueError, match="not on the listed devices"):
        nl.to_cpu([a], devices=["numpy"])


@pytest.mark.parametrize("device", ["cpu", "numpy"])
def test_save_and_load_round_trip(tmp_path, device):
    arrays = {dt: nl.asarray(np.arange(6).astype(dt).reshape(2, 3), device=device)
              for dt in ("bool", "int8", "uint64", "float32", "float64")}
    tree = {"arrays": arrays, "scalar": nl.asarray(2.5, device=device) * 2,
            "meta": [1, 2.0, True, None, "s", (np.arange(2),)]}
    path = tmp_path / "checkpoint.bin"
    nl.save(tree, path)
    assert path.exists() and not (tmp_path / "checkpoint.bin.npz").exists()
    loaded = nl.load(path)
    for dt, a in arrays.items():
        b = loaded["arrays"][dt]
        assert isinstance(b, nl.Array) and b.dtype == a.dtype and str(b.device) == device
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    assert loaded["scalar"].shape == () and float(loaded["scalar"]) == 5.0
    assert loaded["meta"][:5] == [1, 2.0, True, None, "s"]
    assert isinstance(loaded["meta"][5], tuple) and loaded["meta"][5][0].tolist() == [0, 1]
    on_numpy = nl.load(str(path), device="numpy")
    assert str(on_numpy["arrays"]["int8"].device) == "numpy"


def test_save_to_a_file_object():
    buf = io.BytesIO()
    nl.save([nl.ones(2)], buf)
    buf.seek(0)
    assert nl.load(buf)[0].tolist() == [1.0, 1.0]


def test_save_rejects_what_it_cannot_describe(tmp_path):
    with pytest.raises(TypeError, match="cannot save a leaf of type object"):
        nl.save([object()], tmp_path / "x")
    with pytest.raises(TypeError, match="dict keys must be strings"):
        nl.save({1: nl.ones(1)}, tmp_path / "x")
    assert not list(tmp_path.iterdir())           # nothing half-written


def test_load_never_unpickles_and_rejects_foreign_files(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="is not a numlazy save file"):
        nl.load(garbage)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(2))
    with pytest.raises(ValueError, match="is not a numlazy save file"):
        nl.load(plain)
    pickled = tmp_path / "pickled.npz"
    tree = json.dumps({"format": "numlazy-save", "version": 1,
                       "tree": {"array": "a0", "device": "cpu"}}).encode()
    np.savez(pickled, a0=np.array([{"evil": 1}], dtype=object),
             __tree__=np.frombuffer(tree, np.uint8))
    with pytest.raises(ValueError, match="is not a numlazy save file.*pickle"):
        nl.load(pickled)
    with pytest.raises(FileNotFoundError):
        nl.load(tmp_path / "missing.npz")


def test_device_context_of_the_default_device():
    ctx = nl.get_device_context()
    assert ctx is closures.get_device_context("cpu") and str(ctx.device) == "cpu"
    with nl.default_device("numpy"):
        assert nl.get_device_context() is closures.get_device_context("numpy")


def test_step_api_is_exported():
    for name in ("mark_step", "step", "wait_device_ops", "sync_multi", "get_tensor_id",
                 "to_cpu", "save", "load", "add_step_closure", "run_step_closures",
                 "get_device_context", "compile", "debug", "metrics", "config", "ir_cache"):
        assert hasattr(nl, name), name
    assert executor.user_site()[0] == __file__


@pytest.mark.parametrize("device, error, message", [
    ("tpu", ValueError, "unknown device type 'tpu'; registered types: .*cpu.*numpy"),
    ("cpu:3", RuntimeError, "device cpu:3 is not available: index 3 is out of range"),
    (5, TypeError, "device must be a string"),
])
def test_step_calls_reject_unknown_devices(device, error, message):
    with pytest.raises(error, match=message):
        nl.mark_step(device)
    with pytest.raises(error, match=message):
        with nl.step(device):
            pass
    with pytest.raises(error, match=message):
        nl.wait_device_ops([device])
    with pytest.raises(error, match=message):
        nl.sync_multi([nl.ones(1)], devices=[device])
    with pytest.raises(error, match=message):
        nl.to_cpu([nl.ones(1)], devices=[device])


def test_mark_step_wait_flag():
    a = nl.asarray(np.ones(3))
    y = a + 1
    nl.mark_step(wait=False)            # CPU kernels run synchronously: results exist
    assert y._node.realized and y.tolist() == [2.0] * 3
    with pytest.raises(TypeError, match="wait must be True or False, got 'yes'"):
        nl.mark_step(wait="yes")
    nl.mark_step("", wait=True)
    nl.mark_step(None)


def test_wait_device_ops_arguments():
    nl.wait_device_ops([])                 # empty: every device, as in LTC
    nl.wait_device_ops(("cpu", nl.device("numpy")))
    nl.wait_device_ops("")                 # "" is the default device, as in mark_step
    with pytest.raises(TypeError, match="devices must be a device, a list of devices or None"):
        nl.wait_device_ops(3)


def test_an_empty_device_list_waits_for_every_device():
    gate, done = threading.Event(), []
    nl.add_step_closure(lambda: (gate.wait(10), done.append(1)), run_async=True)
    nl.mark_step()
    threading.Timer(0.2, gate.set).start()
    nl.wait_device_ops([])
    assert done == [1]


# Factories: an array made at collection time would stay pending for the whole session and
# be computed by every later test's step (it once made a kernel-count test fail).
@pytest.mark.parametrize("make", [lambda: nl.ones(3), lambda: 3, lambda: "abc"])
def test_sync_multi_wants_a_list(make):
    with pytest.raises(TypeError, match="expected a list or tuple of numlazy arrays"):
        nl.sync_multi(make(), devices=["cpu"])


def test_step_drops_the_blocks_pending_work_on_an_exception_only():
    a = nl.asarray(np.ones(3))
    before = a * 3                      # pending, recorded before the block
    with pytest.raises(ZeroDivisionError):
        with nl.step():
            inside = a * 4
            1 / 0
    assert not before._node.realized and not inside._node.realized   # no step ran
    nl.mark_step()
    assert before._node.realized and not inside._node.realized
    assert inside.tolist() == [4.0] * 3             # still correct when read
    with nl.step("numpy"):
        z = nl.asarray(np.ones(2), device="numpy") + 1
    assert z._node.realized


def test_failing_step_blocks_while_other_threads_record():
    stop, errors = threading.Event(), []
    a = nl.asarray(np.ones(2))

    def record():
        keep = []
        while not stop.is_set():
            keep.append(a + 1.0)
            if len(keep) > 200:
                keep.clear()
    t = threading.Thread(target=record)
    t.start()
    try:
        for _ in range(300):
            try:
                with nl.step():
                    _ = [a * 2.0 for _ in range(20)]
                    raise KeyError
            except KeyError:
                pass
            except RuntimeError as exc:          # "dictionary changed size during iteration"
                errors.append(exc)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[0]
