#include "virtio/virtio_pci.h"

#include "virtio/virtio_blk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/eventfd.h"
#include "util/le.h"
#include "util/log.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_MSI_NO_VECTOR 0xffff

/* Capability types (4.1.4). */
#define CAP_COMMON_CFG 1
#define CAP_NOTIFY_CFG 2
#define CAP_ISR_CFG 3
#define CAP_DEVICE_CFG 4
#define CAP_PCI_CFG 5
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* BAR 0 layout: one page per structure. */
#define BAR_SIZE 0x8000
#define COMMON_OFF 0x0000
#define COMMON_LEN 0x3c
#define ISR_OFF 0x1000
#define ISR_LEN 1
#define ISR_QUEUE 1u  /* a queue's interrupt (4.1.4.5) */
#define ISR_CONFIG 2u /* the device configuration changed */
#define DEVCFG_OFF 0x2000
#define DEVCFG_MAX 0x1000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x5000
#define MSIX_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)

/* Configuration space layout of our capabilities. */
#define CAP_MSIX 0x40
#define CAP_COMMON 0x50
#define CAP_NOTIFY 0x60
#define CAP_ISR 0x78
#define CAP_DEVCFG 0x88
#define CAP_PCICFG 0x98 /* 20 bytes: the capability, then pci_cfg_data */
#define PCICFG_DATA (CAP_PCICFG + 16)
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASK 0x4000
#define MSIX_ENTRY_MASKED 1

/* Common configuration fields (4.1.4.3). */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_CFGGEN 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF 0x1e
#define CC_Q_DESCLO 0x20
#define CC_Q_DESCHI 0x24
#define CC_Q_AVAILLO 0x28
#define CC_Q_AVAILHI 0x2c
#define CC_Q_USEDLO 0x30
#define CC_Q_USEDHI 0x34
#define CC_Q_NDATA 0x38
#define CC_Q_RESET 0x3a

struct vp_queue {
	struct virtio_pci *vp;
	unsigned int index;
	uint16_t msix_vector;
	int kick_fd;		 /* eventfd: the guest notified this queue */
	uint64_t ioeventfd_addr; /* where it is bound in KVM, or 0 */
	struct ioloop_watch watch;
};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
	struct irq_msi msi; /* the message, routed (irqfd) where KVM can */
	bool msi_open;
};

struct virtio_pci {
	struct device dev;
	struct pci_device pci;
	int slot; /* on the bus, or -1 */
	bool loop_ready; /* vdev->loop initialised (realized, or partly) */
	struct virtio_device *vdev;
	struct virtio_pci_env env;
	uint32_t device_feature_select;
	uint32_t driver_feature_select;
	uint64_t driver_features;
	uint16_t queue_select;
	uint16_t config_vector;
	struct vp_queue q[VIRTIO_MAX_QUEUES];
	unsigned int nvectors;
	struct msix_entry msix[MSIX_MAX_VECTORS];
	uint64_t pba;
	uint8_t isr;
	struct irq_line intx; /* on the GSI the DSDT's _PRT gives the slot */
	bool intx_asserted;
};

/* ---- interrupts ------------------------------------------------------ */

static bool msix_enabled(const struct virtio_pci *vp)
{
	return le16_get(vp->pci.config + CAP_MSIX + 2) & MSIX_CTRL_ENABLE;
}

static bool msix_function_masked(const struct virtio_pci *vp)
{
	return le16_get(vp->pci.config + CAP_MSIX + 2) & MSIX_CTRL_MASK;
}

static void set_intx(struct virtio_pci *vp, bool level)
{
	if (vp->intx_asserted == level)
		return;
	vp->intx_asserted = level;
	irq_line_set(&vp->intx, level);
}

/* INTx is level-triggered and follows the ISR (4.1.4.5): the line is high
 * exactly while an ISR bit is set, MSI-X is off and the command register's
 * Interrupt Disable is clear (PCI 3.0, 6.2.2). Called, with vdev->lock,
 * after any of the three changes: so turning MSI-X or Interrupt Disable
 * off again brings back an interrupt the driver has not acknowledged
 * yet, rather than losing it. */
static void update_intx(struct virtio_pci *vp)
{
	bool disabled = msix_enabled(vp) ||
			(le16_get(vp->pci.config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);

	set_intx(vp, vp->isr != 0 && !disabled);
}

static void fire_vector(struct virtio_pci *vp, uint16_t vector)
{
	struct msix_entry *e;

	if (vector >= vp->nvectors)
		return; /* VIRTIO_MSI_NO_VECTOR: the driver wants none */
	e = &vp->msix[vector];
	if (msix_function_masked(vp) || (e->ctrl & MSIX_ENTRY_MASKED)) {
		vp->pba |= 1ULL << vector; /* delivered when unmasked */
		return;
	}
	irq_msi_fire(&e->msi);
}

static void interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (msix_enabled(vp)) {
		fire_vector(vp, vector);
	} else {
		vp->isr |= isr_bit;
		update_intx(vp);
	}
}

static void transport_notify_queue(struct virtio_device *vdev, unsigned int q)
{
	struct virtio_pci *vp = vdev->transport_priv;

	interrupt(vp, vp->q[q].msix_vector, ISR_QUEUE);
}

static void transport_notify_config(struct virtio_device *vdev)
{
	struct virtio_pci *vp = vdev->transport_priv;

	interrupt(vp, vp->config_vector, ISR_CONFIG);
}

static const struct virtio_transport_ops transport_ops = {
	.notify_queue = transport_notify_queue,
	.notify_config = transport_notify_config,
};

/* Pending vectors go out once nothing masks them any more. */
static void deliver_pending(struct virtio_pci *vp)
{
	unsigned int v;

	if (!msix_enabled(vp) || msix_function_masked(vp))
		return;
	for (v = 0; v < vp->nvectors; v++) {
		if ((vp->pba >> v & 1) && !(vp->msix[v].ctrl & MSIX_ENTRY_MASKED)) {
			vp->pba &= ~(1ULL << v);
			fire_vector(vp, (uint16_t)v);
		}
	}
}

