"""`nl.accelerator`: the accelerator device, its index, streams and memory (API.md section 5).

Modelled on `torch.accelerator`. The accelerator is the first registered backend that declares
itself one (`Backend.is_accelerator`: the CUDA backend); every call answers through the backend
interface (`numlazy/registry.py`). On a machine without a usable accelerator the queries answer
as torch's do — `device_count() == 0`, `is_available() is False`,
`current_accelerator(check_available=True) is None`, empty memory statistics — and calls that
need a device (`set_device_index`, `current_stream`, `synchronize`, `get_memory_info`, ...)
raise a RuntimeError that says why.

Device arguments: an int index, `"cuda:1"`, `nl.device("cuda:1")`, or None for the current
device. A device of another type raises ValueError; so does a device without an index where
one is required (`set_device_index("cuda")`); an index past the device count raises
RuntimeError naming the count.

    >>> import numlazy as nl
    >>> nl.accelerator.device_count() >= 0
    True
    >>> with nl.accelerator.device_index(None):     # None: no switch
    ...     pass
"""
from __future__ import annotations

import contextlib

from .. import registry
from ..device import Device, parse
from . import memory
from .memory import (empty_cache, get_memory_info, max_memory_allocated,  # noqa: F401
                     max_memory_reserved, memory_allocated, memory_reserved, memory_stats,
                     reset_accumulated_memory_stats, reset_peak_memory_stats)


def _accelerator_type():
    """The device type of the first registered accelerator backend whose software is
    installed, or None."""
    factories = registry.load_plugins()
    for name in sorted(factories):
        factory = factories[name]
        if getattr(factory, "is_accelerator", False) and \
                getattr(factory, "installed", lambda: True)():
            return name
    return None


def _backend(required: bool = True):
    """(type, backend) of the accelerator; (None, None) or RuntimeError when there is none."""
    kind = _accelerator_type()
    if kind is None:
        if required:
            raise RuntimeError("numlazy: no accelerator backend is installed (the CUDA "
                               "backend needs numba-cuda: pip install \"numlazy[cuda]\")")
        return None, None
    try:
        backend = registry.backend_for(Device(kind))
    except RuntimeError as exc:
        if required:
            raise RuntimeError(f"numlazy.accelerator: {exc}") from None
        return kind, None
    if backend.device_count() == 0:
        if required:
            raise RuntimeError(f"numlazy: the {kind} accelerator has no devices")
        return kind, None
    return kind, backend


def device_count() -> int:
    """How many accelerator devices there are (0 without an accelerator)."""
    _, backend = _backend(required=False)
    return 0 if backend is None else backend.device_count()


def is_available() -> bool:
    """Whether an accelerator device can be used."""
    return device_count() > 0


def current_accelerator(check_available: bool = False):
    """The accelerator's device type as a device (`nl.device("cuda")`), or None. Like torch,
    without `check_available` it answers for the installed accelerator backend even when no
    device is present; with it, only when a device can be used."""
    kind = _accelerator_type()
    if kind is None or (check_available and not is_available()):
        return None
    return Device(kind)


def _index(device, *, required: bool, name: str) -> int:
    """The device index an argument names (None: the current device when not `required`)."""
    kind, backend = _backend()
    if device is None:
        if required:
            raise ValueError(f"{name}: a device index is required (got None)")
        return backend.current_device()
    if isinstance(device, bool) or not isinstance(device, (int, str, Device)):
        raise TypeError(f"{name}: expected an int index, a device string such as "
                        f"'{kind}:0' or a numlazy device, got {type(device).__name__}")
    if isinstance(device, int):
        index = device
    else:
        d = parse(device)
        if d.type != kind:
            raise ValueError(f"{name}: {str(d)!r} is not a device of the current accelerator "
                             f"({kind}); expected an index, or '{kind}:N'")
        if d.index is None:
            if required:
                raise ValueError(f"{name}: {str(d)!r} has no index; expected '{kind}:N' or "
                                 f"an int")
            return backend.current_device()
        index = d.index
    count = backend.device_count()
    if index < 0:
        raise ValueError(f"{name}: device index must be >= 0, got {index}")
    if index >= count:
        raise RuntimeError(f"{name}: device index {index} is out of range ({count} {kind} "
                           f"device(s))")
    return index


def current_device_index() -> int:
    """The index of the current accelerator device."""
    return _backend()[1].current_device()


def set_device_index(device) -> None:
    """Make `device` (an index, `"cuda:N"` or a device) the current accelerator device: the
    one streams, synchronize and memory queries default to."""
    index = _index(device, required=True, name="set_device_index")
    _backend()[1].set_device(index)


@contextlib.contextmanager
def device_index(device):
    """Switch the current device inside a `with` block and switch back on exit (also on an
    exception). `None` switches nothing (and needs no accelerator)."""
    if device is None:
        yield
        return
    index = _index(device, required=True, name="device_index")
    backend = _backend()[1]
    old = backend.current_device()
    backend.set_device(index)
    try:
        yield
    finally:
        backend.set_device(old)


def current_stream(device=None):
    """The stream numlazy orders work on for `device` (default: the current device)."""
    index = _index(device, required=False, name="current_stream")
    return _backend()[1].current_stream(index)


def set_stream(stream) -> None:
    """Make `stream` (a `numba.cuda.stream()`) the current device's stream."""
    backend = _backend()[1]
    backend.set_stream(stream, backend.current_device())


def synchronize(device=None) -> None:
    """Wait until every kernel and copy queued on `device` (default: current) has finished."""
    index = _index(device, required=False, name="synchronize")
    _backend()[1].synchronize(index)


__all__ = ["device_count", "is_available", "current_accelerator", "current_device_index",
           "set_device_index", "device_index", "current_stream", "set_stream", "synchronize",
           "memory", "empty_cache", "get_memory_info", "memory_allocated",
           "max_memory_allocated", "memory_reserved", "max_memory_reserved", "memory_stats",
           "reset_peak_memory_stats", "reset_accumulated_memory_stats"]
