#include "kvm/vcpu_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"

/* MSRs the state leaves alone: the TSC runs on through a reset, as QEMU
 * keeps it monotonic; writing it back per vCPU would also make KVM see
 * unsynchronised TSCs. */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_ADJUST 0x3b
#define MSR_IA32_TSC_DEADLINE 0x6e0

static int has_cap(struct kvm *k, long cap)
{
	return ioctl(k->sys_fd, KVM_CHECK_EXTENSION, cap);
}

static struct kvm_msrs *msrs_alloc(uint32_t n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (size_t)n * sizeof(m->entries[0]));

	if (m)
		m->nmsrs = n;
	return m;
}

/* The MSR indices KVM says a VMM should save, minus the TSC's. */
static struct kvm_msrs *msr_index_list(struct kvm *k)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *list;
	struct kvm_msrs *m;
	uint32_t i, n = 0;

	if (ioctl(k->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(k->sys_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return NULL;
	}
	m = msrs_alloc(list->nmsrs);
	if (m) {
		for (i = 0; i < list->nmsrs; i++)
			if (list->indices[i] != MSR_IA32_TSC && list->indices[i] != MSR_IA32_TSC_ADJUST)
				m->entries[n++].index = list->indices[i];
		m->nmsrs = n;
	}
	free(list);
	return m;
}

/* KVM_GET_MSRS and KVM_SET_MSRS stop at the first MSR they refuse (one
 * the vCPU's CPUID does not offer) and return how many they did. Runs the
 * request over all of m, leaving out each refused entry, so the cost is
 * one ioctl plus one per refusal. With keep, m ends up holding only the
 * entries that went through. Returns the number refused, or -1. */
static int msrs_each(int fd, unsigned long req, struct kvm_msrs *m, bool keep)
{
	struct kvm_msrs *work = msrs_alloc(m->nmsrs);
	uint32_t done = 0, kept = 0;
	int refused = 0;

	if (!work)
		return -1;
	while (done < m->nmsrs) {
		int r;

		work->nmsrs = m->nmsrs - done;
		memcpy(work->entries, m->entries + done, work->nmsrs * sizeof(m->entries[0]));
		r = ioctl(fd, req, work);
		if (r < 0) {
			free(work);
			return -1;
		}
		if (keep)
			memcpy(m->entries + kept, work->entries, (size_t)r * sizeof(m->entries[0]));
		kept += (uint32_t)r;
		done += (uint32_t)r;
		if (done < m->nmsrs) {
			done++; /* the refused one */
			refused++;
		}
	}
	if (keep)
		m->nmsrs = kept;
	free(work);
	return refused;
}

int kvm_vcpu_state_get(struct kvm *k, int fd, struct kvm_vcpu_state *s, struct error *err)
{
	int xsave2;

	memset(s, 0, sizeof(*s));
	if (ioctl(fd, KVM_GET_REGS, &s->regs) < 0 || ioctl(fd, KVM_GET_SREGS, &s->sregs) < 0)
		return error_set(err, "cannot read the vCPU's registers: %s", strerror(errno));
	if (has_cap(k, KVM_CAP_XSAVE) > 0) {
		xsave2 = has_cap(k, KVM_CAP_XSAVE2);
		s->xsave_size = xsave2 > (int)sizeof(struct kvm_xsave) ? (size_t)xsave2
								       : sizeof(struct kvm_xsave);
		s->xsave = calloc(1, s->xsave_size);
		if (!s->xsave)
			return error_set(err, "out of memory");
		if (ioctl(fd, xsave2 > 0 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave) < 0)
			goto fail;
	} else if (ioctl(fd, KVM_GET_FPU, &s->fpu) < 0) {
		goto fail;
	}
	s->has_xcrs = has_cap(k, KVM_CAP_XCRS) > 0;
	if (s->has_xcrs && ioctl(fd, KVM_GET_XCRS, &s->xcrs) < 0)
		goto fail;
	if (ioctl(fd, KVM_GET_LAPIC, &s->lapic) < 0 || ioctl(fd, KVM_GET_MP_STATE, &s->mp_state) < 0 ||
	    ioctl(fd, KVM_GET_VCPU_EVENTS, &s->events) < 0 ||
	    ioctl(fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0)
		goto fail;
	s->msrs = msr_index_list(k);
	if (!s->msrs || msrs_each(fd, KVM_GET_MSRS, s->msrs, true) < 0)
		goto fail;
	return 0;
fail:
	error_set(err, "cannot read the vCPU's state: %s", strerror(errno));
	kvm_vcpu_state_free(s);
	return -1;
}

/* One MSR through KVM_GET_MSRS or KVM_SET_MSRS (*data in and out):
 * what the ioctl returns (1: done, 0: refused, -1: error). */
static int msr_one(int fd, unsigned long req, uint32_t index, uint64_t *data)
{
	struct kvm_msrs *m = msrs_alloc(1);
	int r;

	if (!m)
		return -1;
	m->entries[0].index = index;
	m->entries[0].data = *data;
	r = ioctl(fd, req, m);
	*data = m->entries[0].data;
	free(m);
	return r;
}

static int set_tsc_deadline(int fd, const struct kvm_msrs *m)
{
	for (uint32_t i = 0; m && i < m->nmsrs; i++) {
		uint64_t deadline = m->entries[i].data;

		if (m->entries[i].index == MSR_IA32_TSC_DEADLINE)
			return msr_one(fd, KVM_SET_MSRS, MSR_IA32_TSC_DEADLINE, &deadline) < 0 ? -1 : 0;
	}
	return 0;
}

int kvm_vcpu_state_set(int fd, const struct kvm_vcpu_state *s, struct error *err)
{
	struct kvm_vcpu_events ev = s->events;
	const char *what;
	int refused;

	/* The flags say which parts of the events to take: all of them. */
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	what = "control registers";
	if (ioctl(fd, KVM_SET_SREGS, &s->sregs) < 0)
		goto fail;
	what = "registers";
	if (ioctl(fd, KVM_SET_REGS, &s->regs) < 0)
		goto fail;
	what = "FPU state";
	if (s->xsave ? ioctl(fd, KVM_SET_XSAVE, s->xsave) < 0 : ioctl(fd, KVM_SET_FPU, &s->fpu) < 0)
		goto fail;
	what = "XCRs";
	if (s->has_xcrs && ioctl(fd, KVM_SET_XCRS, &s->xcrs) < 0)
		goto fail;
	what = "MSRs";
	refused = msrs_each(fd, KVM_SET_MSRS, s->msrs, false);
	if (refused < 0)
		goto fail;
	if (refused)
		log_debug("vCPU state: %d MSR%s not written back", refused, refused == 1 ? "" : "s");
	what = "local APIC";
	if (ioctl(fd, KVM_SET_LAPIC, &s->lapic) < 0)
		goto fail;
	/* Setting the local APIC cancels a TSC-deadline timer armed by the
	 * MSR above: arm it again (as QEMU does), or a vCPU halted waiting
	 * for its timer never wakes. */
	what = "TSC deadline";
	if (set_tsc_deadline(fd, s->msrs) < 0)
		goto fail;
	what = "run state";
	if (ioctl(fd, KVM_SET_MP_STATE, &s->mp_state) < 0)
		goto fail;
	what = "pending events";
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		goto fail;
	what = "debug registers";
	if (ioctl(fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0)
		goto fail;
	return 0;
fail:
	return error_set(err, "cannot write the vCPU's %s: %s", what, strerror(errno));
}

void kvm_vcpu_state_free(struct kvm_vcpu_state *s)
{
	free(s->xsave);
	free(s->msrs);
	s->xsave = NULL;
	s->msrs = NULL;
}

int kvm_irqchips_get(struct kvm *k, struct kvm_irqchips_state *s, struct error *err)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < 3; i++) {
		s->chip[i].chip_id = i;
		if (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &s->chip[i]) < 0)
			return error_set(err, "cannot read interrupt controller %u: %s", i,
					 strerror(errno));
	}
	if (ioctl(k->vm_fd, KVM_GET_PIT2, &s->pit) < 0)
		return error_set(err, "cannot read the PIT: %s", strerror(errno));
	return 0;
}

