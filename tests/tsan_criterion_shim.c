/* SPDX-License-Identifier: MIT */
/*
 * tsan_criterion_shim.c - lets Criterion run under ThreadSanitizer.
 *
 * Criterion's sandbox library (BoxFort) places its inheritable arena at a
 * random address in [0x2000'0000'0000, 0x7f00'0000'0000) with MAP_FIXED,
 * after probing with mincore() that the range is free.  ThreadSanitizer
 * (x86-64, 48-bit layout) protects every gap between its own regions, so
 * the probe always finds the range "mapped", and its mmap interceptor
 * refuses MAP_FIXED outside application memory: Criterion aborts with
 * "Could not initialize inheritable arena".
 *
 * This file, linked into the TSan test programs only and compiled without
 * instrumentation, interposes mincore() and mmap()/mmap64() for exactly that
 * window: the probe reports "free", and the fixed mapping is placed instead
 * (MAP_FIXED_NOREPLACE) in the PIE-binary region that TSan treats as
 * application memory; BoxFort accepts any address inside its window.
 * Everything else goes straight to TSan's own interceptor.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define BXF_LO 0x200000000000ull
#define BXF_HI 0x7f0000000000ull

/* TSan's interceptor (exported by libtsan and by clang's runtime). */
void *__interceptor_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);

/* TSan application memory on x86-64 (48-bit): PIE binaries, heap, modules. */
static int tsan_app(uintptr_t a, size_t len)
{
	uintptr_t e = a + len;
	return (a >= 0x550000000000ull && e <= 0x568000000000ull) ||
	       (a >= 0x7b0000000000ull && e <= 0x7c0000000000ull) ||
	       (a >= 0x7e8000000000ull && e <= 0x800000000000ull);
}

static int in_window(uintptr_t a, size_t len)
{
	return a >= BXF_LO && a < BXF_HI && !tsan_app(a, len);
}

__attribute__((no_sanitize_thread, visibility("default")))
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t a = (uintptr_t)addr;
	if ((flags & MAP_FIXED) && in_window(a, len)) {
		/* 256 GiB of candidates in the upper part of the PIE region,
		 * clear of where the kernel puts a non-randomised PIE (0x5555...) */
		uintptr_t hint = 0x564000000000ull + ((a >> 24) & 0x3fffu) * 0x1000000ull;
		for (int i = 0; i < 64; i++, hint += 0x10000000ull) {
			if (hint + len > 0x568000000000ull)
				hint = 0x564000000000ull;
			void *p = __interceptor_mmap((void *)hint, len, prot,
						     (flags & ~MAP_FIXED) | MAP_FIXED_NOREPLACE, fd, off);
			if (p != MAP_FAILED)
				return p;
		}
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __interceptor_mmap(addr, len, prot, flags, fd, off);
}

__attribute__((no_sanitize_thread, visibility("default")))
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

__attribute__((no_sanitize_thread, visibility("default")))
int mincore(void *addr, size_t len, unsigned char *vec)
{
	if (in_window((uintptr_t)addr, len)) {
		errno = ENOMEM; /* "not mapped" */
		return -1;
	}
	return (int)syscall(SYS_mincore, addr, len, vec);
}
