#include "cmocka_prelude.h"

#include <string.h>

#include "arch/x86/cpuid.h"

#define HYPERVISOR (1u << 31)
#define TSC_DEADLINE (1u << 24)
#define HTT (1u << 28)

struct leaf {
	uint32_t function, index, eax, ebx, ecx, edx;
};

/* What KVM_GET_SUPPORTED_CPUID might report on a 16-thread host. */
static const struct leaf host[] = {
	{ 0x0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69 },
	{ 0x1, 0, 0x000906ea, 0x0a100800, 0x7efafbbf, 0xbfebfbff }, /* no TSC deadline */
	{ 0x4, 0, 0x1c004121, 0x01c0003f, 0x0000003f, 0 }, /* L1d, 2 threads */
	{ 0x4, 1, 0x1c004122, 0x01c0003f, 0x0000003f, 0 }, /* L1i */
	{ 0x4, 2, 0x1c004143, 0x00c0003f, 0x000003ff, 0 }, /* L2 */
	{ 0x4, 3, 0x1c03c163, 0x03c0003f, 0x00002fff, 6 }, /* L3, 16 threads */
	{ 0x4, 4, 0x1c000000, 0, 0, 0 },		   /* no more caches */
	{ 0xb, 0, 0x1, 0x2, 0x100, 0xaa },
	{ 0xb, 1, 0x4, 0x10, 0x201, 0xaa },
	{ 0xb, 2, 0x0, 0x0, 0x2, 0xaa },
	{ 0x1f, 0, 0x1, 0x2, 0x100, 0xaa },
	{ 0x1f, 1, 0x4, 0x10, 0x201, 0xaa },
	{ 0x80000001, 0, 0, 0, 0x121, 0x2c100800 },
	{ 0x80000008, 0, 0x3030, 0x0, 0xffffffff, 0 },
	{ 0x8000001e, 0, 0x55, 0x1234, 0x777, 0x99 },
};

/* Static storage (two buffers, one per live copy), so a failing assertion
 * leaks nothing. */
#define NSLOTS 2
static union {
	struct kvm_cpuid2 c;
	unsigned char bytes[sizeof(struct kvm_cpuid2) +
			    ARRAY_LEN(host) * sizeof(struct kvm_cpuid_entry2)];
} slots[NSLOTS];
static unsigned int next_slot;

static struct kvm_cpuid2 *make(void)
{
	struct kvm_cpuid2 *c = &slots[next_slot++ % NSLOTS].c;
	size_t i;

	memset(c, 0, sizeof(slots[0]));
	c->nent = ARRAY_LEN(host);
	for (i = 0; i < ARRAY_LEN(host); i++) {
		c->entries[i].function = host[i].function;
		c->entries[i].index = host[i].index;
		c->entries[i].flags = host[i].function == 4 || host[i].function == 0xb ||
						      host[i].function == 0x1f
					      ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX
					      : 0;
		c->entries[i].eax = host[i].eax;
		c->entries[i].ebx = host[i].ebx;
		c->entries[i].ecx = host[i].ecx;
		c->entries[i].edx = host[i].edx;
	}
	return c;
}

static const struct kvm_cpuid_entry2 *get(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	fail_msg("no leaf 0x%x.%u", fn, idx);
	return NULL;
}

static struct kvm_cpuid2 *patched(unsigned int apic_id, unsigned int ncpus, int tsc_deadline)
{
	struct kvm_cpuid2 *c = make();
	struct cpuid_config cfg = { .apic_id = apic_id, .ncpus = ncpus,
				    .tsc_deadline = tsc_deadline };

	cpuid_patch(c, &cfg);
	assert_int_equal(c->nent, ARRAY_LEN(host));
	return c;
}

