"""CUDA loop structure around the shared scalar expressions (`numlazy.codegen`).

The statements inside the loops are `KernelParts.lines`, the same text the CPU backend wraps in
`prange` loops; only the loops around them differ. Every generated module defines some of:

- `flat(n, *outs, *ins, *rts)`: elementwise, a grid-stride loop over the flat index, unravelled
  to `i0 .. i<r-1>`.
- `rows(n, ...)`: elementwise, rank >= 2: blocks stride over the leading dims, threads over the
  last one (no 64-bit division per element; coalesced when the last dim is long).
- `block(n, ...)`: reduction over some axes, one block per output element, threads stride over
  the reduced elements, then a shared-memory tree.
- `thread(n, ...)`: reduction over some axes, one thread per output element (short reductions,
  or reductions over leading axes where neighbouring threads read neighbouring elements).
- `partial(n, pacc, pidx, ...)` + `final(pacc, pidx, count, out)`: full reductions; blocks
  reduce grid-strided slices to one partial each, one block merges the partials (no atomics:
  results are deterministic and argmin/argmax keep NumPy's first index).
- Row kernels (`fusion.RowKernel`, a row softmax) define `block` and `thread` too: one block
  (or one thread) per row, the phases in order inside it. In `block`, a reduction phase ends
  with the tree, thread 0 storing the row's result, and a barrier; every phase ends with a
  barrier, so a phase sees what earlier phases wrote for its row.

Reductions use the `ops.REDUCTIONS` init/update/merge templates. Partials are merged out of
index order, so argmin/argmax add a tie-break on the index to the merge.

On a GPU the vocabulary (`ops.VOCABULARY`) is bound to `math.*`, libdevice and small inlined
helpers (`GPU_MATH`); under Numba's CUDA simulator (which runs kernels as Python) to NumPy's
scalar functions, whose special-value semantics Python's `math` lacks.
"""
from __future__ import annotations

import re

import numba
import numpy as np

import numlazy
from numlazy import complex_math, ops
from numlazy.codegen import CONSTANTS, DTYPE_NAMES, KernelParts, RowParts, cast

# Block size of the shared-memory trees; launches use at most this many threads per block.
MAX_THREADS = 256
BIG_INDEX = 1 << 62          # index of an empty partial: loses every tie

GPU_MATH = '''
@cuda.jit(device=True, inline="always")
def absolute(x):
    return abs(x)


@cuda.jit(device=True, inline="always")
def sign(x):
    if x > 0:
        return 1
    if x < 0:
        return -1
    return x                        # a signed zero, or NaN


@cuda.jit(device=True, inline="always")
def rint(x):
    return libdevice.rint(x)


@cuda.jit(device=True, inline="always")
def power(x, y):
    return x ** y


@cuda.jit(device=True, inline="always")
def maximum(x, y):
    if x > y or x != x:             # NumPy: ties (0.0 and -0.0) give y
        return x
    return y


@cuda.jit(device=True, inline="always")
def minimum(x, y):
    if x < y or x != x:
        return x
    return y


@cuda.jit(device=True, inline="always")
def hypot(x, y):
    a = abs(x)
    b = abs(y)
    if a < b:
        a, b = b, a
    if math.isinf(a):
        return a
    if math.isinf(b):                   # hypot(nan, inf) is inf
        return b
    if a != a or b != b:
        return a + b                    # NaN
    if a == 0:
        return a
    r = b / a
    return a * math.sqrt(1 + r * r)    # no overflow of x*x + y*y near the top of the range


@cuda.jit(device=True, inline="always")
def floor_divide(x, y):
    # NumPy's float floor_divide (npy_divmod): Numba's `//` on the CUDA target does not follow
    # it for infinite or huge operands. `floor` is the vocabulary's (float in, float out).
    if not y:
        return x / y                    # +-inf, or NaN for 0/0 and NaN/0
    mod = math.fmod(x, y)
    div = (x - mod) / y                 # nearly an integer: x - mod is a multiple of y
    if mod and (y < 0) != (mod < 0):
        div -= 1.0                      # the remainder takes the divisor's sign
    if not div:
        return math.copysign(div, x / y)
    whole = floor(div)
    if div - whole > 0.5:               # snap to the nearest integer
        whole += 1.0
    return whole


@cuda.jit(device=True, inline="always")
def remainder(x, y):
    # NumPy's float remainder (npy_divmod): fmod moved to the divisor's sign; a zero result
    # takes the divisor's sign; x % 0 is NaN.
    mod = math.fmod(x, y)
    if not y:
        return mod
    if not mod:
        return math.copysign(mod, y)
    if (y < 0) != (mod < 0):
        mod += y
    return mod


@cuda.jit(device=True, inline="always")
def logaddexp(x, y):
    # NumPy's npy_logaddexp. Where the result is near 0 (logaddexp(-0.75, -0.5) = 0.0759) the
    # sum cancels: one ULP of log1p (libdevice's and glibc's differ by one in ~20% of inputs,
    # measured on an H200) is many ULPs of the result, in NumPy's result as much as here.
    if x == y:                      # also both +-inf
        return x + 0.6931471805599453
    d = x - y
    if d > 0:
        return x + math.log1p(math.exp(-d))
    if d <= 0:
        return y + math.log1p(math.exp(d))
    return d                        # NaN
'''

