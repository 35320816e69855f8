"""The step engine: live arrays, `mark_step`/`sync`, cache lookup, compile, run, attach.

A step, in order:
1. `_pending_outputs`: the live arrays to compute, grouped by device.
2. `Graph(...)`: their pending graph in a canonical order, and its structural key.
3. `_program`: the compile cache looked up by that key plus the device type, the flags that
   change code and the versions; on a miss, fusion and the backend compile a `Program`.
4. `Program.run`: kernels run on this step's buffers, scalars and sizes.
5. `_attach`: each computed node is realized with its buffer and becomes a data leaf.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
import weakref

import numba
import numpy as np

from . import __version__, cache, config, fusion, interpreter, metrics
from .device import Device, parse
from .fusion import HostKernel
from .ir import Graph
from .registry import backend_for

VERSIONS = (__version__, numba.__version__, np.__version__)

_lock = threading.RLock()
_live: dict[int, weakref.ref] = {}          # array uid -> weakref, in creation order
_uids = itertools.count()


def new_uid() -> int:
    """A unique, increasing id for a new array."""
    return next(_uids)


def track(array) -> None:
    """Register a pending array; it leaves the registry when collected or computed."""
    uid = array._uid
    _live[uid] = weakref.ref(array, lambda _, uid=uid: _live.pop(uid, None))


def live_arrays(device: Device | None = None) -> list:
    """Pending live arrays (on `device`), oldest first. Computed ones leave the registry."""
    pending = []
    for uid, ref in list(_live.items()):
        a = ref()
        if a is None or a._node.realized:
            _live.pop(uid, None)
        elif device is None or a.device == device:
            pending.append(a)
    return pending


def mark_step(device="", wait: bool = False) -> None:
    """Compute every live pending array on `device` ("" = the default device) in one step."""
    metrics.increment("MarkStep")
    d = parse(device or None)
    sync(live_arrays(d), wait=wait)


@contextlib.contextmanager
def step(device=""):
    """`with nl.step():` — a `mark_step` on exit. On an exception the work recorded inside
    the block is dropped from the step (its arrays are only computed if read later) and the
    exception propagates."""
    first_uid = next(_uids)
    try:
        yield
    except BaseException:
        for uid in [u for u in _live if u > first_uid]:
            _live.pop(uid, None)
        raise
    mark_step(device)


def sync(arrays, wait: bool = False) -> None:
    """Compute `arrays` (and nothing else) in one program per device."""
    by_device: dict[Device, list] = {}
    for a in arrays:
        if not a._node.realized:
            by_device.setdefault(a.device, []).append(a._node)
    with _lock:
        for device, nodes in by_device.items():
            _run(device, list(dict.fromkeys(nodes)))
            if wait:
                backend_for(device).synchronize(device.index or 0)


def materialize(array) -> None:
    """Compute `array` and every live array inside its pending subgraph (a read)."""
    if array._node.realized:
        return
    inside = {id(n) for n in Graph([array._node]).nodes}
    sync([array] + [a for a in live_arrays(array.device) if id(a._node) in inside])


def _run(device: Device, outputs: list) -> None:
    backend = backend_for(device)
    graph = Graph(outputs)
    program = _program(graph, device, backend)
    with metrics.timed("ExecuteTime"):
        buffers = program.run(graph, backend, device.index or 0)
    _attach(graph, buffers)


def _program(graph: Graph, device: Device, backend):
    key = (graph.key, device.type, config.code_flags(), VERSIONS)
    program = cache.programs.get(key)
    if program is not None:
        metrics.increment("CachedCompile")
        return program
    metrics.increment("UncachedCompile")
    with metrics.timed("CompileTime"):
        program = backend.compile_graph(graph) or _compile(graph, backend)
    cache.programs.put(key, program)
    return program


def _attach(graph: Graph, buffers: dict) -> None:
    for p, buffer in buffers.items():
        graph.nodes[p].realize(buffer)


def _compile(graph: Graph, backend) -> "Program":
    schedule = fusion.partition(graph, backend.can_lower, backend.fuses_rows)
    compiled = [None if isinstance(k, HostKernel) else backend.compile_kernel(k, graph)
                for k in schedule.kernels]
    return Program(schedule, compiled)


class Program:
    """A compiled step: its schedule and one compiled callable per loop kernel. It refers to
    nodes by position, so it runs any graph with the same key."""

    def __init__(self, schedule: fusion.Schedule, compiled: list):
        self.schedule = schedule
        self.compiled = compiled

    @property
    def kernel_count(self) -> int:
        return len(self.schedule)

    def run(self, graph: Graph, backend, index: int) -> dict:
        nodes, buffers = graph.nodes, {}

        def buffer(p):
            return buffers[p] if p in buffers else nodes[p].buffer

        metrics.increment("KernelLaunch", len(self.compiled))
        for kernel, fn in zip(self.schedule.kernels, self.compiled):
            for p in kernel.outputs:
                buffers[p] = backend.allocate(nodes[p].shape, nodes[p].dtype, index)
            if fn is not None:
                fn(nodes[kernel.space].shape,
                   [_flat0(buffers[p]) for p in kernel.outputs],
                   [_flat0(buffer(p)) for p in kernel.reads],
                   [v for p in kernel.rts for v in nodes[p].rt])
            else:
                _run_host(kernel, nodes, buffer, buffers, backend, index)
        return buffers


def _flat0(buf):
    """Kernels index rank-0 arrays as `x[0]`."""
    return buf.reshape(1) if buf.ndim == 0 else buf


def _run_host(kernel: HostKernel, nodes, buffer, buffers, backend, index) -> None:
    node = nodes[kernel.node]
    inputs = []
    for base, views in kernel.inputs:
        if nodes[base].op == "param":
            x = np.asarray(nodes[base].rt[0])
        else:
            x = buffer(base)
            x = backend.to_host(x) if kernel.fallback else x
        for v in views:
            x = interpreter.apply_view(nodes[v], x)
        inputs.append(x)
    if kernel.fallback:
        metrics.increment(f"fallback::{node.op}")
        result = interpreter.evaluate(node, inputs)
        buffers[kernel.node] = backend.to_device(np.array(result, order="C"), index)
    else:
        backend.run_opaque(node.op, inputs, buffers[kernel.node], node)
