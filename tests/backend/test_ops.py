"""Every op of `numlazy.ops.TABLE` against NumPy, on every device.

Elementwise ops are generated from the table: a new ufunc entry is tested over every dtype
here without touching this file. Other kinds are listed in `COVERED`; `test_every_op_is_covered`
fails for an op nobody tests yet.

Compile cost: sizes are runtime values (not part of a compile key), so tests vary sizes and
values freely but keep the number of distinct graph structures small.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import numlazy as nl
from numlazy import ops

from .conftest import (DTYPES, assert_like_numpy, np_call, numlazy_dtype, on,
                       known_bug, reduction_tolerance, skip_if_slow, ufunc_reference)

pytestmark = [pytest.mark.filterwarnings("ignore::numlazy.executor.RecompileWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]

# --- values ---------------------------------------------------------------------------------

FLOAT_SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5,
                  3.0, 0.25, -0.75, 0.9, 2.0, 10.0, -7.25, 100.0, 1e-3, 3.14159, -1e5, 1e30]


def values(dtype) -> np.ndarray:
    """Representative values of `dtype`, special values included."""
    d = np.dtype(dtype)
    if d == np.bool_:
        return np.array([True, False, True, True, False, False])
    if d.kind == "f":
        info = np.finfo(d)
        return np.array(FLOAT_SPECIALS + [float(info.max), float(info.tiny),
                                          float(info.smallest_subnormal), -float(info.max)], d)
    info = np.iinfo(d)
    small = [0, 1, 2, 3, 5, 7, 10, 100]
    if d.kind == "i":
        small += [-1, -2, -3, -7, -100]
    big = [info.max, info.max - 1, info.min, info.min + 1] + ([info.max // 3] if d.itemsize > 1
                                                              else [])
    return np.array(small + big, d)


def operand_values(name, dtype, which) -> np.ndarray:
    """Values for operand `which` of `name`, avoiding what NumPy leaves undefined or refuses
    for integers (tested separately in `test_integer_edge_cases`)."""
    v = values(dtype)
    d = np.dtype(dtype)
    if d.kind in "iu":
        if which == 1 and name in ("floor_divide", "remainder"):
            v = v[(v != 0) & ~((v == -1))]            # no /0, no MIN // -1
        if which == 1 and name == "pow":
            v = np.arange(0, 6, dtype=d)             # negative powers raise in NumPy
        if which == 1 and name in ("bitwise_left_shift", "bitwise_right_shift"):
            v = np.arange(0, min(d.itemsize * 8, 20), 3, dtype=d)   # shift < bit width
    return v


def pair_values(name, d1, d2):
    a = operand_values(name, d1, 0)
    b = operand_values(name, d2, 1)
    aa, bb = np.meshgrid(a, b, indexing="ij")
    return aa.ravel(), bb.ravel()


# --- coverage -------------------------------------------------------------------------------

UFUNC_OPS = sorted(n for n, op in ops.TABLE.items() if op.kind == ops.ELEMENTWISE
                   and op.ufunc is not None)
UNARY_OPS = [n for n in UFUNC_OPS if ops.TABLE[n].nin == 1]
BINARY_OPS = [n for n in UFUNC_OPS if ops.TABLE[n].nin == 2]

# Ops that need a hand-written test: op name -> the tests covering it.
COVERED = {
    "round": "test_round", "where": "test_where", "astype": "test_astype",
    "sum": "test_reductions", "prod": "test_reductions", "max": "test_reductions",
    "min": "test_reductions", "argmax": "test_reductions", "argmin": "test_reductions",
    "any": "test_reductions", "all": "test_reductions",
    "broadcast": "test_broadcast_to", "permute": "test_permute_dims",
    "slice": "test_getitem", "reshape": "test_reshape",
    "full": "test_full", "arange": "test_arange", "linspace": "test_linspace",
    "eye": "test_eye", "matmul": "test_matmul",
    "concat": "test_namespace.py::test_concat", "sort": "test_namespace.py::test_sort_argsort",
    "argsort": "test_namespace.py::test_sort_argsort",
    "cumulative_sum": "test_namespace.py::test_cumulative_sum",
    "setitem": "test_namespace.py::test_setitem",
    "take": "test_namespace_indexing.py::test_take",
    "searchsorted": "test_namespace_indexing.py::test_searchsorted",
    **{n: "test_namespace_linalg.py::test_host_op" for n in ops.TABLE
       if n.startswith("linalg.") and n not in ("linalg.eigh", "linalg.qr", "linalg.slogdet",
                                                "linalg.svd")},
    **{f"linalg.{n}": "test_namespace_linalg.py::test_factorization_results"
       for n in ("eigh", "qr", "slogdet", "svd")},
    "real": "test_complex.py::test_unary_ops_match_numpy",
    "imag": "test_complex.py::test_unary_ops_match_numpy",
    **{name: "test_fft.py::test_transform_matches_numpy" for name in ops.FFTS},
}


def test_every_op_is_covered():
    missing = [n for n in ops.TABLE if n not in UFUNC_OPS and n not in COVERED]
    assert not missing, f"ops without a backend test (add one and list it in COVERED): {missing}"
    for name in UFUNC_OPS:
        assert callable(getattr(nl, name, None)), f"nl.{name} missing for table op {name}"


def _public(name):
    return getattr(nl, name)


# --- known numlazy bugs (strict xfails: a fix makes them fail until removed here) -----------

KNOWN: dict = {}     # (op name, dtype name) -> reason


def _params(names, dtypes):
    return [pytest.param(name, d, id=f"{name}-{d}") for name in names for d in dtypes]


# --- elementwise: every table ufunc over every dtype -----------------------------------------

# Tolerances: Numba's libm and NumPy's SIMD loops may differ by a few ULP on transcendentals.
EXACT = {"abs", "negative", "positive", "square", "sign", "floor", "ceil", "trunc", "isnan",
         "isinf", "isfinite", "logical_not", "bitwise_invert", "add", "subtract", "multiply",
         "maximum", "minimum", "copysign", "equal", "not_equal", "less", "less_equal",
         "greater", "greater_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and",
         "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "sqrt",
         "divide", "floor_divide", "remainder", "astype"}


def _check_ufunc(device, name, np_args, nl_args, err):
    ufunc = ops.TABLE[name].ufunc
    try:
        expected = ufunc_reference(ufunc, *np_args)
    except TypeError:
        with pytest.raises(TypeError):
            _public(name)(*nl_args)
        return
    result = _public(name)(*nl_args)
    assert_like_numpy(result, expected, ulp=0 if name in EXACT else 4, err=err)


# Batches: the cases of one op over all dtypes are recorded together and computed in one step
# (one fused multi-output kernel, one compile instead of one per dtype); each parametrized
# test then checks its own case. Inputs are resized to one length so the outputs fuse.
# If the batched step fails, each case is computed on its own when the test reads it.
_BATCHES: dict = {}
BATCH_LENGTH = {1: 32, 2: 1024}


def _record(fn, nl_args):
    try:
        return fn(*nl_args), None
    except Exception as exc:               # record-time error, checked by the test
        return None, exc


def _batch(key, device, make_cases):
    """{case: (expected or exception, numlazy result or None, record exception or None)}."""
    full_key = (device,) + key
    if full_key not in _BATCHES:
        cases = {}
        for case, (ref, fn, np_args) in make_cases().items():
            try:
                expected = ref(*np_args)
            except TypeError as exc:
                expected = exc
            result, exc = _record(fn, [on(device, a) for a in np_args])
            cases[case] = (expected, result, exc, np_args)
        try:
            nl.sync([r for _, r, _, _ in cases.values() if r is not None])
        except Exception:
            pass
        _BATCHES.clear()                   # keep only the current batch alive
        _BATCHES[full_key] = cases
    return _BATCHES[full_key]


def _check_case(cases, case, name, err):
    expected, result, exc, np_args = cases[case]
    if isinstance(expected, TypeError):
        assert isinstance(exc, TypeError), \
            f"{err}NumPy raises TypeError ({expected}), numlazy " + \
            (f"raised {exc!r}" if exc else "accepted it")
        return
    if isinstance(exc, TypeError) and ops.TABLE[name].domain == "real floating" and \
            any(np.dtype(d).kind != "f" for d in case):
        assert name in str(exc), exc        # stricter than NumPy: the standard's domain
        return
    if exc is not None:
        raise exc
    if name in CANCELLING:
        assert_within_operand_ulps(result, expected, np_args, err=err)
        return
    assert_like_numpy(result, expected, ulp=0 if name in EXACT else 4, err=err)


# Ops whose result can cancel to far below its operands: `logaddexp(-0.75, -0.5)` is
# -0.5 + log1p(exp(-0.25)) = 0.0759, so one ULP of log1p (libms differ by that: NumPy's glibc
# and a GPU's libdevice in ~20% of inputs) is 8 ULPs of the result. NumPy's own result is no
# closer to the truth; results are compared within ULPs of the operands' magnitude instead.
CANCELLING = {"logaddexp"}


def assert_within_operand_ulps(result, expected, operands, ulps=4, err=""):
    """`result` matches NumPy's `expected` (shape, dtype, NaN and inf positions) and each
    finite value is within `ulps` ULPs of max(|operands|, log 2) of NumPy's value."""
    assert_like_numpy(result, expected, atol=np.inf, err=err)
    got = np.asarray(result)
    mags = [np.abs(np.asarray(o, np.float64)) for o in operands]
    scale = np.maximum.reduce([np.where(np.isfinite(m), m, 0.0) for m in mags] +
                              [np.full(got.shape, math.log(2))])
    tol = ulps * np.spacing(scale.astype(got.dtype))
    finite = np.isfinite(got) & np.isfinite(expected)
    diff = np.abs(got.astype(np.float64) - np.asarray(expected, np.float64))
    bad = finite & ~(diff <= tol)
    assert not bad.any(), f"{err}{int(bad.sum())} values differ by more than {ulps} ULPs of " \
        f"the operands: " + ", ".join(f"{got[i]!r} vs {expected[i]!r}"
                                      for i in zip(*np.nonzero(bad)))


