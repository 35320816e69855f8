"""`nl.save(tree, file)` / `nl.load(file)`: nested arrays in a safe format.

The file is a NumPy `.npz` archive: one entry per array leaf (`a0`, `a1`, ...) and `__tree__`,
the JSON description of the nesting (uint8 bytes). Nothing is pickled, and `load` opens the
archive with `allow_pickle=False`, so a file can never run code; a file it cannot parse
(truncated, garbage, a pickle, a plain `.npz` or `.npy`, an unsupported dtype, a malformed
tree) raises `ValueError` naming the file and the problem.

    >>> import numpy as np, numlazy as nl
    >>> nl.save({"w": nl.ones(3), "step": 7, "hist": [nl.zeros(2)]}, "/tmp/ckpt.npz")
    >>> nl.load("/tmp/ckpt.npz")["step"]
    7

Leaves are numlazy arrays, NumPy arrays of a numlazy dtype (both load as numlazy arrays),
bool, int, float, str and None; containers are lists, tuples (named tuples load as plain
tuples) and dicts with string keys.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from . import dtypes, executor, ir
from ._array import Array
from .device import Device, parse
from .registry import backend_for
from .tree import MAX_DEPTH

FORMAT = "numlazy-save"
VERSION = 1
_SCALARS = (bool, int, float, str, type(None))


def save(tree, file) -> None:
    """Compute every array in `tree` (nested lists, tuples, dicts with str keys; leaves are
    numlazy or NumPy arrays, bool, int, float, complex, str or None) in one step and write it to
    `file` (a path, written atomically, or a binary file object)."""
    if not (hasattr(file, "write") or isinstance(file, (str, os.PathLike))):
        raise TypeError(f"save: file must be a path or a binary file object, got "
                        f"{type(file).__name__}")
    host = executor.to_cpu(tree)
    arrays: dict = {}

    def describe(node, orig, depth):
        if depth > MAX_DEPTH:
            raise ValueError(f"save: the tree is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            bad = [k for k in node if not isinstance(k, str)]
            if bad:
                raise TypeError(f"save: dict keys must be strings, got {bad[0]!r}")
            return {"dict": [[k, describe(node[k], orig[k], depth + 1)] for k in node]}
        if isinstance(node, (list, tuple)):
            return {"list" if isinstance(node, list) else "tuple":
                    [describe(v, o, depth + 1) for v, o in zip(node, orig)]}
        if isinstance(node, np.ndarray):
            try:
                dtypes.check_supported(node.dtype.newbyteorder("="))
            except TypeError as exc:
                raise TypeError(f"save: cannot save an array of dtype {node.dtype}: {exc}") \
                    from None
            name = f"a{len(arrays)}"
            arrays[name] = node
            device = str(orig.device) if isinstance(orig, Array) else None
            return {"array": name, "device": device}
        if isinstance(node, _SCALARS):
            return {"value": node}
        if isinstance(node, complex):         # JSON has no complex numbers: its components
            return {"complex": [node.real, node.imag]}
        raise TypeError(f"save: cannot save a leaf of type {type(node).__name__}; leaves are "
                        f"arrays, bool, int, float, complex, str or None")

    tree_json = json.dumps({"format": FORMAT, "version": VERSION,
                            "tree": describe(host, tree, 0)})
    arrays["__tree__"] = np.frombuffer(tree_json.encode(), np.uint8)
    if hasattr(file, "write"):
        np.savez(file, allow_pickle=False, **arrays)
        return
    path = os.fspath(file)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class _Invalid(ValueError):
    """The file's content is not a numlazy save file."""


class _Unusable(ValueError):
    """A valid file whose saved device does not exist here."""


# What reading a foreign or damaged file can raise, besides _Invalid.
_PARSE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, EOFError, IndexError,
                 UnicodeDecodeError, zipfile.BadZipFile, RecursionError, _Invalid)