# Under the simulator the vocabulary is NumPy's scalar functions, except where NumPy's scalar
# path differs from its array loops (the reference): scalar `power(x, 0.5)` is `sqrt(x)`, so
# `power(-inf, 0.5)` is NaN there but +inf in the array loop (and in C's `pow`, as on a GPU).
SIMULATOR_MATH = '''
import numpy as _np


def power(x, y):
    return _np.power(_np.array([x]), _np.array([y]))[0]
'''

# Vocabulary names that are plain `math` functions on the GPU.
GPU_MATH_NAMES = {
    "sqrt": "sqrt", "exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p",
    "log2": "log2", "log10": "log10", "sin": "sin", "cos": "cos", "tan": "tan",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh", "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh",
    "floor": "floor", "ceil": "ceil", "trunc": "trunc", "isnan": "isnan", "isinf": "isinf",
    "isfinite": "isfinite", "arctan2": "atan2", "copysign": "copysign",
}


VECTOR_IMPORT = "from numlazy_cuda.vector import aligned16, vldg, vstore"
VECTOR_BYTES = 16


def lanes(dtype) -> int:
    """Elements per 16-byte access (vector.py) of `dtype`: 4-byte and 8-byte integers and
    floats only (0 for the others). Here, not in vector.py, because rendering needs it and
    the plugin renders without numba-cuda."""
    dtype = np.dtype(dtype)
    return VECTOR_BYTES // dtype.itemsize if dtype.kind in "iuf" and \
        dtype.itemsize in (4, 8) else 0


def prelude(simulator: bool) -> str:
    """The module head binding the vocabulary and dtype names for the GPU or the simulator."""
    head = [
        f"# generated by numlazy {numlazy.__version__} (numba {numba.__version__}), "
        f"cuda backend{' (simulator)' if simulator else ''}",
        "import math",
        "from numba import cuda",
        "from numba import types as nbt",
        f"from numpy import {', '.join(DTYPE_NAMES + list(CONSTANTS))}",
    ]
    if simulator:
        head.append(f"from numpy import {', '.join(ops.VOCABULARY)}")
        head.append(VECTOR_IMPORT)
        return "\n".join(head) + "\n" + SIMULATOR_MATH
    head += ["from numba.cuda import libdevice", VECTOR_IMPORT]
    head += [f"{name} = math.{fn}" for name, fn in sorted(GPU_MATH_NAMES.items())]
    helpers = set(ops.VOCABULARY) - set(GPU_MATH_NAMES)
    missing = [n for n in helpers if f"def {n}(" not in GPU_MATH]
    assert not missing, f"vocabulary names without a CUDA binding: {missing}"
    return "\n".join(head) + "\n" + GPU_MATH


def _complex_decorator(simulator: bool) -> str:
    """The complex helpers (numlazy/complex_math.py) are device functions: numba-cuda lacks
    most complex functions, and under the simulator they run as Python. On the GPU they are
    inlined into the kernel's IR (a device function that is called, not inlined, needs a GPU
    at compile time, which CI's PTX check does not have)."""
    return "cuda.jit(device=True)" if simulator else 'cuda.jit(device=True, inline="always")'


def _decorator(simulator: bool, launch_bounds=None) -> str:
    if simulator:
        return "@cuda.jit"
    return f"@cuda.jit(cache=True{f', launch_bounds={launch_bounds}' if launch_bounds else ''})"


def nb_type(dtype) -> str:
    """A dtype as a Numba type expression (shared-memory arrays need one)."""
    return "nbt.boolean" if dtype.kind == "b" else f"nbt.{numba.from_dtype(dtype)}"


def _indent(lines, depth=1):
    return ["    " * depth + line for line in lines]


def _product(dims) -> str:
    return " * ".join(f"n[{d}]" for d in dims) or "1"


def _unravel(var: str, dims) -> list:
    """Index variables i<d> for `dims` (row-major) from flat index `var`."""
    dims = list(dims)
    if not dims:
        return []
    if len(dims) == 1:
        return [f"i{dims[0]} = {var}"]
    lines = [f"rest = {var}"]
    for d in reversed(dims[1:]):
        lines += [f"i{d} = rest % n[{d}]", f"rest = rest // n[{d}]"]
    return lines + [f"i{dims[0]} = rest"]


# -- unsigned subscripts ---------------------------------------------------------------------
# Numba checks every signed array index for wraparound (a negative index counts from the
# end); on the GPU each check keeps the dim's extent and a fixed-up 64-bit offset alive per
# element. Every index numlazy generates lies in [0, extent) (views and gathers map into their
# source's shape; a gather's other sources are read only when chosen), so each subscript of an
# argument array is converted to uint64, which Numba indexes without the check. sm_90 PTX of
# the softmax row kernel, `exact`: 84 -> 52 registers; chain `flat`: 219 -> 202 instructions.

_ARGUMENT = re.compile(r"\b[ao]\d+\[")


def _subscripted(line: str, pattern=_ARGUMENT):
    """(start, end) of each `name[...]` of `line` whose head matches `pattern`."""
    for m in pattern.finditer(line):
        depth = 0
        for end in range(m.end() - 1, len(line)):
            depth += {"[": 1, "]": -1}.get(line[end], 0)
            if depth == 0:
                break
        yield m.start(), end + 1


