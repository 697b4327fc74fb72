/* vCPU threads: one per vCPU, each looping on KVM_RUN and dispatching the
 * exits that reach userspace to the port and MMIO buses. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/layout.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"
#include "vmm/vm.h"

#define KICK_SIGNAL SIGUSR1

static __thread struct vcpu *current_vcpu;

/* Runs in the vCPU thread: makes KVM_RUN return (now, or at once if the
 * thread is just about to enter it). */
static void kick_handler(int sig)
{
	(void)sig;
	if (current_vcpu)
		current_vcpu->run->immediate_exit = 1;
}

/* Logs the vCPU's registers, pending events and run state. */
static void log_vcpu_state(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	struct kvm_vcpu_events e;
	struct kvm_mp_state mp;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vCPU %u: cannot read registers: %s", v->id, strerror(errno));
		return;
	}
	log_info("vCPU %u: RIP=%016llx RSP=%016llx RFLAGS=%08llx", v->id, r.rip, r.rsp,
		 r.rflags);
	log_info("vCPU %u: RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx", v->id, r.rax, r.rbx,
		 r.rcx, r.rdx);
	log_info("vCPU %u: RSI=%016llx RDI=%016llx RBP=%016llx R8=%016llx", v->id, r.rsi, r.rdi,
		 r.rbp, r.r8);
	log_info("vCPU %u: CR0=%016llx CR2=%016llx CR3=%016llx CR4=%016llx EFER=%llx", v->id,
		 s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
	log_info("vCPU %u: CS=%04x(base %llx, l=%u) SS=%04x GDT=%llx/%x IDT=%llx/%x", v->id,
		 s.cs.selector, s.cs.base, s.cs.l, s.ss.selector, s.gdt.base, s.gdt.limit,
		 s.idt.base, s.idt.limit);
	/* What the vCPU waits for or is about to take: a stalled guest is
	 * told apart from a busy one by these. */
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &e) == 0)
		log_info("vCPU %u: exception %s%u, interrupt %s%u, nmi %s%s, interrupt shadow %u",
			 v->id, e.exception.injected || e.exception.pending ? "" : "none/",
			 e.exception.nr, e.interrupt.injected ? "" : "none/", e.interrupt.nr,
			 e.nmi.injected ? "injected" : e.nmi.pending ? "pending" : "none",
			 e.nmi.masked ? " (masked)" : "", e.interrupt.shadow);
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0)
		log_info("vCPU %u: mp_state %u (0 runnable, 1 waiting for INIT/SIPI, 3 halted), exits to userspace: %llu io, "
			 "%llu mmio, %llu other", v->id, mp.mp_state,
			 (unsigned long long)v->io_exits, (unsigned long long)v->mmio_exits,
			 (unsigned long long)v->other_exits);
}

/* Logs why the VM stops, then the registers that explain it. */
static void dump_registers(struct vcpu *v)
{
	log_error("%s", v->vm->stop_detail);
	v->vm->error_logged = 1;
	log_vcpu_state(v);
}

void vcpus_throttle(struct vm *vm, uint64_t sleep_ns)
{
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++) {
		if (!vm->vcpus[i].started)
			continue;
		__atomic_store_n(&vm->vcpus[i].throttle_ns, sleep_ns, __ATOMIC_RELEASE);
		pthread_kill(vm->vcpus[i].thread, KICK_SIGNAL);
	}
}

/* The vCPU thread sleeps its throttle share, in steps short enough that
 * a pause or a stop (the migration's own stop-and-copy) is not held up. */
static void throttle_sleep(struct vcpu *v, uint64_t ns)
{
	while (ns && !__atomic_load_n(&v->vm->pause_requested, __ATOMIC_ACQUIRE) &&
	       vm_stop_reason(v->vm) == VM_RUNNING) {
		uint64_t step = ns < 5000000 ? ns : 5000000;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)step };

		nanosleep(&ts, NULL);
		ns -= step;
	}
}

