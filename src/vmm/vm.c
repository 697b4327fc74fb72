#include "vmm/vm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "kvm/stats.h"
#include "util/clock.h"
#include "util/eventfd.h"
#include "util/log.h"
#include "hw/acpi_pm.h"
#include "qmp/qmp_server.h"
#include "hw/i8042.h"
#include "hw/region_device.h"
#include "hw/rtc.h"
#include "hw/uart8250.h"

unsigned int vm_pci_intx_gsi(unsigned int slot)
{
	return PCI_INTX_GSI(slot);
}

static void power_request_cb(void *ctx, enum power_event ev, const char *source)
{
	struct vm *vm = ctx;

	if (ev == POWER_OFF)
		vm_request_stop(vm, VM_STOP_POWEROFF, "guest powered off (%s)", source);
	else
		vm_request_stop(vm, VM_STOP_RESET, "guest reset (%s)", source);
}

/* The UART with its interrupt line: what its callbacks need. */
struct uart_port {
	struct uart8250 uart;
	struct irq_line irq;
	struct vm *vm;
};

static void uart_irq(void *ctx, int level)
{
	struct uart_port *p = ctx;

	irq_line_set(&p->irq, level);
}

static void uart_tx(void *ctx, uint8_t byte)
{
	struct uart_port *p = ctx;

	console_write(&p->vm->console, byte);
}

static void uart_rx_space(void *ctx)
{
	struct uart_port *p = ctx;

	eventfd_signal(p->vm->wake_fd);
}

static size_t uart_receive(void *ctx, const uint8_t *buf, size_t len)
{
	struct uart_port *p = ctx;

	return uart8250_receive(&p->uart, buf, len);
}

static void uart_reset(void *state)
{
	uart8250_reset(state);
}

static void kbd_reset(void *state)
{
	i8042_reset(state);
}

/* The legacy devices' state functions, with the region device's types. */
static void uart_save(void *state, struct state_writer *w)
{
	uart8250_save(state, w);
}

static int uart_load(void *state, struct state_reader *r, struct error *err)
{
	return uart8250_load(state, r, err);
}

static void kbd_save(void *state, struct state_writer *w)
{
	i8042_save(state, w);
}

static int kbd_load(void *state, struct state_reader *r, struct error *err)
{
	return i8042_load(state, r, err);
}

static void rtc_save_cb(void *state, struct state_writer *w)
{
	rtc_save(state, w);
}

static int rtc_load_cb(void *state, struct state_reader *r, struct error *err)
{
	return rtc_load(state, r, err);
}

static void pm_save(void *state, struct state_writer *w)
{
	acpi_pm_save(state, w);
}

static int pm_load(void *state, struct state_reader *r, struct error *err)
{
	return acpi_pm_load(state, r, err);
}

static void uart_release(void *state)
{
	struct uart_port *p = state;

	irq_line_release(&p->irq);
	free(p);
}

unsigned int vm_ram_slots(const struct vm *vm, struct vm_ram_slot *s)
{
	unsigned int n = 0;

	s[n++] = (struct vm_ram_slot){ 0, 0, vm->mem.low_size, 0 };
	if (guest_mem_high_size(&vm->mem))
		s[n++] = (struct vm_ram_slot){ 1, HIGH_RAM_START, guest_mem_high_size(&vm->mem),
					       vm->mem.low_size };
	return n;
}

/* The buses' coalescers: zones in KVM's ring (kvm/coalesced.h). */
static int coalesce_pio(void *ctx, uint64_t addr, uint64_t len, bool add)
{
	struct kvm *k = ctx;

	return kvm_coalesced_zone(&k->coalesced, k->vm_fd, addr, len, true, add);
}

static int coalesce_mmio(void *ctx, uint64_t addr, uint64_t len, bool add)
{
	struct kvm *k = ctx;

	return kvm_coalesced_zone(&k->coalesced, k->vm_fd, addr, len, false, add);
}

