/* virtio-blk: the request parser on hand-built chains (every rule of
 * 5.2.6, any framing), then the whole device on a real split virtqueue in
 * fake guest RAM with its I/O thread and a file behind it, driven the way
 * a driver would: descriptors, avail ring, kick, wait for the used ring. */
#include "cmocka_prelude.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/jsonw.h"
#include "util/le.h"
#include "virtio/virtio.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_blk_req.h"
#include "vmm/options.h"

#define CAPACITY 2048 /* sectors: 1 MiB */

/* ---- the parser ------------------------------------------------------- */

static struct virtq_elem elem;
static struct virtio_blk_req req;

static void hdr(uint8_t *h, uint32_t type, uint64_t sector)
{
	le32_put(h, type);
	le32_put(h + 4, 0);
	le64_put(h + 8, sector);
}

/* Out buffers then in buffers, as virtq_pop() hands them over. */
static void chain(const struct iovec *out, unsigned int nout, const struct iovec *in,
		  unsigned int nin)
{
	unsigned int i;

	memset(&elem, 0, sizeof(elem));
	elem.head = 3;
	elem.out_num = (uint16_t)nout;
	elem.in_num = (uint16_t)nin;
	for (i = 0; i < nout; i++) {
		elem.iov[i] = out[i];
		elem.out_len += out[i].iov_len;
	}
	for (i = 0; i < nin; i++) {
		elem.iov[nout + i] = in[i];
		elem.in_len += in[i].iov_len;
	}
}

static uint8_t parse(bool ro)
{
	return virtio_blk_parse(&elem, CAPACITY, ro, &req);
}

static void test_parse_read(void **state)
{
	uint8_t h[16], data[4097], status;
	struct iovec out[1] = { { h, 16 } };
	struct iovec in[2] = { { data, 4096 }, { &status, 1 } };

	(void)state;
	hdr(h, VIRTIO_BLK_T_IN, 8);
	chain(out, 1, in, 2);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_IN);
	assert_int_equal(req.sector, 8);
	assert_ptr_equal(req.status, &status);
	assert_int_equal(req.data_cnt, 1);
	assert_ptr_equal(req.data[0].iov_base, data);
	assert_int_equal(req.data_len, 4096);
	/* Read-only disks can be read. */
	assert_int_equal(parse(true), VIRTIO_BLK_S_OK);

	/* Data and status in one buffer: the status is its last byte. */
	in[0].iov_len = 4097;
	chain(out, 1, in, 1);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_ptr_equal(req.status, data + 4096);
	assert_int_equal(req.data_cnt, 1);
	assert_int_equal(req.data[0].iov_len, 4096);
	assert_int_equal(req.data_len, 4096);

	/* The last sector, and nothing at all, are fine. */
	hdr(h, VIRTIO_BLK_T_IN, CAPACITY - 8);
	in[0].iov_len = 4096;
	chain(out, 1, in, 2);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	hdr(h, VIRTIO_BLK_T_IN, CAPACITY);
	chain(out, 1, in + 1, 1);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_int_equal(req.data_len, 0);
	assert_int_equal(req.data_cnt, 0);
}

/* The header split over three buffers, the data starting inside the
 * third: no framing may be assumed (2.6.4). */
static void test_parse_split_header(void **state)
{
	uint8_t h[16 + 1024], status;
	struct iovec out[3] = { { h, 5 }, { h + 5, 7 }, { h + 12, 4 + 1024 } };
	struct iovec in[1] = { { &status, 1 } };

	(void)state;
	hdr(h, VIRTIO_BLK_T_OUT, 0x123);
	chain(out, 3, in, 1);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_OUT);
	assert_int_equal(req.sector, 0x123);
	assert_int_equal(req.data_cnt, 1);
	assert_ptr_equal(req.data[0].iov_base, h + 16);
	assert_int_equal(req.data[0].iov_len, 1024);
	assert_int_equal(req.data_len, 1024);

	/* One byte per buffer for the header, data over two more. */
	{
		uint8_t d[1024];
		struct iovec many[18];
		unsigned int i;

		for (i = 0; i < 16; i++)
			many[i] = (struct iovec){ h + i, 1 };
		many[16] = (struct iovec){ d, 512 };
		many[17] = (struct iovec){ d + 512, 512 };
		hdr(h, VIRTIO_BLK_T_OUT, 77);
		chain(many, 18, in, 1);
		assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
		assert_int_equal(req.sector, 77);
		assert_int_equal(req.data_cnt, 2);
		assert_ptr_equal(req.data[0].iov_base, d);
		assert_ptr_equal(req.data[1].iov_base, d + 512);
		assert_int_equal(req.data_len, 1024);
	}
}

