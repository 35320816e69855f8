"""Where the host time of a cached CUDA step goes (issue 4: a small step under 50 µs).

    python bench/cuda_host.py [--steps 2000]

On a GPU, for the tiny workload (10 ops on 1,000 float32, as bench/gpu_check.py): the step's
parts (record, graph walk + key, lookup, run, attach; bench/engine.py's breakdown), then the
run's pieces one at a time (allocating an output from the pool, marshalling the kernel's
arguments, the driver launch, an empty stream wait), then a profile of 300 steps. Medians in
µs; nothing waits for the kernel except the timed wait.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import weakref

import numpy as np

import numlazy as nl
from numlazy import executor, ir
from numlazy.registry import backend_for
from numlazy_cuda import launch

from engine import tiny_breakdown


def median_us(fn, reps=2000) -> float:
    clock, times = time.perf_counter, []
    for _ in range(reps):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times) * 1e6


def tiny(ta, tb, k):
    return (nl.sin(ta) * tb + k) / (tb + 1.0) - nl.exp(-ta) * 0.5 + nl.abs(ta - k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    dev = nl.device("cuda")
    backend = backend_for(dev)
    rng = np.random.default_rng(0)
    ta, tb = (nl.asarray(rng.random(1000).astype(np.float32), device=dev) for _ in range(2))
    for i in range(20):                                   # compile, load, record the plan
        tiny(ta, tb, 0.01 * i)
        nl.mark_step(dev)
    backend.synchronize(0)
    print("| part | µs |\n|---|---|")
    for name, secs in tiny_breakdown(ta, tb, args.steps).items():
        print(f"| step: {name} | {secs * 1e6:.1f} |")
    backend.synchronize(0)

    # The run's pieces, on the step's own kernel and buffers.
    y = tiny(ta, tb, 0.5)
    graph = ir.Graph([y._node])
    program, _ = executor._program(graph, dev, backend)
    (fn, space, outputs, reads, rts), = program._plan
    nodes = graph.nodes
    shape, dtype = nodes[outputs[0]].shape, nodes[outputs[0]].dtype
    outs = [backend.allocate(shape, dtype, 0)]
    ins = [nodes[p].buffer for p in reads]
    rt = [v for p in rts for v in nodes[p].rt]
    kernel = fn.flat
    call = ((nodes[space].shape or (1,)), *outs, *ins, *rt)
    marshalled = launch._marshal(kernel._plan, call)
    stream = backend.current_stream(0)
    cufn, params = kernel._fns[0], kernel._params
    pieces = {
        "allocate an output (pool hit) and free it": lambda: backend.allocate(shape, dtype, 0),
        "current_stream": lambda: backend.current_stream(0),
        "marshal the arguments": lambda: launch._marshal(kernel._plan, call),
        "pack + cuLaunchKernel": lambda: params.launch(cufn, 4, 256, stream, marshalled),
        "Elementwise.__call__ (marshal + launch)": lambda: fn(nodes[space].shape, outs, ins, rt),
        "program.run (allocate + launch)": lambda: program.run(graph, backend, 0),
        "stream wait, nothing queued": lambda: backend.synchronize(0),
    }
    # The pieces of an allocation: a pooled block viewed as a typed array.
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numba.cuda.cudadrv.driver import MemoryPointer
    base = outs[0].gpu_data
    owner = MemoryPointer(base.context, base.device_pointer, 4000)
    pieces.update({
        "  MemoryPointer": lambda: MemoryPointer(base.context, base.device_pointer, 4000),
        "  DeviceNDArray over it": lambda: DeviceNDArray(shape, (4,), dtype, gpu_data=owner),
        "  weakref.finalize": lambda: weakref.finalize(owner, int),
    })
    for name, piece in pieces.items():
        us = median_us(piece)
        backend.synchronize(0)
        print(f"| {name} | {us:.1f} |", flush=True)

    prof = cProfile.Profile()
    prof.enable()
    for i in range(300):
        y = tiny(ta, tb, 0.001 * i)
        nl.mark_step(dev)
    backend.synchronize(0)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
