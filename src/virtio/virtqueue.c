/* Split virtqueues, device side (VirtIO 1.2, 2.7). The guest may rewrite
 * its rings while we read them: every field is read once into a local and
 * checked there, never re-read after the check. */
#include "virtio/virtqueue.h"

#include <string.h>

#include "util/le.h"

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* then avail_event */
};

static inline uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

int virtq_map(struct virtq *q, const struct guest_mem *mem)
{
	uint64_t n = q->size;

	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	q->mem = mem;
	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return -1;
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -1;
	q->desc = guest_mem_ptr(mem, q->desc_gpa, 16 * n);
	q->avail = guest_mem_ptr(mem, q->avail_gpa, 6 + 2 * n);
	q->used = guest_mem_ptr(mem, q->used_gpa, 6 + 8 * n);
	if (!q->desc || !q->avail || !q->used) {
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		return -1;
	}
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_used_valid = false;
	q->notify_enabled = true;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	const struct guest_mem *mem = q->mem;

	memset(q, 0, sizeof(*q));
	q->mem = mem;
}

static uint16_t avail_idx(const struct virtq *q)
{
	/* Acquire: the ring entries the index covers are read after it. */
	return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
}

bool virtq_empty(struct virtq *q)
{
	return avail_idx(q) == q->last_avail;
}

static void set_avail_event(struct virtq *q, uint16_t v)
{
	store16((uint16_t *)&q->used->ring[q->size], v);
	guest_mem_mark_written(q->mem, &q->used->ring[q->size], 2);
}

/* Adds one buffer to e; -1 if it breaks a rule. */
static int add_buffer(struct virtq *q, struct virtq_elem *e, const struct virtq_desc *d)
{
	struct iovec *iov;
	void *p;

	if (d->flags & VIRTQ_DESC_F_WRITE) {
		e->in_len += d->len;
	} else {
		if (e->in_num)
			return -1; /* device-readable after device-writable */
		e->out_len += d->len;
	}
	if (d->len == 0)
		return 0; /* nothing to transfer; allowed, and skipped */
	p = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!p || e->out_num + e->in_num >= VIRTQ_MAX_SEGS)
		return -1;
	iov = &e->iov[e->out_num + e->in_num];
	iov->iov_base = p;
	iov->iov_len = d->len;
	if (d->flags & VIRTQ_DESC_F_WRITE)
		e->in_num++;
	else
		e->out_num++;
	return 0;
}

static int walk_chain(struct virtq *q, uint16_t head, struct virtq_elem *e)
{
	const uint8_t *table = (const uint8_t *)q->desc;
	uint32_t table_size = q->size, i = head, visited = 0;
	bool indirect = false;
	struct virtq_desc d;

	for (;;) {
		/* One read of what the guest wrote; an indirect table need not
		 * be aligned, so it is read as bytes. */
		memcpy(&d, table + (size_t)i * sizeof(d), sizeof(d));
		if (++visited > VIRTQ_MAX_SEGS)
			return -1; /* a loop, or longer than any request we take */
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* One level only, and it must be the whole chain. */
			if (!q->indirect || indirect || (d.flags & VIRTQ_DESC_F_NEXT) ||
			    d.len == 0 || d.len % sizeof(d) || d.len / sizeof(d) > VIRTQ_MAX_SEGS)
				return -1;
			table = guest_mem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return -1;
			table_size = d.len / sizeof(d);
			indirect = true;
			i = 0;
			/* The table's entries are the buffers: the descriptor
			 * that points at it is not one of them. */
			visited = 0;
			continue;
		}
		if (add_buffer(q, e, &d) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= table_size)
			return -1;
	}
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	uint16_t idx, head;

	if (!q->ready)
		return 0;
	idx = avail_idx(q);
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->size)
		return -1; /* more available than the ring holds */
	head = load16(&q->avail->ring[q->last_avail & (q->size - 1)]);
	if (head >= q->size)
		return -1;
	e->head = head;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	if (walk_chain(q, head, e) < 0)
		return -1;
	q->last_avail++;
	if (q->event_idx && q->notify_enabled)
		set_avail_event(q, q->last_avail);
	return 1;
}

void virtq_unpop(struct virtq *q, uint16_t n)
{
	q->last_avail -= n;
	if (q->event_idx && q->notify_enabled)
		set_avail_event(q, q->last_avail);
}

/* While a migration tracks Vireo's writes into guest RAM: the used ring
 * (its entries, index, flags and avail_event) and the buffers of the
 * chain given back. The chain is walked again from the descriptor table
 * rather than remembered from virtq_pop(), so a chain popped before the
 * tracking began is covered too; a guest that rewrote its descriptors in
 * the meantime only fools itself. */
static void mark_used_ring(const struct virtq *q)
{
	/* flags, idx, the ring, avail_event */
	guest_mem_mark_written(q->mem, q->used, 4 + 8 * (size_t)q->size + 2);
}

static void mark_chain_written(struct virtq *q, uint16_t head)
{
	struct virtq_elem e;
	unsigned int i;

	e.out_num = e.in_num = 0;
	e.out_len = e.in_len = 0;
	if (head >= q->size || walk_chain(q, head, &e) < 0)
		return;
	for (i = e.out_num; i < (unsigned int)e.out_num + e.in_num; i++)
		guest_mem_mark_written(q->mem, e.iov[i].iov_base, e.iov[i].iov_len);
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	struct virtq_used_elem *u = &q->used->ring[q->used_idx & (q->size - 1)];
	bool tracking = guest_mem_tracking(q->mem);

	/* Every page is marked after its write, never before: a migration
	 * that took the marks between a mark and its write would send the
	 * page without the write and never see it again. The chain's
	 * buffers are written by now; they are walked before the used
	 * index is published, after which the driver may reuse the
	 * descriptors. */
	if (tracking)
		mark_chain_written(q, head);
	__atomic_store_n(&u->id, (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, len, __ATOMIC_RELAXED);
	q->used_idx++;
	/* Release: the element is visible before the index that covers it. */
	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
	if (tracking)
		mark_used_ring(q);
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old = q->signalled_used, now = q->used_idx, used_event;
	bool valid = q->signalled_used_valid;

	/* The used index store must be visible before we read what the
	 * driver asked for, or both sides may wait for each other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(load16(&q->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	q->signalled_used = now;
	q->signalled_used_valid = true;
	if (!valid)
		return true;
	used_event = load16(&q->avail->ring[q->size]);
	/* vring_need_event(): did now pass used_event since old? */
	return (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
}

void virtq_disable_notify(struct virtq *q)
{
	q->notify_enabled = false;
	if (!q->event_idx) {
		store16(&q->used->flags, VIRTQ_USED_F_NO_NOTIFY);
		guest_mem_mark_written(q->mem, &q->used->flags, 2);
	}
}

bool virtq_enable_notify(struct virtq *q)
{
	q->notify_enabled = true;
	if (q->event_idx)
		set_avail_event(q, q->last_avail);
	else {
		store16(&q->used->flags, 0);
		guest_mem_mark_written(q->mem, &q->used->flags, 2);
	}
	/* Our request for notifications must be visible before we look at
	 * the index once more, or a buffer added in between is missed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !virtq_empty(q);
}
