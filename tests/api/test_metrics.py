"""Counters, metrics and the torch_xla-format reports."""
import re
import threading

import numpy as np
import pytest

import numlazy as nl
from numlazy import executor, metrics


def one_step():
    a = nl.asarray(np.arange(10.0))
    y = nl.sin(a) * 2.0 + a
    nl.mark_step()
    return y


def test_step_counters_and_metrics():
    one_step()
    one_step()
    assert nl.metrics.counter_value("MarkStep") == 2
    assert nl.metrics.counter_value("UncachedCompile") + \
        (nl.metrics.counter_value("CachedCompile") or 0) == 2
    assert {"CompileTime", "ExecuteTime", "TensorsGraphSize"} <= set(nl.metrics.metric_names())
    total, acc, samples = nl.metrics.metric_data("TensorsGraphSize")
    assert total == 2 and acc == 10 and [v for _, v in samples] == [5, 5]   # data sin param mul add
    assert nl.metrics.metric_data("nope") is None and nl.metrics.counter_value("nope") is None


def test_transfer_times():
    def samples(name):
        data = nl.metrics.metric_data(name)
        return data[0] if data else 0

    to_dev = samples("TransferToDeviceTime")
    y = one_step()                                 # asarray: one transfer to the device
    assert samples("TransferToDeviceTime") == to_dev + 1
    nl.to_cpu([y])
    assert samples("TransferFromDeviceTime") == 1
    nl.config.set("force_fallback", "sin")        # a fallback moves data both ways
    one_step()
    assert samples("TransferToDeviceTime") == to_dev + 3
    assert samples("TransferFromDeviceTime") == 2


def test_report_format():
    one_step()
    report = nl.metrics.metrics_report()
    assert re.search(r"^Metric: ExecuteTime\n  TotalSamples: 1\n  Accumulator: [\d.]+(s|ms|us|ns)\n"
                     r"  Percentiles: 1%=[\d.]+\w+; 5%=.*; 99%=[\d.]+\w+$", report, re.M), report
    assert re.search(r"^Metric: TensorsGraphSize\n  TotalSamples: 1\n  Accumulator: 5\n", report,
                     re.M)
    assert "Counter: MarkStep\n  Value: 1\n" in report
    assert report.index("Metric:") < report.index("Counter:")


def test_short_report_defaults_and_selection():
    nl.config.set("force_fallback", "sin")
    one_step()
    short = nl.metrics.short_metrics_report()
    assert "Counter: MarkStep" in short and "Counter: fallback::sin" in short
    assert "KernelLaunch" not in short and "TensorsGraphSize" not in short
    assert "Metric: ExecuteTime" in short
    only = nl.metrics.short_metrics_report(counter_names=["MarkStep"], metric_names=[])
    assert only == "Counter: MarkStep\n  Value: 1\n"


def test_percentiles_over_the_bounded_buffer():
    n = metrics.SAMPLE_BUFFER + 1000
    for v in range(n):
        metrics.record("Sample", float(v))
    total, acc, samples = nl.metrics.metric_data("Sample")
    assert total == n and acc == sum(range(n))          # exact, beyond the buffer
    assert len(samples) == metrics.SAMPLE_BUFFER and samples[0][1] == 1000.0
    pct = metrics.percentiles("Sample")
    assert pct[1] >= 1000 and pct[50] == 1000 + metrics.SAMPLE_BUFFER // 2 - 1
    assert pct[99] <= n - 1 and list(pct) == list(metrics.PERCENTILES)
    assert "Percentiles: 1%=" in nl.metrics.metrics_report()


def test_reset():
    one_step()
    nl.metrics.reset()
    assert nl.metrics.counter_names() == [] and nl.metrics.metric_names() == []
    assert nl.metrics.metrics_report() == ""


def test_counters_are_thread_safe():
    def work():
        for _ in range(1000):
            metrics.increment("Threaded")
            metrics.record("ThreadedMetric", 1.0)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert nl.metrics.counter_value("Threaded") == 8000
    assert nl.metrics.metric_data("ThreadedMetric")[:2] == (8000, 8000.0)


def test_unknown_names_read_as_none_and_non_names_raise():
    one_step()
    assert nl.metrics.metric_data("NoSuchMetric") is None          # as in torch_xla
    assert nl.metrics.counter_value("NoSuchCounter") is None
    assert nl.metrics.short_metrics_report(counter_names=["NoSuchCounter"],
                                           metric_names=["NoSuchMetric"]) == ""
    for fn in (nl.metrics.metric_data, nl.metrics.counter_value):
        with pytest.raises(TypeError, match="name must be a str, got int"):
            fn(3)


def test_short_report_with_names():
    one_step()
    report = nl.metrics.short_metrics_report(counter_names=["KernelLaunch", "MarkStep"],
                                             metric_names=["TensorsGraphSize"])
    assert report.splitlines()[0] == "Metric: TensorsGraphSize"
    assert report.index("Counter: KernelLaunch") < report.index("Counter: MarkStep")
    assert "ExecuteTime" not in report
    assert nl.metrics.short_metrics_report(counter_names=(), metric_names=()) == ""
    for bad in ("MarkStep", [1]):
        with pytest.raises(TypeError, match="counter_names must be a list of names"):
            nl.metrics.short_metrics_report(counter_names=bad)
        with pytest.raises(TypeError, match="metric_names must be a list of names"):
            nl.metrics.short_metrics_report(metric_names=bad)


def test_the_listed_counters_and_metrics_exist(monkeypatch):
    monkeypatch.setattr(executor, "_trim_warned", False)
    nl.ir_cache.reset()                                  # a compile: UncachedCompile
    nl.config.set("trim_graph_size", 4)
    nl.config.set("force_fallback", "sin")
    y = nl.asarray(np.arange(3.0))
    with pytest.warns(RuntimeWarning):
        for _ in range(6):
            y = nl.sin(y) + 1.0
    nl.mark_step()
    nl.to_cpu([y])
    assert {"MarkStep", "UncachedCompile", "TrimIrGraph", "fallback::sin"} <= \
        set(nl.metrics.counter_names())
    assert {"CompileTime", "ExecuteTime", "TransferToDeviceTime", "TransferFromDeviceTime",
            "TensorsGraphSize"} <= set(nl.metrics.metric_names())


def test_lazy_compiles_count_as_compile_time_not_execute_time():
    import time
    with metrics.timed("ExecuteTime"):
        time.sleep(0.2)                         # as if Numba compiled for 0.2 s in the block
        metrics.lazy_compile(0.2)
    (n, execute, _), (m, compile_, _) = (nl.metrics.metric_data("ExecuteTime"),
                                         nl.metrics.metric_data("CompileTime"))
    assert n == m == 1 and compile_ == 0.2 and 0 <= execute < 0.1


def test_a_first_kernel_launch_is_a_compile_time_sample():
    nl.ir_cache.reset()
    a = nl.asarray(np.arange(3.0))
    y = nl.cosh(a) * 3.0  # noqa: F841
    nl.mark_step()                                 # graph compile + the kernel's first launch
    assert nl.metrics.metric_data("CompileTime")[0] == 2
    y = nl.cosh(a) * 4.0  # noqa: F841
    nl.mark_step()                                 # a cache hit: no compile at all
    assert nl.metrics.metric_data("CompileTime")[0] == 2
