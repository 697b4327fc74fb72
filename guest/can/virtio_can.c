// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_can: a SocketCAN driver for the VirtIO CAN device (VirtIO 1.4,
 * "CAN Device", device ID 36), written for Vireo's guests running Debian's
 * 6.1 kernel, which has no driver for it.
 *
 * Queues: 0 TX, 1 RX, 2 control. The controller starts STOPPED; ndo_open
 * sends SET_CTRL_MODE_START and ndo_stop SET_CTRL_MODE_STOP. A frame sent
 * is kept as an echo skb until its TX buffer comes back (at once, or with
 * VIRTIO_CAN_F_LATE_TX_ACK when it was on the bus); then it is looped back
 * (result OK) or dropped and counted as a TX error. Received frames are
 * passed up from NAPI. Bus-off comes as a configuration change (status bit
 * VIRTIO_CAN_S_CTRL_BUSOFF); the CAN framework's restart (restart-ms, or
 * "ip link set canN type can restart") sends START again.
 *
 * The device has no bit timing of its own (the host side decides), so the
 * bit timing the CAN framework asks for is accepted and kept, but not sent
 * anywhere: see README.md.
 */

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>
#include <linux/completion.h>
#include <linux/workqueue.h>
#include <linux/scatterlist.h>
#include <linux/netdevice.h>
#include <linux/ethtool.h>
#include <linux/rtnetlink.h>
#include <linux/can.h>
#include <linux/can/dev.h>
#include <linux/can/error.h>
#include <linux/can/skb.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#ifndef VIRTIO_ID_CAN
#define VIRTIO_ID_CAN 36
#endif

/* Feature bits (VirtIO 1.4 numbering). */
#define VIRTIO_CAN_F_CAN_CLASSIC	0
#define VIRTIO_CAN_F_CAN_FD		1
#define VIRTIO_CAN_F_RTR_FRAMES		2
#define VIRTIO_CAN_F_LATE_TX_ACK	3

/* Configuration space: le16 status. */
#define VIRTIO_CAN_S_CTRL_BUSOFF	(1u << 0)
struct virtio_can_config {
	__le16 status;
};

/* Message types. */
#define VIRTIO_CAN_TX			0x0001
#define VIRTIO_CAN_RX			0x0101
#define VIRTIO_CAN_SET_CTRL_MODE_START	0x0201
#define VIRTIO_CAN_SET_CTRL_MODE_STOP	0x0202

/* Results written by the device; anything but OK counts as NOT_OK. */
#define VIRTIO_CAN_RESULT_OK		0
#define VIRTIO_CAN_RESULT_NOT_OK	1

/* Frame flags. */
#define VIRTIO_CAN_FLAGS_EXTENDED	0x8000
#define VIRTIO_CAN_FLAGS_FD		0x4000
#define VIRTIO_CAN_FLAGS_RTR		0x2000
#define VC_KNOWN_FLAGS (VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD | \
			VIRTIO_CAN_FLAGS_RTR)

/* Queues. */
enum { VC_TXQ, VC_RXQ, VC_CTRLQ, VC_NQUEUES };

/* The 16-byte header of TX and RX messages, then up to 64 data bytes. */
struct vc_hdr {
	__le16 msg_type;
	__le16 length;
	u8 reserved_classic_dlc;
	u8 padding;
	__le16 reserved_xl_priority;
	__le32 flags;
	__le32 can_id;
} __packed;

struct vc_msg {
	struct vc_hdr hdr;
	u8 sdu[CANFD_MAX_DLEN];
} __packed;

static_assert(sizeof(struct vc_hdr) == 16);
static_assert(sizeof(struct vc_msg) == 16 + 64);

/* One frame in flight: its index is its echo skb's index. */
struct vc_tx_slot {
	struct vc_msg msg;	/* device-readable: header + length bytes */
	u8 result;		/* device-writable */
	unsigned int idx;
};

/* The one control request (they are made one at a time). */
struct vc_ctrl_req {
	__le16 msg_type;	/* device-readable */
	u8 result;		/* device-writable */
};

/* At most this many frames in flight (echo skbs). */
#define VC_TX_MAX	128
/* At most this many RX buffers posted. */
#define VC_RX_MAX	256
/* The device always answers control requests; this only guards against a
 * broken one. A request that times out is waited for before the next.
 */
#define VC_CTRL_TIMEOUT	(10 * HZ)

/* Nominal and data bit timing limits of a notional 80 MHz controller, so
 * that "ip link set canN type can bitrate R [dbitrate D fd on]" computes
 * a bit timing for any usual rate. The device does not use them.
 */
#define VC_CLOCK_HZ	80000000

static const struct can_bittiming_const vc_bittiming_const = {
	.name = KBUILD_MODNAME,
	.tseg1_min = 2,
	.tseg1_max = 256,
	.tseg2_min = 2,
	.tseg2_max = 128,
	.sjw_max = 128,
	.brp_min = 1,
	.brp_max = 512,
	.brp_inc = 1,
};

