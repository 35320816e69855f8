"""On a GPU host: what each fp32 precision value does, and the caching allocator's numbers.

    python3 bench/precision_check.py [log2 n]      (PYTHONPATH as bench/gpu_check.sh sets it)

Prints, for float32 arrays of 2**n elements on cuda:0 (and the CPU for the reduction): time
and error against a float64 NumPy reference for a reduction, a transcendental chain and a
4096^2 matmul at ieee / fast / tf32; then the allocator's counters over repeated steps and the
driver's free memory against `memory_reserved`.
"""
from __future__ import annotations

import gc
import statistics
import sys
import time

import numpy as np

import numlazy as nl

acc = nl.accelerator


def timed(fn, device, repeat=7):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        if device == "cuda":
            acc.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def rel_err(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))


def main(log2=26):
    n = 1 << log2
    rng = np.random.default_rng(0)
    host = rng.random(n, dtype=np.float32)
    print(f"accelerator {acc.current_accelerator(True)}, {acc.device_count()} device(s), "
          f"free/total {[f'{v / 2**30:.1f} GiB' for v in acc.get_memory_info()]}")
    ref_sum = float(np.sum(host.astype(np.float64) * 1.5))
    ref_chain = np.sin(host.astype(np.float64)) * 2 + np.exp(-host.astype(np.float64))
    for device in ("cuda", "cpu"):
        x = nl.asarray(host, device=device)
        for prec in ("ieee", "fast"):
            node = getattr(nl.backends, device)
            with node.flags(fp32_precision=prec):
                def red():
                    s = nl.sum(x * 1.5)
                    nl.mark_step(device)
                    return s
                t, s = timed(red, device)
                print(f"{device} {prec:5s} sum(x*1.5)       {t * 1e3:8.3f} ms  rel err "
                      f"{abs(float(s) - ref_sum) / ref_sum:.2e}")
                if device == "cpu":
                    continue

                def chain():
                    y = nl.sin(x) * 2 + nl.exp(-x)
                    nl.mark_step(device)
                    return y
                t, y = timed(chain, device)
                print(f"{device} {prec:5s} sin(x)*2+exp(-x) {t * 1e3:8.3f} ms  rel err "
                      f"{rel_err(np.asarray(y), ref_chain):.2e}")
        del x
    m = 4096
    a = rng.standard_normal((m, m), dtype=np.float32)
    b = rng.standard_normal((m, m), dtype=np.float32)
    ref = a[:256].astype(np.float64) @ b.astype(np.float64)
    xa, xb = nl.asarray(a, device="cuda"), nl.asarray(b, device="cuda")
    for prec in ("ieee", "tf32"):
        with nl.backends.cuda.matmul.flags(fp32_precision=prec):
            def mm():
                c = xa @ xb
                nl.mark_step("cuda")
                return c
            t, c = timed(mm, "cuda")
            print(f"cuda {prec:5s} matmul {m}^2       {t * 1e3:8.3f} ms  "
                  f"{2 * m**3 / t / 1e12:6.1f} TFLOP/s  rel err "
                  f"{rel_err(np.asarray(c)[:256], ref):.2e}")
    print("counters:", {k: nl.metrics.counter_value(k) for k in nl.metrics.counter_names()
                        if k.startswith("cuda::")})
    del xa, xb, c
    # The allocator over repeated steps: device allocations stop after the first step.
    gc.collect()
    acc.empty_cache()
    acc.reset_accumulated_memory_stats()
    free0 = acc.get_memory_info()[0]
    x = nl.asarray(host, device="cuda")
    device_allocs = []
    for _ in range(10):
        y = x * 2 + 1
        nl.mark_step("cuda")
        device_allocs.append(acc.memory_stats()["num_device_alloc"])
    acc.synchronize()
    stats = acc.memory_stats()
    free1 = acc.get_memory_info()[0]
    print(f"allocator: num_device_alloc after each of 10 steps {device_allocs}; pool hits "
          f"{stats['num_pool_hits']}; allocated {acc.memory_allocated() / 2**20:.1f} MiB, "
          f"reserved {acc.memory_reserved() / 2**20:.1f} MiB (peak "
          f"{acc.max_memory_reserved() / 2**20:.1f}); driver free fell by "
          f"{(free0 - free1) / 2**20:.1f} MiB")
    del x, y
    gc.collect()
    before = acc.get_memory_info()[0]
    cached = acc.memory_stats()["cached_bytes.all.current"]
    acc.empty_cache()
    after = acc.get_memory_info()[0]
    print(f"empty_cache: {cached / 2**20:.1f} MiB cached; driver free rose by "
          f"{(after - before) / 2**20:.1f} MiB; reserved now {acc.memory_reserved()} bytes")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 26)
