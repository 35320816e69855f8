"""The graph: immutable, hash-consed nodes, and the structural key of a step's graph.

A node is an op applied to source nodes. What the generated code depends on (op, attributes,
dtype, rank) is its `key`, computed once at creation. What it does not depend on lives in
`rt`, runtime values passed to kernels as arguments: Python scalars, slice starts and steps,
shapes. Sizes are never part of a key (DESIGN.md rule 2).

When a step has computed a node, the node is *realized*: it keeps its buffer, drops its
sources, and from then on is a data leaf to every graph that uses it.
"""
from __future__ import annotations

import functools
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
        self.key = (op, attrs, _dtype_str(dtype), len(shape))
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
# written twice is computed once. The table maps a structural key to a weak reference that
# removes its entry when the node dies. Leaves are never interned (their identity is their
# data), and a realized node leaves the table before it drops its sources, so an id() in a
# table key always belongs to a live source. Plain dict operations are atomic under the GIL;
# two threads racing to create one node at worst create two equal nodes.
_interned: dict = {}


def _forget(node: Node) -> None:
    key, node.intern_key = node.intern_key, None
    if key is not None:
        ref = _interned.get(key)
        if ref is not None and ref() is node:
            del _interned[key]


def _drop(key, ref) -> None:
    if _interned.get(key) is ref:
        del _interned[key]


def make(op, srcs, attrs, rt, shape, dtype, device) -> Node:
    """The node for `op(srcs)`, reusing an equal one that is still alive and pending."""
    key = (op, tuple([id(s) for s in srcs]), attrs, rt, shape, dtype)
    ref = _interned.get(key)
    node = ref() if ref is not None else None
    if node is None or node.buffer is not None:
        node = Node(op, srcs, attrs, rt, shape, dtype, device)
        node.intern_key = key
        _interned[key] = weakref.ref(node, functools.partial(_drop, key))
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
        self.nodes: list[Node] = []
        self.pos: dict[int, int] = {}
        entries: list = []
        for root in outputs:
            self._visit(root, entries)
        self.outputs = tuple(self.pos[id(n)] for n in outputs)
        self.key = (tuple(entries), self.outputs)

    def _visit(self, root: Node, entries: list) -> None:
        # Iterative post-order DFS (deep graphs must not hit the recursion limit); on the
        # cache-hit path of every step, hence the local names.
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
