/* Hostile qcow2 images: images qemu-img makes, then damaged byte by byte
 * (big-endian fields at the offsets of QEMU's docs/interop/qcow2.txt).
 * Each must be refused at open with exactly one error line naming the
 * file and the problem, or open and fail the I/O that meets the damage
 * with -EIO and one such line — never crash, hang or write outside the
 * image. Tests that say "was a driver bug" are the regression cases of
 * faults these tests found. */
#include "cmocka_prelude.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "block/block_driver.h"
#include "block_exercise.h"
#include "capture_stderr.h"
#include "util/le.h"

/* Header fields. */
#define H_VERSION 4
#define H_BACKING_OFFSET 8
#define H_BACKING_SIZE 16
#define H_CLUSTER_BITS 20
#define H_CRYPT 32
#define H_L1_SIZE 36
#define H_L1_OFFSET 40
#define H_REFTABLE_OFFSET 48
#define H_REFTABLE_CLUSTERS 56
#define H_INCOMPATIBLE 72
#define H_HEADER_LENGTH 100

#define OFFSET_MASK 0x00fffffffffffe00ull
#define COPIED (1ull << 63)
#define COMPRESSED (1ull << 62)
#define ZERO_FLAG 1ull

static void get(const char *p, uint64_t off, void *buf, size_t len)
{
	int fd = open(p, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void put(const char *p, uint64_t off, const void *buf, size_t len)
{
	int fd = open(p, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint32_t get32(const char *p, uint64_t off)
{
	uint8_t b[4];

	get(p, off, b, 4);
	return be32_get(b);
}

static uint64_t get64(const char *p, uint64_t off)
{
	uint8_t b[8];

	get(p, off, b, 8);
	return be64_get(b);
}

static void put32(const char *p, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	be32_put(b, v);
	put(p, off, b, 4);
}

static void put64(const char *p, uint64_t off, uint64_t v)
{
	uint8_t b[8];

	be64_put(b, v);
	put(p, off, b, 8);
}

static uint64_t file_size(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return (uint64_t)st.st_size;
}

/* Where in the file the L2 entry for guest offset g is (its L2 table must
 * exist). */
static uint64_t l2_entry_at(const char *p, uint64_t g)
{
	uint64_t cs = 1ull << get32(p, H_CLUSTER_BITS), l2e = cs / 8;
	uint64_t l1e = get64(p, get64(p, H_L1_OFFSET) + 8 * (g / cs / l2e)) & OFFSET_MASK;

	assert_true(l1e != 0);
	return l1e + 8 * (g / cs % l2e);
}

/* name in the temporary directory: a qemu-img image of size with opts
 * (may be empty), then the qemu-io commands (may be empty), e.g.
 * "-c 'write -P 0x55 0 64k'". */
static void make_image(char *out, const char *name, const char *opts, const char *size,
		       const char *qemu_io)
{
	path(out, name);
	sh("qemu-img create -q -f qcow2 %s%s '%s' %s", *opts ? "-o " : "", opts, out, size);
	if (*qemu_io)
		sh("qemu-io -f qcow2 %s '%s' >/dev/null", qemu_io, out);
}

static struct block_backend *open_captured(const char *p, const char *format, bool ro,
					   struct captured *c)
{
	struct block_options o = { .path = p, .read_only = ro, .format = format };
	struct block_backend *b;
	int saved = stderr_begin();

	b = block_open(&o);
	stderr_end(saved, c);
	return b;
}

/* Opening p (format, read-only or not) fails, with one line naming
 * named (p, or a file of its backing chain) and what. */
static void refused_naming(const char *p, const char *named, const char *format, bool ro,
			   const char *what)
{
	struct captured c;
	struct block_backend *b = open_captured(p, format, ro, &c);

	if (b) {
		block_close(b);
		fail_msg("'%s' opened (format %s, %s); expected a refusal naming '%s'", p,
			 format ? format : "probed", ro ? "read-only" : "read-write", what);
	}
	assert_one_error_line(c.text, named, what);
}

static void refused(const char *p, const char *format, bool ro, const char *what)
{
	refused_naming(p, p, format, ro, what);
}

static struct block_backend *opens(const char *p, const char *format, bool ro)
{
	struct captured c;
	struct block_backend *b = open_captured(p, format, ro, &c);

	if (!b)
		fail_msg("'%s' did not open (format %s, %s): %s", p, format ? format : "probed",
			 ro ? "read-only" : "read-write", c.text);
	if (c.text[0])
		fail_msg("opening '%s' logged: %s", p, c.text);
	return b;
}

/* A request that meets the damage: -EIO, and one line naming the image
 * and what. */
static void io_fails(struct block_backend *b, const char *p, enum block_op op, uint64_t off,
		     uint64_t len, const char *what)
{
	struct captured c;
	uint8_t *buf = op == BLOCK_READ || op == BLOCK_WRITE ? calloc(1, len) : NULL;
	int saved = stderr_begin();
	int64_t r = io_within(b, op, off, buf, len, 30);

	stderr_end(saved, &c);
	free(buf);
	if (r != -EIO)
		fail_msg("request %d at %llu on '%s': %lld, expected -EIO (log: %s)", op,
			 (unsigned long long)off, p, (long long)r, c.text);
	assert_one_error_line(c.text, p, what);
}

/* ---- the header ---- */

static void test_l1_table_outside_file(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "l1-out.qcow2", "", "1M", "-c 'write -P 0x55 0 64k'");
	put64(img, H_L1_OFFSET, 1ull << 30);
	refused(img, "qcow2", true, "L1 table outside the file");
	refused(img, NULL, false, "L1 table outside the file");
	/* Inside the file, but only just: its last entry is past the end. */
	put64(img, H_L1_OFFSET, (file_size(img) + 65535) / 65536 * 65536 - 65536);
	put32(img, H_L1_SIZE, 65536 / 8 + 1);
	refused(img, "qcow2", true, "L1 table outside the file");
}

static void test_l1_table_huge(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "l1-huge.qcow2", "", "1M", "");
	put32(img, H_L1_SIZE, 5u << 20); /* 40 MiB of table */
	refused(img, "qcow2", true, "L1 table of 5242880 entries");
	put32(img, H_L1_SIZE, 0xffffffffu);
	refused(img, "qcow2", false, "L1 table of 4294967295 entries");
}

static void test_refcount_table_outside_file(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "rt-out.qcow2", "", "1M", "");
	put64(img, H_REFTABLE_OFFSET, 1ull << 40);
	refused(img, "qcow2", true, "invalid refcount table");
	make_image(img, "rt-long.qcow2", "", "1M", "");
	put32(img, H_REFTABLE_CLUSTERS, 1000); /* runs off the end of the file */
	refused(img, "qcow2", false, "invalid refcount table");
}

static void test_cluster_bits(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "cbits.qcow2", "", "1M", "");
	put32(img, H_CLUSTER_BITS, 8);
	refused(img, "qcow2", true, "clusters of 2^8 bytes");
	refused(img, NULL, true, "clusters of 2^8 bytes");
	put32(img, H_CLUSTER_BITS, 22);
	refused(img, "qcow2", false, "clusters of 2^22 bytes");
	refused(img, NULL, true, "clusters of 2^22 bytes");
}

