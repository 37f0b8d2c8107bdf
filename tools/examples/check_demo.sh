#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check_demo.sh PLC MOTION TAKT TAKTD [PYTHON] - the ctest of the PLC example.
#
# 1. Runs scripts/plc-demo.sh (with these binaries, --no-build) for 2 s on
#    channels of a unique prefix, with its temp dir under a private TMPDIR,
#    and checks that it exits 0, that plc and motion each read more than 0
#    images from the other (their "summary: key=value ..." lines), and that
#    the Python watcher (tools/python/examples/watch_plc.py, through taktd)
#    received more than 0 events and more than 0 images of the PLC, none bad
#    (its "watch_plc: summary ..." line).
# 2. Runs it again and interrupts it like Ctrl-C does (SIGINT to its whole
#    process group) once the watcher is running: it must exit 130.
# After each run: no channel segment or semaphore of the prefix is left in
# /dev/shm, no process of the run is alive, and the temp dir is gone.
# Timing (deadline misses, lateness) is printed, never checked: this must
# pass on a noisy VM.  Without PYTHON (no python3 >= 3.9) the watcher checks
# are skipped (the demo then falls back to `takt recv`).
set -u
PLC=$1 MOTION=$2 TAKT=$3 TAKTD=$4 PY=${5:-}
HERE=$(cd "$(dirname "$0")" && pwd)
DEMO=$HERE/../../scripts/plc-demo.sh
PREFIX="tc-$$-demo"
DIR=$(mktemp -d)
mkdir "$DIR/tmp"
cleanup() {
	"$TAKT" rm --force "$PREFIX.plc.out" "$PREFIX.motion.out" "$PREFIX.events" \
		"$PREFIX-int.plc.out" "$PREFIX-int.motion.out" "$PREFIX-int.events" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export TAKT_DEMO_PLC="$PLC" TAKT_DEMO_MOTION="$MOTION" TAKT_DEMO_TAKT="$TAKT" TAKT_DEMO_TAKTD="$TAKTD"
export TMPDIR="$DIR/tmp"
if [ -n "$PY" ]; then export PYTHON="$PY"; else export PYTHON=/nonexistent/python3; fi

fail=0
bad() { echo "FAIL: $*"; fail=1; }

# The value of KEY in the line of FILE that starts (after blanks) with PREFIX.
value() {
	sed -n "s/^ *$2//p" "$3" | head -1 | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

# Nothing of the run with prefix $1 is left: segments, semaphores, processes, temp dir.
check_clean() {
	for f in /dev/shm/takt."$1".* /dev/shm/sem.takt."$1".*; do
		[ -e "$f" ] && bad "$f left behind"
	done
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = "$$" ] && continue
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -e "--prefix $1 " -e "plc-demo-$1\."; then
			bad "process ${p#/proc/} of the demo still runs: $(tr '\0' ' ' <"$p/cmdline")"
		fi
	done
	left=$(ls -A "$DIR/tmp")
	[ -z "$left" ] || bad "temp files left behind: $left"
}

# ---- 1. a whole run ----------------------------------------------------------------
sh "$DEMO" --no-build --seconds 2 --prefix "$PREFIX" --no-rt >"$DIR/demo.out" 2>&1
st=$?
cat "$DIR/demo.out"
echo "---"
[ "$st" -eq 0 ] || bad "plc-demo.sh exited with status $st"
for role in plc motion; do
	n=$(value images_read "summary: role=$role " "$DIR/demo.out")
	case "$n" in
	''|*[!0-9]*) bad "$role printed no summary line with images_read" ;;
	0) bad "$role read no image from its peer" ;;
	*) echo "ok: $role read $n images from its peer (bad: $(value bad_images "summary: role=$role " "$DIR/demo.out"))" ;;
	esac
done
if [ -n "$PY" ]; then
	ev=$(value events "watch_plc: summary " "$DIR/demo.out")
	im=$(value images "watch_plc: summary " "$DIR/demo.out")
	bi=$(value bad_images "watch_plc: summary " "$DIR/demo.out")
	sent=$(value events_sent "summary: role=plc " "$DIR/demo.out")
	case "$ev" in
	''|*[!0-9]*) bad "the Python watcher printed no summary line" ;;
	0) bad "the Python watcher received no event through taktd" ;;
	*) echo "ok: the Python watcher received $ev events through taktd (plc sent $sent)" ;;
	esac
	case "$im" in
	''|*[!0-9]*|0) bad "the Python watcher received no image of the PLC through taktd (images=$im)" ;;
	*) echo "ok: the Python watcher received $im PLC images through taktd" ;;
	esac
	[ "$bi" = 0 ] || bad "the Python watcher saw $bi bad images"
	grep -q "image $PREFIX.plc.out gen [0-9]*: cycle=" "$DIR/demo.out" ||
		bad "the demo's output shows no decoded PLC image"
else
	echo "skipped: the Python watcher checks (no python3 >= 3.9)"
fi
check_clean "$PREFIX"

# ---- 2. interrupted (Ctrl-C) -----------------------------------------------------------
# Ctrl-C sends SIGINT to the foreground process group; setsid gives the demo
# a group of its own to signal.  Background jobs of a non-interactive shell
# start with SIGINT ignored, and a shell cannot trap a signal ignored at its
# start: env --default-signal restores it (else SIGTERM is sent instead).
IPREFIX="$PREFIX-int"
sig=INT want=130
if env --default-signal=INT true 2>/dev/null && command -v setsid >/dev/null 2>&1; then
	env --default-signal=INT setsid sh "$DEMO" --no-build --seconds 30 --prefix "$IPREFIX" --no-rt \
		>"$DIR/int.out" 2>&1 &
	dpid=$!
	kill_it() { kill -INT -- "-$dpid" 2>/dev/null || kill -INT "$dpid"; }
else
	sh "$DEMO" --no-build --seconds 30 --prefix "$IPREFIX" --no-rt >"$DIR/int.out" 2>&1 &
	dpid=$!
	sig=TERM want=143
	kill_it() { kill -TERM "$dpid"; }
fi
# Interrupt once everything runs: the watcher's socket is connected, or
# (without Python) the events queue exists.
i=0
while [ $i -lt 1500 ]; do
	if [ -n "$PY" ]; then
		ls "$DIR"/tmp/plc-demo-*/watcher >/dev/null 2>&1 &&
			grep -q "watching" "$DIR"/tmp/plc-demo-*/watcher 2>/dev/null && break
	else
		[ -e "/dev/shm/takt.$IPREFIX.events" ] && break
	fi
	kill -0 "$dpid" 2>/dev/null || break
	sleep 0.02
	i=$((i + 1))
done
kill_it
i=0
while kill -0 "$dpid" 2>/dev/null && [ $i -lt 1000 ]; do
	sleep 0.02
	i=$((i + 1))
done
if kill -0 "$dpid" 2>/dev/null; then
	bad "plc-demo.sh did not stop within 20 s of SIG$sig"
	kill -9 "$dpid" 2>/dev/null
fi
wait "$dpid"
st=$?
sed 's/^/  | /' "$DIR/int.out"
[ "$st" -eq "$want" ] && echo "ok: interrupted with SIG$sig, plc-demo.sh exited $st" ||
	bad "interrupted with SIG$sig, plc-demo.sh exited $st (expected $want)"
check_clean "$IPREFIX"

[ "$fail" -eq 0 ] && echo "example_plc_demo: PASS" || echo "example_plc_demo: FAIL"
exit "$fail"