static void update_route(struct virtio_pci *vp, unsigned int v)
{
	struct msix_entry *e = &vp->msix[v];
	uint64_t addr = (uint64_t)e->addr_hi << 32 | e->addr_lo;

	irq_msi_program(&e->msi, addr, e->data);
}

/* ---- queue notifications --------------------------------------------- */

static void queue_kicked(void *ctx, uint32_t events)
{
	struct vp_queue *pq = ctx;
	struct virtio_device *vdev = pq->vp->vdev;

	(void)events;
	if (!eventfd_consume(pq->kick_fd))
		return;
	pthread_mutex_lock(&vdev->lock);
	if (virtio_running(vdev) && vdev->vq[pq->index].ready) {
		vdev->notifications++;
		vdev->ops->queue_notify(vdev, pq->index);
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* Binds each queue's eventfd to its notify address wherever the BAR is
 * now (the guest may move it, or turn decoding off). Called under the
 * PCI host lock or before vCPUs run. */
static void map_ioeventfds(struct virtio_pci *vp)
{
	uint64_t base = pci_bar_address(&vp->pci, 0);
	unsigned int i;

	if (!vp->env.use_ioeventfd)
		return;
	for (i = 0; i < vp->vdev->num_queues; i++) {
		struct vp_queue *pq = &vp->q[i];
		uint64_t addr = base ? base + NOTIFY_OFF + NOTIFY_MULT * i : 0;

		if (pq->ioeventfd_addr == addr)
			continue;
		if (pq->ioeventfd_addr)
			kvm_ioeventfd(vp->env.kvm, pq->kick_fd, pq->ioeventfd_addr, 2, false);
		pq->ioeventfd_addr = 0;
		if (addr && kvm_ioeventfd(vp->env.kvm, pq->kick_fd, addr, 2, true) == 0)
			pq->ioeventfd_addr = addr;
	}
}

/* ---- device status and reset ----------------------------------------- */

static void reset_device(struct virtio_pci *vp)
{
	struct virtio_device *vdev = vp->vdev;
	unsigned int i;

	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		virtq_reset(&vdev->vq[i]);
		vdev->vq[i].size = vdev->queue_max_size[i];
		vp->q[i].msix_vector = VIRTIO_MSI_NO_VECTOR;
	}
	vdev->status = 0;
	vdev->guest_features = 0;
	vdev->needs_reset_logged = false;
	vp->driver_features = 0;
	vp->device_feature_select = vp->driver_feature_select = 0;
	vp->queue_select = 0;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	vp->pba = 0;
	set_intx(vp, false);
}

/* The I/O thread looks at every ready queue once, as if kicked: for
 * buffers queued before DRIVER_OK, or a kick a snapshot did not carry. */
static void kick_ready_queues(struct virtio_pci *vp)
{
	struct virtio_device *vdev = vp->vdev;

	for (unsigned int i = 0; i < vdev->num_queues; i++)
		if (vdev->vq[i].ready)
			eventfd_signal(vp->q[i].kick_fd);
}

static void write_status(struct virtio_pci *vp, uint8_t status)
{
	struct virtio_device *vdev = vp->vdev;
	uint8_t added = status & ~vdev->status;

	if (status == 0) {
		reset_device(vp);
		return;
	}
	if (added & VIRTIO_STATUS_FEATURES_OK) {
		/* Only what we offered, and only the 1.x interface. */
		if ((vp->driver_features & ~vdev->host_features) ||
		    !(vp->driver_features & (1ULL << VIRTIO_F_VERSION_1)) ||
		    (vdev->status & VIRTIO_STATUS_DRIVER_OK))
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		else
			vdev->guest_features = vp->driver_features;
	}
	/* The driver may not clear bits (only reset does), and NEEDS_RESET
	 * is ours to set. */
	vdev->status = (uint8_t)((vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) |
				 (status & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) | vdev->status);
	if ((added & VIRTIO_STATUS_DRIVER_OK) && (vdev->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)) {
		if (vdev->ops->activate && vdev->ops->activate(vdev) < 0) {
			virtio_set_needs_reset(vdev, "could not start");
			return;
		}
		/* Buffers the driver queued before DRIVER_OK. */
		kick_ready_queues(vp);
	}
}

static void enable_queue(struct virtio_pci *vp, unsigned int i)
{
	struct virtio_device *vdev = vp->vdev;
	struct virtq *q = &vdev->vq[i];

	if (q->ready || !(vdev->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	q->event_idx = virtio_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX);
	q->indirect = virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC);
	if (q->size > vdev->queue_max_size[i] || virtq_map(q, vdev->mem) < 0) {
		virtio_set_needs_reset(vdev, "queue %u: invalid size or ring address", i);
		return;
	}
	q->ready = true;
}

/* ---- common configuration --------------------------------------------- */

static uint64_t common_read(struct virtio_pci *vp, uint64_t off, unsigned int size)
{
	struct virtio_device *vdev = vp->vdev;
	unsigned int qs = vp->queue_select;
	bool qvalid = qs < vdev->num_queues;
	struct virtq *q = qvalid ? &vdev->vq[qs] : NULL;

	switch (off) {
	case CC_DFSELECT:
		return vp->device_feature_select;
	case CC_DF:
		return vp->device_feature_select < 2
			       ? (uint32_t)(vdev->host_features >> (32 * vp->device_feature_select))
			       : 0;
	case CC_GFSELECT:
		return vp->driver_feature_select;
	case CC_GF:
		return vp->driver_feature_select < 2
			       ? (uint32_t)(vp->driver_features >> (32 * vp->driver_feature_select))
			       : 0;
	case CC_MSIX:
		return vp->config_vector;
	case CC_NUMQ:
		return vdev->num_queues;
	case CC_STATUS:
		return vdev->status;
	case CC_CFGGEN:
		return vdev->config_generation;
	case CC_Q_SELECT:
		return vp->queue_select;
	case CC_Q_SIZE:
		return q ? q->size : 0; /* 0: no such queue */
	case CC_Q_MSIX:
		return qvalid ? vp->q[qs].msix_vector : VIRTIO_MSI_NO_VECTOR;
	case CC_Q_ENABLE:
		return q ? q->ready : 0;
	case CC_Q_NOFF:
	case CC_Q_NDATA:
		return qs;
	case CC_Q_DESCLO:
		return q ? (uint32_t)q->desc_gpa : 0;
	case CC_Q_DESCHI:
		return q ? (uint32_t)(q->desc_gpa >> 32) : 0;
	case CC_Q_AVAILLO:
		return q ? (uint32_t)q->avail_gpa : 0;
	case CC_Q_AVAILHI:
		return q ? (uint32_t)(q->avail_gpa >> 32) : 0;
	case CC_Q_USEDLO:
		return q ? (uint32_t)q->used_gpa : 0;
	case CC_Q_USEDHI:
		return q ? (uint32_t)(q->used_gpa >> 32) : 0;
	default:
		(void)size;
		return 0;
	}
}

static void set_lo(uint64_t *v, uint32_t lo)
{
	*v = (*v & ~0xffffffffULL) | lo;
}

static void set_hi(uint64_t *v, uint32_t hi)
{
	*v = (*v & 0xffffffffULL) | (uint64_t)hi << 32;
}

static void common_write(struct virtio_pci *vp, uint64_t off, uint64_t v)
{
	struct virtio_device *vdev = vp->vdev;
	unsigned int qs = vp->queue_select;
	struct virtq *q = qs < vdev->num_queues ? &vdev->vq[qs] : NULL;
	/* Queue fields are read-only once the queue is enabled. */
	struct virtq *wq = q && !q->ready ? q : NULL;

	switch (off) {
	case CC_DFSELECT:
		vp->device_feature_select = (uint32_t)v;
		break;
	case CC_GFSELECT:
		vp->driver_feature_select = (uint32_t)v;
		break;
	case CC_GF:
		if (vdev->status & VIRTIO_STATUS_FEATURES_OK)
			break;
		if (vp->driver_feature_select == 0)
			set_lo(&vp->driver_features, (uint32_t)v);
		else if (vp->driver_feature_select == 1)
			set_hi(&vp->driver_features, (uint32_t)v);
		break;
	case CC_MSIX:
		vp->config_vector = (uint16_t)v < vp->nvectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case CC_STATUS:
		write_status(vp, (uint8_t)v);
		break;
	case CC_Q_SELECT:
		vp->queue_select = (uint16_t)v;
		break;
	case CC_Q_SIZE:
		if (wq)
			wq->size = (uint16_t)v;
		break;
	case CC_Q_MSIX:
		if (q)
			vp->q[qs].msix_vector =
				(uint16_t)v < vp->nvectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case CC_Q_ENABLE:
		if (q && v == 1)
			enable_queue(vp, qs);
		break;
	case CC_Q_DESCLO:
		if (wq)
			set_lo(&wq->desc_gpa, (uint32_t)v);
		break;
	case CC_Q_DESCHI:
		if (wq)
			set_hi(&wq->desc_gpa, (uint32_t)v);
		break;
	case CC_Q_AVAILLO:
		if (wq)
			set_lo(&wq->avail_gpa, (uint32_t)v);
		break;
	case CC_Q_AVAILHI:
		if (wq)
			set_hi(&wq->avail_gpa, (uint32_t)v);
		break;
	case CC_Q_USEDLO:
		if (wq)
			set_lo(&wq->used_gpa, (uint32_t)v);
		break;
	case CC_Q_USEDHI:
		if (wq)
			set_hi(&wq->used_gpa, (uint32_t)v);
		break;
	default:
		break; /* read-only or reserved */
	}
}

/* Fields have natural sizes; a 64-bit access to an address pair is split
 * in two, anything else misaligned is ignored (reads as 0). */
static bool common_access_ok(uint64_t off, unsigned int size)
{
	if (off >= COMMON_LEN || (off & (size - 1)))
		return false;
	if (off < CC_MSIX || (off >= CC_Q_DESCLO && off < CC_Q_NDATA))
		return size == 4 || size == 8;
	if (off == CC_STATUS || off == CC_CFGGEN)
		return size == 1;
	return size == 2;
}

/* ---- BAR 0 ------------------------------------------------------------ */

static uint64_t msix_read(struct virtio_pci *vp, uint64_t off, unsigned int size)
{
	unsigned int v = (unsigned int)(off / 16);
	uint32_t w;

	if (size != 4 || v >= vp->nvectors)
		return 0;
	switch (off % 16) {
	case 0:
		w = vp->msix[v].addr_lo;
		break;
	case 4:
		w = vp->msix[v].addr_hi;
		break;
	case 8:
		w = vp->msix[v].data;
		break;
	default:
		w = vp->msix[v].ctrl;
		break;
	}
	return w;
}

static void msix_write(struct virtio_pci *vp, uint64_t off, unsigned int size, uint64_t value)
{
	unsigned int v = (unsigned int)(off / 16);
	struct msix_entry *e;

	if (size != 4 || v >= vp->nvectors)
		return;
	e = &vp->msix[v];
	switch (off % 16) {
	case 0:
		e->addr_lo = (uint32_t)value & ~3u;
		break;
	case 4:
		e->addr_hi = (uint32_t)value;
		break;
	case 8:
		e->data = (uint32_t)value;
		break;
	default:
		e->ctrl = (uint32_t)value & MSIX_ENTRY_MASKED;
		break;
	}
	if (off % 16 != 12)
		update_route(vp, v);
	deliver_pending(vp);
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned int size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_device *vdev = vp->vdev;
	uint64_t v = 0;

	pthread_mutex_lock(&vdev->lock);
	if (off < COMMON_OFF + COMMON_LEN) {
		if (common_access_ok(off, size)) {
			v = common_read(vp, off, size);
			if (size == 8)
				v |= common_read(vp, off + 4, 4) << 32;
		}
	} else if (off == ISR_OFF && size == 1) {
		/* Reading the ISR acknowledges the interrupt (4.1.4.5). */
		v = vp->isr;
		vp->isr = 0;
		update_intx(vp);
	} else if (off >= DEVCFG_OFF && off - DEVCFG_OFF + size <= vdev->config_size &&
		   vdev->ops->config_read) {
		uint8_t buf[8] = { 0 };

		vdev->ops->config_read(vdev, (uint32_t)(off - DEVCFG_OFF), buf, size);
		memcpy(&v, buf, size);
	} else if (off >= MSIX_TABLE_OFF && off < MSIX_TABLE_OFF + 16 * MSIX_MAX_VECTORS) {
		v = msix_read(vp, off - MSIX_TABLE_OFF, size);
	} else if (off >= MSIX_PBA_OFF && off < MSIX_PBA_OFF + 8) {
		v = vp->pba >> (8 * (off - MSIX_PBA_OFF));
	}
	pthread_mutex_unlock(&vdev->lock);
	return v;
}

static void bar_write(void *opaque, uint64_t off, unsigned int size, uint64_t value)
{
	struct virtio_pci *vp = opaque;
	struct virtio_device *vdev = vp->vdev;

	if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULT * vdev->num_queues) {
		/* The slow path (or a notification size KVM did not match):
		 * hand it to the I/O thread like an ioeventfd would. */
		eventfd_signal(vp->q[(off - NOTIFY_OFF) / NOTIFY_MULT].kick_fd);
		return;
	}
	pthread_mutex_lock(&vdev->lock);
	if (off < COMMON_OFF + COMMON_LEN) {
		if (common_access_ok(off, size)) {
			common_write(vp, off, size == 8 ? (uint32_t)value : value);
			if (size == 8)
				common_write(vp, off + 4, value >> 32);
		}
	} else if (off >= DEVCFG_OFF && off - DEVCFG_OFF + size <= vdev->config_size) {
		if (vdev->ops->config_write)
			vdev->ops->config_write(vdev, (uint32_t)(off - DEVCFG_OFF), &value, size);
	} else if (off >= MSIX_TABLE_OFF && off < MSIX_TABLE_OFF + 16 * MSIX_MAX_VECTORS) {
		msix_write(vp, off - MSIX_TABLE_OFF, size, value);
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* A guest MMIO access to BAR 0 (the PCI_CFG window calls bar_write
 * itself): notifications arriving here are ones KVM's ioeventfd did not
 * take, which --no-ioeventfd's test and the benchmarks count. */
static void bar_mmio_write(void *opaque, uint64_t off, unsigned int size, uint64_t value)
{
	struct virtio_pci *vp = opaque;

	if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULT * vp->vdev->num_queues)
		__atomic_add_fetch(&vp->vdev->notify_exits, 1, __ATOMIC_RELAXED);
	bar_write(opaque, off, size, value);
}

static const struct bus_ops bar_ops = { .read = bar_read, .write = bar_mmio_write };

/* ---- PCI configuration space ------------------------------------------ */

/* VIRTIO_PCI_CAP_PCI_CFG (4.1.4.9): a window onto BAR 0 through
 * configuration space, for drivers that cannot map the BAR. The driver
 * writes the capability's bar, offset and length, then reads or writes
 * pci_cfg_data. Fills *off and *len when the window is one the spec
 * allows: BAR 0, 1, 2 or 4 bytes, naturally aligned, inside the BAR. */
static bool pcicfg_window(const struct pci_device *d, uint64_t *off, unsigned int *len)
{
	uint32_t o = le32_get(d->config + CAP_PCICFG + 8), l = le32_get(d->config + CAP_PCICFG + 12);

	if (d->config[CAP_PCICFG + 4] != 0 || (l != 1 && l != 2 && l != 4) || o % l ||
	    o >= BAR_SIZE)
		return false;
	*off = o;
	*len = l;
	return true;
}

static bool touches_pcicfg_data(unsigned int offset, unsigned int size)
{
	return offset < PCICFG_DATA + 4 && offset + size > PCICFG_DATA;
}

static void config_reading(struct pci_device *d, unsigned int offset, unsigned int size)
{
	uint64_t off, v = 0;
	unsigned int len;

	if (!touches_pcicfg_data(offset, size))
		return;
	if (pcicfg_window(d, &off, &len))
		v = bar_read(d->priv, off, len);
	le32_put(d->config + PCICFG_DATA, (uint32_t)v);
}

static void config_written(struct pci_device *d, unsigned int offset, unsigned int size)
{
	struct virtio_pci *vp = d->priv;
	uint64_t off;
	unsigned int len;

	if (touches_pcicfg_data(offset, size) && pcicfg_window(d, &off, &len)) {
		uint32_t v = le32_get(d->config + PCICFG_DATA);

		bar_write(vp, off, len, len == 4 ? v : v & ((1u << (8 * len)) - 1));
	}

	if (offset < PCI_BAR0 + 8 && offset + size > PCI_COMMAND)
		map_ioeventfds(vp); /* command or BAR 0 changed */
	if ((offset < CAP_MSIX + 4 && offset + size > CAP_MSIX + 2) ||
	    (offset < PCI_COMMAND + 2 && offset + size > PCI_COMMAND)) {
		pthread_mutex_lock(&vp->vdev->lock);
		if (!msix_enabled(vp))
			vp->pba = 0;
		update_intx(vp);
		deliver_pending(vp);
		pthread_mutex_unlock(&vp->vdev->lock);
	}
}

static void put_cap(struct pci_device *d, unsigned int at, unsigned int next, uint8_t type,
		    uint32_t offset, uint32_t length, uint8_t cap_len)
{
	uint8_t *c = d->config + at;

	c[0] = PCI_CAP_ID_VNDR;
	c[1] = (uint8_t)next;
	c[2] = cap_len;
	c[3] = type;
	c[4] = 0; /* BAR 0 */
	le32_put(c + 8, offset);
	le32_put(c + 12, length);
}

static uint32_t class_of(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return 0x020000; /* Ethernet */
	case VIRTIO_ID_BLOCK:
		return 0x018000; /* other mass storage */
	case VIRTIO_ID_CONSOLE:
		return 0x078000; /* other communication */
	default:
		return 0xff0000; /* unclassified */
	}
}

