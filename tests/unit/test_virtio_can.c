/* The virtio-can device on real virtqueues in fake guest RAM, with its I/O
 * thread, on a Vireo CAN bus (an in-process hub) where a second member
 * plays the rest of the bus: the controller's rules, and a hostile
 * driver (bad messages, chains without a result buffer, buffers outside
 * RAM) that gets NOT_OK or NEEDS_RESET and never crashes anything. */
#include "cmocka_prelude.h"
#include "capture_stderr.h"
#include "can_test.h"
#include "fake_driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "can/canbus_hub.h"
#include "util/le.h"
#include "virtio/virtio_can.h"
#include "virtio/virtio_can_msg.h"

#define RAM_SIZE (1u << 20)
#define TXQ 0
#define RXQ 1
#define CTRLQ 2
#define QSIZE 256
#define BUF_BASE 0x80000u

struct rig {
	char dir[64], path[96];
	struct canbus_hub *hub;
	int hub_stop;
	pthread_t hub_thread;
	struct can_backend *peer; /* the rest of the bus */
	struct fake_driver drv;
	struct virtio_device *vdev;
	int config_notified;
};

static struct rig *g;

static void fake_notify_queue(struct virtio_device *vdev, unsigned int q)
{
	(void)vdev;
	(void)q;
}

static void fake_notify_config(struct virtio_device *vdev)
{
	(void)vdev;
	__atomic_add_fetch(&g->config_notified, 1, __ATOMIC_SEQ_CST);
}

static const struct virtio_transport_ops fake_transport = {
	.notify_queue = fake_notify_queue,
	.notify_config = fake_notify_config,
};

static void *hub_main(void *arg)
{
	struct rig *r = arg;

	canbus_hub_run(r->hub, r->hub_stop);
	return NULL;
}

/* Holds the hub still (its thread ends), so that what members send waits
 * in their sockets; hub_resume() lets it go on. */
static void hub_pause(void)
{
	uint64_t one = 1;

	assert_int_equal(write(g->hub_stop, &one, sizeof(one)), sizeof(one));
	assert_int_equal(pthread_join(g->hub_thread, NULL), 0);
}

static void hub_resume(void)
{
	uint64_t v;

	assert_int_equal(read(g->hub_stop, &v, sizeof(v)), sizeof(v));
	assert_int_equal(pthread_create(&g->hub_thread, NULL, hub_main, g), 0);
}

/* The fake driver's helpers, on this test's rig. */
static uint8_t *gpa(uint64_t a)
{
	return fake_gpa(&g->drv, a);
}

static uint64_t alloc_buf(size_t len)
{
	return fake_alloc(&g->drv, len);
}

static void kick(unsigned int qi)
{
	fake_kick(&g->drv, qi);
}

static uint16_t used_idx(unsigned int qi)
{
	return fake_used_idx(&g->drv, qi);
}

static bool wait_used(unsigned int qi, uint16_t want)
{
	return fake_wait_used(&g->drv, qi, want, 3000);
}

static uint32_t used_len(unsigned int qi, uint16_t i)
{
	uint32_t id, len;

	fake_used_elem(&g->drv, qi, i, &id, &len);
	return len;
}

/* Sends a request (out bytes) with a 1-byte result; returns the result. */
static int request(unsigned int qi, const void *out, uint32_t len)
{
	uint64_t o = alloc_buf(len), res = alloc_buf(1);
	struct seg chain[2] = { { o, len, false }, { res, 1, true } };
	uint16_t before = used_idx(qi), head;
	uint32_t id, used;

	memcpy(gpa(o), out, len);
	*gpa(res) = 0xee;
	head = fake_add_chain(&g->drv, qi, chain, 2);
	kick(qi);
	if (!wait_used(qi, (uint16_t)(before + 1)))
		return -1;
	/* The answer is for this request, not some other chain. */
	fake_used_elem(&g->drv, qi, before, &id, &used);
	assert_int_equal(id, head);
	return *gpa(res);
}

/* Queues a classic 1-byte frame without waiting; returns where its
 * result byte is. */
static uint64_t queue_tx(uint32_t id, uint8_t byte)
{
	uint8_t m[VIRTIO_CAN_HDR_SIZE + 1] = { 0 };
	uint64_t o = alloc_buf(sizeof(m)), res = alloc_buf(1);

	le16_put(m, VIRTIO_CAN_TX);
	le16_put(m + 2, 1);
	le32_put(m + 12, id);
	m[VIRTIO_CAN_HDR_SIZE] = byte;
	memcpy(gpa(o), m, sizeof(m));
	*gpa(res) = 0xee;
	fake_add_chain(&g->drv, TXQ, (struct seg[]){ { o, sizeof(m), false }, { res, 1, true } }, 2);
	return res;
}

