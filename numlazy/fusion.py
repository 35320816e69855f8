"""Fusion: split a step's graph into as few kernels as possible. Target-independent.

Steps, in order:
1. `_materialized`: the nodes that need a buffer — the step's outputs, every reduction, every
   op a loop cannot compute (matmul, ops the backend cannot lower) and the inputs those need.
2. `_initial_kernels`: one kernel per materialized node. A loop kernel computes its root(s)
   for every index of its loop space, inlining every pending elementwise, view and creation
   node upstream (views become index maps); a host kernel runs one opaque op.
3. `_merge`: fuse loop kernels that iterate the same space — an elementwise output into the
   reduction that consumes it (one pass computes and stores `y` and accumulates `sum(y)`),
   and elementwise kernels of the same shape into one multi-output kernel — unless that
   would make a kernel read its own output at another index or create a cycle.
4. `_merge_rows` (backends that lower `RowKernel`s): reductions over trailing dims and the
   kernels of the same space that feed on them share one parallel loop over the leading
   dims, as phases (a row softmax is one kernel).
5. `_order`: kernels in dependency order, with their buffer reads and runtime arguments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from . import ops
from .ir import Graph


@dataclass
class LoopKernel:
    """A loop nest over the shape of `space`: computes `stores` (elementwise nodes, at the loop
    index) and, if `reduce` is set, accumulates that reduction of `space`."""
    space: int
    reduce: Optional[int] = None
    stores: list = field(default_factory=list)
    reads: tuple = ()          # positions read from buffers
    rts: tuple = ()            # positions whose runtime values are arguments

    @property
    def outputs(self) -> list:
        return self.stores + ([self.reduce] if self.reduce is not None else [])


@dataclass
class RowKernel:
    """Loop kernels over one space sharing its leading `outer` dims: one parallel loop over
    those and, inside it, each phase's inner loops in order (row softmax: max, then the sum
    of exp, then the division — a row stays in cache). A phase reads what earlier phases
    wrote only at the current outer index, so every read was written by the same thread."""
    phases: list
    outer: int
    space: int                 # the full loop space (a phase may span only the outer dims)
    reads: tuple = ()
    rts: tuple = ()
    rows: tuple = ()           # values per row only this kernel reads: kept in it, no buffer

    @property
    def written(self) -> list:
        return [p for phase in self.phases for p in phase.outputs]

    @property
    def outputs(self) -> list:
        return [p for p in self.written if p not in self.rows]


@dataclass
class HostKernel:
    """One op run as a whole-array call: an opaque op, or an op run by the interpreter
    (`fallback`). `inputs` are (base position, view positions applied on the host)."""
    node: int
    inputs: tuple
    fallback: bool = False

    @property
    def outputs(self) -> list:
        return [self.node]

    @property
    def reads(self) -> tuple:
        return tuple(base for base, _ in self.inputs)


@dataclass
class Schedule:
    kernels: list
    buffers: tuple             # positions that get a buffer, in kernel order

    def __len__(self):
        return len(self.kernels)


def partition(graph: Graph, can_lower: Callable[[str], bool], rows: bool = False) -> Schedule:
    """The kernels of `graph`. `rows`: the backend lowers `RowKernel`s."""
    nodes = graph.nodes
    host = {p for p, n in enumerate(nodes)
            if not n.is_leaf and (ops.TABLE[n.op].kind in (ops.OPAQUE, ops.HOST)
                                  or not can_lower(n.op))}
    materialized = _materialized(graph, host)
    kernels = _initial_kernels(graph, materialized, host)
    kernels = _merge(graph, kernels, materialized)
    if rows:
        kernels = _merge_rows(graph, kernels, materialized)
    return _order(graph, kernels, materialized)


def _view_chain(graph: Graph, pos: int) -> tuple[int, tuple]:
    """Follow view ops down to the node they view: (base, views from base up to pos)."""
    chain = []
    while ops.TABLE.get(graph.nodes[pos].op, None) is not None and \
            ops.TABLE[graph.nodes[pos].op].kind == ops.VIEW:
        chain.append(pos)
        pos = graph.pos[id(graph.nodes[pos].srcs[0])]
    return pos, tuple(reversed(chain))


def _materialized(graph: Graph, host: set) -> set:
    nodes = graph.nodes
    out = set(graph.outputs) | host
    out |= {p for p, n in enumerate(nodes) if not n.is_leaf and ops.TABLE[n.op].kind == ops.REDUCE}
    gathers = {p for p, n in enumerate(nodes)
               if not n.is_leaf and ops.TABLE[n.op].kind == ops.GATHER}
    for p in host | gathers:       # gathers read their sources only where chosen: buffers
        for s in nodes[p].srcs:
            base, _ = _view_chain(graph, graph.pos[id(s)])
            if not nodes[base].is_leaf:
                out.add(base)
    return {p for p in out if not nodes[p].is_leaf}


def _initial_kernels(graph: Graph, materialized: set, host: set) -> list:
    kernels = []
    for p in sorted(materialized):
        node = graph.nodes[p]
        if p in host:
            inputs = tuple(_view_chain(graph, graph.pos[id(s)]) for s in node.srcs)
            kernels.append(HostKernel(p, inputs, fallback=ops.TABLE[node.op].kind != ops.OPAQUE))
        elif ops.TABLE[node.op].kind == ops.REDUCE:
            kernels.append(LoopKernel(graph.pos[id(node.srcs[0])], reduce=p))
        else:
            kernels.append(LoopKernel(p, stores=[p]))
    return kernels


def loop_index(rank: int) -> tuple:
    """The index variables of a loop space: ("i0", "i1", ...), as generated code names them."""
    return tuple(f"i{d}" for d in range(rank))


def rt_names(p: int, node) -> list:
    """The argument names of node `p`'s runtime values, as generated code names them."""
    return [f"r{p}_{j}" for j in range(len(node.rt))]


