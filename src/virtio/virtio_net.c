/* virtio-net (VirtIO 1.2, 5.1): one receive and one transmit queue on a
 * network backend. Everything runs in the device's I/O thread under
 * vdev->lock: queue kicks, the backend's rx_fd becoming readable, and our
 * own "more to do" eventfd, which lets a busy transmit queue yield to
 * receive instead of starving it.
 *
 * Receive never busy-loops: when the guest has no buffers the frame stays
 * where it is (in the backend, or in our bounce buffer), the rx_fd watch
 * is switched off and the receive queue's notifications on; the guest's
 * next kick of queue 0 switches them back. */
#include "virtio/virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net/vnet_hdr.h"
#include "util/eventfd.h"
#include "util/iov.h"
#include "util/le.h"
#include "util/log.h"
#include "virtio/notify_coalesce.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_NOTF_COAL 53

#define VIRTIO_NET_S_LINK_UP 1

/* Device configuration (5.1.4): mac, status, max_virtqueue_pairs. */
#define CFG_MAC 0
#define CFG_STATUS 6
#define CFG_MAX_VQ_PAIRS 8
#define CFG_SIZE 10

#define RXQ 0
#define TXQ 1
#define CTRLQ 2
#define QUEUE_SIZE 256
#define CTRL_QUEUE_SIZE 64

/* The control queue's commands (5.1.6.5): a class and a command, their
 * data, then one device-writable byte for the answer. Only notification
 * coalescing is offered. */
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_CTRL_NOTF_COAL 6
#define VIRTIO_NET_CTRL_NOTF_COAL_TX_SET 0
#define VIRTIO_NET_CTRL_NOTF_COAL_RX_SET 1
#define CTRL_MAX_CMD 64 /* bytes of a command read; longer ones are refused */

/* Frames per round before the thread looks at its other work. */
#define TX_BUDGET 256
#define RX_BUDGET 256

struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes;
	uint64_t rx_dropped; /* no fit, an offload the guest refused, backend overflow */
	uint64_t rx_bad_chains; /* receive chains too small for a header */
	uint64_t tx_frames, tx_bytes;
	uint64_t tx_dropped; /* malformed chains, offloads not offered, backend refused */
	uint64_t ctrl_commands, ctrl_refused;
};

struct virtio_net {
	struct virtio_device vdev;
	char name[24];
	struct net_backend *backend;
	bool backend_hdr; /* the backend's frames carry a virtio_net_hdr_v1 */
	uint8_t config[CFG_SIZE];

	/* Negotiated at activate. */
	size_t hdr_len; /* the guest's header: 12, or 10 for legacy layout */
	bool mrg_rxbuf;
	struct net_offloads guest_offloads;

	struct ioloop_watch rx_watch; /* the backend's rx_fd */
	struct ioloop_watch more_watch; /* more_fd */
	int more_fd;	     /* eventfd: finish work a budget cut short */
	bool watches_added;
	bool rx_armed;	     /* rx_watch asks for EPOLLIN */
	bool backend_broken; /* receive failed for good: logged once, and
			      * rx_watch removed (EPOLLERR cannot be masked) */

	/* A received frame: [virtio_net_hdr_v1][frame], rx_frame_len != 0
	 * until it is in the guest. With mergeable buffers it may wait half
	 * delivered for more: the chains it filled so far are held (popped,
	 * not yet used), so the ring shows the driver's new buffers only. */
	uint8_t *rx_buf;
	size_t rx_frame_len;
	struct vnet_rx rx;
	unsigned int rx_held;
	struct {
		uint16_t head;
		uint32_t len;
	} rx_used[QUEUE_SIZE];
	struct virtq_elem rx_first, rx_next, tx_elem, ctrl_elem;

	/* Used buffer notifications of the receive and transmit queues, as
	 * the driver's VIRTIO_NET_CTRL_NOTF_COAL commands set them. */
	struct notify_coalesce coal[2];

	struct virtio_net_stats stats;
};

static struct virtio_net *to_net(struct virtio_device *vdev)
{
	return (struct virtio_net *)vdev;
}

/* ---- configuration ---- */

static void net_config_read(struct virtio_device *vdev, uint32_t offset, void *data, uint32_t size)
{
	memcpy(data, to_net(vdev)->config + offset, size);
}