static void build_config_space(struct virtio_pci *vp)
{
	struct pci_device *d = &vp->pci;
	struct virtio_device *vdev = vp->vdev;

	pci_device_init(d, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + vdev->device_id),
			class_of(vdev->device_id), 1);
	le16_put(d->config + PCI_SUBSYS_VENDOR, VIRTIO_PCI_VENDOR);
	le16_put(d->config + PCI_SUBSYS_ID, 0x40); /* modern: >= 0x40 */
	le16_put(d->config + PCI_STATUS, PCI_STATUS_CAP_LIST);
	d->config[PCI_CAPABILITY_LIST] = CAP_MSIX;
	d->config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
	pci_device_set_bar(d, 0, BAR_SIZE, PCI_BAR_MEM64);

	/* MSI-X: table and PBA in BAR 0; enable and function mask writable. */
	d->config[CAP_MSIX] = PCI_CAP_ID_MSIX;
	d->config[CAP_MSIX + 1] = CAP_COMMON;
	le16_put(d->config + CAP_MSIX + 2, (uint16_t)(vp->nvectors - 1));
	le16_put(d->wmask + CAP_MSIX + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASK);
	le32_put(d->config + CAP_MSIX + 4, MSIX_TABLE_OFF);
	le32_put(d->config + CAP_MSIX + 8, MSIX_PBA_OFF);

	put_cap(d, CAP_COMMON, CAP_NOTIFY, CAP_COMMON_CFG, COMMON_OFF, COMMON_LEN, 16);
	put_cap(d, CAP_NOTIFY, CAP_ISR, CAP_NOTIFY_CFG, NOTIFY_OFF,
		NOTIFY_MULT * vdev->num_queues, 20);
	le32_put(d->config + CAP_NOTIFY + 16, NOTIFY_MULT);
	put_cap(d, CAP_ISR, CAP_DEVCFG, CAP_ISR_CFG, ISR_OFF, ISR_LEN, 16);
	put_cap(d, CAP_DEVCFG, CAP_PCICFG, CAP_DEVICE_CFG, DEVCFG_OFF,
		vdev->config_size ? vdev->config_size : 4, 16);
	/* The window's bar, offset, length and data are the driver's. */
	put_cap(d, CAP_PCICFG, 0, CAP_PCI_CFG, 0, 0, 20);
	d->wmask[CAP_PCICFG + 4] = 0xff;
	memset(d->wmask + CAP_PCICFG + 8, 0xff, 12);

	d->priv = vp;
	d->config_written = config_written;
	d->config_reading = config_reading;
	d->bar_ops[0] = &bar_ops;
	d->bar_opaque[0] = vp;
	d->name = vdev->name;
}

