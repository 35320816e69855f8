"""A caching device allocator for the CUDA backend, and the memory numbers of nl.accelerator.

Allocating device memory through the driver synchronizes and costs tens of microseconds; a
step allocates its outputs every time. So, like CuPy's and PyTorch's allocators, numlazy keeps
freed blocks in a pool keyed by their rounded size and hands them out again:

1. `allocate(shape, dtype)` rounds the byte size up (512-byte granularity below 1 MiB; above,
   a quarter of the size's power of two, so waste stays under 25 %), takes a pooled block of
   that size or allocates a new one through Numba (`cuda.device_array` of bytes), and returns
   a typed device array viewing the block.
2. The block goes back to the pool when the last array (view, reshape, slice) that uses the
   typed array's memory is gone: each typed array is built on a fresh memory owner object
   (a `MemoryPointer` on a GPU, an `__array_interface__` lease under the simulator) whose
   `__del__` returns the block. Numba's External Memory Management interface is not used:
   the simulator lacks it (NUMBA_NOTES.md), and sitting above Numba's calls works on both.
3. Out of memory: the pool is emptied (and Numba's pending frees flushed) and the allocation
   retried once; a second failure raises `OutOfMemoryError` naming the requested size and
   what is allocated and cached.

Counters follow PyTorch's `memory_stats()` names (`allocated_bytes.all.current`, ...): bytes
in blocks handed out (rounded sizes), bytes requested (exact), bytes reserved from the device
(handed out + pooled), block and segment counts, each with current / peak / allocated / freed.
"""
from __future__ import annotations

import gc
import math
import threading

import numpy as np

SMALL = 1 << 20             # below this, sizes round up to 512 bytes
_GRANULE = 512

# stat name -> has current/peak/allocated/freed (else a plain count)
_TRACKED = ("allocated_bytes", "requested_bytes", "reserved_bytes", "allocation", "segment")
_COUNTS = ("num_alloc_retries", "num_ooms", "num_device_alloc", "num_device_free",
           "num_pool_hits")


class OutOfMemoryError(RuntimeError):
    """The device has no room for an allocation, even after the cache was emptied."""


