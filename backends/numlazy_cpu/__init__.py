"""numlazy's CPU backend: fused kernels as Numba `prange` loops on all cores.

Registered through the `numlazy.backends` entry-point group, like any third-party backend.
Buffers are NumPy arrays. Each fused kernel becomes a generated module (see `render`) with a
parallel and a serial variant; loops over fewer than `serial_threshold` elements take the
serial one (a parallel launch costs ~3 µs, NUMBA_NOTES.md; an element of a kernel that calls
transcendental functions counts as more, `Launcher`). Large buffers come from a pool
(`pool.py`) so steady-state steps do not page-fault. Matmul runs through NumPy's BLAS.
"""
from __future__ import annotations

import math
import time

import numba
import numpy as np

from numlazy import cache, complex_math, config, metrics, ops
from numlazy.backends import fastmath
from numlazy.codegen import CONSTANTS, DTYPE_NAMES, KernelParts, RowParts
from numlazy.fusion import RowKernel
from numlazy.registry import Backend

from . import vmath
from .pool import HostPool
from .render import render


class CpuBackend(Backend):
    name = "cpu"
    fuses_rows = True

    def to_device(self, array, index):
        return array

    def to_host(self, buffer):
        return buffer

    def __init__(self):
        self.pool = HostPool(lambda: config.get("host_pool_bytes"))

    def allocate(self, shape, dtype, index):
        return self.pool.allocate(shape, dtype)

    def kernel_source(self, kernel, graph):
        return _source(_parts(kernel, graph), fastmath("cpu", graph, kernel))

    def compile_kernel(self, kernel, graph):
        parts, fast = _parts(kernel, graph), fastmath("cpu", graph, kernel)
        source = _source(parts, fast)                            # (parts.calls complete)
        module = cache.load_module(source)
        return Launcher(module.parallel, module.serial,
                        _weight(parts.calls, bool(fast), source))

    def run_opaque(self, op_name, inputs, out, node):
        if op_name != "matmul":
            raise NotImplementedError(op_name)
        np.matmul(*inputs, out=out)


def _parts(kernel, graph):
    return RowParts(graph, kernel, stash=True) if isinstance(kernel, RowKernel) else \
        KernelParts(graph, kernel)


def _source(parts, fast) -> str:
    source = render(parts, PRELUDE, fast)
    if complex_math.used_by(source):
        source += complex_math.module_text('njit(inline="always")')
    return source


# Vocabulary names whose Numba np.* versions differ from NumPy's loops: on floats Numba's `//`
# and `%` follow NumPy's divmod rules (inf // 1 is NaN, -0.0 % -1 is -0.0), its
# np.floor_divide and np.remainder do not; its np.maximum/minimum return x on ties (0.0 and
# -0.0), NumPy's return y.
CPU_MATH = '''

@njit(inline="always")
def maximum(x, y):
    return x if x > y or x != x else y


@njit(inline="always")
def minimum(x, y):
    return x if x < y or x != x else y


@njit(inline="always")
def floor_divide(x, y):
    return x // y


@njit(inline="always")
def remainder(x, y):
    return x % y
'''

# Numba's complex functions differ from NumPy's on infinite and NaN components: complex loops
# call numlazy's helpers (`numlazy/complex_math.py`, the same text as on the CUDA target),
# appended to the modules that use them.
PRELUDE = "\n".join([
    "from numba import njit, prange",
    "from numpy import empty",
    f"from numpy import {', '.join(ops.VOCABULARY)}",
    f"from numpy import {', '.join(DTYPE_NAMES + list(CONSTANTS))}",
    CPU_MATH,
])


_serial_threshold = 0
# A kernel's work per element, in elements of an arithmetic kernel: 1, plus this for each
# transcendental op it computes (ops.TRANSCENDENTAL), except those computed 8 lanes at a time
# (vmath.py: float32 and float64 sin, cos, exp and log; ~2-3.5 ns an element). Loops
# take the serial variant below `serial_threshold` / weight elements. On the 2-core VM,
# where a parallel launch costs ~20 µs, the tiny workload's step (float64 sin and exp, then
# libm's, weight 9: parallel from 3,641 elements) took 229 -> 200 µs at 4,000 elements and
# 543 -> 292 at 16,000 (bench/NOTES.md, session 16). 4 is low for libm's float64 functions
# (their break-even was near 2,000 elements there); hosts with cheaper launches and more
# cores gain from it at least as early.
TRANSCENDENTAL_WEIGHT = 4


def _weight(calls, fast: bool, source: str) -> int:
    """1 + TRANSCENDENTAL_WEIGHT per (op, dtype) in `calls` that `source` does not compute
    in lanes (a loop with control flow, an argmax's, stays scalar)."""
    lanes = [vmath.lane_function(op, dtype, fast) for op, dtype in calls]
    return 1 + TRANSCENDENTAL_WEIGHT * sum(not (f and f + "(" in source) for f in lanes)


def _refresh() -> None:
    global _serial_threshold
    _serial_threshold = config.get("serial_threshold")


config.watch(_refresh)          # every launch reads it


class Launcher:
    """Calls the serial or parallel variant by loop size times `weight` (the kernel's work
    per element, `TRANSCENDENTAL_WEIGHT`). A variant's first call compiles it or loads it
    from Numba's disk cache; loads count as `DiskCacheHit`, and the call's time is
    `CompileTime`, not `ExecuteTime`."""

    __slots__ = ("parallel", "serial", "weight", "called")

    def __init__(self, parallel, serial, weight: int = 1):
        self.parallel, self.serial, self.weight, self.called = parallel, serial, weight, set()

    def __call__(self, sizes, outs, ins, rts):
        work = math.prod(sizes) * self.weight
        if work < _serial_threshold or self.parallel is None:
            fn, chunks = self.serial, 1
        else:
            fn, chunks = self.parallel, max(1, min(work // 1024, 4 * numba.get_num_threads()))
        if fn in self.called:
            fn(sizes, chunks, *outs, *ins, *rts)
            return
        start = time.perf_counter()          # Numba compiles (or loads) the variant now
        fn(sizes, chunks, *outs, *ins, *rts)
        metrics.lazy_compile(time.perf_counter() - start)
        self.called.add(fn)
        if fn.stats.cache_hits:
            metrics.increment("DiskCacheHit")
