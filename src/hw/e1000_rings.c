/* The 82540EM's descriptor rings (8254x manual, chapter 3): transmit from
 * TDH up to TDT (legacy, context and data descriptors), receive into the
 * buffers from RDH up to RDT. The guest owns every value here: base,
 * length, head and tail are checked on each use, every descriptor and
 * buffer is reached through guest_mem_ptr() (a range outside RAM is never
 * touched; it is counted and skipped), and each loop is bounded by the
 * ring's size. Called with the device lock held. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <zlib.h>

#include "hw/e1000_dev.h"
#include "net/vnet_hdr.h"
#include "util/iov.h"
#include "util/le.h"
#include "util/log.h"

#define RX_BUDGET 256 /* frames per round before the loop looks elsewhere */
#define ETH_ALEN 6
#define ETH_MIN_FRAME 60 /* without the FCS */
#define ETH_FCS_LEN 4
#define VLAN_TAG_LEN 4

static void bad_ring(struct e1000 *e, const char *what, uint64_t gpa)
{
	e->stats.bad_descriptors++;
	if (e->logged_bad_ring)
		return;
	e->logged_bad_ring = true;
	log_warn("%s: %s at 0x%llx is outside guest RAM; ignored (logged once)", e->name, what,
		 (unsigned long long)gpa);
}

/* ---- transmit ---- */

void e1000_tx_reset(struct e1000 *e)
{
	struct e1000_tx *t = &e->tx;

	t->len = 0;
	t->started = t->bad = t->tse = t->vle = t->ic = t->legacy = false;
	t->popts = t->css = t->cso = 0;
	t->vlan = 0;
}

static void count_tx(struct e1000 *e, const uint8_t *f, size_t len)
{
	uint64_t wire = len + ETH_FCS_LEN;

	e->stats.tx_frames++;
	e->stats.tx_bytes += len;
	e1000_stat_add(e, E1000_GPTC, 1, false);
	e1000_stat_add(e, E1000_TPT, 1, false);
	e1000_stat_add(e, E1000_GOTCL, wire, true);
	e1000_stat_add(e, E1000_TOTL, wire, true);
	if (f[0] & 1) {
		static const uint8_t bcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

		e1000_stat_add(e, memcmp(f, bcast, ETH_ALEN) ? E1000_MPTC : E1000_BPTC, 1, false);
	}
}

/* One frame to the backend: the backend's header (no offload asked: the
 * checksums and segments are done), the frame, a VLAN tag inserted. */
static void send_frame(struct e1000 *e, const uint8_t *f, size_t len)
{
	struct virtio_net_hdr_v1 hdr = { 0 };
	uint8_t tag[VLAN_TAG_LEN];
	struct iovec iov[4];
	unsigned int n = 0;

	if (len < ETH_HDR_LEN) {
		e->stats.tx_dropped++;
		return;
	}
	if (e->backend_hdr)
		iov[n++] = (struct iovec){ &hdr, sizeof(hdr) };
	if (e->tx.vle && (e1000_reg(e, E1000_CTRL) & E1000_CTRL_VME)) {
		be16_put(tag, (uint16_t)e1000_reg(e, E1000_VET));
		be16_put(tag + 2, e->tx.vlan);
		iov[n++] = (struct iovec){ (void *)f, 2 * ETH_ALEN };
		iov[n++] = (struct iovec){ tag, sizeof(tag) };
		iov[n++] = (struct iovec){ (void *)(f + 2 * ETH_ALEN), len - 2 * ETH_ALEN };
	} else {
		iov[n++] = (struct iovec){ (void *)f, len };
	}
	if (net_send(e->backend, iov, n) < 0) {
		e->stats.tx_dropped++; /* a full backend drops, as a wire would */
		return;
	}
	count_tx(e, f, len);
}

