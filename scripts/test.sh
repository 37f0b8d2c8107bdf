#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/test.sh - the project's test command (README and CI call it).
#
# On a fresh Debian 12 machine, as root, it installs what is missing, then
# builds and tests three variants, each in its own build directory:
#
#   build/plain   RelWithDebInfo
#   build/asan    AddressSanitizer + UndefinedBehaviorSanitizer (-DTAKT_SANITIZE=address)
#   build/tsan    ThreadSanitizer (-DTAKT_SANITIZE=thread)
#
# and checks the installed package (pkg-config and CMake find_package) and
# that include/takt.h compiles as C++.  Exits non-zero if anything failed,
# after a summary of every step.
#
# Environment:
#   TAKT_LONG=1          soak settings: 10x the stream records and timeouts
#   TAKT_VARIANTS        which variants to run (default "plain asan tsan")
#   TAKT_JOBS            parallel ctest jobs (default 2)
#   TAKT_CTEST_VERBOSE=1 run ctest with -V (every test's full output)
#   TAKT_SKIP_DEPS=1     do not check or install packages
#   TAKT_SEED            seed of the randomised tests
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${TAKT_BUILD_DIR:-$ROOT/build}
VARIANTS=${TAKT_VARIANTS:-"plain asan tsan"}
JOBS=${TAKT_JOBS:-2}
LONG=${TAKT_LONG:-0}
NPROC=$(nproc 2>/dev/null || echo 2)
START=$(date +%s)

declare -a SUMMARY=()
FAILED=0

log() { printf '\n==> %s\n' "$*"; }
record() { # record <status> <step> [detail]
	local status=$1 step=$2 detail=${3:-}
	SUMMARY+=("$(printf '%-6s %-34s %s' "$status" "$step" "$detail")")
	[[ $status == PASS || $status == SKIP || $status == WARN ]] || FAILED=1
}
elapsed() { echo "$(($(date +%s) - $1))s"; }

# ---- 1. dependencies ---------------------------------------------------
PACKAGES=(cmake pkg-config gcc g++ clang libclang-rt-14-dev libcriterion-dev liburing-dev
	libbenchmark-dev spin python3 junit5 gnuplot-nox libck-dev)
JDKS=(default-jdk-headless openjdk-17-jdk-headless)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

