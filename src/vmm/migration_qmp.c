/* Migration's QMP side (vmm/migration.h): query-migrate and the
 * parameters and capabilities, in QEMU's words. */
#include <string.h>

#include "util/clock.h"
#include "vmm/migration.h"
#include "vmm/migration_stream.h"
#include "vmm/vm.h"

json_t *migration_info(struct vm *vm)
{
	struct migration *m = &vm->mig;
	json_t *info, *ram;
	bool done;

	pthread_mutex_lock(&m->lock);
	if (!m->status) {
		pthread_mutex_unlock(&m->lock);
		return json_object();
	}
	done = !strcmp(m->status, "completed");
	info = json_pack("{s:s,s:I}", "status", m->status, "total-time",
			 (json_int_t)(m->total_ms && strcmp(m->status, "active") ? m->total_ms
									 : monotonic_ms() - m->start_ms));
	ram = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I}", "transferred",
			(json_int_t)m->transferred, "remaining", (json_int_t)m->remaining, "total",
			(json_int_t)m->ram_total, "duplicate", (json_int_t)m->duplicate, "normal",
			(json_int_t)m->normal_pages, "normal-bytes",
			(json_int_t)(m->normal_pages * MIG_PAGE), "dirty-pages-rate",
			(json_int_t)m->dirty_pages_rate, "mbps", (double)m->mbps, "dirty-sync-count",
			(json_int_t)m->dirty_sync_count, "precopy-bytes",
			(json_int_t)m->precopy_bytes, "downtime-bytes", (json_int_t)m->downtime_bytes,
			"pages-per-second", (json_int_t)m->pages_per_second);
	json_object_set_new(info, "ram", ram);
	json_object_set_new(info, "setup-time", json_integer((json_int_t)m->setup_ms));
	if (done)
		json_object_set_new(info, "downtime", json_integer((json_int_t)m->downtime_ms));
	else if (!strcmp(m->status, "active"))
		json_object_set_new(info, "expected-downtime",
				    json_integer((json_int_t)m->expected_downtime_ms));
	if (m->throttle_pct)
		json_object_set_new(info, "cpu-throttle-percentage",
				    json_integer((json_int_t)m->throttle_pct));
	if (!strcmp(m->status, "failed") && m->error[0])
		json_object_set_new(info, "error-desc", json_string(m->error));
	pthread_mutex_unlock(&m->lock);
	return info;
}

json_t *migration_params_json(struct vm *vm)
{
	const struct migration_params *p = &vm->mig.params;

	return json_pack("{s:I,s:I,s:I,s:I,s:I}", "downtime-limit",
			 (json_int_t)p->downtime_limit_ms, "max-bandwidth",
			 (json_int_t)p->max_bandwidth, "cpu-throttle-initial",
			 (json_int_t)p->throttle_initial, "cpu-throttle-increment",
			 (json_int_t)p->throttle_increment, "max-cpu-throttle",
			 (json_int_t)p->max_throttle);
}

json_t *migration_caps_json(struct vm *vm)
{
	return json_pack("[{s:s,s:b},{s:s,s:b}]", "capability", "auto-converge", "state",
			 vm->mig.params.auto_converge, "capability", "events", "state",
			 vm->mig.params.events);
}

static bool busy(const struct migration *m)
{
	return m->thread_started;
}

int migration_set_params(struct vm *vm, json_t *args, struct error *err)
{
	struct migration_params p = vm->mig.params;
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		json_int_t x = json_integer_value(v);

		if (!json_is_integer(v))
			return error_set(err, "Invalid parameter type for '%s', expected: integer",
					 key);
		if (!strcmp(key, "downtime-limit")) {
			if (x < 0 || x > 2000000)
				return error_set(err, "Parameter 'downtime-limit' expects an integer "
						 "in the range of 0 to 2000 seconds");
			p.downtime_limit_ms = (uint64_t)x;
		} else if (!strcmp(key, "max-bandwidth")) {
			if (x < 0)
				return error_set(err, "Parameter 'max-bandwidth' expects a size");
			p.max_bandwidth = (uint64_t)x;
		} else if (!strcmp(key, "cpu-throttle-initial") ||
			   !strcmp(key, "cpu-throttle-increment") ||
			   !strcmp(key, "max-cpu-throttle")) {
			if (x < 1 || x > 99)
				return error_set(err, "Parameter '%s' expects an integer in the "
						 "range of 1 to 99", key);
			if (!strcmp(key, "cpu-throttle-initial"))
				p.throttle_initial = (unsigned int)x;
			else if (!strcmp(key, "cpu-throttle-increment"))
				p.throttle_increment = (unsigned int)x;
			else
				p.max_throttle = (unsigned int)x;
		} else {
			return error_set(err, "Parameter '%s' is unexpected", key);
		}
	}
	/* The pre-copy thread reads the parameters between its passes. */
	vm->mig.params.downtime_limit_ms = p.downtime_limit_ms;
	vm->mig.params.throttle_initial = p.throttle_initial;
	vm->mig.params.throttle_increment = p.throttle_increment;
	vm->mig.params.max_throttle = p.max_throttle;
	__atomic_store_n(&vm->mig.params.max_bandwidth, p.max_bandwidth, __ATOMIC_RELAXED);
	return 0;
}

int migration_set_caps(struct vm *vm, json_t *caps, struct error *err)
{
	bool ac = vm->mig.params.auto_converge, ev = vm->mig.params.events;
	size_t i;
	json_t *c;

	if (!json_is_array(caps))
		return error_set(err, "Invalid parameter type for 'capabilities', expected: array");
	json_array_foreach(caps, i, c) {
		json_t *name = json_object_get(c, "capability"), *state = json_object_get(c, "state");

		if (!json_is_string(name) || !json_is_boolean(state) || json_object_size(c) != 2)
			return error_set(err, "capabilities: each is {\"capability\": NAME, "
					 "\"state\": BOOL}");
		if (!strcmp(json_string_value(name), "auto-converge"))
			ac = json_is_true(state);
		else if (!strcmp(json_string_value(name), "events"))
			ev = json_is_true(state); /* what libvirt sets before it migrates */
		else
			return error_set(err, "Capability '%s' is not supported by Vireo",
					 json_string_value(name));
	}
	if (busy(&vm->mig))
		return error_set(err, "There's a migration process in progress");
	vm->mig.params.auto_converge = ac;
	__atomic_store_n(&vm->mig.params.events, ev, __ATOMIC_RELAXED);
	return 0;
}
