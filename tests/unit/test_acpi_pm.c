#include "cmocka_prelude.h"

#include "hw/acpi_pm.h"

#define PM1_STS 0
#define PM1_EN 2
#define PM1_CNT 4
#define PM_TMR 8

static struct acpi_pm pm;
static struct power_control power;
static int poweroffs, other_events;
static uint64_t fake_ns;

static void record_power(void *ctx, enum power_event ev, const char *source)
{
	assert_ptr_equal(ctx, &pm);
	assert_non_null(source);
	if (ev == POWER_OFF)
		poweroffs++;
	else
		other_events++;
	assert_int_equal(pthread_mutex_trylock(&pm.lock), 0);
	pthread_mutex_unlock(&pm.lock);
}

static uint64_t fake_clock(void)
{
	return fake_ns;
}

static int setup(void **state)
{
	(void)state;
	poweroffs = other_events = 0;
	fake_ns = 0;
	power.request = record_power;
	power.ctx = &pm;
	acpi_pm_init(&pm, &power);
	pm.clock_ns = fake_clock;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pthread_mutex_destroy(&pm.lock);
	assert_int_equal(other_events, 0);
	return 0;
}

static uint64_t rd(unsigned int off, unsigned int size)
{
	return acpi_pm_ops.read(&pm, off, size);
}

static void wr(unsigned int off, unsigned int size, uint64_t v)
{
	acpi_pm_ops.write(&pm, off, size, v);
}

static void test_s5_powers_off(void **state)
{
	(void)state;
	wr(PM1_CNT, 2, 0x3400); /* SLP_TYP = 5, SLP_EN */
	assert_int_equal(poweroffs, 1);
	wr(PM1_CNT, 2, 0x3401);
	assert_int_equal(poweroffs, 2);
	/* As a 32-bit write covering PM1_EN and PM1_CNT. */
	wr(PM1_EN, 4, 0x34000000);
	assert_int_equal(poweroffs, 3);
}

static void test_other_sleep_states(void **state)
{
	unsigned int typ;

	(void)state;
	for (typ = 0; typ < 8; typ++) {
		if (typ == 5)
			continue;
		wr(PM1_CNT, 2, 0x2000 | (typ << 10));
	}
	/* S5 type without SLP_EN. */
	wr(PM1_CNT, 2, 0x1400);
	wr(PM1_CNT, 2, 0x1401);
	/* SLP_EN in the wrong register. */
	wr(PM1_STS, 2, 0x3400);
	wr(PM1_EN, 2, 0x3400);
	assert_int_equal(poweroffs, 0);
	/* SLP_TYP latched by an earlier write, SLP_EN set by a byte write of
	 * the high half that repeats the type. */
	wr(PM1_CNT, 2, 0x1400);
	wr(PM1_CNT + 1, 1, 0x34);
	assert_int_equal(poweroffs, 1);
	/* A byte write of SLP_EN alone changes SLP_TYP to 0 too. */
	wr(PM1_CNT, 2, 0x1400);
	wr(PM1_CNT + 1, 1, 0x20);
	assert_int_equal(poweroffs, 1);
}

static void test_pm1_cnt_readback(void **state)
{
	(void)state;
	/* SCI_EN: always in ACPI mode. */
	assert_int_equal(rd(PM1_CNT, 2), 0x0001);
	assert_int_equal(rd(PM1_CNT, 1) & 1, 1);
	wr(PM1_CNT, 2, 0x0000);
	assert_int_equal(rd(PM1_CNT, 2), 0x0001);
	wr(PM1_CNT, 2, 0x1400);
	assert_int_equal(rd(PM1_CNT, 2), 0x1401);
	/* SLP_EN is write-only. */
	wr(PM1_CNT, 2, 0x2c00);
	assert_int_equal(rd(PM1_CNT, 2), 0x0c01);
	assert_int_equal(poweroffs, 0);
}

