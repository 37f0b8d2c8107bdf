#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/run.sh - the measurement runs behind docs/BENCHMARKS.md:
# takt-bench-core N times unpinned and N times pinned, the micro-benchmarks
# N times, every run's JSON kept, then a Markdown summary.
#
#   bench/run.sh <build-dir> <out-dir> [runs=3] [core options...]
#
# Each run waits (up to 5 minutes) for the machine to be idle, because two
# busy-polling processes on a shared machine measure the neighbours.
set -eu
build=$1; out=$2; runs=${3:-3}
shift 2; [ $# -gt 0 ] && shift
mkdir -p "$out"

idle() { # idle for 3 consecutive seconds (less than 5 jiffies busy per second)
	t=0; ok=0
	prev=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
	while [ $t -lt 300 ]; do
		sleep 1; t=$((t + 1))
		cur=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
		if [ $((cur - prev)) -le 5 ]; then ok=$((ok + 1)); else ok=0; fi
		prev=$cur
		[ $ok -ge 3 ] && return 0
	done
	echo "run.sh: the machine did not become idle; measuring anyway" >&2
}

for i in $(seq 1 "$runs"); do
	idle
	"$build/bench/takt-bench-core" --json "$@" >"$out/core-unpinned-$i.json" 2>"$out/core-unpinned-$i.txt"
	idle
	"$build/bench/takt-bench-core" --cpu 0,1 --json "$@" >"$out/core-pinned-$i.json" 2>"$out/core-pinned-$i.txt"
done
if [ -x "$build/bench/takt-bench-micro" ]; then
	for i in $(seq 1 "$runs"); do
		idle
		"$build/bench/takt-bench-micro" --benchmark_min_time=0.3 \
			--benchmark_out="$out/micro-$i.json" --benchmark_out_format=json >"$out/micro-$i.txt" 2>&1
	done
fi
if command -v python3 >/dev/null 2>&1; then
	python3 "$(dirname "$0")/summarize.py" "$out"
fi
