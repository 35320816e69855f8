"""`nl.save(tree, file)` / `nl.load(file)`: nested arrays in a safe format.

The file is a NumPy `.npz` archive: one entry per array leaf (`a0`, `a1`, ...) and `__tree__`,
the JSON description of the nesting (uint8 bytes). Nothing is pickled, and `load` opens the
archive with `allow_pickle=False`, so a file can never run code; a file it cannot parse
raises `ValueError` naming the file and the problem.

    >>> import numpy as np, numlazy as nl
    >>> nl.save({"w": nl.ones(3), "step": 7, "hist": [nl.zeros(2)]}, "/tmp/ckpt.npz")
    >>> nl.load("/tmp/ckpt.npz")["step"]
    7
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from . import executor, ir
from ._array import Array
from .device import parse
from .registry import backend_for

FORMAT = "numlazy-save"
VERSION = 1
_SCALARS = (bool, int, float, str, type(None))


def save(tree, file) -> None:
    """Compute every array in `tree` (nested lists, tuples, dicts with str keys; leaves are
    numlazy or NumPy arrays, bool, int, float, str or None) in one step and write it to
    `file` (a path, written atomically, or a binary file object)."""
    host = executor.to_cpu(tree)
    arrays: dict = {}

    def describe(node, orig):
        if isinstance(node, dict):
            bad = [k for k in node if not isinstance(k, str)]
            if bad:
                raise TypeError(f"save: dict keys must be strings, got {bad[0]!r}")
            return {"dict": [[k, describe(node[k], orig[k])] for k in node]}
        if isinstance(node, (list, tuple)):
            return {"list" if isinstance(node, list) else "tuple":
                    [describe(v, o) for v, o in zip(node, orig)]}
        if isinstance(node, np.ndarray):
            name = f"a{len(arrays)}"
            arrays[name] = node
            device = str(orig.device) if isinstance(orig, Array) else None
            return {"array": name, "device": device}
        if isinstance(node, _SCALARS):
            return {"value": node}
        raise TypeError(f"save: cannot save a leaf of type {type(node).__name__}; leaves are "
                        f"arrays, bool, int, float, str or None")

    tree_json = json.dumps({"format": FORMAT, "version": VERSION, "tree": describe(host, tree)})
    arrays["__tree__"] = np.frombuffer(tree_json.encode(), np.uint8)
    if hasattr(file, "write"):
        np.savez(file, **arrays)
        return
    path = os.fspath(file)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(file, device=None):
    """The tree saved in `file`, arrays as numlazy arrays on `device` (default: the device
    each was saved from, or the default device for NumPy leaves)."""
    name = getattr(file, "name", file)
    try:
        with np.load(file, allow_pickle=False) as archive:
            entries = {k: archive[k] for k in archive.files}
        meta = json.loads(bytes(entries.pop("__tree__")).decode())
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError(f"format {meta.get('format')!r} version {meta.get('version')!r}")
        return _build(meta["tree"], entries, device)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError,
            UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"load: {name!s} is not a numlazy save file ({type(exc).__name__}: "
                         f"{exc})") from None


def _build(node, entries: dict, device):
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError(f"bad tree entry {node!r}")
    if "dict" in node:
        return {str(k): _build(v, entries, device) for k, v in node["dict"]}
    if "list" in node:
        return [_build(v, entries, device) for v in node["list"]]
    if "tuple" in node:
        return tuple(_build(v, entries, device) for v in node["tuple"])
    if "value" in node:
        if not isinstance(node["value"], _SCALARS):
            raise ValueError(f"bad value {node['value']!r}")
        return node["value"]
    host = entries[node["array"]]
    if host.dtype.kind not in "biuf":
        raise ValueError(f"array {node['array']} has unsupported dtype {host.dtype}")
    target = parse(device if device is not None else node.get("device"))
    buffer = executor.to_device(backend_for(target), np.ascontiguousarray(host),
                                target.index or 0)
    return Array(ir.data(buffer, host.shape, host.dtype, target))
