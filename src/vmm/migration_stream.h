/* The live-migration stream: what `migrate` to "tcp:HOST:PORT" sends and
 * `--incoming tcp:ADDR:PORT` reads, and the destination's one reply.
 *
 *   header:  magic "VIREOMIG", le32 version, le32 vCPU count,
 *            le64 RAM size, le64 low RAM size;
 *   records: one byte of type, then
 *     'P' pages:   le64 first page, le32 count (1..MIG_MAX_RUN), le64
 *                  checksum of the data, count * 4096 bytes of RAM;
 *     'Z' zeros:   le64 first page, le32 count: those pages are zero;
 *     'S' section: le32 kind, le32 index, le32 length, le64 checksum,
 *                  the section (vmm/vm_state.h);
 *     'E' end:     nothing more follows;
 *   reply (destination to source, after the end): magic "VIREOACK",
 *            le32 status (0: loaded, running), le32 length, a message.
 *
 * RAM may come many times over (pre-copy sends a page again each time
 * the guest dirtied it); the last copy wins. The sections come once,
 * after the last RAM, with the VM stopped. The reader is for hostile
 * input: every length, page number and checksum is checked before use,
 * and nothing but the target RAM given to it is ever written.
 *
 * The checksum is XXH64 (libxxhash, seed 0), not the CRC-32 of the
 * snapshot file: every byte of RAM sent is summed twice, by the source
 * and by the destination, and where the VMM itself runs under emulation
 * (the nested host) XXH64 took 2.3-4.4 GB/s against zlib's CRC-32's
 * 0.26-0.51 (8x; 2.4x on this host's own CPU). It detects damage, as
 * the CRC did; it is not a defence against a forger (neither was the
 * CRC): the stream is trusted as far as its sender is. */
#ifndef VIREO_VMM_MIGRATION_STREAM_H
#define VIREO_VMM_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "vmm/vm_state.h"

#define MIG_MAGIC "VIREOMIG"
#define MIG_ACK_MAGIC "VIREOACK"
#define MIG_VERSION 2 /* 1: CRC-32 checksums */
#define MIG_PAGE 4096
#define MIG_MAX_RUN 512 /* pages in one 'P' record: 2 MiB */
#define MIG_MAX_REPLY 1024

/* Where bytes go: an fd, with an optional rate limit and a flag that
 * stops a send in progress. */
struct mig_out {
	int fd;
	uint64_t max_bw;	/* bytes per second, 0: unlimited */
	uint64_t sent;		/* bytes so far */
	uint64_t window_start;	/* ns: the rate limit's reference time */
	uint64_t window_bytes;	/* bytes sent since then */
	volatile bool *cancel; /* may be NULL */
	/* Records staged for one write: RAM is copied here before its
	 * checksum, and a pass's many small records (a page or a few each,
	 * where the guest dirtied scattered pages) go out together instead
	 * of a system call each. Room for one whole 'P' record at least. */
	uint8_t *buf;
	size_t used;
};

/* The records' checksum (XXH64 of p[0..n), seed 0). */
uint64_t mig_checksum(const void *p, size_t n);

int mig_out_init(struct mig_out *o, int fd, uint64_t max_bw, volatile bool *cancel);
/* What is staged, sent: the sender calls it before it waits for or
 * counts anything that needs the bytes gone (the end of a pass). */
int mig_out_flush(struct mig_out *o);
/* Frees the stage; what is staged and unsent is dropped. */
void mig_out_free(struct mig_out *o);
/* Each 0, or -1 with errno set (ECANCELED when cancelled). */
int mig_send_header(struct mig_out *o, uint32_t ncpus, uint64_t ram_size, uint64_t low_size);
/* Pages [first, first+count) of ram, as 'P' records; a page found zero
 * is sent as 'Z' when zeros_too (a page the destination may hold
 * non-zero), skipped otherwise. *zero_pages counts them. Staged: sent
 * as the stage fills, the rest by mig_out_flush(). */
int mig_send_pages(struct mig_out *o, const uint8_t *ram, uint64_t first, uint64_t count,
		   bool zeros_too, uint64_t *zero_pages);
int mig_send_section(struct mig_out *o, uint32_t kind, uint32_t index, const void *buf,
		     size_t len);
int mig_send_end(struct mig_out *o);
int mig_send_reply(int fd, uint32_t status, const char *msg);
/* Reads the destination's reply: 0 and status/msg, or -1 (errno, or
 * EPROTO for something that is not a reply). */
int mig_read_reply(int fd, uint32_t *status, char *msg, size_t size);

/* Where a stream goes on the destination. */
struct mig_target {
	uint8_t *ram;
	uint64_t ram_size, low_size;
	uint32_t ncpus;
};

/* Reads exactly n bytes, or returns -1 (end of stream or error). */
typedef int (*mig_read_fn)(void *ctx, void *buf, size_t n);

/* Reads a whole stream: the header (checked against t first, so another
 * machine is refused before any RAM), RAM into t->ram, the sections into
 * l[] (each allocated, *n of them, at most SNAPSHOT_MAX_SECTIONS), up to
 * the end record. 0, or -1 with err saying what is wrong; free the
 * sections with mig_sections_free() either way. */
int mig_receive(mig_read_fn read, void *ctx, const struct mig_target *t,
		struct vm_state_loaded *l, unsigned int *n, uint64_t *bytes, struct error *err);
void mig_sections_free(struct vm_state_loaded *l, unsigned int n);

#endif
