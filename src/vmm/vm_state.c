/* The machine's state but RAM, as sections (vmm/vm_state.h). */
#include "vmm/vm_state.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "util/log.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_pci.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"

int vm_state_build(struct vm *vm, struct vm_state_section *m, unsigned int *n, struct error *err)
{
	struct kvm_irqchips_state chips;
	unsigned int i, k = 0;

	if (2 + vm->ncpus + 4 > SNAPSHOT_MAX_SECTIONS)
		return error_set(err, "a snapshot holds at most %d vCPUs",
				 SNAPSHOT_MAX_SECTIONS - 6);
	m[k].kind = SNAP_MACHINE;
	state_put_u32(&m[k].w, vm->ncpus);
	state_put_u64(&m[k].w, vm->mem.size);
	state_put_u64(&m[k].w, vm->mem.low_size);
	k++;
	for (i = 0; i < vm->ncpus; i++, k++) {
		struct kvm_vcpu_state s;
		uint64_t tsc;

		m[k].kind = SNAP_VCPU;
		m[k].index = i;
		if (kvm_vcpu_state_get(&vm->kvm, vm->vcpus[i].fd, &s, err) < 0)
			return -1;
		if (kvm_vcpu_tsc_get(vm->vcpus[i].fd, &tsc) < 0) {
			kvm_vcpu_state_free(&s);
			return error_set(err, "vCPU %u: cannot read its TSC", i);
		}
		state_put_u64(&m[k].w, tsc);
		kvm_vcpu_state_save(&s, &m[k].w);
		kvm_vcpu_state_free(&s);
	}
	m[k].kind = SNAP_IRQCHIPS;
	if (kvm_irqchips_get(&vm->kvm, &chips, err) < 0)
		return -1;
	kvm_irqchips_save(&chips, &m[k++].w);
	m[k].kind = SNAP_CLOCK;
	state_put_u64(&m[k++].w, vm->kvmclock_at_pause);
	m[k].kind = SNAP_PCI_HOST;
	pthread_mutex_lock(&vm->pci.lock);
	state_put_u32(&m[k++].w, vm->pci.config_address);
	pthread_mutex_unlock(&vm->pci.lock);
	m[k].kind = SNAP_DEVICES;
	*n = k + 1;
	if (devices_save_all(&vm->devices, &m[k].w, err) < 0)
		return -1;
	for (i = 0; i < *n; i++)
		if (m[i].w.failed)
			return error_set(err, "out of memory");
	return 0;
}

void vm_state_free(struct vm_state_section *m)
{
	unsigned int i;

	for (i = 0; i < SNAPSHOT_MAX_SECTIONS; i++)
		state_writer_free(&m[i].w);
}

/* Exactly, in the largest unit that divides it (--memory takes any
 * multiple of 4 KiB). */
static const char *size_text(uint64_t bytes, char *buf, size_t n)
{
	if (bytes && bytes % (1ULL << 30) == 0)
		snprintf(buf, n, "%lluG", (unsigned long long)(bytes >> 30));
	else if (bytes && bytes % (1ULL << 20) == 0)
		snprintf(buf, n, "%lluM", (unsigned long long)(bytes >> 20));
	else if (bytes % 1024 == 0)
		snprintf(buf, n, "%lluK", (unsigned long long)(bytes >> 10));
	else
		snprintf(buf, n, "%llu", (unsigned long long)bytes);
	return buf;
}

int vm_state_same_machine(const char *whose, uint32_t ncpus, uint64_t size, uint64_t low,
			  uint32_t our_ncpus, uint64_t our_size, uint64_t our_low,
			  struct error *err)
{
	char a[32], b[32];

	if (ncpus == our_ncpus && size == our_size && low == our_low)
		return 0;
	return error_set(err, "%s a VM with %u vCPU%s and %s of memory, this one has %u and %s: "
			 "start it with --cpus %u --memory %s",
			 whose, ncpus, ncpus == 1 ? "" : "s", size_text(size, a, sizeof(a)),
			 our_ncpus, size_text(our_size, b, sizeof(b)), ncpus, a);
}

