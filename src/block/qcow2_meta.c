/* qcow2 metadata: the L2 table cache, refcounts, cluster allocation and
 * the flush that writes tables in the order qcow2.h describes. Every
 * function here runs with q->lock held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2.h"
#include "util/le.h"
#include "util/log.h"

static int file_sync(struct qcow2 *q)
{
	int64_t r = block_io_sync(q->file, BLOCK_FLUSH, 0, NULL, 0, 0);

	return r < 0 ? (int)r : 0;
}

/* A metadata write failed: from now on the image takes no more writes
 * (what is on disk stays consistent; what is in memory can no longer be
 * written in order). */
static int fail(struct qcow2 *q, int err, const char *what)
{
	if (!q->failed)
		log_error("disk '%s': cannot write its %s (%s): no more writes to it", q->base.path,
			  what, strerror(-err));
	q->failed = true;
	return -EIO;
}

/* ---- L2 tables ---- */

static int write_l2(struct qcow2 *q, struct qcow2_l2 *t)
{
	int r = block_pwrite(q->file, t->t, q->cluster_size, t->offset);

	if (r < 0)
		return fail(q, r, "L2 table");
	t->dirty = false;
	return 0;
}

static int write_l1_sector(struct qcow2 *q, uint64_t sec)
{
	uint8_t buf[512] = { 0 };
	uint64_t first = sec * 64, i, n = q->h.l1_size - first < 64 ? q->h.l1_size - first : 64;
	int r;

	for (i = 0; i < n; i++)
		be64_put(buf + i * 8, q->l1[first + i]);
	r = block_pwrite(q->file, buf, 512, q->h.l1_offset + sec * 512);
	return r < 0 ? fail(q, r, "L1 table") : 0;
}

static struct qcow2_l2 *find_l2(struct qcow2 *q, uint64_t offset)
{
	unsigned int i;

	for (i = 0; i < q->nl2; i++)
		if (q->l2[i].offset == offset)
			return &q->l2[i];
	return NULL;
}

/* A slot for another table: a free one, or the least recently used,
 * written first if dirty (which, in order, takes a whole flush). */
static int l2_slot(struct qcow2 *q, struct qcow2_l2 **out)
{
	struct qcow2_l2 *lru = &q->l2[0];
	unsigned int i;
	int r;

	for (i = 0; i < q->nl2; i++) {
		if (!q->l2[i].offset) {
			*out = &q->l2[i];
			return 0;
		}
		if (q->l2[i].used < lru->used)
			lru = &q->l2[i];
	}
	if (lru->dirty && (r = qcow2_flush_locked(q)) < 0)
		return r;
	lru->offset = 0;
	*out = lru;
	return 0;
}

static int free_push(struct qcow2 *q, uint64_t host);

/* How far l2_get goes for a table: only the cache, a read of the table,
 * or a new table where there is none. */
enum l2_how { L2_CACHED, L2_READ, L2_ALLOC };

static int l2_get(struct qcow2 *q, uint64_t guest, enum l2_how how, struct qcow2_l2 **out)
{
	uint64_t l1i = guest / q->cluster_size / q->l2_entries, offset, host;
	struct qcow2_l2 *t;
	int r;

	*out = NULL;
	if (l1i >= q->h.l1_size)
		return -EIO;
	offset = q->l1[l1i] & QCOW2_OFFSET_MASK;
	if (!offset) {
		if (how != L2_ALLOC)
			return 0;
		/* A new table: zeroes, counted, in memory; the flush writes
		 * it before the L1 entry that points to it. */
		if ((r = l2_slot(q, &t)) < 0 || (r = qcow2_alloc_cluster(q, &host)) < 0)
			return r;
		memset(t->t, 0, q->cluster_size);
		t->offset = host;
		t->dirty = true;
		q->l1[l1i] = host | QCOW2_OFLAG_COPIED;
		q->l1_dirty[l1i / 64] = 1;
	} else if (!(t = find_l2(q, offset))) {
		if (how == L2_CACHED)
			return -EAGAIN;
		if ((r = l2_slot(q, &t)) < 0)
			return r;
		r = block_pread(q->file, t->t, q->cluster_size, offset);
		if (r < 0)
			return r;
		t->offset = offset;
		t->dirty = false;
	}
	if (how == L2_ALLOC && !(q->l1[l1i] & QCOW2_OFLAG_COPIED)) {
		/* Shared with an internal snapshot (its refcount above one):
		 * changed in a copy of our own. The clusters it points to keep
		 * their refcounts, which count every snapshot that reaches
		 * them, through whichever table. Like a new table, the copy is
		 * written at the flush before the L1 entry that points to it;
		 * the old one loses our reference after that. */
		if ((r = qcow2_alloc_cluster(q, &host)) < 0 || (r = free_push(q, offset)) < 0)
			return r;
		t->offset = host;
		t->dirty = true;
		q->l1[l1i] = host | QCOW2_OFLAG_COPIED;
		q->l1_dirty[l1i / 64] = 1;
	}
	t->used = ++q->stamp;
	*out = t;
	return 0;
}