def _ufunc_cases(name, dtype_sets, make_values):
    ufunc = ops.TABLE[name].ufunc
    n = BATCH_LENGTH[ufunc.nin]

    def make():
        out = {}
        for dts in dtype_sets:
            args = [np.resize(v, n) for v in make_values(*dts)]
            out[dts] = (lambda *a: ufunc_reference(ufunc, *a), _public(name), args)
        return out
    return make


@pytest.mark.parametrize("name,dtype", _params(UNARY_OPS, DTYPES))
def test_unary(request, device, name, dtype):
    if (name, str(dtype)) in KNOWN:
        known_bug(request, device, KNOWN[name, str(dtype)])
    cases = _batch(("unary", name), device,
                   _ufunc_cases(name, [(d,) for d in DTYPES], lambda d: [values(d)]))
    _check_case(cases, (dtype,), name, f"{name}({dtype}): ")


@pytest.mark.parametrize("name,dtype", _params(BINARY_OPS, DTYPES))
def test_binary(request, device, name, dtype):
    if (name, str(dtype)) in KNOWN:
        known_bug(request, device, KNOWN[name, str(dtype)])
    cases = _batch(("binary", name), device,
                   _ufunc_cases(name, [(d, d) for d in DTYPES],
                                lambda d1, d2: pair_values(name, d1, d2)))
    _check_case(cases, (dtype, dtype), name, f"{name}({dtype}, {dtype}): ")


