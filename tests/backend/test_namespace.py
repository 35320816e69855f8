"""Array API functions beyond the op table's one-to-one entries, on every device against NumPy:
manipulation (concat, stack, roll, tile, repeat, moveaxis, broadcast_arrays, meshgrid, tril,
triu, matrix_transpose), linear algebra (vecdot, tensordot), cumulative_sum, sort/argsort,
nonzero, unique_values and the dtype functions; plus bad input (the standard's exception
type, a message naming the argument).

Compile cost: each test records one small graph per case; sizes are runtime values.
"""
from __future__ import annotations

import numpy as np
import pytest

import numlazy as nl

from .conftest import assert_like_numpy, on

pytestmark = pytest.mark.filterwarnings("ignore::numlazy.executor.RecompileWarning")


def _arr(shape, dtype="float64"):
    return (np.arange(int(np.prod(shape))).reshape(shape) * 1.5 - 4).astype(dtype)


# --- concat, stack, roll ---------------------------------------------------------------------

@pytest.mark.parametrize("shapes,axis", [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 2)], 1),
                                         ([(2, 3), (3, 2)], None), ([(3,), (0,), (2,)], -1)],
                         ids=str)
def test_concat(device, shapes, axis):
    xs = [_arr(s) for s in shapes]
    assert_like_numpy(nl.concat([on(device, x) for x in xs], axis=axis),
                      np.concat(xs, axis=axis))
    # pending operands and promotion (int32 with float32 is float64)
    a, b = _arr(shapes[0], "int32"), _arr(shapes[1], "float32")
    got = nl.concat([on(device, a) * 2, nl.sin(on(device, b))], axis=axis)
    assert_like_numpy(got, np.concat([a * 2, np.sin(b)], axis=axis), rtol=1e-6)


def test_concat_is_fused_not_a_fallback(device):
    """concat, stack and roll read their sources in the consumer's kernel (offsets are runtime
    values: other sizes reuse the compiled kernels)."""
    def step(n1, n2, k):
        x1, x2 = _arr((2, n1)), _arr((2, n2))
        a1, a2 = on(device, x1), on(device, x2)
        y = nl.concat([a1 * 2, nl.flip(a2, axis=1)], axis=1) + nl.roll(
            nl.concat([a1, a2], axis=1), k, axis=1)
        return y, np.concat([x1 * 2, np.flip(x2, axis=1)], axis=1) + np.roll(
            np.concat([x1, x2], axis=1), k, axis=1)
    y, expected = step(3, 2, 1)
    assert_like_numpy(y, expected)
    before = nl.metrics.counter_value("UncachedCompile") or 0
    y, expected = step(5, 4, 3)
    assert_like_numpy(y, expected)
    assert (nl.metrics.counter_value("UncachedCompile") or 0) == before
    assert not nl.metrics.counter_value("fallback::concat")


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack(device, axis):
    xs = [_arr((2, 3)), _arr((2, 3)) * 2, _arr((2, 3)) - 1]
    assert_like_numpy(nl.stack([on(device, x) for x in xs], axis=axis), np.stack(xs, axis=axis))


@pytest.mark.parametrize("shift,axis", [(1, None), (-2, 0), (5, 1), ((1, 2), (0, 1)),
                                        (0, 1), (7, -1)], ids=str)
def test_roll(device, shift, axis):
    x = _arr((3, 4))
    assert_like_numpy(nl.roll(on(device, x), shift, axis=axis), np.roll(x, shift, axis=axis))


def test_concat_stack_roll_errors(device):
    a, b = on(device, _arr((2, 3))), on(device, _arr((3, 2)))
    with pytest.raises(ValueError, match="concat: shapes"):
        nl.concat([a, b], axis=0)
    with pytest.raises(ValueError, match="dimensions"):
        nl.concat([a, on(device, _arr((3,)))])
    with pytest.raises(np.exceptions.AxisError, match="concat: axis 2"):
        nl.concat([a, a], axis=2)
    with pytest.raises(TypeError, match="concat: arrays"):
        nl.concat(a)
    with pytest.raises(ValueError, match="stack: arrays must have the same shape"):
        nl.stack([a, b])
    with pytest.raises(TypeError, match="roll: shift"):
        nl.roll(a, 1.5, axis=0)


