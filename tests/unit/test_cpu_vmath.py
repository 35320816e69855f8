"""The CPU backend's SIMD transcendentals (numlazy_cpu/vmath.py): the loop rewrite on its own,
which kernels get which functions (float32 `v`: "fast"; `w`: "ieee", computed in float64
lanes; float64 `d`: "fast", libmvec's; `x`: "ieee", inline), their accuracy in extended
precision, and their values against NumPy at every length (the 8-lane groups and the scalar
tail), special values included."""
import numpy as np
import pytest

import numlazy as nl

vmath = pytest.importorskip("numlazy_cpu.vmath")


def _source(*arrays):
    return nl.debug.dump_ir(list(arrays), "backend")


def test_an_elementwise_loop_runs_in_8_lanes_then_a_scalar_tail():
    loop = ["for i0 in prange(n[0]):",
            "    v0 = float32(sin(a0[i0]))",
            "    o1[i0] = float32((v0 * r2_0))"]
    out = vmath.interleave(loop, fast=True)
    assert out[0] == "for g in prange(n[0] // 8):"
    assert "    i0_L7 = (g * 8 + 7) & NONNEG" in out
    assert "    v0_L0, v0_L1, v0_L2, v0_L3, v0_L4, v0_L5, v0_L6, v0_L7 = vsin8(a0[i0_L0], " \
        "a0[i0_L1], a0[i0_L2], a0[i0_L3], a0[i0_L4], a0[i0_L5], a0[i0_L6], a0[i0_L7])" in out
    assert "    o1[i0_L3] = float32((v0_L3 * r2_0))" in out      # runtime values: shared
    assert out[-4:] == ["for i0 in range(n[0] // 8 * 8, n[0]):", "    v0_x = a0[i0]",
                        "    v0 = vsin8(" + ", ".join(["v0_x"] * 8) + ")[0]", loop[2]]
    wide = vmath.interleave(loop, fast=False)              # "ieee": the same loop, `w` calls
    assert wide == [line.replace("vsin8(", "wsin8(") for line in out]


def test_an_accumulator_takes_the_lanes_in_element_order():
    loop = ["    for i1 in range(lo, hi):",
            "        v = float32(exp(a0[i0, i1]))",
            "        acc += v"]
    out = vmath.interleave(loop, fast=False)
    assert out[0] == "    for g in range((hi - lo) // 8):"
    assert [line.strip() for line in out if "acc" in line][:8] == \
        [f"acc += v_L{j}" for j in range(8)]
    assert out[-4] == "    for i1 in range(lo + (hi - lo) // 8 * 8, hi):"


def test_a_sum_from_its_identity_takes_8_accumulators_combined_pairwise():
    loop = ["    acc = float64(0)", "    idx = 0",
            "    for i1 in range(lo, hi):",
            "        v = float32(exp(a0[i0, i1]))",
            "        v = float64(v)",
            "        acc += v",
            "    o1[i0] = float32(acc)"]
    out = [line.strip() for line in vmath.interleave(loop, fast=False)]
    assert out[2:10] == [f"acc_A{j} = float64(0)" for j in range(8)]
    assert [line for line in out if line.startswith("acc_A") and "+=" in line] == \
        [f"acc_A{j} += v_L{j}" for j in range(8)]
    merge = out.index("for i1 in range(lo + (hi - lo) // 8 * 8, hi):") - 1
    assert out[merge] == "acc += (((acc_A0 + acc_A1) + (acc_A2 + acc_A3)) + " \
        "((acc_A4 + acc_A5) + (acc_A6 + acc_A7)))"
    assert out[-2:] == ["acc += v", "o1[i0] = float32(acc)"]          # the tail, in order


@pytest.mark.parametrize("before", [
    ["    acc = float64(1)"],                                   # not the identity of +=
    ["    acc = float64(0)", "    acc = acc * 2"],              # changed since
    ["acc = float64(0)", "for i0 in range(n[0]):"],             # carried across rows
])
def test_an_accumulator_not_at_its_identity_keeps_one_chain(before):
    loop = before + ["    for i1 in range(lo, hi):", "        v = float32(exp(a0[i0, i1]))",
                     "        acc += v"]
    out = vmath.interleave(loop, fast=False)
    assert not any("acc_A" in line for line in out) and out[-5].strip() == "acc += v_L7"


