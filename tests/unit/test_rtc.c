#include "cmocka_prelude.h"

#include "hw/rtc.h"

#define T_2026_11_22_210837 1795381717 /* a Sunday */
#define T_2026_11_22_000509 1795305909
#define T_2026_11_22_125959 1795352399
#define T_1999_12_31_235959 946684799 /* a Friday */
#define T_2100_01_01_000000 4102444800LL

static struct rtc r;
static time_t fake_time;
static int now_calls;

static time_t fake_now(void)
{
	now_calls++;
	return fake_time;
}

static int setup(void **state)
{
	(void)state;
	rtc_init(&r);
	r.now = fake_now;
	fake_time = T_2026_11_22_210837;
	now_calls = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pthread_mutex_destroy(&r.lock);
	return 0;
}

static uint8_t cmos(uint8_t index)
{
	uint64_t v;

	rtc_ops.write(&r, 0, 1, index);
	v = rtc_ops.read(&r, 1, 1);
	assert_true(v <= 0xff);
	return (uint8_t)v;
}

static void cmos_write(uint8_t index, uint8_t v)
{
	rtc_ops.write(&r, 0, 1, index);
	rtc_ops.write(&r, 1, 1, v);
}

static void test_time_bcd(void **state)
{
	(void)state;
	assert_int_equal(cmos(0x00), 0x37);
	assert_int_equal(cmos(0x02), 0x08);
	assert_int_equal(cmos(0x04), 0x21);
	assert_int_equal(cmos(0x06), 0x01); /* Sunday is day 1 */
	assert_int_equal(cmos(0x07), 0x22);
	assert_int_equal(cmos(0x08), 0x11);
	assert_int_equal(cmos(0x09), 0x26);
	assert_int_equal(cmos(0x32), 0x20);
	/* The clock is read at every access. */
	assert_int_equal(now_calls, 8);
	fake_time += 3;
	assert_int_equal(cmos(0x00), 0x40);

	fake_time = T_1999_12_31_235959;
	assert_int_equal(cmos(0x00), 0x59);
	assert_int_equal(cmos(0x02), 0x59);
	assert_int_equal(cmos(0x04), 0x23);
	assert_int_equal(cmos(0x06), 0x06); /* Friday */
	assert_int_equal(cmos(0x07), 0x31);
	assert_int_equal(cmos(0x08), 0x12);
	assert_int_equal(cmos(0x09), 0x99);
	assert_int_equal(cmos(0x32), 0x19);

	fake_time = (time_t)T_2100_01_01_000000;
	assert_int_equal(cmos(0x00), 0x00);
	assert_int_equal(cmos(0x07), 0x01);
	assert_int_equal(cmos(0x08), 0x01);
	assert_int_equal(cmos(0x09), 0x00);
	assert_int_equal(cmos(0x32), 0x21);
}

static void test_time_binary(void **state)
{
	(void)state;
	cmos_write(0x0b, 0x02 | 0x04); /* 24h, binary */
	assert_int_equal(cmos(0x0b), 0x06);
	assert_int_equal(cmos(0x00), 37);
	assert_int_equal(cmos(0x02), 8);
	assert_int_equal(cmos(0x04), 21);
	assert_int_equal(cmos(0x06), 1);
	assert_int_equal(cmos(0x07), 22);
	assert_int_equal(cmos(0x08), 11);
	assert_int_equal(cmos(0x09), 26);
	assert_int_equal(cmos(0x32), 20);
	/* Back to BCD. */
	cmos_write(0x0b, 0x02);
	assert_int_equal(cmos(0x00), 0x37);
}

