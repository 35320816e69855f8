"""Counters and timing metrics, after torch_xla's `metrics` module.

    >>> import numlazy as nl
    >>> nl.metrics.counter_value("UncachedCompile")     # None until something compiled
    >>> nl.metrics.metric_names()
    []

Counters are integers (`MarkStep`, `CachedCompile`, `UncachedCompile`, `DiskCacheHit`,
`fallback::<op>`); metrics are samples (`CompileTime`, `ExecuteTime`, in seconds) kept in a
bounded buffer, with their count and sum.
"""
from __future__ import annotations

import collections
import threading
import time

SAMPLE_BUFFER = 1024

_lock = threading.Lock()
_counters: dict[str, int] = {}
_metrics: dict[str, list] = {}      # name -> [total samples, accumulator, deque of (t, value)]


def increment(name: str, amount: int = 1) -> None:
    with _lock:
        _counters[name] = _counters.get(name, 0) + amount


def record(name: str, value: float) -> None:
    with _lock:
        entry = _metrics.get(name)
        if entry is None:
            entry = _metrics[name] = [0, 0.0, collections.deque(maxlen=SAMPLE_BUFFER)]
        entry[0] += 1
        entry[1] += value
        entry[2].append((time.time(), value))


class timed:
    """`with timed("CompileTime"):` records the block's wall time in seconds."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        record(self.name, time.perf_counter() - self.start)


def counter_names() -> list[str]:
    with _lock:
        return sorted(_counters)


def counter_value(name: str):
    """The counter's value, or None if it never counted."""
    with _lock:
        return _counters.get(name)


def metric_names() -> list[str]:
    with _lock:
        return sorted(_metrics)


def metric_data(name: str):
    """(total samples, accumulator, [(time, value), ...]) or None if never recorded."""
    with _lock:
        entry = _metrics.get(name)
        return None if entry is None else (entry[0], entry[1], list(entry[2]))


def reset() -> None:
    with _lock:
        _counters.clear()
        _metrics.clear()
