"""SIMD float32 transcendentals for CPU kernels: glibc's libmvec, 8 lanes of AVX2.

Numba calls the scalar libm `sinf`/`expf` once per element, and LLVM cannot vectorize a loop
around them: the float32 chain on 16 cores spent most of its time in `sinf` and ran 5x NumPy
eager, whose float32 sin is SIMD (bench/NOTES.md). glibc ships vector versions of these
functions (libmvec); `interleave` rewrites a kernel's innermost loops to compute 8 elements at
a time, statement by statement, so that each call of such a function takes all 8 arguments
in AVX2 registers:

    for i0 in prange(n[0]):                for g in prange(n[0] // 8):
        v0 = float32(sin(a0[i0]))              i0_L0 = (g * 8 + 0) & NONNEG  ...
        o1[i0] = v0 * 2              ->        v0_L0, ..., v0_L7 = wsin8(a0[i0_L0], ..., a0[i0_L7])
                                               o1[i0_L0] = v0_L0 * 2  ...
                                           for i0 in range(n[0] // 8 * 8, n[0]):
                                               (the loop, its calls through the same functions)

Two families of functions, by precision:

- "fast" kernels call `vsin8` and co.: libmvec's float32 versions, 8 lanes a call, at most
  4 ULP (like NumPy's own SIMD float32 functions).
- "ieee" kernels call `wsin8` and co.: each float32 argument widened to float64, computed by
  libmvec's 4-lane float64 versions (at most 4 ULP of a float64, that is 2^-27 ULP of a
  float32) or, for exp, inline (`_exp_lanes`), and the result rounded to float32 once. That
  is within 0.5 ULP plus 2^-26 ULP of the exact value: as accurate as glibc's scalar `sinf`,
  which also computes in float64 (the float32 chain on 16 cores: 29.4 -> 12.6 ms).

Lanes run each statement in element order. A sum or product that starts at its identity
just before the loop runs in 8 accumulators, lane j taking elements j, j + 8, ..., combined
pairwise after the loop: the order a sum without calls has (render.py, `_lanes`), so "ieee"
sums are deterministic and added in one order whatever they add. Other accumulators see
their values in element order. The rewrite is used only where Numba compiles for the host
CPU and that CPU has AVX2; everywhere else the loops stay scalar.
"""
from __future__ import annotations

import hashlib
import platform
import re

LANES = 8
# The vocabulary name -> libmvec's AVX2 versions (x86-64 vector ABI names): 8 float32 lanes
# (the "fast" `v` functions) and 4 float64 lanes (the "ieee" `w` functions, computed wide;
# None: computed inline, `_WIDE`).
FUNCTIONS = {"sin": ("_ZGVdN8v_sinf", "_ZGVdN4v_sin"), "cos": ("_ZGVdN8v_cosf", "_ZGVdN4v_cos"),
             "exp": ("_ZGVdN8v_expf", None), "log": ("_ZGVdN8v_logf", "_ZGVdN4v_log")}
# The import line of kernels that call them. It names this file's hash: Numba's disk cache
# knows a kernel by its source, and a change here must not reuse kernels compiled before it.
IMPORT = "from numlazy_cpu.vmath import " + ", ".join(
    f"{family}{name}8" for family in "vw" for name in sorted(FUNCTIONS)) + \
    f"  # vmath {hashlib.sha1(open(__file__, 'rb').read()).hexdigest()[:12]}"