static void net_config_write(struct virtio_device *vdev, uint32_t offset, const void *data,
			     uint32_t size)
{
	/* Nothing is writable in 1.x without CTRL_MAC_ADDR, which we do not
	 * offer: ignore, as the MAC must not change under the driver. */
	(void)vdev;
	(void)offset;
	(void)data;
	(void)size;
}

/* ---- transmit ---- */

static void tx_one(struct virtio_net *n, const struct virtq_elem *e)
{
	struct iovec iov[VIRTQ_MAX_SEGS + 1];
	struct virtio_net_hdr_v1 hdr;
	ssize_t sent;
	int cnt;

	/* A transmit chain is all device-readable; a writable buffer means
	 * a confused driver: drop the frame, keep the device going. */
	if (e->in_num) {
		n->stats.tx_dropped++;
		return;
	}
	cnt = vnet_tx_prepare(e->iov, e->out_num, n->hdr_len, n->backend_hdr, &hdr, iov);
	if (cnt < 0) {
		n->stats.tx_dropped++;
		log_debug("%s: transmit frame dropped: %s", n->name, strerror(-cnt));
		return;
	}
	sent = net_send(n->backend, iov, (unsigned int)cnt);
	if (sent < 0) {
		/* A full or refusing backend drops, as a wire would. */
		n->stats.tx_dropped++;
		return;
	}
	n->stats.tx_frames++;
	n->stats.tx_bytes += (uint64_t)sent - (n->backend_hdr ? sizeof(hdr) : 0);
}

static void more_later(struct virtio_net *n)
{
	eventfd_signal(n->more_fd);
}

static void tx_process(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.vq[TXQ];
	unsigned int done = 0;
	int r;

	if (!q->ready)
		return;
	for (;;) {
		virtq_disable_notify(q);
		while (done < TX_BUDGET && (r = virtq_pop(q, &n->tx_elem)) > 0) {
			tx_one(n, &n->tx_elem);
			virtq_push(q, n->tx_elem.head, 0);
			done++;
		}
		if (done >= TX_BUDGET) {
			/* Leave notifications off: we come back by ourselves. */
			more_later(n);
			break;
		}
		if (r < 0) {
			virtio_set_needs_reset(&n->vdev, "transmit queue: malformed descriptor chain");
			return;
		}
		if (!virtq_enable_notify(q))
			break;
	}
	notify_coalesce_used(&n->coal[TXQ], done);
}

/* ---- receive ---- */

static void rx_arm(struct virtio_net *n, bool on)
{
	if (n->rx_armed == on || !n->watches_added || n->backend_broken)
		return;
	if (ioloop_modify(&n->vdev.loop, &n->rx_watch, on ? EPOLLIN : 0) == 0)
		n->rx_armed = on;
}

static void backend_failed(struct virtio_net *n, const char *what)
{
	if (n->backend_broken)
		return;
	log_warn("%s: %s: %s; no more frames for the guest", n->name,
		 net_backend_name(n->backend), what);
	rx_arm(n, false);
	ioloop_remove(&n->vdev.loop, &n->rx_watch);
	n->backend_broken = true;
}

/* Reads the next frame into rx_buf. 1: got one; 0: none waiting (or a
 * run of bad ones: the level-triggered watch brings us back); -1: the
 * backend is broken. Oversized and unacceptable frames are dropped here. */
static int rx_read(struct virtio_net *n)
{
	struct virtio_net_hdr_v1 *hdr = (struct virtio_net_hdr_v1 *)n->rx_buf;
	unsigned int tries;

	for (tries = 0; tries < RX_BUDGET; tries++) {
		struct iovec iov;
		ssize_t got;

		if (n->backend_hdr)
			iov = (struct iovec){ n->rx_buf, VNET_HDR_LEN + NET_MAX_FRAME };
		else
			iov = (struct iovec){ n->rx_buf + VNET_HDR_LEN, NET_MAX_FRAME };
		got = net_recv(n->backend, &iov, 1);
		if (got == -EAGAIN)
			return 0;
		if (got == -EMSGSIZE) {
			n->stats.rx_dropped++;
			continue;
		}
		if (got < 0) {
			char why[96];

			snprintf(why, sizeof(why), "receive failed: %s", strerror((int)-got));
			backend_failed(n, why);
			return -1;
		}
		if (n->backend_hdr) {
			if ((size_t)got < VNET_HDR_LEN + ETH_HDR_LEN ||
			    !vnet_rx_fixup_hdr(hdr, &n->guest_offloads)) {
				n->stats.rx_dropped++;
				continue;
			}
			n->rx_frame_len = (size_t)got - VNET_HDR_LEN;
		} else {
			memset(hdr, 0, sizeof(*hdr));
			n->rx_frame_len = (size_t)got;
		}
		if (!n->rx_frame_len) {
			n->stats.rx_dropped++;
			continue;
		}
		vnet_rx_begin(&n->rx, n->rx_buf, n->hdr_len, n->rx_buf + VNET_HDR_LEN,
			      n->rx_frame_len);
		n->rx_held = 0;
		return 1;
	}
	return 0;
}

