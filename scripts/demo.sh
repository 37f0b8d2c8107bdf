#!/bin/sh
# SPDX-License-Identifier: MIT
#
# demo.sh - a first look at takt: builds the library and the demo if needed
# (Release, into build/demo), then runs two processes that exchange 64-byte
# records through takt channels and shows, side by side, what two processes
# bouncing one cache line achieve (the hardware limit).  About 10-30 s.
#
#   scripts/demo.sh              the demo
#   scripts/demo.sh --quick      shorter measurements
#   scripts/demo.sh --cpu 0,1    pin the two processes to CPUs 0 and 1
#
# Environment: TAKT_DEMO_BUILD=<dir> to build elsewhere.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${TAKT_DEMO_BUILD:-$root/build/demo}

say() { printf '%s\n' "$*"; }

# ---- tools: cmake, a C and a C++ compiler, make -------------------------------
missing=""
for t in cmake cc c++ make; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "demo: installing build tools (missing:$missing) with apt-get ..."
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq cmake gcc g++ pkg-config make >/dev/null
	else
		say "demo: missing tools:$missing"
		say "      on Debian/Ubuntu: sudo apt-get install cmake gcc g++ pkg-config make"
		exit 1
	fi
fi

# ---- build (incremental; the first build takes some seconds) ------------------
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f "$build/CMakeCache.txt" ]; then
	say "demo: configuring a Release build in ${build#"$root"/} ..."
	mkdir -p "$build"
	# Release at -O2: GCC 12 at -O3 raises -Wmaybe-uninitialized false
	# positives that -Werror turns into a failed first build.
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
		-DTAKT_BUILD_TESTS=OFF -DTAKT_BUILD_TOOLS=OFF -DTAKT_BUILD_BENCH=ON \
		>"$build/demo-configure.log" 2>&1 || {
		cat "$build/demo-configure.log"
		say "demo: cmake configure failed (log: $build/demo-configure.log)"
		exit 1
	}
fi
say "demo: building takt-demo ..."
if ! cmake --build "$build" --target takt-demo -j "$jobs" >"$build/demo-build.log" 2>&1; then
	cat "$build/demo-build.log"
	say "demo: build failed (log: $build/demo-build.log)"
	exit 1
fi

# ---- preconditions --------------------------------------------------------------
if [ ! -w /dev/shm ]; then
	say "demo: /dev/shm is not writable: takt channels live there (POSIX shared memory)"
	exit 1
fi
ncpu=$(nproc 2>/dev/null || echo 1)
if [ "$ncpu" -lt 2 ]; then
	say "demo: warning: only $ncpu CPU; two busy-polling processes need two to mean anything"
fi

say ""
exec "$build/bench/takt-demo" "$@"
