/* NBD disks against servers Vireo did not write: nbdkit (memory and file
 * plugins, a read-only export, a server that stalls) and qemu-nbd (a
 * qcow2 image exported raw), through the block layer's own API. Also a
 * server killed with requests in flight: they fail, later ones fail at
 * once, and closing never hangs. */
#include "cmocka_prelude.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "block_exercise.h"

static char sock[300], uri[400];
static pid_t running; /* the test's server, stopped by teardown if it failed first */

/* Starts a server in the background and waits for its socket. */
static pid_t server(const char *const argv[])
{
	pid_t pid = fork();
	int i;

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 200 && access(sock, F_OK); i++)
		usleep(25000);
	running = pid;
	assert_int_equal(access(sock, F_OK), 0);
	return pid;
}

/* SIGTERM, then SIGKILL after 5 s: nbdkit waits for its connections to
 * end, and a test that failed half way never closed its own. */
static void stop(pid_t pid)
{
	int i;

	kill(pid, SIGTERM);
	for (i = 0; i < 200 && waitpid(pid, NULL, WNOHANG) == 0; i++)
		usleep(25000);
	if (i == 200) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	unlink(sock);
	running = 0;
}

/* After each test: a server a failed test left behind, stopped, so that
 * the next one is not refused the socket. */
static int stop_leftover(void **state)
{
	(void)state;
	if (running > 0)
		stop(running);
	return 0;
}

static struct block_backend *open_nbd(bool ro, const char *format)
{
	struct block_options o = { .protocol = BLOCK_PROTO_NBD, .path = uri, .read_only = ro,
				   .format = format };

	return block_open(&o);
}

static void test_nbdkit_memory(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-U", sock, "memory", "16M", NULL };
	struct block_backend *b;
	pid_t pid;

	(void)state;
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	assert_int_equal(block_size(b), 16 << 20);
	exercise(b, 16 << 20);
	block_close(b);
	stop(pid);
}

