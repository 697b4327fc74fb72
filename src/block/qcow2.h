/* The qcow2 format driver: a node over a protocol node (the image file),
 * with an optional backing node. Guest requests run in worker threads
 * (block_workers) against an in-memory L1 table, an L2 table cache and a
 * refcount block cache, under one metadata lock that is not held while
 * data moves, except while a new cluster is filled.
 *
 * What reaches the file, and in what order, keeps the image consistent
 * at every point (a kill -9 or a power cut leaves, at worst, leaked
 * clusters): a cluster's refcount is written before anything may point
 * to it; L2 tables (and the L1 entries of new tables) are changed in
 * memory and written at a flush, after a sync that makes the data and
 * refcounts they point to durable; clusters are freed (refcount down,
 * hole punched) only after the tables that no longer point to them are
 * durable. Freed clusters are never handed out again while the image is
 * open (new clusters come from the end of the file), so a write racing a
 * discard can never land in another guest cluster's data. */
#ifndef VIREO_BLOCK_QCOW2_H
#define VIREO_BLOCK_QCOW2_H

#include <pthread.h>
#include <stdlib.h>

#include "block/block_driver.h"
#include "block/block_workers.h"
#include "block/qcow2_format.h"

/* Opens a qcow2 image on file (which it owns from then on, also on
 * failure). probed: the format was guessed, not given, and the image
 * must not name any other file (a guest that wrote a qcow2 header into
 * a raw disk must not make Vireo open a host file). chain: the images
 * above this one (block_driver.h). NULL on failure,
 * with one line logged. */
struct block_backend *qcow2_open(struct block_backend *file, const struct block_options *o,
				 bool probed, struct block_chain *chain);

/* snapshot=on: an empty qcow2 image written on file (a new, growable
 * file) for a disk of size bytes, then opened over backing (an open
 * node, read-only, which the overlay owns from then on, also on
 * failure). NULL on failure, logged. */
struct block_backend *qcow2_open_overlay(struct block_backend *file,
					 const struct block_options *o,
					 struct block_backend *backing);
int qcow2_create(struct block_backend *file, uint64_t size);
/* How many READs, WRITEs of the qcow2 node b were served in the device's
 * own thread (qcow2_now), for tests. */
uint64_t qcow2_reads_now(const struct block_backend *b);
uint64_t qcow2_writes_now(const struct block_backend *b);
/* The smallest WRITE qcow2_now serves (QCOW2_WRITE_NOW_MIN unless a test
 * sets another, 0 for all); it serves READs of every size. */
void qcow2_set_write_now_min(struct block_backend *b, uint64_t bytes);

/* ---- inside the driver ---- */

struct qcow2_l2 {
	uint64_t offset; /* host offset of the table; 0: slot free */
	uint64_t *t;	 /* cluster_size / 8 entries, big-endian as on disk */
	bool dirty;
	uint64_t used;	 /* LRU stamp */
};

struct qcow2_rblock {
	uint64_t offset; /* host offset of the block; 0: slot free */
	uint8_t *b;
	uint64_t used;
};

#define QCOW2_RBLOCKS 8
#define QCOW2_MAX_ALLOCS 64 /* runs of guest clusters being allocated at once */
#define QCOW2_MAX_RUN 256  /* clusters one host I/O covers at most */

struct qcow2 {
	struct block_backend base;
	struct block_backend *file;
	struct block_backend *backing; /* NULL without one */
	struct qcow2_header h;
	struct block_workers *workers;
	uint64_t cluster_size, l2_entries;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t alloc_done;
	uint64_t *l1; /* host order */
	uint8_t *l1_dirty; /* per 512-byte sector of the L1 table */
	struct qcow2_l2 *l2;
	unsigned int nl2;
	uint64_t stamp;
	uint64_t *reftable; /* host order */
	uint64_t reftable_entries;
	bool reftable_dirty;
	struct qcow2_rblock rb[QCOW2_RBLOCKS];
	uint64_t alloc_end; /* where the next new cluster goes */
	/* Runs of guest clusters a write is filling now (first guest offset,
	 * clusters): others touching them wait. */
	struct { uint64_t first, n; } allocating[QCOW2_MAX_ALLOCS];
	unsigned int nallocating;
	/* Host clusters to free once the tables no longer pointing to them
	 * are durable, each with how many references go. */
	uint64_t *frees;
	size_t nfrees, frees_cap;
	bool failed; /* a metadata write failed: the image is read-only now */
	uint64_t reads_now, writes_now; /* what qcow2_now served (the device's thread only) */
	uint64_t write_now_min; /* the smallest WRITE qcow2_now serves (qcow2.c) */
};

/* A cluster-sized buffer aligned for O_DIRECT (cache=none); NULL when out
 * of memory. free() frees it. */
static inline void *qcow2_alloc_buf(uint64_t size)
{
	void *p;

	return posix_memalign(&p, 4096, (size_t)size) ? NULL : p;
}

/* qcow2_meta.c: tables, refcounts, allocation, flush. Lock held. */
int qcow2_l2_get(struct qcow2 *q, uint64_t guest, bool alloc, struct qcow2_l2 **out);
/* qcow2_l2_get without I/O: -EAGAIN when the table is not in the cache. */
int qcow2_l2_peek(struct qcow2 *q, uint64_t guest, struct qcow2_l2 **out);
uint64_t qcow2_l2_entry(const struct qcow2 *q, const struct qcow2_l2 *t, uint64_t guest);
void qcow2_l2_set(struct qcow2 *q, struct qcow2_l2 *t, uint64_t guest, uint64_t entry);
int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *host);
/* n clusters in a row at the end, counted (one write per refcount block). */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *host);
/* Frees the host clusters a mapping holds, at the next flush. */
int qcow2_free_later(struct qcow2 *q, const struct qcow2_mapping *m);
int qcow2_flush_locked(struct qcow2 *q);
int qcow2_meta_init(struct qcow2 *q, uint64_t l2_cache_bytes);
void qcow2_meta_free(struct qcow2 *q);

/* qcow2_io.c: a READ or WRITE served at once in the caller's thread, or
 * false (too small, or it would wait; nothing to undo: hand it to the
 * workers). */
bool qcow2_now(struct qcow2 *q, struct block_req *r);
/* qcow2_io.c: one guest request, in a worker thread. */
int64_t qcow2_io_sync(struct block_backend *b, enum block_op op, uint64_t offset,
		      const struct iovec *iov, unsigned int iovcnt, uint64_t len);

#endif
