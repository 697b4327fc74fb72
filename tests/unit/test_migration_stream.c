/* The live-migration stream (vmm/migration_stream.c): what the source
 * writes reads back as exactly its RAM and sections; every kind of hostile
 * or truncated stream is refused with a message before anything but the
 * target RAM is written; the reply, the cancel flag and the rate limit.
 * Also the write tracking migration relies on: guest_mem's bitmap of the
 * pages Vireo wrote, and the virtqueue marking the used ring and the
 * buffers it gives back. */
#include "cmocka_prelude.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mem/guest_mem.h"
#include "util/le.h"
#include "util/size.h"
#include "util/state.h"
#include "virtio/virtqueue.h"
#include "vmm/migration_stream.h"
#include "vmm/snapshot_file.h"

#define PAGE MIG_PAGE
#define MIB (1ULL << 20)
#define GUARD (2 * PAGE)
#define GUARD_BYTE 0x5a

/* ---- helpers ----------------------------------------------------------- */

/* A stream in memory, read back as mig_receive() reads a socket. */
struct mem_stream {
	const uint8_t *p;
	size_t len, pos;
};

static int mem_read(void *ctx, void *buf, size_t n)
{
	struct mem_stream *s = ctx;

	if (n > s->len - s->pos)
		return -1;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	return 0;
}

/* Target RAM between two guard areas that must never change. */
struct target_ram {
	uint8_t *block;
	struct mig_target t;
};

static void target_init(struct target_ram *r, uint32_t ncpus, uint64_t size, uint64_t low,
			uint8_t fill)
{
	r->block = malloc(size + 2 * GUARD);
	assert_non_null(r->block);
	memset(r->block, GUARD_BYTE, GUARD);
	memset(r->block + GUARD + size, GUARD_BYTE, GUARD);
	memset(r->block + GUARD, fill, size);
	r->t = (struct mig_target){ .ram = r->block + GUARD, .ram_size = size, .low_size = low,
				    .ncpus = ncpus };
}

static void assert_guards_intact(const struct target_ram *r)
{
	size_t i;

	for (i = 0; i < GUARD; i++) {
		assert_int_equal(r->block[i], GUARD_BYTE);
		assert_int_equal(r->block[GUARD + r->t.ram_size + i], GUARD_BYTE);
	}
}

static void assert_all_ctx(const uint8_t *p, size_t n, uint8_t v, const char *ctx)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			fail_msg("[%s] byte %zu is 0x%02x, not 0x%02x", ctx, i, p[i], v);
}

static void assert_all(const uint8_t *p, size_t n, uint8_t v)
{
	assert_all_ctx(p, n, v, "");
}

static void target_free(struct target_ram *r)
{
	assert_guards_intact(r);
	free(r->block);
}

/* A writer into a memfd: the bytes the source would put on the wire. */
struct capture {
	int fd;
	struct mig_out o;
};

static void capture_start(struct capture *c, uint64_t max_bw, volatile bool *cancel)
{
	c->fd = memfd_create("mig-stream", 0);
	assert_true(c->fd >= 0);
	assert_int_equal(mig_out_init(&c->o, c->fd, max_bw, cancel), 0);
}

/* Ends the capture; returns the bytes written (malloc'd), *len of them. */
static uint8_t *capture_end(struct capture *c, size_t *len)
{
	off_t end = lseek(c->fd, 0, SEEK_END);
	uint8_t *buf;

	assert_true(end >= 0);
	assert_int_equal((uint64_t)end, c->o.sent);
	buf = malloc((size_t)end + 1);
	assert_non_null(buf);
	assert_int_equal(pread(c->fd, buf, (size_t)end, 0), end);
	mig_out_free(&c->o);
	close(c->fd);
	*len = (size_t)end;
	return buf;
}

/* A hand-made stream, for what no correct writer sends. */
struct builder {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct builder *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put_u8(struct builder *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put_u32(struct builder *b, uint32_t v)
{
	uint8_t x[4];

	le32_put(x, v);
	put(b, x, 4);
}

static void put_u64(struct builder *b, uint64_t v)
{
	uint8_t x[8];

	le64_put(x, v);
	put(b, x, 8);
}

static void put_header_raw(struct builder *b, const char *magic, uint32_t version,
			   uint32_t ncpus, uint64_t size, uint64_t low)
{
	put(b, magic, 8);
	put_u32(b, version);
	put_u32(b, ncpus);
	put_u64(b, size);
	put_u64(b, low);
}

static void put_header(struct builder *b, const struct mig_target *t)
{
	put_header_raw(b, MIG_MAGIC, MIG_VERSION, t->ncpus, t->ram_size, t->low_size);
}

/* A 'P' record; data (count pages) may be NULL for a header alone. */
static void put_pages(struct builder *b, uint64_t first, uint32_t count, uint64_t sum,
		      const uint8_t *data, size_t data_len)
{
	put_u8(b, 'P');
	put_u64(b, first);
	put_u32(b, count);
	put_u64(b, sum);
	put(b, data, data_len);
}

static void put_zeros(struct builder *b, uint64_t first, uint32_t count)
{
	put_u8(b, 'Z');
	put_u64(b, first);
	put_u32(b, count);
}

static void put_section(struct builder *b, uint32_t kind, uint32_t index, const void *data,
			uint32_t len, uint64_t sum)
{
	put_u8(b, 'S');
	put_u32(b, kind);
	put_u32(b, index);
	put_u32(b, len);
	put_u64(b, sum);
	put(b, data, len);
}

/* Receives b into r; returns mig_receive's result, err and the sections
 * freed, and checks the guards and the section count's bound. */
static int receive_buf(const uint8_t *p, size_t len, struct target_ram *r, struct error *err,
		       size_t *consumed)
{
	static struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];
	struct mem_stream s = { p, len, 0 };
	unsigned int n = 12345;
	uint64_t bytes = 0;
	int ret;

	memset(err, 0, sizeof(*err));
	ret = mig_receive(mem_read, &s, &r->t, l, &n, &bytes, err);
	assert_true(n <= SNAPSHOT_MAX_SECTIONS);
	mig_sections_free(l, n);
	assert_guards_intact(r);
	if (ret < 0)
		assert_true(err->set);
	else
		assert_int_equal(bytes, s.pos);
	if (consumed)
		*consumed = s.pos;
	return ret;
}

/* Refused, with a message containing want, and the target RAM as it was
 * (every refusal here comes before any page data is read). */
static void assert_refused(struct builder *b, struct target_ram *r, const char *want)
{
	struct error err;

	memset(r->t.ram, 0x77, r->t.ram_size);
	assert_int_equal(receive_buf(b->p, b->len, r, &err, NULL), -1);
	if (!strstr(err.msg, want))
		fail_msg("message '%s' does not contain '%s'", err.msg, want);
	assert_all_ctx(r->t.ram, r->t.ram_size, 0x77, want);
}

/* A source RAM: page i filled from a seed, or zero for pages in zero[]. */
static uint8_t *make_ram(size_t pages, bool (*is_zero)(size_t))
{
	uint8_t *ram = malloc(pages * PAGE);
	size_t i, j;

	assert_non_null(ram);
	for (i = 0; i < pages; i++) {
		uint32_t x = (uint32_t)i * 2654435761u + 1;

		for (j = 0; j < PAGE; j++) {
			x = x * 1103515245u + 12345u;
			ram[i * PAGE + j] = (uint8_t)(x >> 16);
		}
		if (is_zero(i))
			memset(ram + i * PAGE, 0, PAGE);
		else
			ram[i * PAGE + (i % PAGE)] |= 1; /* never all zero by chance */
	}
	return ram;
}

/* 1024 pages: a non-zero run of 600 (longer than MIG_MAX_RUN), zero pages
 * alone and in runs, a zero run at the very end. */
#define RT_PAGES 1024
static bool rt_zero(size_t i)
{
	return (i >= 600 && i < 610) || i == 700 || i == 702 || (i >= 800 && i < 900) ||
	       i >= 1000;
}
#define RT_ZEROS (10 + 2 + 100 + 24)

/* Walks a stream the writer made: the record types and counts. */
struct stream_shape {
	unsigned int p, z, s, e;
	uint64_t p_pages, z_pages;
	uint32_t max_p_run;
};

static void shape_of(const uint8_t *p, size_t len, struct stream_shape *sh)
{
	size_t at = 32;

	memset(sh, 0, sizeof(*sh));
	while (at < len) {
		uint8_t type = p[at++];
		uint32_t count;

		switch (type) {
		case 'P':
			count = le32_get(p + at + 8);
			assert_true(count >= 1 && count <= MIG_MAX_RUN);
			/* The checksum is that of the data that follows. */
			assert_int_equal(le64_get(p + at + 12),
					 mig_checksum(p + at + 20, (size_t)count * PAGE));
			sh->p++;
			sh->p_pages += count;
			if (count > sh->max_p_run)
				sh->max_p_run = count;
			at += 20 + (size_t)count * PAGE;
			break;
		case 'Z':
			sh->z++;
			sh->z_pages += le32_get(p + at + 8);
			at += 12;
			break;
		case 'S':
			sh->s++;
			at += 20 + le32_get(p + at + 8);
			break;
		case 'E':
			sh->e++;
			assert_int_equal(at, len); /* nothing after the end */
			break;
		default:
			fail_msg("record type 0x%02x at %zu", type, at - 1);
		}
	}
	assert_int_equal(at, len);
}

static const uint8_t sec_a[] = "the machine section";
static uint8_t sec_b[100000];

/* ---- the stream: round trips ------------------------------------------ */

static void send_rt_stream(struct mig_out *o, const uint8_t *ram, bool zeros_too,
			   uint64_t *zeros)
{
	unsigned int i;

	for (i = 0; i < sizeof(sec_b); i++)
		sec_b[i] = (uint8_t)(i * 31 + 7);
	*zeros = 0;
	assert_int_equal(mig_send_header(o, 2, RT_PAGES * PAGE, RT_PAGES * PAGE), 0);
	assert_int_equal(mig_send_pages(o, ram, 0, RT_PAGES, zeros_too, zeros), 0);
	assert_int_equal(mig_send_section(o, SNAP_MACHINE, 0, sec_a, sizeof(sec_a)), 0);
	assert_int_equal(mig_send_section(o, SNAP_VCPU, 1, sec_b, sizeof(sec_b)), 0);
	assert_int_equal(mig_send_section(o, SNAP_DEVICES, 7, NULL, 0), 0);
	assert_int_equal(mig_send_end(o), 0);
}

static void check_rt_sections(const struct vm_state_loaded *l, unsigned int n)
{
	assert_int_equal(n, 3);
	assert_int_equal(l[0].kind, SNAP_MACHINE);
	assert_int_equal(l[0].index, 0);
	assert_int_equal(l[0].len, sizeof(sec_a));
	assert_memory_equal(l[0].buf, sec_a, sizeof(sec_a));
	assert_int_equal(l[1].kind, SNAP_VCPU);
	assert_int_equal(l[1].index, 1);
	assert_int_equal(l[1].len, sizeof(sec_b));
	assert_memory_equal(l[1].buf, sec_b, sizeof(sec_b));
	assert_int_equal(l[2].kind, SNAP_DEVICES);
	assert_int_equal(l[2].index, 7);
	assert_int_equal(l[2].len, 0);
	assert_non_null(l[2].buf);
}

static void round_trip(bool zeros_too)
{
	struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];
	struct capture c;
	struct target_ram r;
	struct error err = { 0 };
	struct stream_shape sh;
	uint8_t *src = make_ram(RT_PAGES, rt_zero), *stream;
	uint64_t zeros, bytes = 0;
	unsigned int n = 0;
	size_t len, i;
	struct mem_stream s;

