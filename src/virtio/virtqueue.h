/* Split virtqueues (VirtIO 1.2, 2.7), device side. Everything in the ring
 * is written by an untrusted guest: every address and length is checked
 * against guest RAM (overflow-safe) before it is used, a chain may not
 * loop or exceed VIRTQ_MAX_SEGS buffers, and device-readable buffers may
 * not follow device-writable ones. A violation makes virtq_pop() return
 * -1; the caller then puts the device in DEVICE_NEEDS_RESET. */
#ifndef VIREO_VIRTIO_VIRTQUEUE_H
#define VIREO_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mem/guest_mem.h"

#define VIRTQ_MAX_SIZE 1024 /* largest queue size Vireo offers */
#define VIRTQ_MAX_SEGS 256  /* buffers in one chain, indirect ones included */

/* One request: a descriptor chain, as host iovecs into guest RAM. The
 * device-readable buffers ("out", driver to device) come first, then the
 * device-writable ones ("in"). */
struct virtq_elem {
	uint16_t head; /* id to give back to virtq_push() */
	uint16_t out_num;
	uint16_t in_num;
	size_t out_len; /* bytes in the out buffers */
	size_t in_len;	/* bytes of room in the in buffers */
	struct iovec iov[VIRTQ_MAX_SEGS];
};

struct virtq {
	/* Set by the transport from what the driver programmed. */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_F_INDIRECT_DESC negotiated */
	bool ready;	/* enabled by the driver and its rings are valid */

	/* Device-side state. */
	const struct guest_mem *mem;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t last_avail; /* next avail ring entry to take */
	uint16_t used_idx;   /* next used ring entry to fill */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted */
	bool signalled_used_valid;
	bool notify_enabled; /* keep avail_event current / NO_NOTIFY clear */
};

/* Checks the ring addresses the driver gave (alignment, inside RAM) and
 * maps them. Returns 0, or -1 (queue unusable) with nothing mapped. */
int virtq_map(struct virtq *q, const struct guest_mem *mem);
/* Back to the state after reset: not ready, counters zero. */
void virtq_reset(struct virtq *q);

/* Takes the next available chain. 1: *e filled; 0: ring empty; -1: the
 * driver broke the rules (e is undefined; the queue must stop). */
int virtq_pop(struct virtq *q, struct virtq_elem *e);
/* Takes back the last n popped chains (e.g. no room in a backend). */
void virtq_unpop(struct virtq *q, uint16_t n);
/* Returns a chain to the driver, len bytes written into its in buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt for what was pushed since the
 * last call that returned true (EVENT_IDX or the NO_INTERRUPT flag). */
bool virtq_should_notify(struct virtq *q);
/* Notification suppression while the device drains the ring: off, then on
 * again. virtq_enable_notify() returns true when buffers arrived in the
 * meantime, so the caller must look again before sleeping. */
void virtq_disable_notify(struct virtq *q);
bool virtq_enable_notify(struct virtq *q);
bool virtq_empty(struct virtq *q);

#endif