void vm_init(struct vm *vm, const struct vm_options *o)
{
	vm->setup_started_ns = monotonic_ns();
	vm->opts = o;
	vm->vm_stats_fd = -1;
	vm->wake_fd = -1;
	vm->ncpus = o->cpus;
	vm->kvm.vm_fd = vm->kvm.sys_fd = -1; /* nothing to close yet */
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_mutex_init(&vm->events_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	bus_set_coalescer(&vm->pio, coalesce_pio, &vm->kvm);
	bus_set_coalescer(&vm->mmio, coalesce_mmio, &vm->kvm);
	device_list_init(&vm->devices);
	irq_service_init(&vm->irq, &kvm_irqchip_ops, &vm->kvm);
	vm->power.request = power_request_cb;
	vm->power.ctx = vm;
	pci_host_init(&vm->pci, &vm->power, PCI_MMIO32_START, PCI_MMIO32_END);
	pci_host_set_io_window(&vm->pci, PCI_IO_START, PCI_IO_END);
	pci_host_set_buses(&vm->pci, &vm->pio, &vm->mmio);
	migration_init(&vm->mig);
}

/* The ACPI PM block with its SCI line. */
struct pm_port {
	struct acpi_pm pm; /* first: the bus hands ops this pointer */
	struct irq_line sci;
};

static void pm_pause(void *state)
{
	acpi_pm_pause(state);
}

static void pm_resume(void *state)
{
	acpi_pm_resume(state);
}

static void pm_reset(void *state)
{
	acpi_pm_reset(state);
}

static void pm_sci(void *ctx, int level)
{
	struct pm_port *p = ctx;

	irq_line_set(&p->sci, level);
}

static void pm_press_power_button(void *ctx)
{
	struct pm_port *p = ctx;

	acpi_pm_press_power_button(&p->pm);
}

static void pm_release(void *state)
{
	struct pm_port *p = state;

	irq_line_release(&p->sci);
	free(p);
}

/* Registers a register-window device whose state was just allocated;
 * frees the state when that fails. */
static int add_region_device(struct vm *vm, const struct region_device_spec *spec,
			     struct error *err)
{
	if (!spec->state)
		return error_set(err, "%s: out of memory", spec->name);
	if (!region_device_create(&vm->devices, spec, err)) {
		spec->release(spec->state);
		return -1;
	}
	return 0;
}

int vm_create_legacy_devices(struct vm *vm, struct error *err)
{
	struct uart_port *uart = calloc(1, sizeof(*uart));
	struct i8042 *kbd = calloc(1, sizeof(*kbd));
	struct rtc *rtc = calloc(1, sizeof(*rtc));
	struct pm_port *pm = calloc(1, sizeof(*pm));
	int ret = 0;

	if (uart) {
		uart->vm = vm;
		uart8250_init(&uart->uart, uart_irq, uart_tx, uart_rx_space, uart);
		if (irq_line_claim(&vm->irq, COM1_IRQ, &uart->irq) < 0) {
			free(uart);
			return error_set(err, "internal error: cannot claim the UART's interrupt line");
		}
	}
	if (kbd)
		i8042_init(kbd, &vm->power);
	if (rtc)
		rtc_init(rtc);
	if (pm) {
		acpi_pm_init(&pm->pm, &vm->power);
		pm->pm.set_sci = pm_sci;
		pm->pm.sci_ctx = pm;
		if (irq_line_claim(&vm->irq, ACPI_SCI_IRQ, &pm->sci) < 0) {
			free(pm);
			pm = NULL;
		}
	}
	ret |= add_region_device(vm, &(struct region_device_spec){
		.name = "uart8250@0x3f8", .type = "uart8250", .bus = &vm->pio, .base = COM1_PORT,
		.len = UART_REGS, .ops = &uart8250_ops, .state = uart ? &uart->uart : NULL,
		.reset = uart_reset, .release = uart_release,
		.save = uart_save, .load = uart_load, .state_version = 1 }, err);
	ret |= add_region_device(vm, &(struct region_device_spec){
		.name = "i8042@0x60", .type = "i8042", .bus = &vm->pio, .base = I8042_DATA_PORT,
		.len = 5, .ops = &i8042_ops, .state = kbd, .reset = kbd_reset, .release = free,
		.save = kbd_save, .load = kbd_load, .state_version = 1 }, err);
	ret |= add_region_device(vm, &(struct region_device_spec){
		.name = "rtc@0x70", .type = "mc146818-rtc", .bus = &vm->pio, .base = RTC_PORT,
		.len = 2, .ops = &rtc_ops, .state = rtc, .release = free,
		.save = rtc_save_cb, .load = rtc_load_cb, .state_version = 1 }, err);
	ret |= add_region_device(vm, &(struct region_device_spec){
		.name = "acpi-pm@0x600", .type = "acpi-pm", .bus = &vm->pio, .base = ACPI_PM_PORT,
		.len = ACPI_PM_LEN, .ops = &acpi_pm_ops, .state = pm ? &pm->pm : NULL,
		.reset = pm_reset, .release = pm_release,
		.pause = pm_pause, .resume = pm_resume,
		.save = pm_save, .load = pm_load, .state_version = 1 }, err);
	if (ret)
		return -1;
	vm->press_power_button = pm_press_power_button;
	vm->power_button_ctx = pm;
	if (!vm->console_receive) {
		vm->console_receive = uart_receive;
		vm->console_ctx = uart;
	}
	/* The PCI host is the bus itself, not a device on the list. */
	if (bus_register(&vm->pio, PCI_CONFIG_PORT, 8, "pci-host@0xcf8", &pci_host_ops, &vm->pci) ||
	    bus_register(&vm->mmio, PCI_MMIO32_START, PCI_MMIO32_END - PCI_MMIO32_START,
			 "pci-mmio", &pci_mmio_ops, &vm->pci) ||
	    bus_register(&vm->pio, PCI_IO_START, PCI_IO_END - PCI_IO_START, "pci-io", &pci_io_ops,
			 &vm->pci))
		return error_set(err, "internal error: overlapping device ports");
	return 0;
}

#define PAUSE_VCPUS_MS 5000

int vm_pause(struct vm *vm, struct error *err)
{
	if (vm->paused)
		return 0;
	if (vcpus_pause(vm, PAUSE_VCPUS_MS, err) < 0)
		return -1;
	if (devices_pause_all(&vm->devices, err) < 0) {
		vcpus_resume(vm);
		return -1;
	}
	/* Guest time stops with the VM, as in QEMU: kvmclock is read now and
	 * set back on resume (the TSC itself goes on, as in QEMU). A KVM
	 * without the clock ioctls leaves it running. */
	if (kvm_get_clock(&vm->kvm, &vm->kvmclock_at_pause) < 0)
		vm->kvmclock_at_pause = 0;
	vm->paused = true;
	return 0;
}

void vm_resume(struct vm *vm)
{
	if (!vm->paused)
		return;
	if (vm->kvmclock_at_pause)
		kvm_set_clock(&vm->kvm, vm->kvmclock_at_pause);
	devices_resume_all(&vm->devices);
	vcpus_resume(vm);
	vm->paused = false;
	/* Console input held back while paused goes in now. */
	vm_wake(vm);
}

/* Feeds console input to the console device as far as it has room. */
static void pump_console(struct vm *vm)
{
	struct console *c = &vm->console;

	/* While paused the console keeps its bytes: nothing moves. */
	if (!vm->console_receive || vm->paused)
		return;
	while (c->pending_off < c->pending_len) {
		const uint8_t *p = c->pending + c->pending_off;
		size_t left = c->pending_len - c->pending_off;
		size_t n = vm->console_receive(vm->console_ctx, p, left);
		if (n == 0)
			return;
		c->pending_off += n;
	}
	c->pending_len = c->pending_off = 0;
}

static void read_console(struct vm *vm)
{
	struct console *c = &vm->console;
	uint8_t in[sizeof(c->pending) / 2];
	enum console_action action;
	ssize_t n;

	n = read(c->in_fd, in, sizeof(in)); /* POLLNVAL lands here as EBADF */
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		c->eof = 1; /* guest keeps running; it just gets no more input */
		return;
	}
	c->pending_len = console_filter(c, in, (size_t)n, c->pending, &action);
	c->pending_off = 0;
	if (action == CONSOLE_QUIT)
		vm_request_stop(vm, VM_STOP_USER, "stopped from the console (Ctrl-A x)");
	pump_console(vm);
}

