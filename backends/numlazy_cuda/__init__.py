"""numlazy's CUDA backend: fused kernels as Numba CUDA kernels on NVIDIA GPUs.

Registered through the `numlazy.backends` entry-point group (`cuda = numlazy_cuda:CudaBackend`),
like any third-party backend; the core never imports it. numba-cuda is optional
(`pip install "numlazy[cuda]"`): without it, or without a GPU and driver, `"cuda"` is still
listed by `nl.list_backends()` but asking for it raises an error saying what is missing and
that `NUMLAZY_DEVICE=cpu` works. Under Numba's CUDA simulator (`NUMBA_ENABLE_CUDASIM=1`) it runs
everywhere, slowly, with small grids.

Buffers are Numba device arrays. Each fused `LoopKernel` becomes a generated module (see
`render`) holding a few kernel variants; a launcher picks one and its grid from the loop's
sizes and the device's multiprocessor count. Matmul goes to CuPy (cuBLAS, zero-copy through
`__cuda_array_interface__`) when it is importable, else to a tiled shared-memory kernel.
All numba-cuda imports of numlazy live in this package.
"""
from __future__ import annotations

import importlib.util
import math
import threading

import numpy as np

from numlazy import cache, metrics
from numlazy.backends import fastmath, resolve
from numlazy.codegen import KernelParts, RowParts
from numlazy.fusion import LoopKernel, RowKernel
from numlazy.registry import Backend

from . import render as _render
from .allocator import DeviceMemory
from .launch import Kernel

_HINT = ("; install it with `pip install \"numba-cuda[cu13]\"` (or \"numlazy[cuda]\"), or run "
         "on the CPU with NUMLAZY_DEVICE=cpu (or device=\"cpu\")")


def _load_cuda():
    """numba.cuda from numba-cuda, or RuntimeError saying what is missing."""
    if importlib.util.find_spec("numba_cuda") is None:
        raise RuntimeError("numlazy device 'cuda' is not available: numba-cuda is not "
                           "installed" + _HINT)
    try:
        from numba import cuda
    except Exception as exc:  # broken CUDA bindings, etc.
        raise RuntimeError(f"numlazy device 'cuda' is not available: importing numba.cuda "
                           f"failed ({exc!r})" + _HINT) from exc
    if not cuda.is_available():
        reason = ""
        try:
            from numba.cuda.cudadrv.driver import driver
            driver.get_device_count()
        except Exception as exc:
            reason = f" ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})"
        raise RuntimeError("numlazy device 'cuda' is not available: no CUDA GPU or driver "
                           f"was found{reason}; run on the CPU with NUMLAZY_DEVICE=cpu (or "
                           "device=\"cpu\"), or set NUMBA_ENABLE_CUDASIM=1 for Numba's (slow) "
                           "CUDA simulator")
    return cuda


def available() -> str:
    """Empty if the backend can run here, else why not."""
    try:
        _load_cuda()
    except RuntimeError as exc:
        return str(exc)
    return ""


