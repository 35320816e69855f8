"""Complex elementwise functions for the compiled targets, in C99 Annex G style.

Numba's own complex `exp`, `sin`, `tanh`, `arccosh`... (CPU) and numba-cuda's `cmath` (many
functions missing on the GPU) do not return NumPy's values for infinite and NaN components.
These helpers do, on both targets: each handles the special operands of Annex G first, then
computes finite ones from real functions (or, for the inverse functions, from `cmath`, whose
finite results are NumPy's within a few ULPs on both targets).

`SOURCE` is module text written in the op table's vocabulary (`ops.VOCABULARY`: `sqrt`,
`hypot`, `arctan2`, `isinf`...), which a backend's prelude binds (CPU: NumPy's scalar
functions; CUDA: `math`, libdevice and its GPU_MATH helpers). The helper names are
`COMPLEX_HELPERS`; templates in `numlazy/ops.py` call them for complex loops. A backend
appends `module_text(decorator)` to a generated module that calls one (`used_by`): Numba
resolves a kernel's globals when it compiles it, after the whole module has run, and modules
of real-valued kernels do not pay for defining the helpers (about 3 ms per module load).
"""
from __future__ import annotations

import re

SOURCE = '''
PI = 3.141592653589793
HALF_PI = 1.5707963267948966
QUARTER_PI = 0.7853981633974483
LOG2E = 1.4426950408889634
LOG10E = 0.4342944819032518


@helper
def csqrt(z):
    x, y = z.real, z.imag
    if isinf(y):
        return complex(inf, y)
    if isnan(x):
        return complex(x, x)
    if isinf(x):
        if isnan(y):
            return complex(x, y) if x > 0 else complex(y, -x)
        if x > 0:
            return complex(x, copysign(0.0, y))
        return complex(0.0, copysign(inf, y))
    if isnan(y):
        return complex(y, y)
    if x == 0 and y == 0:
        return complex(0.0, y)
    t = sqrt(0.5 * abs(x) + 0.5 * hypot(x, y))     # halves first: no overflow
    if x >= 0:
        return complex(t, y / (2 * t))
    return complex(abs(y) / (2 * t), copysign(t, y))


@helper
def cexp(z):
    x, y = z.real, z.imag
    if y == 0:
        return complex(exp(x), y)
    if isinf(x) and not isfinite(y):
        if x > 0:
            return complex(x, y - y)                # +inf + i NaN
        return complex(0.0, copysign(0.0, y))
    if isfinite(y) and x == -inf:
        return complex(0.0 * cos(y), 0.0 * sin(y))
    e = exp(x)
    if isinf(e) and isfinite(x):                    # exp(x) overflows, e^x * cos y may not
        h = exp(0.5 * x)
        return complex(h * cos(y) * h, h * sin(y) * h)
    return complex(e * cos(y), e * sin(y))


@helper
def cexpm1(z):
    # NumPy's formula; in double precision (complex64: exp(x) overflows float32 sooner).
    x, y = float64(z.real), float64(z.imag)
    s = sin(0.5 * y)
    return complex(expm1(x) * cos(y) - 2.0 * s * s, exp(x) * sin(y))


@helper
def clog(z):
    x, y = z.real, z.imag
    ax, ay = abs(x), abs(y)
    if ax < ay:
        ax, ay = ay, ax
    h = hypot(x, y)
    if 0.5 < h < 2.0:                               # |z| near 1: log(h) would cancel
        re = 0.5 * log1p((ax - 1.0) * (ax + 1.0) + ay * ay)
    else:
        re = log(h)
    return complex(re, arctan2(y, x))


@helper
def clog1p(z):
    x, y = float64(z.real), float64(z.imag)
    h = hypot(1.0 + x, y)
    if 0.5 < h < 2.0:                # |1 + z| near 1: log1p of |1 + z|**2 - 1, no cancelling
        re = 0.5 * log1p(x * (2.0 + x) + y * y)
    else:
        re = log(h)
    return complex(re, arctan2(y, 1.0 + x))


@helper
def clog2(z):
    w = clog(z)
    return complex(w.real * LOG2E, w.imag * LOG2E)


@helper
def clog10(z):
    w = clog(z)
    return complex(w.real * LOG10E, w.imag * LOG10E)


@helper
def csinh(z):
    x, y = z.real, z.imag
    if isfinite(x) and isfinite(y):
        if y == 0:
            return complex(sinh(x), y)
        return complex(sinh(x) * cos(y), cosh(x) * sin(y))
    if isnan(x):
        return complex(x, y if y == 0 else x)
    if isinf(x):
        if y == 0:
            return complex(x, y)
        if isfinite(y):
            return complex(x * cos(y), abs(x) * sin(y))
        return complex(abs(x), y - y)
    if x == 0:                                      # +-0 + i inf or i NaN
        return complex(x, y - y)
    return complex(y - y, y - y)


@helper
def ccosh(z):
    x, y = z.real, z.imag
    if isfinite(x) and isfinite(y):
        if y == 0:
            return complex(cosh(x), copysign(0.0, x) * y)
        return complex(cosh(x) * cos(y), sinh(x) * sin(y))
    if isnan(x):
        return complex(x, y if y == 0 else x)
    if isinf(x):
        if y == 0:
            return complex(inf, copysign(0.0, x) * y)
        if isfinite(y):
            return complex(inf * cos(y), x * sin(y))
        return complex(inf, y - y)
    if x == 0:
        return complex(y - y, 0.0)
    return complex(y - y, y - y)


@helper
def ctanh(z):
    x, y = z.real, z.imag
    if isinf(x):
        if isfinite(y):
            return complex(copysign(1.0, x), copysign(0.0, sin(2.0 * y)))
        return complex(copysign(1.0, x), copysign(0.0, y))
    if isnan(x):
        return complex(x, y if y == 0 else x)
    if not isfinite(y):
        return complex(x if x == 0 else y - y, y - y)
    if abs(x) > 22.0:                               # tanh(x) rounds to +-1
        e = exp(-2.0 * abs(x))
        return complex(copysign(1.0, x), 4.0 * sin(y) * cos(y) * e)
    t = tan(y)                                      # Kahan's formula
    beta = 1.0 + t * t
    s = sinh(x)
    rho = sqrt(1.0 + s * s)
    d = 1.0 + beta * s * s
    return complex(beta * rho * s / d, t / d)


@helper
def _times_minus_i(w):
    return complex(w.imag, -w.real)


@helper
def csin(z):
    if isinf(z.imag) and not isfinite(z.real):
        return complex(nan, inf)                    # NumPy's choice of the unspecified signs
    return _times_minus_i(csinh(complex(-z.imag, z.real)))     # sin z = -i sinh(iz)


@helper
def ccos(z):
    return ccosh(complex(-z.imag, z.real))                     # cos z = cosh(iz)


@helper
def ctan(z):
    return _times_minus_i(ctanh(complex(-z.imag, z.real)))     # tan z = -i tanh(iz)


@helper
def casinh(z):
    x, y = z.real, z.imag
    if isfinite(x) and isfinite(y):
        return cmath.asinh(z)
    if isinf(x):
        if isnan(y):
            return complex(x, y)
        if isinf(y):
            return complex(x, copysign(QUARTER_PI, y))
        return complex(x, copysign(0.0, y))
    if isinf(y):
        if isnan(x):                    # the sign of a NaN differs between targets
            return complex(inf, x)
        return complex(copysign(inf, x), copysign(HALF_PI, y))
    if isnan(x):
        return complex(x, y if y == 0 else x)
    return complex(y, y)                            # finite x + i NaN


@helper
def casin(z):
    if isinf(z.real) and isnan(z.imag):
        return complex(nan, inf)        # NumPy's choice of the unspecified sign (the identity
                                        # would take it from a NaN's sign bit: the GPU and
                                        # the CPU negate NaN differently)
    return _times_minus_i(casinh(complex(-z.imag, z.real)))    # asin z = -i asinh(iz)


@helper
def catanh(z):
    x, y = z.real, z.imag
    if isfinite(x) and isfinite(y):
        if y == 0 and abs(x) == 1:
            return complex(copysign(inf, x), y)
        return cmath.atanh(z)
    if isinf(y):
        return complex(0.0 if isnan(x) else copysign(0.0, x), copysign(HALF_PI, y))
    if isinf(x):
        if isnan(y):
            return complex(copysign(0.0, x), y)
        return complex(copysign(0.0, x), copysign(HALF_PI, y))
    if isnan(x):
        return complex(x, x)
    if x == 0:                                      # +-0 + i NaN
        return complex(x, y)
    return complex(y, y)


@helper
def catan(z):
    if isinf(z.real) and isnan(z.imag):
        return complex(copysign(HALF_PI, z.real), 0.0)     # as casin
    return _times_minus_i(catanh(complex(-z.imag, z.real)))    # atan z = -i atanh(iz)


@helper
def cacos(z):
    x, y = z.real, z.imag
    if isfinite(x) and isfinite(y):
        return cmath.acos(z)
    if isinf(x):
        if isnan(y):
            return complex(y, -inf)
        if isinf(y):
            re = QUARTER_PI if x > 0 else 3.0 * QUARTER_PI
        else:
            re = 0.0 if x > 0 else PI
        return complex(re, -copysign(inf, y))
    if isinf(y):
        return complex(x if isnan(x) else HALF_PI, -y)
    if x == 0:                                      # +-0 + i NaN
        return complex(HALF_PI, y)
    return complex(y - y if isnan(y) else x, x if isnan(x) else y)


@helper
def cacosh(z):
    # acosh z = +-i acos z, the sign giving a non-negative real part; the imaginary part
    # takes the sign of Im z (which is -Im acos z).
    w = cacos(z)
    re = abs(w.imag)
    if isnan(w.real):
        return complex(re, w.real)
    return complex(re, copysign(w.real, z.imag))


@helper
def cdivide(a, b):
    # Smith's algorithm, as NumPy: no overflow of |b|**2; division by zero gives inf/NaN
    # components (Numba's complex division raises ZeroDivisionError).
    ar, ai, br, bi = a.real, a.imag, b.real, b.imag
    if abs(br) >= abs(bi):
        if br == 0 and bi == 0:
            return complex(ar / abs(br), ai / abs(br))
        rat = bi / br
        scl = 1.0 / (br + bi * rat)
        return complex((ar + ai * rat) * scl, (ai - ar * rat) * scl)
    rat = br / bi
    scl = 1.0 / (bi + br * rat)
    return complex((ar * rat + ai) * scl, (ai * rat - ar) * scl)


@helper
def cpower(a, b):
    # NumPy's rules: z**0 is 1, 0**b is 0 where Re b > 0 else NaN, a small integer exponent
    # is repeated multiplication, the rest exp(b log a).
    br, bi = b.real, b.imag
    if br == 0 and bi == 0:
        return complex(1.0, 0.0)
    if a.real == 0 and a.imag == 0:
        if br > 0:
            return complex(0.0, 0.0)
        return complex(nan, nan)
    if bi == 0 and br == floor(br) and abs(br) < 100:
        n = abs(br)
        result = complex(1.0, 0.0)
        base = a
        while n > 0:
            if n % 2 == 1:
                result = result * base
            base = base * base
            n = floor(n / 2)
        return cdivide(complex(1.0, 0.0), result) if br < 0 else result
    # In double precision: exp(b log a) magnifies the rounding of b log a (complex64: 16 ULPs).
    wide = complex(float64(b.real), float64(b.imag)) * \
        clog(complex(float64(a.real), float64(a.imag)))
    return cexp(wide)


@helper
def csign(z):
    # z / |z| (array API 2023.12, NumPy 2); an infinite component gives its unit direction.
    x, y = z.real, z.imag
    if isinf(x) and isinf(y):
        return complex(nan, nan)
    if isinf(x):
        return complex(copysign(1.0, x), 0.0)
    if isinf(y):
        return complex(0.0, copysign(1.0, y))
    if isnan(x) or isnan(y):
        return complex(nan, nan)
    h = hypot(x, y)
    if h == 0:
        return complex(0.0, 0.0)
    return complex(x / h, y / h)
'''

COMPLEX_HELPERS = tuple(sorted(n for n in re.findall(r"^def (c\w+)\(", SOURCE, re.M)))
_CALL = re.compile(r"\b(?:" + "|".join(COMPLEX_HELPERS) + r")\(")


def used_by(source: str) -> bool:
    """Whether generated module text calls a complex helper."""
    return _CALL.search(source) is not None


def module_text(decorator: str) -> str:
    """The helpers as the tail of a generated module; `decorator` makes a helper an inlined
    function of the target (`njit(inline="always")`...)."""
    return f"\n\nimport cmath\nhelper = {decorator}\n{SOURCE}"