void vcpus_request_state_dump(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++) {
		if (!vm->vcpus[i].started)
			continue;
		__atomic_store_n(&vm->vcpus[i].dump_requested, 1, __ATOMIC_RELEASE);
		pthread_kill(vm->vcpus[i].thread, KICK_SIGNAL);
	}
}

/* Linux reboots as a last resort by loading an empty IDT and faulting.
 * A triple fault with an empty IDT after the guest installed its own GDT
 * is that; any other is a crash. */
static int deliberate_triple_fault(struct vcpu *v)
{
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return 0;
	return s.idt.limit == 0 && s.gdt.base != GDT_ADDR;
}

/* KVM on AMD re-initialises the vCPU on a shutdown intercept (the VMCB is
 * undefined after it), so the registers read afterwards are the reset
 * state, not the state at the fault. Says so, so that nobody reads a
 * crash into them; the host's KVM trace (kvm_exit, reason shutdown) still
 * has the RIP of the fault. */
static void note_reset_registers(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_REGS, &r) == 0 && ioctl(v->fd, KVM_GET_SREGS, &s) == 0 &&
	    r.rip == 0xfff0 && s.cs.base == 0xffff0000)
		log_info("vCPU %u: the registers above are the reset state: KVM re-initialised the vCPU "
			 "with the shutdown (AMD), the state at the fault is lost (the host's kvm_exit "
			 "trace event has its RIP)", v->id);
}

/* A write KVM recorded instead of exiting (kvm/coalesced.h). */
static void replay_write(void *ctx, bool pio, uint64_t addr, unsigned int len,
			 const uint8_t *data)
{
	struct vm *vm = ctx;
	uint8_t buf[8];

	memcpy(buf, data, len);
	bus_access(pio ? &vm->pio : &vm->mmio, addr, len, 1, buf);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t i;

	v->io_exits++;
	for (i = 0; i < run->io.count; i++, data += run->io.size)
		bus_access(&v->vm->pio, run->io.port, run->io.size,
			   run->io.direction == KVM_EXIT_IO_OUT, data);
}

/* Returns 0 to keep running, -1 when the VM must stop. */
static int handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return 0;
	case KVM_EXIT_MMIO:
		v->mmio_exits++;
		bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.len, run->mmio.is_write,
			   run->mmio.data);
		return 0;
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_HLT:
		v->other_exits++;
		return 0;
	case KVM_EXIT_SHUTDOWN:
		v->other_exits++;
		if (deliberate_triple_fault(v)) {
			vm_request_stop(v->vm, VM_STOP_RESET, "guest reset (triple fault)");
		} else {
			vm_request_stop(v->vm, VM_STOP_ERROR, "vCPU %u: triple fault", v->id);
			dump_registers(v);
			note_reset_registers(v);
		}
		return -1;
	case KVM_EXIT_SYSTEM_EVENT:
		v->other_exits++;
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			vm_request_stop(v->vm, VM_STOP_POWEROFF, "guest powered off");
		else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vm_request_stop(v->vm, VM_STOP_RESET, "guest reset");
		else
			vm_request_stop(v->vm, VM_STOP_ERROR, "vCPU %u: guest crashed (system event %u)",
					v->id, run->system_event.type);
		return -1;
	case KVM_EXIT_FAIL_ENTRY:
		vm_request_stop(v->vm, VM_STOP_ERROR,
				"vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)",
				v->id, (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		dump_registers(v);
		return -1;
	case KVM_EXIT_INTERNAL_ERROR:
		vm_request_stop(v->vm, VM_STOP_ERROR, "vCPU %u: KVM internal error (suberror %u)",
				v->id, run->internal.suberror);
		dump_registers(v);
		return -1;
	default:
		vm_request_stop(v->vm, VM_STOP_ERROR, "vCPU %u: unexpected KVM exit reason %u",
				v->id, run->exit_reason);
		dump_registers(v);
		return -1;
	}
}

