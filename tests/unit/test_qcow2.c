/* qcow2 against the reference tool: images qemu-img makes read back as
 * `qemu-img convert -O raw` says (cluster sizes, compression, backing
 * chains, zero clusters); what Vireo writes passes `qemu-img check` and
 * `qemu-img compare` against a raw file given the same writes. Through
 * the block layer's own API, as virtio-blk uses it. */
#include "cmocka_prelude.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "block/file.h"
#include "block/qcow2.h"
#include "block_exercise.h"

static struct block_backend *open_fmt(const char *p, const char *format, bool ro)
{
	struct block_options o = { .path = p, .read_only = ro, .format = format };

	return block_open(&o);
}

/* Everything through Vireo equals qemu-img's raw conversion. */
static void assert_reads_as_raw(const char *img, const char *format)
{
	struct block_backend *b = open_fmt(img, format, true);

	assert_non_null(b);
	assert_reads_as_qemu(b, img);
	block_close(b);
}

/* A raw file with a pattern written by qemu-io-free means: dd. */
static void make_source(const char *raw, unsigned int mib)
{
	sh("dd if=/dev/urandom of='%s' bs=1M count=%u status=none && "
	   "dd if=/dev/zero of='%s' bs=1M seek=1 count=1 conv=notrunc status=none && "
	   "truncate -s %uM '%s'", raw, mib, raw, mib + 3, raw);
}

static void test_reads_qemu_img_images(void **state)
{
	static const char *const opts[] = {
		"cluster_size=512", "cluster_size=4096", "cluster_size=65536",
		"cluster_size=2097152", "compat=0.10", "refcount_bits=1", "refcount_bits=64",
		"preallocation=metadata", "preallocation=full",
	};
	char raw[512], img[512];
	unsigned int i;

	(void)state;
	path(raw, "src.raw");
	path(img, "img.qcow2");
	make_source(raw, 5);
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		sh("qemu-img convert -O qcow2 -o %s '%s' '%s'", opts[i], raw, img);
		assert_reads_as_raw(img, "qcow2");
		assert_reads_as_raw(img, NULL); /* probed */
	}
	sh("qemu-img convert -c -O qcow2 '%s' '%s'", raw, img);
	assert_reads_as_raw(img, "qcow2");
	sh("qemu-img convert -c -O qcow2 -o compression_type=zstd,cluster_size=4096 '%s' '%s'",
	   raw, img);
	assert_reads_as_raw(img, "qcow2");
	unlink(img);
	unlink(raw);
}

static void test_backing_chain(void **state)
{
	char raw[512], base[512], mid[512], top[512];

	(void)state;
	path(raw, "base.raw");
	path(base, "base.qcow2");
	path(mid, "mid.qcow2");
	path(top, "top.qcow2");
	make_source(raw, 4);
	sh("qemu-img convert -O qcow2 '%s' '%s'", raw, base);
	/* Relative names, resolved from the image's own directory. */
	sh("cd '%s' && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 8M && "
	   "qemu-io -c 'write -P 0x55 1M 64k' mid.qcow2 >/dev/null 2>&1 || "
	   "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 8M", dir);
	sh("qemu-img create -q -f qcow2 -b '%s' -F qcow2 '%s'", mid, top);
	assert_reads_as_raw(top, "qcow2");
	/* A raw backing file, and one past which the image is longer. */
	sh("qemu-img create -q -f qcow2 -b '%s' -F raw '%s' 12M", raw, top);
	assert_reads_as_raw(top, "qcow2");
	unlink(top);
	unlink(mid);
	unlink(base);
	unlink(raw);
}

static void test_probed_backing_refused(void **state)
{
	char raw[512], top[512];
	struct block_backend *b;

	(void)state;
	path(raw, "pb.raw");
	path(top, "pb.qcow2");
	sh("truncate -s 1M '%s'", raw);
	sh("qemu-img create -q -f qcow2 -b '%s' -F raw '%s'", raw, top);
	assert_null(open_fmt(top, NULL, true));
	b = open_fmt(top, "qcow2", true); /* said: trusted */
	assert_non_null(b);
	block_close(b);
	unlink(top);
	unlink(raw);
}

