/* A network backend for device tests (and fuzzers): it keeps what the
 * device sends (the first bytes of each frame, and every frame's length)
 * and hands the device the frames a test queued, with rx_fd readable
 * while any wait, as the tap and user-mode backends do; and the rest of
 * what a NIC under test sits in (struct fake_net_rig): guest RAM, a PCI
 * host, an interrupt service. No cmocka here: the fuzzers use it too. */
#ifndef VIREO_TESTS_FAKE_NET_H
#define VIREO_TESTS_FAKE_NET_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hw/irq.h"
#include "hw/pci.h"
#include "mem/guest_mem.h"
#include "net/net_backend.h"
#include "util/iov.h"

#define FAKE_NET_KEEP 64	 /* frames kept */
#define FAKE_NET_KEEP_BYTES 2048 /* bytes kept of each */
#define FAKE_NET_RXQ 64

struct fake_net {
	struct net_backend base;
	pthread_mutex_t lock;
	unsigned int nsent;	/* frames sent, all of them */
	uint64_t sent_bytes;
	size_t sent_len[FAKE_NET_KEEP];
	uint8_t sent[FAKE_NET_KEEP][FAKE_NET_KEEP_BYTES];
	uint8_t *rxq[FAKE_NET_RXQ];
	size_t rxq_len[FAKE_NET_RXQ];
	unsigned int rxq_head, rxq_count;
	unsigned int offloads_set;
	bool *closed; /* set on close, when not NULL */
};

