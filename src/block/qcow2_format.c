#include "block/qcow2_format.h"

#include <inttypes.h>
#include <string.h>

#include "util/le.h"

#define EXT_END 0x00000000u
#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_DATA_FILE 0x44415441u

bool qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && be32_get(buf) == QCOW2_MAGIC && be32_get(buf + 4) >= 2;
}

static bool aligned(uint64_t v, uint64_t to)
{
	return (v & (to - 1)) == 0;
}

/* [off, off+len) inside a file of file_size bytes, without overflow. */
static bool in_file(uint64_t off, uint64_t len, uint64_t file_size)
{
	return len <= file_size && off <= file_size - len;
}

static int check_features(struct qcow2_header *h, const uint8_t *buf, struct error *err)
{
	uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE |
			 QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2;

	if (h->incompatible & ~known)
		return error_set(err, "uses incompatible features this Vireo does not know "
				      "(bits 0x%" PRIx64 ")", h->incompatible & ~known);
	if (h->incompatible & QCOW2_INCOMPAT_CORRUPT)
		return error_set(err, "is marked corrupt (qemu-img check -r all can repair it)");
	if (h->incompatible & QCOW2_INCOMPAT_DATA_FILE)
		return error_set(err, "keeps its data in an external data file, which is not "
				      "supported");
	if (h->incompatible & QCOW2_INCOMPAT_EXTL2)
		return error_set(err, "uses extended L2 entries (subclusters), which are not "
				      "supported");
	h->compression = QCOW2_ZLIB;
	if (h->header_length > 104)
		h->compression = buf[104];
	if ((h->incompatible & QCOW2_INCOMPAT_COMPRESSION) ? h->compression == QCOW2_ZLIB
							    : h->compression != QCOW2_ZLIB)
		return error_set(err, "has an inconsistent compression type");
	if (h->compression > QCOW2_ZSTD)
		return error_set(err, "uses compression type %u, not zlib or zstd", h->compression);
	return 0;
}

static int parse_extensions(struct qcow2_header *h, const uint8_t *buf, size_t len,
			    struct error *err)
{
	uint64_t limit = len < h->cluster_size ? len : h->cluster_size;
	uint64_t off = h->header_length;

	for (;;) {
		uint32_t type, n;

		if (off + 8 > limit)
			return error_set(err, "has a header extension past the first cluster");
		type = be32_get(buf + off);
		n = be32_get(buf + off + 4);
		if (type == EXT_END)
			break;
		if (n > limit - off - 8)
			return error_set(err, "has a header extension past the first cluster");
		if (type == EXT_BACKING_FORMAT) {
			if (n >= sizeof(h->backing_format) || memchr(buf + off + 8, 0, n))
				return error_set(err, "has an invalid backing format name");
			memcpy(h->backing_format, buf + off + 8, n);
			h->backing_format[n] = 0;
		}
		off += 8 + (((uint64_t)n + 7) & ~7ull);
	}
	h->extensions_end = (uint32_t)(off + 8);
	return 0;
}

static int parse_backing(struct qcow2_header *h, const uint8_t *buf, size_t len,
			 uint64_t offset, uint32_t size, struct error *err)
{
	if (!offset)
		return 0;
	if (size == 0 || size >= sizeof(h->backing_file))
		return error_set(err, "has a backing file name of %u bytes", size);
	if (offset < h->extensions_end || !in_file(offset, size, len < h->cluster_size ? len
										    : h->cluster_size))
		return error_set(err, "has its backing file name outside its header");
	if (memchr(buf + offset, 0, size))
		return error_set(err, "has an invalid backing file name");
	memcpy(h->backing_file, buf + offset, size);
	h->backing_file[size] = 0;
	return 0;
}

