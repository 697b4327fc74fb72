/* Finished requests on their way to the device. block.h promises that
 * done() runs in the device's own I/O thread, from
 * block_process_completions(); NBD, RBD and the format drivers' workers
 * finish requests in other threads (libnbd's callbacks in a format
 * worker that drives the connection while it waits, librbd's own
 * threads, block_workers.c's), and hand them over
 * through this queue: pushed from any thread, signalled on an eventfd
 * that the device polls, taken off in the device's thread, oldest first,
 * each done() called there.
 *
 * The queue also counts the requests in flight (handed to whatever will
 * complete them, done() not run yet), which is what draining waits on:
 * only completions_process() lowers the count, in the device's thread,
 * so a request counts until its done() has run. */
#ifndef VIREO_BLOCK_COMPLETIONS_H
#define VIREO_BLOCK_COMPLETIONS_H

#include <pthread.h>
#include <stdint.h>

#include "block/block.h"

/* Part of a driver's own request structure. req and result are what
 * done() is called with: the driver sets them before pushing. */
struct completion {
	struct block_req *req;
	int64_t result;
	struct completion *next; /* the queue's */
};

struct completions {
	pthread_mutex_t lock;	 /* done */
	struct completion *done; /* pushed, newest first */
	unsigned int in_flight;	 /* atomic */
	int event_fd;
	/* Frees the driver's request around c, once req and result have
	 * been read: before done() runs, so that done() finds the request
	 * gone from the driver (it may submit req again at once). NULL: the
	 * queue was never set up. */
	void (*release)(struct completion *c);
};

/* 0, or -errno (no eventfd: the queue stays as it was, all zeroes). */
int completions_init(struct completions *q, void (*release)(struct completion *c));
/* Once nothing is in flight (drained) and nothing can push any more.
 * A queue that is all zeroes (calloc'd, completions_init not reached or
 * failed) is fine: a driver's cleanup after a half-done open. */
void completions_destroy(struct completions *q);

/* One more request in flight, whose completion will be pushed: in the
 * device's thread (block_submit's), before or after the request is
 * handed over (the count only goes down in that thread too). */
void completions_expect(struct completions *q);
/* From any thread, exactly once per completions_expect(). c is the
 * queue's until released. */
void completions_push(struct completions *q, struct completion *c);

/* What block_completion_fd() and the others of block.h return, for a
 * driver that completes through this queue. */
int completions_fd(const struct completions *q);
/* Runs done() of every request pushed so far, oldest first, each one
 * released and counted out first (a done() that asks block_in_flight()
 * does not count its own request); never blocks. The eventfd is read
 * before looking, so a push after the look makes it readable again. */
void completions_process(struct completions *q);
unsigned int completions_in_flight(const struct completions *q);
/* Waits until nothing is in flight, running every done() on the way. */
void completions_drain(struct completions *q);

#endif
