/* Device state across machines: a real machine's devices (the legacy PC
 * devices and virtio-pci disks on an in-kernel irqchip) are driven into a
 * state a guest would leave them in — a disk queue set up through BAR 0
 * with MSI-X on and a write completed, unread UART input, CMOS RAM, ACPI
 * registers — paused and saved; a second machine built from the same
 * options, with the first one's RAM, loads the record and must carry on:
 * the same record when saved again, the UART hands over the unread bytes,
 * and the disk takes the driver's next request on the same queue; a
 * whole machine state loaded leaves the devices paused until resumed. A
 * damaged, truncated or foreign record is refused and changes nothing.
 * Skipped without a usable /dev/kvm. */
#include "cmocka_prelude.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/le.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

#define MMIO_START 0xc0000000ULL
#define MMIO_END 0xfec00000ULL
#define RAM (16u << 20)
/* BAR 0 of virtio-pci (virtio_pci.c) and its common configuration. */
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_STATUS 0x14
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_DESCLO 0x20
#define CC_Q_AVAILLO 0x28
#define CC_Q_USEDLO 0x30
#define NOTIFY_OFF 0x3000
#define MSIX_TABLE_OFF 0x4000
#define CAP_MSIX 0x40
#define MSIX_ENABLE 0x8000
/* The driver's queue 0 in guest RAM, and its buffers. */
#define QSIZE 16
#define DESC 0x100000u
#define AVAIL 0x101000u
#define USED 0x102000u
#define HDR 0x110000u
#define DATA 0x111000u
#define STATUS 0x112000u

struct machine {
	struct vm vm;
	struct vm_options opts;
	bool up;
};

static struct machine a, b;
static char disk_path[64], copy_path[80];

/* The second machine has its own copy of the disk: the first one holds
 * its image's lock. */
static void copy_disk(void)
{
	char cmd[200];

	snprintf(copy_path, sizeof(copy_path), "%s.copy", disk_path);
	snprintf(cmd, sizeof(cmd), "cp %s %s", disk_path, copy_path);
	assert_int_equal(system(cmd), 0);
}

/* A machine with a disk on path (none when NULL), an rng when rng, and
 * a NIC as --net net (none when NULL). -1 without a usable /dev/kvm, or
 * when the NIC's backend cannot be opened (it logged why). */
static int build_with(struct machine *m, bool rng, const char *path, const char *net)
{
	char arg[96];

	memset(m, 0, sizeof(*m));
	vm_init(&m->vm, &m->opts);
	if (kvm_open(&m->vm.kvm, "/dev/kvm") < 0 || kvm_create_vm(&m->vm.kvm) < 0)
		return -1;
	assert_int_equal(guest_mem_map(&m->vm.mem, RAM), 0);
	pci_host_init(&m->vm.pci, NULL, MMIO_START, MMIO_END);
	if (path) {
		snprintf(arg, sizeof(arg), "path=%s", path);
		assert_int_equal(parse_disk_option(arg, &m->opts.disk[0]), 0);
		m->opts.ndisks = 1;
	}
	if (net) {
		assert_int_equal(parse_net_option(net, 0, &m->opts.net[0]), 0);
		m->opts.nnets = 1;
	}
	m->opts.rng = rng;
	assert_int_equal(vm_create_legacy_devices(&m->vm, NULL), 0);
	m->up = true; /* unbuild() takes what was made */
	if (vm_create_virtio_devices(&m->vm, &m->opts, NULL) < 0)
		return -1;
	assert_int_equal(devices_realize_all(&m->vm.devices, NULL), 0);
	return 0;
}

static int build(struct machine *m, bool rng, const char *path)
{
	return build_with(m, rng, path, NULL);
}

