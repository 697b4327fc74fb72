/* What the block layer's tests share (test_block, test_qcow2,
 * test_qcow2_hostile, test_nbd, test_rbd): requests through the block
 * layer's own API, waited for as a device's I/O thread waits; a workload
 * checked against a reference in memory; a temporary directory and the
 * shell commands that make images in it; images compared with what
 * qemu-img reads; one-line error messages. Include after
 * cmocka_prelude.h. */
#ifndef VIREO_TESTS_UNIT_BLOCK_EXERCISE_H
#define VIREO_TESTS_UNIT_BLOCK_EXERCISE_H

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"

/* ---- requests ---- */

/* The done() calls of a set of requests: how many, the last result, and
 * the worst (an error of any of them, or 0). */
struct waiter {
	unsigned int calls;
	int64_t result;
	int64_t worst;
};

static inline void count_done(struct block_req *r, int64_t result)
{
	struct waiter *w = r->opaque;

	w->calls++;
	w->result = result;
	if (result < w->worst)
		w->worst = result;
}

/* Runs completions as a device's I/O thread does (poll the completion
 * fd, and process only when it is readable: a driver that does not wake
 * its device hangs here as it would hang a guest) until w has seen n
 * done() calls. false once the fd has stayed quiet (or poll failed) for
 * max_s seconds' worth of polls. No cmocka: a test's forked children use
 * it too. */
static inline bool wait_within(struct block_backend *b, const struct waiter *w, unsigned int n,
			       int max_s)
{
	struct pollfd p = { .fd = block_completion_fd(b), .events = POLLIN };
	int rounds = 0;

	while (w->calls < n) {
		if (poll(&p, 1, 100) <= 0) {
			if (++rounds > max_s * 10)
				return false;
			continue;
		}
		block_process_completions(b);
	}
	return true;
}

static inline void wait_for(struct block_backend *b, const struct waiter *w, unsigned int n,
			    int max_s)
{
	if (!wait_within(b, w, n, max_s))
		fail_msg("%u of %u requests never completed", n - w->calls, n);
}

/* One request on one buffer (buf NULL: none, len the range's length),
 * waited for: its result, or the error block_submit() refused it with;
 * INT64_MIN if it did not complete (wait_within's max_s). No cmocka. */
static inline int64_t io_within(struct block_backend *b, enum block_op op, uint64_t off, void *buf,
				uint64_t len, int max_s)
{
	struct iovec iov = { buf, (size_t)len };
	struct waiter w = { 0 };
	struct block_req r = { .op = op, .offset = off, .iov = &iov, .iovcnt = buf ? 1 : 0,
			       .len = buf ? 0 : len, .done = count_done, .opaque = &w };
	int err = block_submit(b, &r);

	if (err)
		return err;
	return wait_within(b, &w, 1, max_s) ? w.result : INT64_MIN;
}

/* io_within, in a cmocka test: one that never completes fails it. */
static inline int64_t do_io(struct block_backend *b, enum block_op op, uint64_t off, void *buf,
			    uint64_t len)
{
	int64_t r = io_within(b, op, off, buf, len, 60);

	if (r == INT64_MIN)
		fail_msg("a request (op %d at %llu, %llu bytes) never completed", op,
			 (unsigned long long)off, (unsigned long long)len);
	return r;
}

/* Random writes and reads with many in flight, flush, write-zeroes and a
 * discard that reads back as zeroes: against a reference in memory. */