MIXED = [("int8", "uint8"), ("int64", "uint64"), ("float32", "int32"), ("bool", "float64"),
         ("uint8", "float32")]


@pytest.mark.parametrize("dtypes", MIXED, ids="-".join)
@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_mixed_dtypes(device, name, dtypes):
    cases = _batch(("mixed", name), device,
                   _ufunc_cases(name, [tuple(np.dtype(d) for d in m) for m in MIXED],
                                lambda d1, d2: pair_values(name, d1, d2)))
    _check_case(cases, tuple(np.dtype(d) for d in dtypes), name, f"{name}{dtypes}: ")


# Integer edge cases NumPy defines: division by zero gives 0, MIN // -1 wraps, shifts by
# the bit width or more give 0 (or -1 for negative right shifts).
INT_EDGES = [
    ("floor_divide", "int32", [7, -7, 0, -2**31], [0, 0, 0, -1]),
    ("remainder", "int32", [7, -7, 0, -2**31], [0, 0, 0, -1]),
    ("floor_divide", "uint8", [7, 0], [0, 0]),
    ("bitwise_left_shift", "int32", [1, -1, 5], [32, 40, 31]),
    ("bitwise_right_shift", "int32", [8, -8, 5], [32, 40, 31]),
    ("bitwise_left_shift", "uint64", [1, 3], [64, 70]),
]


@pytest.mark.parametrize("name,dtype,a,b", INT_EDGES,
                         ids=[f"{n}-{d}-{i}" for i, (n, d, *_) in enumerate(INT_EDGES)])
def test_integer_edge_cases(request, device, name, dtype, a, b):
    a, b = np.array(a, dtype), np.array(b, dtype)
    _check_ufunc(device, name, [a, b], [on(device, a), on(device, b)], f"{name}({dtype}): ")


SIGNED_ZERO_CASES = [
    ("negative", [0.0, -0.0]), ("abs", [-0.0]), ("floor", [-0.0, -0.5, 0.5]),
    ("ceil", [-0.5, -0.0]), ("trunc", [-0.7, -0.0]), ("round", [-0.4, -0.0, 0.4]),
    ("sign", [-0.0, 0.0]),
    ("square", [-0.0]), ("sqrt", [-0.0]), ("sin", [-0.0]), ("tanh", [-0.0]),
    ("expm1", [-0.0]), ("log1p", [-0.0]),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,vals", SIGNED_ZERO_CASES,
                         ids=[c[0] for c in SIGNED_ZERO_CASES])
def test_signed_zeros_unary(request, device, name, vals, dtype):
    x = np.array(vals, dtype)
    fn = np.round if name == "round" else ops.TABLE[name].ufunc
    assert_like_numpy(getattr(nl, name)(on(device, x)), np_call(fn, x), signed_zeros=True)


def test_signed_zeros_binary(device):
    a = np.array([0.0, -0.0, -0.0, 1.0, -1.0, -0.0])
    b = np.array([-0.0, -0.0, 0.0, -0.0, 0.0, 2.0])
    A, B = on(device, a), on(device, b)
    for name in ("add", "subtract", "multiply", "copysign", "divide", "maximum", "minimum"):
        expected = ufunc_reference(ops.TABLE[name].ufunc, a, b)
        assert_like_numpy(getattr(nl, name)(A, B), expected, signed_zeros=True,
                          err=f"{name}: ")


def test_float_division_specials(device):
    a = np.array([1.0, -1.0, 0.0, np.inf, 5.0, -5.0, 5.0, np.nan])
    b = np.array([0.0, 0.0, 0.0, 2.0, np.inf, 3.0, -0.0, 1.0])
    for name in ("divide", "floor_divide", "remainder"):
        expected = ufunc_reference(ops.TABLE[name].ufunc, a, b)
        assert_like_numpy(_public(name)(on(device, a), on(device, b)), expected,
                          signed_zeros=True, err=f"{name}: ")


