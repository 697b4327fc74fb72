/* Network backends against the real thing: libslirp answering ARP and
 * DHCP and forwarding host ports, and saving and loading its state; and
 * a kernel tap interface created for the test (skipped when /dev/net/tun
 * or the privilege is missing). */
#include "cmocka_prelude.h"
#include "capture_stderr.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/libslirp.h"
#include "net/net.h"
#include "net_frames.h"
#include "util/le.h"

#define TEST_ETHERTYPE 0x88b5 /* IEEE local experimental */

/* ---- helpers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef bool (*frame_pred)(const uint8_t *f, size_t len, const void *arg);

/* Receives frames (skipping hdr_skip header bytes) until pred accepts one
 * or timeout_ms passes. Returns the frame's length, 0 on timeout. */
static size_t wait_frame(struct net_backend *b, size_t hdr_skip, frame_pred pred,
			 const void *arg, uint8_t *out, size_t out_size, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = net_rx_fd(b), .events = POLLIN };
		struct iovec iov = { out, out_size };
		int64_t left = end - now_ms();
		ssize_t n;

		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		while ((n = net_recv(b, &iov, 1)) != -EAGAIN) {
			if (n < 0)
				continue;
			if ((size_t)n >= hdr_skip && pred(out + hdr_skip, (size_t)n - hdr_skip, arg))
				return (size_t)n;
		}
	}
}


static struct net_backend *open_user(const char **fwd, unsigned int n)
{
	struct net_options o = { .kind = NET_USER };
	unsigned int i;

	for (i = 0; i < n; i++)
		o.hostfwd[i] = fwd[i];
	o.nhostfwd = n;
	return net_open(&o);
}

static bool pred_arp_reply(const uint8_t *f, size_t len, const void *arg)
{
	return is_arp_reply_from(f, len, arg);
}

static bool pred_dhcp_offer(const uint8_t *f, size_t len, const void *arg)
{
	return is_dhcp_offer(f, len, *(const uint32_t *)arg);
}

static bool pred_syn(const uint8_t *f, size_t len, const void *arg)
{
	return is_tcp_syn_to(f, len, *(const uint16_t *)arg);
}

/* A port nothing listens on right now (the kernel picked it). */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	close(s);
	return ntohs(a.sin_port);
}

/* ---- user-mode networking ---- */

static void test_user_basics(void **state)
{
	struct net_backend *b;

	(void)state;
	b = open_user(NULL, 0);
	assert_non_null(b);
	assert_string_equal(net_backend_name(b), "user");
	assert_false(net_has_vnet_hdr(b));
	assert_true(net_rx_fd(b) >= 0);
	/* Nothing has been said to the guest yet. */
	{
		uint8_t buf[2048];
		struct iovec iov = { buf, sizeof(buf) };

		assert_int_equal(net_recv(b, &iov, 1), -EAGAIN);
	}
	net_close(b);
}

static void test_user_arp(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[2048];
	struct iovec iov;
	struct net_backend *b;

	(void)state;
	b = open_user(NULL, 0);
	assert_non_null(b);
	iov = (struct iovec){ req, build_arp_request(req, "10.0.2.2") };
	assert_int_equal(net_send(b, &iov, 1), ARP_FRAME_LEN);
	assert_true(wait_frame(b, 0, pred_arp_reply, "10.0.2.2", buf, sizeof(buf), 3000) > 0);

	/* The DNS address answers too. */
	iov = (struct iovec){ req, build_arp_request(req, "10.0.2.3") };
	assert_int_equal(net_send(b, &iov, 1), ARP_FRAME_LEN);
	assert_true(wait_frame(b, 0, pred_arp_reply, "10.0.2.3", buf, sizeof(buf), 3000) > 0);
	net_close(b);
}

static void test_user_dhcp(void **state)
{
	uint8_t disc[DHCP_FRAME_LEN], buf[2048];
	uint32_t xid = 0x5eed1234;
	struct iovec iov[3];
	struct net_backend *b;

	(void)state;
	b = open_user(NULL, 0);
	assert_non_null(b);
	build_dhcp_discover(disc, xid);
	/* Scattered, as a guest's descriptors would be. */
	iov[0] = (struct iovec){ disc, 14 };
	iov[1] = (struct iovec){ disc + 14, 100 };
	iov[2] = (struct iovec){ disc + 114, DHCP_FRAME_LEN - 114 };
	assert_int_equal(net_send(b, iov, 3), DHCP_FRAME_LEN);
	assert_true(wait_frame(b, 0, pred_dhcp_offer, &xid, buf, sizeof(buf), 3000) > 0);
	net_close(b);
}