static void test_versions(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "version.qcow2", "", "1M", "");
	/* Version 1 is QEMU's older qcow format, not qcow2. */
	put32(img, H_VERSION, 1);
	refused(img, "qcow2", true, "not a qcow2 image");
	put32(img, H_VERSION, 4);
	refused(img, "qcow2", true, "qcow2 version 4");
	refused(img, NULL, false, "qcow2 version 4");
}

static void test_encrypted(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "crypt.qcow2", "", "1M", "");
	put32(img, H_CRYPT, 1);
	refused(img, "qcow2", true, "encrypted");
	refused(img, NULL, false, "encrypted");
	put32(img, H_CRYPT, 2); /* LUKS */
	refused(img, "qcow2", true, "encrypted");
}

static void test_incompatible_features(void **state)
{
	char img[512];
	uint64_t incompat;

	(void)state;
	make_image(img, "incompat.qcow2", "", "1M", "");
	incompat = get64(img, H_INCOMPATIBLE);
	put64(img, H_INCOMPATIBLE, incompat | 1ull << 2);
	refused(img, "qcow2", true, "external data file");
	put64(img, H_INCOMPATIBLE, incompat | 1ull << 4);
	refused(img, "qcow2", true, "extended L2 entries");
	put64(img, H_INCOMPATIBLE, incompat | 1ull << 5);
	refused(img, "qcow2", true, "incompatible features this Vireo does not know (bits 0x20)");
	put64(img, H_INCOMPATIBLE, incompat | 1ull << 63);
	refused(img, NULL, false, "incompatible features this Vireo does not know");
	put64(img, H_INCOMPATIBLE, incompat | 1ull << 1);
	refused(img, "qcow2", true, "marked corrupt");
	/* The compression-type bit without a compression type. */
	put64(img, H_INCOMPATIBLE, incompat | 1ull << 3);
	refused(img, "qcow2", true, "inconsistent compression type");
}

