/* System reset: the machine back to its power-on state without a new
 * process, as QEMU's system_reset (vm.h). */
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/linux_loader.h"
#include "util/log.h"
#include "vmm/vm.h"

int vm_save_reset_state(struct vm *vm, struct error *err)
{
	unsigned int i;

	if (kvm_irqchips_get(&vm->kvm, &vm->irqchips_at_reset, err) < 0)
		return -1;
	for (i = 0; i < vm->ncpus; i++) {
		if (kvm_vcpu_state_get(&vm->kvm, vm->vcpus[i].fd, &vm->vcpus[i].at_reset, err) < 0) {
			error_prefix(err, "vCPU %u: ", i);
			return -1;
		}
	}
	return 0;
}

/* With everything paused: what runs again must find the machine as at
 * power-on. Devices first (they lower their interrupt lines), then the
 * controllers those lines go to, the vCPUs, and guest memory. */
static int reset_machine(struct vm *vm, struct error *err)
{
	unsigned int i;
	uint64_t entry;

	devices_reset_all(&vm->devices);
	pci_host_reset(&vm->pci);
	if (kvm_irqchips_set(&vm->kvm, &vm->irqchips_at_reset, err) < 0)
		return -1;
	/* The image first: its entry point goes into the boot vCPU's reset
	 * state (a VM that came in by migration has not loaded it before,
	 * and the kernel cache may have changed which image is booted). */
	if (!vm->image || linux_image_load(vm->image, &vm->mem, vm->ncpus, &entry) < 0)
		return error_set(err, "cannot load the kernel again");
	vm->vcpus[0].at_reset.regs.rip = entry;
	vm->boot_path = vm->image->boot_path;
	vm->boot_path_detail = vm->image->boot_path_detail;
	for (i = 0; i < vm->ncpus; i++) {
		if (kvm_vcpu_state_set(vm->vcpus[i].fd, &vm->vcpus[i].at_reset, err) < 0) {
			error_prefix(err, "vCPU %u: ", i);
			return -1;
		}
	}
	return 0;
}

int vm_reset(struct vm *vm, struct error *err)
{
	bool was_paused = vm->paused;

	if (!was_paused && vm_pause(vm, err) < 0) {
		error_prefix(err, "cannot reset: ");
		return -1;
	}
	if (reset_machine(vm, err) < 0) {
		error_prefix(err, "system reset failed: ");
		vm_request_stop(vm, VM_STOP_ERROR, "%s", err->msg);
		return -1;
	}
	vm->resets++;
	log_debug("system reset %u done", vm->resets);
	if (!was_paused)
		vm_resume(vm);
	return 0;
}

int vm_guest_reboot(struct vm *vm, struct error *err)
{
	/* The same reset as system_reset's: pausing finds every vCPU thread
	 * already ended, so it quiesces the devices and stops guest time. */
	if (vm_reset(vm, err) < 0)
		return -1;
	vm_clear_stop(vm);
	return 0;
}