def _load() -> bool:
    """libmvec loaded into the process, and kernels compiled for an AVX2 host with FMA (the
    vector arguments travel in AVX registers: a kernel built for another CPU would pass them
    differently; the inline exp uses fused multiply-adds)."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    import llvmlite.binding as ll
    from numba.core import config
    features = ll.get_host_cpu_features()
    if config.CPU_NAME not in (None, "host") or not (features.get("avx2") and
                                                     features.get("fma")):
        return False
    try:
        ll.load_library_permanently("libmvec.so.1")
    except RuntimeError:
        return False
    return all(ll.address_of_symbol(symbol) for symbols in FUNCTIONS.values()
               for symbol in symbols if symbol)     # an older glibc may lack one: use none


AVAILABLE = _load()


def _vector_function(name: str, symbol: str, wide: bool):
    """An intrinsic `v<name>8(x0, ..., x7)` (or `w<name>8` if `wide`): the 8 float32 results
    of `name` as a tuple. `v`: one call of libmvec's `symbol` on the 8 float32 lanes. `w`: the
    lanes widened to float64, computed by `_WIDE[name]` (inline) or by two calls of `symbol` on
    4 float64 lanes, and each result rounded to float32 once."""
    from llvmlite import ir
    from numba import types
    from numba.core.extending import intrinsic

    floats, doubles = ir.VectorType(ir.FloatType(), LANES), ir.VectorType(ir.DoubleType(), LANES)

    def call(builder, x, vector):
        fn = builder.module.globals.get(symbol) or ir.Function(
            builder.module, ir.FunctionType(vector, [vector]), symbol)
        return builder.call(fn, [x])

    def compute(builder, x):
        if not wide:
            return call(builder, x, floats)
        x = builder.fpext(x, doubles)
        if name in _WIDE:
            y = _WIDE[name](builder, x)
        else:                                     # libmvec: 4 float64 lanes a call
            half, h = ir.VectorType(ir.DoubleType(), LANES // 2), LANES // 2
            lo, hi = (call(builder, builder.shuffle_vector(x, x, _indices(range(a, a + h))), half)
                      for a in (0, h))
            y = builder.shuffle_vector(lo, hi, _indices(range(LANES)))
        return builder.fptrunc(y, floats)

    def impl(typingctx, x0, x1, x2, x3, x4, x5, x6, x7):       # LANES arguments
        args = (x0, x1, x2, x3, x4, x5, x6, x7)
        if not all(isinstance(a, types.Number) for a in args):
            return None
        signature = types.UniTuple(types.float32, LANES)(*args)

        def codegen(context, builder, sig, values):
            x = ir.Constant(floats, ir.Undefined)
            for k, (value, value_type) in enumerate(zip(values, sig.args)):
                x = builder.insert_element(x, context.cast(builder, value, value_type,
                                                           types.float32), _index(k))
            y = compute(builder, x)
            return context.make_tuple(builder, sig.return_type, [
                builder.extract_element(y, _index(k)) for k in range(LANES)])
        return signature, codegen
    impl.__name__ = f"{'w' if wide else 'v'}{name}8"
    return intrinsic(impl)


def _index(k: int):
    from llvmlite import ir
    return ir.Constant(ir.IntType(32), k)


def _indices(ks):
    from llvmlite import ir
    return ir.Constant(ir.VectorType(ir.IntType(32), len(ks)), [_index(k) for k in ks])


# -- exp in float64 lanes, inline ---------------------------------------------------------------
# libmvec's float64 exp is exact to 4 ULP of a float64, far more than a float32 result needs,
# and it was most of the "ieee" float32 row softmax: 9.1 ms, 3.9 without the exp (2048^2, 2
# cores). This one takes it to 6.9 ms (bench/NOTES.md, session 14). For float32 arguments,
# with k = round(x / ln2) and r = x - k ln2:
#   exp(x) = 2^k e^r,  |r| <= ln2 / 2,  |k| <= 216,
# e^r by its minimax polynomial of degree 8 on |r| <= ln2 / 2 (EXP_POLY: relative error
# 7.8e-13, 1e-5 of a float32 ULP; the Taylor polynomial of degree 9 it replaced was off by up
# to 6.9e-12 and cost one more multiply-add: row softmax 2048^2, 2 cores, 7.29 -> 7.11 ms;
# degree 7 was 6.8 ms but off by 4e-11, which rounds ~0.05% of results wrongly) in fused
# multiply-adds, 2^k from its bits. Arguments are clamped to +-150 first (every float32
# result beyond is 0 or inf, and 2^k stays a normal float64); NaN passes through the
# arithmetic. The float32 result is rounded once, so it is within 0.50001 ULP.

def _exp_constants():
    """(ln2 high part with 11 zero low bits: k ln2_hi is exact for |k| < 2^11, the low part,
    1/ln2), from a 40-digit ln 2."""
    import decimal
    import struct
    ln2 = decimal.Context(prec=40).ln(decimal.Decimal(2))
    bits = struct.unpack("<Q", struct.pack("<d", float(ln2)))[0] & ~((1 << 11) - 1)
    hi = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return hi, float(ln2 - decimal.Decimal(hi)), float(1 / ln2)


LN2_HI, LN2_LO, INV_LN2 = _exp_constants()
SHIFTER = 1.5 * 2.0 ** 52       # t = x/ln2 + SHIFTER keeps round(x/ln2) in t's low bits
# The coefficients of r^0 ... r^8, from a Remez exchange on relative error
# (tests/unit/test_cpu_vmath.py checks the bound).
EXP_POLY = (0.9999999999997624, 0.9999999999806226, 0.5000000000618164, 0.16666666885450274,
            0.041666664220342736, 0.00833326703147751, 0.0013889178603013284,
            0.00019915422212068342, 2.4727233765516312e-05)


def _exp_lanes(builder, x):
    """exp of a vector of float64 values (see above)."""
    from llvmlite import ir

    def const(value, vector_type=x.type):
        return ir.Constant(vector_type, [ir.Constant(vector_type.element, value)] *
                           vector_type.count)

    name = f"llvm.fma.v{x.type.count}f64"         # (llvmlite's declare_intrinsic: scalars only)
    fma = builder.module.globals.get(name) or ir.Function(
        builder.module, ir.FunctionType(x.type, [x.type] * 3), name)

    def mul_add(a, b, c):
        return builder.call(fma, [a, b, c])

    x = builder.select(builder.fcmp_ordered(">", x, const(150.0)), const(150.0), x)
    x = builder.select(builder.fcmp_ordered("<", x, const(-150.0)), const(-150.0), x)
    t = mul_add(x, const(INV_LN2), const(SHIFTER))
    k = builder.fsub(t, const(SHIFTER))                       # an integer, exactly
    r = mul_add(k, const(-LN2_HI), x)         # exact: LN2_HI's zero bits, and x a float32
    r = mul_add(k, const(-LN2_LO), r)
    p = const(EXP_POLY[-1])
    for c in reversed(EXP_POLY[:-1]):                         # Horner's scheme
        p = mul_add(p, r, const(c))
    ints = ir.VectorType(ir.IntType(64), x.type.count)
    k_bits = builder.sub(builder.bitcast(t, ints), builder.bitcast(const(SHIFTER), ints))
    scale = builder.shl(builder.add(k_bits, const(1023, ints)), const(52, ints))
    return builder.fmul(p, builder.bitcast(scale, x.type))     # times 2^k: exact


_WIDE = {"exp": _exp_lanes}


if AVAILABLE:            # vsin8, wsin8, vexp8, ...: the names IMPORT brings into kernels
    globals().update({f"{family}{name}8": _vector_function(name, symbols[wide], wide)
                      for name, symbols in FUNCTIONS.items()
                      for wide, family in ((False, "v"), (True, "w"))})


# -- the loop rewrite ------------------------------------------------------------------------

_LOOP = re.compile(r"^(\s*)for (\w+) in (prange|range)\((.*)\):$")
_ASSIGN = re.compile(r"^\s*(\w+) ([-+*|&]?=) (.*)$")
_CALL = re.compile(r"^(\w+) = float32\((" + "|".join(FUNCTIONS) + r")\((.*)\)\)$")
_CONTROL = re.compile(r"^\s*(for|if|elif|else|while)\b")
_STORE = re.compile(r"^\w+\[.*\] = ")


def interleave(lines: list, fast: bool) -> list:
    """`lines` (a kernel's loops) with every innermost loop that calls a vector function on
    float32 values computed 8 elements at a time: with the `v` functions if `fast`, else with
    the `w` ones."""
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
                                     out, lines[body_end:], "v" if fast else "w")
            if rewritten is not None:
                out += rewritten
                k = body_end
                continue
        out.append(lines[k])
        k += 1
    return out


def _interleaved(loop, body: list, before: list, after: list, family: str):
    """The lanes and the tail for one loop, or None if it does not qualify: a body of plain
    statements with a vector call, each accumulator updated in one statement only, and no
    per-element value read after the loop (`before`, `after`: the lines around it)."""
    indent, var, kind, bounds = loop.groups()
    if any(_CONTROL.match(line) for line in body) or not any(_CALL.match(s) for s in body):
        return None
    local = _lane_local(var, body)
    if local is None or any(_read_first(name, after) for name in local):
        return None
    split = _split_accumulators(body, before, indent)
    lo, hi = _bounds(bounds)
    first, count = ("", hi) if lo == "0" else (f"{lo} + ", f"({hi} - {lo})")
    pattern = re.compile(r"\b(" + "|".join(sorted(local, key=len, reverse=True)) + r")\b")

    def lane(line: str, j: int) -> str:
        return pattern.sub(lambda m: f"{m.group(1)}_L{j}", line)

    # The tail (the last < 8 elements) calls the same vector function, its argument in every
    # lane, so that a value's result does not depend on where it sits (the scalar `sinf` is
    # 1 ULP off the `w` result for ~1% of arguments).
    lanes = [f"{var}_L{j} = ({first}g * {LANES} + {j}) & NONNEG" for j in range(LANES)]
    tail = []
    for line in body:
        call = _CALL.match(line)
        if call:
            name, fn, arg = call.groups()
            lanes.append(f"{', '.join(f'{name}_L{j}' for j in range(LANES))} = {family}{fn}8("
                         f"{', '.join(lane(arg, j) for j in range(LANES))})")
            tail += [f"{name}_x = {arg}",
                     f"{name} = {family}{fn}8({', '.join([f'{name}_x'] * LANES)})[0]"]
        elif line in split:                     # acc += v: lane j into acc_A<j>
            name, op, value = _ASSIGN.match(line).groups()
            lanes += [f"{name}_A{j} {op} {lane(value, j)}" for j in range(LANES)]
            tail.append(line)
        else:
            lanes += [lane(line, j) for j in range(LANES)]
            tail.append(line)
    step = "    "
    starts, merges = [], []
    for name, op, init in split.values():
        accumulators = [f"{name}_A{j}" for j in range(LANES)]
        starts += [f"{indent}{a} = {init}" for a in accumulators]
        merges.append(f"{indent}{name} {op} {pairwise(accumulators, op[0])}")
    return starts + [f"{indent}for g in {kind}({count} // {LANES}):"] + \
        [indent + step + line for line in lanes] + merges + \
        [f"{indent}for {var} in range({first}{count} // {LANES} * {LANES}, {hi}):"] + \
        [indent + step + line for line in tail]


# An accumulator's start that is the identity of its update: 0, float64(0), 1.0, ...
_IDENTITY = {"+=": re.compile(r"^(\w+\()?0(\.0)?\)?$"),
             "*=": re.compile(r"^(\w+\()?1(\.0)?\)?$")}


def _split_accumulators(body: list, before: list, indent: str) -> dict:
    """{statement: (name, op, init)} for each sum or product `name += v` / `name *= v` of
    the body whose accumulator was set to its identity (`float64(0)`) just before the loop:
    those run in LANES accumulators, lane j adding elements j, j + 8, ..., combined pairwise
    after the loop (`pairwise`), the tail added last: the order `render._lanes` gives a sum
    without calls, and NumPy's pairwise sum also unrolls by 8. Eight chains of float64 adds
    instead of one (4 cycles each add) free the loop for the vector function."""
    split = {}
    for line in body:
        m = _ASSIGN.match(line)
        if m is None or m.group(2) not in _IDENTITY:
            continue
        name = m.group(1)
        mentioned = re.compile(rf"\b{name}\b")
        for earlier in reversed(before):            # back to the enclosing loop's header
            depth = len(earlier) - len(earlier.lstrip())
            if depth < len(indent):
                break
            if mentioned.search(earlier):
                start = _ASSIGN.match(earlier)
                if start and start.groups()[:2] == (name, "=") and depth == len(indent) and \
                        _IDENTITY[m.group(2)].match(start.group(3)):
                    split[line] = (name, m.group(2), start.group(3))
                break
    return split


def pairwise(names: list, op: str) -> str:
    """`names` combined with `op` pairwise, in order: ((a op b) op (c op d)) op ..."""
    while len(names) > 1:
        names = [f"({a} {op} {b})" for a, b in zip(names[::2], names[1::2])]
    return names[0]


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