static int setup_vectors(struct virtio_pci *vp, struct error *err)
{
	unsigned int v;

	for (v = 0; v < vp->nvectors; v++) {
		struct msix_entry *e = &vp->msix[v];

		e->ctrl = MSIX_ENTRY_MASKED; /* as after reset (PCI spec) */
		e->msi_open = irq_msi_open(vp->env.irq, &e->msi) == 0;
		if (!e->msi_open) {
			return error_set(err, "%s: cannot set up MSI-X vector %u", vp->vdev->name, v);
		}
	}
	return 0;
}

static int setup_queues(struct virtio_pci *vp, struct error *err)
{
	struct virtio_device *vdev = vp->vdev;
	unsigned int i;

	for (i = 0; i < vdev->num_queues; i++) {
		struct vp_queue *pq = &vp->q[i];

		pq->vp = vp;
		pq->index = i;
		pq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (pq->kick_fd < 0 ||
		    ioloop_add(&vdev->loop, &pq->watch, pq->kick_fd, EPOLLIN, queue_kicked,
			       pq) < 0) {
			return error_set(err, "%s: cannot set up queue %u notifications", vdev->name, i);
		}
	}
	return 0;
}

/* Gives back what realize() set up; safe on a partly realized device. */
static void unrealize(struct virtio_pci *vp)
{
	struct virtio_device *vdev = vp->vdev;
	unsigned int i;

	if (vp->loop_ready) {
		ioloop_stop(&vdev->loop);
		pthread_mutex_lock(&vdev->lock);
		reset_device(vp);
		pthread_mutex_unlock(&vdev->lock);
	}
	if (vp->slot >= 0) {
		pci_host_remove(vp->env.host, &vp->pci);
		vp->slot = -1;
	}
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct vp_queue *pq = &vp->q[i];

		if (pq->ioeventfd_addr)
			kvm_ioeventfd(vp->env.kvm, pq->kick_fd, pq->ioeventfd_addr, 2, false);
		pq->ioeventfd_addr = 0;
		if (pq->kick_fd >= 0)
			close(pq->kick_fd);
		pq->kick_fd = -1;
	}
	for (i = 0; i < MSIX_MAX_VECTORS; i++) {
		if (vp->msix[i].msi_open)
			irq_msi_close(&vp->msix[i].msi);
		vp->msix[i].msi_open = false;
	}
	irq_line_release(&vp->intx);
	if (vp->loop_ready)
		ioloop_destroy(&vdev->loop);
	vp->loop_ready = false;
}