static void test_user_recv_too_small(void **state)
{
	uint8_t req[ARP_FRAME_LEN], small[20];
	struct iovec iov = { req, build_arp_request(req, "10.0.2.2") };
	struct pollfd p;
	struct net_backend *b;

	(void)state;
	b = open_user(NULL, 0);
	assert_non_null(b);
	assert_int_equal(net_send(b, &iov, 1), ARP_FRAME_LEN);
	p = (struct pollfd){ .fd = net_rx_fd(b), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	/* The reply (42 bytes) does not fit: dropped, not stuck. */
	iov = (struct iovec){ small, sizeof(small) };
	assert_int_equal(net_recv(b, &iov, 1), -EMSGSIZE);
	assert_int_equal(net_recv(b, &iov, 1), -EAGAIN);
	assert_int_equal(poll(&p, 1, 0), 0);
	net_close(b);
}

/* The receive queue holds 256 frames; more are dropped, and rx_fd is
 * readable exactly while frames wait. */
static void test_user_queue_bound(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[2048];
	struct iovec iov = { req, build_arp_request(req, "10.0.2.2") };
	struct iovec rx = { buf, sizeof(buf) };
	struct pollfd p;
	struct net_backend *b;
	int i, got = 0;

	(void)state;
	b = open_user(NULL, 0);
	assert_non_null(b);
	/* slirp answers ARP synchronously inside slirp_input(). */
	for (i = 0; i < 300; i++)
		assert_int_equal(net_send(b, &iov, 1), ARP_FRAME_LEN);
	p = (struct pollfd){ .fd = net_rx_fd(b), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 1);
	while (net_recv(b, &rx, 1) > 0)
		got++;
	assert_int_equal(got, 256);
	assert_int_equal(poll(&p, 1, 0), 0);
	net_close(b);
}

static void test_user_hostfwd_busy(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char rule[64], want[160];
	const char *rules[1] = { rule };
	struct captured c;
	struct net_backend *b;
	int s, saved;

	(void)state;
	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s, 1), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	snprintf(rule, sizeof(rule), "tcp:%u-:22", ntohs(a.sin_port));

	saved = stderr_begin();
	b = open_user(rules, 1);
	stderr_end(saved, &c);
	assert_null(b);
	snprintf(want, sizeof(want),
		 "hostfwd tcp:%u: cannot listen on 127.0.0.1:%u: Address already in use\n",
		 ntohs(a.sin_port), ntohs(a.sin_port));
	assert_non_null(strstr(c.text, want));
	/* One line. */
	assert_ptr_equal(strchr(c.text, '\n'), strrchr(c.text, '\n'));
	close(s);
}

static void test_user_hostfwd_bad_rule(void **state)
{
	const char *rules[1] = { "tcp:notaport-:22" };
	struct captured c;
	struct net_backend *b;
	int saved;

	(void)state;
	saved = stderr_begin();
	b = open_user(rules, 1);
	stderr_end(saved, &c);
	assert_null(b);
	assert_non_null(strstr(c.text, "invalid hostfwd 'tcp:notaport-:22'"));
}

/* connect() to the forwarded port: slirp accepts and opens a TCP
 * connection to the guest, whose SYN comes out of net_recv. */
static void test_user_hostfwd_connect(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[2048];
	struct sockaddr_in a = { .sin_family = AF_INET };
	uint16_t port = free_port(), guest_port = 2222;
	const char *rules[1];
	char rule[64];
	struct iovec iov;
	struct net_backend *b;
	int s;

	(void)state;
	snprintf(rule, sizeof(rule), "tcp:%u-:%u", port, guest_port);
	rules[0] = rule;
	b = open_user(rules, 1);
	assert_non_null(b);

	/* Tell slirp where the guest is, or it would ARP first. */
	iov = (struct iovec){ req, build_arp_request(req, "10.0.2.2") };
	assert_int_equal(net_send(b, &iov, 1), ARP_FRAME_LEN);
	assert_true(wait_frame(b, 0, pred_arp_reply, "10.0.2.2", buf, sizeof(buf), 3000) > 0);

	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_true(wait_frame(b, 0, pred_syn, &guest_port, buf, sizeof(buf), 5000) > 0);
	close(s);
	net_close(b);
}

