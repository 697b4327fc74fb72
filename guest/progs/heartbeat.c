/* heartbeat [PERIOD_MS [STOPFILE]]: prints "HB<n>" on stdout every
 * PERIOD_MS (default 20) until STOPFILE (default /tmp/hb-stop) exists.
 *
 * Why a program and not the shell loop the tests used ("echo HB$i; usleep
 * 20000"): busybox's sh forks for every usleep, and a fork write-faults the
 * pages it shares with the child. During a live migration those pages are
 * write-protected by the dirty log, so the shell loop's gaps could measure
 * the guest's page faults as much as whether its vCPU ran. This loop only
 * writes a line and sleeps: a gap between two beats is time the guest did
 * not run (or could not reach its console). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long period_ms = argc > 1 ? strtol(argv[1], NULL, 10) : 20;
	const char *stop = argc > 2 ? argv[2] : "/tmp/hb-stop";
	if (argc > 3 || period_ms <= 0 || period_ms > 60000) {
		fprintf(stderr, "usage: heartbeat [PERIOD_MS (1..60000) [STOPFILE]]\n");
		return 2;
	}
	struct timespec period = { period_ms / 1000, (period_ms % 1000) * 1000000L };
	for (unsigned long i = 1; access(stop, F_OK) != 0; i++) {
		char line[32];
		int len = snprintf(line, sizeof(line), "HB%lu\n", i);
		if (write_all(line, (size_t)len) < 0) {
			perror("heartbeat: write");
			return 1;
		}
		struct timespec left = period;
		while (nanosleep(&left, &left) < 0 && errno == EINTR)
			;
	}
	return 0;
}
