"""`nl.backends`: how kernels run — the fp32 precision tree (API.md section 6).

Modelled on `torch.backends`. The tree is `generic -> {cpu, cuda} -> {all, elementwise,
reduction, matmul}`; each node is one flag of `numlazy.config` (`fp32_precision`,
`cpu_fp32_precision`, `cuda_matmul_fp32_precision`, ... with `NUMLAZY_*` environment
variables). Values:

- `"ieee"`: strict IEEE arithmetic, NumPy's results.
- `"fast"`: Numba kernels compiled with the fast-math flags `FAST_FLAGS` (reassociated,
  vectorized reductions; approximate transcendentals; NaN and Inf keep their meaning).
- `"tf32"`: CUDA float32 matmul on TF32 tensor cores (cuBLAS through CuPy; the fallback tiled
  kernel rounds its inputs to TF32 the same way).
- `"none"`: inherit from the level above.

An op resolves op -> backend `all` -> generic; getters return the resolved value. A matmul
that inherits `fast` runs `ieee` (BLAS and cuBLAS have no fast-math mode), and says so. Every
precision flag is part of every compile key: switching recompiles, switching back hits the
cache.

    >>> import numlazy as nl
    >>> nl.backends.cuda.matmul.fp32_precision
    'ieee'
    >>> with nl.backends.cpu.flags(reduction="fast"):
    ...     nl.backends.cpu.reduction.fp32_precision
    'fast'
    >>> nl.backends.cpu.reduction.fp32_precision
    'ieee'
"""
from __future__ import annotations

import contextlib
import sys
import types

from .. import config, ops
from ..config import PRECISION_BACKENDS, PRECISION_OPS, precision_flag, precision_values

# The fast-math flag set of the "fast" precision (NUMBA_NOTES.md): not `fastmath=True`, whose
# nnan/ninf make `isnan(nan)` False.
FAST_FLAGS = frozenset({"contract", "arcp", "reassoc", "nsz", "afn"})
FAST_FLAGS_SOURCE = "{" + ", ".join(repr(f) for f in sorted(FAST_FLAGS)) + "}"

_frozen = False


# --- resolution ---------------------------------------------------------------------------

def _check_node(backend: str, op: str) -> None:
    if backend and backend not in PRECISION_BACKENDS:
        raise ValueError(f"numlazy.backends: no precision settings for backend {backend!r}; "
                         f"backends: {', '.join(PRECISION_BACKENDS)}")
    if op and op not in PRECISION_OPS + ("all",):
        raise ValueError(f"numlazy.backends: unknown op kind {op!r}; op kinds: all, "
                         f"{', '.join(PRECISION_OPS)}")


def resolve(backend: str = "", op: str = "") -> str:
    """The precision node (`backend`, `op`) runs with: its own value, else its backend's
    `all`, else the generic one. `op` is `elementwise`, `reduction`, `matmul` or ""/`all`."""
    _check_node(backend, op)
    return _resolved[(backend, "" if op == "all" else op)]


def _resolve_now(backend: str, op: str) -> str:
    chain = [(backend, op)] + ([(backend, "")] if op else []) + ([("", "")] if backend else [])
    for node in chain:
        value = config.get(precision_flag(*node))
        if value != "none":
            break
    if value not in precision_values(backend, op):
        value = "ieee"                  # a matmul inheriting "fast": BLAS has no such mode
    return value


_resolved: dict = {}


def _refresh() -> None:
    nodes = [("", "")] + [(b, o) for b in PRECISION_BACKENDS for o in ("",) + PRECISION_OPS]
    _resolved.update({n: _resolve_now(*n) for n in nodes})


config.watch(_refresh)


def kernel_precision(backend: str, graph, kernel) -> str:
    """The precision a fused loop kernel (`fusion.LoopKernel` or `RowKernel`) compiles with
    on `backend`: `fast` only when every op kind in it resolves to `fast` (an elementwise op
    that must stay `ieee` keeps its whole kernel strict). Backends outside the tree: ieee."""
    if backend not in PRECISION_BACKENDS or "fast" not in (
            _resolved[(backend, "elementwise")], _resolved[(backend, "reduction")]):
        return "ieee"
    kinds = _op_kinds(graph, kernel)
    values = {_resolved[(backend, k)] for k in kinds} or {_resolved[(backend, "elementwise")]}
    return "fast" if values == {"fast"} else "ieee"


def _op_kinds(graph, kernel) -> set:
    """`elementwise` and/or `reduction`: the kinds of computing ops a kernel contains."""
    phases = getattr(kernel, "phases", None) or [kernel]
    nodes, kinds = graph.nodes, set()
    for ph in phases:
        if ph.reduce is not None:
            kinds.add("reduction")
        stop = set(ph.reads) | set(getattr(kernel, "reads", ()))
        todo = list(ph.stores) + [ph.space]
        seen = set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            node = nodes[p]
            if node.is_leaf or (p in stop and p not in ph.stores):
                continue
            op = ops.TABLE.get(node.op)
            if op is not None and op.kind == ops.ELEMENTWISE:
                kinds.add("elementwise")
            if op is None or op.kind != ops.REDUCE:
                todo.extend(graph.pos[id(s)] for s in node.srcs)
    return kinds


