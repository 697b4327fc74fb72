/* The io_uring engine (liburing). Completions signal the backend's eventfd
 * (io_uring_register_eventfd), so the device's I/O thread sleeps in epoll
 * like for any other descriptor and no thread of ours waits in the ring. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>

#include "block/file.h"
#include "util/log.h"

/* One virtqueue's worth of requests in flight; more only costs a submit
 * call when the ring is full, and the kernel keeps completions that do
 * not fit (IORING_FEAT_NODROP). */
#define RING_ENTRIES 256

struct uring {
	struct io_uring ring;
	pthread_mutex_t lock; /* the ring: submission (submit) vs reaping */
};

static bool has_ops(struct io_uring *ring)
{
	static const int needed[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
				      IORING_OP_FALLOCATE };
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	bool ok = p != NULL;
	unsigned int i;

	for (i = 0; ok && i < sizeof(needed) / sizeof(needed[0]); i++)
		ok = io_uring_opcode_supported(p, needed[i]);
	if (p)
		io_uring_free_probe(p);
	return ok;
}

static int uring_init(struct block_file *b)
{
	struct io_uring_params params = { 0 };
	struct uring *u = calloc(1, sizeof(*u));
	int err;

	if (!u)
		return -ENOMEM;
	err = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &params);
	if (err < 0) {
		free(u);
		return err;
	}
	/* Without NODROP (before Linux 5.5) a full completion ring loses
	 * completions, and with them requests; without the probe or the
	 * ops (before 5.6) half the requests could not be issued. */
	if (!(params.features & IORING_FEAT_NODROP) || !has_ops(&u->ring)) {
		err = -EOPNOTSUPP;
		goto fail;
	}
	err = io_uring_register_eventfd(&u->ring, b->event_fd);
	if (err < 0)
		goto fail;
	pthread_mutex_init(&u->lock, NULL);
	b->engine_priv = u;
	return 0;

fail:
	io_uring_queue_exit(&u->ring);
	free(u);
	return err;
}

static void uring_fini(struct block_file *b)
{
	struct uring *u = b->engine_priv;

	io_uring_queue_exit(&u->ring);
	pthread_mutex_destroy(&u->lock);
	free(u);
	b->engine_priv = NULL;
}

/* Hands queued submissions to the kernel. A failure (-EAGAIN or -EBUSY,
 * under memory pressure or with a completion backlog) leaves them in the
 * ring; the completion fd is then made readable so that the device comes
 * back, reaps, and flushes again. */
static void flush(struct block_file *b, struct uring *u)
{
	int ret;

	if (!io_uring_sq_ready(&u->ring))
		return;
	do
		ret = io_uring_submit(&u->ring);
	while (ret == -EINTR);
	if (ret < 0) {
		log_debug("disk '%s': io_uring_submit: %d", b->base.path, ret);
		file_signal(b);
	}
}

static int queue_step(struct block_file *b, struct uring *u, struct block_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		flush(b, u);
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EBUSY;
	}
	switch (io->op) {
	case BLOCK_READ:
		io_uring_prep_readv(sqe, b->fd, io->iov, io->iovcnt, io->offset);
		break;
	case BLOCK_WRITE:
		io_uring_prep_writev(sqe, b->fd, io->iov, io->iovcnt, io->offset);
		break;
	case BLOCK_FLUSH:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		io->datasync_queued = true;
		break;
	case BLOCK_DISCARD:
		io_uring_prep_fallocate(sqe, b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)io->offset, (off_t)io->remaining);
		break;
	case BLOCK_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					(off_t)io->offset, (off_t)io->remaining);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	return 0;
}

static int uring_submit(struct block_file *b, struct block_io *io)
{
	struct uring *u = b->engine_priv;
	int err;

	pthread_mutex_lock(&u->lock);
	err = queue_step(b, u, io);
	if (!err && !b->plugged)
		flush(b, u);
	pthread_mutex_unlock(&u->lock);
	return err;
}

static void uring_unplug(struct block_file *b)
{
	struct uring *u = b->engine_priv;

	pthread_mutex_lock(&u->lock);
	flush(b, u);
	pthread_mutex_unlock(&u->lock);
}

static struct block_io *uring_reap(struct block_file *b)
{
	struct uring *u = b->engine_priv;
	struct block_io *head = NULL, **tail = &head;
	struct io_uring_cqe *cqe;

	pthread_mutex_lock(&u->lock);
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct block_io *io = io_uring_cqe_get_data(cqe);
		int64_t res = cqe->res;

		io_uring_cqe_seen(&u->ring, cqe);
		if (io->datasync_queued) {
			io->datasync_queued = false;
			file_count_fdatasync(b, res);
		}
		if (!file_io_step_done(b, io, res)) {
			/* Short transfer or fallback: the next step. */
			if (queue_step(b, u, io) == 0)
				continue;
			io->result = -EIO;
		}
		io->next = NULL;
		*tail = io;
		tail = &io->next;
	}
	flush(b, u);
	pthread_mutex_unlock(&u->lock);
	return head;
}

const struct block_engine block_engine_uring = {
	.name = "uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.unplug = uring_unplug,
	.reap = uring_reap,
};