def _float_specials(dtype) -> np.ndarray:
    info = np.finfo(dtype)
    return np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 7.25, -7.25,
                     3.0, float(info.max), -float(info.max), float(info.max) / 3,
                     float(info.tiny), -float(info.smallest_subnormal), 2.0 ** 60, 1e-3],
                    dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_divmod_infinite_huge_and_signed_zero_operands(device, dtype):
    """NumPy's divmod rules where C's and Numba's CUDA `//`/`%` differ: inf // x is NaN,
    x % inf keeps x (or gives inf against the divisor's sign), huge quotients overflow to inf,
    zero results carry the divisor's (remainder) or the quotient's (floor_divide) sign.
    Seen failing on a real GPU; the simulator runs NumPy's scalars and cannot show it."""
    v = _float_specials(dtype)
    a, b = (m.ravel() for m in np.meshgrid(v, v, indexing="ij"))
    A, B = on(device, a), on(device, b)
    for name in ("floor_divide", "remainder"):
        expected = ufunc_reference(ops.TABLE[name].ufunc, a, b)
        assert_like_numpy(_public(name)(A, B), expected, ulp=0, signed_zeros=True,
                          err=f"{name}({dtype}): ")
    assert_like_numpy(A // 2.5, np_call(np.floor_divide, a, 2.5), ulp=0, signed_zeros=True)
    assert_like_numpy(-1.0 % B, np_call(np.remainder, -1.0, b), ulp=0, signed_zeros=True)


def test_logaddexp_cancelling(device):
    """x + log1p(exp(-(x - y))) cancels when the result is near 0 (x, y near -log 2): a one-ULP
    difference in log1p or exp becomes many ULPs of the result (seen 8 ULPs off NumPy on a GPU,
    whose libdevice log1p differs from glibc's). Within ULPs of the operands everywhere."""
    x = np.array([-0.75, -0.5, -0.69, -0.7, -0.6931, -0.3, -1.0, -0.68, -0.7, -2.0, 0.0, -1e-9])
    y = np.array([-0.5, -1.0, -0.7, -0.69, -0.6932, -1.2, -0.4, -0.71, -0.6, -0.1, -40.0, 1e-9])
    for dtype in ("float64", "float32"):
        a, b = x.astype(dtype), y.astype(dtype)
        expected = ufunc_reference(np.logaddexp, a, b)
        assert_within_operand_ulps(nl.logaddexp(on(device, a), on(device, b)), expected,
                                   (a, b), err=f"logaddexp({dtype}): ")
        assert_within_operand_ulps(nl.logaddexp(on(device, b), on(device, a)), expected,
                                   (a, b), err=f"logaddexp({dtype}, swapped): ")


# --- weak Python scalars ------------------------------------------------------------------

# (expression, function, NumPy reference if not the same function). NumPy's `x ** 2` is a
# fast path to np.square (bool ** 2 is int8 there, int64 through np.power): numlazy follows
# the ufunc, so the reference is np.power.
SCALAR_CASES = [
    ("x + 1", lambda x: x + 1), ("1 + x", lambda x: 1 + x), ("x * 0.5", lambda x: x * 0.5),
    ("2 ** x", lambda x: 2 ** x), ("x ** 2", lambda x: x ** 2, lambda x: np.power(x, 2)),
    ("1 - x", lambda x: 1 - x), ("x / 2", lambda x: x / 2), ("x // 3", lambda x: x // 3),
    ("x % 3", lambda x: x % 3), ("x > 1", lambda x: x > 1), ("x == 1.5", lambda x: x == 1.5),
    ("x * -1", lambda x: x * -1), ("0.5 - x", lambda x: 0.5 - x),
    ("x + True", lambda x: x + True), ("x * False", lambda x: x * False),
    ("x == True", lambda x: x == True),  # noqa: E712
]


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int64", "float32", "float64"])
@pytest.mark.parametrize("case", SCALAR_CASES,
                         ids=[c.values[0][0] if hasattr(c, "marks") else c[0]
                              for c in SCALAR_CASES])
def test_weak_scalars(device, case, dtype):
    expr, fn, *ref = case
    ref = ref[0] if ref else fn
    x = np.array([0, 1, 2, 3, 4, 5], dtype)
    try:
        expected = np_call(ref, x)
    except (TypeError, OverflowError) as exc:
        with pytest.raises(type(exc)):
            fn(on(device, x))
        return
    if expected.dtype == np.float16:
        expected = np_call(ref, x.astype(np.float32))
    assert_like_numpy(fn(on(device, x)), expected, err=f"{expr} ({dtype}): ")


@pytest.mark.parametrize("dtype,fn", [
    ("uint8", lambda x: x + 300), ("uint8", lambda x: x - (-1)), ("int8", lambda x: x * 128),
    ("int8", lambda x: nl.maximum(x, -129)), ("int32", lambda x: x + 2**40),
    ("uint64", lambda x: x + -1),
])
def test_weak_scalar_out_of_bounds(device, dtype, fn):
    x = on(device, np.arange(3, dtype=dtype))
    with pytest.raises(OverflowError):
        fn(x)


@pytest.mark.parametrize("dtype,fn", [
    ("uint8", lambda x: x < 300), ("uint8", lambda x: x >= -1), ("uint8", lambda x: x == 256),
    ("int8", lambda x: x != -129), ("int8", lambda x: 200 > x), ("uint64", lambda x: x <= -5),
    ("int64", lambda x: nl.greater(x, 2**70)), ("int32", lambda x: nl.equal(-2**40, x)),
])
def test_weak_scalar_out_of_bounds_comparison(device, dtype, fn):
    """NumPy 2 compares out-of-range Python ints by value instead of raising."""
    x = np.arange(3, dtype=dtype).reshape(3, 1) * np.ones((1, 2), dtype)
    assert_like_numpy(fn(on(device, x)), np_call(fn, x))


def test_integer_pow_negative_scalar_exponent_raises(device):
    x = on(device, np.arange(3, dtype=np.int32))
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        x ** -1
    with pytest.raises(ValueError, match="negative integer powers"):
        nl.pow(x, -2)
    assert_like_numpy(x ** 3, np.arange(3, dtype=np.int32) ** 3)
    assert_like_numpy(x ** -1.0, np_call(np.power, np.arange(3, dtype=np.int32), -1.0))


def test_weak_float_scalar_overflows_float32(device):
    x = np.array([1.0, -2.0], np.float32)
    expected = np_call(lambda: x * 1e300)
    assert_like_numpy(on(device, x) * 1e300, expected)


def test_scalar_first_operand_functions(device):
    x = np.array([0.5, 1.0, 2.0])
    assert_like_numpy(nl.pow(2, on(device, x)), np.power(2, x))
    assert_like_numpy(nl.atan2(1.0, on(device, x)), np.arctan2(1.0, x))
    assert_like_numpy(nl.maximum(on(device, x), 1), np.maximum(x, 1))


# --- broadcasting -------------------------------------------------------------------------

BROADCAST_SHAPES = [((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((5,), ()), ((1,), (3,)),
                    ((0, 3), (1, 3)), ((2, 1, 4), (3, 1)), ((), ())]


@pytest.mark.parametrize("s1,s2", BROADCAST_SHAPES, ids=str)
def test_broadcasting(device, s1, s2):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(s1)
    b = rng.integers(-5, 5, s2).astype(np.int32)
    assert_like_numpy(on(device, a) * on(device, b) + on(device, b), a * b + b)
    assert_like_numpy(on(device, b) - on(device, a), b - a)


def test_broadcasting_mismatch_raises(device):
    with pytest.raises(ValueError):
        on(device, np.ones((3, 2))) + on(device, np.ones((3,)))


# --- reductions ---------------------------------------------------------------------------

REDUCTIONS = ["sum", "prod", "mean", "var", "std", "min", "max", "argmin", "argmax", "any",
              "all"]
ARG = ("argmin", "argmax")


def _reduction_input(dtype, shape=(4, 5, 6), seed=0):
    rng = np.random.default_rng(seed)
    d = np.dtype(dtype)
    if d == np.bool_:
        return rng.random(shape) < 0.6
    if d.kind == "f":
        # values near 1 keep prod finite; a few exact ties check "first index wins"
        x = rng.uniform(0.5, 1.5, shape).astype(d)
        x.flat[::7] = 1.25
        return x
    lo, hi = (0, 4) if d.kind == "u" else (-3, 4)
    return rng.integers(lo, hi, shape).astype(d)


def _check_reduction(device, name, x, axis, keepdims, err=""):
    kw = {"keepdims": keepdims}
    if axis is not None:
        kw["axis"] = axis
    expected = np_call(getattr(np, name), x, **kw)
    result = getattr(nl, name)(on(device, x), **kw)
    tol = reduction_tolerance(expected.dtype if name not in ARG else x.dtype)
    if name in ("var", "std") and np.asarray(expected).dtype == np.float32:
        tol = dict(rtol=1e-4, atol=1e-6)
    assert_like_numpy(result, expected, **tol, err=f"{err}{name}(axis={axis}, "
                      f"keepdims={keepdims}): ")


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (1, 2), (0, 1, 2)], ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions(device, name, axis):
    if name in ARG and isinstance(axis, tuple):
        pytest.skip("argmin/argmax take an int axis")
    _check_reduction(device, name, _reduction_input("float32"), axis, False)


@pytest.mark.parametrize("axis", [None, 1, (0, 2)], ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_keepdims(device, name, axis):
    if name in ARG and isinstance(axis, tuple):
        axis = -1
    _check_reduction(device, name, _reduction_input("float64", (3, 4, 5)), axis, True)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "uint8", "int64", "float64"])
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_dtypes(device, name, dtype):
    x = _reduction_input(dtype, (6, 7))
    _check_reduction(device, name, x, None, False, err=f"{dtype} ")
    _check_reduction(device, name, x, 1, False, err=f"{dtype} ")


@pytest.mark.parametrize("name", ["sum", "prod", "min", "max", "argmin", "argmax", "mean"])
def test_reductions_nan_inf(device, name):
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, -np.inf, np.inf, 0.0],
                  [-0.0, 5.0, 5.0, -1.0]])
    for axis in (None, 1):
        _check_reduction(device, name, x, axis, False)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_0d(device, name):
    x = np.array(2.5)
    assert_like_numpy(getattr(nl, name)(on(device, x)), np_call(getattr(np, name), x),
                      rtol=1e-12)
    if name in ARG:
        for kw in ({"axis": 0}, {"axis": -1}, {"keepdims": True}):
            assert_like_numpy(getattr(nl, name)(on(device, x), **kw),
                              np_call(getattr(np, name), x, **kw), err=f"{kw}: ")


