"""nl.compile's replay against an uncompiled step: a 15-op graph on 1,000 elements.

    pytest bench/test_bench_compile.py --benchmark-only   # time both (group "compile tiny")
    pytest bench/test_bench_compile.py                    # checks, and the ratio assertion

An uncompiled step records 15 nodes, builds and hashes the graph, looks the key up and runs
the program; a compiled call checks the arguments' signature and runs the same program.
"""
import time

import numpy as np
import pytest

import numlazy as nl

N = 1000


def body(a, b, k):
    y = a
    for _ in range(5):
        y = nl.sin(y) * b + k          # 3 ops per round: 15 ops
    return y


def host_reference(a, b, k):
    y = a
    for _ in range(5):
        y = np.sin(y) * b + k
    return y


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    ha, hb = rng.random(N), rng.random(N)
    return ha, hb, nl.asarray(ha), nl.asarray(hb)


def uncompiled_step(a, b):
    y = body(a, b, 0.5)
    nl.mark_step()
    return y


def make_compiled():
    return nl.compile(lambda a, b: body(a, b, 0.5))


def check(y, ha, hb):
    np.testing.assert_allclose(np.asarray(y), host_reference(ha, hb, 0.5), rtol=1e-12)


@pytest.mark.parametrize("impl", ["step", "compiled"])
def test_tiny_step_overhead(benchmark, inputs, impl):
    ha, hb, a, b = inputs
    fn = uncompiled_step if impl == "step" else make_compiled()
    check(fn(a, b), ha, hb)            # warm: compiles once
    compiles = nl.metrics.counter_value("UncachedCompile")
    benchmark.group = "compile tiny"
    benchmark(fn, a, b)
    assert nl.metrics.counter_value("UncachedCompile") == compiles


def _median_us(fn, a, b, repeats=7, number=300):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn(a, b)
        times.append((time.perf_counter() - start) / number)
    return 1e6 * float(np.median(times))


def test_compiled_call_is_cheaper_than_a_step(inputs):
    ha, hb, a, b = inputs
    compiled = make_compiled()
    check(compiled(a, b), ha, hb)
    check(uncompiled_step(a, b), ha, hb)
    step_us = _median_us(uncompiled_step, a, b)
    compiled_us = _median_us(compiled, a, b)
    print(f"\n15-op step on {N} elements: uncompiled {step_us:.1f} us, "
          f"nl.compile replay {compiled_us:.1f} us ({step_us / compiled_us:.1f}x)")
    assert compiled_us < step_us
