/* The NBD protocol, through libnbd (loaded when a disk first needs it,
 * as libslirp is: a Vireo without NBD disks does not need the library).
 * libnbd's synchronous calls hold the handle for their whole duration,
 * so commands go through its asynchronous API instead, many in flight on
 * one connection.
 *
 * No thread of ours: the device's own I/O thread drives the socket, as
 * QEMU's iothread does its NBD client. The node's completion fd is an
 * epoll set of the socket (readable; writable while libnbd has a command
 * half sent), the completion queue's eventfd and a 1 s timer, so one
 * wakeup of the device's thread reads the server's replies, runs libnbd's
 * callbacks and completes the requests, with no hand-over between threads
 * on the way (the driver had a connection thread before: each request
 * woke it, and its callbacks woke the device's thread again). A
 * synchronous caller (a format's worker, the probe at open) drives the
 * socket itself while it waits, so it needs no device thread running.
 * Whoever drives holds the node's drive lock, only for calls that do not
 * block.
 *
 * A server that dies fails the commands in flight and every later one
 * with EIO: there is no reconnection (a guest sees I/O errors and its
 * data flushed before is the server's to keep). A server that stops
 * answering is cut off after VIREO_NBD_TIMEOUT_S seconds (30) of a
 * command going unanswered, so Vireo never hangs on it. */
#include "block/nbd.h"

#include <dlfcn.h>
#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "block/block_driver.h"
#include "block/completions.h"
#include "util/clock.h"
#include "util/eventfd.h"
#include "util/iov.h"
#include "util/log.h"

#define CONNECT_TIMEOUT_MS 15000

/* ---- the library ---- */

static struct libnbd {
	struct nbd_handle *(*create)(void);
	void (*close)(struct nbd_handle *);
	const char *(*get_error)(void);
	int (*set_uri_allow_local_file)(struct nbd_handle *, bool);
	int (*aio_connect_uri)(struct nbd_handle *, const char *);
	int (*aio_is_ready)(struct nbd_handle *);
	int (*aio_is_dead)(struct nbd_handle *);
	int (*aio_is_connecting)(struct nbd_handle *);
	int (*aio_get_fd)(struct nbd_handle *);
	unsigned (*aio_get_direction)(struct nbd_handle *);
	int (*aio_notify_read)(struct nbd_handle *);
	int (*aio_notify_write)(struct nbd_handle *);
	int64_t (*get_size)(struct nbd_handle *);
	int (*is_read_only)(struct nbd_handle *);
	int (*can_flush)(struct nbd_handle *);
	int (*can_zero)(struct nbd_handle *);
	int64_t (*aio_pread)(struct nbd_handle *, void *, size_t, uint64_t, nbd_completion_callback,
			     uint32_t);
	int64_t (*aio_pwrite)(struct nbd_handle *, const void *, size_t, uint64_t,
			      nbd_completion_callback, uint32_t);
	int64_t (*aio_flush)(struct nbd_handle *, nbd_completion_callback, uint32_t);
	int64_t (*aio_zero)(struct nbd_handle *, uint64_t, uint64_t, nbd_completion_callback,
			    uint32_t);
} L;
/* libnbd 1.12 and later; NULL before (then libnbd zeroes every read
 * buffer before the read, which only costs time). */
