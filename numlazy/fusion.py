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
4. `_order`: kernels in dependency order, with their buffer reads and runtime arguments.
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


def partition(graph: Graph, can_lower: Callable[[str], bool]) -> Schedule:
    nodes = graph.nodes
    host = {p for p, n in enumerate(nodes)
            if not n.is_leaf and (ops.TABLE[n.op].kind == ops.OPAQUE or not can_lower(n.op))}
    materialized = _materialized(graph, host)
    kernels = _initial_kernels(graph, materialized, host)
    kernels = _merge(graph, kernels, materialized)
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
    for p in host:
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


def walk(graph: Graph, kernel: LoopKernel, materialized: set):
    """What a loop kernel reads: ({(position, at the loop index?)} of buffers, runtime-value
    positions). Nodes it stores are computed inline when met at the loop index."""
    nodes, stored = graph.nodes, set(kernel.stores)
    starts = [(p, True) for p in kernel.stores]
    if kernel.reduce is not None:
        starts.append((kernel.space, True))
    reads, rts, seen = set(), set(), set()
    stack = starts
    while stack:
        p, canon = stack.pop()
        if (p, canon) in seen:
            continue
        seen.add((p, canon))
        node = nodes[p]
        if node.op == "param":
            rts.add(p)
            continue
        if node.op == "data" or (p in materialized and not (p in stored and canon)):
            reads.add((p, canon))
            continue
        if node.rt:
            rts.add(p)
        keeps_index = canon and ops.TABLE[node.op].kind == ops.ELEMENTWISE
        stack.extend((graph.pos[id(s)], keeps_index) for s in node.srcs)
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


def _dependencies(graph: Graph, kernels: list) -> list[set]:
    owner = {p: i for i, k in enumerate(kernels) for p in k.outputs}
    deps = []
    for k in kernels:
        if isinstance(k, LoopKernel):
            reads = {p for p, _ in walk(graph, k, set(owner))[0]}
        else:
            reads = set(k.reads)
        deps.append({owner[p] for p in reads if p in owner} - {kernels.index(k)})
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
        if isinstance(k, LoopKernel):
            k.stores.sort()
            reads, rts = walk(graph, k, materialized)
            k.reads = tuple(sorted({p for p, _ in reads}))
            k.rts = tuple(sorted(rts))
    buffers = tuple(p for k in kernels for p in k.outputs)
    return Schedule(kernels, buffers)