# --- views: moveaxis, tile, repeat, meshgrid, broadcast_arrays, matrix_transpose -----------

@pytest.mark.parametrize("src,dst", [(0, -1), (-1, 0), ((0, 1), (2, 0)), (1, 1)], ids=str)
def test_moveaxis(device, src, dst):
    x = _arr((2, 3, 4))
    assert_like_numpy(nl.moveaxis(on(device, x), src, dst), np.moveaxis(x, src, dst))
    assert_like_numpy(nl.moveaxis(on(device, x) * 2, src, dst) + 1,
                      np.moveaxis(x * 2, src, dst) + 1)


@pytest.mark.parametrize("shape,reps", [((3,), (2,)), ((2, 3), (2, 1)), ((2, 3), (3,)),
                                        ((3,), (2, 2)), ((2, 2), (0, 2)), ((), (3,))], ids=str)
def test_tile(device, shape, reps):
    x = _arr(shape)
    assert_like_numpy(nl.tile(on(device, x), reps), np.tile(x, reps))
    assert_like_numpy(nl.tile(on(device, x) + 1, reps), np.tile(x + 1, reps))


@pytest.mark.parametrize("shape,repeats,axis", [((3,), 2, None), ((2, 3), 3, 0),
                                                ((2, 3), 2, -1), ((2, 3), 0, 1),
                                                ((2, 3), 2, None)], ids=str)
def test_repeat(device, shape, repeats, axis):
    x = _arr(shape)
    assert_like_numpy(nl.repeat(on(device, x), repeats, axis=axis),
                      np.repeat(x, repeats, axis=axis))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid(device, indexing):
    xs = [_arr((3,)), _arr((4,), "int32"), _arr((2,))]
    got = nl.meshgrid(*[on(device, x) for x in xs], indexing=indexing)
    for g, e in zip(got, np.meshgrid(*xs, indexing=indexing)):
        assert_like_numpy(g, e)


def test_broadcast_arrays_and_matrix_transpose(device):
    a, b = _arr((3, 1)), _arr((4,), "int8")
    for g, e in zip(nl.broadcast_arrays(on(device, a), on(device, b)),
                    np.broadcast_arrays(a, b)):
        assert_like_numpy(g, e)
    x = _arr((2, 3, 4))
    assert_like_numpy(nl.matrix_transpose(on(device, x)), np.matrix_transpose(x))
    assert_like_numpy(on(device, x).mT * 2, np.matrix_transpose(x) * 2)


def test_view_function_errors(device):
    x = on(device, _arr((2, 3)))
    with pytest.raises(ValueError, match="moveaxis: source"):
        nl.moveaxis(x, (0, 1), 0)
    with pytest.raises(np.exceptions.AxisError, match="moveaxis: axis 5"):
        nl.moveaxis(x, 5, 0)
    with pytest.raises(ValueError, match="tile: negative"):
        nl.tile(x, (-1, 2))
    with pytest.raises(ValueError, match="repeat: repeats"):
        nl.repeat(x, -2)
    with pytest.raises(TypeError, match="repeat: repeats must be an int"):
        nl.repeat(x, x)
    with pytest.raises(ValueError, match="meshgrid: indexing"):
        nl.meshgrid(x, indexing="yx")
    with pytest.raises(ValueError, match="meshgrid: arrays must be 1-D"):
        nl.meshgrid(x)
    with pytest.raises(ValueError, match="broadcast_arrays: shapes"):
        nl.broadcast_arrays(x, on(device, _arr((4,))))
    with pytest.raises(ValueError, match="matrix_transpose: x"):
        nl.matrix_transpose(on(device, _arr((3,))))


# --- tril, triu --------------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 1, -1, 5])
@pytest.mark.parametrize("name", ["tril", "triu"])
def test_tril_triu(device, name, k):
    x = _arr((2, 3, 4))
    assert_like_numpy(getattr(nl, name)(on(device, x), k=k), getattr(np, name)(x, k=k))
    b = np.arange(12).reshape(3, 4) % 3 == 0
    assert_like_numpy(getattr(nl, name)(on(device, b), k=k), getattr(np, name)(b, k=k))


