"""`nl.compile(fn)`: trace once, then replay the compiled program without tracing.

    >>> import numpy as np, numlazy as nl
    >>> @nl.compile
    ... def update(w, g):
    ...     return w - 0.1 * g, nl.sum(g * g)
    >>> w, norm = update(nl.asarray(np.ones(3)), nl.asarray(np.ones(3)))
    >>> w.tolist(), float(norm)
    ([0.9, 0.9, 0.9], 3.0)

The first call with a new *signature* — the arguments' nesting, each array's shape, dtype and
device, and the value of each Python scalar or other non-array argument — runs `fn` on
numlazy arrays, recording its graph, and compiles it (through the shared compile cache). Later
calls with that signature skip `fn` and the recording: the program runs on the new arrays'
buffers at once, and the results come back computed. The values of the flags that change
generated code (`NUMLAZY_FORCE_FALLBACK`, fp32 precision) are part of the signature, and NumPy
arrays count as arrays of the current default device. Python scalars are part of the signature
(pass a 0-d array for a value that changes every call); arrays captured from an enclosing
scope and scalar constants inside `fn` are baked in at the trace, as in `jax.jit`.

A trace is refused with `TraceError` when replaying it could differ from running `fn`: `fn`
read a value (`float(x)`, `bool(x)`, `np.asarray(x)`: data-dependent control flow), ran a
step, updated an input in place, mixed devices, or needed an op the backend cannot lower
(the interpreter fallback, which includes `NUMLAZY_FORCE_FALLBACK`).
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from . import config, executor, ir, metrics
from .cache import LRU
from ._array import Array
from .device import default as default_device
from .executor import TraceError
from .fusion import HostKernel
from .registry import backend_for
from .tree import MAX_DEPTH

__all__ = ["compile", "TraceError"]


def compile(fn):  # noqa: A001 - nl.compile, after torch.compile / jax.jit
    """`fn` traced once per signature and replayed afterwards (see the module doc)."""
    if not callable(fn):
        raise TypeError(f"nl.compile: expected a callable, got {type(fn).__name__}")
    return CompiledFunction(fn)


class CompiledFunction:
    def __init__(self, fn):
        self.fn = fn
        self.traces = 0                      # how many signatures were traced
        # Traces by signature, bounded like the compile cache (scalars in signatures would
        # otherwise grow it without limit).
        self._replays = LRU(lambda: config.get("compile_cache_size"))
        self._lock = threading.Lock()
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        leaves, treedef = _flatten((args, kwargs))
        sig = (treedef, tuple(map(_signature, leaves)), config.code_flags())
        replay = self._replays.get(sig)
        if replay is None:
            with self._lock:
                replay = self._replays.get(sig)
                if replay is None:
                    replay = self._trace(leaves, treedef)
                    self._replays.put(sig, replay)
        return replay(_inputs(leaves))

    def _trace(self, leaves, treedef) -> "_Replay":
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        inputs = _inputs(leaves)
        # The trace reads fresh leaves over the inputs' buffers, never the caller's nodes.
        traced = {i: Array(ir.data(a._node.buffer, a.shape, a.dtype, a.device))
                  for i, a in inputs.items()}
        nodes = {i: t._node for i, t in traced.items()}
        args, kwargs = _unflatten(treedef, [traced.get(i, x) for i, x in enumerate(leaves)])
        # No step runs while tracing: another thread's mark_step would compute the trace's
        # arrays, and a computed output would be replayed as a constant.
        with executor._lock:
            watermark = executor.new_uid()
            executor._trace.active = True
            try:
                out = self.fn(*args, **kwargs)
            except TraceError as exc:
                raise TraceError(f"nl.compile({name}): {exc}") from None
            finally:
                executor._trace.active = False
                for uid in [u for u in list(executor._live) if u > watermark]:
                    executor._live.pop(uid, None)      # the trace's arrays are not step work
            changed = [i for i, t in traced.items() if t._node is not nodes[i]]
            if changed:
                raise TraceError(f"nl.compile({name}): the function updates argument leaf "
                                 f"{changed[0]} in place (x += ...); return the new value instead")
            replay = _Replay(name, out, nodes)        # may refuse the trace
        self.traces += 1
        return replay


class _Shim:
    """A frozen copy of a traced node: what Program.run and the interpreter read."""

    __slots__ = ("op", "srcs", "attrs", "rt", "shape", "dtype", "device", "buffer")

    def __init__(self, node, srcs, buffer):
        self.op, self.srcs, self.attrs, self.rt = node.op, srcs, node.attrs, node.rt
        self.shape, self.dtype, self.device, self.buffer = (node.shape, node.dtype,
                                                            node.device, buffer)

    def with_buffer(self, buffer) -> "_Shim":
        leaf = _Shim.__new__(_Shim)
        leaf.op, leaf.srcs, leaf.attrs, leaf.rt = self.op, self.srcs, self.attrs, self.rt
        leaf.shape, leaf.dtype, leaf.device = self.shape, self.dtype, self.device
        leaf.buffer = buffer
        return leaf


class _ReplayGraph:
    __slots__ = ("nodes", "pos", "outputs")

    def __init__(self, nodes, pos, outputs):
        self.nodes, self.pos, self.outputs = nodes, pos, outputs


class _Replay:
    """One traced signature: the program, a frozen copy of its graph, and where each input
    and output lives in it."""

    def __init__(self, name: str, out, inputs: dict):
        out_leaves, self.out_treedef = _flatten(out)
        input_of = {id(node): i for i, node in inputs.items()}
        pending = [x._node for x in out_leaves if isinstance(x, Array) and not x._node.realized]
        devices = {str(x.device) for x in out_leaves if isinstance(x, Array)} | \
            {str(n.device) for n in inputs.values()}
        if len(devices) > 1:
            raise TraceError(f"nl.compile({name}): arrays on several devices "
                             f"({', '.join(sorted(devices))}); compile one device's work")
        self.program, where = None, {}
        if pending:
            graph = ir.Graph(list(dict.fromkeys(pending)))
            self.device = graph.nodes[0].device
            self.backend = backend_for(self.device)
            self.program, _ = executor._program(graph, self.device, self.backend)
            schedule = getattr(self.program, "schedule", None)   # None: an interpreter device
            fallback = [graph.nodes[k.node].op for k in (schedule.kernels if schedule else ())
                        if isinstance(k, HostKernel) and k.fallback]
            if fallback:
                raise TraceError(f"nl.compile({name}): op {fallback[0]} would run on the "
                                 f"interpreter (a fallback: the {self.device.type} backend "
                                 f"does not lower it, or NUMLAZY_FORCE_FALLBACK names it); "
                                 f"run this function uncompiled")
            shims = []
            for node in graph.nodes:
                srcs = tuple(shims[graph.pos[id(s)]] for s in node.srcs)
                constant = node.buffer if id(node) not in input_of else None
                shims.append(_Shim(node, srcs, constant))
            self.nodes = shims
            self.pos = {id(s): p for p, s in enumerate(shims)}
            self.outputs = graph.outputs
            self.feeds = [(p, input_of[id(n)]) for p, n in enumerate(graph.nodes)
                          if id(n) in input_of]
            where = graph.pos
        # Each output leaf: ("pos", p), ("input", leaf index), or ("value", object).
        self.out_spec = []
        for x in out_leaves:
            if isinstance(x, Array) and id(x._node) in input_of:
                self.out_spec.append(("input", input_of[id(x._node)]))
            elif isinstance(x, Array) and not x._node.realized:
                self.out_spec.append(("pos", where[id(x._node)]))
            else:
                self.out_spec.append(("value", x))

    def __call__(self, inputs: dict):
        buffers = {}
        if self.program is not None:
            nodes = list(self.nodes)
            for p, i in self.feeds:
                nodes[p] = nodes[p].with_buffer(inputs[i]._node.buffer)
            graph = _ReplayGraph(nodes, self.pos, self.outputs)
            with metrics.timed("ExecuteTime"):
                buffers = self.program.run(graph, self.backend, self.device.index or 0)
        made: dict = {}
        out = []
        for kind, v in self.out_spec:
            if kind == "pos":
                if v not in made:
                    n = self.nodes[v]
                    made[v] = Array(ir.data(buffers[v], n.shape, n.dtype, n.device))
                out.append(made[v])
            else:
                out.append(inputs[v] if kind == "input" else v)
        return _unflatten(self.out_treedef, out)


# --- signatures and trees -------------------------------------------------------------------

_STATIC = (bool, int, float, complex, str, bytes, type(None))


def _signature(x):
    if isinstance(x, Array):
        node = x._node
        return ("array", node.shape, node.dtype, node.device)
    if isinstance(x, np.ndarray):            # it goes to the default device
        return ("ndarray", x.shape, x.dtype.str, default_device())
    if isinstance(x, _STATIC) or isinstance(x, np.generic):
        return ("static", type(x), x)
    raise TypeError(f"nl.compile: unsupported argument of type {type(x).__name__}; pass "
                    f"numlazy or NumPy arrays, Python scalars, or lists/tuples/dicts of them")


def _inputs(leaves) -> dict:
    """{leaf index: computed Array} for the array leaves (NumPy arrays are converted, pending
    arrays computed first)."""
    from .api import asarray
    out, pending = {}, []
    for i, x in enumerate(leaves):
        if isinstance(x, Array):
            out[i] = x
            if x._node.buffer is None:
                pending.append(x)
        elif isinstance(x, np.ndarray):
            out[i] = asarray(x)
    if pending:
        executor.sync(pending)
    return out


_CONTAINERS = (dict, list, tuple)


def _flatten(tree):
    """(leaves, hashable description of the containers)."""
    leaves: list = []
    if type(tree) is tuple and len(tree) == 2 and type(tree[0]) is tuple and not tree[1] \
            and type(tree[1]) is dict:
        # A call's (args, {}) with only leaves among the args: the common replay, no walk.
        args = tree[0]
        if not any([isinstance(a, _CONTAINERS) for a in args]):
            n = len(args)
            return list(args), (tuple, ((tuple, (None,) * n), ("dict", (), ())))

    def walk(node, depth=0):
        if depth > MAX_DEPTH and isinstance(node, (dict, list, tuple)):
            raise ValueError(f"nl.compile: arguments or results nested more than {MAX_DEPTH} "
                             f"levels deep (a list, tuple or dict that contains itself?)")
        if isinstance(node, dict):
            keys = tuple(node)
            return ("dict", keys, tuple(walk(node[k], depth + 1) for k in keys))
        if isinstance(node, (list, tuple)):
            return (type(node), tuple(walk(v, depth + 1) for v in node))
        leaves.append(node)
        return None
    return leaves, walk(tree)


def _unflatten(treedef, leaves):
    it = iter(leaves)

    def build(d):
        if d is None:
            return next(it)
        if d[0] == "dict":
            return {k: build(v) for k, v in zip(d[1], d[2])}
        kind, items = d
        values = [build(v) for v in items]
        if hasattr(kind, "_fields"):
            return kind(*values)
        return kind(values)
    return build(treedef)
