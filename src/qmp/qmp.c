#include "qmp/qmp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "version.h"

const char *const qmp_command_names[] = {
	"qmp_capabilities", "query-version", "query-commands", "query-status",
	"stop", "cont", "system_powerdown", "system_reset", "quit", "query-cpus-fast", "query-block",
	"query-pci", "query-vireo-stats", "migrate", "query-migrate", "migrate_cancel", "migrate-set-parameters",
	"query-migrate-parameters", "migrate-set-capabilities", "query-migrate-capabilities",
	"query-vireo-ram-digest", "query-vireo-migration-pages", "pmemsave", NULL,
};

/* Vireo's version where QEMU puts its own: clients print it, and the
 * structure stays the one they parse. */
static json_t *version_object(void)
{
	unsigned int major = 0, minor = 0, micro = 0;

	sscanf(VIREO_VERSION, "%u.%u.%u", &major, &minor, &micro);
	return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "major", (json_int_t)major, "minor",
			 (json_int_t)minor, "micro", (json_int_t)micro, "package",
			 "vireo " VIREO_VERSION);
}

json_t *qmp_greeting(void)
{
	return json_pack("{s:{s:o,s:[]}}", "QMP", "version", version_object(), "capabilities");
}

static json_t *verror(const char *klass, const char *fmt, va_list ap)
{
	char desc[512];

	vsnprintf(desc, sizeof(desc), fmt, ap);
	return json_pack("{s:{s:s,s:s}}", "error", "class", klass ? klass : "GenericError", "desc",
			 desc);
}

json_t *qmp_error(const char *klass, const char *fmt, ...)
{
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	e = verror(klass, fmt, ap);
	va_end(ap);
	return e;
}

json_t *qmp_event(const char *name, json_t *data)
{
	struct timeval tv;
	json_t *ev;

	gettimeofday(&tv, NULL);
	ev = json_pack("{s:s,s:{s:I,s:I}}", "event", name, "timestamp", "seconds",
		       (json_int_t)tv.tv_sec, "microseconds", (json_int_t)tv.tv_usec);
	if (data)
		json_object_set_new(ev, "data", data);
	return ev;
}

static json_t *ok(json_t *value)
{
	return json_pack("{s:o}", "return", value ? value : json_object());
}

static json_t *from_error(const struct error *err)
{
	return qmp_error(NULL, "%s", err->set ? err->msg : "failed");
}

/* Commands without arguments refuse any (QEMU: "Parameter 'x' is
 * unexpected"). */
static json_t *no_arguments(json_t *args)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v)
		return qmp_error(NULL, "Parameter '%s' is unexpected", key);
	return NULL;
}

/* migrate {"uri": "file:PATH"}; QEMU's "detach" (a no-op there too) is
 * taken, its other flags are not offered. */
static json_t *migrate(const struct qmp_ops *ops, json_t *args)
{
	struct error err = { 0 };
	json_t *uri = json_object_get(args, "uri"), *v;
	const char *key;

	json_object_foreach(args, key, v) {
		if (!strcmp(key, "detach") && json_is_boolean(v))
			continue;
		if (!strcmp(key, "detach"))
			return qmp_error(NULL, "Invalid parameter type for 'detach', expected: boolean");
		if (strcmp(key, "uri"))
			return qmp_error(NULL, "Parameter '%s' is unexpected", key);
	}
	if (!uri)
		return qmp_error(NULL, "Parameter 'uri' is missing");
	if (!json_is_string(uri))
		return qmp_error(NULL, "Invalid parameter type for 'uri', expected: string");
	return ops->migrate(ops->ctx, json_string_value(uri), &err) < 0 ? from_error(&err) : ok(NULL);
}

static json_t *query_commands(void)
{
	json_t *list = json_array();
	unsigned int i;

	for (i = 0; qmp_command_names[i]; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", qmp_command_names[i]));
	return list;
}

static json_t *query_status(const struct qmp_ops *ops)
{
	const char *st = ops->status(ops->ctx);

	return json_pack("{s:s,s:b,s:b}", "status", st, "singlestep", 0, "running",
			 !strcmp(st, "running"));
}

static json_t *array_or_empty(json_t *a)
{
	return a ? a : json_array();
}

/* An unsigned integer argument: 0 and *out set, 1 when absent (*out
 * keeps its default), or an error reply. */
static json_t *uint_arg(json_t *args, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return NULL;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return qmp_error(NULL, "Parameter '%s' expects an unsigned integer", key);
	*out = (uint64_t)json_integer_value(v);
	return NULL;
}

static json_t *only_keys(json_t *args, const char *const *keys)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		const char *const *k;

		for (k = keys; *k && strcmp(*k, key); k++)
			;
		if (!*k)
			return qmp_error(NULL, "Parameter '%s' is unexpected", key);
	}
	return NULL;
}