int kvm_irqchips_set(struct kvm *k, const struct kvm_irqchips_state *s, struct error *err)
{
	unsigned int i;

	for (i = 0; i < 3; i++) {
		struct kvm_irqchip c = s->chip[i];

		if (ioctl(k->vm_fd, KVM_SET_IRQCHIP, &c) < 0)
			return error_set(err, "cannot write interrupt controller %u: %s", i,
					 strerror(errno));
	}
	if (ioctl(k->vm_fd, KVM_SET_PIT2, &s->pit) < 0)
		return error_set(err, "cannot write the PIT: %s", strerror(errno));
	return 0;
}

/* ---- records (snapshots) --------------------------------------------- */

#define XSAVE_MAX (1u << 20) /* far above any CPU's XSAVE area */
#define MSRS_MAX 4096

static void put_blob(struct state_writer *w, const void *p, size_t n)
{
	state_put_u32(w, (uint32_t)n);
	state_put_bytes(w, p, n);
}

/* A structure of exactly n bytes, or the record is refused. */
static void get_blob(struct state_reader *r, void *p, size_t n, bool *size_ok)
{
	if (state_get_u32(r) != n)
		*size_ok = false;
	state_get_bytes(r, p, n);
}

void kvm_vcpu_state_save(const struct kvm_vcpu_state *s, struct state_writer *w)
{
	put_blob(w, &s->regs, sizeof(s->regs));
	put_blob(w, &s->sregs, sizeof(s->sregs));
	put_blob(w, s->xsave, s->xsave ? s->xsave_size : 0);
	put_blob(w, &s->fpu, sizeof(s->fpu));
	state_put_bool(w, s->has_xcrs);
	put_blob(w, &s->xcrs, sizeof(s->xcrs));
	put_blob(w, &s->lapic, sizeof(s->lapic));
	put_blob(w, &s->mp_state, sizeof(s->mp_state));
	put_blob(w, &s->events, sizeof(s->events));
	put_blob(w, &s->debugregs, sizeof(s->debugregs));
	state_put_u32(w, s->msrs ? s->msrs->nmsrs : 0);
	for (uint32_t i = 0; s->msrs && i < s->msrs->nmsrs; i++) {
		state_put_u32(w, s->msrs->entries[i].index);
		state_put_u64(w, s->msrs->entries[i].data);
	}
}

