"""GPU timings of the CUDA backend side by side with the GPU anchors of PERF.md.

    python bench/gpu_check.py [log2 elements, default 27] [--only chain,dotsum,...]

Workloads (float32): chain `sin(a)*b + 0.5*c*c - a`, dotsum `sum(a*b)`, softmax over rows of
4096, and tiny (a 10-op step on 1,000 elements: host time per cached step). Anchors, each
skipped with a note when its package is missing: CuPy eager, `cupy.fuse`, JAX jit,
`torch.compile`, hand-written `numba.cuda` (IEEE and fast-math). numlazy runs at the default
precision and, where nl.backends exists, at "fast".

Each figure is the median wall time of one call after warm-up, synchronized (record, key,
lookup, allocate, launch and wait for numlazy); TB/s counts the minimum bytes moved. Rows
"10 calls a wait" (numlazy, cupy.fuse, JAX, torch.compile) time 10 calls and one wait, per
call: throughput when a loop does not wait each step, host time hidden behind the GPU's.
Every implementation is checked against a float64 NumPy reference before it is timed.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import statistics
import time

import numpy as np

import numlazy as nl
from numlazy.registry import backend_for

ROWS: list = []


def timeit(fn, sync, reps=30, warm=3):
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


def report(work, impl, secs, nbytes, note=""):
    tbs = nbytes / secs / 1e12 if nbytes else float("nan")
    ROWS.append((work, impl, secs, tbs, note))
    print(f"{work:8s} {impl:28s} {secs * 1e3:9.3f} ms {tbs:6.2f} TB/s {note}", flush=True)


QUEUED = "10 calls a wait"
QUEUED_NOTE = "launches queue, so host time overlaps the GPU's: throughput"


def report_queued(work, call, sync, nbytes):
    """The time per call of 10 calls and one wait: what a loop that does not wait every
    step gets (like for like: numlazy and the anchors that queue)."""
    secs = timeit(lambda: [call() for _ in range(10)], sync, reps=5, warm=1) / 10
    report(work, f"  {QUEUED}", secs, nbytes, QUEUED_NOTE)


def check(name, got, want, rtol):
    got = np.asarray(got, dtype=np.float64)
    err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300)
    if not np.isfinite(err) or err > rtol:
        raise AssertionError(f"{name}: relative error {err:.2e} > {rtol}")


def time_numlazy(work, record, want, rtol, nbytes, dev, sync, label=""):
    """Check, then time, a numlazy step computing `record()` on `dev`: at the default
    precision and at "fast" (nl.backends.cuda); the note gives the kernels it launches."""
    def step():
        out = record()
        nl.mark_step(dev)
        return out
    for prec in (None, "fast"):
        name = f"numlazy{' ' + prec if prec else ''}{label}"
        scope = nl.backends.cuda.flags(fp32_precision=prec) if prec else contextlib.nullcontext()
        with scope:
            check(name + " " + work, step(), want, rtol)
            launches = nl.metrics.counter_value("KernelLaunch") or 0
            step()
            kernels = (nl.metrics.counter_value("KernelLaunch") or 0) - launches
            report(work, name, timeit(step, sync), nbytes, f"{kernels} kernel(s)")
            report_queued(work, step, sync, nbytes)


def anchors():
    """The installed anchor libraries: name -> module. JAX allocates on demand: by default it
    takes 75% of the GPU's memory at its first use, and on an 80 GB H100 torch.compile's
    queued rows then ran out of memory."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    found = {}
    for name in ("cupy", "jax", "torch"):
        try:
            found[name] = __import__(name)
        except Exception as exc:
            print(f"# anchor {name} skipped: {exc!r}")
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log2", nargs="?", type=int, default=27)
    ap.add_argument("--only", default="copy,chain,dotsum,softmax,matmul,tiny")
    ap.add_argument("--matmul-n", type=int, default=8192)
    args = ap.parse_args()
    only = set(args.only.split(","))
    size = 1 << args.log2
    dev = nl.device("cuda")
    backend = backend_for(dev)
    nsync = lambda: backend.synchronize(0)                  # noqa: E731
    libs = anchors()
    cp, jax, torch = libs.get("cupy"), libs.get("jax"), libs.get("torch")
    csync = cp.cuda.runtime.deviceSynchronize if cp else nsync
    from numba import cuda
    rng = np.random.default_rng(0)
    host = [rng.standard_normal(size).astype(np.float32) for _ in range(3)]
    ref64 = [h.astype(np.float64) for h in host]
    a, b, c = (nl.asarray(h, device=dev) for h in host)

    if "copy" in only and cp:
        src = cp.asarray(host[0])
        dst = cp.empty_like(src)
        report("copy", "cupy copyto", timeit(lambda: cp.copyto(dst, src), csync), 8 * size)
        del src, dst

    if "chain" in only:
        want = np.sin(ref64[0]) * ref64[1] + 0.5 * ref64[2] * ref64[2] - ref64[0]
        nbytes = 16 * size
        time_numlazy("chain", lambda: nl.sin(a) * b + 0.5 * c * c - a, want, 1e-5, nbytes, dev,
                     nsync)
        d = [cuda.to_device(h) for h in host]
        out = cuda.device_array_like(d[0])
        for fm in (() if backend.simulator else (False, True)):
            @cuda.jit(fastmath=fm)
            def k(x, y, z, o):
                for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
                    o[i] = math.sin(x[i]) * y[i] + np.float32(0.5) * z[i] * z[i] - x[i]
            sms = getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 1)
            run = lambda: k[32 * sms, 256](d[0], d[1], d[2], out)   # noqa: E731
            run()
            check("numba.cuda chain", out.copy_to_host(), want, 1e-5)
            report("chain", f"numba.cuda hand{' fastmath' if fm else ''}", timeit(run, nsync),
                   nbytes)
        del d, out
        if cp:
            ca, cb, cc = (cp.asarray(h) for h in host)
            run = lambda: cp.sin(ca) * cb + 0.5 * cc * cc - ca     # noqa: E731
            check("cupy chain", cp.asnumpy(run()), want, 1e-5)
            report("chain", "cupy eager", timeit(run, csync), nbytes)

            @cp.fuse()
            def fused(x, y, z):
                return cp.sin(x) * y + 0.5 * z * z - x
            check("cupy.fuse chain", cp.asnumpy(fused(ca, cb, cc)), want, 1e-5)
            report("chain", "cupy.fuse", timeit(lambda: fused(ca, cb, cc), csync), nbytes)
            report_queued("chain", lambda: fused(ca, cb, cc), csync, nbytes)
            del ca, cb, cc
        if jax:
            import jax.numpy as jnp
            ja, jb, jc = (jax.device_put(h) for h in host)
            f = jax.jit(lambda x, y, z: jnp.sin(x) * y + 0.5 * z * z - x)
            check("jax chain", np.asarray(f(ja, jb, jc)), want, 1e-5)
            report("chain", "jax jit", timeit(lambda: f(ja, jb, jc).block_until_ready(),
                                              lambda: None), nbytes)
            _jax_queued("chain", lambda: f(ja, jb, jc), nbytes)
            del ja, jb, jc
        if torch:
            _torch_compiled("chain", torch, host, want, nbytes,
                            lambda x, y, z: torch.sin(x) * y + 0.5 * z * z - x)

    if "dotsum" in only:
        want = np.sum(ref64[0] * ref64[1])
        nbytes = 8 * size
        time_numlazy("dotsum", lambda: nl.sum(a * b), want, 1e-4, nbytes, dev, nsync)
        if cp:
            ca, cb = cp.asarray(host[0]), cp.asarray(host[1])
            check("cupy dotsum", float(cp.sum(ca * cb)), want, 1e-4)
            report("dotsum", "cupy sum(a*b)", timeit(lambda: cp.sum(ca * cb), csync), nbytes)
            report("dotsum", "cupy dot (cuBLAS)", timeit(lambda: cp.dot(ca, cb), csync), nbytes)
            del ca, cb
        if jax:
            import jax.numpy as jnp
            ja, jb = jax.device_put(host[0]), jax.device_put(host[1])
            f = jax.jit(lambda x, y: jnp.sum(x * y))
            check("jax dotsum", float(f(ja, jb)), want, 1e-4)
            report("dotsum", "jax jit", timeit(lambda: f(ja, jb).block_until_ready(),
                                               lambda: None), nbytes)
            _jax_queued("dotsum", lambda: f(ja, jb), nbytes)
            del ja, jb
        if torch:
            _torch_compiled("dotsum", torch, host[:2], want, nbytes,
                            lambda x, y: torch.sum(x * y))
    del a, b, c, host, ref64

    if "softmax" in only:
        shape = (size // 4096, 4096)
        xh = rng.standard_normal(shape).astype(np.float32)
        x64 = xh.astype(np.float64)
        e = np.exp(x64 - x64.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True)
        del e, x64
        nbytes = 8 * size
        x = nl.asarray(xh, device=dev)

        def softmax():
            e = nl.exp(x - nl.max(x, axis=1, keepdims=True))
            return e / nl.sum(e, axis=1, keepdims=True)
        time_numlazy("softmax", softmax, want, 1e-5, nbytes, dev, nsync, f" {shape}")
        del x
        if cp:
            cx = cp.asarray(xh)

            def cp_softmax():
                e = cp.exp(cx - cp.max(cx, axis=1, keepdims=True))
                return e / cp.sum(e, axis=1, keepdims=True)
            check("cupy softmax", cp.asnumpy(cp_softmax()), want, 1e-5)
            report("softmax", "cupy eager", timeit(cp_softmax, csync), nbytes)
            del cx
        if jax:
            jx = jax.device_put(xh)
            f = jax.jit(lambda v: jax.nn.softmax(v, axis=1))
            check("jax softmax", np.asarray(f(jx)), want, 1e-5)
            report("softmax", "jax jit", timeit(lambda: f(jx).block_until_ready(),
                                                lambda: None), nbytes)
            _jax_queued("softmax", lambda: f(jx), nbytes)
            del jx
        if torch:
            _torch_compiled("softmax", torch, [xh], want, nbytes,
                            lambda v: torch.softmax(v, dim=1))
        del xh, want

    if "matmul" in only:
        matmul(args.matmul_n, dev, nsync, cp, torch)

    if "tiny" in only:
        th = [rng.random(1000).astype(np.float32) for _ in range(2)]
        ta, tb = (nl.asarray(h, device=dev) for h in th)

        def tiny(k):
            y = (nl.sin(ta) * tb + k) / (tb + 1.0) - nl.exp(-ta) * 0.5 + nl.abs(ta - k)
            nl.mark_step(dev)
            return y
        k64 = [h.astype(np.float64) for h in th]
        check("numlazy tiny", tiny(0.25), (np.sin(k64[0]) * k64[1] + 0.25) / (k64[1] + 1.0)
              - np.exp(-k64[0]) * 0.5 + np.abs(k64[0] - 0.25), 1e-5)
        before = nl.metrics.counter_value("UncachedCompile")
        dispatched = nl.metrics.counter_value("cuda::dispatched_launch")
        steps = iter(range(10**9))
        secs = timeit(lambda: tiny(0.01 * next(steps)), nsync, reps=200, warm=20)
        report("tiny", "numlazy step (host+sync)", secs, 0,
               f"{nl.metrics.counter_value('UncachedCompile') - before} compiles, "
               f"{nl.metrics.counter_value('cuda::dispatched_launch') - dispatched} launches "
               f"through Numba's dispatcher; target < 50 us")
        # Where the host time goes: recording alone, the step without waiting, the wait.
        def record():
            return (nl.sin(ta) * tb + 0.5) / (tb + 1.0) - nl.exp(-ta) * 0.5 + nl.abs(ta - 0.5)
        keep = []
        t_rec = timeit(lambda: keep.append(record()), lambda: None, reps=200, warm=5)
        keep.clear()
        nl.mark_step(dev)
        t_step = timeit(lambda: tiny(0.5), lambda: None, reps=200, warm=5)
        report("tiny", "  of which recording 12 ops", t_rec, 0)
        report("tiny", "  step without the final wait", t_step, 0)

        @nl.compile
        def tiny_compiled(k):
            return (nl.sin(ta) * tb + k) / (tb + 1.0) - nl.exp(-ta) * 0.5 + nl.abs(ta - k)
        ks = [nl.asarray(np.float32(0.01 * i), device=dev) for i in range(64)]
        kcycle = itertools.cycle(ks)
        t_c = timeit(lambda: tiny_compiled(next(kcycle)), nsync, reps=200, warm=20)
        report("tiny", "numlazy nl.compile replay (host+sync)", t_c, 0,
               "0-d array for k: no retrace")
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        for i in range(300):
            tiny(0.001 * i)
        backend.synchronize(0)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)

    print("\n| workload | implementation | ms | TB/s | note |\n|---|---|---|---|---|")
    for work, impl, secs, tbs, note in ROWS:
        print(f"| {work} | {impl} | {secs * 1e3:.3f} | {tbs:.2f} | {note} |")