static int (*set_pread_initialize)(struct nbd_handle *, bool);
static bool loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	static const char *const names[] = {
		"nbd_create", "nbd_close", "nbd_get_error", "nbd_set_uri_allow_local_file",
		"nbd_aio_connect_uri", "nbd_aio_is_ready", "nbd_aio_is_dead", "nbd_aio_is_connecting",
		"nbd_aio_get_fd", "nbd_aio_get_direction", "nbd_aio_notify_read",
		"nbd_aio_notify_write", "nbd_get_size", "nbd_is_read_only", "nbd_can_flush",
		"nbd_can_zero", "nbd_aio_pread", "nbd_aio_pwrite", "nbd_aio_flush", "nbd_aio_zero",
	};
	void *h = dlopen("libnbd.so.0", RTLD_NOW | RTLD_LOCAL), **slot = (void **)&L;
	unsigned int i;

	if (!h) {
		log_error("--disk nbd= needs libnbd (Debian: apt-get install libnbd0): %s", dlerror());
		return;
	}
	/* The struct's members are in the order of names: one pointer each. */
	_Static_assert(sizeof(L) == sizeof(names) / sizeof(names[0]) * sizeof(void *),
		       "one name per member of struct libnbd");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(slot[i] = dlsym(h, names[i]))) {
			log_error("--disk nbd=: libnbd.so.0 has no %s", names[i]);
			dlclose(h);
			return;
		}
	}
	set_pread_initialize = (int (*)(struct nbd_handle *, bool))dlsym(h, "nbd_set_pread_initialize");
	loaded = true;
}

/* ---- commands ---- */

struct nbd_node;

struct nbd_cmd {
	/* First: release() frees the command. Its req NULL: a synchronous
	 * caller waits for finished, woken on sync_fd. Its result: the
	 * command's, either way. */
	struct completion completion;
	struct nbd_node *n;
	enum block_op op;
	uint64_t offset;
	const struct iovec *iov;
	unsigned int iovcnt;
	uint64_t len;
	void *buf; /* READ/WRITE: the data, contiguous, as libnbd wants it */
	struct bounce *bounce; /* buf's, when it is a copy: not the caller's memory */
	bool finished;
	int sync_fd; /* a synchronous caller's eventfd; -1 */
	uint64_t started_ms;
	struct nbd_cmd *next, *prev; /* the node's list of those in flight */
};
_Static_assert(offsetof(struct nbd_cmd, completion) == 0, "a command begins with its completion");

/* A buffer for a command whose own memory is not one range (a guest
 * request scattered over pages). Kept for the next command rather than
 * freed: a megabyte's malloc and free each time cost page faults and
 * zeroing, and libnbd is told not to zero read buffers (its default, so
 * that an application that ignores a failed read shows no stale heap).
 * That is safe here because a pooled buffer only ever holds this disk's
 * own data (what the server sent, what the guest wrote) or the zeroes it
 * was born with: a server whose successful reply leaves part of a read
 * uncovered (libnbd only checks that some data came) shows the guest
 * nothing but its own disk's bytes, never other host memory. */
struct bounce {
	struct bounce *next;
	size_t cap;
	uint8_t data[];
};
#define BOUNCE_KEEP 32 /* buffers the pool keeps: queue depth's worth */
#define BOUNCE_KEEP_MAX (4u << 20) /* bigger ones (a long discard's zeroes) freed */

struct nbd_node {
	struct block_backend base;
	struct nbd_handle *h;
	bool can_flush, can_zero;
	uint64_t timeout_ms;
	struct completions done; /* the asynchronous commands */
	int epoll_fd;		 /* the completion fd: the three below */
	int timer_fd;		 /* 1 s while commands are in flight */
	/* Around every libnbd call that moves the connection on (issuing,
	 * reading, writing) and the socket's place in the epoll set, which
	 * follows libnbd's direction; held only for calls that do not block.
	 * Taken before lock. */
	pthread_mutex_t drive;
	int sock_fd;	     /* in the epoll set; -1: none (not yet, or dead) */
	uint32_t sock_events; /* what it is watched for */
	pthread_mutex_t lock; /* what follows */
	struct nbd_cmd *active; /* in flight, newest first */
	bool timer_armed, cut_off;
	struct bounce *pool; /* free bounce buffers, under lock */
	unsigned int pooled;
};

static struct nbd_node *N(const struct block_backend *b)
{
	return (struct nbd_node *)b;
}

