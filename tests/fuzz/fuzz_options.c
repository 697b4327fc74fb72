/* options_parse on an argv made by splitting the input on NUL bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmm/options.h"

#define MAX_ARGS 64

static int inside(const char *p, const char *buf, size_t len)
{
	return p >= buf && p <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *argv[MAX_ARGS + 2];
	int argc = 0;
	size_t i, start = 0;
	struct vm_options o;
	enum options_result r;

	if (size > 4096)
		return 0;
	/* Exactly size + 1 bytes, so reading past an argument is caught. */
	buf = malloc(size + 1);
	CHECK(buf);
	memcpy(buf, data, size);
	buf[size] = 0;
	argv[argc++] = "vireo";
	for (i = 0; i <= size && argc < MAX_ARGS + 1; i++) {
		if (buf[i] == 0) {
			argv[argc++] = buf + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;

	r = options_parse(argc, argv, &o);
	CHECK(r == OPTIONS_RUN || r == OPTIONS_EXIT_OK || r == OPTIONS_USAGE);
	if (r == OPTIONS_RUN) {
		CHECK(o.kernel && inside(o.kernel, buf, size));
		CHECK(o.memory > 0);
		CHECK(o.cpus >= 1);
		CHECK(o.cmdline);
		CHECK(!strcmp(o.cmdline, VIREO_DEFAULT_CMDLINE) || inside(o.cmdline, buf, size));
		CHECK(!o.initrd || inside(o.initrd, buf, size));
		CHECK(!o.stats_json || inside(o.stats_json, buf, size));
		/* Parsing is repeatable: the same argv (as permuted) gives the
		 * same result. */
		{
			struct vm_options again;

			CHECK(options_parse(argc, argv, &again) == OPTIONS_RUN);
			CHECK(again.memory == o.memory && again.cpus == o.cpus);
			CHECK(!strcmp(again.kernel, o.kernel));
		}
	}
	free(buf);
	return 0;
}
