"""Kernel launches without Numba's per-call dispatch.

Calling a `numba.cuda` kernel (`kernel[grid, block](*args)`) resolves the argument types,
selects an overload and marshals every argument on each call: about 30 µs of host time per
launch (PERF.md), more than the whole kernel for small arrays. A numlazy program launches the
same kernels with arguments of the same types step after step (the compile key fixes dtypes
and ranks), so `Kernel` pays for dispatch once:

1. The first launch goes through the dispatcher, which compiles or loads the kernel, and
   records the compiled overload and, per argument, how to pass it: an array as Numba's
   struct fields (meminfo, parent, size, itemsize, pointer, shape, strides), a tuple as its
   items, a scalar as its Numba type's C type, a complex scalar as its two components. Every
   kernel parameter gets an 8-byte slot in one buffer, and a pointer array lists the slots.
2. Later launches check each argument against what was recorded (array dtype, rank and C
   layout; the Python type of scalars), pack the values into the slots with one
   `struct.pack_into` and call the driver's `cuLaunchKernel` directly, which copies the
   parameters before it returns (bench/cuda_host.py: 16 µs through cuda.core's `launch` on
   the H200 host). Anything that does not match, or a value its C type cannot hold, goes
   through the dispatcher again, so a mismatch costs time, never correctness.

Under the CUDA simulator kernels are Python functions: every launch goes through the
dispatcher there.
"""
from __future__ import annotations

import ctypes
import struct
import threading

from numlazy import metrics

_ARRAY, _TUPLE, _SCALAR, _COMPLEX = range(4)


class _Mismatch(Exception):
    """An argument differs from the recorded overload's: launch through the dispatcher."""


class Kernel:
    """A generated kernel; `kernel(grid, block, args)` launches it on the current stream."""

    __slots__ = ("dispatcher", "backend", "_fns", "_plan", "_params")

    def __init__(self, dispatcher, backend):
        self.dispatcher = dispatcher
        self.backend = backend       # its `current` device index picks the kernel handle
        self._fns: dict = {}         # device index -> the driver's CUfunction (an int)
        self._plan = None            # per argument: (kind, check, struct code or sub-plan)
        self._params = None          # the recorded overload's `_Parameters`

    def __call__(self, grid, block, args) -> None:
        """Launch on the current stream of the backend's current device."""
        backend = self.backend
        stream = backend.current_stream(backend.current)
        fn = self._fns.get(backend.current)
        if fn is not None:
            try:
                self._params.launch(fn, grid, block, stream, _marshal(self._plan, args))
                return
            except _Mismatch:
                pass
        metrics.increment("cuda::dispatched_launch")   # the first launch, or a mismatch
        self.dispatcher[grid, block, stream](*args)
        if fn is None and not backend.simulator:
            self._record(args)

    def max_threads(self, args) -> int:
        """The most threads a block of this kernel may have when launched with `args`
        (its registers decide; compiled here if it was not yet). 1024 under the simulator."""
        if self.backend.simulator:
            return 1024
        d = self.dispatcher
        types = tuple(d.typeof_pyval(a) for a in args)
        return (d.overloads.get(types) or d.compile(types)).max_threads_per_block

    def _record(self, args) -> None:
        """Find the overload the dispatcher just used and plan how to pass each argument."""
        d = self.dispatcher
        types = tuple(d.typeof_pyval(a) for a in args)
        compiled = d.overloads.get(types)
        if compiled is None or _driver() is None:
            return                                   # keep dispatching
        try:
            plan = [_plan(t, a) for t, a in zip(compiled.argument_types, args)]
        except _Mismatch:
            return
        fn = _function(compiled._codelibrary.get_cufunc().handle)
        if fn is None:
            return
        self._plan, self._params = plan, _Parameters(_codes(plan))
        self._fns[self.backend.current] = fn