static inline void fake_net_drain(struct fake_net *f)
{
	uint64_t v;

	if (read(f->base.rx_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain. */
	}
}

static inline ssize_t fake_net_send(struct net_backend *b, const struct iovec *iov,
				    unsigned int iovcnt)
{
	struct fake_net *f = (struct fake_net *)b;
	size_t len = iov_size(iov, iovcnt);

	pthread_mutex_lock(&f->lock);
	if (f->nsent < FAKE_NET_KEEP) {
		f->sent_len[f->nsent] = len;
		iov_to_buf(iov, iovcnt, 0, f->sent[f->nsent], FAKE_NET_KEEP_BYTES);
	}
	f->nsent++;
	f->sent_bytes += len;
	pthread_mutex_unlock(&f->lock);
	return (ssize_t)len;
}

static inline ssize_t fake_net_recv(struct net_backend *b, const struct iovec *iov,
				    unsigned int iovcnt)
{
	struct fake_net *f = (struct fake_net *)b;
	size_t len;
	uint8_t *p;

	pthread_mutex_lock(&f->lock);
	if (!f->rxq_count) {
		fake_net_drain(f);
		pthread_mutex_unlock(&f->lock);
		return -EAGAIN;
	}
	p = f->rxq[f->rxq_head];
	len = f->rxq_len[f->rxq_head];
	f->rxq_head = (f->rxq_head + 1) % FAKE_NET_RXQ;
	if (--f->rxq_count == 0)
		fake_net_drain(f);
	pthread_mutex_unlock(&f->lock);
	if (len > iov_size(iov, iovcnt)) {
		free(p);
		return -EMSGSIZE;
	}
	iov_from_buf(iov, iovcnt, 0, p, len);
	free(p);
	return (ssize_t)len;
}

static inline void fake_net_set_offloads(struct net_backend *b, const struct net_offloads *o)
{
	(void)o;
	((struct fake_net *)b)->offloads_set++;
}

static inline void fake_net_close(struct net_backend *b)
{
	struct fake_net *f = (struct fake_net *)b;

	while (f->rxq_count) {
		free(f->rxq[f->rxq_head]);
		f->rxq_head = (f->rxq_head + 1) % FAKE_NET_RXQ;
		f->rxq_count--;
	}
	if (f->closed)
		*f->closed = true;
	close(f->base.rx_fd);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static const struct net_backend_ops fake_net_ops = {
	.kind = "fake",
	.close = fake_net_close,
	.set_offloads = fake_net_set_offloads,
	.send = fake_net_send,
	.recv = fake_net_recv,
};

/* vnet_hdr: frames carry a virtio_net_hdr_v1 both ways, as a tap's. */
static inline struct fake_net *fake_net_open(bool vnet_hdr)
{
	struct fake_net *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->base.ops = &fake_net_ops;
	strcpy(f->base.name, "fake");
	f->base.has_vnet_hdr = vnet_hdr;
	f->base.rx_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&f->lock, NULL);
	return f;
}

/* Queues a frame for the device (copied); false when the queue is full. */
static inline bool fake_net_push(struct fake_net *f, const void *frame, size_t len)
{
	uint64_t one = 1;
	uint8_t *p = malloc(len ? len : 1);
	bool ok;

	if (!p)
		return false;
	memcpy(p, frame, len);
	pthread_mutex_lock(&f->lock);
	ok = f->rxq_count < FAKE_NET_RXQ;
	if (ok) {
		unsigned int at = (f->rxq_head + f->rxq_count) % FAKE_NET_RXQ;

		f->rxq[at] = p;
		f->rxq_len[at] = len;
		f->rxq_count++;
		if (write(f->base.rx_fd, &one, sizeof(one)) < 0) {
			/* Counter overflow only: readable anyway. */
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (!ok)
		free(p);
	return ok;
}

static inline unsigned int fake_net_sent(struct fake_net *f)
{
	unsigned int n;

	pthread_mutex_lock(&f->lock);
	n = f->nsent;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* ---- A NIC's surroundings ---- */

/* The PCI host's windows: MMIO (BARs 0) and I/O ports. */
#define FAKE_NET_MMIO_START 0xe0000000ull
#define FAKE_NET_MMIO_END 0xf0000000ull
#define FAKE_NET_IO_START 0xc000u
#define FAKE_NET_IO_END 0x10000u

struct fake_net_rig {
	struct guest_mem mem;
	struct pci_host host;
	struct irq_service irq;
	struct fake_net *net;
};

/* An irq_chip_ops.send_msi for NICs that send none (the e1000). */
static inline int fake_net_no_msi(void *chip, uint64_t addr, uint32_t data)
{
	(void)chip;
	(void)addr;
	(void)data;
	return 0;
}

/* ram bytes of guest RAM, the PCI host with its windows, an interrupt
 * service on chip (chip_ops), a fake backend (vnet_hdr: fake_net_open).
 * 0, or -1 when the RAM or the backend could not be had. */
static inline int fake_net_rig_init(struct fake_net_rig *r, uint64_t ram,
				    const struct irq_chip_ops *chip_ops, void *chip, bool vnet_hdr)
{
	if (guest_mem_map(&r->mem, ram) != 0)
		return -1;
	pci_host_init(&r->host, NULL, FAKE_NET_MMIO_START, FAKE_NET_MMIO_END);
	pci_host_set_io_window(&r->host, FAKE_NET_IO_START, FAKE_NET_IO_END);
	irq_service_init(&r->irq, chip_ops, chip);
	r->net = fake_net_open(vnet_hdr);
	return r->net ? 0 : -1;
}

/* The slot of the device pd on the rig's PCI host; PCI_MAX_DEVICES where
 * it is not there. */
static inline int fake_net_rig_slot(const struct fake_net_rig *r, const struct pci_device *pd)
{
	int slot = 0;

	while (slot < PCI_MAX_DEVICES && r->host.dev[PCI_DEVFN(slot, 0)] != pd)
		slot++;
	return slot;
}

/* A configuration space write of size bytes to function 0 in slot, the
 * way a driver makes it (address at 0xcf8, data at 0xcfc + reg % 4). */
static inline void fake_net_rig_cfg_write(struct fake_net_rig *r, int slot, unsigned int reg,
					  unsigned int size, uint32_t v)
{
	pci_host_ops.write(&r->host, 0, 4, 0x80000000u | (uint32_t)slot << 11 | (reg & 0xfc));
	pci_host_ops.write(&r->host, 4 + (reg & 3), size, v);
}

#endif