	capture_start(&c, 0, NULL);
	send_rt_stream(&c.o, src, zeros_too, &zeros);
	stream = capture_end(&c, &len);
	assert_int_equal(zeros, RT_ZEROS);

	/* Pages 0..599 as 512 + 88, then 610..699, 701, 703..799, 900..999. */
	shape_of(stream, len, &sh);
	assert_int_equal(sh.max_p_run, MIG_MAX_RUN);
	assert_int_equal(sh.p_pages, RT_PAGES - RT_ZEROS);
	assert_int_equal(sh.p, 6);
	assert_int_equal(sh.s, 3);
	assert_int_equal(sh.e, 1);
	if (zeros_too) {
		assert_int_equal(sh.z, 5); /* 600+10, 700, 702, 800+100, 1000+24 */
		assert_int_equal(sh.z_pages, RT_ZEROS);
	} else {
		assert_int_equal(sh.z, 0);
	}

	/* The destination's RAM starts non-zero: a zero page not sent stays
	 * what it was. */
	target_init(&r, 2, RT_PAGES * PAGE, RT_PAGES * PAGE, 0xee);
	s = (struct mem_stream){ stream, len, 0 };
	assert_int_equal(mig_receive(mem_read, &s, &r.t, l, &n, &bytes, &err), 0);
	assert_false(err.set);
	assert_int_equal(s.pos, len);
	assert_int_equal(bytes, len);
	check_rt_sections(l, n);
	mig_sections_free(l, n);
	for (i = 0; i < RT_PAGES; i++) {
		if (rt_zero(i) && !zeros_too)
			assert_all(r.t.ram + i * PAGE, PAGE, 0xee);
		else
			assert_memory_equal(r.t.ram + i * PAGE, src + i * PAGE, PAGE);
	}
	target_free(&r);
	free(stream);
	free(src);
}

static void test_round_trip_zeros_too(void **state)
{
	(void)state;
	round_trip(true);
}

static void test_round_trip_zeros_skipped(void **state)
{
	(void)state;
	round_trip(false);
}

static bool none_zero(size_t i)
{
	(void)i;
	return false;
}

static bool all_zero(size_t i)
{
	(void)i;
	return true;
}

/* Pre-copy: pages sent again after the guest changed them; the last copy
 * wins, also when a page became zero. Ranges not starting at 0. */
static void test_resent_pages_last_wins(void **state)
{
	struct capture c;
	struct target_ram r;
	struct error err;
	uint8_t *src = make_ram(64, none_zero), *stream;
	uint64_t zeros = 0;
	size_t len;

	(void)state;
	capture_start(&c, 0, NULL);
	assert_int_equal(mig_send_header(&c.o, 1, 64 * PAGE, 64 * PAGE), 0);
	assert_int_equal(mig_send_pages(&c.o, src, 0, 64, false, &zeros), 0);
	assert_int_equal(zeros, 0);
	memset(src + 10 * PAGE, 0xab, 3 * PAGE); /* dirtied */
	memset(src + 40 * PAGE, 0, 2 * PAGE);    /* now zero */
	assert_int_equal(mig_send_pages(&c.o, src, 10, 3, true, &zeros), 0);
	assert_int_equal(mig_send_pages(&c.o, src, 39, 4, true, &zeros), 0);
	assert_int_equal(zeros, 2);
	/* An empty range sends nothing. */
	assert_int_equal(mig_send_pages(&c.o, src, 5, 0, true, &zeros), 0);
	assert_int_equal(mig_send_end(&c.o), 0);
	stream = capture_end(&c, &len);

	target_init(&r, 1, 64 * PAGE, 64 * PAGE, 0x11);
	assert_int_equal(receive_buf(stream, len, &r, &err, NULL), 0);
	assert_memory_equal(r.t.ram, src, 64 * PAGE);
	target_free(&r);
	free(stream);
	free(src);
}

