/* options_parse on an argv made by splitting the input on NUL bytes.
 * What it accepts must hold up: every string points into the argv (or is
 * the built-in default command line for the chosen console), every
 * device's fields point into its own private copy, and parsing the same
 * argv again gives the same options. */
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

/* A device field: NULL, or a string inside the device's own copy. */
static int in_arg(const char *p, const char *arg)
{
	return !p || (p >= arg && p + strlen(p) < arg + OPTION_ARG_MAX);
}

static void check_devices(const struct vm_options *o)
{
	unsigned int i, k;

	CHECK(o->ndisks <= VIREO_MAX_DISKS && o->nnets <= VIREO_MAX_NICS &&
	      o->ncans <= VIREO_MAX_CANS);
	for (i = 0; i < o->ndisks; i++) {
		const struct disk_config *d = &o->disk[i];

		CHECK(d->block.path && *d->block.path && in_arg(d->block.path, d->arg));
		CHECK(in_arg(d->serial, d->arg));
		CHECK(!d->serial || strlen(d->serial) <= VIRTIO_BLK_SERIAL_MAX);
		CHECK(in_arg(d->block.engine, d->arg));
	}
	for (i = 0; i < o->nnets; i++) {
		const struct net_config *n = &o->net[i];

		CHECK(!(n->mac[0] & 1)); /* a NIC's address is never multicast */
		CHECK(n->net.nhostfwd <= 8);
		CHECK(n->net.kind == NET_USER || n->net.nhostfwd == 0);
		if (n->net.kind == NET_TAP)
			CHECK(n->net.ifname && in_arg(n->net.ifname, n->arg) && *n->net.ifname &&
			      strlen(n->net.ifname) < 16); /* IFNAMSIZ */
		for (k = 0; k < n->net.nhostfwd; k++)
			CHECK(n->net.hostfwd[k] && in_arg(n->net.hostfwd[k], n->arg));
	}
	for (i = 0; i < o->ncans; i++) {
		const struct can_config *c = &o->can[i];

		CHECK(in_arg(c->can.log, c->arg) && (!c->can.log || *c->can.log));
		if (c->can.kind == CAN_SOCKETCAN)
			CHECK(c->can.ifname && in_arg(c->can.ifname, c->arg) && *c->can.ifname &&
			      strlen(c->can.ifname) < 16);
		else /* fits sockaddr_un's sun_path with its NUL */
			CHECK(c->can.kind == CAN_BUS && c->can.path && in_arg(c->can.path, c->arg) &&
			      *c->can.path && strlen(c->can.path) < 108);
	}
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
		CHECK(o.console == CONSOLE_SERIAL || o.console == CONSOLE_VIRTIO);
		/* A command line given is the argument itself; none given
		 * (getopt also takes abbreviations like --co=virtio, so the
		 * input cannot simply be searched) is the console's default. */
		CHECK(inside(o.cmdline, buf, size) ||
		      !strcmp(o.cmdline, o.console == CONSOLE_VIRTIO ? VIREO_VIRTIO_CONSOLE_CMDLINE
								     : VIREO_DEFAULT_CMDLINE));
		CHECK(!o.initrd || inside(o.initrd, buf, size));
		CHECK(!o.stats_json || inside(o.stats_json, buf, size));
		check_devices(&o);
		/* Parsing is repeatable: the same argv (as permuted) gives the
		 * same result. */
		{
			struct vm_options again;

			CHECK(options_parse(argc, argv, &again) == OPTIONS_RUN);
			CHECK(again.memory == o.memory && again.cpus == o.cpus);
			CHECK(!strcmp(again.kernel, o.kernel));
			CHECK(!strcmp(again.cmdline, o.cmdline) && again.console == o.console);
			CHECK(again.ndisks == o.ndisks && again.nnets == o.nnets &&
			      again.ncans == o.ncans);
			CHECK(again.rng == o.rng && again.no_ioeventfd == o.no_ioeventfd);
			CHECK(!again.initrd == !o.initrd);
		}
	}
	free(buf);
	return 0;
}
