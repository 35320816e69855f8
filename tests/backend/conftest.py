"""Backend suite fixtures and NumPy-comparison helpers.

Every test here takes the `device` fixture, so it runs once per registered backend
(`nl.list_backends()`). Results are compared with NumPy by `assert_like_numpy`: same shape,
same dtype (NumPy's float16 results map to float32, as in `numlazy/dtypes.py`), NaN
positions and infinities equal, finite values equal within a tolerance chosen by dtype.
"""
from __future__ import annotations

import gc
import os
import warnings

import numpy as np
import pytest

import numlazy as nl



def _unavailable(name: str) -> str:
    """Why the registered backend `name` cannot run here ("" when it can)."""
    try:
        nl.registry.backend_for(nl.device(name))
    except RuntimeError as exc:
        return str(exc)
    return ""


# Every registered backend that can run on this machine (CUDA: a GPU, or the simulator).
UNAVAILABLE = {name: why for name in nl.list_backends() if (why := _unavailable(name))}
DEVICES = [name for name in nl.list_backends() if name not in UNAVAILABLE]


def pytest_report_header(config):
    lines = [f"numlazy devices under test: {', '.join(DEVICES)}"]
    lines += [f"  not tested: {name}: {why}" for name, why in UNAVAILABLE.items()]
    return lines

# A representative set of dtypes for elementwise tests.
DTYPES = [np.dtype(d) for d in
          ("bool", "int8", "int32", "int64", "uint8", "uint64", "float32", "float64")]


@pytest.fixture(autouse=True)
def _freeze_survivors():
    """Keep the shared per-test `gc.collect()` (tests/conftest.py) cheap: collect this test's
    garbage, then move the survivors (compiled kernels, caches) to the permanent generation so
    later full collections do not rescan them. Without it the suite spends most of its time
    in gc as Numba's heap grows."""
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def skip_if_slow(device):
    """Big arrays (the parallel kernel variants) are far too slow on a simulated GPU."""
    if SIMULATED and device.startswith("cuda"):
        pytest.skip("large arrays are too slow under the CUDA simulator")


def known_bug(request, device, reason, devices=None):
    """Mark the running test as an expected failure from a numlazy bug in generated code.
    The NumPy interpreter device runs NumPy itself and is never affected; the bug is checked
    strictly on the CPU (a fix turns the xfail into a failure until the mark is removed) and
    loosely on other compiled devices (which share the code generator's templates)."""
    if device == "numpy" or (devices is not None and device not in devices):
        return
    request.applymarker(pytest.mark.xfail(strict=device == "cpu", reason=reason))


def numlazy_dtype(np_dtype) -> np.dtype:
    """The dtype numlazy gives where NumPy gives `np_dtype` (float16 becomes float32)."""
    d = np.dtype(np_dtype)
    return np.dtype(np.float32) if d == np.float16 else d


def on(device, array, dtype=None):
    """A numlazy array on `device` holding `array`."""
    return nl.asarray(np.asarray(array, dtype=dtype), device=device)


def np_call(fn, *args, **kwargs):
    """Call NumPy with floating-point warnings silenced (NaN/inf/overflow are expected)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def ufunc_reference(ufunc, *args):
    """NumPy's result of `ufunc(*args)`; where NumPy picks a float16 loop numlazy computes in
    float32, so the reference does too."""
    out = np_call(ufunc, *args)
    if np.asarray(out).dtype == np.float16:
        out = np_call(ufunc, *args, dtype=np.float32)
    return np.asarray(out)


def _ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between finite floats of one dtype."""
    itype = np.int32 if a.dtype == np.float32 else np.int64
    ia = a.view(itype).astype(np.int64)
    ib = b.view(itype).astype(np.int64)
    # map to a monotonic integer line (negative floats count down from zero)
    big = np.int64(np.iinfo(itype).min)
    ia = np.where(ia < 0, big - ia, ia)
    ib = np.where(ib < 0, big - ib, ib)
    return np.abs(ia.astype(object) - ib.astype(object)).astype(np.float64) \
        if itype == np.int64 else np.abs(ia - ib).astype(np.float64)


def assert_like_numpy(actual, expected, *, ulp=None, rtol=None, atol=None,
                      check_dtype=True, signed_zeros=False, err=""):
    """`actual` (a numlazy array) matches NumPy's `expected`.

    Floats: NaN where expected is NaN, the same infinities, finite values within `ulp` ULPs
    (default 4) or `rtol`/`atol`; signs of zeros compared when `signed_zeros`. Other dtypes:
    exactly equal.
    """
    assert isinstance(actual, nl.Array), f"{err}expected a numlazy Array, got {type(actual)}"
    expected = np.asarray(expected)
    want_dtype = numlazy_dtype(expected.dtype)
    assert actual.shape == expected.shape, \
        f"{err}shape {actual.shape} != NumPy's {expected.shape}"
    if check_dtype:
        assert actual.dtype == want_dtype, f"{err}dtype {actual.dtype} != NumPy's {want_dtype}"
    got = np.asarray(actual)
    assert got.shape == expected.shape, f"{err}read back shape {got.shape} != {expected.shape}"
    assert got.dtype == actual.dtype, f"{err}read back dtype {got.dtype} != {actual.dtype}"
    if got.dtype.kind != "f":
        exp = expected.astype(got.dtype) if expected.dtype != got.dtype else expected
        bad = got != exp
        assert not bad.any(), _mismatch(err, got, exp, bad)
        return
    exp = expected.astype(got.dtype)
    g_nan, e_nan = np.isnan(got), np.isnan(exp)
    assert (g_nan == e_nan).all(), _mismatch(err + "NaN positions differ; ", got, exp,
                                             g_nan != e_nan)
    g_inf, e_inf = np.isinf(got), np.isinf(exp)
    bad_inf = (g_inf | e_inf) & (got != exp)
    assert not bad_inf.any(), _mismatch(err + "infinities differ; ", got, exp, bad_inf)
    fin = ~(g_nan | g_inf | e_inf)
    g, e = got[fin], exp[fin]
    close = g == e
    if rtol is not None or atol is not None:
        close |= np.abs(g.astype(np.float64) - e.astype(np.float64)) <= \
            (atol or 0.0) + (rtol or 0.0) * np.abs(e.astype(np.float64))
    if rtol is None or ulp is not None:
        close |= _ulp_distance(g, e) <= (4 if ulp is None else ulp)
    if not close.all():
        bad = np.zeros(got.shape, bool)
        bad[fin] = ~close
        raise AssertionError(_mismatch(err + "values differ; ", got, exp, bad))
    if signed_zeros:
        zeros = fin & (exp == 0)
        bad = zeros & (np.signbit(got) != np.signbit(exp))
        assert not bad.any(), _mismatch(err + "signs of zeros differ; ", got, exp, bad)


def _mismatch(err, got, exp, bad) -> str:
    idx = np.argwhere(np.asarray(bad).reshape(got.shape) if got.ndim else np.asarray(bad))
    lines = [f"{err}{int(np.sum(bad))} of {got.size} elements differ"]
    for i in idx[:8]:
        i = tuple(i)
        lines.append(f"  at {i}: numlazy {got[i]!r}, NumPy {exp[i]!r}")
    return "\n".join(lines)


def reduction_tolerance(dtype) -> dict:
    """float32 sums accumulate in float64 in numlazy (NumPy sums pairwise in float32)."""
    d = np.dtype(dtype)
    if d == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    if d == np.float64:
        return dict(rtol=1e-12, atol=1e-12)
    return {}