def matmul(n, dev, nsync, cp, torch):
    """n x n float32 matmul, IEEE and TF32, against cuBLAS through CuPy and torch (TFLOP/s in
    the note; the TB/s column is meaningless here)."""
    rng = np.random.default_rng(1)
    ah, bh = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    a, b = nl.asarray(ah, device=dev), nl.asarray(bh, device=dev)
    flops = 2.0 * n ** 3
    rows = 256                                 # checked on a block of rows: n^3 on the host is slow
    want = ah[:rows].astype(np.float64) @ bh.astype(np.float64)

    def note(secs):
        return f"{flops / secs / 1e12:.0f} TFLOP/s"
    for prec, rtol in (("ieee", 1e-5), ("tf32", 5e-3)):
        def step():
            y = a @ b
            nl.mark_step(dev)
            return y
        with nl.backends.cuda.matmul.flags(fp32_precision=prec):
            check(f"numlazy matmul {prec}", np.asarray(step())[:rows], want, rtol)
            secs = timeit(step, nsync, reps=20)
            report("matmul", f"numlazy {n}^2 {prec}", secs, 0, note(secs))
            report_queued("matmul", step, nsync, 0)
    if cp is not None:
        linalg = cp._core._routines_linalg
        ca, cb = cp.asarray(ah), cp.asarray(bh)
        for prec, kind in (("ieee", linalg.COMPUTE_TYPE_DEFAULT),
                           ("tf32", linalg.COMPUTE_TYPE_TF32)):
            old = linalg.get_compute_type(np.float32)
            linalg.set_compute_type(np.float32, kind)
            try:
                sync = cp.cuda.runtime.deviceSynchronize
                secs = timeit(lambda: ca @ cb, sync, reps=20)
                report("matmul", f"cupy (cuBLAS) {prec}", secs, 0, note(secs))
                report_queued("matmul", lambda: ca @ cb, sync, 0)
            finally:
                linalg.set_compute_type(np.float32, old)
        del ca, cb
    if torch is not None:
        ta, tb = torch.from_numpy(ah).cuda(), torch.from_numpy(bh).cuda()
        for prec, allow in (("ieee", False), ("tf32", True)):
            torch.backends.cuda.matmul.allow_tf32 = allow
            secs = timeit(lambda: ta @ tb, torch.cuda.synchronize, reps=20)
            report("matmul", f"torch {prec}", secs, 0, note(secs))
        torch.backends.cuda.matmul.allow_tf32 = False
        del ta, tb


def _jax_queued(work, call, nbytes):
    """JAX dispatches asynchronously: 10 calls, then wait for the last result."""
    last = []

    def one():
        last[:] = [call()]                # the last result only: it is the one waited for

    report_queued(work, one, lambda: last and last[-1].block_until_ready(), nbytes)


def _torch_compiled(work, torch, host, want, nbytes, fn):
    try:
        xs = [torch.from_numpy(h).cuda() for h in host]
        f = torch.compile(fn)
        check(f"torch.compile {work}", f(*xs).cpu().numpy(), want,
              1e-4 if work == "dotsum" else 1e-5)
        report(work, "torch.compile", timeit(lambda: f(*xs), torch.cuda.synchronize), nbytes)
        report_queued(work, lambda: f(*xs), torch.cuda.synchronize, nbytes)
    except Exception as exc:          # an anchor's failure is reported, not fatal
        print(f"# torch.compile {work} skipped: {exc!r}"[:300])


if __name__ == "__main__":
    main()