/* Writes through Vireo, the same writes into a raw file: qemu-img check
 * finds nothing wrong, and qemu-img compare finds them equal. */
/* n random writes (70 %), write-zeroes and discards (reading back as
 * zeroes) of up to 128 KiB within the first size bytes, to b and the same
 * to the raw file fd, a flush every 50; buf: 128 KiB of scratch. */
static void random_writes(struct block_backend *b, int fd, uint64_t size, unsigned int n,
			  uint8_t *buf)
{
	unsigned int k;

	for (k = 0; k < n; k++) {
		uint64_t off = (uint64_t)(rand() % (int)(size / 512 - 256)) * 512;
		uint64_t len = (uint64_t)(1 + rand() % 256) * 512;
		int what = rand() % 10;
		size_t j;

		if (what < 7) {
			for (j = 0; j < len; j++)
				buf[j] = (uint8_t)(rand() >> 7);
			assert_int_equal(do_io(b, BLOCK_WRITE, off, buf, len), (int64_t)len);
		} else {
			enum block_op op = what < 9 ? BLOCK_WRITE_ZEROES : BLOCK_DISCARD;

			assert_int_equal(do_io(b, op, off, NULL, len), 0);
			memset(buf, 0, len);
		}
		assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
		if (k % 50 == 49)
			assert_int_equal(do_io(b, BLOCK_FLUSH, 0, NULL, 0), 0);
	}
}

static void test_writes_pass_qemu_img(void **state)
{
	static const char *const opts[] = { "cluster_size=65536", "cluster_size=4096",
					    "cluster_size=512", "compat=0.10",
					    "refcount_bits=1", "cluster_size=2097152" };
	char raw[512], img[512], base[512];
	uint8_t *buf = malloc(1 << 20);
	unsigned int i;

	(void)state;
	path(raw, "w.raw");
	path(img, "w.qcow2");
	path(base, "wbase.qcow2");
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]) * 2; i++) {
		bool backed = i >= sizeof(opts) / sizeof(opts[0]);
		struct block_backend *b, *r;
		int fd;

		if (backed) {
			char src[512];

			path(src, "wsrc.raw");
			make_source(src, 4);
			sh("qemu-img convert -c -O qcow2 '%s' '%s'", src, base);
			sh("qemu-img create -q -f qcow2 -o %s -b '%s' -F qcow2 '%s' 16M",
			   opts[i % 6], base, img);
			sh("qemu-img convert -O raw '%s' '%s'", base, raw);
			sh("truncate -s 16M '%s'", raw);
			unlink(src);
		} else {
			sh("qemu-img create -q -f qcow2 -o %s '%s' 16M", opts[i], img);
			sh("truncate -s 0 '%s' && truncate -s 16M '%s'", raw, raw);
		}
		b = open_fmt(img, "qcow2", false);
		assert_non_null(b);
		fd = open(raw, O_RDWR);
		srand(i);
		random_writes(b, fd, 16 << 20, 300, buf);
		close(fd);
		block_close(b);
		sh("qemu-img check -q '%s'", img);
		sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img, raw);
		if (backed) {
			/* The reference tool takes it further: the backing
			 * file's data pulled in (rebase onto none). */
			sh("qemu-img rebase -q -f qcow2 -b '' '%s' && qemu-img check -q '%s' && "
			   "qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img, img, img, raw);
		}
		/* And Vireo reads back what it wrote. */
		r = open_fmt(img, "qcow2", true);
		assert_non_null(r);
		block_close(r);
		assert_reads_as_raw(img, "qcow2");
	}
	unlink(img);
	unlink(raw);
	unlink(base);
	free(buf);
}

/* The child of test_kill_during_writes: from block first on, 4 KiB blocks
 * each stamped with its number, 8 requests in flight at a time (and a
 * write and a discard of whole 64 KiB in the disk's second half, so that
 * clusters are freed and allocated again: contents not checked there);
 * after each batch a flush, and then the number of the last block
 * written goes down the pipe: those blocks are promised. */