@pytest.mark.parametrize("name", ["sum", "prod", "any", "all", "mean"])
def test_reductions_empty(device, name):
    x = np.zeros((0, 3))
    for axis in (None, 0):
        expected = np_call(getattr(np, name), x, axis=axis)
        assert_like_numpy(getattr(nl, name)(on(device, x), axis=axis), expected)


@pytest.mark.parametrize("name", ["min", "max", "argmin", "argmax"])
def test_reductions_empty_raise(device, name):
    with pytest.raises(ValueError):
        getattr(nl, name)(on(device, np.zeros((0, 3))), axis=0)


def test_reduction_bad_axis_raises(device):
    x = on(device, np.ones((2, 3)))
    with pytest.raises(np.exceptions.AxisError):
        nl.sum(x, axis=2)
    with pytest.raises(ValueError):
        nl.sum(x, axis=(0, 0))


def test_var_std_correction(device):
    x = _reduction_input("float64", (5, 6))
    assert_like_numpy(nl.var(on(device, x), axis=0, correction=1), np.var(x, axis=0, ddof=1))
    assert_like_numpy(nl.std(on(device, x), correction=1), np.std(x, ddof=1))


def test_sum_dtype_argument(device):
    x = np.arange(20, dtype=np.int8).reshape(4, 5)
    assert_like_numpy(nl.sum(on(device, x), axis=1, dtype=nl.float32),
                      np.sum(x, axis=1, dtype=np.float32))


def test_reduction_of_pending_expression(device):
    x = _reduction_input("float32", (8, 9))
    a = on(device, x)
    y = nl.exp(a) * 2 - a
    s = nl.sum(y, axis=0)
    m = nl.max(y)
    assert_like_numpy(s, np.sum(np.exp(x) * 2 - x, axis=0), rtol=1e-5)
    assert_like_numpy(m, np.max(np.exp(x) * 2 - x))
    assert_like_numpy(y, np.exp(x) * 2 - x)


# --- large arrays: the parallel kernel variants ----------------------------------------------

def test_large_elementwise_with_views(device):
    skip_if_slow(device)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 200)).astype(np.float32)
    a = on(device, x)
    y = nl.sin(a) * 2 + nl.flip(a, axis=0)
    assert_like_numpy(y, np.sin(x) * 2 + np.flip(x, axis=0), ulp=8, atol=1e-6)
    z = (a.T + 1)[::2]
    assert_like_numpy(z, (x.T + 1)[::2])


