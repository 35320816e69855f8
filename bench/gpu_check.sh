#!/usr/bin/env bash
# On the GPU host (PERF.md "On the GPU host"), from the repository root, with the cp312 wheels
# numpy==2.4.6 and numba-cuda==0.30.4 in .whl/:
#
#   bash bench/gpu_check.sh [PHASE ...]        (default: tests gpu cpu engine)
#
#   tests   the backend test suite on the real GPU (pytest tests/backend -k cuda)
#   gpu     bench/gpu_check.py: chain, dotsum, softmax (2^27 float32), tiny, against the GPU
#           anchors installed there (CuPy, cupy.fuse, JAX, torch.compile, numba.cuda)
#   rows    bench/cuda_rows.py: the softmax row kernel's variants, alone and in a step
#   cpu     bench/compare.py on the host's CPU cores (float64 and float32, 2^25)
#   engine  bench/engine.py: tiny, logreg, cold, matmul 4096^2 on the CPU
#   setup   nothing more: the wheels installed, for commands of your own after it
#
# Logs go to $OUT (or ./gpu_check_out). Each phase has its own time limit (PHASE_TIMEOUT_*).
set -uo pipefail
OUTDIR=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUTDIR"
SITE=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/numpy-2.4.6-*.whl .whl/numba_cuda-0.30.4-*.whl || exit 1
# Byte-compiled as a normal install is: without it every process compiled numpy's sources
# again (172 modules, 0.66 s of a profiled cold second process).
python3 -m compileall -q -j 0 "$SITE" >/dev/null 2>&1
# numlazy from this checkout, with its backend entry points (as `pip install -e .` would).
mkdir -p "$SITE/numlazy-0.1.0.dist-info"
printf 'Metadata-Version: 2.1\nName: numlazy\nVersion: 0.1.0\n' > "$SITE/numlazy-0.1.0.dist-info/METADATA"
printf '[numlazy.backends]\ncpu = numlazy_cpu:CpuBackend\ncuda = numlazy_cuda:CudaBackend\n' \
    > "$SITE/numlazy-0.1.0.dist-info/entry_points.txt"
export PYTHONPATH=$SITE:$PWD:$PWD/backends
export NUMLAZY_CACHE_DIR=/tmp/numlazy-cache NUMBA_CACHE_DIR=/tmp/numba-cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import os, numpy, numba, numba.cuda as c; d = c.get_current_device();
print('numpy', numpy.__version__, 'numba', numba.__version__, d.name, d.compute_capability,
      'SMs', d.MULTIPROCESSOR_COUNT, 'cpus', os.cpu_count())"

PHASES=${*:-tests gpu cpu engine}
for phase in $PHASES; do
    echo "==> $phase ($(date +%T))"
    case $phase in
    tests)
        XDIST=""
        python3 -c "import xdist" 2>/dev/null && XDIST="-n 8"
        NUMLAZY_DEVICE=cuda timeout "${PHASE_TIMEOUT_TESTS:-300}" python3 -m pytest -q \
            -p no:cacheprovider $XDIST tests/backend -k cuda -W ignore::RuntimeWarning 2>&1 \
            | tee "$OUTDIR/tests.log" | grep -E "^(FAILED|ERROR)|passed|failed" | head -40 ;;
    gpu)
        timeout "${PHASE_TIMEOUT_GPU:-240}" python3 bench/gpu_check.py "${GPU_LOG2:-27}" 2>&1 \
            | tee "$OUTDIR/gpu.log" | grep -v "^|" ;;
    rows)
        PYTHONPATH=$PYTHONPATH:$PWD/bench timeout "${PHASE_TIMEOUT_ROWS:-200}" \
            python3 bench/cuda_rows.py --configs "${ROW_CONFIGS:-exact:8:512:fast:scalar,exact:8:512:fast,exact:8:512:scalar,exact:8:512,exact:8:512:fast:scalar,exact:8:512:fast}" \
            2>&1 | tee "$OUTDIR/rows.log" ;;
    cpu)
        for dtype in ${CPU_DTYPES:-float64 float32}; do
            timeout "${PHASE_TIMEOUT_CPU:-150}" python3 bench/compare.py --n 2**25 \
                --repeat "${CPU_REPEAT:-9}" \
                --dtype $dtype 2>&1 | tee "$OUTDIR/cpu-$dtype.log"
        done ;;
    engine)
        timeout "${PHASE_TIMEOUT_ENGINE:-150}" python3 bench/engine.py --repeat 5 \
            --matmul-n 4096 2>&1 | tee "$OUTDIR/engine.log" ;;
    setup) ;;
    *) echo "unknown phase $phase (tests, gpu, rows, cpu, engine, setup)"; exit 2 ;;
    esac
done
# The tables last, where the reply's tail shows them.
grep -h "^|" "$OUTDIR/gpu.log" 2>/dev/null
exit 0
