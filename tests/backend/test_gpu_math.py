"""The CUDA backend's math helpers (`numlazy_cuda.render.GPU_MATH`) checked against NumPy
without a GPU.

The CUDA simulator binds the vocabulary to NumPy's scalar functions, so the backend suite never
runs these helpers; the PTX test only compiles them. Here the helpers' source is compiled for
the CPU with `numba.njit` (the `math` functions they call have the same IEEE semantics on both
targets; `floor` is bound to a float-returning floor, as on the GPU) and run over special and
random operands, float32 and float64.
"""
from __future__ import annotations

import itertools
import math
import types

import numba
import numpy as np
import pytest

from .conftest import np_call

render = pytest.importorskip("numlazy_cuda.render")


@numba.njit
def _fma_error(a, b, c):
    """`cuda.fma(a, b, c)` where the helpers use it, c = -(a * b) rounded: the rounding error
    of a * b, exact by Dekker's product (the CPU target does not contract a * b + c)."""
    split = 134217729.0
    p = a * b
    ca, cb = split * a, split * b
    ah, bh = ca - (ca - a), cb - (cb - b)
    al, bl = a - ah, b - bh
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return (p + c) + err


def _jit(*args, **kwargs):
    return lambda fn: numba.njit(error_model="numpy")(fn)


def _module(name, **attrs):
    """A module (Numba types module attributes, not class attributes)."""
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def _cpu_math():
    """`math` as the CUDA target has it: float in, float out (`math.floor` on the CPU returns
    an int, and Numba's CPU target has no `math.fmod`)."""
    mod = types.ModuleType("cuda_math")
    for name in ("sqrt", "exp", "log1p", "isinf", "isnan", "ldexp"):
        setattr(mod, name, getattr(math, name))
    mod.fmod, mod.copysign, mod.floor = np.fmod, np.copysign, np.floor
    return mod


@pytest.fixture(scope="module")
def helpers():
    namespace = {"cuda": _module("cuda", jit=_jit, fma=_fma_error), "math": _cpu_math(),
                 "floor": np.floor, "libdevice": _module("libdevice", rint=np.rint),
                 "int32": np.int32, "float32": np.float32, "float64": np.float64}
    exec(render.GPU_MATH, namespace)
    return namespace


def _operands(dtype):
    info = np.finfo(dtype)
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 7.25, -7.25,
               1e30, -1e30, 1e-30, float(info.max), -float(info.max), float(info.tiny),
               float(info.smallest_subnormal), 2.0 ** 30, 0.1, -0.3]
    rng = np.random.default_rng(0)
    special += list(rng.standard_normal(24) * 10.0 ** rng.integers(-6, 7, 24))
    a, b = np.array(list(itertools.product(special, special)), dtype).T
    return a, b


def _run(fn):
    @numba.njit(error_model="numpy")
    def loop(a, b, out):
        for i in range(a.size):
            out[i] = fn(a[i], b[i])
    return loop


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,ufunc", [("floor_divide", np.floor_divide),
                                        ("remainder", np.remainder), ("maximum", np.maximum),
                                        ("minimum", np.minimum)])
def test_gpu_helper_matches_numpy(helpers, name, ufunc, dtype):
    """Bit for bit, signs of zeros and NaN included."""
    a, b = _operands(np.dtype(dtype))
    out = np.empty_like(a)
    _run(helpers[name])(a, b, out)
    expected = np_call(ufunc, a, b)
    same = (out == expected) & (np.signbit(out) == np.signbit(expected))
    same |= np.isnan(out) & np.isnan(expected)
    bad = np.nonzero(~same)[0]
    assert bad.size == 0, f"{name} ({dtype}) differs from NumPy at " + ", ".join(
        f"({a[i]!r}, {b[i]!r}): {out[i]!r} vs {expected[i]!r}" for i in bad[:8])



@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,ufunc,ulps", [("hypot", np.hypot, 2),
                                             ("logaddexp", np.logaddexp, 4)])
def test_gpu_helper_close_to_numpy(helpers, name, ufunc, ulps, dtype):
    """Same special values (NaN, inf, signed zeros), finite values within `ulps` (on the CPU
    here; on a GPU libdevice adds its own rounding, see test_ops.test_logaddexp_cancelling)."""
    a, b = _operands(np.dtype(dtype))
    out = np.empty_like(a)
    _run(helpers[name])(a, b, out)
    expected = np_call(ufunc, a, b)
    fin = np.isfinite(out) & np.isfinite(expected)
    same = (out == expected) | (np.isnan(out) & np.isnan(expected))
    assert same[~fin].all(), f"{name} ({dtype}): special values differ from NumPy"
    ulp = np.abs(out[fin] - expected[fin]) / np.spacing(np.abs(expected[fin]))
    assert ulp.max() <= ulps, f"{name} ({dtype}): {ulp.max()} ULPs from NumPy"