static void unlink_active(struct nbd_node *n, struct nbd_cmd *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		n->active = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* A bounce buffer of at least len bytes: a pooled one, else a new one
 * (zeroed: see struct bounce). NULL when memory is short. */
static struct bounce *bounce_get(struct nbd_node *n, size_t len)
{
	struct bounce *b, **p;
	size_t cap;

	pthread_mutex_lock(&n->lock);
	for (p = &n->pool; (b = *p); p = &b->next) {
		if (b->cap >= len) {
			*p = b->next;
			n->pooled--;
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	if (b)
		return b;
	cap = (len + 65535) & ~(size_t)65535; /* near sizes share buffers */
	b = calloc(1, sizeof(*b) + (cap ? cap : 1));
	if (b)
		b->cap = cap;
	return b;
}

/* The command's bounce buffer, if it had one, back to the pool (or freed
 * when the pool is full). */
static void free_buf(struct nbd_cmd *c)
{
	struct nbd_node *n = c->n;
	struct bounce *b = c->bounce;

	if (!b)
		return;
	c->bounce = NULL;
	pthread_mutex_lock(&n->lock);
	if (n->pooled < BOUNCE_KEEP && b->cap <= BOUNCE_KEEP_MAX) {
		b->next = n->pool;
		n->pool = b;
		n->pooled++;
		b = NULL;
	}
	pthread_mutex_unlock(&n->lock);
	free(b);
}

/* libnbd's completion callback, in whichever thread drives the socket
 * (or in the issuing call, when the connection is already gone), under
 * the drive lock. 1: the command is retired. */
static int completed(void *user_data, int *error)
{
	struct nbd_cmd *c = user_data;
	struct nbd_node *n = c->n;
	bool async = c->completion.req != NULL;

	if (*error)
		c->completion.result = -*error;
	else if (c->op == BLOCK_READ || c->op == BLOCK_WRITE)
		c->completion.result = (int64_t)c->len;
	else
		c->completion.result = 0;
	if (c->op == BLOCK_READ && !*error && c->bounce)
		iov_from_buf(c->iov, c->iovcnt, 0, c->buf, (size_t)c->len);
	pthread_mutex_lock(&n->lock);
	unlink_active(n, c);
	if (!async) {
		/* Under the lock: the caller, which looks at finished under
		 * it, may close sync_fd and return as soon as it is set. */
		eventfd_signal(c->sync_fd);
		c->finished = true;
	}
	pthread_mutex_unlock(&n->lock);
	/* An asynchronous c is the device's from here. */
	if (async)
		completions_push(&n->done, &c->completion);
	return 1;
}

/* What libnbd waits for on its socket, as poll() and epoll take it (the
 * same bits: POLLIN is EPOLLIN, POLLOUT EPOLLOUT). */
static short waits_for(struct nbd_handle *h)
{
	unsigned dir = L.aio_get_direction(h);

	return (short)((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
		       (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0));
}
_Static_assert(POLLIN == EPOLLIN && POLLOUT == EPOLLOUT, "poll's bits are epoll's");

/* Under the drive lock, after anything that may have moved the
 * connection on: the socket watched for what libnbd waits for (reading,
 * for the replies; writing, while a command is half sent), or out of the
 * set once the connection is dead (its hang-up would wake the device for
 * ever). sock_fd and sock_events say what libnbd waits for until the next
 * call that moves it. */
static void watch_socket(struct nbd_node *n)
{
	int fd = L.aio_is_dead(n->h) == 1 ? -1 : L.aio_get_fd(n->h);
	struct epoll_event ev = { .events = fd >= 0 ? (uint32_t)waits_for(n->h) : 0 };

	if (fd != n->sock_fd && n->sock_fd >= 0) {
		/* Fails harmlessly when libnbd closed it: gone from the set. */
		epoll_ctl(n->epoll_fd, EPOLL_CTL_DEL, n->sock_fd, NULL);
		n->sock_fd = -1;
	}
	if (fd < 0)
		return;
	if (fd != n->sock_fd) {
		if (epoll_ctl(n->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0) {
			n->sock_fd = fd;
			n->sock_events = ev.events;
		}
	} else if (ev.events != n->sock_events &&
		   epoll_ctl(n->epoll_fd, EPOLL_CTL_MOD, fd, &ev) == 0) {
		n->sock_events = ev.events;
	}
}

/* Moves the connection on by what the socket allows now, without
 * waiting: replies read (their callbacks run here), a half-sent command
 * sent on. libnbd's notify_read stops at the end of each reply, so this
 * goes on while the socket has more (bounded: other work waits): every
 * reply that has arrived is completed in one wakeup, and the device
 * raises one interrupt for them all instead of one each (1 MiB reads at
 * queue depth 8 made 0.54 interrupts per request, QEMU 0.28). */
#define DRIVE_ROUNDS 64

static void drive(struct nbd_node *n)
{
	struct pollfd p;
	unsigned int round;

	pthread_mutex_lock(&n->drive);
	for (round = 0; round < DRIVE_ROUNDS; round++) {
		/* What watch_socket() found after the last call that moved
		 * the connection: no need to ask libnbd again. */
		p = (struct pollfd){ .fd = n->sock_fd, .events = (short)n->sock_events };
		if (p.fd < 0 || poll(&p, 1, 0) <= 0)
			break;
		if ((p.events & POLLIN) && (p.revents & (POLLIN | POLLHUP | POLLERR)))
			L.aio_notify_read(n->h);
		else if ((p.events & POLLOUT) && (p.revents & (POLLOUT | POLLHUP | POLLERR)))
			L.aio_notify_write(n->h);
		else
			break;
		watch_socket(n);
	}
	pthread_mutex_unlock(&n->drive);
}

/* A command unanswered for the timeout cuts the server off: libnbd then
 * reads the end of the stream and fails every command in flight. */
static void check_timeout(struct nbd_node *n)
{
	uint64_t oldest = 0;
	struct nbd_cmd *c;
	bool cut = false;

	pthread_mutex_lock(&n->drive);
	pthread_mutex_lock(&n->lock);
	for (c = n->active; c; c = c->next)
		if (!oldest || c->started_ms < oldest)
			oldest = c->started_ms;
	if (oldest && monotonic_ms() - oldest > n->timeout_ms && !n->cut_off)
		cut = n->cut_off = true;
	pthread_mutex_unlock(&n->lock);
	if (cut) {
		int fd = L.aio_get_fd(n->h);

		log_error("disk '%s': the NBD server has not answered for %llu s: cut off, "
			  "its requests fail", n->base.path,
			  (unsigned long long)(n->timeout_ms / 1000));
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&n->drive);
}

/* Under lock: the timer ticking while anything is in flight (stopped
 * again by the first tick that finds nothing). */
static void arm_timer(struct nbd_node *n)
{
	struct itimerspec every_s = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };

	if (!n->timer_armed && timerfd_settime(n->timer_fd, 0, &every_s, NULL) == 0)
		n->timer_armed = true;
}

/* A tick of the timer, if one came: the timeout checked. */
static void on_timer(struct nbd_node *n)
{
	struct itimerspec off = { 0 };
	uint64_t ticks;

	if (read(n->timer_fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return; /* EAGAIN: no tick */
	check_timeout(n);
	pthread_mutex_lock(&n->lock);
	if (!n->active && n->timer_armed) {
		timerfd_settime(n->timer_fd, 0, &off, NULL);
		n->timer_armed = false;
	}
	pthread_mutex_unlock(&n->lock);
}

/* Issues c; 0, or -errno when it cannot be (then c never completes). */
static int issue(struct nbd_node *n, struct nbd_cmd *c)
{
	nbd_completion_callback cb = { .callback = completed, .user_data = c };
	int64_t cookie;

	c->n = n;
	if (c->op == BLOCK_READ || c->op == BLOCK_WRITE) {
		/* Buffers that are one range of memory already (a guest
		 * buffer that is contiguous, a worker's own) are used as they
		 * are: no copy either way. */
		c->buf = iov_flat(c->iov, c->iovcnt);
		if (!c->buf) {
			c->bounce = bounce_get(n, (size_t)c->len);
			if (!c->bounce)
				return -ENOMEM;
			c->buf = c->bounce->data;
			if (c->op == BLOCK_WRITE)
				iov_to_buf(c->iov, c->iovcnt, 0, c->buf, (size_t)c->len);
		}
	} else if ((c->op == BLOCK_DISCARD || c->op == BLOCK_WRITE_ZEROES) && !n->can_zero) {
		/* Zeroes written out: what a discard must read back as. */
		c->bounce = bounce_get(n, (size_t)c->len);
		if (!c->bounce)
			return -ENOMEM;
		c->buf = c->bounce->data;
		memset(c->buf, 0, (size_t)c->len);
		c->op = BLOCK_WRITE;
		c->iov = NULL;
		c->iovcnt = 0;
	}
	c->started_ms = monotonic_ms();
	pthread_mutex_lock(&n->drive);
	pthread_mutex_lock(&n->lock);
	if (n->cut_off) {
		pthread_mutex_unlock(&n->lock);
		pthread_mutex_unlock(&n->drive);
		return -EIO;
	}
	c->prev = NULL;
	c->next = n->active;
	if (n->active)
		n->active->prev = c;
	n->active = c;
	arm_timer(n);
	pthread_mutex_unlock(&n->lock);
	/* libnbd sends the command now, as far as the socket takes it. */
	switch (c->op) {
	case BLOCK_READ:
		cookie = L.aio_pread(n->h, c->buf, (size_t)c->len, c->offset, cb, 0);
		break;
	case BLOCK_WRITE:
		cookie = L.aio_pwrite(n->h, c->buf, (size_t)c->len, c->offset, cb, 0);
		break;
	case BLOCK_FLUSH:
		cookie = L.aio_flush(n->h, cb, 0);
		break;
	case BLOCK_DISCARD: /* may leave a hole: reads as zeroes either way */
		cookie = L.aio_zero(n->h, c->len, c->offset, cb, 0);
		break;
	default: /* WRITE_ZEROES: the blocks stay allocated */
		cookie = L.aio_zero(n->h, c->len, c->offset, cb,
				    LIBNBD_CMD_FLAG_NO_HOLE);
		break;
	}
	if (cookie < 0) {
		/* Refused at once (a dead connection): libnbd does not call
		 * back for a command it never queued. */
		pthread_mutex_lock(&n->lock);
		unlink_active(n, c);
		pthread_mutex_unlock(&n->lock);
		log_debug("disk '%s': %s", n->base.path, L.get_error());
	}
	watch_socket(n); /* a command half sent: the socket watched for writing */
	pthread_mutex_unlock(&n->drive);
	return cookie < 0 ? -EIO : 0;
}

/* The queue's: an asynchronous command, done with. */
static void release(struct completion *done)
{
	struct nbd_cmd *c = (struct nbd_cmd *)done;

	free_buf(c);
	free(c);
}

/* ---- the driver ---- */

static int nbd_submit(struct block_backend *b, struct block_req *r)
{
	struct nbd_node *n = N(b);
	struct nbd_cmd *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	*c = (struct nbd_cmd){ .completion.req = r, .op = r->op, .offset = r->offset, .iov = r->iov,
			       .iovcnt = r->iovcnt, .sync_fd = -1,
			       .len = r->op == BLOCK_READ || r->op == BLOCK_WRITE
					      ? iov_size(r->iov, r->iovcnt)
					      : r->len };
	if (r->op == BLOCK_FLUSH && !n->can_flush) {
		/* A server without a write cache: every write is already
		 * durable. Completed through the fd all the same (result 0). */
		completions_expect(&n->done);
		completions_push(&n->done, &c->completion);
		return 0;
	}
	err = issue(n, c);
	if (err) {
		free_buf(c);
		free(c);
		return err;
	}
	completions_expect(&n->done);
	return 0;
}

/* The device's thread, its completion fd readable: the socket driven,
 * the timer's tick taken, the requests finished so far completed. */
static void nbd_process(struct block_backend *b)
{
	struct nbd_node *n = N(b);

	drive(n);
	on_timer(n);
	completions_process(&n->done);
}

static int nbd_completion_fd(const struct block_backend *b)
{
	return N(b)->epoll_fd;
}

static unsigned int nbd_in_flight(const struct block_backend *b)
{
	return completions_in_flight(&N(b)->done);
}

static void nbd_drain(struct block_backend *b)
{
	struct pollfd p = { .fd = N(b)->epoll_fd, .events = POLLIN };

	while (nbd_in_flight(b)) {
		poll(&p, 1, 100);
		nbd_process(b);
	}
}

/* Waits for c, driving the socket meanwhile (whether or not a device's
 * thread drives it too: whichever reads c's reply wakes sync_fd). */
static void wait_sync(struct nbd_node *n, struct nbd_cmd *c)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = c->sync_fd, .events = POLLIN }, { .fd = -1 } };
		bool finished;

		drive(n);
		pthread_mutex_lock(&n->lock);
		finished = c->finished;
		pthread_mutex_unlock(&n->lock);
		if (finished)
			return;
		pthread_mutex_lock(&n->drive);
		p[1].fd = n->sock_fd;
		p[1].events = (short)n->sock_events;
		pthread_mutex_unlock(&n->drive);
		poll(p, 2, 1000);
		check_timeout(n);
	}
}

static int64_t nbd_io_sync(struct block_backend *b, enum block_op op, uint64_t offset,
			   const struct iovec *iov, unsigned int iovcnt, uint64_t len)
{
	struct nbd_node *n = N(b);
	struct nbd_cmd c = { .op = op, .offset = offset, .iov = iov, .iovcnt = iovcnt,
			     .len = op == BLOCK_READ || op == BLOCK_WRITE ? iov_size(iov, iovcnt)
									 : len };
	int err;

	if (op == BLOCK_FLUSH && !n->can_flush)
		return 0;
	c.sync_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c.sync_fd < 0)
		return -errno;
	err = issue(n, &c);
	if (!err)
		wait_sync(n, &c);
	close(c.sync_fd);
	free_buf(&c);
	return err ? err : c.completion.result;
}

static const char *nbd_engine_name(const struct block_backend *b)
{
	(void)b;
	return "libnbd";
}

static void nbd_free(struct nbd_node *n)
{
	while (n->pool) {
		struct bounce *b = n->pool;

		n->pool = b->next;
		free(b);
	}
	if (n->h)
		L.close(n->h); /* fails what is left in flight: nothing, drained */
	if (n->epoll_fd >= 0)
		close(n->epoll_fd);
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	completions_destroy(&n->done);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->drive);
	free(n->base.path);
	free(n);
}

