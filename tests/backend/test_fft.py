"""The `nl.fft` extension on every device, NumPy's `np.fft` as the oracle.

The transforms are host ops (NumPy on every device, counted `fallback::<name>`); their
results have the array API's dtypes (complex64 from float32). `fftfreq`/`rfftfreq` and the
shifts are generated kernels: no fallback.
"""
from __future__ import annotations

import numpy as np
import pytest

import numlazy as nl

from .conftest import on

RNG = np.random.default_rng(0)
REAL = RNG.standard_normal((4, 6))
CPLX = REAL + 1j * RNG.standard_normal((4, 6))

# name, input (real or complex), keyword arguments
CASES = [
    ("fft", CPLX, {}), ("fft", REAL, {"n": 8, "axis": 0}), ("fft", CPLX, {"norm": "ortho"}),
    ("ifft", CPLX, {"n": 4, "norm": "forward"}), ("fftn", CPLX, {}),
    ("fftn", CPLX, {"s": (3, 8), "axes": (1, 0)}), ("ifftn", CPLX, {"axes": (0,)}),
    ("rfft", REAL, {}), ("rfft", REAL, {"n": 5, "axis": 0, "norm": "ortho"}),
    ("irfft", CPLX, {}), ("irfft", CPLX, {"n": 7}), ("rfftn", REAL, {}),
    ("rfftn", REAL, {"s": (4, 4)}), ("irfftn", CPLX, {}), ("irfftn", CPLX, {"s": (4, 5)}),
    ("hfft", CPLX, {}), ("hfft", CPLX, {"n": 6, "norm": "forward"}), ("ihfft", REAL, {}),
]


def _label(case):
    name, x, kwargs = case
    return f"{name}-{'c' if x.dtype.kind == 'c' else 'r'}-" + \
        "-".join(f"{k}={v}" for k, v in kwargs.items())


def _standard_dtype(name, in_dtype):
    """The array API's result dtype: the input's precision, real for irfft*/hfft."""
    single = np.dtype(in_dtype) in (np.float32, np.complex64)
    if name in ("irfft", "irfftn", "hfft"):
        return np.dtype(np.float32 if single else np.float64)
    return np.dtype(np.complex64 if single else np.complex128)


@pytest.mark.parametrize("precision", ["single", "double"])
@pytest.mark.parametrize("case", CASES, ids=_label)
def test_transform_matches_numpy(device, case, precision):
    name, x, kwargs = case
    dtype = {"c": {"single": np.complex64, "double": np.complex128},
             "f": {"single": np.float32, "double": np.float64}}[x.dtype.kind][precision]
    host = x.astype(dtype)
    before = nl.metrics.counter_value(f"fallback::{name}") or 0
    got = getattr(nl.fft, name)(on(device, host), **kwargs)
    expected = getattr(np.fft, name)(host, **kwargs)
    assert got.shape == expected.shape
    assert got.dtype == _standard_dtype(name, dtype)
    tol = 1e-5 if precision == "single" else 1e-12
    np.testing.assert_allclose(np.asarray(got), expected, rtol=tol, atol=tol)
    if device != "numpy":            # the reference device interprets every op anyway
        assert nl.metrics.counter_value(f"fallback::{name}") == before + 1


def test_transform_of_a_lazy_input_fuses_around_the_host_op(device):
    """A pending producer runs before the transform, a consumer after it, in one step."""
    x = on(device, REAL.astype(np.float32))
    y = nl.abs(nl.fft.rfft(x * 2.0)) + 1.0
    expected = np.abs(np.fft.rfft(REAL.astype(np.float32) * 2.0)) + 1.0
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5)


@pytest.mark.parametrize("n,d", [(1, 1.0), (7, 0.5), (8, 2.0)])
def test_frequencies_are_kernels(device, n, d):
    before = sum(nl.metrics.counter_value(c) or 0 for c in nl.metrics.counter_names()
                 if c.startswith("fallback::"))
    f, rf = nl.fft.fftfreq(n, d=d, device=device), nl.fft.rfftfreq(n, d=d, device=device)
    np.testing.assert_allclose(np.asarray(f), np.fft.fftfreq(n, d), rtol=1e-15)
    np.testing.assert_allclose(np.asarray(rf), np.fft.rfftfreq(n, d), rtol=1e-15)
    assert f.dtype == rf.dtype == np.float64 and f.device == nl.device(device)
    after = sum(nl.metrics.counter_value(c) or 0 for c in nl.metrics.counter_names()
                if c.startswith("fallback::"))
    assert after == before


@pytest.mark.parametrize("axes", [None, 0, (1,), (0, 1)])
def test_shifts_match_numpy(device, axes):
    x = np.arange(20.0).reshape(4, 5)
    a = on(device, x)
    shifted, back = nl.fft.fftshift(a, axes=axes), nl.fft.ifftshift(a, axes=axes)
    np.testing.assert_array_equal(np.asarray(shifted), np.fft.fftshift(x, axes=axes))
    np.testing.assert_array_equal(np.asarray(back), np.fft.ifftshift(x, axes=axes))
    np.testing.assert_array_equal(np.asarray(nl.fft.ifftshift(nl.fft.fftshift(a, axes=axes),
                                                              axes=axes)), x)


def test_bad_arguments_raise():
    x = nl.asarray(CPLX, device="numpy")
    r = nl.asarray(REAL, device="numpy")
    with pytest.raises(ValueError, match="norm must be one of 'backward', 'ortho', 'forward'"):
        nl.fft.fft(x, norm="none")
    with pytest.raises(ValueError, match="ifftn: norm"):
        nl.fft.ifftn(x, norm=None)
    with pytest.raises(TypeError, match=r"rfft: x must have a real floating-point dtype"):
        nl.fft.rfft(x)
    with pytest.raises(TypeError, match=r"fft: x must have a floating-point dtype.*int64"):
        nl.fft.fft(nl.asarray(np.arange(4), device="numpy"))
    with pytest.raises(ValueError, match="fft: n must be at least 1"):
        nl.fft.fft(x, n=0)
    with pytest.raises(ValueError, match="s .* and axes .* must have the same length"):
        nl.fft.fftn(x, s=(2, 2), axes=(0,))
    with pytest.raises(ValueError, match="repeated axis"):
        nl.fft.rfftn(r, axes=(1, 1))
    with pytest.raises(np.exceptions.AxisError, match="irfft"):
        nl.fft.irfft(x, axis=2)
    with pytest.raises(ValueError, match="fftfreq: n must be at least 1"):
        nl.fft.fftfreq(0)
    with pytest.raises(TypeError, match="rfftfreq: d must be a Python float"):
        nl.fft.rfftfreq(4, d="1")
