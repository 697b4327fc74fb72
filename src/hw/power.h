/* How a device asks the machine to power off or reset; both end the VM. */
#ifndef VIREO_HW_POWER_H
#define VIREO_HW_POWER_H

enum power_event { POWER_OFF, POWER_RESET };

struct power_control {
	void (*request)(void *ctx, enum power_event ev, const char *source);
	void *ctx;
};

static inline void power_request(const struct power_control *p, enum power_event ev,
				 const char *source)
{
	if (p && p->request)
		p->request(p->ctx, ev, source);
}

#endif