static void test_pm1_status_and_enable(void **state)
{
	(void)state;
	assert_int_equal(rd(PM1_STS, 4), 0);
	pm.pm1_sts = 0x8121;
	assert_int_equal(rd(PM1_STS, 2), 0x8121);
	/* Write 1 to clear; 0 bits leave status alone. */
	wr(PM1_STS, 2, 0x0100);
	assert_int_equal(rd(PM1_STS, 2), 0x8021);
	wr(PM1_STS + 1, 1, 0x80);
	assert_int_equal(rd(PM1_STS, 2), 0x0021);
	wr(PM1_STS, 2, 0x0000);
	assert_int_equal(rd(PM1_STS, 2), 0x0021);
	wr(PM1_STS, 1, 0xff);
	assert_int_equal(rd(PM1_STS, 2), 0x0000);
	/* Enable is a plain read/write register. */
	wr(PM1_EN, 2, 0x0120);
	assert_int_equal(rd(PM1_EN, 2), 0x0120);
	wr(PM1_EN + 1, 1, 0x03);
	assert_int_equal(rd(PM1_EN, 2), 0x0320);
	wr(PM1_EN, 1, 0x00);
	assert_int_equal(rd(PM1_EN, 2), 0x0300);
	/* A 32-bit read of the event block: status low, enable high. */
	pm.pm1_sts = 0x0001;
	assert_int_equal(rd(PM1_STS, 4), 0x03000001);
	/* The whole block as bytes: unaligned reads work. */
	assert_int_equal(rd(PM1_STS + 1, 2), 0x0000);
	assert_int_equal(rd(PM1_EN + 1, 2), 0x0103);
}

static void test_pm_timer(void **state)
{
	(void)state;
	assert_int_equal(rd(PM_TMR, 4), 0);
	fake_ns = 279;
	assert_int_equal(rd(PM_TMR, 4), 0);
	fake_ns = 280; /* one tick is 279.365 ns */
	assert_int_equal(rd(PM_TMR, 4), 1);
	fake_ns = 1000000000ULL;
	assert_int_equal(rd(PM_TMR, 4), 3579545);
	fake_ns = 1500000000ULL;
	assert_int_equal(rd(PM_TMR, 4), 5369317);
	/* 24 bits: wraps after 2^24 ticks, about 4.687 s. */
	fake_ns = 4686915000ULL;
	assert_int_equal(rd(PM_TMR, 4), 16777023);
	fake_ns = 4687000000ULL;
	assert_int_equal(rd(PM_TMR, 4), 111);
	fake_ns = 5000000000ULL;
	assert_int_equal(rd(PM_TMR, 4), 1120509);
	/* No overflow for very long uptimes. */
	fake_ns = 1000000000000000ULL;
	assert_int_equal(rd(PM_TMR, 4), 8525888);
	fake_ns = UINT64_MAX;
	assert_int_equal(rd(PM_TMR, 4), 10862272);
	/* Partial reads of the timer. */
	fake_ns = 1000000000ULL; /* 3579545 = 0x369e99 */
	assert_int_equal(rd(PM_TMR, 1), 0x99);
	assert_int_equal(rd(PM_TMR + 1, 1), 0x9e);
	assert_int_equal(rd(PM_TMR + 2, 2), 0x0036);
	/* Read-only. */
	wr(PM_TMR, 4, 0);
	assert_int_equal(rd(PM_TMR, 4), 3579545);
}

/* Guest time stops while the VM is paused: the timer reads the same all
 * through a pause and goes on from there, not from the host's clock. */
static void test_timer_stops_while_paused(void **state)
{
	(void)state;
	fake_ns = 1000000000ULL;
	assert_int_equal(rd(PM_TMR, 4), 3579545);
	acpi_pm_pause(&pm);
	fake_ns = 3000000000ULL; /* 2 s paused */
	assert_int_equal(rd(PM_TMR, 4), 3579545);
	acpi_pm_pause(&pm); /* twice: still one pause */
	fake_ns = 4000000000ULL; /* 3 s paused */
	acpi_pm_resume(&pm);
	assert_int_equal(rd(PM_TMR, 4), 3579545);
	fake_ns = 4500000000ULL;
	assert_int_equal(rd(PM_TMR, 4), 5369317); /* 1.5 s of guest time */
	acpi_pm_resume(&pm); /* not paused: no effect */
	assert_int_equal(rd(PM_TMR, 4), 5369317);
}

static int sci_level = -1, sci_changes;

static void record_sci(void *ctx, int level)
{
	(void)ctx;
	sci_level = level;
	sci_changes++;
}

/* The power button as Linux's ACPI driver sees it: PWRBTN_STS set, the
 * SCI raised only while PWRBTN_EN is set, lowered when the OS writes
 * the status bit back (write 1 to clear). */
static void test_power_button(void **state)
{
	(void)state;
	sci_level = -1;
	sci_changes = 0;
	pm.set_sci = record_sci;
	acpi_pm_press_power_button(&pm); /* not enabled yet: status only */
	assert_int_equal(rd(0, 2) & 0x100, 0x100);
	assert_int_equal(sci_changes, 0);
	wr(2, 2, 0x100); /* PWRBTN_EN: the pending press raises the SCI */
	assert_int_equal(sci_level, 1);
	wr(0, 2, 0x100); /* acknowledged */
	assert_int_equal(rd(0, 2) & 0x100, 0);
	assert_int_equal(sci_level, 0);
	acpi_pm_press_power_button(&pm);
	assert_int_equal(sci_level, 1);
	assert_int_equal(sci_changes, 3);
	wr(2, 2, 0); /* disabled: the line drops, the status stays */
	assert_int_equal(sci_level, 0);
	assert_int_equal(rd(0, 2) & 0x100, 0x100);
	assert_int_equal(pm.power_button_presses, 2);
	assert_int_equal(poweroffs, 0); /* the button asks; the OS decides */
}