int qcow2_l2_get(struct qcow2 *q, uint64_t guest, bool alloc, struct qcow2_l2 **out)
{
	return l2_get(q, guest, alloc ? L2_ALLOC : L2_READ, out);
}

int qcow2_l2_peek(struct qcow2 *q, uint64_t guest, struct qcow2_l2 **out)
{
	return l2_get(q, guest, L2_CACHED, out);
}

uint64_t qcow2_l2_entry(const struct qcow2 *q, const struct qcow2_l2 *t, uint64_t guest)
{
	return be64_get(&t->t[guest / q->cluster_size % q->l2_entries]);
}

void qcow2_l2_set(struct qcow2 *q, struct qcow2_l2 *t, uint64_t guest, uint64_t entry)
{
	be64_put(&t->t[guest / q->cluster_size % q->l2_entries], entry);
	t->dirty = true;
}

/* ---- refcounts ---- */

static uint64_t block_entries(const struct qcow2 *q)
{
	return q->cluster_size * 8 >> q->h.refcount_order;
}

static int rblock_get(struct qcow2 *q, uint64_t offset, struct qcow2_rblock **out)
{
	struct qcow2_rblock *lru = &q->rb[0];
	unsigned int i;
	int r;

	for (i = 0; i < QCOW2_RBLOCKS; i++) {
		if (q->rb[i].offset == offset) {
			*out = &q->rb[i];
			(*out)->used = ++q->stamp;
			return 0;
		}
		if (q->rb[i].used < lru->used)
			lru = &q->rb[i];
	}
	/* Written through: a slot can be reused as it is. */
	lru->offset = 0;
	r = block_pread(q->file, lru->b, q->cluster_size, offset);
	if (r < 0)
		return r;
	lru->offset = offset;
	lru->used = ++q->stamp;
	*out = lru;
	return 0;
}

static int refcount_update(struct qcow2 *q, uint64_t host, int delta, uint64_t *now);

/* Refcount block number ti is missing: a new one at the end of the file,
 * counting itself if it covers its own cluster, written and synced
 * before the refcount table points to it. */
static int new_refcount_block(struct qcow2 *q, uint64_t ti)
{
	uint64_t b = q->alloc_end, epb = block_entries(q), sec = ti * 8 / 512;
	bool self = b / q->cluster_size / epb == ti;
	struct qcow2_rblock *rb = &q->rb[0];
	uint8_t buf[512] = { 0 };
	unsigned int i;
	int r;

	for (i = 0; i < QCOW2_RBLOCKS; i++)
		if (q->rb[i].used < rb->used)
			rb = &q->rb[i];
	q->alloc_end += q->cluster_size;
	memset(rb->b, 0, q->cluster_size);
	rb->offset = 0;
	if (self)
		qcow2_refcount_set(rb->b, q->h.refcount_order, b / q->cluster_size % epb, 1);
	if ((r = block_pwrite(q->file, rb->b, q->cluster_size, b)) < 0 || (r = file_sync(q)) < 0)
		return fail(q, r, "refcount block");
	q->reftable[ti] = b;
	for (i = 0; i < 64 && sec * 64 + i < q->reftable_entries; i++)
		be64_put(buf + i * 8, q->reftable[sec * 64 + i]);
	if ((r = block_pwrite(q->file, buf, 512, q->h.refcount_table_offset + sec * 512)) < 0)
		return fail(q, r, "refcount table");
	rb->offset = b;
	rb->used = ++q->stamp;
	return self ? 0 : refcount_update(q, b, 1, NULL);
}