static void writer(const char *img, uint64_t first, int fd_out)
{
	struct block_backend *b = open_fmt(img, "qcow2", false);
	static uint8_t buf[8][4096];
	struct waiter w = { 0 };
	struct block_req r[8], churn[2];
	struct iovec iov[8];
	uint64_t k = first, last;

	if (!b)
		_exit(2);
	for (;;) {
		unsigned int i;

		w.calls = 0;
		for (i = 0; i < 8; i++, k++) {
			memset(buf[i], (int)(k & 0xff), sizeof(buf[i]));
			memcpy(buf[i], &k, sizeof(k));
			iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
			/* Scattered over the disk's first half. */
			r[i] = (struct block_req){ .op = BLOCK_WRITE, .offset = (k * 7919 % 4096) * 4096,
						   .iov = &iov[i], .iovcnt = 1, .done = count_done,
						   .opaque = &w };
			if (block_submit(b, &r[i]) != 0)
				_exit(3);
		}
		churn[0] = (struct block_req){ .op = BLOCK_WRITE,
					       .offset = (16u << 20) + (k * 31 % 256) * 65536,
					       .iov = &iov[0], .iovcnt = 1, .done = count_done,
					       .opaque = &w };
		churn[1] = (struct block_req){ .op = BLOCK_DISCARD,
					       .offset = (16u << 20) + (k * 17 % 256) * 65536,
					       .len = 65536, .done = count_done, .opaque = &w };
		if (block_submit(b, &churn[0]) != 0 || block_submit(b, &churn[1]) != 0)
			_exit(3);
		/* No cmocka in the child: it is killed, or exits. */
		if (!wait_within(b, &w, 10, 60) || w.result < 0 ||
		    io_within(b, BLOCK_FLUSH, 0, NULL, 0, 60) != 0)
			_exit(4);
		last = k - 1;
		if (write(fd_out, &last, sizeof(last)) != sizeof(last))
			_exit(5);
	}
}

/* Every promised block holds its stamp, or a later one (a later write
 * to the same block); ranges[2i..2i+1]: the blocks each round promised. */
static void check_promised(const char *img, const char *raw, const uint64_t *ranges,
			   unsigned int n, const char *what)
{
	uint64_t k, missing = 0, first_lost = 0, total = 0;
	unsigned int i;
	size_t len;
	uint8_t *d;

	sh("qemu-img convert -O raw '%s' '%s'", img, raw);
	d = slurp(raw, &len);
	for (i = 0; i < n; i++) {
		for (k = ranges[2 * i]; k <= ranges[2 * i + 1]; k++, total++) {
			uint64_t got;

			memcpy(&got, d + (k * 7919 % 4096) * 4096, sizeof(got));
			if (got < k && !missing++)
				first_lost = k;
		}
	}
	free(d);
	if (missing)
		fail_msg("%s: %llu of %llu flushed blocks lost, the first %llu", what,
			 (unsigned long long)missing, (unsigned long long)total,
			 (unsigned long long)first_lost);
}

/* kill -9 at random moments of a write-heavy workload: qemu-img check
 * finds no corruption (leaked clusters are allowed, and reported as
 * such), and every block written before a completed flush is there. The
 * third pass writes over an internal snapshot of a full image (every
 * write a copy of a shared cluster, or of a shared L2 table), and the
 * snapshot must read as it was taken after every kill. */