/* A zero run is not bounded by MIG_MAX_RUN: one 'Z' for all of RAM. */
static void test_zero_ram(void **state)
{
	struct capture c;
	struct target_ram r;
	struct error err;
	struct stream_shape sh;
	uint8_t *src = make_ram(1500, all_zero), *stream;
	uint64_t zeros = 0;
	size_t len;

	(void)state;
	capture_start(&c, 0, NULL);
	assert_int_equal(mig_send_header(&c.o, 1, 1500 * PAGE, 1500 * PAGE), 0);
	assert_int_equal(mig_send_pages(&c.o, src, 0, 1500, true, &zeros), 0);
	assert_int_equal(mig_send_end(&c.o), 0);
	stream = capture_end(&c, &len);
	assert_int_equal(zeros, 1500);
	assert_int_equal(len, 32 + 13 + 1);
	shape_of(stream, len, &sh);
	assert_int_equal(sh.z, 1);
	assert_int_equal(sh.z_pages, 1500);

	target_init(&r, 1, 1500 * PAGE, 1500 * PAGE, 0x99);
	assert_int_equal(receive_buf(stream, len, &r, &err, NULL), 0);
	assert_all(r.t.ram, 1500 * PAGE, 0);
	target_free(&r);
	free(stream);
	free(src);
}

/* Over a real socket, the writer in its own thread (the socket buffer is
 * far smaller than the stream), then the destination's reply back. */
struct sock_writer {
	int fd;
	const uint8_t *ram;
	uint64_t zeros;
	int ret;
	uint32_t status;
	char msg[MIG_MAX_REPLY + 1];
	int reply_ret;
};

static void *writer_thread(void *arg)
{
	struct sock_writer *w = arg;
	struct mig_out o;

	w->ret = -1;
	if (mig_out_init(&o, w->fd, 0, NULL) < 0)
		return NULL;
	w->zeros = 0;
	w->ret = mig_send_header(&o, 2, RT_PAGES * PAGE, RT_PAGES * PAGE) < 0 ||
			 mig_send_pages(&o, w->ram, 0, RT_PAGES, true, &w->zeros) < 0 ||
			 mig_send_section(&o, SNAP_MACHINE, 0, sec_a, sizeof(sec_a)) < 0 ||
			 mig_send_section(&o, SNAP_VCPU, 1, sec_b, sizeof(sec_b)) < 0 ||
			 mig_send_section(&o, SNAP_DEVICES, 7, NULL, 0) < 0 || mig_send_end(&o) < 0
		 ? -1
		 : 0;
	mig_out_free(&o);
	w->reply_ret = mig_read_reply(w->fd, &w->status, w->msg, sizeof(w->msg));
	return NULL;
}

static int fd_read(void *ctx, void *buf, size_t n)
{
	int fd = *(int *)ctx;
	uint8_t *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void test_socket_round_trip(void **state)
{
	struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];
	struct sock_writer w = { 0 };
	struct target_ram r;
	struct error err = { 0 };
	pthread_t th;
	int sv[2];
	unsigned int n = 0;
	uint64_t bytes = 0;
	uint8_t *src = make_ram(RT_PAGES, rt_zero);

	(void)state;
	for (size_t i = 0; i < sizeof(sec_b); i++)
		sec_b[i] = (uint8_t)(i * 31 + 7);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	w.fd = sv[0];
	w.ram = src;
	assert_int_equal(pthread_create(&th, NULL, writer_thread, &w), 0);
	target_init(&r, 2, RT_PAGES * PAGE, RT_PAGES * PAGE, 0xee);
	assert_int_equal(mig_receive(fd_read, &sv[1], &r.t, l, &n, &bytes, &err), 0);
	check_rt_sections(l, n);
	mig_sections_free(l, n);
	assert_memory_equal(r.t.ram, src, RT_PAGES * PAGE);
	assert_int_equal(mig_send_reply(sv[1], 0, "running"), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.ret, 0);
	assert_int_equal(w.zeros, RT_ZEROS);
	assert_int_equal(w.reply_ret, 0);
	assert_int_equal(w.status, 0);
	assert_string_equal(w.msg, "running");
	close(sv[0]);
	close(sv[1]);
	target_free(&r);
	free(src);
}

/* ---- the stream: hostile input ---------------------------------------- */

#define H_PAGES 16
#define H_SIZE (H_PAGES * PAGE)

static void test_bad_header(void **state)
{
	struct builder b = { 0 };
	struct target_ram r;
	static uint8_t data[PAGE];

	(void)state;
	memset(data, 0x42, sizeof(data));
	target_init(&r, 2, H_SIZE, H_SIZE, 0);

	/* Each followed by a valid page record, which must not land. */
#define WITH_PAGE(b) put_pages(b, 0, 1, mig_checksum(data, PAGE), data, PAGE), put_u8(b, 'E')
	put_header_raw(&b, "VIREOSNP", MIG_VERSION, 2, H_SIZE, H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "not a Vireo migration stream");
	b.len = 0;
	put_header_raw(&b, "vireomig", MIG_VERSION, 2, H_SIZE, H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "not a Vireo migration stream");
	b.len = 0;
	put_header_raw(&b, MIG_MAGIC, MIG_VERSION + 1, 2, H_SIZE, H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "stream version 3, this Vireo reads version 2");
	/* Version 1 (CRC-32 checksums, 16-byte record headers): refused by
	 * its number, not misread. */
	b.len = 0;
	put_header_raw(&b, MIG_MAGIC, 1, 2, H_SIZE, H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "stream version 1, this Vireo reads version 2");
	b.len = 0;
	put_header_raw(&b, MIG_MAGIC, 0, 2, H_SIZE, H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "stream version 0");

	/* Another machine: the message says which options would fit it. */
	b.len = 0;
	put_header_raw(&b, MIG_MAGIC, MIG_VERSION, 4, H_SIZE, H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "--cpus 4");
	b.len = 0;
	put_header_raw(&b, MIG_MAGIC, MIG_VERSION, 2, 2 * H_SIZE, 2 * H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "--cpus 2 --memory");
	b.len = 0;
	put_header_raw(&b, MIG_MAGIC, MIG_VERSION, 2, H_SIZE, H_SIZE / 2); /* another split */
	WITH_PAGE(&b);
	assert_refused(&b, &r, "--cpus 2");
	b.len = 0;
	put_header_raw(&b, MIG_MAGIC, MIG_VERSION, 0, H_SIZE, H_SIZE);
	WITH_PAGE(&b);
	assert_refused(&b, &r, "--cpus 0");

	/* Nothing, and a header cut short. */
	b.len = 0;
	assert_refused(&b, &r, "ended before its header");
	put_header_raw(&b, MIG_MAGIC, MIG_VERSION, 2, H_SIZE, H_SIZE);
	b.len = 31;
	assert_refused(&b, &r, "ended before its header");
#undef WITH_PAGE
	free(b.p);
	target_free(&r);
}

/* The options the refusal names would start a machine the stream fits:
 * "--memory X" parses back to the source's RAM size, for any size
 * --memory accepts (a whole number of 4 KiB pages).
 *
 * BUG (left failing on purpose, see the report; in vmm/vm_state.c, not
 * this stream's code): size_text() prints any size that is not a whole
 * number of GiB as whole MiB, rounded down, so a source with
 * --memory 256K is named "--memory 0M", and 1G + 4K as "--memory 1024M". */
static void test_machine_message_memory(void **state)
{
	static const uint64_t sizes[] = { 3ULL << 30, 1536 * MIB, 64 * MIB, 256 << 10,
					  (1ULL << 30) + PAGE, 1 * MIB + 12 * PAGE };
	struct target_ram r;
	struct builder b = { 0 };
	struct error err;
	unsigned int i, bad = 0;

	(void)state;
	target_init(&r, 1, 4 * PAGE, 4 * PAGE, 0);
	for (i = 0; i < ARRAY_LEN(sizes); i++) {
		const char *opt;
		char text[64];
		uint64_t parsed = 0;

		b.len = 0;
		put_header_raw(&b, MIG_MAGIC, MIG_VERSION, 1, sizes[i], sizes[i]);
		put_u8(&b, 'E');
		assert_int_equal(receive_buf(b.p, b.len, &r, &err, NULL), -1);
		opt = strstr(err.msg, "--memory ");
		assert_non_null(opt);
		snprintf(text, sizeof(text), "%s", opt + strlen("--memory "));
		text[strcspn(text, " :,")] = 0;
		if (parse_size(text, &parsed) < 0 || parsed != sizes[i]) {
			print_error("a source of %llu bytes is named as '--memory %s' (%llu bytes): "
				    "'%s'\n", (unsigned long long)sizes[i], text,
				    (unsigned long long)parsed, err.msg);
			bad++;
		}
	}
	free(b.p);
	target_free(&r);
	assert_int_equal(bad, 0);
}

