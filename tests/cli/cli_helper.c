/* SPDX-License-Identifier: MIT */
/*
 * cli_helper.c - an endpoint holder for the CLI tests.
 *
 *   cli_helper ROLE NAME [ROLE NAME]...
 *   ROLE: consumer | producer | state-writer | state-reader
 *
 * Opens each channel in the given role (a state-writer publishes one image,
 * the 5 bytes "hello", before it is ready), prints "ready" (one line, flushed)
 * once every endpoint is open, then waits until stdin reaches EOF (the test
 * closes it, or dies) and closes the endpoints.  The tests SIGKILL it to
 * leave a channel whose endpoints died.  On an open error it prints
 * "error <errno-name> <message>" and exits 1.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "takt.h"

#define MAX_ENDPOINTS 16

int main(int argc, char **argv)
{
	takt_consumer *cons[MAX_ENDPOINTS];
	takt_producer *prod[MAX_ENDPOINTS];
	takt_state_writer *sw[MAX_ENDPOINTS];
	takt_state_reader *sr[MAX_ENDPOINTS];
	int ncons = 0, nprod = 0, nsw = 0, nsr = 0;
	if (argc < 3 || (argc - 1) % 2 != 0 || (argc - 1) / 2 > MAX_ENDPOINTS) {
		fprintf(stderr, "usage: cli_helper consumer|producer|state-writer|state-reader "
			"NAME [...]\n");
		return 2;
	}
	for (int i = 1; i < argc; i += 2) {
		const char *role = argv[i], *name = argv[i + 1];
		int rc;
		if (strcmp(role, "consumer") == 0)
			rc = takt_consumer_open(name, &cons[ncons++]);
		else if (strcmp(role, "producer") == 0)
			rc = takt_producer_open(name, &prod[nprod++]);
		else if (strcmp(role, "state-writer") == 0) {
			rc = takt_state_writer_open(name, &sw[nsw]);
			if (rc == 0)
				rc = takt_state_write(sw[nsw++], "hello", 5);
		} else if (strcmp(role, "state-reader") == 0)
			rc = takt_state_reader_open(name, &sr[nsr++]);
		else
			rc = -EINVAL;
		if (rc < 0) {
			printf("error %d %s\n", -rc, takt_strerror(rc));
			fflush(stdout);
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	char buf[256];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		break;
	}
	for (int i = 0; i < ncons; i++)
		takt_consumer_close(cons[i]);
	for (int i = 0; i < nprod; i++)
		takt_producer_close(prod[i]);
	for (int i = 0; i < nsw; i++)
		takt_state_writer_close(sw[i]);
	for (int i = 0; i < nsr; i++)
		takt_state_reader_close(sr[i]);
	return 0;
}
