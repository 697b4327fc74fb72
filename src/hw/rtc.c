#include "hw/rtc.h"

#include <string.h>

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32

#define REG_A_DIVIDER_32KHZ 0x20 /* update-in-progress (bit 7) never set */
#define REG_B_24H 0x02		 /* 24-hour mode; bit 2 clear = BCD */
#define REG_B_BINARY 0x04
#define REG_D_VALID 0x80

static time_t host_now(void)
{
	return time(NULL);
}

void rtc_init(struct rtc *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->now = host_now;
	r->cmos[RTC_REG_A] = REG_A_DIVIDER_32KHZ;
	r->cmos[RTC_REG_B] = REG_B_24H;
	r->cmos[RTC_REG_D] = REG_D_VALID;
}

static uint8_t encode(const struct rtc *r, int v)
{
	if (r->cmos[RTC_REG_B] & REG_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t read_reg(struct rtc *r, uint8_t reg)
{
	struct tm tm;
	time_t t;
	int hour;

	if (reg > RTC_YEAR && reg != RTC_CENTURY)
		return r->cmos[reg];
	t = r->now();
	gmtime_r(&t, &tm);
	switch (reg) {
	case RTC_SECONDS:
		return encode(r, tm.tm_sec);
	case RTC_MINUTES:
		return encode(r, tm.tm_min);
	case RTC_HOURS:
		if (r->cmos[RTC_REG_B] & REG_B_24H)
			return encode(r, tm.tm_hour);
		/* 12-hour mode: 12, 1..11, with bit 7 for PM. */
		hour = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
		return (uint8_t)(encode(r, hour) | (tm.tm_hour >= 12 ? 0x80 : 0));
	case RTC_DAY_OF_WEEK:
		return encode(r, tm.tm_wday + 1);
	case RTC_DAY_OF_MONTH:
		return encode(r, tm.tm_mday);
	case RTC_MONTH:
		return encode(r, tm.tm_mon + 1);
	case RTC_YEAR:
		return encode(r, tm.tm_year % 100);
	case RTC_CENTURY:
		return encode(r, (tm.tm_year + 1900) / 100);
	default: /* alarm registers */
		return r->cmos[reg];
	}
}

static uint64_t rtc_read(void *dev, uint64_t offset, unsigned int size)
{
	struct rtc *r = dev;
	uint8_t v;

	(void)size;
	if (offset == 0)
		return 0xff; /* the index port is write-only */
	pthread_mutex_lock(&r->lock);
	v = read_reg(r, r->index);
	if (r->index == RTC_REG_C)
		r->cmos[RTC_REG_C] = 0; /* reading C acknowledges interrupts */
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void rtc_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct rtc *r = dev;
	uint8_t v = (uint8_t)value;

	(void)size;
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		r->index = v & 0x7f; /* bit 7 is the NMI mask */
	} else if (r->index == RTC_REG_B) {
		r->cmos[RTC_REG_B] = v;
	} else if (r->index == RTC_REG_A) {
		r->cmos[RTC_REG_A] = v & 0x7f;
	} else if (r->index > RTC_YEAR && r->index != RTC_REG_C && r->index != RTC_REG_D &&
		   r->index != RTC_CENTURY) {
		/* CMOS RAM; setting the time is ignored: the host owns it. */
		r->cmos[r->index] = v;
	}
	pthread_mutex_unlock(&r->lock);
}

const struct bus_ops rtc_ops = { .read = rtc_read, .write = rtc_write };

void rtc_save(struct rtc *r, struct state_writer *w)
{
	pthread_mutex_lock(&r->lock);
	state_put_u8(w, r->index);
	state_put_bytes(w, r->cmos, sizeof(r->cmos));
	pthread_mutex_unlock(&r->lock);
}

int rtc_load(struct rtc *r, struct state_reader *in, struct error *err)
{
	uint8_t index = state_get_u8(in), cmos[sizeof(r->cmos)];

	state_get_bytes(in, cmos, sizeof(cmos));
	if (state_reader_done(in, err) < 0)
		return -1;
	if (index > 0x7f)
		return error_set(err, "CMOS index 0x%02x out of range", index);
	pthread_mutex_lock(&r->lock);
	r->index = index;
	memcpy(r->cmos, cmos, sizeof(cmos));
	pthread_mutex_unlock(&r->lock);
	return 0;
}
