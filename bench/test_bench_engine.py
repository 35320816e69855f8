"""pytest-benchmark cases for the engine workloads of PERF.md: logreg, matmul, cold.

(tiny is in test_bench_compile.py, next to its trace-once counterpart.)  The workloads and
their anchors are `bench/engine.py`'s; these cases time them one at a time:

    pytest bench/test_bench_engine.py --benchmark-only      # timed
    pytest bench/test_bench_engine.py                       # each case once, checked

Sizes: BENCH_LOGREG_N rows (default 200000, 32 features), BENCH_MATMUL_N (default 1024).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import numlazy as nl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine  # noqa: E402

LOGREG_N = int(os.environ.get("BENCH_LOGREG_N", 200_000))
MATMUL_N = int(os.environ.get("BENCH_MATMUL_N", 1024))


@pytest.fixture(scope="module")
def logreg_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(LOGREG_N, 32))
    y = (X @ rng.normal(size=32) > 0).astype(np.float64)
    return X, y, np.zeros(32)


@pytest.mark.parametrize("impl", ["numlazy", "numba", "numpy"])
def test_logreg(benchmark, logreg_data, impl):
    X, y, w0 = logreg_data
    if impl == "numlazy":
        Xn, yn = nl.asarray(X), nl.asarray(y)
        engine.logreg_numlazy(Xn, yn, nl.asarray(w0), steps=2)          # compile outside
        before = nl.metrics.counter_value("UncachedCompile")
        w = benchmark(lambda: np.asarray(engine.logreg_numlazy(Xn, yn, nl.asarray(w0))))
        assert nl.metrics.counter_value("UncachedCompile") == before, \
            "50 steps with 50 learning rates must not compile again"
    elif impl == "numba":
        engine.logreg_numba(X, y, w0, 1)
        w = benchmark(lambda: engine.logreg_numba(X, y, w0))
    else:
        w = benchmark(lambda: engine.logreg_numpy(X, y, w0))
    np.testing.assert_allclose(w, engine.logreg_numpy(X, y, w0), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("impl", ["numlazy", "numpy"])
def test_matmul(benchmark, impl, dtype):
    rng = np.random.default_rng(0)
    a_h, b_h = (rng.random((MATMUL_N, MATMUL_N)).astype(dtype) for _ in range(2))
    if impl == "numlazy":
        a, b = nl.asarray(a_h), nl.asarray(b_h)

        def run():
            c = a @ b
            nl.mark_step()
            return np.asarray(c)
    else:
        def run():
            return a_h @ b_h
    np.testing.assert_allclose(benchmark(run), a_h @ b_h, rtol=1e-3)


@pytest.mark.parametrize("cache", ["first process", "second process"])
def test_cold(benchmark, tmp_path_factory, cache):
    """Time to the first result of `chain` in a new process: compiling, or loading the
    kernels from a disk cache that an earlier process filled."""
    cache_dir = tmp_path_factory.mktemp("cold")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NUMLAZY_CACHE_DIR"] = str(cache_dir)

    def run():
        out = subprocess.run([sys.executable, "-c", engine.COLD_SCRIPT], env=env, check=True,
                             capture_output=True, text=True)
        return out.stdout.split()

    if cache == "second process":
        run()                                         # fill the cache
        seconds, hits = benchmark.pedantic(run, rounds=3, iterations=1)
        assert int(hits) > 0, "the second process must load kernels from the disk cache"
    else:
        def fresh():
            for f in cache_dir.rglob("*"):
                if f.is_file():
                    f.unlink()
            return run()
        seconds, hits = benchmark.pedantic(fresh, rounds=2, iterations=1)
        assert int(hits) == 0