def _split_indices(text: str) -> list:
    """The comma-separated index expressions of a subscript's inside (nesting respected)."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(text):
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(c, 0)
        if c == "," and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    return parts + [text[start:].strip()]


def _unsigned(line: str) -> str:
    """`line` with every index of an argument array's subscript converted to uint64."""
    out, done = [], 0
    for start, end in _subscripted(line):
        if start < done:             # inside an index already converted
            continue
        head = line.index("[", start)
        inside = _unsigned(line[head + 1:end - 1])
        out += [line[done:head + 1],
                ", ".join(f"uint64({index})" for index in _split_indices(inside)), "]"]
        done = end
    return "".join(out) + line[done:]


def render(parts: KernelParts, simulator: bool, fastmath=None) -> str:
    """The module source for one `LoopKernel` (see the module doc for its functions).
    `fastmath`: a set of fast-math flags for its kernels (the "fast" precision of
    numlazy.backends: approximate float32 transcendentals, flush-to-zero, reassociation),
    or None for IEEE."""
    out = [prelude(simulator), ""]
    if isinstance(parts, RowParts):
        out += _row(parts, simulator)
    elif parts.kernel.reduce is None:
        out += _elementwise(parts, simulator)
    else:
        out += _reduction(parts, simulator)
    text = "\n".join(out[:1] + [_unsigned(line) for line in out[1:]]) + "\n"
    if complex_math.used_by(text):
        text += complex_math.module_text(_complex_decorator(simulator))
    if fastmath:
        flags = "{" + ", ".join(map(repr, sorted(fastmath))) + "}"
        text = text.replace("@cuda.jit\n", f"@cuda.jit(fastmath={flags})\n") if simulator \
            else text.replace("@cuda.jit(cache=True", f"@cuda.jit(cache=True, fastmath={flags}")
    return text


def variants(parts: KernelParts) -> tuple:
    """Names of the kernels `render` defines for `parts`."""
    if isinstance(parts, RowParts):
        return ("block", "thread") + (("exact",) if _has_exact(parts) else ())
    if parts.kernel.reduce is None:
        return ("flat", "rows") if parts.rank >= 2 else ("flat",)
    axes = parts.reduction()[4]
    if len(axes) == parts.rank:
        return ("partial", "final")
    return ("block", "thread")


def _def(name: str, args, body, simulator, launch_bounds=None) -> list:
    return [_decorator(simulator, launch_bounds), f"def {name}({', '.join(args)}):"] + \
        _indent(body) + ["", ""]


def _elementwise(parts: KernelParts, simulator: bool) -> list:
    rank, lines = parts.rank, parts.lines
    vector, count = _vectorized(parts, lines, parts.outs)
    body = [f"total = {_product(range(rank))}"] + vector + [
        "for f in range(start, total, cuda.gridsize(1)):"]
    body += _indent(_unravel("f", range(rank)) + lines)
    out = [f"LANES = {count}", ""] + _def("flat", parts.args, body, simulator)
    if rank >= 2:
        last = rank - 1
        body = [f"outer = {_product(range(last))}",
                "for g in range(cuda.blockIdx.x, outer, cuda.gridDim.x):"]
        body += _indent(_unravel("g", range(last)) + [
            f"for i{last} in range(cuda.threadIdx.x, n[{last}], cuda.blockDim.x):"])
        body += _indent(lines, 2)
        out += _def("rows", parts.args, body, simulator)
    return out


# -- 16-byte accesses ------------------------------------------------------------------------
# A rank-1 elementwise kernel (or full reduction) whose arrays are read and written at the
# loop index reads each with one 16-byte load per `lanes` elements and writes each with one
# 16-byte store (see vector.py), when every such array has one itemsize (4 or 8 bytes) and is
# 16-byte aligned at run time; otherwise, and for the tail, the scalar loop runs.

_AT_INDEX = re.compile(r"\b([ao])(\d+)\[i0\]")
_STORE = re.compile(r"^o(\d+)\[i0\] = (.*)$")
_OUTPUT = re.compile(r"\bo\d+\[")


def _vectorized(parts: KernelParts, lines: list, stored: list):
    """(the statements before the scalar loop over `lines`, elements per vector): the vector
    loop if `lines` can have one, else just `start`; 1 element without it."""
    plan = _vector_plan(parts, lines, stored)
    return (_vector_loop(lines, *plan), plan[2]) if plan else (["start = cuda.grid(1)"], 1)


def _vector_plan(parts: KernelParts, lines: list, stored: list):
    """(arrays read at the loop index, outputs, elements per 16-byte access) of the per-element
    `lines` of a kernel, which store the outputs `stored` at the loop index, if
    `_vector_loop` can vectorize them; else None."""
    if parts.rank != 1:
        return None
    reads = sorted({m.group(0)[:-4] for line in lines for m in _AT_INDEX.finditer(line)
                    if m.group(1) == "a"})
    stores = [_STORE.match(line) for line in lines]
    outs = [f"o{m.group(1)}" for m in stores if m]
    values = " ".join(m.group(2) if m else line for line, m in zip(lines, stores))
    if sorted(outs) != sorted(stored) or _OUTPUT.search(values):
        return None                   # an output stored twice, elsewhere, or read
    count = _common_lanes(parts.graph, reads + outs)
    return (reads, outs, count) if count else None


