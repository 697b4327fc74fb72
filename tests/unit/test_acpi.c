#include "cmocka_prelude.h"

#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "util/le.h"

static struct acpi_tables t;

/* The table at guest physical address gpa, checked to lie in t.buf. */
static const uint8_t *at(uint64_t gpa, size_t len)
{
	if (gpa < t.base || gpa - t.base > t.len || len > t.len - (gpa - t.base))
		fail_msg("0x%llx+%zu is outside the tables [0x%llx+%zu)", (unsigned long long)gpa,
			 len, (unsigned long long)t.base, t.len);
	return t.buf + (gpa - t.base);
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A system description table with signature sig: in bounds, checksummed. */
static const uint8_t *sdt(uint64_t gpa, const char *sig)
{
	const uint8_t *p = at(gpa, 36);
	uint32_t len = le32_get(p + 4);

	if (memcmp(p, sig, 4) != 0)
		fail_msg("expected %s at 0x%llx, found %.4s", sig, (unsigned long long)gpa, p);
	assert_true(len >= 36);
	p = at(gpa, len);
	if (sum(p, len) != 0)
		fail_msg("%s checksum: bytes sum to 0x%02x", sig, sum(p, len));
	assert_int_equal(acpi_checksum(p, len), 0);
	assert_memory_equal(p + 10, "VIREO ", 6); /* OEM id */
	return p;
}

static const uint8_t *rsdp(void)
{
	const uint8_t *p = at(t.rsdp_addr, 36);

	assert_memory_equal(p, "RSD PTR ", 8);
	assert_int_equal(sum(p, 20), 0);
	assert_int_equal(sum(p, 36), 0);
	assert_int_equal(p[15], 2);
	assert_int_equal(le32_get(p + 20), 36);
	return p;
}

/* Finds the table with signature sig through RSDP -> XSDT. */
static const uint8_t *find_table(const char *sig)
{
	const uint8_t *x = sdt(le64_get(rsdp() + 24), "XSDT");
	uint32_t n = (le32_get(x + 4) - 36) / 8, i;

	for (i = 0; i < n; i++) {
		const uint8_t *p = at(le64_get(x + 36 + 8 * i), 36);

		if (!memcmp(p, sig, 4))
			return sdt(le64_get(x + 36 + 8 * i), sig);
	}
	fail_msg("no %s in the XSDT", sig);
	return NULL;
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
	size_t i;

	for (i = 0; i + m <= n; i++)
		if (!memcmp(hay + i, needle, m))
			return 1;
	return 0;
}

static void check_gas_io(const uint8_t *g, uint64_t port, uint8_t bits)
{
	assert_int_equal(g[0], 1); /* system I/O */
	assert_int_equal(g[1], bits);
	assert_int_equal(g[2], 0);
	assert_int_equal(le64_get(g + 4), port);
}

static void check_rsdp_xsdt(void)
{
	const uint8_t *r, *x;

	assert_int_equal(t.base, ACPI_TABLES_ADDR);
	/* The RSDP must be 16-byte aligned in the BIOS area for Linux to find
	 * it by scanning; the tables must fit in the reserved window. */
	assert_int_equal(t.rsdp_addr % 16, 0);
	assert_true(t.rsdp_addr >= 0xe0000 && t.rsdp_addr + 36 <= 0x100000);
	assert_true(t.len <= ACPI_TABLES_MAX);
	assert_true(t.len <= sizeof(t.buf));
	r = rsdp();
	x = sdt(le64_get(r + 24), "XSDT");
	assert_int_equal(x[8], 1);
	/* FADT and MADT. */
	assert_int_equal(le32_get(x + 4), 36 + 2 * 8);
	assert_memory_equal(at(le64_get(x + 36), 4), "FACP", 4);
	assert_memory_equal(at(le64_get(x + 44), 4), "APIC", 4);
}

static void check_fadt(void)
{
	const uint8_t *f = find_table("FACP");
	const uint8_t *facs, *dsdt;
	uint64_t facs_addr;
	uint32_t flags;

	assert_int_equal(le32_get(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(le16_get(f + 46), 9); /* SCI_INT */
	assert_int_equal(le32_get(f + 48), 0);	/* SMI_CMD: always in ACPI mode */
	assert_int_equal(le32_get(f + 56), 0x600); /* PM1a_EVT_BLK */
	assert_int_equal(le32_get(f + 64), 0x604); /* PM1a_CNT_BLK */
	assert_int_equal(le32_get(f + 76), 0x608); /* PM_TMR_BLK */
	assert_int_equal(f[88], 4);		   /* PM1_EVT_LEN */
	assert_int_equal(f[89], 2);		   /* PM1_CNT_LEN */
	assert_int_equal(f[91], 4);		   /* PM_TMR_LEN */
	assert_int_equal(f[108], 0x32);		   /* CENTURY */
	flags = le32_get(f + 112);
	assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
	assert_false(flags & (1u << 20)); /* not HW_REDUCED_ACPI */
	assert_false(flags & (1u << 4)); /* a fixed-feature power button */
	/* RESET_REG: I/O port 0xcf9, 8 bits, value 6. */
	check_gas_io(f + 116, 0xcf9, 8);
	assert_int_equal(f[128], 6);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	/* X_ blocks match the 32-bit ones. */
	check_gas_io(f + 148, 0x600, 32);
	check_gas_io(f + 172, 0x604, 16);
	check_gas_io(f + 208, 0x608, 32);

	facs_addr = le64_get(f + 132);
	assert_int_equal(facs_addr % 64, 0);
	facs = at(facs_addr, 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(le32_get(facs + 4), 64);

	dsdt = sdt(le64_get(f + 140), "DSDT");
	assert_int_equal(dsdt[8], 2); /* 64-bit AML integers */
}

static void check_madt(unsigned int ncpus)
{
	const uint8_t *m = find_table("APIC");
	uint32_t len = le32_get(m + 4), off;
	unsigned int lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
	unsigned char seen[256] = { 0 };

	assert_int_equal(le32_get(m + 36), 0xfee00000u);
	assert_int_equal(le32_get(m + 40) & 1, 1); /* PCAT_COMPAT */
	for (off = 44; off < len; off += m[off + 1]) {
		const uint8_t *e = m + off;

		assert_true(off + 2 <= len);
		assert_true(e[1] >= 2);
		assert_true(off + e[1] <= len);
		switch (e[0]) {
		case 0: /* processor local APIC */
			assert_int_equal(e[1], 8);
			assert_true(e[3] < ncpus);
			assert_int_equal(seen[e[3]], 0);
			seen[e[3]] = 1;
			assert_int_equal(e[2], e[3]); /* UID follows the APIC id */
			assert_int_equal(le32_get(e + 4) & 1, 1);
			lapics++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(le32_get(e + 4), 0xfec00000u);
			assert_int_equal(le32_get(e + 8), 0);
			ioapics++;
			break;
		case 2: /* interrupt source override */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0); /* ISA */
			assert_int_equal(e[3], 9);
			assert_int_equal(le32_get(e + 4), 9);
			assert_int_equal(le16_get(e + 8), 0x000d); /* level, active high */
			overrides++;
			break;
		case 4: /* local APIC NMI */
			assert_int_equal(e[1], 6);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_int_equal(off, len); /* entries end exactly at the table's end */
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(overrides, 1);
	assert_int_equal(nmis, 1);
}

/* PkgLength at p: returns the length and sets *n to its encoded size. */
static size_t pkglen(const uint8_t *p, size_t *n)
{
	size_t extra = p[0] >> 6, len, i;

	if (extra == 0) {
		*n = 1;
		return p[0] & 0x3f;
	}
	len = p[0] & 0x0f;
	for (i = 0; i < extra; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	*n = 1 + extra;
	return len;
}

static void check_dsdt(void)
{
	static const uint8_t s5[] = {
		0x08, '\\', '_', 'S', '5', '_',	      /* Name(\_S5_, */
		0x12, 0x07, 0x04,		      /* Package(4) { */
		0x0a, 0x05, 0x00, 0x00, 0x00,	      /* 5, 0, 0, 0 } */
	};
	static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	static const uint8_t crs_mem_hole[] = {
		0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xbf, 0xfe,
	};
	const uint8_t *f = find_table("FACP");
	const uint8_t *d = sdt(le64_get(f + 140), "DSDT");
	uint32_t len = le32_get(d + 4);
	size_t off = 36, n, scope_end, dev_end;

	assert_true(contains(d + 36, len - 36, s5, sizeof(s5)));
	assert_true(contains(d + 36, len - 36, hid, sizeof(hid)));
	assert_true(contains(d + 36, len - 36, crs_mem_hole, sizeof(crs_mem_hole)));

	/* Structure: Name(\_S5_), then Scope(\_SB_) { Device(PCI0) {...} }
	 * whose PkgLengths end exactly at the end of the table. */
	assert_memory_equal(d + off, s5, sizeof(s5));
	off += sizeof(s5);
	assert_int_equal(d[off], 0x10);
	scope_end = off + 1 + pkglen(d + off + 1, &n);
	assert_int_equal(scope_end, len);
	off += 1 + n;
	assert_memory_equal(d + off, "\\_SB_", 5);
	off += 5;
	assert_int_equal(d[off], 0x5b);
	assert_int_equal(d[off + 1], 0x82);
	dev_end = off + 2 + pkglen(d + off + 2, &n);
	assert_int_equal(dev_end, len);
	off += 2 + n;
	assert_memory_equal(d + off, "PCI0", 4);
	off += 4;
	assert_memory_equal(d + off, hid, sizeof(hid));
}

static void build_and_check(unsigned int ncpus)
{
	memset(&t, 0x5a, sizeof(t));
	assert_int_equal(acpi_build(&t, ACPI_TABLES_ADDR, ncpus), 0);
	check_rsdp_xsdt();
	check_fadt();
	check_madt(ncpus);
	check_dsdt();
}

static void test_1cpu(void **state)
{
	(void)state;
	build_and_check(1);
}

static void test_2cpus(void **state)
{
	(void)state;
	build_and_check(2);
}

static void test_4cpus(void **state)
{
	(void)state;
	build_and_check(4);
}

static void test_254cpus(void **state)
{
	(void)state;
	build_and_check(254);
}

static void test_bad_cpu_counts(void **state)
{
	(void)state;
	assert_int_equal(acpi_build(&t, ACPI_TABLES_ADDR, 0), -1);
	assert_int_equal(acpi_build(&t, ACPI_TABLES_ADDR, 255), -1);
	assert_int_equal(acpi_build(&t, ACPI_TABLES_ADDR, 256), -1);
	assert_int_equal(acpi_build(&t, ACPI_TABLES_ADDR, 0xffffffffu), -1);
}

static void test_other_base(void **state)
{
	const uint8_t *f;

	(void)state;
	/* Pointers are guest physical: relative to the base given. */
	assert_int_equal(acpi_build(&t, 0x12340000, 3), 0);
	assert_int_equal(t.base, 0x12340000);
	assert_true(t.rsdp_addr >= 0x12340000 && t.rsdp_addr < 0x12340000 + t.len);
	f = find_table("FACP");
	assert_memory_equal(at(le64_get(f + 140), 4), "DSDT", 4);
	assert_memory_equal(at(le64_get(f + 132), 4), "FACS", 4);
	check_madt(3);
}

static void test_checksum(void **state)
{
	static const uint8_t b[] = { 0x01, 0x02, 0xfd };
	static const uint8_t c[] = { 0xff, 0xff };

	(void)state;
	assert_int_equal(acpi_checksum(b, 0), 0);
	assert_int_equal(acpi_checksum(b, 2), 3);
	assert_int_equal(acpi_checksum(b, 3), 0);
	assert_int_equal(acpi_checksum(c, 2), 0xfe);
}

static void test_pkglength(void **state)
{
	uint8_t o[4];

	(void)state;
	/* One byte: total up to 63, counting the length byte. */
	assert_int_equal(aml_pkglength(o, 0), 1);
	assert_int_equal(o[0], 0x01);
	assert_int_equal(aml_pkglength(o, 6), 1);
	assert_int_equal(o[0], 0x07);
	assert_int_equal(aml_pkglength(o, 0x3e), 1);
	assert_int_equal(o[0], 0x3f);
	/* Two bytes: low nibble in byte 0, then bits 4..11. */
	assert_int_equal(aml_pkglength(o, 0x3f), 2);
	assert_int_equal(o[0], 0x41);
	assert_int_equal(o[1], 0x04);
	assert_int_equal(aml_pkglength(o, 0x123), 2);
	assert_int_equal(o[0], 0x45);
	assert_int_equal(o[1], 0x12);
	assert_int_equal(aml_pkglength(o, 0xffd), 2);
	assert_int_equal(o[0], 0x4f);
	assert_int_equal(o[1], 0xff);
	/* Three bytes. */
	assert_int_equal(aml_pkglength(o, 0xffe), 3);
	assert_int_equal(o[0], 0x81);
	assert_int_equal(o[1], 0x00);
	assert_int_equal(o[2], 0x01);
	assert_int_equal(aml_pkglength(o, 0x1234), 3);
	assert_int_equal(o[0], 0x87);
	assert_int_equal(o[1], 0x23);
	assert_int_equal(o[2], 0x01);
	assert_int_equal(aml_pkglength(o, 0xffffc), 3);
	assert_int_equal(o[0], 0x8f);
	assert_int_equal(o[1], 0xff);
	assert_int_equal(o[2], 0xff);
}

static void test_eisaid(void **state)
{
	(void)state;
	assert_int_equal(aml_eisaid("PNP0A03"), 0x030AD041u);
	assert_int_equal(aml_eisaid("PNP0A08"), 0x080AD041u);
	assert_int_equal(aml_eisaid("PNP0C09"), 0x090CD041u);
	/* Lower-case hex digits mean the same. */
	assert_int_equal(aml_eisaid("PNP0a03"), 0x030AD041u);
	assert_int_equal(aml_eisaid("PNP0A0"), 0);
	assert_int_equal(aml_eisaid(""), 0);
}

static void expect(const struct aml_buf *b, const uint8_t *bytes, size_t n)
{
	assert_false(b->overflow);
	assert_int_equal(b->len, n);
	assert_memory_equal(b->data, bytes, n);
}

static void test_aml_encoding(void **state)
{
	static const uint8_t ints[] = {
		0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00, 0x01, 0x0b, 0xff, 0xff,
		0x0c, 0x00, 0x00, 0x01, 0x00, 0x0c, 0x78, 0x56, 0x34, 0x12,
		0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	};
	static const uint8_t named[] = { 0x08, '_', 'U', 'I', 'D', 0x0a, 0x2a };
	static const uint8_t padded[] = { 0x08, 'A', '_', '_', '_', 0x00 };
	static const uint8_t scope[] = { 0x10, 0x0d, '\\', '_', 'S', 'B', '_',
					 0x08, '_', 'U', 'I', 'D', 0x0a, 0x2a };
	static const uint8_t buffer[] = { 0x11, 0x05, 0x0a, 0x02, 0x79, 0x00 };
	struct aml_buf b, body, inner;
	static const uint8_t end_tag[] = { 0x79, 0x00 };

	(void)state;
	aml_init(&b);
	aml_integer(&b, 0);
	aml_integer(&b, 1);
	aml_integer(&b, 2);
	aml_integer(&b, 0xff);
	aml_integer(&b, 0x100);
	aml_integer(&b, 0xffff);
	aml_integer(&b, 0x10000);
	aml_integer(&b, 0x12345678);
	aml_integer(&b, 0x100000000ULL);
	expect(&b, ints, sizeof(ints));

	aml_init(&b);
	aml_name_integer(&b, "_UID", 42);
	expect(&b, named, sizeof(named));

	aml_init(&b);
	aml_name_integer(&b, "A", 0);
	expect(&b, padded, sizeof(padded));

	aml_init(&body);
	aml_name_integer(&body, "_UID", 42);
	aml_init(&b);
	aml_scope(&b, "\\_SB_", &body);
	expect(&b, scope, sizeof(scope));

	aml_init(&inner);
	aml_bytes(&inner, end_tag, sizeof(end_tag));
	aml_init(&b);
	aml_buffer(&b, &inner);
	expect(&b, buffer, sizeof(buffer));
}

static void test_aml_overflow(void **state)
{
	static uint8_t big[AML_BUF_MAX];
	struct aml_buf a, b;

	(void)state;
	aml_init(&a);
	aml_bytes(&a, big, sizeof(big));
	assert_false(a.overflow);
	assert_int_equal(a.len, AML_BUF_MAX);
	aml_byte(&a, 0);
	assert_true(a.overflow);
	assert_int_equal(a.len, AML_BUF_MAX);
	/* Overflow propagates through wrappers... */
	aml_init(&b);
	aml_device(&b, "DEV0", &a);
	assert_true(b.overflow);
	/* ...and the wrapper of a full body overflows on its own. */
	aml_init(&a);
	aml_bytes(&a, big, sizeof(big) - 4);
	aml_init(&b);
	aml_package(&b, 1, &a); /* 1 + 2 + 1 + 2044 bytes: just fits */
	assert_false(b.overflow);
	assert_int_equal(b.len, AML_BUF_MAX);
	aml_init(&a);
	aml_bytes(&a, big, sizeof(big) - 3);
	aml_init(&b);
	aml_package(&b, 1, &a); /* one byte too many */
	assert_true(b.overflow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_1cpu),
		cmocka_unit_test(test_2cpus),
		cmocka_unit_test(test_4cpus),
		cmocka_unit_test(test_254cpus),
		cmocka_unit_test(test_bad_cpu_counts),
		cmocka_unit_test(test_other_base),
		cmocka_unit_test(test_checksum),
		cmocka_unit_test(test_pkglength),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_aml_encoding),
		cmocka_unit_test(test_aml_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
