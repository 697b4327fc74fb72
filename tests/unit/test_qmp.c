/* QMP: the protocol (qmp/qmp.c) against a fake machine, and the server
 * (qmp/qmp_server.c) over a socketpair: negotiation, errors worded as
 * QEMU words them, ids echoed, requests split across reads or packed
 * together, and input that is not QMP (garbage, oversized requests)
 * answered with one error each while the session goes on. */
#include "cmocka_prelude.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_qmp_migration.h"
#include "qmp/qmp.h"
#include "qmp/qmp_server.h"

struct fake_vm {
	bool paused, refuse_stop;
	int stops, conts, presses, resets, quits, migrations;
	char uri[64];
};

static struct fake_vm fake;

static const char *f_status(void *ctx)
{
	return ((struct fake_vm *)ctx)->paused ? "paused" : "running";
}

static int f_stop(void *ctx, struct error *err)
{
	struct fake_vm *f = ctx;

	if (f->refuse_stop)
		return error_set(err, "virtio-blk0: 1 request still in flight after 10 s");
	f->stops++;
	f->paused = true;
	return 0;
}

static int f_cont(void *ctx, struct error *err)
{
	struct fake_vm *f = ctx;

	(void)err;
	f->conts++;
	f->paused = false;
	return 0;
}

static int f_powerdown(void *ctx, struct error *err)
{
	(void)err;
	((struct fake_vm *)ctx)->presses++;
	return 0;
}

static int f_reset(void *ctx, struct error *err)
{
	struct fake_vm *f = ctx;

	if (f->refuse_stop)
		return error_set(err, "cannot reset: the vCPUs did not stop within 5000 ms");
	f->resets++;
	return 0;
}

static int f_migrate(void *ctx, const char *uri, struct error *err)
{
	struct fake_vm *f = ctx;

	if (strncmp(uri, "file:", 5))
		return error_set(err, "'%s': Vireo migrates to file:PATH only", uri);
	f->migrations++;
	snprintf(f->uri, sizeof(f->uri), "%s", uri);
	return 0;
}

static json_t *f_query_migrate(void *ctx)
{
	struct fake_vm *f = ctx;

	return f->migrations ? json_pack("{s:s}", "status", "completed") : json_object();
}


static void f_quit(void *ctx)
{
	((struct fake_vm *)ctx)->quits++;
}

static json_t *f_list(void *ctx)
{
	(void)ctx;
	return json_pack("[{s:i}]", "cpu-index", 0);
}

static json_t *f_stats(void *ctx, struct error *err)
{
	(void)ctx;
	(void)err;
	return json_pack("{s:i}", "vcpus_count", 1);
}

static const struct qmp_ops ops = {
	.ctx = &fake, .status = f_status, .stop = f_stop, .cont = f_cont,
	.powerdown = f_powerdown, .reset = f_reset, .quit = f_quit, .query_cpus = f_list,
	.query_block = f_list, .query_pci = f_list, .stats = f_stats, .migrate = f_migrate,
	.query_migrate = f_query_migrate,
	.migrate_cancel = f_migrate_cancel, .query_migrate_parameters = f_migrate_params,
	.query_migrate_capabilities = f_list, .migrate_set_parameters = f_set_migrate_params,
	.migrate_set_capabilities = f_set_migrate_caps,
};

/* Runs one request given as text; returns the reply (caller frees). */
static json_t *ask(struct qmp_session *s, const char *text)
{
	json_error_t e;
	json_t *req = json_loads(text, 0, &e), *reply;

	assert_non_null(req);
	reply = qmp_handle(s, &ops, req);
	json_decref(req);
	return reply;
}

static const char *error_class(json_t *reply)
{
	return json_string_value(json_object_get(json_object_get(reply, "error"), "class"));
}

static const char *error_desc(json_t *reply)
{
	return json_string_value(json_object_get(json_object_get(reply, "error"), "desc"));
}

