"""The op table: every op declared once.

An entry says what kind of op it is, how its result dtype is found, how NumPy computes it
(the reference the interpreter and the tests use), and how it is spelled in generated code.
The public functions (`numlazy/api.py`), fusion, both backends' code generators and the tests
all read this table; adding an op is one entry here plus, at most, one lowering per backend.

Scalar expressions are format templates over operand values (`{0}`, `{1}`) written in a small
vocabulary (`VOCABULARY`): Python operators and NumPy ufunc names. Each backend binds those
names for its target (CPU: NumPy's scalar ufuncs inside Numba); complex loops call the helpers
of `numlazy/complex_math.py`, written in that vocabulary. The emitter in
`numlazy/codegen.py` casts operands to the op's loop dtypes first and the result to the
node's dtype after, which is how generated code keeps NumPy's result dtypes.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import dtypes as dt
from .complex_math import COMPLEX_HELPERS

ELEMENTWISE, REDUCE, VIEW, GATHER, OPAQUE, CREATION, HOST = (
    "elementwise", "reduce", "view", "gather", "opaque", "creation", "host")


@dataclass(frozen=True, eq=False)
class Op:
    name: str
    kind: str
    nin: int
    ref: Callable                        # NumPy reference implementation
    ufunc: Optional[np.ufunc] = None     # dtype rule: NumPy's loop resolution for this ufunc
    expr: object = None                  # template str, or fn(loop dtypes) -> template
    doc: str = ""
    domain: str = ""                     # "real" or "real floating": the array API defines
                                         # it for those dtypes only (record-time TypeError)

    def template(self, loop_dtypes) -> str:
        return self.expr(loop_dtypes) if callable(self.expr) else self.expr


TABLE: dict[str, Op] = {}


def _add(op: Op) -> Op:
    assert op.name not in TABLE, op.name
    TABLE[op.name] = op
    return op


# --- elementwise: (array API name, NumPy ufunc, template) --------------------------------

def _int_identity(float_template: str):
    """floor/ceil/trunc/round of an integer is the integer itself."""
    return lambda loop: "{0}" if loop[0].kind in "iub" else float_template


def _bool_or(bool_template: str, other: str):
    return lambda loop: bool_template if loop[0].kind == "b" else other


def _float_or_const(float_template: str, const: str, join: str):
    """isnan/isinf/isfinite: an integer is never NaN or infinite; a complex number tests its
    components (`join`ed by `or` or `and`)."""
    complex_template = "(" + f" {join} ".join(
        float_template.replace("{0}", f"{{0}}.{part}") for part in ("real", "imag")) + ")"
    return lambda loop: float_template if loop[0].kind == "f" else \
        complex_template if loop[0].kind == "c" else const


def _or_complex(helper: str, template: str = ""):
    """A complex loop calls `helper` (`numlazy/complex_math.py`); others use `template`
    (default: the helper's name without its `c`, a vocabulary name)."""
    template = template or f"{helper[1:]}({{0}})"
    return lambda loop: f"{helper}({{0}})" if loop[0].kind == "c" else template


def _by_kind(**templates):
    """A template chosen by the kind of the first loop dtype: `f` float, `u` unsigned, `i`
    signed, `b` bool; `other` for the kinds not named."""
    return lambda loop: templates.get(loop[0].kind, templates.get("other"))


def _sign(loop) -> str:
    if loop[0].kind == "c":
        return "csign({0})"                      # z / |z| (array API 2023.12)
    if loop[0].kind == "u":
        return "(1 if {0} != 0 else 0)"          # never negative (NumPy's sign of uint)
    if loop[0].kind == "f":
        return "(sign({0}) + 0.0)"               # -0.0 + 0.0 is +0.0: sign(-0.0) is 0.0
    return "sign({0})"


def _shift(direction: str):
    """NumPy shifts by a count outside [0, bits) give 0 (or -1 for a negative number shifted
    right), where C (and Numba) leave them undefined or take the count modulo the width."""
    def template(loop) -> str:
        bits, zero = loop[0].itemsize * 8, f"{loop[0].type.__name__}(0)"
        if loop[0].kind == "b":
            return f"({{0}} {direction} {{1}})"
        if loop[0].kind == "u":
            return f"({{0}} {direction} {{1}} if {{1}} < {bits} else {zero})"
        far = zero if direction == "<<" else f"({{0}} >> {bits - 1})"
        return f"({{0}} {direction} {{1}} if 0 <= {{1}} < {bits} else {far})"
    return template


UNARY = [
    ("abs", np.absolute, _by_kind(c="hypot({0}.real, {0}.imag)", other="absolute({0})")),
    ("negative", np.negative, "(-{0})"),
    ("positive", np.positive, "(+{0})"),
    ("sqrt", np.sqrt, _or_complex("csqrt")),
    ("square", np.square, "({0} * {0})"),
    ("exp", np.exp, _or_complex("cexp")),
    ("expm1", np.expm1, _or_complex("cexpm1")),
    ("log", np.log, _or_complex("clog")),
    ("log1p", np.log1p, _or_complex("clog1p")),
    ("log2", np.log2, _or_complex("clog2")),
    ("log10", np.log10, _or_complex("clog10")),
    ("sin", np.sin, _or_complex("csin")),
    ("cos", np.cos, _or_complex("ccos")),
    ("tan", np.tan, _or_complex("ctan")),
    ("asin", np.arcsin, _or_complex("casin", "arcsin({0})")),
    ("acos", np.arccos, _or_complex("cacos", "arccos({0})")),
    ("atan", np.arctan, _or_complex("catan", "arctan({0})")),
    ("sinh", np.sinh, _or_complex("csinh")),
    ("cosh", np.cosh, _or_complex("ccosh")),
    ("tanh", np.tanh, _or_complex("ctanh")),
    ("asinh", np.arcsinh, _or_complex("casinh", "arcsinh({0})")),
    ("acosh", np.arccosh, _or_complex("cacosh", "arccosh({0})")),
    ("atanh", np.arctanh, _or_complex("catanh", "arctanh({0})")),
    ("sign", np.sign, _sign),
    ("floor", np.floor, _int_identity("floor({0})")),
    ("ceil", np.ceil, _int_identity("ceil({0})")),
    ("trunc", np.trunc, _int_identity("trunc({0})")),
    ("isnan", np.isnan, _float_or_const("isnan({0})", "False", "or")),
    ("isinf", np.isinf, _float_or_const("isinf({0})", "False", "or")),
    ("isfinite", np.isfinite, _float_or_const("isfinite({0})", "True", "and")),
    ("logical_not", np.logical_not, "(not {0})"),
    ("bitwise_invert", np.invert, _bool_or("(not {0})", "(~{0})")),
    ("conj", np.conjugate, _by_kind(c="{0}.conjugate()", other="{0}")),
    ("signbit", np.signbit, "(copysign(1.0, {0}) < 0)"),
]

BINARY = [
    ("add", np.add, "({0} + {1})"),
    ("subtract", np.subtract, "({0} - {1})"),
    ("multiply", np.multiply, "({0} * {1})"),
    ("divide", np.true_divide, _by_kind(c="cdivide({0}, {1})", other="({0} / {1})")),
    ("floor_divide", np.floor_divide, _by_kind(f="floor_divide({0}, {1})",
                                               other="({0} // {1})")),
    ("remainder", np.remainder, _by_kind(f="remainder({0}, {1})", other="({0} % {1})")),
    ("pow", np.power, _by_kind(f="power({0}, {1})", c="cpower({0}, {1})",
                               other="({0} ** {1})")),
    ("maximum", np.maximum, "maximum({0}, {1})"),
    ("minimum", np.minimum, "minimum({0}, {1})"),
    ("atan2", np.arctan2, "arctan2({0}, {1})"),
    ("hypot", np.hypot, "hypot({0}, {1})"),
    ("logaddexp", np.logaddexp, "logaddexp({0}, {1})"),
    ("copysign", np.copysign, "copysign({0}, {1})"),
    ("equal", np.equal, "({0} == {1})"),
    ("not_equal", np.not_equal, "({0} != {1})"),
    ("less", np.less, "({0} < {1})"),
    ("less_equal", np.less_equal, "({0} <= {1})"),
    ("greater", np.greater, "({0} > {1})"),
    ("greater_equal", np.greater_equal, "({0} >= {1})"),
    ("logical_and", np.logical_and, "({0} and {1})"),
    ("logical_or", np.logical_or, "({0} or {1})"),
    ("logical_xor", np.logical_xor, _bool_or("({0} != {1})",
                                             "(({0} != 0) != ({1} != 0))")),
    ("bitwise_and", np.bitwise_and, "({0} & {1})"),
    ("bitwise_or", np.bitwise_or, "({0} | {1})"),
    ("bitwise_xor", np.bitwise_xor, "({0} ^ {1})"),
    ("bitwise_left_shift", np.left_shift, _shift("<<")),
    ("bitwise_right_shift", np.right_shift, _shift(">>")),
]

# Defined by the array API for real-valued dtypes only: complex operands raise TypeError at
# record time (NumPy accepts some, e.g. maximum and less order complex lexicographically).
REAL_ONLY = frozenset({"floor", "ceil", "trunc", "floor_divide", "remainder", "maximum",
                       "minimum", "atan2", "hypot", "logaddexp", "copysign", "less",
                       "less_equal", "greater", "greater_equal"})
REAL_FLOATING_ONLY = frozenset({"signbit"})

# Ops that call a math-library routine: per element 10-30x the time of an add on the CPU
# (float64 `sin` 15 ns, `exp` 11, against ~1 ns for an arithmetic kernel's element, the
# 2-core VM). `KernelParts.calls` lists them, so the CPU backend runs costly kernels on all
# cores at sizes where a cheap kernel still takes the serial loop.
TRANSCENDENTAL = frozenset({"exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos",
                            "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
                            "acosh", "atanh", "pow", "atan2", "hypot", "logaddexp"})

for _name, _ufunc, _expr in UNARY + BINARY:
    _add(Op(_name, ELEMENTWISE, _ufunc.nin, _ufunc, _ufunc, _expr,
            doc=f"Elementwise `{_name}`, as NumPy's `{_ufunc.__name__}`.",
            domain="real" if _name in REAL_ONLY else
            "real floating" if _name in REAL_FLOATING_ONLY else ""))
assert TRANSCENDENTAL <= TABLE.keys()

_add(Op("round", ELEMENTWISE, 1, np.round, None,
        _by_kind(c="complex(rint({0}.real), rint({0}.imag))", f="rint({0})", other="{0}"),
        doc="Round to the nearest integer, halves to even (each component of a complex "
            "number); integers are unchanged."))
_add(Op("real", ELEMENTWISE, 1, np.real, None, _by_kind(c="{0}.real", other="{0}"),
        doc="The real component (a real dtype: float32 for complex64)."))
_add(Op("imag", ELEMENTWISE, 1, np.imag, None, _by_kind(c="{0}.imag", other="0"),
        doc="The imaginary component (a real dtype; zero for real input)."))
_add(Op("where", ELEMENTWISE, 3, np.where, None, "({1} if {0} else {2})",
        doc="Elements of x1 where condition is true, else of x2."))
_add(Op("astype", ELEMENTWISE, 1, lambda x, dtype: x.astype(dtype), None, "{0}",
        doc="The values converted to another dtype (the emitter's cast does the work)."))

# The names elementwise templates may use, bound by each backend.
VOCABULARY = sorted({"absolute", "sqrt", "exp", "expm1", "log", "log1p", "log2", "log10",
                     "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
                     "arcsinh", "arccosh", "arctanh", "sign", "floor", "ceil", "trunc", "rint",
                     "isnan", "isinf", "isfinite", "power", "maximum", "minimum", "arctan2",
                     "hypot", "logaddexp", "copysign", "floor_divide",
                     "remainder"})
# Templates of complex loops also call the complex helpers (`numlazy/complex_math.py`,
# written in this vocabulary; each backend appends their source to its prelude).
assert not set(COMPLEX_HELPERS) & set(VOCABULARY)


# --- reductions ----------------------------------------------------------------------------
# A reduction is an accumulator: `init`, an `update` folding value `v` (at flat reduced index
# `k`) into `acc` (and `idx`), and a `merge` folding a partial (`acc2`, `idx2`) into it, used
# to combine parallel chunks. Min/max propagate NaN; argmin/argmax return the first NaN.

@dataclass(frozen=True, eq=False)
class Reduction:
    init: Callable[[np.dtype], str]      # acc dtype -> literal
    update: str
    merge: str
    with_index: bool = False
    # max/min: the update as a branch-free select that passes NaN by; a backend using it
    # notes NaNs aside (`seen`) and makes the result NaN after the loop (on the CPU, LLVM
    # vectorizes the select and not the branch: a 2048-wide row max 4.2 -> 1.2 ms).
    select: Optional[str] = None


def _lowest(d: np.dtype) -> str:
    return "-inf" if d.kind == "f" else "False" if d.kind == "b" else str(np.iinfo(d).min)


def _highest(d: np.dtype) -> str:
    return "inf" if d.kind == "f" else "True" if d.kind == "b" else str(np.iinfo(d).max)


_GT = "v > acc or (v != v and acc == acc)"
_LT = "v < acc or (v != v and acc == acc)"

REDUCTIONS = {
    "sum": Reduction(lambda d: "0", "acc += v", "acc += acc2"),
    "prod": Reduction(lambda d: "1", "acc *= v", "acc *= acc2"),
    "max": Reduction(_lowest, f"if {_GT}: acc = v", f"if {_GT.replace('v', 'acc2')}: acc = acc2",
                     select="acc = v if v > acc else acc"),
    "min": Reduction(_highest, f"if {_LT}: acc = v", f"if {_LT.replace('v', 'acc2')}: acc = acc2",
                     select="acc = v if v < acc else acc"),
    "argmax": Reduction(_lowest, f"if {_GT}:\n    acc = v\n    idx = k",
                        f"if {_GT.replace('v', 'acc2')}:\n    acc = acc2\n    idx = idx2", True),
    "argmin": Reduction(_highest, f"if {_LT}:\n    acc = v\n    idx = k",
                        f"if {_LT.replace('v', 'acc2')}:\n    acc = acc2\n    idx = idx2", True),
    "any": Reduction(lambda d: "False", "acc = acc or v != 0", "acc = acc or acc2"),
    "all": Reduction(lambda d: "True", "acc = acc and v != 0", "acc = acc and acc2"),
}
for _name in REDUCTIONS:
    _add(Op(_name, REDUCE, 1, getattr(np, _name), doc=f"Reduction `{_name}` over axes."))

IDENTITY_FREE = ("max", "min", "argmax", "argmin")  # empty input is an error, as in NumPy
ORDERED = IDENTITY_FREE          # need an order: complex input raises TypeError (array API)


@functools.cache
def reduce_dtype(name: str, in_dtype: np.dtype) -> np.dtype:
    """NumPy's result dtype of reduction `name` on `in_dtype` (sum of int8 is int64...),
    asked of NumPy once per pair (every recorded reduction asks)."""
    if name in ("argmax", "argmin"):
        return dt.int64
    if name in ("any", "all"):
        return dt.bool_
    return np.dtype(getattr(np, name)(np.ones(1, in_dtype)).dtype)


_WIDER = {dt.float32: dt.float64, dt.complex64: dt.complex128}


def accumulator_dtype(name: str, in_dtype: np.dtype, out_dtype: np.dtype) -> np.dtype:
    """float32 sums and products accumulate in float64 (NUMBA_NOTES.md: drift otherwise),
    complex64 ones in complex128."""
    if name in ("sum", "prod") and out_dtype in _WIDER:
        return _WIDER[out_dtype]
    if name in ("argmax", "argmin", "max", "min"):
        return in_dtype
    return out_dtype


# --- views: index maps ---------------------------------------------------------------------
# A view reads its source at another index. `index_map(attrs, out_idx, rt)` returns the
# source index expressions from the view's output index expressions and the names of its
# runtime values. Structure (which dims are broadcast, dropped, permuted) is in `attrs`;
# sizes, starts and steps are runtime values.

def _broadcast_map(attrs, idx, rt):
    # attrs: for each source dim, the output dim it follows, or -1 if it has size 1.
    return ["0" if d < 0 else idx[d] for d in attrs]


def _permute_map(attrs, idx, rt):
    src = [None] * len(attrs)
    for out_dim, src_dim in enumerate(attrs):
        src[src_dim] = idx[out_dim]
    return src


def _slice_map(attrs, idx, rt):
    # attrs: per entry 'f' full dim, 's' sliced dim (rt: start, step), 'i' integer index
    # (rt: index), 'n' new axis (an output dim with no source dim).
    src, out_dim, r = [], 0, 0
    for kind in attrs:
        if kind == "f":
            src.append(idx[out_dim])
            out_dim += 1
        elif kind == "s":
            src.append(f"({rt[r]} + {rt[r + 1]} * {idx[out_dim]})")
            out_dim, r = out_dim + 1, r + 2
        elif kind == "i":
            src.append(rt[r])
            r += 1
        else:
            out_dim += 1
    return src


def _reshape_map(attrs, idx, rt):
    # rt: the source shape then the output shape. Row-major flat index, then unravel.
    src_rank, out_rank = attrs
    src_shape, out_shape = rt[:src_rank], rt[src_rank:]
    flat = "0"
    for d in range(out_rank):
        flat = f"({flat} * {out_shape[d]} + {idx[d]})"
    src = []
    for d in reversed(range(src_rank)):
        src.append(f"({flat} % {src_shape[d]})" if d else flat)
        flat = f"({flat} // {src_shape[d]})"
    return src[::-1]


@dataclass(frozen=True, eq=False)
class ViewOp(Op):
    index_map: Callable = None


for _name, _map in (("broadcast", _broadcast_map), ("permute", _permute_map),
                    ("slice", _slice_map), ("reshape", _reshape_map)):
    _add(ViewOp(_name, VIEW, 1, None, index_map=_map, doc=f"View `{_name}` (an index map)."))


# --- gathers: an element read from one of several sources, chosen by its index -------------
# `source_index(attrs, idx, rt, k)`: source k's index at output index `idx`; `select(attrs,
# idx, rt, k)`: the condition under which the element comes from source k (the last source
# takes the rest). Generated code reads only the chosen source (a conditional expression),
# so fusion gives every source a buffer (`fusion._materialized`), never an inlined value
# computed at an index outside its shape.
# A gather with `lookup` reads an index from data: its last source is an index array, read at
# `lookup(attrs, idx)`, and that value (an expression) is `source_index`'s fifth argument.

@dataclass(frozen=True, eq=False)
class GatherOp(Op):
    source_index: Callable = None
    select: Callable = None
    lookup: Callable = None


def _concat_index(attrs, idx, rt, k):
    axis = attrs[0]             # rt: the offset of each source along the axis
    return idx[:axis] + (f"({idx[axis]} - {rt[k]})",) + idx[axis + 1:]


_add(GatherOp("concat", GATHER, -1, lambda *a: np.concatenate(a[:-1], axis=a[-1]),
              source_index=_concat_index,
              select=lambda attrs, idx, rt, k: f"{idx[attrs[0]]} < {rt[k + 1]}",
              doc="Arrays of one dtype joined along an existing axis (attrs: axis; rt: the "
                  "sources' offsets along it)."))


def _take_index(attrs, idx, rt, k, found):
    # rt: x's size n along the axis. A negative index counts from the end; the standard
    # leaves indices outside [-n, n) unspecified: they are clipped, so no read leaves x.
    axis, n = attrs[0], rt[0]
    clipped = f"min(max({found} + {n} if {found} < 0 else {found}, 0), {n} - 1)"
    return idx[:axis] + (clipped,) + idx[axis + 1:]


def _take_ref(x, indices, axis):
    n = x.shape[axis]
    return np.take(x, np.clip(np.where(indices < 0, indices + n, indices), 0, n - 1), axis)


_add(GatherOp("take", GATHER, 2, _take_ref, source_index=_take_index,
              lookup=lambda attrs, idx: (idx[attrs[0]],),
              doc="Elements of x at int64 indices along an axis, negative from the end, out of "
                  "range clipped (attrs: axis; rt: x's size along it)."))


# --- creation: values computed from the element's own index --------------------------------

@dataclass(frozen=True, eq=False)
class CreationOp(Op):
    value: Callable = None               # (idx exprs, rt names) -> expression


_add(CreationOp("full", CREATION, 0, None, value=lambda idx, rt: rt[0],
                doc="Every element the same runtime value."))
_add(CreationOp("arange", CREATION, 0, None,
                value=lambda idx, rt: f"({rt[0]} + {idx[0]} * {rt[1]})",
                doc="start + i * step."))
_add(CreationOp("linspace", CREATION, 0, None,
                value=lambda idx, rt: f"({rt[2]} if {idx[0]} == {rt[3]} else "
                                      f"{rt[0]} + {idx[0]} * {rt[1]})",
                doc="start + i * step, the last element exactly stop when endpoint=True."))
_add(CreationOp("eye", CREATION, 0, None,
                value=lambda idx, rt: f"({idx[1]} - {idx[0]} == {rt[0]})",
                doc="Ones on the k-th diagonal."))


# --- opaque: whole-array ops a backend lowers as a library call ----------------------------

_add(Op("matmul", OPAQUE, 2, np.matmul, doc="Matrix product (BLAS on the CPU)."))


# --- host: ops no backend lowers yet; the interpreter runs them (counted `fallback::<op>`) ----
# `ref(*inputs, *attrs)`; the public function in api.py checks arguments and finds the shape.

_add(Op("cumulative_sum", HOST, 1, lambda x, axis, initial: _cumulative_sum(x, axis, initial),
        doc="Running sums along an axis (attrs: axis, include_initial)."))
_add(Op("setitem", HOST, 2, lambda x, value, kinds, *rt: _setitem(x, value, kinds, rt),
        doc="x with a basic-indexed region replaced by value (attrs: index kinds; rt: "
            "starts, steps, lengths, indices)."))
_add(Op("sort", HOST, 1,
        lambda x, axis, descending: np.flip(np.sort(np.flip(x, axis), axis, kind="stable"), axis)
        if descending else np.sort(x, axis, kind="stable"),
        doc="Values sorted along an axis, stable (attrs: axis, descending)."))
_add(Op("argsort", HOST, 1,
        lambda x, axis, descending: _argsort_descending(x, axis) if descending
        else np.argsort(x, axis, kind="stable"),
        doc="Indices that sort along an axis, stable (attrs: axis, descending)."))


_add(Op("searchsorted", HOST, 2, lambda x1, x2, side: np.searchsorted(x1, x2, side),
        doc="Insertion indices of x2's elements into the sorted 1-D x1 (attrs: side)."))


# Linear algebra: NumPy's LAPACK routines (`numlazy.linalg`). A factorization with several
# results is one op per result (attrs end with the result's index): NumPy factors once per
# result that a step keeps.
_LINALG = {
    "cholesky": (lambda x, upper: np.linalg.cholesky(x, upper=upper), "attrs: upper"),
    "det": (np.linalg.det, ""),
    "eigh": (lambda x, field: np.linalg.eigh(x)[field], "attrs: result index"),
    "eigvalsh": (np.linalg.eigvalsh, ""),
    "inv": (np.linalg.inv, ""),
    "pinv": (lambda x, rtol: np.linalg.pinv(x, rtol=rtol), "rt: rtol"),
    "qr": (lambda x, mode, field: np.linalg.qr(x, mode)[field], "attrs: mode, result index"),
    "slogdet": (lambda x, field: np.linalg.slogdet(x)[field], "attrs: result index"),
    "solve": (np.linalg.solve, "two inputs"),
    "svd": (lambda x, full, field: np.linalg.svd(x, full_matrices=full)[field],
            "attrs: full_matrices, result index"),
    "svdvals": (np.linalg.svdvals, ""),
}
for _name, (_ref, _attrs) in _LINALG.items():
    _add(Op(f"linalg.{_name}", HOST, 2 if _name == "solve" else 1, _ref,
            doc=f"NumPy's `np.linalg.{_name}`{f' ({_attrs})' if _attrs else ''}."))


# The `nl.fft` extension (numlazy/fft.py): NumPy's pocketfft on the host for every device.
# attrs: n (1-D transforms) or s (n-D), axis or axes, norm.
FFTS = ("fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft")


def _fft(name: str):
    transform = getattr(np.fft, name)
    return lambda x, n, axes, norm: transform(x, n, axes, norm)


for _name in FFTS:
    _shape_attrs = "s, axes" if _name.endswith("n") else "n, axis"
    _add(Op(_name, HOST, 1, _fft(_name),
            doc=f"NumPy's `np.fft.{_name}` (attrs: {_shape_attrs}, norm)."))


def _argsort_descending(x, axis):
    """Stable descending order: equal values keep their original order (as the standard
    asks), so not simply the ascending order reversed."""
    n = x.shape[axis]
    flipped = np.argsort(np.flip(x, axis), axis, kind="stable")
    return np.flip(n - 1 - flipped, axis)


def _cumulative_sum(x, axis, include_initial):
    out = np.cumsum(x, axis=axis)
    if include_initial:
        shape = list(out.shape)
        shape[axis] = 1
        out = np.concatenate([np.zeros(shape, out.dtype), out], axis=axis)
    return out


def _setitem(x, value, kinds, rt):
    index, r = [], 0
    for kind in kinds:
        if kind == "f":
            index.append(slice(None))
        elif kind == "s":
            start, step, length = (int(v) for v in rt[r:r + 3])
            stop = start + step * length
            index.append(slice(start, stop if stop >= 0 else None, step))
            r += 3
        elif kind == "i":
            index.append(int(rt[r]))
            r += 1
        else:
            index.append(None)
    out = np.array(x, copy=True)
    out[tuple(index)] = value
    return out