/* The gathered frame, with the offloads its descriptors asked for. */
static void tx_frame(struct e1000 *e)
{
	struct e1000_tx *t = &e->tx;
	const struct e1000_tx_ctx *c = &t->ctx;
	unsigned int n, k;

	if (!t->legacy && t->tse && (n = e1000_tso_count(c, t->len)) != 0) {
		e->stats.tx_tso++;
		for (k = 0; k < n; k++) {
			size_t len = e1000_tso_segment(c, t->popts, t->buf, t->len, k, e->seg);

			send_frame(e, e->seg, len);
			e->stats.tx_segments++;
		}
		return;
	}
	if (t->legacy) {
		if (t->ic)
			e1000_tx_insert_csum(t->buf, t->len, t->css, t->cso, 0, false);
	} else {
		if (t->popts & E1000_TXD_POPTS_IXSM)
			e1000_tx_insert_csum(t->buf, t->len, c->ipcss, c->ipcso, c->ipcse, false);
		if (t->popts & E1000_TXD_POPTS_TXSM)
			e1000_tx_insert_csum(t->buf, t->len, c->tucss, c->tucso, c->tucse, !c->tcp);
	}
	send_frame(e, t->buf, t->len);
}

/* One descriptor (a copy of its 16 bytes). */
static void tx_descriptor(struct e1000 *e, const uint8_t *d)
{
	struct e1000_tx *t = &e->tx;
	uint64_t addr = le64_get(d);
	uint32_t lower = le32_get(d + 8), upper = le32_get(d + 12), len;
	bool dext = lower & E1000_TXD_CMD_DEXT;

	if (dext && (lower & E1000_TXD_DTYP_MASK) == 0) {
		e1000_tx_ctx_parse(&t->ctx, d);
		if (lower & E1000_TXD_CMD_TSE)
			e1000_stat_add(e, E1000_TSCTC, 1, false);
		return;
	}
	if (dext && (lower & E1000_TXD_DTYP_MASK) != E1000_TXD_DTYP_D)
		return; /* no such descriptor type: skipped */
	if (dext) {
		len = lower & 0xfffff;
		if (!t->started)
			t->popts = (uint8_t)(upper >> 8);
		if (lower & E1000_TXD_CMD_TSE)
			t->tse = true;
	} else {
		len = lower & 0xffff;
		if (!t->started) {
			t->legacy = true;
			t->cso = (uint8_t)(lower >> 16);
			t->css = (uint8_t)(upper >> 8);
			t->ic = (lower & E1000_TXD_CMD_IC) != 0;
		}
	}
	t->started = true;
	if (lower & E1000_TXD_CMD_VLE) {
		t->vle = true;
		t->vlan = le16_get(d + 14);
	}
	if (len && !t->bad) {
		const uint8_t *p = guest_mem_ptr(e->env.mem, addr, len);

		if (!p) {
			bad_ring(e, "a transmit buffer", addr);
			t->bad = true;
		} else if (len > E1000_TX_MAX - t->len) {
			t->bad = true;
		} else {
			memcpy(t->buf + t->len, p, len);
			t->len += len;
		}
	}
	if (lower & E1000_TXD_CMD_EOP) {
		if (t->bad || !t->len)
			e->stats.tx_dropped++;
		else
			tx_frame(e);
		e1000_tx_reset(e);
	}
}

void e1000_tx_process(struct e1000 *e)
{
	uint64_t base = (uint64_t)e1000_reg(e, E1000_TDBAH) << 32 | e1000_reg(e, E1000_TDBAL);
	uint32_t count = e1000_reg(e, E1000_TDLEN) / E1000_DESC_SIZE;
	uint32_t head = e1000_reg(e, E1000_TDH), tail = e1000_reg(e, E1000_TDT);
	uint32_t cause = 0;

	if (!(e1000_reg(e, E1000_TCTL) & E1000_TCTL_EN) || !e1000_bus_master(e))
		return;
	/* A head or tail beyond the ring: nothing is sent (the driver
	 * programmed it wrong; the real card's behaviour is undefined). */
	if (!count || head >= count || tail >= count)
		return;
	while (head != tail) {
		uint64_t gpa = base + (uint64_t)head * E1000_DESC_SIZE;
		uint8_t *d = guest_mem_ptr(e->env.mem, gpa, E1000_DESC_SIZE);
		uint8_t copy[E1000_DESC_SIZE];

		if (!d) {
			bad_ring(e, "a transmit descriptor", gpa);
			break;
		}
		memcpy(copy, d, sizeof(copy));
		tx_descriptor(e, copy);
		if (le32_get(copy + 8) & E1000_TXD_CMD_RS) {
			/* Descriptor done: the status byte only, as the card
			 * writes back (3.3.3.2). */
			__atomic_thread_fence(__ATOMIC_RELEASE);
			d[12] |= E1000_TXD_STAT_DD;
			guest_mem_mark_written(e->env.mem, d + 12, 1);
			cause |= E1000_ICR_TXDW;
		}
		head = (head + 1) % count;
		e1000_set_reg(e, E1000_TDH, head);
	}
	e1000_set_cause(e, cause | E1000_ICR_TXQE);
}

