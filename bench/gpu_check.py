"""GPU timings of the CUDA backend against CuPy: chain, dotsum, softmax (float32).

    python bench/gpu_check.py [log2 elements, default 27]

Each figure: median wall time of one step after warm-up (record + launch + synchronize for
numlazy; the same computation and a synchronize for CuPy), with effective bandwidth counting
the minimum bytes moved (PERF.md). Results are checked against CuPy before timing.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import numlazy as nl
from numlazy.registry import backend_for


def timeit(fn, sync, reps=20, warm=3):
    for _ in range(warm):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    log2 = int(sys.argv[1]) if len(sys.argv) > 1 else 27
    size = 1 << log2
    import cupy as cp
    dev = nl.device("cuda")
    backend = backend_for(dev)
    nsync = lambda: backend.synchronize(0)                  # noqa: E731
    csync = cp.cuda.runtime.deviceSynchronize
    rng = np.random.default_rng(0)
    rows = []

    def row(work, impl, secs, nbytes):
        rows.append((work, impl, secs * 1e3, nbytes / secs / 1e12))
        print(f"{work:8s} {impl:24s} {secs * 1e3:9.3f} ms {nbytes / secs / 1e12:6.2f} TB/s",
              flush=True)

    host = [rng.standard_normal(size).astype(np.float32) for _ in range(3)]
    a, b, c = (nl.asarray(h, device=dev) for h in host)
    ca, cb, cc = (cp.asarray(h) for h in host)
    del host

    # copy: the bandwidth ceiling
    dst = cp.empty_like(ca)
    row("copy", "cupy copyto", timeit(lambda: cp.copyto(dst, ca), csync), 2 * 4 * size)
    del dst

    # chain
    def nl_chain():
        y = nl.sin(a) * b + 0.5 * c * c - a
        nl.mark_step(dev)
        return y
    y = nl_chain()
    ref = cp.sin(ca) * cb + 0.5 * cc * cc - ca
    assert np.allclose(np.asarray(y)[:1000], cp.asnumpy(ref[:1000]), rtol=1e-5, atol=1e-5)
    row("chain", "numlazy", timeit(nl_chain, nsync), 4 * 4 * size)
    row("chain", "cupy eager", timeit(lambda: cp.sin(ca) * cb + 0.5 * cc * cc - ca, csync),
        4 * 4 * size)
    @cp.fuse()
    def fused(x, y, z):
        return cp.sin(x) * y + 0.5 * z * z - x
    row("chain", "cupy.fuse", timeit(lambda: fused(ca, cb, cc), csync), 4 * 4 * size)
    del y, ref

    # dotsum
    def nl_dotsum():
        s = nl.sum(a * b)
        nl.mark_step(dev)
        return s
    got, want = float(nl_dotsum()), float(cp.sum(ca * cb))
    assert abs(got - want) <= 1e-3 * abs(want) + 1e-2, (got, want)
    row("dotsum", "numlazy", timeit(nl_dotsum, nsync), 2 * 4 * size)
    row("dotsum", "cupy sum(a*b)", timeit(lambda: cp.sum(ca * cb), csync), 2 * 4 * size)
    row("dotsum", "cupy dot", timeit(lambda: cp.dot(ca, cb), csync), 2 * 4 * size)
    del a, b, c, ca, cb, cc

    # softmax, rows of 4096
    shape = (size // 4096, 4096)
    xh = rng.standard_normal(shape).astype(np.float32)
    x, cx = nl.asarray(xh, device=dev), cp.asarray(xh)
    del xh

    def nl_softmax():
        e = nl.exp(x - nl.max(x, axis=1, keepdims=True))
        out = e / nl.sum(e, axis=1, keepdims=True)
        nl.mark_step(dev)
        return out

    def cp_softmax():
        e = cp.exp(cx - cp.max(cx, axis=1, keepdims=True))
        return e / cp.sum(e, axis=1, keepdims=True)
    out = nl_softmax()
    assert np.allclose(np.asarray(out)[:4], cp.asnumpy(cp_softmax()[:4]), rtol=1e-4, atol=1e-7)
    row("softmax", f"numlazy {shape}", timeit(nl_softmax, nsync), 2 * 4 * size)
    row("softmax", "cupy eager", timeit(cp_softmax, csync), 2 * 4 * size)


if __name__ == "__main__":
    main()
