/* The virtio-can controller. The driver sends frames on the TX queue,
 * pre-posts buffers on the RX queue and starts/stops the controller on
 * the control queue. The controller starts STOPPED; while stopped, TX is
 * refused and frames from the bus are dropped. With LATE_TX_ACK a TX
 * request is answered only once the backend confirms the frame went out
 * on the bus.
 *
 * Like a controller's TX buffers, at most TX_WINDOW frames are handed to
 * the backend and not yet confirmed; the rest wait in the TX queue. STOP
 * and bus-off withdraw the frames in the window from the backend
 * (can_backend_cancel) and answer every pending request NOT_OK, those in
 * the window and those still in the queue, so that none of them reaches
 * the bus later. */
#include "virtio/virtio_can.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "util/le.h"
#include "util/log.h"
#include "virtio/virtio_can_msg.h"
#include "util/iov.h"

#define TXQ 0
#define RXQ 1
#define CTRLQ 2
#define QUEUE_SIZE 256
/* Frames in the backend at once. Enough to keep the bus busy between two
 * wake-ups of the I/O thread (a frame takes 50-250 us on the wire), few
 * enough that a hub's batch holds them all with a CANCEL behind them. */
#define TX_WINDOW 16

/* A TX request waiting for its bus confirmation. */
struct held_tx {
	uint16_t head;
	uint8_t *result; /* the device-writable result byte in guest RAM */
};

/* Frames a save takes from the backend: about what a SocketCAN socket's
 * default receive buffer holds. */
#define RX_BACKLOG 512

struct virtio_can {
	struct virtio_device vdev;
	struct can_backend *backend;
	char name[24];
	uint8_t config[2]; /* le16 status */
	bool started;
	struct ioloop_watch watch;
	bool watching;
	bool want_out; /* the backend said -EAGAIN: wait until writable */
	/* Frames handed to the backend and not confirmed yet. */
	unsigned int in_flight;
	/* LATE_TX_ACK: their requests, oldest first (held_count == in_flight;
	 * without LATE_TX_ACK requests are answered when sent). */
	struct held_tx held[TX_WINDOW];
	unsigned int held_first, held_count;
	/* What came from the bus and waits to be delivered, oldest first: a
	 * frame that found no RX buffer (the backend is not read again until
	 * the driver adds buffers), and what a save took from the backend so
	 * that the snapshot carries it (rx_backlog_take). */
	struct rx_entry {
		enum can_event ev; /* CAN_EVENT_FRAME or CAN_EVENT_BUSOFF */
		struct can_msg m;
	} backlog[RX_BACKLOG];
	unsigned int backlog_first, backlog_count;
	struct virtq_elem elem;
	uint64_t tx_frames, rx_frames, tx_refused, rx_dropped;
};

static void set_status(struct virtio_can *c, uint16_t status)
{
	le16_put(c->config, status);
}

static uint16_t status(const struct virtio_can *c)
{
	return le16_get(c->config);
}

/* The result byte of a request: the first byte of its first
 * device-writable buffer; NULL if there is none. */
static uint8_t *result_byte(const struct virtq_elem *e)
{
	unsigned int i;

	for (i = e->out_num; i < (unsigned int)(e->out_num + e->in_num); i++)
		if (e->iov[i].iov_len)
			return e->iov[i].iov_base;
	return NULL;
}

static void answer(struct virtio_can *c, unsigned int q, uint16_t head, uint8_t *res,
		   uint8_t value)
{
	*res = value;
	virtq_push(&c->vdev.vq[q], head, 1);
}

/* No driver: the controller is stopped, frames are lost, and counted as
 * such (a frame arriving while a guest boots is visible in --stats-json,
 * like one while can0 is down). */
static void drop_pending(struct virtio_can *c)
{
	enum can_event ev;
	struct can_msg m;

	while (can_backend_recv(c->backend, &ev, &m) > 0) {
		if (ev == CAN_EVENT_TX_DONE && c->in_flight)
			c->in_flight--;
		else if (ev == CAN_EVENT_FRAME)
			c->rx_dropped++;
	}
}

static void backend_ready(void *ctx, uint32_t events);