int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		       struct qcow2_header *h, struct error *err)
{
	uint64_t backing_offset, l2_entries, clusters, l1_needed;
	uint32_t backing_size, crypt;

	memset(h, 0, sizeof(*h));
	if (len < 72 || be32_get(buf) != QCOW2_MAGIC)
		return error_set(err, "is not a qcow2 image");
	h->version = be32_get(buf + 4);
	if (h->version != 2 && h->version != 3)
		return error_set(err, "is qcow2 version %u; versions 2 and 3 are supported",
				 h->version);
	backing_offset = be64_get(buf + 8);
	backing_size = be32_get(buf + 16);
	h->cluster_bits = be32_get(buf + 20);
	h->size = be64_get(buf + 24);
	crypt = be32_get(buf + 32);
	h->l1_size = be32_get(buf + 36);
	h->l1_offset = be64_get(buf + 40);
	h->refcount_table_offset = be64_get(buf + 48);
	h->refcount_table_clusters = be32_get(buf + 56);
	h->nb_snapshots = be32_get(buf + 60);
	h->snapshots_offset = be64_get(buf + 64);
	h->refcount_order = 4;
	h->header_length = 72;
	if (h->cluster_bits < 9 || h->cluster_bits > 21)
		return error_set(err, "has clusters of 2^%u bytes (512 B to 2 MiB are valid)",
				 h->cluster_bits);
	h->cluster_size = 1ull << h->cluster_bits;
	if (h->version == 3) {
		if (len < 104)
			return error_set(err, "is not a qcow2 image (its header is cut short)");
		h->incompatible = be64_get(buf + 72);
		h->compatible = be64_get(buf + 80);
		h->autoclear = be64_get(buf + 88);
		h->refcount_order = be32_get(buf + 96);
		h->header_length = be32_get(buf + 100);
		if (h->header_length < 104 || h->header_length % 8 || h->header_length > len ||
		    h->header_length > h->cluster_size)
			return error_set(err, "has a header length of %u bytes", h->header_length);
		if (check_features(h, buf, err) < 0)
			return -1;
	}
	if (crypt)
		return error_set(err, "is encrypted, which is not supported");
	if (h->refcount_order > 6)
		return error_set(err, "has refcounts of 2^%u bits (at most 64)", h->refcount_order);
	/* The L1 table must cover the whole disk, and fit the file. */
	l2_entries = h->cluster_size / 8;
	clusters = h->size / h->cluster_size + (h->size % h->cluster_size != 0);
	if (h->size > (1ull << 62))
		return error_set(err, "has a virtual size of %" PRIu64 " bytes", h->size);
	l1_needed = clusters / l2_entries + (clusters % l2_entries != 0);
	if (h->l1_size < l1_needed)
		return error_set(err, "has an L1 table too small for its size");
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return error_set(err, "has an L1 table of %u entries (more than Vireo holds)",
				 h->l1_size);
	if (h->l1_size && (!aligned(h->l1_offset, h->cluster_size) ||
			   !in_file(h->l1_offset, (uint64_t)h->l1_size * 8, file_size)))
		return error_set(err, "has its L1 table outside the file or misaligned");
	if (!h->refcount_table_clusters ||
	    (uint64_t)h->refcount_table_clusters * h->cluster_size > QCOW2_MAX_REFTABLE_BYTES ||
	    !aligned(h->refcount_table_offset, h->cluster_size) ||
	    !in_file(h->refcount_table_offset,
		     (uint64_t)h->refcount_table_clusters * h->cluster_size, file_size))
		return error_set(err, "has an invalid refcount table");
	if (h->nb_snapshots && !aligned(h->snapshots_offset, h->cluster_size))
		return error_set(err, "has a misaligned snapshot table");
	if (parse_extensions(h, buf, len, err) < 0)
		return -1;
	return parse_backing(h, buf, len, backing_offset, backing_size, err);
}

int qcow2_l2_decode(uint64_t entry, uint32_t cluster_bits, uint32_t version,
		    struct qcow2_mapping *m)
{
	uint64_t cluster_size = 1ull << cluster_bits;

	memset(m, 0, sizeof(*m));
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		uint32_t x = 62 - (cluster_bits - 8);
		uint64_t sectors;

		if (entry & QCOW2_OFLAG_COPIED)
			return -1;
		m->kind = QCOW2_COMPRESSED;
		m->host_offset = entry & ((1ull << x) - 1);
		sectors = (entry >> x) & ((1ull << (cluster_bits - 8)) - 1);
		m->compressed_size = (sectors + 1) * 512 - (m->host_offset & 511);
		/* Bits of the offset above 55 must be zero. */
		return m->host_offset >> 56 ? -1 : 0;
	}
	if (entry & ~QCOW2_L2_STD_BITS)
		return -1; /* reserved bits */
	m->host_offset = entry & QCOW2_OFFSET_MASK;
	m->copied = entry & QCOW2_OFLAG_COPIED;
	if (m->host_offset & (cluster_size - 1))
		return -1;
	if (entry & QCOW2_OFLAG_ZERO) {
		if (version < 3)
			return -1;
		m->kind = QCOW2_ZERO;
		return 0;
	}
	if (!m->host_offset)
		return m->copied ? -1 : 0; /* offset 0 is the header's */
	m->kind = QCOW2_NORMAL;
	return 0;
}

uint64_t qcow2_refcount_get(const uint8_t *block, uint32_t order, uint64_t i)
{
	uint32_t bits = 1u << order;

	switch (order) {
	case 3:
		return block[i];
	case 4:
		return be16_get(block + 2 * i);
	case 5:
		return be32_get(block + 4 * i);
	case 6:
		return be64_get(block + 8 * i);
	default: /* sub-byte: entry 0 in the lowest bits of byte 0 */
		return (block[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
	}
}

void qcow2_refcount_set(uint8_t *block, uint32_t order, uint64_t i, uint64_t v)
{
	uint32_t bits = 1u << order, shift;
	uint8_t mask;

	switch (order) {
	case 3:
		block[i] = (uint8_t)v;
		return;
	case 4:
		block[2 * i] = (uint8_t)(v >> 8);
		block[2 * i + 1] = (uint8_t)v;
		return;
	case 5:
		be32_put(block + 4 * i, (uint32_t)v);
		return;
	case 6:
		be64_put(block + 8 * i, v);
		return;
	default:
		shift = (uint32_t)(i * bits % 8);
		mask = (uint8_t)(((1u << bits) - 1) << shift);
		block[i * bits / 8] = (uint8_t)((block[i * bits / 8] & ~mask) |
						((v << shift) & mask));
		return;
	}
}
