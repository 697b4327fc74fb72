/* The vCPU state machine (src/vmm/vcpu.c) and the power-on state a
 * system reset puts back (src/kvm/vcpu_state.c) on a real KVM (this machine's
 * PVM will do): two vCPUs, one counting in a loop (inc rax; jmp back), one
 * an AP waiting for its SIPI inside KVM_RUN. vcpus_pause() parks both
 * (the counter stops: nothing runs while paused), vcpus_resume() lets
 * them go on (the counter moves again), and a stop requested while they
 * are paused ends both threads. The saved power-on state, written back
 * while paused, brings the counter back to its first instruction with
 * rax 0, an MSR the host changed back to its value, the AP back to
 * waiting for its SIPI and the IOAPIC back as created. Skipped without a usable /dev/kvm. */
#include "cmocka_prelude.h"

#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/layout.h"
#include "vmm/vm.h"

#define ENTRY 0x100000

static struct vm vm;
static struct vm_options opts;
static bool have_vm;

static int setup(void **state)
{
	static const uint8_t loop[] = { 0x48, 0xff, 0xc0, 0xeb, 0xfb }; /* inc rax; jmp -5 */

	(void)state;
	memset(&vm, 0, sizeof(vm));
	memset(&opts, 0, sizeof(opts));
	opts.cpus = 2;
	vm_init(&vm, &opts);
	if (access("/dev/kvm", R_OK | W_OK) != 0 || kvm_open(&vm.kvm, "/dev/kvm") < 0 ||
	    kvm_create_vm(&vm.kvm) < 0)
		return 0; /* each test skips */
	assert_int_equal(guest_mem_map(&vm.mem, 16u << 20), 0);
	assert_int_equal(kvm_set_memslot(&vm.kvm, 0, 0, vm.mem.low_size, vm.mem.host), 0);
	assert_int_equal(boot_cpu_write_tables(&vm.mem), 0);
	memcpy(guest_mem_ptr(&vm.mem, ENTRY, sizeof(loop)), loop, sizeof(loop));
	assert_int_equal(vm_create_wake_fd(&vm), 0);
	assert_int_equal(vcpus_create(&vm, ENTRY, ZERO_PAGE_ADDR), 0);
	have_vm = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (have_vm) {
		vm_request_stop(&vm, VM_STOP_USER, "test over");
		vcpus_stop(&vm);
		vcpus_destroy(&vm);
		guest_mem_unmap(&vm.mem);
		close(vm.wake_fd);
	}
	kvm_close(&vm.kvm);
	have_vm = false;
	return 0;
}

static uint64_t rax(void)
{
	struct kvm_regs r;

	assert_int_equal(ioctl(vm.vcpus[0].fd, KVM_GET_REGS, &r), 0);
	assert_true(r.rip >= ENTRY && r.rip < ENTRY + 5); /* at an instruction of the loop */
	return r.rax;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_pause_resume_stop(void **state)
{
	struct error err = { 0 };
	uint64_t a, b, c;

	(void)state;
	if (!have_vm) {
		print_message("skipping: vCPU pause: no usable /dev/kvm\n");
		skip();
	}
	assert_int_equal(vcpus_start(&vm), 0);
	sleep_ms(100);
	assert_int_equal(vcpus_pause(&vm, 5000, &err), 0);
	assert_int_equal(vm.vcpus[0].state, VCPU_PAUSED);
	assert_int_equal(vm.vcpus[1].state, VCPU_PAUSED); /* kicked out of its SIPI wait */
	a = rax();
	sleep_ms(200);
	b = rax();
	assert_true(a > 0);     /* it ran before the pause */
	assert_int_equal(a, b); /* and not during it */

	vcpus_resume(&vm);
	sleep_ms(200);
	assert_int_equal(vcpus_pause(&vm, 5000, &err), 0);
	c = rax();
	assert_true(c > b); /* it ran again */

	/* A stop while paused: both threads end. */
	vm_request_stop(&vm, VM_STOP_USER, "stopped while paused");
	vcpus_stop(&vm);
	assert_int_equal(vm.vcpus[0].state, VCPU_STOPPED);
	assert_int_equal(vm.vcpus[1].state, VCPU_STOPPED);
}

#define MSR_LSTAR 0xc0000082
#define MSR_TSC_DEADLINE 0x6e0

static uint64_t read_msr(int fd, uint32_t index)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = index };

	assert_int_equal(ioctl(fd, KVM_GET_MSRS, &m), 1);
	return m.e.data;
}

static void write_msr(int fd, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = index, .e.data = value };

	assert_int_equal(ioctl(fd, KVM_SET_MSRS, &m), 1);
}

