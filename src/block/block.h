/* Block backends: what a virtio-blk (or IDE) device model reads and writes
 * through. The device knows requests and completions only; the backend
 * knows files, io_uring and threads. Requests complete asynchronously: the
 * backend signals completion_fd (an eventfd) and the device, in its own
 * I/O thread, calls block_process_completions(), which runs each finished
 * request's done() callback in that thread. */
#ifndef VIREO_BLOCK_BLOCK_H
#define VIREO_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

enum block_op {
	BLOCK_READ,
	BLOCK_WRITE,
	BLOCK_FLUSH,	    /* fdatasync */
	BLOCK_DISCARD,	    /* punch a hole: reads back as zeroes */
	BLOCK_WRITE_ZEROES, /* zeroes, blocks stay allocated */
};

enum block_cache {
	BLOCK_CACHE_WRITEBACK, /* page cache; data is safe after a flush */
	BLOCK_CACHE_NONE,      /* O_DIRECT where the file system allows it */
};

struct block_req {
	enum block_op op;
	uint64_t offset;	  /* bytes */
	const struct iovec *iov;  /* READ/WRITE buffers; must stay valid */
	unsigned int iovcnt;
	uint64_t len;		  /* DISCARD/WRITE_ZEROES: bytes */
	/* result: bytes transferred (READ/WRITE), 0 (others), or -errno.
	 * A short read past the end of the image is an error (-EIO). */
	void (*done)(struct block_req *r, int64_t result);
	void *opaque;
};

enum block_protocol {
	BLOCK_PROTO_FILE, /* path: an image file or a block device */
	BLOCK_PROTO_NBD,  /* path: an NBD URI (nbd://, nbd+unix://) */
	BLOCK_PROTO_RBD,  /* path: POOL/IMAGE of a Ceph cluster */
};

struct block_options {
	enum block_protocol protocol;
	const char *path;
	/* RBD: the cluster's ceph.conf (NULL: librados's default) and the
	 * client id (NULL: admin). */
	const char *rbd_conf, *rbd_id;
	bool read_only;
	enum block_cache cache;
	/* "uring" (default when the kernel allows it) or "threads". */
	const char *engine;
	/* The image belongs to another VMM until a migration hands it over
	 * (--incoming tcp:): opened, but not locked until block_lock(). */
	bool defer_lock;
	/* The image format: "raw", "qcow2", or NULL to probe (a qcow2 image
	 * found by probing is never allowed to name another file: see
	 * block_open). */
	const char *format;
	/* qcow2: bytes of L2 tables kept in memory (0: enough for the whole
	 * disk, up to 32 MiB). */
	uint64_t l2_cache_size;
	/* As QEMU's -snapshot: the image is opened read-only, and the guest's
	 * writes go to a temporary qcow2 overlay in $TMPDIR (default
	 * /var/tmp), deleted as it is created: gone at exit, however Vireo
	 * ends. */
	bool snapshot;
};

struct block_backend;

/* Requests are in whole sectors: offsets and lengths are multiples of
 * this, and a READ/WRITE has at most 1024 (IOV_MAX) iovecs. */
#define BLOCK_SECTOR_SIZE 512

/* Opens an image: its file, and the format over it (and a qcow2 image's
 * backing chain, read-only). Without a format the image is probed: a
 * file that starts like qcow2 is opened as qcow2 but may not have a
 * backing file (a guest that writes a qcow2 header into its raw disk
 * must never make Vireo open a host file: format=qcow2 says the image is
 * trusted to name one), anything else is raw. On failure logs one line
 * naming the file and the problem, and returns NULL. Opening writes
 * nothing, except that a qcow2 image opened for writing has the
 * auto-clear feature bits Vireo does not maintain cleared, as the format
 * requires.
 * Calls on one backend must not run concurrently (a device serialises
 * them with its own lock); the backend's threads are its own business. */
struct block_backend *block_open(const struct block_options *o);
/* The image's lock (flock: exclusive, shared when read-only), which keeps
 * two VMMs from writing one image. A migration's source gives it up once
 * its last write is flushed and the destination takes it before it runs;
 * the source takes it back if the migration fails. block_lock: 0, or -1
 * (errno EWOULDBLOCK: another process holds it). */
int block_lock(const struct block_backend *b);
void block_unlock(const struct block_backend *b);
/* Drains (every pending done() runs first), then closes. NULL is fine. */
void block_close(struct block_backend *b);
uint64_t block_size(const struct block_backend *b);
bool block_read_only(const struct block_backend *b);
const char *block_engine_name(const struct block_backend *b);
/* What the backend was opened on (the file's path), for messages. */
const char *block_path(const struct block_backend *b);
/* The image format: "raw" or "qcow2". */
const char *block_format(const struct block_backend *b);
/* 0: queued, done() will be called; -errno: refused now, done() never:
 * -EINVAL (out of the image, not whole sectors, bad op), -EROFS (a write
 * to a read-only image), -ENOMEM. r must stay valid until done(). */
int block_submit(struct block_backend *b, struct block_req *r);
/* Optional batching: submissions between block_plug() and block_unplug()
 * may be held back and handed to the kernel together at the unplug (one
 * io_uring_enter for a whole ring drain). Calls nest. */
void block_plug(struct block_backend *b);
void block_unplug(struct block_backend *b);
/* Readable when requests have completed. */
int block_completion_fd(const struct block_backend *b);
/* Runs done() of every finished request, in the caller's thread; never
 * blocks. done() may submit new requests. */
void block_process_completions(struct block_backend *b);
/* Requests submitted and whose done() has not run yet. */
unsigned int block_in_flight(const struct block_backend *b);
/* Waits until nothing is in flight, running every done() on the way. */
void block_drain(struct block_backend *b);

/* For --stats-json; safe in any thread. Whether cache=none really got
 * O_DIRECT (false when the file system made it fall back to the page
 * cache, and always for cache=writeback). */
bool block_direct(const struct block_backend *b);
/* fdatasyncs of the image that the host kernel completed successfully,
 * counted by the engine that issued them (fdatasync(2) in the thread
 * pool, IORING_OP_FSYNC with IORING_FSYNC_DATASYNC in io_uring): what
 * makes a FLUSH durable, as opposed to the FLUSH merely being answered. */
uint64_t block_fdatasyncs(const struct block_backend *b);
/* Makes every write done so far durable, now, in the caller's thread
 * (nothing may be in flight: a paused VM's disk; not counted among the
 * guest's fdatasyncs). 0, or -1 (errno). */
int block_sync(struct block_backend *b);

#endif
