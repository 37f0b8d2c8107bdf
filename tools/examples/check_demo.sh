#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check_demo.sh PLC MOTION TAKT - the ctest of the PLC example: run plc and
# motion together for 2 s on channels of a unique prefix, then check that
# both exited with status 0 and that each read more than 0 images from the
# other (parsed from its "summary: key=value ..." line).  Timing (deadline
# misses, lateness) is printed, never checked: this must pass on a noisy VM.
# The channels are removed at the end, whatever happened.
set -u
PLC=$1 MOTION=$2 TAKT=$3
PREFIX="tc-$$-demo"
DIR=$(mktemp -d)
cleanup() {
	"$TAKT" rm --force "$PREFIX.plc.out" "$PREFIX.motion.out" "$PREFIX.events" \
		>/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

"$MOTION" --seconds 2 --prefix "$PREFIX" >"$DIR/motion.out" 2>&1 &
MPID=$!
"$PLC" --seconds 2 --prefix "$PREFIX" >"$DIR/plc.out" 2>&1
PST=$?
wait "$MPID"
MST=$?

echo "--- plc (exit $PST)"; cat "$DIR/plc.out"
echo "--- motion (exit $MST)"; cat "$DIR/motion.out"

# The value of KEY in the summary line of FILE (empty if missing).
value() {
	sed -n 's/^summary: //p' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}
fail=0
for role in plc motion; do
	st=$PST; [ "$role" = motion ] && st=$MST
	n=$(value images_read "$DIR/$role.out")
	bad=$(value bad_images "$DIR/$role.out")
	if [ "$st" -ne 0 ]; then
		echo "FAIL: $role exited with status $st"; fail=1
	fi
	case "$n" in
	''|*[!0-9]*) echo "FAIL: $role printed no summary line with images_read"; fail=1 ;;
	0) echo "FAIL: $role read no image from its peer"; fail=1 ;;
	*) echo "ok: $role read $n images from its peer (bad: $bad)" ;;
	esac
done
if [ -e "/dev/shm/takt.$PREFIX.events" ]; then
	sent=$(value events_sent "$DIR/plc.out")
	echo "events: sent $sent, queued now: $("$TAKT" ls --json "$PREFIX.events")"
fi
[ "$fail" -eq 0 ] && echo "example_plc_demo: PASS" || echo "example_plc_demo: FAIL"
exit "$fail"
