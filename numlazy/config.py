"""Every numlazy flag, declared once.

A flag has a name, an environment variable, a type, a default, a help line and whether it
changes generated code (such flags are part of every compile key). The environment is read
here and nowhere else; a bad value fails at import with the variable's name and what is
accepted.

    >>> import numlazy as nl
    >>> nl.config.get("compile_cache_size")
    1024
    >>> with nl.config.override(serial_threshold=0):
    ...     pass
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Flag:
    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    changes_code: bool = False
    accepted: str = ""
    convert: Callable[[Any], Any] = None     # checks a non-string value given to set()

    @property
    def type(self) -> type:
        """The Python type of the flag's values (bool, int, str, frozenset)."""
        return type(self.default)


def _as_int(value) -> int:
    """An int from env text or an int given to set() (not a bool, not a float: 1.5 is not
    silently 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return int(value)


def _int_at_least(lo: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _as_int(text)
        if value < lo:
            raise ValueError(text)
        return value
    return parse


def _int_between(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _as_int(text)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value
    return parse


def _op_names(value) -> frozenset:
    """Comma-separated op names (or any iterable of them), each one in the op table."""
    from .ops import TABLE
    names = value.split(",") if isinstance(value, str) else list(value)
    names = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(names - TABLE.keys())
    if unknown:
        raise ValueError(f"unknown op name(s) {', '.join(unknown)}")
    return names


def _bool(text: str) -> bool:
    if isinstance(text, bool):
        return text
    if not isinstance(text, str):
        raise TypeError(f"expected True or False, got {type(text).__name__}")
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


def _choice(values: tuple) -> Callable[[str], str]:
    def parse(text) -> str:
        if not isinstance(text, str):
            raise TypeError(f"expected a string, got {type(text).__name__}")
        if text.strip() not in values:
            raise ValueError(text)
        return text.strip()
    return parse


# The fp32 precision tree of numlazy.backends (API.md section 6): generic -> backend (its
# `all` level) -> op kind; "none" inherits from the level above. One flag per node, named
# `[<backend>_][<op>_]fp32_precision`; every one changes generated code.
PRECISION_BACKENDS = ("cpu", "cuda")
PRECISION_OPS = ("elementwise", "reduction", "matmul")


def precision_values(backend: str = "", op: str = "") -> tuple:
    """The values node (`backend`, `op`) accepts ("" = the generic root, or a backend's
    `all`). `fast` is a Numba kernel mode, so matmuls (BLAS, cuBLAS) do not take it; `tf32`
    is CUDA matmul only."""
    if not backend:
        return ("ieee", "fast")
    if op == "matmul":
        return ("ieee", "tf32", "none") if backend == "cuda" else ("ieee", "none")
    return ("ieee", "fast", "none")


def precision_flag(backend: str = "", op: str = "") -> str:
    """The flag name of precision node (`backend`, `op`)."""
    return "_".join(p for p in (backend, op, "fp32_precision") if p)


def _precision_flags() -> list:
    nodes = [("", "")] + [(b, o) for b in PRECISION_BACKENDS for o in ("",) + PRECISION_OPS]
    flags = []
    for backend, op in nodes:
        values = precision_values(backend, op)
        where = f"{backend} {op or 'ops (all)'}" if backend else "every backend (generic)"
        parse = _choice(values)
        flags.append(Flag(
            precision_flag(backend, op), "NUMLAZY_" + precision_flag(backend, op).upper(),
            parse, values[-1] if backend else "ieee",
            f"fp32 precision of {where}: ieee strict, fast = Numba fastmath, tf32 = TF32 "
            f"tensor cores, none = inherit (numlazy.backends)",
            changes_code=True, accepted="one of " + ", ".join(values), convert=parse))
    return flags


def _device_spec(text: str) -> str:
    """A device string's syntax (`type` or `type:index`); whether the type is registered is
    checked where a device is used, since backends load lazily."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(:[0-9]+)?", text.strip()):
        raise ValueError(text)
    return text.strip()


