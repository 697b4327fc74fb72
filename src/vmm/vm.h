/* A virtual machine: KVM, guest RAM, the buses, the devices (one list,
 * hw/device.h) and the vCPU threads. The main thread runs the event loop
 * (console input, signals), is the only one that adds or removes devices,
 * and the only one that tears the VM down. */
#ifndef VIREO_VMM_VM_H
#define VIREO_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "hw/bus.h"
#include "hw/device.h"
#include "hw/irq.h"
#include "hw/pci.h"
#include "hw/power.h"
#include "kvm/kvm.h"
#include "kvm/vcpu_state.h"
#include "util/jsonw.h"
#include "vmm/console.h"
#include "mem/guest_mem.h"
#include "vmm/options.h"
#include "vmm/migration.h"
#include "vmm/snapshot.h"

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_RESET,
	VM_STOP_SIGNAL,
	VM_STOP_USER,  /* Ctrl-A x on the console */
	VM_STOP_ERROR, /* KVM failure or guest crash: exit status 1 */
	VM_STOP_QMP_QUIT, /* the QMP quit command */
};

struct qmp_server;

#define VM_EVENTS_MAX 64

struct vm_event {
	char device[32];
	char name[32];
};

/* A vCPU thread's state. Commands (vcpus_pause/resume, a stop) are
 * requests the thread takes at an instruction boundary: after KVM_RUN
 * returned with every exit it reported completed. */
enum vcpu_state {
	VCPU_CREATED, /* no thread yet */
	VCPU_RUNNING,
	VCPU_PAUSED,  /* waiting in the thread for resume or stop */
	VCPU_STOPPED, /* the thread has ended */
};

struct vcpu {
	struct vm *vm;
	unsigned int id;
	enum vcpu_state state; /* under vm->run_lock */
	int tid; /* the thread's id, for query-cpus-fast */
	int fd;
	int stats_fd;
	struct kvm_run *run;
	pthread_t thread;
	int started;
	/* When it first entered KVM_RUN to run the guest (monotonic ns); 0
	 * before. */
	uint64_t first_run_ns;
	/* Exits that reached userspace, by kind. */
	uint64_t io_exits, mmio_exits, other_exits;
	/* Set by vcpus_throttle(): sleep this long at the next kick. */
	uint64_t throttle_ns;
	/* Set by vcpus_request_state_dump(): log the state at the next kick. */
	int dump_requested;
	/* The state it had before its first instruction: what a system
	 * reset puts back. */
	struct kvm_vcpu_state at_reset;
};

struct linux_image;

struct vm {
	const struct vm_options *opts;
	struct kvm kvm;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct power_control power;
	struct pci_host pci;
	struct device_list devices; /* every device, in creation order */
	struct console console;
	struct vcpu *vcpus;
	unsigned int ncpus;
	int vm_stats_fd;
	int wake_fd; /* eventfd: wakes the event loop */
	/* vCPU commands: pause_requested is set and cleared under run_lock,
	 * and the vCPUs report their state changes on run_cond. */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	bool pause_requested;
	bool paused; /* vm_pause() succeeded and vm_resume() has not run */
	uint64_t kvmclock_at_pause; /* guest time stops while paused */
	int stop_reason;
	char stop_detail[160];
	int error_logged; /* stop_detail already printed with registers */
	/* The kernel, initrd and command line, loaded again by a reset. */
	struct linux_image *image;
	/* Interrupt controllers and PIT as created: what a reset puts back. */
	struct kvm_irqchips_state irqchips_at_reset;
	unsigned int resets; /* system resets done */
	/* When vm_init() began the set-up (monotonic ns): with vCPU 0's
	 * first_run_ns, Vireo's own part of a boot. */
	uint64_t setup_started_ns;
	/* How the kernel was loaded (struct linux_image), for --stats-json. */
	const char *boot_path, *boot_path_detail;
	/* Where console input goes: the UART, or the virtio console. Returns
	 * how many bytes it took (0: full, try again when it says so). */
	size_t (*console_receive)(void *ctx, const uint8_t *buf, size_t len);
	void *console_ctx;
	/* Every device's interrupts go through here (hw/irq.h). */
	struct irq_service irq;
	/* The ACPI power button (system_powerdown), when the machine has one. */
	void (*press_power_button)(void *ctx);
	void *power_button_ctx;
	/* Events devices report from their threads, for the main thread to
	 * send (vm_post_event); bounded, the oldest kept. */
	pthread_mutex_t events_lock;
	struct vm_event *events;
	unsigned int nevents, events_dropped;
	/* The last QMP migrate, and the one in progress. */
	struct migration mig;
	bool postmigrate; /* paused by a completed migrate, not by stop */
	bool prelaunch;	  /* -S: paused since the start, not yet continued */
	/* --qmp: the control socket and what its commands act on, or NULL. */
	struct qmp_server *qmp;
	const struct qmp_ops *qmp_ops;
};

