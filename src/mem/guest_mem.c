#include "mem/guest_mem.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.h"

void guest_mem_layout(struct guest_mem *m, uint64_t size)
{
	m->host = NULL;
	m->size = size;
	m->low_size = size < LOW_RAM_END ? size : LOW_RAM_END;
	m->written = NULL;
	m->tracking = false;
}

#define HUGE_PAGE_SIZE (2ULL << 20)

int guest_mem_map(struct guest_mem *m, uint64_t size)
{
	uint8_t *p, *aligned;
	uint64_t head, tail;

	guest_mem_layout(m, size);
	if (size > UINT64_MAX - HUGE_PAGE_SIZE)
		return -1;
	/* NORESERVE: guest pages cost host memory only once touched. */
	p = mmap(NULL, size + HUGE_PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/* Guest-physical 2 MiB frames must sit on host 2 MiB boundaries for
	 * KVM to map them as huge pages: one fault per 2 MiB the guest
	 * touches instead of 512, which is most of the cost of booting. */
	aligned = (uint8_t *)(((uintptr_t)p + HUGE_PAGE_SIZE - 1) & ~(uintptr_t)(HUGE_PAGE_SIZE - 1));
	head = (uint64_t)(aligned - p);
	tail = HUGE_PAGE_SIZE - head;
	if (head)
		munmap(p, head);
	if (tail)
		munmap(aligned + size, tail);
	madvise(aligned, size, MADV_HUGEPAGE); /* only a hint: may be disabled */
	m->host = aligned;
	return 0;
}

void guest_mem_unmap(struct guest_mem *m)
{
	guest_mem_track_writes_stop(m);
	free(m->written);
	m->written = NULL;
	if (m->host)
		munmap(m->host, m->size);
	m->host = NULL;
}

uint64_t guest_mem_resident(const struct guest_mem *m)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), n = 0, i, pages;
	unsigned char *vec;

	if (!m->host)
		return 0;
	pages = (m->size + page - 1) / page;
	vec = malloc(pages);
	if (!vec || mincore(m->host, m->size, vec) < 0) {
		free(vec);
		return 0;
	}
	for (i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n * page;
}

uint64_t guest_mem_high_size(const struct guest_mem *m)
{
	return m->size - m->low_size;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t high = guest_mem_high_size(m);

	if (!m->host)
		return NULL;
	if (gpa < m->low_size) {
		if (len > m->low_size - gpa)
			return NULL;
		return m->host + gpa;
	}
	if (gpa >= HIGH_RAM_START && gpa - HIGH_RAM_START < high) {
		if (len > high - (gpa - HIGH_RAM_START))
			return NULL;
		return m->host + m->low_size + (gpa - HIGH_RAM_START);
	}
	return NULL;
}

size_t guest_mem_bitmap_words(const struct guest_mem *m)
{
	return (size_t)(((m->size >> GUEST_PAGE_SHIFT) + 63) / 64);
}

int guest_mem_track_writes_start(struct guest_mem *m)
{
	size_t i, n = guest_mem_bitmap_words(m);

	if (guest_mem_tracking(m))
		return 0;
	if (!m->written && !(m->written = calloc(n, sizeof(uint64_t))))
		return -1;
	/* Marks left from a migration before: a page sent once more. */
	for (i = 0; i < n; i++)
		__atomic_store_n(&m->written[i], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->tracking, true, __ATOMIC_RELEASE);
	return 0;
}

void guest_mem_track_writes_stop(struct guest_mem *m)
{
	__atomic_store_n(&m->tracking, false, __ATOMIC_RELEASE);
}

void guest_mem_mark_written(const struct guest_mem *m, const void *host, size_t len)
{
	uint64_t *bits = m->written;
	uintptr_t p = (uintptr_t)host, base = (uintptr_t)m->host;
	uint64_t first, last, i;

	if (!guest_mem_tracking(m) || !len || p < base || p - base >= m->size)
		return;
	first = (p - base) >> GUEST_PAGE_SHIFT;
	last = (p - base + len - 1) >> GUEST_PAGE_SHIFT;
	if (last >= m->size >> GUEST_PAGE_SHIFT)
		last = (m->size >> GUEST_PAGE_SHIFT) - 1;
	for (i = first; i <= last; i++)
		__atomic_fetch_or(&bits[i / 64], 1ULL << (i % 64), __ATOMIC_RELEASE);
}

void guest_mem_take_written(const struct guest_mem *m, uint64_t *bitmap)
{
	size_t i, n = guest_mem_bitmap_words(m);

	if (!guest_mem_tracking(m))
		return;
	for (i = 0; i < n; i++)
		bitmap[i] |= __atomic_exchange_n(&m->written[i], 0, __ATOMIC_ACQ_REL);
}
