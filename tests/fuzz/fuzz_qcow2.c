/* qcow2 images from a hostile source, through the block layer's own API
 * (block_open, block_submit) as virtio-blk uses it. The input is a whole
 * image file, written to a directory of the process's own (on /dev/shm
 * when there is one: flushes cost nothing there; named by the pid, so
 * that one left by a crash is removed by the next run). An input of an
 * odd length is followed in the file by up to 64 MiB of zeroes (a hole),
 * as many sectors as its last four bytes say (little-endian, modulo
 * 128 Ki): files far larger than their tables, or than what the refcount
 * table covers, which no input of libFuzzer's sizes would be. Then the
 * image is opened:
 *
 * 1. probed (format NULL), read-only: a backing file is refused by design;
 * 2. format=qcow2, read-only, when the image names a backing file and the
 *    name has no '/' in it: it can then only be a file of the temporary
 *    directory, which holds the image itself ("img": a loop), "base.raw"
 *    (256 KiB of a pattern), a FIFO ("fifo") and a directory ("dir");
 *    anything else does not exist. A name with a '/' could reach any
 *    host file, so such an image is only ever opened probed;
 * 3. read-write (format=qcow2 under the same rule, or probed), with an L2
 *    cache of four tables so that tables are evicted and flushed.
 *
 * Read-only, the virtual disk is read in odd-sized requests that straddle
 * clusters, up to four at a time: its first 1024 clusters (4 MiB at
 * most: an input takes a few milliseconds), its middle and its end, and
 * the guest clusters that the image's own L1 and L2 tables (parsed here
 * from the input) say are allocated, wherever they are. Read-write, the
 * same reads (a quarter of the walk) then writes (partial and whole
 * clusters, at both ends of the disk, into allocated clusters, in six L2
 * tables' ranges), discards and write-zeroes, flushes, the written ranges
 * read back, and the close (a last flush).
 *
 * Oracle: no crash, no sanitizer report, no hang (libFuzzer's -timeout);
 * an open that fails logs exactly one line, "vireo: error: disk '...",
 * naming a file of the temporary directory; an open that succeeds logs
 * nothing; every request completes with its whole length (0 for the
 * others) or a negative errno, and every line logged is Vireo's. What
 * Vireo logs is captured by pointing stderr (the FILE *) at a memory
 * stream: sanitizer reports go to fd 2 and are not caught in it.
 *
 * Settings from the environment, for exploring:
 * FUZZ_QCOW2_STRICT=1 also checks what the written ranges read back
 * against a model of the writes. Only valid images must pass that (a
 * corrupt one may map guest clusters onto each other or onto its own
 * tables, and then a write legitimately changes what another range
 * reads), so it is off by default.
 * FUZZ_QCOW2_LINES=any accepts more than one line from a failed open
 * (a known driver bug, reported: see test_qcow2_hostile.c), so that a
 * long run gets past it.
 * FUZZ_QCOW2_VERBOSE (set) prints what Vireo logs for each input (with
 * VIREO_DEBUG=1: also what each open found): run a crash input with it
 * to see which line broke the oracle. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "fuzz.h"
#include "util/le.h"

#define WALK_MAX (4u << 20)
#define WALK_CLUSTERS 1024
#define BATCH 4
#define MAX_OPS 64
#define BASE_SIZE (256u << 10)

/* What a write puts at disk offset x: pat[x % PAT], a period that no
 * cluster size divides, so data in the wrong place shows. Filled with
 * memcpy: the harness is instrumented too, and byte loops are slow. */
#define PAT (3 * 65536 + 1536 + 7)
static uint8_t pat[PAT];

static char dir[64], img[96];
static bool strict, any_lines, verbose;

/* ---- the temporary directory ---- */

static void remove_dir(const char *d)
{
	static const char *const names[] = { "img", "base.raw", "fifo", "dir" };
	char p[512];
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", d, names[i]);
		if (unlink(p) < 0)
			rmdir(p);
	}
	rmdir(d);
}

static void cleanup(void)
{
	remove_dir(dir);
}

/* The directory is named by the process: one that crashed (no atexit)
 * leaves its own behind, which the next run removes. */
static void remove_stale(const char *parent)
{
	DIR *d = opendir(parent);
	struct dirent *e;
	char p[512];
	long pid;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (sscanf(e->d_name, "vireo-fuzz-qcow2.%ld", &pid) != 1 || pid <= 0 ||
		    (kill((pid_t)pid, 0) < 0 && errno != ESRCH) ||
		    (kill((pid_t)pid, 0) == 0 && pid != getpid()))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", parent, e->d_name) < 200)
			remove_dir(p);
	}
	closedir(d);
}

