/* What QMP commands act on (qmp/qmp.h's struct qmp_ops) for this VMM's
 * machine, and the events the machine sends. Everything here runs on the
 * main thread, the only one that pauses, resumes and stops the VM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "kvm/vcpu_state.h"
#include "qmp/qmp_server.h"
#include "util/file.h"
#include "util/le.h"
#include "util/state.h"
#include "util/zero.h"
#include "virtio/virtio.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_pci.h"
#include "vmm/vm.h"

static const char *status(void *ctx)
{
	struct vm *vm = ctx;
	int r = vm_stop_reason(vm);

	/* Under --reboot reset a guest's reboot is a moment of the run, as
	 * a reset is in QEMU, not its end. */
	if (r != VM_RUNNING && !(r == VM_STOP_RESET && vm->opts->reboot_reset))
		return "shutdown";
	if (vm->paused)
		return vm->postmigrate ? "postmigrate" : vm->prelaunch ? "prelaunch" : "paused";
	return "running";
}

static int stop(void *ctx, struct error *err)
{
	struct vm *vm = ctx;

	if (vm->paused)
		return 0; /* as QEMU: no second STOP */
	if (vm_pause(vm, err) < 0)
		return -1;
	vm_qmp_event(vm, "STOP", NULL);
	return 0;
}

static int cont(void *ctx, struct error *err)
{
	struct vm *vm = ctx;

	if (!vm->paused)
		return 0;
	if (migration_take_disks_back(vm, err) < 0)
		return -1;
	vm_resume(vm);
	vm->postmigrate = false;
	vm->prelaunch = false;
	vm_qmp_event(vm, "RESUME", NULL);
	return 0;
}

static int migrate(void *ctx, const char *uri, struct error *err)
{
	return migration_start(ctx, uri, err);
}

static json_t *query_migrate(void *ctx)
{
	return migration_info(ctx);
}

static void migrate_cancel(void *ctx)
{
	migration_cancel(ctx);
}

static json_t *query_migrate_parameters(void *ctx)
{
	return migration_params_json(ctx);
}

static json_t *query_migrate_capabilities(void *ctx)
{
	return migration_caps_json(ctx);
}

static int migrate_set_parameters(void *ctx, json_t *args, struct error *err)
{
	return migration_set_params(ctx, args, err);
}

static int migrate_set_capabilities(void *ctx, json_t *caps, struct error *err)
{
	return migration_set_caps(ctx, caps, err);
}

static int powerdown(void *ctx, struct error *err)
{
	struct vm *vm = ctx;

	if (!vm->press_power_button)
		return error_set(err, "this machine has no power button");
	vm->press_power_button(vm->power_button_ctx);
	vm_qmp_event(vm, "POWERDOWN", NULL);
	return 0;
}

static int reset(void *ctx, struct error *err)
{
	struct vm *vm = ctx;

	if (vm_reset(vm, err) < 0)
		return -1;
	vm_qmp_event(vm, "RESET", json_pack("{s:b,s:s}", "guest", 0, "reason",
					     "host-qmp-system-reset"));
	return 0;
}

static void quit(void *ctx)
{
	vm_request_stop(ctx, VM_STOP_QMP_QUIT, "stopped by QMP quit");
}

static json_t *query_cpus(void *ctx)
{
	struct vm *vm = ctx;
	json_t *list = json_array();
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++) {
		char qom[64];

		snprintf(qom, sizeof(qom), "/machine/unattached/device[%u]", i);
		json_array_append_new(
			list, json_pack("{s:i,s:s,s:I,s:{s:i,s:i,s:i},s:s}", "cpu-index", (json_int_t)i,
					"qom-path", qom, "thread-id",
					(json_int_t)(vm->vcpus ? vm->vcpus[i].tid : 0), "props",
					"core-id", 0, "thread-id", 0, "socket-id", (json_int_t)i,
					"target", "x86_64"));
	}
	return list;
}

static json_t *query_block(void *ctx)
{
	struct vm *vm = ctx;
	json_t *list = json_array();
	const struct block_backend *b;
	struct device *d;
	unsigned int n;

	for (d = vm->devices.head; d; d = d->next) {
		for (n = 0; d->ops->disk && (b = d->ops->disk(d, n)); n++) {
			char name[64], qdev[128];

			/* A device with several disks (IDE) names each. */
			if (virtio_pci_vdev(d))
				snprintf(name, sizeof(name), "%s", d->name);
			else
				snprintf(name, sizeof(name), "%s-disk%u", d->name, n);
			snprintf(qdev, sizeof(qdev), "/machine/peripheral-anon/%s/%s", d->name,
				 virtio_pci_vdev(d) ? "virtio-backend" : name);
			json_array_append_new(
				list,
				json_pack("{s:s,s:s,s:b,s:b,s:s,s:s,s:{s:s,s:b,s:s,s:b,s:i,s:{s:b,s:b,s:b}}}",
					  "device", name, "qdev", qdev, "locked", 0, "removable", 0,
					  "type", "unknown", "io-status", "ok", "inserted", "file",
					  block_path(b), "ro", block_read_only(b), "drv", "raw",
					  "encrypted", 0, "backing_file_depth", 0, "cache", "writeback", 1,
					  "direct", block_direct(b), "no-flush", 0));
		}
	}
	return list;
}