static void test_12_hour(void **state)
{
	(void)state;
	cmos_write(0x0b, 0x00); /* 12-hour, BCD */
	assert_int_equal(cmos(0x04), 0x89); /* 9 PM */
	assert_int_equal(cmos(0x02), 0x08); /* minutes unaffected */
	fake_time = T_2026_11_22_000509;
	assert_int_equal(cmos(0x04), 0x12); /* 12 AM */
	fake_time = T_2026_11_22_125959;
	assert_int_equal(cmos(0x04), 0x92); /* 12 PM */
	fake_time = T_2026_11_22_000509 + 3600 * 11;
	assert_int_equal(cmos(0x04), 0x11); /* 11 AM */
	cmos_write(0x0b, 0x04); /* 12-hour, binary */
	assert_int_equal(cmos(0x04), 11);
	fake_time = T_2026_11_22_125959;
	assert_int_equal(cmos(0x04), 0x80 | 12);
	fake_time = T_2026_11_22_210837;
	assert_int_equal(cmos(0x04), 0x80 | 9);
}

static void test_nmi_bit_ignored(void **state)
{
	(void)state;
	assert_int_equal(cmos(0x80 | 0x00), 0x37);
	assert_int_equal(cmos(0x80 | 0x09), 0x26);
	assert_int_equal(cmos(0x80 | 0x0d), 0x80);
	cmos_write(0x80 | 0x40, 0x5a);
	assert_int_equal(cmos(0x40), 0x5a);
}

static void test_status_registers(void **state)
{
	(void)state;
	assert_int_equal(cmos(0x0a), 0x20); /* 32 kHz, never updating */
	assert_int_equal(cmos(0x0b), 0x02); /* 24-hour, BCD */
	assert_int_equal(cmos(0x0d), 0x80); /* valid RAM and time */
	assert_int_equal(cmos(0x0c), 0x00);
	/* Update-in-progress cannot be set. */
	cmos_write(0x0a, 0xa6);
	assert_int_equal(cmos(0x0a), 0x26);
	/* D and C are read-only; reading C clears it. */
	cmos_write(0x0d, 0x00);
	assert_int_equal(cmos(0x0d), 0x80);
	cmos_write(0x0c, 0xff);
	assert_int_equal(cmos(0x0c), 0x00);
	r.cmos[0x0c] = 0xf0;
	assert_int_equal(cmos(0x0c), 0xf0);
	assert_int_equal(cmos(0x0c), 0x00);
}

static void test_time_not_settable(void **state)
{
	(void)state;
	cmos_write(0x00, 0x00);
	cmos_write(0x04, 0x00);
	cmos_write(0x09, 0x55);
	cmos_write(0x32, 0x19);
	assert_int_equal(cmos(0x00), 0x37);
	assert_int_equal(cmos(0x04), 0x21);
	assert_int_equal(cmos(0x09), 0x26);
	assert_int_equal(cmos(0x32), 0x20);
}

static void test_cmos_ram(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0x0e; i < 0x80; i++) {
		if (i == 0x32)
			continue;
		cmos_write((uint8_t)i, (uint8_t)(i ^ 0xa5));
	}
	for (i = 0x0e; i < 0x80; i++) {
		if (i == 0x32)
			continue;
		assert_int_equal(cmos((uint8_t)i), i ^ 0xa5);
	}
	/* The index port is write-only. */
	assert_int_equal(rtc_ops.read(&r, 0, 1), 0xff);
	/* The index stays selected across data accesses. */
	rtc_ops.write(&r, 0, 1, 0x40);
	assert_int_equal(rtc_ops.read(&r, 1, 1), 0x40 ^ 0xa5);
	assert_int_equal(rtc_ops.read(&r, 1, 1), 0x40 ^ 0xa5);
}

/* CMOS RAM and the index survive a snapshot; an index out of range is
 * refused. */
static void test_state(void **state)
{
	struct state_writer w;
	struct state_reader in;
	struct error err = { 0 };
	struct rtc other;

	(void)state;
	cmos_write(0x40, 0x77);
	state_writer_init(&w);
	rtc_save(&r, &w);
	rtc_init(&other);
	state_reader_init(&in, w.buf, w.len);
	assert_int_equal(rtc_load(&other, &in, &err), 0);
	assert_int_equal(other.index, 0x40);
	assert_int_equal(rtc_ops.read(&other, 1, 1), 0x77);
	w.buf[0] = 0x80;
	state_reader_init(&in, w.buf, w.len);
	assert_int_equal(rtc_load(&other, &in, &err), -1);
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_time_bcd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_12_hour, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nmi_bit_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_not_settable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmos_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