def _common_lanes(graph, names) -> int:
    """Elements per 16-byte access of the arrays `names` (`a<p>`/`o<p>`, node p of `graph`)
    if they share one itemsize that has vector accesses, else 0."""
    counts = {lanes(graph.nodes[int(name[1:])].dtype) for name in names}
    return counts.pop() if len(counts) == 1 else 0


def _vector_loop(lines: list, reads, outs, count: int) -> list:
    """The statements before the scalar loop over `lines`: the vector loop over
    `count`-element vectors, its lanes in element order, and `start`, where the scalar loop
    begins (after the vector loop's elements)."""
    body = [f"{', '.join(f'x{a[1:]}_{k}' for k in range(count))} = vldg({a}, j)"
            for a in reads]
    for k in range(count):
        lane = []
        for line in lines:
            line = _AT_INDEX.sub(lambda m: f"x{m.group(2)}_{k}" if m.group(1) == "a"
                                 else m.group(0), line)
            store = _STORE.match(line)
            lane.append(f"y{store.group(1)}_{k} = {store.group(2)}" if store else line)
        uses_index = any(re.search(r"\bi0\b", line) for line in lane)
        body += ([f"i0 = j * {count} + {k}" if k else f"i0 = j * {count}"] if uses_index
                 else []) + lane
    body += [f"vstore({o}, j, {', '.join(f'y{o[1:]}_{k}' for k in range(count))})"
             for o in outs]
    aligned = " and ".join(f"aligned16({a})" for a in outs + reads)
    return ["start = cuda.grid(1)", f"if {aligned}:"] + _indent([
        f"vectors = total // {count}",
        "for j in range(start, vectors, cuda.gridsize(1)):"] + _indent(body) + [
        f"start += vectors * {count}"])


# -- reductions ------------------------------------------------------------------------------

class _Reduction:
    """The pieces of a reduction's text: accumulator init, per-element update, merge, store."""

    def __init__(self, parts: KernelParts, simulator: bool):
        lines, red, acc_dtype, out_dtype, axes, flat = parts.reduction()
        self.simulator = simulator
        self.red, self.acc_dtype, self.axes = red, acc_dtype, axes
        self.kept = [d for d in range(parts.rank) if d not in axes]
        # Sums and products fold the value in the accumulator's dtype (float32 -> float64).
        value = [] if red.with_index or acc_dtype.kind == "b" else [f"v = {cast(acc_dtype, 'v')}"]
        self.init = [f"acc = {cast(acc_dtype, red.init(acc_dtype))}", f"idx = {BIG_INDEX}"]
        # `step` folds `v` (the last line) in; `update` also computes what `v` needs.
        self.step = lines[-1:] + value + ([f"k = {flat}"] if red.with_index else []) + \
            red.update.split("\n")
        self.update = lines[:-1] + self.step
        merge = red.merge.split("\n")
        if red.with_index:
            # Partials come out of index order: on equal values (or both NaN) the smaller
            # index wins, as NumPy returns the first.
            merge = ["if idx2 < idx and (acc2 == acc or (acc2 != acc2 and acc != acc)):",
                     "    idx = idx2", "else:"] + _indent(merge)
        self.merge = merge
        # No element beat the init (argmax of all-False or all -inf): NumPy's first index.
        self.result = f"idx if idx != {BIG_INDEX} else 0" if red.with_index else \
            cast(out_dtype, "acc")
        self.store = parts.store(parts.kernel.reduce, [f"i{d}" for d in self.kept], self.result)

    def shared(self) -> list:
        return [f"sacc = cuda.shared.array({MAX_THREADS}, {nb_type(self.acc_dtype)})",
                f"sidx = cuda.shared.array({MAX_THREADS}, nbt.int64)",
                "t = cuda.threadIdx.x"]

    def tree(self) -> list:
        """Merge the block's accumulators into thread 0's `acc`/`idx` (blockDim: a power of
        two, at most MAX_THREADS; on a GPU at least one warp). Every thread of the block must
        reach it: it has barriers. It ends with one, so the shared arrays may be reused."""
        return self._shared_tree() if self.simulator else self._warp_tree()

    def _warp_tree(self) -> list:
        """Warp shuffles: each warp folds its 32 accumulators into its lane 0 (no barrier),
        the warps' results go through shared memory, and warp 0 folds those. Two barriers,
        against log2(blockDim) for the shared-memory tree."""
        index = [f"    idx2 = {self._shuffle('idx')}"] if self.red.with_index else []
        fold = [
            "off = 16",
            "while off > 0:",
            f"    acc2 = {self._shuffle('acc')}",
        ] + index + _indent(self.merge) + [
            "    off = off // 2",
        ]
        return fold + [
            "if (t & 31) == 0:",
            "    sacc[t >> 5] = acc",
            "    sidx[t >> 5] = idx",
            "cuda.syncthreads()",
            "if t < 32:",
            "    if t < cuda.blockDim.x >> 5:",
            "        acc = sacc[t]",
            "        idx = sidx[t]",
            "    else:",
        ] + _indent(self.init, 2) + _indent(fold) + [
            "cuda.syncthreads()",
        ]

    def _shuffle(self, name: str) -> str:
        """`name` of lane (this lane + off) of the warp. Numba shuffles 32/64-bit signed
        ints and floats: other dtypes travel as int32/int64 and are converted back, complex
        numbers as their two components."""
        d = self.acc_dtype if name == "acc" else np.dtype(np.int64)
        call = "cuda.shfl_down_sync(0xFFFFFFFF, {}, off)"
        if d.kind == "c":
            parts = (call.format(f"{name}.{part}") for part in ("real", "imag"))
            return cast(d, f"complex({', '.join(parts)})")
        if d.kind == "b":
            return call.format(f"int32({name})") + " != 0"
        if d.kind == "f" or (d.kind == "i" and d.itemsize >= 4):
            return call.format(name)
        via = "int64" if d.itemsize >= 4 else "int32"
        return cast(d, call.format(f"{via}({name})"))

    def _shared_tree(self) -> list:
        """The simulator's tree (it has no warp shuffles): halve the active threads."""
        return [
            "sacc[t] = acc",
            "sidx[t] = idx",
            "cuda.syncthreads()",
            "s = cuda.blockDim.x // 2",
            "while s > 0:",
            "    if t < s:",
            "        acc2 = sacc[t + s]",
            "        idx2 = sidx[t + s]",
        ] + _indent(self.merge, 2) + [
            "        sacc[t] = acc",
            "        sidx[t] = idx",
            "    cuda.syncthreads()",
            "    s = s // 2",
        ]