static const struct can_bittiming_const vc_data_bittiming_const = {
	.name = KBUILD_MODNAME,
	.tseg1_min = 1,
	.tseg1_max = 32,
	.tseg2_min = 1,
	.tseg2_max = 16,
	.sjw_max = 16,
	.brp_min = 1,
	.brp_max = 32,
	.brp_inc = 1,
};

/* Defaults, so a plain "ip link set canN up" works: 500 kbit/s nominal,
 * 2 Mbit/s data, both with a 25 ns time quantum (brp 2 at 80 MHz).
 */
static const struct can_bittiming vc_default_bittiming = {
	.bitrate = 500000,
	.sample_point = 875,	/* (1 + 34 + 35) / 80 */
	.tq = 25,
	.prop_seg = 34,
	.phase_seg1 = 35,
	.phase_seg2 = 10,
	.sjw = 1,
	.brp = 2,
};

static const struct can_bittiming vc_default_data_bittiming = {
	.bitrate = 2000000,
	.sample_point = 800,	/* (1 + 7 + 8) / 20 */
	.tq = 25,
	.prop_seg = 7,
	.phase_seg1 = 8,
	.phase_seg2 = 4,
	.sjw = 1,
	.brp = 2,
};

struct vc_priv {
	struct can_priv can;	/* first: netdev_priv() is the CAN framework's */
	struct net_device *dev;
	struct virtio_device *vdev;
	struct virtqueue *txq, *rxq, *ctrlq;
	struct napi_struct napi;	/* RX, and TX completions */

	/* Negotiated features. */
	bool classic, fd, rtr, late_tx_ack;

	/*
	 * TX: the txq, the free slot stack and tx_frozen are under tx_lock.
	 * tx_frozen (from bus-off until the restart's START) keeps TX
	 * completions unprocessed and xmit dropping frames, so the echo skbs
	 * are untouched while the CAN framework flushes them on restart.
	 */
	spinlock_t tx_lock;
	struct vc_tx_slot *tx_slots;
	unsigned int *tx_free;
	unsigned int tx_nfree, tx_max;
	bool tx_frozen;

	/* RX buffers, all posted; touched only by NAPI or with NAPI off. */
	struct vc_msg *rx_bufs;
	unsigned int rx_num;

	/* Control requests: one at a time (ctrl_mutex); ctrl_lock orders the
	 * ctrlq between the requester and the callback.
	 */
	struct mutex ctrl_mutex;
	spinlock_t ctrl_lock;
	struct vc_ctrl_req *ctrl;
	struct completion ctrl_done;
	bool ctrl_pending;	/* a request timed out, its answer is due */

	/* Controller mode (mode_mutex): started from a successful open until
	 * stop; bus-off handling runs in config_work.
	 */
	struct mutex mode_mutex;
	bool started;
	struct work_struct config_work;
};

static u16 vc_status(struct vc_priv *priv)
{
	u16 status;

	virtio_cread_le(priv->vdev, struct virtio_can_config, status, &status);
	return status;
}

/* ---- control queue ---- */

static void vc_ctrl_done(struct virtqueue *vq)
{
	struct vc_priv *priv = vq->vdev->priv;
	unsigned long flags;
	unsigned int len;
	bool got = false;

	spin_lock_irqsave(&priv->ctrl_lock, flags);
	while (virtqueue_get_buf(vq, &len))
		got = true;
	spin_unlock_irqrestore(&priv->ctrl_lock, flags);
	if (got)
		complete(&priv->ctrl_done);
}

/* Sends a control request and waits for its result: 0, -EIO (NOT_OK) or
 * another error. Sleeps.
 */
static int vc_ctrl(struct vc_priv *priv, u16 msg_type)
{
	struct scatterlist out, in, *sgs[2];
	int err;

	mutex_lock(&priv->ctrl_mutex);
	if (priv->ctrl_pending) {
		if (!wait_for_completion_timeout(&priv->ctrl_done,
						 VC_CTRL_TIMEOUT)) {
			err = -ETIMEDOUT;
			goto out;
		}
		priv->ctrl_pending = false;
	}
	reinit_completion(&priv->ctrl_done);
	priv->ctrl->msg_type = cpu_to_le16(msg_type);
	priv->ctrl->result = 0xff;
	sg_init_one(&out, &priv->ctrl->msg_type, sizeof(priv->ctrl->msg_type));
	sg_init_one(&in, &priv->ctrl->result, sizeof(priv->ctrl->result));
	sgs[0] = &out;
	sgs[1] = &in;

	spin_lock_irq(&priv->ctrl_lock);
	err = virtqueue_add_sgs(priv->ctrlq, sgs, 1, 1, priv->ctrl, GFP_ATOMIC);
	if (!err)
		virtqueue_kick(priv->ctrlq);
	spin_unlock_irq(&priv->ctrl_lock);
	if (err)
		goto out;

	if (!wait_for_completion_timeout(&priv->ctrl_done, VC_CTRL_TIMEOUT)) {
		priv->ctrl_pending = true;
		err = -ETIMEDOUT;
		goto out;
	}
	err = priv->ctrl->result == VIRTIO_CAN_RESULT_OK ? 0 : -EIO;
out:
	mutex_unlock(&priv->ctrl_mutex);
	if (err)
		netdev_warn(priv->dev, "control request %#06x failed: %d\n",
			    msg_type, err);
	return err;
}

