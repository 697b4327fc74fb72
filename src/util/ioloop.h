/* An I/O thread: an epoll loop that calls a handler when one of its file
 * descriptors is ready. Each VirtIO device runs its queues in a loop of its
 * own, woken by KVM ioeventfds (queue notifications) and by its backend's
 * descriptors (tap, io_uring completions), so a vCPU never runs device
 * code on the fast path and one slow device does not stall another. */
#ifndef VIREO_UTIL_IOLOOP_H
#define VIREO_UTIL_IOLOOP_H

#include <pthread.h>
#include <stdint.h>

/* events: the EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits that are ready. */
typedef void (*ioloop_handler)(void *ctx, uint32_t events);

struct ioloop_watch {
	int fd;
	ioloop_handler handler;
	void *ctx;
};

struct ioloop {
	const char *name; /* thread name, 15 characters at most */
	int epoll_fd;
	int stop_fd; /* eventfd that ends the thread */
	pthread_t thread;
	int running;
};

int ioloop_init(struct ioloop *l, const char *name);
/* Watches fd for events (EPOLLIN, EPOLLOUT...); w must stay valid until it
 * is removed. Safe from any thread, also while the loop runs. */
int ioloop_add(struct ioloop *l, struct ioloop_watch *w, int fd, uint32_t events,
	       ioloop_handler handler, void *ctx);
int ioloop_modify(struct ioloop *l, struct ioloop_watch *w, uint32_t events);
void ioloop_remove(struct ioloop *l, struct ioloop_watch *w);
int ioloop_start(struct ioloop *l);
/* Stops and joins the thread; handlers are not called after it returns.
 * What became ready meanwhile stays ready: ioloop_start() again picks it
 * up (pause and resume). */
void ioloop_stop(struct ioloop *l);
void ioloop_destroy(struct ioloop *l);

#endif
