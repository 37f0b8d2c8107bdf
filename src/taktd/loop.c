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
	int rc = loop_uring_open(out);
	if (rc == 0 || backend)
		return rc;
	LOGW("io_uring unavailable (%s); falling back to epoll", strerror(-rc));
	return loop_epoll_open(out);
}
