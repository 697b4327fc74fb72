/* KVM's coalesced I/O ring (kvm/coalesced.h). */
#include "kvm/coalesced.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"

void kvm_coalesced_probe(struct kvm_coalesced *c, int sys_fd)
{
	int off = ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->page_offset = off > 0 ? off : 0;
	c->pio = c->page_offset && ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) > 0;
}

void kvm_coalesced_attach(struct kvm_coalesced *c, void *run, int mmap_size)
{
	long page = sysconf(_SC_PAGESIZE);

	if (c->ring || !c->page_offset || page <= 0 ||
	    (long)mmap_size < (c->page_offset + 1) * page)
		return;
	c->ring = (struct kvm_coalesced_mmio_ring *)((uint8_t *)run + c->page_offset * page);
	c->entries = (uint32_t)(((size_t)page - sizeof(struct kvm_coalesced_mmio_ring)) /
				sizeof(struct kvm_coalesced_mmio));
}

int kvm_coalesced_zone(struct kvm_coalesced *c, int vm_fd, uint64_t addr, uint64_t len, bool pio,
		       bool add)
{
	struct kvm_coalesced_mmio_zone z = { .addr = addr, .size = (uint32_t)len };

	if (!c->page_offset || (pio && !c->pio) || len == 0 || len > UINT32_MAX)
		return -1;
	z.pio = pio;
	if (ioctl(vm_fd, add ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO, &z) < 0) {
		log_debug("KVM coalesced %s zone %#llx+%llu: %s", pio ? "port" : "MMIO",
			  (unsigned long long)addr, (unsigned long long)len, strerror(errno));
		return -1;
	}
	return 0;
}

void kvm_coalesced_replay(struct kvm_coalesced *c, kvm_coalesced_fn fn, void *ctx)
{
	struct kvm_coalesced_mmio_ring *r = c->ring;

	/* The common case, nothing written: no lock. KVM publishes an entry
	 * before it moves last (smp_wmb), so what is seen here is complete. */
	if (!r || __atomic_load_n(&r->first, __ATOMIC_RELAXED) ==
		      __atomic_load_n(&r->last, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint32_t first = __atomic_load_n(&r->first, __ATOMIC_RELAXED);
		uint32_t last = __atomic_load_n(&r->last, __ATOMIC_ACQUIRE);
		struct kvm_coalesced_mmio e;

		if (first == last)
			break;
		if (first >= c->entries || last >= c->entries) {
			/* Not KVM's doing; start over rather than index out
			 * of the page. */
			c->bad++;
			__atomic_store_n(&r->first, last < c->entries ? last : 0, __ATOMIC_RELEASE);
			break;
		}
		memcpy(&e, &r->coalesced_mmio[first], sizeof(e));
		/* The slot is free again once first moves past it. */
		__atomic_store_n(&r->first, (first + 1) % c->entries, __ATOMIC_RELEASE);
		if (e.len == 0 || e.len > sizeof(e.data)) {
			c->bad++;
			continue;
		}
		c->replayed++;
		fn(ctx, e.pio != 0, e.phys_addr, e.len, e.data);
	}
	pthread_mutex_unlock(&c->lock);
}

void kvm_coalesced_destroy(struct kvm_coalesced *c)
{
	c->ring = NULL;
	pthread_mutex_destroy(&c->lock);
}