static int control(uint16_t type)
{
	uint8_t m[2];

	le16_put(m, type);
	return request(CTRLQ, m, sizeof(m));
}

static int send_frame(uint16_t msg_type, uint32_t flags, uint32_t id, uint16_t len,
		      const void *data)
{
	uint8_t m[VIRTIO_CAN_HDR_SIZE + 64] = { 0 };

	le16_put(m, msg_type);
	le16_put(m + 2, len);
	le32_put(m + 8, flags);
	le32_put(m + 12, id);
	memcpy(m + VIRTIO_CAN_HDR_SIZE, data, len > 64 ? 64 : len);
	return request(TXQ, m, VIRTIO_CAN_HDR_SIZE + (len > 64 ? 64 : len));
}

/* What the rest of the bus got next, within a second (0: nothing). */
static int peer_recv(struct can_msg *m)
{
	int64_t end = now_ms() + 1000;
	enum can_event ev;

	while (next_event(g->peer, &ev, m, (int)(end - now_ms())) == 1)
		if (ev == CAN_EVENT_FRAME)
			return 1;
	return 0;
}

static uint16_t status_bits(void)
{
	uint8_t s[2];

	pthread_mutex_lock(&g->vdev->lock);
	g->vdev->ops->config_read(g->vdev, 0, s, 2);
	pthread_mutex_unlock(&g->vdev->lock);
	return le16_get(s);
}

static int setup(void **state)
{
	struct canbus_hub_options ho = { 0 };
	struct can_options co = { .kind = CAN_BUS };
	struct can_backend *backend;
	struct can_options po = { .kind = CAN_BUS };

	(void)state;
	g = calloc(1, sizeof(*g));
	assert_non_null(g);
	snprintf(g->dir, sizeof(g->dir), "/tmp/vireo-vcan-XXXXXX");
	assert_non_null(mkdtemp(g->dir));
	snprintf(g->path, sizeof(g->path), "%s/bus", g->dir);
	ho.path = g->path;
	g->hub = canbus_hub_open(&ho);
	assert_non_null(g->hub);
	g->hub_stop = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(pthread_create(&g->hub_thread, NULL, hub_main, g), 0);

	co.path = g->path;
	co.fd = true;
	backend = can_backend_open(&co);
	assert_non_null(backend);
	g->vdev = virtio_can_create(backend, 0);
	assert_non_null(g->vdev);
	po.path = g->path;
	po.fd = true;
	g->peer = can_backend_open(&po);
	assert_non_null(g->peer);

	/* What Linux's driver takes: everything offered (classic, FD, RTR,
	 * LATE_TX_ACK). */
	fake_driver_start(&g->drv, g->vdev, &fake_transport, RAM_SIZE, ~0ULL, 3, QSIZE, BUF_BASE);
	return 0;
}

static int teardown(void **state)
{
	uint64_t one = 1;

	(void)state;
	fake_driver_stop(&g->drv);
	virtio_can_destroy(g->vdev);
	can_backend_close(g->peer);
	assert_int_equal(write(g->hub_stop, &one, sizeof(one)), sizeof(one));
	pthread_join(g->hub_thread, NULL);
	canbus_hub_close(g->hub);
	close(g->hub_stop);
	rmdir(g->dir);
	free(g);
	g = NULL;
	return 0;
}

