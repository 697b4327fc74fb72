/* Inside the block layer: a node of the graph behind a device's disk. A
 * protocol node reaches the data (the file protocol: an image file or a
 * block device; NBD; RBD); a format node (qcow2) turns guest requests into
 * requests on the protocol node below it. The raw format is the protocol
 * node itself. block.c checks every request against the node (sectors,
 * bounds, read-only) and dispatches through the driver; a device only
 * ever holds the top node, as struct block_backend. */
#ifndef VIREO_BLOCK_BLOCK_DRIVER_H
#define VIREO_BLOCK_BLOCK_DRIVER_H

#include <sys/types.h>

#include "block/block.h"

struct block_driver {
	const char *name; /* "file", "qcow2": for messages and --stats-json */
	/* A request already checked by block_submit(). 0 or -errno as
	 * block_submit() returns. */
	int (*submit)(struct block_backend *b, struct block_req *r);
	void (*plug)(struct block_backend *b);	 /* optional */
	void (*unplug)(struct block_backend *b); /* optional */
	/* NULL for a driver that completes through its node's done queue
	 * (completions.h); the file driver reaps io_uring itself. */
	int (*completion_fd)(const struct block_backend *b);
	void (*process_completions)(struct block_backend *b);
	unsigned int (*in_flight)(const struct block_backend *b);
	void (*drain)(struct block_backend *b);
	/* Durable now (block_sync). NULL: a FLUSH through io_sync, which is
	 * all a network protocol can ask of its server. */
	int (*sync)(struct block_backend *b);
	/* The image's lock between VMMs. NULL: none of ours (an NBD server
	 * arbitrates its clients or does not; RBD's exclusive lock is
	 * librbd's, taken as it writes). */
	int (*lock)(const struct block_backend *b);
	void (*unlock)(const struct block_backend *b);
	/* One whole request, synchronously, from any thread (a format's
	 * workers reading its tables, probing): bytes for READ/WRITE, 0 for
	 * the others, or -errno. Offsets and lengths in whole sectors, as
	 * block_submit's. */
	int64_t (*io_sync)(struct block_backend *b, enum block_op op, uint64_t offset,
			   const struct iovec *iov, unsigned int iovcnt, uint64_t len);
	/* Optional: a READ or WRITE done now, in the caller's thread, only
	 * if that cannot wait on a device (the data is in memory, or goes
	 * to memory): the bytes moved, all of them, or -EAGAIN (it would
	 * wait, or the node cannot tell; the caller takes its asynchronous
	 * way, and does the whole again: a write repeated is the same
	 * write), or -errno. For a format serving a request in the device's
	 * thread instead of a worker's. */
	int64_t (*io_nowait)(struct block_backend *b, enum block_op op, uint64_t offset,
			     const struct iovec *iov, unsigned int iovcnt);
	/* Drained already. Frees b. */
	void (*close)(struct block_backend *b);
	/* For --stats-json. direct and fdatasyncs may be NULL: no O_DIRECT,
	 * no fdatasync of a host file (a network protocol's). */
	const char *(*engine_name)(const struct block_backend *b);
	bool (*direct)(const struct block_backend *b);
	uint64_t (*fdatasyncs)(const struct block_backend *b);
};

/* What every node has; a driver's own state follows it (the driver's
 * struct begins with this one). */
struct block_backend {
	const struct block_driver *drv;
	char *path;	/* what the user named, for messages */
	uint64_t size;	/* bytes the guest sees */
	bool read_only;
	/* The file under a format: of any size, read past its end as zeroes,
	 * written past it by the format as it allocates (block_submit's
	 * bounds do not apply; the format checks its own offsets). */
	bool growable;
	/* The queue the driver's requests complete through, set when the
	 * node opens; NULL: the driver's own four completion ops. */
	struct completions *done;
};

/* The files a disk's backing chain has opened so far (from the disk
 * itself down): one that comes back is a loop, refused by name. */
#define BLOCK_CHAIN_MAX 65 /* the disk and 64 backing files */
struct block_chain {
	unsigned int depth; /* how many are in */
	dev_t dev[BLOCK_CHAIN_MAX];
	ino_t ino[BLOCK_CHAIN_MAX];
};

/* A backing file of the image opened with parent's options: read-only,
 * format given (or NULL: probed, and then without a backing file of its
 * own), below the images in chain. */
struct block_backend *block_open_backing(const struct block_options *parent, const char *path,
					 const char *format, struct block_chain *chain);

/* s as it may be printed: control characters as '?', at most 200 bytes
 * (a file name an image gives is the guest's to write). */
const char *block_printable(const char *s, char *buf, size_t size);

/* The node's io_sync, with block_submit's checks. */
int64_t block_io_sync(struct block_backend *b, enum block_op op, uint64_t offset,
		      const struct iovec *iov, unsigned int iovcnt, uint64_t len);
/* The node's io_nowait (-EAGAIN for a node without one), READ or WRITE.
 * Offsets as io_sync's. */
int64_t block_io_nowait(struct block_backend *b, enum block_op op, uint64_t offset,
			const struct iovec *iov, unsigned int iovcnt);
/* One buffer read or written whole: 0, or -errno (a short transfer is
 * -EIO). */
int block_pread(struct block_backend *b, void *buf, uint64_t len, uint64_t offset);
int block_pwrite(struct block_backend *b, const void *buf, uint64_t len, uint64_t offset);

#endif
