/* The snapshot file's header (vmm/snapshot_file.c) from a hostile file:
 * any header and any file size must be refused with a message or give
 * sections that lie inside the file, after the header, apart from each
 * other, of known kinds, metadata within bounds and RAM page-aligned.
 * Half the inputs get their CRC fixed up, so that the checks behind it
 * are reached.
 *
 * Input: le64 file size, one byte (bit 0: fix the CRC), then the header
 * (zero-padded to a page). */
#include <string.h>

#include "fuzz.h"
#include "util/le.h"
#include "util/state.h"
#include "vmm/snapshot_file.h"

static uint8_t hdr[SNAPSHOT_HEADER_SIZE];
static struct snapshot_index idx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct error err = { 0 };
	uint64_t file_size = fuzz_take(&in, 8);
	uint8_t flags = fuzz_u8(&in);
	uint32_t n, i, j;

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, in.p, in.n < sizeof(hdr) ? in.n : sizeof(hdr));
	n = le32_get(hdr + 12);
	if ((flags & 1) && n >= 1 && n <= SNAPSHOT_MAX_SECTIONS)
		le32_put(hdr + 16 + 28 * n, state_crc32(hdr, 16 + 28 * (size_t)n));
	if (snapshot_header_parse(hdr, file_size, &idx, &err) < 0) {
		CHECK(err.set);
		return 0;
	}
	CHECK(idx.nsections >= 1 && idx.nsections <= SNAPSHOT_MAX_SECTIONS);
	for (i = 0; i < idx.nsections; i++) {
		const struct snapshot_section *s = &idx.sec[i];

		CHECK(s->kind >= SNAP_MACHINE && s->kind <= SNAP_RAM);
		CHECK(s->offset >= SNAPSHOT_HEADER_SIZE && s->offset <= file_size);
		CHECK(s->length <= file_size - s->offset);
		CHECK(s->kind == SNAP_RAM ? s->offset % SNAPSHOT_PAGE == 0
					  : s->length <= SNAPSHOT_META_MAX);
		for (j = 0; j < i; j++) {
			const struct snapshot_section *o = &idx.sec[j];

			CHECK(o->kind != s->kind || o->index != s->index);
			CHECK(!s->length || !o->length || s->offset >= o->offset + o->length ||
			      o->offset >= s->offset + s->length);
		}
		CHECK(snapshot_find(&idx, s->kind, s->index) == s);
	}
	return 0;
}
