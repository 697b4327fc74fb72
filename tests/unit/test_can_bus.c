/* The Vireo CAN bus for real: a hub (canbus_hub.c) running in a thread on
 * a temporary socket, members joining through can_backend_open() exactly
 * as virtio-can does, and `vireo canbus` itself (canbus_main) for the
 * command-line parts. */
#include "cmocka_prelude.h"
#include "capture_stderr.h"
#include "can_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "can/can.h"
#include "can/canbus_hub.h"
#include "can/canbus_proto.h"

/* ---- helpers ---- */


/* A hub on a fresh temporary socket, in a thread of its own. */
struct hub {
	char dir[64];
	char path[96];
	struct canbus_hub *h;
	int stop_fd;
	pthread_t thread;
	bool running;
	struct canbus_hub_stats st; /* after hub_stop */
};

static void *hub_thread(void *arg)
{
	struct hub *hub = arg;

	assert_int_equal(canbus_hub_run(hub->h, hub->stop_fd), 0);
	return NULL;
}

static void hub_make_dir(struct hub *hub)
{
	memset(hub, 0, sizeof(*hub));
	snprintf(hub->dir, sizeof(hub->dir), "/tmp/vireo-can-XXXXXX");
	assert_non_null(mkdtemp(hub->dir));
	snprintf(hub->path, sizeof(hub->path), "%s/bus0", hub->dir);
	hub->stop_fd = -1;
}

static void hub_start_at(struct hub *hub)
{
	struct canbus_hub_options o = { .path = hub->path };

	hub->h = canbus_hub_open(&o);
	assert_non_null(hub->h);
	hub->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(hub->stop_fd >= 0);
	assert_int_equal(pthread_create(&hub->thread, NULL, hub_thread, hub), 0);
	hub->running = true;
}

static void hub_start(struct hub *hub)
{
	hub_make_dir(hub);
	hub_start_at(hub);
}

static void hub_stop(struct hub *hub)
{
	uint64_t one = 1;

	if (hub->running) {
		assert_int_equal(write(hub->stop_fd, &one, sizeof(one)), sizeof(one));
		assert_int_equal(pthread_join(hub->thread, NULL), 0);
		hub->running = false;
		canbus_hub_stats(hub->h, &hub->st);
		canbus_hub_close(hub->h);
		hub->h = NULL;
		close(hub->stop_fd);
		hub->stop_fd = -1;
	}
}

/* Holds the hub still without closing it: what members send waits in
 * their sockets until hub_resume(). */
