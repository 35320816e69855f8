"""The scalar-expression emitter shared by every Numba target (DESIGN.md rule 8).

`KernelParts` turns a fused `LoopKernel` into the pieces a backend wraps in its own loops:
argument names, the statements that compute every stored value at a loop index, and the
reduction's accumulator. Generated text depends only on the graph's structure, never on sizes
or values, so its hash names the kernel on disk.

    v3 = float64(sin(a0[i0]))              # elementwise op, cast to the node's dtype
    v5 = float64((v3 * a1[0]))             # a broadcast read: an index map, not a copy
"""
from __future__ import annotations

import re

import numpy as np

from . import dtypes as dt
from . import ops
from .fusion import LoopKernel, RowKernel, loop_index, rt_names
from .ir import Graph


def cast(dtype: np.dtype, expr: str) -> str:
    return f"{dtype.type.__name__}({expr})"


# Names generated code may use besides ops.VOCABULARY: dtype constructors and constants.
DTYPE_NAMES = sorted(d.type.__name__ for d in dt.SUPPORTED)
CONSTANTS = ("inf", "nan")


class KernelParts:
    """The target-independent text of one loop kernel.

    Arguments, in order: `n` (the loop space's shape, a tuple), one array per output
    (`o<pos>`), one per buffer read (`a<pos>`), then every runtime value (`r<pos>_<j>`).
    Index variables are `i0 .. i<rank-1>` over the loop space.
    """

    def __init__(self, graph: Graph, kernel: LoopKernel, prefix: str = "",
                 siblings: frozenset = frozenset(), rows: frozenset = frozenset(),
                 stash: dict = None, unstash: dict = None):
        """`prefix` names this kernel's values apart from other phases of a row kernel;
        `siblings` are the row's outputs, read through their output arrays (`o<pos>`);
        `rows`, the row values it keeps without a buffer, are variables (`row<pos>`).
        `stash` {node: output}: also store the node's value at the loop index in that
        output array; `unstash` {node: output}: read it back from there (`RowParts`)."""
        self.graph, self.kernel, self.prefix, self.siblings = graph, kernel, prefix, siblings
        self.rows, self.stash, self.unstash = rows, stash or {}, unstash or {}
        nodes = graph.nodes
        self.rank = len(nodes[kernel.space].shape)
        self.index = loop_index(self.rank)
        self.outs = [f"o{p}" for p in kernel.outputs]
        self.ins = [f"a{p}" for p in kernel.reads]
        self.rt_names = {p: rt_names(p, nodes[p]) for p in kernel.rts}
        self.args = ["n"] + self.outs + self.ins + [n for p in kernel.rts
                                                     for n in self.rt_names[p]]
        self._reads = set(kernel.reads)
        self.calls: list = []          # (op, loop dtype) of each transcendental op: complete
                                       # once rendered (a reduction emits its value then)
        self._memo: dict = {}
        self.lines: list[str] = []
        self.line_dims: list[frozenset] = []     # loop dims each line depends on
        self._dims: dict[str, frozenset] = {}
        self._stores()

    # -- values -----------------------------------------------------------------------------

    def value(self, p: int, idx: tuple) -> str:
        """An expression (a variable or an argument) for node `p` at index `idx`."""
        key = (p, idx)
        if key not in self._memo:
            self._memo[key] = self._emit(p, idx)
        return self._memo[key]

    def _emit(self, p: int, idx: tuple) -> str:
        node, nodes = self.graph.nodes[p], self.graph.nodes
        if node.op == "param":
            return self.rt_names[p][0]
        if p in self.unstash and idx == self.index:       # an earlier phase stored it
            return self._assign(f"o{self.unstash[p]}[{_subscript(idx)}]")
        if p in self._reads and not (p in self.kernel.stores and idx == self.index):
            if p in self.rows:         # an earlier phase's value for this row
                return f"row{p}"
            if p in self.siblings:     # an earlier phase's output: named, read once per row
                return self._assign(f"o{p}[{_subscript(idx)}]")
            return f"a{p}[{_subscript(idx)}]"
        op = ops.TABLE[node.op]
        srcs = [self.graph.pos[id(s)] for s in node.srcs]
        if op.kind == ops.VIEW:
            return self.value(srcs[0], tuple(op.index_map(node.attrs, idx, self.rt_names.get(p))))
        if op.kind == ops.CREATION:
            return self._assign(cast(node.dtype, op.value(idx, self.rt_names[p])))
        if op.kind == ops.GATHER:          # read only the chosen source (they are buffers)
            rt, expr, found = self.rt_names[p], None, ()
            if op.lookup is not None:      # the last source holds indices: read one first
                *srcs, where = srcs
                found = (self._assign(self.value(where, tuple(op.lookup(node.attrs, idx)))),)
            for k in reversed(range(len(srcs))):
                v = self.value(srcs[k], tuple(op.source_index(node.attrs, idx, rt, k, *found)))
                expr = v if expr is None else \
                    f"({v} if {op.select(node.attrs, idx, rt, k)} else {expr})"
            return expr
        loop = node.attrs[0]
        args = []
        for s, want in zip(srcs, loop):
            v = self.value(s, idx)
            args.append(v if nodes[s].dtype == want else cast(want, v))
        name = self._assign(cast(node.dtype, op.template(loop).format(*args)))
        if node.op in ops.TRANSCENDENTAL:
            self.calls.append((node.op, loop[0]))
        if p in self.stash and idx == self.index:
            self._line(self.store(self.stash[p], idx, name), range(self.rank))
        return name

    def _assign(self, expr: str) -> str:
        name = f"{self.prefix}v{len(self.lines)}"
        self._line(f"{name} = {expr}", self.dims_of(expr))
        self._dims[name] = self.line_dims[-1]
        return name

    def _line(self, line: str, dims) -> None:
        self.lines.append(line)
        self.line_dims.append(frozenset(dims))

    def dims_of(self, expr: str) -> frozenset:
        """The loop dims an expression depends on: its index variables and its values'.
        A backend places each line in the outermost loop that defines them (a broadcast
        operand is computed once per row, not once per element)."""
        dims = {int(d) for d in _INDEX_VAR.findall(expr)}
        for name in _VALUE_VAR.findall(expr):
            dims |= self._dims.get(name, frozenset())
        return frozenset(dims)

    def _stores(self) -> None:
        for p in self.kernel.stores:
            v = self.value(p, self.index)
            self._line(self.store(p, self.index, v), range(self.rank))

    def store(self, p: int, idx, expr: str) -> str:
        """The statement storing `expr` as node `p` at index `idx` (a row value: its
        variable)."""
        if p in self.rows:
            return f"row{p} = {expr}"
        return f"o{p}[{_subscript(tuple(idx))}] = {expr}"

    # -- reductions -------------------------------------------------------------------------

    def reduction(self):
        """(statements computing the reduced value `v` at the loop index, with the stores),
        the `Reduction` entry, the accumulator dtype, the output dtype, reduced dims, and the
        expression of the flat index within the reduced dims (argmin/argmax's `k`)."""
        nodes, k = self.graph.nodes, self.kernel
        node = nodes[k.reduce]
        axes = node.attrs[0]
        v = self.value(k.space, self.index)
        lines = self.lines + [f"v = {v}"]
        red = ops.REDUCTIONS[node.op]
        acc_dtype = ops.accumulator_dtype(node.op, nodes[k.space].dtype, node.dtype)
        flat = "0"
        for d in axes:
            flat = f"({flat} * n[{d}] + i{d})"
        return lines, red, acc_dtype, node.dtype, axes, flat


