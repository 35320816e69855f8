"""Compile a graph's generated CUDA kernels to PTX without a GPU (`numba.cuda.compile_ptx`).

The simulator runs code that a GPU would reject (NUMBA_NOTES.md), so CI also compiles every
kernel variant for a real architecture. Run this in a process *without*
NUMBA_ENABLE_CUDASIM: it renders the GPU flavour of each module.

    from numlazy.ir import Graph
    from numlazy_cuda.ptx import compile_graph
    compile_graph(Graph([y._node, s._node]))      # [(variant, kernel, bytes of PTX), ...]
"""
from __future__ import annotations

import numba
import numpy as np
from numba import cuda, types

from numlazy import cache, fusion, ops
from numlazy.codegen import KernelParts, RowParts
from numlazy.fusion import HostKernel, RowKernel
from numlazy.ir import Graph

from . import render


def _array(dtype, ndim):
    return types.Array(numba.from_dtype(np.dtype(dtype)), max(ndim, 1), "C")


def _argtypes(graph: Graph, kernel) -> list:
    nodes = graph.nodes
    rank = len(nodes[kernel.space].shape)
    args = [types.UniTuple(types.int64, max(rank, 1))]
    args += [_array(nodes[p].dtype, len(nodes[p].shape)) for p in kernel.outputs]
    args += [_array(nodes[p].dtype, len(nodes[p].shape)) for p in kernel.reads]
    args += [numba.typeof(v) for p in kernel.rts for v in nodes[p].rt]
    return args


def compile_graph(graph: Graph, cc=(9, 0)) -> list:
    """Every CUDA kernel variant of `graph`'s fused kernels, compiled to PTX for `cc`:
    a list of (kernel index, variant name, PTX size)."""
    from . import CudaBackend
    schedule = fusion.partition(graph, lambda op: True, CudaBackend.fuses_rows)
    done = []
    for j, kernel in enumerate(schedule.kernels):
        if isinstance(kernel, HostKernel):
            continue
        parts = (RowParts if isinstance(kernel, RowKernel) else KernelParts)(graph, kernel)
        module = cache.load_module(render.render(parts, simulator=False))
        args = _argtypes(graph, kernel)
        for name in render.variants(parts):
            if name == "partial":
                acc = ops.accumulator_dtype(graph.nodes[kernel.reduce].op,
                                            graph.nodes[kernel.space].dtype,
                                            graph.nodes[kernel.reduce].dtype)
                sig = args[:1] + [_array(acc, 1), _array(np.int64, 1)] + args[1:]
            elif name == "final":
                out = args[len(kernel.outputs)]           # the reduction's output
                sig = [_array(acc, 1), _array(np.int64, 1), types.int64, out]
            else:
                sig = args
            bounds = render.ROW_BOUNDS if name == "exact" else None
            ptx, _ = cuda.compile_ptx(getattr(module, name).py_func, tuple(sig), cc=cc,
                                      launch_bounds=bounds)
            done.append((j, name, len(ptx)))
    return done


def compile_matmul(dtype, cc=(9, 0)) -> int:
    """The tiled matmul kernel for `dtype`, compiled to PTX (its size)."""
    module = cache.load_module(render.matmul_source(np.dtype(dtype), simulator=False))
    arr = types.Array(numba.from_dtype(np.dtype(dtype)), 2, "A")
    ptx, _ = cuda.compile_ptx(module.matmul.py_func, (arr, arr, arr), cc=cc)
    return len(ptx)