deps() {
	if ! command -v dpkg-query >/dev/null; then
		echo "not a Debian system: install the equivalents of: ${PACKAGES[*]} ${JDKS[0]}"
		return 0
	fi
	local missing=() p have_jdk=0
	for p in "${PACKAGES[@]}"; do
		installed "$p" || missing+=("$p")
	done
	for p in "${JDKS[@]}"; do
		installed "$p" && have_jdk=1
	done
	((have_jdk)) || missing+=("${JDKS[0]}")
	if ((${#missing[@]} == 0)); then
		echo "all packages present"
		return 0
	fi
	echo "missing: ${missing[*]}"
	if [[ $(id -u) != 0 ]]; then
		echo "not root: install them with"
		echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"
}

if [[ ${TAKT_SKIP_DEPS:-0} != 1 ]]; then
	log "dependencies"
	t=$(date +%s)
	if deps; then record PASS dependencies "$(elapsed "$t")"; else
		record FAIL dependencies "packages missing"
		printf '%s\n' "${SUMMARY[@]}"
		exit 1
	fi
fi

# ---- 2. ThreadSanitizer and this kernel's address-space layout ----------------
# TSan's fixed memory layout breaks with a high vm.mmap_rnd_bits ("FATAL:
# ThreadSanitizer: unexpected memory mapping").  Probe it; if the probe
# fails, try without address-space randomisation (setarch -R), then with
# fewer random bits (root only; restored on exit).
TSAN_WRAP=()
RESTORE_RND_BITS=""
restore_rnd_bits() {
	[[ -n $RESTORE_RND_BITS ]] && sysctl -q -w vm.mmap_rnd_bits="$RESTORE_RND_BITS" >/dev/null 2>&1
}
trap restore_rnd_bits EXIT

tsan_probe() {
	local dir
	dir=$(mktemp -d)
	cat >"$dir/p.c" <<'EOF'
#include <pthread.h>
#include <stdio.h>
static int v;
static void *f(void *a) { __atomic_add_fetch(&v, 1, __ATOMIC_SEQ_CST); return a; }
int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0); printf("tsan-ok %d\n", v); return 0; }
EOF
	if ! ${CC:-cc} -fsanitize=thread -g "$dir/p.c" -o "$dir/p" -pthread >"$dir/log" 2>&1; then
		echo "cannot build a TSan program:"; cat "$dir/log"; rm -rf "$dir"; return 2
	fi
	local ok=1 i
	for i in 1 2 3 4 5; do
		"${TSAN_WRAP[@]}" "$dir/p" >"$dir/out" 2>&1 || ok=0
		grep -q tsan-ok "$dir/out" || ok=0
		((ok)) || break
	done
	((ok)) || sed -n 1,5p "$dir/out"
	rm -rf "$dir"
	((ok))
}

tsan_setup() {
	TSAN_WRAP=()
	tsan_probe
	case $? in
	0) echo "TSan runs as is"; return 0 ;;
	2) return 1 ;;
	esac
	if command -v setarch >/dev/null; then
		TSAN_WRAP=(setarch "$(uname -m)" -R)
		if tsan_probe; then echo "TSan runs with ASLR off (setarch -R)"; return 0; fi
	fi
	TSAN_WRAP=()
	local bits
	bits=$(sysctl -n vm.mmap_rnd_bits 2>/dev/null || echo "")
	if [[ $(id -u) == 0 && -n $bits && $bits -gt 28 ]]; then
		if sysctl -q -w vm.mmap_rnd_bits=28 >/dev/null 2>&1; then
			RESTORE_RND_BITS=$bits
			if tsan_probe; then echo "TSan runs with vm.mmap_rnd_bits=28 (was $bits)"; return 0; fi
		fi
	fi
	echo "ThreadSanitizer cannot run on this machine"
	return 1
}

# ---- 3. the variants ----------------------------------------------------
records_for() { # records per stream test for a variant
	local v=$1
	if [[ $LONG == 1 ]]; then
		[[ $v == plain ]] && echo 100000000 || echo 10000000
	else
		[[ $v == plain ]] && echo 10000000 || echo 1000000
	fi
}

run_variant() {
	local v=$1 dir=$BUILD/$1 t
	local -a cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
	local -a wrap=()
	case $v in
	plain) ;;
	asan) cmake_args+=(-DTAKT_SANITIZE=address) ;;
	tsan) cmake_args+=(-DTAKT_SANITIZE=thread) ;;
	*) record FAIL "$v" "unknown variant"; return ;;
	esac

	log "$v: configure and build ($dir)"
	t=$(date +%s)
	if [[ $v == tsan ]]; then
		if ! tsan_setup; then record FAIL "tsan: setup" "ThreadSanitizer cannot run here"; return; fi
		wrap=("${TSAN_WRAP[@]}")
	fi
	if ! cmake -S "$ROOT" -B "$dir" "${cmake_args[@]}" >"$BUILD/$v-configure.log" 2>&1; then
		tail -40 "$BUILD/$v-configure.log"
		record FAIL "$v: configure" "see $BUILD/$v-configure.log"
		return
	fi
	# keep going past a broken target, so that the tests that did build
	# still run (the failure is recorded either way)
	local -a keep_going=()
	[[ -f $dir/Makefile ]] && keep_going=(-- -k)
	[[ -f $dir/build.ninja ]] && keep_going=(-- -k 0)
	if cmake --build "$dir" -j "$NPROC" "${keep_going[@]}" >"$BUILD/$v-build.log" 2>&1; then
		record PASS "$v: build" "$(elapsed "$t")"
	else
		grep -E 'error:|Error [0-9]|undefined reference' "$BUILD/$v-build.log" | head -40
		record FAIL "$v: build" "see $BUILD/$v-build.log"
	fi

	log "$v: test (TAKT_STREAM_RECORDS=$(records_for "$v"))"
	t=$(date +%s)
	local -a ctest_args=(--output-on-failure -j "$JOBS")
	[[ ${TAKT_CTEST_VERBOSE:-0} == 1 ]] && ctest_args=(-V -j "$JOBS")
	local rc
	(
		cd "$dir" || exit 1
		export TAKT_STREAM_RECORDS
		TAKT_STREAM_RECORDS=$(records_for "$v")
		export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_leaks=1}
		export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
		export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:die_after_fork=0}
		"${wrap[@]}" ctest "${ctest_args[@]}"
	) 2>&1 | tee "$BUILD/$v-ctest.log"
	rc=${PIPESTATUS[0]}
	local counts
	counts=$(grep -E '^[0-9]+% tests passed' "$BUILD/$v-ctest.log" | tail -1)
	if [[ $rc == 0 ]]; then
		record PASS "$v: ctest" "${counts:-no tests?} ($(elapsed "$t"))"
	else
		record FAIL "$v: ctest" "${counts:-ctest failed} ($(elapsed "$t")); see $BUILD/$v-ctest.log"
	fi
}