static void test_leaf1(void **state)
{
	struct kvm_cpuid2 *c = patched(3, 4, 0);
	const struct kvm_cpuid_entry2 *e = get(c, 1, 0);

	(void)state;
	assert_int_equal(e->ebx >> 24, 3);		/* initial APIC id */
	assert_int_equal((e->ebx >> 16) & 0xff, 4);	/* logical processors */
	assert_int_equal(e->ebx & 0xffff, 0x0800);	/* CLFLUSH size kept */
	assert_int_equal(e->eax, 0x000906ea);		/* signature kept */
	assert_true(e->ecx & HYPERVISOR);
	assert_int_equal(e->ecx, 0x7efafbbf | HYPERVISOR);
	assert_false(e->ecx & TSC_DEADLINE);
	assert_true(e->edx & HTT);

	c = patched(0, 1, 1);
	e = get(c, 1, 0);
	assert_int_equal(e->ebx >> 24, 0);
	assert_int_equal((e->ebx >> 16) & 0xff, 1);
	assert_true(e->ecx & HYPERVISOR);
	assert_true(e->ecx & TSC_DEADLINE);
	/* One CPU: HTT cleared although the host had it. */
	assert_false(e->edx & HTT);
	assert_int_equal(e->edx, 0xbfebfbff & ~HTT);

	c = patched(253, 254, 0);
	e = get(c, 1, 0);
	assert_int_equal(e->ebx >> 24, 253);
	assert_int_equal((e->ebx >> 16) & 0xff, 254);
}

static void test_leaf4(void **state)
{
	struct kvm_cpuid2 *c = patched(3, 4, 0);
	unsigned int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		const struct kvm_cpuid_entry2 *e = get(c, 4, i);

		/* Type, level and the low flag bits are the host's. */
		assert_int_equal(e->eax & 0x3ff, host[2 + i].eax & 0x3ff);
		/* Cores per package - 1. */
		assert_int_equal(e->eax >> 26, 3);
		/* Threads sharing: private below L3, all CPUs at L3. */
		if (i < 3)
			assert_int_equal((e->eax >> 14) & 0xfff, 0);
		else
			assert_int_equal((e->eax >> 14) & 0xfff, 3);
		/* Geometry untouched. */
		assert_int_equal(e->ebx, host[2 + i].ebx);
		assert_int_equal(e->ecx, host[2 + i].ecx);
		assert_int_equal(e->edx, host[2 + i].edx);
	}
	/* The terminating "no cache" subleaf is left alone. */
	assert_int_equal(get(c, 4, 4)->eax, 0x1c000000);

	c = patched(0, 1, 0);
	for (i = 0; i < 4; i++) {
		const struct kvm_cpuid_entry2 *e = get(c, 4, i);

		assert_int_equal(e->eax >> 26, 0);
		assert_int_equal((e->eax >> 14) & 0xfff, 0);
		assert_int_equal(e->eax & 0x3ff, host[2 + i].eax & 0x3ff);
	}
}

static void check_topology(const struct kvm_cpuid2 *c, uint32_t fn, unsigned int apic_id,
			   unsigned int ncpus, unsigned int levels)
{
	const struct kvm_cpuid_entry2 *e;

	/* SMT level: one thread per core. */
	e = get(c, fn, 0);
	assert_int_equal(e->eax, 0);
	assert_int_equal(e->ebx, 1);
	assert_int_equal(e->ecx, 0x100);
	assert_int_equal(e->edx, apic_id);
	/* Core level: ncpus per package, shift to the package id. */
	e = get(c, fn, 1);
	assert_int_equal(e->eax, cpuid_core_bits(ncpus));
	assert_int_equal(e->ebx, ncpus);
	assert_int_equal(e->ecx, 0x201);
	assert_int_equal(e->edx, apic_id);
	if (levels > 2) {
		/* Invalid level terminates the enumeration. */
		e = get(c, fn, 2);
		assert_int_equal(e->eax, 0);
		assert_int_equal(e->ebx, 0);
		assert_int_equal(e->ecx, 2);
		assert_int_equal(e->edx, apic_id);
	}
}

static void test_topology(void **state)
{
	struct kvm_cpuid2 *c = patched(3, 4, 0);

	(void)state;
	check_topology(c, 0xb, 3, 4, 3);
	check_topology(c, 0x1f, 3, 4, 2);
	assert_int_equal(get(c, 0xb, 1)->eax, 2);

	c = patched(4, 5, 0);
	check_topology(c, 0xb, 4, 5, 3);
	assert_int_equal(get(c, 0xb, 1)->eax, 3);

	c = patched(0, 1, 0);
	check_topology(c, 0xb, 0, 1, 3);
	assert_int_equal(get(c, 0xb, 1)->eax, 0);
}

