/* SPDX-License-Identifier: MIT */
/*
 * main.c - taktd: options, the listening socket (single instance, stale
 * socket replacement), signals, and the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: taktd [options]\n"
		"  --socket PATH        listening socket (default $XDG_RUNTIME_DIR/takt/taktd.sock,\n"
		"                       else /run/takt/taktd.sock; the directory is created)\n"
		"  --policy FILE        access policy (default: only taktd's own uid); group rules\n"
		"                       match the client's primary or supplementary groups\n"
		"                       (up to 256 of them; docs/PROTOCOL.md section 8)\n"
		"  --backend B          io_uring | epoll (default: io_uring, else epoll)\n"
		"  --log-level L        error | warn | info | debug (default info)\n"
		"  --socket-mode MODE   octal mode of the socket (default 0660)\n"
		"  --max-frame BYTES    largest frame accepted from clients (default %u)\n"
		"  --drain-ms MS        SIGTERM drain time limit (default 5000)\n"
		"  --ready-fd FD        write \"ready\\n\" to FD and close it once listening\n"
		"  --spin-us US         after activity the loop polls this long before sleeping\n"
		"                       (default 50, 0..10000)\n"
		"  --help, --version\n",
		TD_DEFAULT_MAX_FRAME);
}

static int default_socket(char *out, size_t n)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int len = xdg && xdg[0] == '/' ? snprintf(out, n, "%s/takt/taktd.sock", xdg)
				       : snprintf(out, n, "/run/takt/taktd.sock");
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

static int parse_uint(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

/* Create the socket's directory if missing (parents are not created). */
static int make_dir(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		LOGE("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Refuse when a live taktd answers on path; remove a stale socket file. */
static int open_listener(const char *path, unsigned mode, int *lock_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		LOGE("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (make_dir(path) < 0)
		return -1;

	/* The lock decides between taktds (also two starting at once). */
	char lock_path[PATH_MAX];
	snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
	*lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX | LOCK_NB) < 0) {
		LOGE("another taktd is live on %s (%s is locked: %s)", path, lock_path, strerror(errno));
		return -1;
	}
	/* Does anything still answer on the socket?  A killed taktd's listener
	 * can linger briefly (an io_uring instance is torn down asynchronously
	 * and holds the socket until then): wait up to 2 s for it to go. */
	for (int i = 0;; i++) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (!live)
			break;
		if (i == 40) {
			LOGE("another process is live on %s", path);
			return -1;
		}
		usleep(50000);
	}

	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			LOGE("%s exists and is not a socket", path);
			return -1;
		}
		LOGI("replacing stale socket %s", path);
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		LOGE("bind %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (chmod(path, mode) < 0 || listen(fd, 1024) < 0) {
		LOGE("listen %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, 0, 's' },   { "policy", required_argument, 0, 'p' },
		{ "backend", required_argument, 0, 'b' },  { "log-level", required_argument, 0, 'l' },
		{ "socket-mode", required_argument, 0, 'm' }, { "max-frame", required_argument, 0, 'f' },
		{ "drain-ms", required_argument, 0, 'd' }, { "ready-fd", required_argument, 0, 'r' },
		{ "spin-us", required_argument, 0, 'S' },
		{ "help", no_argument, 0, 'h' },           { "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	static char sock_buf[PATH_MAX];
	struct server s = { 0 };
	const char *policy_path = NULL;
	unsigned long v;
	s.cfg.socket_mode = 0660;
	s.cfg.max_frame = TD_DEFAULT_MAX_FRAME;
	s.cfg.drain_ms = 5000;
	s.cfg.ready_fd = -1;
	s.cfg.spin_ns = 50000;
	s.wake_fd = -1;
	s.listen_fd = s.signal_fd = -1;
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': s.cfg.socket_path = optarg; break;
		case 'p': policy_path = optarg; break;
		case 'b':
			if (strcmp(optarg, "io_uring") && strcmp(optarg, "epoll")) {
				fprintf(stderr, "taktd: --backend must be io_uring or epoll\n");
				return 2;
			}
			s.cfg.backend = optarg;
			break;
		case 'l':
			if (td_log_parse(optarg, &td_log_level) < 0) {
				fprintf(stderr, "taktd: bad --log-level %s\n", optarg);
				return 2;
			}
			break;
		case 'm':
			if (parse_uint(optarg, 8, 0777, &v) < 0) {
				fprintf(stderr, "taktd: bad --socket-mode\n");
				return 2;
			}
			s.cfg.socket_mode = (unsigned)v;
			break;
		case 'f':
			if (parse_uint(optarg, 10, 1u << 30, &v) < 0 || v < TD_MIN_FRAME) {
				fprintf(stderr, "taktd: --max-frame must be in [4096, 2^30]\n");
				return 2;
			}
			s.cfg.max_frame = (uint32_t)v;
			break;
		case 'd':
			if (parse_uint(optarg, 10, 3600000, &v) < 0) {
				fprintf(stderr, "taktd: bad --drain-ms\n");
				return 2;
			}
			s.cfg.drain_ms = (unsigned)v;
			break;
		case 'r':
			if (parse_uint(optarg, 10, INT_MAX, &v) < 0) {
				fprintf(stderr, "taktd: bad --ready-fd\n");
				return 2;
			}
			s.cfg.ready_fd = (int)v;
			break;
		case 'S':
			if (parse_uint(optarg, 10, 10000, &v) < 0) {
				fprintf(stderr, "taktd: --spin-us must be in [0, 10000]\n");
				return 2;
			}
			s.cfg.spin_ns = (uint32_t)v * 1000;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("taktd %d.%d.%d protocol %u\n", TAKT_VERSION_MAJOR, TAKT_VERSION_MINOR,
				 TAKT_VERSION_PATCH, TD_PROTO_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!s.cfg.socket_path) {
		if (default_socket(sock_buf, sizeof(sock_buf)) < 0) {
			LOGE("XDG_RUNTIME_DIR too long");
			return 1;
		}
		s.cfg.socket_path = sock_buf;
	}

	policy_init(&s.policy, getuid());
	if (policy_path) {
		char err[256];
		if (policy_load(&s.policy, policy_path, err, sizeof(err)) < 0) {
			LOGE("policy: %s", err);
			policy_free(&s.policy);
			return 1;
		}
	}

	/* One descriptor per client: take the hard limit. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Signals go to the signalfd; threads created later inherit the mask. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	s.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	int lock_fd = -1, rc = 1;
	int lrc = loop_open(s.cfg.backend, &s.loop);
	if (lrc < 0) {
		LOGE("%s backend unavailable: %s", s.cfg.backend ? s.cfg.backend : "event loop",
		     strerror(-lrc));
		goto out;
	}
	s.listen_fd = open_listener(s.cfg.socket_path, s.cfg.socket_mode, &lock_fd);
	if (s.listen_fd < 0 || s.signal_fd < 0)
		goto out;
	if ((lrc = server_init(&s)) < 0) {
		LOGE("init: %s", strerror(-lrc));
		goto out;
	}
	LOGI("ready on %s (backend %s, policy %s, max_frame %u)", s.cfg.socket_path,
	     s.loop->ops->name, policy_path ? policy_path : "own uid only", s.cfg.max_frame);
	if (s.cfg.ready_fd >= 0) {
		ssize_t w = write(s.cfg.ready_fd, "ready\n", 6);
		(void)w;
		close(s.cfg.ready_fd);
	}
	rc = server_run(&s) == 0 ? 0 : 1;
	server_fini(&s);
	LOGI("stopped");
out:
	if (s.listen_fd >= 0) {
		close(s.listen_fd);
		unlink(s.cfg.socket_path);
	}
	if (s.loop)
		s.loop->ops->destroy(s.loop);
	if (s.signal_fd >= 0)
		close(s.signal_fd);
	if (lock_fd >= 0)
		close(lock_fd);
	policy_free(&s.policy);
	return rc;
}
