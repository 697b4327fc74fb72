/* virtio-blk (VirtIO 1.2, 5.2): one request queue served asynchronously
 * by a block backend. The I/O thread takes chains off the ring, checks
 * them (virtio_blk_req.c) and submits them; completions come back through
 * the backend's eventfd, in the same thread, and are returned to the
 * driver with one interrupt per batch. */
#include "virtio/virtio_blk.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "block/block.h"
#include "util/log.h"
#include "virtio/virtio_blk_req.h"
#include "util/iov.h"

#define QUEUE_SIZE 256

/* 5.2.4, little-endian like the host. */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors;
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
};

_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36,
	       "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56,
	       "virtio_blk_config layout");
_Static_assert(sizeof(struct virtio_blk_config) == 72, "virtio_blk_config layout");

struct virtio_blk;

/* A request between virtq_pop() and virtq_push(): its chain (whose iovecs
 * the backend reads and writes), the parsed request and the backend's. */
struct blk_request {
	struct virtio_blk *blk;
	struct block_req io;
	struct virtio_blk_req req;
	uint32_t used_len;  /* bytes written into the in buffers, status aside */
	bool flush_after;   /* write-through: a FLUSH follows the write */
	bool flushed_after; /* write-through: that FLUSH was issued */
	struct blk_request *next_free;
	struct virtq_elem elem;
};

struct virtio_blk {
	struct virtio_device vdev;
	struct block_backend *backend;
	struct virtio_blk_config config;
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	char name[24];
	struct ioloop_watch watch;
	bool watching;	     /* completion fd is in vdev.loop */
	bool write_through;  /* the driver did not take VIRTIO_BLK_F_FLUSH */
	bool dropping;	     /* reset: completions must not touch the queue */
	bool notify_pending; /* used buffers the driver has not been told of */
	unsigned int outstanding; /* requests taken from the pool */
	uint64_t requests, read_bytes, written_bytes; /* completed, for --stats-json */
	uint64_t flushes;	 /* VIRTIO_BLK_T_FLUSH answered OK */
	uint64_t durable_writes; /* write-through: answered OK after their fdatasync */
	/* One record per queue entry: a driver cannot have more chains in
	 * flight than its ring holds, so running out means it broke the
	 * rules, and the fast path never allocates. Records are taken from
	 * the free list, else from those never used yet (pool[pool_fresh..]):
	 * the pool is ~3 MiB, and a record's pages are backed by host memory
	 * only once a driver has had that many requests in flight. */
	struct blk_request *free;
	unsigned int pool_fresh;
	struct blk_request pool[QUEUE_SIZE];
};

static struct virtio_blk *to_blk(struct virtio_device *vdev)
{
	return (struct virtio_blk *)vdev;
}

static struct blk_request *get_request(struct virtio_blk *blk)
{
	struct blk_request *f = blk->free;

	if (f) {
		blk->free = f->next_free;
	} else if (blk->pool_fresh < QUEUE_SIZE) {
		f = &blk->pool[blk->pool_fresh++];
		f->blk = blk;
	} else {
		return NULL;
	}
	blk->outstanding++;
	return f;
}

static void put_request(struct virtio_blk *blk, struct blk_request *f)
{
	f->next_free = blk->free;
	blk->free = f;
	blk->outstanding--;
}

static void flush_notify(struct virtio_blk *blk)
{
	if (blk->notify_pending) {
		blk->notify_pending = false;
		virtio_notify(&blk->vdev, 0);
	}
}

/* Gives the chain back with its status, unless the queue went away (reset,
 * or NEEDS_RESET) while the request was in flight. */