static void nbd_close_node(struct block_backend *b)
{
	nbd_free(N(b));
}

static const struct block_driver nbd_driver = {
	.name = "nbd",
	.submit = nbd_submit,
	.completion_fd = nbd_completion_fd,
	.process_completions = nbd_process,
	.in_flight = nbd_in_flight,
	.drain = nbd_drain,
	.io_sync = nbd_io_sync,
	.close = nbd_close_node,
	.engine_name = nbd_engine_name,
};

/* The completion fd: an epoll set of the completion queue's eventfd, the
 * timer and the socket. 0, or -1 with errno. */
static int start_watching(struct nbd_node *n)
{
	struct epoll_event ev = { .events = EPOLLIN };

	n->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	n->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (n->epoll_fd < 0 || n->timer_fd < 0 ||
	    epoll_ctl(n->epoll_fd, EPOLL_CTL_ADD, completions_fd(&n->done), &ev) < 0 ||
	    epoll_ctl(n->epoll_fd, EPOLL_CTL_ADD, n->timer_fd, &ev) < 0)
		return -1;
	pthread_mutex_lock(&n->drive);
	watch_socket(n);
	pthread_mutex_unlock(&n->drive);
	if (n->sock_fd < 0) {
		errno = ENOTCONN;
		return -1;
	}
	return 0;
}