static int check_machine(struct vm *vm, const struct vm_state_loaded *l, struct error *err)
{
	struct state_reader r;
	uint32_t ncpus;
	uint64_t size, low;

	state_reader_init(&r, l->buf, l->len);
	ncpus = state_get_u32(&r);
	size = state_get_u64(&r);
	low = state_get_u64(&r);
	if (state_reader_done(&r, err) < 0)
		return -1;
	return vm_state_same_machine("the snapshot is of", ncpus, size, low, vm->ncpus,
				     vm->mem.size, vm->mem.low_size, err);
}

/* A vCPU's record: the TSC, then the state. The XSAVE area is padded to
 * this KVM's size (KVM_SET_XSAVE reads that many bytes). */
static int load_vcpu(struct vm *vm, unsigned int i, const struct vm_state_loaded *l,
		     struct error *err)
{
	struct kvm_vcpu_state s;
	struct state_reader r;
	size_t want = vm->vcpus[i].at_reset.xsave_size;
	uint64_t tsc;
	int ret = -1;

	state_reader_init(&r, l->buf, l->len);
	tsc = state_get_u64(&r);
	if (kvm_vcpu_state_load(&s, &r, err) < 0)
		return -1;
	if (!s.xsave != !vm->vcpus[i].at_reset.xsave || s.xsave_size > want) {
		error_set(err, "the saved FPU state does not fit this host's CPU");
		goto out;
	}
	if (s.xsave && s.xsave_size < want) {
		void *p = realloc(s.xsave, want);

		if (!p) {
			error_set(err, "out of memory");
			goto out;
		}
		memset((uint8_t *)p + s.xsave_size, 0, want - s.xsave_size);
		s.xsave = p;
		s.xsave_size = want;
	}
	/* The TSC first: the deadline timer among the MSRs counts from it. */
	if (kvm_vcpu_tsc_set(vm->vcpus[i].fd, tsc) < 0) {
		error_set(err, "cannot set the TSC");
		goto out;
	}
	ret = kvm_vcpu_state_set(vm->vcpus[i].fd, &s, err);
out:
	kvm_vcpu_state_free(&s);
	return ret;
}

/* The loaded section of that kind and index, or NULL. */
static const struct vm_state_loaded *find(const struct vm_state_loaded *l, unsigned int n,
					  uint32_t kind, uint32_t index)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (l[i].kind == kind && l[i].index == index)
			return &l[i];
	return NULL;
}

static int load_u64(const struct vm_state_loaded *l, uint64_t *v, struct error *err)
{
	struct state_reader r;

	state_reader_init(&r, l->buf, l->len);
	*v = state_get_u64(&r);
	return state_reader_done(&r, err);
}

int vm_state_check(struct vm *vm, const struct vm_state_loaded *l, unsigned int n,
		   struct error *err)
{
	static const uint32_t once[] = { SNAP_MACHINE, SNAP_IRQCHIPS, SNAP_CLOCK, SNAP_PCI_HOST,
					 SNAP_DEVICES };
	const struct vm_state_loaded *machine = find(l, n, SNAP_MACHINE, 0);
	unsigned int i, k;

