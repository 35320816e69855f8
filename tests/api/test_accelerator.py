"""nl.accelerator without a usable GPU (API.md section 5): torch.accelerator's answers (0,
False, None, empty statistics), clear errors from calls that need a device, and the
device-index rules checked against a stand-in accelerator backend. The CUDA simulator runs
are in tests/backend/test_accelerator_cuda.py."""
import numpy as np
import pytest

import numlazy as nl
from numlazy import accelerator as acc
from numlazy.registry import Backend

no_device = pytest.mark.skipif(nl.accelerator.is_available(),
                               reason="an accelerator is available here")


@no_device
def test_queries_answer_like_torch_without_a_device():
    assert acc.device_count() == 0
    assert acc.is_available() is False
    assert acc.current_accelerator(check_available=True) is None
    kind = acc.current_accelerator()          # the installed accelerator backend, if any
    assert kind is None or (kind.type == "cuda" and kind.index is None)
    assert acc.memory_stats() == {} and acc.memory.memory_stats() == {}
    for fn in (acc.memory_allocated, acc.max_memory_allocated, acc.memory_reserved,
               acc.max_memory_reserved):
        assert fn() == 0
    acc.empty_cache()                          # nothing to do, no error
    acc.reset_peak_memory_stats()
    acc.reset_accumulated_memory_stats()
    with acc.device_index(None):               # None switches nothing
        pass


@no_device
@pytest.mark.parametrize("call", [
    acc.current_device_index, lambda: acc.set_device_index(0), acc.synchronize,
    acc.get_memory_info, acc.current_stream, lambda: acc.set_stream(None),
    lambda: acc.device_index(0).__enter__(),
])
def test_calls_that_need_a_device_raise_clearly(call):
    with pytest.raises(RuntimeError, match="numlazy"):
        call()


@no_device
def test_a_device_of_another_type_is_a_value_error_even_without_a_device():
    if acc.current_accelerator() is None:
        pytest.skip("no accelerator backend installed")
    with pytest.raises(ValueError, match="'cpu' is not a device of the accelerator"):
        acc.memory_stats("cpu")


class FakeAccelerator(Backend):
    """A stand-in accelerator with two devices: records what nl.accelerator asks of it."""
    name = "fakeacc"
    is_accelerator = True

    def __init__(self):
        self.current, self.synced, self.streams = 0, [], {}

    def device_count(self):
        return 2

    def current_device(self):
        return self.current

    def set_device(self, index):
        self.current = index

    def current_stream(self, index):
        return self.streams.get(index, f"default-{index}")

    def set_stream(self, stream, index):
        self.streams[index] = stream

    def synchronize(self, index):
        self.synced.append(index)

    def memory_info(self, index):
        return (100 + index, 200)

    def memory_stats(self, index):
        return {"reserved_bytes.all.current": 30 + index, "allocated_bytes.all.current": 10,
                "allocated_bytes.all.peak": 20, "reserved_bytes.all.peak": 40}


@pytest.fixture
def fake(monkeypatch):
    backend = FakeAccelerator()
    nl.register_backend("fakeacc", lambda: backend)
    monkeypatch.setattr(acc, "_accelerator_type", lambda: "fakeacc")
    yield backend
    from numlazy import registry
    with registry._lock:
        registry._factories.pop("fakeacc", None)
        registry._instances.pop("fakeacc", None)


def test_device_index_rules(fake):
    assert acc.device_count() == 2 and acc.is_available()
    assert acc.current_accelerator(check_available=True).type == "fakeacc"
    acc.set_device_index(1)
    assert acc.current_device_index() == 1
    acc.set_device_index("fakeacc:0")
    acc.set_device_index(nl.device("fakeacc:1"))
    assert fake.current == 1
    with pytest.raises(ValueError, match="'cpu' is not a device of the current accelerator"):
        acc.set_device_index("cpu")
    with pytest.raises(ValueError, match="'fakeacc' has no index"):
        acc.set_device_index("fakeacc")
    with pytest.raises(ValueError, match="a device index is required"):
        acc.set_device_index(None)
    with pytest.raises(ValueError, match=">= 0"):
        acc.set_device_index(-1)
    with pytest.raises(RuntimeError, match=r"index 2 is out of range \(2 fakeacc device"):
        acc.set_device_index(2)
    with pytest.raises(TypeError, match="expected an int index"):
        acc.set_device_index(1.0)
    assert fake.current == 1


def test_device_index_context_restores_also_on_exceptions(fake):
    with acc.device_index(0):
        assert acc.current_device_index() == 0
        with acc.device_index(None):
            assert acc.current_device_index() == 0
    assert acc.current_device_index() == 0
    acc.set_device_index(1)
    with pytest.raises(KeyError):
        with acc.device_index("fakeacc:0"):
            assert acc.current_device_index() == 0
            raise KeyError
    assert acc.current_device_index() == 1


def test_streams_synchronize_and_memory_go_to_the_current_or_given_device(fake):
    acc.set_device_index(1)
    assert acc.current_stream() == "default-1" and acc.current_stream(0) == "default-0"
    acc.set_stream("s1")
    assert acc.current_stream() == "s1" and acc.current_stream("fakeacc:1") == "s1"
    acc.synchronize()
    acc.synchronize(0)
    assert fake.synced == [1, 0]
    assert acc.get_memory_info() == (101, 200) and acc.get_memory_info(0) == (100, 200)
    assert acc.memory_reserved() == 31 and acc.memory_reserved(0) == 30
    assert acc.memory_allocated() == 10 and acc.max_memory_allocated() == 20
    assert acc.max_memory_reserved() == 40
    stats = acc.memory_stats()
    assert list(stats) == sorted(stats)
    with pytest.raises(ValueError, match="not a device of the current accelerator"):
        acc.memory_stats("numpy:0")


def test_host_backends_keep_the_defaults():
    cpu = nl.registry.backend_for(nl.device("cpu"))
    assert not cpu.is_accelerator and cpu.memory_stats(0) == {}
    assert cpu.current_stream(0) is None
    with pytest.raises(NotImplementedError, match="no streams"):
        cpu.set_stream(object(), 0)
    assert np.asarray(nl.asarray([1.0]) + 1).tolist() == [2.0]
