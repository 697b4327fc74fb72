#include "util/decompress.h"

#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util/file.h"

#define CHUNK (256 * 1024)

enum compression compression_detect(const uint8_t *p, size_t len)
{
	static const uint8_t xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };
	static const uint8_t zstd[] = { 0x28, 0xb5, 0x2f, 0xfd };

	if (len >= sizeof(xz) && !memcmp(p, xz, sizeof(xz)))
		return COMPRESSION_XZ;
	if (len >= sizeof(zstd) && !memcmp(p, zstd, sizeof(zstd)))
		return COMPRESSION_ZSTD;
	if (len >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e))
		return COMPRESSION_GZIP;
	return COMPRESSION_UNKNOWN;
}

const char *compression_name(enum compression c)
{
	switch (c) {
	case COMPRESSION_GZIP:
		return "gzip";
	case COMPRESSION_XZ:
		return "xz";
	case COMPRESSION_ZSTD:
		return "zstd";
	default:
		return "unknown";
	}
}

/* Appends a chunk of output, enforcing the limit. */
static int emit(int fd, const uint8_t *buf, size_t n, uint64_t *total, uint64_t max_out)
{
	if (n > max_out - *total)
		return -1;
	if (write_full(fd, buf, n) < 0)
		return -1;
	*total += n;
	return 0;
}

static int64_t unxz(const uint8_t *in, size_t len, int fd, uint64_t max_out, uint8_t *out)
{
	lzma_stream s = LZMA_STREAM_INIT;
	uint64_t total = 0;
	lzma_ret r;

	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
		return -1;
	s.next_in = in;
	s.avail_in = len;
	do {
		s.next_out = out;
		s.avail_out = CHUNK;
		r = lzma_code(&s, LZMA_FINISH);
		if ((r != LZMA_OK && r != LZMA_STREAM_END) ||
		    emit(fd, out, CHUNK - s.avail_out, &total, max_out) < 0) {
			lzma_end(&s);
			return -1;
		}
	} while (r != LZMA_STREAM_END);
	lzma_end(&s);
	return (int64_t)total;
}

static int64_t gunzip(const uint8_t *in, size_t len, int fd, uint64_t max_out, uint8_t *out)
{
	z_stream s;
	uint64_t total = 0;
	int r;

	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
		return -1;
	s.next_in = (Bytef *)(uintptr_t)in;
	s.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
	do {
		s.next_out = out;
		s.avail_out = CHUNK;
		r = inflate(&s, Z_NO_FLUSH);
		if ((r != Z_OK && r != Z_STREAM_END) ||
		    emit(fd, out, CHUNK - s.avail_out, &total, max_out) < 0) {
			inflateEnd(&s);
			return -1;
		}
	} while (r != Z_STREAM_END);
	inflateEnd(&s);
	return (int64_t)total;
}

static int64_t unzstd(const uint8_t *in, size_t len, int fd, uint64_t max_out, uint8_t *out)
{
	ZSTD_DStream *s = ZSTD_createDStream();
	ZSTD_inBuffer ib = { in, len, 0 };
	uint64_t total = 0;
	size_t r;

	if (!s)
		return -1;
	do {
		ZSTD_outBuffer ob = { out, CHUNK, 0 };

		r = ZSTD_decompressStream(s, &ob, &ib);
		if (ZSTD_isError(r) || emit(fd, out, ob.pos, &total, max_out) < 0 ||
		    (r != 0 && ib.pos == ib.size && ob.pos == 0)) {
			ZSTD_freeDStream(s);
			return -1;
		}
	} while (r != 0);
	ZSTD_freeDStream(s);
	return (int64_t)total;
}

int64_t decompress_to_fd(enum compression c, const uint8_t *in, size_t len, int out_fd,
			 uint64_t max_out)
{
	/* On the heap, not in thread-local storage: every thread of the
	 * process would carry (and zero) a TLS buffer this size. */
	uint8_t *out = malloc(CHUNK);
	int64_t r;

	if (!out)
		return -1;
	switch (c) {
	case COMPRESSION_XZ:
		r = unxz(in, len, out_fd, max_out, out);
		break;
	case COMPRESSION_GZIP:
		r = gunzip(in, len, out_fd, max_out, out);
		break;
	case COMPRESSION_ZSTD:
		r = unzstd(in, len, out_fd, max_out, out);
		break;
	default:
		r = -1;
		break;
	}
	free(out);
	return r;
}
