"""Seeing what the engine does: IR dumps, why a step compiled, and NUMLAZY_DEBUG output.

    >>> import numpy as np, numlazy as nl
    >>> y = nl.sin(nl.asarray(np.ones(3))) * 2.0
    >>> print(nl.debug.dump_ir(y))
    graph: 4 nodes, outputs [%3]
      %0 = data float64[3]
      %1 = sin(%0) float64[3]
      %2 = param float64[] value=2.0
      %3 = multiply(%1, %2) float64[3]  -> output

Node numbers (`%i`) are positions in the step's canonical order, the same in every dump,
in `explain_cache_miss()` and in `NUMLAZY_DEBUG` output. `NUMLAZY_DEBUG` levels follow the
pipeline: 1 one line per step (nodes, kernels, cache hit or miss, the user's file:line) on
stderr, 2 adds each kernel's time, 3 prints the fused IR of each newly compiled program,
4 also its generated source. `NUMLAZY_SAVE_GRAPHS_FILE` appends every executed graph.
"""
from __future__ import annotations

import collections
import difflib
import sys

import numpy as np

from . import config, executor, fusion, ops
from .fusion import HostKernel, RowKernel
from .ir import Graph
from .registry import backend_for

FORMATS = ("text", "dot", "backend")


def _graph_of(arrays) -> Graph:
    from ._array import Array
    arrays = [arrays] if isinstance(arrays, Array) else list(arrays)
    for a in arrays:
        if not isinstance(a, Array):
            raise TypeError(f"expected numlazy arrays, got {type(a).__name__}")
    if not arrays:
        raise ValueError("expected at least one array")
    devices = sorted({str(a.device) for a in arrays})
    if len(devices) > 1:
        raise ValueError(f"arrays are on different devices ({', '.join(devices)}); dump one "
                         f"device's arrays at a time")
    return Graph(list(dict.fromkeys(a._node for a in arrays)))


def _dtype_name(d) -> str:
    return np.dtype(d).name


def _attrs_text(node) -> str:
    if not node.attrs:
        return ""
    kind = ops.TABLE[node.op].kind
    if kind == ops.REDUCE:
        return f" axes={node.attrs[0]!r}"
    if kind != ops.ELEMENTWISE:
        return f" attrs={node.attrs!r}"
    loop = node.attrs[0]
    srcs = [s.dtype for s in node.srcs]
    return "" if list(loop) == srcs else f" loop=({', '.join(map(_dtype_name, loop))})"


def _node_line(graph: Graph, p: int) -> str:
    node, outputs = graph.nodes[p], set(graph.outputs)
    shape = f"{_dtype_name(node.dtype)}[{', '.join(map(str, node.shape))}]"
    if node.op == "param":
        head = f"param {shape} value={node.rt[0].item()!r}"
    elif node.op == "data":
        head = f"data {shape}"
    else:
        srcs = ", ".join(f"%{graph.pos[id(s)]}" for s in node.srcs)
        head = f"{node.op}({srcs}) {shape}{_attrs_text(node)}"
    return f"  %{p} = {head}" + ("  -> output" if p in outputs else "")


def graph_text(graph: Graph) -> str:
    outs = ", ".join(f"%{p}" for p in graph.outputs)
    return "\n".join([f"graph: {len(graph)} nodes, outputs [{outs}]"] +
                     [_node_line(graph, p) for p in range(len(graph))])


def graph_dot(graph: Graph, name: str = "numlazy") -> str:
    lines = [f"digraph {name} {{", "  node [shape=box, fontname=monospace];"]
    outputs = set(graph.outputs)
    for p, node in enumerate(graph.nodes):
        label = _node_line(graph, p).strip().replace("  -> output", "").replace('"', "'")
        style = ", peripheries=2" if p in outputs else \
            ", style=dashed" if node.op in ("data", "param") else ""
        lines.append(f'  n{p} [label="{label}"{style}];')
        lines += [f"  n{graph.pos[id(s)]} -> n{p};" for s in node.srcs]
    return "\n".join(lines + ["}"])


def _kernel_text(graph: Graph, i: int, kernel) -> str:
    if isinstance(kernel, HostKernel):
        op = graph.nodes[kernel.node].op
        how = "fallback to the interpreter" if kernel.fallback else "opaque op on the backend"
        return f"kernel {i}: {op} -> %{kernel.node} ({how})"
    shape = tuple(graph.nodes[kernel.space].shape)
    outs = ", ".join(f"%{p}" for p in kernel.outputs)
    if isinstance(kernel, RowKernel):
        return f"kernel {i}: row loop over {shape}, {len(kernel.phases)} phases -> {outs}"
    kind = "reduction" if kernel.reduce is not None else "loop"
    return f"kernel {i}: {kind} over {shape} -> {outs}"