static void hub_pause(struct hub *hub)
{
	uint64_t one = 1;

	assert_int_equal(write(hub->stop_fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(pthread_join(hub->thread, NULL), 0);
	hub->running = false;
}

static void hub_resume(struct hub *hub)
{
	uint64_t v;

	assert_int_equal(read(hub->stop_fd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(pthread_create(&hub->thread, NULL, hub_thread, hub), 0);
	hub->running = true;
}

static void hub_cleanup(struct hub *hub)
{
	hub_stop(hub);
	unlink(hub->path);
	rmdir(hub->dir);
}

static struct can_backend *member(const struct hub *hub, bool fd, const char *log)
{
	struct can_options o = { .kind = CAN_BUS, .path = hub->path, .fd = fd, .log = log };
	struct can_backend *b = can_backend_open(&o);

	assert_non_null(b);
	return b;
}

/* The four kinds the tests send around. */
static void four_frames(struct can_msg out[4])
{
	out[0] = frame(0x123, 0, 8, 0x10);
	out[1] = frame(0x1abcdef0 >> 1, CAN_MSG_EXT, 5, 0x20);
	out[2] = frame(0x321, CAN_MSG_RTR, 4, 0);
	out[3] = frame(0x7ff, CAN_MSG_FD | CAN_MSG_BRS, 64, 0x30);
}

/* ---- tests ---- */

static void test_frames_reach_the_others(void **state)
{
	struct can_backend *a, *b, *c;
	struct can_msg f[4], g;
	struct hub hub;
	unsigned int i;

	(void)state;
	hub_start(&hub);
	a = member(&hub, true, NULL);
	b = member(&hub, true, NULL);
	c = member(&hub, true, NULL);
	assert_true(can_backend_fd(a));
	assert_int_equal(strncmp(can_backend_name(a), "bus:", 4), 0);
	assert_string_equal(can_backend_name(a) + 4, hub.path);

	four_frames(f);
	for (i = 0; i < 4; i++)
		assert_int_equal(can_backend_send(a, &f[i]), 0);
	for (i = 0; i < 4; i++) {
		expect_frame(b, &f[i]);
		expect_frame(c, &f[i]);
	}
	/* The sender hears confirmations, never its own frames. */
	for (i = 0; i < 4; i++)
		expect_event(a, CAN_EVENT_TX_DONE);
	expect_quiet(a, 100);
	expect_quiet(b, 0);
	expect_quiet(c, 0);

	/* And the other way round. */
	g = frame(0x42, 0, 2, 0x99);
	assert_int_equal(can_backend_send(c, &g), 0);
	expect_frame(a, &g);
	expect_frame(b, &g);
	expect_event(c, CAN_EVENT_TX_DONE);
	expect_quiet(c, 100);
	expect_quiet(a, 0);
	expect_quiet(b, 0);

	can_backend_close(a);
	can_backend_close(b);
	can_backend_close(c);
	hub_cleanup(&hub);
	assert_int_equal(hub.st.frames, 5);
	assert_int_equal(hub.st.dropped, 0);
	assert_int_equal(hub.st.protocol_errors, 0);
}

static void test_classic_member_skips_fd_frames(void **state)
{
	struct can_backend *a, *classic;
	struct can_msg f[4];
	struct hub hub;
	unsigned int i;

	(void)state;
	hub_start(&hub);
	a = member(&hub, true, NULL);
	classic = member(&hub, false, NULL);
	assert_false(can_backend_fd(classic));
	four_frames(f);
	for (i = 0; i < 4; i++)
		assert_int_equal(can_backend_send(a, &f[i]), 0);
	for (i = 0; i < 3; i++)
		expect_frame(classic, &f[i]);
	for (i = 0; i < 4; i++)
		expect_event(a, CAN_EVENT_TX_DONE);
	expect_quiet(classic, 100);
	/* A classic controller cannot send FD frames at all. */
	assert_int_equal(can_backend_send(classic, &f[3]), -EOPNOTSUPP);
	/* Nor anything breaking CAN's rules. */
	f[0].len = 9;
	assert_int_equal(can_backend_send(a, &f[0]), -EINVAL);
	can_backend_close(a);
	can_backend_close(classic);
	hub_cleanup(&hub);
}

static void test_late_member_sees_only_new_frames(void **state)
{
	struct can_backend *a, *b, *late;
	struct can_msg f1 = frame(0x100, 0, 1, 1), f2 = frame(0x200, 0, 2, 2);
	struct hub hub;

	(void)state;
	hub_start(&hub);
	a = member(&hub, false, NULL);
	b = member(&hub, false, NULL);
	assert_int_equal(can_backend_send(a, &f1), 0);
	expect_event(a, CAN_EVENT_TX_DONE); /* f1 is on the bus */
	expect_frame(b, &f1);
	late = member(&hub, false, NULL);
	assert_int_equal(can_backend_send(a, &f2), 0);
	expect_frame(late, &f2);
	expect_frame(b, &f2);
	expect_event(a, CAN_EVENT_TX_DONE);
	expect_quiet(late, 100);
	can_backend_close(a);
	can_backend_close(b);
	can_backend_close(late);
	hub_cleanup(&hub);
}

/* One member never reads: the others keep talking at full speed, every
 * frame arrives and is confirmed; what the sleeper misses is counted. */
/* can_backend_cancel(): frames the hub has not taken yet never reach the
 * bus, and no confirmation is reported for any frame sent before it, taken
 * or not; frames after it are confirmed one for one. */
static void test_cancel_withdraws_frames(void **state)
{
	struct can_backend *a, *b;
	struct can_msg f;
	struct hub hub;
	unsigned int i;

	(void)state;
	hub_start(&hub);
	a = member(&hub, false, NULL);
	b = member(&hub, false, NULL);
	/* Stalled bus: nothing sent before the cancel goes out. */
	hub_pause(&hub);
	for (i = 0; i < 10; i++) {
		f = frame(0x100 + i, 0, 1, (uint8_t)i);
		assert_int_equal(can_backend_send(a, &f), 0);
	}
	assert_int_equal(can_backend_cancel(a), 0);
	f = frame(0x200, 0, 2, 0x42);
	assert_int_equal(can_backend_send(a, &f), 0);
	hub_resume(&hub);
	expect_frame(b, &f);
	expect_quiet(b, 200);
	expect_event(a, CAN_EVENT_TX_DONE);
	expect_quiet(a, 200);

	/* Running bus: frames taken before the cancel may go out, but their
	 * confirmations are not reported; the next frame's is. */
	for (i = 0; i < 5; i++) {
		f = frame(0x300 + i, 0, 1, (uint8_t)i);
		assert_int_equal(can_backend_send(a, &f), 0);
	}
	assert_int_equal(can_backend_cancel(a), 0);
	f = frame(0x400, 0, 1, 0x44);
	assert_int_equal(can_backend_send(a, &f), 0);
	expect_event(a, CAN_EVENT_TX_DONE);
	expect_quiet(a, 200);
	for (;;) {
		enum can_event ev;
		struct can_msg m;

		assert_int_equal(next_event(b, &ev, &m, 5000), 1);
		assert_int_equal(ev, CAN_EVENT_FRAME);
		if (m.id == 0x400)
			break;
		assert_true(m.id >= 0x300 && m.id < 0x305);
	}
	can_backend_close(a);
	can_backend_close(b);
	hub_stop(&hub);
	assert_int_equal(hub.st.cancelled, 10 + 5 - (hub.st.frames - 2));
	hub_cleanup(&hub);
}

static void test_full_member_does_not_block(void **state)
{
	enum { N = 3000 };
	struct can_backend *a, *b, *sleeper;
	unsigned int sent = 0, acked = 0, got_b = 0, got_sleeper = 0;
	int64_t deadline;
	struct hub hub;
	enum can_event ev;
	struct can_msg m;
	int last = -1;

	(void)state;
	hub_start(&hub);
	a = member(&hub, false, NULL);
	b = member(&hub, false, NULL);
	sleeper = member(&hub, false, NULL);
	deadline = now_ms() + 60000;
	while ((sent < N || acked < N || got_b < N) && now_ms() < deadline) {
		struct pollfd p[2] = {
			{ .fd = can_backend_rx_fd(a), .events = POLLIN | (sent < N ? POLLOUT : 0) },
			{ .fd = can_backend_rx_fd(b), .events = POLLIN },
		};

		/* A keeps at most a window of frames ahead of b, as a
		 * controller whose peers read at their own pace would. */
		while (sent < N && sent - got_b < 192) {
			struct can_msg f = frame(0x100 + sent % 0x100, 0, 8, 0);
			int r;

			memcpy(f.data, &sent, sizeof(sent));
			r = can_backend_send(a, &f);
			if (r == -EAGAIN)
				break;
			assert_int_equal(r, 0);
			sent++;
		}
		while (can_backend_recv(a, &ev, &m) > 0) {
			assert_int_equal(ev, CAN_EVENT_TX_DONE);
			acked++;
		}
		while (can_backend_recv(b, &ev, &m) > 0) {
			unsigned int seq;

			assert_int_equal(ev, CAN_EVENT_FRAME);
			memcpy(&seq, m.data, sizeof(seq));
			assert_int_equal(seq, got_b); /* all of them, in order */
			got_b++;
		}
		poll(p, 2, 100);
	}
	assert_int_equal(sent, N);
	assert_int_equal(acked, N);
	assert_int_equal(got_b, N);
	expect_quiet(a, 0);

	/* The sleeper wakes up: an in-order part of the traffic. */
	while (next_event(sleeper, &ev, &m, 300) > 0) {
		unsigned int seq;

		assert_int_equal(ev, CAN_EVENT_FRAME);
		memcpy(&seq, m.data, sizeof(seq));
		assert_true((int)seq > last);
		last = (int)seq;
		got_sleeper++;
	}
	print_message("sleeper got %u of %u frames\n", got_sleeper, N);
	assert_true(got_sleeper > 0);
	assert_true(got_sleeper < N);
	can_backend_close(a);
	can_backend_close(b);
	can_backend_close(sleeper);
	hub_cleanup(&hub);
	assert_int_equal(hub.st.frames, N);
	assert_int_equal(hub.st.dropped, N - got_sleeper);
}

static void test_inject_busoff(void **state)
{
	struct can_backend *m[3];
	char *argv[] = { "canbus", NULL, "--inject-busoff", NULL };
	struct can_msg f = frame(0x10, 0, 1, 0);
	struct hub hub;
	unsigned int i;

	(void)state;
	hub_start(&hub);
	for (i = 0; i < 3; i++)
		m[i] = member(&hub, i == 1, NULL);
	argv[1] = hub.path;
	assert_int_equal(canbus_main(3, argv), 0);
	for (i = 0; i < 3; i++) {
		expect_event(m[i], CAN_EVENT_BUSOFF);
		expect_quiet(m[i], 0);
	}
	/* The bus itself carries on. */
	assert_int_equal(can_backend_send(m[0], &f), 0);
	expect_frame(m[1], &f);
	expect_frame(m[2], &f);
	expect_event(m[0], CAN_EVENT_TX_DONE);
	for (i = 0; i < 3; i++)
		can_backend_close(m[i]);
	hub_cleanup(&hub);
}

static void test_candump_log(void **state)
{
	char log_path[128], text[4096], expect[256], *line, *save;
	struct can_backend *a, *b;
	struct can_msg f[4], g = frame(0x1f, 0, 3, 0xa0);
	const char *want[5];
	struct hub hub;
	unsigned int i, n = 0;
	ssize_t len;
	int fd;

	(void)state;
	hub_start(&hub);
	snprintf(log_path, sizeof(log_path), "%s/a.log", hub.dir);
	a = member(&hub, true, log_path);
	b = member(&hub, true, NULL);
	four_frames(f);
	for (i = 0; i < 4; i++)
		assert_int_equal(can_backend_send(a, &f[i]), 0);
	for (i = 0; i < 4; i++)
		expect_event(a, CAN_EVENT_TX_DONE);
	assert_int_equal(can_backend_send(b, &g), 0);
	expect_frame(a, &g);
	/* Every line is on disk at once: read it while a is still open. */
	fd = open(log_path, O_RDONLY);
	assert_true(fd >= 0);
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	assert_true(len > 0);
	text[len] = '\0';
	want[0] = "bus0 123#10171E252C333A41";
	want[1] = "bus0 0D5E6F78#20272E353C";
	want[2] = "bus0 321#R4";
	want[3] = expect;
	want[4] = "bus0 01F#A0A7AE";
	n = (unsigned int)snprintf(expect, sizeof(expect), "bus0 7FF##5");
	for (i = 0; i < 64; i++)
		n += (unsigned int)snprintf(expect + n, sizeof(expect) - n, "%02X", f[3].data[i]);
	n = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long long sec;
		int usec, used = 0;

		assert_true(n < 5);
		assert_int_equal(sscanf(line, "(%lld.%6d) %n", &sec, &usec, &used), 2);
		assert_true(sec > 1600000000);
		assert_int_equal(line[used - 2], ')');
		assert_int_equal(line[18], ')'); /* 10 digits . 6 digits */
		assert_string_equal(line + used, want[n]);
		n++;
	}
	assert_int_equal(n, 5);
	can_backend_close(a);
	can_backend_close(b);
	unlink(log_path);
	hub_cleanup(&hub);
}

static void test_log_open_error(void **state)
{
	struct can_options o = { .kind = CAN_BUS, .log = "/nonexistent-dir/x.log" };
	struct captured c;
	struct hub hub;
	char expect[512];
	int saved;

	(void)state;
	hub_start(&hub);
	o.path = hub.path;
	saved = stderr_begin();
	assert_null(can_backend_open(&o));
	stderr_end(saved, &c);
	snprintf(expect, sizeof(expect),
		 "vireo: error: --can bus=%s,log=/nonexistent-dir/x.log: cannot open log file /nonexistent-dir/x.log: No such file or directory\n",
		 hub.path);
	assert_string_equal(c.text, expect);
	hub_cleanup(&hub);
}

static void expect_open_error(const char *path, const char *expect)
{
	struct can_options o = { .kind = CAN_BUS, .path = path };
	struct captured c;
	int saved = stderr_begin();

	assert_null(can_backend_open(&o));
	stderr_end(saved, &c);
	assert_string_equal(c.text, expect);
}

static void test_bad_paths(void **state)
{
	char dir[] = "/tmp/vireo-can-XXXXXX", path[128], expect[512], longp[200];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, s;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/none", dir);
	snprintf(expect, sizeof(expect),
		 "vireo: error: --can bus=%s: no Vireo CAN bus at %s (start one with: vireo canbus %s)\n",
		 path, path, path);
	expect_open_error(path, expect);

	/* A plain file is no bus either. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	expect_open_error(path, expect);
	unlink(path);

	/* A stale socket file: nobody listens. */
	s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	expect_open_error(path, expect);
	unlink(path);

	/* A stream socket listening: another program. */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 1), 0);
	snprintf(expect, sizeof(expect),
		 "vireo: error: --can bus=%s: %s is a socket of another kind, not a Vireo CAN bus\n",
		 path, path);
	expect_open_error(path, expect);
	close(s);
	unlink(path);

	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	snprintf(expect, sizeof(expect),
		 "vireo: error: --can bus=%s: socket path too long (at most 107 bytes)\n", longp);
	expect_open_error(longp, expect);
	expect_open_error("", "vireo: error: --can bus=: empty socket path\n");
	rmdir(dir);
}

/* A fake hub: accepts one member, reads its hello, answers with reply
 * (reply_len bytes; 0: hangs up), then waits for the member to go. */
struct fake {
	int listen_fd;
	uint8_t reply[CANBUS_MSG_SIZE];
	size_t reply_len;
	uint8_t hello[CANBUS_MSG_SIZE + 1];
	ssize_t hello_len;
};

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	char c;
	int fd = accept(f->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	f->hello_len = recv(fd, f->hello, sizeof(f->hello), MSG_TRUNC);
	if (f->reply_len)
		send(fd, f->reply, f->reply_len, MSG_NOSIGNAL);
	else
		shutdown(fd, SHUT_RDWR);
	while (recv(fd, &c, 1, 0) > 0)
		;
	close(fd);
	return NULL;
}

static void fake_hub(const uint8_t *reply, size_t reply_len, const char *expect_fmt)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/vireo-can-XXXXXX", path[128], expect[512];
	struct canbus_pkt hello;
	struct fake f = { 0 };
	pthread_t t;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fake", dir);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	f.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(bind(f.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f.listen_fd, 1), 0);
	if (reply_len)
		memcpy(f.reply, reply, reply_len);
	f.reply_len = reply_len;
	assert_int_equal(pthread_create(&t, NULL, fake_thread, &f), 0);
	snprintf(expect, sizeof(expect), expect_fmt, path, path);
	expect_open_error(path, expect);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* What a member says first: a version 1 hello with its name. */
	assert_int_equal(f.hello_len, CANBUS_MSG_SIZE);
	assert_int_equal(canbus_decode(f.hello, CANBUS_MSG_SIZE, &hello), 0);
	assert_int_equal(hello.type, CANBUS_HELLO);
	assert_int_equal(hello.version, CANBUS_VERSION);
	assert_int_equal(strncmp((const char *)hello.msg.data, "vireo[", 6), 0);
	close(f.listen_fd);
	unlink(path);
	rmdir(dir);
}

