/* MC146818 CMOS real-time clock at ports 0x70/0x71, reading the host's
 * clock (UTC) so the guest's wall clock is right from the first instant. */
#ifndef VIREO_HW_RTC_H
#define VIREO_HW_RTC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "hw/bus.h"
#include "util/state.h"

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	/* Host time source, replaceable in tests. */
	time_t (*now)(void);
};

extern const struct bus_ops rtc_ops;
void rtc_init(struct rtc *r);
/* The index register and CMOS RAM; the time itself is the host's. */
void rtc_save(struct rtc *r, struct state_writer *w);
int rtc_load(struct rtc *r, struct state_reader *in, struct error *err);

#endif
