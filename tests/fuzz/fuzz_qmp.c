/* The QMP control socket's input, as a hostile client sends it: the
 * input is cut into pieces (the first byte of each piece says how long
 * it is) and sent over a socketpair to a real server (qmp_server.c) that
 * answers with a fake machine. Invariants: every line the server writes
 * is one JSON object that is a greeting, a reply ("return" or "error") or
 * an event; no more replies than requests can explain (at most one per
 * byte); and nothing crashes, leaks or reads out of bounds (ASan). */
#include <jansson.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "../unit/fake_qmp_migration.h"
#include "qmp/qmp.h"
#include "qmp/qmp_server.h"

static bool paused;

static const char *f_status(void *ctx)
{
	(void)ctx;
	return paused ? "paused" : "running";
}

static int f_stop(void *ctx, struct error *err)
{
	(void)ctx;
	if (paused)
		return error_set(err, "already paused");
	paused = true;
	return 0;
}

static int f_cont(void *ctx, struct error *err)
{
	(void)ctx;
	(void)err;
	paused = false;
	return 0;
}

static int f_powerdown(void *ctx, struct error *err)
{
	(void)ctx;
	(void)err;
	return 0;
}

static int f_reset(void *ctx, struct error *err)
{
	(void)ctx;
	(void)err;
	return 0;
}

static int f_migrate(void *ctx, const char *uri, struct error *err)
{
	(void)ctx;
	CHECK(uri != NULL);
	return strncmp(uri, "file:", 5) ? error_set(err, "not file:") : 0;
}

static json_t *f_query_migrate(void *ctx)
{
	(void)ctx;
	return json_object();
}


static void f_quit(void *ctx)
{
	(void)ctx;
}

static json_t *f_list(void *ctx)
{
	(void)ctx;
	return json_array();
}

static json_t *f_stats(void *ctx, struct error *err)
{
	(void)ctx;
	(void)err;
	return json_object();
}

static const struct qmp_ops ops = {
	.status = f_status, .stop = f_stop, .cont = f_cont, .powerdown = f_powerdown,
	.reset = f_reset, .quit = f_quit, .query_cpus = f_list, .query_block = f_list, .query_pci = f_list,
	.stats = f_stats, .migrate = f_migrate, .query_migrate = f_query_migrate,
	.migrate_cancel = f_migrate_cancel, .query_migrate_parameters = f_migrate_params,
	.query_migrate_capabilities = f_list, .migrate_set_parameters = f_set_migrate_params,
	.migrate_set_capabilities = f_set_migrate_caps,
};

/* Reads what the server wrote and checks each CRLF-terminated line. */
static size_t drain_and_check(int fd)
{
	static char buf[1 << 20];
	static size_t have;
	size_t lines = 0;
	ssize_t n;

	while ((n = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT)) > 0) {
		char *start = buf, *nl;

		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
			json_error_t e;
			json_t *v;

			CHECK(nl > start && nl[-1] == '\r');
			v = json_loadb(start, (size_t)(nl - start - 1), 0, &e);
			CHECK(v && json_is_object(v));
			CHECK(json_object_get(v, "return") || json_object_get(v, "error") ||
			      json_object_get(v, "event") || json_object_get(v, "QMP"));
			json_decref(v);
			lines++;
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		memmove(buf, start, have);
		CHECK(have < sizeof(buf) - 1); /* one line never exceeds 1 MiB */
	}
	return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct qmp_server srv;
	size_t sent = 0, lines;
	int sv[2];

	paused = false;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(qmp_server_attach(&srv, sv[0]) == 0);
	lines = drain_and_check(sv[1]);
	CHECK(lines == 1); /* the greeting */
	while (in.n && srv.client_fd >= 0 && !srv.session.quit) {
		size_t len = 1 + fuzz_u8(&in) * 16u;

		if (len > in.n)
			len = in.n;
		if (send(sv[1], in.p, len, MSG_DONTWAIT) != (ssize_t)len)
			break;
		in.p += len;
		in.n -= len;
		sent += len;
		qmp_server_ready(&srv, &ops);
		lines += drain_and_check(sv[1]);
		/* One reply per request, a request is at least 2 bytes ("{}"),
		 * plus one error per oversized request and the greeting. */
		CHECK(lines <= 1 + sent);
	}
	qmp_server_close(&srv);
	close(sv[1]);
	return 0;
}