/* ---- receive ---- */

static bool rx_ring_ok(const struct e1000 *e, uint32_t *count)
{
	*count = e1000_reg(e, E1000_RDLEN) / E1000_DESC_SIZE;
	return (e1000_reg(e, E1000_RCTL) & E1000_RCTL_EN) && e1000_bus_master(e) && *count &&
	       e1000_reg(e, E1000_RDH) < *count && e1000_reg(e, E1000_RDT) < *count;
}

static uint32_t rx_buffer_size(uint32_t rctl)
{
	static const uint32_t sizes[2][4] = { { 2048, 1024, 512, 256 }, { 2048, 16384, 8192, 4096 } };

	return sizes[!!(rctl & E1000_RCTL_BSEX)][(rctl >> E1000_RCTL_BSIZE_SHIFT) & 3];
}

/* The multicast table's bit for dst (13.5.1: MO picks which 12 bits). */
static bool mta_match(const struct e1000 *e, const uint8_t *dst)
{
	static const unsigned int shift[4] = { 4, 3, 2, 0 };
	unsigned int mo = (e1000_reg(e, E1000_RCTL) >> E1000_RCTL_MO_SHIFT) & 3;
	uint32_t hash = ((uint32_t)dst[4] >> shift[mo] | (uint32_t)dst[5] << (8 - shift[mo])) & 0xfff;

	return (e1000_reg(e, E1000_MTA + 4 * (hash >> 5)) >> (hash & 31)) & 1;
}

static bool ra_match(const struct e1000 *e, const uint8_t *dst)
{
	unsigned int i;

	for (i = 0; i < 16; i++) {
		uint32_t ral = e1000_reg(e, E1000_RA + 8 * i), rah = e1000_reg(e, E1000_RA + 8 * i + 4);
		uint8_t a[ETH_ALEN];

		if (!(rah & E1000_RAH_AV))
			continue;
		le32_put(a, ral);
		le16_put(a + 4, (uint16_t)rah);
		if (!memcmp(a, dst, ETH_ALEN))
			return true;
	}
	return false;
}

/* The receive filters (3.2.1): VLAN table, then unicast addresses,
 * multicast table, broadcast, and the promiscuous bits. */
static bool rx_accept(const struct e1000 *e, const uint8_t *f, size_t len, bool tagged)
{
	uint32_t rctl = e1000_reg(e, E1000_RCTL);
	static const uint8_t bcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (len < ETH_HDR_LEN)
		return false;
	if (tagged && (rctl & E1000_RCTL_VFE)) {
		uint16_t vid = be16_get(f + 14) & 0xfff;

		if (!((e1000_reg(e, E1000_VFTA + 4 * (vid >> 5)) >> (vid & 31)) & 1))
			return false;
	}
	if (!(f[0] & 1))
		return (rctl & E1000_RCTL_UPE) || ra_match(e, f);
	if (!memcmp(f, bcast, ETH_ALEN) && (rctl & E1000_RCTL_BAM))
		return true;
	return (rctl & E1000_RCTL_MPE) || mta_match(e, f);
}

static void rx_arm(struct e1000 *e, bool on)
{
	if (e->rx_armed == on || !e->watches_added || e->backend_broken)
		return;
	if (ioloop_modify(&e->loop, &e->rx_watch, on ? EPOLLIN : 0) == 0)
		e->rx_armed = on;
}

static void backend_failed(struct e1000 *e, const char *what)
{
	if (e->backend_broken)
		return;
	log_warn("%s: %s: %s; no more frames for the guest", e->name, net_backend_name(e->backend),
		 what);
	rx_arm(e, false);
	if (e->watches_added)
		ioloop_remove(&e->loop, &e->rx_watch);
	e->backend_broken = true;
}

