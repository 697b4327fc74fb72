/* vireo: boot a Linux kernel in a KVM virtual machine.
 * Exit status: 0 when the guest powers off or resets (or is stopped by a
 * signal or Ctrl-A x), 1 on a runtime failure, 2 on a usage error. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "arch/x86/linux_loader.h"
#include "can/canbus_hub.h"
#include "qmp/ctl.h"
#include "qmp/qmp_server.h"
#include "util/log.h"
#include "util/signals.h"
#include "vmm/options.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static struct vm the_vm;
static struct qmp_server the_qmp;

static int check_memory(uint64_t mem)
{
	struct sysinfo si;
	uint64_t host;

	if (sysinfo(&si) < 0)
		return 0;
	host = (uint64_t)si.totalram * si.mem_unit;
	if (mem > host) {
		log_error("--memory %lluM is more than this host's %lluM of RAM",
			  (unsigned long long)(mem >> 20), (unsigned long long)(host >> 20));
		return -1;
	}
	return 0;
}

static int run(const struct vm_options *o)
{
	struct vm *vm = &the_vm;
	struct linux_image img;
	struct error err = { 0 };
	uint64_t entry;
	int signal_fd, status = EXIT_RUNTIME;
	unsigned int max_cpus, nslots, i;
	struct vm_ram_slot slots[VM_RAM_SLOTS];

	vm_init(vm, o);
	/* Before any backend opens: a library may start threads as it does,
	 * and the control signals must not end Vireo through them. */
	if (signals_route_early() < 0) {
		log_error("cannot set up signal handling");
		return EXIT_RUNTIME;
	}
	/* Everything the user gave us is checked before KVM is touched: the
	 * kernel, the memory size, and every backend (opened now, handed to
	 * its device). */
	if (linux_image_open(&img, o->kernel, o->initrd, o->cmdline) < 0)
		return EXIT_USAGE;
	if (check_memory(o->memory) < 0 || linux_image_check_fit(&img, o->memory) < 0 ||
	    vm_create_virtio_devices(vm, o, &err) < 0 || vm_create_ide(vm, o, &err) < 0 ||
	    (o->qmp_path[0] && qmp_server_open(&the_qmp, o->qmp_path, &err) < 0)) {
		error_report(&err);
		status = EXIT_USAGE;
		goto out;
	}
	if (o->qmp_path[0]) {
		vm->qmp = &the_qmp;
		vm->qmp_ops = vm_qmp_ops(vm);
	}
	if (kvm_open(&vm->kvm, getenv("VIREO_KVM_DEVICE") ? getenv("VIREO_KVM_DEVICE")
							  : "/dev/kvm") < 0)
		goto out;
	max_cpus = vm->kvm.max_vcpus < ACPI_MAX_CPUS ? vm->kvm.max_vcpus : ACPI_MAX_CPUS;
	if (o->cpus > max_cpus) {
		log_error("--cpus %u is more than this host supports (%u: the lower of KVM's and Vireo's limits)",
			  o->cpus, max_cpus);
		status = EXIT_USAGE;
		goto out;
	}
	signal_fd = signals_take();
	if (signal_fd < 0 || vm_create_wake_fd(vm) < 0) {
		log_error("cannot set up signal handling");
		goto out;
	}
	if (guest_mem_map(&vm->mem, o->memory) < 0) {
		log_error("cannot reserve %lluM of guest memory",
			  (unsigned long long)(o->memory >> 20));
		goto out;
	}
	if (kvm_create_vm(&vm->kvm) < 0)
		goto out;
	/* The devices, made before the VM, asked for coalesced zones. */
	bus_coalesce_apply(&vm->pio);
	bus_coalesce_apply(&vm->mmio);
	nslots = vm_ram_slots(vm, slots);
	for (i = 0; i < nslots; i++)
		if (kvm_set_memslot(&vm->kvm, slots[i].id, slots[i].gpa, slots[i].size,
				    vm->mem.host + slots[i].offset) < 0)
			goto out;
	if (vm_create_legacy_devices(vm, &err) < 0 || devices_realize_all(&vm->devices, &err) < 0) {
		error_report(&err);
		goto out;
	}
	/* An incoming VM's RAM comes from the snapshot or the stream: the
	 * kernel is loaded only if the machine is reset later (reset.c sets
	 * the entry point then). Loading it now would cost the restore the
	 * read of a 60 MB vmlinux only to be thrown away. */
	entry = 0;
	if (o->incoming) {
		vm->boot_path = "incoming";
		vm->boot_path_detail = "the kernel is loaded at a system reset only";
	} else {
		if (linux_image_load(&img, &vm->mem, vm->ncpus, &entry) < 0)
			goto out;
		vm->boot_path = img.boot_path;
		vm->boot_path_detail = img.boot_path_detail;
	}
	vm->image = &img;
	if (vcpus_create(vm, entry, ZERO_PAGE_ADDR) < 0)
		goto out;
	if (vm_save_reset_state(vm, &err) < 0) {
		error_report(&err);
		goto out;
	}
	if (o->incoming && !strncmp(o->incoming, "file:", 5)) {
		if (vm_snapshot_restore(vm, o->incoming + 5, &err) < 0) {
			/* A snapshot that is not one, or not of this machine:
			 * the user's input, as a bad kernel file is. */
			error_report(&err);
			status = EXIT_USAGE;
			goto out;
		}
		log_info("restored from %s", o->incoming + 5);
	} else if (o->incoming) {
		if (migration_incoming(vm, o->incoming + 4, signal_fd, &err) < 0) {
			error_report(&err);
			status = EXIT_USAGE;
			goto out;
		}
	}
	/* A loaded VM's devices wait with its vCPUs: with -S until cont
	 * (vm_resume), so that nothing the source left queued runs early. */
	if (o->incoming && !o->start_paused)
		devices_resume_all(&vm->devices);
	if (o->stats_json)
		vm_open_stats(vm);

	if (vm->qmp && o->qmp_wait && qmp_server_wait_client(vm->qmp, &err) < 0) {
		error_report(&err);
		goto out;
	}
	console_init(&vm->console, STDIN_FILENO, STDOUT_FILENO);
	console_raw_mode(&vm->console);
	if (o->start_paused)
		vcpus_hold_at_start(vm);
	for (;;) {
		if (vcpus_start(vm) == 0) {
			/* -S: parked before a single guest instruction ran. */
			if (o->start_paused && !vm->resets && vm_pause(vm, &err) < 0) {
				vm_request_stop(vm, VM_STOP_ERROR, "%s", err.msg);
			} else if (o->start_paused && !vm->resets) {
				vm->prelaunch = true;
				log_info("paused (-S): QMP cont starts it");
			}
			vm_event_loop(vm, signal_fd);
		}
		vcpus_stop(vm);
		/* --reboot reset: the guest's reboot resets the machine in
		 * place and it boots again, as QEMU does by default. */
		if (vm_stop_reason(vm) != VM_STOP_RESET || !o->reboot_reset)
			break;
		log_info("%s: resetting the VM", vm->stop_detail);
		if (vm_guest_reboot(vm, &err) < 0) {
			vm_clear_stop(vm);
			vm_request_stop(vm, VM_STOP_ERROR, "%s", err.msg);
			break;
		}
		vm_qmp_event(vm, "RESET", json_pack("{s:b,s:s}", "guest", 1, "reason", "guest-reset"));
	}
	console_restore();
	vm_qmp_shutdown_event(vm);

	switch (vm_stop_reason(vm)) {
	case VM_STOP_ERROR:
		if (!vm->error_logged)
			log_error("%s", vm->stop_detail);
		status = EXIT_RUNTIME;
		break;
	default:
		log_info("%s", vm->stop_detail);
		status = 0;
		break;
	}
	if (o->stats_json && vm_write_stats(vm, o->stats_json) < 0 && status == 0)
		status = EXIT_RUNTIME;