static void test_bad_page_runs(void **state)
{
	static const struct {
		char type;
		uint64_t first;
		uint32_t count;
	} bad[] = {
		{ 'P', H_PAGES, 1 },
		{ 'P', H_PAGES - 1, 2 },
		{ 'P', 0, H_PAGES + 1 },
		{ 'P', 0, 0 },
		{ 'P', 3, 0 },
		{ 'P', UINT64_MAX, 1 },
		{ 'P', UINT64_MAX - 1, 4 },	       /* first + count wraps */
		{ 'P', 1ULL << 52, 16 },	       /* first * 4096 wraps */
		{ 'P', UINT64_MAX / PAGE, 1 },
		{ 'P', 0, MIG_MAX_RUN + 1 },	       /* fits the big target: too long */
		{ 'P', 0, UINT32_MAX },
		{ 'Z', H_PAGES, 1 },
		{ 'Z', H_PAGES - 1, 2 },
		{ 'Z', 0, 0 },
		{ 'Z', UINT64_MAX - 1, 4 },
		{ 'Z', 1ULL << 52, 16 },
		{ 'Z', 0, UINT32_MAX },
	};
	static uint8_t data[4 * PAGE];
	struct target_ram small, big;
	struct builder b = { 0 };
	struct error err;
	unsigned int i;

	(void)state;
	memset(data, 0x42, sizeof(data));
	target_init(&small, 1, H_SIZE, H_SIZE, 0);
	target_init(&big, 1, 2 * MIG_MAX_RUN * PAGE, 2 * MIG_MAX_RUN * PAGE, 0);
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		struct target_ram *r = bad[i].count == MIG_MAX_RUN + 1 ? &big : &small;
		char want[80];

		b.len = 0;
		put_header(&b, &r->t);
		if (bad[i].type == 'P')
			/* Data follows: a reader that took it would write RAM. */
			put_pages(&b, bad[i].first, bad[i].count, mig_checksum(data, sizeof(data)),
				  data, sizeof(data));
		else
			put_zeros(&b, bad[i].first, bad[i].count);
		put_u8(&b, 'E');
		snprintf(want, sizeof(want), "pages %llu+%u are not in guest RAM",
			 (unsigned long long)bad[i].first, bad[i].count);
		assert_refused(&b, r, want);
	}

	/* The limits themselves are fine: the last page, all of RAM, a 'Z'
	 * longer than MIG_MAX_RUN. */
	b.len = 0;
	put_header(&b, &small.t);
	put_pages(&b, H_PAGES - 1, 1, mig_checksum(data, PAGE), data, PAGE);
	put_zeros(&b, 0, H_PAGES);
	put_pages(&b, H_PAGES - 4, 4, mig_checksum(data, 4 * PAGE), data, 4 * PAGE);
	put_u8(&b, 'E');
	memset(small.t.ram, 0x77, H_SIZE);
	assert_int_equal(receive_buf(b.p, b.len, &small, &err, NULL), 0);
	assert_all(small.t.ram, H_SIZE - 4 * PAGE, 0);
	assert_all(small.t.ram + H_SIZE - 4 * PAGE, 4 * PAGE, 0x42);

	b.len = 0;
	put_header(&b, &big.t);
	put_zeros(&b, 0, 2 * MIG_MAX_RUN);
	put_u8(&b, 'E');
	memset(big.t.ram, 0x77, big.t.ram_size);
	assert_int_equal(receive_buf(b.p, b.len, &big, &err, NULL), 0);
	assert_all(big.t.ram, big.t.ram_size, 0);

	free(b.p);
	target_free(&small);
	target_free(&big);
}

/* The stream's checksum is XXH64 with seed 0, as the format says: a
 * known answer from xxHash's own test vectors pins it, so that another
 * implementation (or a library change) cannot drift unnoticed. */
static void test_checksum_is_xxh64(void **state)
{
	(void)state;
	assert_true(mig_checksum(NULL, 0) == 0xEF46DB3751D8E999ULL);
	assert_true(mig_checksum("a", 1) == 0xD24EC4F1A98C6E5BULL);
	assert_true(mig_checksum("abc", 3) == 0x44BC2CF5AD770999ULL);
}

static void test_bad_checksum(void **state)
{
	static uint8_t data[2 * PAGE];
	struct target_ram r;
	struct builder b = { 0 };
	struct error err;

	(void)state;
	memset(data, 0x42, sizeof(data));
	target_init(&r, 1, H_SIZE, H_SIZE, 0);

	b.len = 0;
	put_header(&b, &r.t);
	put_pages(&b, 2, 2, mig_checksum(data, sizeof(data)) ^ 1, data, sizeof(data));
	put_u8(&b, 'E');
	assert_int_equal(receive_buf(b.p, b.len, &r, &err, NULL), -1);
	assert_string_equal(err.msg, "pages 2+2 are damaged (checksum)");

	/* The checksum covers every byte. */
	b.len = 0;
	put_header(&b, &r.t);
	put_pages(&b, 0, 2, mig_checksum(data, sizeof(data)), data, sizeof(data));
	b.p[b.len - 1] ^= 0x80;
	put_u8(&b, 'E');
	assert_int_equal(receive_buf(b.p, b.len, &r, &err, NULL), -1);
	assert_string_equal(err.msg, "pages 0+2 are damaged (checksum)");

	/* A section: refused, and its buffer freed by mig_sections_free()
	 * (LeakSanitizer would say otherwise). */
	b.len = 0;
	put_header(&b, &r.t);
	put_section(&b, SNAP_MACHINE, 0, "abc", 3, mig_checksum("abc", 3));
	put_section(&b, SNAP_VCPU, 0, "defg", 4, mig_checksum("defh", 4));
	put_u8(&b, 'E');
	assert_int_equal(receive_buf(b.p, b.len, &r, &err, NULL), -1);
	assert_string_equal(err.msg, "a section is damaged (checksum)");
	/* An empty section's checksum is XXH64's of nothing, not 0. */
	b.len = 0;
	put_header(&b, &r.t);
	put_section(&b, SNAP_MACHINE, 0, NULL, 0, 0);
	put_u8(&b, 'E');
	assert_int_equal(receive_buf(b.p, b.len, &r, &err, NULL), -1);
	assert_string_equal(err.msg, "a section is damaged (checksum)");
	b.len = 0;
	put_header(&b, &r.t);
	put_section(&b, SNAP_MACHINE, 0, NULL, 0, mig_checksum(NULL, 0));
	put_u8(&b, 'E');
	assert_int_equal(receive_buf(b.p, b.len, &r, &err, NULL), 0);

	free(b.p);
	target_free(&r);
}

static void test_section_limits(void **state)
{
	static struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];
	struct target_ram r;
	struct builder b = { 0 };
	struct error err;
	struct mem_stream s;
	unsigned int i, n;
	uint64_t bytes;
	char want[64];

	(void)state;
	target_init(&r, 1, H_SIZE, H_SIZE, 0);

	/* Longer than any section may be: refused on its header, before
	 * anything is allocated or read. */
	put_header(&b, &r.t);
	put_section(&b, SNAP_DEVICES, 0, NULL, 0, mig_checksum(NULL, 0));
	le32_put(b.p + b.len - 12, SNAPSHOT_META_MAX + 1); /* the length field */
	put(&b, "xxxx", 4);
	put_u8(&b, 'E');
	assert_refused(&b, &r, "a section of 67108865 bytes");
	b.len = 0;
	put_header(&b, &r.t);
	put_section(&b, SNAP_DEVICES, 0, NULL, 0, mig_checksum(NULL, 0));
	le32_put(b.p + b.len - 12, UINT32_MAX);
	assert_refused(&b, &r, "a section of 4294967295 bytes");

	/* SNAPSHOT_MAX_SECTIONS sections are fine, one more is not. */
	b.len = 0;
	put_header(&b, &r.t);
	for (i = 0; i < SNAPSHOT_MAX_SECTIONS; i++) {
		uint8_t x[3] = { (uint8_t)i, 1, 2 };

		put_section(&b, SNAP_VCPU, i, x, sizeof(x), mig_checksum(x, sizeof(x)));
	}
	put_u8(&b, 'E');
	s = (struct mem_stream){ b.p, b.len, 0 };
	memset(&err, 0, sizeof(err));
	assert_int_equal(mig_receive(mem_read, &s, &r.t, l, &n, &bytes, &err), 0);
	assert_int_equal(n, SNAPSHOT_MAX_SECTIONS);
	for (i = 0; i < n; i++) {
		assert_int_equal(l[i].index, i);
		assert_int_equal(l[i].len, 3);
		assert_int_equal(l[i].buf[0], (uint8_t)i);
	}
	mig_sections_free(l, n);
	b.len--; /* the 'E' */
	put_section(&b, SNAP_VCPU, 999, "z", 1, mig_checksum("z", 1));
	put_u8(&b, 'E');
	snprintf(want, sizeof(want), "more than %d sections", SNAPSHOT_MAX_SECTIONS);
	assert_refused(&b, &r, want);

	free(b.p);
	target_free(&r);
}

