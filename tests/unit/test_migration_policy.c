/* The pre-copy's decisions (vmm/migration.h): when what is left fits the
 * downtime limit, and how auto-converge throttles a guest that dirties
 * memory faster than the link carries it. The end-to-end test can only
 * show that a migration converges on whatever machine runs it; these pin
 * the rule itself. */
#include "cmocka_prelude.h"

#include "vmm/migration.h"

#define MIB (1ULL << 20)

static void test_fits(void **state)
{
	(void)state;
	/* 300 ms at 100 MiB/s: 30 MiB. */
	assert_true(migration_fits(30 * MIB, 100 * MIB, 300));
	assert_false(migration_fits(30 * MIB + 1, 100 * MIB, 300));
	assert_true(migration_fits(0, 100 * MIB, 0));
	assert_false(migration_fits(4096, 100 * MIB, 0));
	/* No bandwidth measured yet (a pass that sent nothing): only
	 * nothing left fits, not everything. */
	assert_false(migration_fits(1 * MIB, 0, 300));
	assert_true(migration_fits(0, 0, 300));
}

static void test_throttle_steps(void **state)
{
	struct migration m;
	unsigned int hot = 0, pct = 0, i;

	(void)state;
	migration_init(&m);
	/* Dirtied half of what was sent or less: never a throttle. */
	for (i = 0; i < 10; i++)
		assert_int_equal(migration_throttle_after_pass(&m.params, 0, 50 * MIB, 100 * MIB,
							       &hot), 0);
	/* More than half, the first time: not yet; the second: 20 %. */
	hot = 0;
	pct = migration_throttle_after_pass(&m.params, pct, 51 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 0);
	pct = migration_throttle_after_pass(&m.params, pct, 51 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 20);
	/* Then 10 % more every second hot pass, up to 99 %. */
	pct = migration_throttle_after_pass(&m.params, pct, 200 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 20);
	pct = migration_throttle_after_pass(&m.params, pct, 200 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 30);
	for (i = 0; i < 40; i++)
		pct = migration_throttle_after_pass(&m.params, pct, 200 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 99);
	/* The parameters QEMU names. */
	m.params.throttle_initial = 50;
	m.params.throttle_increment = 25;
	m.params.max_throttle = 80;
	hot = 1;
	pct = migration_throttle_after_pass(&m.params, 0, 200 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 50);
	hot = 1;
	pct = migration_throttle_after_pass(&m.params, pct, 200 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 75);
	hot = 1;
	pct = migration_throttle_after_pass(&m.params, pct, 200 * MIB, 100 * MIB, &hot);
	assert_int_equal(pct, 80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fits),
		cmocka_unit_test(test_throttle_steps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
