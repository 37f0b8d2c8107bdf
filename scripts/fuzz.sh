#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/fuzz.sh - build the segment fuzzer with clang + libFuzzer
# (-fsanitize=fuzzer,address,undefined) and run it.
#
#   scripts/fuzz.sh            FUZZ_SECONDS (default 30) of fuzzing
#   scripts/fuzz.sh --long     10 minutes (or FUZZ_SECONDS if set)
#   scripts/fuzz.sh --replay   the seed corpus once, no fuzzing
#
# The target is tests/fuzz/fuzz_segment.c; its seeds are tests/fuzz/corpus/
# (read-only here: new inputs go to build-fuzz/corpus).  Crashes, leaks,
# timeouts (a hang) and sanitizer reports end the run with a non-zero exit
# status and leave the input in build-fuzz/artifacts/.
# Environment: CLANG (default clang, else clang-14), FUZZ_BUILD (build-fuzz),
# FUZZ_SECONDS, FUZZ_JOBS (parallel fuzzing processes, default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
MODE=timed
case "${1:-}" in
  --long) MODE=timed; : "${FUZZ_SECONDS:=600}" ;;
  --replay) MODE=replay ;;
  "") ;;
  *) echo "usage: $0 [--long|--replay]" >&2; exit 2 ;;
esac
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
  for c in clang clang-14 clang-15 clang-16 clang-17 clang-18; do
    if command -v "$c" >/dev/null 2>&1; then CLANG=$c; break; fi
  done
fi
if [ -z "$CLANG" ]; then
  echo "fuzz.sh: clang not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi

mkdir -p "$BUILD/obj" "$BUILD/corpus" "$BUILD/artifacts"
FLAGS=(-std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer
       -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/include" -I"$ROOT/src")
objs=()
for src in "$ROOT"/src/*.c "$ROOT/tests/fuzz/fuzz_segment.c"; do
  obj="$BUILD/obj/$(basename "${src%.c}").o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$ROOT/src" "$ROOT/include" -name '*.h' -newer "$obj" 2>/dev/null)" ]; then
    "$CLANG" "${FLAGS[@]}" -c "$src" -o "$obj"
  fi
  objs+=("$obj")
done
"$CLANG" -fsanitize=fuzzer,address,undefined "${objs[@]}" -lpthread -o "$BUILD/fuzz_segment"
echo "fuzz.sh: built $BUILD/fuzz_segment with $CLANG"

export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-max_len=32768 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$BUILD/artifacts/")

# Remove what the target leaves in /dev/shm if it dies (names fz-<pid>-<n>).
cleanup() { rm -f /dev/shm/takt.fz-* /dev/shm/sem.takt.fz-* 2>/dev/null || true; }
trap cleanup EXIT

if [ "$MODE" = replay ]; then
  exec_rc=0
  "$BUILD/fuzz_segment" "${common[@]}" -runs=0 "$ROOT/tests/fuzz/corpus"/* || exec_rc=$?
  exit $exec_rc
fi

extra=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then extra+=(-fork="$FUZZ_JOBS"); fi
rc=0
"$BUILD/fuzz_segment" "${common[@]}" "${extra[@]}" -max_total_time="$FUZZ_SECONDS" \
  -print_final_stats=1 "$BUILD/corpus" "$ROOT/tests/fuzz/corpus" || rc=$?
if [ $rc -ne 0 ]; then
  echo "fuzz.sh: the fuzzer failed (exit $rc); inputs in $BUILD/artifacts/" >&2
  exit $rc
fi
echo "fuzz.sh: ${FUZZ_SECONDS}s without a finding"