@pytest.mark.parametrize("body, fast", [
    (["v0 = float32(sin(a0[i0]))", "acc += v0", "o1[i0] = acc"], True),   # read twice
    (["v0 = float32(sin(a0[i0]))", "if v0 < acc:", "    acc = v0"], True),  # control flow
    (["v0 = float32(tan(a0[i0]))", "o1[i0] = v0"], True),                   # no lane function
    (["v0 = float64(tan(a0[i0]))", "o1[i0] = v0"], False),       # nor for float64
])
def test_loops_that_cannot_run_in_lanes_stay_as_they_are(body, fast):
    loop = ["for i0 in range(n[0]):"] + ["    " + line for line in body]
    assert vmath.interleave(loop, fast=fast) == loop


def test_float64_calls_take_the_float64_families():
    loop = ["for i0 in range(n[0]):", "    v0 = float64(sin(a0[i0]))",
            "    v1 = float64(tan(v0))", "    v2 = float64(log(v1))", "    o1[i0] = v2"]
    ieee, fast = (vmath.interleave(loop, fast=f) for f in (False, True))
    assert any(line.strip().startswith("v0_L0, ") and "= xsin8(" in line for line in ieee)
    assert any("= xlog8(" in line for line in ieee)
    assert "    v1_L0 = float64(tan(v0_L0))" in ieee                # scalar tan in each lane
    assert any("= dsin8(" in line for line in fast) and any("= dlog8(" in line for line in fast)


def test_a_value_read_after_the_loop_keeps_it_scalar():
    loop = ["for i0 in range(n[0]):", "    v0 = float32(exp(a0[i0]))", "    o1[i0] = v0"]
    assert vmath.interleave(loop + ["o2[0] = v0"], True) == loop + ["o2[0] = v0"]
    assert vmath.interleave(loop + ["v0 = r1_0", "o2[0] = v0"], True)[0].startswith("for g in")


needs_libmvec = pytest.mark.skipif(not vmath.AVAILABLE,
                                   reason="libmvec or an AVX2 host CPU is missing")


@needs_libmvec
def test_float32_kernels_call_the_functions_of_their_precision():
    x = nl.asarray(np.linspace(-3, 3, 64, dtype=np.float32))
    ieee = _source(nl.sin(x) * 2)
    assert "wsin8(" in ieee and "vsin8(" not in ieee
    assert "wexp8(" in _source(nl.sum(nl.exp(x)))
    with nl.backends.cpu.flags(fp32_precision="fast"):
        fast = _source(nl.sin(x) * 2)
        assert "vsin8(" in fast and "wsin8(" not in fast
        assert "vexp8(" in _source(nl.sum(nl.exp(x)))
        assert "dsin8(" in _source(nl.sin(nl.astype(x, "float64")))
    assert "xsin8(" in _source(nl.sin(nl.astype(x, "float64")))


def _ulps(got, exact):
    """Distance in float32 ULPs (both finite, same sign: the values compared here)."""
    return np.abs(got.view(np.int32).astype(np.int64) - exact.view(np.int32).astype(np.int64))


@needs_libmvec
def test_ieee_float32_transcendentals_are_the_float64_values_rounded_once():
    host = np.concatenate([np.linspace(-30, 30, 4001, dtype=np.float32),
                           np.float32(2) ** np.arange(-20, 7, dtype=np.float32)])
    x = nl.asarray(host)
    got = nl.to_cpu([nl.sin(x), nl.cos(x), nl.exp(x / 4), nl.log(nl.abs(x) + 1)])
    wide = host.astype(np.float64)
    exact = [np.sin(wide), np.cos(wide), np.exp((host / 4).astype(np.float64)),
             np.log((np.abs(host) + 1).astype(np.float64))]
    for g, e in zip(got, exact):
        assert g.dtype == np.float32
        ulps = _ulps(g, e.astype(np.float32))
        assert ulps.max() <= 1 and np.mean(ulps == 0) > 0.999    # NumPy's own: up to ~1.5


def test_exp_polynomial_is_within_its_bound_on_the_reduced_range():
    """EXP_POLY against e^r in extended precision, on |r| <= ln2 / 2 and a little beyond (the
    reduction's rounding)."""
    r = np.linspace(-0.3470, 0.3470, 200_001).astype(np.longdouble)
    p = np.polyval(np.array(vmath.EXP_POLY[::-1], np.longdouble), r)
    assert np.max(np.abs(p / np.exp(r) - 1)) < 1e-12