def _directory(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an empty path")
    return os.path.expanduser(text)


def _file_or_empty(text: str) -> str:
    """A file path whose directory exists (checked now, not at the first step), or ""."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    if text and not os.path.isdir(os.path.dirname(os.path.abspath(os.path.expanduser(text)))):
        raise ValueError(f"the directory of {text!r} does not exist")
    return os.path.expanduser(text)


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "numlazy")


FLAGS: dict[str, Flag] = {f.name: f for f in (
    Flag("device", "NUMLAZY_DEVICE", _device_spec, "cpu",
         "default device for new arrays, e.g. cpu, numpy, cuda:0",
         accepted="a device string of a registered backend, such as cpu, numpy or cuda:0",
         convert=_device_spec),
    Flag("cache_dir", "NUMLAZY_CACHE_DIR", _directory, _default_cache_dir(),
         "where generated kernel modules and Numba's machine code are stored",
         accepted="a directory path", convert=_directory),
    Flag("disk_cache", "NUMLAZY_DISK_CACHE", _bool, True,
         "write generated kernels to cache_dir so a second process loads them",
         accepted="1/0, true/false, yes/no, on/off", convert=_bool),
    Flag("compile_cache_size", "NUMLAZY_COMPILE_CACHE_SIZE", _int_at_least(1), 1024,
         "programs kept in the in-memory compile cache (LRU)",
         accepted="an integer >= 1", convert=_int_at_least(1)),
    Flag("host_pool_bytes", "NUMLAZY_HOST_POOL_BYTES", _int_at_least(0), 4 << 30,
         "bytes of freed host buffers the CPU backend keeps for reuse (0 turns the pool off)",
         accepted="an integer >= 0", convert=_int_at_least(0)),
    Flag("force_fallback", "NUMLAZY_FORCE_FALLBACK", _op_names, frozenset(),
         "ops run by the reference interpreter instead of the backend (changeable at run time)",
         changes_code=True, accepted="comma-separated op names from the op table, e.g. sin,exp",
         convert=_op_names),
    Flag("trim_graph_size", "NUMLAZY_TRIM_GRAPH_SIZE", _int_at_least(1), 100000,
         "pending graphs larger than this many nodes are executed early (counter TrimIrGraph)",
         accepted="an integer >= 1", convert=_int_at_least(1)),
    Flag("max_async_queue", "NUMLAZY_MAX_ASYNC_QUEUE", _int_at_least(1), 100,
         "asynchronous step closures waiting per device before add_step_closure blocks",
         accepted="an integer >= 1", convert=_int_at_least(1)),
    Flag("debug", "NUMLAZY_DEBUG", _int_between(0, 4), 0,
         "1: a line per step; 2: kernel times; 3: fused IR of new programs; 4: their source",
         accepted="an integer from 0 to 4", convert=_int_between(0, 4)),
    Flag("save_graphs_file", "NUMLAZY_SAVE_GRAPHS_FILE", _file_or_empty, "",
         "append the text IR of every executed graph to this file (empty: off)",
         accepted="a file path in an existing directory, or empty",
         convert=_file_or_empty),
    Flag("recompile_warning", "NUMLAZY_RECOMPILE_WARNING", _int_at_least(0), 5,
         "warn after this many consecutive compiles from one call site (0: never)",
         accepted="an integer >= 0", convert=_int_at_least(0)),
    Flag("serial_threshold", "NUMLAZY_SERIAL_THRESHOLD", _int_at_least(0), 32768,
         "loops over fewer elements than this run a serial kernel instead of a parallel one "
         "(CPU: an element of a kernel of transcendental ops counts as several)",
         accepted="an integer >= 0", convert=_int_at_least(0)),
    *_precision_flags(),
)}

_lock = threading.Lock()
_values: dict[str, Any] = {}


def _parse_env(flag: Flag) -> Any:
    text = os.environ.get(flag.env)
    if text is None:
        return flag.default
    try:
        return flag.parse(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(_invalid(flag.env, text, flag, exc)) from None


def _invalid(name: str, text, flag: Flag, exc: Exception) -> str:
    detail = str(exc) if str(exc) not in (str(text), "") and "invalid literal" not in str(exc) \
        else ""
    return f"{name}={text!r} is not valid: expected {flag.accepted}" + \
        (f" ({detail})" if detail else "")


def _flag(name: str) -> Flag:
    try:
        return FLAGS[name]
    except KeyError:
        raise KeyError(f"unknown numlazy flag {name!r}; flags are: {', '.join(FLAGS)}") from None


def get(name: str) -> Any:
    """The current value of flag `name`."""
    return _values[_flag(name).name]


def set(name: str, value: Any) -> None:  # noqa: A001 - mirrors get()
    """Set flag `name` for the rest of the process."""
    flag = _flag(name)
    parse = flag.parse if isinstance(value, str) else flag.convert
    if parse is None:
        raise TypeError(f"{name} takes a string (as in {flag.env}), got "
                        f"{type(value).__name__}")
    if parse is not str:
        try:
            value = parse(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(_invalid(name, value, flag, exc)) from None
    with _lock:
        _values[name] = value
    _changed()


@contextlib.contextmanager
def override(**values: Any):
    """Set flags inside a `with` block; the old values come back on exit (also on error)."""
    old = {name: get(name) for name in values}
    try:
        for name, value in values.items():
            set(name, value)
        yield
    finally:
        for name, value in old.items():
            set(name, value)


_code_flags: tuple = ()
_watchers: list = []


def code_flags() -> tuple:
    """The values of every flag that changes generated code, for compile keys (kept ready:
    every step reads it)."""
    return _code_flags


def watch(fn: Callable[[], None]) -> None:
    """Call `fn()` after any flag changes, so a module can keep derived values ready instead
    of reading flags on every step or op."""
    _watchers.append(fn)
    fn()


def _changed() -> None:
    global _code_flags
    _code_flags = tuple((f.name, _values[f.name]) for f in FLAGS.values() if f.changes_code)
    for fn in _watchers:
        fn()


def check_device_type() -> None:
    """NUMLAZY_DEVICE names a registered backend type. Run once numlazy is imported (backends
    are plugins that import numlazy, so the flag's parser cannot ask for them)."""
    value = get("device")
    if value == FLAGS["device"].default:
        return                       # the built-in default: nothing to discover
    from .registry import list_backends
    types = list_backends()
    if value.partition(":")[0] not in types:
        raise ValueError(f"{FLAGS['device'].env}={value!r} is not valid: expected a device "
                         f"string of a registered backend ({', '.join(types)}), such as "
                         f"cpu or cuda:0")


def reset() -> None:
    """Every flag back to its environment value (or default)."""
    with _lock:
        _values.update({name: _parse_env(flag) for name, flag in FLAGS.items()})
    _changed()


reset()
