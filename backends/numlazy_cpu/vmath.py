"""SIMD float32 transcendentals for "fast" CPU kernels: glibc's libmvec, 8 lanes of AVX2.

Numba calls the scalar libm `sinf`/`expf` once per element, and LLVM cannot vectorize a loop
around them: the float32 chain on 16 cores spent most of its time in `sinf` and ran 5x NumPy
eager, whose float32 sin is SIMD (bench/NOTES.md). glibc ships vector versions of these
functions (libmvec, maximum error 4 ULP, like NumPy's SIMD ones); `interleave` rewrites a
kernel's innermost loops to compute 8 elements at a time, statement by statement, so that
each call of such a function takes all 8 arguments in one AVX2 register:

    for i0 in prange(n[0]):                for g in prange(n[0] // 8):
        v0 = float32(sin(a0[i0]))              i0_L0 = (g * 8 + 0) & NONNEG  ...
        o1[i0] = v0 * 2              ->        v0_L0, ..., v0_L7 = vsin8(a0[i0_L0], ..., a0[i0_L7])
                                               o1[i0_L0] = v0_L0 * 2  ...
                                           for i0 in range(n[0] // 8 * 8, n[0]):
                                               (the loop as it was: the last < 8 elements)

Lanes run each statement in element order, so a reduction's accumulator still sees its
values in the original order. Only "fast" kernels use it (CpuBackend.kernel_source), and only
where Numba compiles for the host CPU and that CPU has AVX2; everywhere else the loops stay
scalar.
"""
from __future__ import annotations

import platform
import re

LANES = 8
# The vocabulary name -> libmvec's AVX2 8-lane float32 version (x86-64 vector ABI names).
FUNCTIONS = {"sin": "_ZGVdN8v_sinf", "cos": "_ZGVdN8v_cosf", "exp": "_ZGVdN8v_expf",
             "log": "_ZGVdN8v_logf"}
IMPORT = "from numlazy_cpu.vmath import " + ", ".join(f"v{name}8" for name in sorted(FUNCTIONS))


