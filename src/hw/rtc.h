/* MC146818 CMOS real-time clock at ports 0x70/0x71, reading the host's
 * clock (UTC) so the guest's wall clock is right from the first instant. */
#ifndef VIREO_HW_RTC_H
#define VIREO_HW_RTC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "hw/bus.h"

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	/* Host time source, replaceable in tests. */
	time_t (*now)(void);
};

extern const struct bus_ops rtc_ops;
void rtc_init(struct rtc *r);

#endif