static json_t *ram_digest(const struct qmp_ops *ops, json_t *args)
{
	static const char *const keys[] = { "offset", "length", "chunk-size", NULL };
	uint64_t offset = 0, length = UINT64_MAX, chunk = 1u << 20;
	struct error err = { 0 };
	json_t *bad, *d;

	if ((bad = only_keys(args, keys)) || (bad = uint_arg(args, "offset", &offset)) ||
	    (bad = uint_arg(args, "length", &length)) || (bad = uint_arg(args, "chunk-size", &chunk)))
		return bad;
	if (chunk < 4096 || chunk & (chunk - 1))
		return qmp_error(NULL, "Parameter 'chunk-size' must be a power of two of at least 4096");
	d = ops->ram_digest(ops->ctx, offset, length, chunk, &err);
	return d ? ok(d) : from_error(&err);
}

static json_t *migration_pages(const struct qmp_ops *ops, json_t *args)
{
	static const char *const keys[] = { "offset", "length", NULL };
	uint64_t offset = UINT64_MAX, length = 4096;
	struct error err = { 0 };
	json_t *bad, *d;

	if ((bad = only_keys(args, keys)) || (bad = uint_arg(args, "offset", &offset)) ||
	    (bad = uint_arg(args, "length", &length)))
		return bad;
	/* Without an offset: the summary per pass. */
	d = ops->migration_pages(ops->ctx, offset, length, &err);
	return d ? ok(d) : from_error(&err);
}

static json_t *pmemsave(const struct qmp_ops *ops, json_t *args)
{
	static const char *const keys[] = { "val", "size", "filename", NULL };
	uint64_t addr = UINT64_MAX, size = UINT64_MAX;
	json_t *bad, *file = json_object_get(args, "filename");
	struct error err = { 0 };

	if ((bad = only_keys(args, keys)) || (bad = uint_arg(args, "val", &addr)) ||
	    (bad = uint_arg(args, "size", &size)))
		return bad;
	if (addr == UINT64_MAX || size == UINT64_MAX || !json_is_string(file))
		return qmp_error(NULL, "pmemsave needs 'val', 'size' and 'filename'");
	return ops->pmemsave(ops->ctx, addr, size, json_string_value(file), &err) < 0
		       ? from_error(&err)
		       : ok(NULL);
}