def round_size(nbytes: int) -> int:
    """The pool block size for a request of `nbytes` bytes."""
    if nbytes <= SMALL:
        return max(_GRANULE, -(-nbytes // _GRANULE) * _GRANULE)
    step = (1 << (nbytes.bit_length() - 1)) // 4
    return -(-nbytes // step) * step


def _fmt(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} bytes"


class CachingAllocator:
    """The pool and counters of one device. `cuda` is `numba.cuda` (or its simulator);
    `limit` (bytes, None = the device's memory) caps what may be reserved."""

    def __init__(self, cuda, index: int, simulator: bool, limit: int | None = None):
        self.cuda, self.index, self.simulator, self.limit = cuda, index, simulator, limit
        self._lock = threading.RLock()
        self._pool: dict[int, list] = {}          # rounded size -> free blocks
        self._leases: dict[int, tuple] = {}       # id(owner) -> (block, size, nbytes)
        self._cur = {k: 0 for k in _TRACKED}
        self._peak = dict(self._cur)
        self._alloc = dict(self._cur)
        self._freed = dict(self._cur)
        self._counts = {k: 0 for k in _COUNTS}

    # -- allocation ------------------------------------------------------------------------

    def allocate(self, shape: tuple, dtype) -> object:
        """A C-contiguous device array of `shape` and `dtype` backed by a pooled block.
        (A step allocates every output: this path is kept short; bench/cuda_host.py.)"""
        dtype = np.dtype(dtype)
        shape = tuple(map(int, shape))
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes == 0:
            return self.cuda.device_array(shape, dtype)     # nothing to pool
        size = round_size(nbytes)
        with self._lock:
            free = self._pool.get(size)
            if free:
                block = free.pop()
                self._counts["num_pool_hits"] += 1
            else:
                block = self._new_block(size, nbytes)
            self._add("allocated_bytes", size)
            self._add("requested_bytes", nbytes)
            self._add("allocation", 1)
        return self._typed(block, size, nbytes, shape, dtype)

    def _new_block(self, size: int, nbytes: int):
        try:
            block = self._device_alloc(size)
        except OutOfMemoryError:
            self._counts["num_alloc_retries"] += 1
            self._release_pool()
            try:
                block = self._device_alloc(size)
            except OutOfMemoryError as exc:
                self._counts["num_ooms"] += 1
                raise OutOfMemoryError(
                    f"cuda:{self.index} is out of memory: tried to allocate {_fmt(nbytes)} "
                    f"(a {_fmt(size)} block); {_fmt(self._cur['allocated_bytes'])} is "
                    f"allocated by numlazy in {self._cur['allocation']} block(s), "
                    f"{_fmt(self._cur['reserved_bytes'])} reserved, 0 bytes cached after "
                    f"emptying the cache; {exc}") from None
        self._add("reserved_bytes", size)
        self._add("segment", 1)
        self._counts["num_device_alloc"] += 1
        return block

    def _device_alloc(self, size: int):
        if self.limit is not None and self._cur["reserved_bytes"] + size > self.limit:
            raise OutOfMemoryError(f"the allocator's limit is {_fmt(self.limit)}")
        try:
            return self.cuda.device_array(size, np.uint8)
        except MemoryError as exc:                       # the simulator (NumPy)
            raise OutOfMemoryError(str(exc) or "MemoryError") from None
        except Exception as exc:                         # CudaAPIError on a GPU
            if "OUT_OF_MEMORY" in str(exc).upper().replace(" ", "_"):
                raise OutOfMemoryError(str(exc)) from None
            raise

    def _typed(self, block, size: int, nbytes: int, shape: tuple, dtype: np.dtype):
        """A typed array over `block` whose memory owner returns the block when collected."""
        strides = _c_strides(shape, dtype.itemsize)
        if self.simulator:
            owner = _Lease(block._ary, shape, strides, dtype)
        else:
            base = block.gpu_data
            owner = _Owner(base.context, base.device_pointer, nbytes)
        # The lease lives here, not on the owner: an owner collected in a reference cycle
        # would take the block into the cycle's garbage, whose weakref callbacks (Numba's
        # free of the block's memory) run before `__del__` could return it.
        self._leases[id(owner)] = (block, size, nbytes)
        owner.allocator = self
        if self.simulator:
            from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
            return FakeCUDAArray(np.asarray(owner))
        return _DeviceNDArray(shape, strides, dtype, gpu_data=owner)

    def _return(self, owner_id: int) -> None:
        """A collected owner's block back to the pool (its `__del__`: a `weakref.finalize`
        per allocation cost 1.6 µs)."""
        lease = self._leases.pop(owner_id, None)
        if lease is not None:
            self._give_back(*lease)

    def _give_back(self, block, size: int, nbytes: int) -> None:
        with self._lock:
            self._sub("allocated_bytes", size)
            self._sub("requested_bytes", nbytes)
            self._sub("allocation", 1)
            self._pool.setdefault(size, []).append(block)

    # -- the pool --------------------------------------------------------------------------

    def empty_cache(self) -> None:
        """Return every pooled (unused) block to the device."""
        with self._lock:
            self._release_pool()

    def _release_pool(self) -> None:
        # Arrays that died in reference cycles still hold their blocks: collect them first.
        gc.collect()
        pool, self._pool = self._pool, {}      # a finalizer may add blocks meanwhile
        for size, blocks in pool.items():
            self._sub("reserved_bytes", size * len(blocks))
            self._sub("segment", len(blocks))
            self._counts["num_device_free"] += len(blocks)
        # Drop every reference before the flush (a loop variable over the blocks would keep
        # the last one alive: on the H200 its 64 MiB stayed with the process).
        pool = blocks = None
        if not self.simulator:       # Numba's memory manager defers frees: flush them
            pending = getattr(self.cuda.current_context().memory_manager, "deallocations",
                              None)     # (an external memory manager frees on its own)
            if pending is not None:
                pending.clear()

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(size * len(b) for size, b in list(self._pool.items()))

    # -- counters --------------------------------------------------------------------------

    def _add(self, key: str, n: int) -> None:
        cur = self._cur[key] = self._cur[key] + n
        self._alloc[key] += n
        if cur > self._peak[key]:
            self._peak[key] = cur

    def _sub(self, key: str, n: int) -> None:
        self._cur[key] -= n
        self._freed[key] += n

    def stats(self) -> dict:
        """PyTorch-style flat statistics, keys sorted."""
        with self._lock:
            out = {}
            for key in _TRACKED:
                for part, table in (("current", self._cur), ("peak", self._peak),
                                    ("allocated", self._alloc), ("freed", self._freed)):
                    out[f"{key}.all.{part}"] = table[key]
            out.update(self._counts)
            out["cached_bytes.all.current"] = self.cached_bytes()
            return dict(sorted(out.items()))

    def reset_peak(self) -> None:
        with self._lock:
            self._peak = dict(self._cur)

    def reset_accumulated(self) -> None:
        with self._lock:
            self._alloc = {k: 0 for k in _TRACKED}
            self._freed = {k: 0 for k in _TRACKED}
            self._counts = {k: 0 for k in _COUNTS}


class _Returning:
    """A memory owner whose collection returns its block to `allocator` (which holds the
    lease, keyed by the owner's id)."""

    allocator = None

    def __del__(self):
        if self.allocator is not None:
            self.allocator._return(id(self))


def _bind_numba() -> None:
    """Bind numba.cuda's device-array classes on first use: numba-cuda is optional, and an
    import statement per allocation costs a microsecond."""
    global _DeviceNDArray, _Owner
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numba.cuda.cudadrv.driver import MemoryPointer

    class Owner(_Returning, MemoryPointer):
        """The memory of the typed arrays over one pooled block (every view and reshape
        of them refers to it)."""

    _DeviceNDArray, _Owner = DeviceNDArray, Owner


def _DeviceNDArray(*args, **kwargs):
    _bind_numba()
    return _DeviceNDArray(*args, **kwargs)


def _Owner(*args):
    _bind_numba()
    return _Owner(*args)


def _c_strides(shape: tuple, itemsize: int) -> tuple:
    strides, step = [], itemsize
    for s in reversed(shape):
        strides.append(step)
        step *= max(s, 1)
    return tuple(reversed(strides))


class _Lease(_Returning):
    """Simulator: the memory owner of a typed view of a pooled NumPy block. NumPy keeps a
    non-array base object alive for every view derived from the array, so this lease lives
    exactly as long as any array that uses the memory."""

    def __init__(self, block: np.ndarray, shape, strides, dtype):
        self._block = block
        self.__array_interface__ = {
            "shape": shape, "typestr": dtype.str, "strides": strides,
            "data": (block.ctypes.data, False), "version": 3,
        }


class DeviceMemory:
    """The optional `Backend` methods of an accelerator (streams, memory) for the CUDA
    backend; mixed into `CudaBackend`, which provides `cuda`, `simulator`, `_count` and
    `_select`."""

    is_accelerator = True

    @staticmethod
    def installed() -> bool:
        import importlib.util
        return importlib.util.find_spec("numba_cuda") is not None

    def allocator(self, index: int) -> CachingAllocator:
        allocators = self.__dict__.setdefault("_allocators", {})
        alloc = allocators.get(index)
        if alloc is None:
            alloc = allocators.setdefault(index, CachingAllocator(self.cuda, index,
                                                                  self.simulator))
        return alloc

    # -- devices and streams -----------------------------------------------------------------

    def current_device(self) -> int:
        return self.__dict__.get("_current_index", 0)

    def set_device(self, index: int) -> None:
        self._select(index)
        self._current_index = index

    def current_stream(self, index: int):
        streams = self.__dict__.setdefault("_streams", {})
        stream = streams.get(index)
        if stream is None:
            stream = streams[index] = self.cuda.default_stream()
        return stream

    def set_stream(self, stream, index: int) -> None:
        kind = type(self.cuda.default_stream())
        if not isinstance(stream, kind):
            raise TypeError(f"set_stream: expected a numba.cuda stream (cuda.stream()), got "
                            f"{type(stream).__name__}")
        self.__dict__.setdefault("_streams", {})[index] = stream

    # -- memory ------------------------------------------------------------------------------

    def memory_info(self, index: int) -> tuple:
        """(free, total) bytes of device `index`; under the simulator, whose device arrays
        live in host memory, the host's available and physical memory."""
        if self.simulator:
            import os
            page = os.sysconf("SC_PAGE_SIZE")
            return (os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page)
        self._select(index)
        free, total = self.cuda.current_context().get_memory_info()
        return int(free), int(total)

    def memory_stats(self, index: int) -> dict:
        return self.allocator(index).stats()

    def empty_cache(self) -> None:
        for alloc in list(self.__dict__.get("_allocators", {}).values()):
            alloc.empty_cache()

    def reset_peak_memory_stats(self, index: int) -> None:
        self.allocator(index).reset_peak()

    def reset_accumulated_memory_stats(self, index: int) -> None:
        self.allocator(index).reset_accumulated()