@needs_libmvec
def test_ieee_float32_exp_is_rounded_once_over_its_whole_range():
    """The inline float64 exp (vmath._exp_lanes), subnormal and overflowing results included;
    NumPy's own float32 exp is inexact for a third of these, up to 2 ULP."""
    rng = np.random.default_rng(1)
    host = np.concatenate([rng.uniform(-104, 89, 200_000), np.linspace(-104, -86, 20_001),
                           np.linspace(86, 89, 20_001)]).astype(np.float32)
    got = np.asarray(nl.exp(nl.asarray(host)))
    with np.errstate(over="ignore"):
        exact = np.exp(host.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(exact))
    finite = np.isfinite(exact)
    ulps = _ulps(got[finite], exact[finite])
    assert ulps.max() <= 1 and np.mean(ulps == 0) > 0.9999


@needs_libmvec
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("precision", ["ieee", "fast"])
def test_a_value_gets_one_result_wherever_it_sits(precision, dtype):
    """The last n % 8 elements go through the same vector function as the lanes (the scalar
    float32 sin and exp were 1 ULP off for these two values)."""
    with nl.backends.cpu.flags(fp32_precision=precision):
        for value, fn in [(-0.35014224, nl.sin), (13.462766, nl.exp), (0.7071, nl.log)]:
            for n in (1, 7, 9, 17):
                got = np.asarray(fn(nl.asarray(np.full(n, value, dtype))))
                assert len(set(got.tolist())) == 1, (value, n, got)


def test_kernel_sources_name_the_vmath_they_were_built_with():
    """Numba's disk cache knows a kernel by its source: a change to vmath.py changes it."""
    import hashlib
    digest = hashlib.sha1(open(vmath.__file__, "rb").read()).hexdigest()[:12]
    assert vmath.IMPORT.endswith(f"# vmath {digest}")


@needs_libmvec
@pytest.mark.parametrize("precision", ["ieee", "fast"])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 37, 1000])
def test_float32_transcendentals_match_numpy_at_every_length(n, precision):
    host = np.linspace(-20, 20, n, dtype=np.float32)
    x = nl.asarray(host)
    with nl.backends.cpu.flags(fp32_precision=precision):
        got = nl.to_cpu([nl.sin(x) * 2 + 1, nl.cos(x) - x, nl.exp(x / 4),
                         nl.log(nl.abs(x) + 1), nl.sum(nl.exp(x / 8))])
    want = [np.sin(host) * 2 + 1, np.cos(host) - host, np.exp(host / 4),
            np.log(np.abs(host) + 1), np.sum(np.exp(host.astype(np.float64) / 8))]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-6, atol=2e-6)


@needs_libmvec
def test_a_fast_row_softmax_matches_numpy_in_one_kernel():
    host = np.random.default_rng(0).standard_normal((5, 37)).astype(np.float32)
    x = nl.asarray(host)
    with nl.backends.cpu.flags(fp32_precision="fast"):
        e = nl.exp(x - nl.max(x, axis=1, keepdims=True))
        y = e / nl.sum(e, axis=1, keepdims=True)
        assert "vexp8(" in _source(y)
        launches = nl.metrics.counter_value("KernelLaunch") or 0
        got = np.asarray(y)
        assert nl.metrics.counter_value("KernelLaunch") - launches == 1
    e = np.exp(host - host.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=2e-6)


_SPECIAL = {   # dtype -> (arguments, rtol, atol)
    np.float32: ([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30, -1e30, 88.8, -104.0, 1e-40],
                 1e-5, 1e-38),
    np.float64: ([0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e300, 5e-324, 709.78, 710.0,
                  -745.2, -708.5, 2.0 ** 24, 2.0 ** 24 + 2, -3e-320, 1e-310], 1e-15, 0),
}