static void rx_drop_frame(struct virtio_net *n)
{
	n->stats.rx_dropped++;
	n->rx_frame_len = 0;
	n->rx_held = 0;
}

/* Puts the frame in rx_buf into the guest's receive buffers, continuing
 * where a previous call stopped. 1: done (delivered or dropped); 0: needs
 * more buffers (the chains filled so far stay held); -1: queue broken. */
static int rx_deliver(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.vq[RXQ];
	unsigned int i;

	while (!vnet_rx_complete(&n->rx)) {
		struct virtq_elem *e = n->rx_held ? &n->rx_next : &n->rx_first;
		size_t len;
		int r = virtq_pop(q, e);

		if (r < 0) {
			virtio_set_needs_reset(&n->vdev, "receive queue: malformed descriptor chain");
			return -1;
		}
		if (r == 0)
			return 0;
		if (!n->rx_held && e->in_len < n->hdr_len) {
			/* Cannot even hold the header: hand it back unused. */
			n->stats.rx_bad_chains++;
			virtq_push(q, e->head, 0);
			continue;
		}
		len = vnet_rx_fill(&n->rx, e->iov + e->out_num, e->in_num);
		n->rx_used[n->rx_held].head = e->head;
		n->rx_used[n->rx_held].len = (uint32_t)len;
		n->rx_held++;
		if (vnet_rx_complete(&n->rx))
			break;
		/* Too big for a whole chain (no MRG_RXBUF) or the whole ring:
		 * more buffers will not help. Give the chains back as they
		 * were (what we wrote is garbage the driver never sees). */
		if (!n->mrg_rxbuf || n->rx_held == q->size || n->rx_held == QUEUE_SIZE) {
			virtq_unpop(q, (uint16_t)n->rx_held);
			rx_drop_frame(n);
			return 1;
		}
	}
	/* num_buffers is 1 without MRG_RXBUF too (5.1.6.4). */
	if (n->hdr_len >= VNET_HDR_LEN)
		vnet_rx_set_num_buffers(n->rx_first.iov + n->rx_first.out_num,
					n->rx_first.in_num, (uint16_t)n->rx_held);
	for (i = 0; i < n->rx_held; i++)
		virtq_push(q, n->rx_used[i].head, n->rx_used[i].len);
	n->stats.rx_frames++;
	n->stats.rx_bytes += n->rx_frame_len;
	n->rx_frame_len = 0;
	n->rx_held = 0;
	return 1;
}

static void rx_process(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.vq[RXQ];
	unsigned int rounds = 0;
	uint16_t used_before;

	if (!q->ready || n->backend_broken) {
		rx_arm(n, false);
		return;
	}
	used_before = q->used_idx;
	while (rounds < RX_BUDGET) {
		int r;

		if (!n->rx_frame_len) {
			r = rx_read(n);
			if (r <= 0)
				break;
		}
		r = rx_deliver(n);
		if (r < 0)
			break;
		if (r > 0) {
			rounds++;
			continue;
		}
		/* No buffers: ask the guest to kick when it adds some, then
		 * look once more in case it just did. (Everything we popped
		 * is held, so "not empty" really means new buffers.) */
		if (virtq_enable_notify(q)) {
			virtq_disable_notify(q);
			continue;
		}
		rx_arm(n, false);
		break;
	}
	/* Frames, and chains given back unused, are news for the driver. */
	if (q->used_idx != used_before)
		notify_coalesce_used(&n->coal[RXQ], rounds ? rounds : 1);
}