/* The status byte is the last byte of the in buffers, whatever their
 * layout; with no in buffer at all there is nowhere to put it. */
static void test_parse_status_location(void **state)
{
	uint8_t h[16], in1[600], in2[425];
	struct iovec out[1] = { { h, 16 } };
	struct iovec in[3] = { { in1, 600 }, { in2, 424 }, { in2, 0 } };

	(void)state;
	hdr(h, VIRTIO_BLK_T_IN, 0);
	/* 1024 bytes: 1023 of data is not a whole sector. */
	chain(out, 1, in, 2);
	assert_int_equal(parse(false), VIRTIO_BLK_S_IOERR);
	assert_ptr_equal(req.status, in2 + 423);
	/* An empty buffer at the end does not move the status. */
	in[1].iov_len = 425; /* 1024 bytes of data, then the status */
	chain(out, 1, in, 3);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_ptr_equal(req.status, in2 + 424);
	assert_int_equal(req.data_len, 1024);
	assert_int_equal(req.data_cnt, 2);
	assert_int_equal(req.data[1].iov_len, 424);

	chain(out, 1, NULL, 0);
	assert_int_equal(parse(false), VIRTIO_BLK_S_IOERR);
	assert_null(req.status);
	chain(out, 1, in + 2, 1); /* only an empty in buffer */
	assert_int_equal(parse(false), VIRTIO_BLK_S_IOERR);
	assert_null(req.status);
}

static void expect(uint8_t want, bool ro, const char *what)
{
	uint8_t got = parse(ro);

	if (got != want)
		fail_msg("%s: status %u, expected %u", what, got, want);
	assert_non_null(req.status);
}

static void test_parse_errors(void **state)
{
	uint8_t h[32], data[1536], status;
	struct iovec out[2] = { { h, 16 }, { data, 512 } };
	struct iovec in[2] = { { data, 512 }, { &status, 1 } };

	(void)state;
	/* Header too short. */
	hdr(h, VIRTIO_BLK_T_IN, 0);
	out[0].iov_len = 15;
	chain(out, 1, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "15-byte header");
	chain(NULL, 0, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "no header");
	out[0].iov_len = 16;

	/* Not whole sectors. */
	in[0].iov_len = 500;
	chain(out, 1, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "read of 500 bytes");
	in[0].iov_len = 512;
	hdr(h, VIRTIO_BLK_T_OUT, 0);
	out[1].iov_len = 100;
	chain(out, 2, in + 1, 1);
	expect(VIRTIO_BLK_S_IOERR, false, "write of 100 bytes");
	out[1].iov_len = 512;

	/* Past the end: start, end, and overflowing sector numbers. */
	hdr(h, VIRTIO_BLK_T_IN, CAPACITY);
	chain(out, 1, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "read at capacity");
	hdr(h, VIRTIO_BLK_T_IN, CAPACITY - 1);
	in[0].iov_len = 1024;
	chain(out, 1, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "read across the end");
	hdr(h, VIRTIO_BLK_T_OUT, UINT64_MAX);
	chain(out, 2, in + 1, 1);
	expect(VIRTIO_BLK_S_IOERR, false, "write at sector 2^64-1");
	hdr(h, VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1);
	chain(out, 2, in + 1, 1);
	expect(VIRTIO_BLK_S_IOERR, false, "write whose byte offset overflows");
	in[0].iov_len = 512;

	/* Writes to a read-only disk. */
	hdr(h, VIRTIO_BLK_T_OUT, 0);
	chain(out, 2, in + 1, 1);
	expect(VIRTIO_BLK_S_OK, false, "write");
	expect(VIRTIO_BLK_S_IOERR, true, "write to a read-only disk");

	/* Buffers in the wrong direction for the type. */
	hdr(h, VIRTIO_BLK_T_IN, 0);
	chain(out, 2, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "read with data in the out buffers");
	hdr(h, VIRTIO_BLK_T_OUT, 0);
	chain(out, 2, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "write with room in the in buffers");
	hdr(h, VIRTIO_BLK_T_FLUSH, 0);
	chain(out, 2, in + 1, 1);
	expect(VIRTIO_BLK_S_IOERR, false, "flush with data");
	chain(out, 1, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "flush with room for data");
	hdr(h, VIRTIO_BLK_T_GET_ID, 0);
	chain(out, 2, in, 2);
	expect(VIRTIO_BLK_S_IOERR, false, "get id with out data");

	/* Unknown types: GET_LIFETIME, SECURE_ERASE, anything. */
	hdr(h, 10, 0);
	chain(out, 1, in, 2);
	expect(VIRTIO_BLK_S_UNSUPP, false, "get lifetime");
	hdr(h, 14, 0);
	chain(out, 1, in + 1, 1);
	expect(VIRTIO_BLK_S_UNSUPP, false, "secure erase");
	hdr(h, 0xffffffff, 0);
	chain(out, 1, in + 1, 1);
	expect(VIRTIO_BLK_S_UNSUPP, false, "type 2^32-1");
}

