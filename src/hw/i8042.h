/* The PS/2 controller, kept for what guests use it for on a VM: the reset
 * line (command 0xfe, or clearing bit 0 of the output port). No keyboard or
 * mouse is attached; the controller itself answers its self-tests. */
#ifndef VIREO_HW_I8042_H
#define VIREO_HW_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/power.h"
#include "util/state.h"

struct i8042 {
	pthread_mutex_t lock;
	uint8_t ctr;	     /* controller configuration byte */
	uint8_t out;	     /* output buffer */
	int out_full;
	uint8_t pending_cmd; /* command waiting for its data byte */
	const struct power_control *power;
};

/* Registered over ports 0x60-0x64; offset 0 is data, offset 4 command. */
extern const struct bus_ops i8042_ops;
void i8042_init(struct i8042 *k, const struct power_control *power);
/* Back to the power-on state (system_reset). */
void i8042_reset(struct i8042 *k);
void i8042_save(struct i8042 *k, struct state_writer *w);
int i8042_load(struct i8042 *k, struct state_reader *r, struct error *err);

#endif