/* The refcount table is too small for refcount block ti: a larger one,
 * and the refcount blocks its own clusters need, placed at the end of
 * the file and counted there; written and synced before the header
 * points to it (one sector write), which is synced before the old table
 * is freed. */
static int grow_reftable(struct qcow2 *q, uint64_t ti)
{
	uint64_t per_cluster = q->cluster_size / 8, epb = block_entries(q);
	uint64_t entries = q->reftable_entries * 2 > ti + 1 ? q->reftable_entries * 2 : ti + 1;
	uint64_t clusters, start, c, i, old_offset = q->h.refcount_table_offset, need;
	uint32_t old_clusters = q->h.refcount_table_clusters;
	uint64_t *tab, *blocks = NULL, nblocks = 0;
	uint8_t *buf = NULL, sec[512];
	int r = -ENOMEM;

	/* Big enough also for the blocks of its own clusters and of those
	 * blocks, which go past the end of the file: at most one block per
	 * table cluster, plus one. */
	for (;;) {
		entries = (entries + per_cluster - 1) / per_cluster * per_cluster;
		clusters = entries / per_cluster;
		need = (q->alloc_end / q->cluster_size + 2 * clusters + 2) / epb + 1;
		if (need <= entries || clusters * q->cluster_size > QCOW2_MAX_REFTABLE_BYTES)
			break;
		entries = need;
	}
	if (clusters * q->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
		log_error("disk '%s': its refcount table would grow past %u MiB", q->base.path,
			  QCOW2_MAX_REFTABLE_BYTES >> 20);
		return -ENOSPC;
	}
	tab = calloc(entries, 8);
	if (!tab)
		return -ENOMEM;
	memcpy(tab, q->reftable, q->reftable_entries * 8);
	start = q->alloc_end;
	q->alloc_end += clusters * q->cluster_size;
	/* New blocks where the new clusters need them (they may need more). */
	for (c = start; c < q->alloc_end; c += q->cluster_size) {
		uint64_t t = c / q->cluster_size / epb, *nb;

		if (t >= entries) { /* cannot happen with the size above */
			r = -EIO;
			goto out;
		}
		if (tab[t])
			continue;
		tab[t] = q->alloc_end;
		q->alloc_end += q->cluster_size;
		if (!(nb = realloc(blocks, (nblocks + 1) * 8)))
			goto out;
		blocks = nb;
		blocks[nblocks++] = t;
	}
	if (!(buf = qcow2_alloc_buf(q->cluster_size)))
		goto out;
	/* Counts in the new blocks, or through the old table for clusters
	 * an existing block covers. */
	for (i = 0; i < nblocks; i++) {
		memset(buf, 0, q->cluster_size);
		for (c = start; c < q->alloc_end; c += q->cluster_size)
			if (c / q->cluster_size / epb == blocks[i])
				qcow2_refcount_set(buf, q->h.refcount_order,
						   c / q->cluster_size % epb, 1);
		if ((r = block_pwrite(q->file, buf, q->cluster_size, tab[blocks[i]])) < 0)
			goto write_failed;
	}
	for (c = start; c < q->alloc_end; c += q->cluster_size) {
		uint64_t t = c / q->cluster_size / epb;

		if (t < q->reftable_entries && q->reftable[t] &&
		    (r = refcount_update(q, c, 1, NULL)) < 0)
			goto out;
	}
	for (i = 0; i < entries; i++)
		be64_put(&tab[i], tab[i]);
	r = block_pwrite(q->file, tab, clusters * q->cluster_size, start);
	for (i = 0; i < entries; i++)
		tab[i] = be64_get(&tab[i]);
	if (r < 0 || (r = file_sync(q)) < 0)
		goto write_failed;
	/* The switch: one sector of the header. */
	if ((r = block_pread(q->file, sec, sizeof(sec), 0)) < 0)
		goto write_failed;
	be64_put(sec + 48, start);
	be32_put(sec + 56, (uint32_t)clusters);
	if ((r = block_pwrite(q->file, sec, sizeof(sec), 0)) < 0 || (r = file_sync(q)) < 0)
		goto write_failed;
	free(q->reftable);
	q->reftable = tab;
	tab = NULL;
	q->reftable_entries = entries;
	q->h.refcount_table_offset = start;
	q->h.refcount_table_clusters = (uint32_t)clusters;
	for (c = 0; c < old_clusters; c++)
		if ((r = refcount_update(q, old_offset + c * q->cluster_size, -1, NULL)) < 0)
			goto out;
	r = 0;
	goto out;
write_failed:
	r = fail(q, r, "refcount table");
out:
	free(tab);
	free(blocks);
	free(buf);
	return r;
}