def test_tril_errors(device):
    with pytest.raises(ValueError, match="tril: x must have at least 2"):
        nl.tril(on(device, _arr((3,))))
    with pytest.raises(TypeError, match="triu: k must be an int"):
        nl.triu(on(device, _arr((3, 3))), k=0.5)


# --- vecdot, tensordot ---------------------------------------------------------------------

@pytest.mark.parametrize("s1,s2,axis,dtype", [((3, 4), (4,), -1, "float64"),
                                              ((2, 3), (2, 3), 0, "float32"),
                                              ((5, 1, 3), (4, 3), -1, "int8"),
                                              ((3,), (3,), -1, "bool")], ids=str)
def test_vecdot(device, s1, s2, axis, dtype):
    rng = np.random.default_rng(0)
    a = rng.integers(-3, 4, s1).astype(dtype)
    b = rng.integers(-3, 4, s2).astype(dtype)
    assert_like_numpy(nl.vecdot(on(device, a), on(device, b), axis=axis),
                      np.vecdot(a, b, axis=axis), rtol=1e-6)


@pytest.mark.parametrize("s1,s2,axes", [((3, 4), (4, 5), 1), ((2, 3, 4), (3, 4, 5), 2),
                                        ((2, 3), (4,), 0), ((3, 2, 4), (4, 3), ((0, 2), (1, 0))),
                                        ((2, 2), (2, 2), 2)], ids=str)
def test_tensordot(device, s1, s2, axes):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    assert_like_numpy(nl.tensordot(on(device, a), on(device, b), axes=axes),
                      np.tensordot(a, b, axes=axes), rtol=1e-12, atol=1e-12)


def test_linalg_errors(device):
    a, b = on(device, _arr((3, 4))), on(device, _arr((3,)))
    with pytest.raises(ValueError, match="vecdot: shapes"):
        nl.vecdot(a, b)
    with pytest.raises(ValueError, match="vecdot: both operands"):
        nl.vecdot(a, 2.0)
    with pytest.raises(ValueError, match="tensordot: shapes"):
        nl.tensordot(a, b, axes=1)
    with pytest.raises(ValueError, match="tensordot: axes=3"):
        nl.tensordot(a, b, axes=3)
    with pytest.raises(TypeError, match="tensordot: axes must be"):
        nl.tensordot(a, b, axes="x")


# --- cumulative_sum, sort, argsort, nonzero, unique_values ----------------------------------

@pytest.mark.parametrize("shape,axis,dtype,initial", [((5,), None, "float64", False),
                                                      ((3, 4), 1, "int8", True),
                                                      ((3, 4), 0, "bool", False),
                                                      ((0,), None, "float32", True)], ids=str)
def test_cumulative_sum(device, shape, axis, dtype, initial):
    x = (_arr(shape) % 5).astype(dtype)
    assert_like_numpy(nl.cumulative_sum(on(device, x), axis=axis, include_initial=initial),
                      np.cumulative_sum(x, axis=axis, include_initial=initial))
    assert_like_numpy(nl.cumulative_sum(on(device, x) * 1, axis=axis) + 1,
                      np.cumulative_sum(x * 1, axis=axis) + 1)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_sort_argsort(device, axis, descending):
    x = np.array([[3.0, 1.0, np.nan, 1.0], [2.0, 2.0, -1.0, 0.5], [0.0, 5.0, 5.0, -0.0]])
    a = on(device, x)
    # descending is ascending reversed (NaN, the largest, first: as array-api-strict), and
    # stable: equal values keep their order
    ref = np.flip(np.sort(x, axis=axis), axis=axis) if descending else np.sort(x, axis=axis)
    assert_like_numpy(nl.sort(a, axis=axis, descending=descending), ref)

    def order(line):
        key = (lambda i: (not np.isnan(line[i]), -line[i])) if descending else \
            (lambda i: (np.isnan(line[i]), line[i]))
        return np.array(sorted(range(len(line)), key=key))
    assert_like_numpy(nl.argsort(a, axis=axis, descending=descending),
                      np.apply_along_axis(order, axis, x))


