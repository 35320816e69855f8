"""SIMD transcendentals for CPU kernels: 8 lanes of AVX2, from glibc's libmvec or inline.

Numba calls the scalar libm `sinf`/`sin` once per element, and LLVM cannot vectorize a loop
around them: the float32 chain on 16 cores spent most of its time in `sinf` and ran 5x NumPy
eager, whose float32 sin is SIMD (bench/NOTES.md). `interleave` rewrites a kernel's innermost
loops to compute 8 elements at a time, statement by statement, so that each call of such a
function takes all 8 arguments in AVX2 registers:

    for i0 in prange(n[0]):                for g in prange(n[0] // 8):
        v0 = float32(sin(a0[i0]))              i0_L0 = (g * 8 + 0) & NONNEG  ...
        o1[i0] = v0 * 2              ->        v0_L0, ..., v0_L7 = wsin8(a0[i0_L0], ..., a0[i0_L7])
                                               o1[i0_L0] = v0_L0 * 2  ...
                                           for i0 in range(n[0] // 8 * 8, n[0]):
                                               (the loop, its calls through the same functions)

Four families of functions, by dtype and precision (FAMILIES):

- float32, "fast": `vsin8` and co., libmvec's float32 versions, 8 lanes a call, at most
  4 ULP (like NumPy's own SIMD float32 functions).
- float32, "ieee": `wsin8` and co., each argument widened to float64, computed by libmvec's
  4-lane float64 versions (at most 4 ULP of a float64, that is 2^-27 ULP of a float32) or,
  for exp, inline (`_exp_lanes`), and the result rounded to float32 once. That is within
  0.5 ULP plus 2^-26 ULP of the exact value: as accurate as glibc's scalar `sinf`, which also
  computes in float64 (the float32 chain on 16 cores: 29.4 -> 12.6 ms).
- float64, "fast": `dsin8` and co., libmvec's float64 versions, at most 4 ULP.
- float64, "ieee": `xsin8` and co., inline (`_IEEE64`), within 1 ULP and mostly correctly
  rounded.

Lanes run each statement in element order. A sum or product that starts at its identity
just before the loop runs in 8 accumulators, lane j taking elements j, j + 8, ..., combined
pairwise after the loop: the order a sum without calls has (render.py, `_lanes`), so "ieee"
sums are deterministic and added in one order whatever they add. Other accumulators see
their values in element order. The rewrite is used only where Numba compiles for the host
CPU and that CPU has AVX2; everywhere else the loops stay scalar.
"""
from __future__ import annotations

import hashlib
import math
import platform
import re

LANES = 8
# The vocabulary name -> libmvec's AVX2 versions (x86-64 vector ABI names): 8 float32 lanes
# and 4 float64 lanes.
FUNCTIONS = {"sin": ("_ZGVdN8v_sinf", "_ZGVdN4v_sin"), "cos": ("_ZGVdN8v_cosf", "_ZGVdN4v_cos"),
             "exp": ("_ZGVdN8v_expf", "_ZGVdN4v_exp"), "log": ("_ZGVdN8v_logf", "_ZGVdN4v_log")}
# The families of lane functions, by (lane dtype, "fast"?), each computing every FUNCTIONS
# name. `v`: libmvec's float32 functions, at most 4 ULP. `w`: float32 arguments computed in
# float64 (libmvec's, or `_WIDE` inline) and rounded once. `d`: libmvec's float64 functions,
# at most 4 ULP. `x`: float64 within 1 ULP, inline (`_IEEE64`).
FAMILIES = {("float32", True): "v", ("float32", False): "w",
            ("float64", True): "d", ("float64", False): "x"}
# The import line of kernels that call them. It names this file's hash: Numba's disk cache
# knows a kernel by its source, and a change here must not reuse kernels compiled before it.
IMPORT = "from numlazy_cpu.vmath import " + ", ".join(
    f"{family}{name}8" for family in FAMILIES.values() for name in sorted(FUNCTIONS)) + \
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


