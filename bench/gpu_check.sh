#!/usr/bin/env bash
# On the GPU host (PERF.md "On the GPU host"): the CUDA backend's tests on the real GPU, then
# bench/gpu_check.py's timings against CuPy.  From the repository root, with the cp312 wheels
# numpy==2.4.6 and numba-cuda==0.30.4 in .whl/:
#   bash bench/gpu_check.sh [pytest -k expression] [log2 elements]
# Writes logs to $OUT (or ./gpu_check_out) when set.
set -uo pipefail
OUTDIR=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUTDIR"
SITE=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/numpy-2.4.6-*.whl .whl/numba_cuda-0.30.4-*.whl || exit 1
# numlazy from this checkout, with its backend entry points (as `pip install -e .` would).
mkdir -p "$SITE/numlazy-0.1.0.dist-info"
printf 'Metadata-Version: 2.1\nName: numlazy\nVersion: 0.1.0\n' > "$SITE/numlazy-0.1.0.dist-info/METADATA"
printf '[numlazy.backends]\ncpu = numlazy_cpu:CpuBackend\ncuda = numlazy_cuda:CudaBackend\n' \
    > "$SITE/numlazy-0.1.0.dist-info/entry_points.txt"
export PYTHONPATH=$SITE:$PWD:$PWD/backends
export NUMLAZY_CACHE_DIR=/tmp/numlazy-cache NUMBA_CACHE_DIR=/tmp/numba-cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import numpy, numba, numba.cuda as c, cupy; d = c.get_current_device();
print('numpy', numpy.__version__, 'numba', numba.__version__, 'numba-cuda', c.__version__ if hasattr(c, '__version__') else '?', 'cupy', cupy.__version__, d.name, d.compute_capability, 'SMs', d.MULTIPROCESSOR_COUNT)"
export NUMLAZY_DEVICE=cuda
python3 -c "import numlazy as nl; print(nl.list_backends())"
K=${1:-cuda}
timeout ${BENCH_TIMEOUT:-200} python3 bench/gpu_check.py "${2:-27}" 2>&1 | tee "$OUTDIR/bench.log"
XDIST=""
python3 -c "import xdist" 2>/dev/null && XDIST="-n 8"
timeout ${TEST_TIMEOUT:-360} python3 -m pytest -q -p no:cacheprovider $XDIST tests/backend -k "$K" \
    -W ignore::RuntimeWarning 2>&1 | tee "$OUTDIR/tests.log" | grep -E "^(FAILED|ERROR)|passed|failed" | head -60