static void test_greeting_and_negotiation(void **state)
{
	struct qmp_session s = { 0 };
	json_t *g = qmp_greeting(), *r;

	(void)state;
	memset(&fake, 0, sizeof(fake));
	assert_true(json_is_integer(json_object_get(
		json_object_get(json_object_get(json_object_get(g, "QMP"), "version"), "qemu"),
		"major")));
	assert_true(json_is_array(json_object_get(json_object_get(g, "QMP"), "capabilities")));
	json_decref(g);

	r = ask(&s, "{\"execute\": \"stop\"}");
	assert_string_equal(error_class(r), "CommandNotFound");
	assert_string_equal(error_desc(r),
			    "Expecting capabilities negotiation with 'qmp_capabilities'");
	assert_int_equal(fake.stops, 0); /* nothing runs before negotiation */
	json_decref(r);
	r = ask(&s, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
	assert_string_equal(error_desc(r), "Capability 'oob' not available");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"qmp_capabilities\", \"id\": \"n1\"}");
	assert_true(json_is_object(json_object_get(r, "return")));
	assert_string_equal(json_string_value(json_object_get(r, "id")), "n1");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"qmp_capabilities\"}");
	assert_string_equal(error_desc(r),
			    "Capabilities negotiation is already complete, command ignored");
	json_decref(r);
}

static void test_commands_and_errors(void **state)
{
	struct qmp_session s = { .negotiated = true };
	json_t *r;

	(void)state;
	memset(&fake, 0, sizeof(fake));
	r = ask(&s, "{\"execute\": \"stop\", \"id\": 42}");
	assert_int_equal(fake.stops, 1);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 42);
	json_decref(r);
	r = ask(&s, "{\"execute\": \"query-status\"}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "return"), "status")),
			    "paused");
	assert_true(json_is_false(json_object_get(json_object_get(r, "return"), "running")));
	json_decref(r);
	r = ask(&s, "{\"execute\": \"cont\"}");
	assert_int_equal(fake.conts, 1);
	json_decref(r);

	/* The machine's refusal reaches the client as its message. */
	fake.refuse_stop = true;
	r = ask(&s, "{\"execute\": \"stop\"}");
	assert_string_equal(error_class(r), "GenericError");
	assert_string_equal(error_desc(r), "virtio-blk0: 1 request still in flight after 10 s");
	json_decref(r);

	r = ask(&s, "{\"execute\": \"no-such-thing\"}");
	assert_string_equal(error_class(r), "CommandNotFound");
	assert_string_equal(error_desc(r), "The command no-such-thing has not been found");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"cont\", \"arguments\": {\"force\": true}}");
	assert_string_equal(error_desc(r), "Parameter 'force' is unexpected");
	json_decref(r);
	r = ask(&s, "{\"execute\": 5}");
	assert_string_equal(error_desc(r), "QMP input member 'execute' must be a string");
	json_decref(r);
	r = ask(&s, "{\"exec\": \"stop\"}");
	assert_string_equal(error_desc(r), "QMP input member 'exec' is unexpected");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"stop\", \"arguments\": []}");
	assert_string_equal(error_desc(r), "QMP input member 'arguments' must be an object");
	json_decref(r);
	r = ask(&s, "[1, 2]");
	assert_string_equal(error_desc(r), "QMP input must be a JSON object");
	json_decref(r);

	r = ask(&s, "{\"execute\": \"query-commands\"}");
	assert_true(json_array_size(json_object_get(r, "return")) >= 10);
	json_decref(r);
	r = ask(&s, "{\"execute\": \"query-vireo-stats\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "return"),
							    "vcpus_count")),
			 1);
	json_decref(r);
	r = ask(&s, "{\"execute\": \"system_powerdown\"}");
	assert_int_equal(fake.presses, 1);
	json_decref(r);
	fake.refuse_stop = false;
	r = ask(&s, "{\"execute\": \"system_reset\"}");
	assert_int_equal(fake.resets, 1);
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
	fake.refuse_stop = true;
	r = ask(&s, "{\"execute\": \"system_reset\"}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "cannot reset: the vCPUs did not stop within 5000 ms");
	fake.refuse_stop = false;
	json_decref(r);
	/* The migration's parameters and capabilities: arguments checked,
	 * then handed over. */
	r = ask(&s, "{\"execute\": \"migrate-set-capabilities\"}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "Parameter 'capabilities' is missing");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate-set-capabilities\", \"arguments\": "
		    "{\"capabilities\": [], \"x\": 1}}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "Parameter 'x' is unexpected");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate-set-capabilities\", \"arguments\": "
		    "{\"capabilities\": []}}");
	assert_non_null(json_object_get(r, "return"));
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"bad\": 1}}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "Parameter 'bad' is unexpected");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"query-migrate-parameters\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "return"),
							    "downtime-limit")), 300);
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate_cancel\", \"arguments\": {\"x\": 1}}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "Parameter 'x' is unexpected");
	json_decref(r);
	/* migrate: its uri checked as QEMU words it, then handed over. */
	r = ask(&s, "{\"execute\": \"query-migrate\"}");
	assert_int_equal(json_object_size(json_object_get(r, "return")), 0);
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate\"}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "Parameter 'uri' is missing");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": 5}}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "Invalid parameter type for 'uri', expected: string");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:/x\", \"blk\": true}}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
			    "Parameter 'blk' is unexpected");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:h:1\"}}");
	assert_non_null(json_object_get(r, "error"));
	json_decref(r);
	assert_int_equal(fake.migrations, 0);
	r = ask(&s, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:/x\", \"detach\": true}}");
	assert_non_null(json_object_get(r, "return"));
	assert_string_equal(fake.uri, "file:/x");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"query-migrate\"}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "return"), "status")),
			    "completed");
	json_decref(r);
	r = ask(&s, "{\"execute\": \"quit\"}");
	assert_int_equal(fake.quits, 1);
	assert_true(s.quit);
	json_decref(r);
}