def _load() -> bool:
    """libmvec loaded into the process, and kernels compiled for an AVX2 host (the vector
    arguments travel in AVX registers: a kernel built for another CPU would pass them
    differently)."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    import llvmlite.binding as ll
    from numba.core import config
    if config.CPU_NAME not in (None, "host") or not ll.get_host_cpu_features().get("avx2"):
        return False
    try:
        ll.load_library_permanently("libmvec.so.1")
    except RuntimeError:
        return False
    return True


AVAILABLE = _load()


def _vector_function(name: str, symbol: str):
    """An intrinsic `v<name>8(x0, ..., x7)`: the 8 float32 results of `symbol` as a tuple."""
    from llvmlite import ir
    from numba import types
    from numba.core.extending import intrinsic

    vector = ir.VectorType(ir.FloatType(), LANES)

    def impl(typingctx, x0, x1, x2, x3, x4, x5, x6, x7):       # LANES arguments
        args = (x0, x1, x2, x3, x4, x5, x6, x7)
        if not all(isinstance(a, types.Number) for a in args):
            return None
        signature = types.UniTuple(types.float32, LANES)(*args)

        def codegen(context, builder, sig, values):
            packed = ir.Constant(vector, ir.Undefined)
            for k, (value, value_type) in enumerate(zip(values, sig.args)):
                value = context.cast(builder, value, value_type, types.float32)
                packed = builder.insert_element(packed, value, ir.Constant(ir.IntType(32), k))
            fn = builder.module.globals.get(symbol) or ir.Function(
                builder.module, ir.FunctionType(vector, [vector]), symbol)
            result = builder.call(fn, [packed])
            return context.make_tuple(builder, sig.return_type, [
                builder.extract_element(result, ir.Constant(ir.IntType(32), k))
                for k in range(LANES)])
        return signature, codegen
    impl.__name__ = f"v{name}8"
    return intrinsic(impl)


if AVAILABLE:                     # vcos8, vexp8, ...: the names IMPORT brings into kernels
    globals().update({f"v{name}8": _vector_function(name, symbol)
                      for name, symbol in FUNCTIONS.items()})


# -- the loop rewrite ------------------------------------------------------------------------

_LOOP = re.compile(r"^(\s*)for (\w+) in (prange|range)\((.*)\):$")
_ASSIGN = re.compile(r"^\s*(\w+) ([-+*|&]?=) (.*)$")
_CALL = re.compile(r"^(\w+) = float32\((" + "|".join(FUNCTIONS) + r")\((.*)\)\)$")
_CONTROL = re.compile(r"^\s*(for|if|elif|else|while)\b")
_STORE = re.compile(r"^\w+\[.*\] = ")


def interleave(lines: list) -> list:
    """`lines` (a kernel's loops) with every innermost loop that calls a vector function on
    float32 values computed 8 elements at a time."""
    out, k = [], 0
    while k < len(lines):
        m = _LOOP.match(lines[k])
        body_end = k + 1
        if m:
            depth = len(m.group(1))
            while body_end < len(lines) and len(lines[body_end]) - \
                    len(lines[body_end].lstrip()) > depth:
                body_end += 1
            rewritten = _interleaved(m, [line.strip() for line in lines[k + 1:body_end]],
                                     lines[body_end:])
            if rewritten is not None:
                out += rewritten
                k = body_end
                continue
        out.append(lines[k])
        k += 1
    return out


def _interleaved(loop, body: list, after: list):
    """The lanes and the tail for one loop, or None if it does not qualify: a body of plain
    statements with a vector call, each accumulator updated in one statement only, and no
    per-element value read after the loop (`after`: the lines that follow it)."""
    indent, var, kind, bounds = loop.groups()
    if any(_CONTROL.match(line) for line in body) or not any(_CALL.match(s) for s in body):
        return None
    local = _lane_local(var, body)
    if local is None or any(_read_first(name, after) for name in local):
        return None
    lo, hi = _bounds(bounds)
    first, count = ("", hi) if lo == "0" else (f"{lo} + ", f"({hi} - {lo})")
    pattern = re.compile(r"\b(" + "|".join(sorted(local, key=len, reverse=True)) + r")\b")

    def lane(line: str, j: int) -> str:
        return pattern.sub(lambda m: f"{m.group(1)}_L{j}", line)

    lanes = [f"{var}_L{j} = ({first}g * {LANES} + {j}) & NONNEG" for j in range(LANES)]
    for line in body:
        call = _CALL.match(line)
        if call:
            name, fn, arg = call.groups()
            lanes.append(f"{', '.join(f'{name}_L{j}' for j in range(LANES))} = v{fn}8("
                         f"{', '.join(lane(arg, j) for j in range(LANES))})")
        else:
            lanes += [lane(line, j) for j in range(LANES)]
    step = "    "
    return [f"{indent}for g in {kind}({count} // {LANES}):"] + \
        [indent + step + line for line in lanes] + \
        [f"{indent}for {var} in range({first}{count} // {LANES} * {LANES}, {hi}):"] + \
        [indent + step + line for line in body]


def _lane_local(var: str, body: list):
    """The names each lane keeps its own copy of: the loop variable and every name the body
    assigns before it reads it. The others that it assigns carry across elements (a
    reduction's accumulator): None unless each appears in one statement only, which then
    runs for the lanes in element order."""
    local, carried = {var}, set()
    for k, line in enumerate(body):
        m = _ASSIGN.match(line)
        if m is None:
            if not _STORE.match(line):
                return None                   # neither an assignment nor a store
            continue
        name, op, value = m.groups()
        if name in local or name in carried:
            continue
        mentioned = re.compile(rf"\b{name}\b")
        if op == "=" and not mentioned.search(value) and \
                not any(mentioned.search(earlier) for earlier in body[:k]):
            local.add(name)
        else:
            carried.add(name)
    for name in carried:
        if sum(bool(re.search(rf"\b{name}\b", line)) for line in body) != 1:
            return None
    return local


def _read_first(name: str, lines: list) -> bool:
    """Whether `lines` read `name` before they assign it (a loop header assigns its
    variable)."""
    mentioned = re.compile(rf"\b{name}\b")
    for line in lines:
        if not mentioned.search(line):
            continue
        loop = _LOOP.match(line)
        if loop:
            return loop.group(2) != name or bool(mentioned.search(loop.group(4)))
        m = _ASSIGN.match(line)
        return not (m and m.group(1) == name and m.group(2) == "=" and
                    not mentioned.search(m.group(3)))
    return False


def _bounds(text: str) -> tuple:
    """(lo, hi) of a `range(...)` argument text."""
    depth = 0
    for k, c in enumerate(text):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(c, 0)
        if c == "," and depth == 0:
            return text[:k].strip(), text[k + 1:].strip()
    return "0", text.strip()