static void test_kill_during_writes(void **state)
{
	static const char *const opts[] = { "cluster_size=65536", "cluster_size=4096",
					    "cluster_size=65536" };
	char img[512], raw[512], snap[512], cmd[1200];
	unsigned int o, round;

	(void)state;
	path(img, "kill.qcow2");
	path(raw, "kill.raw");
	path(snap, "kill-snap.raw");
	for (o = 0; o < 3; o++) {
		uint64_t next = 0, ranges[2 * 12];
		unsigned int leaks = 0, n = 0;
		bool snapshot = o == 2;

		sh("qemu-img create -q -f qcow2 -o %s '%s' 32M", opts[o], img);
		if (snapshot) {
			/* Allocated zeroes where the stamps go (a lost stamp
			 * reads as 0), a pattern where the churn goes. */
			sh("qemu-io -f qcow2 -c 'write -P 0 0 16M' -c 'write -P 0x5c 16M 16M' '%s' "
			   ">/dev/null && qemu-img snapshot -c before '%s'", img, img);
			sh("qemu-img convert -O raw '%s' '%s'", img, snap);
		}
		srand(o + 1);
		for (round = 0; round < 12; round++) {
			uint64_t k, promised = UINT64_MAX;
			int fds[2], status;
			pid_t pid;

			assert_int_equal(pipe(fds), 0);
			pid = fork();
			assert_true(pid >= 0);
			if (pid == 0) {
				close(fds[0]);
				writer(img, next, fds[1]);
			}
			close(fds[1]);
			usleep((useconds_t)(20000 + rand() % 300000));
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFSIGNALED(status)); /* not an early exit */
			while (read(fds[0], &k, sizeof(k)) == sizeof(k))
				promised = k;
			close(fds[0]);
			if (promised != UINT64_MAX) {
				ranges[2 * n] = next;
				ranges[2 * n++ + 1] = promised;
				next = promised;
			}
			next += 1000; /* past anything the child may have begun */
			snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1", img);
			status = system(cmd);
			/* 0: clean; 3: leaked clusters only. */
			if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3)) {
				sh("qemu-img check '%s' >&2 || true", img);
				fail_msg("%s, kill %u: qemu-img check says the image is corrupt", opts[o],
					 round + 1);
			}
			leaks += WEXITSTATUS(status) == 3;
			check_promised(img, raw, ranges, n, opts[o]);
			if (snapshot)
				sh("qemu-img convert -l snapshot.name=before -O raw '%s' '%s' && "
				   "cmp -s '%s' '%s'", img, raw, raw, snap);
		}
		for (round = 0, next = 0; round < n; round++)
			next += ranges[2 * round + 1] - ranges[2 * round] + 1;
		print_message("%s%s: 12 kills, %llu blocks promised, all there; leaked clusters "
			      "after %u kills\n", opts[o], snapshot ? ", over a snapshot" : "",
			      (unsigned long long)next, leaks);
	}
	unlink(img);
	unlink(raw);
	unlink(snap);
}

/* Writes, write-zeroes and discards over internal snapshots (what
 * `qemu-img snapshot -c` and libvirt's snapshots make): the active image
 * reads as a raw file given the same writes, each snapshot still reads as
 * it was taken, qemu-img check finds nothing (not even a leak), and
 * qemu-img can revert to a snapshot afterwards. */
static void test_writes_over_internal_snapshots(void **state)
{
	static const char *const opts[] = { "cluster_size=65536", "cluster_size=4096",
					    "compat=0.10", "refcount_bits=64" };
	char raw[512], img[512], s1[512], s2[512], out[512];
	uint8_t *buf = malloc(1 << 20);
	unsigned int i, pass;

	(void)state;
	path(raw, "snapw.raw");
	path(img, "snapw.qcow2");
	path(s1, "snapw-s1.raw");
	path(s2, "snapw-s2.raw");
	path(out, "snapw-out.raw");
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		make_source(raw, 4); /* 7 MiB: random, a zero MiB, a hole */
		sh("qemu-img convert -O qcow2 -o %s '%s' '%s' && qemu-img snapshot -c s1 '%s'",
		   opts[i], raw, img, img);
		sh("cp '%s' '%s'", raw, s1);
		/* Two passes: over one snapshot, then over two. */
		for (pass = 0; pass < 2; pass++) {
			struct block_backend *b = open_fmt(img, "qcow2", false);
			int fd = open(raw, O_RDWR);

			assert_non_null(b);
			srand(i * 2 + pass);
			random_writes(b, fd, 7 << 20, 200, buf);
			close(fd);
			block_close(b);
			sh("qemu-img check -q '%s'", img);
			sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img, raw);
			assert_reads_as_raw(img, "qcow2");
			sh("qemu-img convert -l snapshot.name=s1 -O raw '%s' '%s' && cmp '%s' '%s'",
			   img, out, out, s1);
			if (pass == 0) {
				sh("qemu-img snapshot -c s2 '%s' && cp '%s' '%s'", img, raw, s2);
			} else {
				sh("qemu-img convert -l snapshot.name=s2 -O raw '%s' '%s' && "
				   "cmp '%s' '%s'", img, out, out, s2);
			}
		}
		/* Back to the first snapshot, by the reference tool. */
		sh("qemu-img snapshot -a s1 '%s' && qemu-img check -q '%s' && "
		   "qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img, img, img, s1);
	}
	unlink(raw);
	unlink(img);
	unlink(s1);
	unlink(s2);
	unlink(out);
	free(buf);
}