static json_t *pci_regions(const struct pci_device *pd)
{
	json_t *regions = json_array();
	unsigned int n;

	for (n = 0; n < PCI_NUM_BARS; n++) {
		uint32_t lo;

		if (!pd->bar_size[n])
			continue;
		lo = le32_get(pd->config + PCI_BAR0 + 4 * n);
		json_array_append_new(
			regions, json_pack("{s:i,s:s,s:I,s:I,s:b,s:b}", "bar", (json_int_t)n, "type",
					   (lo & PCI_BAR_IO) ? "io" : "memory", "address",
					   (json_int_t)pci_bar_address(pd, n), "size",
					   (json_int_t)pd->bar_size[n], "prefetch", 0, "mem_type_64",
					   (lo & PCI_BAR_MEM64) != 0));
	}
	return regions;
}

static json_t *query_pci(void *ctx)
{
	struct vm *vm = ctx;
	json_t *devices = json_array();
	unsigned int slot;

	pthread_mutex_lock(&vm->pci.lock);
	for (slot = 0; slot < PCI_MAX_DEVICES * PCI_MAX_FUNCTIONS; slot++) {
		const struct pci_device *pd = vm->pci.dev[slot];
		json_t *dev;

		if (!pd)
			continue;
		dev = json_pack("{s:i,s:i,s:i,s:{s:i},s:{s:i,s:i,s:i,s:i},s:s,s:o}", "bus", 0, "slot",
				(json_int_t)(slot / PCI_MAX_FUNCTIONS), "function",
				(json_int_t)(slot % PCI_MAX_FUNCTIONS), "class_info", "class",
				(json_int_t)le16_get(pd->config + PCI_CLASS_PROG + 1), "id", "vendor",
				(json_int_t)le16_get(pd->config + PCI_VENDOR_ID), "device",
				(json_int_t)le16_get(pd->config + PCI_DEVICE_ID), "subsystem-vendor",
				(json_int_t)le16_get(pd->config + PCI_SUBSYS_VENDOR), "subsystem",
				(json_int_t)le16_get(pd->config + PCI_SUBSYS_ID), "qdev_id",
				pd->name ? pd->name : "", "regions", pci_regions(pd));
		if (pd->config[PCI_INTERRUPT_PIN]) {
			json_object_set_new(dev, "irq", json_integer(pd->config[PCI_INTERRUPT_LINE]));
			json_object_set_new(dev, "irq_pin", json_integer(pd->config[PCI_INTERRUPT_PIN]));
		}
		json_array_append_new(devices, dev);
	}
	pthread_mutex_unlock(&vm->pci.lock);
	return json_pack("[{s:i,s:o}]", "bus", 0, "devices", devices);
}

static json_t *stats(void *ctx, struct error *err)
{
	struct vm *vm = ctx;
	json_error_t e;
	char *text = NULL;
	size_t len = 0;
	json_t *v;
	FILE *f = open_memstream(&text, &len);

	if (!f || vm_stats_to(vm, f) < 0) {
		if (f)
			fclose(f);
		free(text);
		return error_set(err, "cannot gather the statistics"), NULL;
	}
	fclose(f);
	v = json_loadb(text, len, 0, &e);
	free(text);
	if (!v)
		error_set(err, "internal error: statistics are not JSON (%s)", e.text);
	return v;
}

/* 1 MiB chunks: 512 CRCs for a 512 MiB guest, enough to say where two
 * copies of RAM differ, few enough to print. */
#define DIGEST_CHUNK (1u << 20)

#define MSR_KVM_WALL_CLOCK 0x11
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define WALL_CLOCK_BYTES 12 /* struct pvclock_wall_clock */

/* Where in RAM (as an offset, or UINT64_MAX) the guest asked KVM to keep
 * its wall clock: KVM writes it there whenever that MSR is set, so also
 * when a migration's destination restores it. Two copies of a VM differ
 * there by design (each host's time of the restore). */
static uint64_t wall_clock_offset(struct vm *vm)
{
	static const uint32_t msrs[] = { MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_WALL_CLOCK };
	unsigned int i;
	uint64_t gpa;

	for (i = 0; i < 2; i++) {
		const uint8_t *p;

		if (kvm_vcpu_msr_get(vm->vcpus[0].fd, msrs[i], &gpa) < 0 || !gpa)
			continue;
		p = guest_mem_ptr(&vm->mem, gpa, WALL_CLOCK_BYTES);
		if (p)
			return (uint64_t)(p - vm->mem.host);
	}
	return UINT64_MAX;
}

