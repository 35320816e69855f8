"""pytest-benchmark cases for the CPU workloads: numlazy (devices cpu and numpy) and the anchors.

    pytest bench/ --benchmark-only                 # time (see bench/conftest.py)
    BENCH_N=2**24 pytest bench/ --benchmark-only   # 1-D size; softmax uses isqrt(N) x isqrt(N)
    pytest bench/                                  # each case once, as a correctness check

Groups are "<workload> <dtype>", so each table compares like with like.  Every case is warmed
up (the first call compiles) and its result checked against a float64 NumPy reference before
timing: numlazy must agree; an anchor outside tolerance is timed with a warning.  numlazy cases
also check that timing did not recompile.  Timed calls cycle through several input sets when
one fits in the last-level cache (anchors.input_sets).
"""
import functools
import os
import warnings

import pytest

import anchors as A


def _bench_n():
    raw = os.environ.get("BENCH_N", "2**22").replace(" ", "")
    base, _, exp = raw.partition("**")
    return int(base) ** int(exp) if exp else int(base)


N = _bench_n()
DTYPES = ["float64", "float32"]


@functools.lru_cache(maxsize=1)  # cases of one (workload, dtype) run one after another
def _input_sets(workload, dtype):
    return A.input_sets(workload, N, dtype)


def _run(benchmark, workload, dtype, impl, numlazy_device=None):
    sets = _input_sets(workload, dtype)
    impls = dict(A.implementations(workload, sets, anchors=numlazy_device is None,
                                   numlazy_devices=[numlazy_device] if numlazy_device else []))
    if impl not in impls:
        pytest.skip(f"{impl} not available for {workload}")
    fn = impls[impl]
    strict = numlazy_device is not None
    note = A.warm_and_check(workload, fn, sets, A.reference(workload, sets[0]), dtype, strict)
    if note:  # an anchor outside tolerance is still timed, and flagged
        benchmark.extra_info["note"] = note
        warnings.warn(f"{workload} {dtype} {impl}: {note}", stacklevel=2)
    benchmark.group = f"{workload} {dtype}"
    benchmark.extra_info["bytes"] = A.MIN_TRAFFIC[workload] * sets[0][0].nbytes
    benchmark.extra_info["shape"] = list(sets[0][0].shape)
    benchmark.extra_info["input_sets"] = len(sets)
    before = A.compile_count() if strict else None
    benchmark(fn)
    if strict:
        after = A.compile_count()
        assert before == after, f"numlazy recompiled while being timed ({before} -> {after})"


@pytest.mark.parametrize("device", ["cpu", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("workload", A.WORKLOADS)
def test_numlazy(benchmark, workload, dtype, device):
    if A.nl is None:
        pytest.skip(f"numlazy not importable: {A.NUMLAZY_ERROR}")
    _run(benchmark, workload, dtype, f"numlazy[{device}]", numlazy_device=device)


def _anchor_cases():
    """(workload, anchor name) for every anchor of every workload, BLAS aside (it runs last)."""
    cases = []
    for w in A.WORKLOADS:
        tiny = [A.make_inputs(w, 4, "float64")]
        names = [name for name, _ in A.implementations(w, tiny, numlazy_devices=())]
        if A.ne is None:
            names.append("numexpr")  # shows up as skipped, with the reason
        cases += [(w, name) for name in names if name != "numpy dot (BLAS)"]
    return cases


@pytest.mark.parametrize("workload, impl", _anchor_cases())
@pytest.mark.parametrize("dtype", DTYPES)
def test_anchor(benchmark, workload, dtype, impl):
    if impl == "numexpr" and A.ne is None:
        pytest.skip(A.NUMEXPR_NOTE)
    _run(benchmark, workload, dtype, impl)


# Last in the file on purpose: OpenBLAS threads keep spinning ~0.1 s after a BLAS call and
# slow whichever Numba parallel kernel runs next (NUMBA_NOTES.md).
@pytest.mark.parametrize("dtype", DTYPES)
def test_dotsum_blas(benchmark, dtype):
    _run(benchmark, "dotsum", dtype, "numpy dot (BLAS)")
