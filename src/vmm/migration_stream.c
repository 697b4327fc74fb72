/* The live-migration stream (vmm/migration_stream.h). */
#include "vmm/migration_stream.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/clock.h"
#include "util/file.h"
#include "util/le.h"
#include "util/zero.h"
#include "vmm/snapshot_file.h"

/* The stage: one whole 'P' record of MIG_MAX_RUN pages and its header. */
#define P_HEADER 21
#define MIG_STAGE ((size_t)MIG_MAX_RUN * MIG_PAGE + 64)

uint64_t mig_checksum(const void *p, size_t n)
{
	return XXH64(p, n, 0);
}

int mig_out_init(struct mig_out *o, int fd, uint64_t max_bw, volatile bool *cancel)
{
	memset(o, 0, sizeof(*o));
	o->fd = fd;
	o->max_bw = max_bw;
	o->cancel = cancel;
	o->buf = malloc(MIG_STAGE);
	return o->buf ? 0 : -1;
}

void mig_out_free(struct mig_out *o)
{
	free(o->buf);
	o->buf = NULL;
}

/* The rate limit, after n more bytes went out: waits until the bytes
 * sent since the limit's reference time would have taken that long at
 * max_bw. A record larger than a second's worth is paid for after it.
 * Time the sender spent idle is not saved up beyond a tenth of a second,
 * so a pause is not followed by a burst. A cancel cuts the wait short. */
static void rate_limit(struct mig_out *o, size_t n)
{
	uint64_t now, due;

	if (!o->max_bw)
		return;
	now = monotonic_ns();
	if (!o->window_start ||
	    now > o->window_start + o->window_bytes * 1000000000u / o->max_bw + 100000000u) {
		o->window_start = now;
		o->window_bytes = 0;
	}
	o->window_bytes += n;
	due = o->window_start + o->window_bytes * 1000000000u / o->max_bw;
	while ((now = monotonic_ns()) < due &&
	       !(o->cancel && __atomic_load_n(o->cancel, __ATOMIC_ACQUIRE))) {
		uint64_t left = due - now < 50000000u ? due - now : 50000000u;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)left };

		nanosleep(&ts, NULL);
	}
}