/* The next frame from the backend into rx_buf. 1: got one; 0: none; -1:
 * the backend is broken. */
static int rx_read(struct e1000 *e)
{
	unsigned int tries;

	for (tries = 0; tries < RX_BUDGET; tries++) {
		struct iovec iov;
		ssize_t got;

		if (e->backend_hdr)
			iov = (struct iovec){ e->rx_buf, VNET_HDR_LEN + NET_MAX_FRAME };
		else
			iov = (struct iovec){ e->rx_buf + VNET_HDR_LEN, NET_MAX_FRAME };
		got = net_recv(e->backend, &iov, 1);
		if (got == -EAGAIN)
			return 0;
		if (got == -EMSGSIZE) {
			e->stats.rx_dropped++;
			continue;
		}
		if (got < 0) {
			char why[96];

			snprintf(why, sizeof(why), "receive failed: %s", strerror((int)-got));
			backend_failed(e, why);
			return -1;
		}
		if (e->backend_hdr)
			got -= VNET_HDR_LEN; /* no offloads were set: a whole frame */
		if (got < ETH_HDR_LEN) {
			e->stats.rx_dropped++;
			continue;
		}
		e->rx_len = (uint32_t)got;
		return 1;
	}
	return 0;
}

static void count_rx(struct e1000 *e, const uint8_t *f, size_t wire)
{
	static const uint8_t bcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	unsigned int bin = wire < 65 ? 0 : wire < 128 ? 1 : wire < 256 ? 2 : wire < 512 ? 3 :
			   wire < 1024 ? 4 : 5;

	e1000_stat_add(e, E1000_PRC64 + 4 * bin, 1, false);
	e1000_stat_add(e, E1000_GPRC, 1, false);
	e1000_stat_add(e, E1000_TPR, 1, false);
	e1000_stat_add(e, E1000_GORCL, wire, true);
	e1000_stat_add(e, E1000_TORL, wire, true);
	if (f[0] & 1)
		e1000_stat_add(e, memcmp(f, bcast, ETH_ALEN) ? E1000_MPRC : E1000_BPRC, 1, false);
}

/* Writes the waiting frame into the ring. 1: done (delivered or dropped);
 * 0: it needs more descriptors than the guest has given. */