static void test_unknown_record(void **state)
{
	static const uint8_t types[] = { 0, 'p', 'z', 'e', 's', 'X', 0xff, 'A' };
	struct target_ram r;
	struct builder b = { 0 };
	unsigned int i;

	(void)state;
	target_init(&r, 1, H_SIZE, H_SIZE, 0);
	for (i = 0; i < ARRAY_LEN(types); i++) {
		char want[40];

		b.len = 0;
		put_header(&b, &r.t);
		put_zeros(&b, 0, 1);
		put_u8(&b, types[i]);
		put_u8(&b, 'E');
		snprintf(want, sizeof(want), "unknown record type 0x%02x", types[i]);
		memset(r.t.ram, 0x77, H_SIZE);
		{
			struct error err;

			assert_int_equal(receive_buf(b.p, b.len, &r, &err, NULL), -1);
			assert_string_equal(err.msg, want);
		}
	}
	free(b.p);
	target_free(&r);
}

/* Every prefix of a valid stream is refused: none is a whole stream, and
 * none may crash or write outside the target RAM. Data after the end
 * record is never read. */
static void test_every_truncation(void **state)
{
	static uint8_t data[2 * PAGE];
	struct target_ram r;
	struct builder b = { 0 };
	struct error err;
	size_t len, consumed;

	(void)state;
	memset(data, 0x42, sizeof(data));
	data[5] = 1;
	target_init(&r, 1, H_SIZE, H_SIZE, 0);
	put_header(&b, &r.t);
	put_pages(&b, 4, 2, mig_checksum(data, sizeof(data)), data, sizeof(data));
	put_zeros(&b, 0, 3);
	put_section(&b, SNAP_MACHINE, 0, "0123456789", 10, mig_checksum("0123456789", 10));
	put_section(&b, SNAP_CLOCK, 0, NULL, 0, mig_checksum(NULL, 0));
	put_pages(&b, 15, 1, mig_checksum(data, PAGE), data, PAGE);
	put_u8(&b, 'E');

	for (len = 0; len < b.len; len++) {
		int ret = receive_buf(b.p, len, &r, &err, NULL);

		if (ret != -1)
			fail_msg("a stream cut to %zu of %zu bytes was accepted", len, b.len);
		if (!strstr(err.msg, "ended"))
			fail_msg("cut to %zu: '%s'", len, err.msg);
	}
	assert_int_equal(receive_buf(b.p, b.len, &r, &err, &consumed), 0);
	assert_int_equal(consumed, b.len);
	assert_memory_equal(r.t.ram + 4 * PAGE, data, sizeof(data));
	assert_memory_equal(r.t.ram + 15 * PAGE, data, PAGE);

	/* Bytes after the end are left unread. */
	put(&b, "trailing junk", 13);
	assert_int_equal(receive_buf(b.p, b.len, &r, &err, &consumed), 0);
	assert_int_equal(consumed, b.len - 13);
	free(b.p);
	target_free(&r);
}

/* ---- the reply --------------------------------------------------------- */

static void test_reply(void **state)
{
	char big[2000], msg[MIG_MAX_REPLY + 1], small[8];
	uint8_t h[16];
	uint32_t status;
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(mig_send_reply(p[1], 0, "running"), 0);
	status = 99;
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), 0);
	assert_int_equal(status, 0);
	assert_string_equal(msg, "running");

	assert_int_equal(mig_send_reply(p[1], 1, "incoming migration: no"), 0);
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), 0);
	assert_int_equal(status, 1);
	assert_string_equal(msg, "incoming migration: no");

	assert_int_equal(mig_send_reply(p[1], 0xfffffffe, ""), 0);
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), 0);
	assert_int_equal(status, 0xfffffffe);
	assert_string_equal(msg, "");

	/* A long message is cut to MIG_MAX_REPLY on the wire; a small buffer
	 * gets what fits, terminated. */
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(mig_send_reply(p[1], 2, big), 0);
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), 0);
	assert_int_equal(status, 2);
	assert_int_equal(strlen(msg), MIG_MAX_REPLY);
	assert_int_equal(mig_send_reply(p[1], 3, "abcdefghijk"), 0);
	assert_int_equal(mig_read_reply(p[0], &status, small, sizeof(small)), 0);
	assert_int_equal(status, 3);
	assert_string_equal(small, "abcdefg");
	/* Nothing of either reply is left behind. */
	{
		int avail = -1;

		assert_int_equal(ioctl(p[0], FIONREAD, &avail), 0);
		assert_int_equal(avail, 0);
	}

	/* Not a reply: another magic, a length over the limit. */
	memcpy(h, "VIREOMIG", 8);
	le32_put(h + 8, 0);
	le32_put(h + 12, 2);
	assert_int_equal(write(p[1], h, 16), 16);
	assert_int_equal(write(p[1], "ok", 2), 2);
	errno = 0;
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), -1);
	assert_int_equal(errno, EPROTO);
	close(p[0]);
	close(p[1]);

	/* Too long: refused on the header, though the bytes are there (a
	 * reader that took them would overrun its buffer). */
	memset(big, 'm', sizeof(big));
	assert_int_equal(pipe(p), 0);
	memcpy(h, MIG_ACK_MAGIC, 8);
	le32_put(h + 12, MIG_MAX_REPLY + 1);
	assert_int_equal(write(p[1], h, 16), 16);
	assert_int_equal(write(p[1], big, sizeof(big)), sizeof(big));
	close(p[1]);
	errno = 0;
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), -1);
	assert_int_equal(errno, EPROTO);
	close(p[0]);

	assert_int_equal(pipe(p), 0);
	le32_put(h + 12, UINT32_MAX);
	assert_int_equal(write(p[1], h, 16), 16);
	assert_int_equal(write(p[1], big, sizeof(big)), sizeof(big));
	close(p[1]);
	errno = 0;
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), -1);
	assert_int_equal(errno, EPROTO);
	close(p[0]);

	/* The connection closes: before the header, inside it, inside the
	 * message. */
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), -1);
	assert_int_equal(errno, ECONNRESET);
	close(p[0]);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], h, 10), 10);
	close(p[1]);
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), -1);
	assert_int_equal(errno, ECONNRESET);
	close(p[0]);
	assert_int_equal(pipe(p), 0);
	le32_put(h + 12, 10);
	assert_int_equal(write(p[1], h, 16), 16);
	assert_int_equal(write(p[1], "short", 5), 5);
	close(p[1]);
	assert_int_equal(mig_read_reply(p[0], &status, msg, sizeof(msg)), -1);
	assert_int_equal(errno, ECONNRESET);
	close(p[0]);
}

/* ---- the writer's cancel flag and rate limit -------------------------- */