def _plan(numba_type, value):
    """How to pass `value` of `numba_type`, and what later values must match."""
    from numba.cuda import types
    if isinstance(numba_type, types.Array):
        if numba_type.layout != "C":
            raise _Mismatch
        return (_ARRAY, (value.dtype, numba_type.ndim), "QQqqQ" + "q" * 2 * numba_type.ndim)
    if isinstance(numba_type, types.BaseTuple):
        return (_TUPLE, len(value), [_plan(t, v) for t, v in zip(numba_type, value)])
    if isinstance(numba_type, types.Boolean):
        return (_SCALAR, type(value), "?")
    if isinstance(numba_type, (types.Integer, types.Float)):
        return (_SCALAR, type(value), _CODES[str(numba_type)])
    if isinstance(numba_type, types.Complex):        # (real, imag), as Numba passes it
        return (_COMPLEX, type(value), _CODES[str(numba_type.underlying_float)] * 2)
    raise _Mismatch


_CODES = {"int8": "b", "int16": "h", "int32": "i", "int64": "q", "uint8": "B", "uint16": "H",
          "uint32": "I", "uint64": "Q", "float32": "f", "float64": "d"}


def _codes(plan) -> str:
    """The struct codes of every kernel parameter, in order (one per parameter)."""
    return "".join(_codes(how) if kind == _TUPLE else how for kind, _, how in plan)


def _marshal(plan, args) -> list:
    """The value of every kernel parameter, as Numba's own launch would pass it."""
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
        elif type(value) is not check:
            raise _Mismatch
        elif kind == _COMPLEX:
            out += (value.real, value.imag)
        else:
            out.append(value)
    return out


class _Parameters:
    """One overload's parameter buffer: an 8-byte slot per parameter (every CUDA parameter
    type numlazy passes fits one), and the array of slot pointers `cuLaunchKernel` reads.
    Shared by every launch of the kernel, so filling and launching hold a lock."""

    def __init__(self, codes: str):
        n = len(codes)
        self._struct = struct.Struct("=" + "".join(
            c + f"{8 - struct.calcsize('=' + c)}x" if struct.calcsize("=" + c) < 8 else c
            for c in codes))
        self._buffer = ctypes.create_string_buffer(max(8, 8 * n))
        base = ctypes.addressof(self._buffer)
        self._pointers = (ctypes.c_void_p * max(1, n))(*(base + 8 * k for k in range(n)))
        self._lock = threading.Lock()

    def pack(self, values) -> None:
        """Write every parameter's value into its slot (the caller holds the lock)."""
        try:
            self._struct.pack_into(self._buffer, 0, *values)
        except struct.error:
            raise _Mismatch from None            # a value its C type cannot hold

    def launch(self, fn: int, grid, block, stream, values) -> None:
        gx, gy, gz = (grid, 1, 1) if isinstance(grid, int) else (tuple(grid) + (1, 1))[:3]
        bx, by, bz = (block, 1, 1) if isinstance(block, int) else (tuple(block) + (1, 1))[:3]
        with self._lock:
            self.pack(values)
            err = _driver().cuLaunchKernel(fn, gx, gy, gz, bx, by, bz, 0, int(stream),
                                           self._pointers, None)
        if err:
            raise RuntimeError(f"cuda: cuLaunchKernel failed: {_error_name(err)}")


_DRIVER = []


def _driver():
    """libcuda through ctypes (None where it cannot be loaded: launches keep dispatching)."""
    if not _DRIVER:
        try:
            lib = ctypes.CDLL("libcuda.so.1")
            lib.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + \
                [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            lib.cuLaunchKernel.restype = ctypes.c_int
            lib.cuKernelGetFunction.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                                ctypes.c_void_p]
            lib.cuKernelGetFunction.restype = ctypes.c_int
            lib.cuGetErrorName.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
            _DRIVER.append(lib)
        except (OSError, AttributeError):
            _DRIVER.append(None)
    return _DRIVER[0]


def _function(kernel_handle):
    """The current context's CUfunction of a loaded CUkernel (None if the driver refuses)."""
    fn = ctypes.c_void_p()
    if _driver().cuKernelGetFunction(ctypes.byref(fn), int(kernel_handle)):
        return None
    return fn.value


def _error_name(err: int) -> str:
    name = ctypes.c_char_p()
    _driver().cuGetErrorName(err, ctypes.byref(name))
    return f"{name.value.decode() if name.value else 'unknown error'} ({err})"