def fastmath(backend: str, graph, kernel):
    """`FAST_FLAGS` when the kernel compiles `fast`, else None."""
    return FAST_FLAGS if kernel_precision(backend, graph, kernel) == "fast" else None


# --- the attribute tree ---------------------------------------------------------------------

def _set(backend: str, op: str, value) -> None:
    path = ".".join(["nl.backends"] + [p for p in (backend, op) if p] + ["fp32_precision"])
    if _frozen:
        raise RuntimeError(f"{path}: global flags are frozen (nl.backends."
                           f"disable_global_flags()); use a flags() context manager")
    _validate(backend, op, value, path)
    config.set(precision_flag(backend, op), value)


def _validate(backend: str, op: str, value, path: str) -> None:
    allowed = precision_values(backend, op)
    if not isinstance(value, str) or value not in allowed:
        why = ""
        if value == "tf32":
            why = " (tf32 is for CUDA matmul only)"
        elif value == "fast" and op == "matmul":
            why = " (matmul runs BLAS/cuBLAS, which has no fast-math mode)"
        elif value == "none" and not backend:
            why = " (the generic level has nothing to inherit from)"
        raise ValueError(f"{path} = {value!r} is not accepted{why}; accepted values: "
                         f"{', '.join(allowed)}")


@contextlib.contextmanager
def _override(changes: dict):
    """Set precision nodes {(backend, op): value} (None: unchanged) inside a block; the old
    values come back on exit, also on an exception. Allowed when flags are frozen."""
    values = {}
    for (backend, op), value in changes.items():
        if value is None:
            continue
        path = ".".join(["nl.backends"] + [p for p in (backend, op) if p] + ["flags"])
        _validate(backend, op, value, path)
        values[precision_flag(backend, op)] = value
    with config.override(**values):
        yield


class _Op:
    """`nl.backends.<backend>.<op>`: one op kind of one backend."""

    def __init__(self, backend: str, op: str):
        self._backend, self._op = backend, op

    @property
    def fp32_precision(self) -> str:
        return resolve(self._backend, self._op)

    @fp32_precision.setter
    def fp32_precision(self, value) -> None:
        _set(self._backend, self._op, value)

    def flags(self, fp32_precision=None):
        """A context manager setting this op kind's precision (None: unchanged)."""
        return _override({(self._backend, self._op): fp32_precision})

    def __repr__(self):
        return f"<nl.backends.{self._backend}.{self._op or 'all'}: {self.fp32_precision}>"


class _Backend(_Op):
    """`nl.backends.cpu` / `nl.backends.cuda`: `fp32_precision` is its `all` level (also
    `.all`); `.elementwise`, `.reduction`, `.matmul` are its op kinds."""

    def __init__(self, backend: str):
        super().__init__(backend, "")
        self.all = _Op(backend, "")
        for op in PRECISION_OPS:
            setattr(self, op, _Op(backend, op))

    def flags(self, fp32_precision=None, *, elementwise=None, reduction=None,  # noqa: D417
              matmul=None):
        """A context manager setting this backend's `all` level and op kinds; every
        argument defaults to None = unchanged (never to a value)."""
        b = self._backend
        return _override({(b, ""): fp32_precision, (b, "elementwise"): elementwise,
                          (b, "reduction"): reduction, (b, "matmul"): matmul})


cpu = _Backend("cpu")
cuda = _Backend("cuda")


def flags(fp32_precision=None, *, cpu=None, cuda=None):  # noqa: F811 - shadows on purpose
    """A context manager setting the generic precision and the backends' `all` levels; None
    (the default) leaves a level unchanged.

        with nl.backends.flags(fp32_precision="fast"):
            ...
    """
    return _override({("", ""): fp32_precision, ("cpu", ""): cpu, ("cuda", ""): cuda})


def disable_global_flags() -> None:
    """Forbid assigning `fp32_precision` attributes (a test can then only change precision
    through `flags(...)` context managers, which always restore)."""
    global _frozen
    _frozen = True


def enable_global_flags() -> None:
    """Allow attribute assignment again (undoes `disable_global_flags`)."""
    global _frozen
    _frozen = False


def flags_frozen() -> bool:
    """Whether `disable_global_flags()` is in effect."""
    return _frozen


def describe() -> dict:
    """Every node's resolved precision, `{"generic": ..., "cpu.all": ..., ...}`."""
    return {(f"{b}.{o or 'all'}" if b else "generic"): v for (b, o), v in _resolved.items()}


class _Module(types.ModuleType):
    """Gives the module a settable `fp32_precision` attribute, as torch.backends has."""

    @property
    def fp32_precision(self) -> str:
        return resolve()

    @fp32_precision.setter
    def fp32_precision(self, value) -> None:
        _set("", "", value)


sys.modules[__name__].__class__ = _Module