static void setup(void)
{
	static uint8_t base[BASE_SIZE];
	const char *parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char p[128];
	size_t i;
	int fd;

	remove_stale(parent);
	snprintf(dir, sizeof(dir), "%s/vireo-fuzz-qcow2.%ld", parent, (long)getpid());
	CHECK(mkdir(dir, 0700) == 0);
	atexit(cleanup);
	snprintf(img, sizeof(img), "%s/img", dir);
	for (i = 0; i < sizeof(base); i++)
		base[i] = (uint8_t)(i / 512 * 7 + i % 512);
	for (i = 0; i < PAT; i++)
		pat[i] = (uint8_t)(i / 512 * 13 + i % 512 + 1);
	snprintf(p, sizeof(p), "%s/base.raw", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, base, sizeof(base)) == (ssize_t)sizeof(base));
	close(fd);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	CHECK(mkfifo(p, 0600) == 0);
	snprintf(p, sizeof(p), "%s/dir", dir);
	CHECK(mkdir(p, 0700) == 0);
	strict = getenv("FUZZ_QCOW2_STRICT") && !strcmp(getenv("FUZZ_QCOW2_STRICT"), "1");
	any_lines = getenv("FUZZ_QCOW2_LINES") && !strcmp(getenv("FUZZ_QCOW2_LINES"), "any");
	verbose = getenv("FUZZ_QCOW2_VERBOSE") != NULL;
}

/* ---- what Vireo logs ---- */

static char *log_buf;
static size_t log_len, log_checked;
static FILE *log_f, *saved_stderr;

static void log_begin(void)
{
	log_f = open_memstream(&log_buf, &log_len);
	CHECK(log_f);
	log_checked = 0;
	saved_stderr = stderr;
	stderr = log_f;
}

/* What was logged since the last call: every line must be one of
 * Vireo's; the count of those that are not debug lines (VIREO_DEBUG). */
static unsigned int log_check(void)
{
	const char *p, *end;
	unsigned int n = 0;

	fflush(log_f);
	p = log_buf + log_checked;
	end = log_buf + log_len;
	if (verbose)
		fwrite(p, 1, (size_t)(end - p), saved_stderr);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		CHECK(nl);
		CHECK(!strncmp(p, "vireo: ", 7));
		n += strncmp(p, "vireo: debug: ", 14) != 0;
		p = nl + 1;
	}
	log_checked = log_len;
	return n;
}

static void log_end(void)
{
	log_check();
	stderr = saved_stderr;
	fclose(log_f);
	free(log_buf);
	log_buf = NULL;
	log_len = 0;
}

/* ---- the input's own header and tables ---- */

struct image {
	const uint8_t *d;
	size_t n;
	uint32_t cluster_bits; /* clamped to 9..21 */
	uint64_t cs, size;     /* size: the header's, not trusted */
	bool has_backing, backing_safe;
};

static void parse(struct image *im, const uint8_t *d, size_t n)
{
	uint64_t off;
	uint32_t len;

	memset(im, 0, sizeof(*im));
	im->d = d;
	im->n = n;
	im->cluster_bits = 16;
	if (n >= 32) {
		uint32_t cb = be32_get(d + 20);

		im->cluster_bits = cb < 9 ? 9 : cb > 21 ? 21 : cb;
		im->size = be64_get(d + 24);
	}
	im->cs = 1ull << im->cluster_bits;
	im->backing_safe = true;
	if (n < 20 || !(off = be64_get(d + 8)))
		return;
	im->has_backing = true;
	len = be32_get(d + 16);
	/* The name is bytes [off, off + len) of the file (the driver reads
	 * no other): any '/' there and it could name any host file. */
	if (off < n)
		im->backing_safe = !memchr(d + off, '/', len < n - off ? len : n - off);
}

static uint64_t in64(const struct image *im, uint64_t off)
{
	return im->n >= 8 && off <= im->n - 8 ? be64_get(im->d + off) : 0;
}

/* Guest offsets that the input's tables say are allocated (from the
 * offset from on), at most max of them; L1 and L2 entries are only
 * looked at inside the input, 64 Ki of them at most. */