static void test_not_a_hub(void **state)
{
	struct canbus_pkt p = { .version = 2, .type = CANBUS_HELLO };
	uint8_t buf[CANBUS_MSG_SIZE];

	(void)state;
	fake_hub(NULL, 0,
		 "vireo: error: --can bus=%s: the program listening at %s closed the connection (not a Vireo CAN bus?)\n");
	memset(buf, 0x5a, sizeof(buf));
	fake_hub(buf, sizeof(buf),
		 "vireo: error: --can bus=%s: %s answers, but not like a Vireo CAN bus\n");
	canbus_encode(buf, &p);
	fake_hub(buf, sizeof(buf),
		 "vireo: error: --can bus=%s: the Vireo CAN bus at %s speaks protocol version 2, this Vireo version 1\n");
	p.version = CANBUS_VERSION;
	p.type = CANBUS_TX_ACK;
	canbus_encode(buf, &p);
	fake_hub(buf, sizeof(buf),
		 "vireo: error: --can bus=%s: %s answers, but not like a Vireo CAN bus\n");
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return s;
}

/* Reads until the hub hangs up; false if it stays connected 5 s. */
static bool hub_hangs_up(int s, uint8_t *first, ssize_t *first_len)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	uint8_t buf[CANBUS_MSG_SIZE + 1];
	bool have_first = false;

	while (poll(&p, 1, 5000) > 0) {
		ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
		if (n > 0 && !have_first && first) {
			memcpy(first, buf, CANBUS_MSG_SIZE);
			*first_len = n;
			have_first = true;
		}
	}
	return false;
}

