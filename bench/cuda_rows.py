"""The CUDA backend's row-kernel variants on a row softmax: time, registers, local memory.

    python bench/cuda_rows.py [--rows 32768] [--cols 4096] [--configs block:256,exact:8:512]
                              [--profile]

A config is `block:THREADS` (a block per row looping over the row) or `exact:SLOTS:THREADS` (a
block per row holding SLOTS elements per thread in registers; needs cols == SLOTS * THREADS).
Optional words: launch bounds, `@512x2` (at most 512 threads a block, 2 blocks an SM: ptxas
keeps to 64 registers) or `@none` (the default: ptxas chooses); `:fast`, the "fast" fp32
precision; `:signed`, subscripts as Numba's signed (wraparound-checked) indices, as before
the unsigned-subscript change (NOTES "CUDA v4"); `:scalar`, `exact` without its 16-byte loads
and stores (4-byte accesses, each thread's elements a block apart, as before session 15).
Each config renders its kernels afresh (numlazy's in-memory caches are cleared) and the
launcher is told which variant and block size to use. The step is timed as bench/gpu_check.py times it (median of 30 synchronized
steps, float32), split into the host's part (until `mark_step` returns) and the wait, then
the kernel alone (30 launches back to back). `--profile` prints where the host's part of 30
steps of the last config goes.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np

import numlazy as nl
import numlazy_cuda
from numlazy import cache
from numlazy.registry import backend_for
from numlazy_cuda import render

from gpu_check import check, timeit


BOUNDS = render.ROW_BOUNDS
UNSIGNED = render._unsigned
VECTOR_PLAN = render._row_vector_plan


def force(variant: str, threads: int, seen: list):
    """Make every row kernel launch `variant` with `threads` threads per block."""
    def call(self, sizes, outs, ins, rts):
        outer = int(np.prod([sizes[d] for d in self.kept]))
        kernel = getattr(self, variant)
        launch = (min(outer, self.max_blocks), threads, (tuple(sizes), *outs, *ins, *rts))
        seen[:] = [(kernel, launch)]     # the last only: it holds the step's buffers
        kernel(*launch)
    numlazy_cuda.RowReduction.__call__ = call


def kernel_time(kernel, launch, sync, reps=30) -> float:
    """Seconds per launch of the kernel alone, back to back (no step around it)."""
    kernel(*launch)
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        kernel(*launch)
    sync()
    return (time.perf_counter() - t0) / reps


def resources(kernel) -> str:
    d = kernel.dispatcher
    if not hasattr(d, "get_regs_per_thread"):
        return "(simulator)"
    regs = list(d.get_regs_per_thread().values())
    local = list(d.get_local_mem_per_thread().values())
    return f"{regs[0]} regs, {local[0]} B local"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=32768)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--configs", default="block:256,exact:16:256,exact:8:512,exact:4:1024")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    dev = nl.device("cuda")
    backend = backend_for(dev)
    x = np.random.default_rng(0).standard_normal((args.rows, args.cols)).astype(np.float32)
    e64 = np.exp(x - x.max(axis=1, keepdims=True))
    want = e64 / e64.sum(axis=1, keepdims=True)
    xd = nl.asarray(x, device=dev)
    nbytes = 8 * x.size

    def softmax():            # `e` dies before the step, as in bench/gpu_check.py
        e = nl.exp(xd - nl.max(xd, axis=1, keepdims=True))
        return e / nl.sum(e, axis=1, keepdims=True)

    def step():
        out = softmax()
        nl.mark_step(dev)
        return out

    def host_and_wait():
        """Median seconds until the step is launched, and of the wait after it."""
        host, wait = [], []
        for _ in range(30):
            t0 = time.perf_counter()
            step()
            t1 = time.perf_counter()
            sync()
            host.append(t1 - t0)
            wait.append(time.perf_counter() - t1)
        return statistics.median(host), statistics.median(wait)

    sync = lambda: backend.synchronize(0)                  # noqa: E731
    print("| config | step | TB/s | host / wait | kernel alone | TB/s | resources | device "
          "allocations |\n|---|---|---|---|---|---|---|---|")
    for config in args.configs.split(","):
        variant, *words = config.replace("@", ":@").split(":")
        bounds = next((w[1:] for w in words if w.startswith("@")), None)
        render.ROW_BOUNDS = BOUNDS if bounds is None else None if bounds == "none" else \
            tuple(map(int, bounds.split("x")))
        flags = {w for w in words if w in ("fast", "signed", "scalar")}
        numbers = [w for w in words if w not in flags and not w.startswith("@")]
        fast = "fast" in flags
        render._unsigned = (lambda line: line) if "signed" in flags else UNSIGNED
        render._row_vector_plan = (lambda *a: (1, [], [])) if "scalar" in flags else \
            VECTOR_PLAN
        threads = int(numbers[-1])
        if variant == "exact":
            render.ROW_CACHE = int(numbers[0])
        cache.clear_memory()
        seen: list = []
        force(variant, threads, seen)
        scope = nl.backends.cuda.flags(fp32_precision="fast") if fast else \
            contextlib.nullcontext()
        with scope:
            check(config, step(), want, 1e-5)
            allocs = backend.memory_stats(0)["num_device_alloc"]
            secs = timeit(step, sync)
            host, wait = host_and_wait()
            allocs = backend.memory_stats(0)["num_device_alloc"] - allocs
        kernel, launch = seen[-1]
        alone = kernel_time(kernel, launch, sync)
        print(f"| {config} | {secs * 1e3:.3f} ms | {nbytes / secs / 1e12:.2f} | "
              f"{host * 1e3:.3f} / {wait * 1e3:.3f} ms | {alone * 1e3:.3f} ms | "
              f"{nbytes / alone / 1e12:.2f} | {resources(kernel)} | {allocs} |", flush=True)

    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        for _ in range(30):
            prof.enable()
            step()
            prof.disable()
            sync()
        pstats.Stats(prof).sort_stats("cumtime").print_stats(30)


if __name__ == "__main__":
    main()
