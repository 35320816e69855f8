"""Reference implementations ("anchors") for the CPU workloads in /work/shared/PERF.md.

Each workload has:
  <w>_numpy(...)            NumPy eager, the way users write it today
  <w>_numba_into(out, ...)  hand-written Numba prange kernel into a preallocated output
  <w>_numba(...)            the same kernel, allocating its output (pays first-touch page faults)
  <w>_numexpr(...)          NumExpr, or None when numexpr is not importable (see NUMEXPR_NOTE)
  <w>_numlazy(...)          numlazy: takes numlazy arrays, records, mark_step(), returns results

Inputs come from input_sets() (several sets when one fits in the last-level cache; timed
callables cycle through them); check() compares a result with a float64 NumPy reference.
Numba kernels are parallel, IEEE (fastmath=False) and not cached, so they are what numlazy's
generated code must match.  Scalars are passed in the input dtype (as numlazy passes them) so
float32 kernels stay float32; reductions accumulate in float64.
"""
import glob
import itertools
import math
import os

import numpy as np
from numba import njit, prange

try:
    import numexpr as ne
    NUMEXPR_NOTE = f"numexpr {ne.__version__}, {ne.nthreads} threads"
except ImportError:  # optional anchor
    ne = None
    NUMEXPR_NOTE = "numexpr not installed: NumExpr anchors skipped"

try:
    import numlazy as nl
    NUMLAZY_ERROR = None
    _missing = [f for f in ("asarray", "mark_step", "sin", "exp", "sum", "max")
                if not hasattr(nl, f)]
    if _missing:  # e.g. an empty numlazy/ directory imported as a namespace package
        nl, NUMLAZY_ERROR = None, f"numlazy has no {', '.join(_missing)} yet"
except Exception as exc:  # the library may not be importable yet; anchors still run
    nl = None
    NUMLAZY_ERROR = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError) and exc.name == "numlazy":
        NUMLAZY_ERROR += " (install it: pip install -e .)"

WORKLOADS = ("chain", "dotsum", "softmax")

# bytes moved, in units of one array of the workload's size: reads + writes
MIN_TRAFFIC = {"chain": 3 + 1, "dotsum": 2, "softmax": 1 + 1}

_JIT = dict(parallel=True, fastmath=False, cache=False)


# ---------------------------------------------------------------- chain: sin(a)*b + 0.5*c*c - a

def chain_numpy(a, b, c):
    return np.sin(a) * b + 0.5 * c * c - a


@njit(**_JIT)
def _chain_kernel(out, a, b, c, half):
    for i in prange(a.shape[0]):
        out[i] = math.sin(a[i]) * b[i] + half * c[i] * c[i] - a[i]


def chain_numba_into(out, a, b, c):
    _chain_kernel(out, a, b, c, a.dtype.type(0.5))
    return out


@njit(**_JIT)
def _chain_alloc(a, b, c, half):
    out = np.empty_like(a)
    for i in prange(a.shape[0]):
        out[i] = math.sin(a[i]) * b[i] + half * c[i] * c[i] - a[i]
    return out


def chain_numba(a, b, c):
    return _chain_alloc(a, b, c, a.dtype.type(0.5))


def _chain_ne(a, b, c, out=None):
    half = a.dtype.type(0.5)  # a literal 0.5 would make NumExpr compute float32 in float64
    return ne.evaluate("sin(a)*b + half*c*c - a", out=out)


chain_numexpr = _chain_ne if ne else None


def chain_numlazy(a, b, c):
    y = nl.sin(a) * b + 0.5 * c * c - a
    nl.mark_step()
    return y


# ---------------------------------------------------------------- dotsum: sum(a*b)

def dotsum_numpy(a, b):
    return np.sum(a * b)


def dotsum_blas(a, b):
    # BLAS dot: OpenBLAS threads spin ~0.1 s afterwards and slow the next Numba parallel
    # kernel (NUMBA_NOTES.md), so run this one last.
    return np.dot(a, b)


@njit(**_JIT)
def _dotsum_kernel(a, b):
    acc = 0.0  # float64 accumulator, also for float32 inputs
    for i in prange(a.shape[0]):
        acc += a[i] * b[i]
    return acc