static void rx_ready(void *ctx, uint32_t events)
{
	struct virtio_net *n = ctx;

	pthread_mutex_lock(&n->vdev.lock);
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		/* A tap whose interface was deleted, for one. */
		backend_failed(n, "error on its file descriptor");
	} else if (!virtio_running(&n->vdev)) {
		/* Frames wait in the backend until the driver is back. */
		rx_arm(n, false);
	} else {
		rx_process(n);
	}
	pthread_mutex_unlock(&n->vdev.lock);
}

static void more_ready(void *ctx, uint32_t events)
{
	struct virtio_net *n = ctx;

	(void)events;
	if (!eventfd_consume(n->more_fd))
		return;
	pthread_mutex_lock(&n->vdev.lock);
	if (virtio_running(&n->vdev)) {
		tx_process(n);
		rx_process(n);
	}
	pthread_mutex_unlock(&n->vdev.lock);
}

/* ---- control queue ---- */

/* One command: its answer, VIRTIO_NET_OK or VIRTIO_NET_ERR. The guest
 * wrote all of it; nothing is trusted. */
static uint8_t ctrl_command(struct virtio_net *n, const uint8_t *cmd, size_t len)
{
	uint32_t max_packets, max_usecs;

	if (len != 2 + 8 || cmd[0] != VIRTIO_NET_CTRL_NOTF_COAL ||
	    !virtio_has_feature(&n->vdev, VIRTIO_NET_F_NOTF_COAL))
		return VIRTIO_NET_ERR;
	/* struct virtio_net_ctrl_coal: le32 max_packets, le32 max_usecs. */
	max_packets = le32_get(cmd + 2);
	max_usecs = le32_get(cmd + 6);
	switch (cmd[1]) {
	case VIRTIO_NET_CTRL_NOTF_COAL_TX_SET:
		notify_coalesce_set(&n->coal[TXQ], max_packets, max_usecs);
		break;
	case VIRTIO_NET_CTRL_NOTF_COAL_RX_SET:
		notify_coalesce_set(&n->coal[RXQ], max_packets, max_usecs);
		break;
	default:
		return VIRTIO_NET_ERR;
	}
	log_debug("%s: %s coalescing: %u packets, %u us", n->name,
		  cmd[1] == VIRTIO_NET_CTRL_NOTF_COAL_TX_SET ? "transmit" : "receive", max_packets,
		  max_usecs);
	return VIRTIO_NET_OK;
}

static void ctrl_process(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.vq[CTRLQ];
	struct virtq_elem *e = &n->ctrl_elem;
	bool done = false;
	int r;

	if (!q->ready)
		return;
	while ((r = virtq_pop(q, e)) > 0) {
		uint8_t cmd[CTRL_MAX_CMD], ack;
		uint32_t written = 0;

		n->stats.ctrl_commands++;
		/* The readable part is the command, the writable part's first
		 * byte the answer; a chain without room for it gets none. */
		if (e->out_len > sizeof(cmd) || e->out_len < 2) {
			ack = VIRTIO_NET_ERR;
		} else {
			iov_to_buf(e->iov, e->out_num, 0, cmd, e->out_len);
			ack = ctrl_command(n, cmd, e->out_len);
		}
		if (ack != VIRTIO_NET_OK)
			n->stats.ctrl_refused++;
		if (e->in_len)
			written = (uint32_t)iov_from_buf(e->iov + e->out_num, e->in_num, 0, &ack, 1);
		virtq_push(q, e->head, written);
		done = true;
	}
	if (r < 0)
		virtio_set_needs_reset(&n->vdev, "control queue: malformed descriptor chain");
	if (done)
		virtio_notify(&n->vdev, CTRLQ);
}

/* ---- device ops ---- */

static void net_queue_notify(struct virtio_device *vdev, unsigned int q)
{
	struct virtio_net *n = to_net(vdev);

	if (q == TXQ) {
		tx_process(n);
	} else if (q == RXQ) {
		/* New buffers: kicks off until we run out again. */
		if (vdev->vq[RXQ].ready)
			virtq_disable_notify(&vdev->vq[RXQ]);
		rx_arm(n, true);
		rx_process(n);
	} else if (q == CTRLQ) {
		ctrl_process(n);
	}
}

