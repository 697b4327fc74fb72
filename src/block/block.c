/* The block layer's entry points: opening a disk as a chain of nodes (a
 * format over a protocol), the checks every request gets whatever the
 * node, and the dispatch to the node's driver. */
#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_driver.h"
#include "block/completions.h"
#include "block/file.h"
#include "block/nbd.h"
#include "block/rbd.h"
#include "block/qcow2.h"
#include "util/iov.h"
#include "util/log.h"

const char *block_printable(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size && i < 200; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = 0;
	if (s[i] && size > 4 && i > 3)
		memcpy(buf + i - 3, "...", 3);
	return buf;
}

/* The file's place in the chain: refused when it is one of the images
 * above it already. */
static int enter_chain(const struct block_options *o, struct block_chain *chain)
{
	char name[208];
	struct stat st;
	unsigned int i;

	if (o->protocol != BLOCK_PROTO_FILE || stat(o->path, &st) < 0)
		return 0; /* opening says what is wrong */
	for (i = 0; i < chain->depth; i++) {
		if (chain->dev[i] == st.st_dev && chain->ino[i] == st.st_ino) {
			log_error("disk '%s': its backing chain comes back to an image above it (a "
				  "loop)", block_printable(o->path, name, sizeof(name)));
			return -1;
		}
	}
	if (chain->depth < BLOCK_CHAIN_MAX) {
		chain->dev[chain->depth] = st.st_dev;
		chain->ino[chain->depth] = st.st_ino;
	}
	chain->depth++;
	return 0;
}

static struct block_backend *open_node(const struct block_options *o, struct block_chain *chain)
{
	struct block_backend *file;
	uint8_t first[512];
	bool probed = !o->format;

	if (o->format && strcmp(o->format, "raw") && strcmp(o->format, "qcow2")) {
		log_error("disk '%s': unknown format '%s' (raw or qcow2)", o->path, o->format);
		return NULL;
	}
	if (enter_chain(o, chain) < 0)
		return NULL;
	if (o->protocol == BLOCK_PROTO_NBD)
		file = block_nbd_open(o);
	else if (o->protocol == BLOCK_PROTO_RBD)
		file = block_rbd_open(o);
	else if (o->format && !strcmp(o->format, "raw"))
		return block_file_open(o, false);
	else /* growable until it is known to be raw: a qcow2 file need not
	      * be a whole number of sectors */
		file = block_file_open(o, true);
	if (!file || (o->format && !strcmp(o->format, "raw")))
		return file;
	if (block_pread(file, first, sizeof(first), 0) < 0) {
		log_error("disk '%s': cannot read its first sector", o->path);
		block_close(file);
		return NULL;
	}
	if (!qcow2_probe(first, sizeof(first))) {
		if (!probed) {
			log_error("disk '%s' is not a qcow2 image (format=qcow2 was given)", o->path);
			block_close(file);
			return NULL;
		}
		if (o->protocol == BLOCK_PROTO_FILE && block_file_check_raw(file) < 0) {
			block_close(file);
			return NULL;
		}
		return file;
	}
	return qcow2_open(file, o, probed, chain);
}

/* snapshot=on: the image read-only under a temporary overlay. */
static struct block_backend *open_snapshot(const struct block_options *o)
{
	struct block_options ro = *o, tmp = *o;
	struct block_chain chain = { 0 };
	struct block_backend *base, *file;
	const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	char path[4096];
	int fd;

	ro.read_only = true;
	base = open_node(&ro, &chain);
	if (!base)
		return NULL;
	if (snprintf(path, sizeof(path), "%s/vireo-snapshot-XXXXXX", dir) >= (int)sizeof(path) ||
	    (fd = mkstemp(path)) < 0) {
		log_error("disk '%s': cannot create its temporary overlay in %s: %s", o->path, dir,
			  strerror(errno));
		block_close(base);
		return NULL;
	}
	close(fd);
	tmp.protocol = BLOCK_PROTO_FILE;
	tmp.path = path;
	tmp.read_only = false;
	tmp.defer_lock = false;
	file = block_file_open(&tmp, true);
	unlink(path); /* the open file lives on until Vireo closes it */
	if (!file) {
		block_close(base);
		return NULL;
	}
	return qcow2_open_overlay(file, o, base);
}

