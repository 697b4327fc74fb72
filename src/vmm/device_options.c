/* Parsing of the device flags: --disk, --net, --can, --console. Checks syntax and
 * values only; whether a file or interface can be opened is found out when
 * the device is created, before the guest runs. */
#include <stdio.h>
#include <string.h>

#include "hw/ide.h"
#include "net/hostfwd.h"
#include "util/keyval.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/options.h"

static int copy_arg(const char *flag, const char *arg, char *buf)
{
	if (strlen(arg) >= OPTION_ARG_MAX) {
		log_error("%s: option string longer than %d characters", flag, OPTION_ARG_MAX - 1);
		return -1;
	}
	strcpy(buf, arg);
	return 0;
}

static int split(const char *flag, const char *arg, char *buf, struct keyval *kv)
{
	int n;

	if (copy_arg(flag, arg, buf) < 0)
		return -1;
	n = keyval_split(buf, kv, KEYVAL_MAX);
	if (n < 0)
		log_error("%s '%s': malformed (expected key=value pairs separated by commas)", flag,
			  arg);
	return n;
}

int parse_disk_option(const char *arg, struct disk_config *d)
{
	struct keyval kv[KEYVAL_MAX];
	int i, n;

	memset(d, 0, sizeof(*d));
	d->block.cache = BLOCK_CACHE_WRITEBACK;
	n = split("--disk", arg, d->arg, kv);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		const char *k = kv[i].key, *v = kv[i].value;

		if (!v) {
			log_error("--disk '%s': '%s' needs a value (e.g. path=FILE)", arg, k);
			return -1;
		}
		if (!strcmp(k, "path")) {
			if (!*v) {
				log_error("--disk '%s': empty path", arg);
				return -1;
			}
			if (d->block.path) {
				log_error("--disk '%s': give one of path=, nbd= and rbd=", arg);
				return -1;
			}
			d->block.path = v;
		} else if (!strcmp(k, "nbd")) {
			if (d->block.path) {
				log_error("--disk '%s': give one of path=, nbd= and rbd=", arg);
				return -1;
			}
			if (strncmp(v, "nbd://", 6) && strncmp(v, "nbd+unix://", 11) &&
			    strncmp(v, "nbds://", 7) && strncmp(v, "nbds+unix://", 12)) {
				log_error("--disk '%s': nbd= takes a URI: nbd://HOST[:PORT]/EXPORT or "
					  "nbd+unix:///EXPORT?socket=PATH", arg);
				return -1;
			}
			d->block.path = v;
			d->block.protocol = BLOCK_PROTO_NBD;
		} else if (!strcmp(k, "rbd")) {
			if (d->block.path) {
				log_error("--disk '%s': give one of path=, nbd= and rbd=", arg);
				return -1;
			}
			if (!strchr(v, '/') || *v == '/' || v[strlen(v) - 1] == '/') {
				log_error("--disk '%s': rbd= takes POOL/IMAGE", arg);
				return -1;
			}
			d->block.path = v;
			d->block.protocol = BLOCK_PROTO_RBD;
		} else if (!strcmp(k, "conf")) {
			d->block.rbd_conf = v;
		} else if (!strcmp(k, "id")) {
			d->block.rbd_id = v;
		} else if (!strcmp(k, "readonly")) {
			if (keyval_bool(v, &d->block.read_only) < 0) {
				log_error("--disk '%s': readonly must be on or off", arg);
				return -1;
			}
		} else if (!strcmp(k, "serial")) {
			if (strlen(v) > VIRTIO_BLK_SERIAL_MAX) {
				log_error("--disk '%s': serial longer than %d characters", arg,
					  VIRTIO_BLK_SERIAL_MAX);
				return -1;
			}
			d->serial = v;
		} else if (!strcmp(k, "cache")) {
			if (!strcmp(v, "none")) {
				d->block.cache = BLOCK_CACHE_NONE;
			} else if (!strcmp(v, "writeback")) {
				d->block.cache = BLOCK_CACHE_WRITEBACK;
			} else {
				log_error("--disk '%s': cache must be none or writeback", arg);
				return -1;
			}
		} else if (!strcmp(k, "engine")) {
			if (strcmp(v, "uring") && strcmp(v, "threads")) {
				log_error("--disk '%s': engine must be uring or threads", arg);
				return -1;
			}
			d->block.engine = v;
		} else if (!strcmp(k, "snapshot")) {
			if (keyval_bool(v, &d->block.snapshot) < 0) {
				log_error("--disk '%s': snapshot must be on or off", arg);
				return -1;
			}
		} else if (!strcmp(k, "format")) {
			if (strcmp(v, "raw") && strcmp(v, "qcow2")) {
				log_error("--disk '%s': format must be raw or qcow2", arg);
				return -1;
			}
			d->block.format = v;
		} else if (!strcmp(k, "if")) {
			if (strcmp(v, "virtio") && strcmp(v, "ide")) {
				log_error("--disk '%s': if must be virtio or ide", arg);
				return -1;
			}
			d->ide = !strcmp(v, "ide");
		} else if (!strcmp(k, "l2-cache-size")) {
			if (parse_size(v, &d->block.l2_cache_size) < 0 || !d->block.l2_cache_size) {
				log_error("--disk '%s': l2-cache-size must be a size such as 1M", arg);
				return -1;
			}
		} else {
			log_error("--disk '%s': unknown key '%s' (path, nbd, rbd, conf, id, format, "
				  "readonly, snapshot, serial, cache, engine, l2-cache-size, if)", arg, k);
			return -1;
		}
	}
	if (!d->block.path) {
		log_error("--disk '%s': no path=FILE, nbd=URI or rbd=POOL/IMAGE given", arg);
		return -1;
	}
	if ((d->block.rbd_conf || d->block.rbd_id) && d->block.protocol != BLOCK_PROTO_RBD) {
		log_error("--disk '%s': conf= and id= are for rbd= disks", arg);
		return -1;
	}
	/* An ATA disk has no write protection to show the guest (QEMU
	 * refuses it too). */
	if (d->ide && d->block.read_only) {
		log_error("--disk '%s': an IDE disk cannot be read-only (use if=virtio)", arg);
		return -1;
	}
	return 0;
}

