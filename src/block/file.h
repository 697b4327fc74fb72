/* The file protocol: a raw image file or block device, read and written
 * through an I/O engine. file.c owns the requests (bounce buffers, short
 * transfers, fallbacks, completion callbacks), file_open.c opening and
 * locking; an engine (io_uring or a thread pool) only issues one system
 * call's worth of work at a time and hands back the raw result. */
#ifndef VIREO_BLOCK_FILE_H
#define VIREO_BLOCK_FILE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/block.h"
#include "block/block_driver.h"

/* One request on its way through an engine. */
struct block_io {
	struct block_req *req;
	enum block_op op;	/* what the next step does (may fall back) */
	uint64_t offset;	/* image offset of the next step */
	uint64_t remaining;	/* bytes the next steps still have to cover */
	uint64_t transferred;	/* READ/WRITE: bytes done so far */
	struct iovec *iov;	/* READ/WRITE: what is left to transfer */
	unsigned int iovcnt;
	bool iov_owned;		/* iov may be advanced in place */
	bool zero_fill;		/* WRITE of zeroes replacing a fallocate */
	bool datasync_queued;	/* io_uring: the step in the ring is a datasync */
	unsigned int retries;	/* -EAGAIN/-EINTR seen in a row */
	int64_t result;		/* final result, once finished */
	struct iovec *iov_copy; /* owned iovecs (short transfer, zero fill) */
	void *bounce;		/* aligned buffer for O_DIRECT */
	struct iovec bounce_iov;
	struct block_io *next;	/* engine queues and completion lists */
};

struct block_engine;

struct block_file {
	struct block_backend base; /* first: what block.h hands out */
	int fd;
	bool direct;		/* O_DIRECT in effect */
	uint32_t mem_align;	/* O_DIRECT buffer alignment, bytes */
	int event_fd;		/* completion_fd: an eventfd */
	void *zero_buf;		/* BLOCK_ZERO_CHUNK zeroes, aligned */
	unsigned int plugged;	/* block_plug() depth */
	unsigned int in_flight; /* atomic: accepted, done() not yet run */
	uint64_t fdatasyncs;	/* atomic: see block_fdatasyncs() */
	int nowait[2];		/* atomic: how io_nowait reads, writes (file.c) */

	pthread_mutex_t lock;	   /* protects 'ready' */
	struct block_io *ready;	   /* finished without reaching the engine */

	const struct block_engine *engine;
	void *engine_priv;
};

struct block_engine {
	const char *name;
	/* Returns 0 or -errno (the backend then tries another engine). */
	int (*init)(struct block_file *b);
	/* Nothing is in flight any more. */
	void (*fini)(struct block_file *b);
	/* Issues the next step of io (see file_io_step_done()). 0 or -errno
	 * when it cannot be queued at all. */
	int (*submit)(struct block_file *b, struct block_io *io);
	/* Pushes out steps batched while the backend was plugged. */
	void (*unplug)(struct block_file *b);
	/* Takes the requests that finished, as a list through ->next; steps
	 * that need to go on are resubmitted by the engine itself. */
	struct block_io *(*reap)(struct block_file *b);
};

/* Opens the file of o->path as a node of its own (the raw format is the
 * file itself). growable: for a format to use (block_driver.h), of any
 * size; else a raw image, checked as one. NULL, with one line logged, on
 * failure. */
struct block_backend *block_file_open(const struct block_options *o, bool growable);
/* A growable file found to be a raw image after all: checked as one
 * (non-empty, whole sectors) and no longer growable. 0, or -1 logged. */
int block_file_check_raw(struct block_backend *b);

/* The driver (file.c), and the ops of it file_open.c implements. */
extern const struct block_driver block_file_driver;
int file_lock(const struct block_backend *b);
void file_unlock(const struct block_backend *b);
void file_close(struct block_backend *b);

extern const struct block_engine block_engine_uring;
extern const struct block_engine block_engine_threads;

#define BLOCK_ZERO_CHUNK (64u << 10) /* bytes of zeroes per iovec */
#define BLOCK_ZERO_IOVS 16	     /* iovecs per zero-filling write */

/* Accounts for one step's result (bytes or -errno) and prepares the next.
 * Returns true when io is finished (io->result is final), false when the
 * engine must issue the next step. Safe in any thread: it touches io and
 * the backend's immutable fields only. */
bool file_io_step_done(struct block_file *b, struct block_io *io, int64_t res);

/* The system call for io's next step, for engines that block: bytes or
 * -errno. */
int64_t file_io_step_sync(struct block_file *b, struct block_io *io);

/* An engine's fdatasync of the image returned res (0 or more: success;
 * -errno: failure, not counted). Called where the sync is really issued,
 * so a FLUSH that never reaches the host file counts nothing. */
void file_count_fdatasync(struct block_file *b, int64_t res);

/* Wakes whoever waits on the completion fd. */
void file_signal(struct block_file *b);

#endif
