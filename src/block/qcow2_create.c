/* A new, empty qcow2 image (version 3, 64 KiB clusters, 16-bit
 * refcounts), as `qemu-img create -f qcow2` lays it out: the header in
 * cluster 0, the refcount table in cluster 1, its one refcount block in
 * cluster 2, the L1 table from cluster 3. For snapshot=on's overlay. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block_driver.h"
#include "block/qcow2.h"
#include "util/le.h"

#define CLUSTER_BITS 16
#define CLUSTER (1ull << CLUSTER_BITS)

int qcow2_create(struct block_backend *file, uint64_t size)
{
	uint64_t l2_covers = CLUSTER / 8 * CLUSTER, l1_size = (size + l2_covers - 1) / l2_covers;
	uint64_t l1_clusters = (l1_size * 8 + CLUSTER - 1) / CLUSTER, used = 3 + l1_clusters, i;
	uint8_t *c = calloc(1, CLUSTER);
	int r = -ENOMEM;

	if (!c)
		return -ENOMEM;
	/* One refcount block counts 32768 clusters: far more than used. */
	be32_put(c, QCOW2_MAGIC);
	be32_put(c + 4, 3);
	be32_put(c + 20, CLUSTER_BITS);
	be64_put(c + 24, size);
	be32_put(c + 36, (uint32_t)l1_size);
	be64_put(c + 40, 3 * CLUSTER);
	be64_put(c + 48, CLUSTER);
	be32_put(c + 56, 1);
	be32_put(c + 96, 4);   /* refcount_order: 16 bits */
	be32_put(c + 100, 104); /* header_length; no extensions (end marker: zeroes) */
	if ((r = block_pwrite(file, c, CLUSTER, 0)) < 0)
		goto out;
	memset(c, 0, CLUSTER);
	be64_put(c, 2 * CLUSTER);
	if ((r = block_pwrite(file, c, CLUSTER, CLUSTER)) < 0)
		goto out;
	memset(c, 0, CLUSTER);
	for (i = 0; i < used; i++)
		qcow2_refcount_set(c, 4, i, 1);
	if ((r = block_pwrite(file, c, CLUSTER, 2 * CLUSTER)) < 0)
		goto out;
	memset(c, 0, CLUSTER);
	for (i = 0; i < l1_clusters && r == 0; i++)
		r = block_pwrite(file, c, CLUSTER, (3 + i) * CLUSTER);
	if (r == 0)
		file->size = used * CLUSTER; /* what opening it will see */
out:
	free(c);
	return r;
}
