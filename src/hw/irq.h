/* The machine's one interrupt service: how every device (the UART, the
 * ACPI SCI, virtio-pci, and every later one) raises interrupts, whatever
 * the interrupt controller is behind it.
 *
 * - Lines: the level-triggered inputs of the PICs/IOAPIC (GSIs). A device
 *   claims a line and gets its own source on it; a shared line (PCI INTx)
 *   is high while any of its sources is, so two devices on one line never
 *   lower each other's interrupt.
 * - MSI: a message (address, data) the guest programmed. irq_msi_send()
 *   delivers one now. A vector a device fires often (a virtqueue's) is an
 *   struct irq_msi: a route plus an eventfd that the controller injects
 *   from in the kernel (KVM's irqfd) when it can, so firing one is a
 *   single write(); without irqfd the same call sends the message.
 *
 * The controller (KVM's in-kernel irqchip, or a fake in unit tests)
 * implements struct irq_chip_ops. Every function is thread-safe. */
#ifndef VIREO_HW_IRQ_H
#define VIREO_HW_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IRQ_LINES 24	     /* GSIs 0-23: the IOAPIC's pins */
#define IRQ_LINE_SOURCES 32 /* devices sharing one line */

struct irq_chip_ops {
	/* Drives a line to level (after the sharing is resolved). */
	int (*set_line)(void *chip, unsigned int gsi, int level);
	/* Delivers one MSI message now. */
	int (*send_msi)(void *chip, uint64_t addr, uint32_t data);
	/* Optional (NULL: no routes, messages are sent one by one): a route
	 * whose message is injected whenever eventfd fd is written. */
	int (*route_alloc)(void *chip);
	int (*route_set)(void *chip, int route, uint64_t addr, uint32_t data, bool valid);
	int (*route_bind)(void *chip, int route, int fd, bool assign);
};

struct irq_service {
	const struct irq_chip_ops *ops;
	void *chip;
	pthread_mutex_t lock;
	uint32_t claimed[IRQ_LINES]; /* source bits handed out per line */
	uint32_t high[IRQ_LINES];    /* sources holding each line high */
	uint64_t raised;	     /* line assertions and messages, all devices */
};

void irq_service_init(struct irq_service *s, const struct irq_chip_ops *ops, void *chip);
void irq_service_destroy(struct irq_service *s);

/* One device's source on a line. */
struct irq_line {
	struct irq_service *svc;
	unsigned int gsi;
	uint32_t bit;
};

/* Claims a source on line gsi; 0, or -1 when gsi is out of range or the
 * line has IRQ_LINE_SOURCES sources already. */
int irq_line_claim(struct irq_service *s, unsigned int gsi, struct irq_line *l);
/* Raises (1) or lowers (0) this source; the line follows the OR of all. */
void irq_line_set(struct irq_line *l, int level);
/* Lowers the source and gives it back. */
void irq_line_release(struct irq_line *l);

/* Sends one MSI message (address, data) now. 0 or -errno. */
int irq_msi_send(struct irq_service *s, uint64_t addr, uint32_t data);

/* An MSI vector a device fires repeatedly. */
struct irq_msi {
	struct irq_service *svc;
	int route; /* -1: no route, messages are sent directly */
	int fd;	   /* eventfd bound to the route, or -1 */
	uint64_t addr;
	uint32_t data;
	bool valid; /* programmed (an address other than 0) */
};

/* Sets up a vector, unprogrammed. 0, or -1 (nothing left to undo). */
int irq_msi_open(struct irq_service *s, struct irq_msi *m);
/* The guest wrote the vector's address and data (valid: addr != 0). */
int irq_msi_program(struct irq_msi *m, uint64_t addr, uint32_t data);
/* Delivers the vector's message; an unprogrammed vector drops it. */
void irq_msi_fire(struct irq_msi *m);
void irq_msi_close(struct irq_msi *m);

#endif