# Entries in /dev/shm that look like ours, to catch tests that leak.
shm_snapshot() { ls -1 /dev/shm 2>/dev/null | grep -E '^(sem\.)?takt\.' | sort; }

mkdir -p "$BUILD"
export TAKT_LONG=$LONG
SHM_BEFORE=$(mktemp)
shm_snapshot >"$SHM_BEFORE"

for v in $VARIANTS; do
	run_variant "$v"
done

# ---- 4. the installed package -----------------------------------------------
install_check() {
	local plain=$BUILD/plain tmp rc=0
	if [[ ! -f $plain/CMakeCache.txt ]]; then
		record SKIP "install" "no plain build"
		return
	fi
	log "install check"
	tmp=$(mktemp -d)
	if ! cmake --install "$plain" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1; then
		cat "$tmp/install.log"; record FAIL "install: cmake --install"; rm -rf "$tmp"; return
	fi
	cat >"$tmp/hello.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <takt.h>
int main(void)
{
	char name[64];
	snprintf(name, sizeof name, "tt-install-%d", (int)getpid());
	struct takt_queue_config cfg = {.capacity = 4096, .lanes = 1, .max_record = 256};
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	char buf[16];
	int rc = takt_queue_create(name, &cfg);
	if (rc == 0) rc = takt_producer_open(name, &p);
	if (rc == 0) rc = takt_consumer_open(name, &c);
	if (rc == 0) rc = takt_try_send(p, 1, "installed", 9);
	if (rc == 0) rc = takt_try_recv(c, buf, sizeof buf, NULL) == 9 && memcmp(buf, "installed", 9) == 0 ? 0 : -EIO;
	if (p) takt_producer_close(p);
	if (c) takt_consumer_close(c);
	takt_unlink(name);
	printf("takt %d.%d.%d: %s\n", TAKT_VERSION_MAJOR, TAKT_VERSION_MINOR, TAKT_VERSION_PATCH,
	       rc ? takt_strerror(rc) : "ok");
	return rc != 0;
}
EOF
	local pcdir
	pcdir=$(dirname "$(find "$tmp/prefix" -name takt.pc | head -1)")
	local libdir
	libdir=$(dirname "$(find "$tmp/prefix" -name 'libtakt.so*' | head -1)")
	# pkg-config, shared
	if PKG_CONFIG_PATH=$pcdir pkg-config --exists takt &&
		${CC:-cc} -std=c11 -Wall -Wextra -Werror "$tmp/hello.c" -o "$tmp/hello-pc" \
			$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs takt) &&
		LD_LIBRARY_PATH=$libdir "$tmp/hello-pc"; then
		record PASS "install: pkg-config (shared)"
	else
		echo "pkg-config --cflags --libs takt: $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs takt)"
		echo "installed under: $tmp/prefix (takt.pc in $pcdir)"
		record FAIL "install: pkg-config (shared)" "takt.pc must point into the install prefix"
	fi
	# pkg-config, static
	if ${CC:-cc} -std=c11 -static-libgcc "$tmp/hello.c" -o "$tmp/hello-static" \
		$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags takt) "$libdir/libtakt.a" \
		$(PKG_CONFIG_PATH=$pcdir pkg-config --libs-only-other --static takt) -pthread &&
		"$tmp/hello-static"; then
		record PASS "install: static library"
	else
		record FAIL "install: static library"
	fi
	# CMake package
	mkdir -p "$tmp/cm"
	cp "$tmp/hello.c" "$tmp/cm/hello.c"
	cat >"$tmp/cm/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(hello C)