/* ---- the server, over a socketpair --------------------------------- */

static int peer;
static struct qmp_server srv;

static int server_setup(void **state)
{
	int sv[2];

	(void)state;
	memset(&fake, 0, sizeof(fake));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	peer = sv[1];
	assert_int_equal(qmp_server_attach(&srv, sv[0]), 0);
	return 0;
}

static int server_teardown(void **state)
{
	(void)state;
	qmp_server_close(&srv);
	close(peer);
	return 0;
}

/* Reads the replies that are there now, one JSON object per line. */
static unsigned int replies(json_t **out, unsigned int max)
{
	static char buf[1 << 16];
	unsigned int n = 0;
	ssize_t len;
	char *line, *save = NULL;

	len = recv(peer, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	for (line = strtok_r(buf, "\r\n", &save); line && n < max;
	     line = strtok_r(NULL, "\r\n", &save)) {
		json_error_t e;

		out[n] = json_loads(line, 0, &e);
		assert_non_null(out[n]);
		n++;
	}
	return n;
}

static void feed(const char *text)
{
	assert_int_equal(send(peer, text, strlen(text), 0), (ssize_t)strlen(text));
	qmp_server_ready(&srv, &ops);
}

static void free_all(json_t **r, unsigned int n)
{
	while (n--)
		json_decref(r[n]);
}

static void test_server_framing(void **state)
{
	json_t *r[8];
	unsigned int n;

	(void)state;
	n = replies(r, 8);
	assert_int_equal(n, 1); /* the greeting */
	assert_non_null(json_object_get(r[0], "QMP"));
	free_all(r, n);

	/* Two requests with no newline between them, then one split in
	 * the middle of a string: three answers, in order. */
	feed("{\"execute\":\"qmp_capabilities\"}{\"execute\":\"stop\",\"id\":1}");
	feed("{\"execute\":\"co");
	assert_int_equal(replies(r, 8), 2);
	assert_int_equal(json_integer_value(json_object_get(r[1], "id")), 1);
	free_all(r, 2);
	feed("nt\",\"id\":2}\n");
	n = replies(r, 8);
	assert_int_equal(n, 1);
	assert_int_equal(json_integer_value(json_object_get(r[0], "id")), 2);
	free_all(r, n);
	assert_int_equal(fake.stops, 1);
	assert_int_equal(fake.conts, 1);

	/* Garbage: one error for the line, and the session goes on. */
	feed("this is not json {{{\n{\"execute\":\"query-status\",\"id\":3}\n");
	n = replies(r, 8);
	assert_int_equal(n, 2);
	assert_non_null(strstr(error_desc(r[0]), "JSON parse error"));
	assert_int_equal(json_integer_value(json_object_get(r[1], "id")), 3);
	free_all(r, n);
}

static void test_server_oversized_request(void **state)
{
	size_t big = 3 * QMP_INPUT_MAX + 100, done = 0;
	char *junk = malloc(big);
	json_t *r[8];
	unsigned int n, errors = 0;

	(void)state;
	free_all(r, replies(r, 8));
	feed("{\"execute\":\"qmp_capabilities\"}\n");
	free_all(r, replies(r, 8));
	/* A request three times the buffer, sent in pieces the server reads
	 * as they come: one error, and the request after it still works. */
	memset(junk, 'x', big);
	junk[0] = '"';
	while (done < big) {
		size_t chunk = big - done < 8192 ? big - done : 8192;

		assert_int_equal(send(peer, junk + done, chunk, 0), (ssize_t)chunk);
		done += chunk;
		qmp_server_ready(&srv, &ops);
		n = replies(r, 8);
		for (unsigned int i = 0; i < n; i++)
			errors += json_object_get(r[i], "error") != NULL;
		free_all(r, n);
	}
	free(junk);
	assert_int_equal(errors, 1);
	feed("\n{\"execute\":\"cont\",\"id\":9}\n");
	n = replies(r, 8);
	assert_int_equal(n, 1);
	assert_int_equal(json_integer_value(json_object_get(r[0], "id")), 9);
	free_all(r, n);
	assert_int_equal(fake.conts, 1);
}

static void test_server_events_after_negotiation_only(void **state)
{
	json_t *r[8];
	unsigned int n;

	(void)state;
	free_all(r, replies(r, 8));
	qmp_server_event(&srv, qmp_event("STOP", NULL)); /* not negotiated: dropped */
	assert_int_equal(replies(r, 8), 0);
	feed("{\"execute\":\"qmp_capabilities\"}\n");
	free_all(r, replies(r, 8));
	qmp_server_event(&srv, qmp_event("SHUTDOWN", json_pack("{s:b,s:s}", "guest", 0, "reason",
							       "host-qmp-quit")));
	n = replies(r, 8);
	assert_int_equal(n, 1);
	assert_string_equal(json_string_value(json_object_get(r[0], "event")), "SHUTDOWN");
	assert_true(json_is_integer(json_object_get(json_object_get(r[0], "timestamp"), "seconds")));
	free_all(r, n);
}

/* A client that sends requests and goes away without reading the
 * answers: the server drops it in the middle of answering, and must not
 * touch the buffer it just let go (found by the e2e flood test). */
static void test_server_client_gone_mid_answer(void **state)
{
	char flood[64 * 40];
	size_t len = 0;

	(void)state;
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(flood + len, sizeof(flood) - len,
					"{\"execute\":\"query-status\",\"id\":%d}", i);
	assert_int_equal(send(peer, "{\"execute\":\"qmp_capabilities\"}", 31, 0), 31);
	assert_int_equal(send(peer, flood, len, 0), (ssize_t)len);
	shutdown(peer, SHUT_RDWR); /* the answers have nowhere to go */
	qmp_server_ready(&srv, &ops);
	qmp_server_ready(&srv, &ops);
	assert_int_equal(srv.client_fd, -1);
	assert_int_equal(srv.in_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_negotiation),
		cmocka_unit_test(test_commands_and_errors),
		cmocka_unit_test_setup_teardown(test_server_framing, server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_oversized_request, server_setup,
						server_teardown),
		cmocka_unit_test_setup_teardown(test_server_events_after_negotiation_only, server_setup,
						server_teardown),
		cmocka_unit_test_setup_teardown(test_server_client_gone_mid_answer, server_setup,
						server_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
