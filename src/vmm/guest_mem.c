#include "vmm/guest_mem.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.h"

void guest_mem_layout(struct guest_mem *m, uint64_t size)
{
	m->host = NULL;
	m->size = size;
	m->low_size = size < LOW_RAM_END ? size : LOW_RAM_END;
}

int guest_mem_map(struct guest_mem *m, uint64_t size)
{
	void *p;

	guest_mem_layout(m, size);
	/* NORESERVE: guest pages cost host memory only once touched. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	m->host = p;
	return 0;
}

void guest_mem_unmap(struct guest_mem *m)
{
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
