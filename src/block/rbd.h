/* The Ceph RBD protocol node (rbd.c). */
#ifndef VIREO_BLOCK_RBD_H
#define VIREO_BLOCK_RBD_H

#include "block/block.h"

/* Opens the RBD image o->path names as POOL/IMAGE, on the cluster
 * o->rbd_conf describes (NULL: librados's default search for ceph.conf),
 * as client o->rbd_id (NULL: admin). NULL, with one line logged, on
 * failure. */
struct block_backend *block_rbd_open(const struct block_options *o);

#endif