def _schedule(graph: Graph, backend):
    return fusion.partition(graph, executor.can_lower(backend), backend.fuses_rows)


def _backend_source(graph: Graph, device) -> str:
    backend = backend_for(device)
    if backend.compile_graph(graph) is not None:
        return f"# device {device}: graphs run op by op on the interpreter; no generated source"
    out = []
    for i, kernel in enumerate(_schedule(graph, backend).kernels):
        out.append(f"# {_kernel_text(graph, i, kernel)}")
        if not isinstance(kernel, HostKernel):
            out.append(backend.kernel_source(kernel, graph) or
                       f"# (the {backend.name} backend does not show its source)")
    return "\n".join(out)


def dump_ir(arrays, fmt: str = "text") -> str:
    """The pending graph of `arrays` (one array or a list) as `"text"`, `"dot"` (Graphviz)
    or `"backend"` (the generated Numba source of each fused kernel)."""
    if fmt not in FORMATS:
        raise ValueError(f"dump_ir: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    graph = _graph_of(arrays)
    if fmt == "text":
        return graph_text(graph)
    if fmt == "dot":
        return graph_dot(graph)
    return _backend_source(graph, graph.nodes[0].device)


def render_ir_graph(arrays) -> str:
    """The pending graph of `arrays` as Graphviz DOT (`dot -Tsvg` draws it)."""
    return graph_dot(_graph_of(arrays))


# --- explain_cache_miss ---------------------------------------------------------------------

def _ops(key) -> list:
    return [entry[0][0] for entry in key[0][0]]


def _rough_distance(now, then) -> tuple:
    """Cheap: other versions or device type first, then how many ops (by name, ignoring
    order, dtype and rank) one graph has and the other lacks, plus differing flags."""
    ops = collections.Counter(_ops(now))
    ops.subtract(_ops(then))
    flags = sum(x != y for x, y in zip(now[2], then[2]))
    return (now[3] != then[3], now[1] != then[1], sum(map(abs, ops.values())) + flags)


def _similarity(now, then) -> float:
    """How much of the two node sequences (full node keys, wiring included) aligns."""
    return difflib.SequenceMatcher(None, now[0][0], then[0][0], autojunk=False).ratio()


def nearest(key, cached: list):
    """The cached key most like `key`: the best few by `_rough_distance`, then the one whose
    node sequence aligns best (the most recently cached on ties)."""
    ranked = sorted(reversed(cached), key=lambda k: _rough_distance(key, k))[:8]
    return max(ranked, key=lambda k: (_rough_distance(key, k)[:2] == (False, False),
                                      -_rough_distance(key, k)[2], _similarity(key, k)))


def _describe_node(key) -> str:
    op, _, dtype, rank = key
    return f"{op} {_dtype_name(dtype)} rank {rank}"


def _node_difference(p: int, q: int, now, then) -> str:
    (key_now, srcs_now), (key_then, srcs_then) = now, then
    op_now, attrs_now, dtype_now, rank_now = key_now
    op_then, attrs_then, dtype_then, rank_then = key_then
    where = f"node %{p}" + (f" (%{q} in the cached graph)" if p != q else "")
    if op_now != op_then:
        if {op_now, op_then} == {"param", "data"}:
            scalar = "now" if op_now == "param" else "in the cached graph"
            return (f"{where}: a Python scalar (a runtime parameter) {scalar}, an array "
                    f"constant in the other graph; pass the same kind each step")
        return f"{where}: op {op_now} now, {op_then} in the cached graph"
    if dtype_now != dtype_then:
        return (f"{where} ({op_now}): dtype {_dtype_name(dtype_now)} now, "
                f"{_dtype_name(dtype_then)} in the cached graph")
    if rank_now != rank_then:
        return (f"{where} ({op_now}): shape of rank {rank_now} now, rank {rank_then} in the "
                f"cached graph (sizes never cause a compile; ranks do)")
    if attrs_now != attrs_then:
        return (f"{where} ({op_now}): attribute {attrs_now!r} now, {attrs_then!r} in the "
                f"cached graph (axes, broadcast pattern, loop dtypes, ...)")
    return (f"{where} ({op_now}): reads nodes {list(srcs_now)} now, {list(srcs_then)} in the "
            f"cached graph (the wiring or aliasing differs)")


def _only_in_one(p: int, entry, which: str) -> str:
    text = f"node %{p} ({_describe_node(entry[0])}) is only there {which}"
    if entry[0][0] == "data":
        text += (" (an input array; one array passed in two places is one input, so "
                 "aliasing is part of the graph)")
    return text


def first_difference(now, then) -> str:
    """The first part in which compile key `now` differs from `then`: versions, device type,
    a flag, then the first node that differs after aligning the two node sequences (so an
    inserted node is reported as such, not as a shift of every later node)."""
    if now[3] != then[3]:
        return f"versions (numlazy, numba, numpy) {now[3]} now, {then[3]} in the cached graph"
    if now[1] != then[1]:
        return f"device type {now[1]} now, {then[1]} in the cached graph"
    for (name, value), (_, old) in zip(now[2], then[2]):
        if value != old:
            return f"flag {name}: {_flag_text(value)} now, {_flag_text(old)} in the cached graph"
    (entries_now, outs_now), (entries_then, outs_then) = now[0], then[0]
    ops_now = [e[0][0] for e in entries_now]
    ops_then = [e[0][0] for e in entries_then]
    matcher = difflib.SequenceMatcher(None, ops_now, ops_then, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("equal", "replace") and i2 - i1 == j2 - j1:
            for p, q in zip(range(i1, i2), range(j1, j2)):
                if entries_now[p] != entries_then[q]:
                    return _node_difference(p, q, entries_now[p], entries_then[q])
        elif tag == "replace" and {ops_now[i1], ops_then[j1]} == {"param", "data"}:
            return _node_difference(i1, j1, entries_now[i1], entries_then[j1])
        elif i2 > i1 and (tag == "insert" or j2 == j1 or ops_now[i1] not in ops_then[j1:j2]):
            return _only_in_one(i1, entries_now[i1], "now")
        elif j2 > j1:
            return _only_in_one(j1, entries_then[j1], "in the cached graph")
    if len(entries_now) != len(entries_then):
        return f"the graph has {len(entries_now)} nodes now, {len(entries_then)} cached"
    return f"outputs {list(outs_now)} now, {list(outs_then)} in the cached graph"


def _flag_text(value) -> str:
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(value)) + "}"
    return repr(value)


def explain_cache_miss() -> str:
    """Why the last compile happened: the nearest graph that was cached at that moment and the
    first difference (op, attribute, shape rank, dtype, scalar vs array, flag, device)."""
    miss = executor.last_miss
    if miss is None:
        return "no step has compiled a program yet"
    key = miss.key
    head = (f"the last compile: a graph of {miss.nodes} nodes on {key[1]}, stepped at "
            f"{miss.site[0]}:{miss.site[1]}")
    if not miss.cached:
        return head + "\nnothing was cached before it: a first compile (or after a reset)"
    near = nearest(key, miss.cached)
    site = executor.compile_sites.get(near)
    where = f", compiled at {site[0]}:{site[1]}" if site else ""
    ops = _ops(near)
    shown = ", ".join(ops[:8]) + (", ..." if len(ops) > 8 else "")
    return (f"{head}\nnearest cached graph: {len(ops)} nodes on {near[1]}{where} ({shown}); "
            f"{len(miss.cached)} graph(s) were cached\nfirst difference: "
            f"{first_difference(key, near)}")


# --- NUMLAZY_DEBUG and NUMLAZY_SAVE_GRAPHS_FILE (called by the executor) -------------------

_steps = [0]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report_step(graph: Graph, program, hit: bool, device, seconds: float, timings) -> None:
    level = config.get("debug")
    if not level:
        return
    _steps[0] += 1
    file, line = executor.user_site()
    kernels = f"{program.kernel_count} kernel(s)" if hasattr(program, "kernel_count") else \
        "interpreted"
    _err(f"numlazy step {_steps[0]} [{device}] {len(graph)} nodes, {kernels}, cache "
         f"{'hit' if hit else 'miss'}, {seconds * 1e3:.3f} ms  ({file}:{line})")
    for i, (kernel, t) in enumerate(timings or ()):
        _err(f"  {_kernel_text(graph, i, kernel)}: {t * 1e3:.3f} ms")


def report_compile(graph: Graph, program, device) -> None:
    level = config.get("debug")
    _err(f"numlazy compile [{device}]\n{graph_text(graph)}")
    schedule = getattr(program, "schedule", None)
    for i, kernel in enumerate(schedule.kernels if schedule else ()):
        _err(f"  {_kernel_text(graph, i, kernel)}")
        if level >= 4 and not isinstance(kernel, HostKernel):
            _err(backend_for(device).kernel_source(kernel, graph) or "  (no source)")


def save_graph(graph: Graph, device) -> None:
    path = config.get("save_graphs_file")
    if path:
        file, line = executor.user_site()
        with open(path, "a") as f:
            f.write(f"# step on {device} at {file}:{line}\n{graph_text(graph)}\n\n")
