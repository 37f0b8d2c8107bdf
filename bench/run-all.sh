#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/run-all.sh - every table of docs/BENCHMARKS.md in one command:
#
#   bench/run-all.sh <build-dir> <out-dir> [quick]
#
#   1. compare, 8 B .. 64 KiB, busy-poll and blocking   compare.json/.txt/.csv
#   2. compare, 64 B, pinned to CPUs 0,1                compare-pinned.json
#   3. mpsc, 2 producers, 64 B and 1 KiB                mpsc.json
#   4. cyclic, 1 ms period, 10 000 cycles               cyclic.json
#   5. takt-bench-core x 3 (the original core table)    core-*.json
#   6. micro-benchmarks (Google Benchmark)              micro-1.json
#   then summary.md (bench/summarize.py) and the plots (scripts/plot).
#
# "quick" divides every count by 10 (a smoke run, not figures).  Each step
# waits (up to 5 minutes) for an idle machine; every JSON records how much
# CPU other processes took, and summary.md marks disturbed runs.
# Environment: TAKT_BENCH_IDLE_WAIT sets the wait for an idle machine in
# seconds (default 300; 0 with "quick"); TAKT_BENCH_ARGS adds options to every takt-bench call (for
# example "--fifo 50 --mlock"); TAKT_BENCH_CPUS sets the pinned pair (0,1).
set -eu
build=$1; out=$2; quick=${3:-}
bin="$build/bench"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
cpus=${TAKT_BENCH_CPUS:-0,1}
extra=${TAKT_BENCH_ARGS:-}

if [ "$quick" = quick ]; then
	wait_max=${TAKT_BENCH_IDLE_WAIT:-0}
	it="--iterations 10000 --warmup 1000 --seconds 0.2 --warmup-seconds 0.05"
	cyc="--cycles 1000"; core="--iterations 100000 --warmup 10000 --seconds 0.3"; mt=0.05
else
	wait_max=${TAKT_BENCH_IDLE_WAIT:-300}
	it="--iterations 100000 --warmup 10000 --seconds 1 --warmup-seconds 0.2"
	cyc="--cycles 10000"; core=""; mt=0.3
fi

idle() { # idle for 3 consecutive seconds (less than 5 jiffies busy per second)
	[ "$wait_max" -gt 0 ] || return 0
	t=0; ok=0
	prev=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
	while [ $t -lt "$wait_max" ]; do
		sleep 1; t=$((t + 1))
		cur=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
		if [ $((cur - prev)) -le 5 ]; then ok=$((ok + 1)); else ok=0; fi
		prev=$cur
		[ $ok -ge 3 ] && return 0
	done
	echo "run-all.sh: the machine did not become idle; measuring anyway" >&2
}

step() { # name, then the takt-bench arguments
	name=$1; shift
	echo "run-all.sh: $name" >&2
	idle
	# shellcheck disable=SC2086
	"$bin/takt-bench" "$@" $extra --json >"$out/$name.json" 2>"$out/$name.txt" || \
		echo "run-all.sh: $name reported failures (see $out/$name.txt)" >&2
}

# shellcheck disable=SC2086
step compare compare --size 8,64,1024,65536 --mode busy,block $it
# shellcheck disable=SC2086
step compare-pinned compare --size 64 --mode busy,block --cpu "$cpus" $it
# shellcheck disable=SC2086
step mpsc mpsc --producers 2 --size 64,1024 --mode busy,block $it
# shellcheck disable=SC2086
step cyclic cyclic --period 1ms $cyc --size 64
# the same compare as CSV, for spreadsheets (small: no buckets)
idle
# shellcheck disable=SC2086
"$bin/takt-bench" compare --size 64 --mode busy,block $it $extra --csv >"$out/compare-64.csv" 2>/dev/null || true

for i in 1 2 3; do
	idle
	# shellcheck disable=SC2086
	"$bin/takt-bench-core" $core --json >"$out/core-unpinned-$i.json" 2>"$out/core-unpinned-$i.txt" || true
done
if [ -x "$bin/takt-bench-micro" ]; then
	idle
	"$bin/takt-bench-micro" --benchmark_min_time=$mt \
		--benchmark_out="$out/micro-1.json" --benchmark_out_format=json >"$out/micro-1.txt" 2>&1 || true
fi
python3 "$here/summarize.py" "$out" >"$out/summary.md"
if command -v gnuplot >/dev/null 2>&1; then
	"$here/../scripts/plot" -o "$out/plots" "$out/compare.json" "$out/compare-pinned.json" \
		"$out/mpsc.json" "$out/cyclic.json" >/dev/null || echo "run-all.sh: plotting failed" >&2
else
	echo "run-all.sh: gnuplot not found, no plots (apt-get install gnuplot-nox)" >&2
fi
echo "run-all.sh: tables in $out/summary.md, plots in $out/plots" >&2
