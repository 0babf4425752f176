#!/usr/bin/env bash
# The GPU check, in one go on a bare GPU machine (no network; CuPy and PyTorch with CUDA installed):
#   1. the `gpu` tests: every registered op and every layer on CuPy against NumPy (float64 within 1e-10,
#      float32 within 1e-5), the optimisers, a training run and `new-grad train --device gpu` against the CPU;
#   2. the GPU benchmarks beside PyTorch CUDA eager on the same card (python -m benchmarks.gpu);
#   3. a short report: DIR/report.md (+ the logs, gpu_bench.md/json, the tests' JUnit XML).
#
#   benchmarks/gpu_check.sh [DIR]                    DIR defaults to $OUT, else runs/gpu-check
#   DEVICE=standin WORKERS=2 benchmarks/gpu_check.sh DIR   rehearsal on the CPU stand-in (times mean nothing)
#
# It runs the machine's python3 (or $PYTHON) on this checkout with PYTHONPATH=src and installs nothing.
# Time: tests at most TEST_SECONDS (330), benchmarks at most BENCH_SECONDS (150): under 8 minutes in all.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-gpu}
DIR=${1:-${OUT:-runs/gpu-check}}
mkdir -p "$DIR"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export NEW_GRAD_TEST_DEVICE=$DEVICE
REPORT=$DIR/report.md
start=$(date +%s)

{
  echo "# new_grad GPU check, $(date -u +%Y-%m-%dT%H:%MZ), device $DEVICE"
  echo
  echo '```'
  command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | head -4
  "$PY" - <<'PY' 2>&1
import platform, numpy
print("python", platform.python_version(), "| numpy", numpy.__version__)
for name in ("cupy", "torch", "pytest", "xdist", "hypothesis"):
    try:
        m = __import__(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as e:
        print(name, "MISSING:", type(e).__name__, e)
try:
    import cupy
    p = cupy.cuda.runtime.getDeviceProperties(0)
    print("GPU 0:", p["name"].decode() if isinstance(p["name"], bytes) else p["name"],
          "| CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(), "| driver", cupy.cuda.runtime.driverGetVersion())
except Exception as e:
    print("CuPy sees no GPU:", type(e).__name__, e)
try:
    import torch
    print("torch.cuda:", torch.cuda.is_available(), torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:
    print("torch:", type(e).__name__, e)
PY
  echo '```'
} > "$REPORT"
cat "$REPORT"

# 1. the gpu tests (xdist when present: each worker compiles its own CuPy kernels)
par=()
"$PY" -c "import xdist" 2>/dev/null && par=(-n "${WORKERS:-8}")
echo "== pytest -m gpu (device $DEVICE, ${par[*]:-serial}), at most ${TEST_SECONDS:-330} s"
timeout -s INT -k 30 "${TEST_SECONDS:-330}" "$PY" -m pytest -m gpu tests -q -rfE -p no:cacheprovider "${par[@]}" \
  --junitxml "$DIR/gpu_tests.xml" >"$DIR/gpu_tests.log" 2>&1
test_rc=$?
if [ "$test_rc" = 0 ] && ! grep -qE "[0-9]+ passed" "$DIR/gpu_tests.log"; then
  test_rc=5  # everything skipped: no GPU or no CuPy seen
fi
tail -n 40 "$DIR/gpu_tests.log"
summary=$(grep -E "[0-9]+ (passed|failed|skipped|errors?)( |,|$)" "$DIR/gpu_tests.log" | tail -n 1)
{
  echo
  case $test_rc in
    0) state="all passed" ;; 5) state="nothing ran: CuPy or the GPU not seen" ;;
    124 | 130 | 137) state="stopped at the time limit" ;; *) state="failures" ;;
  esac
  echo "## gpu tests: exit $test_rc ($state)"
  echo
  echo "${summary:-no summary line: see gpu_tests.log}"
  grep -E "^(FAILED|ERROR) " "$DIR/gpu_tests.log" | head -n 60 | sed 's/^/- /'
} >>"$REPORT"

# 2. the benchmarks
echo "== python -m benchmarks.gpu --device $DEVICE, at most ${BENCH_SECONDS:-150} s"
bench_args=(--device "$DEVICE" --out "$DIR")
[ "$DEVICE" = gpu ] || bench_args+=(--quick)
timeout -s INT -k 20 "${BENCH_SECONDS:-150}" "$PY" -m benchmarks.gpu "${bench_args[@]}" >"$DIR/bench.log" 2>&1
bench_rc=$?
tail -n 30 "$DIR/bench.log"
{
  echo
  echo "## benchmarks: exit $bench_rc"
  echo
  if [ -f "$DIR/gpu_bench.md" ]; then cat "$DIR/gpu_bench.md"; else tail -n 20 "$DIR/bench.log"; fi
  echo
  echo "Total $(( $(date +%s) - start )) s."
} >>"$REPORT"
echo "== report: $REPORT"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ]