	/* The machine first: another vCPU count is named as such. */
	if (!machine)
		return error_set(err, "the saved state lacks a section");
	if (check_machine(vm, machine, err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (l[i].kind == SNAP_VCPU ? l[i].index >= vm->ncpus
		    : l[i].kind == SNAP_RAM || l[i].kind < SNAP_MACHINE || l[i].kind > SNAP_DEVICES ||
		      l[i].index != 0)
			return error_set(err, "the saved state has a section it should not have");
		for (k = 0; k < i; k++)
			if (l[k].kind == l[i].kind && l[k].index == l[i].index)
				return error_set(err, "the saved state has a section twice");
	}
	for (i = 0; i < sizeof(once) / sizeof(once[0]); i++)
		if (!find(l, n, once[i], 0))
			return error_set(err, "the saved state lacks a section");
	for (i = 0; i < vm->ncpus; i++)
		if (!find(l, n, SNAP_VCPU, i))
			return error_set(err, "the saved state lacks vCPU %u", i);
	return 0;
}

int vm_state_apply(struct vm *vm, const struct vm_state_loaded *l, unsigned int n,
		   struct error *err)
{
	const struct vm_state_loaded *dl = find(l, n, SNAP_DEVICES, 0);
	const struct vm_state_loaded *cl = find(l, n, SNAP_IRQCHIPS, 0);
	const struct vm_state_loaded *pl = find(l, n, SNAP_PCI_HOST, 0);
	struct kvm_irqchips_state chips;
	struct state_reader r;
	unsigned int i, cfg_addr;
	uint64_t clock;

	if (load_u64(find(l, n, SNAP_CLOCK, 0), &clock, err) < 0)
		return -1;
	state_reader_init(&r, pl->buf, pl->len);
	cfg_addr = state_get_u32(&r);
	if (state_reader_done(&r, err) < 0)
		return -1;
	if (devices_pause_all(&vm->devices, err) < 0)
		return -1;
	state_reader_init(&r, dl->buf, dl->len);
	if (devices_load_all(&vm->devices, &r, err) < 0 || state_reader_done(&r, err) < 0)
		return -1;
	pci_host_update_coalesced(&vm->pci); /* the BARs are the saved VM's */
	state_reader_init(&r, cl->buf, cl->len);
	if (kvm_irqchips_load(&chips, &r, err) < 0 || kvm_irqchips_set(&vm->kvm, &chips, err) < 0)
		return -1;
	for (i = 0; i < vm->ncpus; i++) {
		if (load_vcpu(vm, i, find(l, n, SNAP_VCPU, i), err) < 0) {
			error_prefix(err, "vCPU %u: ", i);
			return -1;
		}
	}
	if (clock && kvm_set_clock(&vm->kvm, clock) < 0)
		return error_set(err, "cannot set the guest's clock");
	pthread_mutex_lock(&vm->pci.lock);
	vm->pci.config_address = cfg_addr;
	pthread_mutex_unlock(&vm->pci.lock);
	return 0;
}

/* Every disk's backend, in device order (a device may serve several:
 * *n is the next one of *d to look at). */
static struct block_backend *next_disk(struct vm *vm, struct device **d, unsigned int *n)
{
	for (*d = *d ? *d : vm->devices.head; *d; *d = (*d)->next, *n = 0) {
		struct block_backend *b = (*d)->ops->disk ? (*d)->ops->disk(*d, *n) : NULL;

		if (b) {
			(*n)++;
			return b;
		}
	}
	return NULL;
}

/* A state must not name data the image could still lose. */
int vm_sync_disks(struct vm *vm, struct error *err)
{
	struct device *d = NULL;
	struct block_backend *b;
	unsigned int n = 0;

	while ((b = next_disk(vm, &d, &n)))
		if (block_sync(b) < 0)
			return error_set(err, "%s: cannot flush its disk: %s", d->name,
					 strerror(errno));
	return 0;
}

int vm_lock_disks(struct vm *vm, struct error *err)
{
	struct device *d = NULL;
	struct block_backend *b;
	unsigned int n = 0;

	while ((b = next_disk(vm, &d, &n)))
		if (block_lock(b) < 0)
			return error_set(err, "disk '%s' is in use by another process%s",
					 block_path(b),
					 errno == EWOULDBLOCK ? "" : " (cannot lock it)");
	return 0;
}

void vm_unlock_disks(struct vm *vm)
{
	struct device *d = NULL;
	struct block_backend *b;
	unsigned int n = 0;

	while ((b = next_disk(vm, &d, &n)))
		block_unlock(b);
}