static int refcount_update(struct qcow2 *q, uint64_t host, int delta, uint64_t *now)
{
	uint64_t epb = block_entries(q), ci = host / q->cluster_size, ti = ci / epb, bi = ci % epb;
	uint64_t max = q->h.refcount_order == 6 ? UINT64_MAX : (1ull << (1u << q->h.refcount_order)) - 1;
	uint64_t v, sec;
	struct qcow2_rblock *rb;
	int r;

	if (ti >= q->reftable_entries && delta < 0) {
		log_error("disk '%s': freeing cluster 0x%llx, which its refcount table does not "
			  "count: the image is corrupt", q->base.path, (unsigned long long)host);
		return -EIO;
	}
	if (ti >= q->reftable_entries && (r = grow_reftable(q, ti)) < 0)
		return r;
	if (!q->reftable[ti]) {
		if (delta < 0)
			return -EIO; /* freeing what is not counted: corrupt */
		if ((r = new_refcount_block(q, ti)) < 0)
			return r;
	}
	if ((r = rblock_get(q, q->reftable[ti], &rb)) < 0)
		return r;
	v = qcow2_refcount_get(rb->b, q->h.refcount_order, bi);
	if ((delta < 0 && v == 0) || (delta > 0 && v == max)) {
		log_error("disk '%s': refcount of cluster 0x%llx out of range: the image is corrupt",
			  q->base.path, (unsigned long long)host);
		return -EIO;
	}
	v = delta < 0 ? v - 1 : v + 1;
	if (now)
		*now = v;
	qcow2_refcount_set(rb->b, q->h.refcount_order, bi, v);
	sec = (bi << q->h.refcount_order) / 8 / 512 * 512;
	if ((r = block_pwrite(q->file, rb->b + sec, 512, q->reftable[ti] + sec)) < 0)
		return fail(q, r, "refcount block");
	return 0;
}

int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *host)
{
	return qcow2_alloc_clusters(q, 1, host);
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *host)
{
	uint64_t epb = block_entries(q), c = 0;
	int r;

	if (q->failed)
		return -EIO;
	*host = q->alloc_end;
	q->alloc_end += n * q->cluster_size;
	/* Each refcount block's share in one go: a sector written once, not
	 * once per cluster. */
	while (c < n) {
		uint64_t ci = *host / q->cluster_size + c, ti = ci / epb, bi = ci % epb, k, i;
		uint64_t first, last;
		struct qcow2_rblock *rb;

		/* The first through the usual path: it makes the block exist
		 * (and the table big enough). */
		if ((r = refcount_update(q, ci * q->cluster_size, 1, NULL)) < 0)
			return r;
		k = epb - bi < n - c ? epb - bi : n - c;
		if (k > 1) {
			if ((r = rblock_get(q, q->reftable[ti], &rb)) < 0)
				return r;
			for (i = 1; i < k; i++) {
				if (qcow2_refcount_get(rb->b, q->h.refcount_order, bi + i)) {
					log_error("disk '%s': a cluster past the end is counted in use: "
						  "the image is corrupt", q->base.path);
					return -EIO;
				}
				qcow2_refcount_set(rb->b, q->h.refcount_order, bi + i, 1);
			}
			first = (bi << q->h.refcount_order) / 8 / 512 * 512;
			last = (((bi + k) << q->h.refcount_order) / 8 + 511) / 512 * 512;
			if ((r = block_pwrite(q->file, rb->b + first, last - first,
					      q->reftable[ti] + first)) < 0)
				return fail(q, r, "refcount block");
		}
		c += k;
	}
	return 0;
}

