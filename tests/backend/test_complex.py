"""complex64 and complex128 on every device, NumPy as the oracle.

Each test computes many ops in one step (one fused kernel per dtype), so the CUDA simulator
and CI's two cores compile few kernels. Special operands are the product of a set of
components with infinities, NaN and signed zeros; NumPy's special values are matched exactly
(signs of zeros where NumPy's are defined by C99 Annex G), finite values within a few ULPs of
the result's modulus. The helpers behind the compiled targets (`numlazy/complex_math.py`,
the same text on the CPU and on CUDA) are also checked directly, compiled with `numba.njit`.
"""
from __future__ import annotations

import cmath
import io
import itertools
import math

import numba
import numpy as np
import pytest

import numlazy as nl
from numlazy import complex_math, fusion, ops
from numlazy.ir import Graph

from .conftest import SIMULATED, np_call, on

CDTYPES = ["complex64", "complex128"]
COMPONENTS = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, np.inf, -np.inf, np.nan]

# (numlazy name, NumPy function) of every unary op that takes complex input.
UNARY = [("abs", np.absolute), ("negative", np.negative), ("positive", np.positive),
         ("sqrt", np.sqrt), ("square", np.square), ("exp", np.exp), ("expm1", np.expm1),
         ("log", np.log), ("log1p", np.log1p), ("log2", np.log2), ("log10", np.log10),
         ("sin", np.sin), ("cos", np.cos), ("tan", np.tan), ("sinh", np.sinh),
         ("cosh", np.cosh), ("tanh", np.tanh), ("asin", np.arcsin), ("acos", np.arccos),
         ("atan", np.arctan), ("asinh", np.arcsinh), ("acosh", np.arccosh),
         ("atanh", np.arctanh), ("sign", np.sign), ("isnan", np.isnan), ("isinf", np.isinf),
         ("isfinite", np.isfinite), ("round", np.round), ("conj", np.conjugate),
         ("real", np.real), ("imag", np.imag)]

# Where NumPy's result is approximate, not special: ULPs of the result's modulus.
ULPS = {"complex64": 8, "complex128": 8}


def special_operands(dtype) -> np.ndarray:
    re, im = np.array(list(itertools.product(COMPONENTS, COMPONENTS))).T
    z = np.empty(re.size, dtype)
    z.real, z.imag = re, im
    return z