static int send_iov(struct mig_out *o, struct iovec *iov, int cnt)
{
	size_t total = 0;
	int i;

	for (i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	while (cnt) {
		ssize_t w;

		if (o->cancel && __atomic_load_n(o->cancel, __ATOMIC_ACQUIRE)) {
			errno = ECANCELED;
			return -1;
		}
		w = writev(o->fd, iov, cnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		o->sent += (uint64_t)w;
		while (cnt && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	rate_limit(o, total);
	return 0;
}

static int send_bytes(struct mig_out *o, const void *p, size_t n)
{
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };

	return send_iov(o, &iov, 1);
}

int mig_out_flush(struct mig_out *o)
{
	size_t n = o->used;

	o->used = 0;
	return n ? send_bytes(o, o->buf, n) : 0;
}

/* Room for n more bytes in the stage (n <= MIG_STAGE): what is there is
 * sent first if they would not fit. Where they go, or NULL. */
static uint8_t *stage(struct mig_out *o, size_t n)
{
	uint8_t *at;

	if (o->used + n > MIG_STAGE && mig_out_flush(o) < 0)
		return NULL;
	at = o->buf + o->used;
	o->used += n;
	return at;
}

int mig_send_header(struct mig_out *o, uint32_t ncpus, uint64_t ram_size, uint64_t low_size)
{
	uint8_t *h = stage(o, 32);

	if (!h)
		return -1;
	memcpy(h, MIG_MAGIC, 8);
	le32_put(h + 8, MIG_VERSION);
	le32_put(h + 12, ncpus);
	le64_put(h + 16, ram_size);
	le64_put(h + 24, low_size);
	return 0;
}

/* One 'P' record, staged: the pages are copied first, so the checksum is
 * of exactly the bytes sent even while the guest writes them (the dirty
 * log then has them sent again). */
static int send_run(struct mig_out *o, const uint8_t *ram, uint64_t first, uint32_t count)
{
	size_t len = (size_t)count * MIG_PAGE;
	uint8_t *h = stage(o, P_HEADER + len);

	if (!h)
		return -1;
	memcpy(h + P_HEADER, ram + first * MIG_PAGE, len);
	h[0] = 'P';
	le64_put(h + 1, first);
	le32_put(h + 9, count);
	le64_put(h + 13, mig_checksum(h + P_HEADER, len));
	return 0;
}

static int send_zero(struct mig_out *o, uint64_t first, uint32_t count)
{
	uint8_t *h = stage(o, 13);

	if (!h)
		return -1;
	h[0] = 'Z';
	le64_put(h + 1, first);
	le32_put(h + 9, count);
	return 0;
}

int mig_send_pages(struct mig_out *o, const uint8_t *ram, uint64_t first, uint64_t count,
		   bool zeros_too, uint64_t *zero_pages)
{
	uint64_t end = first + count, at = first;

	while (at < end) {
		const uint8_t *p = ram + at * MIG_PAGE;
		uint64_t run, left = end - at;

		if (buffer_is_zero(p, MIG_PAGE)) {
			run = zero_run(p, left < UINT32_MAX ? left : UINT32_MAX, MIG_PAGE, true);
			if (zeros_too && send_zero(o, at, (uint32_t)run) < 0)
				return -1;
			*zero_pages += run;
		} else {
			run = zero_run(p, left < MIG_MAX_RUN ? left : MIG_MAX_RUN, MIG_PAGE, false);
			if (send_run(o, ram, at, (uint32_t)run) < 0)
				return -1;
		}
		at += run;
	}
	return 0;
}

int mig_send_section(struct mig_out *o, uint32_t kind, uint32_t index, const void *buf,
		     size_t len)
{
	uint8_t h[21];
	struct iovec iov[2];

	if (mig_out_flush(o) < 0) /* RAM staged before it goes first */
		return -1;
	h[0] = 'S';
	le32_put(h + 1, kind);
	le32_put(h + 5, index);
	le32_put(h + 9, (uint32_t)len);
	le64_put(h + 13, mig_checksum(buf, len));
	iov[0] = (struct iovec){ .iov_base = h, .iov_len = sizeof(h) };
	iov[1] = (struct iovec){ .iov_base = (void *)buf, .iov_len = len };
	return send_iov(o, iov, 2);
}

int mig_send_end(struct mig_out *o)
{
	uint8_t *e = stage(o, 1);

	if (!e)
		return -1;
	*e = 'E';
	return mig_out_flush(o);
}

int mig_send_reply(int fd, uint32_t status, const char *msg)
{
	size_t len = strnlen(msg, MIG_MAX_REPLY);
	uint8_t h[16];

	memcpy(h, MIG_ACK_MAGIC, 8);
	le32_put(h + 8, status);
	le32_put(h + 12, (uint32_t)len);
	return write_full(fd, h, sizeof(h)) < 0 || write_full(fd, msg, len) < 0 ? -1 : 0;
}

static int read_exact(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int mig_read_reply(int fd, uint32_t *status, char *msg, size_t size)
{
	uint8_t h[16];
	char text[MIG_MAX_REPLY + 1];
	uint32_t len;

	if (read_exact(fd, h, sizeof(h)) < 0)
		return -1;
	len = le32_get(h + 12);
	if (memcmp(h, MIG_ACK_MAGIC, 8) || len > MIG_MAX_REPLY) {
		errno = EPROTO;
		return -1;
	}
	if (read_exact(fd, text, len) < 0)
		return -1;
	text[len] = 0;
	*status = le32_get(h + 8);
	snprintf(msg, size, "%s", text);
	return 0;
}

/* ---- the destination's reader ---------------------------------------- */

static int read_header(mig_read_fn rd, void *ctx, const struct mig_target *t, struct error *err)
{
	uint8_t h[32];
	uint32_t ncpus;
	uint64_t size, low;

	if (rd(ctx, h, sizeof(h)) < 0)
		return error_set(err, "the stream ended before its header");
	if (memcmp(h, MIG_MAGIC, 8))
		return error_set(err, "not a Vireo migration stream");
	if (le32_get(h + 8) != MIG_VERSION)
		return error_set(err, "stream version %u, this Vireo reads version %d",
				 le32_get(h + 8), MIG_VERSION);
	ncpus = le32_get(h + 12);
	size = le64_get(h + 16);
	low = le64_get(h + 24);
	return vm_state_same_machine("the source is", ncpus, size, low, t->ncpus, t->ram_size,
				     t->low_size, err);
}

/* A page run inside RAM (overflow-safe). */
static bool run_fits(const struct mig_target *t, uint64_t first, uint32_t count)
{
	uint64_t pages = t->ram_size / MIG_PAGE;

	return count && first < pages && count <= pages - first;
}

int mig_receive(mig_read_fn rd, void *ctx, const struct mig_target *t,
		struct vm_state_loaded *l, unsigned int *n, uint64_t *bytes, struct error *err)
{
	uint8_t h[20];
	uint8_t type;

	*n = 0;
	*bytes = 32;
	if (read_header(rd, ctx, t, err) < 0)
		return -1;
	for (;;) {
		if (rd(ctx, &type, 1) < 0)
			return error_set(err, "the stream ended before its end record");
		*bytes += 1;
		switch (type) {
		case 'P': {
			uint64_t first, sum;
			uint32_t count;
			uint8_t *dst;

			if (rd(ctx, h, 20) < 0)
				return error_set(err, "the stream ended inside a record");
			first = le64_get(h);
			count = le32_get(h + 8);
			sum = le64_get(h + 12);
			if (count > MIG_MAX_RUN || !run_fits(t, first, count))
				return error_set(err, "pages %llu+%u are not in guest RAM",
						 (unsigned long long)first, count);
			dst = t->ram + first * MIG_PAGE;
			if (rd(ctx, dst, (size_t)count * MIG_PAGE) < 0)
				return error_set(err, "the stream ended inside a record");
			if (mig_checksum(dst, (size_t)count * MIG_PAGE) != sum)
				return error_set(err, "pages %llu+%u are damaged (checksum)",
						 (unsigned long long)first, count);
			*bytes += 20 + (uint64_t)count * MIG_PAGE;
			break;
		}
		case 'Z': {
			uint64_t first;
			uint32_t count;

			if (rd(ctx, h, 12) < 0)
				return error_set(err, "the stream ended inside a record");
			first = le64_get(h);
			count = le32_get(h + 8);
			if (!run_fits(t, first, count))
				return error_set(err, "pages %llu+%u are not in guest RAM",
						 (unsigned long long)first, count);
			memset(t->ram + first * MIG_PAGE, 0, (size_t)count * MIG_PAGE);
			*bytes += 12;
			break;
		}
		case 'S': {
			struct vm_state_loaded *s;
			uint64_t sum;
			uint32_t len;
			uint8_t *buf;

			if (rd(ctx, h, 20) < 0)
				return error_set(err, "the stream ended inside a record");
			len = le32_get(h + 8);
			sum = le64_get(h + 12);
			if (*n >= SNAPSHOT_MAX_SECTIONS)
				return error_set(err, "more than %d sections", SNAPSHOT_MAX_SECTIONS);
			if (len > SNAPSHOT_META_MAX)
				return error_set(err, "a section of %u bytes", len);
			buf = malloc(len ? len : 1);
			if (!buf)
				return error_set(err, "out of memory");
			s = &l[(*n)++];
			*s = (struct vm_state_loaded){ .kind = le32_get(h), .index = le32_get(h + 4),
						       .buf = buf, .len = len };
			if (rd(ctx, buf, len) < 0)
				return error_set(err, "the stream ended inside a record");
			if (mig_checksum(buf, len) != sum)
				return error_set(err, "a section is damaged (checksum)");
			*bytes += 20 + len;
			break;
		}
		case 'E':
			return 0;
		default:
			return error_set(err, "unknown record type 0x%02x", type);
		}
	}
}

void mig_sections_free(struct vm_state_loaded *l, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		free((void *)l[i].buf);
}
