#include "kvm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/log.h"

struct required_cap {
	int cap;
	const char *name;
	const char *why;
};

static const struct required_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 TSS" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID setup" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel interrupt controllers" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "interrupt routing" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs" },
	{ KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK", "kvmclock" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "VirtIO interrupts" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "VirtIO queue notifications" },
};

int kvm_open(struct kvm *k, const char *path)
{
	int version, n;
	size_t i;

	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->routes_lock, NULL);
	k->vm_fd = -1;
	k->sys_fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->sys_fd < 0) {
		if (errno == ENOENT)
			log_error("%s does not exist: is KVM enabled (modprobe kvm_intel or kvm_amd)?",
				  path);
		else if (errno == EACCES || errno == EPERM)
			log_error("no permission to open %s: add yourself to the 'kvm' group or run as root",
				  path);
		else
			log_error("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	version = ioctl(k->sys_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_error("%s speaks KVM API version %d, Vireo needs %d", path, version,
			  KVM_API_VERSION);
		goto fail;
	}
	for (i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			log_error("KVM lacks %s (needed for %s)", required_caps[i].name,
				  required_caps[i].why);
			goto fail;
		}
	}
	k->vcpu_mmap_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		log_error("KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
		goto fail;
	}
	n = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	k->max_vcpus = n > 0 ? (unsigned int)n : 4; /* KVM's documented default */
	k->has_tsc_deadline = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	k->has_stats_fd = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) > 0;
	kvm_coalesced_probe(&k->coalesced, k->sys_fd);
	return 0;
fail:
	close(k->sys_fd);
	k->sys_fd = -1;
	return -1;
}

int kvm_create_vm(struct kvm *k)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = KVM_IDENTITY_MAP_ADDR;

	/* KVM may be interrupted while it sets the VM up (a signal on the
	 * way: seen on this machine's PVM under load); QEMU retries too. */
	do
		k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
	while (k->vm_fd < 0 && errno == EINTR);
	if (k->vm_fd < 0) {
		log_error("KVM_CREATE_VM failed: %s", strerror(errno));
		return -1;
	}
	/* VMX needs these pages for real-mode emulation; harmless on SVM. */
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
		log_error("KVM_SET_TSS_ADDR failed: %s", strerror(errno));
		return -1;
	}
	if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
	    ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		log_error("KVM_SET_IDENTITY_MAP_ADDR failed: %s", strerror(errno));
		return -1;
	}
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP failed: %s", strerror(errno));
		return -1;
	}
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_error("KVM_CREATE_PIT2 failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int set_memslot(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
		       uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		log_error("KVM_SET_USER_MEMORY_REGION (slot %u, %llu MiB at 0x%llx) failed: %s", slot,
			  (unsigned long long)(size >> 20), (unsigned long long)gpa, strerror(errno));
		return -1;
	}
	return 0;
}

int kvm_set_memslot(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host)
{
	return set_memslot(k, slot, gpa, size, host, 0);
}

int kvm_set_dirty_logging(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
			  bool on)
{
	return set_memslot(k, slot, gpa, size, host, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
}

int kvm_get_dirty_log(struct kvm *k, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };

	return ioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0 ? -errno : 0;
}

int kvm_dirty_log_manual(struct kvm *k, bool on)
{
	const uint64_t want = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };

	if (on) {
		int have = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

		/* Both or neither: initially set is what makes the first
		 * pass's protection come in pieces too. */
		if (have < 0 || ((uint64_t)have & want) != want)
			return -ENOTSUP;
		cap.args[0] = want;
	}
	return ioctl(k->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ? -errno : 0;
}

int kvm_clear_dirty_log(struct kvm *k, uint32_t slot, uint64_t first, uint32_t n,
			uint64_t *bitmap)
{
	struct kvm_clear_dirty_log log = { .slot = slot, .first_page = first, .num_pages = n,
					   .dirty_bitmap = bitmap };

	return ioctl(k->vm_fd, KVM_CLEAR_DIRTY_LOG, &log) < 0 ? -errno : 0;
}

int kvm_irq_line(struct kvm *k, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };

	return ioctl(k->vm_fd, KVM_IRQ_LINE, &irq);
}

int kvm_get_clock(struct kvm *k, uint64_t *ns)
{
	struct kvm_clock_data c = { 0 };

	if (ioctl(k->vm_fd, KVM_GET_CLOCK, &c) < 0)
		return -errno;
	*ns = c.clock;
	return 0;
}

int kvm_set_clock(struct kvm *k, uint64_t ns)
{
	struct kvm_clock_data c = { .clock = ns };

	return ioctl(k->vm_fd, KVM_SET_CLOCK, &c) < 0 ? -errno : 0;
}

struct kvm_cpuid2 *kvm_supported_cpuid(struct kvm *k)
{
	int nent = 64;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));

		if (!c)
			return NULL;
		c->nent = (uint32_t)nent;
		if (ioctl(k->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG || nent >= 4096) {
			log_error("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
			return NULL;
		}
		nent *= 2;
	}
}

void kvm_close(struct kvm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	k->vm_fd = k->sys_fd = -1;
}
