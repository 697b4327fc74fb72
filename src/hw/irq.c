#include "hw/irq.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/eventfd.h"

void irq_service_init(struct irq_service *s, const struct irq_chip_ops *ops, void *chip)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->chip = chip;
	pthread_mutex_init(&s->lock, NULL);
}

void irq_service_destroy(struct irq_service *s)
{
	pthread_mutex_destroy(&s->lock);
}

int irq_line_claim(struct irq_service *s, unsigned int gsi, struct irq_line *l)
{
	unsigned int i;

	if (gsi >= IRQ_LINES)
		return -1;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < IRQ_LINE_SOURCES; i++) {
		if (!(s->claimed[gsi] & 1u << i)) {
			s->claimed[gsi] |= 1u << i;
			pthread_mutex_unlock(&s->lock);
			*l = (struct irq_line){ .svc = s, .gsi = gsi, .bit = 1u << i };
			return 0;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return -1;
}

void irq_line_set(struct irq_line *l, int level)
{
	struct irq_service *s = l->svc;
	uint32_t before;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	before = s->high[l->gsi];
	if (level)
		s->high[l->gsi] |= l->bit;
	else
		s->high[l->gsi] &= ~l->bit;
	/* Only a change of the OR reaches the controller: a second device
	 * raising a line that is already high is not a second edge. */
	if (!before != !s->high[l->gsi]) {
		if (s->high[l->gsi])
			__atomic_fetch_add(&s->raised, 1, __ATOMIC_RELAXED);
		s->ops->set_line(s->chip, l->gsi, s->high[l->gsi] != 0);
	}
	pthread_mutex_unlock(&s->lock);
}

void irq_line_release(struct irq_line *l)
{
	struct irq_service *s = l->svc;

	if (!s)
		return;
	irq_line_set(l, 0);
	pthread_mutex_lock(&s->lock);
	s->claimed[l->gsi] &= ~l->bit;
	pthread_mutex_unlock(&s->lock);
	l->svc = NULL;
}

int irq_msi_send(struct irq_service *s, uint64_t addr, uint32_t data)
{
	__atomic_fetch_add(&s->raised, 1, __ATOMIC_RELAXED);
	return s->ops->send_msi(s->chip, addr, data);
}

int irq_msi_open(struct irq_service *s, struct irq_msi *m)
{
	const struct irq_chip_ops *ops = s->ops;

	*m = (struct irq_msi){ .svc = s, .route = -1, .fd = -1 };
	if (!ops->route_alloc)
		return 0; /* every message is sent directly */
	m->route = ops->route_alloc(s->chip);
	if (m->route < 0)
		return -1;
	m->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->fd < 0)
		return -1;
	if (ops->route_bind(s->chip, m->route, m->fd, true) < 0) {
		close(m->fd);
		m->fd = -1;
		return -1;
	}
	return 0;
}

int irq_msi_program(struct irq_msi *m, uint64_t addr, uint32_t data)
{
	m->addr = addr;
	m->data = data;
	m->valid = addr != 0;
	if (m->route < 0)
		return 0;
	return m->svc->ops->route_set(m->svc->chip, m->route, addr, data, m->valid);
}

void irq_msi_fire(struct irq_msi *m)
{
	if (!m->valid)
		return;
	if (m->fd < 0) {
		irq_msi_send(m->svc, m->addr, m->data);
		return;
	}
	__atomic_fetch_add(&m->svc->raised, 1, __ATOMIC_RELAXED);
	eventfd_signal(m->fd);
}

void irq_msi_close(struct irq_msi *m)
{
	if (m->fd >= 0) {
		m->svc->ops->route_bind(m->svc->chip, m->route, m->fd, false);
		close(m->fd);
	}
	if (m->route >= 0)
		m->svc->ops->route_set(m->svc->chip, m->route, 0, 0, false);
	m->fd = m->route = -1;
	m->valid = false;
}
