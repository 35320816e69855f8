"""Where a logreg step's time goes (issue 3: the plain loop against hand-written Numba).

    python bench/logreg_profile.py [--n 200000] [--d 32] [--steps 50]

Runs the plain loop (p live at mark_step), the loop with p dead (only w kept), the
`nl.compile` step and the hand-written kernels, 5 times each, interleaved; prints the median
step time of each and, for the plain and dead-p loops, each kernel's median time
(NUMLAZY_DEBUG=2 timings, read from numlazy's step report).
"""
from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import time
from contextlib import redirect_stderr

import numpy as np

import numlazy as nl
from numlazy import config
from engine import logreg_compiled, logreg_numba, logreg_numlazy


def logreg_dead_p(X, y, w, steps):
    n = X.shape[0]
    for step in range(steps):
        lr = 0.5 / (1 + 0.05 * step)
        w = w - lr * ((X.T @ (1.0 / (1.0 + nl.exp(-(X @ w))) - y)) / n)
        nl.mark_step()
    return w


def kernel_times(loop, X, y, w0, steps):
    """Median ms of each kernel line of the step reports (NUMLAZY_DEBUG=2)."""
    err = io.StringIO()
    with config.override(debug=2), redirect_stderr(err):
        loop(X, y, nl.asarray(w0), steps)
    times: dict = {}
    for line in err.getvalue().splitlines():
        m = re.match(r"\s+(kernel \d+: .*): ([\d.]+) ms$", line)
        if m:
            times.setdefault(m.group(1), []).append(float(m.group(2)))
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X_h = rng.normal(size=(args.n, args.d))
    y_h = (X_h @ rng.normal(size=args.d) > 0).astype(np.float64)
    w0 = np.zeros(args.d)
    X, y = nl.asarray(X_h), nl.asarray(y_h)
    loops = {
        "plain (p live)": lambda: logreg_numlazy(X, y, nl.asarray(w0), args.steps),
        "p dead": lambda: logreg_dead_p(X, y, nl.asarray(w0), args.steps),
        "nl.compile": lambda: logreg_compiled(X, y, nl.asarray(w0), args.steps),
        "hand-written numba": lambda: logreg_numba(X_h, y_h, w0, args.steps),
    }
    times = {k: [] for k in loops}
    for fn in loops.values():
        fn()                                               # compile
    for _ in range(5):
        for name, fn in loops.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / args.steps)
    print(f"logreg n={args.n} d={args.d}, {os.cpu_count()} CPUs, numba threads "
          f"{__import__('numba').get_num_threads()}: median ms per step")
    for name, t in times.items():
        print(f"  {name:20s} {statistics.median(t) * 1e3:8.3f}  (min {min(t) * 1e3:.3f})")
    for name, loop in (("plain (p live)", logreg_numlazy), ("p dead", logreg_dead_p)):
        print(f"  kernels, {name}:")
        for k, ms in kernel_times(loop, X, y, w0, args.steps).items():
            print(f"    {k}: {ms:.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
