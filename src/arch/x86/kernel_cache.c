#include "arch/x86/kernel_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/decompress.h"
#include "util/le.h"
#include "util/log.h"

#define BZ_PAYLOAD_OFFSET 0x248
#define BZ_PAYLOAD_LENGTH 0x24c
#define MAX_VMLINUX (512ULL << 20)

static int mkdir_p(char *path)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int cache_dir(char *out, size_t size)
{
	const char *v = getenv("VIREO_CACHE"), *xdg = getenv("XDG_CACHE_HOME"),
		   *home = getenv("HOME");
	int n;

	if (v && *v)
		n = snprintf(out, size, "%s/kernels", v);
	else if (xdg && *xdg)
		n = snprintf(out, size, "%s/vireo/kernels", xdg);
	else if (home && *home)
		n = snprintf(out, size, "%s/.cache/vireo/kernels", home);
	else
		return -1;
	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdir_p(out);
}

/* Decompresses the payload into dir/name, atomically. */
static int fill(int kernel_fd, const struct bzimage *bz, const uint8_t *header, const char *dir,
		const char *path, const char **why)
{
	uint64_t off = (uint64_t)bz->setup_size + le32_get(header + BZ_PAYLOAD_OFFSET);
	uint64_t len = le32_get(header + BZ_PAYLOAD_LENGTH);
	uint64_t file_size = bz->setup_size + bz->kernel_size;
	enum compression c;
	char tmp[PATH_MAX];
	uint8_t *map;
	int64_t n;
	int fd;

	*why = "the bzImage has no compressed payload to decompress";
	if (bz->version < 0x0208 || len == 0 || off > file_size || len > file_size - off)
		return -1;
	*why = "cannot map the kernel file";
	map = mmap(NULL, file_size, PROT_READ, MAP_PRIVATE, kernel_fd, 0);
	if (map == MAP_FAILED)
		return -1;
	c = compression_detect(map + off, len);
	*why = "cannot create a file in the cache directory";
	if (snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", dir) >= (int)sizeof(tmp) ||
	    (fd = mkstemp(tmp)) < 0) {
		munmap(map, file_size);
		return -1;
	}
	n = decompress_to_fd(c, map + off, len, fd, MAX_VMLINUX);
	munmap(map, file_size);
	if (n <= 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		log_debug("kernel cache: cannot decompress the %s payload", compression_name(c));
		*why = "cannot decompress the payload into the cache";
		unlink(tmp);
		return -1;
	}
	log_debug("kernel cache: decompressed %s payload, %lld bytes, into %s",
		  compression_name(c), (long long)n, path);
	return 0;
}

/* FNV-1a over the file, eight bytes at a time: the cache key is the
 * content, so the same kernel seen through another path or mount (the
 * nested host's 9p share, say) finds its entry. */
static int content_hash(int fd, uint64_t size, uint64_t *out)
{
	uint64_t h = 0xcbf29ce484222325ULL, i, w;
	uint8_t *map;

	map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -1;
	for (i = 0; i + 8 <= size; i += 8) {
		w = le64_get(map + i);
		h = (h ^ w) * 0x100000001b3ULL;
	}
	for (; i < size; i++)
		h = (h ^ map[i]) * 0x100000001b3ULL;
	munmap(map, size);
	*out = h;
	return 0;
}

int kernel_cache_open(int kernel_fd, const uint8_t *header, const struct bzimage *bz,
		      const char **why)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	const char *off = getenv("VIREO_KERNEL_CACHE");
	uint64_t size = bz->setup_size + bz->kernel_size, hash;
	int fd;

	*why = "VIREO_KERNEL_CACHE=off";
	if (off && !strcmp(off, "off"))
		return -1;
	*why = "cannot read the kernel file";
	if (content_hash(kernel_fd, size, &hash) < 0)
		return -1;
	*why = "no writable cache directory ($VIREO_CACHE, $XDG_CACHE_HOME/vireo, ~/.cache/vireo)";
	if (cache_dir(dir, sizeof(dir)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/vmlinux-%llx-%016llx", dir, (unsigned long long)size,
		 (unsigned long long)hash);
	*why = "found in the cache";
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (fill(kernel_fd, bz, header, dir, path, why) < 0)
		return -1;
	*why = "decompressed into the cache now";
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		*why = "cannot open the vmlinux just written to the cache";
	return fd;
}