static unsigned int allocated(const struct image *im, uint64_t size, uint64_t from, uint64_t *out,
			      unsigned int max)
{
	uint64_t l1 = in64(im, 40), l1_size = im->n >= 40 ? be32_get(im->d + 36) : 0;
	uint64_t l2e = im->cs / 8, span = im->cs * l2e, i, j, found = 0, budget = 65536;

	if (l1 >= im->n)
		return 0;
	if (l1_size > (im->n - l1) / 8)
		l1_size = (im->n - l1) / 8;
	for (i = 0; i < l1_size && found < max && budget; i++, budget--) {
		uint64_t t = in64(im, l1 + 8 * i) & 0x00fffffffffffe00ull;

		if (!t || t >= im->n || i * span >= size || (i + 1) * span <= from)
			continue;
		for (j = 0; j < l2e && t + 8 * j + 8 <= im->n && found < max && budget; j++, budget--) {
			uint64_t g = (i * l2e + j) * im->cs;

			if (g >= size)
				break;
			if (g >= from && in64(im, t + 8 * j))
				out[found++] = g;
		}
	}
	return (unsigned int)found;
}

/* ---- requests ---- */

struct rq {
	struct block_req r;
	struct iovec iov[3];
	enum block_op op;
	uint64_t off, len;
	int64_t result;
	bool done;
};

static void rq_done(struct block_req *r, int64_t result)
{
	struct rq *q = r->opaque;

	CHECK(!q->done);
	q->done = true;
	q->result = result;
}


static uint8_t pattern(uint64_t x)
{
	return pat[x % PAT];
}

static void fill(uint8_t *b, uint64_t x, uint64_t len)
{
	while (len) {
		uint64_t at = x % PAT, k = PAT - at < len ? PAT - at : len;

		memcpy(b, pat + at, k);
		b += k;
		x += k;
		len -= k;
	}
}

/* Buffers of their own (ASan sees a byte past any of them), split in
 * three at odd places. */
static void rq_init(struct rq *q, enum block_op op, uint64_t off, uint64_t len)
{
	uint64_t cut[4], k;

	memset(q, 0, sizeof(*q));
	q->op = op;
	q->off = off;
	q->len = len;
	q->r = (struct block_req){ .op = op, .offset = off, .done = rq_done, .opaque = q };
	if (op != BLOCK_READ && op != BLOCK_WRITE) {
		q->r.len = len;
		return;
	}
	cut[0] = 0;
	cut[1] = len < 7 ? len : 7;
	cut[2] = cut[1] + (len - cut[1]) / 2 + 3 < len ? cut[1] + (len - cut[1]) / 2 + 3 : len;
	cut[3] = len;
	for (k = 0; k < 3; k++) {
		uint8_t *b = malloc(cut[k + 1] - cut[k] ? cut[k + 1] - cut[k] : 1);

		CHECK(b);
		if (op == BLOCK_WRITE)
			fill(b, off + cut[k], cut[k + 1] - cut[k]);
		else
			memset(b, 0xa5, cut[k + 1] - cut[k]);
		q->iov[k] = (struct iovec){ b, cut[k + 1] - cut[k] };
	}
	q->r.iov = q->iov;
	q->r.iovcnt = 3;
}

static void rq_free(struct rq *q)
{
	unsigned int k;

	for (k = 0; k < 3 && q->r.iovcnt; k++)
		free(q->iov[k].iov_base);
}

static void rq_check(const struct rq *q)
{
	CHECK(q->done);
	if (q->result >= 0)
		CHECK(q->result == (q->op == BLOCK_READ || q->op == BLOCK_WRITE ? (int64_t)q->len : 0));
	else
		CHECK(q->result >= -4095);
}

/* Runs up to BATCH requests at once, then waits for them all. */
static void run(struct block_backend *b, struct rq *q, unsigned int n)
{
	unsigned int i, started = 0;

	for (i = 0; i < n; i++) {
		int r = block_submit(b, &q[i].r);

		/* Every request here is whole sectors inside the disk. */
		CHECK(r == 0 || r == -ENOMEM);
		if (r) {
			q[i].done = true;
			q[i].result = r;
		}
		started++;
		if (started == BATCH || i == n - 1) {
			block_drain(b);
			started = 0;
		}
	}
	for (i = 0; i < n; i++)
		rq_check(&q[i]);
}

static uint64_t clamp_len(uint64_t off, uint64_t len, uint64_t size)
{
	return off >= size ? 0 : len < size - off ? len : size - off;
}