/* ---- TX ---- */

/*
 * Takes the echo skb of a frame sent out of the CAN framework's array, to
 * be passed up by the caller: NULL if the sending socket wants no loopback.
 * *len is the payload length for the statistics.
 *
 * This is what can_get_echo_skb() does before it passes the skb up with
 * netif_rx(), through the backlog queue: from NAPI, frames received after
 * the echo and passed up directly would overtake it (canfdtest's generator
 * sees the answer to a frame before the frame: "RX before TX!"). 6.1 does
 * not export the helper underneath, __can_get_echo_skb().
 */
static struct sk_buff *vc_take_echo_skb(struct vc_priv *priv, unsigned int idx,
					unsigned int *len)
{
	struct sk_buff *skb = priv->can.echo_skb[idx];

	priv->can.echo_skb[idx] = NULL;
	if (skb_shinfo(skb)->tx_flags & SKBTX_IN_PROGRESS)
		skb_tstamp_tx(skb, skb_hwtstamps(skb));
	*len = can_skb_get_data_len(skb);
	/* af_can marks the frames to loop back. */
	if (skb->pkt_type != PACKET_LOOPBACK) {
		dev_consume_skb_any(skb);
		return NULL;
	}
	skb->pkt_type = PACKET_BROADCAST;
	return skb;
}

/* One TX buffer came back. tx_lock held; the echo skb to pass up goes to
 * the end of *echo.
 */
static void vc_tx_complete(struct vc_priv *priv, struct vc_tx_slot *slot,
			   struct sk_buff_head *echo)
{
	struct net_device *dev = priv->dev;
	unsigned int idx = slot->idx, len;
	struct sk_buff *skb;

	/* Without its echo skb (flushed on close or restart) the frame was
	 * already counted as dropped.
	 */
	if (priv->can.echo_skb[idx]) {
		if (slot->result == VIRTIO_CAN_RESULT_OK) {
			skb = vc_take_echo_skb(priv, idx, &len);
			if (skb)
				__skb_queue_tail(echo, skb);
			dev->stats.tx_bytes += len;
			dev->stats.tx_packets++;
		} else {
			can_free_echo_skb(dev, idx, NULL);
			dev->stats.tx_errors++;
		}
	}
	priv->tx_free[priv->tx_nfree++] = idx;
}

static bool vc_tx_has_room(struct vc_priv *priv)
{
	/* Two descriptors per frame unless the ring uses indirect ones. */
	return priv->tx_nfree && priv->txq->num_free >= 2;
}

/* Takes back the TX buffers the device is done with. tx_lock held. */
static void vc_tx_reclaim_locked(struct vc_priv *priv, struct sk_buff_head *echo)
{
	struct vc_tx_slot *slot;
	unsigned int len;
	bool any = false;

	while ((slot = virtqueue_get_buf(priv->txq, &len))) {
		vc_tx_complete(priv, slot, echo);
		any = true;
	}
	if (any && !priv->tx_frozen && netif_queue_stopped(priv->dev) &&
	    vc_tx_has_room(priv))
		netif_wake_queue(priv->dev);
}

/*
 * TX completions: in NAPI (napi true; not while frozen) the echo skbs go
 * up with netif_receive_skb(), in order with received frames; otherwise
 * (open and stop, NAPI off) with netif_rx(). Not under tx_lock: passing a
 * frame up may send one (can-gw), and so enter vc_start_xmit().
 */
static void vc_tx_reclaim(struct vc_priv *priv, bool napi)
{
	struct sk_buff_head echo;
	struct sk_buff *skb;

	__skb_queue_head_init(&echo);
	spin_lock_bh(&priv->tx_lock);
	if (!napi || !priv->tx_frozen)
		vc_tx_reclaim_locked(priv, &echo);
	spin_unlock_bh(&priv->tx_lock);
	while ((skb = __skb_dequeue(&echo))) {
		if (napi)
			netif_receive_skb(skb);
		else
			netif_rx(skb);
	}
}