@pytest.mark.parametrize("name", ["sum", "max", "argmax", "argmin", "mean", "prod", "any"])
def test_large_reductions(device, name):
    skip_if_slow(device)
    rng = np.random.default_rng(2)
    x = rng.uniform(0.999, 1.001, 100_003).astype(np.float32)
    x[[500, 70_000, 99_000]] = 1.5           # ties: the first index must win
    x[[10, 80_000]] = 0.25
    expected = np_call(getattr(np, name), x)
    assert_like_numpy(getattr(nl, name)(on(device, x)), expected, rtol=1e-5, atol=1e-6)
    x2 = x[:100_000].reshape(250, 400)
    for axis in (0, 1):
        expected = np_call(getattr(np, name), x2, axis=axis)
        assert_like_numpy(getattr(nl, name)(on(device, x2), axis=axis), expected,
                          rtol=1e-5, atol=1e-6, err=f"axis={axis}: ")


def test_large_nan_max_argmax(device):
    skip_if_slow(device)
    x = np.linspace(0, 1, 70_000)
    x[40_000] = np.nan
    x[60_000] = np.nan
    assert_like_numpy(nl.max(on(device, x)), np.max(x))
    assert_like_numpy(nl.argmax(on(device, x)), np.argmax(x))
    assert_like_numpy(nl.argmin(on(device, x)), np.argmin(x))


def test_large_int_sum(device):
    skip_if_slow(device)
    x = np.arange(200_000, dtype=np.int32)
    assert_like_numpy(nl.sum(on(device, x)), np.sum(x))
    assert_like_numpy(nl.sum(on(device, x) * 3 - 1), np.sum(x * 3 - 1))


# --- views --------------------------------------------------------------------------------

def _arr(shape, dtype=np.float64):
    return np.arange(math.prod(shape), dtype=dtype).reshape(shape) * 1.5 - 3


@pytest.mark.parametrize("src,shape", [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)),
                                       ((12,), (3, 2, 2)), ((2, 3, 4), (4, -1, 2)),
                                       ((6,), (1, 6, 1)), ((1,), ())], ids=str)
def test_reshape(device, src, shape):
    x = _arr(src)
    a = on(device, x)
    assert_like_numpy(nl.reshape(a, shape), x.reshape(shape))            # view of data
    assert_like_numpy(nl.reshape(a * 2, shape), (x * 2).reshape(shape))  # view of pending
    assert_like_numpy(nl.reshape(nl.flip(a, axis=0), shape) + 1,
                      np.flip(x, axis=0).reshape(shape) + 1)


def test_reshape_bad_size_raises(device):
    with pytest.raises(ValueError):
        nl.reshape(on(device, np.ones(6)), (4, 2))


@pytest.mark.parametrize("axes", [(1, 0, 2), (2, 0, 1), (0, 2, 1), (2, 1, 0)], ids=str)
def test_permute_dims(device, axes):
    x = _arr((2, 3, 4))
    a = on(device, x)
    assert_like_numpy(nl.permute_dims(a, axes), np.transpose(x, axes))
    assert_like_numpy(nl.permute_dims(nl.exp(a / 10), axes) - 1,
                      np.transpose(np.exp(x / 10), axes) - 1)


def test_transpose_T_mT(device):
    x = _arr((3, 4))
    a = on(device, x)
    assert_like_numpy(a.T, x.T)
    assert_like_numpy((a * 2).T + a.T, (x * 2).T + x.T)
    y = _arr((2, 3, 4))
    assert_like_numpy(on(device, y).mT, np.swapaxes(y, -1, -2))
    sq = _arr((4, 4))
    b = nl.sqrt(nl.abs(on(device, sq)))
    assert_like_numpy(b + b.T, np.sqrt(np.abs(sq)) + np.sqrt(np.abs(sq)).T)


@pytest.mark.parametrize("src,shape", [((3,), (2, 3)), ((3, 1), (3, 4)), ((), (2, 2)),
                                       ((1, 4), (2, 3, 4))], ids=str)
def test_broadcast_to(device, src, shape):
    x = _arr(src)
    a = on(device, x)
    assert_like_numpy(nl.broadcast_to(a, shape), np.broadcast_to(x, shape))
    assert_like_numpy(nl.broadcast_to(a + 1, shape) * 2, np.broadcast_to(x + 1, shape) * 2)


def test_broadcast_to_bad_shape_raises(device):
    with pytest.raises(ValueError):
        nl.broadcast_to(on(device, np.ones(3)), (4, 2))


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2)], ids=str)
def test_expand_dims(device, axis):
    x = _arr((3, 4))
    a = on(device, x)
    assert_like_numpy(nl.expand_dims(a, axis=axis), np.expand_dims(x, axis))
    assert_like_numpy(nl.expand_dims(a - 1, axis=axis), np.expand_dims(x - 1, axis))


@pytest.mark.parametrize("axis", [0, 2, (0, 2), -1], ids=str)
def test_squeeze(device, axis):
    x = _arr((1, 3, 1))
    a = on(device, x)
    assert_like_numpy(nl.squeeze(a, axis=axis), np.squeeze(x, axis))
    assert_like_numpy(nl.squeeze(a * a, axis=axis), np.squeeze(x * x, axis))


def test_squeeze_non_unit_raises(device):
    with pytest.raises(ValueError):
        nl.squeeze(on(device, np.ones((2, 1))), axis=0)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)], ids=str)
def test_flip(device, axis):
    x = _arr((3, 4, 2))
    a = on(device, x)
    assert_like_numpy(nl.flip(a, axis=axis), np.flip(x, axis))
    assert_like_numpy(nl.flip(a + 1, axis=axis) - a, np.flip(x + 1, axis) - x)


KEYS = [
    (1,), (-1,), (slice(1, 3),), (slice(None, None, 2),), (slice(None, None, -1),),
    (slice(4, 0, -2),), (slice(-2, None),), (Ellipsis, 1), (None, 1), (1, None, slice(None)),
    (slice(None), None, 2), (Ellipsis, None), (0, -1, 1), (slice(1, 3), slice(None, None, -2), -1),
    (Ellipsis,), (slice(10, 20),), (Ellipsis, slice(None, None, -3)),
]


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem(device, key):
    x = _arr((5, 4, 3))
    a = on(device, x)
    assert_like_numpy(a[key], x[key])
    expected = np.cos(x)[key] + x[key]
    assert_like_numpy(nl.cos(a)[key] + a[key], expected)   # a view of a pending array