def _reduction(parts: KernelParts, simulator: bool) -> list:
    r = _Reduction(parts, simulator)
    if not r.kept:
        return _full_reduction(parts, r, simulator)
    kept, axes = r.kept, list(r.axes)
    store = r.store
    # One block per output element.
    body = r.shared() + [
        f"outer = {_product(kept)}",
        f"inner = {_product(axes)}",
        "for g in range(cuda.blockIdx.x, outer, cuda.gridDim.x):",
    ] + _indent(_unravel("g", kept) + r.init + [
        "for h in range(t, inner, cuda.blockDim.x):",
    ] + _indent(_unravel("h", axes) + r.update) + r.tree() + [
        "if t == 0:",
        "    " + store,
        "cuda.syncthreads()",
    ])
    out = _def("block", parts.args, body, simulator)
    # One thread per output element.
    body = [
        f"outer = {_product(kept)}",
        f"inner = {_product(axes)}",
        "for g in range(cuda.grid(1), outer, cuda.gridsize(1)):",
    ] + _indent(_unravel("g", kept) + r.init + [
        "for h in range(inner):",
    ] + _indent(_unravel("h", axes) + r.update) + [store])
    out += _def("thread", parts.args, body, simulator)
    return out


def _full_reduction(parts: KernelParts, r: _Reduction, simulator: bool) -> list:
    rank = parts.rank
    args = parts.args[:1] + ["pacc", "pidx"] + parts.args[1:]
    # Each thread folds its elements in index order, vectors first (argmax: the first index).
    vector, _ = _vectorized(parts, r.update, [])
    body = r.shared() + [f"total = {_product(range(rank))}"] + r.init + vector + [
        "for f in range(start, total, cuda.gridsize(1)):",
    ] + _indent(_unravel("f", range(rank)) + r.update) + r.tree() + [
        "if t == 0:",
        "    pacc[cuda.blockIdx.x] = acc",
        "    pidx[cuda.blockIdx.x] = idx",
    ]
    out = _def("partial", args, body, simulator)
    body = r.shared() + r.init + [
        "for h in range(t, count, cuda.blockDim.x):",
        "    acc2 = pacc[h]",
        "    idx2 = pidx[h]",
    ] + _indent(r.merge) + r.tree() + [
        "if t == 0:",
        f"    out[0] = {r.result}",
    ]
    out += _def("final", ["pacc", "pidx", "count", "out"], body, simulator)
    return out


# -- row kernels -----------------------------------------------------------------------------
# The phases of a RowKernel share one loop over the rows (the leading `outer` dims); a phase
# reads what earlier phases wrote only at its own row. Values of one phase are named apart by
# the emitter (`p<j>_v..`); the accumulator names are renamed here (their types differ).

_ACCUMULATOR_NAMES = re.compile(r"\b(acc2?|idx2?|sacc|sidx|v|k)\b")


def _phase(lines, j: int) -> list:
    return [_ACCUMULATOR_NAMES.sub(rf"\1_{j}", line) for line in lines]


def _row_lines(parts: KernelParts, outer: int):
    """A phase's value lines split into those that vary only with the row (computed once per
    row, before the element loop) and the rest. Call after `parts.reduction()`."""
    row = set(range(outer))
    pairs = list(zip(parts.lines, parts.line_dims))
    return [l for l, d in pairs if d <= row], [l for l, d in pairs if not d <= row]


