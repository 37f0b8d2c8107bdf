/* SPDX-License-Identifier: MIT */
/* loop.c - backend choice: io_uring, else epoll (see loop.h). */
#include "loop.h"

#include <errno.h>
#include <string.h>

#include "log.h"

int loop_open(const char *backend, struct loop **out)
{
	if (backend && strcmp(backend, "epoll") == 0)
		return loop_epoll_open(out);
	if (backend && strcmp(backend, "io_uring") != 0)
		return -EINVAL;
	/* Any failure to set up a working ring means "no io_uring here":
	 * ENOSYS (kernel without it, a seccomp profile), EPERM (sysctl
	 * kernel.io_uring_disabled, seccomp), ENOMEM (RLIMIT_MEMLOCK on older
	 * kernels).  A forced --backend io_uring reports it instead. */
	int rc = loop_uring_open(out);
	if (rc == 0 || backend)
		return rc;
	LOGW("io_uring unavailable (%s); falling back to epoll", strerror(-rc));
	return loop_epoll_open(out);
}