static netdev_tx_t vc_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct vc_priv *priv = netdev_priv(dev);
	const struct canfd_frame *cfd = (const struct canfd_frame *)skb->data;
	struct scatterlist out, in, *sgs[2];
	struct vc_tx_slot *slot;
	u32 id = cfd->can_id, flags = 0;
	unsigned int idx;
	u8 len, dlc = 0;
	bool fd, kick;
	int err;

	if (can_dev_dropped_skb(dev, skb))
		return NETDEV_TX_OK;

	fd = can_is_canfd_skb(skb);
	/* What the device was not offered, it must reject: drop it here. */
	if (fd ? !(priv->fd && (priv->can.ctrlmode & CAN_CTRLMODE_FD)) :
		 !priv->classic)
		goto drop;
	if (id & CAN_ERR_FLAG)
		goto drop;
	if (!fd && (id & CAN_RTR_FLAG) && !priv->rtr)
		goto drop;

	if (id & CAN_EFF_FLAG) {
		flags |= VIRTIO_CAN_FLAGS_EXTENDED;
		id &= CAN_EFF_MASK;
	} else {
		id &= CAN_SFF_MASK;
	}
	if (fd) {
		/* The protocol has no BRS/ESI: the device decides. */
		flags |= VIRTIO_CAN_FLAGS_FD;
	} else {
		if (cfd->can_id & CAN_RTR_FLAG)
			flags |= VIRTIO_CAN_FLAGS_RTR;
		dlc = can_get_cc_dlc((const struct can_frame *)cfd,
				     priv->can.ctrlmode);
	}
	len = cfd->len;

	spin_lock(&priv->tx_lock);
	if (unlikely(priv->tx_frozen)) {
		/* Bus-off: nothing goes out until the restart. */
		spin_unlock(&priv->tx_lock);
		goto drop;
	}
	if (unlikely(!vc_tx_has_room(priv))) {
		netif_stop_queue(dev);
		spin_unlock(&priv->tx_lock);
		return NETDEV_TX_BUSY;
	}
	idx = priv->tx_free[--priv->tx_nfree];
	slot = &priv->tx_slots[idx];
	memset(&slot->msg.hdr, 0, sizeof(slot->msg.hdr));
	slot->msg.hdr.msg_type = cpu_to_le16(VIRTIO_CAN_TX);
	slot->msg.hdr.length = cpu_to_le16(len);
	if (dlc > CAN_MAX_DLEN)
		slot->msg.hdr.reserved_classic_dlc = dlc;
	slot->msg.hdr.flags = cpu_to_le32(flags);
	slot->msg.hdr.can_id = cpu_to_le32(id);
	/* An RTR frame's length is the DLC asked for; send zeros as data so
	 * a device may read "length" bytes either way.
	 */
	if (flags & VIRTIO_CAN_FLAGS_RTR)
		memset(slot->msg.sdu, 0, len);
	else
		memcpy(slot->msg.sdu, cfd->data, len);
	slot->result = 0xff;

	sg_init_one(&out, &slot->msg, sizeof(slot->msg.hdr) + len);
	sg_init_one(&in, &slot->result, sizeof(slot->result));
	sgs[0] = &out;
	sgs[1] = &in;
	err = virtqueue_add_sgs(priv->txq, sgs, 1, 1, slot, GFP_ATOMIC);
	if (unlikely(err)) {
		priv->tx_free[priv->tx_nfree++] = idx;
		if (err == -ENOSPC) {
			netif_stop_queue(dev);
			spin_unlock(&priv->tx_lock);
			return NETDEV_TX_BUSY;
		}
		spin_unlock(&priv->tx_lock);
		net_warn_ratelimited("%s: cannot queue a frame: %d\n",
				     dev->name, err);
		goto drop;
	}
	/* The completion takes tx_lock, so the echo skb is in place first. */
	can_put_echo_skb(skb, dev, idx, 0);
	if (!vc_tx_has_room(priv))
		netif_stop_queue(dev);
	kick = (!netdev_xmit_more() || netif_queue_stopped(dev)) &&
	       virtqueue_kick_prepare(priv->txq);
	spin_unlock(&priv->tx_lock);
	if (kick)
		virtqueue_notify(priv->txq);
	return NETDEV_TX_OK;

drop:
	dev->stats.tx_dropped++;
	kfree_skb(skb);
	return NETDEV_TX_OK;
}

static void vc_tx_done(struct virtqueue *vq)
{
	struct vc_priv *priv = vq->vdev->priv;

	virtqueue_disable_cb(vq);
	napi_schedule(&priv->napi);
}

/* ---- RX ---- */

static int vc_rx_post(struct vc_priv *priv, struct vc_msg *buf)
{
	struct scatterlist sg;

	sg_init_one(&sg, buf, sizeof(*buf));
	return virtqueue_add_inbuf(priv->rxq, &sg, 1, buf, GFP_ATOMIC);
}

static void vc_rx_fill(struct vc_priv *priv)
{
	unsigned int i;

	for (i = 0; i < priv->rx_num; i++)
		if (vc_rx_post(priv, &priv->rx_bufs[i]))
			break;
	virtqueue_kick(priv->rxq);
}

