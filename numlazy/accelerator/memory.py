"""`nl.accelerator.memory`: the accelerator's memory, from its backend's caching allocator.

The CUDA backend allocates every buffer through a caching pool (numlazy_cuda/allocator.py);
these functions report its counters. Names and keys follow `torch.accelerator.memory` /
`torch.cuda.memory_stats`: `allocated_bytes.all.current` (bytes in blocks handed out),
`reserved_bytes.all.current` (bytes held from the device: handed out plus cached), `...peak`,
`...allocated`/`...freed` (accumulated), `allocation.*` and `segment.*` (block counts),
`num_alloc_retries`, `num_ooms`, plus `requested_bytes.*` (exact request sizes) and
`cached_bytes.all.current`. Without an accelerator the statistics are empty and the sizes 0.
"""
from __future__ import annotations


def _target(device, name: str):
    """(backend, index) for `device`, or (None, None) without an accelerator."""
    from . import _backend, _index
    backend = _backend(required=False)[1]
    if backend is None:
        if device is not None and not isinstance(device, int):
            _check_type(device, name)
        return None, None
    return backend, _index(device, required=False, name=name)


def _check_type(device, name: str) -> None:
    from ..device import parse
    from . import _accelerator_type
    kind = _accelerator_type()
    if parse(device).type != kind:
        raise ValueError(f"{name}: {str(device)!r} is not a device of the accelerator "
                         f"({kind or 'none installed'})")


def empty_cache() -> None:
    """Give the allocator's cached, unused blocks back to the device (memory in use stays)."""
    from . import _backend
    backend = _backend(required=False)[1]
    if backend is not None:
        backend.empty_cache()


def get_memory_info(device=None) -> tuple:
    """(free, total) bytes of the device, as the driver reports them."""
    from . import _backend, _index
    backend = _backend()[1]
    return backend.memory_info(_index(device, required=False, name="get_memory_info"))


def memory_stats(device=None) -> dict:
    """The allocator's statistics: a flat dict with dotted keys, sorted by key."""
    backend, index = _target(device, "memory_stats")
    return {} if backend is None else dict(sorted(backend.memory_stats(index).items()))


def _stats_for(device, name):
    backend, index = _target(device, name)
    return {} if backend is None else backend.memory_stats(index)


def memory_allocated(device=None) -> int:
    """Bytes in blocks numlazy arrays hold now."""
    return int(_stats_for(device, "memory_allocated").get("allocated_bytes.all.current", 0))


def max_memory_allocated(device=None) -> int:
    """The peak of `memory_allocated` since the start or `reset_peak_memory_stats`."""
    return int(_stats_for(device, "max_memory_allocated").get("allocated_bytes.all.peak", 0))


def memory_reserved(device=None) -> int:
    """Bytes held from the device: allocated plus cached for reuse."""
    return int(_stats_for(device, "memory_reserved").get("reserved_bytes.all.current", 0))


def max_memory_reserved(device=None) -> int:
    """The peak of `memory_reserved` since the start or `reset_peak_memory_stats`."""
    return int(_stats_for(device, "max_memory_reserved").get("reserved_bytes.all.peak", 0))


def reset_peak_memory_stats(device=None) -> None:
    """Peaks (`*.peak`) start again from the current values."""
    backend, index = _target(device, "reset_peak_memory_stats")
    if backend is not None:
        backend.reset_peak_memory_stats(index)


def reset_accumulated_memory_stats(device=None) -> None:
    """Accumulated counters (`*.allocated`, `*.freed`, `num_*`) start again from 0."""
    backend, index = _target(device, "reset_accumulated_memory_stats")
    if backend is not None:
        backend.reset_accumulated_memory_stats(index)
