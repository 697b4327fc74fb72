/* virtio-net against arbitrary guests. Two halves, picked by the first
 * input byte's low bit:
 *
 * 0: the pure header code. First a received header goes through
 *    vnet_rx_fixup_hdr() with input-chosen guest offloads, checked both
 *    ways against a model of what the guest can take (kept and passed on
 *    unchanged, or refused: e.g. TSO4 without GUEST_TSO4). The rest of
 *    the input is split into transmit
 *    buffers for vnet_tx_prepare() and into receive chains for the
 *    vnet_rx_* scatter; results are checked against a byte-for-byte model
 *    (what the backend is given is exactly the frame after the header;
 *    what the chains hold is exactly header + frame; num_buffers lands).
 *
 * 1: the whole device on real split virtqueues in guest RAM, with user-
 *    mode networking behind it (answering ARP, so receive sees traffic).
 *    Records build chains (any sizes, direct or indirect, readable or
 *    writable), scribble raw descriptors and avail entries, and kick the
 *    queues. Sanitizers catch memory errors; the used rings are checked:
 *    never more used than made available, never more written than a
 *    chain can hold. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "net/vnet_hdr.h"
#include "util/le.h"
#include "virtio/virtio_net.h"

/* ==== half 0: vnet_tx_prepare and the receive scatter ==== */

static uint8_t pool[12 + NET_MAX_FRAME + 64];
static uint8_t arena[70000 + 4096];

static void fuzz_tx(struct fuzz_input *in, bool backend_hdr, size_t hdr_len)
{
	struct iovec out[VIRTQ_MAX_SEGS], iov[VIRTQ_MAX_SEGS + 1];
	struct virtio_net_hdr_v1 hdr;
	unsigned int nout = fuzz_u8(in) % 64, i;
	size_t total = 0, frame_len = 0, pos = 0;
	int r, j;

	/* Segment lengths from the input (zero allowed), contents from a
	 * pattern laid over pool. */
	for (i = 0; i < nout; i++) {
		size_t len = fuzz_u16(in);

		if (fuzz_u8(in) & 1)
			len = len * 2 + 1; /* long segments too */
		if (len > sizeof(pool) - total)
			len = sizeof(pool) - total;
		out[i] = (struct iovec){ pool + total, len };
		total += len;
	}
	for (i = 0; i < total; i++)
		pool[i] = (uint8_t)(i * 31 + 7);
	/* Header bytes from the input, so flags and gso vary. */
	for (i = 0; i < hdr_len && i < total; i++)
		pool[i] = fuzz_u8(in);

	r = vnet_tx_prepare(out, nout, hdr_len, backend_hdr, &hdr, iov);
	if (total < hdr_len) {
		CHECK(r == -EINVAL);
		return;
	}
	if (!backend_hdr && (pool[0] || pool[1])) {
		CHECK(r == -EOPNOTSUPP);
		return;
	}
	if (total - hdr_len < ETH_HDR_LEN || total - hdr_len > NET_MAX_FRAME) {
		CHECK(r == -EMSGSIZE);
		return;
	}
	CHECK(r >= 0 && (unsigned int)r <= nout + 1);
	j = 0;
	if (backend_hdr) {
		CHECK(iov[0].iov_base == &hdr && iov[0].iov_len == sizeof(hdr));
		CHECK(!memcmp(&hdr, pool, VNET_NUM_BUFFERS_OFF < hdr_len ? VNET_NUM_BUFFERS_OFF
									   : hdr_len));
		CHECK(hdr.num_buffers == 0);
		j = 1;
	}
	/* The frame pieces, in order, are exactly pool[hdr_len..total). */
	pos = hdr_len;
	for (; j < r; j++) {
		CHECK(iov[j].iov_len > 0);
		CHECK((uint8_t *)iov[j].iov_base == pool + pos);
		pos += iov[j].iov_len;
		frame_len += iov[j].iov_len;
	}
	CHECK(pos == total && frame_len == total - hdr_len);
}