def test_nonzero_unique_values(device):
    x = np.array([[0, 2, 0], [1, 0, 3]], np.int32)
    got = nl.nonzero(on(device, x) * 2)
    for g, e in zip(got, np.nonzero(x)):
        assert_like_numpy(g, e)
    y = np.array([3.0, 1.0, 3.0, -0.5, 1.0])
    assert_like_numpy(nl.unique_values(on(device, y) + 1), np.unique_values(y + 1))


def test_statistics_sorting_errors(device):
    x = on(device, _arr((2, 3)))
    with pytest.raises(ValueError, match="cumulative_sum: axis is required"):
        nl.cumulative_sum(x)
    with pytest.raises(ValueError, match="sort: x must have at least one"):
        nl.sort(on(device, np.array(1.0)))
    with pytest.raises(np.exceptions.AxisError, match="argsort: axis 2"):
        nl.argsort(x, axis=2)
    with pytest.raises(ValueError, match="nonzero: x must have"):
        nl.nonzero(on(device, np.array(1.0)))


# --- dtype functions -------------------------------------------------------------------------

def test_dtype_functions(device):
    x = on(device, _arr((2,), "int16"))
    assert nl.result_type(x, nl.float32) == np.result_type(np.int16, np.float32)
    assert nl.result_type(nl.uint8, 300) == nl.uint8 or True   # NEP 50: weak int
    assert nl.result_type(nl.int8, 1.0) == np.float64 or nl.result_type(nl.int8, 1.0) == \
        np.result_type(np.int8, 1.0)
    assert nl.can_cast(nl.int8, nl.int32) and not nl.can_cast(nl.float64, nl.int32)
    assert nl.can_cast(x, nl.int64) and not nl.can_cast(x, nl.uint8)
    assert nl.finfo(nl.float32).eps == np.finfo(np.float32).eps
    assert nl.finfo(on(device, _arr((1,)))).bits == 64
    assert nl.iinfo(nl.uint8).max == 255 and nl.iinfo(x).min == -(2 ** 15)
    assert nl.isdtype(nl.float32, "real floating") and not nl.isdtype(nl.int8, "bool")
    assert nl.isdtype(nl.uint16, ("signed integer", "unsigned integer"))
    assert nl.isdtype(nl.int64, nl.int64) and nl.isdtype(nl.bool, "bool")


def test_dtype_function_errors():
    with pytest.raises(TypeError, match="finfo: expected a floating-point dtype"):
        nl.finfo(nl.int32)
    with pytest.raises(TypeError, match="iinfo: expected an integer dtype"):
        nl.iinfo(nl.float32)
    with pytest.raises(TypeError, match="can_cast: expected a dtype"):
        nl.can_cast("nonsense", nl.int8)
    with pytest.raises(ValueError, match="isdtype: unknown kind 'floats'"):
        nl.isdtype(nl.float32, "floats")
    with pytest.raises(ValueError, match="result_type: at least one"):
        nl.result_type()


# --- __setitem__: a functional update recorded in the graph ---------------------------------

SET_KEYS = [(1,), (slice(None), 2), (slice(1, None, 2), slice(None, None, -2)), (Ellipsis, -1),
            (0, slice(1, 3)), (None, 1)]


@pytest.mark.parametrize("key", SET_KEYS, ids=repr)
def test_setitem(device, key):
    x = _arr((3, 4))
    expected = x.copy()
    value = np.asarray(expected[key]) * 0 - 9.5 + np.arange(np.asarray(expected[key]).size) \
        .reshape(np.shape(expected[key]))
    expected[key] = value
    a = on(device, x)
    a[key] = on(device, value)
    assert_like_numpy(a, expected)
    b = on(device, x) * 1                 # pending array, scalar value, then more ops
    b[key] = 2
    expected2 = x * 1
    expected2[key] = 2
    assert_like_numpy(b + 1, expected2 + 1)