/* Passes one received message up, or counts why not. */
static void vc_rx_one(struct vc_priv *priv, const struct vc_msg *msg,
		      unsigned int len)
{
	struct net_device *dev = priv->dev;
	struct sk_buff *skb;
	u32 flags, id;
	u16 dlen;
	bool fd, rtr;

	if (len < sizeof(msg->hdr) ||
	    le16_to_cpu(msg->hdr.msg_type) != VIRTIO_CAN_RX)
		goto bad;
	flags = le32_to_cpu(msg->hdr.flags);
	id = le32_to_cpu(msg->hdr.can_id);
	dlen = le16_to_cpu(msg->hdr.length);
	fd = flags & VIRTIO_CAN_FLAGS_FD;
	rtr = flags & VIRTIO_CAN_FLAGS_RTR;

	if (flags & ~VC_KNOWN_FLAGS)
		goto bad;
	if (id > ((flags & VIRTIO_CAN_FLAGS_EXTENDED) ? CAN_EFF_MASK :
							   CAN_SFF_MASK))
		goto bad;
	if (fd) {
		if (!priv->fd || rtr || dlen > CANFD_MAX_DLEN)
			goto bad;
	} else {
		if (!priv->classic || dlen > CAN_MAX_DLEN ||
		    (rtr && !priv->rtr))
			goto bad;
	}
	if (!rtr && len < sizeof(msg->hdr) + dlen)
		goto bad;

	if (flags & VIRTIO_CAN_FLAGS_EXTENDED)
		id |= CAN_EFF_FLAG;

	if (fd) {
		struct canfd_frame *cfd;

		/* A controller in classic mode does not take FD frames. */
		if (!(priv->can.ctrlmode & CAN_CTRLMODE_FD)) {
			dev->stats.rx_dropped++;
			return;
		}
		skb = alloc_canfd_skb(dev, &cfd);
		if (!skb)
			goto nomem;
		cfd->can_id = id;
		memcpy(cfd->data, msg->sdu, dlen);
		/* A length between the FD steps is padded with zeros. */
		cfd->len = canfd_sanitize_len(dlen);
		dev->stats.rx_bytes += cfd->len;
	} else {
		struct can_frame *cf;
		u8 dlc = dlen;

		skb = alloc_can_skb(dev, &cf);
		if (!skb)
			goto nomem;
		if (dlen == CAN_MAX_DLEN &&
		    msg->hdr.reserved_classic_dlc > CAN_MAX_DLEN &&
		    msg->hdr.reserved_classic_dlc <= CAN_MAX_RAW_DLC)
			dlc = msg->hdr.reserved_classic_dlc;
		can_frame_set_cc_len(cf, dlc, priv->can.ctrlmode);
		if (rtr) {
			cf->can_id = id | CAN_RTR_FLAG;
		} else {
			cf->can_id = id;
			memcpy(cf->data, msg->sdu, dlen);
			dev->stats.rx_bytes += dlen;
		}
	}
	dev->stats.rx_packets++;
	netif_receive_skb(skb);
	return;

bad:
	dev->stats.rx_errors++;
	net_dbg_ratelimited("%s: bad RX message (%u bytes)\n", dev->name, len);
	return;
nomem:
	dev->stats.rx_dropped++;
}

static int vc_rx(struct vc_priv *priv, int budget)
{
	struct vc_msg *buf;
	unsigned int len;
	int n = 0;

	while (n < budget && (buf = virtqueue_get_buf(priv->rxq, &len))) {
		/* The device answers a frame sent before it passes on what was
		 * received after it: those TX completions go up first.
		 */
		vc_tx_reclaim(priv, true);
		vc_rx_one(priv, buf, len);
		if (vc_rx_post(priv, buf))
			netdev_err_once(priv->dev, "cannot repost an RX buffer\n");
		n++;
	}
	if (n)
		virtqueue_kick(priv->rxq);
	return n;
}

/* With NAPI off: drops what came in while the interface was down. */
static void vc_rx_discard(struct vc_priv *priv)
{
	struct vc_msg *buf;
	unsigned int len;
	bool any = false;

	while ((buf = virtqueue_get_buf(priv->rxq, &len))) {
		if (vc_rx_post(priv, buf))
			netdev_err_once(priv->dev, "cannot repost an RX buffer\n");
		any = true;
	}
	if (any)
		virtqueue_kick(priv->rxq);
}

static void vc_rx_done(struct virtqueue *vq)
{
	struct vc_priv *priv = vq->vdev->priv;

	virtqueue_disable_cb(vq);
	napi_schedule(&priv->napi);
}

static int vc_poll(struct napi_struct *napi, int budget)
{
	struct vc_priv *priv = container_of(napi, struct vc_priv, napi);
	bool more;
	int done;

	vc_tx_reclaim(priv, true);
	done = vc_rx(priv, budget);
	if (done >= budget || !napi_complete_done(napi, done))
		return done;

	/* Interrupts back on; poll again if something came meanwhile. While
	 * frozen, TX completions wait for the restart, which polls again.
	 */
	more = !virtqueue_enable_cb(priv->rxq);
	spin_lock(&priv->tx_lock);
	if (!virtqueue_enable_cb(priv->txq) && !priv->tx_frozen)
		more = true;
	spin_unlock(&priv->tx_lock);
	if (more && napi_schedule_prep(napi)) {
		virtqueue_disable_cb(priv->rxq);
		spin_lock(&priv->tx_lock);
		virtqueue_disable_cb(priv->txq);
		spin_unlock(&priv->tx_lock);
		__napi_schedule(napi);
	}
	return done;
}

static void vc_napi_kick(struct vc_priv *priv)
{
	/* From process context: run the softirq at local_bh_enable(). */
	local_bh_disable();
	napi_schedule(&priv->napi);
	local_bh_enable();
}

/* ---- controller mode, bus-off ---- */

/* Bus-off: the device stopped the controller. mode_mutex held. */
static void vc_bus_off(struct vc_priv *priv)
{
	struct net_device *dev = priv->dev;
	struct can_frame *cf;
	struct sk_buff *skb;

	spin_lock_bh(&priv->tx_lock);
	priv->tx_frozen = true;
	netif_stop_queue(dev);
	spin_unlock_bh(&priv->tx_lock);

	skb = alloc_can_err_skb(dev, &cf);
	can_change_state(dev, cf, CAN_STATE_BUS_OFF, CAN_STATE_BUS_OFF);
	can_bus_off(dev);	/* carrier off, restart-ms */
	if (skb)
		netif_rx(skb);
}