static inline void exercise(struct block_backend *b, uint64_t size)
{
	uint8_t *ref = calloc(1, size), *got = malloc(size), *bufs = malloc(32 * 65536);
	struct block_req r[32];
	struct iovec iov[64], back[2];
	struct waiter w = { 0 };
	unsigned int i, round;

	assert_non_null(ref);
	do_io(b, BLOCK_READ, 0, ref, size); /* start from what is there */
	srand(7);
	for (round = 0; round < 20; round++) {
		w.calls = 0;
		for (i = 0; i < 32; i++) {
			uint64_t len = (uint64_t)(1 + rand() % 128) * 512;
			uint64_t off = (uint64_t)(rand() % (int)((size - len) / 512)) * 512;
			size_t j;

			/* Disjoint in a round: each request its own slice. */
			off = (size / 32) * i + off % (size / 32 - len);
			off &= ~511ull;
			uint8_t *slot = bufs + i * 65536;
			uint64_t h = len / 1024 * 512; /* odd i: the first h bytes, then the rest */

			for (j = 0; j < len; j++)
				slot[j] = (uint8_t)rand();
			if (i % 2 && h) {
				/* Two buffers, the first after the second in
				 * memory: scattered, as a guest's may be. */
				iov[2 * i] = (struct iovec){ slot + (len - h), (size_t)h };
				iov[2 * i + 1] = (struct iovec){ slot, (size_t)(len - h) };
				memcpy(ref + off, slot + (len - h), h);
				memcpy(ref + off + h, slot, len - h);
			} else {
				iov[2 * i] = (struct iovec){ slot, (size_t)len };
				iov[2 * i + 1] = (struct iovec){ slot + len, 0 };
				memcpy(ref + off, slot, len);
			}
			r[i] = (struct block_req){ .op = BLOCK_WRITE, .offset = off, .iov = &iov[2 * i],
						   .iovcnt = 2, .done = count_done, .opaque = &w };
			assert_int_equal(block_submit(b, &r[i]), 0);
		}
		wait_for(b, &w, 32, 60);
		assert_true(w.worst >= 0);
	}
	assert_int_equal(do_io(b, BLOCK_FLUSH, 0, NULL, 0), 0);
	assert_int_equal(do_io(b, BLOCK_WRITE_ZEROES, 65536, NULL, 131072), 0);
	memset(ref + 65536, 0, 131072);
	assert_int_equal(do_io(b, BLOCK_DISCARD, size / 2, NULL, 1 << 20), 0);
	memset(ref + size / 2, 0, 1 << 20);
	assert_int_equal(do_io(b, BLOCK_READ, 0, got, size), (int64_t)size);
	assert_memory_equal(got, ref, size);
	/* And a scattered read: the first 4 KiB land after the next 60. */
	memset(got, 0, 65536);
	back[0] = (struct iovec){ got + 61440, 4096 };
	back[1] = (struct iovec){ got, 61440 };
	r[0] = (struct block_req){ .op = BLOCK_READ, .offset = 0, .iov = back, .iovcnt = 2,
				   .done = count_done, .opaque = &w };
	w.calls = 0;
	assert_int_equal(block_submit(b, &r[0]), 0);
	wait_for(b, &w, 1, 60);
	assert_int_equal(w.result, 65536);
	assert_memory_equal(got + 61440, ref, 4096);
	assert_memory_equal(got, ref + 4096, 61440);
	free(ref);
	free(got);
	free(bufs);
}

/* ---- files ---- */

/* The test's temporary directory: made by its group setup with
 * tempdir_make(), removed with all it holds by tempdir_teardown. */
static char dir[256];

/* parent/vireo-NAME-XXXXXX. 0, or -1 (a group setup's answer). */
static inline int tempdir_make(const char *parent, const char *name)
{
	snprintf(dir, sizeof(dir), "%s/vireo-%s-XXXXXX", parent, name);
	return mkdtemp(dir) ? 0 : -1;
}

static inline int tempdir_teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* name in the temporary directory, into out (512 bytes). */
static inline void path(char *out, const char *name)
{
	snprintf(out, 512, "%s/%s", dir, name);
}

/* A shell command (qemu-img, dd, rbd...) that must succeed. */
static inline void __attribute__((format(printf, 1, 2))) sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

/* The whole file p; its length in *len. */
static inline uint8_t *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* b reads as qemu-img's raw conversion of img (-U: b has it open), read
 * in odd pieces so that requests straddle clusters. */
static inline void assert_reads_as_qemu(struct block_backend *b, const char *img)
{
	char raw[512];
	size_t len, off;
	uint8_t *want, *got;

	path(raw, "expect.raw");
	sh("qemu-img convert -U -O raw '%s' '%s'", img, raw);
	want = slurp(raw, &len);
	assert_int_equal(block_size(b), len);
	got = malloc(len);
	assert_non_null(got);
	for (off = 0; off < len;) {
		size_t n = len - off < 3 * 4096 + 512 ? len - off : 3 * 4096 + 512;

		assert_int_equal(do_io(b, BLOCK_READ, off, got + off, n), (int64_t)n);
		off += n;
	}
	if (memcmp(got, want, len)) {
		for (off = 0; off < len && got[off] == want[off]; off++)
			;
		fail_msg("%s reads differently from qemu-img at byte %zu", img, off);
	}
	free(got);
	free(want);
	unlink(raw);
}

/* ---- errors ---- */

/* msg (what was logged) is one error line naming file and what. */
static inline void assert_one_error_line(const char *msg, const char *file, const char *what)
{
	const char *nl = strchr(msg, '\n');

	if (strncmp(msg, "vireo: error: ", 14) || !strstr(msg, file) || !strstr(msg, what) || !nl ||
	    nl[1])
		fail_msg("expected one error line naming '%s' and '%s', got:\n%s", file, what, msg);
}

#endif