static int pending(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* A pass's small records (here ten scattered pages and a zero run) are
 * staged and go out in one write at the flush, not a write each; a run
 * too big for what is staged sends that first. */
static void test_small_records_staged(void **state)
{
	static uint8_t ram[(MIG_MAX_RUN + 24) * PAGE];
	const uint64_t small = 32 + 10 * (21 + PAGE) + 13;
	struct capture c;
	uint64_t zeros = 0;
	unsigned int i;
	uint8_t *stream;
	size_t len;

	(void)state;
	memset(ram, 7, sizeof(ram));
	memset(ram + 21 * PAGE, 0, PAGE);
	capture_start(&c, 0, NULL);
	assert_int_equal(mig_send_header(&c.o, 1, sizeof(ram), sizeof(ram)), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(mig_send_pages(&c.o, ram, 2 * i, 1, true, &zeros), 0);
	assert_int_equal(mig_send_pages(&c.o, ram, 21, 1, true, &zeros), 0); /* a 'Z' */
	assert_int_equal(zeros, 1);
	assert_int_equal(c.o.sent, 0);
	assert_int_equal(mig_out_flush(&c.o), 0);
	assert_int_equal(c.o.sent, small);
	/* A page staged, then a whole run of MIG_MAX_RUN: the page goes out
	 * to make room, the run waits for the flush. */
	assert_int_equal(mig_send_pages(&c.o, ram, 22, 1, true, &zeros), 0);
	assert_int_equal(mig_send_pages(&c.o, ram, 24, MIG_MAX_RUN, true, &zeros), 0);
	assert_int_equal(c.o.sent, small + 21 + PAGE);
	assert_int_equal(mig_send_end(&c.o), 0);
	assert_int_equal(c.o.sent, small + 21 + PAGE + 21 + MIG_MAX_RUN * PAGE + 1);
	stream = capture_end(&c, &len);
	assert_int_equal(len, small + 21 + PAGE + 21 + MIG_MAX_RUN * PAGE + 1);
	free(stream);
}

static void test_cancel(void **state)
{
	static uint8_t ram[4 * PAGE];
	volatile bool cancel = true;
	struct mig_out o;
	uint64_t zeros = 0;
	int p[2];

	(void)state;
	memset(ram, 1, sizeof(ram));
	memset(ram + PAGE, 0, PAGE);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(mig_out_init(&o, p[1], 0, &cancel), 0);

	/* Records are staged; the write that would send them fails. */
	assert_int_equal(mig_send_header(&o, 1, sizeof(ram), sizeof(ram)), 0);
	assert_int_equal(mig_send_pages(&o, ram, 0, 4, true, &zeros), 0);
	errno = 0;
	assert_int_equal(mig_out_flush(&o), -1);
	assert_int_equal(errno, ECANCELED);
	assert_int_equal(mig_send_pages(&o, ram, 1, 1, true, &zeros), 0); /* a 'Z' */
	errno = 0;
	assert_int_equal(mig_send_section(&o, 1, 0, "x", 1), -1);
	assert_int_equal(errno, ECANCELED);
	errno = 0;
	assert_int_equal(mig_send_end(&o), -1);
	assert_int_equal(errno, ECANCELED);
	assert_int_equal(pending(p[0]), 0);
	assert_int_equal(o.sent, 0);

	/* Not cancelled (or no flag at all): everything goes. */
	cancel = false;
	assert_int_equal(mig_send_header(&o, 1, sizeof(ram), sizeof(ram)), 0);
	assert_int_equal(mig_send_end(&o), 0);
	assert_int_equal(pending(p[0]), 33);
	assert_int_equal(o.sent, 33);
	mig_out_free(&o);
	assert_int_equal(mig_out_init(&o, p[1], 0, NULL), 0);
	assert_int_equal(mig_send_end(&o), 0);
	assert_int_equal(pending(p[0]), 34);
	mig_out_free(&o);

	/* A peer that went away: -1 with the write's errno. */
	close(p[0]);
	assert_int_equal(mig_out_init(&o, p[1], 0, NULL), 0);
	{
		struct sigaction ign = { .sa_handler = SIG_IGN }, old;

		sigaction(SIGPIPE, &ign, &old);
		errno = 0;
		assert_int_equal(mig_send_end(&o), -1);
		assert_int_equal(errno, EPIPE);
		sigaction(SIGPIPE, &old, NULL);
	}
	mig_out_free(&o);
	close(p[1]);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What rate_limit() guarantees whatever the machine's speed: a send that
 * would take a second's bytes past max_bw waits for the next second
 * (nanosleep never returns early). Header (32 bytes) + a section of
 * 1000 (21 + 1000) with max_bw 1000: the section waits for the second
 * that began with the header to end. Only lower bounds: a slow machine
 * only makes it longer. */
static void test_rate_limit_waits(void **state)
{
	static uint8_t blob[1000];
	struct capture c;
	uint64_t t0, dt;
	uint8_t *stream;
	size_t len;

	(void)state;
	capture_start(&c, 1000, NULL);
	t0 = mono_ns();
	assert_int_equal(mig_send_header(&c.o, 1, PAGE, PAGE), 0);
	assert_int_equal(mig_send_section(&c.o, 1, 0, blob, sizeof(blob)), 0);
	dt = mono_ns() - t0;
	assert_true(dt >= 1000000000u);
	stream = capture_end(&c, &len);
	assert_int_equal(len, 32 + 21 + 1000);
	free(stream);
}

/* The rate limit's promise, "at most max_bw bytes in each second, counted
 * from the second's start" (migration_stream.c), for a write longer than
 * max_bw: header (32 bytes) and one 'P' record of 2 pages (21 + 8192),
 * staged and sent in one write, with max_bw 4096 are 8245 bytes, which
 * take three seconds' windows, so the sender cannot go on before 2 s
 * have passed (it once let the first write of each window through
 * whatever its size: about one 2 MiB record per second). */
static void test_rate_limit_record_over_max_bw(void **state)
{
	static uint8_t ram[2 * PAGE];
	struct capture c;
	uint64_t t0, dt, zeros = 0;
	uint8_t *stream;
	size_t len;

	(void)state;
	memset(ram, 0x33, sizeof(ram));
	capture_start(&c, 4096, NULL);
	t0 = mono_ns();
	assert_int_equal(mig_send_header(&c.o, 1, sizeof(ram), sizeof(ram)), 0);
	assert_int_equal(mig_send_pages(&c.o, ram, 0, 2, false, &zeros), 0);
	assert_int_equal(mig_out_flush(&c.o), 0);
	dt = mono_ns() - t0;
	stream = capture_end(&c, &len);
	assert_int_equal(len, 32 + 21 + 2 * PAGE);
	free(stream);
	assert_true(dt >= 1000000000u); /* what the code does guarantee */
	if (dt < 2000000000u)
		fail_msg("8245 bytes at max_bw 4096 B/s went out in %llu ms (at least 2000 ms)",
			 (unsigned long long)(dt / 1000000));
}

/* ---- guest_mem write tracking ----------------------------------------- */

static bool bit(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

/* bm has exactly the pages in want[] (n of them) set. */
static void assert_bits(const uint64_t *bm, size_t words, const uint64_t *want, size_t n)
{
	uint64_t i;
	size_t k, found = 0;

	for (i = 0; i < words * 64; i++) {
		bool expect = false;

		for (k = 0; k < n; k++)
			expect |= want[k] == i;
		if (bit(bm, i) != expect)
			fail_msg("page %llu is %s", (unsigned long long)i,
				 expect ? "not marked" : "marked");
		found += expect;
	}
	assert_int_equal(found, n);
}

static void assert_no_bits(const uint64_t *bm, size_t words)
{
	assert_bits(bm, words, NULL, 0);
}

static void test_track_writes(void **state)
{
	static const uint64_t want[] = { 0, 1, 10, 11, 12, 13, 100, 16383 };
	struct guest_mem m;
	uint64_t *bm;
	size_t words;

	(void)state;
	assert_int_equal(guest_mem_map(&m, 64 * MIB), 0);
	assert_null(m.written);
	words = guest_mem_bitmap_words(&m);
	assert_int_equal(words, 64 * MIB / PAGE / 64);
	bm = calloc(words, sizeof(*bm));
	assert_non_null(bm);

	/* Off: marking does nothing, taking leaves the bitmap alone. */
	guest_mem_mark_written(&m, m.host, 4096);
	bm[3] = 0xf0;
	guest_mem_take_written(&m, bm);
	assert_int_equal(bm[3], 0xf0);
	bm[3] = 0;

	assert_int_equal(guest_mem_track_writes_start(&m), 0);
	assert_non_null(m.written);
	guest_mem_take_written(&m, bm);
	assert_no_bits(bm, words);

	guest_mem_mark_written(&m, m.host, 1);			     /* page 0 */
	guest_mem_mark_written(&m, m.host + 4095, 2);		     /* pages 0, 1 */
	guest_mem_mark_written(&m, m.host + 5 * PAGE, 0);	     /* nothing */
	guest_mem_mark_written(&m, m.host + 10 * PAGE + 100, 3 * PAGE); /* 10..13 */
	guest_mem_mark_written(&m, m.host + 100 * PAGE, PAGE);	     /* 100 alone */
	guest_mem_mark_written(&m, m.host + 64 * MIB - 1, 1);	     /* the last */
	/* Outside the mapping: ignored, also when it would reach into it. */
	guest_mem_mark_written(&m, m.host - 1, 1);
	guest_mem_mark_written(&m, m.host - PAGE, 3 * PAGE);
	guest_mem_mark_written(&m, m.host + 64 * MIB, PAGE);
	guest_mem_mark_written(&m, m.host + 64 * MIB + 5 * PAGE, PAGE);
	guest_mem_mark_written(&m, NULL, 16);
	guest_mem_mark_written(&m, (void *)UINTPTR_MAX, 16);
	/* A range running past the end: clamped to the last page. */
	guest_mem_mark_written(&m, m.host + 64 * MIB - 10, 2 * PAGE);
	guest_mem_take_written(&m, bm);
	assert_bits(bm, words, want, ARRAY_LEN(want));

	/* Empty ranges mark nothing, wherever they start. */
	guest_mem_mark_written(&m, m.host, 0);
	guest_mem_mark_written(&m, m.host + 5 * PAGE + 1, 0);
	guest_mem_mark_written(&m, m.host + 64 * MIB - 1, 0);
	memset(bm, 0, words * sizeof(*bm));
	guest_mem_take_written(&m, bm);
	assert_no_bits(bm, words);

	/* Taken means cleared: the next take adds nothing. */
	memset(bm, 0, words * sizeof(*bm));
	guest_mem_take_written(&m, bm);
	assert_no_bits(bm, words);

	/* take ORs into what the bitmap holds. */
	bm[0] = 1ULL << 7;
	guest_mem_mark_written(&m, m.host + 64 * PAGE, 1); /* word 1, bit 0 */
	guest_mem_take_written(&m, bm);
	assert_int_equal(bm[0], 1ULL << 7);
	assert_int_equal(bm[1], 1);
	memset(bm, 0, words * sizeof(*bm));

	/* start while tracking keeps what was marked. */
	guest_mem_mark_written(&m, m.host + 3 * PAGE, 1);
	assert_int_equal(guest_mem_track_writes_start(&m), 0);
	guest_mem_take_written(&m, bm);
	assert_int_equal(bm[0], 1ULL << 3);
	memset(bm, 0, words * sizeof(*bm));

	/* stop keeps the bitmap (a device thread may be marking it: it is
	 * freed with the mapping, LeakSanitizer checks), and marks after it
	 * are nothing; marks left before it are not carried over. */
	guest_mem_mark_written(&m, m.host + 7 * PAGE, 1);
	guest_mem_track_writes_stop(&m);
	assert_non_null(m.written);
	guest_mem_mark_written(&m, m.host, PAGE);
	guest_mem_take_written(&m, bm);
	assert_no_bits(bm, words);
	guest_mem_track_writes_stop(&m); /* twice is fine */

	/* Again from scratch: nothing left over from before. */
	assert_int_equal(guest_mem_track_writes_start(&m), 0);
	guest_mem_take_written(&m, bm);
	assert_no_bits(bm, words);
	guest_mem_unmap(&m); /* stops the tracking too */
	assert_null(m.written);
	free(bm);
}

/* A size that is not a whole number of bitmap words. */
static void test_track_writes_odd_size(void **state)
{
	struct guest_mem m;
	uint64_t bm[2] = { 0, 0 };
	uint8_t *host = calloc(70, PAGE);

	(void)state;
	assert_non_null(host);
	guest_mem_layout(&m, 70 * PAGE);
	m.host = host;
	assert_int_equal(guest_mem_bitmap_words(&m), 2);
	assert_int_equal(guest_mem_track_writes_start(&m), 0);
	guest_mem_mark_written(&m, host + 63 * PAGE, 2 * PAGE + 1); /* 63, 64, 65 */
	guest_mem_mark_written(&m, host + 69 * PAGE + 4095, 100);  /* 69, clamped */
	guest_mem_take_written(&m, bm);
	assert_int_equal(bm[0], 1ULL << 63);
	assert_int_equal(bm[1], (1ULL << 0) | (1ULL << 1) | (1ULL << 5));
	guest_mem_track_writes_stop(&m);
	free(m.written); /* what guest_mem_unmap does with a mapping of its own */
	free(host);
}

/* Marks from many threads at once, some on the same words: none lost. */
struct marker {
	struct guest_mem *m;
	unsigned int id;
};

static void *mark_thread(void *arg)
{
	struct marker *k = arg;
	unsigned int i;

	for (i = k->id; i < 4096; i += 4)
		guest_mem_mark_written(k->m, k->m->host + (size_t)i * PAGE, 1);
	return NULL;
}

static void test_track_writes_threads(void **state)
{
	struct guest_mem m;
	struct marker k[4];
	pthread_t th[4];
	uint64_t *bm;
	size_t words, i;

	(void)state;
	assert_int_equal(guest_mem_map(&m, 16 * MIB), 0);
	assert_int_equal(guest_mem_track_writes_start(&m), 0);
	words = guest_mem_bitmap_words(&m);
	bm = calloc(words, sizeof(*bm));
	assert_non_null(bm);
	for (i = 0; i < 4; i++) {
		k[i] = (struct marker){ &m, (unsigned int)i };
		assert_int_equal(pthread_create(&th[i], NULL, mark_thread, &k[i]), 0);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	guest_mem_take_written(&m, bm);
	for (i = 0; i < words; i++)
		assert_int_equal(bm[i], ~0ULL);
	free(bm);
	guest_mem_unmap(&m);
}

/* ---- virtqueue marking ------------------------------------------------ */

#define VQ_RAM (1u << 20)
#define VQ_SIZE 8
#define VQ_DESC 0x1000
#define VQ_AVAIL 0x2000
/* The used ring ends on a page boundary: flags, idx and the entries on
 * page 3, avail_event (EVENT_IDX) alone on page 4. */
#define VQ_USED (0x4000 - 4 - 8 * VQ_SIZE)
#define VQ_F_NEXT 1
#define VQ_F_WRITE 2
#define VQ_F_INDIRECT 4

static uint8_t *vq_ram;
static struct guest_mem vq_mem;
static struct virtq vq;
static struct virtq_elem vq_e;
static uint16_t vq_avail_idx;
static uint64_t vq_bm[VQ_RAM / PAGE / 64];

static void vq_desc_at(uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
		       uint16_t flags, uint16_t next)
{
	uint8_t *d = vq_ram + table + 16 * i;

	le64_put(d, addr);
	le32_put(d + 8, len);
	le16_put(d + 12, flags);
	le16_put(d + 14, next);
}

static void vq_make_avail(uint16_t head)
{
	le16_put(vq_ram + VQ_AVAIL + 4 + 2 * (vq_avail_idx % VQ_SIZE), head);
	vq_avail_idx++;
	le16_put(vq_ram + VQ_AVAIL + 2, vq_avail_idx);
}

static int vq_setup(void **state)
{
	(void)state;
	vq_ram = calloc(1, VQ_RAM);
	assert_non_null(vq_ram);
	vq_mem = (struct guest_mem){ .host = vq_ram, .size = VQ_RAM, .low_size = VQ_RAM };
	memset(&vq, 0, sizeof(vq));
	vq.size = VQ_SIZE;
	vq.desc_gpa = VQ_DESC;
	vq.avail_gpa = VQ_AVAIL;
	vq.used_gpa = VQ_USED;
	vq.indirect = true;
	vq_avail_idx = 0;
	assert_int_equal(virtq_map(&vq, &vq_mem), 0);
	vq.ready = true;
	memset(vq_bm, 0, sizeof(vq_bm));
	/* A chain: readable header on page 0x10, writable buffers across
	 * pages 0x12/0x13 and on page 0x20. */
	vq_desc_at(VQ_DESC, 0, 0x10000, 16, VQ_F_NEXT, 3);
	vq_desc_at(VQ_DESC, 3, 0x12ff0, 0x20, VQ_F_NEXT | VQ_F_WRITE, 5);
	vq_desc_at(VQ_DESC, 5, 0x20000, 1, VQ_F_WRITE, 0);
	/* Another through an indirect table on page 0x30: readable page 0x31,
	 * writable 0x32..0x34. */
	vq_desc_at(0x30000, 0, 0x31000, 100, VQ_F_NEXT, 1);
	vq_desc_at(0x30000, 1, 0x32000, 3 * PAGE, VQ_F_WRITE, 0);
	vq_desc_at(VQ_DESC, 6, 0x30000, 32, VQ_F_INDIRECT, 0);
	/* One with no writable buffer. */
	vq_desc_at(VQ_DESC, 7, 0x40000, 64, 0, 0);
	return 0;
}

static int vq_teardown(void **state)
{
	(void)state;
	guest_mem_track_writes_stop(&vq_mem);
	free(vq_mem.written); /* kept by stop; guest_mem_unmap would free it */
	vq_mem.written = NULL;
	free(vq_ram);
	return 0;
}

static void vq_take(void)
{
	memset(vq_bm, 0, sizeof(vq_bm));
	guest_mem_take_written(&vq_mem, vq_bm);
}

static void test_virtq_marks_push(void **state)
{
	static const uint64_t want[] = { 0x3, 0x4, 0x12, 0x13, 0x20 };
	static const uint64_t want_indirect[] = { 0x3, 0x4, 0x32, 0x33, 0x34 };
	static const uint64_t want_ring[] = { 0x3, 0x4 };

	(void)state;
	assert_int_equal(guest_mem_track_writes_start(&vq_mem), 0);
	vq_make_avail(0);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1);
	assert_int_equal(vq_e.in_num, 2);
	vq_take();
	assert_no_bits(vq_bm, ARRAY_LEN(vq_bm)); /* popping writes nothing */

	virtq_push(&vq, 0, 0x21);
	assert_int_equal(le16_get(vq_ram + VQ_USED + 2), 1);
	assert_int_equal(le32_get(vq_ram + VQ_USED + 4), 0);
	assert_int_equal(le32_get(vq_ram + VQ_USED + 8), 0x21);
	vq_take();
	/* The used ring and the writable buffers; not the descriptors, the
	 * avail ring or the readable buffer. */
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), want, ARRAY_LEN(want));

	vq_make_avail(6);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1);
	virtq_push(&vq, 6, 0);
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), want_indirect, ARRAY_LEN(want_indirect));

	/* Nothing writable: the used ring only. */
	vq_make_avail(7);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1);
	virtq_push(&vq, 7, 0);
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), want_ring, ARRAY_LEN(want_ring));
	vq_take();
	assert_no_bits(vq_bm, ARRAY_LEN(vq_bm));
}