/* The guest's UDP to 10.0.2.2 reaches the host's loopback, unless the
 * network is restricted. */
static void udp_to_host(bool restricted, bool want_arrival)
{
	struct net_options o = { .kind = NET_USER, .restricted = restricted };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	uint8_t frame[128], got[64];
	struct net_backend *b;
	struct pollfd p;
	struct iovec iov;
	int s;

	s = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	b = net_open(&o);
	assert_non_null(b);
	iov = (struct iovec){ frame, build_udp(frame, "10.0.2.2", 5555, ntohs(a.sin_port),
					       "hello", 5) };
	assert_int_equal(net_send(b, &iov, 1), (ssize_t)iov.iov_len);
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	if (want_arrival) {
		assert_int_equal(poll(&p, 1, 3000), 1);
		assert_int_equal(recv(s, got, sizeof(got), 0), 5);
		assert_memory_equal(got, "hello", 5);
	} else {
		assert_int_equal(poll(&p, 1, 300), 0);
	}
	net_close(b);
	close(s);
}

static void test_user_udp_to_host(void **state)
{
	(void)state;
	udp_to_host(false, true);
}

static void test_user_restricted(void **state)
{
	(void)state;
	udp_to_host(true, false);
}

/* ---- user-mode networking's state (snapshots, migration) ---- */

static const uint8_t other_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

/* A user backend; the test skips, saying why, where libslirp cannot be
 * loaded. */
static struct net_backend *open_user_or_skip(void)
{
	struct net_backend *b;

	if (!libslirp_get()) {
		print_message("skipping: libslirp cannot be loaded (Debian: apt-get install libslirp0)\n");
		skip();
	}
	b = open_user(NULL, 0);
	assert_non_null(b);
	return b;
}

struct offer_want {
	uint32_t xid;
	const char *ip;
};

static bool pred_offer_of(const uint8_t *f, size_t len, const void *arg)
{
	const struct offer_want *w = arg;

	return is_dhcp_offer_of(f, len, w->xid, w->ip);
}

/* A DISCOVER from the NIC with MAC mac is offered the address ip. */
static void expect_offer(struct net_backend *b, const uint8_t *mac, uint32_t xid, const char *ip)
{
	struct offer_want want = { xid, ip };
	uint8_t disc[DHCP_FRAME_LEN], buf[2048];
	struct iovec iov = { disc, build_dhcp_discover_from(disc, xid, mac) };

	assert_int_equal(net_send(b, &iov, 1), DHCP_FRAME_LEN);
	if (!wait_frame(b, 0, pred_offer_of, &want, buf, sizeof(buf), 3000))
		fail_msg("no DHCP offer of %s to %02x:..:%02x", ip, mac[0], mac[5]);
}

static void save_state(struct net_backend *b, struct state_writer *w)
{
	state_writer_init(w);
	net_backend_save(b, w);
	assert_false(w->failed);
}

static void assert_same_bytes(const struct state_writer *a, const struct state_writer *b)
{
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->buf, b->buf, a->len);
}

/* A backend with a DHCP lease (so its state is not a fresh stack's),
 * saved, loaded into a fresh backend, saved again: the same bytes; and
 * the second backend acts on the lease table it got: the guest's address
 * is taken for another NIC, the guest gets its own back. */
static void test_user_state_round_trip(void **state)
{
	struct state_writer sa, sb, sf;
	struct net_backend *a, *b, *fresh;
	struct error err = { 0 };

	(void)state;
	a = open_user_or_skip();
	expect_offer(a, guest_mac, 0x1001, "10.0.2.15");
	save_state(a, &sa);
	fresh = open_user(NULL, 0);
	assert_non_null(fresh);
	save_state(fresh, &sf);
	assert_int_equal(sa.len, sf.len);
	assert_memory_not_equal(sa.buf, sf.buf, sa.len);

	b = open_user(NULL, 0);
	assert_non_null(b);
	assert_int_equal(net_backend_load(b, sa.buf, sa.len, &err), 0);
	assert_false(err.set);
	save_state(b, &sb);
	assert_same_bytes(&sa, &sb);

	expect_offer(b, other_mac, 0x1002, "10.0.2.16");
	expect_offer(b, guest_mac, 0x1003, "10.0.2.15");
	/* Without the state, the other NIC would have had the guest's. */
	expect_offer(fresh, other_mac, 0x1004, "10.0.2.15");

	state_writer_free(&sa);
	state_writer_free(&sb);
	state_writer_free(&sf);
	net_close(a);
	net_close(b);
	net_close(fresh);
}