/* What a process killed between counting a new cluster and writing it
 * leaves: a cluster counted in use past the end of the file. It must not
 * be handed out again (counted twice, it would be shared by two guest
 * clusters). */
static void test_leak_past_eof_not_reused(void **state)
{
	static const uint8_t one[2] = { 0, 1 }; /* big-endian 16-bit refcount */
	char img[512], cmd[1100];
	struct block_backend *b;
	uint8_t buf[65536];
	int fd, status;

	(void)state;
	path(img, "leak.qcow2");
	sh("qemu-img create -q -f qcow2 -o cluster_size=65536 '%s' 1M", img);
	/* Header, refcount table, refcount block at 0x20000, L1: clusters
	 * 0-3, the file ending inside cluster 3. Cluster 5 counted. */
	fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, one, 2, 0x20000 + 5 * 2), 2);
	close(fd);
	b = open_fmt(img, "qcow2", false);
	assert_non_null(b);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(do_io(b, BLOCK_WRITE, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	block_close(b);
	snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1", img);
	status = system(cmd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3); /* cluster 5 leaked, nothing else */
	assert_reads_as_raw(img, "qcow2");
	unlink(img);
}

/* Locks as QEMU takes them: while Vireo writes an image, qemu-io is
 * refused it (qemu-img may still look with -U, force-share); while
 * qemu-io writes it, Vireo is refused, writing or reading; two readers
 * share. For raw and qcow2 alike (the lock is the file's). */
static void test_locks_shared_with_qemu(void **state)
{
	static const char *const fmts[] = { "raw", "qcow2" };
	char img[512], cmd[1200];
	unsigned int i;

	(void)state;
	path(img, "locked.img");
	for (i = 0; i < 2; i++) {
		struct block_backend *b, *r;
		pid_t pid;
		int status;

		sh("qemu-img create -q -f %s '%s' 1M", fmts[i], img);
		b = open_fmt(img, fmts[i], false);
		assert_non_null(b);
		snprintf(cmd, sizeof(cmd), "qemu-io -f %s -c 'write 0 512' '%s' >/dev/null 2>&1",
			 fmts[i], img);
		assert_int_not_equal(system(cmd), 0);
		sh("qemu-img info -U '%s' >/dev/null", img);
		assert_null(open_fmt(img, fmts[i], true)); /* a second Vireo, even reading */
		block_close(b);
		/* Two readers. */
		b = open_fmt(img, fmts[i], true);
		r = open_fmt(img, fmts[i], true);
		assert_non_null(b);
		assert_non_null(r);
		block_close(r);
		block_close(b);
		/* QEMU writing (qemu-io holds the image while it sleeps). */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			execlp("qemu-io", "qemu-io", "-f", fmts[i], "-c", "write 0 512", "-c",
			       "sleep 3000", img, (char *)NULL);
			_exit(127);
		}
		usleep(1000000);
		assert_null(open_fmt(img, fmts[i], false));
		assert_null(open_fmt(img, fmts[i], true));
		waitpid(pid, &status, 0);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		b = open_fmt(img, fmts[i], false); /* QEMU is gone */
		assert_non_null(b);
		block_close(b);
		unlink(img);
	}
}

/* snapshot=on: the guest's writes read back, the image itself is not
 * changed (and stays free for readers meanwhile), and the overlay leaves
 * nothing behind. Over raw and over a qcow2 chain alike. */
