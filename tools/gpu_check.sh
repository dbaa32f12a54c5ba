#!/usr/bin/env bash
# Build fastxent in place on a GPU machine, run the GPU tests and the GPU benchmark.
# Logs go to $OUT (the device tool's folder) or ./gpu-out. Extra arguments:
#   PYTEST_ARGS="-k sparse" BENCH_ARGS="--shapes 8192x1000" tools/gpu_check.sh
set -o pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
$python -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__,
 'cupy', cupy.__version__, 'cuda runtime', cupy.cuda.runtime.runtimeGetVersion())" | tee -a "$out/gpu.txt"
$python setup.py -q build_ext --inplace >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
$python -m pytest -q -p no:cacheprovider tests/backends/test_gpu.py $PYTEST_ARGS 2>&1 | tee "$out/tests.log"
tests=$?
$python -m fastxent bench --device gpu $BENCH_ARGS --json "$out/bench.json" 2>"$out/bench.log" \
    | tee "$out/bench.txt"
bench=$?
tail -5 "$out/bench.log"
exit $((tests || bench))