static void fuzz_rx(struct fuzz_input *in, size_t hdr_len)
{
	uint8_t hdr[VNET_HDR_LEN], *frame = pool;
	struct iovec chain_iov[64][8];
	unsigned int chain_n[64];
	size_t frame_len = fuzz_u16(in) % (NET_MAX_FRAME + 1), used = 0, cap_total = 0, cap0 = 0;
	unsigned int nchains = 1 + fuzz_u8(in) % 64, c, k;
	struct vnet_rx rx;

	for (k = 0; k < hdr_len; k++)
		hdr[k] = fuzz_u8(in);
	for (k = 0; k < frame_len; k++)
		frame[k] = (uint8_t)(k * 13 + 1);
	memset(arena, 0, sizeof(arena));
	vnet_rx_begin(&rx, hdr, hdr_len, frame, frame_len);
	for (c = 0; c < nchains && !vnet_rx_complete(&rx); c++) {
		size_t before = rx.done, cap = 0, got;

		chain_n[c] = 1 + fuzz_u8(in) % 8;
		for (k = 0; k < chain_n[c]; k++) {
			size_t len = fuzz_u16(in) % 4096;

			if (len > sizeof(arena) - used)
				len = sizeof(arena) - used;
			chain_iov[c][k] = (struct iovec){ arena + used, len };
			used += len;
			cap += len;
		}
		got = vnet_rx_fill(&rx, chain_iov[c], chain_n[c]);
		CHECK(got <= cap);
		CHECK(rx.done == before + got);
		/* A chain is filled completely unless the frame ended. */
		CHECK(got == cap || vnet_rx_complete(&rx));
		if (c == 0)
			cap0 = cap;
		cap_total += cap;
	}
	CHECK(rx.nbufs == c);
	CHECK(rx.done == (cap_total < rx.total ? cap_total : rx.total));
	/* The chains, in order, hold header + frame: arena is laid out
	 * contiguously, so it must read back as exactly that. */
	CHECK(!memcmp(arena, hdr, rx.done < hdr_len ? rx.done : hdr_len));
	if (rx.done > hdr_len)
		CHECK(!memcmp(arena + hdr_len, frame, rx.done - hdr_len));
	/* The device only uses a first chain that holds the whole header. */
	if (c && hdr_len == VNET_HDR_LEN && cap0 >= VNET_HDR_LEN) {
		vnet_rx_set_num_buffers(chain_iov[0], chain_n[0], (uint16_t)c);
		CHECK(le16_get(arena + VNET_NUM_BUFFERS_OFF) == c);
	}
}

/* Whether the guest can take a received header, from the spec rather
 * than from the code: a partial checksum needs GUEST_CSUM, each GSO type
 * its GUEST_TSO4/TSO6/UFO, the ECN bit GUEST_ECN and a GSO type to go
 * with; other GSO types do not exist. */
static bool guest_takes(const struct virtio_net_hdr_v1 *h, const struct net_offloads *off)
{
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	bool ecn = h->gso_type & VIRTIO_NET_HDR_GSO_ECN;

	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !off->csum)
		return false;
	if (ecn && (!off->ecn || gso == VIRTIO_NET_HDR_GSO_NONE))
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return off->tso4;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return off->tso6;
	case VIRTIO_NET_HDR_GSO_UDP:
		return off->ufo;
	default:
		return false;
	}
}

/* full: the other header fields come from the input too (else zero). */
static void fuzz_fixup(struct fuzz_input *in, bool full)
{
	struct virtio_net_hdr_v1 h = { 0 }, orig;
	uint8_t g;
	struct net_offloads off;
	bool ok;

	h.flags = fuzz_u8(in);
	/* Mostly the known GSO types, with or without ECN. */
	g = fuzz_u8(in);
	h.gso_type = (g & 0x40) ? g : (uint8_t)((g & 0x80) | (g & 7));
	g = fuzz_u8(in);
	off = (struct net_offloads){
		.csum = g & 1, .tso4 = g & 2, .tso6 = g & 4, .ecn = g & 8, .ufo = g & 16,
	};
	if (full) {
		h.hdr_len = fuzz_u16(in);
		h.gso_size = fuzz_u16(in);
		h.csum_start = fuzz_u16(in);
		h.csum_offset = fuzz_u16(in);
		h.num_buffers = fuzz_u16(in);
	}
	orig = h;

	ok = vnet_rx_fixup_hdr(&h, &off);
	/* Refused exactly when the guest could not take it: e.g. a TSO4
	 * frame without GUEST_TSO4, or a partial checksum without
	 * GUEST_CSUM, must never reach the guest. */
	CHECK(ok == guest_takes(&orig, &off));
	if (!ok)
		return;
	/* Flags the guest did not negotiate are cleared: without GUEST_CSUM
	 * all of them (the frame is whole), with it the two defined ones
	 * are kept as the backend gave them. */
	CHECK(h.flags == (off.csum ? orig.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM |
						   VIRTIO_NET_HDR_F_DATA_VALID)
				   : 0));
	/* Everything else reaches the guest as it was; num_buffers is the
	 * device's to fill in later. */
	CHECK(h.gso_type == orig.gso_type && h.hdr_len == orig.hdr_len &&
	      h.gso_size == orig.gso_size && h.csum_start == orig.csum_start &&
	      h.csum_offset == orig.csum_offset);
	CHECK(h.num_buffers == 0);
}