def walk(graph: Graph, kernel: LoopKernel, materialized: set):
    """What a loop kernel reads: ({(position, index expressions)} of buffers, runtime-value
    positions). Indices are symbolic, as the emitter spells them, so "read at the loop index"
    is a tuple comparison. Nodes the kernel stores are computed inline at the loop index."""
    nodes, stored = graph.nodes, set(kernel.stores)
    here = loop_index(len(nodes[kernel.space].shape))
    stack = [(p, here) for p in kernel.stores]
    if kernel.reduce is not None:
        stack.append((kernel.space, here))
    reads, rts, seen = set(), set(), set()
    while stack:
        p, idx = stack.pop()
        if (p, idx) in seen:
            continue
        seen.add((p, idx))
        node = nodes[p]
        if node.op == "param":
            rts.add(p)
            continue
        if node.op == "data" or (p in materialized and not (p in stored and idx == here)):
            reads.add((p, idx))
            continue
        if node.rt:
            rts.add(p)
        op = ops.TABLE[node.op]
        if op.kind == ops.GATHER:
            srcs, found = [graph.pos[id(s)] for s in node.srcs], ()
            if op.lookup is not None:      # an index read from data: never the loop index
                *srcs, where = srcs
                stack.append((where, tuple(op.lookup(node.attrs, idx))))
                found = (f"found{p}",)
            stack.extend((s, tuple(op.source_index(node.attrs, idx, rt_names(p, node), k,
                                                   *found)))
                         for k, s in enumerate(srcs))
            continue
        if op.kind == ops.VIEW:
            idx = tuple(op.index_map(node.attrs, idx, rt_names(p, node)))
        stack.extend((graph.pos[id(s)], idx) for s in node.srcs)
    return reads, rts


def _merge(graph: Graph, kernels: list, materialized: set) -> list:
    shape = lambda k: graph.nodes[k.space].shape  # noqa: E731
    merged = True
    while merged:
        merged = False
        loops = [k for k in kernels if isinstance(k, LoopKernel)]
        # Elementwise outputs into the reduction that consumes them at its own index first,
        # then elementwise kernels of one shape together.
        pairs = [(r, e) for r in loops if r.reduce is not None
                 for e in loops if e.reduce is None and shape(e) == shape(r)]
        pairs += [(a, b) for i, a in enumerate(loops) if a.reduce is None
                  for b in loops[i + 1:] if b.reduce is None and shape(a) == shape(b)]
        for into, other in pairs:
            candidate = LoopKernel(into.space, into.reduce, into.stores + other.stores)
            rest = [k for k in kernels if k is not into and k is not other]
            if _valid(graph, candidate, materialized) and _acyclic(graph, rest + [candidate]):
                kernels = rest + [candidate]
                merged = True
                break
    return kernels


def _valid(graph: Graph, kernel: LoopKernel, materialized: set) -> bool:
    """A kernel may not read a buffer it writes (it would read elements not yet written)."""
    reads, _ = walk(graph, kernel, materialized)
    return not any(p in kernel.outputs for p, _ in reads)


def _merge_rows(graph: Graph, kernels: list, materialized: set) -> list:
    """Fuse reductions over trailing dims with the kernels of the same space around them."""
    shape = lambda k: graph.nodes[k.space].shape  # noqa: E731
    merged = True
    while merged:
        merged = False
        groups = [k for k in kernels if _outer(graph, k)]
        pairs = [(g, k) for g in groups for k in kernels
                 if k is not g and _joins_row(graph, g, k)]
        for g, k in pairs:
            candidate = _row_kernel(graph, _phases(g) + _phases(k), _outer(graph, g),
                                    g.space, materialized)
            rest = [x for x in kernels if x is not g and x is not k]
            if candidate is not None and _acyclic(graph, rest + [candidate]):
                kernels = rest + [candidate]
                merged = True
                break
    return kernels


