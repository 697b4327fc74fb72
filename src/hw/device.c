#include "hw/device.h"

#include <string.h>

void device_list_init(struct device_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
	l->count = 0;
}

void device_init(struct device *d, const char *name, const char *type,
		 const struct device_ops *ops, void *opaque)
{
	*d = (struct device){
		.name = name, .type = type, .ops = ops, .opaque = opaque, .state = DEVICE_CREATED,
	};
}

int device_register(struct device_list *l, struct device *d, struct error *err)
{
	if (device_find(l, d->name))
		return error_set(err, "a device named '%s' exists already", d->name);
	if (l->count >= DEVICE_MAX)
		return error_set(err, "%s: a machine has at most %d devices", d->name, DEVICE_MAX);
	d->next = NULL;
	*l->tail = d;
	l->tail = &d->next;
	l->count++;
	return 0;
}

void device_unregister(struct device_list *l, struct device *d)
{
	struct device **p;

	for (p = &l->head; *p; p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			if (l->tail == &d->next)
				l->tail = p;
			l->count--;
			d->next = NULL;
			return;
		}
	}
}

struct device *device_find(const struct device_list *l, const char *name)
{
	struct device *d;

	for (d = l->head; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

int devices_realize_all(struct device_list *l, struct error *err)
{
	struct device *d;

	for (d = l->head; d; d = d->next) {
		if (d->state != DEVICE_CREATED)
			continue;
		if (d->ops->realize && d->ops->realize(d, err) < 0)
			return -1;
		d->state = DEVICE_RUNNING;
	}
	return 0;
}

/* The devices in reverse order, without recursion (lists are short, but a
 * plain array keeps it obvious). */
static unsigned int reversed(const struct device_list *l, struct device **out, unsigned int max)
{
	unsigned int n = 0, i;
	struct device *d;

	for (d = l->head; d && n < max; d = d->next)
		out[n++] = d;
	for (i = 0; i < n / 2; i++) {
		struct device *t = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}


int devices_pause_all(struct device_list *l, struct error *err)
{
	struct device *order[DEVICE_MAX];
	unsigned int n = reversed(l, order, DEVICE_MAX), i;

	for (i = 0; i < n; i++) {
		struct device *d = order[i];

		if (d->state != DEVICE_RUNNING)
			continue;
		if (d->ops->pause && d->ops->pause(d, err) < 0) {
			error_prefix(err, "%s: ", d->name);
			/* Undo: what was paused runs again, in creation order. */
			while (i-- > 0) {
				if (order[i]->state != DEVICE_PAUSED)
					continue;
				if (order[i]->ops->resume)
					order[i]->ops->resume(order[i]);
				order[i]->state = DEVICE_RUNNING;
			}
			return -1;
		}
		d->state = DEVICE_PAUSED;
	}
	return 0;
}

void devices_resume_all(struct device_list *l)
{
	struct device *d;

	for (d = l->head; d; d = d->next) {
		if (d->state != DEVICE_PAUSED)
			continue;
		if (d->ops->resume)
			d->ops->resume(d);
		d->state = DEVICE_RUNNING;
	}
}

void devices_reset_all(struct device_list *l)
{
	struct device *d;

	for (d = l->head; d; d = d->next)
		if (d->ops->reset)
			d->ops->reset(d);
}

void devices_destroy_all(struct device_list *l)
{
	struct device *order[DEVICE_MAX];
	unsigned int n = reversed(l, order, DEVICE_MAX), i;

	for (i = 0; i < n; i++) {
		device_unregister(l, order[i]);
		if (order[i]->ops->destroy)
			order[i]->ops->destroy(order[i]);
	}
}