/* ==== half 1: the device ==== */

#define RAM_SIZE (2u << 20)
#define RING_BASE 0x1000u
#define BUF_BASE 0x20000u
#define MAX_Q 256

struct fq {
	uint64_t desc, avail, used;
	uint16_t size, next_desc, avail_idx, used_seen;
	uint32_t in_cap[MAX_Q]; /* writable bytes of the chain at each head */
	bool raw;		/* descriptors scribbled: no length model */
};

static struct {
	bool ready;
	struct guest_mem mem;
	struct virtio_device *vdev;
	struct fq q[3]; /* receive, transmit, control */
	uint64_t next_buf;
	bool wrapped; /* buffers reused while possibly in use: no length model */
} fz;

static void fake_notify_queue(struct virtio_device *vdev, unsigned int q)
{
	(void)vdev;
	(void)q;
}

static void fake_notify_config(struct virtio_device *vdev)
{
	(void)vdev;
}

static const struct virtio_transport_ops fake_transport = {
	.notify_queue = fake_notify_queue,
	.notify_config = fake_notify_config,
};

static void device_setup_once(void)
{
	/* Arbitrary guest frames must not open sockets on this host. */
	struct net_options o = { .kind = NET_USER, .restricted = true };
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	struct net_backend *backend;

	if (fz.ready)
		return;
	CHECK(guest_mem_map(&fz.mem, RAM_SIZE) == 0);
	backend = net_open(&o);
	CHECK(backend);
	fz.vdev = virtio_net_create(backend, mac, 0);
	CHECK(fz.vdev);
	pthread_mutex_init(&fz.vdev->lock, NULL);
	fz.vdev->mem = &fz.mem;
	fz.vdev->transport = &fake_transport;
	/* The loop is never started: queue work runs here, synchronously. */
	CHECK(ioloop_init(&fz.vdev->loop, "fuzz-net") == 0);
	fz.ready = true;
}

static uint64_t alloc_buf(uint32_t len)
{
	uint64_t a = fz.next_buf;

	if (a + len > RAM_SIZE) {
		fz.wrapped = true; /* old buffers (and indirect tables) reused */
		a = BUF_BASE;
		if (a + len > RAM_SIZE)
			len = RAM_SIZE - (uint32_t)a;
	}
	fz.next_buf = a + ((len + 15) & ~15u);
	return a;
}

static void write_desc(uint8_t *table, unsigned int i, uint64_t addr, uint32_t len,
		       uint16_t flags, uint16_t next)
{
	uint8_t *d = table + 16u * i;

	le64_put(d, addr);
	le32_put(d + 8, len);
	le16_put(d + 12, flags);
	le16_put(d + 14, next);
}

static void make_avail(struct fq *q, uint16_t head)
{
	uint8_t *avail = fz.mem.host + q->avail;

	le16_put(avail + 4 + 2u * (q->avail_idx % q->size), head);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)(avail + 2), q->avail_idx, __ATOMIC_RELEASE);
}

/* A chain of up to 8 buffers from the input; TX data from the input too. */
static void add_chain(struct fuzz_input *in, unsigned int qi, bool indirect)
{
	struct fq *q = &fz.q[qi];
	unsigned int n = 1 + fuzz_u8(in) % 8, i;
	uint16_t head = q->next_desc % q->size;
	uint8_t *table = fz.mem.host + q->desc;
	uint64_t ind = 0;
	uint32_t in_cap = 0;

	/* Descriptors still in the ring get overwritten once it wraps. */
	if ((unsigned int)q->next_desc + (indirect ? 1 : n) > q->size)
		q->raw = true;
	if (indirect) {
		ind = alloc_buf(16u * n);
		table = fz.mem.host + ind;
	}
	for (i = 0; i < n; i++) {
		uint8_t f = fuzz_u8(in);
		uint32_t len = fuzz_u16(in) % 4096;
		bool write = f & 1;
		uint64_t a = alloc_buf(len);
		uint16_t idx = indirect ? (uint16_t)i : (uint16_t)((head + i) % q->size);
		uint16_t next = indirect ? (uint16_t)(i + 1) : (uint16_t)((head + i + 1) % q->size);

		if (!write) {
			uint32_t k;

			/* Mostly a clean header, so frames reach the backend. */
			for (k = 0; k < len; k++)
				fz.mem.host[a + k] = (f & 2) ? fuzz_u8(in) : (k < 12 ? 0 : (uint8_t)k);
		} else {
			in_cap += len;
		}
		write_desc(table, idx, a, len, (uint16_t)((write ? 2 : 0) | (i + 1 < n ? 1 : 0)),
			   next);
	}
	if (indirect) {
		write_desc(fz.mem.host + q->desc, head, ind, 16u * n, 4, 0);
		q->next_desc = (uint16_t)(q->next_desc + 1);
	} else {
		q->next_desc = (uint16_t)(q->next_desc + n);
	}
	q->in_cap[head] = in_cap;
	make_avail(q, head);
}

