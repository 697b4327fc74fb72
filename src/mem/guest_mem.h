/* Guest RAM: one host mapping, split into a low part at guest physical 0
 * and a high part at 4 GiB. All guest-physical accesses from device models
 * go through guest_mem_ptr(), which refuses ranges outside RAM. */
#ifndef VIREO_MEM_GUEST_MEM_H
#define VIREO_MEM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem {
	uint8_t *host;     /* mapping of the whole RAM */
	uint64_t size;     /* total bytes of RAM */
	uint64_t low_size; /* bytes mapped at guest physical 0 */
	/* While a migration runs (tracking): one bit per 4 KiB page of the
	 * mapping that Vireo itself wrote (KVM's dirty log sees only the
	 * vCPUs' writes). Allocated by the first migration and kept until
	 * unmap: a migration that fails ends with the VM running, and a
	 * device thread may be marking the bitmap at that moment. */
	uint64_t *written;
	bool tracking;
};

#define GUEST_PAGE_SHIFT 12

/* Sizes the split: RAM up to LOW_RAM_END stays low, the rest goes high. */
void guest_mem_layout(struct guest_mem *m, uint64_t size);
int guest_mem_map(struct guest_mem *m, uint64_t size);
void guest_mem_unmap(struct guest_mem *m);
/* Host pointer for [gpa, gpa+len) if the whole range is RAM in one part,
 * else NULL. Overflow-safe for any gpa/len a guest can produce. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
uint64_t guest_mem_high_size(const struct guest_mem *m);
/* Tracking of the writes Vireo makes into guest RAM (device models:
 * used rings, buffers they fill). start clears the bitmap (allocating it
 * the first time: 0, or -1 out of memory) and turns tracking on (while
 * on, it keeps what was marked); stop turns it off. Either with the
 * devices running. */
int guest_mem_track_writes_start(struct guest_mem *m);
void guest_mem_track_writes_stop(struct guest_mem *m);
static inline bool guest_mem_tracking(const struct guest_mem *m)
{
	return __atomic_load_n(&m->tracking, __ATOMIC_ACQUIRE);
}
/* Records that [host, host+len) inside the mapping was written; call it
 * after the write, never before (a take in between would lose the
 * write). Any thread; nothing when tracking is off. */
void guest_mem_mark_written(const struct guest_mem *m, const void *host, size_t len);
/* ORs the pages written since the last call into bitmap (one bit per
 * page of the mapping, (size/4096+63)/64 words) and clears them;
 * nothing when tracking is off. */
void guest_mem_take_written(const struct guest_mem *m, uint64_t *bitmap);
/* Words of a bitmap of every page. */
size_t guest_mem_bitmap_words(const struct guest_mem *m);

/* Bytes of guest RAM the host has actually backed with pages so far. */
uint64_t guest_mem_resident(const struct guest_mem *m);

#endif
