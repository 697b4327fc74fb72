/* Inside the block layer: a node of the graph behind a device's disk. A
 * protocol node reaches the data (the file protocol: an image file or a
 * block device; NBD; RBD); a format node (qcow2) turns guest requests into
 * requests on the protocol node below it. The raw format is the protocol
 * node itself. block.c checks every request against the node (sectors,
 * bounds, read-only) and dispatches through the driver; a device only
 * ever holds the top node, as struct block_backend. */
#ifndef VIREO_BLOCK_BLOCK_DRIVER_H
#define VIREO_BLOCK_BLOCK_DRIVER_H

#include "block/block.h"

struct block_driver {
	const char *name; /* "file", "qcow2": for messages and --stats-json */
	/* A request already checked by block_submit(). 0 or -errno as
	 * block_submit() returns. */
	int (*submit)(struct block_backend *b, struct block_req *r);
	void (*plug)(struct block_backend *b);	 /* optional */
	void (*unplug)(struct block_backend *b); /* optional */
	int (*completion_fd)(const struct block_backend *b);
	void (*process_completions)(struct block_backend *b);
	unsigned int (*in_flight)(const struct block_backend *b);
	void (*drain)(struct block_backend *b);
	int (*sync)(struct block_backend *b);
	int (*lock)(const struct block_backend *b);
	void (*unlock)(const struct block_backend *b);
	/* Drained already. Frees b. */
	void (*close)(struct block_backend *b);
	/* For --stats-json. */
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
};

#endif