static void test_controller_rules(void **state)
{
	static const uint8_t data[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";
	struct can_msg m, out = { .id = 0x1abcdef, .flags = CAN_MSG_EXT, .len = 5 };
	uint64_t rx[2];

	(void)state;
	/* The controller starts STOPPED: TX refused, nothing on the bus. */
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x123, 2, data), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(peer_recv(&m), 0);
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);

	/* A good frame reaches the bus exactly; LATE_TX_ACK answers OK. */
	assert_int_equal(send_frame(VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x7ff, 64, data),
			 VIRTIO_CAN_RESULT_OK);
	assert_int_equal(peer_recv(&m), 1);
	assert_int_equal(m.id, 0x7ff);
	assert_int_equal(m.flags & (CAN_MSG_FD | CAN_MSG_EXT | CAN_MSG_RTR), CAN_MSG_FD);
	assert_int_equal(m.len, 64);
	assert_memory_equal(m.data, data, 64);

	/* What the spec says to refuse gets NOT_OK and stays off the bus. */
	assert_int_equal(send_frame(0x0777, 0, 0x1, 1, data), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0x1, 0x1, 1, data), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x800, 1, data), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x1, 9, data), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(send_frame(VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x1, 13, data),
			 VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(control(0x0999), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(peer_recv(&m), 0);

	/* From the bus to the driver: one RX buffer, the frame in it. */
	rx[0] = alloc_buf(VIRTIO_CAN_HDR_SIZE + 64);
	fake_add_chain(&g->drv, RXQ, (struct seg[]){ { rx[0], VIRTIO_CAN_HDR_SIZE + 64, true } }, 1);
	kick(RXQ);
	memcpy(out.data, "hello", 5);
	assert_int_equal(can_backend_send(g->peer, &out), 0);
	assert_true(wait_used(RXQ, 1));
	assert_int_equal(used_len(RXQ, 0), VIRTIO_CAN_HDR_SIZE + 5);
	assert_int_equal(le16_get(gpa(rx[0])), VIRTIO_CAN_RX);
	assert_int_equal(le32_get(gpa(rx[0]) + 8), VIRTIO_CAN_FLAGS_EXTENDED);
	assert_int_equal(le32_get(gpa(rx[0]) + 12), 0x1abcdef);
	assert_memory_equal(gpa(rx[0]) + VIRTIO_CAN_HDR_SIZE, "hello", 5);

	/* An RX buffer too small for the frame comes back empty. */
	rx[1] = alloc_buf(8);
	fake_add_chain(&g->drv, RXQ, (struct seg[]){ { rx[1], 8, true } }, 1);
	kick(RXQ);
	assert_int_equal(can_backend_send(g->peer, &out), 0);
	assert_true(wait_used(RXQ, 2));
	assert_int_equal(used_len(RXQ, 1), 0);

	/* STOP: TX refused again. */
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x10, 0, data), VIRTIO_CAN_RESULT_NOT_OK);
}

static void test_bus_off(void **state)
{
	char *argv[] = { "canbus", g->path, "--inject-busoff", NULL };
	static const uint8_t data[8] = { 1 };
	struct can_msg m;
	int i;

	(void)state;
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(canbus_main(3, argv), 0);
	for (i = 0; i < 2000 && !(status_bits() & VIRTIO_CAN_S_CTRL_BUSOFF); i++)
		usleep(1000);
	assert_true(status_bits() & VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_true(__atomic_load_n(&g->config_notified, __ATOMIC_SEQ_CST) > 0);
	/* Bus-off stops the controller ... */
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x10, 1, data), VIRTIO_CAN_RESULT_NOT_OK);
	/* ... until the driver starts it again. */
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);
	assert_false(status_bits() & VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x10, 1, data), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(peer_recv(&m), 1);
	assert_int_equal(m.id, 0x10);
}

/* A snapshot with frames from the bus waiting (no RX buffer yet: one held
 * by the device, the others still in the backend, which the save takes)
 * and the controller started: a device loaded from the record (after a
 * reset, as virtio-pci's load does it) hands the waiting frames, in
 * order, to the first RX buffers and is still started. A record with a
 * bad frame, or cut anywhere, is refused. */
