/* A virtio driver played by the device unit tests: the device's queues
 * laid out in fake guest RAM, driven as virtio-pci would up to DRIVER_OK
 * (features, rings, activate, a kick per queue), chains of direct
 * descriptors made available, the used ring read back. The device runs
 * in its own I/O thread, as in vireo. Include after cmocka_prelude.h. */
#ifndef VIREO_TESTS_FAKE_DRIVER_H
#define VIREO_TESTS_FAKE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "util/le.h"
#include "virtio/virtio.h"
#include "mem/guest_mem.h"

#define FAKE_MAX_QUEUES 4

struct fake_ring {
	uint64_t desc, avail, used;
	uint16_t next_desc, avail_idx;
};

struct fake_driver {
	struct guest_mem mem;
	uint64_t ram_size;
	struct virtio_device *vdev;
	unsigned int nq;
	uint16_t qsize;
	struct fake_ring ring[FAKE_MAX_QUEUES];
	uint64_t next_buf;
};

/* One buffer of a chain. */
struct seg {
	uint64_t addr;
	uint32_t len;
	bool write; /* device-writable */
};

static inline uint8_t *fake_gpa(struct fake_driver *d, uint64_t a)
{
	return d->mem.host + a;
}

/* A fresh buffer of len bytes, 64-byte aligned, from the buffer area. */
static inline uint64_t fake_alloc(struct fake_driver *d, size_t len)
{
	uint64_t a = d->next_buf;

	d->next_buf += (len + 63) & ~(size_t)63;
	assert_true(d->next_buf <= d->ram_size);
	return a;
}

/* Makes a chain of direct descriptors available; returns its head. */
static inline uint16_t fake_add_chain(struct fake_driver *d, unsigned int qi, const struct seg *s,
				      unsigned int n)
{
	struct fake_ring *v = &d->ring[qi];
	uint16_t head = v->next_desc % d->qsize;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint16_t k = (uint16_t)((head + i) % d->qsize);
		uint8_t *p = fake_gpa(d, v->desc + 16u * k);

		le64_put(p, s[i].addr);
		le32_put(p + 8, s[i].len);
		le16_put(p + 12, (uint16_t)((s[i].write ? 2 : 0) | (i + 1 < n ? 1 : 0)));
		le16_put(p + 14, (uint16_t)((k + 1) % d->qsize));
	}
	v->next_desc = (uint16_t)(v->next_desc + n);
	le16_put(fake_gpa(d, v->avail + 4 + 2u * (v->avail_idx % d->qsize)), head);
	v->avail_idx++;
	__atomic_store_n((uint16_t *)fake_gpa(d, v->avail + 2), v->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static inline uint16_t fake_used_idx(struct fake_driver *d, unsigned int qi)
{
	return __atomic_load_n((uint16_t *)fake_gpa(d, d->ring[qi].used + 2), __ATOMIC_ACQUIRE);
}

/* Used ring entry i (counted from 0 since the start). */
static inline void fake_used_elem(struct fake_driver *d, unsigned int qi, uint16_t i, uint32_t *id,
				  uint32_t *len)
{
	uint8_t *e = fake_gpa(d, d->ring[qi].used + 4 + 8u * (i % d->qsize));

	*id = le32_get(e);
	*len = le32_get(e + 4);
}

/* A queue notification, as the device's ioeventfd would deliver it. */
static inline void fake_kick(struct fake_driver *d, unsigned int qi)
{
	pthread_mutex_lock(&d->vdev->lock);
	if (virtio_running(d->vdev) && d->vdev->vq[qi].ready)
		d->vdev->ops->queue_notify(d->vdev, qi);
	pthread_mutex_unlock(&d->vdev->lock);
}

/* Waits up to timeout_ms for the used index to reach want. */
static inline bool fake_wait_used(struct fake_driver *d, unsigned int qi, uint16_t want,
				  int timeout_ms)
{
	int i;

	for (i = 0; i < timeout_ms; i++) {
		if ((uint16_t)(fake_used_idx(d, qi) - want) < 0x8000)
			return true;
		usleep(1000);
	}
	return false;
}

/* Maps ram_size bytes of guest RAM and brings vdev up to DRIVER_OK as
 * virtio-pci would: it accepts the offered features that are in features,
 * lays out nq queues of qsize (rings from 0x10000, buffers from
 * buf_base), activates the device and kicks every queue. */
static inline void fake_driver_start(struct fake_driver *d, struct virtio_device *vdev,
				     const struct virtio_transport_ops *transport,
				     uint64_t ram_size, uint64_t features, unsigned int nq,
				     uint16_t qsize, uint64_t buf_base)
{
	unsigned int i;

	assert_true(nq <= FAKE_MAX_QUEUES);
	memset(d, 0, sizeof(*d));
	d->vdev = vdev;
	d->ram_size = ram_size;
	d->nq = nq;
	d->qsize = qsize;
	d->next_buf = buf_base;
	assert_int_equal(guest_mem_map(&d->mem, ram_size), 0);
	pthread_mutex_init(&vdev->lock, NULL);
	vdev->mem = &d->mem;
	vdev->transport = transport;
	assert_int_equal(ioloop_init(&vdev->loop, vdev->name), 0);
	assert_int_equal(ioloop_start(&vdev->loop), 0);

	pthread_mutex_lock(&vdev->lock);
	vdev->guest_features = vdev->host_features & features;
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	for (i = 0; i < nq; i++) {
		struct virtq *q = &vdev->vq[i];

		d->ring[i].desc = 0x10000u + 0x10000u * i;
		d->ring[i].avail = d->ring[i].desc + 16u * qsize;
		d->ring[i].used = d->ring[i].avail + 0x1000u;
		assert_true(d->ring[i].used + 0x1000u <= buf_base);
		q->size = qsize;
		q->desc_gpa = d->ring[i].desc;
		q->avail_gpa = d->ring[i].avail;
		q->used_gpa = d->ring[i].used;
		q->event_idx = virtio_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX);
		q->indirect = virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC);
		q->mem = &d->mem;
		assert_int_equal(virtq_map(q, &d->mem), 0);
		q->ready = true;
	}
	vdev->status |= VIRTIO_STATUS_DRIVER_OK;
	assert_int_equal(vdev->ops->activate(vdev), 0);
	pthread_mutex_unlock(&vdev->lock);
	/* The transport kicks every ready queue after DRIVER_OK. */
	for (i = 0; i < nq; i++)
		fake_kick(d, i);
}

/* Stops the I/O thread, resets the device and its queues, and unmaps the
 * RAM; the caller destroys the device. */
static inline void fake_driver_stop(struct fake_driver *d)
{
	struct virtio_device *vdev = d->vdev;
	unsigned int i;

	ioloop_stop(&vdev->loop);
	pthread_mutex_lock(&vdev->lock);
	vdev->ops->reset(vdev);
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		virtq_reset(&vdev->vq[i]);
	vdev->status = 0;
	pthread_mutex_unlock(&vdev->lock);
	ioloop_destroy(&vdev->loop);
	pthread_mutex_destroy(&vdev->lock);
	guest_mem_unmap(&d->mem);
}

#endif