static void test_reset_state(void **state)
{
	struct error err = { 0 };
	struct kvm_irqchip ioapic = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_mp_state mp;
	struct kvm_regs r;
	uint64_t lstar, a;
	int fd0;

	(void)state;
	if (!have_vm) {
		print_message("skipping: vCPU reset state: no usable /dev/kvm\n");
		skip();
	}
	fd0 = vm.vcpus[0].fd;
	assert_int_equal(vm_save_reset_state(&vm, &err), 0);
	assert_true(vm.vcpus[0].at_reset.msrs->nmsrs > 0);
	lstar = read_msr(fd0, MSR_LSTAR);
	assert_int_equal(vcpus_start(&vm), 0);
	sleep_ms(100);
	assert_int_equal(vcpus_pause(&vm, 5000, &err), 0);
	assert_true(rax() > 0);

	/* Dirty what a guest would: an MSR, an IOAPIC pin's routing, the
	 * AP's run state (as if it had been started). */
	write_msr(fd0, MSR_LSTAR, lstar + 0x1000);
	assert_int_equal(ioctl(vm.kvm.vm_fd, KVM_GET_IRQCHIP, &ioapic), 0);
	ioapic.chip.ioapic.redirtbl[5].bits = 0x25;
	assert_int_equal(ioctl(vm.kvm.vm_fd, KVM_SET_IRQCHIP, &ioapic), 0);
	mp.mp_state = KVM_MP_STATE_RUNNABLE;
	assert_int_equal(ioctl(vm.vcpus[1].fd, KVM_SET_MP_STATE, &mp), 0);

	assert_int_equal(kvm_irqchips_set(&vm.kvm, &vm.irqchips_at_reset, &err), 0);
	assert_int_equal(kvm_vcpu_state_set(fd0, &vm.vcpus[0].at_reset, &err), 0);
	assert_int_equal(kvm_vcpu_state_set(vm.vcpus[1].fd, &vm.vcpus[1].at_reset, &err), 0);

	assert_int_equal(ioctl(fd0, KVM_GET_REGS, &r), 0);
	assert_int_equal(r.rip, ENTRY);
	assert_int_equal(r.rax, 0);
	assert_int_equal(read_msr(fd0, MSR_LSTAR), lstar);
	assert_int_equal(ioctl(vm.kvm.vm_fd, KVM_GET_IRQCHIP, &ioapic), 0);
	assert_int_equal(ioapic.chip.ioapic.redirtbl[5].bits,
			 vm.irqchips_at_reset.chip[KVM_IRQCHIP_IOAPIC].chip.ioapic.redirtbl[5].bits);
	assert_int_equal(ioctl(vm.vcpus[1].fd, KVM_GET_MP_STATE, &mp), 0);
	assert_int_equal(mp.mp_state, vm.vcpus[1].at_reset.mp_state.mp_state);
	assert_int_not_equal(mp.mp_state, KVM_MP_STATE_RUNNABLE);

	/* And it runs again from there. */
	vcpus_resume(&vm);
	sleep_ms(100);
	assert_int_equal(vcpus_pause(&vm, 5000, &err), 0);
	a = rax();
	assert_true(a > 0);
}

/* A vCPU's record for a snapshot (kvm_vcpu_state_save/load) put on
 * another vCPU: registers and MSRs come across, and a TSC-deadline timer
 * stays armed (setting the local APIC cancels it; the state put back
 * re-arms it, or a guest halted waiting for its timer would never
 * wake); the TSC goes across too. */
static void test_snapshot_record(void **state)
{
	struct error err = { 0 };
	struct kvm_vcpu_state s, back;
	struct kvm_lapic_state lapic;
	struct state_writer w;
	struct state_reader r;
	struct kvm_regs regs;
	uint64_t tsc, deadline, lstar;
	int fd0, fd1;

	(void)state;
	if (!have_vm) {
		print_message("skipping: vCPU snapshot record: no usable /dev/kvm\n");
		skip();
	}
	fd0 = vm.vcpus[0].fd;
	fd1 = vm.vcpus[1].fd;
	/* LVTT: TSC-deadline mode, vector 0xec, unmasked; then a deadline. */
	assert_int_equal(ioctl(fd0, KVM_GET_LAPIC, &lapic), 0);
	*(uint32_t *)(lapic.regs + 0x320) = 2u << 17 | 0xec;
	assert_int_equal(ioctl(fd0, KVM_SET_LAPIC, &lapic), 0);
	assert_int_equal(kvm_vcpu_tsc_get(fd0, &tsc), 0);
	deadline = tsc + (1ULL << 40);
	write_msr(fd0, MSR_TSC_DEADLINE, deadline);
	if (read_msr(fd0, MSR_TSC_DEADLINE) != deadline) {
		print_message("skipping: this KVM has no TSC-deadline timer\n");
		skip();
	}
	lstar = read_msr(fd0, MSR_LSTAR) + 0x2000;
	write_msr(fd0, MSR_LSTAR, lstar);

	assert_int_equal(kvm_vcpu_state_get(&vm.kvm, fd0, &s, &err), 0);
	state_writer_init(&w);
	kvm_vcpu_state_save(&s, &w);
	assert_false(w.failed);
	state_reader_init(&r, w.buf, w.len - 1);
	assert_int_equal(kvm_vcpu_state_load(&back, &r, &err), -1);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(kvm_vcpu_state_load(&back, &r, &err), 0);
	assert_int_equal(kvm_vcpu_tsc_set(fd1, tsc), 0);
	if (kvm_vcpu_state_set(fd1, &back, &err) < 0)
		fail_msg("set: %s", err.msg);

	assert_int_equal(read_msr(fd1, MSR_TSC_DEADLINE), deadline);
	assert_int_equal(read_msr(fd1, MSR_LSTAR), lstar);
	assert_int_equal(ioctl(fd1, KVM_GET_REGS, &regs), 0);
	assert_int_equal(regs.rip, s.regs.rip);
	assert_int_equal(kvm_vcpu_tsc_get(fd1, &deadline), 0);
	assert_true(deadline >= tsc);
	kvm_vcpu_state_free(&s);
	kvm_vcpu_state_free(&back);
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pause_resume_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_record, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