static void test_snapshot_on(void **state)
{
	char raw[512], img[512], tmp[512], cmd[4000];
	struct block_options o = { .snapshot = true };
	struct block_backend *b, *reader;
	uint8_t buf[65536], back[65536];
	unsigned int i;

	(void)state;
	path(raw, "snap.raw");
	path(img, "snap.qcow2");
	path(tmp, "tmpdir");
	make_source(raw, 2);
	sh("qemu-img convert -O qcow2 '%s' '%s' && mkdir -p '%s'", raw, img, tmp);
	setenv("TMPDIR", tmp, 1);
	for (i = 0; i < 2; i++) {
		char before[600], after[600];

		o.path = i ? img : raw;
		o.format = i ? "qcow2" : "raw";
		snprintf(before, sizeof(before), "%s.sum", tmp);
		snprintf(cmd, sizeof(cmd), "sha256sum < '%s' > '%s'", o.path, before);
		assert_int_equal(system(cmd), 0);
		b = block_open(&o);
		assert_non_null(b);
		assert_false(block_read_only(b));
		reader = open_fmt(o.path, o.format, true); /* read-only users may share */
		assert_non_null(reader);
		block_close(reader);
		memset(buf, 0x77, sizeof(buf));
		assert_int_equal(do_io(b, BLOCK_WRITE, 4096, buf, sizeof(buf)), (int64_t)sizeof(buf));
		assert_int_equal(do_io(b, BLOCK_DISCARD, 1 << 20, NULL, 65536), 0);
		assert_int_equal(do_io(b, BLOCK_FLUSH, 0, NULL, 0), 0);
		assert_int_equal(do_io(b, BLOCK_READ, 4096, back, sizeof(back)), (int64_t)sizeof(back));
		assert_memory_equal(back, buf, sizeof(buf));
		assert_int_equal(do_io(b, BLOCK_READ, 1 << 20, back, sizeof(back)), (int64_t)sizeof(back));
		memset(buf, 0, sizeof(buf));
		assert_memory_equal(back, buf, sizeof(buf));
		block_close(b);
		snprintf(after, sizeof(after), "%s.after", tmp);
		snprintf(cmd, sizeof(cmd), "sha256sum < '%s' > '%s' && cmp -s '%s' '%s'", o.path, after,
			 before, after);
		assert_int_equal(system(cmd), 0); /* the image is as it was */
		unlink(before);
		unlink(after);
		snprintf(cmd, sizeof(cmd), "[ -z \"$(ls -A '%s')\" ]", tmp);
		assert_int_equal(system(cmd), 0); /* no overlay left behind */
	}
	unsetenv("TMPDIR");
	unlink(img);
	unlink(raw);
}

/* The overlay snapshot=on writes is an image qemu-img takes as its own. */
static void test_create_passes_check(void **state)
{
	static const uint64_t sizes[] = { 1 << 20, 8ull << 30, 513ull << 30 };
	char img[512];
	unsigned int i;

	(void)state;
	path(img, "created.qcow2");
	for (i = 0; i < 3; i++) {
		struct block_options o = { .path = img };
		struct block_backend *f;
		int fd = open(img, O_CREAT | O_TRUNC | O_RDWR, 0600);

		close(fd);
		f = block_file_open(&o, true);
		assert_non_null(f);
		assert_int_equal(qcow2_create(f, sizes[i]), 0);
		block_close(f);
		sh("qemu-img check -q '%s' && qemu-img info '%s' | grep -q 'virtual size: .*(%llu bytes)'",
		   img, img, (unsigned long long)sizes[i]);
	}
	unlink(img);
}

/* The qcow2 image at img, opened read-only with every request served in
 * the device's thread where it can be: reads as qemu-img reads it, and
 * some reads were served so. */
static void assert_read_now_as_qemu(const char *img)
{
	struct block_backend *b = open_fmt(img, "qcow2", true);

	assert_non_null(b);
	assert_reads_as_qemu(b, img);
	assert_true(qcow2_reads_now(b) > 0);
	block_close(b);
}

