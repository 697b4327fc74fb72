/* virtio-net: the header and scatter functions on their own, then the
 * whole device on real split virtqueues in a small guest RAM, with its
 * I/O thread running and user-mode networking (or a tap) behind it. The
 * test plays the driver: it writes descriptors and avail entries the way
 * Linux does and reads the used ring. */
#include "cmocka_prelude.h"
#include "fake_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/libslirp.h"
#include "net/vnet_hdr.h"
#include "net_frames.h"
#include "util/le.h"
#include "virtio/virtio_net.h"

/* ==== pure functions ==== */

static struct iovec iov_of(void *p, size_t len)
{
	return (struct iovec){ p, len };
}

static size_t iov_flatten(const struct iovec *iov, int n, uint8_t *out)
{
	size_t off = 0;
	int i;

	for (i = 0; i < n; i++) {
		memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return off;
}

static void test_tx_prepare_layouts(void **state)
{
	uint8_t chain[12 + 100], flat[200];
	struct virtio_net_hdr_v1 hdr;
	struct iovec out[4], iov[5];
	unsigned int i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(chain); i++)
		chain[i] = (uint8_t)i;
	chain[10] = 0x77; /* num_buffers from the guest: ignored */

	/* Header and frame in one buffer (VERSION_1 "any layout"). */
	out[0] = iov_of(chain, sizeof(chain));
	n = vnet_tx_prepare(out, 1, 12, false, &hdr, iov);
	assert_int_equal(n, -EOPNOTSUPP); /* flags = 0, gso = 1: offloads */
	memset(chain, 0, 12);
	n = vnet_tx_prepare(out, 1, 12, false, &hdr, iov);
	assert_int_equal(n, 1);
	assert_ptr_equal(iov[0].iov_base, chain + 12);
	assert_int_equal(iov[0].iov_len, 100);

	/* With a backend header: our copy first, then the frame in place. */
	chain[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	chain[1] = VIRTIO_NET_HDR_GSO_TCPV4;
	chain[10] = 5;
	n = vnet_tx_prepare(out, 1, 12, true, &hdr, iov);
	assert_int_equal(n, 2);
	assert_ptr_equal(iov[0].iov_base, &hdr);
	assert_int_equal(iov[0].iov_len, 12);
	assert_int_equal(hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(hdr.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(hdr.num_buffers, 0);
	assert_ptr_equal(iov[1].iov_base, chain + 12);

	/* Header split over buffers, frame over the rest. */
	out[0] = iov_of(chain, 5);
	out[1] = iov_of(chain + 5, 9);
	out[2] = iov_of(chain + 14, 50);
	out[3] = iov_of(chain + 64, 48);
	n = vnet_tx_prepare(out, 4, 12, true, &hdr, iov);
	assert_int_equal(n, 4);
	assert_int_equal(iov_flatten(iov + 1, n - 1, flat), 100);
	assert_memory_equal(flat, chain + 12, 100);
	assert_int_equal(iov[1].iov_len, 2);

	/* Legacy 10-byte header: the backend still gets 12. */
	n = vnet_tx_prepare(out, 4, 10, true, &hdr, iov);
	assert_int_equal(n, 4);
	assert_int_equal(iov[0].iov_len, 12);
	assert_int_equal(iov_flatten(iov + 1, n - 1, flat), 102);
}

static void test_tx_prepare_rejects(void **state)
{
	static uint8_t chain[12 + NET_MAX_FRAME + 1];
	struct virtio_net_hdr_v1 hdr;
	struct iovec out[2], iov[3];

	(void)state;
	out[0] = iov_of(chain, 11);
	assert_int_equal(vnet_tx_prepare(out, 1, 12, true, &hdr, iov), -EINVAL);
	assert_int_equal(vnet_tx_prepare(out, 0, 12, true, &hdr, iov), -EINVAL);
	/* Header but less than an Ethernet header. */
	out[0] = iov_of(chain, 12 + 13);
	assert_int_equal(vnet_tx_prepare(out, 1, 12, false, &hdr, iov), -EMSGSIZE);
	out[0] = iov_of(chain, 12 + 14);
	assert_int_equal(vnet_tx_prepare(out, 1, 12, false, &hdr, iov), 1);
	/* The largest frame passes, one byte more does not. */
	out[0] = iov_of(chain, 12 + NET_MAX_FRAME);
	assert_int_equal(vnet_tx_prepare(out, 1, 12, false, &hdr, iov), 1);
	out[0] = iov_of(chain, 12 + NET_MAX_FRAME - 1);
	out[1] = iov_of(chain, 2);
	assert_int_equal(vnet_tx_prepare(out, 2, 12, false, &hdr, iov), -EMSGSIZE);
	/* DATA_VALID alone is a receive flag: still refused without headers. */
	chain[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	out[0] = iov_of(chain, 12 + 60);
	assert_int_equal(vnet_tx_prepare(out, 1, 12, false, &hdr, iov), -EOPNOTSUPP);
}

static void test_rx_fixup(void **state)
{
	struct net_offloads none = { 0 }, csum = { .csum = true },
			    all = { .csum = true, .tso4 = true, .tso6 = true, .ecn = true };
	struct virtio_net_hdr_v1 h;

	(void)state;
	h = (struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_DATA_VALID, .num_buffers = 9 };
	assert_true(vnet_rx_fixup_hdr(&h, &none));
	assert_int_equal(h.flags, 0); /* must be zero without GUEST_CSUM */
	assert_int_equal(h.num_buffers, 0);

	h = (struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM };
	assert_false(vnet_rx_fixup_hdr(&h, &none));
	h = (struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM | 4 };
	assert_true(vnet_rx_fixup_hdr(&h, &csum));
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);

	h = (struct virtio_net_hdr_v1){ .flags = 1, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 };
	assert_false(vnet_rx_fixup_hdr(&h, &csum));
	assert_true(vnet_rx_fixup_hdr(&h, &all));
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN;
	assert_true(vnet_rx_fixup_hdr(&h, &all));
	all.ecn = false;
	assert_false(vnet_rx_fixup_hdr(&h, &all));
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	assert_false(vnet_rx_fixup_hdr(&h, &all));
	h.gso_type = 5; /* UDP_L4, never accepted */
	assert_false(vnet_rx_fixup_hdr(&h, &all));
}

static void test_rx_scatter(void **state)
{
	uint8_t hdr[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0 }, frame[1000], out[2000];
	uint8_t c1a[7], c1b[100], c2[64], c3[4000];
	struct iovec in1[2] = { iov_of(c1a, sizeof(c1a)), iov_of(c1b, sizeof(c1b)) };
	struct iovec in2[1] = { iov_of(c2, sizeof(c2)) };
	struct iovec in3[1] = { iov_of(c3, sizeof(c3)) };
	struct vnet_rx rx;
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	vnet_rx_begin(&rx, hdr, 12, frame, sizeof(frame));
	assert_int_equal(vnet_rx_fill(&rx, in1, 2), 107);
	assert_false(vnet_rx_complete(&rx));
	assert_int_equal(vnet_rx_fill(&rx, in2, 1), 64);
	assert_int_equal(vnet_rx_fill(&rx, in3, 1), 1012 - 171);
	assert_true(vnet_rx_complete(&rx));
	assert_int_equal(rx.nbufs, 3);
	/* num_buffers lands at offset 10, across the first chain's split. */
	vnet_rx_set_num_buffers(in1, 2, 3);
	memcpy(out, c1a, 7);
	memcpy(out + 7, c1b, 100);
	memcpy(out + 107, c2, 64);
	memcpy(out + 171, c3, 1012 - 171);
	assert_memory_equal(out, hdr, 10);
	assert_int_equal(le16_get(out + 10), 3);
	assert_memory_equal(out + 12, frame, sizeof(frame));

	/* A 10-byte legacy header. */
	vnet_rx_begin(&rx, hdr, 10, frame, 50);
	assert_int_equal(vnet_rx_fill(&rx, in3, 1), 60);
	assert_memory_equal(c3 + 10, frame, 50);
}

/* ==== the device on real virtqueues ==== */

#define RAM_SIZE (4u << 20)
#define RXQ 0
#define TXQ 1
#define CTRLQ 2
#define QSIZE 256
#define BUF_BASE 0x100000u

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_NOTF_COAL 53

struct rig {
	struct fake_driver drv;
	struct virtio_device *vdev;
	uint16_t rx_seen; /* used RX entries taken so far */
	int notified[3];
	int config_notified;
};

static struct rig *g_rig;

static void fake_notify_queue(struct virtio_device *vdev, unsigned int q)
{
	(void)vdev;
	__atomic_add_fetch(&g_rig->notified[q], 1, __ATOMIC_SEQ_CST);
}

static void fake_notify_config(struct virtio_device *vdev)
{
	(void)vdev;
	__atomic_add_fetch(&g_rig->config_notified, 1, __ATOMIC_SEQ_CST);
}

static const struct virtio_transport_ops fake_transport = {
	.notify_queue = fake_notify_queue,
	.notify_config = fake_notify_config,
};

/* Does what virtio-pci does up to DRIVER_OK, accepting features. */
static struct rig *rig_start(const struct net_options *o, uint64_t features)
{
	struct net_backend *backend = net_open(o);
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	g_rig = r;
	r->vdev = backend ? virtio_net_create(backend, guest_mac, 0) : NULL;
	if (!r->vdev) {
		net_close(backend);
		free(r);
		return NULL;
	}
	r->vdev->host_features |= 1ULL << VIRTIO_F_VERSION_1;
	/* The control queue when the driver takes it, as Linux does. */
	fake_driver_start(&r->drv, r->vdev, &fake_transport, RAM_SIZE, features,
			  features & (1ULL << VIRTIO_NET_F_CTRL_VQ) ? 3 : 2, QSIZE, BUF_BASE);
	return r;
}

static void rig_stop(struct rig *r)
{
	fake_driver_stop(&r->drv);
	virtio_net_destroy(r->vdev);
	free(r);
	g_rig = NULL;
}

static const uint64_t linux_features =
	1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
	1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS |
	1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_NET_F_CSUM |
	1ULL << VIRTIO_NET_F_GUEST_CSUM | 0xffffffff00000000ULL;

static struct rig *user_rig(uint64_t features)
{
	struct net_options o = { .kind = NET_USER };
	struct rig *r = rig_start(&o, features);

	assert_non_null(r);
	return r;
}

/* Sends a frame from the "guest": header + frame in one buffer. */
static uint16_t guest_send(struct rig *r, const uint8_t *frame, size_t len)
{
	uint64_t a = fake_alloc(&r->drv, 12 + len);
	struct seg s = { a, (uint32_t)(12 + len), false };

	memset(fake_gpa(&r->drv, a), 0, 12);
	memcpy(fake_gpa(&r->drv, a) + 12, frame, len);
	fake_add_chain(&r->drv, TXQ, &s, 1);
	fake_kick(&r->drv, TXQ);
	return r->drv.ring[TXQ].avail_idx;
}

/* Posts n receive buffers of size bytes each, one descriptor apiece. */
static void post_rx(struct rig *r, unsigned int n, uint32_t size, bool do_kick)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct seg s = { fake_alloc(&r->drv, size), size, true };

		fake_add_chain(&r->drv, RXQ, &s, 1);
	}
	if (do_kick)
		fake_kick(&r->drv, RXQ);
}

/* Reassembles the next received frame (header + data) from the used ring. */
static size_t take_rx(struct rig *r, uint8_t *out, size_t size, uint16_t *num_buffers)
{
	struct fake_ring *v = &r->drv.ring[RXQ];
	uint32_t id, len;
	size_t total = 0;
	uint16_t nb, i;

	assert_true(fake_wait_used(&r->drv, RXQ, (uint16_t)(r->rx_seen + 1), 3000));
	fake_used_elem(&r->drv, RXQ, r->rx_seen, &id, &len);
	assert_true(len >= 12);
	{
		uint8_t *d = fake_gpa(&r->drv, v->desc + 16u * id);

		memcpy(out, fake_gpa(&r->drv, le64_get(d)), len);
		total = len;
		nb = le16_get(out + 10);
	}
	r->rx_seen++;
	assert_true(nb >= 1);
	for (i = 1; i < nb; i++) {
		uint8_t *d;

		assert_true(fake_wait_used(&r->drv, RXQ, (uint16_t)(r->rx_seen + 1), 3000));
		fake_used_elem(&r->drv, RXQ, r->rx_seen, &id, &len);
		d = fake_gpa(&r->drv, v->desc + 16u * id);
		assert_true(total + len <= size);
		memcpy(out + total, fake_gpa(&r->drv, le64_get(d)), len);
		total += len;
		r->rx_seen++;
	}
	*num_buffers = nb;
	return total;
}

static void test_device_identity(void **state)
{
	struct rig *r;
	uint8_t cfg[10];

	(void)state;
	r = user_rig(linux_features);
	assert_string_equal(r->vdev->name, "virtio-net0");
	assert_int_equal(r->vdev->device_id, VIRTIO_ID_NET);
	assert_int_equal(r->vdev->num_queues, 3);
	assert_int_equal(r->vdev->queue_max_size[0], 256);
	assert_int_equal(r->vdev->queue_max_size[CTRLQ], 64);
	assert_int_equal(r->vdev->config_size, 10);
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_NET_F_MRG_RXBUF));
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_NET_F_MAC));
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_NET_F_STATUS));
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_RING_F_EVENT_IDX));
	/* A control queue, for notification coalescing only. */
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_NET_F_CTRL_VQ));
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_NET_F_NOTF_COAL));
	/* slirp cannot take partial checksums: none offered. */
	assert_false(r->vdev->host_features & (1ULL << VIRTIO_NET_F_CSUM));
	assert_false(r->vdev->host_features & (1ULL << VIRTIO_NET_F_GUEST_CSUM));
	r->vdev->ops->config_read(r->vdev, 0, cfg, 10);
	assert_memory_equal(cfg, guest_mac, 6);
	assert_int_equal(le16_get(cfg + 6), 1); /* LINK_UP */
	assert_int_equal(le16_get(cfg + 8), 1);
	/* Writes do not change the MAC. */
	r->vdev->ops->config_write(r->vdev, 0, "\xff\xff", 2);
	r->vdev->ops->config_read(r->vdev, 0, cfg, 6);
	assert_memory_equal(cfg, guest_mac, 6);
	rig_stop(r);
}