static int vp_realize(struct device *d, struct error *err)
{
	struct virtio_pci *vp = d->opaque;
	struct virtio_device *vdev = vp->vdev;
	int slot;

	if (ioloop_init(&vdev->loop, vdev->name) < 0)
		return error_set(err, "%s: cannot create its I/O thread", vdev->name);
	vp->loop_ready = true;
	reset_device(vp);
	build_config_space(vp);
	if (setup_vectors(vp, err) < 0 || setup_queues(vp, err) < 0)
		goto fail;
	slot = pci_host_add(vp->env.host, &vp->pci);
	if (slot < 0) {
		error_set(err, "%s: no free PCI slot or MMIO space", vdev->name);
		goto fail;
	}
	vp->slot = slot;
	if (irq_line_claim(vp->env.irq, vp->env.intx_gsi((unsigned int)slot), &vp->intx) < 0) {
		error_set(err, "%s: no room on interrupt line %u", vdev->name,
			  vp->env.intx_gsi((unsigned int)slot));
		goto fail;
	}
	vp->pci.config[PCI_INTERRUPT_LINE] = (uint8_t)vp->intx.gsi;
	/* Firmware would have enabled decoding of the BAR it assigned. */
	le16_put(vp->pci.config + PCI_COMMAND, PCI_COMMAND_MEMORY);
	map_ioeventfds(vp);
	pci_device_save_reset_state(&vp->pci);
	if (ioloop_start(&vdev->loop) < 0) {
		error_set(err, "%s: cannot start its I/O thread", vdev->name);
		goto fail;
	}
	return 0;
fail:
	unrealize(vp);
	return -1;
}

