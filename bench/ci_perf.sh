#!/usr/bin/env bash
# CI performance gates (docs/measurement.md section 8): runs attnbench_gate against
# results/baselines/ and exits non-zero on a regression. `./run_all.sh ci-perf [ARGS]` calls it as
#   bench/ci_perf.sh BUILD_DIR [--update] [--gate memory|work|time|deterministic|all] ...
#
#   BUILD_DIR        a configured and built tree (attnbench_gate, attnbench_work_driver)
#   --update         measure and rewrite the stored baselines instead of gating (review the
#                    diff of results/baselines/ and commit it with the change that explains it)
#   --gate G         which gates: memory, work, time, deterministic (= memory,work) or all
#                    (default); repeatable or comma-separated (--gate memory,work)
#   --baselines DIR  baselines folder (default: results/baselines of the source tree)
#
# Output: each gate's Markdown report on stdout; the whole report also in
# BUILD_DIR/ci-perf/report.md (and appended to $GITHUB_STEP_SUMMARY when that is set), each
# gate's measured run in BUILD_DIR/ci-perf/<gate>.json (baseline format, for CI artifacts).
# Exit status: 0 every gate passed (a missing time baseline for this hardware is a warning),
# 1 a gate found a regression, 2 a gate could not run (missing tool, baseline or build).
set -uo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf 'ci_perf.sh: error: %s\n' "$*" >&2; exit 2; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
BUILD="$1"
shift
update=()
baselines=()
gates=()
while [ $# -gt 0 ]; do
  case "$1" in
    --update) update=(--update) ;;
    --gate) [ $# -ge 2 ] || die "--gate needs a value"; IFS=, read -r -a g <<<"$2"; gates+=("${g[@]}"); shift ;;
    --gate=*) IFS=, read -r -a g <<<"${1#--gate=}"; gates+=("${g[@]}") ;;
    --baselines) [ $# -ge 2 ] || die "--baselines needs a value"; baselines=(--baselines "$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
[ ${#gates[@]} -gt 0 ] || gates=(all)

selected=()
for g in "${gates[@]}"; do
  case "$g" in
    all) selected+=(memory work time) ;;
    deterministic) selected+=(memory work) ;;
    memory|work|time) selected+=("$g") ;;
    *) die "unknown gate '$g' (memory, work, time, deterministic, all)" ;;
  esac
done
# unique, in the canonical order
order=()
for g in memory work time; do
  for s in "${selected[@]}"; do [ "$s" = "$g" ] && { order+=("$g"); break; }; done
done

GATE="$BUILD/attnbench_gate"
[ -x "$GATE" ] || die "$GATE not found: build first (./run_all.sh build, or cmake --build $BUILD)"
for g in "${order[@]}"; do
  if [ "$g" = work ]; then
    command -v valgrind >/dev/null || die "the work gate needs valgrind (Debian package valgrind)"
    [ -x "$BUILD/attnbench_work_driver" ] ||
      die "$BUILD/attnbench_work_driver not found (built when valgrind/callgrind.h is installed)"
  fi
done

out="$BUILD/ci-perf"
mkdir -p "$out" || die "cannot create $out"
report="$out/report.md"
: >"$report"

worst=0
summary=()
for g in "${order[@]}"; do
  printf '\n==> gate: %s%s\n' "$g" "${update:+ (update)}" >&2
  start=$(date +%s)
  "$GATE" "$g" "${update[@]}" "${baselines[@]}" --out "$out/$g.json" --report "$report"
  rc=$?
  secs=$(( $(date +%s) - start ))
  case $rc in
    0) verdict=pass ;;
    1) verdict=REGRESSED ;;
    *) verdict="ERROR (exit $rc)" ;;
  esac
  summary+=("$(printf '%-7s %-18s %4d s' "$g" "$verdict" "$secs")")
  [ $rc -gt $worst ] && worst=$rc
done

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$report" >>"$GITHUB_STEP_SUMMARY"; fi
printf '\n==> ci-perf summary (report: %s)\n' "$report" >&2
printf '    %s\n' "${summary[@]}" >&2
[ $worst -gt 2 ] && worst=2
exit $worst
