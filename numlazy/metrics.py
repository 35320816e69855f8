"""Counters and timing metrics, after torch_xla's `metrics` module.

    >>> import numlazy as nl
    >>> nl.metrics.counter_value("UncachedCompile")     # None until something compiled
    >>> nl.metrics.metric_names()
    []

Counters are integers: `MarkStep`, `CachedCompile`, `UncachedCompile`, `DiskCacheHit`,
`KernelLaunch`, `TrimIrGraph`, `fallback::<op>`. Metrics are samples: `CompileTime`,
`ExecuteTime`, `TransferToDeviceTime`, `TransferFromDeviceTime` (seconds) and
`TensorsGraphSize` (nodes per executed graph). `CompileTime` has a sample per compiled graph
(fusion, code generation) and one per kernel that Numba compiles or loads from its disk cache
at its first launch; `ExecuteTime` leaves those out. A metric keeps its total sample count and sum
exactly, and its last `SAMPLE_BUFFER` samples for percentiles. The report reads as torch_xla's:

    Metric: ExecuteTime
      TotalSamples: 3
      Accumulator: 412.000us
      Percentiles: 1%=98.000us; 5%=98.000us; ... 99%=211.000us
    Counter: MarkStep
      Value: 3
"""
from __future__ import annotations

import collections
import math
import threading
import time

SAMPLE_BUFFER = 1024
PERCENTILES = (1, 5, 10, 20, 50, 80, 90, 95, 99)

# What short_metrics_report shows by default (plus every fallback::<op> counter).
SHORT_COUNTERS = ("MarkStep", "CachedCompile", "UncachedCompile", "DiskCacheHit", "TrimIrGraph")
SHORT_METRICS = ("CompileTime", "ExecuteTime", "TransferToDeviceTime", "TransferFromDeviceTime")

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


class _Lazy(threading.local):
    seconds = 0.0          # this thread's lazy compile time so far (see lazy_compile)


_lazy = _Lazy()


class timed:
    """`with timed("ExecuteTime"):` records the block's wall time in seconds, minus the time
    of lazy compiles inside it (`lazy_compile`), which is CompileTime."""

    __slots__ = ("name", "start", "lazy")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.lazy = _lazy.seconds
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        elapsed = time.perf_counter() - self.start
        record(self.name, elapsed - (_lazy.seconds - self.lazy))


def lazy_compile(seconds: float) -> None:
    """A backend compiled (or loaded) a kernel at its first launch, inside a step's run: the
    time is a `CompileTime` sample and is left out of the enclosing `ExecuteTime`."""
    record("CompileTime", seconds)
    _lazy.seconds += seconds


def counter_names() -> list[str]:
    with _lock:
        return sorted(_counters)


def _check_name(fn: str, name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{fn}: name must be a str, got {type(name).__name__}")


def counter_value(name: str):
    """The counter's value, or None if it never counted (as in torch_xla: counters appear on
    first use, so an unknown name and a counter still at zero read the same)."""
    _check_name("counter_value", name)
    with _lock:
        return _counters.get(name)


_all_counters = counter_names     # short_metrics_report's parameter shadows the name


def metric_names() -> list[str]:
    with _lock:
        return sorted(_metrics)


def metric_data(name: str):
    """(total samples, accumulator, [(time, value), ...]) or None if never recorded. The
    sample list holds the most recent `SAMPLE_BUFFER` samples, oldest first. An unknown name
    gives None, as in torch_xla (metrics appear on first use)."""
    _check_name("metric_data", name)
    with _lock:
        entry = _metrics.get(name)
        return None if entry is None else (entry[0], entry[1], list(entry[2]))


def percentiles(name: str) -> dict:
    """{percent: value} over the buffered samples (nearest rank), {} if never recorded."""
    data = metric_data(name)
    if data is None or not data[2]:
        return {}
    values = sorted(v for _, v in data[2])
    n = len(values)
    return {p: values[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))] for p in PERCENTILES}


def reset() -> None:
    with _lock:
        _counters.clear()
        _metrics.clear()


# --- reports -------------------------------------------------------------------------------

def _format(name: str, value: float) -> str:
    if not name.endswith("Time"):
        return f"{value:g}"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3f}{unit}"
    return f"{value / 1e-9:.3f}ns"


def _metric_text(name: str) -> str:
    data = metric_data(name)
    if data is None:
        return ""
    total, acc, _ = data
    pct = "; ".join(f"{p}%={_format(name, v)}" for p, v in percentiles(name).items())
    return (f"Metric: {name}\n  TotalSamples: {total}\n  Accumulator: {_format(name, acc)}\n"
            f"  Percentiles: {pct}\n")


def _counter_text(name: str) -> str:
    value = counter_value(name)
    return "" if value is None else f"Counter: {name}\n  Value: {value}\n"


def metrics_report() -> str:
    """Every metric, then every counter, in torch_xla's text format."""
    return "".join(map(_metric_text, metric_names())) + \
        "".join(map(_counter_text, counter_names()))


def short_metrics_report(counter_names=None, metric_names=None) -> str:  # noqa: F811
    """The report restricted to the named counters and metrics (by default the step, compile
    and transfer ones, and every `fallback::<op>` counter). Names never recorded are left
    out."""
    for arg, value in (("counter_names", counter_names), ("metric_names", metric_names)):
        if value is not None and (isinstance(value, str) or not all(
                isinstance(n, str) for n in value)):
            raise TypeError(f"short_metrics_report: {arg} must be a list of names (str) or "
                            f"None, got {value!r}")
    if counter_names is None:
        counter_names = list(SHORT_COUNTERS) + [n for n in _all_counters()
                                                if n.startswith("fallback::")]
    if metric_names is None:
        metric_names = SHORT_METRICS
    return "".join(map(_metric_text, metric_names)) + "".join(map(_counter_text, counter_names))
