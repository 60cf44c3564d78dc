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
  python3-matplotlib python3-numpy)

install_deps() {
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
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

usage() {
  cat <<USAGE
usage: ./run_all.sh [COMMAND] [ARGS]

  (no command)   install missing packages, build, run the default sweep, draw plots, write the report
  test           install missing packages, build, run every test (CTest; GPU tests skip without a GPU)
  build          install missing packages and build only
  --help         this text

Environment: ATTNBENCH_BUILD_DIR (default ./build), JOBS (parallel build jobs), CMAKE_ARGS.
USAGE
}

cmd="${1:-all}"
[ $# -gt 0 ] && shift
case "$cmd" in
  -h|--help|help) usage ;;
  test) install_deps; configure_build; run_tests "$@" ;;
  build) install_deps; configure_build ;;
  all)
    install_deps; configure_build; run_tests
    stage "demonstration: one point, vanilla_materialized vs lisa_base"
    "$BUILD/attnbench_demo"
    ;;
  *) usage >&2; die "unknown command '$cmd'" ;;
esac