/* Records why the VM stops (first caller wins) and wakes the event loop.
 * Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vm_stop_reason(const struct vm *vm);
/* Running again after a stop (a guest reboot handled in place). Main
 * thread, with no vCPU thread running. */
void vm_clear_stop(struct vm *vm);
/* Wakes the event loop (it re-checks everything). Any thread. */
void vm_wake(struct vm *vm);

/* Pause: every vCPU at an instruction boundary, then every device
 * quiesced (hw/device.h), and guest time (kvmclock, the PM timer)
 * stopped. Resume undoes it in the reverse order. Main thread only.
 * 0, or -1 with err set and the VM running as before. */
int vm_pause(struct vm *vm, struct error *err);
void vm_resume(struct vm *vm);

/* System reset (src/vmm/reset.c). vm_save_reset_state() records the
 * power-on state of the vCPUs and interrupt controllers once everything
 * is set up and before the vCPUs start. vm_reset() is the machine's reset
 * button, as QEMU's system_reset: vCPUs paused, every device back to its
 * power-on state, the kernel, initrd and boot tables loaded again, the
 * vCPUs and interrupt controllers as they were created; then the VM runs
 * (or stays paused, if it was). Guest RAM otherwise keeps its contents,
 * as on real hardware. Main thread only. 0, or -1 with err set: the VM
 * runs on as before when the pause failed, and is stopped with an error
 * when the reset failed half-way (a half-reset machine must not run). */
int vm_save_reset_state(struct vm *vm, struct error *err);
int vm_reset(struct vm *vm, struct error *err);
/* A reboot from inside the guest, with --reboot reset: the vCPU threads
 * have ended (the guest's reset stopped them); the machine is reset by
 * vm_reset() and the stop cleared for vcpus_start(). 0, or -1 with err
 * set (the VM stays stopped). */
int vm_guest_reboot(struct vm *vm, struct error *err);

/* Guest RAM as KVM's memory slots: low RAM at guest physical 0 (slot 0),
 * the rest at 4 GiB (slot 1) when there is any; offset is where the
 * slot starts in vm->mem.host. What main registers and what a migration
 * logs the dirty pages of. Fills s, returns how many. */
#define VM_RAM_SLOTS 2
struct vm_ram_slot {
	uint32_t id;
	uint64_t gpa, size, offset;
};
unsigned int vm_ram_slots(const struct vm *vm, struct vm_ram_slot *s);

/* The parts that need nothing from KVM yet: buses, device list, the
 * interrupt service (on vm->kvm, used once the VM exists). */
void vm_init(struct vm *vm, const struct vm_options *o);
int vm_create_wake_fd(struct vm *vm);
/* The PC's own devices (UART, i8042, RTC, ACPI PM) and the PCI host's
 * ports. 0, or -1 with err set. */
int vm_create_legacy_devices(struct vm *vm, struct error *err);
/* Opens KVM's statistics fds (after the vCPUs exist). */
int vm_open_stats(struct vm *vm);
/* Runs until something requests a stop. */
int vm_event_loop(struct vm *vm, int signal_fd);
int vm_write_stats(struct vm *vm, const char *path);
/* The same statistics object, written to f. 0, or -1. */
int vm_stats_to(struct vm *vm, FILE *f);

