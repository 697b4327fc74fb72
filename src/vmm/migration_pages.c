/* query-vireo-migration-pages: what the last live migration did with
 * each page (migration.h's page_log), to trace a page that differs at the
 * destination to the pass that sent it last and the tracker that put it
 * there. */
#include <string.h>

#include "vmm/migration.h"
#include "vmm/migration_stream.h"
#include "vmm/vm.h"

static json_t *page_bits(uint16_t l, uint16_t kvm, uint16_t vireo)
{
	json_t *a = json_array();

	if (l & kvm)
		json_array_append_new(a, json_string("kvm-dirty-log"));
	if (l & vireo)
		json_array_append_new(a, json_string("vireo-writes"));
	return a;
}

/* Per pass, the pages it sent last, and for which tracker. */
static json_t *pages_summary(const struct migration *m, uint64_t npages)
{
	uint64_t p, count[MIG_PAGE_PASS + 1][3];
	json_t *passes = json_array();
	unsigned int i;

	memset(count, 0, sizeof(count));
	for (p = 0; p < npages; p++) {
		uint16_t l = m->page_log[p];

		count[l & MIG_PAGE_PASS][0]++;
		count[l & MIG_PAGE_PASS][1] += !!(l & MIG_PAGE_SENT_KVM);
		count[l & MIG_PAGE_PASS][2] += !!(l & MIG_PAGE_SENT_VIREO);
	}
	for (i = 0; i <= MIG_PAGE_PASS && i <= m->pass; i++)
		json_array_append_new(passes, json_pack("{s:I,s:I,s:I,s:I}", "pass", (json_int_t)i,
							"pages", (json_int_t)count[i][0],
							"kvm-dirty-log", (json_int_t)count[i][1],
							"vireo-writes", (json_int_t)count[i][2]));
	return json_pack("{s:I,s:o}", "passes", (json_int_t)m->pass, "last-sent-by", passes);
}

json_t *migration_pages_json(struct vm *vm, uint64_t offset, uint64_t length, struct error *err)
{
	struct migration *m = &vm->mig;
	uint64_t p, first = offset / MIG_PAGE, end;
	json_t *pages;

	if (m->thread_started || (m->status && (!strcmp(m->status, "setup") ||
						!strcmp(m->status, "active")))) {
		error_set(err, "a migration is running");
		return NULL;
	}
	if (!m->page_log) {
		error_set(err, "no live migration has run");
		return NULL;
	}
	if (offset == UINT64_MAX)
		return pages_summary(m, vm->mem.size / MIG_PAGE);
	if (offset % MIG_PAGE || offset >= vm->mem.size || length > 1u << 20) {
		error_set(err, "offset must be page-aligned inside RAM, length at most 1 MiB");
		return NULL;
	}
	end = (offset + length + MIG_PAGE - 1) / MIG_PAGE;
	if (end > vm->mem.size / MIG_PAGE)
		end = vm->mem.size / MIG_PAGE;
	pages = json_array();
	for (p = first; p < end; p++) {
		uint16_t l = m->page_log[p];

		json_array_append_new(pages, json_pack("{s:I,s:o,s:o}", "pass",
						       (json_int_t)(l & MIG_PAGE_PASS), "sent-for",
						       page_bits(l, MIG_PAGE_SENT_KVM, MIG_PAGE_SENT_VIREO),
						       "dirty-since",
						       page_bits(l, MIG_PAGE_DIRTY_KVM,
								 MIG_PAGE_DIRTY_VIREO)));
	}
	return json_pack("{s:I,s:o}", "passes", (json_int_t)m->pass, "pages", pages);
}

