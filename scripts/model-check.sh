#!/bin/sh
# SPDX-License-Identifier: MIT
#
# model-check.sh - verify the Promela models under tests/model/ with spin.
#
# For each run: spin -a, compile the verifier pan (safety: assertions and
# invalid end states), run it exhaustively, read "errors: N".  Positive runs
# must report errors: 0 and an exhaustive search; negative runs (a variant
# known to be broken) must report errors > 0, which shows the model can
# catch what the protocol guards against.
#
# Installs nothing: spin (Debian package "spin") and a C compiler ($CC,
# default cc) must be there.  Exit status 0 when every run gave the expected
# result, 1 otherwise, 2 when a tool is missing.  Prints one summary line
# (and the verifier's output of any run that went wrong).
#
# Usage: scripts/model-check.sh [-v]      (-v: print every verifier's output)
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
models="$here/tests/model"
verbose=0
[ "${1:-}" = "-v" ] && verbose=1
CC=${CC:-cc}

if ! command -v spin >/dev/null 2>&1; then
	echo "model-check: FAILED: spin not found (install the Debian package 'spin')" >&2
	exit 2
fi
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "model-check: FAILED: C compiler '$CC' not found" >&2
	exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/takt-model.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM

pass=0
fail=0
states=0
failed=""

# run <expect: ok|error> <model file> <label> [spin -D options...]
run() {
	expect=$1 model=$2 label=$3
	shift 3
	dir="$work/$label"
	mkdir -p "$dir"
	cp "$models/$model" "$dir/"
	out="$dir/out.txt"
	if ! (cd "$dir" && spin "$@" -a "$model") >"$out" 2>&1; then
		result="spin -a failed"
	elif ! (cd "$dir" && "$CC" -O2 -DSAFETY -o pan pan.c) >>"$out" 2>&1; then
		result="pan did not compile"
	else
		(cd "$dir" && ./pan -m100000) >>"$out" 2>&1
		errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | head -n 1)
		n=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' "$out" | head -n 1)
		states=$((states + ${n:-0}))
		if [ -z "$errors" ]; then
			result="no verdict from pan"
		elif grep -q "search not completed\|max search depth too small" "$out" &&
		     [ "$expect" = ok ]; then
			result="search incomplete"
		elif [ "$expect" = ok ] && [ "$errors" -eq 0 ]; then
			result=ok
		elif [ "$expect" = error ] && [ "$errors" -gt 0 ]; then
			result=ok
		elif [ "$expect" = ok ]; then
			result="$errors error(s): $(grep -m1 'violated\|invalid end state' "$out")"
		else
			result="expected an error, spin found none"
		fi
	fi
	if [ "$result" = ok ]; then
		pass=$((pass + 1))
		[ $verbose = 1 ] && { echo "--- $label: ok"; cat "$out"; }
	else
		fail=$((fail + 1))
		failed="$failed $label"
		echo "--- $label: $result" >&2
		cat "$out" >&2
	fi
}

# The doorbell: SPSC lane, both directions of waiting, TSO store buffers.
run ok    doorbell.pml doorbell
run ok    doorbell.pml doorbell-n6-cap3     -DN=6 -DCAP=3
run ok    doorbell.pml doorbell-rmw-every   -DRMW_EVERY
run ok    doorbell.pml doorbell-no-wake-disarm -DNO_WAKE_DISARM
# The fence-free producer with the consumer's membarrier backstop.
run ok    doorbell.pml doorbell-light-ring  -DLIGHT_RING
run ok    doorbell.pml doorbell-light-ring-n6-cap3 -DLIGHT_RING -DN=6 -DCAP=3
# Negative check: fence-free without the backstop loses a wake-up.
run error doorbell.pml doorbell-light-no-backstop -DLIGHT_RING -DNO_BACKSTOP
# Negative check: without the waker's fence the lost wake-up is found.
run error doorbell.pml doorbell-no-fence    -DNO_FENCE

total=$((pass + fail))
if [ $fail -eq 0 ]; then
	echo "model-check: OK: $total/$total runs as expected (6 verified with errors: 0, $states states in all; the no-fence and no-backstop variants lose a wake-up as they must)"
	exit 0
fi
echo "model-check: FAILED: $fail of $total runs not as expected:$failed" >&2
exit 1