static unsigned int in_flight(struct virtio_pci *vp)
{
	struct virtio_device *vdev = vp->vdev;
	unsigned int n;

	if (!vdev->ops->in_flight)
		return 0;
	pthread_mutex_lock(&vdev->lock);
	n = vdev->ops->in_flight(vdev);
	pthread_mutex_unlock(&vdev->lock);
	return n;
}

#define PAUSE_DRAIN_MS 10000

/* Quiesces with the vCPUs already paused: lets the I/O thread finish what
 * the guest submitted (used entries written, interrupts sent), then stops
 * the thread. A kick still pending in an eventfd may have let the thread
 * start one more request just before it stopped: then it runs again and
 * the wait repeats. */
static int vp_pause(struct device *d, struct error *err)
{
	struct virtio_pci *vp = d->opaque;
	struct virtio_device *vdev = vp->vdev;
	unsigned int waited = 0, n;

	for (;;) {
		while ((n = in_flight(vp)) != 0) {
			if (waited >= PAUSE_DRAIN_MS)
				return error_set(err, "%u request%s still in flight after %u s", n,
						 n == 1 ? "" : "s", PAUSE_DRAIN_MS / 1000);
			usleep(1000);
			waited++;
		}
		ioloop_stop(&vdev->loop);
		if (in_flight(vp) == 0)
			return 0;
		if (ioloop_start(&vdev->loop) < 0)
			return error_set(err, "cannot restart its I/O thread");
	}
}

static void vp_resume(struct device *d)
{
	struct virtio_pci *vp = d->opaque;

	if (ioloop_start(&vp->vdev->loop) < 0)
		virtio_set_needs_reset(vp->vdev, "%s: cannot restart its I/O thread", vp->vdev->name);
}

/* The VirtIO device as after a driver's reset, and the PCI function as
 * firmware left it: configuration space (BAR where it was assigned, MSI-X
 * off), MSI-X table entries cleared and masked. vdev->lock held; the
 * caller reprograms the routes and the queue notifications. */
static void reset_function(struct virtio_pci *vp)
{
	unsigned int v;

	reset_device(vp); /* the PBA too */
	pci_device_restore_reset_state(&vp->pci);
	for (v = 0; v < vp->nvectors; v++) {
		struct msix_entry *e = &vp->msix[v];

		e->addr_lo = e->addr_hi = e->data = 0;
		e->ctrl = MSIX_ENTRY_MASKED;
	}
}

/* The KVM routes of every MSI-X vector, from its table entry. */
static void update_routes(struct virtio_pci *vp)
{
	for (unsigned int v = 0; v < vp->nvectors; v++)
		update_route(vp, v);
}

/* A system reset (vCPUs and the I/O thread stopped): the function as
 * above, its routes and queue notifications bound there again. */
static void vp_reset(struct device *d)
{
	struct virtio_pci *vp = d->opaque;

	pthread_mutex_lock(&vp->vdev->lock);
	reset_function(vp);
	update_routes(vp);
	pthread_mutex_unlock(&vp->vdev->lock);
	map_ioeventfds(vp);
}

/* ---- state (snapshots) ------------------------------------------------ */

/* The transport's part of the record. A device's record version is this
 * plus the device's own state_revision: a change of either raises the
 * sum, so one number never names two layouts of a device's record. */
#define VP_STATE_VERSION 1

/* Paused (vCPUs and I/O thread stopped): the PCI function, the transport,
 * the generic VirtIO state and the queues, then the device's own record. */
static void vp_save(struct device *d, struct state_writer *w)
{
	struct virtio_pci *vp = d->opaque;
	struct virtio_device *vdev = vp->vdev;
	struct state_writer own;
	unsigned int i;

	state_writer_init(&own);
	pthread_mutex_lock(&vdev->lock);
	state_put_u16(w, vdev->device_id);
	state_put_bytes(w, vp->pci.config, PCI_CONFIG_SPACE);
	state_put_u32(w, vp->device_feature_select);
	state_put_u32(w, vp->driver_feature_select);
	state_put_u64(w, vp->driver_features);
	state_put_u16(w, vp->queue_select);
	state_put_u16(w, vp->config_vector);
	state_put_u8(w, vp->isr);
	state_put_u64(w, vp->pba);
	state_put_u32(w, vp->nvectors);
	for (i = 0; i < vp->nvectors; i++) {
		state_put_u32(w, vp->msix[i].addr_lo);
		state_put_u32(w, vp->msix[i].addr_hi);
		state_put_u32(w, vp->msix[i].data);
		state_put_u32(w, vp->msix[i].ctrl);
	}
	state_put_u8(w, vdev->status);
	state_put_u64(w, vdev->guest_features);
	state_put_u8(w, vdev->config_generation);
	state_put_u32(w, vdev->num_queues);
	for (i = 0; i < vdev->num_queues; i++) {
		const struct virtq *q = &vdev->vq[i];

		state_put_u16(w, vp->q[i].msix_vector);
		state_put_u16(w, q->size);
		state_put_u64(w, q->desc_gpa);
		state_put_u64(w, q->avail_gpa);
		state_put_u64(w, q->used_gpa);
		state_put_bool(w, q->ready);
		state_put_u16(w, q->last_avail);
		state_put_u16(w, q->used_idx);
		state_put_u16(w, q->signalled_used);
		state_put_bool(w, q->signalled_used_valid);
		state_put_bool(w, q->notify_enabled);
	}
	if (vdev->ops->save)
		vdev->ops->save(vdev, &own);
	pthread_mutex_unlock(&vdev->lock);
	state_put_u64(w, own.len);
	state_put_bytes(w, own.buf, own.len);
	if (own.failed)
		w->failed = true;
	state_writer_free(&own);
}

