"""A host buffer pool: steady-state steps write into memory they already touched.

A fresh large `np.empty` is page-faulted in by the kernel that first writes it; on 16 cores
that dropped a Numba kernel from 87 to 25 GB/s (PERF.md). The pool keeps large buffers as
raw byte blocks and hands out typed views of them. A block is free again when nothing but
the pool refers to it — no array, no user's `np.asarray` view — which its reference count
says exactly, so a buffer still visible to anyone is never reused.
"""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

MIN_POOLED_BYTES = 1 << 20        # small arrays come from malloc's own free lists


class HostPool:
    def __init__(self, capacity_bytes):
        self._capacity = capacity_bytes          # callable: the current cap in bytes
        self._blocks: dict[int, list] = {}       # nbytes -> byte blocks handed out or free
        self._held = 0
        self._lock = threading.Lock()

    def allocate(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < MIN_POOLED_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            blocks = self._blocks.setdefault(nbytes, [])
            for block in blocks:
                # References: the list, this loop's name, getrefcount's argument.
                if sys.getrefcount(block) == 3:
                    return block.view(dtype).reshape(shape)
            if self._held + nbytes > self._capacity():
                self._release_free()
            if self._held + nbytes > self._capacity():
                return np.empty(shape, dtype)
            block = np.empty(nbytes, np.uint8)
            blocks.append(block)
            self._held += nbytes
            return block.view(dtype).reshape(shape)

    def _release_free(self) -> None:
        for nbytes, blocks in self._blocks.items():
            keep = [b for b in blocks if sys.getrefcount(b) > 3]
            self._held -= nbytes * (len(blocks) - len(keep))
            blocks[:] = keep

    def clear(self) -> None:
        """Forget free blocks (blocks in use stay with their arrays)."""
        with self._lock:
            self._release_free()

    @property
    def held_bytes(self) -> int:
        return self._held
