#ifndef VIREO_UTIL_FILE_H
#define VIREO_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Reads exactly len bytes at off; -1 on error or early end of file. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Writes exactly len bytes at off, retrying on EINTR and short writes. */
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* Writes all of buf, retrying on EINTR and short writes. */
int write_full(int fd, const void *buf, size_t len);
/* Opens a regular file for reading and returns its size through *size.
 * On failure logs "WHAT FILE: reason" and returns -1. */
int open_regular_file(const char *what, const char *path, uint64_t *size);

#endif
