"""Indexing beyond basic views, on every device against NumPy: `take` (a fused gather that
reads its indices), integer-array and boolean-mask `__getitem__`, `searchsorted`, `unstack`,
`unique_all/counts/inverse`, DLPack and the CUDA array interface; bad input (the standard's
exception type, a message naming the argument), fallback counters and kernel counts.

Compile cost: each case records one small graph; sizes are runtime values.
"""
from __future__ import annotations

import numpy as np
import pytest

import numlazy as nl
from numlazy import fusion
from numlazy.ir import Graph

from .conftest import SIMULATED, assert_like_numpy, on

pytestmark = pytest.mark.filterwarnings("ignore::numlazy.executor.RecompileWarning")


def _arr(shape, dtype="float64"):
    return (np.arange(int(np.prod(shape))).reshape(shape) * 1.5 - 4).astype(dtype)


def _counter(name) -> int:
    return nl.metrics.counter_value(name) or 0


def _kernels(device, *arrays) -> int:
    backend = nl.registry.backend_for(nl.device(device))
    return len(fusion.partition(Graph([a._node for a in arrays]), backend.can_lower))


# --- take ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,indices,axis,dtype", [
    ((5,), [4, 0, 2, 2], None, "float64"),
    ((3, 4), [3, -1, 0], 1, "int32"),
    ((3, 4), [2, 0], 0, "bool"),
    ((2, 3, 2), [-3, 1], -2, "uint8"),
    ((3,), [], 0, "float32")], ids=str)
def test_take(device, shape, indices, axis, dtype):
    x, i = _arr(shape, dtype), np.array(indices, dtype=np.int64)
    assert_like_numpy(nl.take(on(device, x), on(device, i), axis=axis),
                      np.take(x, i, axis=axis))
    # pending x and pending int32 indices: both are computed first, then gathered
    assert_like_numpy(nl.take(on(device, x) * 2, on(device, i, "int32") + 0, axis=axis) + 1,
                      np.take(x * 2, i, axis=axis) + 1)


def test_take_clips_out_of_range_indices(device):
    """The standard leaves indices outside [-n, n) unspecified: numlazy clips them to the
    first or the last element, so a kernel never reads outside the array."""
    x = _arr((4,))
    got = nl.take(on(device, x), on(device, [7, -9, 4, -5, 3]))
    assert_like_numpy(got, x[[3, 0, 3, 0, 3]])


def test_take_is_one_fused_kernel_and_sizes_do_not_recompile(device):
    def step(n, k):
        x, i = _arr((2, n)), np.arange(k)[::-1] % n
        y = nl.take(on(device, x), on(device, i), axis=1) * 2 + 1
        return y, np.take(x, i, axis=1) * 2 + 1
    y, expected = step(4, 3)
    if device != "numpy":
        assert _kernels(device, y) == 1          # the gather, *2 and +1 in one loop
    assert_like_numpy(y, expected)
    before = _counter("UncachedCompile")
    y, expected = step(6, 5)
    assert_like_numpy(y, expected)
    assert _counter("UncachedCompile") == before
    assert not _counter("fallback::take")


def test_take_errors(device):
    x, i = on(device, _arr((3, 4))), on(device, [0, 1])
    with pytest.raises(TypeError, match="take: indices must be an array of an integer dtype, "
                                        "got float64"):
        nl.take(x, on(device, [0.0]), axis=0)
    with pytest.raises(ValueError, match=r"take: indices must be 1-D, got shape \(1, 2\)"):
        nl.take(x, on(device, [[0, 1]]), axis=0)
    with pytest.raises(ValueError, match="take: axis is required"):
        nl.take(x, i)
    with pytest.raises(np.exceptions.AxisError, match="take: axis 2"):
        nl.take(x, i, axis=2)
    with pytest.raises(IndexError, match="take: cannot take 2 element"):
        nl.take(on(device, np.zeros((3, 0))), i, axis=1)
    with pytest.raises(ValueError, match="take: x must be an array of at least one"):
        nl.take(on(device, 1.0), i)


# --- __getitem__ with arrays -------------------------------------------------------------------