static void complete(struct virtio_blk *blk, struct blk_request *f, uint8_t status)
{
	struct virtio_device *vdev = &blk->vdev;
	struct virtq *vq = &vdev->vq[0];

	if (!blk->dropping && virtio_running(vdev) && vq->ready) {
		uint64_t used = 0;

		if (f->req.status) {
			*(volatile uint8_t *)f->req.status = status;
			used = (status == VIRTIO_BLK_S_OK ? f->used_len : 0) + 1ULL;
		}
		virtq_push(vq, f->elem.head, used > UINT32_MAX ? UINT32_MAX : (uint32_t)used);
		blk->notify_pending = true;
		blk->requests++;
		if (status == VIRTIO_BLK_S_OK && f->req.type == VIRTIO_BLK_T_IN)
			blk->read_bytes += f->req.data_len;
		else if (status == VIRTIO_BLK_S_OK && f->req.type == VIRTIO_BLK_T_OUT)
			blk->written_bytes += f->req.data_len;
		if (status == VIRTIO_BLK_S_OK && f->req.type == VIRTIO_BLK_T_FLUSH)
			blk->flushes++;
		if (status == VIRTIO_BLK_S_OK && f->flushed_after)
			blk->durable_writes++;
	}
	put_request(blk, f);
}

static void request_done(struct block_req *io, int64_t result)
{
	struct blk_request *f = io->opaque;
	struct virtio_blk *blk = f->blk;

	if (result >= 0 && f->flush_after && !blk->dropping) {
		f->flush_after = false;
		f->flushed_after = true;
		io->op = BLOCK_FLUSH;
		if (block_submit(blk->backend, io) == 0)
			return;
		result = -EIO;
	}
	if (result >= 0 && f->req.type == VIRTIO_BLK_T_IN)
		f->used_len = (uint32_t)(f->req.data_len > UINT32_MAX ? UINT32_MAX : f->req.data_len);
	complete(blk, f, result < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

/* Features the driver did not accept are requests it should not send. */
static bool type_negotiated(const struct virtio_device *vdev, uint32_t type)
{
	if (type == VIRTIO_BLK_T_DISCARD)
		return virtio_has_feature(vdev, VIRTIO_BLK_F_DISCARD);
	if (type == VIRTIO_BLK_T_WRITE_ZEROES)
		return virtio_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES);
	return true;
}

static void start_request(struct virtio_blk *blk, struct blk_request *f)
{
	struct virtio_blk_req *r = &f->req;
	struct block_req *io = &f->io;
	uint8_t status;

	f->used_len = 0;
	f->flush_after = f->flushed_after = false;
	status = virtio_blk_parse(&f->elem, blk->config.capacity, block_read_only(blk->backend), r);
	if (status == VIRTIO_BLK_S_OK && !type_negotiated(&blk->vdev, r->type))
		status = VIRTIO_BLK_S_UNSUPP;
	if (status != VIRTIO_BLK_S_OK) {
		complete(blk, f, status);
		return;
	}
	memset(io, 0, sizeof(*io));
	io->done = request_done;
	io->opaque = f;
	switch (r->type) {
	case VIRTIO_BLK_T_GET_ID:
		f->used_len = (uint32_t)iov_from_buf(r->data, r->data_cnt, 0, blk->id,
						     (size_t)r->data_len);
		complete(blk, f, VIRTIO_BLK_S_OK);
		return;
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		io->op = r->type == VIRTIO_BLK_T_IN ? BLOCK_READ : BLOCK_WRITE;
		io->offset = r->sector * VIRTIO_BLK_SECTOR_SIZE;
		io->iov = r->data;
		io->iovcnt = r->data_cnt;
		break;
	case VIRTIO_BLK_T_FLUSH:
		io->op = BLOCK_FLUSH;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		/* Our discard reads back as zeroes, so it is a valid way to
		 * write zeroes when the driver allows unmapping. */
		io->op = r->type == VIRTIO_BLK_T_DISCARD || r->unmap ? BLOCK_DISCARD
								     : BLOCK_WRITE_ZEROES;
		io->offset = r->sector * VIRTIO_BLK_SECTOR_SIZE;
		io->len = (uint64_t)r->num_sectors * VIRTIO_BLK_SECTOR_SIZE;
		break;
	}
	f->flush_after = blk->write_through && io->op != BLOCK_READ && io->op != BLOCK_FLUSH;
	if (block_submit(blk->backend, io) < 0)
		complete(blk, f, VIRTIO_BLK_S_IOERR);
}

/* Takes every available chain. false: the driver broke the rules and the
 * device now needs a reset. */
static bool drain_ring(struct virtio_blk *blk, struct virtq *vq)
{
	for (;;) {
		struct blk_request *f = get_request(blk);
		int r;

		if (!f) {
			if (virtq_empty(vq))
				return true;
			virtio_set_needs_reset(&blk->vdev,
					       "more requests in flight than the queue has entries");
			return false;
		}
		r = virtq_pop(vq, &f->elem);
		if (r <= 0) {
			put_request(blk, f);
			if (r < 0)
				virtio_set_needs_reset(&blk->vdev, "malformed descriptor chain");
			return r == 0;
		}
		start_request(blk, f);
	}
}

static void blk_queue_notify(struct virtio_device *vdev, unsigned int q)
{
	struct virtio_blk *blk = to_blk(vdev);
	struct virtq *vq = &vdev->vq[0];
	bool ok;

	if (q != 0 || !vq->ready)
		return;
	/* Submissions go to the kernel together, once the ring is empty. */
	block_plug(blk->backend);
	do {
		virtq_disable_notify(vq);
		ok = drain_ring(blk, vq);
	} while (ok && virtq_enable_notify(vq));
	block_unplug(blk->backend);
	flush_notify(blk);
}

/* The backend's completion fd is readable (I/O thread). */
static void blk_completions(void *ctx, uint32_t events)
{
	struct virtio_blk *blk = ctx;

	(void)events;
	pthread_mutex_lock(&blk->vdev.lock);
	block_process_completions(blk->backend);
	flush_notify(blk);
	pthread_mutex_unlock(&blk->vdev.lock);
}

static int blk_activate(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	blk->write_through = !virtio_has_feature(vdev, VIRTIO_BLK_F_FLUSH);
	/* Registered once and kept across resets: the fd stays the same. */
	if (!blk->watching) {
		if (ioloop_add(&vdev->loop, &blk->watch, block_completion_fd(blk->backend), EPOLLIN,
			       blk_completions, blk) < 0)
			return -1;
		blk->watching = true;
	}
	return 0;
}

/* No buffer of the old queue may be touched once this returns: wait for
 * everything in flight and drop the results. */
static void blk_reset(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	blk->dropping = true;
	block_drain(blk->backend);
	blk->dropping = false;
	blk->notify_pending = false;
}

static void blk_config_read(struct virtio_device *vdev, uint32_t offset, void *data, uint32_t size)
{
	memcpy(data, (const uint8_t *)&to_blk(vdev)->config + offset, size);
}

/* Only the writeback field is writable, and only with CONFIG_WCE, which
 * is not offered. */
static void blk_config_write(struct virtio_device *vdev, uint32_t offset, const void *data,
			     uint32_t size)
{
	(void)vdev;
	(void)offset;
	(void)data;
	(void)size;
}

static void blk_write_stats(struct virtio_device *vdev, struct jsonw *j)
{
	struct virtio_blk *blk = to_blk(vdev);

	jsonw_uint(j, "requests", blk->requests);
	jsonw_uint(j, "read_bytes", blk->read_bytes);
	jsonw_uint(j, "written_bytes", blk->written_bytes);
	/* How writes become durable (README, --stats-json): FLUSH requests,
	 * the fdatasyncs the backend really issued for them or for
	 * write-through, and whether cache=none got O_DIRECT. */
	jsonw_uint(j, "flushes", blk->flushes);
	jsonw_uint(j, "fdatasyncs", block_fdatasyncs(blk->backend));
	jsonw_bool(j, "write_through", blk->write_through);
	jsonw_uint(j, "durable_writes", blk->durable_writes);
	jsonw_bool(j, "direct", block_direct(blk->backend));
	/* Where a request the guest waits for is (a hung guest's first
	 * question): taken from the ring and not answered yet, of them in
	 * the backend's hands, and whether answered ones await their
	 * interrupt. Read from another thread: a snapshot, not exact. */
	jsonw_uint(j, "outstanding", __atomic_load_n(&blk->outstanding, __ATOMIC_RELAXED));
	jsonw_uint(j, "backend_in_flight", block_in_flight(blk->backend));
	jsonw_bool(j, "notify_pending", __atomic_load_n(&blk->notify_pending, __ATOMIC_RELAXED));
}

/* Requests not answered yet, and used entries the driver was not told of
 * (pause waits for both). */
static unsigned int blk_in_flight(struct virtio_device *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	return blk->outstanding + (blk->notify_pending ? 1 : 0);
}

static const struct virtio_device_ops blk_ops = {
	.in_flight = blk_in_flight,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.write_stats = blk_write_stats,
	.destroy = virtio_blk_destroy,
};

static void fill_config(struct virtio_blk *blk)
{
	struct virtio_blk_config *c = &blk->config;

	c->capacity = block_size(blk->backend) / VIRTIO_BLK_SECTOR_SIZE;
	c->size_max = VIRTIO_BLK_SIZE_MAX;
	c->seg_max = VIRTIO_BLK_SEG_MAX;
	c->blk_size = VIRTIO_BLK_SECTOR_SIZE;
	c->num_queues = 1;
	c->max_discard_sectors = VIRTIO_BLK_MAX_DISCARD_SECTORS;
	c->max_discard_seg = VIRTIO_BLK_MAX_DWZ_SEG;
	c->discard_sector_alignment = VIRTIO_BLK_DISCARD_ALIGNMENT;
	c->max_write_zeroes_sectors = VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS;
	c->max_write_zeroes_seg = VIRTIO_BLK_MAX_DWZ_SEG;
	c->write_zeroes_may_unmap = 1;
}

struct virtio_device *virtio_blk_create(struct block_backend *backend, const char *serial,
					unsigned int index)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));

	if (!blk) {
		log_error("virtio-blk%u: out of memory", index);
		return NULL;
	}
	blk->backend = backend;
	snprintf(blk->name, sizeof(blk->name), "virtio-blk%u", index);
	if (serial)
		memcpy(blk->id, serial, strnlen(serial, VIRTIO_BLK_ID_BYTES));
	fill_config(blk);

	blk->vdev.name = blk->name;
	blk->vdev.device_id = VIRTIO_ID_BLOCK;
	blk->vdev.host_features =
		1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
		1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
		1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
		1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_DISCARD |
		1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	if (block_read_only(blk->backend))
		blk->vdev.host_features |= 1ULL << VIRTIO_BLK_F_RO;
	blk->vdev.config_size = sizeof(blk->config);
	blk->vdev.num_queues = 1;
	blk->vdev.queue_max_size[0] = QUEUE_SIZE;
	blk->vdev.ops = &blk_ops;
	log_debug("%s: '%s', %llu sectors, engine %s", blk->name, block_path(backend),
		  (unsigned long long)blk->config.capacity, block_engine_name(blk->backend));
	return &blk->vdev;
}

struct block_backend *virtio_blk_backend(const struct virtio_device *vdev)
{
	return vdev->ops == &blk_ops ? ((const struct virtio_blk *)vdev)->backend : NULL;
}

void virtio_blk_destroy(struct virtio_device *vdev)
{
	struct virtio_blk *blk;

	if (!vdev)
		return;
	blk = to_blk(vdev);
	/* The transport is gone: nothing may reach the queue any more. */
	blk->dropping = true;
	block_close(blk->backend);
	free(blk);
}