/* Loading rec into b is refused with one line that says want, nothing
 * is printed (libslirp's GLib warnings neither), and b's state is still
 * before. */
static void expect_refused(struct net_backend *b, const void *rec, size_t len, const char *want,
			   const struct state_writer *before)
{
	struct error err = { 0 };
	struct state_writer now;
	struct captured c;
	int saved;

	saved = stderr_begin();
	assert_int_equal(net_backend_load(b, rec, len, &err), -1);
	stderr_end(saved, &c);
	assert_true(err.set);
	if (!strstr(err.msg, want))
		fail_msg("refused with '%s', which does not say '%s' (%zu bytes)", err.msg, want, len);
	assert_null(strchr(err.msg, '\n'));
	assert_string_equal(c.text, "");
	save_state(b, &now);
	assert_same_bytes(&now, before);
	state_writer_free(&now);
}

/* The record net_backend_save writes for user networking. */
#define REC_KIND 0	 /* u8 4, "user" */
#define REC_VERSION 5	 /* u32: libslirp's state version */
#define REC_LEN 9	 /* u32: the stream's length */
#define REC_STREAM 13	 /* libslirp's stream */

/* good with its stream replaced by n bytes of stream. */
static void with_stream(const struct state_writer *good, const uint8_t *stream, size_t n,
			uint8_t *out, size_t *out_len)
{
	memcpy(out, good->buf, REC_STREAM);
	out[REC_LEN] = (uint8_t)n;
	out[REC_LEN + 1] = (uint8_t)(n >> 8);
	out[REC_LEN + 2] = (uint8_t)(n >> 16);
	out[REC_LEN + 3] = (uint8_t)(n >> 24);
	memcpy(out + REC_STREAM, stream, n);
	*out_len = REC_STREAM + n;
}

