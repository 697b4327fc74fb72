#include "hw/device.h"

#include <stdlib.h>
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

int devices_save_all(const struct device_list *l, struct state_writer *w, struct error *err)
{
	struct device *d;

	state_put_u32(w, l->count);
	for (d = l->head; d; d = d->next) {
		struct state_writer rec;

		state_writer_init(&rec);
		if (d->ops->save)
			d->ops->save(d, &rec);
		if (rec.failed) {
			state_writer_free(&rec);
			return error_set(err, "%s: out of memory saving its state", d->name);
		}
		state_put_str(w, d->name);
		state_put_str(w, d->type);
		state_put_u32(w, d->state_version);
		state_put_u64(w, rec.len);
		state_put_bytes(w, rec.buf, rec.len);
		state_put_u32(w, state_crc32(rec.buf, rec.len));
		state_writer_free(&rec);
	}
	if (w->failed)
		return error_set(err, "out of memory saving the devices' state");
	return 0;
}

struct section {
	struct device *dev;
	const uint8_t *rec;
	size_t len;
};

/* Pass one: every section well-formed and meant for this machine. */
static int read_sections(const struct device_list *l, struct state_reader *r,
			 struct section *sec, unsigned int *count, struct error *err)
{
	unsigned int n = state_get_u32(r), i, j;

	if (r->short_read)
		return error_set(err, "device state is truncated");
	if (n != l->count)
		return error_set(err, "the saved VM has %u devices, this machine %u: "
				 "start it with the same device options", n, l->count);
	for (i = 0; i < n; i++) {
		char name[256], type[256];
		uint32_t version, crc;
		uint64_t len;
		struct device *d;

		state_get_str(r, name, sizeof(name));
		state_get_str(r, type, sizeof(type));
		version = state_get_u32(r);
		len = state_get_u64(r);
		if (r->short_read || len > state_reader_left(r))
			return error_set(err, "device state is truncated");
		sec[i].rec = state_get_span(r, (size_t)len);
		sec[i].len = (size_t)len;
		crc = state_get_u32(r);
		if (r->short_read)
			return error_set(err, "device state is truncated");
		d = device_find(l, name);
		if (!d)
			return error_set(err, "the saved VM has a device '%s' this machine lacks", name);
		for (j = 0; j < i; j++)
			if (sec[j].dev == d)
				return error_set(err, "the saved VM has device '%s' twice", name);
		if (strcmp(d->type, type))
			return error_set(err, "%s: the saved VM's is a %s, this machine's a %s", name,
					 type, d->type);
		if (version != d->state_version)
			return error_set(err, "%s: the saved state is version %u, this Vireo "
					 "reads version %u", name, version, d->state_version);
		if (crc != state_crc32(sec[i].rec, sec[i].len))
			return error_set(err, "%s: the saved state is damaged (checksum)", name);
		if (!d->ops->load && sec[i].len)
			return error_set(err, "%s: the saved VM has state for a device without any",
					 name);
		sec[i].dev = d;
	}
	*count = n;
	return 0;
}

int devices_load_all(struct device_list *l, struct state_reader *r, struct error *err)
{
	struct section *sec = calloc(l->count ? l->count : 1, sizeof(*sec));
	unsigned int n = 0, i;
	int ret = -1;

	if (!sec)
		return error_set(err, "out of memory loading the devices' state");
	if (read_sections(l, r, sec, &n, err) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct state_reader rec;

		if (!sec[i].dev->ops->load)
			continue;
		state_reader_init(&rec, sec[i].rec, sec[i].len);
		if (sec[i].dev->ops->load(sec[i].dev, &rec, err) < 0) {
			error_prefix(err, "%s: ", sec[i].dev->name);
			goto out;
		}
	}
	ret = 0;
out:
	free(sec);
	return ret;
}
