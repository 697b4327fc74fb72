/* Requests on an image file, whatever the engine: bounce buffers for
 * O_DIRECT, short transfers, the fallbacks of DISCARD and WRITE_ZEROES,
 * and the done() callbacks in the caller's thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "block/file.h"
#include "util/eventfd.h"
#include "util/iov.h"

#define MAX_RETRIES 1000 /* -EAGAIN/-EINTR in a row before giving up */

static const char *file_engine_name(const struct block_backend *bb)
{
	const struct block_file *b = (const struct block_file *)bb;
	return b->engine->name;
}

static int file_completion_fd(const struct block_backend *bb)
{
	const struct block_file *b = (const struct block_file *)bb;
	return b->event_fd;
}

static unsigned int file_in_flight(const struct block_backend *bb)
{
	const struct block_file *b = (const struct block_file *)bb;
	return __atomic_load_n(&b->in_flight, __ATOMIC_ACQUIRE);
}

static bool file_direct(const struct block_backend *bb)
{
	const struct block_file *b = (const struct block_file *)bb;
	return b->direct;
}

static uint64_t file_fdatasyncs(const struct block_backend *bb)
{
	const struct block_file *b = (const struct block_file *)bb;
	return __atomic_load_n(&b->fdatasyncs, __ATOMIC_RELAXED);
}

static int file_sync(struct block_backend *bb)
{
	const struct block_file *b = (const struct block_file *)bb;
	return b->base.read_only ? 0 : fdatasync(b->fd);
}

void file_count_fdatasync(struct block_file *b, int64_t res)
{
	if (res >= 0)
		__atomic_add_fetch(&b->fdatasyncs, 1, __ATOMIC_RELAXED);
}

void file_signal(struct block_file *b)
{
	eventfd_signal(b->event_fd);
}

static bool finish(struct block_io *io, int64_t result)
{
	io->result = result;
	return true;
}

/* Whether fallocate's answer means "this mode is not implemented here"
 * rather than a real I/O error: the range itself was checked already. */
static bool unsupported(int64_t res)
{
	return res == -EOPNOTSUPP || res == -EINVAL || res == -ENOSYS || res == -ENODEV;
}

/* The next zero-filling write: up to BLOCK_ZERO_IOVS chunks, all pointing
 * at the one zero buffer. */
static bool zero_fill_prepare(struct block_file *b, struct block_io *io)
{
	uint64_t left = io->remaining;
	unsigned int n = 0;

	if (!io->iov_copy) {
		io->iov_copy = malloc(BLOCK_ZERO_IOVS * sizeof(*io->iov_copy));
		if (!io->iov_copy)
			return false;
	}
	while (left && n < BLOCK_ZERO_IOVS) {
		size_t k = left < BLOCK_ZERO_CHUNK ? left : BLOCK_ZERO_CHUNK;

		io->iov_copy[n].iov_base = b->zero_buf;
		io->iov_copy[n].iov_len = k;
		left -= k;
		n++;
	}
	io->iov = io->iov_copy;
	io->iovcnt = n;
	io->iov_owned = true;
	return true;
}

/* Drops the first n bytes from io's iovecs, copying the caller's array the
 * first time (it is const, and shared with the caller). */
static bool advance_iov(struct block_io *io, uint64_t n)
{
	if (!io->iov_owned) {
		io->iov_copy = malloc(io->iovcnt * sizeof(*io->iov_copy));
		if (!io->iov_copy)
			return false;
		memcpy(io->iov_copy, io->iov, io->iovcnt * sizeof(*io->iov_copy));
		io->iov = io->iov_copy;
		io->iov_owned = true;
	}
	iov_drop_front(&io->iov, &io->iovcnt, (size_t)n);
	/* Skip empty iovecs so the next step never transfers nothing. */
	while (io->iovcnt && !io->iov[0].iov_len) {
		io->iov++;
		io->iovcnt--;
	}
	return true;
}

static int64_t zero_rest(struct block_io *io)
{
	uint64_t left = io->remaining;
	unsigned int i;

	for (i = 0; i < io->iovcnt && left; i++) {
		size_t n = io->iov[i].iov_len < left ? io->iov[i].iov_len : (size_t)left;

		memset(io->iov[i].iov_base, 0, n);
		left -= n;
	}
	return (int64_t)(io->transferred + io->remaining);
}