/* A member sending garbage is cut off; everyone else is unaffected. */
static void test_hub_survives_garbage(void **state)
{
	struct canbus_pkt p = { .version = CANBUS_VERSION, .type = CANBUS_HELLO };
	uint8_t buf[CANBUS_MSG_SIZE + 8], first[CANBUS_MSG_SIZE];
	struct can_msg f = frame(0x55, 0, 1, 5);
	struct can_backend *a, *b;
	struct captured c;
	struct hub hub;
	ssize_t first_len = 0;
	int s, saved;

	(void)state;
	hub_start(&hub);
	a = member(&hub, false, NULL);
	b = member(&hub, false, NULL);
	saved = stderr_begin();

	/* Not even a hello. */
	s = raw_connect(hub.path);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(send(s, buf, 13, 0), 13);
	assert_true(hub_hangs_up(s, NULL, NULL));
	close(s);

	/* A frame before the hello. */
	s = raw_connect(hub.path);
	p.type = CANBUS_FRAME;
	p.msg = f;
	canbus_encode(buf, &p);
	assert_int_equal(send(s, buf, CANBUS_MSG_SIZE, 0), CANBUS_MSG_SIZE);
	assert_true(hub_hangs_up(s, NULL, NULL));
	close(s);

	/* A hello from the future: answered with version 1, then cut. */
	s = raw_connect(hub.path);
	p.type = CANBUS_HELLO;
	p.version = 9;
	memset(&p.msg, 0, sizeof(p.msg));
	canbus_encode(buf, &p);
	assert_int_equal(send(s, buf, CANBUS_MSG_SIZE, 0), CANBUS_MSG_SIZE);
	assert_true(hub_hangs_up(s, first, &first_len));
	assert_int_equal(first_len, CANBUS_MSG_SIZE);
	assert_int_equal(canbus_decode(first, CANBUS_MSG_SIZE, &p), 0);
	assert_int_equal(p.type, CANBUS_HELLO);
	assert_int_equal(p.version, CANBUS_VERSION);
	close(s);

	/* A proper hello, then an oversized message, a TX_ACK, a bad frame. */
	for (int kind = 0; kind < 3; kind++) {
		s = raw_connect(hub.path);
		memset(&p, 0, sizeof(p));
		p.version = CANBUS_VERSION;
		p.type = CANBUS_HELLO;
		canbus_encode(buf, &p);
		assert_int_equal(send(s, buf, CANBUS_MSG_SIZE, 0), CANBUS_MSG_SIZE);
		if (kind == 0) {
			assert_int_equal(send(s, buf, sizeof(buf), 0), sizeof(buf));
		} else if (kind == 1) {
			p.type = CANBUS_TX_ACK;
			canbus_encode(buf, &p);
			assert_int_equal(send(s, buf, CANBUS_MSG_SIZE, 0), CANBUS_MSG_SIZE);
		} else {
			p.type = CANBUS_FRAME;
			p.msg = frame(0x800, 0, 1, 0); /* 12-bit standard id */
			canbus_encode(buf, &p);
			assert_int_equal(send(s, buf, CANBUS_MSG_SIZE, 0), CANBUS_MSG_SIZE);
		}
		assert_true(hub_hangs_up(s, NULL, NULL));
		close(s);
	}
	stderr_end(saved, &c);
	assert_non_null(strstr(c.text, "did not start with a hello"));
	assert_non_null(strstr(c.text, "speaks protocol version 9"));
	assert_non_null(strstr(c.text, "sent a malformed message"));
	assert_non_null(strstr(c.text, "sent a message only the hub may send"));

	/* The real members never noticed. */
	expect_quiet(a, 50);
	expect_quiet(b, 0);
	assert_int_equal(can_backend_send(a, &f), 0);
	expect_frame(b, &f);
	expect_event(a, CAN_EVENT_TX_DONE);
	can_backend_close(a);
	can_backend_close(b);
	hub_cleanup(&hub);
	assert_int_equal(hub.st.protocol_errors, 5);
	assert_int_equal(hub.st.frames, 1);
}

