/* The migration parameter commands of a fake VM behind the QMP server,
 * for test_qmp and fuzz_qmp alike: cancel does nothing, parameters are
 * one downtime limit, and setting them refuses only what the tests send
 * to be refused (a key "bad", capabilities that are not an array). */
#ifndef VIREO_TESTS_FAKE_QMP_MIGRATION_H
#define VIREO_TESTS_FAKE_QMP_MIGRATION_H

#include <jansson.h>

#include "util/error.h"

static void f_migrate_cancel(void *ctx)
{
	(void)ctx;
}

static json_t *f_migrate_params(void *ctx)
{
	(void)ctx;
	return json_pack("{s:i}", "downtime-limit", 300);
}

static int f_set_migrate_params(void *ctx, json_t *args, struct error *err)
{
	(void)ctx;
	return json_object_get(args, "bad") ? error_set(err, "Parameter 'bad' is unexpected") : 0;
}

static int f_set_migrate_caps(void *ctx, json_t *caps, struct error *err)
{
	(void)ctx;
	return json_is_array(caps) ? 0 : error_set(err, "expected: array");
}

#endif
