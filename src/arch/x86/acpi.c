#include "arch/x86/acpi.h"

#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "util/le.h"

#define ACPI_HEADER_LEN 36
#define FADT_LEN 276
#define FACS_LEN 64

/* FADT fields used here, by their offsets (ACPI 6.5, table 5.9). */
enum fadt_field {
	FADT_SCI_INT = 46,
	FADT_PM1A_EVT_BLK = 56,
	FADT_PM1A_CNT_BLK = 64,
	FADT_PM_TMR_BLK = 76,
	FADT_PM1_EVT_LEN = 88,
	FADT_PM1_CNT_LEN = 89,
	FADT_PM_TMR_LEN = 91,
	FADT_P_LVL2_LAT = 96,
	FADT_P_LVL3_LAT = 98,
	FADT_CENTURY = 108,
	FADT_IAPC_BOOT_ARCH = 109,
	FADT_FLAGS = 112,
	FADT_RESET_REG = 116,
	FADT_RESET_VALUE = 128,
	FADT_MINOR_VERSION = 131,
	FADT_X_FIRMWARE_CTRL = 132,
	FADT_X_DSDT = 140,
	FADT_X_PM1A_EVT_BLK = 148,
	FADT_X_PM1A_CNT_BLK = 172,
	FADT_X_PM_TMR_BLK = 208,
	FADT_HYPERVISOR_VENDOR_ID = 268,
};

/* FADT flags and IA-PC boot architecture flags (ACPI 6.5, 5.2.9). */
#define FADT_F_WBINVD (1u << 0)
#define FADT_F_PROC_C1 (1u << 2)
#define FADT_F_SLP_BUTTON (1u << 5) /* no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define IAPC_VGA_NOT_PRESENT (1u << 2)

#define GAS_SYSTEM_IO 1

/* MADT entry types. */
#define MADT_LOCAL_APIC 0
#define MADT_IO_APIC 1
#define MADT_INT_OVERRIDE 2
#define MADT_LOCAL_APIC_NMI 4

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *b++);
	return sum;
}

struct builder {
	struct acpi_tables *t;
	int overflow;
};

/* Reserves len bytes aligned to align; returns the offset in t->buf. */
static size_t reserve(struct builder *b, size_t len, size_t align)
{
	size_t off = (b->t->len + align - 1) & ~(align - 1);

	if (off + len > sizeof(b->t->buf)) {
		b->overflow = 1;
		return 0;
	}
	memset(b->t->buf + off, 0, len);
	b->t->len = off + len;
	return off;
}

static uint64_t gpa(const struct builder *b, size_t off)
{
	return b->t->base + off;
}

static void header(uint8_t *p, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(p, sig, 4);
	le32_put(p + 4, len);
	p[8] = rev;
	memcpy(p + 10, "VIREO ", 6);
	memcpy(p + 16, "VIREOVM ", 8);
	le32_put(p + 24, 1);	  /* OEM revision */
	memcpy(p + 28, "VIRO", 4); /* creator id */
	le32_put(p + 32, 1);	  /* creator revision */
}

static void finish(uint8_t *p, uint32_t len)
{
	p[9] = 0;
	p[9] = (uint8_t)(0x100 - acpi_checksum(p, len));
}

static void gas_io(uint8_t *p, uint16_t port, uint8_t bits, uint8_t access)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = bits;
	p[2] = 0;
	p[3] = access;
	le64_put(p + 4, port);
}

/* _CRS of the PCI root bridge: bus 0, the config ports, all other I/O
 * ports and the 32-bit MMIO hole below the IOAPIC. */
static void pci_crs(struct aml_buf *r)
{
	static const uint8_t bus[] = {
		0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, /* WordBusNumber, fixed */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* gran, min 0, max 0 */
		0x00, 0x00, 0x01, 0x00,		    /* translation, length 1 */
	};
	static const uint8_t cfg_io[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	static const uint8_t io_low[] = {
		0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00,
		0x00, 0x00, 0xf7, 0x0c, 0x00, 0x00, 0xf8, 0x0c,
	};
	static const uint8_t io_high[] = {
		0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00,
		0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3,
	};
	uint8_t mem[26] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01 };
	static const uint8_t end_tag[] = { 0x79, 0x00 };

	le32_put(mem + 10, (uint32_t)PCI_MMIO32_START);
	le32_put(mem + 14, (uint32_t)(PCI_MMIO32_END - 1));
	le32_put(mem + 22, (uint32_t)(PCI_MMIO32_END - PCI_MMIO32_START));
	aml_bytes(r, bus, sizeof(bus));
	aml_bytes(r, cfg_io, sizeof(cfg_io));
	aml_bytes(r, io_low, sizeof(io_low));
	aml_bytes(r, io_high, sizeof(io_high));
	aml_bytes(r, mem, sizeof(mem));
	aml_bytes(r, end_tag, sizeof(end_tag));
}

