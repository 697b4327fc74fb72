/* Asynchronous requests over a node's synchronous I/O: a few threads take
 * requests from a queue, run the node's io_sync, and hand the results back
 * through a completion queue (completions.h), as block.h promises (done()
 * in the caller's thread, in block_process_completions). For format
 * drivers, whose requests may wait on metadata: a request waiting never
 * holds up the others. */
#ifndef VIREO_BLOCK_BLOCK_WORKERS_H
#define VIREO_BLOCK_BLOCK_WORKERS_H

#include "block/block_driver.h"
#include "block/completions.h"

struct block_workers;

/* n threads running b->drv->io_sync. NULL on failure (logged). */
struct block_workers *block_workers_start(struct block_backend *b, unsigned int n);
/* Drains, stops the threads, frees. NULL is fine. */
void block_workers_stop(struct block_workers *w);
int block_workers_submit(struct block_workers *w, struct block_req *r);
/* A request the driver finished itself, in the caller's thread: its
 * done() runs from the queue like the threads' (never inside submit, as
 * block.h promises). 0, or -ENOMEM (nothing queued). */
int block_workers_finished(struct block_workers *w, struct block_req *r, int64_t result);
/* Where the threads hand finished requests over: the node's
 * completion_fd, process_completions, in_flight and drain are this
 * queue's. */
struct completions *block_workers_done(struct block_workers *w);

#endif
