/* SPDX-License-Identifier: MIT */
/*
 * no_uring.c - run a program in a process where io_uring is unavailable.
 *
 *   no_uring ENOSYS|EPERM|ENTER PROGRAM [ARG...]
 *
 * Installs a seccomp-BPF filter that makes io_uring_setup, io_uring_enter
 * and io_uring_register fail with the given errno (ENTER: only
 * io_uring_enter and io_uring_register fail, with ENOSYS, so a ring can be
 * set up but never used: a sandbox that filters only some of the calls),
 * checks that it works, and execs PROGRAM (the filter survives execve and is inherited by every
 * thread the program creates).  ENOSYS is what a kernel built without
 * io_uring (or a container runtime's seccomp profile) answers; EPERM is
 * what io_uring_setup answers when sysctl kernel.io_uring_disabled forbids
 * it, so the EPERM variant exercises the same path of the program under
 * test without changing the machine's sysctl.
 *
 * Exit status without exec: 2 usage, 3 the filter could not be installed,
 * 4 io_uring_setup still works (or fails with another errno), 127 exec
 * failed.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_ARCH AUDIT_ARCH_RISCV64
#else
#error "no_uring: add this architecture's AUDIT_ARCH_* constant"
#endif

#ifndef __NR_io_uring_setup
#error "no_uring: the system headers do not know io_uring"
#endif

static int install(unsigned err, bool setup_too)
{
	struct sock_filter f[] = {
		/* A foreign ABI (x86-64's i386 emulation) has other syscall
		 * numbers: refuse the whole syscall rather than let io_uring
		 * through under another number. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __x86_64__
		/* Likewise the x32 ABI (same arch, numbers with bit 30 set). */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, setup_too ? __NR_io_uring_setup : __NR_io_uring_enter,
			 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	/* Needed to install a filter without CAP_SYS_ADMIN; harmless as root
	 * (the tests exec nothing set-uid). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "ENOSYS") && strcmp(argv[1], "EPERM") &&
			 strcmp(argv[1], "ENTER"))) {
		fprintf(stderr, "usage: no_uring ENOSYS|EPERM|ENTER PROGRAM [ARG...]\n");
		return 2;
	}
	unsigned err = strcmp(argv[1], "EPERM") == 0 ? EPERM : ENOSYS;
	bool setup_too = strcmp(argv[1], "ENTER") != 0;
	int rc = install(err, setup_too);
	if (rc < 0) {
		fprintf(stderr, "no_uring: cannot install the seccomp filter: %s\n", strerror(-rc));
		return 3;
	}
	/* Prove the filter works before running anything under it. */
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	long fd = syscall(__NR_io_uring_setup, 4, &p);
	if (setup_too && (fd >= 0 || errno != (int)err)) {
		fprintf(stderr, "no_uring: io_uring_setup %s\n",
			fd >= 0 ? "still works" : strerror(errno));
		return 4;
	}
	if (!setup_too) {
		/* ENTER: the ring exists, entering it fails. */
		long e = fd < 0 ? -1 : syscall(__NR_io_uring_enter, (int)fd, 0, 0, 0, NULL, 0);
		int saved = errno;
		if (fd >= 0)
			close((int)fd);
		if (fd < 0 || e >= 0 || saved != ENOSYS) {
			fprintf(stderr, "no_uring: io_uring_setup %s, io_uring_enter %s\n",
				fd < 0 ? "fails" : "works", e >= 0 ? "works" : strerror(saved));
			return 4;
		}
	}
	execvp(argv[2], argv + 2);
	fprintf(stderr, "no_uring: exec %s: %s\n", argv[2], strerror(errno));
	return 127;
}
