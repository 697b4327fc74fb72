/* RBD disks against a real, throwaway single-node Ceph cluster
 * (tests/rbd/cluster: a monitor and one memstore OSD, cephx on): the
 * block layer's workload on an image made by `rbd create`, the data seen
 * alike by `rbd export`; an image `qemu-img convert` put into RBD reads
 * back as its source; client ids; a read-only open; and a cluster that
 * goes away with requests in flight: they fail within the timeout, and
 * closing never hangs. */
#include "cmocka_prelude.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "block_exercise.h"

static char conf[400];

static struct block_backend *open_rbd(const char *image, const char *id, bool ro)
{
	struct block_options o = { .protocol = BLOCK_PROTO_RBD, .path = image, .rbd_conf = conf,
				   .rbd_id = id, .read_only = ro, .format = "raw" };

	return block_open(&o);
}

static void test_workload(void **state)
{
	struct block_backend *b;
	uint8_t *got, *back;
	char file[400];
	FILE *f;

	(void)state;
	sh("rbd -c '%s' create rbd/work --size 16M", conf);
	b = open_rbd("rbd/work", "vireo", false);
	assert_non_null(b);
	assert_int_equal(block_size(b), 16 << 20);
	exercise(b, 16 << 20);
	got = malloc(16 << 20);
	back = malloc(16 << 20);
	assert_int_equal(do_io(b, BLOCK_READ, 0, got, 16 << 20), 16 << 20);
	assert_int_equal(do_io(b, BLOCK_FLUSH, 0, NULL, 0), 0);
	block_close(b);
	/* Another client sees the same bytes. */
	snprintf(file, sizeof(file), "%s/export.raw", dir);
	sh("rbd -c '%s' export rbd/work '%s' >/dev/null 2>&1", conf, file);
	f = fopen(file, "rb");
	assert_non_null(f);
	assert_int_equal(fread(back, 1, 16 << 20, f), 16 << 20);
	fclose(f);
	assert_memory_equal(got, back, 16 << 20);
	free(got);
	free(back);
}

/* qemu-img puts a qcow2 image into RBD; Vireo reads it as its source. */
static void test_qemu_img_convert(void **state)
{
	char raw[400], img[400];
	uint8_t *want, *got;
	struct block_backend *b;
	FILE *f;

	(void)state;
	snprintf(raw, sizeof(raw), "%s/src.raw", dir);
	snprintf(img, sizeof(img), "%s/src.qcow2", dir);
	sh("head -c 8388608 /dev/urandom > '%s' && qemu-img convert -O qcow2 '%s' '%s'", raw, raw,
	   img);
	sh("qemu-img convert -f qcow2 -O raw '%s' 'rbd:rbd/converted:conf=%s'", img, conf);
	want = malloc(8 << 20);
	got = malloc(8 << 20);
	f = fopen(raw, "rb");
	assert_int_equal(fread(want, 1, 8 << 20, f), 8 << 20);
	fclose(f);
	b = open_rbd("rbd/converted", NULL, true);
	assert_non_null(b);
	assert_true(block_read_only(b));
	assert_int_equal(do_io(b, BLOCK_READ, 0, got, 8 << 20), 8 << 20);
	assert_memory_equal(got, want, 8 << 20);
	/* Read-only: writes refused before they reach librbd. */
	assert_int_equal(do_io(b, BLOCK_WRITE, 0, got, 4096), -EROFS);
	block_close(b);
	free(want);
	free(got);
}

static void test_bad_names(void **state)
{
	(void)state;
	assert_null(open_rbd("rbd/missing", NULL, false));
	assert_null(open_rbd("nopool/work", NULL, false));
	assert_null(open_rbd("rbd/work", "nobody", false)); /* no key for that id */
}

/* The cluster stops under a VM: requests fail within the timeout. */
static void test_cluster_goes_away(void **state)
{
	static uint8_t buf[16][65536];
	struct block_req r[16];
	struct iovec iov[16];
	struct waiter w = { 0 };
	struct block_backend *b;
	unsigned int i;
	time_t t0;

	(void)state;
	setenv("VIREO_RBD_TIMEOUT_S", "5", 1);
	sh("rbd -c '%s' create rbd/doomed --size 4M", conf);
	b = open_rbd("rbd/doomed", NULL, false);
	assert_non_null(b);
	assert_int_equal(do_io(b, BLOCK_WRITE, 0, buf[0], 65536), 65536);
	sh("tests/rbd/cluster stop '%s' >/dev/null 2>&1", dir);
	t0 = time(NULL);
	for (i = 0; i < 16; i++) {
		iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
		r[i] = (struct block_req){ .op = i % 2 ? BLOCK_WRITE : BLOCK_READ,
					   .offset = i * 65536ull, .iov = &iov[i], .iovcnt = 1,
					   .done = count_done, .opaque = &w };
		assert_int_equal(block_submit(b, &r[i]), 0);
	}
	wait_for(b, &w, 16, 120);
	assert_true(w.worst < 0);
	block_close(b);
	assert_true(time(NULL) - t0 < 90);
	unsetenv("VIREO_RBD_TIMEOUT_S");
}

static int setup(void **state)
{
	char cmd[600];
	FILE *p;

	(void)state;
	if (tempdir_make("/tmp", "rbd"))
		return -1;
	rmdir(dir); /* the script makes it */
	snprintf(cmd, sizeof(cmd), "tests/rbd/cluster start '%s' | tail -n 1", dir);
	p = popen(cmd, "r");
	if (!p || !fgets(conf, sizeof(conf), p)) {
		if (p)
			pclose(p);
		return -1;
	}
	conf[strcspn(conf, "\n")] = 0;
	return pclose(p) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "tests/rbd/cluster stop '%s' >/dev/null 2>&1", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workload),
		cmocka_unit_test(test_qemu_img_convert),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_cluster_goes_away), /* last: it stops the cluster */
	};

	if (system("command -v ceph-mon ceph-osd rbd >/dev/null 2>&1") != 0) {
		printf("skip - test_rbd: Ceph is not installed (apt-get install ceph-mon ceph-osd "
		       "ceph-common)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