/* The file plugin: what was flushed is in the file. */
static void test_nbdkit_file(void **state)
{
	char file[400];
	const char *argv[] = { "nbdkit", "-f", "-U", sock, "file", file, NULL };
	struct block_backend *b;
	uint8_t buf[4096], back[4096];
	pid_t pid;
	int fd;

	(void)state;
	snprintf(file, sizeof(file), "%s/export.img", dir);
	fd = open(file, O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_int_equal(ftruncate(fd, 8 << 20), 0);
	pid = server(argv);
	b = open_nbd(false, NULL); /* probed: raw */
	assert_non_null(b);
	exercise(b, 8 << 20);
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(do_io(b, BLOCK_WRITE, 4 << 20, buf, sizeof(buf)), (int64_t)sizeof(buf));
	assert_int_equal(do_io(b, BLOCK_FLUSH, 0, NULL, 0), 0);
	assert_int_equal(pread(fd, back, sizeof(back), 4 << 20), (ssize_t)sizeof(back));
	assert_memory_equal(back, buf, sizeof(buf));
	block_close(b);
	stop(pid);
	close(fd);
}

static void test_read_only_export(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-r", "-U", sock, "pattern", "1M", NULL };
	struct block_backend *b;
	uint8_t buf[512];
	pid_t pid;

	(void)state;
	pid = server(argv);
	assert_null(open_nbd(false, "raw")); /* read-write asked of a read-only export */
	b = open_nbd(true, "raw");
	assert_non_null(b);
	/* The pattern plugin: each 8-byte word is its own offset, big-endian. */
	assert_int_equal(do_io(b, BLOCK_READ, 4096, buf, sizeof(buf)), (int64_t)sizeof(buf));
	assert_int_equal(buf[7], 0x00);
	assert_int_equal(buf[6], 0x10);
	block_close(b);
	stop(pid);
}

/* qemu-nbd serving a qcow2 image as a raw export: Vireo writes through
 * it, and qemu-img finds the image sound and the data there. */
static void test_qemu_nbd_qcow2(void **state)
{
	char img[512];
	const char *argv[] = { "qemu-nbd", "-k", sock, "-f", "qcow2", "--cache=writeback", img,
			       NULL };
	struct block_backend *b;
	uint8_t buf[65536];
	pid_t pid;

	(void)state;
	path(img, "served.qcow2");
	sh("qemu-img create -q -f qcow2 '%s' 16M", img);
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	exercise(b, 16 << 20);
	memset(buf, 0x3c, sizeof(buf));
	assert_int_equal(do_io(b, BLOCK_WRITE, 8 << 20, buf, sizeof(buf)), (int64_t)sizeof(buf));
	assert_int_equal(do_io(b, BLOCK_FLUSH, 0, NULL, 0), 0);
	block_close(b);
	stop(pid);
	sh("qemu-img check -q '%s'", img);
	/* bash for the process substitution */
	sh("bash -c \"qemu-img convert -O raw '%s' '%s/served.raw' && cmp -s -i 8388608:0 -n 65536 "
	   "'%s/served.raw' <(head -c 65536 /dev/zero | tr '\\000' '\\074')\"",
	   img, dir, dir);
}

/* A qcow2 image over NBD (qemu-nbd exports the file raw, Vireo reads the
 * format, writing within the clusters the image has): the format's
 * workers wait on the connection synchronously from their threads while
 * the test's own loop drives it for the requests in flight; the image is
 * sound afterwards. */
static void test_qcow2_over_nbd(void **state)
{
	char img[512];
	const char *argv[] = { "qemu-nbd", "-k", sock, "-f", "raw", "--cache=writeback", img,
			       NULL };
	struct block_backend *b;
	pid_t pid;

	(void)state;
	path(img, "inside.qcow2");
	/* Its clusters allocated in the file already: an NBD export has a
	 * fixed size, so a format above cannot grow the file as it does a
	 * local one. */
	sh("qemu-img create -q -f qcow2 -o cluster_size=4096,preallocation=metadata '%s' 16M", img);
	pid = server(argv);
	b = open_nbd(false, "qcow2");
	assert_non_null(b);
	exercise(b, 16 << 20);
	block_close(b);
	stop(pid);
	sh("qemu-img check -q '%s'", img);
}

/* Writes of 4 MiB, eight in flight: more than the socket takes at once,
 * so each is sent in parts as the socket drains (libnbd waits to write,
 * the node watches the socket for it). Read back whole. */
static void test_large_writes(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-U", sock, "memory", "64M", NULL };
	const size_t len = 4 << 20;
	uint8_t *data = malloc(8 * len), *back = malloc(8 * len);
	struct block_req r[8];
	struct iovec iov[8];
	struct waiter w = { 0 };
	struct block_backend *b;
	unsigned int i;
	size_t j;
	pid_t pid;

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	for (j = 0; j < 8 * len; j++)
		data[j] = (uint8_t)(j * 7 + j / 4093);
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	for (i = 0; i < 8; i++) {
		iov[i] = (struct iovec){ data + i * len, len };
		r[i] = (struct block_req){ .op = BLOCK_WRITE, .offset = i * (uint64_t)len,
					   .iov = &iov[i], .iovcnt = 1, .done = count_done,
					   .opaque = &w };
		assert_int_equal(block_submit(b, &r[i]), 0);
	}
	wait_for(b, &w, 8, 60);
	assert_int_equal(w.worst, 0);
	assert_int_equal(do_io(b, BLOCK_READ, 0, back, 8 * len), (int64_t)(8 * len));
	assert_memory_equal(back, data, 8 * len);
	block_close(b);
	stop(pid);
	free(data);
	free(back);
}

/* Replies that have all arrived are completed in one go: one wakeup of
 * the device's thread, one interrupt for the guest (libnbd stops at the
 * end of each reply; the driver must go on while the socket has more). */
static void test_replies_in_one_wakeup(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-U", sock, "memory", "16M", NULL };
	enum { N = 16, LEN = 4096 };
	static uint8_t bufs[N][LEN];
	struct block_req r[N];
	struct iovec iov[N];
	struct waiter w = { 0 };
	struct pollfd p = { .events = POLLIN };
	struct block_backend *b;
	unsigned int i;
	pid_t pid;

	(void)state;
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	for (i = 0; i < N; i++) {
		iov[i] = (struct iovec){ bufs[i], LEN };
		r[i] = (struct block_req){ .op = BLOCK_READ, .offset = i * (uint64_t)LEN,
					   .iov = &iov[i], .iovcnt = 1, .done = count_done,
					   .opaque = &w };
		assert_int_equal(block_submit(b, &r[i]), 0);
	}
	/* The first reply wakes the device; by two seconds later a local
	 * nbdkit has long sent the other 15 (64 KiB in all: the socket's
	 * buffer holds them). */
	p.fd = block_completion_fd(b);
	assert_int_equal(poll(&p, 1, 10000), 1);
	sleep(2);
	block_process_completions(b);
	assert_int_equal(w.calls, N);
	assert_int_equal(w.worst, 0);
	block_close(b);
	stop(pid);
}

/* Reads scattered over two buffers each (as a guest's pages are), 32 in
 * flight, of sizes that vary, round after round: they go through the
 * node's pooled bounce buffers, which are reused without being cleared,
 * so a buffer handed to two commands at once, or one too small, shows as
 * wrong data. */
static void test_scattered_reads_reuse_buffers(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-U", sock, "memory", "32M", NULL };
	enum { N = 32, SLOT = 1 << 20 };
	const size_t size = 32 << 20;
	uint8_t *disk = malloc(size), *bufs = malloc((size_t)N * SLOT);
	struct block_req r[N];
	struct iovec iov[2 * N];
	struct waiter w = { 0 };
	struct block_backend *b;
	unsigned int i, round;
	size_t j;
	pid_t pid;

	(void)state;
	assert_non_null(disk);
	assert_non_null(bufs);
	for (j = 0; j < size; j++)
		disk[j] = (uint8_t)(j * 13 + j / 4091);
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	assert_int_equal(do_io(b, BLOCK_WRITE, 0, disk, size), (int64_t)size);
	srand(11);
	for (round = 0; round < 6; round++) {
		uint64_t off[N], len[N], h[N];

		w.calls = 0;
		memset(bufs, 0, (size_t)N * SLOT);
		for (i = 0; i < N; i++) {
			uint8_t *slot = bufs + (size_t)i * SLOT;

			len[i] = (uint64_t)(8 + rand() % (SLOT / 512 - 8)) * 512;
			off[i] = (uint64_t)(rand() % (int)((size - len[i]) / 512)) * 512;
			h[i] = len[i] / 4 & ~511ull;
			/* The first h bytes land after the rest. */
			iov[2 * i] = (struct iovec){ slot + (len[i] - h[i]), (size_t)h[i] };
			iov[2 * i + 1] = (struct iovec){ slot, (size_t)(len[i] - h[i]) };
			r[i] = (struct block_req){ .op = BLOCK_READ, .offset = off[i], .iov = &iov[2 * i],
						   .iovcnt = 2, .done = count_done, .opaque = &w };
			assert_int_equal(block_submit(b, &r[i]), 0);
		}
		wait_for(b, &w, N, 60);
		assert_int_equal(w.worst, 0);
		for (i = 0; i < N; i++) {
			uint8_t *slot = bufs + (size_t)i * SLOT;

			assert_memory_equal(slot + (len[i] - h[i]), disk + off[i], h[i]);
			assert_memory_equal(slot, disk + off[i] + h[i], len[i] - h[i]);
		}
	}
	block_close(b);
	stop(pid);
	free(disk);
	free(bufs);
}

/* Writes scattered over several ranges of memory each (as a guest's
 * pages are), 24 in flight, round after round, of ranges that vary in
 * number, length and order in memory, overlapping on the disk only
 * between rounds: they go through the node's pooled bounce buffers
 * (reused without being cleared), so a buffer handed to two commands at
 * once, one too small or a range copied to the wrong place shows as
 * wrong data when the disk is read back whole. */
static void test_scattered_writes(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-U", sock, "memory", "32M", NULL };
	enum { N = 24, SLOT = 1 << 20, MAXR = 7 };
	const size_t size = 32 << 20;
	uint8_t *disk = calloc(1, size), *bufs = malloc((size_t)N * SLOT), *back = malloc(size);
	struct block_req r[N];
	struct iovec iov[N * MAXR];
	struct waiter w = { 0 };
	struct block_backend *b;
	unsigned int i, k, round;
	size_t j;
	pid_t pid;

	(void)state;
	assert_non_null(disk);
	assert_non_null(bufs);
	assert_non_null(back);
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	srand(23);
	for (round = 0; round < 8; round++) {
		w.calls = 0;
		for (i = 0; i < N; i++) {
			uint8_t *slot = bufs + (size_t)i * SLOT;
			/* Request i writes its own 1 MiB of the disk: no two
			 * in flight overlap. */
			uint64_t len = (uint64_t)(8 + rand() % (SLOT / 512 - 8)) * 512;
			uint64_t off = (uint64_t)i * SLOT + (uint64_t)(rand() % (int)((SLOT - len) / 512 + 1)) * 512;
			unsigned int nr = 1 + (unsigned int)rand() % MAXR;
			uint64_t at = 0, piece = (len / nr) & ~511ull;

			for (j = 0; j < len; j++)
				slot[j] = (uint8_t)rand();
			/* The slot cut in nr slices (the last one takes the
			 * rest), named last slice first, so that no iovec
			 * continues the one before it in memory; the disk gets
			 * the slices in that order. */
			for (k = 0; k < nr; k++) {
				uint64_t s = nr - 1 - k;
				struct iovec *v = &iov[i * MAXR + k];

				v->iov_base = slot + s * piece;
				v->iov_len = s + 1 < nr ? piece : len - s * piece;
				memcpy(disk + off + at, v->iov_base, v->iov_len);
				at += v->iov_len;
			}
			r[i] = (struct block_req){ .op = BLOCK_WRITE, .offset = off, .iov = &iov[i * MAXR],
						   .iovcnt = nr, .done = count_done, .opaque = &w };
			assert_int_equal(block_submit(b, &r[i]), 0);
		}
		wait_for(b, &w, N, 60);
		assert_int_equal(w.worst, 0);
	}
	assert_int_equal(do_io(b, BLOCK_READ, 0, back, size), (int64_t)size);
	assert_memory_equal(back, disk, size);
	block_close(b);
	stop(pid);
	free(disk);
	free(bufs);
	free(back);
}

/* Server killed with 64 requests in flight: each completes, with an
 * error where the server did not answer; the next request fails at once;
 * closing returns. */
static void test_server_dies(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-U", sock, "--filter=delay", "memory",
				     "64M", "wdelay=200ms", NULL };
	static uint8_t buf[64][4096];
	struct block_req r[64];
	struct iovec iov[64];
	struct waiter w = { 0 };
	struct block_backend *b;
	unsigned int i;
	pid_t pid;
	time_t t0;

	(void)state;
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	for (i = 0; i < 64; i++) {
		iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
		r[i] = (struct block_req){ .op = BLOCK_WRITE, .offset = i * 4096ull, .iov = &iov[i],
					   .iovcnt = 1, .done = count_done, .opaque = &w };
		assert_int_equal(block_submit(b, &r[i]), 0);
	}
	usleep(300000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(sock);
	running = 0;
	t0 = time(NULL);
	wait_for(b, &w, 64, 30);
	assert_true(w.worst < 0); /* some were not answered */
	assert_true(do_io(b, BLOCK_READ, 0, buf[0], 4096) < 0 ||
		    block_submit(b, &r[0]) < 0);
	block_close(b);
	assert_true(time(NULL) - t0 < 30);
}

/* A server that stops answering is cut off after the timeout. */
static void test_server_stalls(void **state)
{
	const char *const argv[] = { "nbdkit", "-f", "-U", sock, "--filter=delay", "memory",
				     "1M", "rdelay=3600", NULL };
	struct block_backend *b;
	uint8_t buf[512];
	pid_t pid;
	time_t t0;

	(void)state;
	setenv("VIREO_NBD_TIMEOUT_S", "2", 1);
	pid = server(argv);
	b = open_nbd(false, "raw");
	assert_non_null(b);
	t0 = time(NULL);
	assert_true(do_io(b, BLOCK_READ, 0, buf, sizeof(buf)) < 0);
	assert_true(time(NULL) - t0 <= 10);
	block_close(b);
	/* The same, waited for synchronously: the first sector read to
	 * probe the format, with no device's loop running. */
	t0 = time(NULL);
	assert_null(open_nbd(false, NULL));
	assert_true(time(NULL) - t0 <= 10);
	stop(pid);
	unsetenv("VIREO_NBD_TIMEOUT_S");
}

static int setup(void **state)
{
	(void)state;
	if (tempdir_make("/tmp", "nbd"))
		return -1;
	snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", sock);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_nbdkit_memory, stop_leftover),
		cmocka_unit_test_teardown(test_nbdkit_file, stop_leftover),
		cmocka_unit_test_teardown(test_read_only_export, stop_leftover),
		cmocka_unit_test_teardown(test_qemu_nbd_qcow2, stop_leftover),
		cmocka_unit_test_teardown(test_qcow2_over_nbd, stop_leftover),
		cmocka_unit_test_teardown(test_large_writes, stop_leftover),
		cmocka_unit_test_teardown(test_replies_in_one_wakeup, stop_leftover),
		cmocka_unit_test_teardown(test_scattered_reads_reuse_buffers, stop_leftover),
		cmocka_unit_test_teardown(test_scattered_writes, stop_leftover),
		cmocka_unit_test_teardown(test_server_dies, stop_leftover),
		cmocka_unit_test_teardown(test_server_stalls, stop_leftover),
	};

	if (system("nbdkit --version >/dev/null 2>&1 && qemu-nbd --version >/dev/null 2>&1") != 0) {
		printf("skip - test_nbd: nbdkit or qemu-nbd is not installed (apt-get install nbdkit "
		       "qemu-utils)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, tempdir_teardown);
}