static void test_amd_leaves(void **state)
{
	struct kvm_cpuid2 *c = patched(3, 4, 0);
	const struct kvm_cpuid_entry2 *e;

	(void)state;
	e = get(c, 0x80000008, 0);
	assert_int_equal(e->ecx & 0xff, 3);	    /* NC: cores - 1 */
	assert_int_equal((e->ecx >> 12) & 0xf, 2); /* ApicIdCoreIdSize */
	assert_int_equal(e->ecx & 0xffff0f00u, 0xffff0f00u); /* other bits kept */
	assert_int_equal(e->eax, 0x3030);
	e = get(c, 0x8000001e, 0);
	assert_int_equal(e->eax, 3); /* extended APIC id */
	assert_int_equal(e->ebx, 3); /* core 3, one thread per core */
	assert_int_equal(e->ecx, 0); /* node 0 */

	c = patched(8, 9, 0);
	e = get(c, 0x80000008, 0);
	assert_int_equal(e->ecx & 0xff, 8);
	assert_int_equal((e->ecx >> 12) & 0xf, 4);
}

static void test_other_leaves_untouched(void **state)
{
	struct kvm_cpuid2 *c = patched(3, 4, 1);
	const struct kvm_cpuid_entry2 *e;

	(void)state;
	e = get(c, 0, 0);
	assert_int_equal(e->eax, 0x1f);
	assert_int_equal(e->ebx, 0x756e6547);
	assert_int_equal(e->ecx, 0x6c65746e);
	assert_int_equal(e->edx, 0x49656e69);
	e = get(c, 0x80000001, 0);
	assert_int_equal(e->ecx, 0x121);
	assert_int_equal(e->edx, 0x2c100800);
	/* Flags and indexes survive. */
	assert_int_equal(get(c, 4, 3)->flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
}

static void test_patch_is_idempotent(void **state)
{
	struct kvm_cpuid2 *a = patched(2, 4, 1), *b = patched(2, 4, 1);
	struct cpuid_config cfg = { .apic_id = 2, .ncpus = 4, .tsc_deadline = 1 };

	(void)state;
	/* Patching again (e.g. for a second vCPU from the same template
	 * after a first patch) gives the same result. */
	cpuid_patch(b, &cfg);
	assert_memory_equal(a->entries, b->entries, ARRAY_LEN(host) * sizeof(a->entries[0]));
	/* And re-patching for another vCPU rewrites every id. */
	cfg.apic_id = 1;
	cpuid_patch(b, &cfg);
	assert_int_equal(get(b, 1, 0)->ebx >> 24, 1);
	assert_int_equal(get(b, 0xb, 0)->edx, 1);
	assert_int_equal(get(b, 0xb, 1)->edx, 1);
	assert_int_equal(get(b, 0x1f, 1)->edx, 1);
	assert_int_equal(get(b, 0x8000001e, 0)->eax, 1);
}

static void test_core_bits(void **state)
{
	(void)state;
	assert_int_equal(cpuid_core_bits(0), 0);
	assert_int_equal(cpuid_core_bits(1), 0);
	assert_int_equal(cpuid_core_bits(2), 1);
	assert_int_equal(cpuid_core_bits(3), 2);
	assert_int_equal(cpuid_core_bits(4), 2);
	assert_int_equal(cpuid_core_bits(5), 3);
	assert_int_equal(cpuid_core_bits(8), 3);
	assert_int_equal(cpuid_core_bits(9), 4);
	assert_int_equal(cpuid_core_bits(128), 7);
	assert_int_equal(cpuid_core_bits(129), 8);
	assert_int_equal(cpuid_core_bits(254), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf1),
		cmocka_unit_test(test_leaf4),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_amd_leaves),
		cmocka_unit_test(test_other_leaves_untouched),
		cmocka_unit_test(test_patch_is_idempotent),
		cmocka_unit_test(test_core_bits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