find_package(takt 0.1 REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello takt::takt)
EOF
	if cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/cm.log" 2>&1 &&
		cmake --build "$tmp/cm/build" >>"$tmp/cm.log" 2>&1 &&
		"$tmp/cm/build/hello"; then
		record PASS "install: CMake find_package"
	else
		cat "$tmp/cm.log"
		record FAIL "install: CMake find_package"
	fi
	rm -rf "$tmp"
}
install_check

# ---- 5. the header as C++ (and as strict C) -------------------------------------
log "header checks"
hdr_ok=1
for cxx in g++ clang++; do
	command -v $cxx >/dev/null || continue
	for std in c++11 c++17; do
		if ! $cxx -std=$std -fsyntax-only -x c++ -Wall -Wextra -Werror -pedantic "$ROOT/include/takt.h"; then
			hdr_ok=0
			echo "$cxx -std=$std failed"
		fi
	done
done
for cc in gcc clang; do
	command -v $cc >/dev/null || continue
	if ! $cc -std=c11 -fsyntax-only -x c -Wall -Wextra -Werror -pedantic "$ROOT/include/takt.h"; then
		hdr_ok=0
		echo "$cc -std=c11 failed"
	fi
done
((hdr_ok)) && record PASS "takt.h as C++ and C11" || record FAIL "takt.h as C++ and C11"

# ---- 6. fuzzing (libFuzzer, clang) ------------------------------------------------
# The segment parser (open + receive + stats on a hostile image) and taktd's
# frame parser and protocol state machine.  FUZZ_SECONDS each (CI: 30 s;
# TAKT_LONG=1: 600 s).  The corpora also replay as ctest tests in every variant.
FUZZ_SECONDS=${FUZZ_SECONDS:-$([[ $LONG == 1 ]] && echo 600 || echo 30)}
export FUZZ_SECONDS
for fz in fuzz fuzz-taktd; do
	[[ -x $ROOT/scripts/$fz.sh || -f $ROOT/scripts/$fz.sh ]] || continue
	log "$fz (${FUZZ_SECONDS}s)"
	t=$(date +%s)
	if bash "$ROOT/scripts/$fz.sh" >"$BUILD/$fz.log" 2>&1; then
		record PASS "$fz: ${FUZZ_SECONDS}s" "$(tail -1 "$BUILD/$fz.log" | cut -c1-60) ($(elapsed "$t"))"
	else
		tail -30 "$BUILD/$fz.log"
		record FAIL "$fz: ${FUZZ_SECONDS}s" "see $BUILD/$fz.log"
	fi
done

# ---- 7. nothing left behind in /dev/shm ---------------------------------------
# Channels the tests created and did not remove.  A warning, not a failure:
# on a shared machine another process may have made them meanwhile.
SHM_AFTER=$(mktemp)
shm_snapshot >"$SHM_AFTER"
LEFT=$(comm -13 "$SHM_BEFORE" "$SHM_AFTER")
rm -f "$SHM_BEFORE" "$SHM_AFTER"
if [[ -z $LEFT ]]; then
	record PASS "/dev/shm clean after the tests"
else
	echo "new in /dev/shm since the tests started:"
	echo "$LEFT" | sed 's/^/  /' | head -20
	record WARN "/dev/shm clean after the tests" "$(echo "$LEFT" | wc -l) entries left (listed above)"
fi

# ---- summary --------------------------------------------------------------------
printf '\n==================== takt test summary (%s) ====================\n' "$(elapsed "$START")"
printf '%s\n' "${SUMMARY[@]}"
if ((FAILED)); then
	echo "RESULT: FAILED"
	exit 1
fi
echo "RESULT: all passed"
exit 0