static int rx_deliver(struct e1000 *e, uint32_t count)
{
	uint8_t *f = e->rx_buf + VNET_HDR_LEN, pad[ETH_MIN_FRAME] = { 0 }, fcs[ETH_FCS_LEN];
	uint32_t rctl = e1000_reg(e, E1000_RCTL), bufsize = rx_buffer_size(rctl);
	uint64_t base = (uint64_t)e1000_reg(e, E1000_RDBAH) << 32 | e1000_reg(e, E1000_RDBAL);
	size_t len = e->rx_len, total, done = 0, wire, max = (rctl & E1000_RCTL_LPE) ?
							E1000_RX_MAX_LPE : E1000_RX_MAX;
	uint32_t head = e1000_reg(e, E1000_RDH), tail = e1000_reg(e, E1000_RDT), avail, need;
	bool tagged = len >= ETH_HDR_LEN + VLAN_TAG_LEN &&
		      be16_get(f + 12) == (uint16_t)e1000_reg(e, E1000_VET);
	bool strip = tagged && (e1000_reg(e, E1000_CTRL) & E1000_CTRL_VME);
	uint16_t vlan = tagged ? be16_get(f + 14) : 0;
	struct iovec src[4];
	unsigned int nsrc = 0;

	wire = (len < ETH_MIN_FRAME ? ETH_MIN_FRAME : len) + ETH_FCS_LEN;
	if (!rx_accept(e, f, len, tagged)) {
		e->stats.rx_filtered++;
		return 1;
	}
	if (wire > max) {
		e1000_stat_add(e, E1000_ROC, 1, false);
		e->stats.rx_dropped++;
		return 1;
	}
	/* What the guest gets: the frame (without its tag when the card
	 * strips it), padded to the minimum, and the FCS unless SECRC. */
	if (strip) {
		src[nsrc++] = (struct iovec){ f, 2 * ETH_ALEN };
		src[nsrc++] = (struct iovec){ f + 2 * ETH_ALEN + VLAN_TAG_LEN,
					      len - 2 * ETH_ALEN - VLAN_TAG_LEN };
		total = len - VLAN_TAG_LEN;
	} else {
		src[nsrc++] = (struct iovec){ f, len };
		total = len;
	}
	if (total < ETH_MIN_FRAME) {
		src[nsrc++] = (struct iovec){ pad, ETH_MIN_FRAME - total };
		total = ETH_MIN_FRAME;
	}
	if (!(rctl & E1000_RCTL_SECRC)) {
		uLong crc = crc32(0, Z_NULL, 0);

		for (unsigned int i = 0; i < nsrc; i++)
			crc = crc32(crc, src[i].iov_base, (uInt)src[i].iov_len);
		le32_put(fcs, (uint32_t)crc);
		src[nsrc++] = (struct iovec){ fcs, sizeof(fcs) };
		total += ETH_FCS_LEN;
	}

	need = (uint32_t)((total + bufsize - 1) / bufsize);
	avail = (tail + count - head) % count;
	if (need > avail) {
		if (need >= count) { /* can never fit this ring */
			e->stats.rx_dropped++;
			return 1;
		}
		return 0;
	}
	while (done < total) {
		uint64_t gpa = base + (uint64_t)head * E1000_DESC_SIZE;
		uint8_t *d = guest_mem_ptr(e->env.mem, gpa, E1000_DESC_SIZE);
		size_t chunk = total - done < bufsize ? total - done : bufsize;
		bool last = done + chunk == total;
		uint64_t addr;

		if (!d) {
			/* The rest of the frame is lost with the ring. */
			bad_ring(e, "a receive descriptor", gpa);
			e->stats.rx_dropped++;
			return 1;
		}
		addr = le64_get(d);
		if (addr) { /* a null buffer: the card skips the data */
			uint8_t *p = guest_mem_ptr(e->env.mem, addr, chunk);

			if (p) {
				iov_to_buf(src, nsrc, done, p, chunk);
				guest_mem_mark_written(e->env.mem, p, chunk);
			} else {
				bad_ring(e, "a receive buffer", addr);
			}
		}
		le16_put(d + 8, (uint16_t)chunk);
		le16_put(d + 10, 0); /* packet checksum: not computed */
		d[13] = 0;	     /* errors */
		le16_put(d + 14, last && strip ? vlan : 0);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		/* IXSM: the driver checks the checksums itself. */
		d[12] = (uint8_t)(E1000_RXD_STAT_DD | E1000_RXD_STAT_IXSM |
				  (last ? E1000_RXD_STAT_EOP : 0) |
				  (last && strip ? E1000_RXD_STAT_VP : 0));
		guest_mem_mark_written(e->env.mem, d + 8, 8);
		done += chunk;
		head = (head + 1) % count;
		e1000_set_reg(e, E1000_RDH, head);
	}
	e->stats.rx_frames++;
	e->stats.rx_bytes += len;
	count_rx(e, f, wire);
	avail = (tail + count - head) % count;
	e1000_set_cause(e, E1000_ICR_RXT0 |
			(avail <= count >> (((rctl >> E1000_RCTL_RDMTS_SHIFT) & 3) + 1) ?
				 E1000_ICR_RXDMT0 : 0));
	return 1;
}

void e1000_rx_process(struct e1000 *e)
{
	unsigned int rounds;
	uint32_t count;

	if (e->backend_broken)
		return;
	for (rounds = 0; rounds < RX_BUDGET; rounds++) {
		if (!rx_ring_ok(e, &count)) {
			/* Frames wait in the backend until the guest is ready. */
			e->rx_stalled = true;
			rx_arm(e, false);
			return;
		}
		if (!e->rx_len && rx_read(e) <= 0)
			break;
		if (!rx_deliver(e, count)) {
			e1000_stat_add(e, E1000_RNBC, 1, false);
			e->rx_stalled = true;
			rx_arm(e, false);
			return;
		}
		e->rx_len = 0;
	}
	e->rx_stalled = false;
	rx_arm(e, true);
	if (rounds == RX_BUDGET) {
		/* More may be waiting: the level-triggered watch brings us
		 * back after the other work of the loop. */
	}
}