/* A well-formed notification coalescing command (class 6), its command
 * byte and parameters from the input, and one byte for the answer. */
static void add_coal_cmd(struct fuzz_input *in)
{
	struct fq *q = &fz.q[2];
	uint16_t head = q->next_desc % q->size;
	uint64_t cmd = alloc_buf(10), ack = alloc_buf(1);
	uint8_t *c = fz.mem.host + cmd;

	c[0] = 6;
	c[1] = fuzz_u8(in) % 3; /* TX_SET, RX_SET, or one it does not know */
	le32_put(c + 2, fuzz_u8(in) % 8);
	le32_put(c + 6, (uint32_t)fuzz_u16(in) * (fuzz_u8(in) & 1 ? 100000u : 1u));
	if ((unsigned int)q->next_desc + 2 > q->size)
		q->raw = true;
	write_desc(fz.mem.host + q->desc, head, cmd, 10, 1, (uint16_t)((head + 1) % q->size));
	write_desc(fz.mem.host + q->desc, (uint16_t)((head + 1) % q->size), ack, 1, 2, 0);
	q->next_desc = (uint16_t)(q->next_desc + 2);
	q->in_cap[head] = 1;
	make_avail(q, head);
}

/* An ARP request for 10.0.2.2: slirp answers it at once. */
static void add_arp(void)
{
	static const uint8_t arp[42] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06,
		0, 1, 0x08, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 10, 0, 2, 15,
		0, 0, 0, 0, 0, 0, 10, 0, 2, 2,
	};
	struct fq *q = &fz.q[1];
	uint16_t head = q->next_desc % q->size;
	uint64_t a = alloc_buf(12 + sizeof(arp));

	memset(fz.mem.host + a, 0, 12);
	memcpy(fz.mem.host + a + 12, arp, sizeof(arp));
	if ((unsigned int)q->next_desc + 1 > q->size)
		q->raw = true;
	write_desc(fz.mem.host + q->desc, head, a, 12 + sizeof(arp), 0, 0);
	q->next_desc++;
	q->in_cap[head] = 0;
	make_avail(q, head);
}

static void check_used(unsigned int qi)
{
	struct fq *q = &fz.q[qi];
	uint8_t *used = fz.mem.host + q->used;
	uint16_t idx = __atomic_load_n((uint16_t *)(used + 2), __ATOMIC_ACQUIRE);

	/* Receive descriptors the input wrote (raw) may point anywhere in
	 * guest RAM, the rings included, and the device rightly writes
	 * received frames there (transmit buffers are only read): then the
	 * rings hold the guest's own doing, and only ASan (no access outside
	 * guest RAM) and the device's survival are checked. fuzz-long found
	 * this: an RX buffer over the TX used ring, filled with a frame slirp
	 * delivered late. The control queue writes too (its answer byte). */
	if (fz.q[0].raw || fz.q[2].raw || fz.wrapped) {
		q->used_seen = idx;
		return;
	}
	/* Never more used than made available. */
	CHECK((uint16_t)(idx - q->used_seen) <= (uint16_t)(q->avail_idx - q->used_seen));
	for (; q->used_seen != idx; q->used_seen++) {
		uint8_t *e = used + 4 + 8u * (q->used_seen % q->size);
		uint32_t id = le32_get(e), len = le32_get(e + 4);

		CHECK(id < q->size);
		if (qi == 1)
			CHECK(len == 0); /* transmit writes nothing */
		else
			CHECK(len <= q->in_cap[id]);
	}
}