/* Reads of allocated clusters whose L2 tables are cached are served in
 * the device's thread, with no worker: from the page cache (RWF_NOWAIT)
 * here, from memory on tmpfs (which refuses RWF_NOWAIT); never
 * with cache=none (O_DIRECT), where a read waits on the device (the image
 * has data in every cluster: a zero cluster needs no device, and is
 * served at once either way). The data is the same every way. Reads of
 * every size are served so, by default (these are of 12.5 KiB). */
static void test_reads_served_now(void **state)
{
	struct block_options o = { .read_only = true, .format = "qcow2", .cache = BLOCK_CACHE_NONE };
	char raw[512], img[512], shm[128];
	struct block_backend *b;

	(void)state;
	path(raw, "now.raw");
	path(img, "now.qcow2");
	sh("dd if=/dev/urandom of='%s' bs=1M count=4 status=none", raw);
	sh("qemu-img convert -O qcow2 '%s' '%s' && cat '%s' >/dev/null", raw, img, img);
	assert_read_now_as_qemu(img);

	snprintf(shm, sizeof(shm), "/dev/shm/vireo-reads-now-%d.qcow2", (int)getpid());
	sh("cp '%s' '%s'", img, shm);
	assert_read_now_as_qemu(shm);
	unlink(shm);

	o.path = img;
	b = block_open(&o);
	assert_non_null(b);
	assert_reads_as_qemu(b, img);
	if (block_direct(b))
		assert_int_equal(qcow2_reads_now(b), 0);
	block_close(b);
	unlink(img);
	unlink(raw);
}

/* WRITEs over clusters written in place (allocated, refcount one) are
 * served in the device's thread when the file takes them without waiting:
 * on tmpfs here (ext4 refuses RWF_NOWAIT for buffered writes, which go to
 * the workers); by default those of 64 KiB and more only, here all of
 * them. Many at once, scattered, with a flush, write-zeroes and a discard
 * that the workers do in between (block_exercise.h): the image reads back
 * as written, as qemu-img reads it too, and passes its check. */
static void test_writes_served_now(void **state)
{
	static uint8_t big[1 << 20];
	char raw[512], shm[128];
	struct block_backend *b;

	(void)state;
	path(raw, "wnow.raw");
	snprintf(shm, sizeof(shm), "/dev/shm/vireo-writes-now-%d.qcow2", (int)getpid());
	sh("dd if=/dev/urandom of='%s' bs=1M count=4 status=none", raw);
	sh("qemu-img convert -O qcow2 '%s' '%s'", raw, shm);
	b = open_fmt(shm, "qcow2", false);
	assert_non_null(b);
	assert_int_equal(do_io(b, BLOCK_WRITE, 4096, big, 4096), 4096); /* the workers' */
	assert_int_equal(do_io(b, BLOCK_WRITE, 1 << 20, big, sizeof(big)), (int64_t)sizeof(big));
	assert_int_equal(qcow2_writes_now(b), 1);
	qcow2_set_write_now_min(b, 0);
	exercise(b, 4 << 20);
	assert_true(qcow2_writes_now(b) > 1);
	block_close(b);
	sh("qemu-img check -q '%s'", shm);
	b = open_fmt(shm, "qcow2", true);
	assert_non_null(b);
	assert_reads_as_qemu(b, shm);
	block_close(b);
	unlink(shm);
	unlink(raw);
}

static int setup(void **state)
{
	(void)state;
	return tempdir_make("/tmp", "qcow2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_qemu_img_images),
		cmocka_unit_test(test_backing_chain),
		cmocka_unit_test(test_probed_backing_refused),
		cmocka_unit_test(test_writes_pass_qemu_img),
		cmocka_unit_test(test_kill_during_writes),
		cmocka_unit_test(test_leak_past_eof_not_reused),
		cmocka_unit_test(test_locks_shared_with_qemu),
		cmocka_unit_test(test_snapshot_on),
		cmocka_unit_test(test_writes_over_internal_snapshots),
		cmocka_unit_test(test_create_passes_check),
		cmocka_unit_test(test_reads_served_now),
		cmocka_unit_test(test_writes_served_now),
	};

	if (system("qemu-img --version >/dev/null 2>&1") != 0) {
		printf("skip - test_qcow2: qemu-img is not installed (apt-get install qemu-utils)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, tempdir_teardown);
}
