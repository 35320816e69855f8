"""The CUDA backend's launches: the argument plan of the dispatch-free fast path (checked
without a GPU against Numba's own argument layout), and programs ordered on the current
stream (on a GPU or Numba's simulator)."""
import ctypes
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
    got = launch._marshal(_plan(args), args)
    # tuple items, then per array: meminfo, parent, size, itemsize, pointer, shape, strides
    values = [v.value if isinstance(v, ctypes._SimpleCData) else v for v in got]
    assert values == [3, 4,
                      0, 0, 12, 4, 0x2000, 3, 4, 16, 4,
                      0, 0, 12, 4, 0x3000, 3, 4, 16, 4,
                      0.5, 7]
    assert isinstance(got[-2], ctypes.c_float) and isinstance(got[-1], ctypes.c_int64)


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