def random_operands(dtype, n=24, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.empty(n, dtype)
    z.real = rng.standard_normal(n) * 3
    z.imag = rng.standard_normal(n) * 3
    return z


def _components(a):
    a = np.asarray(a)
    return [a.real, a.imag] if a.dtype.kind == "c" else [a]


def check_values(got, expected, ulp, err="", exact_zeros=True, atol=0.0):
    """NaN and infinities where NumPy has them, zeros with NumPy's signs (unless not
    `exact_zeros`: a rounded sum may miss an exact zero), finite values within `ulp` ULPs
    of the modulus of NumPy's value (or `atol`)."""
    with np.errstate(all="ignore"):
        _check_values(got, expected, ulp, err, exact_zeros, atol)


def _check_values(got, expected, ulp, err, exact_zeros, atol):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{err}shape {got.shape} != NumPy's {expected.shape}"
    scale = np.abs(expected).astype(np.float64)
    for g, e in zip(_components(got), _components(expected)):
        if g.dtype.kind != "f":
            bad = g != e
        else:
            tiny = np.finfo(g.dtype).tiny
            scale = np.where(np.isfinite(scale), scale, np.abs(e))    # inf + i x: x's ULPs
            special = ~np.isfinite(e) | (exact_zeros & (e == 0))
            same = (g == e) & (np.signbit(g) == np.signbit(e)) | (np.isnan(g) & np.isnan(e))
            error = np.abs(g.astype(np.float64) - e)
            close = np.isfinite(g) & np.isfinite(e) & (
                (error <= ulp * np.spacing(np.maximum(scale, tiny).astype(g.dtype))) |
                (error <= atol))
            bad = ~same & (special | ~close)
        assert not bad.any(), err + "; ".join(
            f"at {i}: numlazy {got.flat[i]!r}, NumPy {expected.flat[i]!r}"
            for i in np.nonzero(bad.reshape(-1))[0][:6])


@pytest.fixture(scope="module", params=CDTYPES)
def cdtype(request):
    return np.dtype(request.param)


def test_unary_ops_match_numpy(device, cdtype):
    """Every unary op on special and random operands: one step, one kernel."""
    z = np.concatenate([special_operands(cdtype), random_operands(cdtype)])
    x = on(device, z)
    results = [getattr(nl, name)(x) for name, _ in UNARY]
    schedule = fusion.partition(Graph([y._node for y in results]), lambda op: True)
    assert len(schedule.kernels) == 1, "every complex unary op fuses into one kernel"
    nl.mark_step(device)
    for (name, fn), y in zip(UNARY, results):
        expected = np_call(fn, z)
        assert y.dtype == expected.dtype, f"{name}: dtype {y.dtype} != NumPy's {expected.dtype}"
        check_values(y, expected, ULPS[cdtype.name], err=f"{name} ({cdtype}): ")


def test_binary_ops_and_weak_scalars(device, cdtype):
    """Arithmetic and comparisons between complex arrays, real arrays and Python scalars;
    a Python complex is weak (it keeps complex64)."""
    a, b = random_operands(cdtype, 12, 1), random_operands(cdtype, 12, 2)
    b[:3] = [0j, complex(np.inf, 1), complex(np.nan, 0)]
    r = np.linspace(-2, 2, 12).astype(np.float32)
    x, y, f = on(device, a), on(device, b), on(device, r)
    cases = {
        "add": (x + y, a + b), "subtract": (x - y, a - b), "multiply": (x * y, a * b),
        "divide": (x / y, np_call(np.divide, a, b)), "pow": (x ** 2, a ** 2),
        # NumPy's complex64 pow loses ~20 ULPs (exp(b log a) in single precision), numlazy's
        # compiled targets compute it in double: the reference is complex128, rounded, and
        # the tolerance (POW_ULPS) covers the numpy device.
        "pow_array": (nl.pow(x, y[3:4]), np_call(np.power, a.astype(np.complex128),
                                                 b[3:4].astype(np.complex128)).astype(cdtype)),
        "equal": (x == y, a == b), "not_equal": (x != x, a != a),
        "scalar": (x * 1j + 2, a * 1j + 2), "real_array": (f * (1 - 2j), r * (1 - 2j)),
        "mixed": (f + x, r + a), "reverse": (3.5 / x, np_call(np.divide, 3.5, a)),
    }
    nl.mark_step(device)
    for name, (got, want) in cases.items():
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != NumPy's {want.dtype}"
        ulp = POW_ULPS if name == "pow_array" else ULPS[cdtype.name]
        check_values(got, want, ulp, err=f"{name} ({cdtype}): ")


POW_ULPS = 32


def test_exp_where_only_the_modulus_overflows(device):
    """e^x overflows but e^x * sin(y) does not: NumPy keeps the finite component."""
    for dtype, x in (("complex128", 710.0), ("complex64", 89.0)):
        z = np.array([x + 0.5j, x - 0.5j, x + 2j], dtype)
        with np.errstate(over="ignore"):
            want = np.exp(z)
        check_values(nl.exp(on(device, z)), want, ULPS[dtype], err=f"exp ({dtype}): ")


def test_complex_scalars_are_runtime_values(device):
    """A new Python complex scalar reuses the compiled program (scalars are not in the
    key; CUDA's fast launch path passes them through the dispatcher)."""
    x = on(device, random_operands("complex64", 8))
    for k, c in enumerate((1 + 2j, -0.5j, 3 + 0j)):
        y = x * c
        got = np.asarray(y)
        np.testing.assert_allclose(got, np.asarray(x) * np.complex64(c), rtol=1e-6)
        assert y.dtype == np.complex64
        if k == 0:
            compiles = nl.metrics.counter_value("UncachedCompile")
            dispatched = nl.metrics.counter_value("cuda::dispatched_launch")
    assert nl.metrics.counter_value("UncachedCompile") == compiles
    if device.startswith("cuda") and not SIMULATED:     # the fast path took the scalars
        assert nl.metrics.counter_value("cuda::dispatched_launch") == dispatched


def test_promotion_tables():
    """The array API 2023.12 promotion of complex with real dtypes and Python scalars."""
    c64, c128, f32, f64 = nl.complex64, nl.complex128, nl.float32, nl.float64
    assert nl.result_type(c64, f64) == c128
    assert nl.result_type(c64, f32) == c64
    assert nl.result_type(c64, c128) == c128
    assert nl.result_type(f32, 1j) == c64
    assert nl.result_type(c64, 1j) == c64
    assert nl.result_type(c64, 2.5) == c64
    assert nl.result_type(nl.int8, 1j) == c128
    assert nl.result_type(f32, complex) == c128        # the type `complex` is complex128
    assert nl.can_cast(f32, c64) and nl.can_cast(c64, c128) and nl.can_cast(f64, c128)
    assert not nl.can_cast(c128, c64) and not nl.can_cast(c64, f64)
    assert not nl.can_cast(f64, c64)
    assert nl.isdtype(c64, "complex floating") and nl.isdtype(c128, "numeric")
    assert not nl.isdtype(c64, "real floating") and not nl.isdtype(f64, "complex floating")
    info = nl.finfo(c64)
    assert (info.bits, info.dtype, info.eps) == (32, np.dtype("float32"), np.finfo("f4").eps)
    assert nl.finfo(c128).dtype == np.dtype("float64")
    with pytest.raises(TypeError, match="finfo.*complex64"):
        nl.finfo(nl.int32)


REAL_ONLY = sorted(ops.REAL_ONLY | ops.REAL_FLOATING_ONLY)


@pytest.mark.parametrize("name", REAL_ONLY + ["clip", "max", "min", "argmax", "argmin",
                                              "sort", "argsort"])
def test_real_only_ops_raise_at_record_time(name):
    x = nl.asarray(np.ones(3, np.complex64), device="numpy")
    fn = getattr(nl, name)
    with pytest.raises(TypeError, match=rf"{name}.*complex64"):
        if name == "clip":
            fn(x, 0, 1)
        elif name in ops.TABLE and ops.TABLE[name].nin == 2:
            fn(x, x)
        else:
            fn(x)
    if name in ops.TABLE and ops.TABLE[name].nin == 2:    # a complex scalar with a real array
        with pytest.raises(TypeError, match=rf"{name}.*Python complex"):
            fn(nl.asarray(np.ones(3), device="numpy"), 1j)


def test_astype(device):
    """Real to complex and between complex dtypes cast; complex to bool is `x != 0`;
    complex to a real dtype raises (the standard's recommendation), naming the ways out."""
    z = np.array([1 + 2j, 0j, complex(0, -0.5), complex(np.nan, 0)], np.complex128)
    x = on(device, z)
    r = on(device, np.array([1.5, -0.0, np.inf, 2.0], np.float32))
    down, to_bool, up = x.astype(nl.complex64), x.astype(nl.bool), r.astype(nl.complex128)
    nl.mark_step(device)
    check_values(down, z.astype(np.complex64), 0)
    check_values(to_bool, z.astype(bool), 0)
    check_values(up, np.asarray(r).astype(np.complex128), 0)
    with pytest.raises(TypeError, match=r"astype.*complex128.*float64.*real\(x\)"):
        x.astype(nl.float64)
    with pytest.raises(TypeError, match="astype"):
        nl.astype(x, nl.int32)


def test_reductions(device, cdtype):
    """sum/prod/mean (complex64 accumulates in complex128), var/std (a real result),
    any/all, vecdot (conjugates x1), over all axes and over one."""
    a = random_operands(cdtype, 12, 3).reshape(3, 4)
    a[0, 0] = 0j
    x = on(device, a)
    cases = {
        "sum": (nl.sum(x), np.sum(a)), "sum1": (nl.sum(x, axis=1), np.sum(a, axis=1)),
        "prod0": (nl.prod(x, axis=0), np.prod(a, axis=0)), "mean": (nl.mean(x), np.mean(a)),
        "mean0": (nl.mean(x, axis=0), np.mean(a, axis=0)), "var": (nl.var(x), np.var(a)),
        "std1": (nl.std(x, axis=1, correction=1), np.std(a, axis=1, ddof=1)),
        "any": (nl.any(x, axis=1), np.any(a, axis=1)), "all": (nl.all(x), np.all(a)),
        "vecdot": (nl.vecdot(x, x[::-1]), np.vecdot(a, a[::-1])),
    }
    nl.mark_step(device)
    for name, (got, want) in cases.items():
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != NumPy's {want.dtype}"
        check_values(got, want, 64, err=f"{name} ({cdtype}): ", exact_zeros=False)


def test_creation(device):
    """linspace with complex endpoints, full with a complex fill value."""
    got = nl.linspace(1 - 1j, 3 + 2j, 5, device=device)
    assert got.dtype == np.complex128
    check_values(got, np.linspace(1 - 1j, 3 + 2j, 5), 4)
    got = nl.linspace(0, 2j, 4, endpoint=False, dtype=nl.complex64, device=device)
    check_values(got, np.linspace(0, 2j, 4, endpoint=False, dtype=np.complex64), 4)
    filled = nl.full((2, 2), 1 - 1j, device=device)
    assert filled.dtype == np.complex128
    check_values(filled, np.full((2, 2), 1 - 1j), 0)
    with pytest.raises(TypeError, match="linspace.*complex"):
        nl.linspace(0j, 1, 3, dtype=nl.float64)


def test_namespace_functions(device):
    """The rest of the namespace on complex arrays: matmul (BLAS, CuPy or the tiled CUDA
    kernel), matrix-vector products, where, concat with a real array, cumulative_sum,
    setitem, roll, eye; NumPy's protocols (np.conjugate, np.real) and Python's complex()."""
    a = np.array([[1 + 1j, 2 - 1j], [0.5j, -3 + 0j]], np.complex64)
    z = on(device, a)
    u = nl.zeros((2, 2), dtype=nl.complex64, device=device)
    u[0, 1] = 5j
    cases = {
        "matmul": (z @ z, a @ a), "matvec": (z @ z[0], a @ a[0]),
        "where": (nl.where(nl.real(z) > 0, z, 1j), np.where(a.real > 0, a, np.complex64(1j))),
        "concat": (nl.concat([z, on(device, np.ones((1, 2)))]),
                   np.concatenate([a, np.ones((1, 2))])),
        "cumulative_sum": (nl.cumulative_sum(z, axis=1), np.cumsum(a, axis=1)),
        "setitem": (u, np.array([[0, 5j], [0, 0]], np.complex64)),
        "roll": (nl.roll(z, 1), np.roll(a, 1)),
        "eye": (nl.eye(2, dtype=nl.complex128, device=device), np.eye(2, dtype=complex)),
        "np.conjugate": (np.conjugate(z), np.conjugate(a)), "np.real": (np.real(z), a.real),
    }
    nl.mark_step(device)
    for name, (got, want) in cases.items():
        assert isinstance(got, nl.Array), name
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != NumPy's {want.dtype}"
        check_values(got, want, 8, err=f"{name}: ", exact_zeros=False)
    assert complex(z[1, 0]) == 0.5j and z[0, 1].item() == 2 - 1j
    with pytest.raises(TypeError, match=r"full: a complex fill value 1j needs a complex dtype"):
        nl.full(3, 1j, dtype=nl.float64, device=device)


def test_signbit(device):
    """Real floating-point input only (the standard; NumPy also takes integers)."""
    a = np.array([0.0, -0.0, -1.5, 2.0, np.inf, -np.inf, np.nan, -np.nan], np.float32)
    got = nl.signbit(on(device, a))
    check_values(got, np.signbit(a), 0)
    with pytest.raises(TypeError, match=r"signbit is not defined for dtype int32; it accepts "
                                        r"real floating-point dtypes \(float32, float64\)"):
        nl.signbit(on(device, np.arange(3, dtype=np.int32)))


def test_save_load_round_trips_complex(device):
    z = special_operands(np.complex64)
    buf = io.BytesIO()
    nl.save({"z": on(device, z), "scalar": 1.5 - 2j}, buf)
    buf.seek(0)
    out = nl.load(buf)
    assert out["scalar"] == 1.5 - 2j and out["z"].dtype == np.complex64
    check_values(out["z"], z, 0)


# -- the helpers themselves, compiled for the CPU -------------------------------------------

HELPERS = {"csqrt": np.sqrt, "cexp": np.exp, "cexpm1": np.expm1, "clog": np.log,
           "clog1p": np.log1p, "clog2": np.log2, "clog10": np.log10, "csin": np.sin,
           "ccos": np.cos, "ctan": np.tan, "csinh": np.sinh, "ccosh": np.cosh,
           "ctanh": np.tanh, "casin": np.arcsin, "cacos": np.arccos, "catan": np.arctan,
           "casinh": np.arcsinh, "cacosh": np.arccosh, "catanh": np.arctanh, "csign": np.sign}


@pytest.fixture(scope="module", params=["cpu", "cuda"])
def helpers(request):
    """`complex_math.SOURCE` compiled with `numba.njit`, its vocabulary bound as on the CPU
    target (NumPy's scalar functions) or as on the CUDA target (`math` functions and the
    backend's GPU_MATH helpers such as `hypot`; `floor` returns a float there)."""
    namespace = {"cmath": cmath, "inf": np.inf, "nan": np.nan, "float64": np.float64}
    if request.param == "cpu":
        namespace.update({name: getattr(np, name) for name in ops.VOCABULARY})
    else:
        render = pytest.importorskip("numlazy_cuda.render")
        from .test_gpu_math import _cpu_math, _fma_error, _jit, _module
        namespace.update({"cuda": _module("cuda", jit=_jit, fma=_fma_error),
                          "math": _cpu_math(), "floor": np.floor, "float32": np.float32,
                          "libdevice": _module("libdevice", rint=np.rint), "int32": np.int32})
        exec(render.GPU_MATH, namespace)
        namespace.update({name: getattr(math, fn) for name, fn in render.GPU_MATH_NAMES.items()
                          if name != "floor"})
    namespace["helper"] = numba.njit(inline="always")
    exec(complex_math.SOURCE, namespace)
    return namespace


BINARY_HELPERS = {"cdivide": np.divide, "cpower": np.power}


def test_every_helper_is_tested():
    assert sorted({**HELPERS, **BINARY_HELPERS}) == sorted(complex_math.COMPLEX_HELPERS)


@pytest.mark.parametrize("dtype", CDTYPES)
@pytest.mark.parametrize("name", sorted(BINARY_HELPERS))
def test_binary_complex_helper_matches_numpy(helpers, name, dtype):
    """Every pair of special operands (inf, NaN, zeros), and random ones with small integer
    and non-integer exponents."""
    special = special_operands(dtype)
    a, b = (np.array(v, dtype) for v in zip(*itertools.product(special, special)))
    rng = np.random.default_rng(2)
    ra, rb = random_operands(dtype, 64, 4), random_operands(dtype, 64, 5)
    rb[:16] = rng.integers(-5, 6, 16)
    a, b = np.concatenate([a, ra]), np.concatenate([b, rb])
    fn = helpers[name]

    @numba.njit(error_model="numpy")
    def run(a, b, out):
        for i in range(a.size):
            out[i] = fn(a[i], b[i])

    out = np.empty_like(a)
    run(a, b, out)
    expected = reference(BINARY_HELPERS[name], a, b)
    if name == "cpower":      # NumPy's pow of special operands follows its libm: values only
        finite = np.isfinite(a) & np.isfinite(b) & np.isfinite(expected)
        out, expected = out[finite], expected[finite]
    check_values(out, expected, 16, err=f"{name} ({dtype}): ", exact_zeros=name != "cpower")


@pytest.mark.parametrize("dtype", CDTYPES)
@pytest.mark.parametrize("name", sorted(HELPERS))
def test_complex_helper_matches_numpy(helpers, name, dtype):
    """Special components exactly as NumPy, wide-range finite values within a few ULPs."""
    rng = np.random.default_rng(1)
    wide = np.empty(200, dtype)
    wide.real = rng.standard_normal(200) * 10.0 ** rng.integers(-8, 8, 200)
    wide.imag = rng.standard_normal(200) * 10.0 ** rng.integers(-8, 8, 200)
    components = COMPONENTS + [1e300, 1e-300, 700.0, -700.0, 30.0]
    re, im = np.array(list(itertools.product(components, components))).T
    special = np.empty(re.size, dtype)
    special.real, special.imag = re, im
    z = np.concatenate([special, wide])
    fn = helpers[name]

    @numba.njit(error_model="numpy")
    def run(z, out):
        for i in range(z.size):
            out[i] = fn(z[i])

    out = np.empty_like(z)
    run(z, out)
    if name == "clog1p":
        # NumPy's log(hypot(1 + x, y)) cancels where |1 + z| is near 1 (log1p(1e-300) is 0
        # there); the helper's log1p(x (2 + x) + y**2) / 2 does not: NumPy is right to
        # within one ULP of |1 + z| there, not of the result.
        check_values(out, reference(np.log1p, z), 8, err=f"{name} ({dtype}): ",
                     exact_zeros=False, atol=2 * np.finfo(np.float64).eps)
        return
    check_values(out, reference(HELPERS[name], z), 8, err=f"{name} ({dtype}): ")


def reference(fn, *args):
    """NumPy's complex128 result rounded to the operands' dtype: NumPy's own complex64
    loops lose many ULPs in places (log1p near 0, pow), the helpers compute in double
    there."""
    dtype = args[0].dtype
    return np_call(fn, *(a.astype(np.complex128) for a in args)).astype(dtype)