def test_getitem_scalar_read(device):
    x = _arr((5, 4))
    a = on(device, x)
    assert float(a[2, 3]) == x[2, 3]
    assert (a * 2)[-1, -1].item() == x[-1, -1] * 2


def test_views_of_pending_combined(device):
    x = _arr((6, 6))
    a = on(device, x)
    y = nl.sin(a)
    z = y[::-2] + y[1::2] * y.T[:3] + nl.flip(y, axis=1)[::2]
    ny = np.sin(x)
    assert_like_numpy(z, ny[::-2] + ny[1::2] * ny.T[:3] + np.flip(ny, axis=1)[::2], ulp=8)
    w = nl.reshape(nl.permute_dims(nl.reshape(y, (2, 3, 6)), (2, 0, 1)), (36,))[::5]
    assert_like_numpy(w, ny.reshape(2, 3, 6).transpose(2, 0, 1).reshape(36)[::5], ulp=8)
    # y itself kept alive and read after its views
    assert_like_numpy(y, ny)


def test_getitem_errors(device):
    a = on(device, np.ones((3, 4)))
    with pytest.raises(IndexError):
        a[3]
    with pytest.raises(IndexError):
        a[0, 0, 0]
    with pytest.raises(IndexError):
        a[..., ...]


# --- creation -----------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("shape,dtype", [((3, 4), None), (5, "int32"), ((), "bool"),
                                         ((2, 0), "float32"), ((2, 3, 2), "uint8")], ids=str)
def test_zeros_ones_empty(device, fn, shape, dtype):
    expected = getattr(np, fn)(shape, dtype=dtype)
    result = getattr(nl, fn)(shape, dtype=dtype, device=device)
    if fn == "empty":
        assert result.shape == expected.shape and result.dtype == expected.dtype
        assert np.asarray(result).shape == expected.shape
    else:
        assert_like_numpy(result, expected)
    assert str(result.device).split(":")[0] == device


@pytest.mark.parametrize("shape,value,dtype", [((3, 2), 7, None), ((4,), 2.5, None),
                                               ((2,), True, None), ((3,), -1, "int8"),
                                               ((2, 2), np.nan, "float32"),
                                               ((5,), 3, "float64")], ids=str)
def test_full(device, shape, value, dtype):
    assert_like_numpy(nl.full(shape, value, dtype=dtype, device=device),
                      np.full(shape, value, dtype=dtype))


def test_full_overflow_raises(device):
    with pytest.raises(OverflowError):
        nl.full((2,), 300, dtype=nl.uint8, device=device)


@pytest.mark.parametrize("fn,args", [("zeros_like", ()), ("ones_like", ()),
                                     ("full_like", (4,)), ("empty_like", ())])
def test_like(device, fn, args):
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    a = on(device, x)
    result = getattr(nl, fn)(a, *args)
    expected = getattr(np, fn)(x, *args)
    if fn == "empty_like":
        assert result.shape == x.shape and result.dtype == x.dtype
    else:
        assert_like_numpy(result, expected)
    assert_like_numpy(getattr(nl, fn)(a, *args, dtype=nl.float32) * 0,
                      getattr(np, fn)(x, *args, dtype=np.float32) * 0)


@pytest.mark.parametrize("args,dtype", [((10,), None), ((2, 11, 3), None), ((10, 0, -3), None),
                                        ((0.0, 1.0, 0.1), None), ((5,), "float32"),
                                        ((1.0, -2.0, -0.5), None), ((3, 3), None),
                                        ((-5, 5, 2), "int8"), ((0, 5, 0.5), None)], ids=str)
def test_arange(device, args, dtype):
    assert_like_numpy(nl.arange(*args, dtype=dtype, device=device),
                      np.arange(*args, dtype=dtype))


def test_arange_zero_step_raises(device):
    with pytest.raises(ValueError):
        nl.arange(0, 5, 0, device=device)


@pytest.mark.parametrize("start,stop,num,endpoint,dtype", [
    (0, 1, 5, True, None), (0, 1, 5, False, None), (2.0, -3.0, 7, True, None),
    (0, 1, 0, True, None), (0, 1, 1, True, None), (0, 1, 1, False, None),
    (1, 10, 10, True, "float32"), (-1, 1, 64, False, "float32")], ids=str)
def test_linspace(device, start, stop, num, endpoint, dtype):
    assert_like_numpy(nl.linspace(start, stop, num, endpoint=endpoint, dtype=dtype,
                                  device=device),
                      np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype), ulp=2)


@pytest.mark.parametrize("args,k,dtype", [((3,), 0, None), ((3, 4), 1, None), ((4,), -2, None),
                                          ((2, 5), 3, "int32"), ((3,), 5, "bool"),
                                          ((0,), 0, None)], ids=str)
def test_eye(device, args, k, dtype):
    assert_like_numpy(nl.eye(*args, k=k, dtype=dtype, device=device),
                      np.eye(*args, k=k, dtype=dtype))


# --- astype, where, clip, round ------------------------------------------------------------

