#!/usr/bin/env bash
# The prepared device check: everything about the CUDA backend that only a GPU can show, in one
# run of under 8 minutes on one H100, with every log and results file written to OUTDIR.
#
#   tests/gpu/device_check.sh OUTDIR
#
# Steps, newest code first (budget in seconds; no step runs past the 465 s deadline):
#   detect     nvidia-smi: the GPU, its compute capability, clocks, throttle reasons      20
#   build      configure for that architecture only; build attnbench and the GPU tests   200
#   gpu-new    GPU tests of the runner (graph timing, fallback, launch overhead, memory
#              outside the pool, 16-bit storage), the calibration and every precision      45
#   calibrate  attnbench calibrate, text and --json (cpu and GPU ceilings)                 30
#   precision  every kernel at dh = 64, N in {512, 4096}, b = 2, h = 8, both forms, every
#              precision (rows of kernels without a precision are skipped at once)          50
#   paper      the paper preset on cuda with --max-point-seconds 2 (about 25 s of points
#              in results/reference/h100-paper-cuda.json; larger points are skipped)        50
#   gpu-fp32   GPU tests of every kernel at fp32 against its CPU twin and float64 (ran once
#              on an H100 before; whatever time is left, at most)                           90
# A failing step prints the tail of its log and makes the exit status 1; the later steps still
# run (those needing a binary the build did not make fail at once), and OUTDIR keeps whatever
# was written (OUTDIR/summary.txt: each step's exit status and time). Without an NVIDIA GPU it
# prints one line and exits 77 (CTest's "skipped").
# Environment: ATTNBENCH_DEVICE_BUILD (build folder, default ./build-device, outside OUTDIR so
# what comes back stays small), JOBS (parallel build jobs, default nproc), CMAKE_ARGS.
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: tests/gpu/device_check.sh OUTDIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${ATTNBENCH_DEVICE_BUILD:-$ROOT/build-device}"
JOBS="${JOBS:-$(nproc)}"
DEADLINE_S=465
START_S=$SECONDS
FAILED=()

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "device_check.sh: no NVIDIA GPU here (nvidia-smi not found); nothing to check"
  exit 77
fi
CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
if ! [[ "$CAP" =~ ^[0-9]+$ ]]; then
  echo "device_check.sh: no NVIDIA GPU here (nvidia-smi lists no device); nothing to check"
  exit 77
fi

mkdir -p "$1" || exit 2
OUT="$(cd "$1" && pwd)"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
export ROOT BUILD JOBS CAP OUT

detect() {
  nvidia-smi
  nvidia-smi --query-gpu=name,compute_cap,memory.total,clocks.sm,clocks.max.sm,clocks.mem,driver_version \
    --format=csv
  nvidia-smi -q -d PERFORMANCE
}

configure_and_build() {
  local gen=() extra=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  read -r -a extra <<<"${CMAKE_ARGS:-}"
  cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="$CAP" "${extra[@]}" &&
    cmake --build "$BUILD" -j "$JOBS" --target attnbench attnbench_gpu_tests
}

# The GPU tests matching a Catch2 test spec, with each case's duration.
gpu_tests() {
  if [ ! -x "$BUILD/attnbench_gpu_tests" ]; then
    echo "no $BUILD/attnbench_gpu_tests (the build failed)"
    return 1
  fi
  "$BUILD/attnbench_gpu_tests" "$1" --durations yes
}

tool() {
  if [ ! -x "$BUILD/attnbench" ]; then
    echo "no $BUILD/attnbench (the build failed)"
    return 1
  fi
  "$BUILD/attnbench" "$@"
}

calibrate_both() {
  tool calibrate && tool calibrate --json >"$OUT/calibrate.json"
}
export -f detect configure_and_build gpu_tests tool calibrate_both

# step NAME BUDGET_S COMMAND...: COMMAND (a function above or a program) with its output in
# OUTDIR/NAME.log, for at most BUDGET_S seconds and never past the deadline. A timeout sends
# SIGINT to the whole process group first: an interrupted sweep still writes its rows.
step() {
  local name="$1" budget="$2"
  shift 2
  local left=$((DEADLINE_S - (SECONDS - START_S)))
  [ "$budget" -gt "$left" ] && budget=$left
  local log="$OUT/$name.log" t0=$SECONDS rc
  if [ "$budget" -le 0 ]; then
    echo "no time left before the ${DEADLINE_S} s deadline" >"$log"
    rc=124
  else
    printf '==> %s (at most %d s): %s\n' "$name" "$budget" "$*"
    timeout -s INT -k 10 "$budget" bash -c '"$@"' step "$@" >"$log" 2>&1
    rc=$?
  fi
  local took=$((SECONDS - t0))
  printf '%-10s exit %-3d %4d s  %s\n' "$name" "$rc" "$took" "$log" >>"$SUMMARY"
  if [ "$rc" -ne 0 ]; then
    FAILED+=("$name")
    local why=""
    [ "$rc" -eq 124 ] && why=", out of time"
    printf '!!! %s FAILED (exit %d after %d s%s); last lines of %s:\n' "$name" "$rc" "$took" \
      "$why" "$log"
    tail -n 25 "$log" | sed 's/^/    /'
  fi
}

step detect 20 detect
step build 200 configure_and_build
step gpu-new 45 gpu_tests "[backend],[calibrate],[precision]"
step calibrate 30 calibrate_both
step precision 50 tool sweep --backend cuda --axis head_dim=64 --axis seq_len=512,4096 \
  --axis batch=2 --axis heads=8 --axis causal=true,false --axis precision=fp32,tf32,bf16,fp16 \
  --warmup 1 --min-reps 10 --max-reps 50 --min-time 0.05 --max-point-seconds 3 --quiet \
  --out "$OUT/precision-cuda.json"
step paper 50 tool sweep --preset paper --backend cuda --max-point-seconds 2 --quiet \
  --out "$OUT/paper-cuda.json"
step gpu-fp32 90 gpu_tests "[kernels]~[precision]"

printf '\ndevice check: %d s in all (deadline %d s); %s:\n' "$((SECONDS - START_S))" \
  "$DEADLINE_S" "$SUMMARY"
cat "$SUMMARY"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "device check FAILED: ${FAILED[*]}"
  exit 1
fi
echo "device check passed"