static uint32_t watch_events(const struct virtio_can *c)
{
	return (c->backlog_count ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
}

/* STOP, bus-off or reset: the frames in the window are withdrawn from
 * the backend; answer: their requests fail (not on reset, where they
 * belong to a driver that is gone). */
static void cancel_in_flight(struct virtio_can *c, bool answer_requests)
{
	while (c->held_count) {
		struct held_tx *h = &c->held[c->held_first];

		if (answer_requests)
			answer(c, TXQ, h->head, h->result, VIRTIO_CAN_RESULT_NOT_OK);
		c->held_first = (c->held_first + 1) % TX_WINDOW;
		c->held_count--;
	}
	c->held_first = 0;
	if (c->in_flight && can_backend_cancel(c->backend) == 1 && c->watching) {
		/* The backend renewed its descriptor: watch the new one. */
		if (ioloop_add(&c->vdev.loop, &c->watch, can_backend_rx_fd(c->backend),
			       watch_events(c), backend_ready, c) < 0)
			c->watching = false;
	}
	c->in_flight = 0;
	if (answer_requests)
		virtio_notify(&c->vdev, TXQ);
}

static void update_watch(struct virtio_can *c)
{
	if (c->watching)
		ioloop_modify(&c->vdev.loop, &c->watch, watch_events(c));
}

static void process_tx(struct virtio_can *c)
{
	struct virtio_device *vdev = &c->vdev;
	struct virtq *vq = &vdev->vq[TXQ];
	struct virtq_elem *e = &c->elem;
	bool late = virtio_has_feature(vdev, VIRTIO_CAN_F_LATE_TX_ACK);
	struct can_msg m;
	int r = 0;

	/* While stopped every request is refused at once; while started the
	 * window bounds what is taken from the queue. */
	while (!c->want_out && (!c->started || c->in_flight < TX_WINDOW) &&
	       (r = virtq_pop(vq, e)) > 0) {
		uint8_t *res = result_byte(e);
		uint8_t verdict;
		int sent;

		if (!res) {
			virtio_set_needs_reset(vdev, "TX request without a result buffer");
			return;
		}
		verdict = virtio_can_decode_tx(e->iov, e->out_num, vdev->guest_features, &m);
		if (verdict != VIRTIO_CAN_RESULT_OK || !c->started ||
		    (status(c) & VIRTIO_CAN_S_CTRL_BUSOFF)) {
			c->tx_refused++;
			answer(c, TXQ, e->head, res, VIRTIO_CAN_RESULT_NOT_OK);
			continue;
		}
		sent = can_backend_send(c->backend, &m);
		if (sent == -EAGAIN) {
			/* The bus is busy: try again when the backend can take
			 * more, as a controller's TX FIFO would. */
			virtq_unpop(vq, 1);
			c->want_out = true;
			update_watch(c);
			break;
		}
		if (sent < 0) {
			c->tx_refused++;
			answer(c, TXQ, e->head, res, VIRTIO_CAN_RESULT_NOT_OK);
			continue;
		}
		c->tx_frames++;
		c->in_flight++;
		if (late) {
			c->held[(c->held_first + c->held_count) % TX_WINDOW] =
				(struct held_tx){ .head = e->head, .result = res };
			c->held_count++;
		} else {
			answer(c, TXQ, e->head, res, VIRTIO_CAN_RESULT_OK);
		}
	}
	if (r < 0)
		virtio_set_needs_reset(vdev, "malformed TX descriptor chain");
	virtio_notify(vdev, TXQ);
}

/* After STOP or bus-off: what the driver still has queued is refused now,
 * rather than sent after the next START. (Not from inside another
 * queue's loop: process_tx reuses c->elem.) */
static void refuse_queued_tx(struct virtio_can *c)
{
	c->want_out = false;
	update_watch(c);
	process_tx(c);
}

static void process_ctrl(struct virtio_can *c)
{
	struct virtio_device *vdev = &c->vdev;
	struct virtq *vq = &vdev->vq[CTRLQ];
	struct virtq_elem *e = &c->elem;
	bool stopped = false;
	uint8_t req[2];
	int r;

	while ((r = virtq_pop(vq, e)) > 0) {
		uint8_t *res = result_byte(e);
		uint8_t verdict = VIRTIO_CAN_RESULT_OK;

		if (!res) {
			virtio_set_needs_reset(vdev, "control request without a result buffer");
			return;
		}
		if (iov_to_buf(e->iov, e->out_num, 0, req, 2) != 2) {
			verdict = VIRTIO_CAN_RESULT_NOT_OK;
		} else if (le16_get(req) == VIRTIO_CAN_SET_CTRL_MODE_START) {
			/* Also the way out of bus-off. */
			c->started = true;
			if (status(c) & VIRTIO_CAN_S_CTRL_BUSOFF) {
				set_status(c, 0);
				virtio_config_changed(vdev);
				virtio_report(vdev, "VIREO_CAN_RESTART");
			}
		} else if (le16_get(req) == VIRTIO_CAN_SET_CTRL_MODE_STOP) {
			c->started = false;
			cancel_in_flight(c, true);
			stopped = true;
		} else {
			verdict = VIRTIO_CAN_RESULT_NOT_OK;
		}
		answer(c, CTRLQ, e->head, res, verdict);
	}
	if (r < 0)
		virtio_set_needs_reset(vdev, "malformed control descriptor chain");
	virtio_notify(vdev, CTRLQ);
	if (stopped)
		refuse_queued_tx(c);
}

/* Gives m to the driver; false when it has no RX buffer for it. */
static bool deliver(struct virtio_can *c, const struct can_msg *m)
{
	struct virtio_device *vdev = &c->vdev;
	struct virtq *vq = &vdev->vq[RXQ];
	struct virtq_elem *e = &c->elem;
	uint8_t buf[VIRTIO_CAN_HDR_SIZE + CANFD_MAX_DLEN];
	size_t len;
	int r;

	if (!c->started || !virtio_can_rx_allowed(m, vdev->guest_features)) {
		c->rx_dropped++; /* a stopped controller hears nothing */
		return true;
	}
	r = virtq_pop(vq, e);
	if (r < 0) {
		virtio_set_needs_reset(vdev, "malformed RX descriptor chain");
		return true;
	}
	if (r == 0)
		return false;
	len = virtio_can_encode_rx(m, buf);
	if (e->in_len < len) {
		/* The driver's buffer is too small for this frame: drop it,
		 * and give the buffer back empty. */
		c->rx_dropped++;
		virtq_push(vq, e->head, 0);
		return true;
	}
	virtq_push(vq, e->head, (uint32_t)iov_from_buf(e->iov + e->out_num, e->in_num, 0, buf, len));
	c->rx_frames++;
	return true;
}

static void bus_off(struct virtio_can *c)
{
	if (status(c) & VIRTIO_CAN_S_CTRL_BUSOFF)
		return;
	log_info("%s: bus-off", c->vdev.name);
	virtio_report(&c->vdev, "VIREO_CAN_BUS_OFF");
	c->started = false;
	set_status(c, VIRTIO_CAN_S_CTRL_BUSOFF);
	cancel_in_flight(c, true);
	virtio_config_changed(&c->vdev);
}

static void tx_done(struct virtio_can *c)
{
	struct held_tx *h;

	if (!c->in_flight)
		return; /* the backend promises this cannot happen */
	c->in_flight--;
	if (!c->held_count)
		return;
	h = &c->held[c->held_first];
	answer(c, TXQ, h->head, h->result, VIRTIO_CAN_RESULT_OK);
	c->held_first = (c->held_first + 1) % TX_WINDOW;
	c->held_count--;
}

static struct rx_entry *backlog_push(struct virtio_can *c)
{
	return &c->backlog[(c->backlog_first + c->backlog_count++) % RX_BACKLOG];
}

/* Delivers the backlog, oldest first; false when a frame still finds no
 * RX buffer. */
static bool deliver_backlog(struct virtio_can *c)
{
	while (c->backlog_count) {
		struct rx_entry *e = &c->backlog[c->backlog_first];

		if (e->ev == CAN_EVENT_BUSOFF)
			bus_off(c);
		else if (!deliver(c, &e->m))
			return false;
		c->backlog_first = (c->backlog_first + 1) % RX_BACKLOG;
		c->backlog_count--;
	}
	return true;
}

static void process_rx(struct virtio_can *c)
{
	enum can_event ev;
	unsigned int budget = 256; /* let TX and control in between */
	bool window_full = c->in_flight >= TX_WINDOW;
	bool was_started = c->started;
	struct can_msg m;

	if (c->backlog_count) {
		if (!deliver_backlog(c))
			goto out;
		update_watch(c);
	}
	while (budget-- && can_backend_recv(c->backend, &ev, &m) > 0) {
		if (ev == CAN_EVENT_TX_DONE) {
			tx_done(c);
		} else if (ev == CAN_EVENT_BUSOFF) {
			bus_off(c);
		} else if (!deliver(c, &m)) {
			/* The backlog is empty here: the backend is read only then. */
			*backlog_push(c) = (struct rx_entry){ CAN_EVENT_FRAME, m };
			update_watch(c);
			break;
		}
	}
out:
	virtio_notify(&c->vdev, RXQ);
	if (was_started && !c->started)
		refuse_queued_tx(c); /* bus-off */
	else if (window_full && c->in_flight < TX_WINDOW)
		process_tx(c); /* frames waited in the queue for room */
	else
		virtio_notify(&c->vdev, TXQ);
}

static void backend_ready(void *ctx, uint32_t events)
{
	struct virtio_can *c = ctx;
	struct virtio_device *vdev = &c->vdev;

	pthread_mutex_lock(&vdev->lock);
	if (!virtio_running(vdev)) {
		drop_pending(c);
		c->want_out = false;
	} else {
		if (events & EPOLLOUT) {
			c->want_out = false;
			update_watch(c);
			process_tx(c);
		}
		if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			process_rx(c);
	}
	pthread_mutex_unlock(&vdev->lock);
}

static void can_queue_notify(struct virtio_device *vdev, unsigned int q)
{
	struct virtio_can *c = (struct virtio_can *)vdev;

	if (q == TXQ)
		process_tx(c);
	else if (q == CTRLQ)
		process_ctrl(c);
	else if (c->backlog_count)
		process_rx(c); /* new RX buffers for the frames waiting */
}

static int can_activate(struct virtio_device *vdev)
{
	struct virtio_can *c = (struct virtio_can *)vdev;

	if (!c->watching) {
		/* What the bus carried before the first driver came (the
		 * backend was not watched yet) is as lost as what comes while
		 * no driver runs: a restored or migrated-in guest must not get
		 * frames its source already had (a SocketCAN socket opened
		 * beside the source's sees them all, its guest's own too). */
		drop_pending(c);
		if (ioloop_add(&vdev->loop, &c->watch, can_backend_rx_fd(c->backend), EPOLLIN,
			       backend_ready, c) < 0)
			return -1;
		c->watching = true;
	}
	update_watch(c);
	return 0;
}

static void can_reset(struct virtio_device *vdev)
{
	struct virtio_can *c = (struct virtio_can *)vdev;

	/* Requests in flight belong to the old driver: withdraw their frames
	 * and forget them. */
	cancel_in_flight(c, false);
	c->started = false;
	c->backlog_count = 0;
	c->want_out = false;
	set_status(c, 0);
	update_watch(c);
}

static void can_config_read(struct virtio_device *vdev, uint32_t offset, void *data,
			    uint32_t size)
{
	struct virtio_can *c = (struct virtio_can *)vdev;

	memcpy(data, c->config + offset, size);
}

static void can_write_stats(struct virtio_device *vdev, struct jsonw *j)
{
	struct virtio_can *c = (struct virtio_can *)vdev;

	jsonw_uint(j, "tx_frames", c->tx_frames);
	jsonw_uint(j, "tx_refused", c->tx_refused);
	jsonw_uint(j, "rx_frames", c->rx_frames);
	jsonw_uint(j, "rx_dropped", c->rx_dropped);
	/* Lost on the host before the device could read them. */
	jsonw_uint(j, "rx_lost", can_backend_rx_lost(c->backend));
}

/* Frames sent and not yet confirmed by the bus (LATE_TX_ACK): their
 * requests are answered when the confirmation comes. */
static unsigned int can_in_flight(struct virtio_device *vdev)
{
	return ((struct virtio_can *)vdev)->in_flight;
}

/* ---- state (snapshots) ---- */

/* The frames the backend holds for this VM (a SocketCAN socket's receive
 * queue) go into the backlog before a save: a snapshot then carries every
 * frame the bus sent before it, and a source that runs on delivers them
 * from there as it would have. What does not fit stays in the backend.
 * Paused, so nothing is in flight and no confirmation can come. */
static void rx_backlog_take(struct virtio_can *c)
{
	struct rx_entry e;

	while (c->backlog_count < RX_BACKLOG && can_backend_recv(c->backend, &e.ev, &e.m) > 0)
		if (e.ev != CAN_EVENT_TX_DONE)
			*backlog_push(c) = e;
}

/* Paused, so no frame is in flight (pause waited for their answers): the
 * controller's mode and status, and what came from the bus for the guest
 * (frames, and a bus-off among them), oldest first. Revision 1: the
 * whole backlog (revision 0 had room for one frame). */
#define CAN_STATE_REVISION 1
static void can_save(struct virtio_device *vdev, struct state_writer *w)
{
	struct virtio_can *c = (struct virtio_can *)vdev;
	unsigned int i;

	if (c->watching)
		rx_backlog_take(c);
	state_put_bool(w, c->started);
	state_put_u16(w, status(c));
	state_put_u16(w, (uint16_t)c->backlog_count);
	for (i = 0; i < c->backlog_count; i++) {
		const struct rx_entry *e = &c->backlog[(c->backlog_first + i) % RX_BACKLOG];

		state_put_bool(w, e->ev == CAN_EVENT_BUSOFF);
		state_put_u32(w, e->m.id);
		state_put_u8(w, e->m.flags);
		state_put_u8(w, e->m.len);
		state_put_bytes(w, e->m.data, e->m.len);
	}
}

/* One backlog entry; false when it is not one a save could have written. */
static bool load_entry(struct state_reader *r, struct rx_entry *e)
{
	bool busoff = state_get_bool(r);

	e->ev = busoff ? CAN_EVENT_BUSOFF : CAN_EVENT_FRAME;
	e->m.id = state_get_u32(r);
	e->m.flags = state_get_u8(r);
	e->m.len = state_get_u8(r);
	if (e->m.len > sizeof(e->m.data))
		return false;
	state_get_bytes(r, e->m.data, e->m.len);
	return busoff || can_msg_valid(&e->m) == 0;
}

static int can_load(struct virtio_device *vdev, struct state_reader *r, struct error *err)
{
	struct virtio_can *c = (struct virtio_can *)vdev;
	bool started = state_get_bool(r);
	uint16_t st = state_get_u16(r), n = state_get_u16(r), i;
	/* Read aside: a refused record leaves the device as it was. */
	struct rx_entry *backlog = calloc(RX_BACKLOG, sizeof(*backlog));
	int ret = -1;

	if (!backlog)
		return error_set(err, "out of memory");
	if (n > RX_BACKLOG) {
		error_set(err, "%u CAN frames waiting for the guest, more than %u", n, RX_BACKLOG);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!load_entry(r, &backlog[i])) {
			error_set(err, "a CAN frame waiting for the guest is not a valid CAN frame");
			goto out;
		}
	}
	if (state_reader_done(r, err) < 0)
		goto out;
	if (st & ~VIRTIO_CAN_S_CTRL_BUSOFF) {
		error_set(err, "controller status 0x%04x has undefined bits", st);
		goto out;
	}
	c->started = started;
	set_status(c, st);
	memcpy(c->backlog, backlog, sizeof(c->backlog));
	c->backlog_first = 0;
	c->backlog_count = n;
	update_watch(c);
	ret = 0;
out:
	free(backlog);
	return ret;
}

