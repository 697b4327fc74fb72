#include "util/ioloop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/eventfd.h"
#include "util/log.h"
#include "util/thread.h"

#define MAX_EVENTS 16

int ioloop_init(struct ioloop *l, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	memset(l, 0, sizeof(*l));
	l->name = name;
	l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epoll_fd < 0 || l->stop_fd < 0 ||
	    epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->stop_fd, &ev) < 0) {
		log_error("%s: cannot create its I/O thread's epoll: %s", name, strerror(errno));
		ioloop_destroy(l);
		return -1;
	}
	return 0;
}

int ioloop_add(struct ioloop *l, struct ioloop_watch *w, int fd, uint32_t events,
	       ioloop_handler handler, void *ctx)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	w->fd = fd;
	w->handler = handler;
	w->ctx = ctx;
	if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_error("%s: cannot watch fd %d: %s", l->name, fd, strerror(errno));
		return -1;
	}
	return 0;
}

int ioloop_modify(struct ioloop *l, struct ioloop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, w->fd, &ev);
}

void ioloop_remove(struct ioloop *l, struct ioloop_watch *w)
{
	epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
}

static void *ioloop_thread(void *arg)
{
	struct ioloop *l = arg;
	struct epoll_event ev[MAX_EVENTS];

	for (;;) {
		int i, n = epoll_wait(l->epoll_fd, ev, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: epoll_wait failed: %s", l->name, strerror(errno));
			return NULL;
		}
		for (i = 0; i < n; i++) {
			struct ioloop_watch *w = ev[i].data.ptr;

			if (!w)
				return NULL; /* stop_fd */
			w->handler(w->ctx, ev[i].events);
		}
	}
}

int ioloop_start(struct ioloop *l)
{
	int err = thread_create(&l->thread, ioloop_thread, l);

	if (err) {
		log_error("%s: cannot start its I/O thread: %s", l->name, strerror(err));
		return -1;
	}
	pthread_setname_np(l->thread, l->name);
	l->running = 1;
	return 0;
}

void ioloop_stop(struct ioloop *l)
{
	if (!l->running)
		return;
	eventfd_signal(l->stop_fd);
	pthread_join(l->thread, NULL);
	/* Consume the stop request, so that the loop can start again (a
	 * paused device's thread is stopped and started like this). */
	(void)eventfd_consume(l->stop_fd); /* there is one: the thread saw it */
	l->running = 0;
}

void ioloop_destroy(struct ioloop *l)
{
	ioloop_stop(l);
	if (l->epoll_fd >= 0)
		close(l->epoll_fd);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	l->epoll_fd = l->stop_fd = -1;
}