def _vector_function(name: str, family: str):
    """An intrinsic `<family><name>8(x0, ..., x7)`: the 8 results of `name` as a tuple
    (FAMILIES). libmvec's float64 functions take 4 lanes a call."""
    from llvmlite import ir
    from numba import types
    from numba.core.extending import intrinsic

    element, nb_type = (ir.DoubleType(), types.float64) if family in "dx" else \
        (ir.FloatType(), types.float32)
    lanes = ir.VectorType(element, LANES)
    doubles = ir.VectorType(ir.DoubleType(), LANES)

    def call(builder, x, symbol):
        fn = builder.module.globals.get(symbol) or ir.Function(
            builder.module, ir.FunctionType(x.type, [x.type]), symbol)
        return builder.call(fn, [x])

    def wide(builder, x):                         # float64 lanes, 4 a libmvec call
        lo, hi = (call(builder, builder.shuffle_vector(x, x, _indices(range(a, a + 4))),
                       FUNCTIONS[name][1]) for a in (0, 4))
        return builder.shuffle_vector(lo, hi, _indices(range(LANES)))

    def compute(builder, x):
        if family == "v":
            return call(builder, x, FUNCTIONS[name][0])
        if family == "d":
            return wide(builder, x)
        if family == "x":
            return _IEEE64[name](builder, x)
        x = builder.fpext(x, doubles)
        y = _WIDE[name](builder, x) if name in _WIDE else wide(builder, x)
        return builder.fptrunc(y, lanes)

    def impl(typingctx, x0, x1, x2, x3, x4, x5, x6, x7):       # LANES arguments
        args = (x0, x1, x2, x3, x4, x5, x6, x7)
        if not all(isinstance(a, types.Number) for a in args):
            return None
        signature = types.UniTuple(nb_type, LANES)(*args)

        def codegen(context, builder, sig, values):
            x = ir.Constant(lanes, ir.Undefined)
            for k, (value, value_type) in enumerate(zip(values, sig.args)):
                x = builder.insert_element(x, context.cast(builder, value, value_type,
                                                           nb_type), _index(k))
            y = compute(builder, x)
            return context.make_tuple(builder, sig.return_type, [
                builder.extract_element(y, _index(k)) for k in range(LANES)])
        return signature, codegen
    impl.__name__ = f"{family}{name}8"
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


class _Vector:
    """llvmlite IR for arithmetic on one vector type of float64 lanes."""

    def __init__(self, builder, vector_type):
        from llvmlite import ir
        self.b, self.type = builder, vector_type
        self.ints = ir.VectorType(ir.IntType(64), vector_type.count)
        self._fma = _declare(builder, "llvm.fma", vector_type, arity=3)

    def const(self, value, ints=False):
        from llvmlite import ir
        t = self.ints if ints else self.type
        return ir.Constant(t, [ir.Constant(t.element, value)] * t.count)

    def fma(self, a, b, c):
        return self.b.call(self._fma, [a, b, c])

    def horner(self, x, coefficients):
        """c0 + x (c1 + x (c2 + ...)), in fused multiply-adds."""
        p = self.const(coefficients[-1])
        for c in reversed(coefficients[:-1]):
            p = self.fma(p, x, self.const(c))
        return p

    def two_sum(self, a, b):
        """(s, e): s = a + b rounded, and its rounding error e exactly (Knuth)."""
        f = self.b
        s = f.fadd(a, b)
        b_part = f.fsub(s, a)
        return s, f.fadd(f.fsub(a, f.fsub(s, b_part)), f.fsub(b, b_part))

    def fast_two_sum(self, a, b):
        """(s, e) as `two_sum`, for |a| >= |b| (Dekker)."""
        s = self.b.fadd(a, b)
        return s, self.b.fsub(b, self.b.fsub(s, a))

    def clamp(self, x, lo, hi):
        """x within [lo, hi]; NaN stays NaN (ordered comparisons)."""
        b = self.b
        x = b.select(b.fcmp_ordered(">", x, self.const(hi)), self.const(hi), x)
        return b.select(b.fcmp_ordered("<", x, self.const(lo)), self.const(lo), x)

    def nearest(self, x, scale):
        """(k, its bits' integer): x * scale rounded to an integer, as a float and as an int
        (SHIFTER leaves it in the low bits)."""
        t = self.fma(x, self.const(scale), self.const(SHIFTER))
        k = self.b.fsub(t, self.const(SHIFTER))                       # exact
        n = self.b.sub(self.b.bitcast(t, self.ints), self.const(_bits(SHIFTER), ints=True))
        return k, n

    def power_of_two(self, n):
        """2^n for integer lanes n with -1022 <= n <= 1023, from its bits."""
        biased = self.b.add(n, self.const(1023, ints=True))
        return self.b.bitcast(self.b.shl(biased, self.const(52, ints=True)), self.type)


def _declare(builder, name: str, argument_type, return_type=None, arity=1):
    """The LLVM intrinsic `name`, overloaded on `argument_type` (llvmlite's
    `declare_intrinsic` knows scalars only)."""
    from llvmlite import ir
    suffix = f"v{argument_type.count}{_type_code(argument_type.element)}" \
        if isinstance(argument_type, ir.VectorType) else _type_code(argument_type)
    full = f"{name}.{suffix}"
    return builder.module.globals.get(full) or ir.Function(
        builder.module, ir.FunctionType(return_type or argument_type, [argument_type] * arity),
        full)