bool file_io_step_done(struct block_file *b, struct block_io *io, int64_t res)
{
	if (res == -EINTR || res == -EAGAIN) {
		if (++io->retries < MAX_RETRIES)
			return false;
		res = -EIO;
	}
	io->retries = 0;
	switch (io->op) {
	case BLOCK_READ:
	case BLOCK_WRITE:
		if (res < 0)
			return finish(io, res);
		/* Past the end of a format's file: zeroes (qcow2 files end
		 * where their last table does, not on a sector). */
		if (res == 0 && io->op == BLOCK_READ && b->base.growable)
			return finish(io, zero_rest(io));
		/* Nothing read: the image shrank under us. Nothing written:
		 * retrying would spin. */
		if (res == 0 || (uint64_t)res > io->remaining)
			return finish(io, -EIO);
		io->offset += (uint64_t)res;
		io->remaining -= (uint64_t)res;
		io->transferred += (uint64_t)res;
		if (!io->remaining)
			return finish(io, io->zero_fill ? 0 : (int64_t)io->transferred);
		if (io->zero_fill ? !zero_fill_prepare(b, io) : !advance_iov(io, (uint64_t)res))
			return finish(io, -ENOMEM);
		return false;
	case BLOCK_FLUSH:
		return finish(io, res < 0 ? res : 0);
	case BLOCK_DISCARD:
		/* No holes here: zeroes keep the promise that a discarded
		 * range reads back as zeroes. */
		if (unsupported(res)) {
			io->op = BLOCK_WRITE_ZEROES;
			return false;
		}
		return finish(io, res < 0 ? res : 0);
	case BLOCK_WRITE_ZEROES:
		if (unsupported(res)) {
			io->op = BLOCK_WRITE;
			io->zero_fill = true;
			if (!zero_fill_prepare(b, io))
				return finish(io, -ENOMEM);
			return false;
		}
		return finish(io, res < 0 ? res : 0);
	}
	return finish(io, -EINVAL);
}

int64_t file_io_step_sync(struct block_file *b, struct block_io *io)
{
	ssize_t n = -1;

	switch (io->op) {
	case BLOCK_READ:
		n = preadv(b->fd, io->iov, (int)io->iovcnt, (off_t)io->offset);
		break;
	case BLOCK_WRITE:
		n = pwritev(b->fd, io->iov, (int)io->iovcnt, (off_t)io->offset);
		break;
	case BLOCK_FLUSH:
		n = fdatasync(b->fd);
		file_count_fdatasync(b, n < 0 ? -errno : 0);
		break;
	case BLOCK_DISCARD:
		n = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)io->offset,
			      (off_t)io->remaining);
		break;
	case BLOCK_WRITE_ZEROES:
		n = fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)io->offset,
			      (off_t)io->remaining);
		break;
	default:
		errno = EINVAL;
		break;
	}
	return n < 0 ? -(int64_t)errno : (int64_t)n;
}

/* O_DIRECT wants every buffer aligned; guest buffers usually are, and the
 * rare one that is not goes through an aligned copy. */
static bool needs_bounce(const struct block_file *b, const struct block_req *r)
{
	unsigned int i;

	if (!b->direct || b->mem_align <= 1)
		return false;
	for (i = 0; i < r->iovcnt; i++)
		if ((uintptr_t)r->iov[i].iov_base % b->mem_align ||
		    r->iov[i].iov_len % b->mem_align)
			return true;
	return false;
}

static int setup_bounce(struct block_file *b, struct block_io *io, uint64_t total)
{
	if (posix_memalign(&io->bounce, b->mem_align < sizeof(void *) ? sizeof(void *) : b->mem_align,
			   total)) {
		io->bounce = NULL;
		return -ENOMEM;
	}
	if (io->op == BLOCK_WRITE)
		iov_to_buf(io->req->iov, io->req->iovcnt, 0, io->bounce, total);
	io->bounce_iov.iov_base = io->bounce;
	io->bounce_iov.iov_len = total;
	io->iov = &io->bounce_iov;
	io->iovcnt = 1;
	io->iov_owned = true;
	return 0;
}

static void free_io(struct block_io *io)
{
	free(io->iov_copy);
	free(io->bounce);
	free(io);
}

/* A request with nothing to do still completes through the fd, so done()
 * never runs inside file_submit(). */
static void complete_now(struct block_file *b, struct block_io *io, int64_t result)
{
	io->result = result;
	pthread_mutex_lock(&b->lock);
	io->next = b->ready;
	b->ready = io;
	pthread_mutex_unlock(&b->lock);
	file_signal(b);
}

