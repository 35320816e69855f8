"""Every generated CUDA kernel of a representative set of graphs compiles for a real GPU.

The CUDA simulator runs kernels as Python and tolerates code a GPU rejects, so the `cuda` runs
of the backend suite are not enough: here each kernel variant the CUDA backend renders is
compiled to PTX for sm_90 with `numba.cuda.compile_ptx` (no GPU needed once numba-cuda[cu13]
is installed). It runs in a child process without NUMBA_ENABLE_CUDASIM, because the simulator
replaces `numba.cuda` for the whole process. Skipped when numba-cuda is not installed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                                reason="numba-cuda is not installed")

SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import numlazy as nl
    from numlazy import ops
    from numlazy.ir import Graph
    from numlazy_cuda.ptx import compile_graph, compile_matmul

    def on(x, dtype=None):
        return nl.asarray(np.asarray(x, dtype=dtype), device="cpu")

    results = {}

    def check(label, *arrays):
        results[label] = compile_graph(Graph([a._node for a in arrays]))

    # Every elementwise op on every dtype it accepts: one multi-output kernel per dtype.
    names = sorted(n for n, op in ops.TABLE.items() if op.kind == ops.ELEMENTWISE
                   and op.ufunc is not None)
    for dtype in ("bool", "int8", "int32", "int64", "uint8", "uint64", "float32", "float64",
                  "complex64", "complex128"):
        a, b = on(np.ones(4), dtype), on(np.ones(4), dtype)
        outs = []
        for name in names:
            fn = getattr(nl, name)
            try:
                outs.append(fn(a) if ops.TABLE[name].nin == 1 else fn(a, b))
            except TypeError:
                pass
        outs.append(nl.round(a))
        outs.append(nl.where(a == b, a, b))
        outs.append(a.astype("complex64" if a.dtype.kind == "c" else "float32"))
        outs.append(a + 2)
        outs += [nl.real(a), nl.imag(a)] if dtype != "bool" else []
        check(f"elementwise-{dtype}", *outs)
    # Complex with real operands, Python complex scalars (runtime values), casts.
    f, c = on(np.ones(4), "float32"), on(np.ones(4), "complex64")
    check("complex-mixed", f * 1j + c, c * (2 - 1j), f.astype("complex128") / c,
          nl.linspace(0j, 1 + 2j, 5), nl.full((3,), 1j), c.astype("bool"))

    # Views, broadcasts, creation ops, rank 3.
    x = on(np.ones((3, 4, 5)))
    v = on(np.ones(5))
    check("views", nl.permute_dims(x * 2, (2, 1, 0))[::-1, 1:3] + 1, x + v, nl.flip(x, axis=1) * x,
          nl.reshape(x, (12, 5))[::2] - 1, nl.arange(10) * 2.0, nl.linspace(0, 1, 7),
          nl.eye(4, 5, k=1), nl.full((2, 3), 7, dtype="int16"), x[1] * 3)
    # Gathers: concat, roll and stack read the chosen source in a conditional expression.
    check("gathers", nl.concat([x, x[:, ::2] * 2], axis=1) + 1, nl.roll(x, 2, axis=2),
          nl.stack([v, v + 1]), nl.concat([on(np.ones(3), "int8"), on(np.ones(2), "int8")]))
    # take: the kernel reads an index from an array, then the source there (clipped).
    idx = on([2, 0, -1], "int64")
    check("take", nl.take(x, idx, axis=1) * 2 + 1, x[:, :, on([4, 0], "int32")],
          nl.take(on(np.ones(4), "uint8"), idx) + 1)

    # Reductions: full and over axes (leading, trailing, middle), with fused producers.
    for dtype in ("float32", "float64", "int32", "uint8", "bool", "complex64", "complex128"):
        m = on(np.ones((3, 4, 5)), dtype)
        for name in ("sum", "prod", "max", "min", "argmax", "argmin", "any", "all"):
            fn = getattr(nl, name)
            if dtype.startswith("complex") and name in ops.ORDERED:
                continue
            arrays = [fn(m)]
            if name in ("argmax", "argmin"):
                arrays.append(fn(m, axis=1))
            else:
                arrays += [fn(m, axis=2), fn(m, axis=(0, 1)), fn(m, axis=1)]
            check(f"{name}-{dtype}", *arrays)

    # The PERF.md workloads.
    a, b, c = (on(np.ones(8), "float32") for _ in range(3))
    y = nl.sin(a) * b + 0.5 * c * c - a
    check("chain", y)
    check("dotsum", nl.sum(a * b))
    s = on(np.ones((4, 8)), "float32")
    e = nl.exp(s - nl.max(s, axis=1, keepdims=True))
    check("softmax", e / nl.sum(e, axis=1, keepdims=True))
    check("mean-var", nl.mean(s, axis=0), nl.var(s), nl.std(s, axis=1))
    z = on(np.ones((4, 8)), "complex64")
    check("complex-stats", nl.mean(z, axis=0), nl.var(z), nl.std(z, axis=1),
          nl.vecdot(z, z), nl.sum(z * nl.conj(z), axis=1))

    # Row kernels (fusion.RowKernel): phases of every reduction kind, rank 3 with one and two
    # outer dims, a stored intermediate, a phase over the rows only, float64 softmax.
    for dtype, axes in (("float32", (1, 2)), ("float32", (2,)), ("float64", (2,)),
                        ("int32", (1, 2)), ("bool", (2,))):
        m = on(np.ones((2, 3, 4)), dtype)
        lo, hi = nl.min(m, axis=axes, keepdims=True), nl.max(m, axis=axes)
        centered = (m - lo) * 2 if dtype != "bool" else \
            m ^ nl.any(m, axis=axes, keepdims=True)
        check(f"row-{dtype}-{len(axes)}", centered, hi, nl.sum(centered, axis=axes),
              nl.argmax(nl.flip(m, axis=-1), axis=-1),
              nl.any(m, axis=axes), nl.all(m, axis=axes))
    d = on(np.ones((4, 8)), "float64")
    e = nl.exp(d - nl.max(d, axis=1, keepdims=True))
    check("softmax-float64", e, e / nl.sum(e, axis=1, keepdims=True))
    check("row-scalars", nl.max(s, axis=1) - nl.min(s, axis=1),
          nl.argmin(s, axis=1) + nl.prod(s, axis=1))

    for dtype in ("float32", "float64", "int32", "uint64", "bool", "complex64", "complex128"):
        results[f"matmul-{dtype}"] = [[0, "matmul", compile_matmul(dtype)]]
    json.dump(results, sys.stdout)
''')


def test_every_generated_kernel_compiles_to_ptx(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["NUMLAZY_CACHE_DIR"] = str(tmp_path)
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = json.loads(proc.stdout)
    variants = [v for compiled in results.values() for v in compiled]
    assert all(size > 0 for _, _, size in variants)
    assert {name for _, name, _ in variants} == \
        {"flat", "rows", "block", "thread", "exact", "partial", "final", "matmul"}
    # Row kernels: one kernel, its three variants.
    for label in ("softmax", "softmax-float64", "row-scalars"):
        assert sorted((j, name) for j, name, _ in results[label]) == \
            [(0, "block"), (0, "exact"), (0, "thread")], label