/* _PRT: INTA# of slot s goes straight to GSI PCI_INTX_GSI(s) (no link
 * devices), level-triggered, active low. Without it Linux cannot route
 * INTx at all, and a driver that does not use MSI-X gets no interrupt. */
static void pci_prt(struct aml_buf *out)
{
	struct aml_buf entries, entry, pkg;
	unsigned int slot;

	aml_init(&entries);
	for (slot = 1; slot < 32; slot++) {
		aml_init(&entry);
		aml_integer(&entry, (uint64_t)slot << 16 | 0xffff); /* any function */
		aml_integer(&entry, 0);				  /* INTA# */
		aml_integer(&entry, 0);				  /* no link device */
		aml_integer(&entry, PCI_INTX_GSI(slot));
		aml_package(&entries, 4, &entry);
	}
	aml_init(&pkg);
	aml_package(&pkg, 31, &entries);
	aml_name(out, "_PRT", &pkg);
}

static void dsdt_body(struct aml_buf *out)
{
	struct aml_buf s5, pci, crs, crs_buf, sb;

	/* \_S5: SLP_TYP for soft-off, written to PM1_CNT by the guest. */
	aml_init(&s5);
	aml_integer(&s5, ACPI_S5_SLP_TYP);
	aml_integer(&s5, 0);
	aml_integer(&s5, 0);
	aml_integer(&s5, 0);
	aml_init(&crs_buf);
	aml_package(&crs_buf, 4, &s5);
	aml_name(out, "\\_S5_", &crs_buf);

	aml_init(&crs);
	pci_crs(&crs);
	aml_init(&crs_buf);
	aml_buffer(&crs_buf, &crs);

	aml_init(&pci);
	aml_name_eisaid(&pci, "_HID", "PNP0A03");
	aml_name_integer(&pci, "_UID", 0);
	aml_name_integer(&pci, "_SEG", 0);
	aml_name_integer(&pci, "_BBN", 0);
	aml_name(&pci, "_CRS", &crs_buf);
	pci_prt(&pci);

	aml_init(&sb);
	aml_device(&sb, "PCI0", &pci);
	aml_scope(out, "\\_SB_", &sb);
}

static size_t build_dsdt(struct builder *b)
{
	struct aml_buf body;
	size_t off;
	uint32_t len;

	aml_init(&body);
	dsdt_body(&body);
	if (body.overflow) {
		b->overflow = 1;
		return 0;
	}
	len = (uint32_t)(ACPI_HEADER_LEN + body.len);
	off = reserve(b, len, 16);
	if (b->overflow)
		return 0;
	header(b->t->buf + off, "DSDT", len, 2);
	memcpy(b->t->buf + off + ACPI_HEADER_LEN, body.data, body.len);
	finish(b->t->buf + off, len);
	return off;
}

static size_t build_facs(struct builder *b)
{
	size_t off = reserve(b, FACS_LEN, 64); /* must be 64-byte aligned */

	if (b->overflow)
		return 0;
	memcpy(b->t->buf + off, "FACS", 4);
	le32_put(b->t->buf + off + 4, FACS_LEN);
	b->t->buf[off + 32] = 2; /* version */
	return off;
}

