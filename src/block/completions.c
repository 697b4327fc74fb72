#include "block/completions.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/eventfd.h"

int completions_init(struct completions *q, void (*release)(struct completion *c))
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	pthread_mutex_init(&q->lock, NULL);
	q->done = NULL;
	q->in_flight = 0;
	q->event_fd = fd;
	q->release = release;
	return 0;
}

void completions_destroy(struct completions *q)
{
	if (!q->release)
		return;
	close(q->event_fd);
	pthread_mutex_destroy(&q->lock);
	q->release = NULL;
}

void completions_expect(struct completions *q)
{
	__atomic_add_fetch(&q->in_flight, 1, __ATOMIC_ACQ_REL);
}

void completions_push(struct completions *q, struct completion *c)
{
	pthread_mutex_lock(&q->lock);
	c->next = q->done;
	q->done = c;
	pthread_mutex_unlock(&q->lock);
	/* After the link, outside the lock: the device reads the eventfd
	 * before it takes the list, so a push it does not see in this take
	 * signals after that read, and it comes back. */
	eventfd_signal(q->event_fd);
}

int completions_fd(const struct completions *q)
{
	return q->event_fd;
}

unsigned int completions_in_flight(const struct completions *q)
{
	return __atomic_load_n(&q->in_flight, __ATOMIC_ACQUIRE);
}

void completions_process(struct completions *q)
{
	struct completion *list, *out = NULL;

	/* Reset before the take (see completions_push); the list is taken
	 * even when nothing was signalled: completions_drain polls with a
	 * timeout and comes here either way. */
	(void)eventfd_consume(q->event_fd);
	pthread_mutex_lock(&q->lock);
	list = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->lock);
	while (list) { /* newest first: done() runs oldest first */
		struct completion *next = list->next;

		list->next = out;
		out = list;
		list = next;
	}
	while (out) {
		struct completion *next = out->next;
		struct block_req *r = out->req;
		int64_t result = out->result;

		q->release(out);
		__atomic_sub_fetch(&q->in_flight, 1, __ATOMIC_ACQ_REL);
		r->done(r, result);
		out = next;
	}
}

void completions_drain(struct completions *q)
{
	struct pollfd p = { .fd = q->event_fd, .events = POLLIN };

	while (completions_in_flight(q)) {
		poll(&p, 1, 100);
		completions_process(q);
	}
}