static void test_user_state_hostile(void **state)
{
	struct state_writer good, before;
	struct net_backend *a, *b;
	uint8_t rec[1024], stream[512];
	size_t n, slen, len;
	uint32_t version;

	(void)state;
	a = open_user_or_skip();
	expect_offer(a, guest_mac, 0x2001, "10.0.2.15");
	save_state(a, &good);
	net_close(a);
	assert_memory_equal(good.buf, "\4user", 5);
	slen = good.len - REC_STREAM;
	assert_true(slen > 1 && slen < sizeof(stream));
	assert_int_equal(good.buf[REC_LEN], slen);
	memcpy(stream, good.buf + REC_STREAM, slen);
	memcpy(&version, good.buf + REC_VERSION, 4);
	assert_int_equal(version, libslirp_get()->state_version());

	/* b has a state of its own, which every refusal must leave alone. */
	b = open_user(NULL, 0);
	assert_non_null(b);
	expect_offer(b, other_mac, 0x2002, "10.0.2.15");
	save_state(b, &before);
	assert_memory_not_equal(before.buf, good.buf, good.len);

	for (n = 0; n < good.len; n++)
		expect_refused(b, good.buf, n, "truncated", &before);
	memcpy(rec, good.buf, good.len);
	rec[good.len] = 0;
	expect_refused(b, rec, good.len + 1, "1 unexpected trailing bytes", &before);

	/* Versions libslirp cannot load. */
	memcpy(rec, good.buf, good.len);
	le32_put(rec + REC_VERSION, 0);
	expect_refused(b, rec, good.len, "libslirp's version 0, this libslirp", &before);
	le32_put(rec + REC_VERSION, version + 1);
	expect_refused(b, rec, good.len, "reads versions 1 to", &before);
	le32_put(rec + REC_VERSION, 0xffffffff);
	expect_refused(b, rec, good.len, "libslirp's version 4294967295", &before);

	/* Bad lengths: past the end, short of it, none. */
	memcpy(rec, good.buf, good.len);
	le32_put(rec + REC_LEN, (uint32_t)slen + 1);
	expect_refused(b, rec, good.len, "truncated", &before);
	le32_put(rec + REC_LEN, 0xffffffff);
	expect_refused(b, rec, good.len, "truncated", &before);
	le32_put(rec + REC_LEN, (uint32_t)slen - 1);
	expect_refused(b, rec, good.len, "1 unexpected trailing bytes", &before);
	with_stream(&good, stream, 0, rec, &len);
	expect_refused(b, rec, len, "libslirp state is empty", &before);

	/* A stream that says its length right but is not all libslirp
	 * reads, or more: libslirp has applied part of it when that shows,
	 * and the backend must be as it was. */
	with_stream(&good, stream, slen - 3, rec, &len);
	expect_refused(b, rec, len, "the saved libslirp state is truncated", &before);
	with_stream(&good, stream, 3, rec, &len);
	expect_refused(b, rec, len, "the saved libslirp state is truncated", &before);
	stream[slen] = 0x5a;
	with_stream(&good, stream, slen + 1, rec, &len);
	expect_refused(b, rec, len, "1 bytes libslirp does not read", &before);

	/* A guestfwd socket (Vireo sets up none): never given to libslirp. */
	stream[0] = 42;
	with_stream(&good, stream, slen, rec, &len);
	expect_refused(b, rec, len, "guestfwd sockets", &before);
	stream[0] = 0;

	/* Another kind of backend, or none. */
	expect_refused(b, "\3tap", 4, "the saved VM's network is --net tap, this one's --net user",
		       &before);
	expect_refused(b, "\3\1\377x", 4,
		       "the saved VM's network backend is of an unknown kind, this one's is --net user",
		       &before);

	/* Garbage: the stream's bytes random, its length random (around the
	 * right one), the socket marker right half the time. Refused with the
	 * backend unchanged, or loaded, and then saved back the same. */
	srand(7);
	for (n = 0; n < 2000; n++) {
		size_t k, sl = (size_t)rand() % (2 * slen + 1);
		struct state_writer now;
		struct error err = { 0 };
		int ret;

		for (k = 0; k < sl; k++)
			stream[k] = (uint8_t)rand();
		if (sl && n % 2)
			stream[0] = 0;
		if (n % 8 == 0) {
			sl = slen; /* the right shape: these load */
			stream[0] = 0;
		}
		with_stream(&good, stream, sl, rec, &len);
		ret = net_backend_load(b, rec, len, &err);
		save_state(b, &now);
		if (ret == 0) {
			assert_int_equal(now.len, len);
			assert_memory_equal(now.buf, rec, len);
			state_writer_free(&before);
			before = now;
			continue;
		}
		assert_true(err.set);
		assert_same_bytes(&now, &before);
		state_writer_free(&now);
	}

	state_writer_free(&good);
	state_writer_free(&before);
	net_close(b);
}

/* ---- tap ---- */

static void ifname_for_test(char *name, size_t size)
{
	snprintf(name, size, "vireot%u", (unsigned int)getpid() % 1000000);
}

/* Opens a fresh tap, or skips the test when this host cannot. */
static struct net_backend *open_test_tap(const char *name)
{
	struct net_options o = { .kind = NET_TAP, .ifname = name };
	struct net_backend *b;
	struct captured c;
	int saved, fd;

	fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0) {
		print_message("skipping: /dev/net/tun: %s\n", strerror(errno));
		skip();
	}
	close(fd);
	saved = stderr_begin();
	b = net_open(&o);
	stderr_end(saved, &c);
	if (!b) {
		/* One line (scripts/run-unit shows it as the reason): vireo's
		 * error message without its newline. */
		const char *why = c.text[0] ? c.text : "net_open() failed without a message";

		print_message("skipping: cannot create tap %s: %.*s\n", name, (int)strcspn(why, "\n"),
			      why);
		skip();
	}
	return b;
}

/* Up, and quiet: without IPv6 the host sends no solicitations of its own
 * on the link, so the only frames are the test's. */
static void set_link_up(const char *name)
{
	struct ifreq ifr;
	char path[128];
	FILE *f;
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(s >= 0);
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	f = fopen(path, "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

/* An AF_PACKET socket on the tap: the host side of the wire. */
static int host_side_socket(const char *name, struct sockaddr_ll *ll)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(TEST_ETHERTYPE));

	assert_true(s >= 0);
	memset(ll, 0, sizeof(*ll));
	ll->sll_family = AF_PACKET;
	ll->sll_protocol = htons(TEST_ETHERTYPE);
	ll->sll_ifindex = (int)if_nametoindex(name);
	assert_true(ll->sll_ifindex > 0);
	assert_int_equal(bind(s, (struct sockaddr *)ll, sizeof(*ll)), 0);
	return s;
}

