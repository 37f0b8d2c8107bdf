#!/bin/sh
# SPDX-License-Identifier: MIT
# Fuzz taktd's frame parser, protocol state machine and policy parser with
# libFuzzer (clang -fsanitize=fuzzer,address,undefined).
#   FUZZ_SECONDS  run time (default 30)
#   FUZZ_JOBS     parallel fuzzing processes (default 1)
#   CC            clang (default clang)
# The corpus grows in $FUZZ_OUT/corpus (default build-taktd/fuzz/corpus) (seeded from
# tests/taktd/fuzz/corpus); crashes are written to $FUZZ_OUT.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out="${FUZZ_OUT:-$root/build-taktd/fuzz}"
cc=${CC:-clang}
secs=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
mkdir -p "$out/corpus"
cp -n "$root"/tests/taktd/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
"$cc" -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer \
	-I"$root/include" -I"$root/src/taktd" \
	"$root/tests/taktd/fuzz/fuzz_proto.c" "$root/src/taktd/frame.c" \
	"$root/src/taktd/proto.c" "$root/src/taktd/policy.c" \
	-o "$out/fuzz_proto"
cd "$out"
exec ./fuzz_proto -max_total_time="$secs" -jobs="$jobs" -workers="$jobs" \
	-max_len=70000 -print_final_stats=1 corpus