static void unbuild(struct machine *m)
{
	if (m->up) {
		devices_destroy_all(&m->vm.devices);
		bus_destroy(&m->vm.pio);
		bus_destroy(&m->vm.mmio);
		guest_mem_unmap(&m->vm.mem);
	}
	/* Once only: the numbers may be another machine's fds by the next call. */
	if (m->vm.kvm.vm_fd >= 0)
		close(m->vm.kvm.vm_fd);
	if (m->vm.kvm.sys_fd >= 0)
		close(m->vm.kvm.sys_fd);
	m->vm.kvm.vm_fd = m->vm.kvm.sys_fd = -1;
	m->up = false;
}

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(disk_path, sizeof(disk_path), "/tmp/vireo-state-XXXXXX");
	fd = mkstemp(disk_path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	if (access("/dev/kvm", R_OK | W_OK) != 0 || build(&a, true, disk_path) < 0)
		unbuild(&a); /* each test skips */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unbuild(&a);
	unbuild(&b);
	if (disk_path[0])
		unlink(disk_path);
	disk_path[0] = '\0';
	if (copy_path[0])
		unlink(copy_path);
	copy_path[0] = '\0';
	return 0;
}

static void need_vm(void)
{
	if (!a.up) {
		print_message("skipping: device state: no usable /dev/kvm with an in-kernel irqchip\n");
		skip();
	}
}

/* The first virtio device: the disk. */
static struct device *disk_dev(struct machine *m)
{
	struct device *d;

	for (d = m->vm.devices.head; d; d = d->next)
		if (virtio_pci_vdev(d))
			return d;
	fail();
	return NULL;
}

static uint64_t bar0(struct machine *m)
{
	return pci_bar_address(virtio_pci_device(disk_dev(m)), 0) - MMIO_START;
}

static void bar_write(struct machine *m, uint64_t off, unsigned int size, uint64_t v)
{
	pci_mmio_ops.write(&m->vm.pci, bar0(m) + off, size, v);
}

static uint64_t bar_read(struct machine *m, uint64_t off, unsigned int size)
{
	return pci_mmio_ops.read(&m->vm.pci, bar0(m) + off, size);
}

static uint8_t port_read(struct machine *m, uint16_t port)
{
	uint8_t v = 0;

	bus_access(&m->vm.pio, port, 1, 0, &v);
	return v;
}

static void port_write(struct machine *m, uint16_t port, uint8_t v)
{
	bus_access(&m->vm.pio, port, 1, 1, &v);
}

