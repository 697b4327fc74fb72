/* The destination's reader of a live-migration stream
 * (vmm/migration_stream.c) from a hostile source, into a small machine
 * (1 vCPU, 256 KiB of RAM, all of it low). Nothing may crash or be written
 * outside the target RAM (a heap block of exactly its size: ASan), a
 * refusal must come with a message, and a stream accepted must be what
 * the format says, checked against a model reader written from the header
 * comment of migration_stream.h: RAM as the 'P' and 'Z' records left it
 * (the last copy wins), the sections with their kinds, indices and bytes,
 * and the byte count up to the end record.
 *
 * Input: byte 0 flags (bit 0: a valid header for the target goes in
 * front of the rest; bit 1: the checksums of 'P' and 'S' records are fixed up
 * before the reader sees them, so that the checks behind them and the
 * records after them are reached), then the stream. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "fuzz.h"
#include "util/le.h"
#include "vmm/migration_stream.h"
#include "vmm/snapshot_file.h"

#define NCPUS 1
#define RAM (256u << 10)
#define PAGES (RAM / MIG_PAGE)
#define HEADER 32

struct model_section {
	uint32_t kind, index;
	size_t offset, len;
};

static uint8_t *ram;
static uint8_t model_ram[RAM];
static struct model_section model_sec[SNAPSHOT_MAX_SECTIONS];
static struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];

struct stream {
	const uint8_t *p;
	size_t len, pos;
};

static int stream_read(void *ctx, void *buf, size_t n)
{
	struct stream *s = ctx;

	if (n > s->len - s->pos)
		return -1;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	return 0;
}

static void initial_ram(uint8_t *p)
{
	uint32_t i;

	for (i = 0; i < PAGES; i++)
		memset(p + (size_t)i * MIG_PAGE, (int)(0xa5 ^ i), MIG_PAGE);
}

static void put_header(uint8_t *h)
{
	memcpy(h, MIG_MAGIC, 8);
	le32_put(h + 8, MIG_VERSION);
	le32_put(h + 12, NCPUS);
	le64_put(h + 16, RAM);
	le64_put(h + 24, RAM);
}

static bool run_fits(uint64_t first, uint32_t count)
{
	return count && first < PAGES && count <= PAGES - first;
}

/* The format as documented, over s (fixing checksums first when fix): 0 with
 * *end the bytes up to and with the end record, or -1. Fills model_ram
 * and model_sec[] (*n of them) on the way. */
static int model(uint8_t *s, size_t len, bool fix, size_t *end, unsigned int *n)
{
	uint8_t h[HEADER];
	size_t pos = HEADER;

	*n = 0;
	put_header(h);
	if (len < HEADER || memcmp(s, h, HEADER))
		return -1;
	for (;;) {
		uint8_t type;

		if (pos >= len)
			return -1;
		type = s[pos++];
		if (type == 'P') {
			uint64_t first;
			uint32_t count;
			size_t data;

			if (len - pos < 20)
				return -1;
			first = le64_get(s + pos);
			count = le32_get(s + pos + 8);
			if (count > MIG_MAX_RUN || !run_fits(first, count))
				return -1;
			data = (size_t)count * MIG_PAGE;
			if (len - pos - 20 < data)
				return -1;
			if (fix)
				le64_put(s + pos + 12, XXH64(s + pos + 20, data, 0));
			if (le64_get(s + pos + 12) != XXH64(s + pos + 20, data, 0))
				return -1;
			memcpy(model_ram + first * MIG_PAGE, s + pos + 20, data);
			pos += 20 + data;
		} else if (type == 'Z') {
			uint64_t first;
			uint32_t count;

			if (len - pos < 12)
				return -1;
			first = le64_get(s + pos);
			count = le32_get(s + pos + 8);
			if (!run_fits(first, count))
				return -1;
			memset(model_ram + first * MIG_PAGE, 0, (size_t)count * MIG_PAGE);
			pos += 12;
		} else if (type == 'S') {
			uint32_t slen;

			if (len - pos < 20 || *n >= SNAPSHOT_MAX_SECTIONS)
				return -1;
			slen = le32_get(s + pos + 8);
			if (slen > SNAPSHOT_META_MAX || len - pos - 20 < slen)
				return -1;
			if (fix)
				le64_put(s + pos + 12, XXH64(s + pos + 20, slen, 0));
			if (le64_get(s + pos + 12) != XXH64(s + pos + 20, slen, 0))
				return -1;
			model_sec[(*n)++] = (struct model_section){ .kind = le32_get(s + pos),
								    .index = le32_get(s + pos + 4),
								    .offset = pos + 20,
								    .len = slen };
			pos += 20 + slen;
		} else if (type == 'E') {
			*end = pos;
			return 0;
		} else {
			return -1;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint8_t flags = fuzz_u8(&in);
	struct mig_target t = { .ram_size = RAM, .low_size = RAM, .ncpus = NCPUS };
	struct error err = { 0 };
	struct stream st;
	uint8_t *s;
	size_t len = in.n, end = 0;
	unsigned int n = 0, mn = 0, i;
	uint64_t bytes = 0;
	int want, ret;

	if (!ram) {
		ram = malloc(RAM); /* exactly RAM: ASan sees a byte past it */
		CHECK(ram);
	}
	s = malloc(HEADER + len + 1);
	CHECK(s);
	if (flags & 1) {
		put_header(s);
		memcpy(s + HEADER, in.p, len);
		len += HEADER;
	} else {
		memcpy(s, in.p, len);
	}
	initial_ram(ram);
	initial_ram(model_ram);
	want = model(s, len, flags & 2, &end, &mn);

	t.ram = ram;
	st = (struct stream){ s, len, 0 };
	ret = mig_receive(stream_read, &st, &t, l, &n, &bytes, &err);
	CHECK(n <= SNAPSHOT_MAX_SECTIONS);
	CHECK(ret == want);
	if (ret < 0) {
		CHECK(err.set && err.msg[0]);
	} else {
		CHECK(!err.set);
		/* Read up to the end record, not a byte more, and counted. */
		CHECK(st.pos == end);
		CHECK(bytes == end);
		CHECK(!memcmp(ram, model_ram, RAM));
		CHECK(n == mn);
		for (i = 0; i < n; i++) {
			CHECK(l[i].kind == model_sec[i].kind);
			CHECK(l[i].index == model_sec[i].index);
			CHECK(l[i].len == model_sec[i].len);
			CHECK(l[i].buf && !memcmp(l[i].buf, s + model_sec[i].offset, l[i].len));
		}
	}
	mig_sections_free(l, n);
	free(s);
	return 0;
}
