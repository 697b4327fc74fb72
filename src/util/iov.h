/* Scatter-gather lists (struct iovec): sizes, copies to and from flat
 * buffers, sub-ranges. The one set of helpers every layer uses; the
 * guest describes these lists, so every function is bounded by the
 * lists' own lengths and never trusts a size to add up. */
#ifndef VIREO_UTIL_IOV_H
#define VIREO_UTIL_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Bytes in iov[0..n), saturating at SIZE_MAX (a guest can describe
 * lengths whose sum overflows; such a sum fails every later check). */
size_t iov_size(const struct iovec *iov, unsigned int n);

/* Copies up to len bytes between the bytes of iov from offset on and buf;
 * returns the bytes copied (fewer when the list runs out). */
size_t iov_to_buf(const struct iovec *iov, unsigned int n, size_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned int n, size_t offset, const void *buf,
		    size_t len);

/* Writes into dst (room for dst_max entries) the entries that cover bytes
 * [offset, offset + len) of src, skipping empty ones; returns how many.
 * Stops early when dst is full or src runs out: the caller compares
 * iov_size(dst, count) with len when it must have them all. */
unsigned int iov_slice(struct iovec *dst, unsigned int dst_max, const struct iovec *src,
		       unsigned int n, size_t offset, size_t len);

/* Where the bytes of iov[0..n) begin when they are one contiguous range
 * of memory (each non-empty buffer starting where the one before ends),
 * or NULL (scattered, or no bytes at all): a caller that needs one flat
 * buffer can then use the list's own memory instead of a copy. */
void *iov_flat(const struct iovec *iov, unsigned int n);

/* Drops the first bytes of the list in place: *iov and *n move past the
 * entries used up, and the first remaining entry is shortened. */
void iov_drop_front(struct iovec **iov, unsigned int *n, size_t bytes);

#endif
