#include "virtio/virtio_rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

/* Per request: enough for any driver, small enough not to hog the thread. */
#define RNG_MAX_PER_REQUEST 65536

struct virtio_rng {
	struct virtio_device vdev;
	struct virtq_elem elem;
	uint64_t bytes;
};

static size_t fill(const struct iovec *iov, unsigned int n, size_t limit)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < limit; i++) {
		size_t want = iov[i].iov_len < limit - done ? iov[i].iov_len : limit - done;
		size_t got = 0;

		while (got < want) {
			ssize_t r = getrandom((uint8_t *)iov[i].iov_base + got, want - got, 0);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return done + got;
			got += (size_t)r;
		}
		done += got;
	}
	return done;
}

static void rng_queue_notify(struct virtio_device *vdev, unsigned int q)
{
	struct virtio_rng *rng = (struct virtio_rng *)vdev;
	struct virtq *vq = &vdev->vq[q];
	int r;

	while ((r = virtq_pop(vq, &rng->elem)) > 0) {
		struct virtq_elem *e = &rng->elem;
		size_t n = fill(e->iov + e->out_num, e->in_num, RNG_MAX_PER_REQUEST);

		rng->bytes += n;
		virtq_push(vq, e->head, (uint32_t)n);
	}
	if (r < 0)
		virtio_set_needs_reset(vdev, "malformed descriptor chain");
	virtio_notify(vdev, q);
}

static const struct virtio_device_ops rng_ops = {
	.queue_notify = rng_queue_notify,
	.destroy = virtio_rng_destroy,
};

struct virtio_device *virtio_rng_create(void)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (!rng)
		return NULL;
	rng->vdev.name = "virtio-rng";
	rng->vdev.device_id = VIRTIO_ID_RNG;
	rng->vdev.host_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
				  1ULL << VIRTIO_RING_F_EVENT_IDX;
	rng->vdev.num_queues = 1;
	rng->vdev.queue_max_size[0] = 64;
	rng->vdev.ops = &rng_ops;
	return &rng->vdev;
}

void virtio_rng_destroy(struct virtio_device *vdev)
{
	free(vdev);
}