/* One limit serves both: IDENTIFY's serial field is 20 characters too. */
_Static_assert(VIRTIO_BLK_SERIAL_MAX == IDE_SERIAL_MAX, "--disk serial= limit");

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;
	int i;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6)
		return -1;
	for (i = 0; i < 6; i++) {
		if (s[3 * i + 2] != (i == 5 ? 0 : ':'))
			return -1;
		mac[i] = (uint8_t)b[i];
	}
	return (mac[0] & 1) ? -1 : 0; /* a multicast address cannot be a NIC's */
}

int parse_net_option(const char *arg, unsigned int index, struct net_config *n)
{
	struct keyval kv[KEYVAL_MAX];
	struct hostfwd fwd;
	int i, count;

	memset(n, 0, sizeof(*n));
	/* QEMU's default range, 52:54:00:12:34:56 and up. */
	memcpy(n->mac, (uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + index) }, 6);
	count = split("--net", arg, n->arg, kv);
	if (count < 0)
		return -1;
	if (!strcmp(kv[0].key, "tap") && kv[0].value) {
		if (!*kv[0].value || strlen(kv[0].value) >= 16) {
			log_error("--net '%s': tap interface name must be 1 to 15 characters", arg);
			return -1;
		}
		n->net.kind = NET_TAP;
		n->net.ifname = kv[0].value;
	} else if (!strcmp(kv[0].key, "user") && !kv[0].value) {
		n->net.kind = NET_USER;
	} else {
		log_error("--net '%s': must start with tap=IFNAME or user", arg);
		return -1;
	}
	for (i = 1; i < count; i++) {
		const char *k = kv[i].key, *v = kv[i].value;

		if (!v) {
			log_error("--net '%s': '%s' needs a value", arg, k);
			return -1;
		}
		if (!strcmp(k, "mac")) {
			if (parse_mac(v, n->mac) < 0) {
				log_error("--net '%s': invalid MAC address '%s' (want 6 hex bytes like 52:54:00:12:34:56, not multicast)",
					  arg, v);
				return -1;
			}
		} else if (!strcmp(k, "hostfwd") && n->net.kind == NET_USER) {
			if (hostfwd_parse(v, &fwd) < 0) {
				log_error("--net '%s': invalid hostfwd '%s' (want tcp:HOSTPORT-:GUESTPORT)",
					  arg, v);
				return -1;
			}
			if (n->net.nhostfwd >= sizeof(n->net.hostfwd) / sizeof(n->net.hostfwd[0])) {
				log_error("--net '%s': too many hostfwd rules", arg);
				return -1;
			}
			n->net.hostfwd[n->net.nhostfwd++] = v;
		} else if (!strcmp(k, "model")) {
			if (!strcmp(v, "virtio") || !strcmp(v, "virtio-net")) {
				n->model = NET_MODEL_VIRTIO;
			} else if (!strcmp(v, "e1000")) {
				n->model = NET_MODEL_E1000;
			} else {
				log_error("--net '%s': model must be virtio or e1000, not '%s'", arg, v);
				return -1;
			}
		} else {
			log_error("--net '%s': unknown key '%s' (%s)", arg, k,
				  n->net.kind == NET_USER ? "mac, hostfwd, model" : "mac, model");
			return -1;
		}
	}
	return 0;
}

