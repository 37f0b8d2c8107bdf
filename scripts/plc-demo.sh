#!/bin/sh
# SPDX-License-Identifier: MIT
#
# plc-demo.sh - the PLC example in one command: builds it if needed (Release,
# into build/plc-demo), then runs together, for a few seconds,
#   plc     a 1 ms PLC loop (tools/examples/plc.c),
#   motion  the motion process it talks to (tools/examples/motion.c),
#   taktd   the socket sidecar, on a private socket in a temp dir,
#   a Python peer (tools/python/examples/watch_plc.py) watching through taktd:
#           every event of the events queue, and the PLC's process image
#           (state channel <prefix>.plc.out) with motion's,
# then prints what `takt ls` saw while they ran, the watcher's output, both
# processes' reports and summaries, and removes the channels and the temp
# dir (also when interrupted).  See tools/examples/README.md.
#
#   scripts/plc-demo.sh                 5 s on channels demo.*
#   scripts/plc-demo.sh --seconds 20    longer
#   scripts/plc-demo.sh --prefix mine   channels mine.plc.out, mine.motion.out, mine.events
#   scripts/plc-demo.sh --no-rt         do not ask for mlockall / SCHED_FIFO
#   scripts/plc-demo.sh --no-build      use the binaries already built (ctest does)
#
# Environment: TAKT_DEMO_BUILD=<dir> to build elsewhere; TAKT_DEMO_PLC,
# TAKT_DEMO_MOTION, TAKT_DEMO_TAKT, TAKT_DEMO_TAKTD name the binaries
# explicitly (with --no-build); PYTHON (default python3, >= 3.9; without it
# `takt recv` prints the events instead of the watcher).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${TAKT_DEMO_BUILD:-$root/build/plc-demo}
seconds=5
prefix=demo
rt=""
do_build=1

say() { printf '%s\n' "$*"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
	--prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
	--no-rt) rt=--no-rt; shift ;;
	--no-build) do_build=0; shift ;;
	-h|--help) sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) say "plc-demo: unknown argument \"$1\" (see --help)"; exit 2 ;;
	esac
done

# ---- build (incremental) ---------------------------------------------------------
if [ "$do_build" -eq 1 ]; then
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
			say "plc-demo: cmake configure failed (taktd needs liburing: apt-get install liburing-dev pkg-config)"
			exit 1
		}
	fi
	say "plc-demo: building plc, motion, takt and taktd ..."
	if ! cmake --build "$build" -j "$jobs" \
		--target takt_example_plc takt_example_motion takt_cli taktd >"$build/plc-demo-build.log" 2>&1; then
		cat "$build/plc-demo-build.log"
		say "plc-demo: build failed"
		exit 1
	fi
fi
plc=${TAKT_DEMO_PLC:-$build/tools/examples/plc}
motion=${TAKT_DEMO_MOTION:-$build/tools/examples/motion}
takt=${TAKT_DEMO_TAKT:-$build/tools/takt/takt}
taktd=${TAKT_DEMO_TAKTD:-$build/src/taktd/taktd}
for b in "$plc" "$motion" "$takt" "$taktd"; do
	[ -x "$b" ] || { say "plc-demo: $b is missing (run without --no-build)"; exit 1; }
done
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
	say "plc-demo: no $python >= 3.9: takt recv prints the events instead of the Python watcher"
	python=""
fi
watcher=$root/tools/python/examples/watch_plc.py

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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plc-demo-$prefix.XXXXXX")
sock=$tmp/taktd.sock
pids=""        # plc, motion, the watcher or takt recv: stopped first
taktd_pid=""

# Stop one process: SIGTERM, up to 5 s, then SIGKILL.
stop() {
	kill "$1" 2>/dev/null || return 0
	n=0
	while kill -0 "$1" 2>/dev/null && [ $n -lt 250 ]; do
		sleep 0.02
		n=$((n + 1))
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	trap - EXIT INT TERM
	for p in $pids; do stop "$p"; done
	[ -z "$taktd_pid" ] || stop "$taktd_pid" # SIGTERM: it removes its socket
	"$takt" rm --force "$out" "$in" "$events" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# taktd on a private socket: no other taktd, no system socket needed.
if [ -n "$python" ]; then
	"$taktd" --socket "$sock" --ready-fd 1 --log-level warn >"$tmp/taktd.ready" 2>"$tmp/taktd.log" &
	taktd_pid=$!
	i=0
	until grep -q ready "$tmp/taktd.ready" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 500 ] || ! kill -0 "$taktd_pid" 2>/dev/null; then
			say "plc-demo: taktd did not start:"
			cat "$tmp/taktd.log"
			exit 1
		fi
		sleep 0.02
	done
fi

say "plc-demo: running plc and motion for $seconds s on $out, $in, $events"
"$motion" --seconds "$seconds" --prefix "$prefix" $rt >"$tmp/motion" 2>&1 &
motion_pid=$!
pids="$motion_pid"
"$plc" --seconds "$seconds" --prefix "$prefix" $rt >"$tmp/plc" 2>&1 &
plc_pid=$!
pids="$pids $plc_pid"

watch_pid="" recv_pid=""
if [ -n "$python" ]; then
	# The Python peer, through taktd: the events queue's consumer, and a
	# subscriber to the PLC's image.  It waits for the channels and ends by
	# itself once the PLC's image stopped changing (plc has ended).
	say "plc-demo: a Python peer watches through taktd at $sock"
	"$python" -u "$watcher" --socket "$sock" --prefix "$prefix" --wait 30 --print-every 0.5 \
		--until-idle 1.5 >"$tmp/watcher" 2>&1 &
	watch_pid=$!
	pids="$watch_pid $pids"
else
	i=0
	until "$takt" info "$events" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 200 ] || { say "plc-demo: plc never created $events"; cat "$tmp/plc"; exit 1; }
		sleep 0.02
	done
	"$takt" recv --timeout 1s "$events" | sed 's/^/  event: /' >"$tmp/watcher" &
	recv_pid=$!
	pids="$pids $recv_pid"
fi

# What an operator sees meanwhile: the channels, live.
sleep 1
say ""
say "plc-demo: takt ls while running:"
"$takt" ls "$prefix.*" | sed 's/^/  /'
say ""

status=0
wait "$plc_pid" || status=$?
wait "$motion_pid" || status=$?
if [ -n "$watch_pid" ]; then
	# It notices that the PLC stopped 1.5 s after its last image.
	i=0
	while kill -0 "$watch_pid" 2>/dev/null && [ $i -lt 500 ]; do
		sleep 0.02
		i=$((i + 1))
	done
	kill "$watch_pid" 2>/dev/null || true
	wstatus=0
	wait "$watch_pid" || wstatus=$?
	[ "$wstatus" -eq 0 ] || status=$wstatus
	say "plc-demo: what the Python peer saw through taktd (events, and the PLC's image every 0.5 s):"
else
	wait "$recv_pid" || true # ends 1 s after the last event
	say "plc-demo: the events, from takt recv:"
fi
pids=""
sed 's/^/  /' "$tmp/watcher"

say ""
say "plc-demo: plc's report:"
sed 's/^/  /' "$tmp/plc"
say "plc-demo: motion's report:"
sed 's/^/  /' "$tmp/motion"
say ""
if [ "$status" -eq 0 ]; then
	say "plc-demo: done; removing the channels"
else
	say "plc-demo: a process failed (status $status); removing the channels"
fi
exit "$status"