static void vc_config_work(struct work_struct *work)
{
	struct vc_priv *priv = container_of(work, struct vc_priv, config_work);

	mutex_lock(&priv->mode_mutex);
	if (priv->started && priv->can.state != CAN_STATE_BUS_OFF &&
	    (vc_status(priv) & VIRTIO_CAN_S_CTRL_BUSOFF))
		vc_bus_off(priv);
	mutex_unlock(&priv->mode_mutex);
}

static void vc_config_changed(struct virtio_device *vdev)
{
	struct vc_priv *priv = vdev->priv;

	schedule_work(&priv->config_work);
}

/* The CAN framework's restart after bus-off (restart-ms, or "ip link set
 * canN type can restart"): it has flushed the echo skbs already.
 */
static int vc_set_mode(struct net_device *dev, enum can_mode mode)
{
	struct vc_priv *priv = netdev_priv(dev);
	int err;

	if (mode != CAN_MODE_START)
		return -EOPNOTSUPP;

	mutex_lock(&priv->mode_mutex);
	if (!priv->started) {
		err = -ENETDOWN;
		goto out;
	}
	err = vc_ctrl(priv, VIRTIO_CAN_SET_CTRL_MODE_START);
	if (err)
		goto out;
	/* The device updates status before it answers. */
	if (vc_status(priv) & VIRTIO_CAN_S_CTRL_BUSOFF) {
		netdev_warn(dev, "still bus-off after restart\n");
		err = -EIO;
		goto out;
	}
	priv->can.state = CAN_STATE_ERROR_ACTIVE;
	spin_lock_bh(&priv->tx_lock);
	priv->tx_frozen = false;
	netif_wake_queue(dev);
	spin_unlock_bh(&priv->tx_lock);
	vc_napi_kick(priv);
out:
	mutex_unlock(&priv->mode_mutex);
	return err;
}

/* ---- net_device ---- */

static int vc_open(struct net_device *dev)
{
	struct vc_priv *priv = netdev_priv(dev);
	int err;

	/* Defaults for what was never set, or cleared by "fd off". */
	if (!priv->can.bittiming.bitrate)
		priv->can.bittiming = vc_default_bittiming;
	if ((priv->can.ctrlmode & CAN_CTRLMODE_FD) &&
	    !priv->can.data_bittiming.bitrate)
		priv->can.data_bittiming = vc_default_data_bittiming;

	err = open_candev(dev);
	if (err)
		return err;

	/* NAPI is off: what came back while down is stale. */
	vc_rx_discard(priv);
	vc_tx_reclaim(priv, false);
	spin_lock_bh(&priv->tx_lock);
	priv->tx_frozen = false;
	spin_unlock_bh(&priv->tx_lock);
	napi_enable(&priv->napi);

	mutex_lock(&priv->mode_mutex);
	err = vc_ctrl(priv, VIRTIO_CAN_SET_CTRL_MODE_START);
	if (!err) {
		priv->started = true;
		priv->can.state = CAN_STATE_ERROR_ACTIVE;
	}
	mutex_unlock(&priv->mode_mutex);
	if (err) {
		napi_disable(&priv->napi);
		close_candev(dev);
		return err;
	}

	/* A bus-off that came with the START is in status already. */
	schedule_work(&priv->config_work);
	vc_napi_kick(priv);
	netif_start_queue(dev);
	return 0;
}

static int vc_stop(struct net_device *dev)
{
	struct vc_priv *priv = netdev_priv(dev);

	mutex_lock(&priv->mode_mutex);
	priv->started = false;
	mutex_unlock(&priv->mode_mutex);
	cancel_work_sync(&priv->config_work);
	netif_stop_queue(dev);

	/* The device gives back what it has not sent, as NOT_OK. */
	vc_ctrl(priv, VIRTIO_CAN_SET_CTRL_MODE_STOP);
	napi_disable(&priv->napi);
	/* Stops restart-ms and flushes the echo skbs: nothing else touches
	 * them now.
	 */
	close_candev(dev);
	vc_tx_reclaim(priv, false);
	priv->can.state = CAN_STATE_STOPPED;
	return 0;
}

static const struct net_device_ops vc_netdev_ops = {
	.ndo_open = vc_open,
	.ndo_stop = vc_stop,
	.ndo_start_xmit = vc_start_xmit,
	.ndo_change_mtu = can_change_mtu,
};

static const struct ethtool_ops vc_ethtool_ops = {
	.get_ts_info = ethtool_op_get_ts_info,
};

/* ---- virtio device ---- */