class CudaBackend(DeviceMemory, Backend):
    name = "cuda"
    fuses_rows = True

    def __init__(self):
        cuda = self.cuda = _load_cuda()
        from numba.cuda.core import config as cuda_config
        self.simulator = bool(cuda_config.ENABLE_CUDASIM)
        # numlazy sizes grids on purpose (small ones under the simulator, for small arrays).
        cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = 0
        self._count = len(cuda.gpus)
        self.current = 0                 # the selected device's index
        self._lock = threading.Lock()
        self._sms: dict[int, int] = {}
        self._cupy = None

    # -- devices ---------------------------------------------------------------------------

    def device_count(self) -> int:
        return self._count

    def _select(self, index: int) -> None:
        if self._count > 1 and self.cuda.get_current_device().id != index:
            self.cuda.select_device(index)
        self.current = index

    def multiprocessors(self, index: int = 0) -> int:
        sms = self._sms.get(index)
        if sms is None:
            sms = 1 if self.simulator else \
                self.cuda.gpus[index].MULTIPROCESSOR_COUNT
            self._sms[index] = sms
        return sms

    def synchronize(self, index: int) -> None:
        self._select(index)
        self.cuda.synchronize()

    # -- data ------------------------------------------------------------------------------

    def to_device(self, array, index):
        self._select(index)
        buffer = self.allocator(index).allocate(array.shape, array.dtype)
        if buffer.size:        # ordered on the current stream, after what it already holds
            buffer.copy_to_device(array if array.flags.c_contiguous else
                                  np.array(array, order="C"), stream=self.current_stream(index))
        return buffer

    def to_host(self, buffer):
        """A read: waits for the work queued on the current stream, then copies."""
        if isinstance(buffer, np.ndarray):
            return buffer
        stream = self.current_stream(self.current)
        host = buffer.copy_to_host(stream=stream)
        stream.synchronize()
        return host

    def allocate(self, shape, dtype, index):
        self._select(index)
        return self.allocator(index).allocate(shape, dtype)      # the caching pool

    # -- kernels ---------------------------------------------------------------------------

    def compile_kernel(self, kernel, graph):
        if isinstance(kernel, RowKernel):
            parts = RowParts(graph, kernel)
        elif isinstance(kernel, LoopKernel):
            parts = KernelParts(graph, kernel)
        else:
            raise NotImplementedError(f"cuda backend: cannot lower {type(kernel).__name__}")
        module = cache.load_module(_render.render(parts, self.simulator,
                                                  fastmath("cuda", graph, kernel)))
        if isinstance(kernel, RowKernel):
            return RowReduction(self, module, parts.rank, kernel.outer)
        if kernel.reduce is None:
            return Elementwise(self, module, parts.rank)
        red = parts.reduction()
        axes, acc_dtype = red[4], red[2]
        if len(axes) == parts.rank:
            return FullReduction(self, module, acc_dtype)
        return AxisReduction(self, module, parts.rank, axes)

    def run_opaque(self, op_name, inputs, out, node):
        if op_name != "matmul":
            raise NotImplementedError(op_name)
        a, b = inputs
        tf32 = out.dtype == np.float32 and resolve("cuda", "matmul") == "tf32"
        if not self.simulator and out.dtype.kind == "f" and self._cupy_module() is not None:
            _cupy_matmul(self._cupy, a, b, out, tf32)
            metrics.increment("cuda::matmul_cupy_tf32" if tf32 else "cuda::matmul_cupy")
            return
        if a.ndim <= 2 and b.ndim <= 2 and _contiguous_or_2d(a) and _contiguous_or_2d(b):
            a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
            b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
            out2 = out.reshape(a2.shape[0], b2.shape[1])
            if a2.dtype == out.dtype and b2.dtype == out.dtype:
                self._tiled_matmul(a2, b2, out2, tf32)
                metrics.increment("cuda::matmul_tiled_tf32" if tf32 else "cuda::matmul_tiled")
                return
        # Batched or broadcast operands: through the host (counted, never silent).
        metrics.increment("fallback::matmul_host")
        result = np.matmul(self.to_host_view(a), self.to_host_view(b))
        out.copy_to_device(np.ascontiguousarray(result.astype(out.dtype, copy=False)))

    def to_host_view(self, x):
        return x if isinstance(x, np.ndarray) else x.copy_to_host()

    def _cupy_module(self):
        if self._cupy is None:
            try:
                import cupy
                self._cupy = cupy
            except Exception:
                self._cupy = False
        return self._cupy or None

    def _tiled_matmul(self, a, b, out, tf32=False):
        module = cache.load_module(_render.matmul_source(out.dtype, self.simulator, tf32))
        tile = module.TILE
        m, n = out.shape
        if m == 0 or n == 0:
            return
        grid = ((n + tile - 1) // tile, (m + tile - 1) // tile)
        module.matmul[grid, (tile, tile), self.current_stream(self.current)](a, b, out)


def _cupy_matmul(cp, a, b, out, tf32: bool) -> None:
    """`out = a @ b` through CuPy's cuBLAS; `tf32`: float32 on TF32 tensor cores (CuPy's
    compute type `COMPUTE_TYPE_TF32`, what `CUPY_TF32=1` selects), else CuPy's default
    float32 compute. CuPy's setting is process-wide, so it is restored after the call."""
    linalg = cp._core._routines_linalg
    old = linalg.get_compute_type(np.float32)
    want = linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT
    if old != want:
        linalg.set_compute_type(np.float32, want)
    try:
        cp.matmul(cp.asarray(a), cp.asarray(b), out=cp.asarray(out))
    finally:
        if old != want:
            linalg.set_compute_type(np.float32, old)


def _contiguous_or_2d(x) -> bool:
    return x.ndim == 2 or x.is_c_contiguous()


def _pow2(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


GRID_LIMIT = 2 ** 31 - 1        # blocks in a grid's x dimension


class _Launcher:
    """Common launch arithmetic: threads per block and block caps for GPU or simulator."""

    def __init__(self, backend: CudaBackend, module):
        self.module = module
        self.backend = backend
        self.sim = backend.simulator
        sms = backend.multiprocessors()
        self.threads = 32 if self.sim else _render.MAX_THREADS
        self.max_blocks = 2 if self.sim else 32 * sms       # grid-stride loops beyond this
        self.partials = 2 if self.sim else 4 * sms          # blocks of a full reduction

    def kernel(self, name: str):
        """The module's kernel `name` (None if it has none), launched without Numba's
        per-call dispatch (`launch.Kernel`)."""
        fn = getattr(self.module, name, None)
        return None if fn is None else Kernel(fn, self.backend)

    def group(self, inner: int) -> int:
        """Threads per block for a block-per-output reduction over `inner` elements."""
        lo = 2 if self.sim else 32
        return max(lo, min(self.threads, _pow2(inner)))


class Elementwise(_Launcher):
    def __init__(self, backend, module, rank):
        super().__init__(backend, module)
        self.rank = rank
        self.flat = self.kernel("flat")
        self.rows = self.kernel("rows")
        self.lanes = module.LANES          # elements per thread and iteration of `flat`
        # A vectorized `flat` runs fastest with a vector per thread and no grid-stride
        # iterations: the 2^27 float32 chain, queued, 0.523 ms with 32 blocks per SM,
        # 0.500 ms uncapped (H200, bench/NOTES.md session 13).
        self.flat_blocks = self.max_blocks if self.lanes == 1 or self.sim else GRID_LIMIT

    def __call__(self, sizes, outs, ins, rts):
        total = math.prod(sizes)
        if total == 0:
            return
        n = tuple(sizes) or (1,)
        last = sizes[-1] if sizes else 1
        if self.rows is not None and last >= 128 and not self.sim:
            threads = min(self.threads, _pow2(last))
            blocks = min(total // last, self.max_blocks)
            self.rows(blocks, threads, (n, *outs, *ins, *rts))
        else:
            per_block = self.threads * self.lanes
            blocks = min((total + per_block - 1) // per_block, self.flat_blocks)
            self.flat(blocks, self.threads, (n, *outs, *ins, *rts))


class AxisReduction(_Launcher):
    def __init__(self, backend, module, rank, axes):
        super().__init__(backend, module)
        self.axes = axes
        self.kept = [d for d in range(rank) if d not in axes]
        self.last_reduced = (rank - 1) in axes
        self.block, self.thread = self.kernel("block"), self.kernel("thread")

    def __call__(self, sizes, outs, ins, rts):
        outer = math.prod(sizes[d] for d in self.kept)
        if outer == 0:
            return
        inner = math.prod(sizes[d] for d in self.axes)
        n = tuple(sizes)
        # A block per output where its threads read neighbours (the reduced dims are last)
        # or where there are too few outputs to fill the GPU; else a thread per output.
        if inner > 16 and (self.last_reduced or outer < 4 * self.threads * self.partials):
            threads = self.group(inner)
            blocks = min(outer, self.max_blocks)
            self.block(blocks, threads, (n, *outs, *ins, *rts))
        else:
            blocks = min((outer + self.threads - 1) // self.threads, self.max_blocks)
            self.thread(blocks, self.threads, (n, *outs, *ins, *rts))


class RowReduction(AxisReduction):
    """A row kernel: launched as a reduction over the trailing dims (`block`: a block per
    row, threads from the row's length; `thread`: a thread per row for short rows), or, for
    rows of `slots` elements per thread of a block of 2^k warps that the kernel's registers
    allow, `exact`: a block per row holding the row's inputs in registers."""

    def __init__(self, backend, module, rank, outer):
        super().__init__(backend, module, rank, tuple(range(outer, rank)))
        self.exact = self.kernel("exact")
        self.slots = _render.row_cache(self.sim)
        self.fewest, self.most = (2, self.threads) if self.sim else (32, 1024)
        self._fits: dict = {}            # threads -> whether an `exact` block of them launches

    def __call__(self, sizes, outs, ins, rts):
        inner = math.prod(sizes[d] for d in self.axes)
        threads, rest = divmod(inner, self.slots)
        if self.exact is None or rest or threads != _pow2(threads) or \
                not self.fewest <= threads <= self.most:       # the trees want powers of 2
            return super().__call__(sizes, outs, ins, rts)
        outer = math.prod(sizes[d] for d in self.kept)
        if not outer:
            return
        args = (tuple(sizes), *outs, *ins, *rts)
        fits = self._fits.get(threads)
        if fits is None:    # above 256 threads, the registers ptxas chose may not allow it
            fits = self._fits[threads] = threads <= 256 or threads <= self.exact.max_threads(args)
        if not fits:
            return super().__call__(sizes, outs, ins, rts)
        self.exact(min(outer, self.max_blocks), threads, args)


class FullReduction(_Launcher):
    def __init__(self, backend, module, acc_dtype):
        super().__init__(backend, module)
        self.acc_dtype = acc_dtype
        self.buffers: dict = {}
        self.partial, self.final = self.kernel("partial"), self.kernel("final")

    def _partials(self, blocks):
        bufs = self.buffers.get(blocks)
        if bufs is None:
            cuda = self.backend.cuda
            bufs = self.buffers[blocks] = (cuda.device_array(blocks, self.acc_dtype),
                                           cuda.device_array(blocks, np.int64))
        return bufs

    def __call__(self, sizes, outs, ins, rts):
        total = math.prod(sizes)
        threads = self.threads
        blocks = max(1, min((total + threads - 1) // threads, self.partials))
        pacc, pidx = self._partials(blocks)
        n = tuple(sizes) or (1,)
        self.partial(blocks, threads, (n, pacc, pidx, *outs, *ins, *rts))
        final_threads = max(2 if self.sim else 32, min(threads, _pow2(blocks)))
        self.final(1, final_threads, (pacc, pidx, blocks, outs[-1]))