/* A member that sends and hangs up at once still gets its frames out. */
static void test_frames_before_hangup_delivered(void **state)
{
	struct canbus_pkt p = { .version = CANBUS_VERSION, .type = CANBUS_HELLO };
	uint8_t buf[CANBUS_MSG_SIZE];
	struct can_backend *a;
	struct hub hub;
	unsigned int i;
	int s;

	(void)state;
	hub_start(&hub);
	a = member(&hub, false, NULL);
	s = raw_connect(hub.path);
	canbus_encode(buf, &p);
	assert_int_equal(send(s, buf, sizeof(buf), 0), sizeof(buf));
	p.type = CANBUS_FRAME;
	for (i = 0; i < 100; i++) {
		p.seq = i;
		p.msg = frame(i, 0, 1, (uint8_t)i);
		canbus_encode(buf, &p);
		assert_int_equal(send(s, buf, sizeof(buf), 0), sizeof(buf));
	}
	close(s);
	for (i = 0; i < 100; i++) {
		struct can_msg want = frame(i, 0, 1, (uint8_t)i);

		expect_frame(a, &want);
	}
	can_backend_close(a);
	hub_cleanup(&hub);
}

/* A hub with CANBUS_MAX_MEMBERS members turns the next one away,
 * saying why. */
static void test_full_bus(void **state)
{
	static int raw[CANBUS_MAX_MEMBERS];
	struct can_options o = { .kind = CAN_BUS };
	struct can_backend *a;
	struct captured c;
	struct hub hub;
	char expect[512];
	unsigned int i;
	int saved;

	(void)state;
	hub_start(&hub);
	for (i = 0; i < CANBUS_MAX_MEMBERS; i++)
		raw[i] = raw_connect(hub.path);
	o.path = hub.path;
	saved = stderr_begin();
	assert_null(can_backend_open(&o));
	stderr_end(saved, &c);
	snprintf(expect, sizeof(expect),
		 "vireo: error: --can bus=%s: the Vireo CAN bus at %s has no room for another member\n",
		 hub.path, hub.path);
	/* The hub's own warning came first, from its thread. */
	if (!strstr(c.text, expect))
		print_message("logged: %s", c.text);
	assert_non_null(strstr(c.text, "vireo: warning: canbus: too many members; refusing new members\n"));
	assert_non_null(strstr(c.text, expect));
	for (i = 0; i < CANBUS_MAX_MEMBERS; i++)
		close(raw[i]);
	/* Room again once they are gone. */
	for (i = 0; i < 100; i++) {
		saved = stderr_begin();
		a = can_backend_open(&o);
		stderr_end(saved, &c);
		if (a)
			break;
		usleep(10000);
	}
	assert_non_null(a);
	can_backend_close(a);
	hub_cleanup(&hub);
}