/* Reads: the walk (its length divided by shrink), the middle and the end,
 * and the allocated clusters. */
static void read_all(struct block_backend *b, const struct image *im, unsigned int shrink)
{
	static const uint64_t lens[] = { 3 * 4096 + 512, 512, 65536 + 1536, 7 * 512,
					 130 * 1024 + 512, 2 * 512 };
	uint64_t size = block_size(b), end, off = 0, g[32];
	struct rq q[BATCH];
	unsigned int n = 0, k = 0, i, na;

	end = (im->cs * WALK_CLUSTERS < WALK_MAX ? im->cs * WALK_CLUSTERS : WALK_MAX) / shrink;
	if (end > size)
		end = size;
	while (off < end) {
		uint64_t len = lens[k++ % (sizeof(lens) / sizeof(lens[0]))];

		if (len < im->cs && k % 3 == 0)
			len += im->cs; /* across a whole cluster */
		len = clamp_len(off, len, end);
		rq_init(&q[n++], BLOCK_READ, off, len);
		off += len;
		if (n == BATCH || off >= end) {
			run(b, q, n);
			for (i = 0; i < n; i++)
				rq_free(&q[i]);
			n = 0;
		}
	}
	if (size > end) {
		uint64_t mid = size / 2 / 512 * 512;

		rq_init(&q[n++], BLOCK_READ, mid, clamp_len(mid, 4096 + 512, size));
		rq_init(&q[n++], BLOCK_READ, size - 1024, 1024);
	}
	na = allocated(im, size, end, g, 32);
	for (i = 0; i < na; i++) {
		rq_init(&q[n++], BLOCK_READ, g[i],
			clamp_len(g[i], im->cs < 65536 ? im->cs + 1024 : 65536 + 512, size));
		if (n == BATCH || i == na - 1) {
			run(b, q, n);
			while (n)
				rq_free(&q[--n]);
		}
	}
	if (n) {
		run(b, q, n);
		while (n)
			rq_free(&q[--n]);
	}
}

/* ---- read-write ---- */

struct op {
	enum block_op op;
	uint64_t off, len;
};

static unsigned int add(struct op *ops, unsigned int n, enum block_op op, uint64_t off,
			uint64_t len, uint64_t size)
{
	if (op == BLOCK_FLUSH && n < MAX_OPS) {
		ops[n] = (struct op){ op, 0, 0 };
		return n + 1;
	}
	off = off / 512 * 512;
	len = clamp_len(off, len / 512 * 512, size);
	if (!len || n == MAX_OPS)
		return n;
	ops[n] = (struct op){ op, off, len };
	return n + 1;
}

/* What a byte of the written range [off, off+len) must read as after
 * ops[0..n): -1 when no op touched it. */
static int expected(const struct op *ops, unsigned int n, uint64_t at)
{
	int v = -1;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (at < ops[i].off || at - ops[i].off >= ops[i].len)
			continue;
		if (ops[i].op == BLOCK_WRITE)
			v = pattern(at);
		else if (ops[i].op == BLOCK_DISCARD || ops[i].op == BLOCK_WRITE_ZEROES)
			v = 0;
	}
	return v;
}

