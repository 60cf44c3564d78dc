#!/usr/bin/env bash
# attnbench: one entry point for users and CI.
#   ./run_all.sh            install what is missing, build, sweep (default preset), plots, report
#   ./run_all.sh test       install what is missing, build, run the test suite (CTest)
#   ./run_all.sh --help     every subcommand
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="${ATTNBENCH_BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"
PY=/usr/bin/python3   # Debian's interpreter: has matplotlib and numpy (the first python3 on PATH may not)

stage() { printf '\n==> %s\n' "$*"; }
die() { printf 'run_all.sh: error: %s\n' "$*" >&2; exit 1; }

# Debian packages the build and the plots need. Installed only when missing.
DEB_PACKAGES=(build-essential cmake ninja-build pkg-config libbenchmark-dev nlohmann-json3-dev
  libfmt-dev catch2 libcli11-dev libopenblas-openmp-dev libomp-dev valgrind
  python3-matplotlib python3-numpy python3-jsonschema)
# Installed only by `./run_all.sh peers` (large, and nothing else needs it).
PEERS_DEB_PACKAGES=(python3-torch)

install_deps() { install_packages "${DEB_PACKAGES[@]}"; }

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  stage "installing missing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "missing packages (${missing[*]}) and no root/sudo to install them"
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || true
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get could not install: ${missing[*]}"
}

configure_build() {
  stage "configuring and building ($BUILD)"
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
  fi
  cmake --build "$BUILD" -j "$JOBS"
}

run_tests() {
  stage "running tests (CTest)"
  (cd "$BUILD" && ctest --output-on-failure -j "$JOBS" "$@")
}

latest_results() {  # newest results file of a preset
  ls -t "$ROOT"/results/*-"$1".json 2>/dev/null | head -n 1
}

run_sweep() {  # run_sweep PRESET [attnbench sweep args...]
  local preset="$1"; shift
  local out="$ROOT/results/$(date -u +%Y%m%d-%H%M%S)-$(hostname -s)-$preset.json"
  stage "sweep: preset '$preset' on every backend present -> ${out#$ROOT/}"
  "$BUILD/attnbench" sweep --preset "$preset" --backend all --out "$out" "$@"
  SWEEP_OUT="$out"
}

run_plots() {  # run_plots RESULTS.json...
  [ $# -gt 0 ] || die "plots: give at least one results file (results/*.json)"
  [ -x "$PY" ] || die "plots need Debian's python3 at $PY (package python3-matplotlib)"
  stage "plots and report -> results/REPORT.md, results/figures/"
  "$PY" "$ROOT/plots/attnplots.py" --out "$ROOT/results" "$@"
}

usage() {
  cat <<USAGE
usage: ./run_all.sh [COMMAND] [ARGS]

  (no command)        install missing packages, build, run the 'default' sweep on every
                      backend present (CPU; CPU and GPU where a GPU is), draw the plots and
                      write the report (results/REPORT.md, results/figures/)
  test                install, build, run every test (CTest; GPU tests skip without a GPU)
  build               install missing packages and build only
  sweep PRESET [ARGS] run one sweep preset (smoke, default, paper) or a sweep file
                      (harness/sweeps/*.json); ARGS go to 'attnbench sweep'
                      (e.g. --axis seq_len=512,1024 --kernels lisa_base)
  paper               the long 'paper' preset (LISA's profiling setting), plots and report
  plots RESULTS...    figures and report from results files (several machines welcome)
  compare BASE NEW    compare two results files; exit 1 on a regression
  calibrate           measure this machine's sgemm rate and memory bandwidth
  limits [ARGS]       the CPU performance targets: the 'limits' sweep with every thread and
                      with one, then results/LIMITS.md (targets, verdicts, phases); ARGS
                      go to both sweeps
  ci-perf [--update]  CI performance gates against results/baselines (--update rewrites them)
  peers PRESET|FILE [ARGS]
                      PyTorch peers (eager vanilla, SDPA, the LISA authors' ops, Linear
                      Transformer) at a sweep's points -> results/<date>-<host>-<preset>-peers.json;
                      installs python3-torch when missing; ARGS: python3 -m peers --help
  --help              this text

Environment: ATTNBENCH_BUILD_DIR (default ./build), JOBS (parallel build jobs), CMAKE_ARGS.
The tool itself: build/attnbench --help (sweep, merge, list, eval, export, compare, calibrate).
USAGE
}

cmd="${1:-all}"
[ $# -gt 0 ] && shift
case "$cmd" in
  -h|--help|help) usage ;;
  test) install_deps; configure_build; run_tests "$@" ;;
  build) install_deps; configure_build ;;
  sweep)
    [ $# -ge 1 ] || die "sweep: name a preset (smoke, default, paper)"
    install_deps; configure_build; run_sweep "$@"
    echo "results: $SWEEP_OUT"
    ;;
  paper)
    install_deps; configure_build; run_sweep paper "$@"; run_plots "$SWEEP_OUT"
    echo "results: $SWEEP_OUT"; echo "report:  $ROOT/results/REPORT.md"
    ;;
  plots) install_deps; run_plots "$@" ;;
  limits)
    install_deps; configure_build
    [ -x "$PY" ] || die "limits needs Debian's python3 at $PY"
    all_threads="$ROOT/results/$(date -u +%Y%m%d-%H%M%S)-$(hostname -s)-limits.json"
    one_thread="${all_threads%-limits.json}-limits-1thread.json"
    stage "sweep: preset 'limits' on the cpu, every thread -> ${all_threads#$ROOT/}"
    "$BUILD/attnbench" sweep --preset limits --backend cpu --out "$all_threads" "$@"
    stage "the same sweep on one thread -> ${one_thread#$ROOT/}"
    "$BUILD/attnbench" sweep --preset limits --backend cpu --threads 1 --out "$one_thread" "$@"
    stage "targets -> results/LIMITS.md"
    "$PY" "$ROOT/plots/limits.py" "$all_threads" "$one_thread" --out "$ROOT/results/LIMITS.md"
    echo "results: $all_threads $one_thread"; echo "report:  $ROOT/results/LIMITS.md"
    ;;
  compare)
    [ $# -ge 2 ] || die "compare: give BASE.json NEW.json"
    install_deps; configure_build; "$BUILD/attnbench" compare "$@"
    ;;
  calibrate) install_deps; configure_build; "$BUILD/attnbench" calibrate "$@" ;;
  ci-perf) install_deps; configure_build; bash "$ROOT/bench/ci_perf.sh" "$BUILD" "$@" ;;
  peers)
    [ $# -ge 1 ] || die "peers: name a preset (smoke, default, paper) or a sweep file"
    install_deps; install_packages "${PEERS_DEB_PACKAGES[@]}"; configure_build
    stage "PyTorch peers at the points of '$1'"
    ATTNBENCH_BUILD_DIR="$BUILD" ATTNBENCH_PEERS_LAUNCHER="./run_all.sh peers" \
      PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m peers "$@"
    ;;
  all)
    install_deps; configure_build
    run_sweep default "$@"
    run_plots "$SWEEP_OUT"
    stage "done"
    echo "results: $SWEEP_OUT"
    echo "report:  $ROOT/results/REPORT.md"
    echo "figures: $ROOT/results/figures/"
    ;;
  *) usage >&2; die "unknown command '$cmd' (see ./run_all.sh --help)" ;;
esac