static void test_parse_flush_get_id(void **state)
{
	uint8_t h[16], id[32], status;
	struct iovec out[1] = { { h, 16 } };
	struct iovec in[2] = { { id, 20 }, { &status, 1 } };

	(void)state;
	hdr(h, VIRTIO_BLK_T_FLUSH, 0);
	chain(out, 1, in + 1, 1);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_int_equal(parse(true), VIRTIO_BLK_S_OK);
	assert_int_equal(req.type, VIRTIO_BLK_T_FLUSH);

	hdr(h, VIRTIO_BLK_T_GET_ID, 0);
	chain(out, 1, in, 2);
	assert_int_equal(parse(true), VIRTIO_BLK_S_OK);
	assert_int_equal(req.data_len, VIRTIO_BLK_ID_BYTES);
	assert_ptr_equal(req.data[0].iov_base, id);
	/* A bigger buffer gets 20 bytes, a smaller one what fits. */
	in[0].iov_len = 32;
	chain(out, 1, in, 2);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_int_equal(req.data_len, VIRTIO_BLK_ID_BYTES);
	in[0].iov_len = 8;
	chain(out, 1, in, 2);
	assert_int_equal(parse(false), VIRTIO_BLK_S_OK);
	assert_int_equal(req.data_len, 8);
}

static void segment(uint8_t *s, uint64_t sector, uint32_t num, uint32_t flags)
{
	le64_put(s, sector);
	le32_put(s + 8, num);
	le32_put(s + 12, flags);
}