static int net_activate(struct virtio_device *vdev)
{
	struct virtio_net *n = to_net(vdev);

	n->mrg_rxbuf = virtio_has_feature(vdev, VIRTIO_NET_F_MRG_RXBUF);
	n->hdr_len = virtio_has_feature(vdev, VIRTIO_F_VERSION_1) || n->mrg_rxbuf ?
			     VNET_HDR_LEN :
			     VNET_HDR_LEGACY_LEN;
	n->guest_offloads = (struct net_offloads){
		.csum = virtio_has_feature(vdev, VIRTIO_NET_F_GUEST_CSUM),
		.tso4 = virtio_has_feature(vdev, VIRTIO_NET_F_GUEST_TSO4),
		.tso6 = virtio_has_feature(vdev, VIRTIO_NET_F_GUEST_TSO6),
		.ecn = virtio_has_feature(vdev, VIRTIO_NET_F_GUEST_ECN),
		.ufo = virtio_has_feature(vdev, VIRTIO_NET_F_GUEST_UFO),
	};
	if (n->backend_hdr)
		net_set_offloads(n->backend, &n->guest_offloads);
	n->rx_frame_len = 0;
	n->rx_held = 0;
	if (!n->watches_added) {
		/* The loop outlives resets, and so do the watches. */
		if (ioloop_add(&vdev->loop, &n->more_watch, n->more_fd, EPOLLIN, more_ready, n) < 0)
			return -1;
		if (ioloop_add(&vdev->loop, &n->rx_watch, net_rx_fd(n->backend), EPOLLIN, rx_ready,
			       n) < 0) {
			ioloop_remove(&vdev->loop, &n->more_watch);
			return -1;
		}
		if (notify_coalesce_watch(&n->coal[RXQ], &vdev->loop) < 0 ||
		    notify_coalesce_watch(&n->coal[TXQ], &vdev->loop) < 0) {
			ioloop_remove(&vdev->loop, &n->rx_watch);
			ioloop_remove(&vdev->loop, &n->more_watch);
			return -1;
		}
		n->watches_added = true;
		n->rx_armed = true;
	}
	/* The transport kicks every ready queue next, which arms rx. */
	return 0;
}

static void net_reset(struct virtio_device *vdev)
{
	struct virtio_net *n = to_net(vdev);

	/* A frame held for the old driver is stale for the next one, and
	 * the chains it held are forgotten with the rings. */
	n->rx_frame_len = 0;
	n->rx_held = 0;
	rx_arm(n, false);
	notify_coalesce_reset(&n->coal[RXQ]);
	notify_coalesce_reset(&n->coal[TXQ]);
}

static void net_write_stats(struct virtio_device *vdev, struct jsonw *j)
{
	const struct virtio_net_stats *s = &to_net(vdev)->stats;
	const struct notify_coalesce *coal = to_net(vdev)->coal;

	jsonw_uint(j, "rx_frames", s->rx_frames);
	jsonw_uint(j, "rx_bytes", s->rx_bytes);
	jsonw_uint(j, "rx_dropped", s->rx_dropped);
	jsonw_uint(j, "tx_frames", s->tx_frames);
	jsonw_uint(j, "tx_bytes", s->tx_bytes);
	jsonw_uint(j, "tx_dropped", s->tx_dropped);
	jsonw_uint(j, "ctrl_commands", s->ctrl_commands);
	jsonw_uint(j, "ctrl_refused", s->ctrl_refused);
	/* Notifications asked for and held back by coalescing, per queue. */
	jsonw_uint(j, "rx_notifications", coal[RXQ].notifications);
	jsonw_uint(j, "rx_coalesced", coal[RXQ].coalesced);
	jsonw_uint(j, "tx_notifications", coal[TXQ].notifications);
	jsonw_uint(j, "tx_coalesced", coal[TXQ].coalesced);
}

/* ---- state (snapshots) ---- */

/* The own record's layout, state_revision 2: the frame waiting for the
 * guest, the coalescing parameters (receive, then transmit: max_packets,
 * max_usecs), then the backend's state (net_backend_save: its kind, and
 * for --net user libslirp's DHCP leases and IP id counter), to the end.
 * Revision 0 had no backend state, revision 1 no control queue: a
 * snapshot or migration stream of an older Vireo is refused, with
 * devices_load_all's one line ("virtio-net0: the saved state is version
 * 2, this Vireo reads version 3"), not loaded with parts missing. */
#define NET_STATE_REVISION 2

struct net_saved {
	uint32_t len, held;
	uint32_t coal[2][2]; /* [RXQ, TXQ][max_packets, max_usecs] */
	const uint8_t *frame;	/* VNET_HDR_LEN + len bytes, when len */
	const uint8_t *backend; /* what net_backend_save wrote */
	size_t backend_len;
};