_I2 = np.array([[1, 0], [1, 1]])
_GETITEM_KEYS = [(np.array([1, 0, 1]),), ([1, 0],), (slice(None), _I2), (1, slice(None), _I2),
                 (slice(None), 1, np.array([3, 0])), (Ellipsis, np.array([-1])),
                 (None, 0, np.array([2, 0])), (slice(None, None, -1), np.array([2]), 1)]


@pytest.mark.parametrize("key", _GETITEM_KEYS, ids=lambda k: repr(k).replace(" ", ""))
def test_getitem_integer_array(device, key):
    x = _arr((2, 3, 4))
    assert_like_numpy(on(device, x)[key], x[key])


def test_getitem_integer_array_is_fused(device):
    x, i = _arr((3, 4)), np.array([2, 0])
    y = (on(device, x)[on(device, i)] - 1) * 3
    if device != "numpy":
        assert _kernels(device, y) == 1
    assert_like_numpy(y, (x[i] - 1) * 3)


@pytest.mark.parametrize("mask_shape", [(2, 3, 4), (2, 3), (2,)], ids=str)
def test_getitem_boolean_mask(device, mask_shape):
    """The mask is read (its true count sets the shape), x stays lazy until the result is."""
    x = _arr((2, 3, 4))
    m = (np.arange(int(np.prod(mask_shape))).reshape(mask_shape) % 3) == 1
    before = _counter("fallback::boolean_index")
    a = on(device, x) * 2
    got = a[on(device, m.astype(np.int8)) == 1]
    assert _counter("fallback::boolean_index") == before + 1
    assert not a._node.realized                  # only the mask was computed
    assert_like_numpy(got, (x * 2)[m])
    assert_like_numpy(on(device, x)[m], x[m])    # a NumPy mask: nothing to read, not counted
    assert _counter("fallback::boolean_index") == before + 1


def test_getitem_array_errors(device):
    x = on(device, _arr((2, 3)))
    with pytest.raises(IndexError, match="only one array is supported in an index"):
        x[np.array([0]), np.array([1])]
    with pytest.raises(IndexError, match="integer or boolean dtype, got float64"):
        x[np.array([0.0])]
    with pytest.raises(IndexError, match="a boolean array must be the sole index"):
        x[np.array([True, False]), 0]
    with pytest.raises(IndexError, match=r"boolean index of shape \(3,\) does not match"):
        x[np.array([True, False, True])]
    with pytest.raises(IndexError, match="only integers, slices.*got float"):
        x[0.5]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 1, np.array([0])]
    # a NumPy index array or list is known when recorded: out of range raises, as in NumPy
    with pytest.raises(IndexError, match="index 2 is out of bounds for axis 0 with size 2"):
        x[[0, 2]]
    with pytest.raises(IndexError, match="index -4 is out of bounds for axis 1 with size 3"):
        x[:, np.array([-4])]
    other = "numpy" if device != "numpy" else "cpu"
    with pytest.raises(ValueError, match="getitem: arrays are on different devices"):
        x[on(other, np.array([0]))]


def test_getitem_empty_list_selects_nothing(device):
    x = _arr((2, 3))
    assert_like_numpy(on(device, x)[[]], x[[]])
    assert_like_numpy(on(device, x)[:, []], x[:, []])


# --- searchsorted, unstack, unique_* -----------------------------------------------------------

@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted(device, side):
    x1, x2 = np.array([1.0, 2.0, 2.0, 5.0]), np.array([[0.0, 2.0], [5.0, 9.0]])
    before = _counter("fallback::searchsorted")
    got = nl.searchsorted(on(device, x1), on(device, x2), side=side)
    assert_like_numpy(got, np.searchsorted(x1, x2, side=side))
    assert _counter("fallback::searchsorted") == before + (device != "numpy")  # interpreted
    # sorter: x1 read through a fused take; an int32 x1 searched with float values promotes
    unsorted, order = np.array([5, 1, 2, 2], "int32"), np.array([1, 2, 3, 0])
    got = nl.searchsorted(on(device, unsorted), on(device, [1.5, 5.0]), side=side,
                          sorter=on(device, order))
    assert_like_numpy(got, np.searchsorted(unsorted, [1.5, 5.0], side=side, sorter=order))