static void test_dirty_bit(void **state)
{
	char img[512];
	struct block_backend *b;

	(void)state;
	make_image(img, "dirty.qcow2", "", "1M", "-c 'write -P 0x5a 4k 60k'");
	put64(img, H_INCOMPATIBLE, get64(img, H_INCOMPATIBLE) | 1);
	refused(img, "qcow2", false, "not closed cleanly");
	refused(img, NULL, false, "not closed cleanly");
	b = opens(img, "qcow2", true);
	assert_reads_as_qemu(b, img);
	block_close(b);
	/* Read-only, nothing was repaired or cleared. */
	assert_int_equal(get64(img, H_INCOMPATIBLE) & 1, 1);
}

static void test_internal_snapshots(void **state)
{
	char img[512];
	struct block_backend *b;
	uint64_t size = 0;

	(void)state;
	make_image(img, "snap.qcow2", "cluster_size=4096", "2M", "-c 'write -P 0x11 0 256k'");
	sh("qemu-img snapshot -c first '%s'", img);
	sh("qemu-io -f qcow2 -c 'write -P 0x22 64k 64k' '%s' >/dev/null", img);
	size = file_size(img);
	/* Written to since (test_qcow2.c); read-only, it is not touched. */
	b = opens(img, "qcow2", true);
	assert_reads_as_qemu(b, img);
	block_close(b);
	b = opens(img, NULL, true);
	block_close(b);
	assert_int_equal(file_size(img), size);
	sh("qemu-img check -q '%s'", img);
}

static void test_header_length(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "hlen.qcow2", "", "1M", "");
	put32(img, H_HEADER_LENGTH, 105);
	refused(img, "qcow2", true, "header length of 105 bytes");
	put32(img, H_HEADER_LENGTH, 100); /* shorter than version 3's fields */
	refused(img, "qcow2", true, "header length of 100 bytes");
	put32(img, H_HEADER_LENGTH, 1u << 20); /* longer than the cluster */
	refused(img, NULL, true, "header length of 1048576 bytes");
}

static void test_backing_name_too_long(void **state)
{
	char img[512], name[1200];
	uint64_t off;

	(void)state;
	path(img, "longname.qcow2");
	sh("qemu-img create -q -f qcow2 -u -b b.raw -F raw '%s' 1M", img);
	off = get64(img, H_BACKING_OFFSET);
	assert_true(off > 0 && off < 4096);
	memset(name, 'n', sizeof(name));
	put(img, off, name, sizeof(name));
	put32(img, H_BACKING_SIZE, sizeof(name));
	refused(img, "qcow2", true, "backing file name of 1200 bytes");
	put32(img, H_BACKING_SIZE, 1024);
	refused(img, "qcow2", true, "backing file name of 1024 bytes");
}

/* ---- tables ---- */

