#include "virtio/virtio_console.h"

#include <stdlib.h>
#include <string.h>

#include "util/le.h"
#include "util/iov.h"

#define VIRTIO_CONSOLE_F_EMERG_WRITE 2
#define RX_QUEUE 0
#define TX_QUEUE 1
#define CONFIG_SIZE 12 /* cols, rows, max_nr_ports, emerg_wr */
#define EMERG_WR_OFFSET 8

struct virtio_console {
	struct virtio_device vdev;
	struct virtio_console_io io;
	uint8_t config[CONFIG_SIZE];
	struct virtq_elem elem;
};

static void console_tx(struct virtio_console *c)
{
	struct virtio_device *vdev = &c->vdev;
	struct virtq *vq = &vdev->vq[TX_QUEUE];
	struct virtq_elem *e = &c->elem;
	unsigned int i;
	int r;

	while ((r = virtq_pop(vq, e)) > 0) {
		for (i = 0; i < e->out_num; i++)
			c->io.output(c->io.ctx, e->iov[i].iov_base, e->iov[i].iov_len);
		virtq_push(vq, e->head, 0);
	}
	if (r < 0)
		virtio_set_needs_reset(vdev, "malformed descriptor chain");
	virtio_notify(vdev, TX_QUEUE);
}

static void console_queue_notify(struct virtio_device *vdev, unsigned int q)
{
	struct virtio_console *c = (struct virtio_console *)vdev;

	if (q == TX_QUEUE)
		console_tx(c);
	else
		c->io.rx_space(c->io.ctx); /* new input buffers */
}

size_t virtio_console_receive(struct virtio_device *vdev, const uint8_t *buf, size_t len)
{
	struct virtio_console *c = (struct virtio_console *)vdev;
	struct virtq *vq = &vdev->vq[RX_QUEUE];
	struct virtq_elem *e = &c->elem;
	size_t done = 0;
	int r = 0;

	pthread_mutex_lock(&vdev->lock);
	while (done < len && virtio_running(vdev) && vq->ready && (r = virtq_pop(vq, e)) > 0) {
		size_t n = iov_from_buf(e->iov + e->out_num, e->in_num, 0, buf + done, len - done);

		virtq_push(vq, e->head, (uint32_t)n);
		done += n;
	}
	if (r < 0)
		virtio_set_needs_reset(vdev, "malformed descriptor chain");
	if (done)
		virtio_notify(vdev, RX_QUEUE);
	pthread_mutex_unlock(&vdev->lock);
	return done;
}

static void console_config_read(struct virtio_device *vdev, uint32_t offset, void *data,
				uint32_t size)
{
	struct virtio_console *c = (struct virtio_console *)vdev;

	memcpy(data, c->config + offset, size);
}

static void console_config_write(struct virtio_device *vdev, uint32_t offset, const void *data,
				 uint32_t size)
{
	struct virtio_console *c = (struct virtio_console *)vdev;
	uint8_t ch;

	/* emerg_wr: one character, usable before the queues are set up. */
	if (offset == EMERG_WR_OFFSET && size >= 1 &&
	    virtio_has_feature(vdev, VIRTIO_CONSOLE_F_EMERG_WRITE)) {
		memcpy(&ch, data, 1);
		c->io.output(c->io.ctx, &ch, 1);
	}
}

static const struct virtio_device_ops console_ops = {
	.config_read = console_config_read,
	.config_write = console_config_write,
	.queue_notify = console_queue_notify,
	.destroy = virtio_console_destroy,
};

struct virtio_device *virtio_console_create(const struct virtio_console_io *io)
{
	struct virtio_console *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->io = *io;
	c->vdev.name = "virtio-console";
	c->vdev.device_id = VIRTIO_ID_CONSOLE;
	c->vdev.host_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
				1ULL << VIRTIO_RING_F_EVENT_IDX |
				1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE;
	c->vdev.num_queues = 2;
	c->vdev.queue_max_size[RX_QUEUE] = 128;
	c->vdev.queue_max_size[TX_QUEUE] = 128;
	c->vdev.config_size = CONFIG_SIZE;
	le32_put(c->config + 4, 1); /* max_nr_ports (only read with MULTIPORT) */
	c->vdev.ops = &console_ops;
	return &c->vdev;
}

void virtio_console_destroy(struct virtio_device *vdev)
{
	free(vdev);
}
