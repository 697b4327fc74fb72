/* The thread-pool engine: a few workers doing blocking preadv, pwritev,
 * fdatasync and fallocate. The fallback where io_uring is missing or
 * forbidden (old kernels, seccomp profiles that block io_uring_setup). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "block/file.h"
#include "util/thread.h"

#define WORKERS 4

struct threads {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct block_io *head, *tail; /* queued, oldest first */
	struct block_io *done;	      /* finished, newest first */
	bool stop;
	unsigned int nthreads;
	pthread_t thread[WORKERS];
	struct block_file *b;
};

static void *worker(void *arg)
{
	struct threads *t = arg;
	struct block_file *b = t->b;

	for (;;) {
		struct block_io *io;

		pthread_mutex_lock(&t->lock);
		while (!t->head && !t->stop)
			pthread_cond_wait(&t->wake, &t->lock);
		io = t->head;
		if (!io) {
			pthread_mutex_unlock(&t->lock);
			return NULL;
		}
		t->head = io->next;
		if (!t->head)
			t->tail = NULL;
		pthread_mutex_unlock(&t->lock);

		while (!file_io_step_done(b, io, file_io_step_sync(b, io)))
			;

		pthread_mutex_lock(&t->lock);
		io->next = t->done;
		t->done = io;
		pthread_mutex_unlock(&t->lock);
		file_signal(b);
	}
}

static void stop_workers(struct threads *t)
{
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	for (i = 0; i < t->nthreads; i++)
		pthread_join(t->thread[i], NULL);
}

static int threads_init(struct block_file *b)
{
	struct threads *t = calloc(1, sizeof(*t));
	sigset_t all, old;
	unsigned int i;
	int err = 0;

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	t->b = b;
	/* Workers take no signals: those are for the main and vCPU threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < WORKERS; i++) {
		err = thread_create(&t->thread[i], worker, t);
		if (err)
			break;
		pthread_setname_np(t->thread[i], "vireo-blk");
		t->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* One worker is enough to be correct; none is not. */
	if (!t->nthreads) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return -err;
	}
	b->engine_priv = t;
	return 0;
}

static void threads_fini(struct block_file *b)
{
	struct threads *t = b->engine_priv;

	stop_workers(t);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
	b->engine_priv = NULL;
}

static int threads_submit(struct block_file *b, struct block_io *io)
{
	struct threads *t = b->engine_priv;

	io->next = NULL;
	pthread_mutex_lock(&t->lock);
	if (t->tail)
		t->tail->next = io;
	else
		t->head = io;
	t->tail = io;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static struct block_io *threads_reap(struct block_file *b)
{
	struct threads *t = b->engine_priv;
	struct block_io *l, *out = NULL;

	pthread_mutex_lock(&t->lock);
	l = t->done;
	t->done = NULL;
	pthread_mutex_unlock(&t->lock);
	while (l) { /* oldest first */
		struct block_io *next = l->next;

		l->next = out;
		out = l;
		l = next;
	}
	return out;
}

const struct block_engine block_engine_threads = {
	.name = "threads",
	.init = threads_init,
	.fini = threads_fini,
	.submit = threads_submit,
	.reap = threads_reap,
};
