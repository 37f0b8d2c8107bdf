#!/bin/sh
# SPDX-License-Identifier: MIT
#
# plc-demo.sh - the PLC example in one command: builds it if needed (Release,
# into build/plc-demo), then runs together, for a few seconds,
#   plc     a 1 ms PLC loop (tools/examples/plc.c),
#   motion  the motion process it talks to (tools/examples/motion.c),
#   takt recv on the events queue, printing each event as it arrives,
# then prints both processes' reports and summaries, what `takt ls` saw
# while they ran, and removes the channels.  See tools/examples/README.md.
#
#   scripts/plc-demo.sh                 5 s on channels demo.*
#   scripts/plc-demo.sh --seconds 20    longer
#   scripts/plc-demo.sh --prefix mine   channels mine.plc.out, mine.motion.out, mine.events
#   scripts/plc-demo.sh --no-rt         do not ask for mlockall / SCHED_FIFO
#
# Environment: TAKT_DEMO_BUILD=<dir> to build elsewhere.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${TAKT_DEMO_BUILD:-$root/build/plc-demo}
seconds=5
prefix=demo
rt=""

say() { printf '%s\n' "$*"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
	--prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
	--no-rt) rt=--no-rt; shift ;;
	-h|--help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) say "plc-demo: unknown argument \"$1\" (see --help)"; exit 2 ;;
	esac
done

# ---- build (incremental) ---------------------------------------------------------
for t in cmake cc make; do
	command -v "$t" >/dev/null 2>&1 || { say "plc-demo: $t is missing (apt-get install cmake gcc make)"; exit 1; }
done
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f "$build/CMakeCache.txt" ]; then
	say "plc-demo: configuring a Release build in ${build#"$root"/} ..."
	mkdir -p "$build"
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
		-DTAKT_BUILD_TESTS=OFF -DTAKT_BUILD_BENCH=OFF -DTAKT_BUILD_TOOLS=ON \
		>"$build/plc-demo-configure.log" 2>&1 || {
		cat "$build/plc-demo-configure.log"
		say "plc-demo: cmake configure failed"
		exit 1
	}
fi
say "plc-demo: building plc, motion and takt ..."
if ! cmake --build "$build" -j "$jobs" \
	--target takt_example_plc takt_example_motion takt_cli >"$build/plc-demo-build.log" 2>&1; then
	cat "$build/plc-demo-build.log"
	say "plc-demo: build failed"
	exit 1
fi
plc=$build/tools/examples/plc
motion=$build/tools/examples/motion
takt=$build/tools/takt/takt

# ---- run ---------------------------------------------------------------------------
out="$prefix.plc.out" in="$prefix.motion.out" events="$prefix.events"
for ch in "$out" "$in" "$events"; do
	if "$takt" ls --json "$ch" | grep -q '"stale":false'; then
		say "plc-demo: channel $ch is in use by a live process: is another demo running?"
		say "          (use --prefix NAME for a second one)"
		exit 1
	fi
done
"$takt" rm "$out" "$in" "$events" >/dev/null 2>&1 || true # leftovers of a killed run

logs=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$takt" rm --force "$out" "$in" "$events" >/dev/null 2>&1 || true
	rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "plc-demo: running plc and motion for $seconds s on $out, $in, $events"
"$motion" --seconds "$seconds" --prefix "$prefix" $rt >"$logs/motion" 2>&1 &
motion_pid=$!
pids="$motion_pid"
"$plc" --seconds "$seconds" --prefix "$prefix" $rt >"$logs/plc" 2>&1 &
plc_pid=$!
pids="$pids $plc_pid"

# The events queue exists once plc has created it: print each event as it
# comes.  recv ends by itself 1 s after the last event (plc has stopped).
i=0
until "$takt" info "$events" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 200 ] || { say "plc-demo: plc never created $events"; cat "$logs/plc"; exit 1; }
	sleep 0.02
done
"$takt" recv --timeout 1s "$events" | sed 's/^/  event: /' &
pids="$pids $!"

# ---------------------------------------------------------------------------
# TODO(python watcher): tools/python/examples/watch_plc.py, by the Python
# peer's owner, watches the same channels through taktd.  Start it here when
# it exists, e.g.:
#
#   taktd_sock=${TAKT_SOCKET:-...}          # a running taktd (src/taktd)
#   python3 "$root/tools/python/examples/watch_plc.py" --prefix "$prefix" \
#       --seconds "$seconds" >"$logs/watcher" 2>&1 &
#   pids="$pids $!"
#
# and print "$logs/watcher" with the other reports below.
# ---------------------------------------------------------------------------

# What an operator sees meanwhile: the channels, live.
sleep 1
say ""
say "plc-demo: takt ls while running:"
"$takt" ls "$prefix.*" | sed 's/^/  /'
say ""

status=0
wait "$plc_pid" || status=$?
wait "$motion_pid" || status=$?
wait 2>/dev/null || true # recv
pids=""

say ""
say "plc-demo: plc's report:"
sed 's/^/  /' "$logs/plc"
say "plc-demo: motion's report:"
sed 's/^/  /' "$logs/motion"
say ""
if [ "$status" -eq 0 ]; then
	say "plc-demo: done; removing the channels"
else
	say "plc-demo: a process failed (status $status); removing the channels"
fi
exit "$status"