/* Connects, with a deadline (a host that drops packets would otherwise
 * hold the start for minutes). */
static int connect_uri(struct nbd_node *n, const char *uri)
{
	uint64_t deadline = monotonic_ms() + CONNECT_TIMEOUT_MS;

	if (L.set_uri_allow_local_file(n->h, false) < 0 || L.aio_connect_uri(n->h, uri) < 0)
		return -1;
	while (L.aio_is_connecting(n->h)) {
		struct pollfd p = { .fd = L.aio_get_fd(n->h), .events = waits_for(n->h) };
		int64_t left = (int64_t)(deadline - monotonic_ms());

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -2;
		}
		if (p.fd >= 0 && poll(&p, 1, (int)(left < 100 ? left : 100)) > 0) {
			if (p.revents & (POLLIN | POLLHUP | POLLERR))
				L.aio_notify_read(n->h);
			else if (p.revents & POLLOUT)
				L.aio_notify_write(n->h);
		} else if (p.fd < 0) {
			usleep(10000);
		}
	}
	return L.aio_is_ready(n->h) ? 0 : -1;
}

struct block_backend *block_nbd_open(const struct block_options *o)
{
	struct nbd_node *n;
	const char *t = getenv("VIREO_NBD_TIMEOUT_S");
	int64_t size;
	int r;