def _type_code(t) -> str:
    from llvmlite import ir
    return "f64" if isinstance(t, ir.DoubleType) else "f32" if isinstance(t, ir.FloatType) \
        else f"i{t.width}"


def _bits(value: float) -> int:
    import struct
    return struct.unpack("<q", struct.pack("<d", value))[0]


def _exp_lanes(builder, x):
    """exp of float32 values in float64 lanes (see above)."""
    v = _Vector(builder, x.type)
    x = v.clamp(x, -150.0, 150.0)
    k, n = v.nearest(x, INV_LN2)
    r = v.fma(k, v.const(-LN2_HI), x)         # exact: LN2_HI's zero bits, and x a float32
    r = v.fma(k, v.const(-LN2_LO), r)
    return builder.fmul(v.horner(r, EXP_POLY), v.power_of_two(n))    # times 2^k: exact


# -- "ieee" float64 exp, sin, cos and log, inline ---------------------------------------------
# libmvec's float64 functions are off by up to 3.5 ULP (a quarter of sin's results by more
# than 1; glibc's scalar ones by at most 0.52, measured in bench/NOTES.md, session 17): good
# for "fast" (the `d` family), not for "ieee". These stay within 1 ULP, most results
# correctly rounded (tests/unit/test_cpu_vmath.py measures both in extended precision; max
# 0.65 ULP for exp, 0.78 sin and cos, 0.85 log):
#
# exp: x clamped to [-746, 710] (beyond, every result is 0 or inf), k = round(x / ln2),
#   r + c = x - k ln2 in double-double (the high product exact, as above: |r| <= ln2 / 2),
#   e^r = 1 + r + r^2 q(r) + c (1 + r), q the Taylor polynomial to r^13 (truncation 4e-18),
#   with the rounding error of 1 + r kept; then times 2^k in two halves so that overflow
#   gives inf (subnormal results are rounded twice: ~1% are 1 subnormal unit off).
# sin, cos: k = round(x / (pi/2)), r = x - k pi/2 in double-double (pi/2 in three parts,
#   the first product exact by FMA), then the Taylor polynomials of sin (to r^17) and cos
#   (to r^16) on |r| <= pi/4 with r's low part folded in, the quadrant k mod 4 picking the
#   polynomial and sign. Lanes with |x| > 2^24, inf or NaN take glibc's scalar sin/cos
#   (the reduction needs more bits of pi beyond).
# log: x = 2^k m with m in [sqrt(1/2), sqrt(2)) (subnormals scaled by 2^54 first), f = m - 1,
#   log(1 + f) through s = f / (2 + f) and the series of atanh in s^2 (to s^21), k ln2 in
#   two parts; 0, negative numbers, inf and NaN selected at the end.

EXP_TAYLOR = tuple(1 / math.factorial(j) for j in range(2, 14))       # q(r): 1/2!, ..., 1/13!
# sin(r) = r + r^3 (S[0] + r^2 S[1] + ...), cos(r) = 1 - r^2 / 2 + r^4 (C[0] + r^2 C[1] + ...)
SIN_TAYLOR = tuple((-1) ** (j + 1) / math.factorial(2 * j + 3) for j in range(8))
COS_TAYLOR = tuple((-1) ** j / math.factorial(2 * j + 4) for j in range(7))
TRIG_LIMIT = 2.0 ** 24
# log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f), R(z) = z (2/3 + z (2/5 + ...))
LOG_TAYLOR = tuple(2 / (2 * j + 3) for j in range(10))


def _pio2_parts():
    """pi/2 as three float64 parts, each the rounding of what the previous ones leave, and
    2/pi."""
    import decimal
    ctx = decimal.Context(prec=60)
    pio2 = ctx.divide(decimal.Decimal(PI_60), 2)
    parts = []
    for _ in range(3):
        parts.append(float(pio2))
        pio2 = ctx.subtract(pio2, decimal.Decimal(parts[-1]))
    return tuple(parts), float(ctx.divide(2, decimal.Decimal(PI_60)))


PI_60 = "3.14159265358979323846264338327950288419716939937510582097494"
PIO2, TWO_OVER_PI = _pio2_parts()


