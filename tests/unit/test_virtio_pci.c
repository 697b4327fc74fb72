/* virtio-pci on a real in-kernel IOAPIC (a KVM VM without vCPUs). INTx:
 * the line, read back from KVM (KVM_GET_IRQCHIP, the IOAPIC's IRR), is
 * high exactly while a device has an unacknowledged ISR bit, drops when
 * the driver reads the ISR, stays high while another device on the same
 * pin still has one, and is off while MSI-X or the command register's
 * Interrupt Disable says so. The devices are vireo's own (8 disks and an
 * rng, so the rng in slot 9 shares INTA's GSI with the disk in slot 1),
 * attached the way main.c does it. And notify_exits, which counts only
 * the notify region's MMIO writes. Skipped without a usable /dev/kvm. */
#include "cmocka_prelude.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/le.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "vmm/vm.h"

#define MMIO_START 0xc0000000ULL
#define MMIO_END 0xfec00000ULL
#define ISR_OFF 0x1000
#define NOTIFY_OFF 0x3000
#define CAP_MSIX 0x40
#define CAP_PCICFG 0x98
#define STATUS_OFF 0x14
#define INTX_DISABLE 0x0400
#define MSIX_ENABLE 0x8000
#define NDISKS VIREO_MAX_DISKS

static struct vm vm;
static struct vm_options opts;
static char paths[NDISKS][64];
static bool have_vm;

static int setup(void **state)
{
	unsigned int i;

	(void)state;
	memset(&vm, 0, sizeof(vm));
	memset(&opts, 0, sizeof(opts));
	vm_init(&vm, &opts);
	if (access("/dev/kvm", R_OK | W_OK) != 0 || kvm_open(&vm.kvm, "/dev/kvm") < 0 ||
	    kvm_create_vm(&vm.kvm) < 0)
		return 0; /* each test skips */
	assert_int_equal(guest_mem_map(&vm.mem, 16u << 20), 0);
	pci_host_init(&vm.pci, NULL, MMIO_START, MMIO_END);
	for (i = 0; i < NDISKS; i++) {
		char arg[96];
		int fd;

		snprintf(paths[i], sizeof(paths[i]), "/tmp/vireo-intx-%u-XXXXXX", i);
		fd = mkstemp(paths[i]);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 1 << 20), 0);
		close(fd);
		snprintf(arg, sizeof(arg), "path=%s", paths[i]);
		assert_int_equal(parse_disk_option(arg, &opts.disk[i]), 0);
	}
	opts.ndisks = NDISKS;
	opts.rng = true;
	/* As main.c does it: devices created from the options, then
	 * realized on the bus once the VM exists. */
	assert_int_equal(vm_create_virtio_devices(&vm, &opts, NULL), 0);
	assert_int_equal(devices_realize_all(&vm.devices, NULL), 0);
	have_vm = true;
	return 0;
}

static int teardown(void **state)
{
	unsigned int i;

	(void)state;
	if (have_vm) {
		devices_destroy_all(&vm.devices);
		guest_mem_unmap(&vm.mem);
		for (i = 0; i < NDISKS; i++)
			unlink(paths[i]);
	}
	if (vm.kvm.vm_fd >= 0)
		close(vm.kvm.vm_fd);
	if (vm.kvm.sys_fd >= 0)
		close(vm.kvm.sys_fd);
	have_vm = false;
	return 0;
}

static void need_vm(void)
{
	if (!have_vm) {
		print_message("skipping: virtio-pci INTx: no usable /dev/kvm with an in-kernel IOAPIC\n");
		skip();
	}
}

/* Device n in the list: 0-7 the disks (slots 1-8), 8 the rng (slot 9). */
static struct device *nth(unsigned int n)
{
	struct device *d = vm.devices.head;

	while (d && n--)
		d = d->next;
	assert_non_null(d);
	return d;
}

static struct virtio_device *dev(unsigned int n)
{
	return virtio_pci_vdev(nth(n));
}

static unsigned int slot_of(unsigned int n)
{
	return n + 1;
}

static uint64_t bar0(unsigned int n)
{
	uint64_t a = pci_bar_address(virtio_pci_device(nth(n)), 0);

	assert_true(a >= MMIO_START);
	return a - MMIO_START;
}

/* The IOAPIC pin's level as KVM sees it. */
static bool line_high(unsigned int gsi)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

	assert_int_equal(ioctl(vm.kvm.vm_fd, KVM_GET_IRQCHIP, &chip), 0);
	return chip.chip.ioapic.irr >> gsi & 1;
}