static void test_device_arp_roundtrip(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[4096];
	uint16_t nb;
	uint32_t id, len;
	struct rig *r;
	size_t n;

	(void)state;
	r = user_rig(linux_features);
	post_rx(r, 16, 1536 + 12, true);
	build_arp_request(req, "10.0.2.2");
	guest_send(r, req, sizeof(req));
	/* Transmit completes at once, with length 0, and interrupts. */
	assert_true(fake_wait_used(&r->drv, TXQ, 1, 1000));
	fake_used_elem(&r->drv, TXQ, 0, &id, &len);
	assert_int_equal(len, 0);
	assert_true(__atomic_load_n(&r->notified[TXQ], __ATOMIC_SEQ_CST) >= 1);

	n = take_rx(r, buf, sizeof(buf), &nb);
	assert_int_equal(nb, 1);
	assert_int_equal(n, 12 + 64); /* slirp pads to the Ethernet minimum */
	assert_int_equal(buf[0], 0); /* flags */
	assert_int_equal(buf[1], 0); /* gso_type */
	assert_true(is_arp_reply_from(buf + 12, n - 12, "10.0.2.2"));
	assert_true(__atomic_load_n(&r->notified[RXQ], __ATOMIC_SEQ_CST) >= 1);
	assert_false(r->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	rig_stop(r);
}

/* The DHCP OFFER (~590 bytes) over 128-byte mergeable buffers. */
static void test_device_dhcp_mergeable(void **state)
{
	uint8_t disc[DHCP_FRAME_LEN], buf[8192];
	uint32_t xid = 0xc0ffee;
	uint16_t nb;
	struct rig *r;
	size_t n;

	(void)state;
	r = user_rig(linux_features);
	post_rx(r, 64, 128, true);
	build_dhcp_discover(disc, xid);
	guest_send(r, disc, sizeof(disc));
	for (;;) {
		n = take_rx(r, buf, sizeof(buf), &nb);
		if (is_dhcp_offer(buf + 12, n - 12, xid))
			break;
	}
	assert_int_equal(nb, (n + 127) / 128);
	assert_true(nb > 1);
	rig_stop(r);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* No receive buffers: frames wait (one in the device, the rest in the
 * backend, whose fd stays readable), nobody spins; a kick with buffers
 * delivers them all. */
static void test_device_waits_for_buffers(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[4096];
	double before;
	uint16_t nb;
	struct rig *r;
	size_t n;
	int i;

	(void)state;
	r = user_rig(linux_features);
	build_arp_request(req, "10.0.2.2");
	for (i = 0; i < 3; i++)
		guest_send(r, req, sizeof(req));
	assert_true(fake_wait_used(&r->drv, TXQ, 3, 1000));
	usleep(50 * 1000);
	before = cpu_seconds();
	usleep(300 * 1000);
	/* A busy loop would burn ~0.3 s here. */
	assert_true(cpu_seconds() - before < 0.1);
	assert_int_equal(fake_used_idx(&r->drv, RXQ), 0);

	post_rx(r, 4, 1536 + 12, true);
	for (i = 0; i < 3; i++) {
		n = take_rx(r, buf, sizeof(buf), &nb);
		assert_true(is_arp_reply_from(buf + 12, n - 12, "10.0.2.2"));
	}
	rig_stop(r);
}

/* Mergeable buffers running out halfway through a frame: the part already
 * written waits in the chains the device holds, the device asks for a
 * kick at the guest's current avail index (EVENT_IDX), and more buffers
 * finish the frame with the right num_buffers. */
static void test_device_mergeable_resume(void **state)
{
	uint8_t disc[DHCP_FRAME_LEN], buf[8192];
	uint32_t xid = 0xabcdef;
	uint16_t nb, avail_event;
	struct rig *r;
	double before;
	size_t n;
	int i;

	(void)state;
	r = user_rig(linux_features);
	post_rx(r, 2, 128, true);
	build_dhcp_discover(disc, xid);
	guest_send(r, disc, sizeof(disc));
	/* The OFFER needs 5 such buffers: nothing is used yet, nobody spins. */
	usleep(100 * 1000);
	before = cpu_seconds();
	usleep(200 * 1000);
	assert_true(cpu_seconds() - before < 0.1);
	assert_int_equal(fake_used_idx(&r->drv, RXQ), 0);
	avail_event = le16_get(fake_gpa(&r->drv, r->drv.ring[RXQ].used + 4 + 8u * QSIZE));
	assert_int_equal(avail_event, r->drv.ring[RXQ].avail_idx);

	for (i = 0; i < 8; i++)
		post_rx(r, 1, 128, true);
	for (;;) {
		n = take_rx(r, buf, sizeof(buf), &nb);
		if (is_dhcp_offer(buf + 12, n - 12, xid))
			break;
	}
	assert_int_equal(nb, (n + 127) / 128);
	rig_stop(r);
}

/* A snapshot taken while a frame waits half delivered in mergeable
 * buffers: the device's record carries the frame, and a device loaded
 * from it (reset, brought back to DRIVER_OK with the same queue state,
 * as virtio-pci's load does) hands the held chains back and delivers the
 * whole frame again, starting with the first of them. Damaged records
 * are refused. */
static void test_device_state_half_frame(void **state)
{
	uint8_t disc[DHCP_FRAME_LEN], buf[8192];
	uint32_t xid = 0x5151;
	struct virtio_device *vdev;
	struct state_writer w;
	struct state_reader rd;
	struct error err = { 0 };
	uint32_t id, len;
	uint16_t nb;
	struct rig *r;
	size_t n;
	int i;

	(void)state;
	r = user_rig(linux_features);
	vdev = r->vdev;
	post_rx(r, 2, 128, true);
	build_dhcp_discover(disc, xid);
	guest_send(r, disc, sizeof(disc));
	usleep(200 * 1000);
	assert_int_equal(fake_used_idx(&r->drv, RXQ), 0);
	assert_int_equal(vdev->vq[RXQ].last_avail, 2); /* both held */

	ioloop_stop(&vdev->loop);
	pthread_mutex_lock(&vdev->lock);
	state_writer_init(&w);
	vdev->ops->save(vdev, &w);
	assert_false(w.failed);
	/* The device forgets everything; the queue keeps its indices. */
	vdev->ops->reset(vdev);
	assert_int_equal(vdev->ops->activate(vdev), 0);
	for (n = 0; n < w.len; n++) {
		state_reader_init(&rd, w.buf, n);
		assert_int_equal(vdev->ops->load(vdev, &rd, &err), -1);
	}
	{
		uint8_t *held = w.buf + 4;
		uint32_t saved = le32_get(held);

		le32_put(held, QSIZE + 1);
		state_reader_init(&rd, w.buf, w.len);
		assert_int_equal(vdev->ops->load(vdev, &rd, &err), -1);
		le32_put(held, saved);
	}
	assert_int_equal(vdev->vq[RXQ].last_avail, 2);
	state_reader_init(&rd, w.buf, w.len);
	assert_int_equal(vdev->ops->load(vdev, &rd, &err), 0);
	assert_int_equal(vdev->vq[RXQ].last_avail, 0);
	pthread_mutex_unlock(&vdev->lock);
	assert_int_equal(ioloop_start(&vdev->loop), 0);

	for (i = 0; i < 8; i++)
		post_rx(r, 1, 128, true);
	for (;;) {
		uint16_t first = r->rx_seen;

		n = take_rx(r, buf, sizeof(buf), &nb);
		if (is_dhcp_offer(buf + 12, n - 12, xid)) {
			fake_used_elem(&r->drv, RXQ, first, &id, &len);
			break;
		}
	}
	assert_int_equal(nb, (n + 127) / 128);
	assert_int_equal(id, 0); /* the first chain posted, delivered again */
	state_writer_free(&w);
	rig_stop(r);
}

/* The next DHCP OFFER for xid in the receive queue: the address it gives
 * is ip. */
static void take_offer(struct rig *r, uint32_t xid, const char *ip)
{
	uint8_t buf[8192];
	uint16_t nb;
	size_t n;

	for (;;) {
		n = take_rx(r, buf, sizeof(buf), &nb);
		if (is_dhcp_offer_of(buf + 12, n - 12, xid, ip))
			return;
		assert_false(is_dhcp_offer_of(buf + 12, n - 12, xid, "10.0.2.15"));
	}
}

/* The device's record, its I/O thread stopped first; the rig goes. */
static void save_and_stop(struct rig *r, struct state_writer *w)
{
	ioloop_stop(&r->vdev->loop);
	pthread_mutex_lock(&r->vdev->lock);
	state_writer_init(w);
	r->vdev->ops->save(r->vdev, w);
	pthread_mutex_unlock(&r->vdev->lock);
	assert_false(w->failed);
	rig_stop(r);
}

/* The device's record carries its backend's state: libslirp's DHCP
 * leases go with a snapshot into a second device on a fresh backend,
 * which saves the same record again and leases as the first would. */
static void test_device_state_backend(void **state)
{
	static const uint8_t other_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	uint8_t disc[DHCP_FRAME_LEN];
	struct state_writer w, again;
	struct state_reader rd;
	struct error err = { 0 };
	struct virtio_device *vdev;
	struct rig *r;

	(void)state;
	if (!libslirp_get()) {
		print_message("skipping: libslirp cannot be loaded (Debian: apt-get install libslirp0)\n");
		skip();
	}
	r = user_rig(linux_features);
	assert_int_equal(r->vdev->state_revision, 2);
	post_rx(r, 16, 1536 + 12, true);
	build_dhcp_discover(disc, 0x7001);
	guest_send(r, disc, sizeof(disc));
	take_offer(r, 0x7001, "10.0.2.15");
	save_and_stop(r, &w);

	r = user_rig(linux_features);
	vdev = r->vdev;
	ioloop_stop(&vdev->loop);
	pthread_mutex_lock(&vdev->lock);
	state_writer_init(&again);
	vdev->ops->save(vdev, &again);
	/* A fresh backend's state is not the one saved... */
	assert_int_equal(again.len, w.len);
	assert_memory_not_equal(again.buf, w.buf, w.len);
	state_writer_free(&again);
	state_reader_init(&rd, w.buf, w.len);
	assert_int_equal(vdev->ops->check_saved(vdev, w.buf, w.len, &err), 0);
	if (vdev->ops->load(vdev, &rd, &err) < 0)
		fail_msg("load: %s", err.msg);
	/* ...and after the load it is. */
	state_writer_init(&again);
	vdev->ops->save(vdev, &again);
	assert_int_equal(again.len, w.len);
	assert_memory_equal(again.buf, w.buf, w.len);
	pthread_mutex_unlock(&vdev->lock);
	assert_int_equal(ioloop_start(&vdev->loop), 0);

	/* 10.0.2.15 is leased to the guest: another NIC gets the next. */
	post_rx(r, 16, 1536 + 12, true);
	build_dhcp_discover_from(disc, 0x7002, other_mac);
	guest_send(r, disc, sizeof(disc));
	take_offer(r, 0x7002, "10.0.2.16");
	state_writer_free(&w);
	state_writer_free(&again);
	rig_stop(r);
}

/* Buffers added without a kick while the device has notifications off
 * are found on the next frame. */
/* ---- notification coalescing (VIRTIO_NET_F_NOTF_COAL) ---- */

/* Sends a control command (class, command, data) as Linux does: the
 * header and data readable, one writable byte for the answer. Returns the
 * answer and the used length. */
static uint8_t ctrl(struct rig *r, const uint8_t *cmd, uint32_t len, uint32_t *used_len)
{
	uint64_t out = fake_alloc(&r->drv, len), in = fake_alloc(&r->drv, 1);
	struct seg s[2] = { { out, len, false }, { in, 1, true } };
	uint16_t want = (uint16_t)(fake_used_idx(&r->drv, CTRLQ) + 1);
	uint32_t id;

	memcpy(fake_gpa(&r->drv, out), cmd, len);
	*fake_gpa(&r->drv, in) = 0xee;
	fake_add_chain(&r->drv, CTRLQ, s, 2);
	fake_kick(&r->drv, CTRLQ);
	assert_true(fake_wait_used(&r->drv, CTRLQ, want, 3000));
	fake_used_elem(&r->drv, CTRLQ, (uint16_t)(want - 1), &id, used_len);
	return *fake_gpa(&r->drv, in);
}

static uint8_t coal_set(struct rig *r, uint8_t which, uint32_t max_packets, uint32_t max_usecs)
{
	uint8_t cmd[10] = { 6, which };
	uint32_t len;
	uint8_t ack;

	le32_put(cmd + 2, max_packets);
	le32_put(cmd + 6, max_usecs);
	ack = ctrl(r, cmd, sizeof(cmd), &len);
	assert_int_equal(len, 1);
	return ack;
}

static int notified(struct rig *r, unsigned int q)
{
	return __atomic_load_n(&r->notified[q], __ATOMIC_SEQ_CST);
}

/* Waits up to ms for queue q's notifications to reach want. */
static bool wait_notified(struct rig *r, unsigned int q, int want, int ms)
{
	for (; ms > 0 && notified(r, q) < want; ms--)
		usleep(1000);
	return notified(r, q) >= want;
}

/* Queue q's used index reaches used, and 100 ms later its notifications
 * are still n: what was used is held back. */
static void assert_held(struct rig *r, unsigned int q, uint16_t used, int n)
{
	assert_true(fake_wait_used(&r->drv, q, used, 3000));
	usleep(100000);
	assert_int_equal(notified(r, q), n);
}

/* ARP requests to slirp's gateway: each comes back as one received frame. */
static void arps(struct rig *r, unsigned int n)
{
	uint8_t req[ARP_FRAME_LEN];

	build_arp_request(req, "10.0.2.2");
	while (n--)
		guest_send(r, req, sizeof(req));
}

/* The driver sets coalescing through the control queue; the device then
 * holds receive and transmit notifications back until max_packets buffers
 * were used or max_usecs went by, and a reset clears it. No EVENT_IDX
 * here: every notification the device asks for is counted. */
static void test_device_notification_coalescing(void **state)
{
	const uint64_t features = (linux_features & ~(1ULL << VIRTIO_RING_F_EVENT_IDX)) |
				  1ULL << VIRTIO_NET_F_CTRL_VQ;
	static const uint8_t bad_class[10] = { 4, 0 }, short_cmd[6] = { 6, 1 };
	uint8_t cmd[2] = { 6, 0 };
	uint32_t len;
	int rx0, tx0;
	struct rig *r;

	(void)state;
	r = user_rig(features);
	post_rx(r, 64, 1536 + 12, true);

	/* Commands it does not know, or malformed, are refused. */
	assert_int_equal(ctrl(r, bad_class, sizeof(bad_class), &len), 1);
	assert_int_equal(ctrl(r, short_cmd, sizeof(short_cmd), &len), 1);
	assert_int_equal(ctrl(r, cmd, sizeof(cmd), &len), 1);
	assert_int_equal(coal_set(r, 7, 4, 1000), 1);

	/* Receive: 3 frames, 1 s. Two frames are held back... */
	assert_int_equal(coal_set(r, 1, 3, 1000000), 0);
	rx0 = notified(r, RXQ);
	arps(r, 2);
	assert_held(r, RXQ, 2, rx0);
	/* ... the third brings one notification for the three. */
	arps(r, 1);
	assert_true(wait_notified(r, RXQ, rx0 + 1, 3000));
	assert_held(r, RXQ, 3, rx0 + 1);

	/* Fewer than max_packets: the timer (50 ms) notifies them. */
	assert_int_equal(coal_set(r, 1, 100, 50000), 0);
	arps(r, 1);
	assert_true(fake_wait_used(&r->drv, RXQ, 4, 3000));
	assert_true(wait_notified(r, RXQ, rx0 + 2, 3000));

	/* Transmit: 2 packets, 1 s: the first completion waits for the
	 * second. */
	assert_int_equal(coal_set(r, 0, 2, 1000000), 0);
	tx0 = notified(r, TXQ);
	arps(r, 1);
	assert_held(r, TXQ, 5, tx0);
	arps(r, 1);
	assert_true(wait_notified(r, TXQ, tx0 + 1, 3000));

	/* Parameters that make what is held due notify it at once. */
	arps(r, 1);
	assert_held(r, TXQ, 7, tx0 + 1);
	assert_int_equal(coal_set(r, 0, 0, 0), 0);
	assert_true(wait_notified(r, TXQ, tx0 + 2, 3000));

	/* A reset puts the parameters back to 0: every frame notifies. */
	assert_int_equal(coal_set(r, 1, 64, 1000000), 0);
	pthread_mutex_lock(&r->vdev->lock);
	r->vdev->ops->reset(r->vdev);
	pthread_mutex_unlock(&r->vdev->lock);
	/* (The rings stay as they were: the queues' kicks start it again,
	 * as after a driver's new DRIVER_OK.) */
	fake_kick(&r->drv, RXQ);
	rx0 = notified(r, RXQ);
	arps(r, 1);
	assert_true(wait_notified(r, RXQ, rx0 + 1, 3000));
	assert_false(r->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	rig_stop(r);
}

/* The parameters go with a snapshot: a second device loads them (its
 * record saved again is the same) and notifies, within the delay, what
 * the first may have been holding back when it stopped. */
static void test_device_state_coalescing(void **state)
{
	const uint64_t features = (linux_features & ~(1ULL << VIRTIO_RING_F_EVENT_IDX)) |
				  1ULL << VIRTIO_NET_F_CTRL_VQ;
	struct state_writer w, again;
	struct state_reader rd;
	struct error err = { 0 };
	struct virtio_device *vdev;
	struct rig *r;
	int rx0;

	(void)state;
	r = user_rig(features);
	assert_int_equal(coal_set(r, 1, 5, 200000), 0);
	assert_int_equal(coal_set(r, 0, 7, 300000), 0);
	save_and_stop(r, &w);

	r = user_rig(features);
	vdev = r->vdev;
	ioloop_stop(&vdev->loop);
	rx0 = notified(r, RXQ);
	pthread_mutex_lock(&vdev->lock);
	state_reader_init(&rd, w.buf, w.len);
	if (vdev->ops->load(vdev, &rd, &err) < 0)
		fail_msg("load: %s", err.msg);
	state_writer_init(&again);
	vdev->ops->save(vdev, &again);
	assert_int_equal(again.len, w.len);
	assert_memory_equal(again.buf, w.buf, w.len);
	pthread_mutex_unlock(&vdev->lock);
	assert_int_equal(notified(r, RXQ), rx0);
	assert_int_equal(ioloop_start(&vdev->loop), 0);
	assert_true(wait_notified(r, RXQ, rx0 + 1, 3000));
	state_writer_free(&w);
	state_writer_free(&again);
	rig_stop(r);
}

/* Without NOTF_COAL negotiated its commands are refused; a control chain
 * with no room for the answer is given back with nothing written. */
static void test_device_ctrl_without_feature(void **state)
{
	const uint64_t features = (linux_features & ~(1ULL << VIRTIO_NET_F_NOTF_COAL)) |
				  1ULL << VIRTIO_NET_F_CTRL_VQ;
	uint8_t cmd[10] = { 6, 1 };
	uint64_t out;
	struct seg s;
	uint32_t id, len;
	struct rig *r;

	(void)state;
	r = user_rig(features);
	assert_int_equal(coal_set(r, 1, 8, 100), 1);
	out = fake_alloc(&r->drv, sizeof(cmd));
	memcpy(fake_gpa(&r->drv, out), cmd, sizeof(cmd));
	s = (struct seg){ out, sizeof(cmd), false };
	fake_add_chain(&r->drv, CTRLQ, &s, 1);
	fake_kick(&r->drv, CTRLQ);
	assert_true(fake_wait_used(&r->drv, CTRLQ, 2, 3000));
	fake_used_elem(&r->drv, CTRLQ, 1, &id, &len);
	assert_int_equal(len, 0);
	assert_false(r->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	rig_stop(r);
}

static void test_device_buffers_without_kick(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[4096];
	uint16_t nb;
	struct rig *r;
	size_t n;

	(void)state;
	r = user_rig(linux_features);
	post_rx(r, 2, 1536 + 12, false);
	build_arp_request(req, "10.0.2.3");
	guest_send(r, req, sizeof(req));
	n = take_rx(r, buf, sizeof(buf), &nb);
	assert_true(is_arp_reply_from(buf + 12, n - 12, "10.0.2.3"));
	rig_stop(r);
}

/* Without MRG_RXBUF each frame needs one chain big enough; a chain too
 * small drops the frame but stays available for the next. */
static void test_device_no_mergeable(void **state)
{
	uint64_t f = linux_features & ~(1ULL << VIRTIO_NET_F_MRG_RXBUF);
	uint8_t req[ARP_FRAME_LEN], buf[4096];
	uint16_t nb;
	struct rig *r;
	size_t n;
	struct seg s[2];

	(void)state;
	r = user_rig(f);
	/* 12 + 30: too small for the (64-byte) ARP reply. */
	s[0] = (struct seg){ fake_alloc(&r->drv, 42), 42, true };
	fake_add_chain(&r->drv, RXQ, s, 1);
	fake_kick(&r->drv, RXQ);
	build_arp_request(req, "10.0.2.2");
	guest_send(r, req, sizeof(req));
	usleep(200 * 1000);
	assert_int_equal(fake_used_idx(&r->drv, RXQ), 0);
	assert_false(r->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	rig_stop(r);

	r = user_rig(f);
	/* Header and data in separate descriptors of one chain. */
	s[0] = (struct seg){ fake_alloc(&r->drv, 12), 12, true };
	s[1] = (struct seg){ fake_alloc(&r->drv, 1518), 1518, true };
	fake_add_chain(&r->drv, RXQ, s, 2);
	fake_kick(&r->drv, RXQ);
	guest_send(r, req, sizeof(req));
	assert_true(fake_wait_used(&r->drv, RXQ, 1, 3000));
	{
		uint32_t id, len;

		fake_used_elem(&r->drv, RXQ, 0, &id, &len);
		assert_int_equal(len, 12 + 64);
		memcpy(buf, fake_gpa(&r->drv, s[0].addr), 12);
		memcpy(buf + 12, fake_gpa(&r->drv, s[1].addr), 64);
		nb = le16_get(buf + 10);
		n = len;
	}
	assert_int_equal(nb, 1); /* 1 without MRG_RXBUF too */
	assert_true(is_arp_reply_from(buf + 12, n - 12, "10.0.2.2"));
	rig_stop(r);
}

/* Broken transmit chains are dropped and returned; the device goes on. */
static void test_device_bad_tx_chains(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[4096];
	struct seg s[2];
	uint16_t nb;
	struct rig *r;
	size_t n;

	(void)state;
	r = user_rig(linux_features);
	post_rx(r, 8, 1536 + 12, true);
	build_arp_request(req, "10.0.2.2");

	/* Shorter than a header. */
	s[0] = (struct seg){ fake_alloc(&r->drv, 8), 8, false };
	fake_add_chain(&r->drv, TXQ, s, 1);
	/* A device-writable buffer in a transmit chain. */
	s[0] = (struct seg){ fake_alloc(&r->drv, 12 + sizeof(req)), 12 + sizeof(req), false };
	memset(fake_gpa(&r->drv, s[0].addr), 0, 12);
	memcpy(fake_gpa(&r->drv, s[0].addr) + 12, req, sizeof(req));
	s[1] = (struct seg){ fake_alloc(&r->drv, 64), 64, true };
	fake_add_chain(&r->drv, TXQ, s, 2);
	/* Checksum offload asked of user networking, never offered. */
	s[0] = (struct seg){ fake_alloc(&r->drv, 12 + sizeof(req)), 12 + sizeof(req), false };
	memset(fake_gpa(&r->drv, s[0].addr), 0, 12);
	fake_gpa(&r->drv, s[0].addr)[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	memcpy(fake_gpa(&r->drv, s[0].addr) + 12, req, sizeof(req));
	fake_add_chain(&r->drv, TXQ, s, 1);
	fake_kick(&r->drv, TXQ);
	assert_true(fake_wait_used(&r->drv, TXQ, 3, 1000));
	assert_false(r->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	usleep(100 * 1000);
	assert_int_equal(fake_used_idx(&r->drv, RXQ), 0); /* none of them went out */

	/* A good one still works. */
	guest_send(r, req, sizeof(req));
	n = take_rx(r, buf, sizeof(buf), &nb);
	assert_true(is_arp_reply_from(buf + 12, n - 12, "10.0.2.2"));
	rig_stop(r);
}

/* A chain pointing outside guest RAM breaks the queue: NEEDS_RESET. */
static void test_device_malformed_chain(void **state)
{
	struct seg s = { RAM_SIZE - 4, 64, false };
	struct rig *r;

	(void)state;
	r = user_rig(linux_features);
	fake_add_chain(&r->drv, TXQ, &s, 1);
	fake_kick(&r->drv, TXQ);
	assert_true(r->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(__atomic_load_n(&r->config_notified, __ATOMIC_SEQ_CST) >= 1);
	assert_false(virtio_running(r->vdev));
	rig_stop(r);
}

/* A receive chain too small for the header is given back unused. */
static void test_device_rx_chain_too_small(void **state)
{
	uint8_t req[ARP_FRAME_LEN], buf[4096];
	uint32_t id, len;
	struct seg s = { 0, 8, true };
	uint16_t nb, small_head;
	struct rig *r;
	size_t n;

	(void)state;
	r = user_rig(linux_features);
	s.addr = fake_alloc(&r->drv, 8);
	small_head = fake_add_chain(&r->drv, RXQ, &s, 1);
	post_rx(r, 2, 1536 + 12, true);
	build_arp_request(req, "10.0.2.2");
	guest_send(r, req, sizeof(req));
	assert_true(fake_wait_used(&r->drv, RXQ, 2, 3000));
	fake_used_elem(&r->drv, RXQ, 0, &id, &len);
	assert_int_equal(id, small_head);
	assert_int_equal(len, 0);
	r->rx_seen = 1;
	n = take_rx(r, buf, sizeof(buf), &nb);
	assert_true(is_arp_reply_from(buf + 12, n - 12, "10.0.2.2"));
	rig_stop(r);
}

/* ---- tap ---- */

static struct rig *tap_rig(char *name, size_t size)
{
	struct net_options o = { .kind = NET_TAP, .ifname = name };
	struct rig *r;
	int fd, saved, null;

	snprintf(name, size, "vireon%u", (unsigned int)getpid() % 1000000);
	fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0) {
		print_message("skipping: /dev/net/tun: %s\n", strerror(errno));
		skip();
	}
	close(fd);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	null = open("/dev/null", O_WRONLY);
	dup2(null, STDERR_FILENO);
	close(null);
	r = rig_start(&o, linux_features);
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (!r) {
		print_message("skipping: cannot create tap %s\n", name);
		skip();
	}
	return r;
}

static void link_up_quiet(const char *name)
{
	struct ifreq ifr;
	char path[128];
	FILE *f;
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	f = fopen(path, "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	assert_true(s >= 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

static void test_device_tap(void **state)
{
	static const uint8_t peer[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint8_t frame[300], buf[4096];
	struct sockaddr_ll ll;
	char name[IFNAMSIZ];
	struct pollfd p;
	uint16_t nb;
	struct rig *r;
	size_t n;
	int s;

	(void)state;
	r = tap_rig(name, sizeof(name));
	/* Offloads pass through a tap. */
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_NET_F_CSUM));
	assert_true(r->vdev->host_features & (1ULL << VIRTIO_NET_F_GUEST_CSUM));
	link_up_quiet(name);
	s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(0x88b5));
	assert_true(s >= 0);
	memset(&ll, 0, sizeof(ll));
	ll.sll_family = AF_PACKET;
	ll.sll_protocol = htons(0x88b5);
	ll.sll_ifindex = (int)if_nametoindex(name);
	assert_int_equal(bind(s, (struct sockaddr *)&ll, sizeof(ll)), 0);

	/* Host to guest. */
	post_rx(r, 8, 1536 + 12, true);
	eth_header(frame, guest_mac, peer, 0x88b5);
	memset(frame + 14, 0x5a, sizeof(frame) - 14);
	assert_int_equal(sendto(s, frame, sizeof(frame), 0, (struct sockaddr *)&ll, sizeof(ll)),
			 (ssize_t)sizeof(frame));
	n = take_rx(r, buf, sizeof(buf), &nb);
	assert_int_equal(n, 12 + sizeof(frame));
	assert_int_equal(nb, 1);
	assert_int_equal(buf[1], 0);
	assert_memory_equal(buf + 12, frame, sizeof(frame));

	/* Guest to host. */
	eth_header(frame, peer, guest_mac, 0x88b5);
	memset(frame + 14, 0xa5, sizeof(frame) - 14);
	guest_send(r, frame, sizeof(frame));
	assert_true(fake_wait_used(&r->drv, TXQ, 1, 1000));
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(recv(s, buf, sizeof(buf), 0), (ssize_t)sizeof(frame));
	assert_memory_equal(buf, frame, sizeof(frame));
	close(s);
	rig_stop(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_prepare_layouts),
		cmocka_unit_test(test_tx_prepare_rejects),
		cmocka_unit_test(test_rx_fixup),
		cmocka_unit_test(test_rx_scatter),
		cmocka_unit_test(test_device_identity),
		cmocka_unit_test(test_device_arp_roundtrip),
		cmocka_unit_test(test_device_dhcp_mergeable),
		cmocka_unit_test(test_device_waits_for_buffers),
		cmocka_unit_test(test_device_mergeable_resume),
		cmocka_unit_test(test_device_state_half_frame),
		cmocka_unit_test(test_device_state_backend),
		cmocka_unit_test(test_device_notification_coalescing),
		cmocka_unit_test(test_device_ctrl_without_feature),
		cmocka_unit_test(test_device_state_coalescing),
		cmocka_unit_test(test_device_buffers_without_kick),
		cmocka_unit_test(test_device_no_mergeable),
		cmocka_unit_test(test_device_bad_tx_chains),
		cmocka_unit_test(test_device_malformed_chain),
		cmocka_unit_test(test_device_rx_chain_too_small),
		cmocka_unit_test(test_device_tap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
