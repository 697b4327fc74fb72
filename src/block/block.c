/* The block layer's entry points: opening a disk as a chain of nodes (a
 * format over a protocol), the checks every request gets whatever the
 * node, and the dispatch to the node's driver. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "block/block_driver.h"
#include "block/file.h"
#include "util/iov.h"
#include "util/log.h"

struct block_backend *block_open(const struct block_options *o)
{
	return block_file_open(o);
}

void block_close(struct block_backend *b)
{
	if (!b)
		return;
	b->drv->drain(b);
	b->drv->close(b);
}

uint64_t block_size(const struct block_backend *b)
{
	return b->size;
}

bool block_read_only(const struct block_backend *b)
{
	return b->read_only;
}

const char *block_path(const struct block_backend *b)
{
	return b->path;
}

const char *block_format(const struct block_backend *b)
{
	return b->drv == &block_file_driver ? "raw" : b->drv->name;
}

const char *block_engine_name(const struct block_backend *b)
{
	return b->drv->engine_name(b);
}

bool block_direct(const struct block_backend *b)
{
	return b->drv->direct(b);
}

uint64_t block_fdatasyncs(const struct block_backend *b)
{
	return b->drv->fdatasyncs(b);
}

int block_lock(const struct block_backend *b)
{
	return b->drv->lock(b);
}

void block_unlock(const struct block_backend *b)
{
	b->drv->unlock(b);
}

int block_sync(struct block_backend *b)
{
	return b->read_only ? 0 : b->drv->sync(b);
}

int block_completion_fd(const struct block_backend *b)
{
	return b->drv->completion_fd(b);
}

void block_process_completions(struct block_backend *b)
{
	b->drv->process_completions(b);
}

unsigned int block_in_flight(const struct block_backend *b)
{
	return b->drv->in_flight(b);
}

void block_drain(struct block_backend *b)
{
	b->drv->drain(b);
}

void block_plug(struct block_backend *b)
{
	if (b->drv->plug)
		b->drv->plug(b);
}

void block_unplug(struct block_backend *b)
{
	if (b->drv->unplug)
		b->drv->unplug(b);
}

static bool in_image(const struct block_backend *b, uint64_t offset, uint64_t len)
{
	return offset % BLOCK_SECTOR_SIZE == 0 && len % BLOCK_SECTOR_SIZE == 0 && len <= b->size &&
	       offset <= b->size - len;
}

/* What every node may assume of a request (block.h). */
static int check_request(const struct block_backend *b, const struct block_req *r)
{
	uint64_t bytes;

	if (!r->done)
		return -EINVAL;
	switch (r->op) {
	case BLOCK_READ:
	case BLOCK_WRITE:
		if (r->op == BLOCK_WRITE && b->read_only)
			return -EROFS;
		if (r->iovcnt > IOV_MAX || (r->iovcnt && !r->iov))
			return -EINVAL;
		/* iov_size saturates, and no real list adds up to SIZE_MAX. */
		bytes = iov_size(r->iov, r->iovcnt);
		return bytes != SIZE_MAX && in_image(b, r->offset, bytes) ? 0 : -EINVAL;
	case BLOCK_FLUSH:
		return 0;
	case BLOCK_DISCARD:
	case BLOCK_WRITE_ZEROES:
		if (b->read_only)
			return -EROFS;
		return in_image(b, r->offset, r->len) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

int block_submit(struct block_backend *b, struct block_req *r)
{
	int err = check_request(b, r);

	return err ? err : b->drv->submit(b, r);
}
