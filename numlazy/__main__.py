"""`python -m numlazy demo | info | bench | cache clear`."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np


def demo(args) -> None:
    """Logistic regression by gradient descent on the default device: compiles once, then
    every step (new learning rate each time) reuses the cached program."""
    import numlazy as nl
    rng = np.random.default_rng(0)
    n, d = args.samples, 16
    true_w = rng.normal(size=d)
    X_host = rng.normal(size=(n, d))
    y_host = (X_host @ true_w + 0.1 * rng.normal(size=n) > 0).astype(np.float64)
    X, y = nl.asarray(X_host), nl.asarray(y_host)
    w = nl.zeros(d)
    print(f"numlazy {nl.__version__} demo: logistic regression, {n} x {d}, device "
          f"{X.device}, {args.steps} steps")
    start = time.perf_counter()
    for step in range(args.steps):
        lr = 0.5 / (1 + 0.05 * step)                    # a new scalar every step
        p = 1.0 / (1.0 + nl.exp(-(X @ w)))
        grad = (X.T @ (p - y)) / n
        w = w - lr * grad
        loss = -nl.mean(y * nl.log(p + 1e-12) + (1 - y) * nl.log(1 - p + 1e-12))
        nl.mark_step()
        if step % max(1, args.steps // 5) == 0 or step == args.steps - 1:
            print(f"  step {step:3d}  lr {lr:.3f}  loss {float(loss):.4f}")
    elapsed = time.perf_counter() - start
    accuracy = float(nl.mean((X @ w > 0) == (y > 0.5)))
    print(f"accuracy {accuracy:.3f}; {args.steps} steps in {elapsed:.2f} s")
    print("counters:", {k: nl.metrics.counter_value(k) for k in nl.metrics.counter_names()})
    compile_time = nl.metrics.metric_data("CompileTime")
    execute_time = nl.metrics.metric_data("ExecuteTime")
    print(f"compile: {compile_time[0]} program(s), execute: {execute_time[0]} step(s), "
          f"{1e3 * execute_time[1] / execute_time[0]:.2f} ms per step on average "
          f"(the first includes Numba's compile)")


def info(args) -> None:
    import numba

    import numlazy as nl
    from numlazy import cache, config
    from numlazy.registry import backend_for
    print(f"numlazy {nl.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"python {sys.version.split()[0]}")
    print(f"cpu cores: {os.cpu_count()}, numba threads: {numba.get_num_threads()}")
    for name in ("numba_cuda", "cupy"):
        print(f"{name}: {_version(name)}")
    for name in nl.list_backends():
        try:
            backend = backend_for(nl.device(name))
            count = backend.device_count()
            print(f"backend {name}: available, {count} device(s)"
                  + (" (accelerator)" if backend.is_accelerator else ""))
            _devices(name, backend, count)
        except Exception as exc:  # report, don't fail: info is for diagnosing
            print(f"backend {name}: unavailable ({exc})")
    accel, count = nl.accelerator.current_accelerator(), nl.accelerator.device_count()
    print(f"accelerator: {accel or 'none installed'}"
          + ((f", {count} device(s)" if count else ", installed but no device") if accel else ""))
    print("fp32 precision (resolved): " + ", ".join(
        f"{node}={value}" for node, value in nl.backends.describe().items()))
    for name, flag in config.FLAGS.items():
        print(f"flag {name} = {config.get(name)!r}  ({flag.env}; {flag.help})")
    kernels = cache.kernel_dir()
    files = [os.path.join(root, f) for root, _, names in os.walk(kernels) for f in names]
    size = sum(os.path.getsize(f) for f in files)
    print(f"kernel cache: {kernels} ({len(files)} files, {size / 1e6:.1f} MB)")


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    dist = {"numba_cuda": "numba-cuda", "cupy": "cupy"}[module]
    for candidate in (dist, dist + "-cuda13x", dist + "-cuda12x"):
        try:
            return version(candidate)
        except PackageNotFoundError:
            continue
    return "not installed"


def _devices(name: str, backend, count: int) -> None:
    """One line per device of an accelerator: its memory and the allocator's numbers."""
    if not backend.is_accelerator:
        return
    for i in range(count):
        try:
            free, total = backend.memory_info(i)
            stats = backend.memory_stats(i)
            print(f"  {name}:{i}: {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB; "
                  f"numlazy allocated {stats.get('allocated_bytes.all.current', 0)} bytes, "
                  f"reserved {stats.get('reserved_bytes.all.current', 0)} bytes"
                  + (" (CUDA simulator: host memory)" if getattr(backend, "simulator", False)
                     else ""))
        except Exception as exc:
            print(f"  {name}:{i}: {exc}")


def bench(args) -> None:
    path = os.path.join(os.getcwd(), "bench", "compare.py")
    if not os.path.exists(path):
        sys.exit("numlazy bench runs bench/compare.py from a source checkout; run it from "
                 "the repository root")
    sys.path.insert(0, os.path.dirname(path))
    import compare
    compare.main(args.rest)


def cache_clear(args) -> None:
    from numlazy import cache
    shutil.rmtree(cache.kernel_dir(), ignore_errors=True)
    print(f"removed {cache.kernel_dir()}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m numlazy")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="a realistic workload on the default device")
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--steps", type=int, default=50)
    p.set_defaults(fn=demo)
    sub.add_parser("info", help="versions, backends, flags, cache").set_defaults(fn=info)
    p = sub.add_parser("bench", help="side-by-side benchmark (bench/compare.py)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(fn=bench)
    p = sub.add_parser("cache", help="cache maintenance")
    p.add_argument("action", choices=["clear"])
    p.set_defaults(fn=cache_clear)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
