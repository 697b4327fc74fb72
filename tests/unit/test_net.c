/* Network backends against the real thing: libslirp answering ARP and
 * DHCP and forwarding host ports, and a kernel tap interface created for
 * the test (skipped when /dev/net/tun or the privilege is missing). */
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

#include "net/net.h"
#include "net_frames.h"

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
		cmocka_unit_test(test_tap_both_directions),
		cmocka_unit_test(test_tap_recv_too_small),
		cmocka_unit_test(test_tap_bad_names),
		cmocka_unit_test(test_tap_not_permitted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