def _exp64_lanes(builder, x):
    """exp of float64 lanes (see above)."""
    v, b = _Vector(builder, x.type), builder
    x = v.clamp(x, -746.0, 710.0)
    k, n = v.nearest(x, INV_LN2)
    r_hi = v.fma(k, v.const(-LN2_HI), x)      # exact: LN2_HI's zero bits, |r| <= ln2 / 2
    r, c = v.two_sum(r_hi, b.fmul(k, v.const(-LN2_LO)))            # r + c = x - k ln2
    one, lost = v.fast_two_sum(v.const(1.0), r)                     # one + lost = 1 + r
    p = b.fmul(b.fmul(r, r), v.horner(r, EXP_TAYLOR))               # r^2 q(r)
    e = b.fadd(one, b.fadd(lost, b.fadd(p, v.fma(c, r, c))))       # + c (1 + r)
    half = b.ashr(n, v.const(1, ints=True))                # 2^k = 2^half 2^(k - half)
    e = b.fmul(e, v.power_of_two(b.sub(n, half)))
    return b.fmul(e, v.power_of_two(half))


def _trig_lanes(name: str):
    """sin or cos (quadrant shift 0 or 1) of float64 lanes."""
    shift = {"sin": 0, "cos": 1}[name]

    def lanes(builder, x):
        from llvmlite import ir
        v, b = _Vector(builder, x.type), builder
        k, n = v.nearest(x, TWO_OVER_PI)
        r1 = v.fma(k, v.const(-PIO2[0]), x)                        # exact
        w = b.fmul(k, v.const(-PIO2[1]))
        w_err = v.fma(k, v.const(-PIO2[1]), b.fneg(w))          # -k PIO2[1] = w + w_err
        hi, err = v.two_sum(r1, w)
        lo = v.fma(k, v.const(-PIO2[2]), b.fadd(err, w_err))    # r = hi + lo
        z = b.fmul(hi, hi)
        hz = b.fmul(z, v.const(0.5))
        # sin(hi + lo) ~ hi + (hi^3 S(z) + lo (1 - z/2))
        cube = b.fmul(z, hi)
        odd_terms = v.fma(cube, v.const(SIN_TAYLOR[0]),
                          b.fmul(b.fmul(cube, z), v.horner(z, SIN_TAYLOR[1:])))
        sin_r = b.fadd(hi, b.fadd(odd_terms, v.fma(b.fneg(hz), lo, lo)))
        # cos(hi + lo) ~ (1 - z/2) + (z^2 C(z) - hi lo), the rounding error of 1 - z/2 kept
        one_hz = b.fsub(v.const(1.0), hz)
        lost = b.fsub(b.fsub(v.const(1.0), one_hz), hz)
        even_terms = v.fma(b.fmul(z, z), v.horner(z, COS_TAYLOR), b.fneg(b.fmul(hi, lo)))
        cos_r = b.fadd(one_hz, b.fadd(lost, even_terms))
        q = b.add(n, v.const(shift, ints=True))                      # the quadrant
        odd = b.trunc(q, ir.VectorType(ir.IntType(1), x.type.count))
        y = b.select(odd, cos_r, sin_r)
        sign = b.shl(b.and_(q, v.const(2, ints=True)), v.const(62, ints=True))
        y = b.bitcast(b.xor(b.bitcast(y, v.ints), sign), x.type)
        if name == "sin":                                         # sin(-0) is -0
            y = b.select(b.fcmp_ordered("==", x, v.const(0.0)), x, y)
        # Lanes beyond the reduction's range, inf and NaN: glibc's scalar function.
        far = b.fcmp_unordered(">", b.call(_declare(b, "llvm.fabs", x.type), [x]),
                               v.const(TRIG_LIMIT))
        any_far = b.call(_declare(b, "llvm.vector.reduce.or", far.type, ir.IntType(1)), [far])
        entry = b.block
        with b.if_then(any_far, likely=False):
            scalar, exact = _declare(b, f"llvm.{name}", ir.DoubleType()), y
            for j in range(x.type.count):
                exact = b.insert_element(
                    exact, b.call(scalar, [b.extract_element(x, _index(j))]), _index(j))
            exact = b.select(far, exact, y)
            far_block = b.block
        result = b.phi(x.type)
        result.add_incoming(y, entry)
        result.add_incoming(exact, far_block)
        return result
    return lanes