int kvm_vcpu_state_load(struct kvm_vcpu_state *s, struct state_reader *r, struct error *err)
{
	bool size_ok = true;
	uint32_t xsave_size, nmsrs, i;

	memset(s, 0, sizeof(*s));
	get_blob(r, &s->regs, sizeof(s->regs), &size_ok);
	get_blob(r, &s->sregs, sizeof(s->sregs), &size_ok);
	xsave_size = state_get_u32(r);
	if (xsave_size) {
		if (xsave_size < sizeof(struct kvm_xsave) || xsave_size > XSAVE_MAX ||
		    xsave_size > state_reader_left(r))
			return error_set(err, "vCPU state: an XSAVE area of %u bytes", xsave_size);
		s->xsave = calloc(1, xsave_size);
		if (!s->xsave)
			return error_set(err, "out of memory");
		s->xsave_size = xsave_size;
		state_get_bytes(r, s->xsave, xsave_size);
	}
	get_blob(r, &s->fpu, sizeof(s->fpu), &size_ok);
	s->has_xcrs = state_get_bool(r);
	get_blob(r, &s->xcrs, sizeof(s->xcrs), &size_ok);
	get_blob(r, &s->lapic, sizeof(s->lapic), &size_ok);
	get_blob(r, &s->mp_state, sizeof(s->mp_state), &size_ok);
	get_blob(r, &s->events, sizeof(s->events), &size_ok);
	get_blob(r, &s->debugregs, sizeof(s->debugregs), &size_ok);
	nmsrs = state_get_u32(r);
	if (nmsrs > MSRS_MAX || (uint64_t)nmsrs * 12 > state_reader_left(r)) {
		kvm_vcpu_state_free(s);
		return error_set(err, "vCPU state: %u MSRs, which cannot be", nmsrs);
	}
	s->msrs = msrs_alloc(nmsrs);
	if (!s->msrs) {
		kvm_vcpu_state_free(s);
		return error_set(err, "out of memory");
	}
	for (i = 0; i < nmsrs; i++) {
		s->msrs->entries[i].index = state_get_u32(r);
		s->msrs->entries[i].data = state_get_u64(r);
	}
	if (!size_ok || state_reader_done(r, err) < 0) {
		kvm_vcpu_state_free(s);
		if (!size_ok)
			return error_set(err, "vCPU state from a KVM with other structure sizes");
		return -1;
	}
	return 0;
}

int kvm_vcpu_tsc_get(int fd, uint64_t *tsc)
{
	*tsc = 0;
	return msr_one(fd, KVM_GET_MSRS, MSR_IA32_TSC, tsc) == 1 ? 0 : -1;
}

int kvm_vcpu_msr_get(int fd, uint32_t index, uint64_t *value)
{
	*value = 0;
	return msr_one(fd, KVM_GET_MSRS, index, value) == 1 ? 0 : -1;
}

int kvm_vcpu_tsc_set(int fd, uint64_t tsc)
{
	return msr_one(fd, KVM_SET_MSRS, MSR_IA32_TSC, &tsc) == 1 ? 0 : -1;
}

void kvm_irqchips_save(const struct kvm_irqchips_state *s, struct state_writer *w)
{
	for (unsigned int i = 0; i < 3; i++)
		put_blob(w, &s->chip[i], sizeof(s->chip[i]));
	put_blob(w, &s->pit, sizeof(s->pit));
}

int kvm_irqchips_load(struct kvm_irqchips_state *s, struct state_reader *r, struct error *err)
{
	bool size_ok = true;
	unsigned int i;

	for (i = 0; i < 3; i++)
		get_blob(r, &s->chip[i], sizeof(s->chip[i]), &size_ok);
	get_blob(r, &s->pit, sizeof(s->pit), &size_ok);
	if (state_reader_done(r, err) < 0)
		return -1;
	if (!size_ok)
		return error_set(err, "interrupt controller state from a KVM with other sizes");
	for (i = 0; i < 3; i++)
		if (s->chip[i].chip_id != i)
			return error_set(err, "interrupt controller %u is not where it belongs", i);
	return 0;
}