out:
	/* Devices first (their threads stop, their ioeventfds and irqfds go
	 * while the VM still exists), then the vCPUs, memory and KVM. */
	migration_shutdown(vm);
	devices_destroy_all(&vm->devices);
	vcpus_destroy(vm);
	if (vm->vm_stats_fd >= 0)
		close(vm->vm_stats_fd);
	guest_mem_unmap(&vm->mem);
	linux_image_close(&img);
	kvm_close(&vm->kvm);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	if (vm->qmp)
		qmp_server_close(vm->qmp);
	free(vm->events);
	return status;
}

/* A closed stdin/stdout/stderr would otherwise be reused by the first
 * open() — /dev/kvm as the console, say. */
static void ensure_std_fds(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && fd <= STDERR_FILENO)
		fcntl(fd, F_SETFD, 0);
	if (fd > STDERR_FILENO)
		close(fd);
}

int main(int argc, char **argv)
{
	struct vm_options o;

	ensure_std_fds();
	/* A console reader that goes away must not kill the VM mid-write. */
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !strcmp(argv[1], "canbus"))
		return canbus_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	switch (options_parse(argc, argv, &o)) {
	case OPTIONS_EXIT_OK:
		return 0;
	case OPTIONS_USAGE:
		return EXIT_USAGE;
	case OPTIONS_RUN:
		break;
	}
	return run(&o);
}