/* CRC-32 of [at, at+n) of RAM, the wall clock counted as zeroes. */
static uint32_t digest_crc(struct vm *vm, uint64_t at, uint64_t n, uint64_t wall)
{
	static const uint8_t zeros[WALL_CLOCK_BYTES];
	uint32_t crc;

	if (wall == UINT64_MAX || wall + WALL_CLOCK_BYTES <= at || wall >= at + n)
		return state_crc32(vm->mem.host + at, (size_t)n);
	/* The struct within the chunk (a chunk is 4 KiB or more, the struct
	 * naturally aligned: it does not straddle two). */
	crc = state_crc32_more(0, vm->mem.host + at, (size_t)(wall - at));
	crc = state_crc32_more(crc, zeros, WALL_CLOCK_BYTES);
	return state_crc32_more(crc, vm->mem.host + wall + WALL_CLOCK_BYTES,
				(size_t)(at + n - wall - WALL_CLOCK_BYTES));
}

/* Offsets are into RAM as one block (the low part, then the part above
 * 4 GiB), as a migration numbers its pages. */
static json_t *ram_digest(void *ctx, uint64_t offset, uint64_t length, uint64_t chunk,
			  struct error *err)
{
	struct vm *vm = ctx;
	json_t *crcs, *zero;
	uint64_t at, end, wall;

	if (!vm->paused) {
		error_set(err, "the VM is running: stop it first (its RAM would change under the "
			       "digest)");
		return NULL;
	}
	if (offset >= vm->mem.size) {
		error_set(err, "offset %llu is past the %llu bytes of RAM", (unsigned long long)offset,
			  (unsigned long long)vm->mem.size);
		return NULL;
	}
	end = length > vm->mem.size - offset ? vm->mem.size : offset + length;
	wall = wall_clock_offset(vm);
	crcs = json_array();
	zero = json_array();
	for (at = offset; at < end; at += chunk) {
		uint64_t n = end - at < chunk ? end - at : chunk;

		json_array_append_new(crcs, json_integer(digest_crc(vm, at, n, wall)));
		json_array_append_new(zero, json_boolean(buffer_is_zero(vm->mem.host + at, (size_t)n)));
	}
	return json_pack("{s:I,s:I,s:o,s:o,s:o}", "offset", (json_int_t)offset, "chunk-size",
			 (json_int_t)chunk, "crc32", crcs, "zero", zero, "wall-clock",
			 wall == UINT64_MAX ? json_null() : json_integer((json_int_t)wall));
}

static json_t *migration_pages(void *ctx, uint64_t offset, uint64_t length, struct error *err)
{
	return migration_pages_json(ctx, offset, length, err);
}

static int pmemsave(void *ctx, uint64_t addr, uint64_t size, const char *path,
		    struct error *err)
{
	struct vm *vm = ctx;
	const void *p = guest_mem_ptr(&vm->mem, addr, size);
	int fd, r = 0;

	if (!p || !size)
		return error_set(err, "[0x%llx, +0x%llx) is not guest RAM", (unsigned long long)addr,
				 (unsigned long long)size);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set(err, "cannot create '%s': %s", path, strerror(errno));
	if (write_full(fd, p, (size_t)size) < 0)
		r = error_set(err, "cannot write '%s': %s", path, strerror(errno));
	close(fd);
	return r;
}

const struct qmp_ops *vm_qmp_ops(struct vm *vm)
{
	static struct qmp_ops ops = {
		.status = status,
		.stop = stop,
		.cont = cont,
		.powerdown = powerdown,
		.reset = reset,
		.migrate = migrate,
		.query_migrate = query_migrate,
		.migrate_cancel = migrate_cancel,
		.query_migrate_parameters = query_migrate_parameters,
		.query_migrate_capabilities = query_migrate_capabilities,
		.migrate_set_parameters = migrate_set_parameters,
		.migrate_set_capabilities = migrate_set_capabilities,
		.quit = quit,
		.query_cpus = query_cpus,
		.query_block = query_block,
		.query_pci = query_pci,
		.stats = stats,
		.ram_digest = ram_digest,
		.migration_pages = migration_pages,
		.pmemsave = pmemsave,
	};

	ops.ctx = vm;
	return &ops;
}

/* QEMU's SHUTDOWN reasons for how the VM ended. */
void vm_qmp_shutdown_event(struct vm *vm)
{
	static const struct {
		int reason;
		const char *name;
		int guest;
	} map[] = {
		{ VM_STOP_POWEROFF, "guest-shutdown", 1 }, { VM_STOP_RESET, "guest-reset", 1 },
		{ VM_STOP_SIGNAL, "host-signal", 0 },	   { VM_STOP_USER, "host-ui", 0 },
		{ VM_STOP_ERROR, "host-error", 0 },	   { VM_STOP_QMP_QUIT, "host-qmp-quit", 0 },
	};
	int r = vm_stop_reason(vm);
	unsigned int i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].reason == r)
			vm_qmp_event(vm, "SHUTDOWN",
				     json_pack("{s:b,s:s}", "guest", map[i].guest, "reason", map[i].name));
}
