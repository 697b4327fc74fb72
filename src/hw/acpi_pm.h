/* The ACPI fixed-hardware registers the FADT points at: PM1 event
 * (status/enable, with the fixed power button), PM1 control (SLP_TYP/
 * SLP_EN: S5 powers the VM off) and the 24-bit PM timer at 3.579545 MHz.
 * The SCI (level-triggered) is high while an enabled status bit is set
 * and SCI_EN is on. */
#ifndef VIREO_HW_ACPI_PM_H
#define VIREO_HW_ACPI_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/power.h"
#include "util/state.h"

#define ACPI_PM_TIMER_HZ 3579545ULL

struct acpi_pm {
	pthread_mutex_t lock;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	const struct power_control *power;
	/* Monotonic nanoseconds, replaceable in tests. */
	uint64_t (*clock_ns)(void);
	/* Guest time stops while the VM is paused (QEMU's rule): the timer
	 * counts clock_ns() minus the time spent paused. */
	uint64_t paused_total_ns, paused_at_ns;
	bool paused;
	/* Drives the SCI line; NULL: none connected. */
	void (*set_sci)(void *ctx, int level);
	void *sci_ctx;
	int sci_level;
	uint64_t power_button_presses;
};

#define ACPI_PM1_PWRBTN (1u << 8) /* PWRBTN_STS / PWRBTN_EN */

extern const struct bus_ops acpi_pm_ops;
void acpi_pm_init(struct acpi_pm *pm, const struct power_control *power);
/* Back to the power-on registers, the SCI lowered (system_reset). The PM
 * timer runs on, as a free-running counter does. */
void acpi_pm_reset(struct acpi_pm *pm);
/* The VM pauses / resumes: the PM timer stops / goes on from there. */
void acpi_pm_pause(struct acpi_pm *pm);
/* Presses the power button: PWRBTN_STS, and the SCI if the guest enabled
 * it (an OS that handles ACPI then shuts down). */
void acpi_pm_press_power_button(struct acpi_pm *pm);
void acpi_pm_resume(struct acpi_pm *pm);
/* The registers and the PM timer's guest time, paused; loading sets the
 * timer so that it goes on from the saved count. */
void acpi_pm_save(struct acpi_pm *pm, struct state_writer *w);
int acpi_pm_load(struct acpi_pm *pm, struct state_reader *r, struct error *err);

#endif