struct vp_saved_queue {
	uint16_t vector;
	struct virtq q;
};

struct vp_saved {
	uint8_t config[PCI_CONFIG_SPACE];
	uint32_t dfselect, gfselect;
	uint64_t driver_features, pba;
	uint16_t queue_select, config_vector;
	uint8_t isr, status, config_generation;
	uint32_t msix[MSIX_MAX_VECTORS][4];
	uint64_t guest_features;
	struct vp_saved_queue q[VIRTIO_MAX_QUEUES];
	const uint8_t *own;
	size_t own_len;
};

/* Reads and checks the transport's part; nothing changes yet. */
static int read_saved(struct virtio_pci *vp, struct state_reader *r, struct vp_saved *s,
		      struct error *err)
{
	struct virtio_device *vdev = vp->vdev;
	uint32_t nvec, nq;
	uint64_t own_len;
	unsigned int i;
	uint16_t id = state_get_u16(r);

	if (id != vdev->device_id)
		return error_set(err, "the snapshot's is VirtIO device %u, this one %u", id,
				 vdev->device_id);
	state_get_bytes(r, s->config, PCI_CONFIG_SPACE);
	s->dfselect = state_get_u32(r);
	s->gfselect = state_get_u32(r);
	s->driver_features = state_get_u64(r);
	s->queue_select = state_get_u16(r);
	s->config_vector = state_get_u16(r);
	s->isr = state_get_u8(r);
	s->pba = state_get_u64(r);
	nvec = state_get_u32(r);
	if (nvec != vp->nvectors)
		return error_set(err, "%u MSI-X vectors in the snapshot, %u here", nvec,
				 vp->nvectors);
	for (i = 0; i < nvec; i++)
		for (unsigned int k = 0; k < 4; k++)
			s->msix[i][k] = state_get_u32(r);
	s->status = state_get_u8(r);
	s->guest_features = state_get_u64(r);
	s->config_generation = state_get_u8(r);
	nq = state_get_u32(r);
	if (nq != vdev->num_queues)
		return error_set(err, "%u queues in the snapshot, %u here", nq, vdev->num_queues);
	for (i = 0; i < nq; i++) {
		struct virtq *q = &s->q[i].q;

		s->q[i].vector = state_get_u16(r);
		q->size = state_get_u16(r);
		q->desc_gpa = state_get_u64(r);
		q->avail_gpa = state_get_u64(r);
		q->used_gpa = state_get_u64(r);
		q->ready = state_get_bool(r);
		q->last_avail = state_get_u16(r);
		q->used_idx = state_get_u16(r);
		q->signalled_used = state_get_u16(r);
		q->signalled_used_valid = state_get_bool(r);
		q->notify_enabled = state_get_bool(r);
	}
	own_len = state_get_u64(r);
	if (own_len > state_reader_left(r))
		return error_set(err, "state record is truncated");
	s->own_len = (size_t)own_len;
	s->own = state_get_span(r, s->own_len);
	if (state_reader_done(r, err) < 0)
		return -1;
	if (vdev->ops->check_saved && vdev->ops->check_saved(vdev, s->own, s->own_len, err) < 0)
		return -1;

	if (s->guest_features & ~vdev->host_features)
		return error_set(err, "features 0x%" PRIx64 " were never offered",
				 s->guest_features & ~vdev->host_features);
	if (s->isr & ~(ISR_QUEUE | ISR_CONFIG))
		return error_set(err, "ISR 0x%02x has undefined bits", s->isr);
	if (s->pba >> vp->nvectors)
		return error_set(err, "pending MSI-X vectors beyond the table");
	for (i = 0; i < nq; i++) {
		struct virtq probe = s->q[i].q;

		if (probe.size > vdev->queue_max_size[i])
			return error_set(err, "queue %u: size %u, more than %u", i, probe.size,
					 vdev->queue_max_size[i]);
		if (!probe.ready)
			continue;
		if (!(s->status & VIRTIO_STATUS_FEATURES_OK))
			return error_set(err, "queue %u enabled before the features were", i);
		if (virtq_map(&probe, vdev->mem) < 0)
			return error_set(err, "queue %u: invalid size or ring address", i);
	}
	return 0;
}