def _row(row: RowParts, simulator: bool) -> list:
    """`block`: a block per row (grid-stride over the rows), threads stride over the row's
    elements in every phase. `thread`: a thread per row. The barriers of `block` sit outside
    every per-thread loop and branch, so each thread of a block reaches all of them."""
    outer, rank = row.outer, row.rank
    elements = _unravel("h", range(outer, rank))
    head, block, thread = ["t = cuda.threadIdx.x"] + _row_shared(row), [], []
    for j, parts in enumerate(row.phases):
        if parts.kernel.reduce is not None:
            r = _Reduction(parts, simulator)
            per_row, per_element = _row_lines(parts, outer)
            head += [line for line in _phase(r.shared(), j) if line not in head]
            init, step = _phase(r.init, j), _phase(r.step, j)
            store = _phase([r.store], j)
            lines = per_row + init + ["for h in range(t, inner, cuda.blockDim.x):"] + \
                _indent(elements + per_element + step) + _phase(r.tree(), j) + \
                ["if t == 0:"] + _indent(store)
            thread += per_row + init + ["for h in range(inner):"] + \
                _indent(elements + per_element + step) + store
        elif parts.rank == outer:          # over the rows only: one value per row
            lines = ["if t == 0:"] + _indent(parts.lines)
            thread += parts.lines
        else:
            per_row, per_element = _row_lines(parts, outer)
            lines = per_row + ["for h in range(t, inner, cuda.blockDim.x):"] + \
                _indent(elements + per_element)
            thread += per_row + ["for h in range(inner):"] + _indent(elements + per_element)
        block += _barrier(lines)
    sizes = [f"outer = {_product(range(outer))}", f"inner = {_product(range(outer, rank))}"]
    body = head + sizes + ["for g in range(cuda.blockIdx.x, outer, cuda.gridDim.x):"] + \
        _indent(_unravel("g", range(outer)) + block)
    out = _def("block", row.args, body, simulator)
    body = sizes + ["for g in range(cuda.grid(1), outer, cuda.gridsize(1)):"] + \
        _indent(_unravel("g", range(outer)) + thread)
    out += _def("thread", row.args, body, simulator)
    if _has_exact(row):
        out += _def("exact", row.args, _exact_row(row, simulator), simulator, ROW_BOUNDS)
    return out


# A row value the kernel keeps (`row<pos>`, no buffer: fusion's `RowKernel.rows`) is computed
# by thread 0 in the block variants; it reaches the block's other threads through shared
# memory, after the phase's barrier. The `thread` variant's rows are one thread's variables.

_ROW_STORE = re.compile(r"^(\s*)row(\d+) = ")


def _row_shared(row: RowParts) -> list:
    return [f"srow{p} = cuda.shared.array(1, {nb_type(d)})" for p, d in row.row_dtypes.items()]


def _barrier(lines) -> list:
    """A block's phase `lines`, its barrier, then every thread's read of the row values
    thread 0 stored in the phase (into shared memory)."""
    stored = []

    def shared(m):
        stored.append(m.group(2))
        return f"{m.group(1)}srow{m.group(2)}[0] = "
    lines = [_ROW_STORE.sub(shared, line) for line in lines]
    return lines + ["cuda.syncthreads()"] + [f"row{p} = srow{p}[0]" for p in stored]


# -- row kernels with the row in registers ---------------------------------------------------
# `exact`: a block per row, as `block`, for rows of exactly `row_cache(simulator)` elements
# per thread (the launcher picks the block size). Each thread loads its elements of every
# input the phases read at the element index once, into registers, before the first phase;
# the phases then run over those registers, one unrolled copy of the phase's lines per
# element. DRAM sees each input once per row instead of once per phase, and the loads are
# independent, so they are all in flight at once (the `block` loop waits for one load per
# iteration). There are no guards: measured on an H200 (bench/cuda_rows.py, NOTES "CUDA
# v3"), guarded elements for shorter rows cost registers and ran slower than `block`. With
# unsigned subscripts and no launch bounds (NOTES "CUDA v4"), 16 elements a thread ran a
# 4096-wide softmax in 0.288 ms (40 registers), 8 in 0.318 ms (32); measured again with row
# values in shared memory (NOTES, session 12): 16 in 0.280, 8 in 0.284, within noise.

ROW_CACHE = 8                # elements per thread (a row of 4096 with 512 threads)
ROW_CACHE_SIMULATOR = 4      # small rows under the simulator (a row of 64 with 16 threads)
ROW_CACHE_READS = 4          # inputs kept in registers, at most (ROW_CACHE values each)
ROW_BOUNDS = None            # launch bounds (most threads, fewest blocks an SM holds), or
                             # none: ptxas's own choice ran fastest on the H200 (8 a thread:
                             # 32 registers, 0.32 ms; bounds (1024, 1): 53, 0.43 ms). The
                             # launcher checks that the kernel's registers allow the block.

_READ = re.compile(r"\ba\d+\[")


def row_cache(simulator: bool) -> int:
    """Elements per thread the `exact` row kernel holds in registers."""
    return ROW_CACHE_SIMULATOR if simulator else ROW_CACHE


def _element_reads(lines) -> list:
    """The distinct input reads (`a<p>[...]`) of `lines`, in order of first use."""
    found = []
    for line in lines:
        for start, end in _subscripted(line, _READ):
            if line[start:end] not in found:
                found.append(line[start:end])
    return found