static void test_hub_goes_away(void **state)
{
	struct can_msg f = frame(0x1, 0, 0, 0);
	struct can_backend *a;
	struct captured c;
	struct hub hub;
	struct pollfd p;
	char expect[256];
	int saved;

	(void)state;
	hub_start(&hub);
	a = member(&hub, false, NULL);
	hub_stop(&hub);
	saved = stderr_begin();
	expect_event(a, CAN_EVENT_BUSOFF);
	stderr_end(saved, &c);
	snprintf(expect, sizeof(expect),
		 "vireo: warning: --can bus=%s: the Vireo CAN bus hub went away; the controller is bus-off\n",
		 hub.path);
	assert_string_equal(c.text, expect);
	/* Quiet from now on: no busy loop on a dead socket. */
	p = (struct pollfd){ .fd = can_backend_rx_fd(a), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 50), 0);
	expect_quiet(a, 0);
	assert_int_equal(can_backend_send(a, &f), -ENOTCONN);
	can_backend_close(a);
	hub_cleanup(&hub);
}

static void expect_hub_error(const char *path, const char *expect)
{
	struct canbus_hub_options o = { .path = path };
	struct captured c;
	int saved = stderr_begin();

	assert_null(canbus_hub_open(&o));
	stderr_end(saved, &c);
	assert_string_equal(c.text, expect);
}

