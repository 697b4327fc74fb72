/* vireo ctl SOCKET COMMAND [JSON-ARGUMENTS]: a one-shot QMP client, like
 * ch-remote or lkvm's subcommands: connects, negotiates, runs one command
 * and prints its "return" value (JSON) on stdout, or the error's desc on
 * stderr. Exit status 0, 1 when the command failed, 2 on a usage or
 * connection error. Works with QEMU's QMP socket too.
 *
 * One command of its own: "snapshot PATH" saves the VM to PATH (QMP
 * migrate to file:PATH) and lets it run on if it ran before. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp/ctl.h"
#include "util/log.h"

#define CTL_REPLY_MAX (16u << 20)

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len;
};

/* The next JSON object on the connection that is not an event. */
static json_t *next_reply(struct conn *c, const char *path)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (nl) {
			json_error_t e;
			json_t *v = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &e);
			size_t used = (size_t)(nl - c->buf) + 1;

			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			if (!v) {
				log_error("ctl: '%s' sent something that is not JSON: %s", path, e.text);
				return NULL;
			}
			if (json_object_get(v, "event")) {
				json_decref(v);
				continue;
			}
			return v;
		}
		if (c->len == sizeof(c->buf)) {
			log_error("ctl: a reply from '%s' is larger than %zu bytes", path, sizeof(c->buf));
			return NULL;
		}
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("ctl: '%s' closed the connection", path);
			return NULL;
		}
		c->len += (size_t)n;
	}
}

static int send_request(struct conn *c, const char *cmd, json_t *args)
{
	json_t *req = json_pack("{s:s}", "execute", cmd);
	char *text;
	int ret = 0;

	if (args)
		json_object_set(req, "arguments", args);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text || write(c->fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    write(c->fd, "\n", 1) != 1)
		ret = -1;
	free(text);
	return ret;
}

int ctl_main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct conn c = { .fd = -1 };
	json_t *args = NULL, *reply = NULL, *greeting;
	const char *path, *cmd, *snapshot = NULL;
	bool was_running = false;
	int status = 2;

	if (argc < 3 || argc > 4 || !strcmp(argv[1], "--help")) {
		fprintf(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
			"Usage: vireo ctl SOCKET COMMAND [JSON-ARGUMENTS]\n"
			"Runs one QMP command on a running VM's control socket (vireo --qmp\n"
			"unix:SOCKET,...) and prints its result as JSON. Examples:\n"
			"  vireo ctl /run/vm.sock query-status\n"
			"  vireo ctl /run/vm.sock stop\n"
			"  vireo ctl /run/vm.sock query-vireo-stats\n"
			"  vireo ctl /run/vm.sock snapshot /var/lib/vm.snap\n"
			"(restore it with: vireo --incoming file:/var/lib/vm.snap and the VM's\n"
			"other options)\n");
		return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	path = argv[1];
	cmd = argv[2];
	if (!strcmp(cmd, "snapshot")) {
		if (argc != 4 || !argv[3][0]) {
			log_error("ctl: snapshot needs the file to write: snapshot PATH");
			return 2;
		}
		snapshot = argv[3];
		cmd = "migrate";
	} else if (argc == 4) {
		json_error_t e;

		args = json_loads(argv[3], 0, &e);
		if (!json_is_object(args)) {
			log_error("ctl: arguments '%s' are not a JSON object%s%s", argv[3],
				  args ? "" : ": ", args ? "" : e.text);
			json_decref(args);
			return 2;
		}
	}
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("ctl: socket path '%s' is too long", path);
		goto out;
	}
	strcpy(addr.sun_path, path);
	c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		log_error("ctl: cannot connect to '%s': %s", path, strerror(errno));
		goto out;
	}
	greeting = next_reply(&c, path);
	if (!greeting || !json_object_get(greeting, "QMP")) {
		if (greeting)
			log_error("ctl: '%s' is not a QMP socket (no greeting)", path);
		json_decref(greeting);
		goto out;
	}
	json_decref(greeting);
	if (send_request(&c, "qmp_capabilities", NULL) < 0 || !(reply = next_reply(&c, path)))
		goto out;
	json_decref(reply);
	if (snapshot) {
		char uri[4096 + 8];

		if (send_request(&c, "query-status", NULL) < 0 || !(reply = next_reply(&c, path)))
			goto out;
		was_running = json_is_true(json_object_get(json_object_get(reply, "return"),
							   "running"));
		json_decref(reply);
		snprintf(uri, sizeof(uri), "file:%s", snapshot);
		args = json_pack("{s:s}", "uri", uri);
	}
	if (send_request(&c, cmd, args) < 0 || !(reply = next_reply(&c, path)))
		goto out;
	if (snapshot && was_running && json_object_get(reply, "return")) {
		json_t *resumed;

		/* The snapshot is taken: the VM goes on. */
		if (send_request(&c, "cont", NULL) < 0 || !(resumed = next_reply(&c, path)))
			goto out;
		if (!json_object_get(resumed, "return")) {
			json_decref(reply);
			reply = resumed;
		} else {
			json_decref(resumed);
		}
	}
	if (json_object_get(reply, "return")) {
		json_dumpf(json_object_get(reply, "return"), stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		status = 0;
	} else {
		json_t *err = json_object_get(reply, "error");

		log_error("%s: %s", cmd, json_string_value(json_object_get(err, "desc")) ?: "failed");
		status = 1;
	}
out:
	json_decref(reply);
	json_decref(args);
	if (c.fd >= 0)
		close(c.fd);
	return status;
}