/* A system reset: status and enable bits cleared (a pending button press
 * with them), SCI_EN as at power-on, the SCI line lowered. */
static void test_reset(void **state)
{
	(void)state;
	sci_level = -1;
	sci_changes = 0;
	pm.set_sci = record_sci;
	wr(2, 2, 0x100);
	acpi_pm_press_power_button(&pm);
	assert_int_equal(sci_level, 1);
	wr(4, 2, 0x0001);
	acpi_pm_reset(&pm);
	assert_int_equal(sci_level, 0);
	assert_int_equal(rd(0, 2), 0);
	assert_int_equal(rd(2, 2), 0);
	assert_int_equal(rd(4, 2) & 0x0001, 0x0001);
	assert_int_equal(poweroffs, 0);
}

static void test_timer_monotonic(void **state)
{
	uint32_t prev = 0, cur;
	uint64_t ns;

	(void)state;
	/* Increasing within a wrap period, in steps of 1 ms. */
	for (ns = 0; ns < 4600000000ULL; ns += 1000000) {
		fake_ns = ns;
		cur = (uint32_t)rd(PM_TMR, 4);
		assert_true(cur <= 0xffffff);
		if (ns)
			assert_true(cur > prev);
		prev = cur;
	}
}

static void test_out_of_range(void **state)
{
	(void)state;
	assert_int_equal(rd(12, 1), ~0ULL);
	assert_int_equal(rd(10, 4), ~0ULL);
	assert_int_equal(rd(11, 2), ~0ULL);
	assert_int_equal(rd(8, 8), ~0ULL);
	assert_int_equal(rd(UINT32_MAX, 4), ~0ULL);
	assert_int_equal(rd(6, 2), 0); /* the reserved bytes in between */
	/* A write that runs past the block is dropped entirely. */
	wr(10, 4, 0);
	wr(5, 8, 0x34);	      /* 5 + 8 > 12 */
	wr(4, 9, 0x3400);     /* wider than any access */
	wr(UINT32_MAX, 2, 0); /* offset + size must not wrap */
	assert_int_equal(poweroffs, 0);
	assert_int_equal(rd(PM1_CNT, 2), 0x0001);
	/* 8 bytes from 4: PM1_CNT, reserved, timer. */
	wr(4, 8, 0x3400);
	assert_int_equal(poweroffs, 1);
}

static void test_no_power_control(void **state)
{
	(void)state;
	pthread_mutex_destroy(&pm.lock);
	acpi_pm_init(&pm, NULL);
	pm.clock_ns = fake_clock;
	wr(PM1_CNT, 2, 0x3400);
	assert_int_equal(poweroffs, 0);
	assert_int_equal(rd(PM1_CNT, 2), 0x1401);
}

/* The PM timer across a snapshot: a PM block loaded on a host whose
 * clock reads anything (here far behind) counts on from the saved value,
 * with the registers and the SCI as saved. */
static void test_state(void **state)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	struct acpi_pm other;

	(void)state;
	wr(2, 2, ACPI_PM1_PWRBTN);
	fake_ns = 5000000000ULL;
	acpi_pm_pause(&pm);
	state_writer_init(&w);
	acpi_pm_save(&pm, &w);
	acpi_pm_init(&other, &power);
	other.clock_ns = fake_clock;
	fake_ns = 1000000000ULL; /* the new host booted recently */
	acpi_pm_pause(&other);
	state_reader_init(&r, w.buf, w.len - 1);
	assert_int_equal(acpi_pm_load(&other, &r, &err), -1);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(acpi_pm_load(&other, &r, &err), 0);
	acpi_pm_resume(&other);
	fake_ns += 1000000000ULL;
	/* 6 s of guest time: 5 before the snapshot, 1 after. */
	assert_int_equal(acpi_pm_ops.read(&other, PM_TMR, 4), (6 * 3579545) & 0xffffff);
	assert_int_equal(acpi_pm_ops.read(&other, 2, 2), ACPI_PM1_PWRBTN);
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_s5_powers_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_sleep_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm1_cnt_readback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm1_status_and_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_monotonic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_stops_while_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_button, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_power_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
