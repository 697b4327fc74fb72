#include "util/iov.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

size_t iov_size(const struct iovec *iov, unsigned int n)
{
	size_t total = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (iov[i].iov_len > SIZE_MAX - total)
			return SIZE_MAX;
		total += iov[i].iov_len;
	}
	return total;
}

/* Both copy directions in one walk; to_buf says which. */
static size_t iov_copy(const struct iovec *iov, unsigned int n, size_t offset, uint8_t *buf,
		       size_t len, bool to_buf)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		uint8_t *base = iov[i].iov_base;
		size_t chunk;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		chunk = iov[i].iov_len - offset;
		if (chunk > len - done)
			chunk = len - done;
		if (to_buf)
			memcpy(buf + done, base + offset, chunk);
		else
			memcpy(base + offset, buf + done, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned int n, size_t offset, void *buf, size_t len)
{
	return iov_copy(iov, n, offset, buf, len, true);
}

size_t iov_from_buf(const struct iovec *iov, unsigned int n, size_t offset, const void *buf,
		    size_t len)
{
	/* Only read through buf when copying from it. */
	return iov_copy(iov, n, offset, (uint8_t *)(uintptr_t)buf, len, false);
}

unsigned int iov_slice(struct iovec *dst, unsigned int dst_max, const struct iovec *src,
		       unsigned int n, size_t offset, size_t len)
{
	unsigned int i, count = 0;

	for (i = 0; i < n && len && count < dst_max; i++) {
		size_t k = src[i].iov_len;

		if (offset >= k) {
			offset -= k;
			continue;
		}
		k -= offset;
		if (k > len)
			k = len;
		dst[count].iov_base = (uint8_t *)src[i].iov_base + offset;
		dst[count].iov_len = k;
		count++;
		len -= k;
		offset = 0;
	}
	return count;
}

void iov_drop_front(struct iovec **iov, unsigned int *n, size_t bytes)
{
	while (bytes && *n) {
		struct iovec *first = *iov;

		if (bytes >= first->iov_len) {
			bytes -= first->iov_len;
			(*iov)++;
			(*n)--;
		} else {
			first->iov_base = (uint8_t *)first->iov_base + bytes;
			first->iov_len -= bytes;
			bytes = 0;
		}
	}
}

void *iov_flat(const struct iovec *iov, unsigned int n)
{
	uint8_t *start = NULL, *end = NULL;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (!iov[i].iov_len)
			continue;
		if (!start)
			start = iov[i].iov_base;
		else if ((uint8_t *)iov[i].iov_base != end)
			return NULL;
		end = (uint8_t *)iov[i].iov_base + iov[i].iov_len;
	}
	return start;
}
