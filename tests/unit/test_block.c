/* Block backends on real temporary files, each test run with both engines
 * (io_uring and the thread pool): data written comes back, holes read as
 * zeroes, bad requests and bad images are refused with one line, two
 * writers cannot share an image, and completions arrive through the fd. */
#include "cmocka_prelude.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "block/file.h"
#include "block_exercise.h"
#include "capture_stderr.h"

#define IMAGE_SIZE (1u << 20)

/* Each engine's run gets files of its own. */
static void path_of(void **state, char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s-%s", dir, state && *state ? (const char *)*state : "x", name);
}

/* A file of size bytes (sparse: reads as zeroes). */
static void make_file(const char *path, off_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static struct block_backend *open_image(const char *path, bool ro, const char *engine,
					enum block_cache cache)
{
	struct block_options o = {
		.path = path, .read_only = ro, .cache = cache, .engine = engine,
	};

	return block_open(&o);
}

/* block_open with what it logged captured into c. */
static struct block_backend *open_captured(const char *path, bool ro, const char *engine,
					   struct captured *c)
{
	int saved = stderr_begin();
	struct block_backend *b = open_image(path, ro, engine, BLOCK_CACHE_WRITEBACK);

	stderr_end(saved, c);
	return b;
}

/* One request on any iovecs, waited for 10 s at most: accepted, done()
 * called exactly once, nothing left in flight. */
static int64_t do_iov(struct block_backend *b, enum block_op op, uint64_t off,
		      const struct iovec *iov, unsigned int n, uint64_t len)
{
	struct waiter w = { 0 };
	struct block_req r = {
		.op = op, .offset = off, .iov = iov, .iovcnt = n, .len = len,
		.done = count_done, .opaque = &w,
	};

	assert_int_equal(block_submit(b, &r), 0);
	wait_for(b, &w, 1, 10);
	assert_int_equal(w.calls, 1);
	assert_int_equal(block_in_flight(b), 0);
	return w.result;
}

static int64_t rw(struct block_backend *b, enum block_op op, uint64_t off, void *buf,
		  size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return do_iov(b, op, off, &iov, 1, 0);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static bool all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* In $TMPDIR when it is short (test_direct_unaligned wants a file
 * system with O_DIRECT, which /tmp may not be). */
static int setup_dir(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	return tempdir_make(t && strlen(t) < 32 ? t : "/tmp", "blk");
}

static const char *engine_of(void **state)
{
	return *state;
}

/* Multi-iovec writes come back with a different split, at several
 * offsets, including the last sector. */
static void test_write_read_back(void **state)
{
	const char *engine = engine_of(state);
	static uint8_t a[512], b2[1536], c[2048], out[4096], want[4096];
	struct iovec wr[3] = { { a, sizeof(a) }, { b2, sizeof(b2) }, { c, sizeof(c) } };
	struct iovec rd[4] = { { out, 1024 }, { out + 1024, 0 }, { out + 1024, 3072 } };
	uint64_t offsets[] = { 0, 8192, 512 * 1001, IMAGE_SIZE - 4096 };
	struct block_backend *b;
	char path[128];
	unsigned int i;

	path_of(state, path, sizeof(path), "rw.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	assert_string_equal(block_engine_name(b), engine);
	assert_int_equal(block_size(b), IMAGE_SIZE);
	assert_false(block_read_only(b));
	for (i = 0; i < ARRAY_LEN(offsets); i++) {
		fill(want, sizeof(want), i + 1);
		memcpy(a, want, 512);
		memcpy(b2, want + 512, 1536);
		memcpy(c, want + 2048, 2048);
		assert_int_equal(do_iov(b, BLOCK_WRITE, offsets[i], wr, 3, 0), 4096);
		memset(out, 0xee, sizeof(out));
		assert_int_equal(do_iov(b, BLOCK_READ, offsets[i], rd, 3, 0), 4096);
		assert_memory_equal(out, want, sizeof(want));
	}
	assert_int_equal(do_iov(b, BLOCK_FLUSH, 0, NULL, 0, 0), 0);
	block_close(b);

	/* The data is in the file itself. */
	{
		int fd = open(path, O_RDONLY);

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, out, 4096, IMAGE_SIZE - 4096), 4096);
		close(fd);
		fill(want, sizeof(want), 4);
		assert_memory_equal(out, want, sizeof(want));
	}
}

/* Many requests in flight at once, completed in any order. */
static void test_many_in_flight(void **state)
{
	enum { N = 64, LEN = 8192 };
	static uint8_t buf[N][LEN], back[N][LEN];
	static struct block_req req[N];
	static struct iovec iov[N];
	const char *engine = engine_of(state);
	struct waiter w = { 0 };
	struct block_backend *b;
	char path[128];
	unsigned int i;

	path_of(state, path, sizeof(path), "many.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	block_plug(b);
	for (i = 0; i < N; i++) {
		fill(buf[i], LEN, 100 + i);
		iov[i] = (struct iovec){ buf[i], LEN };
		req[i] = (struct block_req){ .op = BLOCK_WRITE, .offset = (uint64_t)i * LEN,
					     .iov = &iov[i], .iovcnt = 1, .done = count_done,
					     .opaque = &w };
		assert_int_equal(block_submit(b, &req[i]), 0);
	}
	assert_int_equal(block_in_flight(b), N);
	block_unplug(b);
	wait_for(b, &w, N, 10);
	assert_int_equal(block_in_flight(b), 0);
	for (i = 0; i < N; i++) {
		iov[i] = (struct iovec){ back[i], LEN };
		req[i].op = BLOCK_READ;
		assert_int_equal(block_submit(b, &req[i]), 0);
	}
	wait_for(b, &w, 2 * N, 10);
	assert_int_equal(w.result, LEN);
	for (i = 0; i < N; i++)
		assert_memory_equal(back[i], buf[i], LEN);
	block_close(b);
}

/* DISCARD and WRITE_ZEROES read back as zeroes, leave the neighbours
 * alone, and keep the file's size. */
static void check_zeroing(void **state, enum block_op op)
{
	static uint8_t pat[65536], out[65536];
	const char *engine = engine_of(state);
	struct block_backend *b;
	char path[128];
	struct stat st;

	path_of(state, path, sizeof(path), op == BLOCK_DISCARD ? "discard.img" : "wz.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	fill(pat, sizeof(pat), 7);
	assert_int_equal(rw(b, BLOCK_WRITE, IMAGE_SIZE - sizeof(pat), pat, sizeof(pat)),
			 sizeof(pat));
	/* 4 KiB-aligned middle, and an odd sector-aligned piece. */
	assert_int_equal(do_iov(b, op, IMAGE_SIZE - sizeof(pat) + 8192, NULL, 0, 16384), 0);
	assert_int_equal(do_iov(b, op, IMAGE_SIZE - sizeof(pat) + 512, NULL, 0, 1024), 0);
	assert_int_equal(rw(b, BLOCK_READ, IMAGE_SIZE - sizeof(pat), out, sizeof(out)),
			 sizeof(out));
	assert_memory_equal(out, pat, 512);
	assert_true(all_zero(out + 512, 1024));
	assert_memory_equal(out + 1536, pat + 1536, 8192 - 1536);
	assert_true(all_zero(out + 8192, 16384));
	assert_memory_equal(out + 24576, pat + 24576, sizeof(pat) - 24576);
	/* Zero length: done() still runs, with 0. */
	assert_int_equal(do_iov(b, op, 0, NULL, 0, 0), 0);
	block_close(b);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, IMAGE_SIZE);
}

static void test_discard(void **state)
{
	check_zeroing(state, BLOCK_DISCARD);
}

static void test_write_zeroes(void **state)
{
	check_zeroing(state, BLOCK_WRITE_ZEROES);
}

static void test_read_only(void **state)
{
	const char *engine = engine_of(state);
	static uint8_t buf[4096], out[4096];
	struct waiter w = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct block_req r = { .iov = &iov, .iovcnt = 1, .len = 4096, .done = count_done,
			       .opaque = &w };
	struct block_backend *b;
	char path[128];
	int fd;

	path_of(state, path, sizeof(path), "ro.img");
	make_file(path, IMAGE_SIZE);
	fill(buf, sizeof(buf), 3);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 4096), 4096);
	close(fd);
	assert_int_equal(chmod(path, 0400), 0);
	b = open_image(path, true, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	assert_true(block_read_only(b));
	r.op = BLOCK_WRITE;
	assert_int_equal(block_submit(b, &r), -EROFS);
	r.op = BLOCK_DISCARD;
	assert_int_equal(block_submit(b, &r), -EROFS);
	r.op = BLOCK_WRITE_ZEROES;
	assert_int_equal(block_submit(b, &r), -EROFS);
	assert_int_equal(block_in_flight(b), 0);
	assert_int_equal(rw(b, BLOCK_READ, 4096, out, sizeof(out)), 4096);
	assert_memory_equal(out, buf, sizeof(buf));
	assert_int_equal(do_iov(b, BLOCK_FLUSH, 0, NULL, 0, 0), 0);
	block_close(b);
	assert_int_equal(w.calls, 0);
}

/* Refused at submission: done() never runs, nothing is in flight. */
static void test_out_of_range(void **state)
{
	const char *engine = engine_of(state);
	static uint8_t buf[1024];
	struct waiter w = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct iovec huge[2] = { { buf, SIZE_MAX }, { buf, 512 } };
	struct block_req r = { .iov = &iov, .iovcnt = 1, .done = count_done, .opaque = &w };
	struct block_backend *b;
	char path[128];
	unsigned int i;
	const struct {
		enum block_op op;
		uint64_t off, len;
	} bad[] = {
		{ BLOCK_READ, IMAGE_SIZE - 512, 0 },
		{ BLOCK_READ, IMAGE_SIZE, 0 },
		{ BLOCK_WRITE, UINT64_MAX - 511, 0 },
		{ BLOCK_WRITE, 100, 0 }, /* not a whole sector */
		{ BLOCK_DISCARD, IMAGE_SIZE - 512, 1024 },
		{ BLOCK_DISCARD, UINT64_MAX - 511, 1024 },
		{ BLOCK_WRITE_ZEROES, 0, IMAGE_SIZE + 512 },
		{ BLOCK_WRITE_ZEROES, 0, 700 },
		{ (enum block_op)99, 0, 0 },
	};

	path_of(state, path, sizeof(path), "range.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		r.op = bad[i].op;
		r.offset = bad[i].off;
		r.len = bad[i].len;
		if (block_submit(b, &r) != -EINVAL)
			fail_msg("bad request %u accepted", i);
	}
	/* Buffers that add up past 2^64, or that are not whole sectors. */
	r.op = BLOCK_READ;
	r.offset = 0;
	r.iov = huge;
	r.iovcnt = 2;
	assert_int_equal(block_submit(b, &r), -EINVAL);
	huge[0].iov_len = 100;
	assert_int_equal(block_submit(b, &r), -EINVAL);
	r.done = NULL;
	r.iov = &iov;
	r.iovcnt = 1;
	assert_int_equal(block_submit(b, &r), -EINVAL);
	assert_int_equal(block_in_flight(b), 0);
	/* The last sector itself is fine. */
	assert_int_equal(rw(b, BLOCK_READ, IMAGE_SIZE - 1024, buf, sizeof(buf)), 1024);
	block_close(b);
	assert_int_equal(w.calls, 0);
}

/* A file that shrinks under the VM: the read comes back short, the rest is
 * asked for again and there is none: -EIO, not a silent partial read. */
static void test_read_past_end(void **state)
{
	const char *engine = engine_of(state);
	static uint8_t out[8192];
	struct block_backend *b;
	char path[128];

	path_of(state, path, sizeof(path), "shrink.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	assert_int_equal(truncate(path, IMAGE_SIZE / 2 + 512), 0);
	assert_int_equal(rw(b, BLOCK_READ, IMAGE_SIZE / 2, out, sizeof(out)), -EIO);
	assert_int_equal(rw(b, BLOCK_READ, IMAGE_SIZE / 2 - 8192, out, sizeof(out)), 8192);
	block_close(b);
}

/* cache=none: O_DIRECT with buffers that are not aligned (bounce copies). */
static void test_direct_unaligned(void **state)
{
	const char *engine = engine_of(state);
	struct iovec wr[2], rd[3];
	struct block_backend *b;
	uint8_t *mem, *want;
	char path[128];

	path_of(state, path, sizeof(path), "direct.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_NONE);
	assert_non_null(b);
	/* What this test is about needs a file system with O_DIRECT: without
	 * it (tmpfs before Linux 6.6, overlayfs) cache=none is the page
	 * cache, and nothing here would reach the bounce buffers. */
	if (!block_direct(b) || ((struct block_file *)b)->mem_align <= 1) {
		print_message("skipping: test_direct_unaligned/%s: %s on %s (set TMPDIR to a "
			      "directory on ext4 or xfs)\n", engine,
			      block_direct(b) ? "O_DIRECT takes any buffer, no bounce needed"
					      : "no O_DIRECT", dir);
		block_close(b);
		skip();
		return;
	}
	mem = malloc(3 * 4096 + 64);
	want = malloc(8192);
	assert_non_null(mem);
	assert_non_null(want);
	fill(want, 8192, 9);
	memcpy(mem + 3, want, 8192);
	wr[0] = (struct iovec){ mem + 3, 1000 };
	wr[1] = (struct iovec){ mem + 3 + 1000, 8192 - 1000 };
	assert_int_equal(do_iov(b, BLOCK_WRITE, 4096, wr, 2, 0), 8192);
	memset(mem, 0, 3 * 4096 + 64);
	rd[0] = (struct iovec){ mem + 1, 512 };
	rd[1] = (struct iovec){ mem + 1 + 512, 7000 };
	rd[2] = (struct iovec){ mem + 1 + 7512, 680 };
	assert_int_equal(do_iov(b, BLOCK_READ, 4096, rd, 3, 0), 8192);
	assert_memory_equal(mem + 1, want, 8192);
	assert_int_equal(do_iov(b, BLOCK_WRITE_ZEROES, 4096, NULL, 0, 4096), 0);
	assert_int_equal(do_iov(b, BLOCK_READ, 4096, rd, 3, 0), 8192);
	assert_true(all_zero(mem + 1, 4096));
	assert_memory_equal(mem + 1 + 4096, want + 4096, 4096);
	block_close(b);
	free(mem);
	free(want);
}

/* FLUSH is an fdatasync of the image, counted where the engine issues
 * it; a write alone syncs nothing, and cache=writeback is never
 * O_DIRECT. */
static void test_flush_fdatasync(void **state)
{
	const char *engine = engine_of(state);
	struct block_backend *b;
	uint8_t buf[4096];
	char path[128];

	path_of(state, path, sizeof(path), "flush.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	assert_string_equal(block_engine_name(b), engine);
	assert_false(block_direct(b));
	fill(buf, sizeof(buf), 3);
	assert_int_equal(rw(b, BLOCK_WRITE, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	assert_int_equal(block_fdatasyncs(b), 0);
	assert_int_equal(do_iov(b, BLOCK_FLUSH, 0, NULL, 0, 0), 0);
	assert_int_equal(block_fdatasyncs(b), 1);
	assert_int_equal(rw(b, BLOCK_READ, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	assert_int_equal(do_iov(b, BLOCK_FLUSH, 0, NULL, 0, 0), 0);
	assert_int_equal(block_fdatasyncs(b), 2);
	block_close(b);
}

/* block_close() runs the done() of everything still in flight. */
static void test_close_waits(void **state)
{
	enum { N = 16 };
	static uint8_t buf[N][65536];
	static struct iovec iov[N];
	static struct block_req req[N];
	const char *engine = engine_of(state);
	struct waiter w = { 0 };
	struct block_backend *b;
	char path[128];
	unsigned int i;

	path_of(state, path, sizeof(path), "close.img");
	make_file(path, IMAGE_SIZE);
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	for (i = 0; i < N; i++) {
		iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
		req[i] = (struct block_req){ .op = i % 2 ? BLOCK_WRITE : BLOCK_READ,
					     .offset = (uint64_t)i * 65536, .iov = &iov[i],
					     .iovcnt = 1, .done = count_done, .opaque = &w };
		assert_int_equal(block_submit(b, &req[i]), 0);
	}
	block_close(b);
	assert_int_equal(w.calls, N);
	assert_int_equal(w.result, 65536);
}

static void test_open_errors(void **state)
{
	const char *engine = engine_of(state);
	char path[128];
	struct captured c;

	path_of(state, path, sizeof(path), "missing.img");
	assert_null(open_captured(path, false, engine, &c));
	assert_one_error_line(c.text, path, "does not exist");

	assert_null(open_captured(dir, false, engine, &c));
	assert_one_error_line(c.text, dir, "is a directory");
	assert_null(open_captured(dir, true, engine, &c));
	assert_one_error_line(c.text, dir, "is a directory");

	path_of(state, path, sizeof(path), "empty.img");
	make_file(path, 0);
	assert_null(open_captured(path, false, engine, &c));
	assert_one_error_line(c.text, path, "empty");

	path_of(state, path, sizeof(path), "odd.img");
	make_file(path, 1000);
	assert_null(open_captured(path, false, engine, &c));
	assert_one_error_line(c.text, path, "not a multiple of 512");

	/* A FIFO must neither hang the open nor pass for a disk. */
	path_of(state, path, sizeof(path), "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(open_captured(path, true, engine, &c));
	assert_one_error_line(c.text, path, "not a regular file or block device");
	unlink(path);
	assert_null(open_captured("/dev/null", true, engine, &c));
	assert_one_error_line(c.text, "/dev/null", "not a regular file or block device");

	/* Opening never creates or changes anything. */
	path_of(state, path, sizeof(path), "missing.img");
	assert_int_equal(access(path, F_OK), -1);
	path_of(state, path, sizeof(path), "odd.img");
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, 1000);
	}
	if (geteuid() != 0) { /* root reads anything */
		path_of(state, path, sizeof(path), "noperm.img");
		make_file(path, 4096);
		assert_int_equal(chmod(path, 0), 0);
		assert_null(open_captured(path, true, engine, &c));
		assert_one_error_line(c.text, path, "permission denied");
	}
}

static void test_lock_conflict(void **state)
{
	const char *engine = engine_of(state);
	struct block_backend *a, *b;
	char path[128];
	struct captured c;

	path_of(state, path, sizeof(path), "lock.img");
	make_file(path, IMAGE_SIZE);
	a = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(a);
	assert_null(open_captured(path, false, engine, &c));
	assert_one_error_line(c.text, path, "is in use by another process");
	assert_null(open_captured(path, true, engine, &c));
	assert_one_error_line(c.text, path, "is in use by another process");
	block_close(a);

	/* Readers share; a writer waits for all of them. */
	a = open_image(path, true, engine, BLOCK_CACHE_WRITEBACK);
	b = open_image(path, true, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(open_captured(path, false, engine, &c));
	assert_one_error_line(c.text, path, "in use");
	block_close(a);
	assert_null(open_captured(path, false, engine, &c));
	block_close(b);
	a = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(a);
	block_close(a);
}

/* The short-transfer bookkeeping on its own: partial results advance the
 * iovecs (without touching the caller's array) until the end. */
static void test_short_transfers(void **state)
{
	static uint8_t buf[4096];
	const struct iovec iov[3] = { { buf, 1024 }, { buf + 1024, 1024 }, { buf + 2048, 2048 } };
	struct block_req r = { .op = BLOCK_READ, .iov = iov, .iovcnt = 3 };
	struct block_io io = {
		.req = &r, .op = BLOCK_READ, .offset = 512, .remaining = 4096,
		.iov = (struct iovec *)iov, .iovcnt = 3,
	};
	struct block_file none = { 0 }; /* the step logic reads only its flags */
	struct block_backend *b = &none.base;

	(void)state;
	assert_false(file_io_step_done((struct block_file *)b, &io, 700));
	assert_int_equal(io.offset, 1212);
	assert_int_equal(io.remaining, 4096 - 700);
	assert_int_equal(io.iovcnt, 3);
	assert_ptr_equal(io.iov[0].iov_base, buf + 700);
	assert_int_equal(io.iov[0].iov_len, 324);
	assert_ptr_equal(iov[0].iov_base, buf); /* the caller's array is intact */
	assert_int_equal(iov[0].iov_len, 1024);
	assert_false(file_io_step_done((struct block_file *)b, &io, -EINTR)); /* retried as it is */
	assert_int_equal(io.remaining, 4096 - 700);
	assert_false(file_io_step_done((struct block_file *)b, &io, 324 + 1024 + 48));
	assert_int_equal(io.iovcnt, 1);
	assert_ptr_equal(io.iov[0].iov_base, buf + 2096);
	assert_int_equal(io.iov[0].iov_len, 2000);
	assert_true(file_io_step_done((struct block_file *)b, &io, 2000));
	assert_int_equal(io.result, 4096);
	free(io.iov_copy);

	/* No progress is an error, and so is a real one. */
	io = (struct block_io){ .req = &r, .op = BLOCK_READ, .remaining = 4096,
				.iov = (struct iovec *)iov, .iovcnt = 3 };
	assert_false(file_io_step_done((struct block_file *)b, &io, 512));
	assert_true(file_io_step_done((struct block_file *)b, &io, 0));
	assert_int_equal(io.result, -EIO);
	free(io.iov_copy);
	io = (struct block_io){ .req = &r, .op = BLOCK_WRITE, .remaining = 4096,
				.iov = (struct iovec *)iov, .iovcnt = 3 };
	assert_true(file_io_step_done((struct block_file *)b, &io, -ENOSPC));
	assert_int_equal(io.result, -ENOSPC);
}

/* Where fallocate cannot punch or zero, zeroes are written instead. */
static void test_zero_fallback(void **state)
{
	static uint8_t pat[1 << 20], out[1 << 20];
	const char *engine = engine_of(state);
	struct block_backend *b;
	struct block_req r = { .op = BLOCK_DISCARD };
	struct block_io io = { .req = &r, .op = BLOCK_DISCARD, .offset = 512,
			       .remaining = sizeof(pat) - 1024 };
	char path[128];
	int64_t res;
	int steps = 0;

	path_of(state, path, sizeof(path), "fallback.img");
	make_file(path, sizeof(pat));
	b = open_image(path, false, engine, BLOCK_CACHE_WRITEBACK);
	assert_non_null(b);
	fill(pat, sizeof(pat), 11);
	assert_int_equal(rw(b, BLOCK_WRITE, 0, pat, sizeof(pat)), sizeof(pat));
	/* Punching unsupported -> zero range unsupported -> writes. */
	assert_false(file_io_step_done((struct block_file *)b, &io, -EOPNOTSUPP));
	assert_int_equal(io.op, BLOCK_WRITE_ZEROES);
	assert_false(file_io_step_done((struct block_file *)b, &io, -EOPNOTSUPP));
	assert_int_equal(io.op, BLOCK_WRITE);
	assert_true(io.zero_fill);
	do {
		res = file_io_step_sync((struct block_file *)b, &io);
		steps++;
	} while (!file_io_step_done((struct block_file *)b, &io, res));
	assert_int_equal(io.result, 0);
	assert_true(steps >= 1);
	free(io.iov_copy);
	assert_int_equal(rw(b, BLOCK_READ, 0, out, sizeof(out)), sizeof(out));
	assert_memory_equal(out, pat, 512);
	assert_true(all_zero(out + 512, sizeof(out) - 1024));
	assert_memory_equal(out + sizeof(out) - 512, pat + sizeof(pat) - 512, 512);
	block_close(b);
}

/* Makes io_uring_setup fail with ENOSYS in this process, as a seccomp
 * profile or an old kernel would. */
static int forbid_io_uring(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = ARRAY_LEN(f), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Without io_uring the thread pool takes over, silently by default and
 * with a warning when io_uring was asked for; both really work. Runs in a
 * child: the filter cannot be undone. */
static void test_uring_fallback(void **state)
{
	static uint8_t buf[4096], out[4096];
	char path[128];
	struct captured c;
	pid_t pid;
	int status;

	path_of(state, path, sizeof(path), "fallback-engine.img");
	make_file(path, IMAGE_SIZE);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct block_backend *b;

		if (forbid_io_uring() < 0)
			_exit(10);
		b = open_captured(path, false, NULL, &c);
		if (!b || strcmp(block_engine_name(b), "threads") || strstr(c.text, "warning"))
			_exit(11);
		fill(buf, sizeof(buf), 5);
		if (rw(b, BLOCK_WRITE, 8192, buf, sizeof(buf)) != 4096 ||
		    rw(b, BLOCK_READ, 8192, out, sizeof(out)) != 4096 ||
		    memcmp(buf, out, sizeof(out)))
			_exit(12);
		block_close(b);
		b = open_captured(path, false, "uring", &c);
		if (!b || strcmp(block_engine_name(b), "threads") ||
		    !strstr(c.text, "vireo: warning: ") || !strstr(c.text, "io_uring unavailable"))
			_exit(13);
		block_close(b);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

#define BOTH(fn)                                                                   \
	{ #fn "/uring", fn, NULL, NULL, "uring" },                                 \
	{ #fn "/threads", fn, NULL, NULL, "threads" }

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_write_read_back),
		BOTH(test_many_in_flight),
		BOTH(test_discard),
		BOTH(test_write_zeroes),
		BOTH(test_read_only),
		BOTH(test_out_of_range),
		BOTH(test_read_past_end),
		BOTH(test_direct_unaligned),
		BOTH(test_flush_fdatasync),
		BOTH(test_close_waits),
		BOTH(test_open_errors),
		BOTH(test_lock_conflict),
		BOTH(test_zero_fallback),
		cmocka_unit_test(test_short_transfers),
		cmocka_unit_test(test_uring_fallback),
	};

	return cmocka_run_group_tests(tests, setup_dir, tempdir_teardown);
}
