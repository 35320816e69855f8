"""Device strings (`"cpu"`, `"cuda:1"`, `"numpy"`) and the default device.

    >>> import numlazy as nl
    >>> d = nl.device("cuda:1")
    >>> d.type, d.index
    ('cuda', 1)
    >>> with nl.default_device("numpy"):
    ...     x = nl.zeros(3)          # on the reference interpreter
"""
from __future__ import annotations

import contextlib
import threading
from typing import Optional, Union

from . import config


class Device:
    """A parsed device: `type` names a registered backend, `index` picks one of its devices."""

    __slots__ = ("type", "index", "_hash")

    def __init__(self, type: str, index: Optional[int] = None):
        self.type = type
        self.index = index
        self._hash = hash((type, index or 0))     # devices key dicts on every step

    def __eq__(self, other):
        if isinstance(other, str):
            other = parse(other)
        return (isinstance(other, Device) and self.type == other.type
                and (self.index or 0) == (other.index or 0))

    def __hash__(self):
        return self._hash

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device({str(self)!r})"


DeviceLike = Union[str, Device, None]


def parse(spec: DeviceLike) -> Device:
    """Parse a device string or object; `None` means the default device.

    The type must name a registered backend (else ValueError listing them), and the index must
    exist on it (checked when the backend is asked for the device).
    """
    if spec is None:
        return default()
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {spec!r}")
    parsed = _parsed.get(spec)
    if parsed is None:
        type_, _, index = spec.strip().partition(":")
        if index and not index.isdigit():
            raise ValueError(f"device {spec!r}: the index after ':' must be a non-negative "
                             f"integer, e.g. 'cuda:0'")
        parsed = Device(type_, int(index) if index else None)
        if len(_parsed) < 1024:       # one object per spelling: identity checks are cheap
            _parsed[spec] = parsed
    return parsed


_parsed: dict[str, Device] = {}


def device(spec: DeviceLike) -> Device:
    """Public constructor: `nl.device("cuda:1")`. Checks that the backend is registered."""
    from . import registry
    d = parse(spec)
    registry.backend_for(d)
    return d


_local = threading.local()


def default() -> Device:
    """The device new arrays go to: the innermost `default_device` scope, else NUMLAZY_DEVICE."""
    stack = getattr(_local, "stack", None)
    if stack:
        return stack[-1]
    return parse(config.get("device"))


@contextlib.contextmanager
def default_device(spec: DeviceLike):
    """Make `spec` the default device inside a `with` block (per thread)."""
    d = device(spec)
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(d)
    try:
        yield d
    finally:
        stack.pop()
