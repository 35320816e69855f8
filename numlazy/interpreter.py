"""The reference interpreter: runs any graph op by op with NumPy.

It is three things: the oracle the tests compare against, the fallback for an op a backend
cannot lower (counted as `fallback::<op>`), and the `"numpy"` device. Every op's NumPy
implementation comes from the op table.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .ir import Graph, Node
from .registry import Backend


def evaluate(node: Node, args: list) -> np.ndarray:
    """Node `node` computed with NumPy from its sources' values `args`."""
    op = ops.TABLE[node.op]
    with np.errstate(all="ignore"):
        if op.kind == ops.ELEMENTWISE:
            loop = node.attrs[0]
            args = [np.asarray(a).astype(d, copy=False) for a, d in zip(args, loop)]
            out = args[0] if op.name == "astype" else op.ref(*args)
        elif op.kind == ops.REDUCE:
            x, axes = args[0], node.attrs[0]
            if op.name in ("argmax", "argmin"):
                out = op.ref(x.reshape(-1) if len(axes) != 1 else x,
                             axis=None if len(axes) != 1 else axes[0])
            else:
                out = op.ref(x, axis=axes)
        elif op.kind == ops.VIEW:
            out = apply_view(node, args[0])
        elif op.kind == ops.CREATION:
            out = _create(node)
        elif op.kind == ops.GATHER:
            out = op.ref(*args, *node.attrs)
        elif op.kind == ops.HOST:
            out = op.ref(*args, *node.attrs, *node.rt)
        else:
            out = op.ref(*args)
    return np.asarray(out).astype(node.dtype, copy=False)


def apply_view(node: Node, x):
    """A view node applied to an array with NumPy's own views (no copy where NumPy can)."""
    attrs, rt = node.attrs, node.rt
    if node.op == "broadcast":
        return np.broadcast_to(x, node.shape)
    if node.op == "permute":
        return x.transpose(attrs)
    if node.op == "reshape":
        return x.reshape(node.shape)
    index, r, out_dim = [], 0, 0
    for kind in attrs:
        if kind == "f":
            index.append(slice(None))
            out_dim += 1
        elif kind == "s":
            start, step = int(rt[r]), int(rt[r + 1])
            stop = start + step * node.shape[out_dim]
            index.append(slice(start, stop if stop >= 0 else None, step))
            out_dim, r = out_dim + 1, r + 2
        elif kind == "i":
            index.append(int(rt[r]))
            r += 1
        else:
            index.append(None)
            out_dim += 1
    return x[tuple(index)]


def _create(node: Node) -> np.ndarray:
    rt, shape = node.rt, node.shape
    if node.op == "full":
        return np.full(shape, rt[0], node.dtype)
    if node.op == "eye":
        rows, cols = np.arange(shape[0])[:, None], np.arange(shape[1])[None, :]
        return cols - rows == rt[0]
    i = np.arange(shape[0])
    values = rt[0] + i * rt[1]
    if node.op == "linspace":
        values = np.where(i == rt[3], rt[2], values)
    return values


def run_graph(graph: Graph) -> dict:
    """Every node of `graph` evaluated in order; returns {position: array} of its outputs."""
    values: list = []
    for node in graph.nodes:
        if node.op == "data":
            values.append(node.buffer)
        elif node.op == "param":
            values.append(np.asarray(node.rt[0]))
        else:
            values.append(evaluate(node, [values[graph.pos[id(s)]] for s in node.srcs]))
    return {p: np.array(values[p], order="C", copy=None) for p in graph.outputs}  # keeps 0-d


class InterpretedProgram:
    def run(self, graph: Graph, backend, index) -> dict:
        return run_graph(graph)


class InterpreterBackend(Backend):
    """The `"numpy"` device: NumPy arrays on the host, every graph interpreted op by op."""

    name = "numpy"

    def to_device(self, array, index):
        return array

    def to_host(self, buffer):
        return buffer

    def allocate(self, shape, dtype, index):
        return np.empty(shape, dtype)

    def compile_graph(self, graph):
        return InterpretedProgram()