static size_t build_test_frame(uint8_t *f, size_t len, uint8_t fill)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0x01 };

	eth_header(f, dst, guest_mac, TEST_ETHERTYPE);
	memset(f + ETH_HDR, fill, len - ETH_HDR);
	return len;
}

static bool pred_test_frame(const uint8_t *f, size_t len, const void *arg)
{
	return len >= ETH_HDR + 1 && get16be(f + 12) == TEST_ETHERTYPE &&
	       f[ETH_HDR] == *(const uint8_t *)arg;
}

static void test_tap_both_directions(void **state)
{
	struct virtio_net_hdr_v1 hdr;
	struct net_offloads off = { .csum = true, .tso4 = true, .tso6 = true, .ecn = true };
	uint8_t frame[200], buf[4096], fill = 0xa7;
	struct sockaddr_ll ll;
	struct iovec iov[2];
	struct net_backend *b;
	char name[IFNAMSIZ];
	struct pollfd p;
	size_t n;
	int s;

	(void)state;
	ifname_for_test(name, sizeof(name));
	b = open_test_tap(name);
	assert_true(net_has_vnet_hdr(b));
	assert_non_null(strstr(net_backend_name(b), name));
	set_link_up(name);
	s = host_side_socket(name, &ll);

	/* Host to guest: what the host transmits on the tap comes out of
	 * net_recv with a virtio header in front. */
	build_test_frame(frame, sizeof(frame), fill);
	assert_int_equal(sendto(s, frame, sizeof(frame), 0, (struct sockaddr *)&ll, sizeof(ll)),
			 (ssize_t)sizeof(frame));
	n = wait_frame(b, sizeof(hdr), pred_test_frame, &fill, buf, sizeof(buf), 3000);
	assert_int_equal(n, sizeof(hdr) + sizeof(frame));
	memcpy(&hdr, buf, sizeof(hdr));
	assert_int_equal(hdr.gso_type, 0);
	assert_memory_equal(buf + sizeof(hdr), frame, sizeof(frame));

	/* Guest to host: a frame with a (no offload) header arrives as a
	 * plain frame on the interface. */
	net_set_offloads(b, &off);
	memset(&hdr, 0, sizeof(hdr));
	fill = 0x3c;
	build_test_frame(frame, sizeof(frame), fill);
	iov[0] = (struct iovec){ &hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ frame, sizeof(frame) };
	assert_int_equal(net_send(b, iov, 2), (ssize_t)(sizeof(hdr) + sizeof(frame)));
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(recv(s, buf, sizeof(buf), 0), (ssize_t)sizeof(frame));
	assert_memory_equal(buf, frame, sizeof(frame));

	close(s);
	net_close(b);
	/* We created it, so it went away with us. */
	assert_int_equal(if_nametoindex(name), 0);
}