def _cast_source(src, dst) -> np.ndarray:
    """Values of `src` whose cast to `dst` NumPy defines (no NaN/inf/out-of-range float->int)."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src.kind == "f" and dst.kind in "iu":
        lo = 0 if dst.kind == "u" else -100
        return np.array([lo, 0, 1, 2.5, 99.9, 100, 7.75, -0.0], src)
    if src.kind == "f" and dst.kind == "f":
        return values(src)
    return values(src)


@pytest.mark.parametrize("dst", DTYPES, ids=str)
@pytest.mark.parametrize("src", DTYPES, ids=str)
def test_astype(device, src, dst):
    def make():
        return {d: (lambda x, d=d: np_call(x.astype, d),
                    lambda x, d=d: nl.astype(x, d), [np.resize(_cast_source(src, d), 32)])
                for d in DTYPES}
    cases = _batch(("astype", str(src)), device, make)
    _check_case(cases, dst, "astype", f"{src}->{dst}: ")


def test_astype_method_and_pending(device):
    x = np.linspace(-3, 3, 13)
    a = on(device, x)
    assert_like_numpy((a * 2).astype(nl.int32) + 1, (x * 2).astype(np.int32) + 1)
    assert_like_numpy(a.astype("float32"), x.astype(np.float32))


def test_where(device):
    rng = np.random.default_rng(3)
    c = rng.random((4, 5)) < 0.5
    x = rng.integers(-5, 5, (4, 5)).astype(np.int8)
    y = rng.standard_normal((5,)).astype(np.float32)
    C, X, Y = on(device, c), on(device, x), on(device, y)
    assert_like_numpy(nl.where(C, X, Y), np.where(c, x, y))
    assert_like_numpy(nl.where(C, X, 1), np.where(c, x, np.int8(1)))
    assert_like_numpy(nl.where(C, 1.5, Y), np.where(c, np.float32(1.5), y))
    assert_like_numpy(nl.where(X > 0, X, -X), np.where(x > 0, x, -x))
    assert_like_numpy(nl.where(C, 1, 2.0), np.where(c, 1, 2.0))


@pytest.mark.parametrize("dtype,lo,hi", [("float64", -1.0, 2.0), ("float32", 0, None),
                                         ("int8", -3, 3), ("uint8", None, 7),
                                         ("int64", 2, 1)], ids=str)
def test_clip(device, dtype, lo, hi):
    x = values(dtype)
    expected = np_call(np.clip, x, lo, hi)
    assert_like_numpy(nl.clip(on(device, x), lo, hi), expected)


def test_clip_array_bounds(device):
    x = np.linspace(-2, 2, 9)
    lo, hi = np.full(9, -1.0), np.linspace(0, 3, 9)
    assert_like_numpy(nl.clip(on(device, x), on(device, lo), on(device, hi)),
                      np.clip(x, lo, hi))
    # NumPy scalars, NumPy arrays and lists as bounds; np.clip on a numlazy array
    assert_like_numpy(nl.clip(on(device, x), np.float64(-1.0), hi), np.clip(x, -1.0, hi))
    assert_like_numpy(nl.clip(on(device, x), lo, list(hi)), np.clip(x, lo, hi))
    assert_like_numpy(np.clip(on(device, x), np.float64(0), 1), np.clip(x, 0, 1))


@pytest.mark.parametrize("dtype", [
    "float32", "float64", "int8", "int64", "uint8", "bool"])
def test_round(device, dtype):
    x = values(dtype)
    if np.dtype(dtype).kind == "f":
        x = np.concatenate([x, np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.49, -3.51], dtype)])
    try:
        expected = np_call(np.round, x)
    except TypeError:
        with pytest.raises(TypeError):
            nl.round(on(device, x))
        return
    assert_like_numpy(nl.round(on(device, x)), expected, ulp=0, signed_zeros=True)



# --- matmul -------------------------------------------------------------------------------

@pytest.mark.parametrize("s1,s2", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 5)),
                                   ((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((1, 1), (1, 1))], ids=str)
def test_matmul(device, s1, s2):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    assert_like_numpy(nl.matmul(on(device, a), on(device, b)), a @ b, rtol=1e-12, atol=1e-12)
    assert_like_numpy(on(device, a) @ on(device, b), a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d1,d2", [("float32", "float32"), ("int32", "int32"),
                                   ("int32", "float32"), ("int64", "uint8"),
                                   ("bool", "bool")], ids=str)
def test_matmul_dtypes(device, d1, d2):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 4, (3, 5)).astype(d1)
    b = rng.integers(0, 4, (5, 2)).astype(d2)
    assert_like_numpy(on(device, a) @ on(device, b), a @ b, rtol=1e-6)


def test_matmul_of_pending_views(device):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((4, 3))
    b = rng.standard_normal((5, 3))
    A, B = on(device, a), on(device, b)
    y = nl.sin(A) @ (B * 2).T + 1
    assert_like_numpy(y, np.sin(a) @ (b * 2).T + 1, rtol=1e-12, atol=1e-12)
    z = (A[::-1] @ B.T)[:, ::2]
    assert_like_numpy(z, (a[::-1] @ b.T)[:, ::2], rtol=1e-12, atol=1e-12)


def test_matmul_shape_mismatch_raises(device):
    with pytest.raises(ValueError):
        on(device, np.ones((3, 4))) @ on(device, np.ones((3, 4)))


# --- the compile cache: sizes, values and scalars are runtime arguments --------------------

def test_second_call_does_not_compile(device):
    def f(a, b, s):
        y = nl.sin(a) * s + b[::-1]
        return nl.sum(y.T, axis=0), nl.max(y), y[1:] - 1

    def check(shape, s, seed):
        rng = np.random.default_rng(seed)
        a, b = rng.standard_normal(shape), rng.standard_normal(shape)
        outs = f(on(device, a), on(device, b), s)
        nl.sync(list(outs))
        y = np.sin(a) * s + b[::-1]
        for got, want in zip(outs, (np.sum(y.T, axis=0), np.max(y), y[1:] - 1)):
            assert_like_numpy(got, want, rtol=1e-12, atol=1e-12)

    check((3, 4), 2.0, 0)
    before = nl.metrics.counter_value("UncachedCompile") or 0
    check((6, 5), -0.5, 1)
    check((2, 9), 3.0, 2)
    assert (nl.metrics.counter_value("UncachedCompile") or 0) == before, \
        "same structure with other sizes/values/scalars compiled again"
