"""numlazy (device cpu) next to every installed anchor, in one process, as a ratio table.

    python bench/compare.py [--n N] [--repeat R] [--plot FILE.png]
                            [--workloads chain,dotsum,softmax] [--dtype float64|float32]

Each implementation is warmed up (the first call compiles), its result is checked against a
float64 NumPy reference, then it is timed R times back to back; the table gives the median.
When one input set fits in the last-level cache, calls cycle through several
(anchors.input_sets).  GB/s counts the minimum bytes the workload must move (chain 3 reads +
1 write, dotsum 2 reads, softmax 1 read + 1 write).  "vs numlazy" is (this time) / (numlazy
time): above 1 means numlazy is faster.
Exit status: 0 when every implementation ran and numlazy agreed with NumPy, else 1.  numlazy
results outside tolerance are not timed; an anchor outside tolerance is timed and flagged
"inaccurate" (wrong shape/dtype, NaN or all-zero results fail for everyone).
"""
import argparse
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchors as A  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402


def _int_expr(text):
    base, _, exp = text.replace(" ", "").partition("**")
    return int(base) ** int(exp) if exp else int(base)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=_int_expr, default=2**24,
                   help="elements per array (2**24 ok); softmax uses isqrt(n) x isqrt(n)")
    p.add_argument("--repeat", type=int, default=10, help="timed calls per implementation")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the table (needs matplotlib)")
    p.add_argument("--workloads", default=",".join(A.WORKLOADS),
                   help="comma-separated subset of " + ",".join(A.WORKLOADS))
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = p.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in A.WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(A.WORKLOADS)}")
    if args.repeat < 1 or args.n < 1:
        p.error("--n and --repeat must be positive")
    return args


def header():
    lines = [f"numba {numba.__version__}, numpy {np.__version__}, os.cpu_count()={os.cpu_count()},"
             f" numba.get_num_threads()={numba.get_num_threads()}, {A.NUMEXPR_NOTE}"]
    if A.nl is None:
        lines.append(f"numlazy not measured: {A.NUMLAZY_ERROR}")
    else:
        lines.append(f"numlazy {getattr(A.nl, '__version__', '?')}")
    return lines


def time_block(fn, repeat):
    """Median seconds of repeat back-to-back calls.  Implementations are timed one block after
    another, each right after its own warm-up: interleaving them was tried and measured worse,
    since thread pools (OpenBLAS, NumExpr, Numba) keep spinning after their call and slow the
    next pool's kernel (dotsum numba 0.6 -> 2.9 ms at 2**20)."""
    gc.collect()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_workload(workload, n, dtype, repeat):
    """Rows (workload, name, median seconds or None, bytes, note) for one workload."""
    sets = A.input_sets(workload, n, dtype)
    ref = A.reference(workload, sets[0])
    nbytes = A.MIN_TRAFFIC[workload] * sets[0][0].nbytes
    rows = []
    for name, fn in A.implementations(workload, sets):  # numlazy first, BLAS last
        is_numlazy = name.startswith("numlazy")
        try:
            note = A.warm_and_check(workload, fn, sets, ref, dtype, strict=is_numlazy)
        except Exception as exc:
            msg = str(exc).strip().splitlines()
            rows.append((workload, name, None, nbytes,
                         f"FAILED {type(exc).__name__}: " + (msg[0] if msg else "")))
            continue
        before = A.compile_count()
        t = time_block(fn, repeat)
        if is_numlazy and A.compile_count() != before:
            note = "FAILED: numlazy recompiled while timed"
        rows.append((workload, name, t, nbytes, note))
    if workload == "dotsum":
        time.sleep(0.2)  # let OpenBLAS threads stop spinning before the next workload
    return rows, len(sets)


def format_table(rows):
    base = {}                        # each workload's first numlazy row: the default one
    for w, name, t, _, _ in rows:
        if name.startswith("numlazy") and t:
            base.setdefault(w, t)
    out = [f"{'workload':<9} {'implementation':<22} {'median ms':>10} {'GB/s':>7} "
           f"{'vs numlazy':>10}  note"]
    for w, name, t, nbytes, note in rows:
        if t is None:
            out.append(f"{w:<9} {name:<22} {'-':>10} {'-':>7} {'-':>10}  {note}")
            continue
        ratio = f"{t / base[w]:.2f}x" if w in base else "-"
        out.append(f"{w:<9} {name:<22} {t * 1e3:>10.2f} {nbytes / t / 1e9:>7.2f} {ratio:>10}"
                   f"  {note}".rstrip())
    return out


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r[0] for r in rows))
    fig, axes = plt.subplots(1, len(workloads), figsize=(5 * len(workloads), 4), squeeze=False)
    for ax, w in zip(axes[0], workloads):
        done = [r for r in rows if r[0] == w and r[2]]
        names = [r[1] for r in done]
        gbs = [r[3] / r[2] / 1e9 for r in done]
        bars = ax.barh(names, gbs, color=["C3" if nm.startswith("numlazy") else "C0"
                                          for nm in names])
        ax.bar_label(bars, labels=[f"{r[2] * 1e3:.1f} ms" for r in done], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(w)
        ax.set_xlabel("GB/s (minimum bytes moved)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    args = parse_args(argv)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("compare: --plot needs matplotlib, which is not installed "
                  "(pip install matplotlib, or pip install 'numlazy[bench]')", file=sys.stderr)
            return 2
    head = header() + [f"dtype {args.dtype}, n={args.n}, median of {args.repeat} after warm-up,"
                       f" LLC {A.llc_bytes() >> 20} MiB"]
    rows = []
    for w in args.workloads:
        shape = A.softmax_shape(args.n) if w == "softmax" else (args.n,)
        print(f"compare: {w} {args.dtype} {'x'.join(map(str, shape))} ...", file=sys.stderr,
              flush=True)
        t0 = time.perf_counter()
        new_rows, nsets = run_workload(w, args.n, args.dtype, args.repeat)
        rows += new_rows
        print(f"compare: {w} done in {time.perf_counter() - t0:.1f} s ({nsets} input set(s) "
              f"cycled)", file=sys.stderr, flush=True)
    print("\n".join(head + [""] + format_table(rows)))
    if args.plot:
        plot(rows, args.plot, " | ".join(head))
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0 if all(r[2] is not None and not r[4].startswith("FAILED") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
