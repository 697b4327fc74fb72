/* Guest RAM: one host mapping, split into a low part at guest physical 0
 * and a high part at 4 GiB. All guest-physical accesses from device models
 * go through guest_mem_ptr(), which refuses ranges outside RAM. */
#ifndef VIREO_MEM_GUEST_MEM_H
#define VIREO_MEM_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem {
	uint8_t *host;     /* mapping of the whole RAM */
	uint64_t size;     /* total bytes of RAM */
	uint64_t low_size; /* bytes mapped at guest physical 0 */
};

/* Sizes the split: RAM up to LOW_RAM_END stays low, the rest goes high. */
void guest_mem_layout(struct guest_mem *m, uint64_t size);
int guest_mem_map(struct guest_mem *m, uint64_t size);
void guest_mem_unmap(struct guest_mem *m);
/* Host pointer for [gpa, gpa+len) if the whole range is RAM in one part,
 * else NULL. Overflow-safe for any gpa/len a guest can produce. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
uint64_t guest_mem_high_size(const struct guest_mem *m);
/* Bytes of guest RAM the host has actually backed with pages so far. */
uint64_t guest_mem_resident(const struct guest_mem *m);

#endif