static void write_all(struct block_backend *b, const struct image *im)
{
	uint64_t size = block_size(b), cs = im->cs, span = cs * (cs / 8), g[4];
	struct op ops[MAX_OPS];
	struct rq q[BATCH];
	unsigned int n = 0, i, j, na, done = 0;
	bool failed = false;

	na = allocated(im, size, 0, g, 4);
	/* Partial clusters (copy-on-write of what was there), across a
	 * cluster boundary, a whole aligned cluster. */
	n = add(ops, n, BLOCK_WRITE, 0, 512, size);
	n = add(ops, n, BLOCK_WRITE, cs - 512, cs + 1024, size);
	n = add(ops, n, BLOCK_WRITE, 3 * cs, cs, size);
	n = add(ops, n, BLOCK_FLUSH, 0, 0, size);
	n = add(ops, n, BLOCK_DISCARD, 4 * cs, 2 * cs, size);
	n = add(ops, n, BLOCK_WRITE_ZEROES, 6 * cs + 512, 2 * cs - 512, size);
	n = add(ops, n, BLOCK_WRITE, size - 4096, 4096, size);
	n = add(ops, n, BLOCK_WRITE, size / 2, 1024, size);
	/* Into the clusters the image has: in place, over compressed data,
	 * freed, zeroed. */
	for (i = 0; i < na; i++) {
		n = add(ops, n, BLOCK_WRITE, g[i] + 512, 512, size);
		n = add(ops, n, i % 2 ? BLOCK_WRITE_ZEROES : BLOCK_DISCARD, g[i], cs, size);
		n = add(ops, n, BLOCK_WRITE, g[i], 1024, size);
	}
	n = add(ops, n, BLOCK_FLUSH, 0, 0, size);
	/* Six L2 tables' ranges with a cache of four: dirty tables evicted. */
	for (i = 1; i <= 6; i++)
		n = add(ops, n, BLOCK_WRITE, i * span + cs / 2, 512, size);
	n = add(ops, n, BLOCK_FLUSH, 0, 0, size);

	/* Flushes alone; other requests up to BATCH at a time, never two
	 * overlapping ones together (what each range ends up holding is
	 * then defined). */
	while (done < n) {
		unsigned int k = 0;

		if (ops[done].op == BLOCK_FLUSH) {
			rq_init(&q[k++], BLOCK_FLUSH, 0, 0);
			done++;
		} else {
			while (done < n && k < BATCH && ops[done].op != BLOCK_FLUSH) {
				bool overlap = false;

				for (j = 0; j < k; j++)
					overlap |= ops[done].off < q[j].off + q[j].len &&
						   q[j].off < ops[done].off + ops[done].len;
				if (overlap)
					break;
				rq_init(&q[k++], ops[done].op, ops[done].off, ops[done].len);
				done++;
			}
		}
		run(b, q, k);
		while (k) {
			failed |= q[--k].result < 0;
			rq_free(&q[k]);
		}
	}

	/* Read back what was written. */
	for (i = 0; i < n; i++) {
		uint64_t x;
		uint8_t *p;

		if (ops[i].op != BLOCK_WRITE)
			continue;
		rq_init(&q[0], BLOCK_READ, ops[i].off, ops[i].len);
		run(b, q, 1);
		/* What the model says holds only if every request worked. */
		if (strict && !failed && q[0].result == (int64_t)ops[i].len) {
			for (j = 0, x = 0; j < 3; j++) {
				p = q[0].iov[j].iov_base;
				for (size_t m = 0; m < q[0].iov[j].iov_len; m++, x++) {
					int e = expected(ops, n, ops[i].off + x);

					CHECK(e < 0 || p[m] == e);
				}
			}
		}
		rq_free(&q[0]);
	}
}

/* ---- one input ---- */

static struct block_backend *open_checked(const char *format, bool ro, uint64_t l2_cache)
{
	struct block_options o = { .path = img, .read_only = ro, .format = format,
				   .l2_cache_size = l2_cache };
	struct block_backend *b;
	const char *e;
	size_t mark;
	unsigned int lines;

	log_check(); /* what the last backend logged */
	mark = log_checked;
	b = block_open(&o);
	lines = log_check();
	if (b) {
		CHECK(lines == 0);
		CHECK(block_read_only(b) == ro);
		return b;
	}
	CHECK(lines == 1 || (any_lines && lines > 1));
	e = strstr(log_buf + mark, "vireo: error: ");
	CHECK(e && !strncmp(e, "vireo: error: disk '", 20));
	CHECK(!strncmp(e + 20, dir, strlen(dir)));
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block_backend *b;
	struct image im;
	uint64_t l2_cache;
	int fd;

	if (!dir[0])
		setup();
	parse(&im, data, size);
	fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	if (size % 2 && size >= 4)
		CHECK(ftruncate(fd, (off_t)(size + (uint64_t)(le32_get(data + size - 4) % 131072) *
							512)) == 0);
	close(fd);
	/* The default L2 cache maps the whole disk: for a small one. */
	l2_cache = im.size <= (64u << 20) ? 0 : 256u << 10;

	log_begin();
	b = open_checked(NULL, true, l2_cache);
	if (b) {
		read_all(b, &im, 1);
		block_close(b);
	}
	if (im.has_backing && im.backing_safe) {
		b = open_checked("qcow2", true, l2_cache);
		if (b) {
			read_all(b, &im, 1);
			block_close(b);
		}
	}
	b = open_checked(im.backing_safe ? "qcow2" : NULL, false, 1);
	if (b) {
		read_all(b, &im, 4);
		write_all(b, &im);
		block_close(b);
	}
	log_end();
	return 0;
}
