/* dirtier MIB RATE_MIB_S COUNTFILE: rewrites a MIB-MiB buffer of random
 * bytes at about RATE_MIB_S MiB per second, for ever, and after each whole
 * pass over the buffer writes "N N" (the passes so far, twice: a reader
 * that sees both fields agree has the whole line) to COUNTFILE.
 *
 * The memory a live migration must chase at a fixed rate, without forking
 * (the shell loop it replaces ran dd for every pass, and a fork is itself a
 * burst of page faults under the dirty log). The bytes change every pass
 * (each 8-byte word gets the pass number added), so no VMM can send them
 * as zero pages or unchanged ones. The rate is paced in 10 ms slices; if
 * the guest is slowed, passes simply come later: the reader measures the
 * rate it actually got. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SLICE_NS 10000000L /* 10 ms */

static void publish(const char *path, unsigned long passes)
{
	char tmp[4096], line[64];
	int len = snprintf(line, sizeof(line), "%lu %lu\n", passes, passes);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, line, (size_t)len) != len || close(fd) < 0 || rename(tmp, path) < 0) {
		perror("dirtier: count file");
		exit(1);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	char *end1 = NULL, *end2 = NULL;
	long mib = argc == 4 ? strtol(argv[1], &end1, 10) : 0;
	long rate = argc == 4 ? strtol(argv[2], &end2, 10) : 0;
	if (argc != 4 || *end1 || *end2 || mib <= 0 || mib > 4096 || rate <= 0 || rate > 100000) {
		fprintf(stderr, "usage: dirtier MIB (1..4096) RATE_MIB_S (1..100000) COUNTFILE\n");
		return 2;
	}
	size_t words = (size_t)mib << 17; /* 8-byte words */
	uint64_t *buf = malloc(words * sizeof(*buf));
	if (!buf) {
		fprintf(stderr, "dirtier: cannot allocate %ld MiB\n", mib);
		return 1;
	}
	for (size_t off = 0; off < words * sizeof(*buf);) {
		ssize_t n = getrandom((char *)buf + off, words * sizeof(*buf) - off, 0);
		if (n < 0 && errno != EINTR) {
			perror("dirtier: getrandom");
			return 1;
		}
		off += n > 0 ? (size_t)n : 0;
	}
	publish(argv[3], 0);
	/* Words per 10 ms slice; at least one page's worth. */
	size_t per_slice = (size_t)rate * (1u << 17) / 100;
	if (per_slice < 512)
		per_slice = 512;
	size_t at = 0;
	unsigned long passes = 0;
	uint64_t next = now_ns();
	for (;;) {
		size_t todo = per_slice;
		while (todo > 0) {
			size_t n = words - at < todo ? words - at : todo;
			for (size_t i = 0; i < n; i++)
				buf[at + i] += passes + 1;
			at += n;
			todo -= n;
			if (at == words) {
				at = 0;
				publish(argv[3], ++passes);
			}
		}
		next += SLICE_NS;
		uint64_t t = now_ns();
		if (next > t) {
			struct timespec d = { (time_t)((next - t) / 1000000000ull),
					      (long)((next - t) % 1000000000ull) };
			while (nanosleep(&d, &d) < 0 && errno == EINTR)
				;
		} else if (t - next > 10 * SLICE_NS) {
			next = t; /* fell behind (the guest was stopped): no catch-up burst */
		}
	}
}