static void kick(unsigned int qi)
{
	struct virtio_device *vdev = fz.vdev;

	pthread_mutex_lock(&vdev->lock);
	if (virtio_running(vdev) && vdev->vq[qi].ready)
		vdev->ops->queue_notify(vdev, qi);
	pthread_mutex_unlock(&vdev->lock);
	check_used(qi);
}

static void fuzz_device(struct fuzz_input *in, uint8_t mode)
{
	struct virtio_device *vdev;
	uint64_t features;
	unsigned int i, ops = 0;

	device_setup_once();
	vdev = fz.vdev;
	/* MAC, STATUS, and the control queue with notification coalescing
	 * (whose timers never fire here: the loop is not started). */
	features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << 5 | 1ULL << 16 | 1ULL << 17 | 1ULL << 53;
	if (mode & 2)
		features |= 1ULL << 15; /* MRG_RXBUF */
	if (mode & 4)
		features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (mode & 8)
		features |= 1ULL << VIRTIO_F_INDIRECT_DESC;

	pthread_mutex_lock(&vdev->lock);
	vdev->ops->reset(vdev);
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		virtq_reset(&vdev->vq[i]);
	vdev->status = 0;
	vdev->needs_reset_logged = true; /* keep stderr quiet */
	memset(fz.mem.host, 0, BUF_BASE);
	fz.next_buf = BUF_BASE;
	fz.wrapped = false;
	vdev->guest_features = features & vdev->host_features;
	for (i = 0; i < 3; i++) {
		struct fq *q = &fz.q[i];
		struct virtq *vq = &vdev->vq[i];

		memset(q, 0, sizeof(*q));
		/* 4..256 (the control queue 16 or 64) */
		q->size = (uint16_t)(4u << (((mode >> (4 + 2 * (i % 2))) & 3) * 2));
		if (i == 2)
			q->size = q->size > 16 ? 64 : 16;
		q->desc = RING_BASE + 0x8000u * i;
		q->avail = q->desc + 0x1000u * 4; /* 256 descriptors: 4 KiB */
		q->used = q->avail + 0x1000u;
		vq->size = q->size;
		vq->desc_gpa = q->desc;
		vq->avail_gpa = q->avail;
		vq->used_gpa = q->used;
		vq->event_idx = virtio_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX);
		vq->indirect = virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC);
		vq->mem = &fz.mem;
		CHECK(virtq_map(vq, &fz.mem) == 0);
		vq->ready = true;
	}
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	CHECK(vdev->ops->activate(vdev) == 0);
	pthread_mutex_unlock(&vdev->lock);

	while (in->n && ops++ < 256) {
		uint8_t op = fuzz_u8(in);
		unsigned int qi = ((op >> 3) & 3) % 3;

		switch (op & 7) {
		case 0:
		case 1:
			add_chain(in, qi, false);
			break;
		case 2:
			add_chain(in, qi, true);
			break;
		case 3:
			if (qi == 2)
				add_coal_cmd(in);
			else
				add_arp();
			break;
		case 4:
			kick(qi);
			break;
		case 5: { /* scribble a descriptor */
			uint8_t raw[16];

			for (i = 0; i < 16; i++)
				raw[i] = fuzz_u8(in);
			memcpy(fz.mem.host + fz.q[qi].desc + 16u * (fuzz_u8(in) % fz.q[qi].size), raw,
			       16);
			fz.q[qi].raw = true;
			break;
		}
		case 6: /* an arbitrary head */
			make_avail(&fz.q[qi], fuzz_u16(in));
			fz.q[qi].raw = true;
			break;
		default: { /* a bad address in a fresh chain */
			struct fq *q = &fz.q[qi];
			uint16_t head = q->next_desc % q->size;

			write_desc(fz.mem.host + q->desc, head,
				   (uint64_t)fuzz_u16(in) << 8 | (uint64_t)fuzz_u8(in) << 40,
				   fuzz_u16(in), (uint16_t)(fuzz_u8(in) & 2), 0);
			q->next_desc++;
			q->raw = true;
			make_avail(q, head);
			break;
		}
		}
	}
	kick(2);
	kick(1);
	kick(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint8_t mode = fuzz_u8(&in);

	if (mode & 1) {
		fuzz_device(&in, fuzz_u8(&in));
	} else {
		size_t hdr_len = (mode & 4) ? VNET_HDR_LEGACY_LEN : VNET_HDR_LEN;

		fuzz_fixup(&in, mode & 0x10);
		if (mode & 8)
			fuzz_rx(&in, hdr_len);
		else
			fuzz_tx(&in, mode & 2, hdr_len);
	}
	return 0;
}