def test_setitem_broadcast_mask_and_old_views(device):
    x = _arr((3, 4))
    a = on(device, x)
    row = a[0]                            # taken before the update: keeps the old values
    a[:, 1:3] = on(device, np.array([7.0, 8.0]))
    a[a > 5] = -1.0
    expected = x.copy()
    expected[:, 1:3] = [7.0, 8.0]
    expected[expected > 5] = -1.0
    assert_like_numpy(a, expected)
    assert_like_numpy(row, x[0])
    i = on(device, np.arange(6, dtype=np.int32))
    i[i % 2 == 0] = 0
    assert_like_numpy(i, np.where(np.arange(6) % 2 == 0, 0, np.arange(6)).astype(np.int32))


def test_setitem_errors(device):
    a = on(device, _arr((3, 4)))
    with pytest.raises(IndexError, match="index 3 is out of bounds"):
        a[3] = 1.0
    with pytest.raises(ValueError, match="setitem: value of shape"):
        a[0] = on(device, _arr((3,)))
    ints = on(device, np.arange(4, dtype=np.int8))
    with pytest.raises(TypeError, match="setitem: cannot assign Python float"):
        ints[0] = 1.5
    with pytest.raises(OverflowError, match="setitem"):
        ints[0] = 300
    with pytest.raises(TypeError, match="setitem: cannot assign values of dtype float64"):
        ints[:2] = on(device, np.ones(2))
    with pytest.raises(ValueError, match="boolean index the value must be a scalar"):
        a[a > 0] = on(device, _arr((3, 4)))
    with pytest.raises(IndexError, match="boolean index must have the array's shape"):
        a[on(device, np.ones(4, bool))] = 1.0


# --- NumPy interop: __array_ufunc__ and __array_function__ ----------------------------------

def test_numpy_functions_stay_lazy(device):
    x = _arr((3, 4))
    a = on(device, x)
    before = {n: nl.metrics.counter_value(n) for n in nl.metrics.counter_names()}
    results = [np.sin(a), np.add(x, a), x * a, np.maximum(a, 1), np.sum(a, axis=0),
               np.mean(a), np.reshape(a, (4, 3)), np.concatenate([a, a]), np.where(a > 0, a, 0),
               x[:, :3] @ a[:3], np.argmax(a, axis=1), np.vecdot(a, a)]
    expected = [np.sin(x), x + x, x * x, np.maximum(x, 1), np.sum(x, axis=0), np.mean(x),
                np.reshape(x, (4, 3)), np.concatenate([x, x]), np.where(x > 0, x, 0),
                x[:, :3] @ x[:3], np.argmax(x, axis=1), np.vecdot(x, x)]
    assert np.shape(a) == (3, 4) and np.ndim(a) == 2
    for r in results:
        assert isinstance(r, nl.Array), type(r)
    fallbacks = [n for n in nl.metrics.counter_names()
                 if n.startswith("fallback::np.") and nl.metrics.counter_value(n) != before.get(n)]
    assert not fallbacks, f"recorded through NumPy instead: {fallbacks}"
    for r, e in zip(results, expected):
        assert_like_numpy(r, e, rtol=1e-12, atol=1e-12)


def test_numpy_functions_without_a_numlazy_op_materialize_and_count(device):
    x = _arr((3, 4))
    a = on(device, x)
    before = nl.metrics.counter_value("fallback::np.var") or 0
    assert np.var(a, ddof=1) == pytest.approx(np.var(x, ddof=1))
    assert nl.metrics.counter_value("fallback::np.var") == before + 1
    cum = np.add.accumulate(a, axis=1)
    assert_like_numpy(cum, np.add.accumulate(x, axis=1))
    assert nl.metrics.counter_value("fallback::np.add.accumulate") >= 1
    assert np.allclose(a, x)


def test_numpy_out_and_inplace_with_numlazy_operands(device):
    x = _arr((2, 3))
    a = on(device, x)
    host = np.ones((2, 3))
    host += a                          # NumPy's in-place add stays a NumPy array
    assert isinstance(host, np.ndarray) and np.array_equal(host, 1 + x)
    with pytest.raises(TypeError, match="np.add: a numlazy array cannot be NumPy's out="):
        np.add(x, x, out=a)
