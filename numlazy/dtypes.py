"""Data types: the supported set, and NumPy's promotion rules (weak Python scalars, NEP 50).

numlazy's dtypes are NumPy dtype objects, so `x.dtype == np.float32` and `nl.float32` agree.
Result types are NumPy 2's, computed by NumPy itself (`ufunc.resolve_dtypes`) and cached, so
there is one source of truth for promotion. float16, which NumPy picks for a few integer
inputs (`sin(int8)`), is not supported and becomes float32.

complex64 and complex128 promote as the array API 2023.12 tables say (which NumPy 2 follows:
complex64 with float64 gives complex128); a Python complex is weak (`x * 1j` keeps complex64,
`float32_array * 1j` is complex64).
"""
from __future__ import annotations

import functools

import numpy as np

bool_ = np.dtype("bool")
int8, int16, int32, int64 = (np.dtype(f"int{b}") for b in (8, 16, 32, 64))
uint8, uint16, uint32, uint64 = (np.dtype(f"uint{b}") for b in (8, 16, 32, 64))
float32, float64 = np.dtype("float32"), np.dtype("float64")
complex64, complex128 = np.dtype("complex64"), np.dtype("complex128")

SUPPORTED = (bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64,
             complex64, complex128)
_SUPPORTED = frozenset(SUPPORTED)
NAMES = ", ".join(d.name for d in SUPPORTED)

default_int = int64
default_float = float64
default_complex = complex128


def is_float(dt: np.dtype) -> bool:
    return dt.kind == "f"


def is_integer(dt: np.dtype) -> bool:
    return dt.kind in "iu"


def is_complex(dt: np.dtype) -> bool:
    return dt.kind == "c"


def real_dtype(dt: np.dtype) -> np.dtype:
    """The dtype of a complex dtype's components (float32 for complex64); others unchanged."""
    return {complex64: float32, complex128: float64}.get(dt, dt)


def as_dtype(dtype) -> np.dtype:
    """Parse a user's dtype argument; TypeError naming it and the supported dtypes otherwise."""
    if dtype is bool:
        return bool_
    if dtype is int:
        return default_int
    if dtype is float:
        return default_float
    if dtype is complex:
        return default_complex
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{dtype!r} is not a dtype; supported dtypes: {NAMES}") from None
    return check_supported(dt)


def check_supported(dt: np.dtype) -> np.dtype:
    if dt not in _SUPPORTED:
        raise TypeError(f"dtype {dt} is not supported; supported dtypes: {NAMES}")
    return dt.newbyteorder("=") if dt.byteorder not in "=|" else dt


SCALAR_TYPES = (bool, int, float, complex)


def _widen_half(dt: np.dtype) -> np.dtype:
    return float32 if dt == np.float16 else dt


@functools.lru_cache(maxsize=4096)
def resolve_ufunc(ufunc: np.ufunc, operands: tuple) -> tuple[tuple[np.dtype, ...], np.dtype]:
    """(loop input dtypes, output dtype) of `ufunc` for operands that are dtypes or the Python
    scalar types bool/int/float/complex (weak). TypeError if NumPy has no loop for them."""
    # A Python bool is NumPy's bool (the lowest kind, so weak or strong it promotes the same);
    # resolve_dtypes takes only int, float and complex as Python types.
    operands = tuple(bool_ if o is bool else o for o in operands)
    try:
        resolved = ufunc.resolve_dtypes(operands + (None,))
    except TypeError:
        names = ", ".join(o.__name__ if isinstance(o, type) else str(o) for o in operands)
        raise TypeError(f"{ufunc.__name__} does not accept dtypes ({names})") from None
    resolved = tuple(_widen_half(d) for d in resolved)
    return resolved[:-1], check_supported(resolved[-1])


def result_type(*operands) -> np.dtype:
    """Array API `result_type` over dtypes and Python scalar types (weak)."""
    dts = [o if isinstance(o, type) else np.dtype(o) for o in operands]
    dts = [d for d in dts if not isinstance(d, type)] + [d(0) for d in dts if isinstance(d, type)]
    return check_supported(np.result_type(*dts))


def check_scalar_fits(value, dt: np.dtype, op: str) -> None:
    """NumPy 2 raises for a Python int that does not fit the array's integer dtype."""
    if isinstance(value, int) and not isinstance(value, bool) and is_integer(dt):
        info = np.iinfo(dt)
        if not info.min <= value <= info.max:
            raise OverflowError(
                f"{op}: Python integer {value} is out of bounds for {dt} "
                f"(accepted range {info.min}..{info.max})")
