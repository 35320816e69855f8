"""nl.backends: the fp32 precision tree (API.md section 6) — resolution, validation, context
managers, frozen flags, the compile-key effect, and each value's effect on generated code."""
import itertools
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import numlazy as nl
from numlazy import backends as B
from numlazy import config, metrics

OPS = ("elementwise", "reduction", "matmul")
GENERIC = ("ieee", "fast")
LEVEL = ("ieee", "fast", "none")


@pytest.fixture(autouse=True)
def _unfrozen():
    yield
    B.enable_global_flags()


def _expected(generic, all_, op_value, op, backend):
    value = next(v for v in (op_value, all_, generic) if v != "none")
    if op == "matmul" and value == "fast":
        return "ieee"               # BLAS / cuBLAS have no fast-math mode
    return value


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_resolution_table_exhaustive(backend):
    """Every combination of generic, backend `all` and op values resolves op -> all ->
    generic, through attribute getters."""
    node = getattr(nl.backends, backend)
    for generic, all_ in itertools.product(GENERIC, LEVEL):
        nl.backends.fp32_precision = generic
        node.fp32_precision = all_
        assert nl.backends.fp32_precision == generic
        assert node.fp32_precision == node.all.fp32_precision == \
            (generic if all_ == "none" else all_)
        for op in OPS:
            for value in config.precision_values(backend, op):
                getattr(node, op).fp32_precision = value
                want = _expected(generic, all_, value, op, backend)
                assert getattr(node, op).fp32_precision == want, (generic, all_, op, value)
                assert B.resolve(backend, op) == want
            getattr(node, op).fp32_precision = "none"
    nl.backends.fp32_precision = "ieee"
    other = nl.backends.cuda if backend == "cpu" else nl.backends.cpu
    assert all(getattr(other, op).fp32_precision == "ieee" for op in OPS)  # untouched


@pytest.mark.parametrize("path, value, allowed", [
    ("cpu", "tf32", "ieee, fast, none"),
    ("cpu.elementwise", "tf32", "ieee, fast, none"),
    ("cpu.matmul", "tf32", "ieee, none"),
    ("cpu.matmul", "fast", "ieee, none"),
    ("cuda.reduction", "tf32", "ieee, fast, none"),
    ("cuda.matmul", "fast", "ieee, tf32, none"),
    ("", "none", "ieee, fast"),
    ("", "tf32", "ieee, fast"),
    ("cuda", "IEEE", "ieee, fast, none"),
    ("cuda.matmul", None, "ieee, tf32, none"),
])
def test_invalid_combinations_name_the_allowed_values(path, value, allowed):
    target = nl.backends
    for part in filter(None, path.split(".")):
        target = getattr(target, part)
    with pytest.raises(ValueError, match=f"accepted values: {allowed}$"):
        target.fp32_precision = value
    if value is not None:                           # None in flags() means unchanged
        with pytest.raises(ValueError, match=f"accepted values: {allowed}$"):
            with target.flags(fp32_precision=value):
                pass
    assert config.get("fp32_precision") == "ieee"


