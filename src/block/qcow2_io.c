/* qcow2 guest requests, one at a time per worker thread: each is cut into
 * extents (as many clusters as one host I/O serves), each extent mapped
 * (under the lock), then read or written (without it, except while new
 * clusters are being filled for guest clusters, which other writers of
 * those wait for). A DISCARD or WRITE_ZEROES changes whole clusters' L2
 * entries, and writes the rest as zeroes, through the same extents. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "block/qcow2.h"
#include "util/iov.h"
#include "util/log.h"

struct piece {
	uint64_t guest; /* guest offset of the piece */
	uint64_t in;	/* offset inside its cluster */
	uint64_t len;
	struct iovec *iov; /* its part of the request's buffers */
	unsigned int iovcnt;
};

static void iov_zero(const struct iovec *iov, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

/* The mapping of guest's cluster, its L2 table read in if need be (or,
 * cached_only, -EAGAIN when it is not in the cache; a corrupt entry then
 * -EIO, not logged: the workers, doing it again, say so). Lock held. */
static int lookup(struct qcow2 *q, uint64_t guest, bool cached_only, struct qcow2_mapping *m)
{
	struct qcow2_l2 *t;
	int r = cached_only ? qcow2_l2_peek(q, guest, &t) : qcow2_l2_get(q, guest, false, &t);

	if (r < 0)
		return r;
	if (!t) {
		memset(m, 0, sizeof(*m));
		return 0;
	}
	if (qcow2_l2_decode(qcow2_l2_entry(q, t, guest), q->h.cluster_bits, q->h.version, m) < 0)
		goto corrupt;
	/* A zero cluster's space is only a preallocation, never read: one
	 * outside the file is not used (a write takes a new cluster). */
	if (m->kind == QCOW2_ZERO && m->host_offset &&
	    (m->host_offset > q->alloc_end || q->alloc_end - m->host_offset < q->cluster_size)) {
		m->host_offset = 0;
		m->copied = false;
	}
	if ((m->kind == QCOW2_NORMAL &&
	     (m->host_offset > q->alloc_end || q->alloc_end - m->host_offset < q->cluster_size)) ||
	    (m->kind == QCOW2_COMPRESSED && m->host_offset + m->compressed_size > q->alloc_end)) {
		goto corrupt;
	}
	return 0;
corrupt:
	if (cached_only)
		return -EIO;
	log_error("disk '%s': invalid L2 entry for guest offset 0x%llx: the image is corrupt",
		  q->base.path, (unsigned long long)(guest & ~(q->cluster_size - 1)));
	return -EIO;
}

static int mapping_of(struct qcow2 *q, uint64_t guest, struct qcow2_mapping *m)
{
	return lookup(q, guest, false, m);
}

/* A compressed cluster, whole, into out (cluster_size bytes). */
static int decompress(struct qcow2 *q, const struct qcow2_mapping *m, uint8_t *out)
{
	uint64_t start = m->host_offset & ~511ull;
	uint64_t end = (m->host_offset + m->compressed_size + 511) & ~511ull;
	uint8_t *in;
	int r;

	in = malloc(end - start);
	if (!in)
		return -ENOMEM;
	r = block_pread(q->file, in, end - start, start);
	if (r == 0) {
		const uint8_t *src = in + (m->host_offset - start);
		size_t n = end - m->host_offset;

		r = -EIO;
		if (q->h.compression == QCOW2_ZLIB) {
			z_stream z = { .next_in = (uint8_t *)src, .avail_in = (uInt)n, .next_out = out,
				       .avail_out = (uInt)q->cluster_size };
			int zr;

			/* Raw deflate with a 4 KiB window, as QEMU writes it. */
			if (inflateInit2(&z, -12) == Z_OK) {
				zr = inflate(&z, Z_FINISH);
				if ((zr == Z_STREAM_END || zr == Z_BUF_ERROR || zr == Z_OK) &&
				    z.avail_out == 0)
					r = 0;
				inflateEnd(&z);
			}
		} else {
			ZSTD_DCtx *d = ZSTD_createDCtx();
			ZSTD_inBuffer zin = { src, n, 0 };
			ZSTD_outBuffer zout = { out, q->cluster_size, 0 };

			/* Frames until the cluster is full; what follows it in
			 * the last sector is another cluster's. */
			while (d && zout.pos < zout.size && zin.pos < zin.size) {
				size_t zr = ZSTD_decompressStream(d, &zout, &zin);

				if (ZSTD_isError(zr) || (zr == 0 && zout.pos < zout.size &&
							 zin.pos == zin.size))
					break;
			}
			if (zout.pos == zout.size)
				r = 0;
			ZSTD_freeDCtx(d);
		}
		if (r < 0)
			log_error("disk '%s': a compressed cluster does not decompress", q->base.path);
	}
	free(in);
	return r;
}

/* Reads what a guest range would read before this write: the backing
 * file's (zeroes past its end), or zeroes. */
static int read_backing(struct qcow2 *q, uint64_t guest, const struct iovec *iov,
			unsigned int n, uint64_t len)
{
	uint64_t have;
	struct iovec *part;
	unsigned int k;
	int64_t r;

	if (!q->backing || guest >= q->backing->size) {
		iov_zero(iov, n);
		return 0;
	}
	/* On the heap: a backing chain recurses through here, one level per
	 * image, on a worker's 1 MiB stack. */
	part = malloc((n ? n : 1) * sizeof(*part));
	if (!part)
		return -ENOMEM;
	have = q->backing->size - guest < len ? q->backing->size - guest : len;
	if (have < len) {
		k = iov_slice(part, n, iov, n, (size_t)have, (size_t)(len - have));
		iov_zero(part, k);
	}
	k = iov_slice(part, n, iov, n, 0, (size_t)have);
	r = block_io_sync(q->backing, BLOCK_READ, guest, part, k, 0);
	free(part);
	return r < 0 ? (int)r : (uint64_t)r == have ? 0 : -EIO;
}

/* The whole cluster as it reads now, into buf. */
static int old_contents(struct qcow2 *q, const struct qcow2_mapping *m, uint64_t guest,
			uint8_t *buf)
{
	struct iovec iov = { buf, (size_t)q->cluster_size };

	switch (m->kind) {
	case QCOW2_UNALLOCATED:
		return read_backing(q, guest, &iov, 1, q->cluster_size);
	case QCOW2_ZERO:
		memset(buf, 0, q->cluster_size);
		return 0;
	case QCOW2_NORMAL:
		return block_pread(q->file, buf, q->cluster_size, m->host_offset);
	case QCOW2_COMPRESSED:
		return decompress(q, m, buf);
	}
	return -EIO;
}

/* Whether guest cluster (its offset) is in a run being filled. */
static bool allocating(const struct qcow2 *q, uint64_t cluster)
{
	unsigned int i;

	for (i = 0; i < q->nallocating; i++)
		if (cluster >= q->allocating[i].first &&
		    cluster < q->allocating[i].first + q->allocating[i].n * q->cluster_size)
			return true;
	return false;
}

static void allocation_start(struct qcow2 *q, uint64_t first, uint64_t n)
{
	q->allocating[q->nallocating].first = first;
	q->allocating[q->nallocating++].n = n;
}

static void allocation_done(struct qcow2 *q, uint64_t first)
{
	unsigned int i;

	for (i = 0; i < q->nallocating; i++) {
		if (q->allocating[i].first == first) {
			q->allocating[i] = q->allocating[--q->nallocating];
			break;
		}
	}
	pthread_cond_broadcast(&q->alloc_done);
}

/* A write to a cluster that cannot be written in place (unallocated,
 * zero, compressed): a new cluster, filled with the old contents and the
 * piece, then mapped. Lock held on entry and on return; dropped while
 * the data moves. */
static int write_new_cluster(struct qcow2 *q, const struct piece *p,
			     const struct qcow2_mapping *old)
{
	uint64_t cluster = p->guest - p->in, host;
	bool whole = p->len == q->cluster_size;
	bool reuse = old->kind == QCOW2_ZERO && old->host_offset && old->copied;
	struct qcow2_l2 *t;
	uint8_t *buf = NULL;
	int r;

	if (reuse) {
		host = old->host_offset; /* preallocated: refcount one already */
	} else if ((r = qcow2_alloc_cluster(q, &host)) < 0) {
		return r;
	}
	allocation_start(q, cluster, 1);
	pthread_mutex_unlock(&q->lock);
	if (whole) {
		int64_t n = block_io_sync(q->file, BLOCK_WRITE, host, p->iov, p->iovcnt, 0);

		r = n < 0 ? (int)n : (uint64_t)n == p->len ? 0 : -EIO;
	} else if (!(buf = qcow2_alloc_buf(q->cluster_size))) {
		r = -ENOMEM;
	} else if ((r = old_contents(q, old, cluster, buf)) == 0) {
		iov_to_buf(p->iov, p->iovcnt, 0, buf + p->in, (size_t)p->len);
		r = block_pwrite(q->file, buf, q->cluster_size, host);
	}
	free(buf);
	pthread_mutex_lock(&q->lock);
	if (r == 0)
		r = qcow2_l2_get(q, cluster, true, &t);
	if (r == 0) {
		qcow2_l2_set(q, t, cluster, host | QCOW2_OFLAG_COPIED);
		if (!reuse)
			r = qcow2_free_later(q, old);
	}
	/* A failed write leaves the new cluster counted and unused: leaked,
	 * which is allowed, never corrupt. */
	allocation_done(q, cluster);
	return r;
}

/* ---- requests in runs: one host I/O for as many clusters as can share
 * it (contiguous data clusters, backing file reads, zeroes, clusters
 * allocated together) ---- */

static uint64_t piece_len(const struct qcow2 *q, uint64_t at, uint64_t end)
{
	uint64_t in = at & (q->cluster_size - 1);

	return q->cluster_size - in < end - at ? q->cluster_size - in : end - at;
}

/* From guest offset at (up to end): how far one read serves, and the
 * mapping of at's cluster (cached_only: as lookup()). Lock held. */
static int read_run(struct qcow2 *q, uint64_t at, uint64_t end, bool cached_only,
		    struct qcow2_mapping *m, uint64_t *len)
{
	uint64_t n = piece_len(q, at, end), k;
	int r = lookup(q, at, cached_only, m);

	if (r < 0 || m->kind == QCOW2_COMPRESSED) {
		*len = n;
		return r;
	}
	for (k = 1; at + n < end && k < QCOW2_MAX_RUN; k++) {
		struct qcow2_mapping next;

		if ((r = lookup(q, at + n, cached_only, &next)) == -EAGAIN)
			break; /* the run ends where the cache does */
		if (r < 0)
			return r;
		if (next.kind != m->kind ||
		    (m->kind == QCOW2_NORMAL && next.host_offset != m->host_offset + k * q->cluster_size))
			break;
		n += piece_len(q, at + n, end);
	}
	*len = n;
	return 0;
}

static int read_extent(struct qcow2 *q, uint64_t at, uint64_t end, const struct iovec *iov,
		       unsigned int iovcnt, uint64_t done, struct iovec *part, uint64_t *len)
{
	uint64_t in = at & (q->cluster_size - 1);
	struct qcow2_mapping m;
	unsigned int cnt;
	uint8_t *c;
	int64_t r;

	pthread_mutex_lock(&q->lock);
	r = read_run(q, at, end, false, &m, len);
	pthread_mutex_unlock(&q->lock);
	if (r < 0)
		return (int)r;
	cnt = iov_slice(part, iovcnt, iov, iovcnt, (size_t)done, (size_t)*len);
	switch (m.kind) {
	case QCOW2_UNALLOCATED:
		return read_backing(q, at, part, cnt, *len);
	case QCOW2_ZERO:
		iov_zero(part, cnt);
		return 0;
	case QCOW2_NORMAL:
		r = block_io_sync(q->file, BLOCK_READ, m.host_offset + in, part, cnt, 0);
		return r < 0 ? (int)r : (uint64_t)r == *len ? 0 : -EIO;
	case QCOW2_COMPRESSED: /* a run of one (read_run): the cluster inflated whole */
		c = malloc(q->cluster_size);
		if (!c)
			return -ENOMEM;
		r = decompress(q, &m, c);
		if (!r)
			iov_from_buf(part, cnt, 0, c + in, (size_t)*len);
		free(c);
		return (int)r;
	}
	return -EIO;
}

/* From guest offset at (up to end), whose cluster is mapped by m, NORMAL
 * and copied: how far the clusters run on that way, written in place
 * with one host write (cached_only: as lookup(); a cluster being
 * allocated ends the run). Lock held. */
static uint64_t in_place_run(struct qcow2 *q, uint64_t at, uint64_t end, bool cached_only,
			     const struct qcow2_mapping *m)
{
	uint64_t n = piece_len(q, at, end), k;

	for (k = 1; at + n < end && k < QCOW2_MAX_RUN; k++) {
		struct qcow2_mapping next;

		if (allocating(q, at + n) || lookup(q, at + n, cached_only, &next) < 0 ||
		    next.kind != QCOW2_NORMAL || !next.copied ||
		    next.host_offset != m->host_offset + k * q->cluster_size)
			break;
		n += piece_len(q, at + n, end);
	}
	return n;
}

/* One run of a READ served now (lock held on entry, not on return): true
 * when *len bytes from at are in the caller's buffers. */
static bool read_run_now(struct qcow2 *q, uint64_t at, uint64_t end, const struct block_req *r,
			 uint64_t done, struct iovec *part, uint64_t *len)
{
	struct qcow2_mapping m;
	unsigned int cnt;
	int e = read_run(q, at, end, true, &m, len);

	pthread_mutex_unlock(&q->lock);
	/* An error (a corrupt entry) is the workers' to report. */
	if (e < 0 || m.kind == QCOW2_COMPRESSED || (m.kind == QCOW2_UNALLOCATED && q->backing))
		return false;
	cnt = iov_slice(part, r->iovcnt, r->iov, r->iovcnt, (size_t)done, (size_t)*len);
	if (m.kind != QCOW2_NORMAL) {
		iov_zero(part, cnt);
		return true;
	}
	return block_io_nowait(q->file, BLOCK_READ, m.host_offset + (at & (q->cluster_size - 1)),
			       part, cnt) == (int64_t)*len;
}

/* One run of a WRITE served now: only over clusters written in place
 * (allocated, refcount one, none being allocated), the lock held all
 * along and released on return, so that no cluster of the run can be
 * freed and handed to other data while the bytes go in. */
static bool write_run_now(struct qcow2 *q, uint64_t at, uint64_t end, const struct block_req *r,
			  uint64_t done, struct iovec *part, uint64_t *len)
{
	struct qcow2_mapping m;
	unsigned int cnt;
	bool ok = false;

	if (!allocating(q, at) && lookup(q, at, true, &m) == 0 && m.kind == QCOW2_NORMAL &&
	    m.copied) {
		*len = in_place_run(q, at, end, true, &m);
		cnt = iov_slice(part, r->iovcnt, r->iov, r->iovcnt, (size_t)done, (size_t)*len);
		ok = block_io_nowait(q->file, BLOCK_WRITE, m.host_offset + (at & (q->cluster_size - 1)),
				     part, cnt) == (int64_t)*len;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

/* A READ or WRITE served in the caller's thread (the device's), with no
 * hop to a worker and back: when, for a WRITE, it is of q->write_now_min
 * bytes or more (see QCOW2_WRITE_NOW_MIN), the lock is free, every L2
 * table it needs is in the cache, and the file moves the data without
 * waiting on a device (block_io_nowait). A READ: no backing file or
 * compressed cluster involved; a WRITE: every cluster written in place (no
 * allocation, no metadata). Otherwise false, and the workers take the
 * whole request (what was read here is read again, what was written is
 * written again: the same bytes to the same place). */
bool qcow2_now(struct qcow2 *q, struct block_req *r)
{
	uint64_t total = iov_size(r->iov, r->iovcnt), done = 0;
	struct iovec *part;
	bool ok = true;

	if (r->op == BLOCK_WRITE && total < q->write_now_min)
		return false;
	part = malloc((r->iovcnt ? r->iovcnt : 1) * sizeof(*part));
	if (!part)
		return false;
	while (ok && done < total) {
		uint64_t at = r->offset + done, len = 0;

		if (pthread_mutex_trylock(&q->lock) != 0) {
			ok = false; /* a worker is at the tables: no waiting here */
			break;
		}
		ok = r->op == BLOCK_WRITE ? write_run_now(q, at, r->offset + total, r, done, part, &len) :
					    read_run_now(q, at, r->offset + total, r, done, part, &len);
		done += len;
	}
	free(part);
	if (ok)
		ok = block_workers_finished(q->workers, r, (int64_t)total) == 0;
	if (ok && r->op == BLOCK_WRITE)
		q->writes_now++;
	else if (ok)
		q->reads_now++;
	return ok;
}

/* Whether a write to the cluster goes to a new one. Only a cluster of our
 * own (COPIED: refcount one), data or preallocated zeroes, is written
 * where it is; one shared with an internal snapshot (refcount above one)
 * keeps its contents for the snapshot. */
static bool needs_new(const struct qcow2_mapping *m)
{
	bool own_space = m->kind == QCOW2_NORMAL || (m->kind == QCOW2_ZERO && m->host_offset);

	return !(own_space && m->copied);
}

/* Whole clusters from at that all need new ones: allocated together, in
 * a row, written with one host write, then mapped. Lock held on entry and
 * on return. *len: bytes done (0: not this way, the caller takes the
 * cluster alone). */
static int write_new_run(struct qcow2 *q, uint64_t at, uint64_t end, const struct iovec *iov,
			 unsigned int iovcnt, uint64_t done, struct iovec *part, uint64_t *len)
{
	struct qcow2_mapping old[QCOW2_MAX_RUN];
	uint64_t k, n, host;
	unsigned int cnt;
	int64_t w;
	int r;

	*len = 0;
	for (n = 0; n < QCOW2_MAX_RUN && at + (n + 1) * q->cluster_size <= end; n++) {
		uint64_t c = at + n * q->cluster_size;

		if ((n && allocating(q, c)) || (r = mapping_of(q, c, &old[n])) < 0 || !needs_new(&old[n]))
			break;
	}
	if (!n)
		return 0;
	if ((r = qcow2_alloc_clusters(q, n, &host)) < 0)
		return r;
	allocation_start(q, at, n);
	pthread_mutex_unlock(&q->lock);
	cnt = iov_slice(part, iovcnt, iov, iovcnt, (size_t)done, (size_t)(n * q->cluster_size));
	w = block_io_sync(q->file, BLOCK_WRITE, host, part, cnt, 0);
	r = w < 0 ? (int)w : (uint64_t)w == n * q->cluster_size ? 0 : -EIO;
	pthread_mutex_lock(&q->lock);
	for (k = 0; k < n && r == 0; k++) {
		struct qcow2_l2 *t;
		uint64_t c = at + k * q->cluster_size;

		if ((r = qcow2_l2_get(q, c, true, &t)) == 0) {
			qcow2_l2_set(q, t, c, (host + k * q->cluster_size) | QCOW2_OFLAG_COPIED);
			r = qcow2_free_later(q, &old[k]);
		}
	}
	/* A failed write leaves the clusters counted and unused: leaked,
	 * never corrupt. */
	allocation_done(q, at);
	*len = n * q->cluster_size;
	return r;
}

static int write_extent(struct qcow2 *q, uint64_t at, uint64_t end, const struct iovec *iov,
			unsigned int iovcnt, uint64_t done, struct iovec *part, uint64_t *len)
{
	uint64_t cluster = at & ~(q->cluster_size - 1);
	struct qcow2_mapping m;
	struct piece p;
	int64_t w;
	int r;

	pthread_mutex_lock(&q->lock);
	while (allocating(q, cluster) || q->nallocating == QCOW2_MAX_ALLOCS)
		pthread_cond_wait(&q->alloc_done, &q->lock);
	if ((r = mapping_of(q, at, &m)) < 0)
		goto out;
	*len = piece_len(q, at, end);
	if (m.kind == QCOW2_NORMAL && m.copied) {
		/* In place, as far as the data clusters run on. */
		*len = in_place_run(q, at, end, false, &m);
		pthread_mutex_unlock(&q->lock);
		p.iovcnt = iov_slice(part, iovcnt, iov, iovcnt, (size_t)done, (size_t)*len);
		w = block_io_sync(q->file, BLOCK_WRITE, m.host_offset + (at - cluster), part,
				  p.iovcnt, 0);
		return w < 0 ? (int)w : (uint64_t)w == *len ? 0 : -EIO;
	}
	if (at == cluster && needs_new(&m) &&
	    ((r = write_new_run(q, at, end, iov, iovcnt, done, part, len)) < 0 || *len))
		goto out;
	/* One cluster, partly written or preallocated: filled around. */
	*len = piece_len(q, at, end);
	p = (struct piece){ at, at - cluster, *len, part, 0 };
	p.iovcnt = iov_slice(part, iovcnt, iov, iovcnt, (size_t)done, (size_t)*len);
	r = write_new_cluster(q, &p, &m);
out:
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* ---- DISCARD and WRITE_ZEROES ---- */

/* Whole clusters of a DISCARD or WRITE_ZEROES: the L2 entry says zero
 * (or, for a discard without a backing file, unallocated), and what the
 * cluster held is freed at the next flush. False when this cluster
 * cannot be done that way (version 2 with a backing file, or a zeroed
 * cluster that keeps its allocation), and is written with zeroes. */
static int zero_cluster(struct qcow2 *q, uint64_t guest, enum block_op op, bool *done)
{
	struct qcow2_mapping m;
	struct qcow2_l2 *t;
	uint64_t entry;
	int r;

	*done = false;
	pthread_mutex_lock(&q->lock);
	while (allocating(q, guest))
		pthread_cond_wait(&q->alloc_done, &q->lock);
	if ((r = mapping_of(q, guest, &m)) < 0)
		goto out;
	if (q->h.version < 3 && (q->backing || op == BLOCK_WRITE_ZEROES)) {
		if (op == BLOCK_DISCARD && m.kind == QCOW2_UNALLOCATED && !q->backing)
			*done = true;
		goto out;
	}
	if (op == BLOCK_DISCARD && !q->backing)
		entry = 0;
	else if (op == BLOCK_WRITE_ZEROES && m.kind == QCOW2_NORMAL && m.copied)
		entry = m.host_offset | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO; /* keeps its space */
	else
		entry = QCOW2_OFLAG_ZERO;
	if ((r = qcow2_l2_get(q, guest, true, &t)) < 0)
		goto out;
	qcow2_l2_set(q, t, guest, entry);
	if (!(entry & QCOW2_OFFSET_MASK))
		r = qcow2_free_later(q, &m);
	*done = r == 0;
out:
	pthread_mutex_unlock(&q->lock);
	return r;
}

static int zero_range(struct qcow2 *q, enum block_op op, uint64_t offset, uint64_t len)
{
	static const uint8_t zeros[64 << 10];
	uint64_t end = offset + len;

	while (offset < end) {
		uint64_t in = offset & (q->cluster_size - 1);
		uint64_t n = q->cluster_size - in < end - offset ? q->cluster_size - in : end - offset;
		bool done = false;
		int r;

		if (!in && n == q->cluster_size && (r = zero_cluster(q, offset, op, &done)) < 0)
			return r;
		while (!done && n) { /* written as zeroes, in pieces */
			uint64_t k = n < sizeof(zeros) ? n : sizeof(zeros), step;
			struct iovec iov = { (void *)zeros, (size_t)k }, part;

			if ((r = write_extent(q, offset, offset + k, &iov, 1, 0, &part, &step)) < 0)
				return r;
			offset += step;
			n -= step;
		}
		offset += n;
	}
	return 0;
}

int64_t qcow2_io_sync(struct block_backend *b, enum block_op op, uint64_t offset,
		      const struct iovec *iov, unsigned int iovcnt, uint64_t len)
{
	struct qcow2 *q = (struct qcow2 *)b;
	uint64_t total, done = 0;
	struct iovec *part;
	int r = 0;

	switch (op) {
	case BLOCK_FLUSH:
		pthread_mutex_lock(&q->lock);
		r = qcow2_flush_locked(q);
		pthread_mutex_unlock(&q->lock);
		return r;
	case BLOCK_DISCARD:
	case BLOCK_WRITE_ZEROES:
		if (q->failed)
			return -EIO;
		return zero_range(q, op, offset, len);
	case BLOCK_READ:
	case BLOCK_WRITE:
		break;
	default:
		return -EINVAL;
	}
	if (op == BLOCK_WRITE && q->failed)
		return -EIO;
	total = iov_size(iov, iovcnt);
	part = malloc((iovcnt ? iovcnt : 1) * sizeof(*part));
	if (!part)
		return -ENOMEM;
	while (done < total && r == 0) {
		uint64_t step = 0;

		r = op == BLOCK_READ
			    ? read_extent(q, offset + done, offset + total, iov, iovcnt, done, part, &step)
			    : write_extent(q, offset + done, offset + total, iov, iovcnt, done, part,
					   &step);
		done += step;
	}
	free(part);
	return r < 0 ? r : (int64_t)total;
}
