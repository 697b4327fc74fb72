#include "vmm/snapshot_file.h"

#include <string.h>

#include "util/le.h"
#include "util/state.h"

#define ENTRY_SIZE 28 /* kind, index, offset, length, crc */
#define FIXED_SIZE 16 /* magic, version, count */

_Static_assert(FIXED_SIZE + SNAPSHOT_MAX_SECTIONS * ENTRY_SIZE + 4 <= SNAPSHOT_HEADER_SIZE,
	       "the section table fits the header page");

void snapshot_header_write(const struct snapshot_index *idx, uint8_t *hdr)
{
	uint8_t *p = hdr + FIXED_SIZE;
	uint32_t i;

	memset(hdr, 0, SNAPSHOT_HEADER_SIZE);
	memcpy(hdr, SNAPSHOT_MAGIC, 8);
	le32_put(hdr + 8, SNAPSHOT_VERSION);
	le32_put(hdr + 12, idx->nsections);
	for (i = 0; i < idx->nsections; i++, p += ENTRY_SIZE) {
		le32_put(p, idx->sec[i].kind);
		le32_put(p + 4, idx->sec[i].index);
		le64_put(p + 8, idx->sec[i].offset);
		le64_put(p + 16, idx->sec[i].length);
		le32_put(p + 24, idx->sec[i].crc);
	}
	le32_put(p, state_crc32(hdr, (size_t)(p - hdr)));
}

int snapshot_header_parse(const uint8_t *hdr, uint64_t file_size, struct snapshot_index *idx,
			  struct error *err)
{
	const uint8_t *p = hdr + FIXED_SIZE;
	uint32_t version, n, i, j;

	if (file_size < SNAPSHOT_HEADER_SIZE || memcmp(hdr, SNAPSHOT_MAGIC, 8))
		return error_set(err, "not a Vireo snapshot");
	version = le32_get(hdr + 8);
	if (version != SNAPSHOT_VERSION)
		return error_set(err, "snapshot format version %u; this Vireo reads version %u",
				 version, SNAPSHOT_VERSION);
	n = le32_get(hdr + 12);
	if (n == 0 || n > SNAPSHOT_MAX_SECTIONS)
		return error_set(err, "snapshot header is damaged (%u sections)", n);
	if (le32_get(p + (size_t)n * ENTRY_SIZE) != state_crc32(hdr, FIXED_SIZE + (size_t)n * ENTRY_SIZE))
		return error_set(err, "snapshot header is damaged (checksum)");
	idx->nsections = n;
	for (i = 0; i < n; i++, p += ENTRY_SIZE) {
		struct snapshot_section *s = &idx->sec[i];

		s->kind = le32_get(p);
		s->index = le32_get(p + 4);
		s->offset = le64_get(p + 8);
		s->length = le64_get(p + 16);
		s->crc = le32_get(p + 24);
		if (s->kind < SNAP_MACHINE || s->kind > SNAP_RAM)
			return error_set(err, "snapshot has a section of unknown kind %u", s->kind);
		if (s->offset < SNAPSHOT_HEADER_SIZE || s->offset > file_size ||
		    s->length > file_size - s->offset)
			return error_set(err, "snapshot is truncated (section %u ends past the "
					 "end of the file)", i);
		if (s->kind == SNAP_RAM ? (s->offset % SNAPSHOT_PAGE) != 0
					: s->length > SNAPSHOT_META_MAX)
			return error_set(err, "snapshot section %u is malformed", i);
		for (j = 0; j < i; j++) {
			const struct snapshot_section *o = &idx->sec[j];

			if (o->kind == s->kind && o->index == s->index)
				return error_set(err, "snapshot has a section twice");
			if (s->length && o->length && s->offset < o->offset + o->length &&
			    o->offset < s->offset + s->length)
				return error_set(err, "snapshot sections overlap");
		}
	}
	return 0;
}

const struct snapshot_section *snapshot_find(const struct snapshot_index *idx, uint32_t kind,
					     uint32_t index)
{
	for (uint32_t i = 0; i < idx->nsections; i++)
		if (idx->sec[i].kind == kind && idx->sec[i].index == index)
			return &idx->sec[i];
	return NULL;
}