static size_t build_fadt(struct builder *b, size_t facs, size_t dsdt)
{
	size_t off = reserve(b, FADT_LEN, 16);
	uint8_t *f;

	if (b->overflow)
		return 0;
	f = b->t->buf + off;
	header(f, "FACP", FADT_LEN, 6);
	le16_put(f + FADT_SCI_INT, ACPI_SCI_IRQ);
	/* SMI_CMD = 0: the machine is always in ACPI mode. */
	le32_put(f + FADT_PM1A_EVT_BLK, ACPI_PM_PORT);
	le32_put(f + FADT_PM1A_CNT_BLK, ACPI_PM_PORT + ACPI_PM1_CNT_OFFSET);
	le32_put(f + FADT_PM_TMR_BLK, ACPI_PM_PORT + ACPI_PM_TMR_OFFSET);
	f[FADT_PM1_EVT_LEN] = ACPI_PM1_EVT_LEN;
	f[FADT_PM1_CNT_LEN] = ACPI_PM1_CNT_LEN;
	f[FADT_PM_TMR_LEN] = ACPI_PM_TMR_LEN;
	le16_put(f + FADT_P_LVL2_LAT, 101);  /* > 100: no C2 */
	le16_put(f + FADT_P_LVL3_LAT, 1001); /* > 1000: no C3 */
	f[FADT_CENTURY] = 0x32;		     /* the CMOS century register */
	/* No 8042 flag: Linux then does not probe for a PS/2 keyboard, which
	 * would only cost boot time; the i8042 is still there for reset. */
	le16_put(f + FADT_IAPC_BOOT_ARCH, IAPC_VGA_NOT_PRESENT);
	/* A fixed-feature power button (PM1 PWRBTN_STS/EN, on the SCI): what
	 * system_powerdown presses. No sleep button. */
	le32_put(f + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON |
					 FADT_F_RESET_REG_SUP);
	gas_io(f + FADT_RESET_REG, PCI_RESET_PORT, 8, 1);
	f[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
	f[FADT_MINOR_VERSION] = 5; /* ACPI 6.5 */
	le64_put(f + FADT_X_FIRMWARE_CTRL, gpa(b, facs));
	le64_put(f + FADT_X_DSDT, gpa(b, dsdt));
	gas_io(f + FADT_X_PM1A_EVT_BLK, ACPI_PM_PORT, 8 * ACPI_PM1_EVT_LEN, 0);
	gas_io(f + FADT_X_PM1A_CNT_BLK, ACPI_PM_PORT + ACPI_PM1_CNT_OFFSET, 8 * ACPI_PM1_CNT_LEN,
	       0);
	gas_io(f + FADT_X_PM_TMR_BLK, ACPI_PM_PORT + ACPI_PM_TMR_OFFSET, 8 * ACPI_PM_TMR_LEN, 3);
	memcpy(f + FADT_HYPERVISOR_VENDOR_ID, "VIREO\0\0\0", 8);
	finish(f, FADT_LEN);
	return off;
}

static size_t build_madt(struct builder *b, unsigned int ncpus)
{
	uint32_t len = ACPI_HEADER_LEN + 8 + 8 * ncpus + 12 + 10 + 6;
	size_t off = reserve(b, len, 16);
	uint8_t *m, *e;
	unsigned int i;

	if (b->overflow)
		return 0;
	m = b->t->buf + off;
	header(m, "APIC", len, 3);
	le32_put(m + 36, (uint32_t)LAPIC_ADDR);
	le32_put(m + 40, 1); /* PCAT_COMPAT: there are 8259 PICs to mask */
	e = m + 44;
	for (i = 0; i < ncpus; i++, e += 8) {
		e[0] = MADT_LOCAL_APIC;
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC id, matching CPUID */
		le32_put(e + 4, 1); /* enabled */
	}
	e[0] = MADT_IO_APIC;
	e[1] = 12;
	e[2] = 0; /* IOAPIC id */
	le32_put(e + 4, (uint32_t)IOAPIC_ADDR);
	le32_put(e + 8, 0); /* GSI base */
	e += 12;
	/* The SCI is level-triggered, active high, as on PIIX4. */
	e[0] = MADT_INT_OVERRIDE;
	e[1] = 10;
	e[2] = 0; /* ISA bus */
	e[3] = ACPI_SCI_IRQ;
	le32_put(e + 4, ACPI_SCI_IRQ);
	le16_put(e + 8, 0x000d);
	e += 10;
	/* LINT1 of every processor is the NMI line. */
	e[0] = MADT_LOCAL_APIC_NMI;
	e[1] = 6;
	e[2] = 0xff;
	le16_put(e + 3, 0);
	e[5] = 1;
	finish(m, len);
	return off;
}

int acpi_build(struct acpi_tables *t, uint64_t base, unsigned int ncpus)
{
	struct builder b = { .t = t, .overflow = 0 };
	size_t rsdp, xsdt, dsdt, facs, fadt, madt;
	uint32_t xsdt_len = ACPI_HEADER_LEN + 2 * 8;
	uint8_t *p;

	if (ncpus == 0 || ncpus > ACPI_MAX_CPUS)
		return -1;
	memset(t, 0, sizeof(*t));
	t->base = base;
	rsdp = reserve(&b, 36, 16); /* RSDP first: 16-byte aligned */
	xsdt = reserve(&b, xsdt_len, 16);
	dsdt = build_dsdt(&b);
	facs = build_facs(&b);
	fadt = build_fadt(&b, facs, dsdt);
	madt = build_madt(&b, ncpus);
	if (b.overflow)
		return -1;

	p = t->buf + xsdt;
	header(p, "XSDT", xsdt_len, 1);
	le64_put(p + 36, gpa(&b, fadt));
	le64_put(p + 44, gpa(&b, madt));
	finish(p, xsdt_len);

	p = t->buf + rsdp;
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, "VIREO ", 6);
	p[15] = 2;		      /* revision: ACPI 2.0+, has XSDT */
	le32_put(p + 20, 36);	      /* length */
	le64_put(p + 24, gpa(&b, xsdt));
	p[8] = (uint8_t)(0x100 - acpi_checksum(p, 20));
	p[32] = (uint8_t)(0x100 - acpi_checksum(p, 36));
	t->rsdp_addr = gpa(&b, rsdp);
	return 0;
}