/* Reads the record whole (nothing checked against the device yet). */
static int parse_saved(struct state_reader *r, struct net_saved *s, struct error *err)
{
	s->len = state_get_u32(r);
	s->held = state_get_u32(r);
	s->frame = NULL;
	if (s->len > NET_MAX_FRAME)
		return error_set(err, "a received frame of %u bytes, more than %d", s->len,
				 NET_MAX_FRAME);
	if (s->len)
		s->frame = state_get_span(r, VNET_HDR_LEN + (size_t)s->len);
	s->coal[RXQ][0] = state_get_u32(r);
	s->coal[RXQ][1] = state_get_u32(r);
	s->coal[TXQ][0] = state_get_u32(r);
	s->coal[TXQ][1] = state_get_u32(r);
	s->backend_len = state_reader_left(r);
	s->backend = state_get_span(r, s->backend_len);
	return state_reader_done(r, err);
}

/* A frame half delivered into mergeable buffers is saved whole, with the
 * number of chains it holds: loading hands those chains back to the ring
 * and delivers the frame again from its start. */
static void net_save(struct virtio_device *vdev, struct state_writer *w)
{
	struct virtio_net *n = to_net(vdev);

	state_put_u32(w, (uint32_t)n->rx_frame_len);
	state_put_u32(w, n->rx_held);
	if (n->rx_frame_len)
		state_put_bytes(w, n->rx_buf, VNET_HDR_LEN + n->rx_frame_len);
	state_put_u32(w, n->coal[RXQ].max_packets);
	state_put_u32(w, n->coal[RXQ].max_usecs);
	state_put_u32(w, n->coal[TXQ].max_packets);
	state_put_u32(w, n->coal[TXQ].max_usecs);
	net_backend_save(n->backend, w);
}

/* A record of another kind of backend (--net user saved, tap here) is
 * named as such before virtio-pci compares features, which differ. */
static int net_check_saved(struct virtio_device *vdev, const uint8_t *own, size_t len,
			   struct error *err)
{
	struct state_reader r;
	struct net_saved s;

	state_reader_init(&r, own, len);
	if (parse_saved(&r, &s, err) < 0)
		return -1;
	return net_backend_check(to_net(vdev)->backend, s.backend, s.backend_len, err);
}

/* Everything is checked, the backend's state loaded (or refused, the
 * backend unchanged) before the device changes. */
static int net_load(struct virtio_device *vdev, struct state_reader *r, struct error *err)
{
	struct virtio_net *n = to_net(vdev);
	struct virtq *q = &vdev->vq[RXQ];
	struct net_saved s;

	if (parse_saved(r, &s, err) < 0)
		return -1;
	if (s.held > QUEUE_SIZE || s.held > q->size || (s.held && !s.len))
		return error_set(err, "%u receive chains held, which cannot be", s.held);
	if (s.len && !(q->ready && virtio_running(vdev)))
		return error_set(err, "a received frame, but no receive queue running");
	if (net_backend_load(n->backend, s.backend, s.backend_len, err) < 0)
		return -1;
	/* Parameters the driver set, and a notification for what the
	 * source may have been holding back when it stopped. */
	notify_coalesce_set(&n->coal[RXQ], s.coal[RXQ][0], s.coal[RXQ][1]);
	notify_coalesce_set(&n->coal[TXQ], s.coal[TXQ][0], s.coal[TXQ][1]);
	notify_coalesce_resume(&n->coal[RXQ]);
	notify_coalesce_resume(&n->coal[TXQ]);
	n->rx_frame_len = s.len;
	n->rx_held = 0;
	if (!s.len)
		return 0;
	memcpy(n->rx_buf, s.frame, VNET_HDR_LEN + (size_t)s.len);
	vnet_rx_begin(&n->rx, n->rx_buf, n->hdr_len, n->rx_buf + VNET_HDR_LEN, s.len);
	virtq_unpop(q, (uint16_t)s.held);
	return 0;
}

/* After a migration: a RARP for our MAC (net_announce). */
static void net_announce_self(struct virtio_device *vdev)
{
	struct virtio_net *n = (struct virtio_net *)vdev;
	int r = net_announce(n->backend, n->config + CFG_MAC);

	if (r < 0)
		log_warn("%s: cannot announce its MAC after the migration: %s", n->name, strerror(-r));
}

