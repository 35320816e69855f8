"""The backend interface and the registry of backends.

A backend is small (DESIGN.md rule 6): how many devices it has, moving arrays to and from them,
allocating, compiling one fused loop kernel, running an opaque op, and synchronizing. Fusion,
caching, metrics and the run loop are core. Backends are found through the entry-point group
`numlazy.backends` (the CPU backend registers itself that way) or `register_backend`.

    >>> import numlazy as nl
    >>> "cpu" in nl.list_backends()
    True
"""
from __future__ import annotations

import threading
import warnings
from importlib.metadata import entry_points
from typing import Callable

import numpy as np

from .device import Device

ENTRY_POINT_GROUP = "numlazy.backends"


class Backend:
    """What a device type must provide. Subclass it and register a factory."""

    name = "?"
    fuses_rows = False         # whether compile_kernel lowers fusion.RowKernel too

    def device_count(self) -> int:
        return 1

    def unavailable_reason(self) -> str:
        """Why the backend has no device (empty when it has one)."""
        return ""

    def to_device(self, array: np.ndarray, index: int):
        """A device buffer holding a copy of (or, on host backends, the same) C-contiguous data."""
        raise NotImplementedError

    def to_host(self, buffer) -> np.ndarray:
        raise NotImplementedError

    def allocate(self, shape: tuple, dtype: np.dtype, index: int):
        raise NotImplementedError

    def can_lower(self, op_name: str) -> bool:
        """Whether `compile_kernel`/`run_opaque` handle this op; others use the interpreter."""
        return True

    def compile_kernel(self, kernel, graph) -> Callable:
        """Compile a fused loop kernel (`fusion.LoopKernel`, or `fusion.RowKernel` if
        `fuses_rows`) to a callable `f(sizes, outs, ins, rts)`; sizes is the loop space's
        shape."""
        raise NotImplementedError

    def run_opaque(self, op_name: str, inputs: list, out, node) -> None:
        """Run an opaque op (e.g. matmul) on device buffers, writing `out`."""
        raise NotImplementedError

    def kernel_source(self, kernel, graph):
        """The generated source of a fused kernel, for `nl.debug` (None: not available)."""
        return None

    def compile_graph(self, graph):
        """Override to run whole graphs another way (the interpreter does); None = fuse."""
        return None

    def synchronize(self, index: int) -> None:
        pass

    # -- optional: what nl.accelerator asks of an accelerator backend -------------------------
    # Host backends keep these defaults; an accelerator sets `is_accelerator` and overrides
    # the rest (the CUDA backend's are in numlazy_cuda/allocator.py).

    is_accelerator = False

    @staticmethod
    def installed() -> bool:
        """Whether the backend's software is installed (a device may still be missing)."""
        return True

    def current_device(self) -> int:
        return 0

    def set_device(self, index: int) -> None:
        pass

    def current_stream(self, index: int):
        """The stream numlazy's work on device `index` is ordered on (None: no streams)."""
        return None

    def set_stream(self, stream, index: int) -> None:
        raise NotImplementedError(f"the {self.name} backend has no streams")

    def memory_info(self, index: int) -> tuple:
        """(free, total) bytes of device `index`."""
        raise NotImplementedError(f"the {self.name} backend reports no device memory")

    def memory_stats(self, index: int) -> dict:
        """Flat allocator statistics with dotted keys (`allocated_bytes.all.current`...)."""
        return {}

    def empty_cache(self) -> None:
        """Give cached, unused device memory back."""

    def reset_peak_memory_stats(self, index: int) -> None:
        pass

    def reset_accumulated_memory_stats(self, index: int) -> None:
        pass


_lock = threading.RLock()
_factories: dict[str, Callable[[], Backend]] = {}
_instances: dict[str, Backend] = {}
_discovered = False


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Register `factory` (called once, lazily) as the backend for device type `name`."""
    if not name or ":" in name:
        raise ValueError(f"backend name must be a non-empty string without ':', got {name!r}")
    with _lock:
        _factories[name] = factory
        _instances.pop(name, None)


class _Plugin:
    """An entry point not imported yet: a plugin costs its import (the CUDA backend's is
    numba-cuda's) only when its device type is first used, or when `load_plugins` runs."""

    __slots__ = ("ep",)

    def __init__(self, ep):
        self.ep = ep


def _discover() -> None:
    global _discovered
    with _lock:
        if _discovered:
            return
        _discovered = True
        from .interpreter import InterpreterBackend
        _factories.setdefault("numpy", InterpreterBackend)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _factories.setdefault(ep.name, _Plugin(ep))


def _load(name: str):
    """The factory registered as `name`, importing its plugin if needed (None: a broken
    plugin, skipped with a warning)."""
    factory = _factories.get(name)
    if not isinstance(factory, _Plugin):
        return factory
    ep = factory.ep
    try:
        loaded = ep.load()
    except Exception as exc:  # a broken plugin must not break numlazy
        warnings.warn(f"numlazy backend plugin {ep.name!r} ({ep.value}) failed to "
                      f"load and is skipped: {exc!r}", RuntimeWarning, stacklevel=3)
        if _factories.get(name) is factory:
            del _factories[name]
        return None
    if _factories.get(name) is factory:      # unless register_backend replaced it meanwhile
        _factories[name] = loaded
    return _factories.get(name)


def load_plugins() -> dict:
    """Every registered factory, imported: {device type: factory}."""
    _discover()
    with _lock:
        for name in list(_factories):
            _load(name)
        return dict(_factories)


def list_backends() -> list[str]:
    """Names of the registered device types."""
    _discover()
    return sorted(_factories)


def backend_for(device: Device) -> Backend:
    """The backend of `device`; raises if the type is unknown or the device does not exist."""
    if device.index is None:                  # every step asks: a dict lookup once created
        backend = _instances.get(device.type)
        if backend is not None:
            return backend
    _discover()
    with _lock:
        backend = _instances.get(device.type)
        if backend is None:
            factory = _load(device.type)
            if factory is None:
                raise ValueError(f"unknown device type {device.type!r}; registered types: "
                                 f"{', '.join(sorted(_factories))}")
            backend = _instances[device.type] = factory()
    if device.index is not None:
        count = backend.device_count()
        if device.index >= count:
            reason = backend.unavailable_reason()
            raise RuntimeError(f"device {device} is not available: index {device.index} is out "
                               f"of range ({count} {device.type} device(s))"
                               + (f"; {reason}" if reason else ""))
    return backend