static void set_state(struct vcpu *v, enum vcpu_state s)
{
	v->state = s;
	pthread_cond_broadcast(&v->vm->run_cond);
}

/* In the vCPU thread, between two KVM_RUNs: parks it while a pause is
 * requested. The last KVM_RUN returned -EINTR, so every exit it reported
 * before was completed by the kernel (KVM completes a pending I/O exit on
 * re-entry, before it looks at immediate_exit): the registers are those
 * of an instruction boundary. */
static void take_pause(struct vcpu *v)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->run_lock);
	if (vm->pause_requested && vm_stop_reason(vm) == VM_RUNNING) {
		set_state(v, VCPU_PAUSED);
		while (vm->pause_requested && vm_stop_reason(vm) == VM_RUNNING)
			pthread_cond_wait(&vm->run_cond, &vm->run_lock);
		set_state(v, VCPU_RUNNING);
	}
	pthread_mutex_unlock(&vm->run_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	sigset_t set;

	current_vcpu = v;
	v->tid = (int)gettid();
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (vm_stop_reason(v->vm) == VM_RUNNING) {
		int r, e;

		/* The first KVM_RUN that enters the guest: under -S the
		 * first ones return at once (immediate_exit) until cont. */
		if (!v->first_run_ns && !__atomic_load_n(&v->run->immediate_exit, __ATOMIC_RELAXED))
			__atomic_store_n(&v->first_run_ns, monotonic_ns(), __ATOMIC_RELAXED);
		r = ioctl(v->fd, KVM_RUN, 0);
		e = errno;

		/* Writes KVM recorded reach their devices before anything
		 * else this exit brings: the guest's order. Also before a
		 * pause, so that saved device state has them. */
		kvm_coalesced_replay(&v->vm->kvm.coalesced, replay_write, v->vm);
		errno = e;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* A kick: a stop, a pause or a state dump. The
				 * flag is cleared before the requests are read,
				 * so a kick that comes after this still makes
				 * the next KVM_RUN return at once. */
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				if (__atomic_exchange_n(&v->dump_requested, 0, __ATOMIC_ACQ_REL))
					log_vcpu_state(v);
				throttle_sleep(v, __atomic_exchange_n(&v->throttle_ns, 0,
								      __ATOMIC_ACQ_REL));
				if (__atomic_load_n(&v->vm->pause_requested, __ATOMIC_ACQUIRE))
					take_pause(v);
				continue;
			}
			vm_request_stop(v->vm, VM_STOP_ERROR, "vCPU %u: KVM_RUN failed: %s", v->id,
					strerror(errno));
			break;
		}
		if (handle_exit(v) < 0)
			break;
	}
	pthread_mutex_lock(&v->vm->run_lock);
	set_state(v, VCPU_STOPPED);
	pthread_mutex_unlock(&v->vm->run_lock);
	return NULL;
}

static void kick_all(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].started)
			pthread_kill(vm->vcpus[i].thread, KICK_SIGNAL);
}

static bool all_parked(const struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++) {
		const struct vcpu *v = &vm->vcpus[i];

		if (v->started && v->state != VCPU_PAUSED && v->state != VCPU_STOPPED)
			return false;
	}
	return true;
}

int vcpus_pause(struct vm *vm, unsigned int timeout_ms, struct error *err)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->run_lock);
	__atomic_store_n(&vm->pause_requested, true, __ATOMIC_RELEASE);
	kick_all(vm);
	while (!all_parked(vm) && rc == 0)
		rc = pthread_cond_timedwait(&vm->run_cond, &vm->run_lock, &deadline);
	if (!all_parked(vm)) {
		__atomic_store_n(&vm->pause_requested, false, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&vm->run_cond);
		pthread_mutex_unlock(&vm->run_lock);
		return error_set(err, "the vCPUs did not stop within %u ms", timeout_ms);
	}
	pthread_mutex_unlock(&vm->run_lock);
	return 0;
}