static int vc_find_vqs(struct vc_priv *priv)
{
	static const char * const names[VC_NQUEUES] = {
		[VC_TXQ] = "can-tx", [VC_RXQ] = "can-rx", [VC_CTRLQ] = "can-ctrl",
	};
	vq_callback_t *callbacks[VC_NQUEUES] = {
		[VC_TXQ] = vc_tx_done, [VC_RXQ] = vc_rx_done,
		[VC_CTRLQ] = vc_ctrl_done,
	};
	struct virtqueue *vqs[VC_NQUEUES];
	int err;

	err = virtio_find_vqs(priv->vdev, VC_NQUEUES, vqs, callbacks, names,
			      NULL);
	if (err)
		return err;
	priv->txq = vqs[VC_TXQ];
	priv->rxq = vqs[VC_RXQ];
	priv->ctrlq = vqs[VC_CTRLQ];
	return 0;
}

/* Resets the device, takes every buffer back and deletes the queues. The
 * interface is down (or was never up): no echo skbs are left.
 */
static void vc_del_vqs(struct vc_priv *priv)
{
	struct vc_tx_slot *slot;

	virtio_reset_device(priv->vdev);
	spin_lock_bh(&priv->tx_lock);
	while ((slot = virtqueue_detach_unused_buf(priv->txq))) {
		can_free_echo_skb(priv->dev, slot->idx, NULL);
		priv->tx_free[priv->tx_nfree++] = slot->idx;
	}
	spin_unlock_bh(&priv->tx_lock);
	while (virtqueue_detach_unused_buf(priv->rxq))
		;
	while (virtqueue_detach_unused_buf(priv->ctrlq))
		;
	priv->ctrl_pending = false;
	priv->vdev->config->del_vqs(priv->vdev);
}

static int vc_validate(struct virtio_device *vdev)
{
	if (!virtio_has_feature(vdev, VIRTIO_F_VERSION_1)) {
		dev_err(&vdev->dev, "device is not VirtIO 1.x\n");
		return -ENODEV;
	}
	/* RTR frames are classic frames. */
	if (!virtio_has_feature(vdev, VIRTIO_CAN_F_CAN_CLASSIC))
		__virtio_clear_bit(vdev, VIRTIO_CAN_F_RTR_FRAMES);
	return 0;
}

static int vc_probe(struct virtio_device *vdev)
{
	struct net_device *dev;
	struct vc_priv *priv;
	struct virtqueue *txq;
	unsigned int i, tx_max;
	int err;

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "no configuration space access\n");
		return -EINVAL;
	}
	if (!virtio_has_feature(vdev, VIRTIO_CAN_F_CAN_CLASSIC) &&
	    !virtio_has_feature(vdev, VIRTIO_CAN_F_CAN_FD)) {
		dev_err(&vdev->dev, "device offers neither classic CAN nor CAN FD\n");
		return -ENODEV;
	}

	/* The TX ring size bounds the frames in flight, hence the number of
	 * echo skbs, which alloc_candev() wants: find the queues first.
	 */
	{
		struct vc_priv tmp = { .vdev = vdev };

		err = vc_find_vqs(&tmp);
		if (err)
			return err;
		txq = tmp.txq;
		tx_max = virtqueue_get_vring_size(txq);
		if (!virtio_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC))
			tx_max /= 2;
		tx_max = clamp_t(unsigned int, tx_max, 1, VC_TX_MAX);

		dev = alloc_candev(sizeof(*priv), tx_max);
		if (!dev) {
			vdev->config->del_vqs(vdev);
			return -ENOMEM;
		}
		priv = netdev_priv(dev);
		priv->txq = tmp.txq;
		priv->rxq = tmp.rxq;
		priv->ctrlq = tmp.ctrlq;
	}
	priv->dev = dev;
	priv->vdev = vdev;
	vdev->priv = priv;
	priv->tx_max = tx_max;
	priv->classic = virtio_has_feature(vdev, VIRTIO_CAN_F_CAN_CLASSIC);
	priv->fd = virtio_has_feature(vdev, VIRTIO_CAN_F_CAN_FD);
	priv->rtr = virtio_has_feature(vdev, VIRTIO_CAN_F_RTR_FRAMES);
	priv->late_tx_ack = virtio_has_feature(vdev, VIRTIO_CAN_F_LATE_TX_ACK);
	spin_lock_init(&priv->tx_lock);
	spin_lock_init(&priv->ctrl_lock);
	mutex_init(&priv->ctrl_mutex);
	mutex_init(&priv->mode_mutex);
	init_completion(&priv->ctrl_done);
	INIT_WORK(&priv->config_work, vc_config_work);

	err = -ENOMEM;
	priv->tx_slots = kcalloc(tx_max, sizeof(*priv->tx_slots), GFP_KERNEL);
	priv->tx_free = kcalloc(tx_max, sizeof(*priv->tx_free), GFP_KERNEL);
	priv->rx_num = min_t(unsigned int,
			     virtqueue_get_vring_size(priv->rxq), VC_RX_MAX);
	priv->rx_bufs = kcalloc(priv->rx_num, sizeof(*priv->rx_bufs),
				GFP_KERNEL);
	priv->ctrl = kzalloc(sizeof(*priv->ctrl), GFP_KERNEL);
	if (!priv->tx_slots || !priv->tx_free || !priv->rx_bufs || !priv->ctrl)
		goto err_free;
	/* Lowest index on top: the first frames use the first slots. */
	for (i = 0; i < tx_max; i++) {
		priv->tx_slots[i].idx = i;
		priv->tx_free[i] = tx_max - 1 - i;
	}
	priv->tx_nfree = tx_max;

	SET_NETDEV_DEV(dev, &vdev->dev);
	dev->netdev_ops = &vc_netdev_ops;
	dev->ethtool_ops = &vc_ethtool_ops;
	dev->flags |= IFF_ECHO;	/* frames are looped back on completion */
	netif_napi_add(dev, &priv->napi, vc_poll);

	priv->can.clock.freq = VC_CLOCK_HZ;
	priv->can.bittiming_const = &vc_bittiming_const;
	priv->can.bittiming = vc_default_bittiming;
	priv->can.do_set_mode = vc_set_mode;
	if (priv->classic)
		priv->can.ctrlmode_supported |= CAN_CTRLMODE_CC_LEN8_DLC;
	if (priv->fd) {
		priv->can.data_bittiming_const = &vc_data_bittiming_const;
		priv->can.data_bittiming = vc_default_data_bittiming;
		if (priv->classic) {
			priv->can.ctrlmode_supported |= CAN_CTRLMODE_FD;
		} else {
			/* FD only: always in FD mode. */
			err = can_set_static_ctrlmode(dev, CAN_CTRLMODE_FD);
			if (err)
				goto err_napi;
		}
	}
	priv->can.state = CAN_STATE_STOPPED;

	virtio_device_ready(vdev);
	vc_rx_fill(priv);

	err = register_candev(dev);
	if (err) {
		dev_err(&vdev->dev, "register_candev: %d\n", err);
		goto err_reset;
	}
	netdev_info(dev, "virtio-can: %s%s%s%s, %u frames in flight, %u RX buffers\n",
		    priv->classic ? "classic" : "",
		    priv->fd ? (priv->classic ? " + FD" : "FD only") : "",
		    priv->rtr ? ", RTR" : "",
		    priv->late_tx_ack ? ", late TX ack" : "",
		    tx_max, priv->rx_num);
	return 0;