/* A chain popped before the tracking began is covered when pushed after. */
static void test_virtq_marks_chain_popped_before(void **state)
{
	static const uint64_t want[] = { 0x3, 0x4, 0x12, 0x13, 0x20 };

	(void)state;
	vq_make_avail(0);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1);
	assert_int_equal(guest_mem_track_writes_start(&vq_mem), 0);
	virtq_push(&vq, 0, 1);
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), want, ARRAY_LEN(want));
}

/* A head the guest has made invalid meanwhile still gives the used ring. */
static void test_virtq_marks_bad_chain(void **state)
{
	static const uint64_t want_ring[] = { 0x3, 0x4 };

	(void)state;
	vq_make_avail(0);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1);
	assert_int_equal(guest_mem_track_writes_start(&vq_mem), 0);
	vq_desc_at(VQ_DESC, 0, 0x10000, 16, VQ_F_NEXT, 0); /* now a loop */
	virtq_push(&vq, 0, 1);
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), want_ring, ARRAY_LEN(want_ring));
	virtq_push(&vq, VQ_SIZE + 3, 1); /* a head out of range */
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), want_ring, ARRAY_LEN(want_ring));
}

/* The notification fields: used->flags (page 3) without EVENT_IDX,
 * avail_event (page 4) with it. */
