"""Kernel launches without Numba's per-call dispatch.

Calling a `numba.cuda` kernel (`kernel[grid, block](*args)`) resolves the argument types,
selects an overload and marshals every argument on each call: about 30 µs of host time per
launch (PERF.md), more than the whole kernel for small arrays. A numlazy program launches the
same kernels with arguments of the same types step after step (the compile key fixes dtypes
and ranks), so `Kernel` pays for dispatch once:

1. The first launch goes through the dispatcher, which compiles or loads the kernel, and
   records the compiled overload and, per argument, how to pass it: an array as Numba's
   struct fields (size, itemsize, pointer, shape, strides), a tuple as its items, a scalar as
   the C type of its Numba type, a complex scalar as its two components.
2. Later launches check each argument against what was recorded (array dtype, rank and C
   layout; the Python type of scalars) and call the driver directly. Anything that does not
   match goes through the dispatcher again, so a mismatch costs time, never correctness.

Under the CUDA simulator kernels are Python functions: every launch goes through the
dispatcher there.
"""
from __future__ import annotations

import ctypes

from numlazy import metrics

_ARRAY, _TUPLE, _SCALAR, _COMPLEX = range(4)


class _Mismatch(Exception):
    """An argument differs from the recorded overload's: launch through the dispatcher."""


class Kernel:
    """A generated kernel; `kernel(grid, block, args)` launches it on the current stream."""

    __slots__ = ("dispatcher", "backend", "_fns", "_plan", "_configs")

    def __init__(self, dispatcher, backend):
        self.dispatcher = dispatcher
        self.backend = backend       # its `current` device index picks the kernel handle
        self._fns: dict = {}         # device index -> the driver's kernel handle
        self._plan = None            # per argument: (kind, check, C type or sub-plan)
        self._configs: dict = {}

    def __call__(self, grid, block, args) -> None:
        """Launch on the current stream of the backend's current device."""
        backend = self.backend
        stream = backend.current_stream(backend.current)
        fn = self._fns.get(backend.current)
        if fn is not None:
            try:
                kernel_args = _marshal(self._plan, args)
            except _Mismatch:
                pass
            else:
                config = self._configs.get((grid, block))
                if config is None:
                    config = self._configs[grid, block] = _config(grid, block)
                _driver_launch(_core_stream(stream), config, fn, *kernel_args)
                return
        metrics.increment("cuda::dispatched_launch")   # the first launch, or a mismatch
        self.dispatcher[grid, block, stream](*args)
        if fn is None and not backend.simulator:
            self._record(args)

    def _record(self, args) -> None:
        """Find the overload the dispatcher just used and plan how to pass each argument."""
        d = self.dispatcher
        types = tuple(d.typeof_pyval(a) for a in args)
        compiled = d.overloads.get(types)
        if compiled is None:
            return                                   # keep dispatching
        try:
            plan = [_plan(t, a) for t, a in zip(compiled.argument_types, args)]
        except _Mismatch:
            return
        self._plan = plan
        self._fns[self.backend.current] = compiled._codelibrary.get_cufunc().kernel


def _plan(numba_type, value):
    """How to pass `value` of `numba_type`, and what later values must match."""
    from numba.cuda import types
    if isinstance(numba_type, types.Array):
        if numba_type.layout != "C":
            raise _Mismatch
        return (_ARRAY, (value.dtype, numba_type.ndim), None)
    if isinstance(numba_type, types.BaseTuple):
        return (_TUPLE, len(value), [_plan(t, v) for t, v in zip(numba_type, value)])
    if isinstance(numba_type, types.Boolean):
        return (_SCALAR, type(value), None)
    if isinstance(numba_type, (types.Integer, types.Float)):
        return (_SCALAR, type(value), getattr(ctypes, _CTYPES[str(numba_type)]))
    if isinstance(numba_type, types.Complex):        # (real, imag), as Numba passes it
        return (_COMPLEX, type(value), getattr(ctypes, _CTYPES[str(numba_type.underlying_float)]))
    raise _Mismatch


_CTYPES = {"int8": "c_int8", "int16": "c_int16", "int32": "c_int32", "int64": "c_int64",
           "uint8": "c_uint8", "uint16": "c_uint16", "uint32": "c_uint32",
           "uint64": "c_uint64", "float32": "c_float", "float64": "c_double"}


def _marshal(plan, args) -> list:
    """The driver's argument list, as Numba's own launch builds it."""
    out = []
    if len(args) != len(plan):
        raise _Mismatch
    for (kind, check, how), value in zip(plan, args):
        if kind == _ARRAY:
            view = getattr(value, "_strided_memory_view_shim", None)
            if view is None or (value.dtype, value.ndim) != check or \
                    not view._layout.is_contiguous_c:
                raise _Mismatch
            out += (0, 0, view.size, view.dtype.itemsize, view.ptr)
            out += view.shape
            out += view._layout.strides_in_bytes
        elif kind == _TUPLE:
            if len(value) != check:
                raise _Mismatch
            out += _marshal(how, value)
        elif kind == _COMPLEX:
            if type(value) is not check:
                raise _Mismatch
            out += (how(value.real), how(value.imag))
        else:
            if type(value) is not check:
                raise _Mismatch
            out.append(value if how is None else how(value))
    return out


def _config(grid, block):
    from cuda.core import LaunchConfig
    return LaunchConfig(grid=grid, block=block)


_CORE_STREAMS: dict = {}      # id(numba stream) -> (the stream, cuda.core's object for it)


def _core_stream(stream):
    """cuda.core's stream object for a Numba stream (or 0, the default stream), as Numba's
    own launch converts it; made once per stream (the entry keeps the stream alive, so its
    id is not reused; a few streams per program, cleared past 64)."""
    entry = _CORE_STREAMS.get(id(stream))
    if entry is None or entry[0] is not stream:
        from numba.cuda.cudadrv import driver
        if len(_CORE_STREAMS) >= 64:
            _CORE_STREAMS.clear()
        entry = _CORE_STREAMS[id(stream)] = (stream, driver._to_core_stream(stream))
    return entry[1]


def _driver_launch(stream, config, fn, *args) -> None:
    """cuda.core's `launch`, imported on first use (numba-cuda is an optional dependency)."""
    global _driver_launch
    from cuda.core import launch
    _driver_launch = launch
    launch(stream, config, fn, *args)