def test_flags_are_declared_in_config_with_strict_env_parsing():
    names = [n for n in config.FLAGS if n.endswith("fp32_precision")]
    assert len(names) == 9 and all(config.FLAGS[n].changes_code for n in names)
    assert config.FLAGS["cuda_matmul_fp32_precision"].env == "NUMLAZY_CUDA_MATMUL_FP32_PRECISION"
    code = "import numlazy as nl; print(nl.backends.cuda.matmul.fp32_precision, " \
           "nl.backends.cpu.reduction.fp32_precision)"
    env = {**os.environ, "NUMLAZY_CUDA_MATMUL_FP32_PRECISION": "tf32", "NUMLAZY_FP32_PRECISION":
           "fast"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["tf32", "fast"], out.stderr
    env = {**os.environ, "NUMLAZY_CPU_FP32_PRECISION": "tf32"}
    out = subprocess.run([sys.executable, "-c", "import numlazy"], capture_output=True,
                         text=True, env=env)
    assert out.returncode != 0 and \
        "NUMLAZY_CPU_FP32_PRECISION='tf32' is not valid: expected one of ieee, fast, none" \
        in out.stderr


def test_context_managers_default_to_unchanged_and_restore_on_exceptions():
    nl.backends.cpu.reduction.fp32_precision = "fast"
    with nl.backends.flags(), nl.backends.cpu.flags(), nl.backends.cpu.reduction.flags():
        assert nl.backends.cpu.reduction.fp32_precision == "fast"     # defaults: unchanged
    before = dict(config.code_flags())
    with pytest.raises(KeyError):
        with nl.backends.flags(fp32_precision="fast", cuda="ieee"):
            with nl.backends.cuda.flags(matmul="tf32", elementwise="fast"):
                with nl.backends.cpu.matmul.flags(fp32_precision="ieee"):
                    assert nl.backends.cuda.matmul.fp32_precision == "tf32"
                    assert nl.backends.cuda.elementwise.fp32_precision == "fast"
                    assert nl.backends.cuda.reduction.fp32_precision == "ieee"
                    assert nl.backends.cpu.elementwise.fp32_precision == "fast"
                    raise KeyError("boom")
    assert dict(config.code_flags()) == before
    # A rejected value inside flags() changes nothing.
    with pytest.raises(ValueError):
        with nl.backends.cuda.flags(elementwise="fast", matmul="fast"):
            pass
    assert dict(config.code_flags()) == before


def test_frozen_flags_forbid_assignment_but_not_context_managers():
    assert not nl.backends.flags_frozen()
    nl.backends.disable_global_flags()
    assert nl.backends.flags_frozen()
    for target in (nl.backends, nl.backends.cpu, nl.backends.cuda.matmul):
        with pytest.raises(RuntimeError, match="frozen"):
            target.fp32_precision = "ieee"
    with nl.backends.cuda.matmul.flags(fp32_precision="tf32"):
        assert nl.backends.cuda.matmul.fp32_precision == "tf32"
    assert nl.backends.cuda.matmul.fp32_precision == "ieee"
    B.enable_global_flags()
    nl.backends.cuda.matmul.fp32_precision = "tf32"


def _sum_step(x):
    s = nl.sum(x * 2.0)
    nl.mark_step()
    return float(s)


def test_precision_is_part_of_the_compile_key():
    x = nl.asarray(np.linspace(0, 1, 1000), device="cpu")
    _sum_step(x)                                 # warm: ieee program cached
    metrics.reset()
    _sum_step(x)
    assert metrics.counter_value("UncachedCompile") in (0, None)
    with nl.backends.cpu.flags(reduction="fast", elementwise="fast"):
        _sum_step(x)
        assert metrics.counter_value("UncachedCompile") == 1         # switching recompiles
        _sum_step(x)
    _sum_step(x)                                                      # back: a cache hit
    assert metrics.counter_value("UncachedCompile") == 1
    assert metrics.counter_value("CachedCompile") == 3
    with nl.backends.cpu.flags(reduction="fast", elementwise="fast"):
        _sum_step(x)
    assert metrics.counter_value("UncachedCompile") == 1              # fast cached too


def _source(*arrays):
    return nl.debug.dump_ir(list(arrays), "backend")


def test_fast_uses_the_documented_flag_set_and_strict_wins_in_a_fused_kernel():
    x = nl.asarray(np.linspace(0, 1, 64), device="cpu")
    flags = "fastmath={'afn', 'arcp', 'contract', 'nsz', 'reassoc'}"
    assert "fastmath" not in _source(nl.sum(x * 2.0))
    with nl.backends.cpu.flags(fp32_precision="fast"):
        assert flags in _source(nl.sum(x * 2.0))
        assert flags in _source(nl.sin(x) + 1)
    with nl.backends.cpu.flags(reduction="fast"):
        assert flags in _source(nl.sum(x))                 # a plain reduction
        assert "fastmath" not in _source(nl.sum(x * 2.0))  # an ieee elementwise op inside
        assert "fastmath" not in _source(nl.sin(x))
    with nl.backends.cuda.flags(fp32_precision="fast"):    # another backend's setting
        assert "fastmath" not in _source(nl.sum(x))


def test_fast_vectorizes_cpu_reductions_and_stays_within_the_documented_error():
    """`fast` lets LLVM reassociate the accumulation: the loop becomes vector adds (seen in
    the machine code), and the sum stays within a few ULPs times log2(n) of the ieee one;
    NaN and Inf keep their meaning (no nnan/ninf)."""
    from numlazy.ir import Graph
    import numlazy.executor as ex
    rng = np.random.default_rng(1)
    host = rng.random(10_000)
    x = nl.asarray(host, device="cpu")
    exact = 2 * float(np.sum(host))
    ieee = _sum_step(x)
    with nl.backends.cpu.flags(reduction="fast"):
        fast = _sum_step(x)
        s = nl.sum(x)
        backend = nl.registry.backend_for(nl.device("cpu"))
        graph = Graph([s._node])
        program, _ = ex._program(graph, nl.device("cpu"), backend)
        launcher = program.compiled[0]
        nl.mark_step()
        serial = launcher.serial
        assert set(serial.targetoptions["fastmath"]) == set(B.FAST_FLAGS)
        # The kernel came from Numba's disk cache (no IR to inspect): compile its Python
        # function again, uncached, with the same options, and read the LLVM IR.
        options = {k: v for k, v in serial.targetoptions.items()
                   if k not in ("cache", "nopython")}
        again = numba.njit(**options)(serial.py_func)
        out = np.empty(1)
        again((10,), 1, out, host[:10])
        assert out[0] == pytest.approx(host[:10].sum())
        llvm = "\n".join(again.inspect_llvm().values())
    assert abs(fast - exact) <= 1e-12 * abs(exact) and abs(ieee - exact) <= 1e-12 * abs(exact)
    assert "fadd reassoc" in llvm or "fadd fast" in llvm
    assert "<2 x double>" in llvm or "<4 x double>" in llvm or "<8 x double>" in llvm
    with nl.backends.cpu.flags(fp32_precision="fast"):
        y = nl.asarray(np.array([1.0, np.nan, np.inf]), device="cpu")
        flags = nl.isnan(y), nl.isinf(y), nl.sum(y)
        nl.mark_step()
        assert np.asarray(flags[0]).tolist() == [False, True, False]
        assert np.asarray(flags[1]).tolist() == [False, False, True]
        assert np.isnan(float(flags[2]))


def test_describe_lists_every_node():
    d = nl.backends.describe()
    assert set(d) == {"generic"} | {f"{b}.{o}" for b in ("cpu", "cuda")
                                    for o in ("all",) + OPS}
    assert set(d.values()) == {"ieee"}


def test_unknown_nodes_raise():
    with pytest.raises(ValueError, match="backends: cpu, cuda"):
        B.resolve("numpy", "reduction")
    with pytest.raises(ValueError, match="op kinds: all, elementwise, reduction, matmul"):
        B.resolve("cpu", "conv")


def test_info_reports_backends_accelerator_resolved_flags_and_cache():
    env = {**os.environ, "NUMLAZY_CUDA_MATMUL_FP32_PRECISION": "tf32"}
    out = subprocess.run([sys.executable, "-m", "numlazy", "info"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "backend cpu: available, 1 device(s)" in text and "backend numpy:" in text
    assert "accelerator: " in text and "numba_cuda: " in text
    assert "cuda.matmul=tf32" in text and "cpu.reduction=ieee" in text
    assert "flag cuda_matmul_fp32_precision = 'tf32'" in text
    assert "kernel cache: " in text and " files, " in text