static void test_parse_discard_write_zeroes(void **state)
{
	uint8_t h[16 + 32], status;
	struct iovec out[2] = { { h, 16 }, { h + 16, 16 } };
	struct iovec in[1] = { { &status, 1 } };
	uint32_t types[] = { VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES };
	unsigned int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		hdr(h, types[i], 999); /* the header's sector is not used */
		segment(h + 16, 64, 128, 0);
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_OK, false, "one segment");
		assert_int_equal(req.type, types[i]);
		assert_int_equal(req.sector, 64);
		assert_int_equal(req.num_sectors, 128);
		assert_false(req.unmap);
		expect(VIRTIO_BLK_S_IOERR, true, "on a read-only disk");
		/* Header and segment in one buffer. */
		out[0].iov_len = 32;
		chain(out, 1, in, 1);
		expect(VIRTIO_BLK_S_OK, false, "header and segment together");
		assert_int_equal(req.num_sectors, 128);
		out[0].iov_len = 16;

		segment(h + 16, CAPACITY - 128, 128, 0);
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_OK, false, "up to the end");
		segment(h + 16, CAPACITY - 127, 128, 0);
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_IOERR, false, "past the end");
		segment(h + 16, UINT64_MAX, 1, 0);
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_IOERR, false, "sector 2^64-1");
		segment(h + 16, 0, types[i] == VIRTIO_BLK_T_DISCARD
					   ? VIRTIO_BLK_MAX_DISCARD_SECTORS + 1
					   : VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS + 1, 0);
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_IOERR, false, "more sectors than advertised");
		segment(h + 16, 0, 8, 2);
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_UNSUPP, false, "unknown flag");

		/* Two segments (max_discard_seg is 1), none, or half a one. */
		segment(h + 16, 0, 8, 0);
		segment(h + 32, 8, 8, 0);
		out[1].iov_len = 32;
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_IOERR, false, "two segments");
		chain(out, 1, in, 1);
		expect(VIRTIO_BLK_S_IOERR, false, "no segment");
		out[1].iov_len = 15;
		chain(out, 2, in, 1);
		expect(VIRTIO_BLK_S_IOERR, false, "15-byte segment");
		out[1].iov_len = 16;
	}
	/* Unmap: allowed on write zeroes, UNSUPP on discard (5.2.6.2). */
	segment(h + 16, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	hdr(h, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	chain(out, 2, in, 1);
	expect(VIRTIO_BLK_S_OK, false, "write zeroes with unmap");
	assert_true(req.unmap);
	hdr(h, VIRTIO_BLK_T_DISCARD, 0);
	chain(out, 2, in, 1);
	expect(VIRTIO_BLK_S_UNSUPP, false, "discard with unmap");
	/* Room for data in a discard is wrong too. */
	{
		uint8_t extra[512];
		struct iovec in2[2] = { { extra, 512 }, { &status, 1 } };

		segment(h + 16, 0, 8, 0);
		chain(out, 2, in2, 2);
		expect(VIRTIO_BLK_S_IOERR, false, "discard with in data");
	}
}

/* ---- the device on a real queue ---------------------------------------- */

#define QSIZE 16
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define DATA_GPA 0x10000
#define RAM (4u << 20)
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

struct rig {
	struct guest_mem mem;
	struct virtio_device *vdev;
	char path[64];
	uint16_t next_desc, avail_idx;
	uint64_t data_next;
	bool started;
	unsigned int irqs, config_irqs;
};

static struct rig rig;

static void notify_queue(struct virtio_device *vdev, unsigned int q)
{
	(void)vdev;
	(void)q;
	__atomic_add_fetch(&rig.irqs, 1, __ATOMIC_SEQ_CST);
}

static void notify_config(struct virtio_device *vdev)
{
	(void)vdev;
	__atomic_add_fetch(&rig.config_irqs, 1, __ATOMIC_SEQ_CST);
}

static const struct virtio_transport_ops transport = {
	.notify_queue = notify_queue,
	.notify_config = notify_config,
};

static uint8_t *gp(uint64_t gpa)
{
	return rig.mem.host + gpa;
}

/* Guest RAM for a buffer. */
static uint64_t alloc_buf(uint32_t len)
{
	uint64_t gpa = rig.data_next;

	rig.data_next += (len + 4095) & ~4095u;
	assert_true(rig.data_next < RAM);
	return gpa;
}

static uint16_t add_chain(const struct seg *s, unsigned int n)
{
	uint16_t head = rig.next_desc % QSIZE;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint8_t *d = gp(DESC_GPA + 16u * ((head + i) % QSIZE));
		uint16_t flags = (s[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);

		le64_put(d, s[i].gpa);
		le32_put(d + 8, s[i].len);
		le16_put(d + 12, flags);
		le16_put(d + 14, (uint16_t)((head + i + 1) % QSIZE));
	}
	rig.next_desc = (uint16_t)(rig.next_desc + n);
	le16_put(gp(AVAIL_GPA + 4 + 2u * (rig.avail_idx % QSIZE)), head);
	rig.avail_idx++;
	__atomic_store_n((uint16_t *)gp(AVAIL_GPA + 2), rig.avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void kick(void)
{
	pthread_mutex_lock(&rig.vdev->lock);
	if (virtio_running(rig.vdev))
		rig.vdev->ops->queue_notify(rig.vdev, 0);
	pthread_mutex_unlock(&rig.vdev->lock);
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)gp(USED_GPA + 2), __ATOMIC_ACQUIRE);
}

static void wait_used(uint16_t want)
{
	int i;

	for (i = 0; i < 5000 && used_idx() != want; i++)
		usleep(1000);
	if (used_idx() != want)
		fail_msg("used index %u, expected %u", used_idx(), want);
}

/* The used element for the n-th completion: id and len. */
static void used_elem(uint16_t n, uint32_t *id, uint32_t *len)
{
	uint8_t *u = gp(USED_GPA + 4 + 8u * (n % QSIZE));

	*id = le32_get(u);
	*len = le32_get(u + 4);
}

/* A request: header, data (out or in), status; returns the status gpa. */
static uint64_t request(uint32_t type, uint64_t sector, uint64_t data, uint32_t len, bool in)
{
	uint64_t h = alloc_buf(16), st = alloc_buf(1);
	struct seg s[3];
	unsigned int n = 0;

	hdr(gp(h), type, sector);
	*gp(st) = 0xff;
	s[n++] = (struct seg){ h, 16, false };
	if (len)
		s[n++] = (struct seg){ data, len, in };
	s[n++] = (struct seg){ st, 1, true };
	add_chain(s, n);
	return st;
}

/* One field of the device's --stats-json object, as text ("3", "true"). */
static const char *stat_text(const char *key)
{
	static char out[32];
	char *buf = NULL, want[64];
	size_t len = 0;
	const char *p;
	struct jsonw j;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	jsonw_init(&j, f);
	jsonw_begin_object(&j, NULL);
	rig.vdev->ops->write_stats(rig.vdev, &j);
	jsonw_end_object(&j);
	assert_int_equal(fclose(f), 0);
	snprintf(want, sizeof(want), "\"%s\": ", key);
	p = strstr(buf, want);
	if (!p)
		fail_msg("no %s in the stats: %s", key, buf);
	p += strlen(want);
	snprintf(out, sizeof(out), "%.*s", (int)strcspn(p, ",\n}"), p);
	free(buf);
	return out;
}

static uint64_t stat_uint(const char *key)
{
	return strtoull(stat_text(key), NULL, 10);
}

/* What the transport does at DRIVER_OK, on fresh (zeroed) rings. */
static void map_queue(void)
{
	struct virtio_device *vdev = rig.vdev;
	struct virtq *q = &vdev->vq[0];

	memset(gp(0), 0, DATA_GPA);
	rig.next_desc = rig.avail_idx = 0;
	q->mem = &rig.mem;
	q->size = QSIZE;
	q->desc_gpa = DESC_GPA;
	q->avail_gpa = AVAIL_GPA;
	q->used_gpa = USED_GPA;
	q->indirect = true;
	assert_int_equal(virtq_map(q, &rig.mem), 0);
	q->ready = true;
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	assert_int_equal(vdev->ops->activate(vdev), 0);
}

static void start_device(uint64_t features_off)
{
	struct virtio_device *vdev = rig.vdev;

	pthread_mutex_init(&vdev->lock, NULL);
	vdev->mem = &rig.mem;
	vdev->transport = &transport;
	vdev->guest_features = vdev->host_features & ~features_off;
	assert_int_equal(ioloop_init(&vdev->loop, vdev->name), 0);
	map_queue();
	assert_int_equal(ioloop_start(&vdev->loop), 0);
	rig.started = true;
}

static int rig_setup(void **state)
{
	struct disk_config cfg;
	struct block_backend *backend;
	char arg[128];
	int fd;

	(void)state;
	memset(&rig, 0, sizeof(rig));
	strcpy(rig.path, "/tmp/vireo-vblk-XXXXXX");
	fd = mkstemp(rig.path);
	if (fd < 0 || ftruncate(fd, CAPACITY * 512) < 0)
		return -1;
	close(fd);
	snprintf(arg, sizeof(arg), "path=%s,serial=SN-42", rig.path);
	if (parse_disk_option(arg, &cfg) < 0 || guest_mem_map(&rig.mem, RAM) < 0)
		return -1;
	/* As the VMM does: the options open a backend, the device gets it. */
	backend = block_open(&cfg.block);
	if (!backend)
		return -1;
	rig.vdev = virtio_blk_create(backend, cfg.serial, 3);
	if (!rig.vdev) {
		block_close(backend);
		return -1;
	}
	rig.data_next = DATA_GPA;
	return 0;
}

static int rig_teardown(void **state)
{
	struct virtio_device *vdev = rig.vdev;

	(void)state;
	if (rig.started) {
		/* As the transport tears down: thread first, then reset. */
		ioloop_stop(&vdev->loop);
		pthread_mutex_lock(&vdev->lock);
		vdev->ops->reset(vdev);
		virtq_reset(&vdev->vq[0]);
		pthread_mutex_unlock(&vdev->lock);
		ioloop_destroy(&vdev->loop);
	}
	virtio_blk_destroy(vdev);
	guest_mem_unmap(&rig.mem);
	unlink(rig.path);
	return 0;
}

static void test_device_identity(void **state)
{
	struct virtio_device *vdev = rig.vdev;
	uint8_t cfg[72];
	uint64_t want = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
			1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
			1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
			1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_DISCARD |
			1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	unsigned int i;

	(void)state;
	assert_string_equal(vdev->name, "virtio-blk3");
	assert_int_equal(vdev->device_id, VIRTIO_ID_BLOCK);
	assert_int_equal(vdev->num_queues, 1);
	assert_int_equal(vdev->queue_max_size[0], 256);
	assert_int_equal(vdev->host_features, want);
	assert_int_equal(vdev->config_size, sizeof(cfg));
	/* Read byte by byte: any offset and size the transport allows. */
	for (i = 0; i < sizeof(cfg); i++)
		vdev->ops->config_read(vdev, i, &cfg[i], 1);
	assert_int_equal(le64_get(cfg), CAPACITY);
	assert_int_equal(le32_get(cfg + 8), VIRTIO_BLK_SIZE_MAX);
	assert_int_equal(le32_get(cfg + 12), VIRTQ_MAX_SEGS - 2);
	assert_int_equal(le32_get(cfg + 20), 512);
	assert_int_equal(le32_get(cfg + 36), VIRTIO_BLK_MAX_DISCARD_SECTORS);
	assert_int_equal(le32_get(cfg + 40), 1);
	assert_int_equal(le32_get(cfg + 44), VIRTIO_BLK_DISCARD_ALIGNMENT);
	assert_int_equal(le32_get(cfg + 48), VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS);
	assert_int_equal(le32_get(cfg + 52), 1);
	assert_int_equal(cfg[56], 1);
	/* Writes change nothing. */
	memset(cfg, 0xaa, 8);
	vdev->ops->config_write(vdev, 0, cfg, 8);
	vdev->ops->config_read(vdev, 0, cfg, 8);
	assert_int_equal(le64_get(cfg), CAPACITY);
}

static void test_device_requests(void **state)
{
	uint64_t wdata = alloc_buf(8192), rdata = alloc_buf(8192), id = alloc_buf(32);
	uint64_t st[8], h, rst;
	uint32_t uid, ulen;
	uint8_t file[8192];
	uint16_t heads[8];
	unsigned int i;
	int fd;

	(void)state;
	start_device(0);
	for (i = 0; i < 8192; i++)
		gp(wdata)[i] = (uint8_t)(i * 13 + 5);

	/* A write, a flush and a read of what was written. */
	heads[0] = rig.next_desc % QSIZE;
	st[0] = request(VIRTIO_BLK_T_OUT, 16, wdata, 8192, false);
	kick();
	wait_used(1);
	assert_int_equal(*gp(st[0]), VIRTIO_BLK_S_OK);
	used_elem(0, &uid, &ulen);
	assert_int_equal(uid, heads[0]);
	assert_int_equal(ulen, 1);
	/* The driver took VIRTIO_BLK_F_FLUSH: a write is answered from the
	 * page cache, no fdatasync until the driver asks for one. */
	assert_string_equal(stat_text("write_through"), "false");
	assert_string_equal(stat_text("direct"), "false"); /* cache=writeback */
	assert_int_equal(stat_uint("fdatasyncs"), 0);
	assert_int_equal(stat_uint("flushes"), 0);
	st[1] = request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick();
	wait_used(2);
	assert_int_equal(*gp(st[1]), VIRTIO_BLK_S_OK);
	/* The FLUSH was answered only after the image's fdatasync. */
	assert_int_equal(stat_uint("flushes"), 1);
	assert_int_equal(stat_uint("fdatasyncs"), 1);
	assert_int_equal(stat_uint("durable_writes"), 0);

	/* The read's data split over two buffers, the status in a third. */
	h = alloc_buf(16);
	rst = alloc_buf(1);
	hdr(gp(h), VIRTIO_BLK_T_IN, 16);
	{
		struct seg s[4] = { { h, 16, false }, { rdata, 3072, true },
				    { rdata + 3072, 5120, true }, { rst, 1, true } };

		heads[2] = add_chain(s, 4);
	}
	kick();
	wait_used(3);
	assert_int_equal(*gp(rst), VIRTIO_BLK_S_OK);
	used_elem(2, &uid, &ulen);
	assert_int_equal(uid, heads[2]);
	assert_int_equal(ulen, 8192 + 1);
	assert_memory_equal(gp(rdata), gp(wdata), 8192);

	/* The data really is in the image. */
	fd = open(rig.path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, file, sizeof(file), 16 * 512), 8192);
	close(fd);
	assert_memory_equal(file, gp(wdata), 8192);

	/* GET_ID: the serial, zero-padded to 20 bytes. */
	memset(gp(id), 0xee, 32);
	st[3] = request(VIRTIO_BLK_T_GET_ID, 0, id, 20, true);
	kick();
	wait_used(4);
	assert_int_equal(*gp(st[3]), VIRTIO_BLK_S_OK);
	assert_memory_equal(gp(id), "SN-42\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	used_elem(3, &uid, &ulen);
	assert_int_equal(ulen, 21);

	/* Refused requests, in one batch: unknown type, past the end. */
	st[4] = request(10, 0, rdata, 512, true);
	st[5] = request(VIRTIO_BLK_T_IN, CAPACITY, rdata, 512, true);
	st[6] = request(VIRTIO_BLK_T_OUT, CAPACITY - 1, wdata, 1024, false);
	kick();
	wait_used(7);
	assert_int_equal(*gp(st[4]), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(*gp(st[5]), VIRTIO_BLK_S_IOERR);
	assert_int_equal(*gp(st[6]), VIRTIO_BLK_S_IOERR);
	for (i = 4; i < 7; i++) {
		used_elem((uint16_t)i, &uid, &ulen);
		assert_int_equal(ulen, 1);
	}

	/* DISCARD and WRITE_ZEROES (with and without unmap) read back as
	 * zeroes. */
	{
		uint64_t seg = alloc_buf(16), zst;
		struct seg s[3];
		uint32_t types[3] = { VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
				      VIRTIO_BLK_T_WRITE_ZEROES };
		uint32_t flags[3] = { 0, 0, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP };
		uint16_t n = 7;

		for (i = 0; i < 3; i++) {
			st[0] = request(VIRTIO_BLK_T_OUT, 16, wdata, 8192, false);
			h = alloc_buf(16);
			zst = alloc_buf(1);
			hdr(gp(h), types[i], 0);
			segment(gp(seg), 16 + 2 * i, 4, flags[i]);
			s[0] = (struct seg){ h, 16, false };
			s[1] = (struct seg){ seg, 16, false };
			s[2] = (struct seg){ zst, 1, true };
			kick();
			wait_used(++n);
			add_chain(s, 3);
			kick();
			wait_used(++n);
			assert_int_equal(*gp(zst), VIRTIO_BLK_S_OK);
			memset(gp(rdata), 0xee, 8192);
			rst = request(VIRTIO_BLK_T_IN, 16, rdata, 8192, true);
			kick();
			wait_used(++n);
			assert_int_equal(*gp(rst), VIRTIO_BLK_S_OK);
			assert_memory_equal(gp(rdata), gp(wdata), 1024 * i);
			for (unsigned int k = 1024 * i; k < 1024 * i + 2048; k++)
				if (gp(rdata)[k])
					fail_msg("type %u: byte %u not zero", types[i], k);
			assert_memory_equal(gp(rdata) + 1024 * i + 2048, gp(wdata) + 1024 * i + 2048,
					    8192 - 1024 * i - 2048);
		}
	}
	/* Interrupts: some, but never more than completions. */
	{
		unsigned int irqs = __atomic_load_n(&rig.irqs, __ATOMIC_SEQ_CST);

		assert_true(irqs >= 1);
		assert_true(irqs <= used_idx());
	}
	assert_int_equal(__atomic_load_n(&rig.config_irqs, __ATOMIC_SEQ_CST), 0);
}

/* A driver that did not take VIRTIO_BLK_F_FLUSH gets write-through (each
 * write followed by an fdatasync before it is answered, counted by the
 * backend where it issues it), and no DISCARD. */
static void test_device_write_through(void **state)
{
	uint64_t wdata = alloc_buf(4096), rdata = alloc_buf(4096), seg = alloc_buf(16);
	uint64_t h = alloc_buf(16), st, zst = alloc_buf(1);
	struct seg s[3] = { { h, 16, false }, { seg, 16, false }, { zst, 1, true } };

	(void)state;
	start_device(1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_DISCARD);
	memset(gp(wdata), 0x5a, 4096);
	st = request(VIRTIO_BLK_T_OUT, 100, wdata, 4096, false);
	hdr(gp(h), VIRTIO_BLK_T_DISCARD, 0);
	segment(gp(seg), 0, 8, 0);
	add_chain(s, 3);
	kick();
	wait_used(2);
	assert_int_equal(*gp(st), VIRTIO_BLK_S_OK);
	assert_int_equal(*gp(zst), VIRTIO_BLK_S_UNSUPP);
	/* The write was answered after an fdatasync of its own, with no
	 * FLUSH from the driver; the refused DISCARD synced nothing. */
	assert_string_equal(stat_text("write_through"), "true");
	assert_int_equal(stat_uint("durable_writes"), 1);
	assert_int_equal(stat_uint("fdatasyncs"), 1);
	assert_int_equal(stat_uint("flushes"), 0);
	/* A read needs no sync; the next write gets one more. */
	st = request(VIRTIO_BLK_T_IN, 100, rdata, 4096, true);
	kick();
	wait_used(3);
	assert_int_equal(*gp(st), VIRTIO_BLK_S_OK);
	assert_memory_equal(gp(rdata), gp(wdata), 4096);
	assert_int_equal(stat_uint("fdatasyncs"), 1);
	st = request(VIRTIO_BLK_T_OUT, 200, wdata, 4096, false);
	kick();
	wait_used(4);
	assert_int_equal(*gp(st), VIRTIO_BLK_S_OK);
	assert_int_equal(stat_uint("durable_writes"), 2);
	assert_int_equal(stat_uint("fdatasyncs"), 2);
}

/* A chain pointing outside guest RAM: DEVICE_NEEDS_RESET and a config
 * interrupt, nothing used; then a reset brings the device back. */
static void test_device_malformed_chain(void **state)
{
	struct virtio_device *vdev = rig.vdev;
	uint64_t h = alloc_buf(16), st = alloc_buf(1);
	struct seg bad[3] = { { h, 16, false }, { RAM - 100, 4096, true }, { st, 1, true } };

	(void)state;
	start_device(0);
	hdr(gp(h), VIRTIO_BLK_T_IN, 0);
	add_chain(bad, 3);
	kick();
	assert_true(vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(__atomic_load_n(&rig.config_irqs, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(used_idx(), 0);
	/* Further kicks are ignored until the reset. */
	kick();
	assert_int_equal(used_idx(), 0);
}

/* Reset with requests in flight: reset() returns only once they are done,
 * so none of them lands in the rings of the driver's next start, which
 * here follows at once. */
static void test_device_reset_in_flight(void **state)
{
	struct virtio_device *vdev = rig.vdev;
	uint64_t data = alloc_buf(65536 * 4);
	unsigned int i, round;

	(void)state;
	start_device(0);
	for (round = 0; round < 20; round++) {
		for (i = 0; i < QSIZE / 3; i++) /* 3 descriptors each */
			request(i % 2 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, i * 128,
				data + (i % 4) * 65536, 65536, !(i % 2));
		pthread_mutex_lock(&vdev->lock);
		vdev->ops->queue_notify(vdev, 0);
		vdev->ops->reset(vdev);
		virtq_reset(&vdev->vq[0]);
		vdev->status = 0;
		map_queue();
		pthread_mutex_unlock(&vdev->lock);
		usleep(2000);
		assert_int_equal(used_idx(), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_read),
		cmocka_unit_test(test_parse_split_header),
		cmocka_unit_test(test_parse_status_location),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_flush_get_id),
		cmocka_unit_test(test_parse_discard_write_zeroes),
		cmocka_unit_test_setup_teardown(test_device_identity, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_device_requests, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_device_write_through, rig_setup,
						rig_teardown),
		cmocka_unit_test_setup_teardown(test_device_malformed_chain, rig_setup,
						rig_teardown),
		cmocka_unit_test_setup_teardown(test_device_reset_in_flight, rig_setup,
						rig_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
