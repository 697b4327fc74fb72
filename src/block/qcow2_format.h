/* qcow2's on-disk format (QEMU's docs/interop/qcow2.txt): the header with
 * its extensions, and the table entries, decoded and checked without any
 * I/O so that hostile images can be fuzzed. Everything on disk is
 * big-endian. An image is untrusted input: every offset is checked
 * against the file before it is used, every size against a limit. */
#ifndef VIREO_BLOCK_QCOW2_FORMAT_H
#define VIREO_BLOCK_QCOW2_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
/* What is read of an image's start to parse the header, its extensions
 * and the backing file name (all within the first cluster, or this). */
#define QCOW2_HEADER_READ (64u << 10)

#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* Limits on what Vireo holds in memory for one image. */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)

enum qcow2_compression { QCOW2_ZLIB = 0, QCOW2_ZSTD = 1 };

struct qcow2_header {
	uint32_t version; /* 2 or 3 */
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint64_t size; /* the virtual disk, bytes */
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t refcount_order;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible, compatible, autoclear;
	uint32_t header_length; /* 72 for version 2 */
	enum qcow2_compression compression;
	char backing_file[1024]; /* "" without one */
	char backing_format[32]; /* "" when the image does not say */
	/* Where the header extensions end: what a rewrite of the header
	 * must keep below. */
	uint32_t extensions_end;
};

/* Parses the start of an image (len bytes of it, the whole file being
 * file_size bytes). 0, or -1 with err saying what is wrong or what is not
 * supported, in words for the user. */
int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		       struct qcow2_header *h, struct error *err);
/* Whether buf (len bytes from the start of a file) begins as qcow2 does:
 * the magic and a version of 2 or more. */
bool qcow2_probe(const uint8_t *buf, size_t len);

/* Table entries. */
#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO 1ull
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull /* bits 9-55 */
/* Bits a standard L2 entry (or an L1 entry, without bit 0) may have set:
 * anything else is a reserved bit set, and the entry is refused. */
#define QCOW2_L2_STD_BITS (QCOW2_OFLAG_COPIED | QCOW2_OFFSET_MASK | QCOW2_OFLAG_ZERO)
#define QCOW2_L1_BITS (QCOW2_OFLAG_COPIED | QCOW2_OFFSET_MASK)

enum qcow2_cluster_kind {
	QCOW2_UNALLOCATED,	/* the backing file's, or zeroes */
	QCOW2_ZERO,		/* reads as zeroes (an allocation may remain) */
	QCOW2_NORMAL,		/* data at host_offset */
	QCOW2_COMPRESSED,	/* compressed_size bytes at host_offset */
};

struct qcow2_mapping {
	enum qcow2_cluster_kind kind;
	uint64_t host_offset;	  /* NORMAL: cluster aligned; ZERO: 0 or kept */
	uint64_t compressed_size; /* COMPRESSED: bytes to read from host_offset */
	bool copied;		  /* refcount exactly one: may be written in place */
};

/* Decodes an L2 entry of an image with these cluster_bits and version;
 * -1 when the entry is invalid (reserved bits, misaligned offset, zero
 * flag in version 2): the image is corrupt there. */
int qcow2_l2_decode(uint64_t entry, uint32_t cluster_bits, uint32_t version,
		    struct qcow2_mapping *m);

/* Refcount block entries of 1 << order bits, entry i of block. */
uint64_t qcow2_refcount_get(const uint8_t *block, uint32_t order, uint64_t i);
void qcow2_refcount_set(uint8_t *block, uint32_t order, uint64_t i, uint64_t v);

#endif
