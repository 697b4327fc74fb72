/* Asynchronous requests over a node's synchronous I/O: a few threads take
 * requests from a queue, run the node's io_sync, and hand the results back
 * through an eventfd, as block.h promises (done() in the caller's thread,
 * in block_process_completions). For format drivers, whose requests may
 * wait on metadata: a request waiting never holds up the others. */
#ifndef VIREO_BLOCK_BLOCK_WORKERS_H
#define VIREO_BLOCK_BLOCK_WORKERS_H

#include "block/block_driver.h"

struct block_workers;

/* n threads running b->drv->io_sync. NULL on failure (logged). */
struct block_workers *block_workers_start(struct block_backend *b, unsigned int n);
/* Drains, stops the threads, frees. NULL is fine. */
void block_workers_stop(struct block_workers *w);
int block_workers_submit(struct block_workers *w, struct block_req *r);
int block_workers_fd(const struct block_workers *w);
void block_workers_process(struct block_workers *w);
unsigned int block_workers_in_flight(const struct block_workers *w);
void block_workers_drain(struct block_workers *w);

#endif