err_reset:
	cancel_work_sync(&priv->config_work);
	vc_del_vqs(priv);
	netif_napi_del(&priv->napi);
	goto err_mem;
err_napi:
	netif_napi_del(&priv->napi);
err_free:
	vdev->config->del_vqs(vdev);
err_mem:
	kfree(priv->ctrl);
	kfree(priv->rx_bufs);
	kfree(priv->tx_free);
	kfree(priv->tx_slots);
	vdev->priv = NULL;
	free_candev(dev);
	return err;
}

static void vc_remove(struct virtio_device *vdev)
{
	struct vc_priv *priv = vdev->priv;
	struct net_device *dev = priv->dev;

	unregister_candev(dev);	/* stops the controller if up */
	cancel_work_sync(&priv->config_work);
	vc_del_vqs(priv);
	netif_napi_del(&priv->napi);
	kfree(priv->ctrl);
	kfree(priv->rx_bufs);
	kfree(priv->tx_free);
	kfree(priv->tx_slots);
	vdev->priv = NULL;
	free_candev(dev);
}

#ifdef CONFIG_PM_SLEEP
static int vc_freeze(struct virtio_device *vdev)
{
	struct vc_priv *priv = vdev->priv;
	struct net_device *dev = priv->dev;

	rtnl_lock();
	netif_device_detach(dev);
	if (netif_running(dev))
		vc_stop(dev);
	rtnl_unlock();
	cancel_work_sync(&priv->config_work);
	vc_del_vqs(priv);
	return 0;
}

static int vc_restore(struct virtio_device *vdev)
{
	struct vc_priv *priv = vdev->priv;
	struct net_device *dev = priv->dev;
	int err;

	err = vc_find_vqs(priv);
	if (err)
		return err;
	virtio_device_ready(vdev);
	vc_rx_fill(priv);

	rtnl_lock();
	if (netif_running(dev)) {
		err = vc_open(dev);
		if (err)
			netdev_err(dev, "cannot restart after resume: %d\n",
				   err);
	}
	netif_device_attach(dev);
	rtnl_unlock();
	return 0;
}
#endif

static const struct virtio_device_id vc_id_table[] = {
	{ VIRTIO_ID_CAN, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, vc_id_table);

static const unsigned int vc_features[] = {
	VIRTIO_CAN_F_CAN_CLASSIC,
	VIRTIO_CAN_F_CAN_FD,
	VIRTIO_CAN_F_RTR_FRAMES,
	VIRTIO_CAN_F_LATE_TX_ACK,
};

static struct virtio_driver vc_driver = {
	.driver.name = KBUILD_MODNAME,
	.driver.owner = THIS_MODULE,
	.id_table = vc_id_table,
	.feature_table = vc_features,
	.feature_table_size = ARRAY_SIZE(vc_features),
	.validate = vc_validate,
	.probe = vc_probe,
	.remove = vc_remove,
	.config_changed = vc_config_changed,
#ifdef CONFIG_PM_SLEEP
	.freeze = vc_freeze,
	.restore = vc_restore,
#endif
};
module_virtio_driver(vc_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("SocketCAN driver for the VirtIO CAN device (Vireo)");
MODULE_AUTHOR("The Vireo authors");