static void test_hub_socket_file(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char expect[512];
	struct can_backend *a;
	struct hub hub;
	struct stat st;
	int s, fd;

	(void)state;
	/* A stale socket file is replaced. */
	hub_make_dir(&hub);
	memcpy(sa.sun_path, hub.path, strlen(hub.path) + 1);
	s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	hub_start_at(&hub);
	a = member(&hub, false, NULL);
	can_backend_close(a);

	/* A live one is not. */
	snprintf(expect, sizeof(expect),
		 "vireo: error: canbus: something already listens on %s (another vireo canbus?)\n",
		 hub.path);
	expect_hub_error(hub.path, expect);
	a = member(&hub, false, NULL); /* still working */
	can_backend_close(a);
	hub_stop(&hub);
	/* The hub removes its socket when it stops. */
	assert_int_equal(stat(hub.path, &st), -1);

	/* Nor is a file that is not a socket. */
	fd = open(hub.path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	snprintf(expect, sizeof(expect),
		 "vireo: error: canbus: %s exists and is not a socket; not replacing it\n", hub.path);
	expect_hub_error(hub.path, expect);
	assert_int_equal(stat(hub.path, &st), 0);
	assert_int_equal(st.st_size, 4);
	unlink(hub.path);
	expect_hub_error("", "vireo: error: canbus: empty socket path\n");
	hub_cleanup(&hub);
}

static int run_main(int argc, char **argv, struct captured *c)
{
	int saved = stderr_begin();
	int r = canbus_main(argc, argv);

	stderr_end(saved, c);
	return r;
}

static void test_canbus_main_usage(void **state)
{
	struct captured c;
	char *none[] = { "canbus", NULL };
	char *unknown[] = { "canbus", "/tmp/x", "--bogus", NULL };
	char *two[] = { "canbus", "/tmp/x", "/tmp/y", NULL };
	char *fd_alone[] = { "canbus", "/tmp/x", "--fd", NULL };
	char *no_if[] = { "canbus", "/tmp/x", "--socketcan", NULL };
	char *inject_bridge[] = { "canbus", "/tmp/x", "--inject-busoff", "--socketcan", "vcan0", NULL };
	char *no_hub[] = { "canbus", "/nonexistent/bus", "--inject-busoff", NULL };
	char *bad_if[] = { "canbus", "/tmp/x", "--socketcan", "nosuchcan9", NULL };

	(void)state;
	assert_int_equal(run_main(1, none, &c), 2);
	assert_string_equal(c.text,
			    "vireo: error: canbus: which socket? usage: vireo canbus PATH [--socketcan IFNAME [--fd]]\n");
	assert_int_equal(run_main(3, unknown, &c), 2);
	assert_string_equal(c.text,
			    "vireo: error: canbus: unknown option --bogus (see vireo canbus --help)\n");
	assert_int_equal(run_main(3, two, &c), 2);
	assert_string_equal(c.text, "vireo: error: canbus: one socket path only (/tmp/x, then /tmp/y)\n");
	assert_int_equal(run_main(3, fd_alone, &c), 2);
	assert_non_null(strstr(c.text, "--fd is about the bridged interface and needs --socketcan"));
	assert_int_equal(run_main(3, no_if, &c), 2);
	assert_string_equal(c.text, "vireo: error: canbus: --socketcan needs an interface name\n");
	assert_int_equal(run_main(5, inject_bridge, &c), 2);
	assert_int_equal(run_main(3, no_hub, &c), 1);
	assert_string_equal(c.text,
			    "vireo: error: canbus /nonexistent/bus --inject-busoff: no Vireo CAN bus at /nonexistent/bus (start one with: vireo canbus /nonexistent/bus)\n");
	/* A bridge to a missing interface fails before listening. */
	assert_int_equal(run_main(4, bad_if, &c), 1);
	{
		const char *want = "vireo: error: canbus: --socketcan nosuchcan9: no network interface named nosuchcan9";

		assert_int_equal(strncmp(c.text, want, strlen(want)), 0);
	}
	assert_ptr_equal(strchr(c.text, '\n'), c.text + strlen(c.text) - 1); /* one line */
}

/* The real command: a child process running `vireo canbus PATH` until
 * SIGTERM, ready when it says so on stdout. */
static void test_canbus_main_runs(void **state)
{
	struct can_msg f = frame(0x321, 0, 3, 0x11);
	char line[256], expect[256];
	struct can_backend *a, *b;
	struct hub hub;
	struct stat st;
	int out[2], status;
	ssize_t n;
	pid_t pid;

	(void)state;
	hub_make_dir(&hub);
	assert_int_equal(pipe(out), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { "canbus", hub.path, NULL };

		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		_exit(canbus_main(2, argv));
	}
	close(out[1]);
	n = read(out[0], line, sizeof(line) - 1);
	assert_true(n > 0);
	line[n] = '\0';
	snprintf(expect, sizeof(expect), "vireo canbus: listening on %s\n", hub.path);
	assert_string_equal(line, expect);
	a = member(&hub, false, NULL);
	b = member(&hub, false, NULL);
	assert_int_equal(can_backend_send(a, &f), 0);
	expect_frame(b, &f);
	expect_event(a, CAN_EVENT_TX_DONE);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		print_message("status 0x%x\n", status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(stat(hub.path, &st), -1);
	close(out[0]);
	/* The members see the bus go. */
	{
		int saved = stderr_begin();
		struct captured c;

		expect_event(a, CAN_EVENT_BUSOFF);
		expect_event(b, CAN_EVENT_BUSOFF);
		stderr_end(saved, &c);
	}
	can_backend_close(a);
	can_backend_close(b);
	hub_cleanup(&hub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_reach_the_others),
		cmocka_unit_test(test_classic_member_skips_fd_frames),
		cmocka_unit_test(test_late_member_sees_only_new_frames),
		cmocka_unit_test(test_cancel_withdraws_frames),
		cmocka_unit_test(test_full_member_does_not_block),
		cmocka_unit_test(test_inject_busoff),
		cmocka_unit_test(test_candump_log),
		cmocka_unit_test(test_log_open_error),
		cmocka_unit_test(test_bad_paths),
		cmocka_unit_test(test_not_a_hub),
		cmocka_unit_test(test_hub_survives_garbage),
		cmocka_unit_test(test_frames_before_hangup_delivered),
		cmocka_unit_test(test_full_bus),
		cmocka_unit_test(test_hub_goes_away),
		cmocka_unit_test(test_hub_socket_file),
		cmocka_unit_test(test_canbus_main_usage),
		cmocka_unit_test(test_canbus_main_runs),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
