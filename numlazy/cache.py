"""Caches: the bounded in-memory LRU of compiled programs, and the on-disk kernel store.

Generated kernel source is written once, atomically, as `kernels/nlk_<sha256>.py` under the
cache directory and imported as a real module, so Numba's own `cache=True` can store its
machine code beside it and a second process loads instead of compiling (NUMBA_NOTES.md).
The name is the hash of the full source, which carries the numlazy and Numba versions, so a
file is only ever loaded for the exact text that named it; a file whose text differs (a
corrupted or foreign write) is replaced, never imported.
"""
from __future__ import annotations

import collections
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

from . import config


class LRU:
    """A thread-safe least-recently-used map holding at most `capacity()` entries."""

    def __init__(self, capacity, on_evict=None):
        self._capacity = capacity
        self._on_evict = on_evict
        self._data: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        # The last hit, answered with one comparison: a step loop looks up the same key every
        # time, and hashing a graph's key twice (get, move_to_end) cost 3 us. Its recency is
        # brought up to date before anything reads the order (put, keys).
        self._last = None

    def get(self, key):
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        with self._lock:
            self._touch_last()
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self._last = (key, value)
            return value

    def _touch_last(self) -> None:
        last, self._last = self._last, None
        if last is not None and last[0] in self._data:
            self._data.move_to_end(last[0])

    def put(self, key, value) -> None:
        with self._lock:
            self._touch_last()
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > max(1, self._capacity()):
                old_key, old = self._data.popitem(last=False)
                if self._on_evict:
                    self._on_evict(old_key, old)

    def clear(self) -> None:
        with self._lock:
            self._last = None
            self._data.clear()

    def keys(self) -> list:
        """The keys, least recently used first (a snapshot)."""
        with self._lock:
            self._touch_last()
            return list(self._data)

    def __len__(self):
        return len(self._data)


programs = LRU(lambda: config.get("compile_cache_size"))
modules = LRU(lambda: config.get("compile_cache_size"),
              on_evict=lambda name, module: sys.modules.pop(name, None))


def kernel_dir() -> str:
    return os.path.join(config.get("cache_dir"), "kernels")


def load_module(source: str):
    """Import generated `source` as a real module (in memory, or from the disk store)."""
    name = "nlk_" + hashlib.sha256(source.encode()).hexdigest()[:32]
    module = modules.get(name)
    if module is not None:
        return module
    if config.get("disk_cache"):
        path = os.path.join(kernel_dir(), name + ".py")
        _write_once(path, source)
    else:
        path = os.path.join(tempfile.mkdtemp(prefix="numlazy-"), name + ".py")
        with open(path, "w") as f:
            f.write(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    modules.put(name, module)
    return module


def _write_once(path: str, source: str) -> None:
    try:
        with open(path) as f:
            if f.read() == source:
                return
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    os.replace(tmp, path)


def clear_memory() -> None:
    """Forget compiled programs (kernels stay on disk)."""
    programs.clear()
