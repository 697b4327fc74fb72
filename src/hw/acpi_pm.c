#include "hw/acpi_pm.h"

#include <string.h>
#include <time.h>

#include "arch/x86/layout.h"

#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP_MASK 0x1c00
#define PM1_CNT_SLP_EN 0x2000

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void acpi_pm_init(struct acpi_pm *pm, const struct power_control *power)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	/* No SMI command port: the machine starts, and stays, in ACPI mode. */
	pm->pm1_cnt = PM1_CNT_SCI_EN;
	pm->power = power;
	pm->clock_ns = monotonic_ns;
}

/* With the lock held: the SCI follows the enabled status bits. */
static void update_sci(struct acpi_pm *pm)
{
	int level = (pm->pm1_cnt & PM1_CNT_SCI_EN) && (pm->pm1_sts & pm->pm1_en & ACPI_PM1_PWRBTN);

	if (level != pm->sci_level) {
		pm->sci_level = level;
		if (pm->set_sci)
			pm->set_sci(pm->sci_ctx, level);
	}
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = pm->pm1_en = 0;
	pm->pm1_cnt = PM1_CNT_SCI_EN;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= ACPI_PM1_PWRBTN;
	pm->power_button_presses++;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_pause(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	if (!pm->paused) {
		pm->paused_at_ns = pm->clock_ns();
		pm->paused = true;
	}
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_resume(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	if (pm->paused) {
		pm->paused_total_ns += pm->clock_ns() - pm->paused_at_ns;
		pm->paused = false;
	}
	pthread_mutex_unlock(&pm->lock);
}

/* Guest time in ns: the host's monotonic clock less the time paused. */
static uint64_t guest_ns(const struct acpi_pm *pm)
{
	return (pm->paused ? pm->paused_at_ns : pm->clock_ns()) - pm->paused_total_ns;
}

/* The registers as one little-endian byte array, so accesses of any width
 * and alignment within the block behave like real hardware. */
static void regs_bytes(const struct acpi_pm *pm, uint8_t b[ACPI_PM_LEN])
{
	uint64_t ns = guest_ns(pm);
	/* ns * 3579545 / 1e9 without overflow for centuries of uptime. */
	uint32_t ticks = (uint32_t)((ns / 1000000000ULL) * ACPI_PM_TIMER_HZ +
				    (ns % 1000000000ULL) * ACPI_PM_TIMER_HZ / 1000000000ULL);

	ticks &= 0xffffff;
	memcpy(b + 0, &pm->pm1_sts, 2);
	memcpy(b + 2, &pm->pm1_en, 2);
	memcpy(b + ACPI_PM1_CNT_OFFSET, &pm->pm1_cnt, 2);
	b[6] = b[7] = 0;
	memcpy(b + ACPI_PM_TMR_OFFSET, &ticks, 4);
}

static uint64_t acpi_pm_read(void *dev, uint64_t offset, unsigned int size)
{
	struct acpi_pm *pm = dev;
	uint8_t b[ACPI_PM_LEN];
	uint64_t v = 0;

	if (offset >= ACPI_PM_LEN || size > ACPI_PM_LEN - offset)
		return ~0ULL;
	pthread_mutex_lock(&pm->lock);
	regs_bytes(pm, b);
	pthread_mutex_unlock(&pm->lock);
	memcpy(&v, b + offset, size);
	return v;
}

static void write_byte(struct acpi_pm *pm, unsigned int off, uint8_t v, int *poweroff)
{
	switch (off) {
	case 0: /* PM1 status: write 1 to clear */
	case 1:
		pm->pm1_sts &= (uint16_t)~((uint16_t)v << (8 * off));
		break;
	case 2:
	case 3:
		pm->pm1_en = (uint16_t)((pm->pm1_en & ~(0xff << (8 * (off - 2)))) |
					((uint16_t)v << (8 * (off - 2))));
		break;
	case ACPI_PM1_CNT_OFFSET:
	case ACPI_PM1_CNT_OFFSET + 1: {
		unsigned int shift = 8 * (off - ACPI_PM1_CNT_OFFSET);
		uint16_t cnt = (uint16_t)((pm->pm1_cnt & ~(0xff << shift)) | ((uint16_t)v << shift));

		if ((cnt & PM1_CNT_SLP_EN) &&
		    ((cnt & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT) == ACPI_S5_SLP_TYP)
			*poweroff = 1;
		/* SLP_EN is write-only and reads as zero; SCI_EN stays set. */
		pm->pm1_cnt = (uint16_t)((cnt & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN);
		break;
	}
	default: /* the PM timer is read-only */
		break;
	}
}

static void acpi_pm_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct acpi_pm *pm = dev;
	int poweroff = 0;
	unsigned int i;

	if (offset >= ACPI_PM_LEN || size > ACPI_PM_LEN - offset)
		return;
	pthread_mutex_lock(&pm->lock);
	for (i = 0; i < size; i++)
		write_byte(pm, (unsigned int)offset + i, (uint8_t)(value >> (8 * i)), &poweroff);
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	if (poweroff)
		power_request(pm->power, POWER_OFF, "ACPI S5 (PM1 control)");
}

const struct bus_ops acpi_pm_ops = { .read = acpi_pm_read, .write = acpi_pm_write };

void acpi_pm_save(struct acpi_pm *pm, struct state_writer *w)
{
	pthread_mutex_lock(&pm->lock);
	state_put_u16(w, pm->pm1_sts);
	state_put_u16(w, pm->pm1_en);
	state_put_u16(w, pm->pm1_cnt);
	state_put_u64(w, guest_ns(pm));
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_load(struct acpi_pm *pm, struct state_reader *r, struct error *err)
{
	uint16_t sts = state_get_u16(r), en = state_get_u16(r), cnt = state_get_u16(r);
	uint64_t ns = state_get_u64(r);

	if (state_reader_done(r, err) < 0)
		return -1;
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = sts;
	pm->pm1_en = en;
	pm->pm1_cnt = cnt;
	/* Modulo 2^64, like guest_ns(): the host clock may be behind the
	 * saved guest time (a restore after a host reboot). */
	pm->paused_total_ns = (pm->paused ? pm->paused_at_ns : pm->clock_ns()) - ns;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}