def load(file, device=None):
    """The tree saved in `file`, arrays as numlazy arrays on `device` (default: the device
    each was saved from, or the default device for NumPy leaves). Never unpickles; a file
    that is not a numlazy save file raises `ValueError` naming it and the problem."""
    if not (hasattr(file, "read") or isinstance(file, (str, os.PathLike))):
        raise TypeError(f"load: file must be a path or a binary file object, got "
                        f"{type(file).__name__}")
    target = _device(device) if device is not None else None   # the caller's error
    name = getattr(file, "name", file)
    try:
        entries, tree = _read(file)
        return _build(tree, entries, target, 0)
    except OSError:
        raise                        # a missing file, a directory, ...: the path's problem
    except _Unusable as exc:
        raise ValueError(str(exc)) from None
    except _PARSE_ERRORS as exc:
        detail = str(exc) if isinstance(exc, _Invalid) else f"{type(exc).__name__}: {exc}"
        if "pickle" in detail:       # NumPy's advice to allow pickles does not apply here
            detail = "NumPy reads it as pickled or object data, which load never unpickles"
        raise ValueError(f"load: {name!s} is not a numlazy save file ({detail})") from None


def _read(file) -> tuple:
    """(the archive's arrays by name, the tree description); errors of a damaged or foreign
    file are re-raised as _Invalid."""
    try:
        archive = np.load(file, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _Invalid("a single .npy array, not an .npz archive")
        with archive:
            if "__tree__" not in archive.files:
                raise _Invalid("an .npz archive without a numlazy tree (__tree__)")
            entries = {k: archive[k] for k in archive.files}
        raw = entries.pop("__tree__")
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _Invalid("__tree__ is not JSON bytes")
        meta = json.loads(raw.tobytes().decode())
    except (OSError, _Invalid):
        raise
    except (RuntimeError, NotImplementedError, zlib.error) as exc:   # zipfile's other errors
        raise _Invalid(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Invalid("the tree description is not in numlazy's format")
    if meta.get("version") != VERSION:
        raise _Invalid(f"format version {meta.get('version')!r}; this numlazy reads version "
                       f"{VERSION}")
    return entries, meta.get("tree")


def _device(spec) -> Device:
    d = parse(spec)
    backend_for(d)            # unknown type or missing device: raises here, naming it
    return d


def _build(node, entries: dict, device, depth: int):
    if depth > MAX_DEPTH:
        raise _Invalid(f"the tree is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise _Invalid(f"bad tree entry {str(node)[:80]}")
    if "dict" in node:
        items = node["dict"]
        if not all(isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], str)
                   for kv in items):
            raise _Invalid("bad dict entry (keys must be strings)")
        return {k: _build(v, entries, device, depth + 1) for k, v in items}
    if "list" in node:
        return [_build(v, entries, device, depth + 1) for v in node["list"]]
    if "tuple" in node:
        return tuple(_build(v, entries, device, depth + 1) for v in node["tuple"])
    if "value" in node:
        if not isinstance(node["value"], _SCALARS):
            raise _Invalid(f"bad value {str(node['value'])[:80]}")
        return node["value"]
    if "complex" in node:
        parts = node["complex"]
        if not (isinstance(parts, list) and len(parts) == 2 and
                all(type(p) in (int, float) for p in parts)):
            raise _Invalid(f"bad complex value {str(parts)[:80]}")
        return complex(*parts)
    if "array" not in node or node["array"] not in entries:
        raise _Invalid(f"bad tree entry {str(node)[:80]} (no such array in the archive)")
    host = entries[node["array"]]
    try:
        dt = dtypes.check_supported(host.dtype.newbyteorder("="))
    except TypeError:
        raise _Invalid(f"array {node['array']} has dtype {host.dtype}; numlazy's dtypes are "
                       f"{dtypes.NAMES}") from None
    if device is None:
        saved = node.get("device")
        try:
            device = _device(saved)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise _Unusable(f"load: an array was saved from device {saved!r}, which is not "
                             f"usable here ({exc}); pass device=... to load it elsewhere") \
                from None
    host = host.astype(dt, order="C", copy=False)      # native byte order, 0-d kept 0-d
    buffer = executor.to_device(backend_for(device), host, device.index or 0)
    return Array(ir.data(buffer, host.shape, dt, device))