def _split_phases(row: RowParts, simulator: bool) -> list:
    """Per phase: (kind, its per-row lines, its lines at one element (a reduction's step
    included), the `_Reduction` or None)."""
    out = []
    for j, parts in enumerate(row.phases):
        if parts.kernel.reduce is not None:
            r = _Reduction(parts, simulator)
            per_row, per_element = _row_lines(parts, row.outer)
            out.append(("reduce", per_row, per_element + _phase(r.step, j), r))
        elif parts.rank == row.outer:
            out.append(("row", parts.lines, [], None))
        else:
            out.append(("elements", *_row_lines(parts, row.outer), None))
    return out


def _has_exact(row: RowParts) -> bool:
    """Whether `exact` applies: few inputs read per element, and no conditional reads (a
    gather's other sources may lie outside their shape at this element)."""
    per_element = [line for _, _, lines, _ in _split_phases(row, simulator=True)
                   for line in lines]
    return len(_element_reads(per_element)) <= ROW_CACHE_READS and \
        not any(" else " in line for line in per_element)


_ASSIGNED = re.compile(r"(\w+) = ")
_RENAMED = re.compile(r"\b(?:i(\d+)|\w*v\d+|ld\d+)\b")


def _exact_row(row: RowParts, simulator: bool) -> list:
    outer, rank, slots = row.outer, row.rank, row_cache(simulator)
    phases = _split_phases(row, simulator)
    reads = _element_reads(line for _, _, per_element, _ in phases for line in per_element)
    loads = {read: f"ld{k}" for k, read in enumerate(reads)}
    element_dims = range(outer, rank)
    full = _full_index(rank)
    count, vreads, vouts = _row_vector_plan(row, phases, slots)
    vector_reads = {f"{a}[{full}]": a for a in vreads}
    store_at = _store_at(full)

    def at(lines, u: int) -> list:
        """`lines` at this thread's u-th element: index variables of the element dims, the
        registers and the values the lines define get the suffix _u."""
        defined = {m.group(1) for line in lines if (m := _ASSIGNED.match(line))}

        def sub(m):
            word, dim = m.group(0), m.group(1)
            if dim is not None:
                return f"{word}_{u}" if int(dim) >= outer else word
            return f"{word}_{u}" if word in defined or word.startswith("ld") else word
        return [_RENAMED.sub(sub, line) for line in lines]

    def registers(lines) -> list:
        for read, name in loads.items():
            lines = [line.replace(read, name) for line in lines]
        return lines

    def vector_or_scalar(vector, scalar) -> list:
        """The 16-byte accesses where every vectorized array is aligned, else the scalar
        ones (both over the same elements)."""
        return ["if vec:"] + _indent(vector) + ["else:"] + _indent(scalar) if vector \
            else scalar

    body = ["t = cuda.threadIdx.x"] + _row_shared(row)
    for j, (_, _, _, r) in enumerate(phases):
        if r is not None:
            body += [line for line in _phase(r.shared(), j) if line not in body]
    body += [f"outer = {_product(range(outer))}"]
    if count > 1:
        body += [f"vectors = {_product(element_dims)} // {count}",
                 "vec = " + " and ".join(f"aligned16({a})" for a in vouts + vreads)]
    body += ["for g in range(cuda.blockIdx.x, outer, cuda.gridDim.x):"]
    head = _unravel("g", range(outer))
    for u in range(slots):
        chunk, lane = divmod(u, count)
        element = f"t + {u} * cuda.blockDim.x" if count == 1 else \
            f"(t + {chunk} * cuda.blockDim.x) * {count} + {lane}"
        head += [f"h_{u} = {element}"] + at(_unravel(f"h_{u}", element_dims), u)
    chunks = range(slots // count) if count > 1 else ()
    head += [f"j_{c} = g * vectors + t + {c} * cuda.blockDim.x" for c in chunks]
    vector, scalar = [], []
    for read, name in loads.items():
        lines = [line for u in range(slots) for line in at([f"{name} = {read}"], u)]
        if read in vector_reads:
            vector += [", ".join(f"{name}_{c * count + k}" for k in range(count)) +
                       f" = vldg({vector_reads[read]}, j_{c})" for c in chunks]
            scalar += lines
        else:
            head += lines
    head += vector_or_scalar(vector, scalar)
    phase_lines = []
    for j, (kind, per_row, per_element, r) in enumerate(phases):
        if kind == "row":
            lines = ["if t == 0:"] + _indent(per_row)
        else:
            lines = per_row + (_phase(r.init, j) if r is not None else [])
            element, stored = [], []
            for line in registers(per_element):
                m = store_at.match(line)
                if m and f"o{m.group(1)}" in vouts:
                    stored.append(m.group(1))
                    line = f"sv{m.group(1)} = {m.group(2)}"
                element.append(line)
            for u in range(slots):
                lines += at(element, u)
            lines += vector_or_scalar(
                [f"vstore(o{p}, j_{c}, " + ", ".join(f"sv{p}_{c * count + k}"
                                                     for k in range(count)) + ")"
                 for p in stored for c in chunks],
                [line for p in stored for u in range(slots)
                 for line in at([f"o{p}[{full}] = sv{p}_{u}"], u)])
            if r is not None:
                lines += _phase(r.tree(), j) + ["if t == 0:"] + _indent(_phase([r.store], j))
        phase_lines += _barrier(lines)
    return body + _indent(head + phase_lines)


# `exact` with 16-byte accesses: thread t's elements are `count`-element vectors t, t + B,
# ... of the row (B threads), so each vector is one `vldg` / `vstore` (vector.py) of an array
# read or written at the element index; the scalar accesses for misaligned arrays (views)
# visit the same elements, so every input reduces in the same order either way.

def _full_index(rank: int) -> str:
    return ", ".join(f"i{d}" for d in range(rank))


def _store_at(full: str):
    """A line storing an output at the subscript `full`: (its position, the value)."""
    return re.compile(rf"^o(\d+)\[{full}\] = (.*)$")


def _row_vector_plan(row: RowParts, phases, slots: int):
    """(elements per 16-byte access, inputs read at the element index, outputs stored there)
    for `exact`: every such array one itemsize, `slots` a multiple of its lanes, each output
    stored once and never read; else (1, [], [])."""
    full = _full_index(row.rank)
    lines = [line for _, per_row, per_element, _ in phases for line in per_row + per_element]
    reads = sorted({m.group(1) for line in lines
                    for m in re.finditer(rf"\b(a\d+)\[{full}\]", line)})
    store = _store_at(full)
    outs = [f"o{m.group(1)}" for line in lines if (m := store.match(line))]
    mentions = [m.group(1) for line in lines for m in re.finditer(r"\b(o\d+)\[", line)]
    outs = [o for o in outs if mentions.count(o) == 1]
    count = _common_lanes(row.phases[0].graph, reads + outs)
    if count < 2 or slots % count:
        return 1, [], []
    return count, reads, outs


# -- matmul (the fallback when CuPy is missing) ----------------------------------------------

def matmul_source(dtype, simulator: bool, tf32: bool = False) -> str:
    """A tiled shared-memory `matmul(a, b, out)` over 2-D arrays of `dtype` (any strides).
    `tf32` (float32 only): operands are rounded to TF32 (10 mantissa bits, to nearest) as
    they enter shared memory, as TF32 tensor cores do; products accumulate in float32."""
    tile = 8 if simulator else 16
    if tf32 and dtype == np.float32:
        return _tf32_matmul(matmul_source(dtype, simulator), simulator)
    acc = dtype if dtype.kind in "fc" else \
        np.dtype(np.uint64 if dtype.kind == "u" else np.int64)
    acc_name, name = acc.type.__name__, dtype.type.__name__
    body = [
        f"sa = cuda.shared.array(({tile}, {tile}), {nb_type(acc)})",
        f"sb = cuda.shared.array(({tile}, {tile}), {nb_type(acc)})",
        "tx = cuda.threadIdx.x",
        "ty = cuda.threadIdx.y",
        f"row = cuda.blockIdx.y * {tile} + ty",
        f"col = cuda.blockIdx.x * {tile} + tx",
        "m = a.shape[0]",
        "kk = a.shape[1]",
        "nn = b.shape[1]",
        f"acc = {acc_name}(0)",
        f"for t0 in range(0, kk, {tile}):",
        f"    sa[ty, tx] = {acc_name}(a[row, t0 + tx]) if row < m and t0 + tx < kk "
        f"else {acc_name}(0)",
        f"    sb[ty, tx] = {acc_name}(b[t0 + ty, col]) if col < nn and t0 + ty < kk "
        f"else {acc_name}(0)",
        "    cuda.syncthreads()",
        f"    for j in range({tile}):",
        "        acc += sa[ty, j] * sb[j, tx]",
        "    cuda.syncthreads()",
        "if row < m and col < nn:",
        f"    out[row, col] = {name}(acc)",
    ]
    return "\n".join([prelude(simulator), f"TILE = {tile}", ""]
                     + _def("matmul", ["a", "b", "out"], body, simulator)) + "\n"


def _tf32_matmul(source: str, simulator: bool) -> str:
    """The float32 tiled matmul with TF32 operands. Rounding by Veltkamp splitting: with
    c = x * (2**13 + 1), c - (c - x) is x rounded to 24 - 13 = 11 significant bits, TF32's
    precision. It needs strict IEEE arithmetic: the product is `mul.rn`, which ptxas may not
    contract with the subtraction into an FMA (that would skip the rounding of c)."""
    product = "x * float32(8193.0)" if simulator else "libdevice.fmul_rn(x, float32(8193.0))"
    helper = "\n".join([
        "",
        "@cuda.jit(device=True)" if simulator else "@cuda.jit(device=True, inline=\"always\")",
        "def tf32(x):",
        f"    c = float32({product})",
        "    if c - c != 0:                   # x * 8193 overflowed (or x is inf/nan)",
        "        return x",
        "    return float32(c - float32(c - x))",
        "",
    ])
    head, sep, rest = source.partition("TILE = ")
    rest = rest.replace("float32(a[row, t0 + tx])", "tf32(a[row, t0 + tx])")
    rest = rest.replace("float32(b[t0 + ty, col])", "tf32(b[t0 + ty, col])")
    return head + helper + "\n" + sep + rest
