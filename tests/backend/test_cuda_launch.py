"""The CUDA backend's launches: the argument plan of the dispatch-free fast path (checked
without a GPU against Numba's own argument layout), and programs ordered on the current
stream (on a GPU or Numba's simulator)."""
import ctypes
import struct
from types import SimpleNamespace

import numpy as np
import pytest

import numlazy as nl

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
launch = pytest.importorskip("numlazy_cuda.launch")
types = pytest.importorskip("numba.cuda.types")


def _device_array(shape, dtype, ptr=0x1000, c_contiguous=True):
    """What the fast path reads of a Numba device array."""
    dtype = np.dtype(dtype)
    strides = tuple(np.empty(shape, dtype).strides)
    layout = SimpleNamespace(strides_in_bytes=strides, is_contiguous_c=c_contiguous)
    view = SimpleNamespace(ptr=ptr, shape=tuple(shape), dtype=dtype,
                           size=int(np.prod(shape)), _layout=layout)
    return SimpleNamespace(dtype=dtype, ndim=len(shape), _strided_memory_view_shim=view)


SIGNATURE = (types.UniTuple(types.int64, 2), types.Array(types.float32, 2, "C"),
             types.Array(types.float32, 2, "C"), types.float32, types.int64)


def _plan(args):
    return [launch._plan(t, a) for t, a in zip(SIGNATURE, args)]


def test_marshalled_arguments_follow_numbas_layout():
    out, x = _device_array((3, 4), "float32", 0x2000), _device_array((3, 4), "float32", 0x3000)
    args = ((3, 4), out, x, np.float32(0.5), 7)
    plan = _plan(args)
    # tuple items, then per array: meminfo, parent, size, itemsize, pointer, shape, strides
    assert launch._marshal(plan, args) == [3, 4,
                                           0, 0, 12, 4, 0x2000, 3, 4, 16, 4,
                                           0, 0, 12, 4, 0x3000, 3, 4, 16, 4,
                                           0.5, 7]
    assert launch._codes(plan) == "qq" + "QQqqQqqqq" * 2 + "fq"


def test_parameters_sit_in_8_byte_slots_in_their_c_types():
    """What cuLaunchKernel reads: parameter k's value at slot k of one buffer, in its C type,
    and slot k's address at entry k of the pointer array."""
    params = launch._Parameters("qfB?dI")
    values = [-3, 0.5, 255, True, 2.25, 7]
    params.pack(values)
    raw = params._buffer.raw
    got = [struct.unpack_from("=" + c, raw, 8 * k)[0] for k, c in enumerate("qfB?dI")]
    assert got == values
    base = ctypes.addressof(params._buffer)
    assert list(params._pointers) == [base + 8 * k for k in range(6)]


@pytest.mark.parametrize("code, value", [("i", 2 ** 40), ("B", -1), ("f", "x")])
def test_a_value_its_c_type_cannot_hold_goes_back_to_the_dispatcher(code, value):
    with pytest.raises(launch._Mismatch):
        launch._Parameters(code).pack([value])


@pytest.mark.parametrize("change", ["dtype", "rank", "layout", "scalar type", "tuple length"])
def test_an_argument_unlike_the_recorded_one_goes_back_to_the_dispatcher(change):
    args = [(3, 4), _device_array((3, 4), "float32"), _device_array((3, 4), "float32"),
            np.float32(0.5), 7]
    plan = _plan(args)
    if change == "dtype":
        args[2] = _device_array((3, 4), "float64")
    elif change == "rank":
        args[2] = _device_array((12,), "float32")
    elif change == "layout":
        args[2] = _device_array((3, 4), "float32", c_contiguous=False)
    elif change == "scalar type":
        args[3] = 0.5                     # a Python float where a float32 was recorded
    else:
        args[0] = (3, 4, 5)
    with pytest.raises(launch._Mismatch):
        launch._marshal(plan, args)


def test_non_c_layout_overloads_are_never_planned():
    with pytest.raises(launch._Mismatch):
        launch._plan(types.Array(types.float32, 1, "A"), _device_array((4,), "float32"))


def test_programs_run_on_the_current_stream(device):
    if not device.startswith("cuda"):
        pytest.skip("CUDA backend only")
    from numba import cuda
    backend = nl.registry.backend_for(nl.device(device))
    stream = cuda.stream()
    asked = []
    original = backend.current_stream

    def current_stream(index):
        asked.append(index)
        return stream
    backend.current_stream = current_stream
    try:
        x = nl.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3), device=device)
        y = nl.sin(x) * 2 + nl.sum(x, axis=1, keepdims=True)
        nl.mark_step(device)
        assert asked, "kernels must be launched on the backend's current stream"
        got = np.asarray(y)
    finally:
        del backend.current_stream
        assert backend.current_stream == original
    xh = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, np.sin(xh) * 2 + xh.sum(axis=1, keepdims=True), rtol=1e-6)


def test_a_cached_step_launches_without_the_dispatcher(device):
    """New data, new scalars, the same program: no launch goes through Numba's dispatcher
    (on a GPU; under the simulator every launch does), and the values are right."""
    if not device.startswith("cuda"):
        pytest.skip("CUDA backend only")
    simulated = nl.registry.backend_for(nl.device(device)).simulator
    for k in range(3):
        xh = np.arange(8.0, dtype=np.float32) + k
        x = nl.asarray(xh, device=device)
        y = nl.sum(x * np.float32(0.5 + k) + (k - 1))
        z = nl.where(x > 2 + k, x, -x)
        got = np.asarray(y), np.asarray(z)
        np.testing.assert_allclose(got[0], np.sum(xh * np.float32(0.5 + k) + (k - 1)),
                                   rtol=1e-6)
        np.testing.assert_array_equal(got[1], np.where(xh > 2 + k, xh, -xh))
        if k == 0:
            dispatched = nl.metrics.counter_value("cuda::dispatched_launch")
    if not simulated:
        assert nl.metrics.counter_value("cuda::dispatched_launch") == dispatched
