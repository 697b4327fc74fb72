/* The snapshot file format: what `migrate` to "file:PATH" writes and
 * `--incoming file:PATH` reads. One page of header, then the sections.
 *
 *   header: magic "VIREOSNP", le32 format version, le32 section count,
 *           per section (kind, index, offset, length, CRC-32 of its
 *           bytes), and the CRC-32 of everything before it;
 *   sections: the machine (vCPU count, RAM size), each vCPU, the
 *           interrupt controllers, the clock, the PCI host, the devices
 *           (hw/device.h), and last guest RAM, page-aligned so a restore
 *           maps it instead of reading it.
 *
 * Every section but RAM is checked against its CRC before anything is
 * loaded; RAM's CRC is written, but checking it would read all of RAM and
 * make a restore's time grow with the guest's size, so a restore does not
 * (`vireo snapshot-check` could). The parser is for hostile files. */
#ifndef VIREO_VMM_SNAPSHOT_FILE_H
#define VIREO_VMM_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define SNAPSHOT_MAGIC "VIREOSNP"
#define SNAPSHOT_VERSION 1
#define SNAPSHOT_HEADER_SIZE 4096
#define SNAPSHOT_PAGE 4096
#define SNAPSHOT_MAX_SECTIONS 140 /* fits the header page */
/* Sections other than RAM are read whole into memory: bounded. */
#define SNAPSHOT_META_MAX (64u << 20)

enum snapshot_kind {
	SNAP_MACHINE = 1,
	SNAP_VCPU,
	SNAP_IRQCHIPS,
	SNAP_CLOCK,
	SNAP_PCI_HOST,
	SNAP_DEVICES,
	SNAP_RAM,
};

struct snapshot_section {
	uint32_t kind, index;
	uint64_t offset, length;
	uint32_t crc;
};

struct snapshot_index {
	uint32_t nsections;
	struct snapshot_section sec[SNAPSHOT_MAX_SECTIONS];
};

/* The header for idx, in SNAPSHOT_HEADER_SIZE bytes. */
void snapshot_header_write(const struct snapshot_index *idx, uint8_t *hdr);
/* Parses a header read from a file of file_size bytes: the magic, the
 * version, the CRC, each section inside the file, after the header, not
 * overlapping another, known kinds, metadata sections within bounds, RAM
 * page-aligned. 0, or -1 with err saying what is wrong. */
int snapshot_header_parse(const uint8_t *hdr, uint64_t file_size, struct snapshot_index *idx,
			  struct error *err);
/* The section of that kind and index, or NULL. */
const struct snapshot_section *snapshot_find(const struct snapshot_index *idx, uint32_t kind,
					     uint32_t index);

#endif
