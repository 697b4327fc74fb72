/* KVM's coalesced-write ring as Vireo replays it (src/kvm/coalesced.c),
 * on a ring in memory laid out as KVM's: every entry once, oldest first,
 * across the wrap; the slots given back; entries KVM could never have
 * written (a length over 8, indices past the ring) skipped and counted,
 * never read outside the page. */
#include "cmocka_prelude.h"

#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "kvm/coalesced.h"

struct seen {
	unsigned int n;
	bool pio[512];
	uint64_t addr[512];
	unsigned int len[512];
	uint8_t data[512][8];
};

static void record(void *ctx, bool pio, uint64_t addr, unsigned int len, const uint8_t *data)
{
	struct seen *s = ctx;

	assert_true(s->n < 512);
	s->pio[s->n] = pio;
	s->addr[s->n] = addr;
	s->len[s->n] = len;
	memcpy(s->data[s->n], data, len);
	s->n++;
}

static struct kvm_coalesced c;
static struct kvm_coalesced_mmio_ring *ring;

static int setup(void **state)
{
	(void)state;
	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.lock, NULL);
	ring = aligned_alloc(4096, 4096);
	assert_non_null(ring);
	memset(ring, 0, 4096);
	c.ring = ring;
	c.entries = (uint32_t)((4096 - sizeof(*ring)) / sizeof(struct kvm_coalesced_mmio));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kvm_coalesced_destroy(&c);
	free(ring);
	return 0;
}

/* What KVM does for one write: the entry, then last moves on. */
static void kvm_writes(bool pio, uint64_t addr, uint32_t len, uint64_t value)
{
	struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[ring->last];

	e->phys_addr = addr;
	e->len = len;
	e->pio = pio;
	memcpy(e->data, &value, sizeof(value));
	ring->last = (ring->last + 1) % c.entries;
}

static void test_in_order_across_the_wrap(void **state)
{
	struct seen s = { 0 };
	unsigned int i, round;

	(void)state;
	assert_int_equal(c.entries, 170); /* KVM_COALESCED_MMIO_MAX on 4 KiB pages */
	kvm_coalesced_replay(&c, record, &s); /* empty */
	assert_int_equal(s.n, 0);
	/* Three rounds of 100: the second and third wrap around. */
	for (round = 0; round < 3; round++) {
		memset(&s, 0, sizeof(s));
		for (i = 0; i < 100; i++)
			kvm_writes(i & 1, 0x1f1 + i, 1 + i % 8, 0x0807060504030201ULL + i);
		kvm_coalesced_replay(&c, record, &s);
		assert_int_equal(s.n, 100);
		for (i = 0; i < 100; i++) {
			uint64_t v = 0x0807060504030201ULL + i;

			assert_int_equal(s.pio[i], i & 1);
			assert_int_equal(s.addr[i], 0x1f1 + i);
			assert_int_equal(s.len[i], 1 + i % 8);
			assert_memory_equal(s.data[i], &v, s.len[i]);
		}
		/* Every slot given back. */
		assert_int_equal(ring->first, ring->last);
	}
	assert_int_equal(c.replayed, 300);
	assert_int_equal(c.bad, 0);
}

static void test_impossible_entries(void **state)
{
	struct seen s = { 0 };

	(void)state;
	kvm_writes(true, 0x10, 1, 0xaa);
	kvm_writes(true, 0x11, 0, 0xbb);  /* no bytes */
	kvm_writes(true, 0x12, 9, 0xcc);  /* more than data[] holds */
	kvm_writes(true, 0x13, 8, 0xdd);
	kvm_coalesced_replay(&c, record, &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.addr[0], 0x10);
	assert_int_equal(s.addr[1], 0x13);
	assert_int_equal(c.bad, 2);
	/* Indices past the ring: nothing read from beyond the page. */
	memset(&s, 0, sizeof(s));
	ring->first = 0;
	ring->last = c.entries + 5;
	kvm_coalesced_replay(&c, record, &s);
	assert_int_equal(s.n, 0);
	assert_int_equal(c.bad, 3);
	assert_true(ring->first < c.entries);
	ring->first = 0xffffffffu;
	ring->last = 3;
	kvm_coalesced_replay(&c, record, &s);
	assert_int_equal(s.n, 0);
	assert_int_equal(ring->first, 3);
	/* And it goes on from there. */
	kvm_writes(false, 0xfebf0000, 4, 0x12345678);
	kvm_coalesced_replay(&c, record, &s);
	assert_int_equal(s.n, 1);
	assert_false(s.pio[0]);
	assert_int_equal(s.addr[0], 0xfebf0000);
}

/* Without a ring (KVM offers none, or no vCPU is mapped yet): nothing. */
static void test_no_ring(void **state)
{
	struct seen s = { 0 };
	struct kvm_coalesced none;

	(void)state;
	memset(&none, 0, sizeof(none));
	kvm_coalesced_replay(&none, record, &s);
	assert_int_equal(s.n, 0);
	assert_int_equal(kvm_coalesced_zone(&none, -1, 0x1f1, 6, true, true), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_order_across_the_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_impossible_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_ring, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
