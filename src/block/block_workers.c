#include "block/block_workers.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/thread.h"

#define MAX_WORKERS 16

struct work {
	struct block_req *req;
	int64_t result;
	struct work *next;
};

struct block_workers {
	struct block_backend *b;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct work *head, *tail; /* queued, oldest first */
	struct work *done;	  /* finished, newest first */
	bool stop;
	unsigned int nthreads;
	unsigned int in_flight; /* atomic */
	int event_fd;
	pthread_t thread[MAX_WORKERS];
};

static void *worker(void *arg)
{
	struct block_workers *w = arg;
	uint64_t one = 1;

	for (;;) {
		struct work *k;
		struct block_req *r;

		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->wake, &w->lock);
		k = w->head;
		if (!k) {
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		w->head = k->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->lock);

		r = k->req;
		k->result = w->b->drv->io_sync(w->b, r->op, r->offset, r->iov, r->iovcnt, r->len);

		pthread_mutex_lock(&w->lock);
		k->next = w->done;
		w->done = k;
		pthread_mutex_unlock(&w->lock);
		if (write(w->event_fd, &one, sizeof(one)) < 0) {
			/* Only when the counter would overflow: readable anyway. */
		}
	}
}

struct block_workers *block_workers_start(struct block_backend *b, unsigned int n)
{
	struct block_workers *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return NULL;
	w->b = b;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	w->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->event_fd < 0) {
		log_error("disk '%s': eventfd: %s", b->path, strerror(errno));
		free(w);
		return NULL;
	}
	if (n > MAX_WORKERS)
		n = MAX_WORKERS;
	for (; w->nthreads < n; w->nthreads++) {
		err = thread_create(&w->thread[w->nthreads], worker, w);
		if (err) {
			log_error("disk '%s': cannot start I/O threads: %s", b->path, strerror(err));
			block_workers_stop(w);
			return NULL;
		}
	}
	return w;
}

int block_workers_submit(struct block_workers *w, struct block_req *r)
{
	struct work *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->req = r;
	__atomic_add_fetch(&w->in_flight, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = k;
	else
		w->head = k;
	w->tail = k;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

int block_workers_fd(const struct block_workers *w)
{
	return w->event_fd;
}

unsigned int block_workers_in_flight(const struct block_workers *w)
{
	return __atomic_load_n(&w->in_flight, __ATOMIC_ACQUIRE);
}

void block_workers_process(struct block_workers *w)
{
	struct work *list, *out = NULL;
	uint64_t count;

	if (read(w->event_fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing signalled, but look anyway (drain). */
	}
	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->lock);
	while (list) { /* newest first: done() runs oldest first */
		struct work *next = list->next;

		list->next = out;
		out = list;
		list = next;
	}
	while (out) {
		struct work *next = out->next;
		struct block_req *r = out->req;
		int64_t result = out->result;

		free(out);
		__atomic_sub_fetch(&w->in_flight, 1, __ATOMIC_ACQ_REL);
		r->done(r, result);
		out = next;
	}
}

void block_workers_drain(struct block_workers *w)
{
	struct pollfd p = { .fd = w->event_fd, .events = POLLIN };

	while (block_workers_in_flight(w)) {
		poll(&p, 1, 100);
		block_workers_process(w);
	}
}

void block_workers_stop(struct block_workers *w)
{
	unsigned int i;

	if (!w)
		return;
	block_workers_drain(w);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->thread[i], NULL);
	close(w->event_fd);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