static void test_tap_recv_too_small(void **state)
{
	uint8_t frame[300], buf[64], fill = 0x11;
	struct sockaddr_ll ll;
	struct iovec iov = { buf, sizeof(buf) };
	struct net_backend *b;
	char name[IFNAMSIZ];
	struct pollfd p;
	ssize_t n;
	int s;

	(void)state;
	ifname_for_test(name, sizeof(name));
	b = open_test_tap(name);
	set_link_up(name);
	s = host_side_socket(name, &ll);
	/* Let the link-up chatter (IPv6 solicitations) pass. */
	while (net_recv(b, &(struct iovec){ frame, sizeof(frame) }, 1) != -EAGAIN)
		;
	assert_int_equal(net_recv(b, &iov, 1), -EAGAIN);
	build_test_frame(frame, sizeof(frame), fill);
	assert_int_equal(sendto(s, frame, sizeof(frame), 0, (struct sockaddr *)&ll, sizeof(ll)),
			 (ssize_t)sizeof(frame));
	p = (struct pollfd){ .fd = net_rx_fd(b), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	/* 12 + 300 bytes do not fit in 64: dropped, and the queue moves on.
	 * (Skip any link chatter that fits.) */
	do {
		n = net_recv(b, &iov, 1);
	} while (n > 0);
	assert_int_equal(n, -EMSGSIZE);
	assert_int_equal(net_recv(b, &iov, 1), -EAGAIN);
	close(s);
	net_close(b);
}

/* A tap keeps no state of its own: its record is its kind, and a
 * record of user networking is refused by name. */
static void test_tap_state(void **state)
{
	struct state_writer w;
	struct net_backend *b;
	struct error err = { 0 };
	char name[IFNAMSIZ];

	(void)state;
	ifname_for_test(name, sizeof(name));
	b = open_test_tap(name);
	save_state(b, &w);
	assert_int_equal(w.len, 4);
	assert_memory_equal(w.buf, "\3tap", 4);
	assert_int_equal(net_backend_check(b, w.buf, w.len, &err), 0);
	assert_int_equal(net_backend_load(b, w.buf, w.len, &err), 0);
	assert_false(err.set);
	assert_int_equal(net_backend_load(b, "\3tap\0", 5, &err), -1);
	assert_string_equal(err.msg, "state record has 1 unexpected trailing bytes");
	err = (struct error){ 0 };
	assert_int_equal(net_backend_check(b, "\4user\4\0\0\0", 9, &err), -1);
	assert_string_equal(err.msg, "the saved VM's network is --net user, this one's --net tap: "
				     "start it with the same --net options");
	err = (struct error){ 0 };
	assert_int_equal(net_backend_load(b, "\4user\4\0\0\0", 9, &err), -1);
	assert_non_null(strstr(err.msg, "--net user, this one's --net tap"));
	state_writer_free(&w);
	net_close(b);
}

static void test_tap_bad_names(void **state)
{
	static const char *const bad[] = { "bad/name", "sp ace", "pat%d", ".", "a:b",
					   "sixteen-chars-xx", "" };
	struct net_options o = { .kind = NET_TAP };
	struct captured c;
	unsigned int i;
	int saved;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		char want[64];

		o.ifname = bad[i];
		saved = stderr_begin();
		assert_null(net_open(&o));
		stderr_end(saved, &c);
		snprintf(want, sizeof(want), "--net tap=%s: invalid interface name", bad[i]);
		assert_non_null(strstr(c.text, want));
		assert_ptr_equal(strchr(c.text, '\n'), strrchr(c.text, '\n'));
	}
}

/* Without CAP_NET_ADMIN the kernel refuses to create a tap: one line that
 * says what is needed. Run as nobody in a child process. */
static void test_tap_not_permitted(void **state)
{
	int pipefd[2], status;
	char out[1024] = "";
	char name[IFNAMSIZ];
	ssize_t n;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		print_message("skipping: needs root to drop privileges\n");
		skip();
	}
	ifname_for_test(name, sizeof(name));
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct net_options o = { .kind = NET_TAP, .ifname = name };

		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(3);
		_exit(net_open(&o) ? 1 : 0);
	}
	close(pipefd[1]);
	n = read(pipefd[0], out, sizeof(out) - 1);
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(n > 0);
	out[n] = 0;
	if (strstr(out, "cannot open /dev/net/tun")) {
		/* /dev/net/tun not world-accessible here: also a clear line. */
		assert_non_null(strstr(out, "--net tap="));
		return;
	}
	assert_non_null(strstr(out, "tap interface '"));
	assert_non_null(strstr(out, "Operation not permitted (needs CAP_NET_ADMIN"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_basics),
		cmocka_unit_test(test_user_arp),
		cmocka_unit_test(test_user_dhcp),
		cmocka_unit_test(test_user_recv_too_small),
		cmocka_unit_test(test_user_queue_bound),
		cmocka_unit_test(test_user_hostfwd_busy),
		cmocka_unit_test(test_user_hostfwd_bad_rule),
		cmocka_unit_test(test_user_hostfwd_connect),
		cmocka_unit_test(test_user_udp_to_host),
		cmocka_unit_test(test_user_restricted),
		cmocka_unit_test(test_user_state_round_trip),
		cmocka_unit_test(test_user_state_hostile),
		cmocka_unit_test(test_tap_both_directions),
		cmocka_unit_test(test_tap_recv_too_small),
		cmocka_unit_test(test_tap_state),
		cmocka_unit_test(test_tap_bad_names),
		cmocka_unit_test(test_tap_not_permitted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