static const struct virtio_device_ops can_ops = {
	.in_flight = can_in_flight,
	.config_read = can_config_read,
	.activate = can_activate,
	.queue_notify = can_queue_notify,
	.reset = can_reset,
	.write_stats = can_write_stats,
	.save = can_save,
	.load = can_load,
	.destroy = virtio_can_destroy,
};

struct virtio_device *virtio_can_create(struct can_backend *backend, unsigned int index)
{
	struct virtio_can *c = calloc(1, sizeof(*c));
	unsigned int i;

	if (!c) {
		log_error("virtio-can%u: out of memory", index);
		return NULL;
	}
	c->backend = backend;
	snprintf(c->name, sizeof(c->name), "virtio-can%u", index);
	c->vdev.name = c->name;
	c->vdev.device_id = VIRTIO_ID_CAN;
	c->vdev.host_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
				1ULL << VIRTIO_RING_F_EVENT_IDX |
				1ULL << VIRTIO_CAN_F_CAN_CLASSIC | 1ULL << VIRTIO_CAN_F_RTR_FRAMES |
				1ULL << VIRTIO_CAN_F_LATE_TX_ACK;
	if (can_backend_fd(c->backend))
		c->vdev.host_features |= 1ULL << VIRTIO_CAN_F_CAN_FD;
	c->vdev.num_queues = 3;
	for (i = 0; i < 3; i++)
		c->vdev.queue_max_size[i] = QUEUE_SIZE;
	c->vdev.config_size = sizeof(c->config);
	c->vdev.ops = &can_ops;
	c->vdev.state_revision = CAN_STATE_REVISION;
	return &c->vdev;
}

void virtio_can_destroy(struct virtio_device *vdev)
{
	struct virtio_can *c = (struct virtio_can *)vdev;

	can_backend_close(c->backend);
	free(c);
}