static json_t *run_command(struct qmp_session *s, const struct qmp_ops *ops, const char *cmd,
			   json_t *args)
{
	struct error err = { 0 };
	json_t *bad;

	if (!strcmp(cmd, "qmp_capabilities")) {
		json_t *enable = json_object_get(args, "enable");

		if (s->negotiated)
			return qmp_error("CommandNotFound",
					 "Capabilities negotiation is already complete, command ignored");
		/* The only capability QEMU offers is "oob"; Vireo offers none. */
		if (enable && (!json_is_array(enable) || json_array_size(enable)))
			return qmp_error(NULL, "Capability '%s' not available",
					 json_is_array(enable) && json_is_string(json_array_get(enable, 0))
						 ? json_string_value(json_array_get(enable, 0))
						 : "?");
		if (json_object_size(args) > (enable ? 1u : 0u))
			return qmp_error(NULL, "Parameter '%s' is unexpected",
					 json_object_iter_key(json_object_iter(args)));
		s->negotiated = true;
		return ok(NULL);
	}
	if (!s->negotiated)
		return qmp_error("CommandNotFound",
				 "Expecting capabilities negotiation with 'qmp_capabilities'");
	if (!strcmp(cmd, "migrate"))
		return migrate(ops, args);
	if (!strcmp(cmd, "migrate-set-parameters"))
		return ops->migrate_set_parameters(ops->ctx, args, &err) < 0 ? from_error(&err)
									     : ok(NULL);
	if (!strcmp(cmd, "migrate-set-capabilities")) {
		const char *key;
		json_t *v;

		json_object_foreach(args, key, v)
			if (strcmp(key, "capabilities"))
				return qmp_error(NULL, "Parameter '%s' is unexpected", key);
		if (!json_object_get(args, "capabilities"))
			return qmp_error(NULL, "Parameter 'capabilities' is missing");
		return ops->migrate_set_capabilities(ops->ctx, json_object_get(args, "capabilities"),
						     &err) < 0
			       ? from_error(&err)
			       : ok(NULL);
	}
	if (!strcmp(cmd, "query-vireo-ram-digest") && ops->ram_digest)
		return ram_digest(ops, args);
	if (!strcmp(cmd, "query-vireo-migration-pages") && ops->migration_pages)
		return migration_pages(ops, args);
	if (!strcmp(cmd, "pmemsave") && ops->pmemsave)
		return pmemsave(ops, args);
	bad = no_arguments(args);
	if (bad)
		return bad;
	if (!strcmp(cmd, "query-version"))
		return ok(version_object());
	if (!strcmp(cmd, "query-commands"))
		return ok(query_commands());
	if (!strcmp(cmd, "query-status"))
		return ok(query_status(ops));
	if (!strcmp(cmd, "stop"))
		return ops->stop(ops->ctx, &err) < 0 ? from_error(&err) : ok(NULL);
	if (!strcmp(cmd, "cont"))
		return ops->cont(ops->ctx, &err) < 0 ? from_error(&err) : ok(NULL);
	if (!strcmp(cmd, "system_powerdown"))
		return ops->powerdown(ops->ctx, &err) < 0 ? from_error(&err) : ok(NULL);
	if (!strcmp(cmd, "system_reset"))
		return ops->reset(ops->ctx, &err) < 0 ? from_error(&err) : ok(NULL);
	if (!strcmp(cmd, "quit")) {
		s->quit = true;
		ops->quit(ops->ctx);
		return ok(NULL);
	}
	if (!strcmp(cmd, "query-cpus-fast"))
		return ok(array_or_empty(ops->query_cpus(ops->ctx)));
	if (!strcmp(cmd, "query-block"))
		return ok(array_or_empty(ops->query_block(ops->ctx)));
	if (!strcmp(cmd, "query-pci"))
		return ok(array_or_empty(ops->query_pci(ops->ctx)));
	if (!strcmp(cmd, "query-migrate"))
		return ok(ops->query_migrate(ops->ctx));
	if (!strcmp(cmd, "migrate_cancel")) {
		ops->migrate_cancel(ops->ctx);
		return ok(NULL);
	}
	if (!strcmp(cmd, "query-migrate-parameters"))
		return ok(ops->query_migrate_parameters(ops->ctx));
	if (!strcmp(cmd, "query-migrate-capabilities"))
		return ok(ops->query_migrate_capabilities(ops->ctx));
	if (!strcmp(cmd, "query-vireo-stats")) {
		json_t *st = ops->stats(ops->ctx, &err);

		return st ? ok(st) : from_error(&err);
	}
	return qmp_error("CommandNotFound", "The command %s has not been found", cmd);
}

json_t *qmp_handle(struct qmp_session *s, const struct qmp_ops *ops, json_t *request)
{
	json_t *id, *exec, *args, *reply;
	const char *key;
	json_t *v;

	if (!json_is_object(request))
		return qmp_error(NULL, "QMP input must be a JSON object");
	id = json_object_get(request, "id");
	exec = json_object_get(request, "execute");
	args = json_object_get(request, "arguments");
	json_object_foreach(request, key, v) {
		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id")) {
			reply = qmp_error(NULL, "QMP input member '%s' is unexpected", key);
			goto out;
		}
	}
	if (!exec) {
		reply = qmp_error(NULL, "QMP input lacks member 'execute'");
	} else if (!json_is_string(exec)) {
		reply = qmp_error(NULL, "QMP input member 'execute' must be a string");
	} else if (args && !json_is_object(args)) {
		reply = qmp_error(NULL, "QMP input member 'arguments' must be an object");
	} else {
		json_t *empty = args ? NULL : json_object();

		reply = run_command(s, ops, json_string_value(exec), args ? args : empty);
		json_decref(empty);
	}
out:
	if (id)
		json_object_set(reply, "id", id);
	return reply;
}
