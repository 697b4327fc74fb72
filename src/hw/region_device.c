#include "hw/region_device.h"

#include <stdlib.h>

struct region_device {
	struct device dev;
	struct region_device_spec spec;
};

static void region_reset(struct device *d)
{
	struct region_device *r = d->opaque;

	if (r->spec.reset)
		r->spec.reset(r->spec.state);
}

static int region_pause(struct device *d, struct error *err)
{
	struct region_device *r = d->opaque;

	(void)err;
	if (r->spec.pause)
		r->spec.pause(r->spec.state);
	return 0;
}

static void region_resume(struct device *d)
{
	struct region_device *r = d->opaque;

	if (r->spec.resume)
		r->spec.resume(r->spec.state);
}

static void region_save(struct device *d, struct state_writer *w)
{
	struct region_device *r = d->opaque;

	if (r->spec.save)
		r->spec.save(r->spec.state, w);
}

static int region_load(struct device *d, struct state_reader *rd, struct error *err)
{
	struct region_device *r = d->opaque;

	if (!r->spec.load)
		return state_reader_done(rd, err);
	return r->spec.load(r->spec.state, rd, err);
}

static void region_destroy(struct device *d)
{
	struct region_device *r = d->opaque;

	bus_unregister(r->spec.bus, r->spec.base);
	if (r->spec.release)
		r->spec.release(r->spec.state);
	free(r);
}

static const struct device_ops region_ops = {
	.pause = region_pause,
	.resume = region_resume,
	.reset = region_reset,
	.save = region_save,
	.load = region_load,
	.destroy = region_destroy,
};

struct device *region_device_create(struct device_list *l, const struct region_device_spec *spec,
				    struct error *err)
{
	struct region_device *r = calloc(1, sizeof(*r));

	if (!r) {
		error_set(err, "%s: out of memory", spec->name);
		return NULL;
	}
	r->spec = *spec;
	device_init(&r->dev, spec->name, spec->type, &region_ops, r);
	r->dev.state_version = spec->state_version;
	if (device_register(l, &r->dev, err) < 0) {
		free(r);
		return NULL;
	}
	if (bus_register(spec->bus, spec->base, spec->len, spec->name, spec->ops, spec->state) < 0) {
		device_unregister(l, &r->dev);
		free(r);
		error_set(err, "%s: its ports overlap another device's, or out of memory", spec->name);
		return NULL;
	}
	r->dev.state = DEVICE_RUNNING; /* nothing to realize: the region is live */
	return &r->dev;
}