int vm_event_loop(struct vm *vm, int signal_fd)
{
	while (vm_stop_reason(vm) == VM_RUNNING) {
		/* The console last: it is left out while input is pending. */
		struct pollfd p[4] = {
			{ .fd = vm->wake_fd, .events = POLLIN },
			{ .fd = signal_fd, .events = POLLIN },
			{ .fd = vm->qmp ? qmp_server_fd(vm->qmp) : -1,
			  .events = vm->qmp ? qmp_server_events(vm->qmp) : 0 },
			{ .fd = vm->console.in_fd, .events = POLLIN },
		};
		int want_input = !vm->console.eof && vm->console.pending_len == 0;

		if (poll(p, want_input ? 4 : 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			vm_request_stop(vm, VM_STOP_ERROR, "poll failed: %s", strerror(errno));
			break;
		}
		if (p[0].revents & POLLIN) {
			/* A spurious wakeup: the loop re-checks its state. */
			(void)eventfd_consume(vm->wake_fd);
			pump_console(vm);
			vm_send_posted_events(vm);
			migration_poll(vm);
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			/* SIGQUIT: every vCPU's registers on stderr, and go on
			 * (to see where a guest that stopped answering is).
			 * SIGUSR2: the statistics so far (exit_reason
			 * "running"), e.g. just before a test kills vireo with
			 * SIGKILL. */
			if (read(signal_fd, &si, sizeof(si)) != sizeof(si)) {
				/* Nothing whole to read: poll again. */
			} else if (si.ssi_signo == SIGQUIT) {
				vcpus_request_state_dump(vm);
			} else if (si.ssi_signo == SIGUSR2) {
				if (vm->opts->stats_json)
					vm_write_stats(vm, vm->opts->stats_json);
			} else {
				vm_request_stop(vm, VM_STOP_SIGNAL, "stopped by SIG%s",
						sigabbrev_np((int)si.ssi_signo));
			}
		}
		if (p[2].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))
			qmp_server_ready(vm->qmp, vm->qmp_ops);
		if (want_input && (p[3].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
			read_console(vm);
	}
	return 0;
}

static const char *stop_reason_name(int r)
{
	switch (r) {
	case VM_STOP_POWEROFF:
		return "poweroff";
	case VM_STOP_RESET:
		return "reset";
	case VM_STOP_SIGNAL:
		return "signal";
	case VM_STOP_USER:
		return "user";
	case VM_STOP_ERROR:
		return "error";
	case VM_STOP_QMP_QUIT:
		return "quit";
	default:
		return "running";
	}
}

int vm_stats_to(struct vm *vm, FILE *f)
{
	uint64_t first_run = vm->vcpus ? __atomic_load_n(&vm->vcpus[0].first_run_ns, __ATOMIC_RELAXED)
				       : 0;
	struct device *d;
	struct jsonw j;
	unsigned int i;

	jsonw_init(&j, f);
	jsonw_begin_object(&j, NULL);
	jsonw_string(&j, "exit_reason", stop_reason_name(vm_stop_reason(vm)));
	jsonw_string(&j, "exit_detail", vm->stop_detail);
	jsonw_uint(&j, "vcpus_count", vm->ncpus);
	jsonw_string(&j, "boot_path", vm->boot_path);
	jsonw_string(&j, "boot_path_detail", vm->boot_path_detail);
	jsonw_uint(&j, "memory_bytes", vm->mem.size);
	jsonw_uint(&j, "system_resets", vm->resets);
	/* Vireo's own part of a boot: from the start of the set-up (the
	 * command line parsed) to vCPU 0 first entering KVM_RUN to run the guest
	 * (devices, backends, guest memory, the kernel loaded). With -S or
	 * --incoming it includes the wait (for cont, for the state); 0 if the
	 * guest never ran. */
	jsonw_uint(&j, "startup_us", first_run ? (first_run - vm->setup_started_ns) / 1000 : 0);
	/* Guest writes KVM recorded instead of exiting to userspace, later
	 * replayed to their devices (kvm/coalesced.h); the devices' own
	 * counters below count them as accesses like any. */
	jsonw_uint(&j, "coalesced_writes",
		   __atomic_load_n(&vm->kvm.coalesced.replayed, __ATOMIC_RELAXED));
	/* For benchmarks: Vireo's own footprint is peak RSS minus this. */
	jsonw_uint(&j, "guest_resident_bytes", guest_mem_resident(&vm->mem));
	jsonw_begin_object(&j, "vm");
	if (kvm_stats_write_json(vm->vm_stats_fd, &j, "kvm") < 0)
		jsonw_string(&j, "kvm_unavailable", "KVM_GET_STATS_FD not supported");
	jsonw_end_object(&j);
	jsonw_begin_array(&j, "vcpus");
	for (i = 0; i < vm->ncpus && vm->vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		jsonw_begin_object(&j, NULL);
		jsonw_uint(&j, "id", v->id);
		jsonw_uint(&j, "userspace_io_exits", __atomic_load_n(&v->io_exits, __ATOMIC_RELAXED));
		jsonw_uint(&j, "userspace_mmio_exits", __atomic_load_n(&v->mmio_exits, __ATOMIC_RELAXED));
		jsonw_uint(&j, "userspace_other_exits", __atomic_load_n(&v->other_exits, __ATOMIC_RELAXED));
		kvm_stats_write_json(v->stats_fd, &j, "kvm");
		jsonw_end_object(&j);
	}
	jsonw_end_array(&j);
	jsonw_begin_object(&j, "devices");
	/* Register windows (the legacy devices, the PCI host) by region;
	 * then every device that keeps counters of its own. */
	bus_write_json(&vm->pio, &j);
	bus_write_json(&vm->mmio, &j);
	for (d = vm->devices.head; d; d = d->next) {
		if (!d->ops->write_stats)
			continue;
		jsonw_begin_object(&j, d->name);
		d->ops->write_stats(d, &j);
		jsonw_end_object(&j);
	}
	jsonw_begin_object(&j, "unclaimed-pio");
	jsonw_uint(&j, "exits", vm->pio.unclaimed);
	jsonw_end_object(&j);
	jsonw_begin_object(&j, "unclaimed-mmio");
	jsonw_uint(&j, "exits", vm->mmio.unclaimed);
	jsonw_end_object(&j);
	jsonw_end_object(&j);
	jsonw_end_object(&j);
	return jsonw_error(&j) ? -1 : 0;
}

int vm_write_stats(struct vm *vm, const char *path)
{
	char tmp[4096];
	int bad;
	FILE *f;

	/* Written to a temporary name and renamed: never a half-written file. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		log_error("--stats-json: path too long");
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f) {
		log_error("--stats-json '%s': %s", path, strerror(errno));
		return -1;
	}
	bad = vm_stats_to(vm, f) < 0;
	if (fclose(f) != 0)
		bad = 1;
	if (bad || rename(tmp, path) < 0) {
		log_error("--stats-json '%s': %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int vm_open_stats(struct vm *vm)
{
	unsigned int i;

	vm->vm_stats_fd = -1;
	if (!vm->kvm.has_stats_fd) {
		log_warn("KVM has no binary statistics (KVM_CAP_BINARY_STATS_FD): --stats-json will only hold Vireo's counters");
		return 0;
	}
	vm->vm_stats_fd = kvm_stats_open(vm->kvm.vm_fd);
	for (i = 0; i < vm->ncpus; i++)
		vm->vcpus[i].stats_fd = kvm_stats_open(vm->vcpus[i].fd);
	return 0;
}

int vm_create_wake_fd(struct vm *vm)
{
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return vm->wake_fd < 0 ? -1 : 0;
}
