"""The namespace is complete: every name of the array API standard 2023.12 (functions,
constants, dtypes, the linalg extension, the array object's attributes and methods) exists,
and `__array_namespace_info__()` answers as the standard asks.

The lists are the standard's, written out here rather than derived from numlazy, so a name
missing from numlazy fails.
"""
from __future__ import annotations

import numpy as np
import pytest

import numlazy as nl

CONSTANTS = ["e", "inf", "nan", "newaxis", "pi"]
DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64", "complex64", "complex128"]

FUNCTIONS = {
    "creation": ["arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full",
                 "full_like", "linspace", "meshgrid", "ones", "ones_like", "tril", "triu",
                 "zeros", "zeros_like"],
    "data types": ["astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type"],
    "elementwise": [
        "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
        "bitwise_left_shift", "bitwise_invert", "bitwise_or", "bitwise_right_shift",
        "bitwise_xor", "ceil", "clip", "conj", "copysign", "cos", "cosh", "divide", "equal",
        "exp", "expm1", "floor", "floor_divide", "greater", "greater_equal", "hypot", "imag",
        "isfinite", "isinf", "isnan", "less", "less_equal", "log", "log1p", "log2", "log10",
        "logaddexp", "logical_and", "logical_not", "logical_or", "logical_xor", "maximum",
        "minimum", "multiply", "negative", "not_equal", "positive", "pow", "real", "remainder",
        "round", "sign",
        "signbit", "sin", "sinh", "square", "sqrt", "subtract", "tan", "tanh", "trunc"],
    "indexing": ["take"],
    "inspection": ["__array_namespace_info__"],
    "linear algebra": ["matmul", "matrix_transpose", "tensordot", "vecdot"],
    "manipulation": ["broadcast_arrays", "broadcast_to", "concat", "expand_dims", "flip",
                     "moveaxis", "permute_dims", "repeat", "reshape", "roll", "squeeze",
                     "stack", "tile", "unstack"],
    "searching": ["argmax", "argmin", "nonzero", "searchsorted", "where"],
    "sets": ["unique_all", "unique_counts", "unique_inverse", "unique_values"],
    "sorting": ["argsort", "sort"],
    "statistics": ["cumulative_sum", "max", "mean", "min", "prod", "std", "sum", "var"],
    "utility": ["all", "any"],
}

LINALG = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
          "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv",
          "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace", "vecdot",
          "vector_norm"]

FFT = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
       "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

ARRAY = ["__abs__", "__add__", "__and__", "__array_namespace__", "__bool__", "__complex__",
         "__dlpack__", "__dlpack_device__", "__eq__", "__float__", "__floordiv__", "__ge__",
         "__getitem__", "__gt__", "__index__", "__int__", "__invert__", "__le__", "__lshift__",
         "__lt__", "__matmul__", "__mod__", "__mul__", "__ne__", "__neg__", "__or__",
         "__pos__", "__pow__", "__rshift__", "__setitem__", "__sub__", "__truediv__",
         "__xor__", "to_device", "dtype", "device", "mT", "ndim", "shape", "size", "T"]

@pytest.mark.parametrize("name", CONSTANTS + DTYPES + [n for names in FUNCTIONS.values()
                                                       for n in names])
def test_namespace_has(name):
    assert hasattr(nl, name), f"numlazy.{name} is missing"
    if name not in CONSTANTS + DTYPES:
        assert callable(getattr(nl, name))


@pytest.mark.parametrize("name", LINALG)
def test_linalg_has(name):
    assert callable(getattr(nl.linalg, name, None)), f"numlazy.linalg.{name} is missing"
    assert name in nl.linalg.__all__


@pytest.mark.parametrize("name", FFT)
def test_fft_has(name):
    assert callable(getattr(nl.fft, name, None)), f"numlazy.fft.{name} is missing"


@pytest.mark.parametrize("name", ARRAY)
def test_array_has(name):
    assert hasattr(nl.Array, name), f"numlazy.Array.{name} is missing"


def test_constants_and_dtypes():
    assert nl.e == np.e and nl.pi == np.pi and nl.inf == np.inf and np.isnan(nl.nan)
    assert nl.newaxis is None
    for name in DTYPES:
        assert getattr(nl, name) == np.dtype(name)


# --- __array_namespace_info__ ----------------------------------------------------------------

def test_info_capabilities_and_defaults():
    info = nl.__array_namespace_info__()
    assert info.capabilities() == {"boolean indexing": True, "data-dependent shapes": True}
    assert info.default_device() == nl.device(nl.config.get("device"))
    with nl.default_device("numpy"):
        assert info.default_device() == nl.device("numpy")
    defaults = info.default_dtypes()
    assert defaults["real floating"] == nl.float64
    assert defaults["integral"] == defaults["indexing"] == nl.int64
    assert defaults["complex floating"] == nl.complex128
    assert info.default_dtypes(device="numpy") == defaults
    devices = info.devices()
    assert nl.device("cpu") in devices and nl.device("numpy") in devices


@pytest.mark.parametrize("kind,names", [
    ("bool", ["bool"]),
    ("signed integer", ["int8", "int16", "int32", "int64"]),
    ("unsigned integer", ["uint8", "uint16", "uint32", "uint64"]),
    ("integral", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]),
    ("real floating", ["float32", "float64"]),
    ("complex floating", ["complex64", "complex128"]),
    (("bool", "real floating"), ["bool", "float32", "float64"]),
    (None, DTYPES)], ids=str)
def test_info_dtypes(kind, names):
    got = nl.__array_namespace_info__().dtypes(kind=kind)
    assert sorted(got) == sorted(names)
    assert all(got[n] == np.dtype(n) for n in names)


def test_info_dtypes_complex_and_numeric():
    info = nl.__array_namespace_info__()
    assert sorted(info.dtypes(kind="complex floating")) == ["complex128", "complex64"]
    numeric = info.dtypes(kind="numeric")
    assert "bool" not in numeric and sorted(numeric) == sorted(
        info.dtypes(kind=("integral", "real floating", "complex floating")))


def test_info_errors():
    info = nl.__array_namespace_info__()
    with pytest.raises(ValueError, match="dtypes: kind must be None, one of 'bool'"):
        info.dtypes(kind="float")
    with pytest.raises(ValueError, match="unknown device type 'tpu'"):
        info.dtypes(device="tpu")