static uint8_t *ram(struct machine *m, uint64_t gpa, size_t len)
{
	uint8_t *p = guest_mem_ptr(&m->vm.mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* What a virtio-blk driver does: features, queue 0 at DESC/AVAIL/USED on
 * MSI-X vector 1, DRIVER_OK, MSI-X enabled. */
static void driver_init(struct machine *m)
{
	struct virtio_device *vdev = virtio_pci_vdev(disk_dev(m));

	bar_write(m, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	bar_write(m, CC_GFSELECT, 4, 1);
	bar_write(m, CC_GF, 4, 1); /* VERSION_1 */
	bar_write(m, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK);
	bar_write(m, CC_Q_SELECT, 2, 0);
	bar_write(m, CC_Q_SIZE, 2, QSIZE);
	bar_write(m, CC_Q_MSIX, 2, 1);
	bar_write(m, CC_Q_DESCLO, 4, DESC);
	bar_write(m, CC_Q_AVAILLO, 4, AVAIL);
	bar_write(m, CC_Q_USEDLO, 4, USED);
	bar_write(m, CC_Q_ENABLE, 2, 1);
	bar_write(m, MSIX_TABLE_OFF + 16, 4, 0xfee00000); /* vector 1 */
	bar_write(m, MSIX_TABLE_OFF + 16 + 8, 4, 0x41);
	bar_write(m, MSIX_TABLE_OFF + 16 + 12, 4, 0);
	pci_host_ops.write(&m->vm.pci, 0, 4,
			   0x80000000u | 1u << 11 | CAP_MSIX); /* slot 1, dword at 0x40 */
	pci_host_ops.write(&m->vm.pci, 4 + 2, 2, MSIX_ENABLE);
	bar_write(m, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vdev->status & VIRTIO_STATUS_DRIVER_OK);
}

static void put_desc(struct machine *m, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = ram(m, DESC + 16u * i, 16);

	le64_put(d, addr);
	le32_put(d + 8, len);
	le16_put(d + 12, flags);
	le16_put(d + 14, next);
}

/* One request (type 1 = write, 0 = read) of sector 3 through avail
 * entry n, in descriptors 3n..3n+2 (so a device that took an old entry
 * again would show), and its notification. */
static void queue_request(struct machine *m, uint32_t type, uint16_t n)
{
	uint8_t *hdr = ram(m, HDR, 16);
	uint8_t *avail = ram(m, AVAIL, 4 + 2 * QSIZE);
	uint16_t head = (uint16_t)(3 * n);

	le32_put(hdr, type);
	le32_put(hdr + 4, 0);
	le64_put(hdr + 8, 3);
	put_desc(m, head, HDR, 16, 1, head + 1);
	put_desc(m, head + 1u, DATA, 512, 1 | (type == 0 ? 2 : 0), head + 2);
	put_desc(m, head + 2u, STATUS, 1, 2, 0);
	*ram(m, STATUS, 1) = 0xff;
	le16_put(avail + 4 + 2 * (n % QSIZE), head);
	__atomic_store_n((uint16_t *)(avail + 2), (uint16_t)(n + 1), __ATOMIC_RELEASE);
	bar_write(m, NOTIFY_OFF, 2, 0);
}

static uint16_t used_idx(struct machine *m)
{
	return __atomic_load_n((uint16_t *)ram(m, USED + 2, 2), __ATOMIC_ACQUIRE);
}

/* Waits for used entry n and checks it names the request of avail
 * entry n, done. */
static void wait_request(struct machine *m, uint16_t n)
{
	uint8_t *used = ram(m, USED, 4 + 8 * QSIZE);
	unsigned int tries;

	for (tries = 0; tries < 5000; tries++) {
		if (used_idx(m) == (uint16_t)(n + 1))
			break;
		usleep(1000);
	}
	usleep(10000); /* time for a wrong extra entry to show */
	assert_int_equal(used_idx(m), (uint16_t)(n + 1));
	assert_int_equal(le32_get(used + 4 + 8 * (n % QSIZE)), 3 * n);
	assert_int_equal(*ram(m, STATUS, 1), 0);
}

static void request(struct machine *m, uint32_t type, uint16_t n)
{
	queue_request(m, type, n);
	wait_request(m, n);
}

/* a into a state a running guest leaves behind, paused, saved. */
static void drive_and_save(struct state_writer *w)
{
	memset(ram(&a, DATA, 512), 0x5a, 512);
	driver_init(&a);
	request(&a, 1, 0);
	assert_int_equal(a.vm.console_receive(a.vm.console_ctx, (const uint8_t *)"hello", 5), 5);
	port_write(&a, COM1_PORT + 7, 0x42);	 /* UART scratch */
	port_write(&a, RTC_PORT, 0x30);		 /* CMOS RAM byte 0x30 */
	port_write(&a, RTC_PORT + 1, 0x99);
	port_write(&a, ACPI_PM_PORT + 2, 0x00); /* PM1_EN low byte */
	port_write(&a, ACPI_PM_PORT + 3, 0x01); /* PWRBTN_EN */
	assert_int_equal(devices_pause_all(&a.vm.devices, NULL), 0);
	state_writer_init(w);
	assert_int_equal(devices_save_all(&a.vm.devices, w, NULL), 0);
	assert_false(w->failed);
}

/* b from the same options, a's RAM in it, paused: ready to load. */
static void prepare_b(bool rng)
{
	copy_disk();
	assert_int_equal(build(&b, rng, copy_path), 0);
	memcpy(b.vm.mem.host, a.vm.mem.host, RAM);
	assert_int_equal(devices_pause_all(&b.vm.devices, NULL), 0);
}

static void test_round_trip(void **state)
{
	struct state_writer w, again;
	struct state_reader r;
	struct error err = { 0 };
	unsigned int i;

	(void)state;
	need_vm();
	drive_and_save(&w);
	prepare_b(true);
	state_reader_init(&r, w.buf, w.len);
	if (devices_load_all(&b.vm.devices, &r, &err) < 0)
		fail_msg("load: %s", err.msg);
	/* Saving the loaded machine gives the same record, byte for byte,
	 * but for the PM timer, which ran on between the two saves. */
	state_writer_init(&again);
	assert_int_equal(devices_save_all(&b.vm.devices, &again, NULL), 0);
	assert_int_equal(again.len, w.len);
	{
		struct device *da = disk_dev(&a), *db = disk_dev(&b);
		struct state_writer ra, rb;

		state_writer_init(&ra);
		state_writer_init(&rb);
		da->ops->save(da, &ra);
		db->ops->save(db, &rb);
		assert_int_equal(ra.len, rb.len);
		assert_memory_equal(ra.buf, rb.buf, ra.len);
		state_writer_free(&ra);
		state_writer_free(&rb);
	}
	devices_resume_all(&b.vm.devices);

	/* The UART hands over what the guest had not read, and its scratch. */
	for (i = 0; i < 5; i++)
		assert_int_equal(port_read(&b, COM1_PORT), "hello"[i]);
	assert_int_equal(port_read(&b, COM1_PORT + 7), 0x42);
	port_write(&b, RTC_PORT, 0x30);
	assert_int_equal(port_read(&b, RTC_PORT + 1), 0x99);
	assert_int_equal(port_read(&b, ACPI_PM_PORT + 3), 0x01);
	/* The disk: the same queue, the driver's next request (a read of
	 * what the first machine wrote) is taken at avail entry 1. */
	assert_int_equal(bar_read(&b, CC_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	memset(ram(&b, DATA, 512), 0, 512);
	request(&b, 0, 1);
	for (i = 0; i < 512; i++)
		assert_int_equal(ram(&b, DATA, 512)[i], 0x5a);
	state_writer_free(&w);
	state_writer_free(&again);
}

/* A whole machine state (vm_state_build, as a snapshot or a migration
 * takes it) with a request the guest queued and notified after the
 * devices paused, as a vCPU stopped just after its kick leaves one. The
 * machine that loads it (vm_state_apply) must not take the request
 * until it runs: with -S a device that ran on would write guest RAM
 * while the VM waits for cont (CI once saw a live migration's
 * destination differ from its source by just such a read, data page
 * and used ring). Resumed, it takes it, once. */
static void test_loaded_machine_waits_to_run(void **state)
{
	struct vm_state_section sec[SNAPSHOT_MAX_SECTIONS];
	struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];
	struct error err = { 0 };
	unsigned int n = 0, i;

	(void)state;
	need_vm();
	memset(sec, 0, sizeof(sec));
	memset(ram(&a, DATA, 512), 0x5a, 512);
	driver_init(&a);
	request(&a, 1, 0);
	assert_int_equal(devices_pause_all(&a.vm.devices, NULL), 0);
	memset(ram(&a, DATA, 512), 0, 512);
	queue_request(&a, 0, 1);
	usleep(20000);
	assert_int_equal(used_idx(&a), 1); /* paused: not taken */
	if (vm_state_build(&a.vm, sec, &n, &err) < 0)
		fail_msg("build: %s", err.msg);
	for (i = 0; i < n; i++)
		l[i] = (struct vm_state_loaded){ .kind = sec[i].kind, .index = sec[i].index,
						 .buf = sec[i].w.buf, .len = sec[i].w.len };
	prepare_b(true);
	if (vm_state_check(&b.vm, l, n, &err) < 0 || vm_state_apply(&b.vm, l, n, &err) < 0)
		fail_msg("apply: %s", err.msg);
	usleep(50000);
	assert_int_equal(used_idx(&b), 1);
	assert_memory_equal(b.vm.mem.host, a.vm.mem.host, RAM);
	devices_resume_all(&b.vm.devices);
	wait_request(&b, 1);
	for (i = 0; i < 512; i++)
		assert_int_equal(ram(&b, DATA, 512)[i], 0x5a);
	vm_state_free(sec);
}

/* Every shortened record, and every record with one byte flipped, is
 * refused with a message; the full one loads after all of them. */
static void test_damaged_refused(void **state)
{
	struct state_writer w;
	struct state_reader r;
	size_t n;

	(void)state;
	need_vm();
	drive_and_save(&w);
	prepare_b(true);
	for (n = 0; n < w.len; n += 1 + n / 64) {
		struct error err = { 0 };

		state_reader_init(&r, w.buf, n);
		assert_int_equal(devices_load_all(&b.vm.devices, &r, &err), -1);
		assert_true(err.set);
	}
	for (n = 0; n < w.len; n += 1 + n / 16) {
		struct error err = { 0 };

		w.buf[n] ^= 0x20;
		state_reader_init(&r, w.buf, w.len);
		assert_int_equal(devices_load_all(&b.vm.devices, &r, &err), -1);
		assert_true(err.set);
		w.buf[n] ^= 0x20;
	}
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(devices_load_all(&b.vm.devices, &r, NULL), 0);
	state_writer_free(&w);
}

/* A machine with another set of devices (no rng) refuses the record. */
static void test_other_machine_refused(void **state)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };

	(void)state;
	need_vm();
	drive_and_save(&w);
	prepare_b(false);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(devices_load_all(&b.vm.devices, &r, &err), -1);
	assert_non_null(strstr(err.msg, "same device options"));
	state_writer_free(&w);
}

/* A queue whose rings the record puts outside guest RAM: refused by the
 * device itself (the checksum is right), nothing mapped. */
static void test_ring_outside_ram_refused(void **state)
{
	struct state_writer w, rec;
	struct state_reader r;
	struct error err = { 0 };
	struct device *d;

	(void)state;
	need_vm();
	drive_and_save(&w);
	prepare_b(true);
	d = disk_dev(&a);
	state_writer_init(&rec);
	d->ops->save(d, &rec);
	/* device id, config space, selects and features, vectors, status,
	 * queue count, then queue 0: vector, size, desc address. */
	{
		size_t at = 2 + 256 + 4 + 4 + 8 + 2 + 2 + 1 + 8 + 4 + 16 * 2 + 1 + 8 + 1 + 4 + 2 + 2;

		assert_int_equal(le64_get(rec.buf + at), DESC);
		le64_put(rec.buf + at, (uint64_t)RAM - 16);
	}
	state_reader_init(&r, rec.buf, rec.len);
	assert_int_equal(disk_dev(&b)->ops->load(disk_dev(&b), &r, &err), -1);
	assert_non_null(strstr(err.msg, "ring address"));
	assert_int_equal(bar_read(&b, CC_STATUS, 1), 0);
	state_writer_free(&rec);
	state_writer_free(&w);
}

/* ---- virtio-net: its backend's state in the record ---- */

/* Nothing built: each test builds its own machines. */
static int setup_bare(void **state)
{
	(void)state;
	disk_path[0] = copy_path[0] = '\0';
	a.up = b.up = false;
	a.vm.kvm.vm_fd = a.vm.kvm.sys_fd = b.vm.kvm.vm_fd = b.vm.kvm.sys_fd = -1;
	return 0;
}

static struct device *net_dev(struct machine *m)
{
	struct device *d;

	for (d = m->vm.devices.head; d; d = d->next)
		if (virtio_pci_vdev(d) && virtio_pci_vdev(d)->device_id == VIRTIO_ID_NET)
			return d;
	fail();
	return NULL;
}

static void net_bar_write(struct machine *m, uint64_t off, unsigned int size, uint64_t v)
{
	uint64_t base = pci_bar_address(virtio_pci_device(net_dev(m)), 0) - MMIO_START;

	pci_mmio_ops.write(&m->vm.pci, base + off, size, v);
}

/* A driver accepts features (the low word; VERSION_1 too): FEATURES_OK. */
static void net_negotiate(struct machine *m, uint32_t features)
{
	net_bar_write(m, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	net_bar_write(m, CC_GFSELECT, 4, 0);
	net_bar_write(m, CC_GF, 4, features);
	net_bar_write(m, CC_GFSELECT, 4, 1);
	net_bar_write(m, CC_GF, 4, 1);
	net_bar_write(m, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					   VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(virtio_pci_vdev(net_dev(m))->guest_features,
			 (uint64_t)features | 1ULL << VIRTIO_F_VERSION_1);
}

/* m (built), paused, saved whole. */
static void save_machine(struct machine *m, struct state_writer *w)
{
	assert_int_equal(devices_pause_all(&m->vm.devices, NULL), 0);
	state_writer_init(w);
	assert_int_equal(devices_save_all(&m->vm.devices, w, NULL), 0);
	assert_false(w->failed);
}

/* Loading w into m (built, paused) is refused with a message that says
 * want, and nothing about features. */
static void expect_load_refused(struct machine *m, const struct state_writer *w,
				const char *want)
{
	struct state_reader r;
	struct error err = { 0 };

	assert_int_equal(devices_pause_all(&m->vm.devices, NULL), 0);
	state_reader_init(&r, w->buf, w->len);
	assert_int_equal(devices_load_all(&m->vm.devices, &r, &err), -1);
	if (!strstr(err.msg, want))
		fail_msg("refused with '%s', which does not say '%s'", err.msg, want);
	assert_null(strstr(err.msg, "feature"));
}

#define NET_F_CSUM (1u << 0)
#define NET_F_MAC (1u << 5)

/* The saved VM on --net user, this one on a tap, and the other way: a
 * clear refusal naming both, also where the guest took checksum offload
 * from the tap (which user networking never offers, so virtio-pci would
 * otherwise refuse its features first). */
static void test_net_backend_kind_refused(void **state)
{
	struct state_writer w;
	char tap[32];

	(void)state;
	snprintf(tap, sizeof(tap), "tap=vireos%u", (unsigned int)getpid() % 1000000);
	if (build_with(&a, false, NULL, tap) < 0) {
		print_message("skipping: no usable /dev/kvm, or cannot create a tap here\n");
		skip();
	}
	net_negotiate(&a, NET_F_CSUM | NET_F_MAC);
	save_machine(&a, &w);
	unbuild(&a);
	assert_int_equal(build_with(&b, false, NULL, "user"), 0);
	expect_load_refused(&b, &w, "virtio-net0: the saved VM's network is --net tap, this one's "
			    "--net user: start it with the same --net options");
	unbuild(&b);
	state_writer_free(&w);

	assert_int_equal(build_with(&a, false, NULL, "user"), 0);
	net_negotiate(&a, NET_F_MAC);
	save_machine(&a, &w);
	assert_int_equal(build_with(&b, false, NULL, tap), 0);
	expect_load_refused(&b, &w, "virtio-net0: the saved VM's network is --net user, this one's "
			    "--net tap: start it with the same --net options");
	state_writer_free(&w);
}

/* Where device name's record version lies in a devices_save_all record
 * (a count, then name, type, version, length, record, CRC per device). */
static size_t version_at(const struct state_writer *w, const char *name)
{
	struct state_reader r;
	uint32_t n, i;

	state_reader_init(&r, w->buf, w->len);
	n = state_get_u32(&r);
	for (i = 0; i < n; i++) {
		char dev[256], type[256];
		size_t at;

		state_get_str(&r, dev, sizeof(dev));
		state_get_str(&r, type, sizeof(type));
		at = r.off;
		state_get_u32(&r);
		state_get_span(&r, (size_t)state_get_u64(&r));
		state_get_u32(&r);
		assert_false(r.short_read);
		if (!strcmp(dev, name))
			return at;
	}
	fail_msg("no device %s in the record", name);
	return 0;
}

/* virtio-net's record changed (the backend's state came in, then the
 * coalescing parameters): its version is 3, the other VirtIO devices'
 * still 1, and a record of version 2 (a snapshot an older Vireo took) is
 * refused with one line saying so. */
static void test_net_old_record_refused(void **state)
{
	struct state_writer w;
	size_t at;

	(void)state;
	if (build_with(&a, true, NULL, "user") < 0) {
		print_message("skipping: no usable /dev/kvm with an in-kernel irqchip\n");
		skip();
	}
	assert_int_equal(net_dev(&a)->state_version, 3);
	assert_int_equal(device_find(&a.vm.devices, "virtio-rng")->state_version, 1);
	save_machine(&a, &w);
	at = version_at(&w, "virtio-net0");
	assert_int_equal(le32_get(w.buf + at), 3);
	le32_put(w.buf + at, 2);
	assert_int_equal(build_with(&b, true, NULL, "user"), 0);
	expect_load_refused(&b, &w, "virtio-net0: the saved state is version 2, this Vireo reads "
			    "version 3");
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loaded_machine_waits_to_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_machine_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_outside_ram_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_backend_kind_refused, setup_bare, teardown),
		cmocka_unit_test_setup_teardown(test_net_old_record_refused, setup_bare, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