@needs_libmvec
@pytest.mark.parametrize("dtype", list(_SPECIAL))
@pytest.mark.parametrize("precision", ["ieee", "fast"])
def test_transcendentals_keep_special_values(precision, dtype):
    values, rtol, atol = _SPECIAL[dtype]
    host = np.array(values * 2, dtype=dtype)
    x = nl.asarray(host)
    with nl.backends.cpu.flags(fp32_precision=precision):
        got = nl.to_cpu([nl.sin(x), nl.cos(x), nl.exp(x), nl.log(x)])
    with np.errstate(all="ignore"):
        want = [np.sin(host), np.cos(host), np.exp(host), np.log(host)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)     # NaN where NumPy has NaN
        np.testing.assert_array_equal(np.signbit(g[~np.isnan(w)]), np.signbit(w[~np.isnan(w)]))


@needs_libmvec
def test_a_sum_of_lane_function_values_adds_in_the_order_of_a_plain_sum():
    """sum(exp(x)) over 8 lanes: bit for bit the order of a sum without calls (lane j adds
    elements j, j + 8, ... in float64, the lanes pairwise, then the tail)."""
    host = np.random.default_rng(3).normal(size=(3, 45)).astype(np.float32)
    x = nl.asarray(host)
    e = np.asarray(nl.exp(x)).astype(np.float64)                     # the same exp values
    total = nl.sum(nl.exp(x), axis=-1)
    assert "acc_A7 += v_L7" in _source(total)
    got = np.asarray(total)
    for row, value in zip(e, got):
        lanes = [sum(row[j:40:8], np.float64(0)) for j in range(8)]
        while len(lanes) > 1:
            lanes = [a + b for a, b in zip(lanes[::2], lanes[1::2])]
        want = np.float64(0) + lanes[0]
        for t in row[40:]:
            want += t
        assert value == np.float32(want)


def _ulps64(got, exact):
    """Distance of float64 results from extended-precision values, in ULPs of the float64
    nearest to each (finite, normal values)."""
    unit = np.spacing(np.abs(exact.astype(np.float64))).astype(np.longdouble)
    return np.abs((got.astype(np.longdouble) - exact) / unit).astype(np.float64)


_FLOAT64_CASES = {   # name -> arguments: all quadrants, tiny, up to and past the 2^24 limit
    "sin": [(-4, 4), (-1e-6, 1e-6), (-1e4, 1e4), (-2.0 ** 24, 2.0 ** 24), (-1e9, 1e9)],
    "cos": [(-4, 4), (-1e4, 1e4), (-1e9, 1e9)],
    "exp": [(-700, 700), (-1, 1), (-745, -708)],      # the last: subnormal results
    "log": [(0.5, 2), (0.99, 1.01), (0, 1e-300), (0, 1e-310), (1, 1e300)],
}


@needs_libmvec
@pytest.mark.parametrize("precision, worst, rounded", [("ieee", 1.0, 0.95), ("fast", 4.0, 0.3)])
def test_float64_lane_functions_against_extended_precision(precision, worst, rounded):
    """"ieee": within 1 ULP, most results correctly rounded (glibc's scalar functions: 0.52
    ULP); "fast": libmvec's, within 4 ULP."""
    rng = np.random.default_rng(5)
    hosts = {name: np.concatenate([rng.uniform(lo, hi, 40_000) for lo, hi in ranges])
             for name, ranges in _FLOAT64_CASES.items()}
    for name in ("sin", "cos"):                            # near the multiples of pi / 2
        hosts[name] = np.concatenate([hosts[name], np.arange(1, 2001) * (np.pi / 2)])
    with nl.backends.cpu.flags(fp32_precision=precision):
        xs = {name: nl.asarray(h) for name, h in hosts.items()}
        assert f"{'x' if precision == 'ieee' else 'd'}sin8(" in _source(nl.sin(xs["sin"]))
        got = nl.to_cpu([getattr(nl, name)(xs[name]) for name in hosts])
    for (name, host), g in zip(hosts.items(), got):
        exact = getattr(np, name)(host.astype(np.longdouble))
        normal = np.abs(exact) >= np.finfo(np.float64).tiny
        ulps = _ulps64(g[normal], exact[normal])
        assert ulps.max() <= worst, (name, host[normal][np.argmax(ulps)])
        assert np.mean(ulps <= 0.5) > rounded, name
        # subnormal results round once more: within 1 ULP of the subnormal spacing
        tiny = ~normal & (exact != 0)
        assert np.all(np.abs(g[tiny] - exact[tiny]) <= 5e-324 * (1 if precision == "ieee" else 4))