static int free_push(struct qcow2 *q, uint64_t host)
{
	if (q->nfrees == q->frees_cap) {
		size_t cap = q->frees_cap ? q->frees_cap * 2 : 64;
		uint64_t *f = realloc(q->frees, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		q->frees = f;
		q->frees_cap = cap;
	}
	q->frees[q->nfrees++] = host;
	return 0;
}

int qcow2_free_later(struct qcow2 *q, const struct qcow2_mapping *m)
{
	uint64_t c, last;
	int r = 0;

	switch (m->kind) {
	case QCOW2_NORMAL:
		return free_push(q, m->host_offset);
	case QCOW2_ZERO:
		return m->host_offset ? free_push(q, m->host_offset) : 0;
	case QCOW2_COMPRESSED:
		/* One reference on every host cluster the data touches. */
		c = m->host_offset & ~(q->cluster_size - 1);
		last = (m->host_offset + m->compressed_size - 1) & ~(q->cluster_size - 1);
		for (; c <= last && !r; c += q->cluster_size)
			r = free_push(q, c);
		return r;
	case QCOW2_UNALLOCATED:
		return 0;
	}
	return 0;
}

/* ---- flush ---- */

int qcow2_flush_locked(struct qcow2 *q)
{
	bool l2_written = false, l1_dirty = false, freed = false;
	unsigned int i;
	uint64_t s, sectors = ((uint64_t)q->h.l1_size * 8 + 511) / 512;
	size_t f;
	int r;

	if (q->failed)
		return -EIO;
	for (s = 0; s < sectors; s++)
		l1_dirty |= q->l1_dirty[s];
	/* Data and refcounts durable before any table points to them. */
	if ((r = file_sync(q)) < 0)
		return fail(q, r, "data");
	for (i = 0; i < q->nl2; i++) {
		if (q->l2[i].offset && q->l2[i].dirty) {
			if ((r = write_l2(q, &q->l2[i])) < 0)
				return r;
			l2_written = true;
		}
	}
	/* New tables durable before the L1 entries that point to them. */
	if (l1_dirty) {
		if (l2_written && (r = file_sync(q)) < 0)
			return fail(q, r, "L2 tables");
		for (s = 0; s < sectors; s++) {
			if (q->l1_dirty[s] && (r = write_l1_sector(q, s)) < 0)
				return r;
			q->l1_dirty[s] = 0;
		}
	}
	/* Clusters no table points to any more, once that is durable. */
	if (q->nfrees) {
		if ((l2_written || l1_dirty) && (r = file_sync(q)) < 0)
			return fail(q, r, "tables");
		for (f = 0; f < q->nfrees; f++) {
			uint64_t now;

			if ((r = refcount_update(q, q->frees[f], -1, &now)) < 0)
				return fail(q, r, "refcounts");
			/* Unused now: give the space back (a hint; it reads as
			 * zeroes either way, and is never handed out again while
			 * open). */
			if (!now)
				block_io_sync(q->file, BLOCK_DISCARD, q->frees[f], NULL, 0,
					      q->cluster_size);
		}
		q->nfrees = 0;
		freed = true;
	}
	if ((l2_written || l1_dirty || freed) && (r = file_sync(q)) < 0)
		return fail(q, r, "tables");
	return 0;
}

/* ---- open (each failure logged here, once) ---- */

static int read_table(struct qcow2 *q, uint64_t offset, uint64_t entries, uint64_t **out,
		      uint64_t bits, const char *what)
{
	uint64_t bytes = (entries * 8 + 511) / 512 * 512, i;
	uint64_t *t = calloc(1, bytes ? bytes : 1);
	int r;

	if (!t)
		return -ENOMEM;
	if (entries && (r = block_pread(q->file, t, bytes, offset)) < 0) {
		free(t);
		log_error("disk '%s': cannot read its %s: %s", q->base.path, what, strerror(-r));
		return -1;
	}
	for (i = 0; i < entries; i++) {
		uint64_t e = be64_get(&t[i]), off = e & QCOW2_OFFSET_MASK;

		if ((e & ~bits) || (off & (q->cluster_size - 1)) ||
		    (off && (off > q->file->size || q->file->size - off < q->cluster_size))) {
			free(t);
			log_error("disk '%s': its %s has an invalid entry (%llu): the image is "
				  "corrupt", q->base.path, what, (unsigned long long)i);
			return -1;
		}
		t[i] = e;
	}
	*out = t;
	return 0;
}

/* New clusters go past every cluster counted in use, not just past the
 * end of the file: a process killed after counting a cluster and before
 * writing it leaves the cluster counted (leaked) beyond the file's end,
 * and handing it out again would count it twice. The last refcount
 * block with a cluster in use says where that is. */
static int find_alloc_end(struct qcow2 *q)
{
	uint64_t epb = block_entries(q), ti = q->reftable_entries, i;
	struct qcow2_rblock *rb;
	int r;

	while (ti--) {
		if (!q->reftable[ti])
			continue;
		if (q->reftable[ti] + q->cluster_size > q->alloc_end)
			q->alloc_end = q->reftable[ti] + q->cluster_size;
		if ((r = rblock_get(q, q->reftable[ti], &rb)) < 0) {
			log_error("disk '%s': cannot read a refcount block: %s", q->base.path,
				  strerror(-r));
			return -1;
		}
		for (i = epb; i--;) {
			if (qcow2_refcount_get(rb->b, q->h.refcount_order, i)) {
				uint64_t end = (ti * epb + i + 1) * q->cluster_size;

				if (end > q->alloc_end)
					q->alloc_end = end;
				return 0;
			}
		}
	}
	return 0;
}

int qcow2_meta_init(struct qcow2 *q, uint64_t l2_cache_bytes)
{
	uint64_t tables, i, need;

	if (read_table(q, q->h.l1_offset, q->h.l1_size, &q->l1, QCOW2_L1_BITS, "L1 table") < 0)
		return -1;
	q->reftable_entries = (uint64_t)q->h.refcount_table_clusters * q->cluster_size / 8;
	if (read_table(q, q->h.refcount_table_offset, q->reftable_entries, &q->reftable,
		       QCOW2_OFFSET_MASK, "refcount table") < 0)
		return -1;
	q->l1_dirty = calloc(((uint64_t)q->h.l1_size * 8 + 511) / 512 + 1, 1);
	/* By default, enough tables to map the whole disk, up to 32 MiB. */
	/* Never more tables than the disk has, nor (each buffer being page
	 * aligned) more than 8192 of them. */
	need = q->h.size / q->cluster_size / q->l2_entries + 1;
	tables = l2_cache_bytes ? l2_cache_bytes / q->cluster_size : need;
	if (!l2_cache_bytes && tables * q->cluster_size > (32u << 20))
		tables = (32u << 20) / q->cluster_size;
	if (tables > need)
		tables = need;
	if (tables > 8192)
		tables = 8192;
	if (tables < 4)
		tables = 4;
	q->nl2 = (unsigned int)tables;
	q->l2 = calloc(tables, sizeof(*q->l2));
	if (!q->l1_dirty || !q->l2)
		goto oom;
	for (i = 0; i < tables; i++)
		if (!(q->l2[i].t = qcow2_alloc_buf(q->cluster_size)))
			goto oom;
	for (i = 0; i < QCOW2_RBLOCKS; i++)
		if (!(q->rb[i].b = qcow2_alloc_buf(q->cluster_size)))
			goto oom;
	q->alloc_end = (q->file->size + q->cluster_size - 1) & ~(q->cluster_size - 1);
	return find_alloc_end(q);
oom:
	log_error("disk '%s': out of memory for its tables (l2-cache-size= is smaller)",
		  q->base.path);
	return -1;
}

void qcow2_meta_free(struct qcow2 *q)
{
	unsigned int i;

	for (i = 0; q->l2 && i < q->nl2; i++)
		free(q->l2[i].t);
	for (i = 0; i < QCOW2_RBLOCKS; i++)
		free(q->rb[i].b);
	free(q->l2);
	free(q->l1);
	free(q->l1_dirty);
	free(q->reftable);
	free(q->frees);
}
