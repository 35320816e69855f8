"""The step engine: live arrays, `mark_step`/`sync`, cache lookup, compile, run, attach.

A step, in order:
1. `_pending_outputs`: the live arrays to compute, grouped by device.
2. `Graph(...)`: their pending graph in a canonical order, and its structural key.
3. `_program`: the compile cache looked up by that key plus the device type, the flags that
   change code and the versions; on a miss, fusion and the backend compile a `Program`.
4. `Program.run`: kernels run on this step's buffers, scalars and sizes.
5. `_attach`: each computed node is realized with its buffer and becomes a data leaf.
6. The device's step closures run (`numlazy.closures`).

Extra work happens per step only when a feature asks for it: closures queued, `NUMLAZY_DEBUG`
or `NUMLAZY_SAVE_GRAPHS_FILE` set. Recording pays one integer comparison per array for graph
trimming (`NUMLAZY_TRIM_GRAPH_SIZE`); a cache miss records what `explain_cache_miss` needs.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import time
import warnings
import weakref

import numba
import numpy as np

from . import __version__, cache, closures, config, fusion, interpreter, metrics
from .device import Device, parse
from .fusion import HostKernel
from .ir import Graph
from .registry import backend_for

VERSIONS = (__version__, numba.__version__, np.__version__)

_lock = threading.RLock()
_live: dict[int, weakref.ref] = {}          # array uid -> weakref, in creation order
_uids = itertools.count()
_seen_devices: set = set()                   # devices that compiled a program


class TraceError(RuntimeError):
    """`nl.compile` cannot replay this function (it read a value, ran a step, ...)."""


class _TraceState(threading.local):
    active = False                           # nl.compile is tracing on this thread


_trace = _TraceState()


new_uid = _uids.__next__            # a unique, increasing id for a new array


def track(array) -> None:
    """Register a pending array; it leaves the registry when collected or computed. Dead
    entries are dropped lazily by `live_arrays` (every step, and every trim check, calls it),
    which is cheaper than a weakref callback per array."""
    uid = array._uid
    _live[uid] = weakref.ref(array)
    if uid >= _trim_at:
        _maybe_trim(uid)


# --- graph trimming: checked every trim_graph_size // 2 recorded arrays ---------------------

_trim_at = 0
_trim_warned = False


def _maybe_trim(uid: int) -> None:
    """Execute pending graphs that outgrew `trim_graph_size` nodes (LTC's TrimIrGraph)."""
    global _trim_at, _trim_warned
    limit = config.get("trim_graph_size")
    _trim_at = uid + max(1, limit // 2)
    if _trace.active or not _lock.acquire(blocking=False):
        return                               # tracing, or another thread is mid-step
    try:
        by_device: dict = {}
        for a in live_arrays():
            by_device.setdefault(a.device, []).append(a)
        for device, arrays in by_device.items():
            size = len(Graph([a._node for a in arrays]))
            if size <= limit:
                continue
            metrics.increment("TrimIrGraph")
            if not _trim_warned:
                _trim_warned = True
                filename, line = user_site()
                warnings.warn_explicit(
                    f"numlazy: the pending graph on {device} grew to {size} nodes (more than "
                    f"NUMLAZY_TRIM_GRAPH_SIZE={limit}) and was executed early; call "
                    f"nl.mark_step() in the loop that builds it (warned once)",
                    RuntimeWarning, filename, line)
            sync(arrays)
    finally:
        _lock.release()


# --- per-step features, kept ready by a flag watcher ----------------------------------------

_debug = 0
_observe = False          # NUMLAZY_DEBUG or NUMLAZY_SAVE_GRAPHS_FILE: the observed step path


def _refresh() -> None:
    global _debug, _observe, _trim_at
    _debug = config.get("debug")
    _observe = bool(_debug or config.get("save_graphs_file"))
    _trim_at = next(_uids) + max(1, config.get("trim_graph_size") // 2)


config.watch(_refresh)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP_FILES = (contextlib.__file__,)         # nl.step()'s __exit__


def user_site() -> tuple[str, int]:
    """(file, line) of the innermost caller outside numlazy: where the user's code is."""
    f = sys._getframe(1)
    while f is not None and (f.f_code.co_filename.startswith(_PACKAGE_DIR)
                             or f.f_code.co_filename in _SKIP_FILES):
        f = f.f_back
    return (f.f_code.co_filename, f.f_lineno) if f is not None else ("<unknown>", 0)


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
    """Compute every live pending array on `device` ("" = the default device) in one step,
    then run the device's step closures. `wait`: also wait until the device has finished.
    Raises first the error of an earlier asynchronous closure on the device, if any.
    `wait=False` returns once the step is launched (on the CPU and numpy devices kernels run
    synchronously, so results exist then too); neither waits for asynchronous closures."""
    metrics.increment("MarkStep")
    d = parse(device or None)
    if d not in _usable or wait.__class__ is not bool:
        _check_step_args(d, wait)
    ctx = closures.existing_context(d)
    if ctx is None or not ctx.busy:
        _sync_live(d, wait)
        return
    ctx.worker.raise_error()
    sync(live_arrays(d) + ctx.pending_arrays(), wait=wait)
    ctx.run()


_usable: set = set()                         # devices mark_step has checked


def _check_step_args(d: Device, wait) -> None:
    if not isinstance(wait, bool):
        raise TypeError(f"mark_step: wait must be True or False, got {wait!r}")
    backend_for(d)                            # unknown type or missing device: raises
    _usable.add(d)


@contextlib.contextmanager
def step(device=""):
    """`with nl.step():` — a `mark_step` on exit. On an exception the work recorded inside
    the block is dropped from the step (its arrays are only computed if read later) and the
    exception propagates."""
    _check_step_args(parse(device or None), False)
    first_uid = next(_uids)
    try:
        yield
    except BaseException:
        for uid in [u for u in list(_live) if u > first_uid]:   # a copy: threads record
            _live.pop(uid, None)
        raise
    mark_step(device)


def _sync_live(device: Device, wait: bool) -> None:
    """`sync(live_arrays(device))` in one pass over the registry (every plain step)."""
    if _trace.active:
        return sync([], wait)                 # raises the TraceError
    nodes = []
    for uid, ref in list(_live.items()):
        a = ref()
        if a is None or a._node.buffer is not None:
            _live.pop(uid, None)
            continue
        node = a._node
        if node.device is device or node.device == device:
            nodes.append(node)
    if nodes:
        with _lock:
            _run(device, list(dict.fromkeys(nodes)))
            if wait:
                backend_for(device).synchronize(device.index or 0)


def sync(arrays, wait: bool = False) -> None:
    """Compute `arrays` (and nothing else) in one program per device."""
    if _trace.active:
        raise TraceError("the function ran a step (mark_step, sync or an op that needs a step "
                         "boundary) while being traced")
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
    if _trace.active:
        raise TraceError(f"the function read the value of an array ({array.dtype}"
                         f"{list(array.shape)}: float(), bool(), item(), np.asarray(), "
                         f"printing...) while being traced; data-dependent control flow "
                         f"cannot be replayed")
    if array._node.realized:
        return
    inside = {id(n) for n in Graph([array._node]).nodes}
    sync([array] + [a for a in live_arrays(array.device) if id(a._node) in inside])


def _run(device: Device, outputs: list) -> None:
    backend = backend_for(device)
    graph = Graph(outputs)
    program, hit = _program(graph, device, backend)
    metrics.record("TensorsGraphSize", len(graph))
    if _observe:
        return _run_observed(graph, program, hit, device, backend)
    with metrics.timed("ExecuteTime"):
        buffers = program.run(graph, backend, device.index or 0)
    _attach(graph, buffers)


def _run_observed(graph: Graph, program, hit: bool, device: Device, backend) -> None:
    """A step with NUMLAZY_DEBUG or NUMLAZY_SAVE_GRAPHS_FILE on: the same work, reported."""
    from . import debug
    debug.save_graph(graph, device)
    timings = [] if _debug >= 2 and isinstance(program, Program) else None
    start = time.perf_counter()
    if timings is None:
        buffers = program.run(graph, backend, device.index or 0)
    else:
        buffers = program.run(graph, backend, device.index or 0, timings)
    elapsed = time.perf_counter() - start
    metrics.record("ExecuteTime", elapsed)
    debug.report_step(graph, program, hit, device, elapsed, timings)
    _attach(graph, buffers)


class Miss:
    """What explain_cache_miss needs about the last compile: its key, the keys cached just
    before it, and the user's call site."""

    __slots__ = ("key", "cached", "site", "nodes")

    def __init__(self, key, cached, site, nodes):
        self.key, self.cached, self.site, self.nodes = key, cached, site, nodes


last_miss = None
compile_sites: dict = {}           # compile key -> the user's (file, line) that compiled it
_streak = [None, 0]                # [call site, consecutive compiles from it]
_warned_sites: set = set()


def _program(graph: Graph, device: Device, backend):
    """(program, cache hit?) for `graph` on `device`."""
    key = (graph.key, device.type, config.code_flags(), VERSIONS)
    program = cache.programs.get(key)
    if program is not None:
        metrics.increment("CachedCompile")
        if _streak[1]:
            _streak[1] = 0
        return program, True
    cached = cache.programs.keys()
    metrics.increment("UncachedCompile")
    with metrics.timed("CompileTime"):
        program = backend.compile_graph(graph) or _compile(graph, backend)
    cache.programs.put(key, program)
    _note_miss(key, cached, graph, program, device)
    return program, False


def _note_miss(key, cached, graph: Graph, program, device: Device) -> None:
    global last_miss
    _seen_devices.add(device)
    site = user_site()
    last_miss = Miss(key, cached, site, len(graph))
    compile_sites[key] = site                # explain_cache_miss names the nearest graph by it
    if len(compile_sites) > 2 * config.get("compile_cache_size"):
        live = set(cache.programs.keys())
        for k in [k for k in compile_sites if k not in live]:
            del compile_sites[k]
    _streak[:] = [site, _streak[1] + 1 if _streak[0] == site else 1]
    limit = config.get("recompile_warning")
    if limit and _streak[1] >= limit and site not in _warned_sites:
        _warned_sites.add(site)
        warnings.warn_explicit(
            f"numlazy: {_streak[1]} consecutive compiles from this call site; each step's "
            f"graph differs from the cached ones. Call nl.debug.explain_cache_miss() to see "
            f"the first difference (NUMLAZY_RECOMPILE_WARNING sets the threshold)",
            RecompileWarning, site[0], site[1])
    if _debug >= 3:
        from . import debug
        debug.report_compile(graph, program, device)


class RecompileWarning(RuntimeWarning):
    """One call site keeps compiling new programs (a recompilation storm)."""


def _attach(graph: Graph, buffers: dict) -> None:
    for p, buffer in buffers.items():
        graph.nodes[p].realize(buffer)


def can_lower(backend):
    """The backend's `can_lower`, minus the ops NUMLAZY_FORCE_FALLBACK sends to the
    interpreter (that flag is part of every compile key)."""
    forced = config.get("force_fallback")
    if not forced:
        return backend.can_lower
    return lambda op: op not in forced and backend.can_lower(op)


def _compile(graph: Graph, backend) -> "Program":
    schedule = fusion.partition(graph, can_lower(backend), backend.fuses_rows)
    forced = config.get("force_fallback")
    for k in schedule.kernels:          # forced opaque ops (matmul) also go to the interpreter
        if isinstance(k, HostKernel) and graph.nodes[k.node].op in forced:
            k.fallback = True
    compiled = [None if isinstance(k, HostKernel) else backend.compile_kernel(k, graph)
                for k in schedule.kernels]
    return Program(schedule, compiled)


class Program:
    """A compiled step: its schedule and one compiled callable per loop kernel. It refers to
    nodes by position, so it runs any graph with the same key."""

    def __init__(self, schedule: fusion.Schedule, compiled: list):
        self.schedule = schedule
        self.compiled = compiled
        # The cache-hit path's plan: per loop kernel, what it reads and writes, by position;
        # None when a host kernel or timings need the general loop.
        self._plan = None if any(fn is None for fn in compiled) else [
            (fn, k.space, tuple(k.outputs), k.reads, k.rts)
            for k, fn in zip(schedule.kernels, compiled)]

    @property
    def kernel_count(self) -> int:
        return len(self.schedule)

    def run(self, graph: Graph, backend, index: int, timings: list = None) -> dict:
        """Run every kernel; `timings` (NUMLAZY_DEBUG=2) collects (kernel, seconds)."""
        if self._plan is not None and timings is None:
            return self._run_plan(graph.nodes, backend.allocate, index)
        nodes, buffers = graph.nodes, {}

        def buffer(p):
            return buffers[p] if p in buffers else nodes[p].buffer

        metrics.increment("KernelLaunch", len(self.compiled))
        for kernel, fn in zip(self.schedule.kernels, self.compiled):
            if timings is not None:
                start = time.perf_counter()
            for p in kernel.outputs:
                buffers[p] = backend.allocate(nodes[p].shape, nodes[p].dtype, index)
            if fn is not None:
                fn(nodes[kernel.space].shape,
                   [_flat0(buffers[p]) for p in kernel.outputs],
                   [_flat0(buffer(p)) for p in kernel.reads],
                   [v for p in kernel.rts for v in nodes[p].rt])
            else:
                _run_host(kernel, nodes, buffer, buffers, backend, index)
            if timings is not None:
                backend.synchronize(index)
                timings.append((kernel, time.perf_counter() - start))
        return buffers

    def _run_plan(self, nodes, allocate, index: int) -> dict:
        """Loop kernels only: the same work as the general loop, read from the plan."""
        buffers = {}
        metrics.increment("KernelLaunch", len(self._plan))
        for fn, space, outputs, reads, rts in self._plan:
            outs = []
            for p in outputs:
                node = nodes[p]
                buf = buffers[p] = allocate(node.shape, node.dtype, index)
                outs.append(buf if buf.ndim else buf.reshape(1))
            ins = []
            for p in reads:
                buf = buffers[p] if p in buffers else nodes[p].buffer
                ins.append(buf if buf.ndim else buf.reshape(1))
            args = []
            for p in rts:
                args += nodes[p].rt
            fn(nodes[space].shape, outs, ins, args)
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
            x = to_host(backend, x) if kernel.fallback else x
        for v in views:
            x = interpreter.apply_view(nodes[v], x)
        inputs.append(x)
    if kernel.fallback:
        metrics.increment(f"fallback::{node.op}")
        result = interpreter.evaluate(node, inputs)
        buffers[kernel.node] = to_device(backend, np.array(result, order="C"), index)
    else:
        backend.run_opaque(node.op, inputs, buffers[kernel.node], node)


# --- transfers (timed) ---------------------------------------------------------------------

def to_device(backend, host: np.ndarray, index: int):
    with metrics.timed("TransferToDeviceTime"):
        return backend.to_device(host, index)


def to_host(backend, buffer) -> np.ndarray:
    with metrics.timed("TransferFromDeviceTime"):
        return backend.to_host(buffer)


# --- the rest of the step API (API.md section 3) --------------------------------------------

def wait_device_ops(devices=None) -> None:
    """Wait until the given devices (a device or a list of them; all used ones if None or an
    empty list, as in LTC) have finished their work and their asynchronous step closures;
    then raise such a closure's error, if one failed."""
    if devices is not None and not isinstance(devices, (str, Device, list, tuple, set)):
        raise TypeError(f"wait_device_ops: devices must be a device, a list of devices or "
                        f"None, got {type(devices).__name__}")
    if isinstance(devices, (str, Device)):
        devices = [devices]
    if not devices:
        devices = None
        targets = _seen_devices | {c.device for c in closures.all_contexts()}
    else:
        targets = [parse(d or None) for d in devices]
    for d in sorted(targets, key=str):
        try:
            backend = backend_for(d)
        except (ValueError, RuntimeError):
            if devices is not None:
                raise
            continue                         # a backend unregistered since it was used
        ctx = closures.existing_context(d)
        if ctx is not None:
            ctx.worker.wait()
        backend.synchronize(d.index or 0)


def _arrays_on(name: str, arrays, devices) -> list:
    from ._array import Array
    if isinstance(arrays, Array) or not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{name}: expected a list or tuple of numlazy arrays, got "
                        f"{type(arrays).__name__}")
    arrays = list(arrays)
    for a in arrays:
        if not isinstance(a, Array):
            raise TypeError(f"{name}: expected numlazy arrays, got {type(a).__name__}")
    if devices is not None:
        allowed = {parse(d) for d in ([devices] if isinstance(devices, (str, Device))
                                      else devices)}
        for d in allowed:
            backend_for(d)                    # an unknown device type is named as such
        stray = sorted({str(a.device) for a in arrays if a.device not in allowed})
        if stray:
            raise ValueError(f"{name}: arrays on {', '.join(stray)} are not on the listed "
                             f"devices ({', '.join(sorted(map(str, allowed)))})")
    return arrays


def sync_multi(arrays, devices=None, wait: bool = False) -> None:
    """Compute just `arrays` (one program per device), not every live array. `devices`, if
    given, must list every device the arrays are on."""
    sync(_arrays_on("sync_multi", arrays, devices), wait=wait)


def get_tensor_id(x) -> int:
    """A unique id of array `x`, increasing in creation order."""
    from ._array import Array
    if not isinstance(x, Array):
        raise TypeError(f"get_tensor_id: expected a numlazy Array, got {type(x).__name__}")
    return x._uid


def to_cpu(tree, devices=None):
    """Every numlazy array in a nested list/tuple/dict as a NumPy array (a copy), computed
    in one step; other leaves are returned as they are."""
    from ._array import Array
    from .tree import leaves, map_leaves
    arrays = _arrays_on("to_cpu", [x for x in leaves(tree) if isinstance(x, Array)], devices)
    sync(arrays)
    return map_leaves(lambda x: np.array(to_host(backend_for(x.device), x._node.buffer))
                      if isinstance(x, Array) else x, tree)