static int file_submit(struct block_backend *bb, struct block_req *r)
{
	struct block_file *b = (struct block_file *)bb;
	struct block_io *io;
	uint64_t bytes;
	int err;

	/* Checked by block_submit(): in the image, whole sectors, writable. */
	bytes = r->op == BLOCK_READ || r->op == BLOCK_WRITE ? iov_size(r->iov, r->iovcnt)
	      : r->op == BLOCK_FLUSH			     ? 0
							     : r->len;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->req = r;
	io->op = r->op;
	io->offset = r->offset;
	io->remaining = bytes;
	io->iov = (struct iovec *)r->iov; /* not written until copied */
	io->iovcnt = r->iovcnt;
	if ((r->op == BLOCK_READ || r->op == BLOCK_WRITE) && bytes && needs_bounce(b, r)) {
		err = setup_bounce(b, io, bytes);
		if (err) {
			free_io(io);
			return err;
		}
	}
	__atomic_add_fetch(&b->in_flight, 1, __ATOMIC_ACQ_REL);
	if (r->op != BLOCK_FLUSH && !bytes) {
		complete_now(b, io, 0);
		return 0;
	}
	/* Empty iovecs in the middle are harmless, but leading ones would
	 * make a short transfer look like no progress at all. */
	if (io->iovcnt && !io->iov[0].iov_len && !advance_iov(io, 0)) {
		__atomic_sub_fetch(&b->in_flight, 1, __ATOMIC_ACQ_REL);
		free_io(io);
		return -ENOMEM;
	}
	err = b->engine->submit(b, io);
	if (err) {
		__atomic_sub_fetch(&b->in_flight, 1, __ATOMIC_ACQ_REL);
		free_io(io);
	}
	return err;
}

static void file_plug(struct block_backend *bb)
{
	struct block_file *b = (struct block_file *)bb;
	b->plugged++;
}

static void file_unplug(struct block_backend *bb)
{
	struct block_file *b = (struct block_file *)bb;
	if (b->plugged && --b->plugged == 0 && b->engine->unplug)
		b->engine->unplug(b);
}

static void run_done(struct block_file *b, struct block_io *io)
{
	struct block_req *r = io->req;
	int64_t result = io->result;

	if (io->bounce && r->op == BLOCK_READ && result > 0)
		iov_from_buf(r->iov, r->iovcnt, 0, io->bounce, (size_t)result);
	free_io(io);
	__atomic_sub_fetch(&b->in_flight, 1, __ATOMIC_ACQ_REL);
	r->done(r, result);
}

/* Lists come newest first; done() runs oldest first. */
static struct block_io *reverse(struct block_io *l)
{
	struct block_io *out = NULL;

	while (l) {
		struct block_io *next = l->next;

		l->next = out;
		out = l;
		l = next;
	}
	return out;
}

static void file_process_completions(struct block_backend *bb)
{
	struct block_file *b = (struct block_file *)bb;
	struct block_io *list, *ready;

	/* Clear the fd before looking, so a completion after the look
	 * makes it readable again; nothing signalled, look anyway
	 * (block_drain). */
	(void)eventfd_consume(b->event_fd);
	list = b->engine->reap(b);
	pthread_mutex_lock(&b->lock);
	ready = b->ready;
	b->ready = NULL;
	pthread_mutex_unlock(&b->lock);
	ready = reverse(ready);
	while (ready) {
		struct block_io *next = ready->next;

		run_done(b, ready);
		ready = next;
	}
	while (list) {
		struct block_io *next = list->next;

		run_done(b, list);
		list = next;
	}
}

static void file_drain(struct block_backend *bb)
{
	struct block_file *b = (struct block_file *)bb;
	struct pollfd p = { .fd = b->event_fd, .events = POLLIN };

	if (b->engine->unplug)
		b->engine->unplug(b);
	while (file_in_flight(&b->base)) {
		/* The timeout only matters if a submission was held back
		 * by a busy kernel; process_completions retries those. */
		poll(&p, 1, 100);
		file_process_completions(&b->base);
	}
}

