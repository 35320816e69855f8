"""The "fast" and "tf32" precisions change the PTX a GPU runs (compiled without a GPU, in a
child process without NUMBA_ENABLE_CUDASIM, as in test_cuda_ptx.py): fast float32 kernels use
the approximate `sin.approx`/`ex2.approx` instructions and flush denormals, ieee ones do not;
the tf32 tiled matmul rounds its operands. Skipped when numba-cuda is not installed."""
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
    import json
    import numpy as np
    import numlazy as nl
    from numba import cuda
    from numlazy import cache, fusion
    from numlazy.backends import fastmath
    from numlazy.codegen import KernelParts
    from numlazy.ir import Graph
    from numlazy_cuda import render
    from numlazy_cuda.ptx import _argtypes

    x = nl.asarray(np.ones(4, np.float32), device="cpu")
    y = nl.sin(x) * nl.exp(x)
    graph = Graph([y._node])
    kernel = fusion.partition(graph, lambda op: True, False).kernels[0]
    out = {}
    for label in ("ieee", "fast"):
        with nl.backends.cuda.flags(fp32_precision=label):
            flags = fastmath("cuda", graph, kernel)
        module = cache.load_module(render.render(KernelParts(graph, kernel), False, flags))
        flat = module.flat
        ptx, _ = cuda.compile_ptx(flat.py_func, tuple(_argtypes(graph, kernel)), cc=(9, 0),
                                  fastmath=flat.targetoptions.get("fastmath", False))
        out[label] = ptx
    module = cache.load_module(render.matmul_source(np.dtype(np.float32), False, True))
    from numba import types
    arr = types.Array(types.float32, 2, "A")
    out["tf32"], _ = cuda.compile_ptx(module.matmul.py_func, (arr, arr, arr), cc=(9, 0))
    print(json.dumps(out))
''')


def test_precision_changes_the_ptx():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ptx = json.loads(result.stdout.strip().splitlines()[-1])
    # fast: approximate sine and exponential, denormals flushed, no correctly rounded FMAs.
    assert ptx["fast"].count("sin.approx") > 0 and "sin.approx" not in ptx["ieee"]
    assert ptx["fast"].count("ex2.approx") > ptx["ieee"].count("ex2.approx")
    assert ptx["fast"].count(".ftz") > ptx["ieee"].count(".ftz")
    # tf32: operands times 8193 (0f46000400) with a rounded multiply, split, then multiplied.
    assert "mul.rn.f32" in ptx["tf32"] and "0f46000400" in ptx["tf32"]
