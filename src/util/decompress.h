/* Streaming decompression of the formats Linux compresses its kernel with
 * (gzip, xz, zstd), through zlib, liblzma and libzstd. */
#ifndef VIREO_UTIL_DECOMPRESS_H
#define VIREO_UTIL_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

enum compression { COMPRESSION_UNKNOWN, COMPRESSION_GZIP, COMPRESSION_XZ, COMPRESSION_ZSTD };

enum compression compression_detect(const uint8_t *p, size_t len);
const char *compression_name(enum compression c);
/* Decompresses the first stream in in[0..len) to out_fd, writing at most
 * max_out bytes. Trailing bytes after the stream are ignored. Returns the
 * number of bytes written, or -1 on corrupt input, limit or write error. */
int64_t decompress_to_fd(enum compression c, const uint8_t *in, size_t len, int out_fd,
			 uint64_t max_out);

#endif