static int64_t file_io_sync(struct block_backend *bb, enum block_op op, uint64_t offset,
			    const struct iovec *iov, unsigned int iovcnt, uint64_t len)
{
	struct block_file *b = (struct block_file *)bb;
	struct block_req r = { .op = op, .offset = offset, .iov = iov, .iovcnt = iovcnt };
	struct block_io io = { .req = &r, .op = op, .offset = offset,
			       .iov = (struct iovec *)iov, .iovcnt = iovcnt };
	int64_t result;

	io.remaining = op == BLOCK_READ || op == BLOCK_WRITE ? iov_size(iov, iovcnt)
		     : op == BLOCK_FLUSH			   ? 0
								   : len;
	if (op != BLOCK_FLUSH && !io.remaining)
		return 0;
	if ((op == BLOCK_READ || op == BLOCK_WRITE) && needs_bounce(b, &r) &&
	    setup_bounce(b, &io, io.remaining) < 0)
		return -ENOMEM;
	if (io.iovcnt && !io.iov[0].iov_len && !advance_iov(&io, 0)) {
		result = -ENOMEM;
	} else {
		while (!file_io_step_done(b, &io, file_io_step_sync(b, &io)))
			;
		result = io.result;
	}
	if (io.bounce && op == BLOCK_READ && result > 0)
		iov_from_buf(iov, iovcnt, 0, io.bounce, (size_t)result);
	free(io.iov_copy);
	free(io.bounce);
	return result;
}

/* How file_io_nowait can read, or write, without waiting on a device,
 * found at its first call for each: RWF_NOWAIT (the data is in the page
 * cache, or goes to it, or the call says -EAGAIN), or a plain read or
 * write for a file in memory (tmpfs refuses RWF_NOWAIT with EOPNOTSUPP,
 * on Linux 6.1 as on 6.18, and its pages are there to copy), or not at
 * all (O_DIRECT always goes to the device; overlayfs refuses RWF_NOWAIT;
 * ext4 refuses it for buffered writes, which may wait for writeback). */
enum { NOWAIT_UNKNOWN, NOWAIT_FLAG, NOWAIT_IN_MEMORY, NOWAIT_NEVER };

static bool in_memory(int fd)
{
	struct statfs s;

	return fstatfs(fd, &s) == 0 &&
	       (s.f_type == TMPFS_MAGIC || s.f_type == RAMFS_MAGIC || s.f_type == HUGETLBFS_MAGIC);
}

static int64_t file_io_nowait(struct block_backend *bb, enum block_op op, uint64_t offset,
			      const struct iovec *iov, unsigned int iovcnt)
{
	struct block_file *b = (struct block_file *)bb;
	int *cached = &b->nowait[op == BLOCK_WRITE];
	int mode = __atomic_load_n(cached, __ATOMIC_RELAXED);
	struct iovec *left, *cur;
	uint64_t total = iov_size(iov, iovcnt), done = 0;
	unsigned int n = iovcnt;
	int64_t result = -EAGAIN;

	if (b->direct || mode == NOWAIT_NEVER)
		return -EAGAIN;
	if (!total)
		return 0;
	left = malloc(iovcnt * sizeof(*left));
	if (!left)
		return -ENOMEM;
	memcpy(left, iov, iovcnt * sizeof(*left));
	cur = left;
	while (done < total) {
		int flags = mode == NOWAIT_IN_MEMORY ? 0 : RWF_NOWAIT;
		ssize_t k = op == BLOCK_WRITE ? /* n <= IOV_MAX */
			pwritev2(b->fd, cur, (int)n, (off_t)(offset + done), flags) :
			preadv2(b->fd, cur, (int)n, (off_t)(offset + done), flags);

		if (k < 0 && errno == EOPNOTSUPP && mode == NOWAIT_UNKNOWN) {
			mode = in_memory(b->fd) ? NOWAIT_IN_MEMORY : NOWAIT_NEVER;
			__atomic_store_n(cached, mode, __ATOMIC_RELAXED);
			if (mode == NOWAIT_NEVER)
				break;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			result = errno == EAGAIN ? -EAGAIN : -errno;
			break;
		}
		if (k == 0) /* a read at the end of the file: zeroes, the slow way */
			break;
		if (mode == NOWAIT_UNKNOWN) {
			mode = NOWAIT_FLAG;
			__atomic_store_n(cached, mode, __ATOMIC_RELAXED);
		}
		done += (uint64_t)k;
		iov_drop_front(&cur, &n, (size_t)k); /* a short transfer: on from where it stopped */
	}
	if (done == total)
		result = (int64_t)total;
	free(left);
	return result;
}

const struct block_driver block_file_driver = {
	.io_sync = file_io_sync,
	.io_nowait = file_io_nowait,
	.name = "file",
	.submit = file_submit,
	.plug = file_plug,
	.unplug = file_unplug,
	.completion_fd = file_completion_fd,
	.process_completions = file_process_completions,
	.in_flight = file_in_flight,
	.drain = file_drain,
	.sync = file_sync,
	.lock = file_lock,
	.unlock = file_unlock,
	.close = file_close,
	.engine_name = file_engine_name,
	.direct = file_direct,
	.fdatasyncs = file_fdatasyncs,
};