static void test_state_pending_frame(void **state)
{
	static const uint8_t data[8] = { 7 };
	struct can_msg m, out = { .len = 3 };
	struct virtio_device *vdev = g->vdev;
	struct state_writer w;
	struct state_reader rd;
	struct error err = { 0 }, bad_err = { 0 };
	int activated, bad, good, short_loaded = 0;
	uint64_t rx;
	size_t n;
	uint64_t rxs[3];
	int i;

	(void)state;
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);
	memcpy(out.data, "abc", 3);
	for (i = 0; i < 3; i++) {
		out.id = 0x321 + (uint32_t)i;
		assert_int_equal(can_backend_send(g->peer, &out), 0);
	}
	/* Saved until the record holds all three (the hub passes them on
	 * in its own time): le16 count at offset 3. */
	for (i = 0; i < 1000; i++) {
		bool held;

		pthread_mutex_lock(&vdev->lock);
		state_writer_init(&w);
		vdev->ops->save(vdev, &w);
		pthread_mutex_unlock(&vdev->lock);
		held = w.len > 4 && w.buf[3] == 3;
		if (held)
			break;
		state_writer_free(&w);
		usleep(1000);
	}
	assert_true(i < 1000); /* the frame waits in the device */
	/* Checked once the lock is released (a failed assertion must not
	 * leave it held for the teardown). */
	ioloop_stop(&vdev->loop);
	pthread_mutex_lock(&vdev->lock);
	vdev->ops->reset(vdev);
	activated = vdev->ops->activate(vdev);
	for (n = 0; n < w.len; n++) {
		state_reader_init(&rd, w.buf, n);
		short_loaded += vdev->ops->load(vdev, &rd, &err) == 0;
	}
	/* The first entry: busoff flag at 5, le32 id at 6, flags, len. */
	w.buf[9] = 0xff; /* identifier beyond 29 bits */
	state_reader_init(&rd, w.buf, w.len);
	bad = vdev->ops->load(vdev, &rd, &bad_err);
	w.buf[9] = 0;
	state_reader_init(&rd, w.buf, w.len);
	good = vdev->ops->load(vdev, &rd, &err);
	pthread_mutex_unlock(&vdev->lock);
	assert_int_equal(activated, 0);
	assert_int_equal(short_loaded, 0);
	assert_int_equal(bad, -1);
	assert_non_null(strstr(bad_err.msg, "not a valid CAN frame"));
	if (good < 0)
		fail_msg("load: %s", err.msg);
	assert_int_equal(ioloop_start(&vdev->loop), 0);

	for (i = 0; i < 3; i++) {
		rx = rxs[i] = alloc_buf(VIRTIO_CAN_HDR_SIZE + 8);
		fake_add_chain(&g->drv, RXQ, (struct seg[]){ { rx, VIRTIO_CAN_HDR_SIZE + 8, true } },
			       1);
	}
	kick(RXQ);
	assert_true(wait_used(RXQ, 3));
	for (i = 0; i < 3; i++) {
		assert_int_equal(le32_get(gpa(rxs[i]) + 12), 0x321 + i);
		assert_memory_equal(gpa(rxs[i]) + VIRTIO_CAN_HDR_SIZE, "abc", 3);
	}
	/* Still started. */
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x10, 1, data), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(peer_recv(&m), 1);
	state_writer_free(&w);
}

/* STOP with frames pending: the bus is stalled (the hub does not read),
 * the driver queues 40 frames. The device hands the bus only its window
 * of them, answers nothing while none is confirmed, and at STOP answers
 * all 40 NOT_OK; when the bus goes on, none of them reaches it, and a
 * frame sent after START does. */
static void test_stop_cancels_pending(void **state)
{
	static const uint8_t data[1] = { 0xff };
	struct canbus_hub_stats st;
	uint64_t res[40];
	uint16_t before;
	struct can_msg m;
	unsigned int i;

	(void)state;
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);
	hub_pause();
	before = used_idx(TXQ);
	for (i = 0; i < 40; i++)
		res[i] = queue_tx(0x6aa, (uint8_t)i);
	kick(TXQ);
	usleep(100 * 1000);
	assert_int_equal(used_idx(TXQ), before); /* LATE_TX_ACK: nothing confirmed */
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	assert_true(wait_used(TXQ, (uint16_t)(before + 40)));
	for (i = 0; i < 40; i++)
		assert_int_equal(*gpa(res[i]), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);
	hub_resume();
	assert_int_equal(send_frame(VIRTIO_CAN_TX, 0, 0x6ab, 1, data), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(peer_recv(&m), 1);
	assert_int_equal(m.id, 0x6ab);
	assert_int_equal(peer_recv(&m), 0);
	/* The hub withdrew exactly the window the device had handed it. */
	hub_pause();
	canbus_hub_stats(g->hub, &st);
	assert_int_equal(st.cancelled, 16);
	hub_resume();
}

static void test_hostile_chains(void **state)
{
	struct captured c;
	uint64_t o = 0;
	int saved;

	(void)state;
	assert_int_equal(control(VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);
	saved = stderr_begin();
	/* A TX request with nowhere to put the result. */
	o = alloc_buf(VIRTIO_CAN_HDR_SIZE);
	fake_add_chain(&g->drv, TXQ, (struct seg[]){ { o, VIRTIO_CAN_HDR_SIZE, false } }, 1);
	kick(TXQ);
	stderr_end(saved, &c);
	assert_true(g->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_non_null(strstr(c.text, "needs a reset"));
	/* Once broken, further kicks do nothing (and crash nothing). */
	kick(TXQ);
	kick(CTRLQ);

	/* After a reset: a buffer outside guest RAM is a broken chain too. */
	pthread_mutex_lock(&g->vdev->lock);
	g->vdev->status &= (uint8_t)~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	g->vdev->needs_reset_logged = false;
	pthread_mutex_unlock(&g->vdev->lock);
	saved = stderr_begin();
	fake_add_chain(&g->drv, CTRLQ,
		       (struct seg[]){ { RAM_SIZE - 1, 2, false }, { alloc_buf(1), 1, true } }, 2);
	kick(CTRLQ);
	stderr_end(saved, &c);
	assert_true(g->vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_controller_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bus_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_pending_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_cancels_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