class RowParts:
    """A `RowKernel`: one `KernelParts` per phase (values named apart) under one argument
    list: `n`, the row's outputs, its reads, its runtime values."""

    def __init__(self, graph: Graph, kernel: RowKernel, stash: bool = False):
        """`stash`: a value a reduction phase folds, that a later phase needs again at the
        same element, goes through that phase's output array instead of being computed
        twice (a row softmax's exp, as a hand-written CPU loop does: the row is still in
        cache). Off where the row stays in registers (CUDA's `exact`)."""
        self.kernel, self.outer = kernel, kernel.outer
        siblings, self.rows = frozenset(kernel.written), frozenset(kernel.rows)

        def build(stashes):
            return [KernelParts(graph, ph, f"p{j}_", siblings, self.rows,
                                {e: p for e, (k, p) in stashes.items() if k == j},
                                {e: p for e, (k, p) in stashes.items() if k < j
                                 and p in ph.stores})
                    for j, ph in enumerate(kernel.phases)]
        self.phases = build({})
        stashes = self._stashes(graph) if stash else None
        if stashes:
            self.phases = build(stashes)
        self.rank = len(graph.nodes[kernel.space].shape)
        self.row_dtypes = {p: graph.nodes[p].dtype for p in kernel.rows}
        names = {p: rt_names(p, graph.nodes[p]) for p in kernel.rts}
        self.args = (["n"] + [f"o{p}" for p in kernel.outputs] + [f"a{p}" for p in kernel.reads]
                     + [n for p in kernel.rts for n in names[p]])

    @property
    def calls(self) -> list:
        """Every phase's `calls` (complete once the kernel is rendered)."""
        return [call for ph in self.phases for call in ph.calls]

    def _stashes(self, graph: Graph) -> dict:
        """{node: (reduction phase, output)}: the computed node a reduction phase folds,
        where a later phase over every dim reads it at its own element and stores an
        output of its dtype (each output stashes one node)."""
        found, used = {}, set()
        for k, ph in enumerate(self.kernel.phases):
            e = ph.space
            if ph.reduce is None or graph.nodes[e].is_leaf or e in self.kernel.written or \
                    ops.TABLE[graph.nodes[e].op].kind != ops.ELEMENTWISE:
                continue                   # (a written node is read from its own array)
            for later in self.phases[k + 1:]:
                if later.rank == self.phases[k].rank and (e, later.index) in later._memo:
                    stores = [p for p in later.kernel.stores if p not in used
                              and graph.nodes[p].dtype == graph.nodes[e].dtype]
                    if stores:
                        found[e] = (k, stores[0])
                        used.add(stores[0])
                        break
        return found


_INDEX_VAR = re.compile(r"\bi(\d+)\b")
_VALUE_VAR = re.compile(r"\b\w*v\d+\b")


def _subscript(idx: tuple) -> str:
    return ", ".join(idx) if idx else "0"