struct block_backend *block_open(const struct block_options *o)
{
	if (!o->path || !*o->path) {
		log_error("disk: no path given");
		return NULL;
	}
	struct block_chain chain = { 0 };

	return o->snapshot ? open_snapshot(o) : open_node(o, &chain);
}

struct block_backend *block_open_backing(const struct block_options *parent, const char *path,
					 const char *format, struct block_chain *chain)
{
	struct block_options o = *parent;

	o.protocol = BLOCK_PROTO_FILE; /* a backing file is a file */
	o.path = path;
	o.format = format;
	o.read_only = true;
	o.defer_lock = false; /* shared: the source of a migration holds it shared too */
	return open_node(&o, chain);
}

void block_close(struct block_backend *b)
{
	if (!b)
		return;
	block_drain(b);
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
	return b->drv->direct ? b->drv->direct(b) : false;
}

uint64_t block_fdatasyncs(const struct block_backend *b)
{
	return b->drv->fdatasyncs ? b->drv->fdatasyncs(b) : 0;
}

int block_lock(const struct block_backend *b)
{
	return b->drv->lock ? b->drv->lock(b) : 0;
}

void block_unlock(const struct block_backend *b)
{
	if (b->drv->unlock)
		b->drv->unlock(b);
}

int block_sync(struct block_backend *b)
{
	int64_t r;

	if (b->read_only)
		return 0;
	if (b->drv->sync)
		return b->drv->sync(b);
	r = b->drv->io_sync(b, BLOCK_FLUSH, 0, NULL, 0, 0);
	if (r < 0)
		errno = (int)-r;
	return r < 0 ? -1 : 0;
}

int block_completion_fd(const struct block_backend *b)
{
	return b->done ? completions_fd(b->done) : b->drv->completion_fd(b);
}

void block_process_completions(struct block_backend *b)
{
	if (b->done)
		completions_process(b->done);
	else
		b->drv->process_completions(b);
}

unsigned int block_in_flight(const struct block_backend *b)
{
	return b->done ? completions_in_flight(b->done) : b->drv->in_flight(b);
}

void block_drain(struct block_backend *b)
{
	if (b->done)
		completions_drain(b->done);
	else
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
	return offset % BLOCK_SECTOR_SIZE == 0 && len % BLOCK_SECTOR_SIZE == 0 &&
	       (b->growable || (len <= b->size && offset <= b->size - len));
}

/* What every node may assume of a request (block.h). */
static int check_request(const struct block_backend *b, const struct block_req *r)
{
	uint64_t bytes;

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
	int err = r->done ? check_request(b, r) : -EINVAL;

	return err ? err : b->drv->submit(b, r);
}

int64_t block_io_sync(struct block_backend *b, enum block_op op, uint64_t offset,
		      const struct iovec *iov, unsigned int iovcnt, uint64_t len)
{
	struct block_req r = { .op = op, .offset = offset, .iov = iov, .iovcnt = iovcnt,
			       .len = len };
	int err = check_request(b, &r);

	return err ? err : b->drv->io_sync(b, op, offset, iov, iovcnt, len);
}

int64_t block_io_nowait(struct block_backend *b, enum block_op op, uint64_t offset,
			const struct iovec *iov, unsigned int iovcnt)
{
	struct block_req r = { .op = op, .offset = offset, .iov = iov, .iovcnt = iovcnt };
	int err;

	if (!b->drv->io_nowait || (op != BLOCK_READ && op != BLOCK_WRITE))
		return -EAGAIN;
	err = check_request(b, &r);
	return err ? err : b->drv->io_nowait(b, op, offset, iov, iovcnt);
}

static int whole(int64_t res, uint64_t len)
{
	return res < 0 ? (int)res : (uint64_t)res == len ? 0 : -EIO;
}

int block_pread(struct block_backend *b, void *buf, uint64_t len, uint64_t offset)
{
	struct iovec iov = { buf, (size_t)len };

	return whole(block_io_sync(b, BLOCK_READ, offset, &iov, 1, 0), len);
}

int block_pwrite(struct block_backend *b, const void *buf, uint64_t len, uint64_t offset)
{
	struct iovec iov = { (void *)buf, (size_t)len };

	return whole(block_io_sync(b, BLOCK_WRITE, offset, &iov, 1, 0), len);
}