/* QMP (src/vmm/vm_qmp.c): the commands' view of this machine, events to
 * the client (steals data, may be NULL), and the SHUTDOWN event for how
 * the VM ended. */
const struct qmp_ops *vm_qmp_ops(struct vm *vm);
void vm_qmp_event(struct vm *vm, const char *name, json_t *data);
void vm_qmp_shutdown_event(struct vm *vm);
/* The platform's routing of a PCI slot's INTA#: the GSI its line reaches
 * (arch/x86/layout.h, as the DSDT's _PRT says), handed to every PCI
 * device so that devices need not know the platform. */
unsigned int vm_pci_intx_gsi(unsigned int slot);
/* A device's event, from any thread: queued, and sent as a QMP event
 * {"device": device} by the main thread. */
void vm_post_event(void *vm, const char *device, const char *event);
/* Main thread: sends what was posted. */
void vm_send_posted_events(struct vm *vm);

/* VirtIO devices from the options (src/vmm/virtio_devices.c): each
 * backend opened, its device created and registered, before KVM is
 * touched, so bad input is reported first; devices_realize_all() puts
 * them on the PCI bus once the VM exists. 0, or -1 with err set. */
int vm_create_virtio_devices(struct vm *vm, const struct vm_options *o, struct error *err);
/* An image of the command line, opened as the machine needs it (locked
 * unless a live migration's source still holds it); NULL when it cannot
 * be (block_open logged why). */
struct block_backend *vm_open_disk(struct vm *vm, const struct disk_config *c);
/* The PIIX3 IDE controller with the if=ide disks, when there are any
 * (src/vmm/ide_disks.c); on the PCI bus and its ports from now on. 0, or
 * -1 (err set, or the backend logged why). */
int vm_create_ide(struct vm *vm, const struct vm_options *o, struct error *err);
/* An emulated Intel 82540EM on the backend n describes (opened here), as
 * NIC number index (src/vmm/emulated_devices.c). 0, or -1 (err set, or
 * the backend logged why). */
int vm_add_e1000(struct vm *vm, const struct net_config *n, unsigned int index, struct error *err);
/* An emulated Kvaser PCI CAN card (--can ...,model=kvaser) on the backend
 * c describes (opened here), as CAN controller number index
 * (src/vmm/emulated_devices.c). 0, or -1 (err set, or the backend logged
 * why). */
int vm_add_kvaser(struct vm *vm, const struct can_config *c, unsigned int index, struct error *err);

/* Creates vCPUs and sets their CPUID, LAPIC and (for vCPU 0) boot state. */
int vcpus_create(struct vm *vm, uint64_t entry, uint64_t zero_page);
/* -S: the vCPUs, once started, park before their first KVM_RUN enters
 * the guest (immediate_exit set, a pause requested); vm_pause() then
 * finds them parked. Before vcpus_start(). */
void vcpus_hold_at_start(struct vm *vm);
int vcpus_start(struct vm *vm);
/* Kicks every vCPU out of KVM_RUN and joins the threads. */
void vcpus_stop(struct vm *vm);
/* Every vCPU thread paused (or ended) within timeout_ms; -1 (err set) if
 * one did not get there, and then all run again. */
int vcpus_pause(struct vm *vm, unsigned int timeout_ms, struct error *err);
void vcpus_resume(struct vm *vm);
/* Kicks every running vCPU out of KVM_RUN to sleep sleep_ns (a
 * migration's auto-converge); a pause or a stop cuts the sleep short. */
void vcpus_throttle(struct vm *vm, uint64_t sleep_ns);
/* Makes every running vCPU log its registers and pending events (SIGQUIT). */
void vcpus_request_state_dump(struct vm *vm);
void vcpus_destroy(struct vm *vm);

#endif