static void test_virtq_marks_notify_fields(void **state)
{
	static const uint64_t page3[] = { 0x3 };
	static const uint64_t page4[] = { 0x4 };

	(void)state;
	assert_int_equal(guest_mem_track_writes_start(&vq_mem), 0);
	virtq_disable_notify(&vq);
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), page3, 1);
	assert_false(virtq_enable_notify(&vq));
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), page3, 1);

	vq.event_idx = true;
	vq_make_avail(7);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1); /* avail_event moves */
	assert_int_equal(le16_get(vq_ram + VQ_USED + 4 + 8 * VQ_SIZE), 1);
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), page4, 1);
	virtq_unpop(&vq, 1);
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), page4, 1);
	virtq_disable_notify(&vq); /* with EVENT_IDX: writes nothing */
	vq_take();
	assert_no_bits(vq_bm, ARRAY_LEN(vq_bm));
	assert_true(virtq_enable_notify(&vq)); /* the chain given back is there */
	vq_take();
	assert_bits(vq_bm, ARRAY_LEN(vq_bm), page4, 1);
}

/* Tracking off (never on, and stopped): the ring works as before and
 * nothing is marked or touched. */
static void test_virtq_tracking_off(void **state)
{
	(void)state;
	vq.event_idx = true;
	vq_make_avail(0);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1);
	virtq_push(&vq, 0, 5);
	virtq_disable_notify(&vq);
	virtq_enable_notify(&vq);
	assert_null(vq_mem.written);
	assert_int_equal(le16_get(vq_ram + VQ_USED + 2), 1);
	assert_int_equal(le32_get(vq_ram + VQ_USED + 8), 5);

	assert_int_equal(guest_mem_track_writes_start(&vq_mem), 0);
	guest_mem_track_writes_stop(&vq_mem);
	vq_make_avail(6);
	assert_int_equal(virtq_pop(&vq, &vq_e), 1);
	virtq_push(&vq, 6, 7);
	assert_int_equal(le16_get(vq_ram + VQ_USED + 2), 2);
	assert_int_equal(le32_get(vq_ram + VQ_USED + 4 + 8 + 4), 7);
	vq_take();
	assert_no_bits(vq_bm, ARRAY_LEN(vq_bm));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_zeros_too),
		cmocka_unit_test(test_round_trip_zeros_skipped),
		cmocka_unit_test(test_resent_pages_last_wins),
		cmocka_unit_test(test_zero_ram),
		cmocka_unit_test(test_socket_round_trip),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_machine_message_memory),
		cmocka_unit_test(test_bad_page_runs),
		cmocka_unit_test(test_checksum_is_xxh64),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_section_limits),
		cmocka_unit_test(test_unknown_record),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_small_records_staged),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_rate_limit_waits),
		cmocka_unit_test(test_rate_limit_record_over_max_bw),
		cmocka_unit_test(test_track_writes),
		cmocka_unit_test(test_track_writes_odd_size),
		cmocka_unit_test(test_track_writes_threads),
		cmocka_unit_test_setup_teardown(test_virtq_marks_push, vq_setup, vq_teardown),
		cmocka_unit_test_setup_teardown(test_virtq_marks_chain_popped_before, vq_setup,
						vq_teardown),
		cmocka_unit_test_setup_teardown(test_virtq_marks_bad_chain, vq_setup, vq_teardown),
		cmocka_unit_test_setup_teardown(test_virtq_marks_notify_fields, vq_setup,
						vq_teardown),
		cmocka_unit_test_setup_teardown(test_virtq_tracking_off, vq_setup, vq_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
