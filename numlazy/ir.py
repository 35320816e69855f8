"""The graph: immutable, hash-consed nodes, and the structural key of a step's graph.

A node is an op applied to source nodes. What the generated code depends on (op, attributes,
dtype, rank) is its `key`, computed once at creation. What it does not depend on lives in
`rt`, runtime values passed to kernels as arguments: Python scalars, slice starts and steps,
shapes. Sizes are never part of a key (DESIGN.md rule 2).

When a step has computed a node, the node is *realized*: it keeps its buffer, drops its
sources, and from then on is a data leaf to every graph that uses it.
"""
from __future__ import annotations

import weakref

LEAF_OPS = ("data", "param")


class Node:
    __slots__ = ("op", "srcs", "attrs", "rt", "shape", "dtype", "device", "buffer", "key",
                 "intern_key", "__weakref__")

    def __init__(self, op, srcs, attrs, rt, shape, dtype, device, buffer=None):
        self.op = op
        self.srcs = srcs
        self.attrs = attrs
        self.rt = rt
        self.shape = shape
        self.dtype = dtype
        self.device = device
        self.buffer = buffer
        self.key = (op, attrs, _DTYPE_STR.get(dtype) or _dtype_str(dtype), len(shape))
        self.intern_key = None

    @property
    def realized(self) -> bool:
        return self.buffer is not None

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAF_OPS

    def realize(self, buffer) -> None:
        """Attach the computed buffer: the node becomes a data leaf."""
        _forget(self)
        self.buffer = buffer
        self.op, self.srcs, self.attrs, self.rt = "data", (), (), ()
        self.key = ("data", (), _dtype_str(self.dtype), len(self.shape))

    def __repr__(self):
        return f"Node({self.op}, {self.dtype}, {self.shape})"


_DTYPE_STR: dict = {}


def _dtype_str(dtype) -> str:
    """`dtype.str` (NumPy builds that string anew on every access: a third of a Node's cost)."""
    s = _DTYPE_STR.get(dtype)
    if s is None:
        s = _DTYPE_STR[dtype] = dtype.str
    return s


# Hash-consing: structurally equal nodes over the same sources are one node, so a value
# written twice is computed once. The table maps a structural key to a weak reference to the
# node. Leaves are never interned (their identity is their data), and a realized node leaves
# the table before it drops its sources, so an id() in the key of a live entry always belongs
# to a live source. Entries whose node died are swept lazily, when the table has doubled
# since the last sweep (a weakref callback per node cost more than the sweep). Plain dict
# operations are atomic under the GIL; two threads racing to create one node at worst create
# two equal nodes.
_interned: dict = {}
_SWEEP_MIN = 4096
_sweep_at = _SWEEP_MIN


def _forget(node: Node) -> None:
    key, node.intern_key = node.intern_key, None
    if key is not None:
        ref = _interned.get(key)
        if ref is not None and ref() is node:
            del _interned[key]


def _sweep() -> None:
    """Drop the entries of dead nodes; the next sweep waits until the table doubles."""
    global _sweep_at
    for key in [k for k, ref in list(_interned.items()) if ref() is None]:
        _interned.pop(key, None)
    _sweep_at = max(_SWEEP_MIN, 2 * len(_interned))


def make(op, srcs, attrs, rt, shape, dtype, device) -> Node:
    """The node for `op(srcs)`, reusing an equal one that is still alive and pending."""
    n = len(srcs)                     # the key spelled out for the common arities
    if n == 2:
        key = (op, id(srcs[0]), id(srcs[1]), attrs, rt, shape, dtype)
    elif n == 1:
        key = (op, id(srcs[0]), attrs, rt, shape, dtype)
    else:
        key = (op, *map(id, srcs), attrs, rt, shape, dtype)
    ref = _interned.get(key)
    if ref is not None:
        node = ref()
        if node is not None and node.buffer is None:
            return node
    node = Node(op, srcs, attrs, rt, shape, dtype, device)
    node.intern_key = key
    _interned[key] = weakref.ref(node)
    if len(_interned) > _sweep_at:
        _sweep()
    return node


def data(buffer, shape, dtype, device) -> Node:
    return Node("data", (), (), (), shape, dtype, device, buffer)


def param(value, dtype, device) -> Node:
    """A Python scalar: a runtime argument of its dtype, not part of any key."""
    return Node("param", (), (), (dtype.type(value),), (), dtype, device)


class Graph:
    """One step's pending graph in a deterministic topological order.

    `nodes` lists every node the outputs need, sources before users, stopping at realized
    nodes and params (the leaves). `key` is the structure: per node its key and the positions
    of its sources, plus which positions are outputs. Two steps with the same key run the
    same program on their own data, scalars and sizes.
    """

    __slots__ = ("nodes", "pos", "outputs", "key")

    def __init__(self, outputs: list[Node]):
        try:
            self._walk(outputs, self._visit_recursive)
        except RecursionError:                # deep graphs: the same order, without recursion
            self._walk(outputs, self._visit)

    def _walk(self, outputs: list[Node], visit) -> None:
        self.nodes: list[Node] = []
        self.pos: dict[int, int] = {}
        entries: list = []
        for root in outputs:
            if id(root) not in self.pos:
                visit(root, entries)
        self.outputs = tuple([self.pos[id(n)] for n in outputs])
        self.key = (tuple(entries), self.outputs)

    def _visit_recursive(self, root: Node, entries: list) -> None:
        # Post-order DFS; recursion is the cheapest walk in CPython, and this is on the
        # cache-hit path of every step, hence the local names.
        pos, nodes, append, add = self.pos, self.nodes, entries.append, self.nodes.append

        def visit(node):
            srcs = node.srcs
            n = len(srcs)
            if n == 2:                        # unrolled for the common arities
                s0, s1 = srcs
                i0, i1 = id(s0), id(s1)
                if i0 not in pos:
                    visit(s0)
                if i1 not in pos:
                    visit(s1)
                append((node.key, (pos[i0], pos[i1])))
            elif n == 1:
                s0 = srcs[0]
                i0 = id(s0)
                if i0 not in pos:
                    visit(s0)
                append((node.key, (pos[i0],)))
            elif n == 0:
                append((node.key, ()))
            else:
                for s in srcs:
                    if id(s) not in pos:
                        visit(s)
                append((node.key, tuple([pos[id(s)] for s in srcs])))
            pos[id(node)] = len(nodes)
            add(node)
        try:
            visit(root)
        finally:
            del visit                         # the closure refers to itself: break the cycle

    def _visit(self, root: Node, entries: list) -> None:
        # Iterative post-order DFS in the same order (deep graphs).
        pos, nodes, append = self.pos, self.nodes, entries.append
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in pos:
                continue
            srcs = node.srcs
            if expanded or not srcs:
                pos[id(node)] = len(nodes)
                nodes.append(node)
                append((node.key, tuple([pos[id(s)] for s in srcs])))
                continue
            stack.append((node, True))
            stack.extend([(s, False) for s in reversed(srcs) if id(s) not in pos])

    def __len__(self):
        return len(self.nodes)