def _joins_row(graph: Graph, group, k) -> bool:
    """Whether kernel `k` may become a phase of row group `group`: a reduction sharing its
    space and outer dims, or an elementwise kernel over the whole space or over just the
    outer dims (a consumer of the row's reductions, such as `sigmoid(x @ w)`)."""
    if isinstance(k, HostKernel):
        return False
    space, outer = graph.nodes[group.space].shape, _outer(graph, group)
    k_space = graph.nodes[k.space].shape
    if _outer(graph, k) == outer and k_space == space:
        return True
    return isinstance(k, LoopKernel) and k.reduce is None and k_space in (space, space[:outer])


def _phases(k) -> list:
    return k.phases if isinstance(k, RowKernel) else [k]


def _outer(graph: Graph, k) -> Optional[int]:
    """Leading dims a row kernel can share: a reduction's kept dims, if they lead."""
    if isinstance(k, RowKernel):
        return k.outer
    if not isinstance(k, LoopKernel) or k.reduce is None:
        return None
    axes, rank = graph.nodes[k.reduce].attrs[0], len(graph.nodes[k.space].shape)
    kept = rank - len(axes)
    return kept if kept and axes == tuple(range(kept, rank)) else None


def _row_kernel(graph: Graph, phases: list, outer: int, space: int, materialized: set):
    """The phases as one RowKernel in dependency order, or None if some phase would read a
    sibling's output at another row, or before it is written."""
    owner = {p: i for i, ph in enumerate(phases) for p in ph.outputs}
    reads = [walk(graph, ph, materialized)[0] for ph in phases]
    deps = [{owner[p] for p, _ in r if p in owner} for r in reads]
    order = _toposort(deps)              # None also if a phase reads its own output
    if order is None:
        return None
    here = loop_index(len(graph.nodes[space].shape))
    for r in reads:
        for p, idx in r:
            if p in owner and not (len(idx) >= outer and idx == here[:len(idx)]):
                return None
    return RowKernel([phases[i] for i in order], outer, space)


def _reads(graph: Graph, k, materialized: set) -> set:
    """Positions of the buffers a kernel reads that other kernels write or that are data."""
    if isinstance(k, HostKernel):
        return set(k.reads)
    found = {p for ph in _phases(k) for p, _ in walk(graph, ph, materialized)[0]}
    return found - set(k.written) if isinstance(k, RowKernel) else found


def _dependencies(graph: Graph, kernels: list) -> list[set]:
    owner = {p: i for i, k in enumerate(kernels) for p in k.outputs}
    deps = []
    for i, k in enumerate(kernels):
        deps.append({owner[p] for p in _reads(graph, k, set(owner)) if p in owner} - {i})
    return deps


def _acyclic(graph: Graph, kernels: list) -> bool:
    return _toposort(_dependencies(graph, kernels)) is not None


def _toposort(deps: list[set]) -> Optional[list[int]]:
    order, state = [], [0] * len(deps)          # 0 new, 1 in progress, 2 done
    for start in range(len(deps)):
        stack = [(start, iter(sorted(deps[start])))]
        if state[start]:
            continue
        state[start] = 1
        while stack:
            k, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[k] = 2
                order.append(k)
            elif state[nxt] == 1:
                return None
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(sorted(deps[nxt]))))
    return order


def _order(graph: Graph, kernels: list, materialized: set) -> Schedule:
    kernels.sort(key=lambda k: min(k.outputs))
    order = _toposort(_dependencies(graph, kernels))
    kernels = [kernels[i] for i in order]
    for k in kernels:
        for ph in _phases(k) if not isinstance(k, HostKernel) else ():
            ph.stores.sort()
            reads, rts = walk(graph, ph, materialized)
            ph.reads = tuple(sorted({p for p, _ in reads}))
            ph.rts = tuple(sorted(rts))
        if isinstance(k, RowKernel):
            k.reads = tuple(sorted(_reads(graph, k, materialized)))
            k.rts = tuple(sorted({p for ph in k.phases for p in ph.rts}))
    _keep_row_values(graph, kernels)
    buffers = tuple(p for k in kernels for p in k.outputs)
    return Schedule(kernels, buffers)


def _keep_row_values(graph: Graph, kernels: list) -> None:
    """A row kernel keeps the values it computes once per row (a reduction's result, a
    phase over the outer dims only) to itself when no other kernel reads them and the step
    does not return them: a row softmax writes no buffer for its max and its sum."""
    elsewhere = set(graph.outputs).union(*(k.reads for k in kernels))
    for k in kernels:
        if isinstance(k, RowKernel):         # ranks, not sizes: the key fixes them
            k.rows = tuple([p for p in k.written if p not in elsewhere
                            and len(graph.nodes[p].shape) == k.outer])