def dotsum_numba(a, b):
    return _dotsum_kernel(a, b)


def _dotsum_ne(a, b):
    return ne.evaluate("sum(a*b)")  # NumExpr runs reductions single-threaded


dotsum_numexpr = _dotsum_ne if ne else None


def dotsum_numlazy(a, b):
    s = nl.sum(a * b)
    nl.mark_step()
    return s


# ---------------------------------------------------------------- softmax over rows of (R, C)

def softmax_numpy(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


@njit(**_JIT)
def _softmax_kernel(out, x):
    for i in prange(x.shape[0]):
        m = x[i, 0]
        for j in range(1, x.shape[1]):
            m = max(m, x[i, j])
        acc = 0.0
        for j in range(x.shape[1]):
            e = math.exp(x[i, j] - m)
            out[i, j] = e
            acc += e
        for j in range(x.shape[1]):
            out[i, j] = out[i, j] / acc


def softmax_numba_into(out, x):
    _softmax_kernel(out, x)
    return out


def softmax_numba(x):
    return softmax_numba_into(np.empty_like(x), x)


def _softmax_ne(x):
    m = ne.evaluate("max(x, axis=1)")[:, None]
    e = ne.evaluate("exp(x - m)")
    s = ne.evaluate("sum(e, axis=1)")[:, None]
    return ne.evaluate("e / s", out=e)


softmax_numexpr = _softmax_ne if ne else None


def softmax_numlazy(x):
    e = nl.exp(x - nl.max(x, axis=1, keepdims=True))
    y = e / nl.sum(e, axis=1, keepdims=True)
    nl.mark_step()
    return y


# ---------------------------------------------------------------- inputs, outputs, checks

def softmax_shape(n):
    """Square matrix with about n elements: 2**22 -> 2048x2048, 2**24 -> 4096x4096."""
    side = max(1, math.isqrt(n))
    return (side, side)


def make_inputs(workload, n, dtype, seed=0):
    """NumPy inputs for a workload of about n elements; values well away from zero."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)

    def arr(shape, lo, hi):
        return rng.uniform(lo, hi, size=shape).astype(dtype)

    if workload == "chain":
        return [arr(n, -3.0, 3.0), arr(n, 0.5, 1.5), arr(n, 0.5, 1.5)]
    if workload == "dotsum":
        return [arr(n, 0.5, 1.5), arr(n, 0.5, 1.5)]
    if workload == "softmax":
        return [arr(softmax_shape(n), -4.0, 4.0)]
    raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")


def reference(workload, inputs):
    """The float64 NumPy result for these inputs."""
    return globals()[f"{workload}_numpy"](*[x.astype(np.float64) for x in inputs])


def check(workload, result, ref, dtype, strict=True):
    """Check a result against the float64 NumPy reference.

    Always raises AssertionError on a wrong shape or dtype, non-finite values or an all-zero
    result.  Outside the dtype's tolerance it raises when strict (numlazy), else returns a note
    with the relative error (an anchor that is fast but inaccurate is still worth seeing:
    NumExpr sums float32 in a float32 accumulator, 2% off at 2**24 elements)."""
    result = np.asarray(result)
    ref = np.asarray(ref)
    assert result.shape == ref.shape, f"{workload}: shape {result.shape} != {ref.shape}"
    if result.ndim:  # arrays must come back in the input dtype (scalar sums may be wider)
        assert result.dtype == np.dtype(dtype), f"{workload}: dtype {result.dtype} != {dtype}"
    assert np.all(np.isfinite(result)), f"{workload}: non-finite values in result"
    assert np.any(result != 0), f"{workload}: result is all zeros"
    f32 = np.dtype(dtype) == np.float32
    rtol = 1e-4 if f32 else 1e-9   # float32: ~2 ULP sin/exp differences, reduction order
    atol = 1e-5 if f32 else 1e-12
    if workload == "softmax":
        atol = 1e-9 if f32 else 1e-16  # entries are small (~1/C)
    r64 = result.astype(np.float64)
    if np.allclose(r64, ref, rtol=rtol, atol=atol):
        return ""
    err = float(np.max(np.abs(r64 - ref) / np.maximum(np.abs(ref), atol)))
    msg = f"inaccurate: max rel err {err:.1e} > rtol {rtol:g}"
    assert not strict, f"{workload} disagrees with NumPy float64: {msg}"
    return msg


def llc_bytes():
    """Size of the largest CPU cache Linux reports (64 MiB when it reports none)."""
    best = (0, 64 << 20)
    for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(f"{d}/level") as f:
                level = int(f.read())
            with open(f"{d}/size") as f:
                size = f.read().strip()
        except (OSError, ValueError):
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        best = max(best, (level, int(size.rstrip("KMG")) * mult))
    return best[1]


def input_sets(workload, n, dtype, max_sets=8):
    """Input sets to cycle through while timing, so that the data comes from memory, not from
    cache: enough sets (at most max_sets) to cover twice the last-level cache; one set when a
    single set (inputs + output) is already larger than the cache."""
    first = make_inputs(workload, n, dtype, seed=0)
    per_set = (len(first) + (workload != "dotsum")) * first[0].nbytes
    k = min(max_sets, max(1, -(-2 * llc_bytes() // per_set)))
    return [first] + [make_inputs(workload, n, dtype, seed=i) for i in range(1, k)]


def to_numlazy(inputs, device="cpu"):
    return [nl.asarray(x, device=device) for x in inputs]


def read(result):
    """The result as a NumPy array: the caller's view of it.  Timing includes this so that a
    step that returns before its work is done is still timed to the end; on "cpu" it is a
    zero-copy view."""
    return np.asarray(result)


def compile_count():
    """numlazy's UncachedCompile counter, or None when metrics are not there yet."""
    try:
        return nl.metrics.counter_value("UncachedCompile")
    except Exception:
        return None


def _cycling(fn, arg_sets):
    """A zero-argument callable running fn on the next argument set each call."""
    it = itertools.cycle(arg_sets)
    return lambda: fn(*next(it))


def _fast(op):
    """`op` at the "fast" fp32 precision of the CPU backend (fast-math flags, SIMD
    float32 sin/cos/exp/log)."""
    def run(*xs):
        with nl.backends.cpu.flags(fp32_precision="fast"):
            return read(op(*xs))
    return run


def implementations(workload, sets, numlazy_devices=("cpu",), anchors=True):
    """(name, zero-argument callable) pairs for every installed implementation of a workload.

    Each callable cycles through the input sets (outputs of the out= kernels too); call
    number k+1 (k = len(sets)) runs on sets[0] again, see warm_and_check.  numlazy first,
    BLAS last (its spinning threads slow whatever runs next)."""
    impls = []
    for device in numlazy_devices if nl is not None else ():
        op = globals()[f"{workload}_numlazy"]
        inputs = [to_numlazy(s, device) for s in sets]
        impls.append((f"numlazy[{device}]", _cycling(lambda *xs: read(op(*xs)), inputs)))
        if sets[0][0].dtype == np.float32 and device == "cpu":
            impls.append((f"numlazy[{device}] fast", _cycling(_fast(op), inputs)))
    if not anchors:
        return impls
    impls.append(("numpy eager", _cycling(globals()[f"{workload}_numpy"], sets)))
    if globals()[f"{workload}_numexpr"] is not None:
        impls.append(("numexpr", _cycling(globals()[f"{workload}_numexpr"], sets)))
    into = globals().get(f"{workload}_numba_into")
    if into is not None:
        impls.append(("numba prange, out=",
                      _cycling(into, [[np.empty_like(s[0]), *s] for s in sets])))
    impls.append(("numba prange, alloc" if into else "numba prange",
                  _cycling(globals()[f"{workload}_numba"], sets)))
    if workload == "dotsum":
        impls.append(("numpy dot (BLAS)", _cycling(dotsum_blas, sets)))
    return impls


def warm_and_check(workload, fn, sets, ref, dtype, strict=True):
    """Call fn once per input set (the first call compiles, the rest touch every buffer),
    then once more, on sets[0], and check that result against ref = reference(sets[0])."""
    for _ in sets:
        fn()
    return check(workload, fn(), ref, dtype, strict=strict)