/* Puts back what read_saved() checked; vdev->lock held. */
static void apply_saved(struct virtio_pci *vp, const struct vp_saved *s)
{
	struct virtio_device *vdev = vp->vdev;
	unsigned int i;

	/* Only what the guest could have written: identity, capabilities and
	 * the read-only bits stay this build's. */
	for (i = 0; i < PCI_CONFIG_SPACE; i++)
		vp->pci.config[i] = (uint8_t)((vp->pci.config[i] & ~vp->pci.wmask[i]) |
					      (s->config[i] & vp->pci.wmask[i]));
	vp->device_feature_select = s->dfselect;
	vp->driver_feature_select = s->gfselect;
	vp->driver_features = s->driver_features;
	vp->queue_select = s->queue_select;
	vp->config_vector = s->config_vector;
	vp->isr = s->isr;
	vp->pba = s->pba;
	for (i = 0; i < vp->nvectors; i++) {
		vp->msix[i].addr_lo = s->msix[i][0];
		vp->msix[i].addr_hi = s->msix[i][1];
		vp->msix[i].data = s->msix[i][2];
		vp->msix[i].ctrl = s->msix[i][3];
	}
	vdev->status = s->status;
	vdev->guest_features = s->guest_features;
	vdev->config_generation = s->config_generation;
	for (i = 0; i < vdev->num_queues; i++) {
		const struct virtq *from = &s->q[i].q;
		struct virtq *q = &vdev->vq[i];

		vp->q[i].msix_vector = s->q[i].vector;
		q->size = from->size;
		q->desc_gpa = from->desc_gpa;
		q->avail_gpa = from->avail_gpa;
		q->used_gpa = from->used_gpa;
		if (!from->ready)
			continue;
		q->event_idx = virtio_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX);
		q->indirect = virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC);
		virtq_map(q, vdev->mem); /* checked by read_saved() */
		q->last_avail = from->last_avail;
		q->used_idx = from->used_idx;
		q->signalled_used = from->signalled_used;
		q->signalled_used_valid = from->signalled_used_valid;
		q->notify_enabled = from->notify_enabled;
		q->ready = true;
	}
}

static int vp_load(struct device *d, struct state_reader *r, struct error *err)
{
	struct virtio_pci *vp = d->opaque;
	struct virtio_device *vdev = vp->vdev;
	struct vp_saved *s = calloc(1, sizeof(*s));
	struct state_reader own;
	int ret = -1;

	if (!s)
		return error_set(err, "out of memory");
	if (read_saved(vp, r, s, err) < 0)
		goto out;
	pthread_mutex_lock(&vdev->lock);
	reset_device(vp);
	apply_saved(vp, s);
	if ((vdev->status & VIRTIO_STATUS_DRIVER_OK) && (vdev->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) && vdev->ops->activate &&
	    vdev->ops->activate(vdev) < 0)
		virtio_set_needs_reset(vdev, "could not start");
	state_reader_init(&own, s->own, s->own_len);
	if (vdev->ops->load)
		ret = vdev->ops->load(vdev, &own, err);
	else
		ret = state_reader_done(&own, err);
	if (ret < 0)
		reset_function(vp); /* refused: as after a reset, not half loaded */
	update_routes(vp);
	update_intx(vp);
	pthread_mutex_unlock(&vdev->lock);
	map_ioeventfds(vp);
	/* A kick the guest gave just before the snapshot may not have been
	 * taken yet: every ready queue is looked at once on resume. */
	if (ret == 0)
		kick_ready_queues(vp);
out:
	free(s);
	return ret;
}

static void vp_write_stats(struct device *d, struct jsonw *j)
{
	struct virtio_pci *vp = d->opaque;
	struct virtio_device *vdev = vp->vdev;

	/* MMIO exits that reached the device's registers; with ioeventfds,
	 * queue notifications are not among them. */
	jsonw_uint(j, "exits", __atomic_load_n(&vp->pci.exits, __ATOMIC_RELAXED));
	jsonw_uint(j, "queue_notifications", vdev->notifications);
	jsonw_uint(j, "notify_exits", __atomic_load_n(&vdev->notify_exits, __ATOMIC_RELAXED));
	jsonw_uint(j, "interrupts", vdev->interrupts);
	if (vdev->ops->write_stats)
		vdev->ops->write_stats(vdev, j);
}

static void vp_destroy(struct device *d)
{
	struct virtio_pci *vp = d->opaque;

	unrealize(vp);
	if (vp->vdev->ops->destroy)
		vp->vdev->ops->destroy(vp->vdev);
	free(vp);
}

static struct block_backend *vp_disk(struct device *d, unsigned int n)
{
	struct virtio_pci *vp = d->opaque;

	return n == 0 ? virtio_blk_backend(vp->vdev) : NULL;
}

static const struct device_ops vp_device_ops = {
	.realize = vp_realize,
	.pause = vp_pause,
	.resume = vp_resume,
	.reset = vp_reset,
	.save = vp_save,
	.load = vp_load,
	.write_stats = vp_write_stats,
	.disk = vp_disk,
	.destroy = vp_destroy,
};

struct device *virtio_pci_create(struct virtio_device *vdev, const struct virtio_pci_env *env,
				 struct error *err)
{
	struct virtio_pci *vp;
	unsigned int i;

	if (vdev->num_queues == 0 || vdev->num_queues > VIRTIO_MAX_QUEUES ||
	    vdev->config_size > DEVCFG_MAX) {
		error_set(err, "%s: internal error: bad queue count or config size", vdev->name);
		return NULL;
	}
	vp = calloc(1, sizeof(*vp));
	if (!vp) {
		error_set(err, "%s: out of memory", vdev->name);
		return NULL;
	}
	vp->vdev = vdev;
	vp->env = *env;
	vp->slot = -1;
	vp->nvectors = vdev->num_queues + 1;
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->q[i].kick_fd = -1;
	pthread_mutex_init(&vdev->lock, NULL);
	vdev->mem = env->mem;
	vdev->transport = &transport_ops;
	vdev->transport_priv = vp;
	vdev->host_features |= 1ULL << VIRTIO_F_VERSION_1;
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vdev->vq[i].mem = env->mem;
	device_init(&vp->dev, vdev->name, "virtio-pci", &vp_device_ops, vp);
	vp->dev.state_version = VP_STATE_VERSION + vdev->state_revision;
	return &vp->dev;
}

struct virtio_device *virtio_pci_vdev(const struct device *d)
{
	return d->ops == &vp_device_ops ? ((struct virtio_pci *)d->opaque)->vdev : NULL;
}

const struct pci_device *virtio_pci_device(const struct device *d)
{
	return d->ops == &vp_device_ops ? &((struct virtio_pci *)d->opaque)->pci : NULL;
}
