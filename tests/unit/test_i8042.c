#include "cmocka_prelude.h"

#include "hw/i8042.h"

#define DATA 0
#define CMD 4 /* command (write) and status (read) */
#define OBF 0x01
#define SYS 0x04

static struct i8042 k;
static struct power_control power;
static int resets, other_events;

static void record_power(void *ctx, enum power_event ev, const char *source)
{
	assert_ptr_equal(ctx, &k);
	assert_non_null(source);
	if (ev == POWER_RESET)
		resets++;
	else
		other_events++;
	/* Called with the controller unlocked. */
	assert_int_equal(pthread_mutex_trylock(&k.lock), 0);
	pthread_mutex_unlock(&k.lock);
}

static int setup(void **state)
{
	(void)state;
	resets = other_events = 0;
	power.request = record_power;
	power.ctx = &k;
	i8042_init(&k, &power);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pthread_mutex_destroy(&k.lock);
	assert_int_equal(other_events, 0);
	return 0;
}

static uint8_t rd(unsigned int off)
{
	uint64_t v = i8042_ops.read(&k, off, 1);

	assert_true(v <= 0xff);
	return (uint8_t)v;
}

static void wr(unsigned int off, uint8_t v)
{
	i8042_ops.write(&k, off, 1, v);
}

/* Runs a command that answers one byte; checks OBF around it. */
static uint8_t command(uint8_t cmd)
{
	uint8_t v;

	wr(CMD, cmd);
	assert_int_equal(rd(CMD) & OBF, OBF);
	v = rd(DATA);
	assert_int_equal(rd(CMD) & OBF, 0);
	return v;
}

static void test_status_and_self_test(void **state)
{
	(void)state;
	assert_int_equal(rd(CMD), SYS);
	assert_int_equal(command(0xaa), 0x55);
	assert_int_equal(rd(CMD), SYS);
	assert_int_equal(command(0xab), 0x00); /* keyboard port test */
	assert_int_equal(command(0xa9), 0x00); /* aux port test */
	assert_int_equal(command(0xd0), 0x01); /* output port: reset line high */
	/* Ports other than 0x60 and 0x64. */
	assert_int_equal(rd(1), 0xff);
	assert_int_equal(rd(3), 0xff);
	assert_int_equal(resets, 0);
}

static void test_ctr(void **state)
{
	(void)state;
	assert_int_equal(command(0x20), 0x30);
	wr(CMD, 0x60);
	assert_int_equal(rd(CMD) & OBF, 0);
	wr(DATA, 0x47);
	assert_int_equal(command(0x20), 0x47);
	/* Port enable/disable commands flip the CTR's disable bits. */
	wr(CMD, 0xa7);
	assert_int_equal(command(0x20), 0x67);
	wr(CMD, 0xad);
	assert_int_equal(command(0x20), 0x77);
	wr(CMD, 0xa8);
	assert_int_equal(command(0x20), 0x57);
	wr(CMD, 0xae);
	assert_int_equal(command(0x20), 0x47);
	/* A data byte with no command pending is not a CTR write. */
	wr(DATA, 0x00);
	assert_int_equal(command(0x20), 0x47);
	/* A new command cancels the pending one. */
	wr(CMD, 0x60);
	wr(CMD, 0xaa);
	assert_int_equal(rd(DATA), 0x55);
	wr(DATA, 0x00);
	assert_int_equal(command(0x20), 0x47);
	/* The data byte of 0xd4 goes to the (absent) mouse. */
	wr(CMD, 0xd4);
	wr(DATA, 0xff);
	assert_int_equal(command(0x20), 0x47);
	assert_int_equal(resets, 0);
}

static void test_pulse_reset(void **state)
{
	(void)state;
	wr(CMD, 0xfe);
	assert_int_equal(resets, 1);
	/* Other pulse commands do nothing. */
	wr(CMD, 0xf0);
	wr(CMD, 0xff);
	assert_int_equal(resets, 1);
}

static void test_output_port_reset(void **state)
{
	(void)state;
	wr(CMD, 0xd1);
	wr(DATA, 0x03); /* bit 0 set: CPU keeps running */
	assert_int_equal(resets, 0);
	wr(CMD, 0xd1);
	wr(DATA, 0xdf);
	assert_int_equal(resets, 0);
	wr(CMD, 0xd1);
	wr(DATA, 0xfe); /* bit 0 clear: reset */
	assert_int_equal(resets, 1);
	/* The command was consumed: a second byte does not reset again. */
	wr(DATA, 0x00);
	assert_int_equal(resets, 1);
	wr(CMD, 0xd1);
	wr(DATA, 0x00);
	assert_int_equal(resets, 2);
	/* 0xd1 followed by another command: no output-port write. */
	wr(CMD, 0xd1);
	wr(CMD, 0x20);
	assert_int_equal(rd(DATA), 0x30);
	wr(DATA, 0x00);
	assert_int_equal(resets, 2);
}

static void test_no_power_control(void **state)
{
	(void)state;
	pthread_mutex_destroy(&k.lock);
	i8042_init(&k, NULL);
	wr(CMD, 0xfe);
	wr(CMD, 0xd1);
	wr(DATA, 0x00);
	assert_int_equal(resets, 0);
	assert_int_equal(command(0xaa), 0x55);
}

/* A command waiting for its data byte survives a snapshot; a record with
 * a command that never waits is refused. */
static void test_state(void **state)
{
	struct state_writer w;
	struct state_reader r;
	struct error err = { 0 };
	struct i8042 other;

	(void)state;
	wr(4, 0x60); /* write CTR: waits for the byte */
	state_writer_init(&w);
	i8042_save(&k, &w);
	i8042_init(&other, &power);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(i8042_load(&other, &r, &err), 0);
	i8042_ops.write(&other, 0, 1, 0x47);
	assert_int_equal(other.ctr, 0x47);
	w.buf[w.len - 1] = 0xaa;
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(i8042_load(&other, &r, &err), -1);
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_and_self_test, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pulse_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_port_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_power_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
