"""Every numlazy flag, declared once.

A flag has a name, an environment variable, a type, a default, a help line and whether it
changes generated code (such flags are part of every compile key). The environment is read
here and nowhere else; a bad value fails at import with the variable's name and what is
accepted.

    >>> import numlazy as nl
    >>> nl.config.get("compile_cache_size")
    1024
    >>> with nl.config.override(serial_threshold=0):
    ...     pass
"""
from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Flag:
    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    changes_code: bool = False
    accepted: str = ""


def _int_at_least(lo: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < lo:
            raise ValueError(text)
        return value
    return parse


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "numlazy")


FLAGS: dict[str, Flag] = {f.name: f for f in (
    Flag("device", "NUMLAZY_DEVICE", str, "cpu",
         "default device for new arrays, e.g. cpu, numpy, cuda:0",
         accepted="a device string of a registered backend"),
    Flag("cache_dir", "NUMLAZY_CACHE_DIR", os.path.expanduser, _default_cache_dir(),
         "where generated kernel modules and Numba's machine code are stored",
         accepted="a directory path"),
    Flag("disk_cache", "NUMLAZY_DISK_CACHE", _bool, True,
         "write generated kernels to cache_dir so a second process loads them",
         accepted="1/0, true/false, yes/no, on/off"),
    Flag("compile_cache_size", "NUMLAZY_COMPILE_CACHE_SIZE", _int_at_least(1), 1024,
         "programs kept in the in-memory compile cache (LRU)",
         accepted="an integer >= 1"),
    Flag("host_pool_bytes", "NUMLAZY_HOST_POOL_BYTES", _int_at_least(0), 4 << 30,
         "bytes of freed host buffers the CPU backend keeps for reuse (0 turns the pool off)",
         accepted="an integer >= 0"),
    Flag("serial_threshold", "NUMLAZY_SERIAL_THRESHOLD", _int_at_least(0), 32768,
         "loops over fewer elements than this run a serial kernel instead of a parallel one",
         accepted="an integer >= 0"),
)}

_lock = threading.Lock()
_values: dict[str, Any] = {}


def _parse_env(flag: Flag) -> Any:
    text = os.environ.get(flag.env)
    if text is None:
        return flag.default
    try:
        return flag.parse(text)
    except (ValueError, TypeError):
        raise ValueError(f"{flag.env}={text!r} is not valid: expected {flag.accepted}") from None


def _flag(name: str) -> Flag:
    try:
        return FLAGS[name]
    except KeyError:
        raise KeyError(f"unknown numlazy flag {name!r}; flags are: {', '.join(FLAGS)}") from None


def get(name: str) -> Any:
    """The current value of flag `name`."""
    return _values[_flag(name).name]


def set(name: str, value: Any) -> None:  # noqa: A001 - mirrors get()
    """Set flag `name` for the rest of the process."""
    flag = _flag(name)
    if isinstance(value, str) and flag.parse is not str:
        try:
            value = flag.parse(value)
        except (ValueError, TypeError):
            raise ValueError(f"{name}={value!r} is not valid: expected {flag.accepted}") from None
    with _lock:
        _values[name] = value


@contextlib.contextmanager
def override(**values: Any):
    """Set flags inside a `with` block; the old values come back on exit (also on error)."""
    old = {name: get(name) for name in values}
    try:
        for name, value in values.items():
            set(name, value)
        yield
    finally:
        for name, value in old.items():
            set(name, value)


def code_flags() -> tuple:
    """The values of every flag that changes generated code, for compile keys."""
    return tuple((f.name, _values[f.name]) for f in FLAGS.values() if f.changes_code)


def reset() -> None:
    """Every flag back to its environment value (or default)."""
    with _lock:
        _values.update({name: _parse_env(flag) for name, flag in FLAGS.items()})


reset()