/* The device raises a configuration-change interrupt (ISR bit 1). */
static void raise_irq(unsigned int n)
{
	struct virtio_device *vdev = dev(n);

	pthread_mutex_lock(&vdev->lock);
	vdev->transport->notify_config(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

/* The driver's interrupt handler: a 1-byte read of the ISR. */
static uint8_t read_isr(unsigned int n)
{
	return (uint8_t)pci_mmio_ops.read(&vm.pci, bar0(n) + ISR_OFF, 1);
}

static void cfg_write(unsigned int n, unsigned int reg, unsigned int size, uint32_t v)
{
	pci_host_ops.write(&vm.pci, 0, 4, 0x80000000u | slot_of(n) << 11 | (reg & 0xfc));
	pci_host_ops.write(&vm.pci, 4 + (reg & 3), size, v);
}

static uint32_t cfg_read(unsigned int n, unsigned int reg, unsigned int size)
{
	pci_host_ops.write(&vm.pci, 0, 4, 0x80000000u | slot_of(n) << 11 | (reg & 0xfc));
	return (uint32_t)pci_host_ops.read(&vm.pci, 4 + (reg & 3), size);
}

static void test_gsis(void **state)
{
	(void)state;
	need_vm();
	/* What the DSDT's _PRT says, and what makes 0 and 8 share a pin. */
	assert_int_equal(cfg_read(0, PCI_INTERRUPT_LINE, 1), PCI_INTX_GSI(1));
	assert_int_equal(cfg_read(8, PCI_INTERRUPT_LINE, 1), PCI_INTX_GSI(9));
	assert_int_equal(PCI_INTX_GSI(1), PCI_INTX_GSI(9));
	assert_int_not_equal(PCI_INTX_GSI(1), PCI_INTX_GSI(2));
}

static void test_isr_read_lowers(void **state)
{
	unsigned int gsi = PCI_INTX_GSI(slot_of(1));

	(void)state;
	need_vm();
	assert_false(line_high(gsi));
	raise_irq(1);
	assert_true(line_high(gsi));
	raise_irq(1); /* still one pending condition */
	assert_true(line_high(gsi));
	assert_int_equal(read_isr(1), 2);
	assert_false(line_high(gsi));
	/* Nothing new: the next read is 0 and the line stays low. */
	assert_int_equal(read_isr(1), 0);
	assert_false(line_high(gsi));
	/* Raised again after the acknowledgement: high again. */
	raise_irq(1);
	assert_true(line_high(gsi));
	assert_int_equal(read_isr(1), 2);
	assert_false(line_high(gsi));
}

static void test_shared_pin(void **state)
{
	unsigned int gsi = PCI_INTX_GSI(1);

	(void)state;
	need_vm();
	raise_irq(0);
	raise_irq(8);
	assert_true(line_high(gsi));
	/* One handler acknowledges its device: the other still holds it. */
	assert_int_equal(read_isr(0), 2);
	assert_true(line_high(gsi));
	assert_int_equal(read_isr(8), 2);
	assert_false(line_high(gsi));
	/* The other order, and a re-raise in between. */
	raise_irq(8);
	raise_irq(0);
	assert_int_equal(read_isr(8), 2);
	assert_true(line_high(gsi));
	raise_irq(8);
	assert_int_equal(read_isr(0), 2);
	assert_true(line_high(gsi));
	assert_int_equal(read_isr(8), 2);
	assert_false(line_high(gsi));
	/* A device on another pin does not touch this one. */
	raise_irq(2);
	assert_false(line_high(gsi));
	assert_true(line_high(PCI_INTX_GSI(3)));
	assert_int_equal(read_isr(2), 2);
	assert_false(line_high(PCI_INTX_GSI(3)));
}

static void test_msix_and_intx_disable(void **state)
{
	unsigned int gsi = PCI_INTX_GSI(slot_of(3));
	uint16_t cmd;

	(void)state;
	need_vm();
	/* MSI-X on: INTx off, the pending ISR bit kept; off again: back. */
	raise_irq(3);
	assert_true(line_high(gsi));
	cfg_write(3, CAP_MSIX + 2, 2, MSIX_ENABLE);
	assert_false(line_high(gsi));
	cfg_write(3, CAP_MSIX + 2, 2, 0);
	assert_true(line_high(gsi));
	assert_int_equal(read_isr(3), 2);
	assert_false(line_high(gsi));

	/* Interrupt Disable: the condition is kept, the pin stays low. */
	cmd = (uint16_t)cfg_read(3, PCI_COMMAND, 2);
	cfg_write(3, PCI_COMMAND, 2, cmd | INTX_DISABLE);
	raise_irq(3);
	assert_false(line_high(gsi));
	cfg_write(3, PCI_COMMAND, 2, cmd);
	assert_true(line_high(gsi));
	cfg_write(3, PCI_COMMAND, 2, cmd | INTX_DISABLE);
	assert_false(line_high(gsi));
	cfg_write(3, PCI_COMMAND, 2, cmd);
	assert_int_equal(read_isr(3), 2);
	assert_false(line_high(gsi));
}

static void test_reset_lowers(void **state)
{
	unsigned int gsi = PCI_INTX_GSI(slot_of(4));

	(void)state;
	need_vm();
	raise_irq(4);
	assert_true(line_high(gsi));
	pci_mmio_ops.write(&vm.pci, bar0(4) + STATUS_OFF, 1, 0); /* device reset */
	assert_false(line_high(gsi));
	assert_int_equal(read_isr(4), 0);
}

#define MSIX_TABLE_OFF 0x4000

/* A system reset (device paused, reset, resumed, as vm_reset does it):
 * the VirtIO status cleared, the interrupt line low, and the PCI function
 * as firmware left it: BAR 0 back where it was assigned, MSI-X off, the
 * table entries cleared and masked. */
static void test_system_reset(void **state)
{
	struct device *d = nth(6);
	unsigned int gsi = PCI_INTX_GSI(slot_of(6));
	uint32_t bar_at_reset = cfg_read(6, PCI_BAR0, 4);
	uint64_t moved = 0xd0000000ULL;

	(void)state;
	need_vm();
	pci_mmio_ops.write(&vm.pci, bar0(6) + STATUS_OFF, 1, 1); /* ACKNOWLEDGE */
	raise_irq(6);
	assert_true(line_high(gsi));
	cfg_write(6, PCI_BAR0, 4, (uint32_t)moved);
	assert_int_equal(bar0(6), moved - MMIO_START);
	pci_mmio_ops.write(&vm.pci, bar0(6) + MSIX_TABLE_OFF, 4, 0xfee00000);
	pci_mmio_ops.write(&vm.pci, bar0(6) + MSIX_TABLE_OFF + 8, 4, 0x41);
	pci_mmio_ops.write(&vm.pci, bar0(6) + MSIX_TABLE_OFF + 12, 4, 0); /* unmasked */
	cfg_write(6, CAP_MSIX + 2, 2, MSIX_ENABLE);

	assert_int_equal(devices_pause_all(&vm.devices, NULL), 0);
	d->ops->reset(d);
	devices_resume_all(&vm.devices);

	assert_int_equal(cfg_read(6, PCI_BAR0, 4), bar_at_reset);
	assert_int_equal(cfg_read(6, CAP_MSIX + 2, 2) & MSIX_ENABLE, 0);
	assert_false(line_high(gsi));
	assert_int_equal(pci_mmio_ops.read(&vm.pci, bar0(6) + STATUS_OFF, 1), 0);
	assert_int_equal(pci_mmio_ops.read(&vm.pci, bar0(6) + MSIX_TABLE_OFF, 4), 0);
	assert_int_equal(pci_mmio_ops.read(&vm.pci, bar0(6) + MSIX_TABLE_OFF + 8, 4), 0);
	assert_int_equal(pci_mmio_ops.read(&vm.pci, bar0(6) + MSIX_TABLE_OFF + 12, 4), 1);
	/* And it works as before: an interrupt raises the line. */
	raise_irq(6);
	assert_true(line_high(gsi));
	assert_int_equal(read_isr(6), 2);
}

/* notify_exits counts guest MMIO writes to the notify region, not the
 * same write through the PCI_CFG window (a configuration cycle). */
static void test_notify_exits(void **state)
{
	struct virtio_device *vdev = dev(5);
	uint64_t before;

	(void)state;
	need_vm();
	before = __atomic_load_n(&vdev->notify_exits, __ATOMIC_RELAXED);
	pci_mmio_ops.write(&vm.pci, bar0(5) + NOTIFY_OFF, 2, 0);
	assert_int_equal(__atomic_load_n(&vdev->notify_exits, __ATOMIC_RELAXED), before + 1);
	pci_mmio_ops.write(&vm.pci, bar0(5) + ISR_OFF - 4, 4, 0); /* not the notify region */
	assert_int_equal(__atomic_load_n(&vdev->notify_exits, __ATOMIC_RELAXED), before + 1);
	cfg_write(5, CAP_PCICFG + 4, 1, 0);		/* BAR 0 */
	cfg_write(5, CAP_PCICFG + 8, 4, NOTIFY_OFF);	/* offset */
	cfg_write(5, CAP_PCICFG + 12, 4, 2);		/* length */
	cfg_write(5, CAP_PCICFG + 16, 2, 0);		/* pci_cfg_data */
	assert_int_equal(__atomic_load_n(&vdev->notify_exits, __ATOMIC_RELAXED), before + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gsis, setup, teardown),
		cmocka_unit_test_setup_teardown(test_isr_read_lowers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_and_intx_disable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_lowers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_exits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_system_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