static const struct virtio_device_ops net_ops = {
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.write_stats = net_write_stats,
	.save = net_save,
	.load = net_load,
	.check_saved = net_check_saved,
	.announce = net_announce_self,
	.destroy = virtio_net_destroy,
};

struct virtio_device *virtio_net_create(struct net_backend *backend, const uint8_t mac[6],
					unsigned int index)
{
	struct virtio_net *n;
	uint64_t features;

	n = calloc(1, sizeof(*n));
	if (!n) {
		log_error("virtio-net%u: out of memory", index);
		return NULL;
	}
	n->backend = backend;
	n->more_fd = -1;
	n->coal[RXQ].timer_fd = n->coal[TXQ].timer_fd = -1;
	n->rx_buf = malloc(VNET_HDR_LEN + NET_MAX_FRAME);
	if (!n->rx_buf) {
		log_error("virtio-net%u: out of memory", index);
		goto fail;
	}
	n->more_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->more_fd < 0) {
		log_error("virtio-net%u: eventfd: %s", index, strerror(errno));
		goto fail;
	}
	n->backend_hdr = net_has_vnet_hdr(n->backend);
	if (notify_coalesce_init(&n->coal[RXQ], &n->vdev, RXQ) < 0 ||
	    notify_coalesce_init(&n->coal[TXQ], &n->vdev, TXQ) < 0) {
		log_error("virtio-net%u: timerfd: %s", index, strerror(errno));
		goto fail;
	}

	features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
		   1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_NET_F_MAC |
		   1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_MRG_RXBUF |
		   1ULL << VIRTIO_NET_F_CTRL_VQ | 1ULL << VIRTIO_NET_F_NOTF_COAL;
	/* Offloads only where a backend takes them through: a tap does the
	 * checksums and segmentation for us; slirp would need us to. */
	if (n->backend_hdr)
		features |= 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
			    1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_HOST_TSO6 |
			    1ULL << VIRTIO_NET_F_HOST_ECN | 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
			    1ULL << VIRTIO_NET_F_GUEST_TSO6 | 1ULL << VIRTIO_NET_F_GUEST_ECN;

	memcpy(n->config + CFG_MAC, mac, 6);
	le16_put(n->config + CFG_STATUS, VIRTIO_NET_S_LINK_UP);
	le16_put(n->config + CFG_MAX_VQ_PAIRS, 1);

	snprintf(n->name, sizeof(n->name), "virtio-net%u", index);
	n->vdev.name = n->name;
	n->vdev.device_id = VIRTIO_ID_NET;
	n->vdev.host_features = features;
	n->vdev.config_size = CFG_SIZE;
	n->vdev.num_queues = 3;
	n->vdev.queue_max_size[RXQ] = QUEUE_SIZE;
	n->vdev.queue_max_size[TXQ] = QUEUE_SIZE;
	n->vdev.queue_max_size[CTRLQ] = CTRL_QUEUE_SIZE;
	n->vdev.ops = &net_ops;
	n->vdev.state_revision = NET_STATE_REVISION;
	return &n->vdev;
fail:
	if (n->more_fd >= 0)
		close(n->more_fd);
	notify_coalesce_close(&n->coal[RXQ]);
	notify_coalesce_close(&n->coal[TXQ]);
	free(n->rx_buf);
	free(n);
	return NULL;
}

void virtio_net_destroy(struct virtio_device *vdev)
{
	struct virtio_net *n;

	if (!vdev)
		return;
	n = to_net(vdev);
	log_debug("%s: rx %llu frames %llu bytes, %llu dropped, %llu bad chains; tx %llu frames %llu bytes, %llu dropped",
		  n->name, (unsigned long long)n->stats.rx_frames,
		  (unsigned long long)n->stats.rx_bytes, (unsigned long long)n->stats.rx_dropped,
		  (unsigned long long)n->stats.rx_bad_chains,
		  (unsigned long long)n->stats.tx_frames, (unsigned long long)n->stats.tx_bytes,
		  (unsigned long long)n->stats.tx_dropped);
	/* The transport has stopped the I/O thread and closed its epoll set,
	 * so no watch can fire any more. */
	net_close(n->backend);
	close(n->more_fd);
	notify_coalesce_close(&n->coal[RXQ]);
	notify_coalesce_close(&n->coal[TXQ]);
	free(n->rx_buf);
	free(n);
}