void vcpus_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	__atomic_store_n(&vm->pause_requested, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

static int setup_cpuid(struct vm *vm, struct vcpu *v, const struct kvm_cpuid2 *supported)
{
	size_t sz = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	struct cpuid_config cfg = {
		.apic_id = v->id,
		.ncpus = vm->ncpus,
		.tsc_deadline = vm->kvm.has_tsc_deadline,
	};
	int ret;

	if (!c)
		return -1;
	memcpy(c, supported, sz);
	cpuid_patch(c, &cfg);
	ret = ioctl(v->fd, KVM_SET_CPUID2, c);
	if (ret < 0)
		log_error("vCPU %u: KVM_SET_CPUID2 failed: %s", v->id, strerror(errno));
	free(c);
	return ret;
}

int vcpus_create(struct vm *vm, uint64_t entry, uint64_t zero_page)
{
	struct kvm_cpuid2 *supported = kvm_supported_cpuid(&vm->kvm);
	struct sigaction sa;
	unsigned int i;
	int ret = -1;

	if (!supported)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must see EINTR */
	sigaction(KICK_SIGNAL, &sa, NULL);

	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		goto out;
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		v->vm = vm;
		v->id = i;
		v->stats_fd = -1;
		v->fd = -1;
	}
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		void *run;

		v->fd = ioctl(vm->kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0) {
			log_error("KVM_CREATE_VCPU %u failed: %s", i, strerror(errno));
			goto out;
		}
		run = mmap(NULL, (size_t)vm->kvm.vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   v->fd, 0);
		if (run == MAP_FAILED) {
			log_error("vCPU %u: cannot map kvm_run: %s", i, strerror(errno));
			goto out;
		}
		v->run = run;
		kvm_coalesced_attach(&vm->kvm.coalesced, run, vm->kvm.vcpu_mmap_size);
		if (setup_cpuid(vm, v, supported) < 0 || boot_cpu_setup_lapic_fpu(v->fd) < 0)
			goto out;
		if (i == 0 && boot_cpu_setup(v->fd, entry, zero_page) < 0)
			goto out;
	}
	ret = 0;
out:
	free(supported);
	return ret;
}

void vcpus_hold_at_start(struct vm *vm)
{
	unsigned int i;

	pthread_mutex_lock(&vm->run_lock);
	__atomic_store_n(&vm->pause_requested, true, __ATOMIC_RELEASE);
	for (i = 0; i < vm->ncpus; i++)
		__atomic_store_n(&vm->vcpus[i].run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vm->run_lock);
}

int vcpus_start(struct vm *vm)
{
	unsigned int i;
	int err;

	for (i = 0; i < vm->ncpus; i++) {
		vm->vcpus[i].state = VCPU_RUNNING;
		err = thread_create(&vm->vcpus[i].thread, vcpu_thread, &vm->vcpus[i]);
		if (err) {
			vm->vcpus[i].state = VCPU_CREATED;
			log_error("cannot start vCPU thread %u: %s", i, strerror(err));
			vm_request_stop(vm, VM_STOP_ERROR, "cannot start vCPU threads");
			return -1;
		}
		vm->vcpus[i].started = 1;
	}
	return 0;
}

void vcpus_stop(struct vm *vm)
{
	unsigned int i;

	/* The stop reason is set (vm_request_stop woke the paused ones);
	 * the running ones are kicked out of KVM_RUN. */
	kick_all(vm);
	for (i = 0; i < vm->ncpus; i++) {
		if (vm->vcpus[i].started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].started = 0;
		}
	}
}

void vcpus_destroy(struct vm *vm)
{
	unsigned int i;

	if (!vm->vcpus)
		return;
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			munmap(v->run, (size_t)vm->kvm.vcpu_mmap_size);
		kvm_vcpu_state_free(&v->at_reset);
		if (v->stats_fd >= 0)
			close(v->stats_fd);
		if (v->fd >= 0)
			close(v->fd);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
}