	pthread_once(&load_once, load);
	if (!loaded)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->base.drv = &nbd_driver;
	n->base.read_only = o->read_only;
	n->epoll_fd = n->timer_fd = n->sock_fd = -1;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->drive, NULL);
	n->timeout_ms = (t && atoi(t) > 0 ? (uint64_t)atoi(t) : 30) * 1000;
	n->base.path = strdup(o->path);
	n->h = L.create();
	if (!n->base.path || !n->h) {
		log_error("disk '%s': cannot create an NBD handle", o->path);
		goto fail;
	}
	if (set_pread_initialize && set_pread_initialize(n->h, false) < 0) {
		log_error("disk '%s': %s", o->path, L.get_error());
		goto fail;
	}
	r = connect_uri(n, o->path);
	if (r < 0) {
		log_error("disk '%s': cannot connect: %s", o->path,
			  r == -2 ? "no answer within 15 s" : L.get_error());
		goto fail;
	}
	size = L.get_size(n->h);
	if (size <= 0 || size % BLOCK_SECTOR_SIZE) {
		log_error("disk '%s': the export's size (%lld bytes) is not a positive multiple of %d",
			  o->path, (long long)size, BLOCK_SECTOR_SIZE);
		goto fail;
	}
	n->base.size = (uint64_t)size;
	if (L.is_read_only(n->h) == 1 && !o->read_only) {
		log_error("disk '%s': the export is read-only: give readonly=on", o->path);
		goto fail;
	}
	n->can_flush = L.can_flush(n->h) == 1;
	n->can_zero = L.can_zero(n->h) == 1;
	if (completions_init(&n->done, release) < 0 || start_watching(n) < 0) {
		log_error("disk '%s': cannot set up its completion fd: %s", o->path, strerror(errno));
		goto fail;
	}
	log_debug("disk '%s': NBD export of %lld bytes%s%s%s", o->path, (long long)size,
		  n->can_flush ? ", flush" : "", n->can_zero ? ", write zeroes" : "",
		  L.is_read_only(n->h) == 1 ? ", read-only" : "");
	return &n->base;
fail:
	nbd_free(n);
	return NULL;
}
