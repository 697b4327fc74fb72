#ifndef VIREO_UTIL_SIZE_H
#define VIREO_UTIL_SIZE_H

#include <stdint.h>

/* Parses "512M", "2G", "1024k", "4096" (bytes) into *out. Suffixes are
 * binary (K=1024) and case-insensitive; an optional trailing "B"/"iB" is
 * accepted ("512MiB"). Returns 0, or -1 for malformed input or overflow. */
int parse_size(const char *s, uint64_t *out);

/* Parses a non-negative decimal integer that fits in an unsigned int. */
int parse_uint(const char *s, unsigned int *out);

#endif
