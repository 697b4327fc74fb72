#include "hw/i8042.h"

#include <string.h>

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04 /* system flag: POST passed */
#define STATUS_CMD 0x08 /* last write was a command */

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_TEST_AUX 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_TEST_KBD 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_READ_OUTPUT 0xd0
#define CMD_WRITE_OUTPUT 0xd1
#define CMD_WRITE_AUX 0xd4
#define CMD_PULSE_RESET 0xfe

#define OFFSET_DATA 0
#define OFFSET_CMD 4

void i8042_init(struct i8042 *k, const struct power_control *power)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->ctr = 0x30; /* both ports disabled, no interrupts */
	k->power = power;
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	k->ctr = 0x30;
	k->out = 0;
	k->out_full = 0;
	k->pending_cmd = 0;
	pthread_mutex_unlock(&k->lock);
}

static void put(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = 1;
}

static uint64_t i8042_read(void *dev, uint64_t offset, unsigned int size)
{
	struct i8042 *k = dev;
	uint8_t v;

	(void)size;
	pthread_mutex_lock(&k->lock);
	if (offset == OFFSET_CMD) {
		v = STATUS_SYS | (k->out_full ? STATUS_OBF : 0);
	} else if (offset == OFFSET_DATA) {
		v = k->out;
		k->out_full = 0;
	} else {
		v = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void i8042_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct i8042 *k = dev;
	uint8_t v = (uint8_t)value;
	int reset = 0;

	(void)size;
	pthread_mutex_lock(&k->lock);
	if (offset == OFFSET_CMD) {
		k->pending_cmd = 0;
		switch (v) {
		case CMD_READ_CTR:
			put(k, k->ctr);
			break;
		case CMD_WRITE_CTR:
		case CMD_WRITE_OUTPUT:
		case CMD_WRITE_AUX:
			k->pending_cmd = v;
			break;
		case CMD_SELF_TEST:
			put(k, 0x55);
			break;
		case CMD_TEST_KBD:
		case CMD_TEST_AUX:
			put(k, 0x00);
			break;
		case CMD_READ_OUTPUT:
			put(k, 0x01); /* reset line not asserted */
			break;
		case CMD_DISABLE_AUX:
			k->ctr |= 0x20;
			break;
		case CMD_ENABLE_AUX:
			k->ctr &= (uint8_t)~0x20;
			break;
		case CMD_DISABLE_KBD:
			k->ctr |= 0x10;
			break;
		case CMD_ENABLE_KBD:
			k->ctr &= (uint8_t)~0x10;
			break;
		case CMD_PULSE_RESET:
			reset = 1;
			break;
		default:
			break;
		}
	} else if (offset == OFFSET_DATA) {
		switch (k->pending_cmd) {
		case CMD_WRITE_CTR:
			k->ctr = v;
			break;
		case CMD_WRITE_OUTPUT:
			/* Bit 0 of the output port is the CPU reset line. */
			if (!(v & 0x01))
				reset = 1;
			break;
		default:
			/* A byte for a device: nothing is attached. */
			break;
		}
		k->pending_cmd = 0;
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		power_request(k->power, POWER_RESET, "i8042 reset line");
}

const struct bus_ops i8042_ops = { .read = i8042_read, .write = i8042_write };

void i8042_save(struct i8042 *k, struct state_writer *w)
{
	pthread_mutex_lock(&k->lock);
	state_put_u8(w, k->ctr);
	state_put_u8(w, k->out);
	state_put_bool(w, k->out_full);
	state_put_u8(w, k->pending_cmd);
	pthread_mutex_unlock(&k->lock);
}

int i8042_load(struct i8042 *k, struct state_reader *r, struct error *err)
{
	uint8_t ctr = state_get_u8(r), out = state_get_u8(r);
	bool full = state_get_bool(r);
	uint8_t cmd = state_get_u8(r);

	if (state_reader_done(r, err) < 0)
		return -1;
	if (cmd != 0 && cmd != CMD_WRITE_CTR && cmd != CMD_WRITE_OUTPUT && cmd != CMD_WRITE_AUX)
		return error_set(err, "no command 0x%02x waits for data", cmd);
	pthread_mutex_lock(&k->lock);
	k->ctr = ctr;
	k->out = out;
	k->out_full = full;
	k->pending_cmd = cmd;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
