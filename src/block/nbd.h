/* The NBD protocol node (nbd.c). */
#ifndef VIREO_BLOCK_NBD_H
#define VIREO_BLOCK_NBD_H

#include "block/block.h"

/* Connects to the NBD export o->path names, a URI as libnbd and QEMU take
 * them: nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH. NULL,
 * with one line logged, on failure. */
struct block_backend *block_nbd_open(const struct block_options *o);

#endif