def test_searchsorted_errors(device):
    x1 = on(device, [1.0, 2.0])
    with pytest.raises(ValueError, match="searchsorted: side must be 'left' or 'right'"):
        nl.searchsorted(x1, x1, side="middle")
    with pytest.raises(ValueError, match="searchsorted: x1 must be a 1-D array"):
        nl.searchsorted(on(device, np.ones((2, 2))), x1)
    with pytest.raises(ValueError, match="searchsorted: sorter must have x1's shape"):
        nl.searchsorted(x1, x1, sorter=on(device, [0, 1, 2]))
    with pytest.raises(TypeError, match="searchsorted: sorter must have an integer dtype"):
        nl.searchsorted(x1, x1, sorter=on(device, [0.0, 1.0]))


def test_searchsorted_python_int_beyond_the_dtype(device):
    """NumPy compares a Python int int8 cannot hold as it is (1000 sorts after everything)."""
    x1 = np.array([1, 2, 3], np.int8)
    for v in (1000, -1000, 2):
        assert_like_numpy(nl.searchsorted(on(device, x1), v), np.searchsorted(x1, v))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unstack(device, axis):
    x = _arr((2, 3, 2))
    got = nl.unstack(on(device, x) + 1, axis=axis)
    expected = np.unstack(x + 1, axis=axis)
    assert isinstance(got, tuple) and len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_like_numpy(g, e)
    with pytest.raises(np.exceptions.AxisError, match="unstack: axis 3"):
        nl.unstack(on(device, x), axis=3)
    with pytest.raises(ValueError, match="unstack: x must have at least one dimension"):
        nl.unstack(on(device, 1.0))


def test_unique_all_counts_inverse(device):
    x = np.array([[3, 1, 3], [2, 1, 3]], "int32")
    a = on(device, x) + 0
    for name, fields in (("unique_all", ("values", "indices", "inverse_indices", "counts")),
                         ("unique_counts", ("values", "counts")),
                         ("unique_inverse", ("values", "inverse_indices"))):
        before = _counter(f"fallback::{name}")
        got = getattr(nl, name)(a)
        assert _counter(f"fallback::{name}") == before + 1
        expected = getattr(np, name)(x)
        assert got._fields == fields == expected._fields
        for field, g, e in zip(fields, got, expected):
            assert g.device == a.device, field
            assert_like_numpy(g, e if field == "values" else e.astype(np.int64), err=field)
    assert nl.unique_inverse(a).inverse_indices.shape == x.shape


# --- DLPack and the CUDA array interface ----------------------------------------------------

def test_dlpack(device):
    x = _arr((2, 3))
    a = on(device, x) * 2
    if device.startswith("cuda"):
        assert a.__dlpack_device__() == (2, 0)
        with pytest.raises(BufferError, match="__cuda_array_interface__"):
            a.__dlpack__()
        got = nl.from_dlpack(a, device="numpy")
    else:
        assert a.__dlpack_device__() == (1, 0)
        back = np.from_dlpack(a)                 # versioned: read-only, zero-copy
        assert not back.flags.writeable
        np.testing.assert_array_equal(back, x * 2)
        with pytest.raises(BufferError, match="copy=False"):
            a.__dlpack__(copy=False)             # the legacy format cannot mark read-only
        got = nl.from_dlpack(a)
    assert_like_numpy(got, x * 2)
    made = nl.from_dlpack(x, device=device)
    assert made.device == nl.device(device)
    assert_like_numpy(made, x)
    assert nl.from_dlpack(x).device == nl.device("cpu")     # the producer's device
    with pytest.raises(TypeError, match="from_dlpack: x must support the DLPack protocol"):
        nl.from_dlpack([1, 2])


def test_cuda_array_interface(device):
    a = on(device, _arr((2, 3))) + 1
    if not device.startswith("cuda"):
        assert not hasattr(a, "__cuda_array_interface__")
        return
    if SIMULATED:
        with pytest.raises(AttributeError, match="simulator"):
            a.__cuda_array_interface__
        return
    cai = a.__cuda_array_interface__
    assert cai["shape"] == (2, 3) and cai["typestr"] == "<f8" and cai["data"][0]
    assert a._node.realized