int parse_console_option(const char *arg, enum console_kind *out)
{
	if (!strcmp(arg, "serial")) {
		*out = CONSOLE_SERIAL;
	} else if (!strcmp(arg, "virtio")) {
		*out = CONSOLE_VIRTIO;
	} else {
		log_error("--console '%s': must be serial or virtio", arg);
		return -1;
	}
	return 0;
}

int parse_qmp_option(const char *arg, struct vm_options *o)
{
	const char *path, *opts;
	size_t len;

	if (strncmp(arg, "unix:", 5)) {
		log_error("--qmp '%s': must be unix:PATH[,server=on][,wait=on|off] (only UNIX sockets)",
			  arg);
		return -1;
	}
	path = arg + 5;
	opts = strchr(path, ',');
	len = opts ? (size_t)(opts - path) : strlen(path);
	if (len == 0 || len >= sizeof(o->qmp_path)) {
		log_error("--qmp '%s': the socket path must be 1 to %zu characters", arg,
			  sizeof(o->qmp_path) - 1);
		return -1;
	}
	memcpy(o->qmp_path, path, len);
	o->qmp_path[len] = '\0';
	o->qmp_wait = true; /* QEMU's default for a server socket */
	while (opts) {
		const char *opt = opts + 1;
		size_t n;

		opts = strchr(opt, ',');
		n = opts ? (size_t)(opts - opt) : strlen(opt);
		if (n == 9 && !strncmp(opt, "server=on", n)) {
			continue;
		} else if (n == 6 && !strncmp(opt, "server", n)) {
			continue;
		} else if (n == 7 && !strncmp(opt, "wait=on", n)) {
			o->qmp_wait = true;
		} else if ((n == 8 && !strncmp(opt, "wait=off", n)) || (n == 6 && !strncmp(opt, "nowait", n))) {
			o->qmp_wait = false;
		} else if (n == 10 && !strncmp(opt, "server=off", n)) {
			log_error("--qmp '%s': Vireo serves QMP; server=off (connecting out) is not supported",
				  arg);
			return -1;
		} else {
			log_error("--qmp '%s': unknown option '%.*s' (server=on, wait=on|off)", arg, (int)n,
				  opt);
			return -1;
		}
	}
	return 0;
}

int parse_can_option(const char *arg, struct can_config *c)
{
	struct keyval kv[KEYVAL_MAX];
	int i, n;

	memset(c, 0, sizeof(*c));
	n = split("--can", arg, c->arg, kv);
	if (n < 0)
		return -1;
	if (!strcmp(kv[0].key, "socketcan") && kv[0].value) {
		if (!*kv[0].value || strlen(kv[0].value) >= 16) {
			log_error("--can '%s': interface name must be 1 to 15 characters", arg);
			return -1;
		}
		c->can.kind = CAN_SOCKETCAN;
		c->can.ifname = kv[0].value;
	} else if (!strcmp(kv[0].key, "bus") && kv[0].value) {
		if (!*kv[0].value || strlen(kv[0].value) >= 108) {
			log_error("--can '%s': bus path must be 1 to 107 characters", arg);
			return -1;
		}
		c->can.kind = CAN_BUS;
		c->can.path = kv[0].value;
	} else {
		log_error("--can '%s': must start with socketcan=IFNAME or bus=PATH", arg);
		return -1;
	}
	for (i = 1; i < n; i++) {
		const char *k = kv[i].key, *v = kv[i].value;

		if (!v) {
			log_error("--can '%s': '%s' needs a value", arg, k);
			return -1;
		}
		if (!strcmp(k, "fd")) {
			if (keyval_bool(v, &c->can.fd) < 0) {
				log_error("--can '%s': fd must be on or off", arg);
				return -1;
			}
		} else if (!strcmp(k, "log")) {
			if (!*v) {
				log_error("--can '%s': empty log file name", arg);
				return -1;
			}
			c->can.log = v;
		} else if (!strcmp(k, "model")) {
			if (!strcmp(v, "virtio")) {
				c->model = CAN_MODEL_VIRTIO;
			} else if (!strcmp(v, "kvaser")) {
				c->model = CAN_MODEL_KVASER;
			} else {
				log_error("--can '%s': model must be virtio or kvaser", arg);
				return -1;
			}
		} else {
			log_error("--can '%s': unknown key '%s' (fd, log, model)", arg, k);
			return -1;
		}
	}
	if (c->model == CAN_MODEL_KVASER && c->can.fd) {
		log_error("--can '%s': fd=on needs model=virtio (the Kvaser card's SJA1000 has no CAN FD)",
			  arg);
		return -1;
	}
	return 0;
}