def _log64_lanes(builder, x):
    """log of float64 lanes (see above)."""
    v, b = _Vector(builder, x.type), builder
    ints, one_bits = v.ints, v.const(0x3FF0000000000000, ints=True)
    tiny = b.fcmp_ordered("<", x, v.const(2.0 ** -1022))         # subnormal: scaled up first
    bits = b.bitcast(b.select(tiny, b.fmul(x, v.const(2.0 ** 54)), x), ints)
    e = b.sub(b.and_(b.lshr(bits, v.const(52, ints=True)), v.const(0x7FF, ints=True)),
              b.select(tiny, v.const(1023 + 54, ints=True), v.const(1023, ints=True)))
    m = b.bitcast(b.or_(b.and_(bits, v.const((1 << 52) - 1, ints=True)), one_bits), x.type)
    big = b.fcmp_ordered(">", m, v.const(math.sqrt(2.0)))        # m in [sqrt(1/2), sqrt(2))
    m = b.select(big, b.fmul(m, v.const(0.5)), m)
    k = b.sitofp(b.add(e, b.zext(big, ints)), x.type)
    f = b.fsub(m, v.const(1.0))                                   # exact (Sterbenz)
    hfsq = b.fmul(v.const(0.5), b.fmul(f, f))
    s = b.fdiv(f, b.fadd(v.const(2.0), f))
    z = b.fmul(s, s)
    r = b.fmul(z, v.horner(z, LOG_TAYLOR))
    tail = v.fma(s, b.fadd(hfsq, r), b.fmul(k, v.const(LN2_LO)))
    y = v.fma(k, v.const(LN2_HI), b.fneg(b.fsub(b.fsub(hfsq, tail), f)))   # k LN2_HI exact
    # log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN stays
    y = b.select(b.fcmp_ordered("==", x, v.const(0.0)), v.const(-math.inf), y)
    y = b.select(b.fcmp_ordered("<", x, v.const(0.0)), v.const(math.nan), y)
    y = b.select(b.fcmp_ordered("==", x, v.const(math.inf)), x, y)
    return b.select(b.fcmp_unordered("!=", x, x), x, y)


_WIDE = {"exp": _exp_lanes}
_IEEE64 = {"exp": _exp64_lanes, "sin": _trig_lanes("sin"), "cos": _trig_lanes("cos"),
           "log": _log64_lanes}


if AVAILABLE:            # vsin8, wsin8, vexp8, ...: the names IMPORT brings into kernels
    globals().update({f"{family}{name}8": _vector_function(name, family)
                      for family in FAMILIES.values() for name in FUNCTIONS})


# -- the loop rewrite ------------------------------------------------------------------------

_LOOP = re.compile(r"^(\s*)for (\w+) in (prange|range)\((.*)\):$")
_ASSIGN = re.compile(r"^\s*(\w+) ([-+*|&]?=) (.*)$")
_CALL = re.compile(r"^(\w+) = (float32|float64)\((" + "|".join(FUNCTIONS) + r")\((.*)\)\)$")
_CONTROL = re.compile(r"^\s*(for|if|elif|else|while)\b")
_STORE = re.compile(r"^\w+\[.*\] = ")


def interleave(lines: list, fast: bool) -> list:
    """`lines` (a kernel's loops) with every innermost loop that calls a lane function
    (FAMILIES: by the call's dtype and `fast`) computed 8 elements at a time."""
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
                                     out, lines[body_end:], fast)
            if rewritten is not None:
                out += rewritten
                k = body_end
                continue
        out.append(lines[k])
        k += 1
    return out


def lane_call(line: str, fast: bool):
    """(name, lane function, argument) if `line` is `name = float64(sin(arg))` or the like
    (a dtype and function that a family computes); else None."""
    m = _CALL.match(line)
    if m is None:
        return None
    name, dtype, fn, arg = m.groups()
    return name, lane_function(fn, dtype, fast), arg


def lane_function(op: str, dtype, fast: bool):
    """The name of the lane function computing `op` on `dtype` values, `xsin8` and co.;
    None if no family computes it."""
    family = FAMILIES.get((str(dtype), fast))
    return f"{family}{op}8" if family is not None and op in FUNCTIONS else None


def _interleaved(loop, body: list, before: list, after: list, fast: bool):
    """The lanes and the tail for one loop, or None if it does not qualify: a body of plain
    statements with a vector call, each accumulator updated in one statement only, and no
    per-element value read after the loop (`before`, `after`: the lines around it)."""
    indent, var, kind, bounds = loop.groups()
    calls = {line: lane_call(line, fast) for line in body}
    if any(_CONTROL.match(line) for line in body) or not any(calls.values()):
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
        if calls[line]:
            name, fn, arg = calls[line]
            lanes.append(f"{', '.join(f'{name}_L{j}' for j in range(LANES))} = {fn}("
                         f"{', '.join(lane(arg, j) for j in range(LANES))})")
            tail += [f"{name}_x = {arg}",
                     f"{name} = {fn}({', '.join([f'{name}_x'] * LANES)})[0]"]
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
