"""Bad input raises where the user wrote it, names the problem, and records nothing."""
import numpy as np
import pytest

import numlazy as nl
from numlazy import executor


@pytest.fixture
def x():
    return nl.asarray(np.ones((2, 3)))


def pending_count():
    return len(executor.live_arrays())


def test_mismatched_shapes_name_both_shapes(x):
    before = pending_count()
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\)"):
        x + nl.asarray(np.ones(4))
    assert pending_count() == before


def test_unsupported_dtypes_list_the_supported_ones():
    with pytest.raises(TypeError, match="complex256.*supported dtypes: bool.*complex128"):
        nl.asarray(np.ones(2, np.clongdouble))
    with pytest.raises(TypeError, match="object arrays"):
        nl.asarray(np.array([object()]))
    with pytest.raises(TypeError, match="not supported"):
        nl.asarray(np.ones(2, np.float16))
    with pytest.raises(TypeError, match="is not a dtype"):
        nl.zeros(3, dtype="nonsense")


def test_ufunc_without_a_loop_for_the_dtype(x):
    with pytest.raises(TypeError, match=r"bitwise_and does not accept dtypes \(float64, float64\)"):
        x & x


def test_python_int_out_of_range_for_the_dtype():
    u8 = nl.asarray(np.ones(2, np.uint8))
    with pytest.raises(OverflowError, match="300 is out of bounds for uint8"):
        u8 + 300


def test_unknown_device_lists_registered_types():
    with pytest.raises(ValueError,
                       match="unknown device type 'tpu'; registered types: cpu, cuda, numpy"):
        nl.zeros(2, device="tpu")
    with pytest.raises(ValueError, match="index after ':'"):
        nl.device("cpu:x")


def test_device_index_out_of_range_names_the_count():
    with pytest.raises(RuntimeError, match=r"index 3 is out of range \(1 cpu device"):
        nl.zeros(2, device="cpu:3")


def test_mixing_devices_names_both(x):
    y = nl.asarray(np.ones((2, 3)), device="numpy")
    with pytest.raises(ValueError, match="different devices \\(cpu and numpy\\)"):
        x + y


@pytest.mark.parametrize("axis", [2, -3, (0, 0)])
def test_invalid_axis(x, axis):
    with pytest.raises((np.exceptions.AxisError, ValueError)):
        nl.sum(x, axis=axis)


def test_non_array_argument(x):
    with pytest.raises(TypeError, match="argument 2 must be a numlazy array.*got str"):
        nl.add(x, "3")
    with pytest.raises(TypeError, match="axis must be an int"):
        nl.sum(x, axis=1.5)


def test_bad_indices(x):
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 1 with size 3"):
        x[0, 5]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="only one array is supported in an index"):
        x[np.array([0, 1]), np.array([0, 1])]


def test_reshape_and_broadcast_errors(x):
    with pytest.raises(ValueError, match=r"size 6 \(shape \(2, 3\)\) into shape \(4,\)"):
        nl.reshape(x, (4,))
    with pytest.raises(ValueError, match=r"cannot broadcast shape \(2, 3\) to \(3, 3\)"):
        nl.broadcast_to(x, (3, 3))
    with pytest.raises(ValueError, match="not aligned"):
        x @ x


def test_empty_reduction_without_identity():
    with pytest.raises(ValueError, match="max has no identity"):
        nl.max(nl.asarray(np.ones((0, 3))), axis=0)
    assert nl.sum(nl.asarray(np.ones((0, 3))), axis=0).tolist() == [0.0, 0.0, 0.0]
