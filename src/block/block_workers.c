#include "block/block_workers.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/thread.h"

#define MAX_WORKERS 16

struct work {
	struct completion c; /* first: release() frees the work */
	struct work *next;   /* queued */
};
_Static_assert(offsetof(struct work, c) == 0, "struct work begins with its completion");

struct block_workers {
	struct block_backend *b;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct work *head, *tail; /* queued, oldest first */
	bool stop;
	unsigned int nthreads;
	struct completions done;
	pthread_t thread[MAX_WORKERS];
};

static void release(struct completion *c)
{
	free(c);
}

static void *worker(void *arg)
{
	struct block_workers *w = arg;

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

		r = k->c.req;
		k->c.result = w->b->drv->io_sync(w->b, r->op, r->offset, r->iov, r->iovcnt, r->len);
		completions_push(&w->done, &k->c);
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
	err = completions_init(&w->done, release);
	if (err) {
		log_error("disk '%s': eventfd: %s", b->path, strerror(-err));
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
	k->c.req = r;
	completions_expect(&w->done);
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

int block_workers_finished(struct block_workers *w, struct block_req *r, int64_t result)
{
	struct work *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->c.req = r;
	k->c.result = result;
	completions_expect(&w->done);
	completions_push(&w->done, &k->c);
	return 0;
}

struct completions *block_workers_done(struct block_workers *w)
{
	return &w->done;
}

void block_workers_stop(struct block_workers *w)
{
	unsigned int i;

	if (!w)
		return;
	completions_drain(&w->done);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->thread[i], NULL);
	completions_destroy(&w->done);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