static void test_l2_entry_outside_file(void **state)
{
	char img[512];
	struct block_backend *b;
	uint64_t at, size;
	uint8_t buf[4096];

	(void)state;
	make_image(img, "l2-out.qcow2", "", "1M", "-c 'write -P 0x55 0 128k'");
	at = l2_entry_at(img, 0);
	put64(img, at, COPIED | 1ull << 40);
	size = file_size(img);
	b = opens(img, "qcow2", false);
	io_fails(b, img, BLOCK_READ, 0, 4096, "invalid L2 entry for guest offset 0x0");
	/* Named by where the request meets the damage. */
	io_fails(b, img, BLOCK_READ, 60 << 10, 8192, "invalid L2 entry for guest offset 0x0");
	/* Never written there: the write fails too. */
	io_fails(b, img, BLOCK_WRITE, 0, 4096, "invalid L2 entry for guest offset 0x0");
	/* The next cluster is fine. */
	assert_int_equal(do_io(b, BLOCK_READ, 64 << 10, buf, sizeof(buf)), (int64_t)sizeof(buf));
	assert_int_equal(buf[0], 0x55);
	block_close(b);
	assert_int_equal(file_size(img), size);
	/* Just past the end of the file (which ends on a cluster), and the
	 * last cluster, which is fine. */
	put64(img, at, COPIED | (size + 65535) / 65536 * 65536);
	b = opens(img, "qcow2", true);
	io_fails(b, img, BLOCK_READ, 0, 512, "invalid L2 entry for guest offset 0x0");
	block_close(b);
	put64(img, at, COPIED | ((size + 65535) / 65536 * 65536 - 65536));
	b = opens(img, "qcow2", true);
	assert_int_equal(do_io(b, BLOCK_READ, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	block_close(b);
}

static void test_l2_entry_reserved_bits(void **state)
{
	static const uint64_t bits[] = { 1ull << 1, 1ull << 8, 1ull << 56, 1ull << 61 };
	char img[512];
	struct block_backend *b;
	uint64_t at, entry;
	unsigned int i;

	(void)state;
	make_image(img, "l2-bits.qcow2", "", "1M", "-c 'write -P 0x55 0 64k'");
	at = l2_entry_at(img, 0);
	entry = get64(img, at);
	for (i = 0; i < ARRAY_LEN(bits); i++) {
		put64(img, at, entry | bits[i]);
		b = opens(img, "qcow2", false);
		io_fails(b, img, BLOCK_READ, 0, 512, "invalid L2 entry for guest offset 0x0");
		io_fails(b, img, BLOCK_WRITE, 512, 512, "invalid L2 entry for guest offset 0x0");
		io_fails(b, img, BLOCK_WRITE_ZEROES, 0, 65536, "invalid L2 entry");
		block_close(b);
	}
	/* A misaligned data cluster. */
	put64(img, at, entry + 512);
	b = opens(img, "qcow2", true);
	io_fails(b, img, BLOCK_READ, 0, 512, "invalid L2 entry for guest offset 0x0");
	block_close(b);
	/* The zero flag in a version 2 image. */
	make_image(img, "l2-v2zero.qcow2", "compat=0.10", "1M", "-c 'write -P 0x55 0 64k'");
	at = l2_entry_at(img, 0);
	put64(img, at, get64(img, at) | ZERO_FLAG);
	b = opens(img, "qcow2", true);
	io_fails(b, img, BLOCK_READ, 0, 512, "invalid L2 entry for guest offset 0x0");
	block_close(b);
}

static void compressed_garbage(const char *name, const char *opts)
{
	char src[512], img[512];
	struct block_backend *b;
	uint64_t entry, host, len;
	uint8_t junk[8192];
	unsigned int x = 62 - (12 - 8);

	path(src, "text.raw");
	path(img, name);
	sh("yes 'a compressible line of text' | head -c 1048576 >'%s'", src);
	sh("qemu-img convert -c -O qcow2 -o cluster_size=4096%s '%s' '%s'", opts, src, img);
	entry = get64(img, l2_entry_at(img, 0));
	assert_true(entry & COMPRESSED);
	host = entry & ((1ull << x) - 1);
	len = (((entry >> x) & 15) + 1) * 512 - (host & 511);
	assert_true(len <= sizeof(junk));
	memset(junk, 0xff, sizeof(junk));
	put(img, host, junk, len);
	b = opens(img, "qcow2", false);
	io_fails(b, img, BLOCK_READ, 0, 4096, "a compressed cluster does not decompress");
	io_fails(b, img, BLOCK_READ, 3584, 1024, "a compressed cluster does not decompress");
	/* A partial write needs the old contents. */
	io_fails(b, img, BLOCK_WRITE, 512, 512, "a compressed cluster does not decompress");
	block_close(b);
	unlink(src);
}

static void test_compressed_garbage(void **state)
{
	(void)state;
	compressed_garbage("garbage-zlib.qcow2", "");
	compressed_garbage("garbage-zstd.qcow2", ",compression_type=zstd");
}

/* ---- backing chains ---- */

static void test_backing_loop(void **state)
{
	char a[512], b[512], self[512];

	(void)state;
	path(a, "loopA.qcow2");
	path(b, "loopB.qcow2");
	path(self, "self.qcow2");
	sh("cd '%s' && qemu-img create -q -f qcow2 -u -b loopB.qcow2 -F qcow2 loopA.qcow2 1M && "
	   "qemu-img create -q -f qcow2 -u -b loopA.qcow2 -F qcow2 loopB.qcow2 1M && "
	   "qemu-img create -q -f qcow2 -u -b selx.qcow2 -F qcow2 self.qcow2 1M", dir);
	/* qemu-img will not name an image its own backing file: patched. */
	assert_int_equal(get32(self, H_BACKING_SIZE), 10);
	put(self, get64(self, H_BACKING_OFFSET), "self.qcow2", 10);
	/* Named by the image where the chain gets too deep. */
	refused(a, "qcow2", true, "comes back to an image above it");
	refused(self, "qcow2", true, "comes back to an image above it");
	/* Probed: the backing file is refused before any loop. */
	refused(a, NULL, true, "a probed image may not open other files");
}

static void test_backing_too_deep(void **state)
{
	char top[512], c0[512];
	struct block_backend *b;
	uint8_t buf[512];

	(void)state;
	path(c0, "c0.qcow2");
	sh("cd '%s' && qemu-img create -q -f qcow2 c0.qcow2 1M && "
	   "qemu-io -f qcow2 -c 'write -P 0x77 0 512' c0.qcow2 >/dev/null && "
	   "for i in $(seq 1 65); do "
	   "qemu-img create -q -f qcow2 -u -b c$((i - 1)).qcow2 -F qcow2 c$i.qcow2 1M || exit 1; "
	   "done", dir);
	/* 64 backing files under the image: the deepest chain opened (and
	 * read through in the caller's thread; through a worker, see
	 * test_deepest_chain_read). */
	path(top, "c64.qcow2");
	b = opens(top, "qcow2", true);
	assert_int_equal(block_pread(b, buf, sizeof(buf), 0), 0);
	assert_int_equal(buf[0], 0x77);
	assert_int_equal(buf[511], 0x77);
	block_close(b);
	/* 65: refused. The line names the image at depth 64, where the
	 * chain went too deep (c1.qcow2), not the one opened. */
	path(top, "c65.qcow2");
	refused_naming(top, dir, "qcow2", true, "its backing chain is more than 64 images deep");
	refused_naming(top, dir, "qcow2", false, "its backing chain is more than 64 images deep");
}

/* ---- found by these tests (see the commit message) ---- */

/* Runs fn in a child, so that a sanitizer abort (or a hang) fails this
 * test alone. */
static void in_child(int (*fn)(const char *), const char *arg, const char *what)
{
	pid_t pid;
	int status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(120); /* a hang ends as SIGALRM */
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: the child %s %d (a sanitizer report above?)", what,
			 WIFEXITED(status) ? "exited with status" : "died of signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}


/* An L1 entry pointing past the end of the file is found while the table
 * is loaded.
 * Was a driver bug, found by this test and fixed: two lines, "its L1 table has an invalid entry
 * (0): the image is corrupt" from read_table() and then "cannot load its
 * tables" from qcow2_open(); likewise for a bad refcount table entry. */
static void test_l1_entry_outside_file(void **state)
{
	char img[512];
	uint64_t l1;

	(void)state;
	make_image(img, "l1e-out.qcow2", "", "1M", "-c 'write -P 0x55 0 64k'");
	l1 = get64(img, H_L1_OFFSET);
	put64(img, l1, COPIED | 1ull << 40);
	refused(img, "qcow2", true, "L1 table has an invalid entry");
	make_image(img, "rte-out.qcow2", "", "1M", "");
	put64(img, get64(img, H_REFTABLE_OFFSET), 1ull << 40);
	refused(img, "qcow2", true, "refcount table has an invalid entry");
}

/* A loop in the backing chain of an image opened for writing.
 * Was a driver bug, found by this test and fixed: the image comes round again as a (read-only)
 * backing file, whose shared lock meets the image's own exclusive one:
 * "disk '.../self.qcow2' is in use by another process", which sends the
 * user looking for another process. */
static void test_backing_loop_read_write(void **state)
{
	char a[512], self[512];

	(void)state;
	path(a, "rwloopA.qcow2");
	path(self, "rwself.qcow2");
	sh("cd '%s' && qemu-img create -q -f qcow2 -u -b rwloopB.qcow2 -F qcow2 rwloopA.qcow2 1M && "
	   "qemu-img create -q -f qcow2 -u -b rwloopA.qcow2 -F qcow2 rwloopB.qcow2 1M && "
	   "qemu-img create -q -f qcow2 -u -b rwselx.qcow2 -F qcow2 rwself.qcow2 1M", dir);
	put(self, get64(self, H_BACKING_OFFSET), "rwself.qcow2", 12);
	refused(self, "qcow2", false, "comes back to an image above it");
	refused(a, "qcow2", false, "comes back to an image above it");
}

static int read_deep_chain(const char *img)
{
	unsigned int i;

	for (i = 0; i < 20; i++) {
		struct block_options o = { .path = img, .format = "qcow2", .read_only = true };
		struct block_backend *b = block_open(&o);
		uint8_t buf[512] = { 0 };

		if (!b)
			return 10;
		if (io_within(b, BLOCK_READ, 0, buf, sizeof(buf), 30) != (int64_t)sizeof(buf) ||
		    buf[0] != 0x77)
			return 11;
		block_close(b);
	}
	return 0;
}

/* A read through the deepest chain allowed (64 backing files), as a
 * guest's request is done: in one of the image's worker threads.
 * Was a driver bug, found by this test and fixed: each level of the chain recurses through
 * read_backing(), whose frame holds struct iovec part[IOV_MAX] (16 KiB):
 * 64 levels take 1027 KiB of stack (1083 KiB with ASan), more than the
 * worker's 1 MiB (THREAD_STACK_SIZE), and a 16 KiB frame steps over the
 * 4 KiB guard page into the next thread's stack. Corruption, not a clean
 * crash: some runs pass; in 20 rounds one fails almost always (with
 * ASan: "CHECK failed: sanitizer_allocator_primary64.h:743" as a
 * neighbouring worker exits; without: SIGSEGV). */
static void test_deepest_chain_read(void **state)
{
	char top[512];

	(void)state;
	path(top, "c64.qcow2");
	if (access(top, F_OK) != 0)
		sh("cd '%s' && qemu-img create -q -f qcow2 c0.qcow2 1M && "
		   "qemu-io -f qcow2 -c 'write -P 0x77 0 512' c0.qcow2 >/dev/null && "
		   "for i in $(seq 1 64); do qemu-img create -q -f qcow2 -u "
		   "-b c$((i - 1)).qcow2 -F qcow2 c$i.qcow2 1M || exit 1; done", dir);
	in_child(read_deep_chain, top, "reads through 64 backing files in a worker thread");
}

/* A probed image with a backing file is refused, whatever the name: the
 * name is the guest's own writing (a qcow2 header in a raw disk).
 * Was a driver bug, found by this test and fixed: the message quotes the name as it is, before it
 * says what is wrong. Log lines end at 1024 bytes: with a name of 1023
 * bytes the line is cut off inside the name, and "give format=qcow2 to
 * use it (a probed image may not open other files)" is lost. And a name
 * with a newline (or terminal escapes) in it goes to the host's terminal
 * as it is: the guest can forge lines of Vireo's own. */
static void test_probed_backing_name_printed(void **state)
{
	static const char forged[] = "b.raw\nvireo: error: forged by the guest";
	char img[512], name[1023];

	(void)state;
	path(img, "probed-newline.qcow2");
	sh("qemu-img create -q -f qcow2 -u -b \"$(printf '%s')\" -F raw '%s' 1M", forged, img);
	refused(img, NULL, true, "a probed image may not open other files");
	path(img, "probed-longname.qcow2");
	sh("qemu-img create -q -f qcow2 -u -b b.raw -F raw '%s' 1M", img);
	memset(name, 'n', sizeof(name));
	put(img, get64(img, H_BACKING_OFFSET), name, sizeof(name));
	put32(img, H_BACKING_SIZE, sizeof(name));
	refused(img, NULL, true, "a probed image may not open other files");
}

/* A preallocated zero cluster (L2 entry: zero flag, copied, and a host
 * offset) pointing past the end of the file. Reads give zeroes; a write
 * must not put the guest's data out there.
 * Was a driver bug, found by this test and fixed: write_new_cluster() reuses the host offset of a
 * ZERO entry without the check mapping_of() gives NORMAL entries: the
 * write lands 1 TiB into the file (a sparse file of 1 TiB), the L2 entry
 * then points there, and every later read of the cluster fails. */
static void test_zero_cluster_outside_file(void **state)
{
	char img[512];
	struct block_backend *b;
	uint64_t size;
	uint8_t buf[4096];
	struct captured c;
	int saved;
	int64_t r;

	(void)state;
	make_image(img, "zero-out.qcow2", "", "1M", "-c 'write -P 0x55 0 128k'");
	put64(img, l2_entry_at(img, 0), COPIED | ZERO_FLAG | 1ull << 40);
	size = file_size(img);
	b = opens(img, "qcow2", false);
	assert_int_equal(do_io(b, BLOCK_READ, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	assert_int_equal(buf[0], 0);
	memset(buf, 0xab, sizeof(buf));
	saved = stderr_begin();
	r = io_within(b, BLOCK_WRITE, 0, buf, sizeof(buf), 30);
	stderr_end(saved, &c);
	if (r == (int64_t)sizeof(buf)) {
		/* Written somewhere sensible, then: inside the image, and it
		 * reads back. */
		if (file_size(img) > size + (1u << 20))
			fail_msg("a write through a bad zero-cluster entry grew '%s' from %llu to "
				 "%llu bytes", img, (unsigned long long)size,
				 (unsigned long long)file_size(img));
		memset(buf, 0, sizeof(buf));
		assert_int_equal(do_io(b, BLOCK_READ, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
		assert_int_equal(buf[0], 0xab);
	} else {
		assert_int_equal(r, -EIO);
		assert_one_error_line(c.text, img, "invalid L2 entry");
	}
	block_close(b);
}

static int write_and_flush(const char *img)
{
	struct block_options o = { .path = img, .format = "qcow2" };
	struct block_backend *b = block_open(&o);
	uint8_t buf[512];
	int bad = 0;

	if (!b)
		return 10;
	memset(buf, 0x3c, sizeof(buf));
	bad |= io_within(b, BLOCK_WRITE, 0, buf, sizeof(buf), 30) != (int64_t)sizeof(buf);
	bad |= io_within(b, BLOCK_FLUSH, 0, NULL, 0, 30) != 0;
	block_close(b);
	return bad ? 11 : 0;
}

/* The refcount table must grow when the file ends beyond what it covers
 * (here: 512-byte clusters, 16-bit refcounts, a one-cluster table that
 * covers 8 MiB, and a file padded to 16 MiB - 512 bytes, so that the
 * first new cluster is the last one of refcount block 127).
 * Was a driver bug, found by this test and fixed: grow_reftable() sizes the new table for the
 * refcount block it was asked for (128 entries), then indexes it with the
 * block of the new table's own clusters (128): a heap-buffer-overflow,
 * read then write, on the guest's first write. Any file that ends more
 * than twice past the table's reach does the same (the table's clusters
 * land past the entries it was given). */
static void test_reftable_grows_past_file_end(void **state)
{
	char img[512];

	(void)state;
	make_image(img, "grow.qcow2", "cluster_size=512", "1M", "");
	assert_int_equal(get32(img, H_REFTABLE_CLUSTERS), 1);
	sh("truncate -s %u '%s'", (16u << 20) - 512, img);
	in_child(write_and_flush, img, "a write to an image padded past its refcount table");
	sh("qemu-img check -q '%s'", img);
}

static int setup(void **state)
{
	(void)state;
	return tempdir_make("/tmp", "qcow2-hostile");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_l1_table_outside_file),
		cmocka_unit_test(test_l1_table_huge),
		cmocka_unit_test(test_refcount_table_outside_file),
		cmocka_unit_test(test_cluster_bits),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_encrypted),
		cmocka_unit_test(test_incompatible_features),
		cmocka_unit_test(test_dirty_bit),
		cmocka_unit_test(test_internal_snapshots),
		cmocka_unit_test(test_header_length),
		cmocka_unit_test(test_backing_name_too_long),
		cmocka_unit_test(test_l2_entry_outside_file),
		cmocka_unit_test(test_l2_entry_reserved_bits),
		cmocka_unit_test(test_compressed_garbage),
		cmocka_unit_test(test_backing_loop),
		cmocka_unit_test(test_backing_too_deep),
		cmocka_unit_test(test_l1_entry_outside_file),
		cmocka_unit_test(test_backing_loop_read_write),
		cmocka_unit_test(test_deepest_chain_read),
		cmocka_unit_test(test_probed_backing_name_printed),
		cmocka_unit_test(test_zero_cluster_outside_file),
		cmocka_unit_test(test_reftable_grows_past_file_end),
	};

	if (system("qemu-img --version >/dev/null 2>&1 && qemu-io --version >/dev/null 2>&1") !=
	    0) {
		printf("skip - test_qcow2_hostile: qemu-img or qemu-io is not installed (apt-get "
		       "install qemu-utils)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, tempdir_teardown);
}
