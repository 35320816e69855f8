"""`nl.ir_cache`: the in-memory compile cache's keys, for inspection, and its reset.

    >>> import numlazy as nl
    >>> nl.ir_cache.dump("/tmp/ir_cache.txt")      # or .dot for Graphviz
    >>> nl.ir_cache.reset()                       # the next step compiles (or loads from disk)
"""
from __future__ import annotations

import numpy as np

from . import cache, executor


def _key_lines(i: int, key) -> list:
    (entries, outputs), device_type, flags, versions = key
    lines = [f"program {i}: {len(entries)} nodes on {device_type}, flags "
             f"{dict(flags) or '{}'}, versions {versions}"]
    for p, ((op, attrs, dtype, rank), srcs) in enumerate(entries):
        args = f"({', '.join(f'%{s}' for s in srcs)})" if srcs else ""
        extra = f" attrs={attrs!r}" if attrs else ""
        out = "  -> output" if p in outputs else ""
        lines.append(f"  %{p} = {op}{args} {np.dtype(dtype).name} rank {rank}{extra}{out}")
    return lines


def _key_dot(i: int, key) -> list:
    (entries, outputs), device_type, _, _ = key
    lines = [f"  subgraph cluster_{i} {{", f'    label="program {i} ({device_type})";']
    for p, ((op, _, dtype, rank), srcs) in enumerate(entries):
        shape = ", peripheries=2" if p in outputs else ""
        lines.append(f'    p{i}_{p} [label="%{p} {op} {np.dtype(dtype).name} r{rank}"{shape}];')
        lines += [f"    p{i}_{s} -> p{i}_{p};" for s in srcs]
    return lines + ["  }"]


def dump(path: str, fmt: str = None) -> None:
    """Write every cached program's key (least recently used first) to `path`, as text, or
    as Graphviz DOT when `fmt="dot"` or the path ends in `.dot`."""
    fmt = fmt or ("dot" if str(path).endswith(".dot") else "text")
    if fmt not in ("text", "dot"):
        raise ValueError(f"ir_cache.dump: unknown format {fmt!r}; use 'text' or 'dot'")
    keys = cache.programs.keys()
    if fmt == "dot":
        lines = ["digraph ir_cache {", "  node [shape=box, fontname=monospace];"]
        for i, key in enumerate(keys):
            lines += _key_dot(i, key)
        lines.append("}")
    else:
        lines = [f"{len(keys)} cached program(s)"]
        for i, key in enumerate(keys):
            lines += _key_lines(i, key)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def reset() -> None:
    """Forget every compiled program (kernel modules stay on disk) and the last miss."""
    cache.clear_memory()
    executor.last_miss = None
