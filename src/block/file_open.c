/* Opening and closing raw images: the checks a user's typo or a second
 * VM should fail, each with one line naming the file and the problem, and
 * the choice of the I/O engine. Opening never writes anything. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/file.h"
#include "util/log.h"

static void report_open_error(const char *path, int err)
{
	switch (err) {
	case ENOENT:
		log_error("disk '%s' does not exist", path);
		break;
	case EACCES:
	case EPERM:
		log_error("disk '%s': permission denied", path);
		break;
	case EISDIR:
		log_error("disk '%s' is a directory", path);
		break;
	case EROFS:
		log_error("disk '%s' is on a read-only file system (use readonly=on)", path);
		break;
	case EBUSY:
		log_error("disk '%s' is in use (busy device)", path);
		break;
	default:
		log_error("disk '%s': cannot open: %s", path, strerror(err));
		break;
	}
}

/* O_NONBLOCK keeps a FIFO or a tty from hanging the open; it is dropped
 * again once the file is known to be a disk. O_DIRECT comes later too, so
 * a file that is no disk at all gets no warning about it first. */
static int open_image(const char *path, bool read_only)
{
	return open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

static int image_size(struct block_file *b, const struct stat *st)
{
	uint64_t size;

	if (S_ISDIR(st->st_mode)) {
		log_error("disk '%s' is a directory", b->base.path);
		return -1;
	}
	if (S_ISREG(st->st_mode)) {
		size = (uint64_t)st->st_size;
	} else if (S_ISBLK(st->st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &size) < 0) {
			log_error("disk '%s': cannot get the block device's size: %s", b->base.path,
				  strerror(errno));
			return -1;
		}
	} else {
		log_error("disk '%s' is not a regular file or block device", b->base.path);
		return -1;
	}
	b->base.size = size;
	return 0;
}

/* What a raw image must be; a format's file need not. */
static int check_raw_size(const struct block_file *b)
{
	if (b->base.size == 0) {
		log_error("disk '%s' is empty (0 bytes)", b->base.path);
		return -1;
	}
	if (b->base.size % BLOCK_SECTOR_SIZE) {
		log_error("disk '%s': size %llu bytes is not a multiple of %d", b->base.path,
			  (unsigned long long)b->base.size, BLOCK_SECTOR_SIZE);
		return -1;
	}
	return 0;
}

int block_file_check_raw(struct block_backend *bb)
{
	if (check_raw_size((struct block_file *)bb) < 0)
		return -1;
	bb->growable = false;
	return 0;
}

static int lock_image(struct block_file *b)
{
	if (file_lock(&b->base) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		log_error("disk '%s' is in use by another process", b->base.path);
	else
		log_error("disk '%s': cannot lock: %s", b->base.path, strerror(errno));
	return -1;
}

static void direct_off(struct block_file *b, const char *why)
{
	log_warn("disk '%s': %s; cache=none falls back to the page cache", b->base.path, why);
	b->direct = false;
}

static bool direct_read_works(int fd, uint32_t mem_align)
{
	size_t align = mem_align > 4096 ? mem_align : 4096;
	void *buf;
	ssize_t n;

	if (posix_memalign(&buf, align, BLOCK_SECTOR_SIZE) != 0)
		return false;
	n = pread(fd, buf, BLOCK_SECTOR_SIZE, 0);
	free(buf);
	return n == BLOCK_SECTOR_SIZE;
}

/* O_DIRECT needs aligned buffers and offsets. Guest requests come in
 * 512-byte sectors, so a file system or device that needs larger offsets
 * cannot serve them directly; memory alignment is handled with bounce
 * buffers in block.c. */
static void direct_alignment(struct block_file *b, const struct stat *st, int fl)
{
	uint32_t mem = BLOCK_SECTOR_SIZE, off = BLOCK_SECTOR_SIZE;
	struct statx sx;
	int lbs;

	if (fcntl(b->fd, F_SETFL, fl | O_DIRECT) < 0) {
		direct_off(b, "the file system refuses O_DIRECT");
		return;
	}
	if (S_ISBLK(st->st_mode)) {
		if (ioctl(b->fd, BLKSSZGET, &lbs) == 0 && lbs > 0)
			mem = off = (uint32_t)lbs;
	} else if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
		   (sx.stx_mask & STATX_DIOALIGN)) {
		if (!sx.stx_dio_offset_align) {
			fcntl(b->fd, F_SETFL, fl);
			direct_off(b, "the file system does not support direct I/O");
			return;
		}
		mem = sx.stx_dio_mem_align ? sx.stx_dio_mem_align : 1;
		off = sx.stx_dio_offset_align;
	}
	if (off > BLOCK_SECTOR_SIZE) {
		fcntl(b->fd, F_SETFL, fl);
		direct_off(b, "direct I/O needs blocks larger than 512 bytes");
		return;
	}
	/* Some file systems (overlayfs over tmpfs) take the flag and then
	 * fail every I/O with EINVAL: one aligned read finds out, and never
	 * writes anything. */
	if (!direct_read_works(b->fd, mem)) {
		fcntl(b->fd, F_SETFL, fl);
		direct_off(b, "direct I/O fails on this file system");
		return;
	}
	b->mem_align = mem;
}

static int start_engine(struct block_file *b, const char *want)
{
	int err;

	if (want && strcmp(want, "uring") && strcmp(want, "threads")) {
		log_error("disk '%s': unknown engine '%s' (uring or threads)", b->base.path, want);
		return -1;
	}
	if (!want || !strcmp(want, "uring")) {
		err = block_engine_uring.init(b);
		if (!err) {
			b->engine = &block_engine_uring;
			return 0;
		}
		/* Asked for by name it deserves a warning; as the default, the
		 * thread pool is simply what this host gets. */
		if (want)
			log_warn("disk '%s': io_uring unavailable (%s); using threads", b->base.path,
				 strerror(-err));
		else
			log_debug("disk '%s': io_uring unavailable (%s); using threads", b->base.path,
				  strerror(-err));
	}
	err = block_engine_threads.init(b);
	if (err) {
		log_error("disk '%s': cannot start I/O threads: %s", b->base.path, strerror(-err));
		return -1;
	}
	b->engine = &block_engine_threads;
	return 0;
}

static void free_backend(struct block_file *b)
{
	if (b->event_fd >= 0)
		close(b->event_fd);
	if (b->fd >= 0)
		close(b->fd);
	free(b->zero_buf);
	free(b->base.path);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

struct block_backend *block_file_open(const struct block_options *o, bool growable)
{
	struct block_file *b;
	struct stat st;
	int fl;

	if (!o->path || !*o->path) {
		log_error("disk: no path given");
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		log_error("disk '%s': out of memory", o->path);
		return NULL;
	}
	b->base.drv = &block_file_driver;
	b->fd = b->event_fd = -1;
	pthread_mutex_init(&b->lock, NULL);
	b->base.read_only = o->read_only;
	b->direct = o->cache == BLOCK_CACHE_NONE;
	b->mem_align = 1;
	b->base.path = strdup(o->path);
	if (!b->base.path) {
		log_error("disk '%s': out of memory", o->path);
		goto fail;
	}
	b->fd = open_image(b->base.path, b->base.read_only);
	if (b->fd < 0) {
		report_open_error(b->base.path, errno);
		goto fail;
	}
	if (fstat(b->fd, &st) < 0) {
		log_error("disk '%s': cannot stat: %s", b->base.path, strerror(errno));
		goto fail;
	}
	if (image_size(b, &st) < 0 || (!growable && check_raw_size(b) < 0))
		goto fail;
	b->base.growable = growable;
	fl = fcntl(b->fd, F_GETFL);
	if (fl < 0 || fcntl(b->fd, F_SETFL, fl &= ~O_NONBLOCK) < 0) {
		log_error("disk '%s': fcntl: %s", b->base.path, strerror(errno));
		goto fail;
	}
	if (!o->defer_lock && lock_image(b) < 0)
		goto fail;
	if (b->direct)
		direct_alignment(b, &st, fl);

	b->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->event_fd < 0) {
		log_error("disk '%s': eventfd: %s", b->base.path, strerror(errno));
		goto fail;
	}
	/* Zeroes for WRITE_ZEROES where fallocate cannot help; page aligned
	 * so O_DIRECT takes them as they are. */
	if (posix_memalign(&b->zero_buf, b->mem_align > 4096 ? b->mem_align : 4096,
			   BLOCK_ZERO_CHUNK)) {
		b->zero_buf = NULL;
		log_error("disk '%s': out of memory", b->base.path);
		goto fail;
	}
	memset(b->zero_buf, 0, BLOCK_ZERO_CHUNK);
	if (start_engine(b, o->engine) < 0)
		goto fail;
	log_debug("disk '%s': %llu bytes, %s, engine %s%s", b->base.path, (unsigned long long)b->base.size,
		  b->base.read_only ? "read-only" : "read-write", b->engine->name,
		  b->direct ? ", O_DIRECT" : "");
	return &b->base;

fail:
	free_backend(b);
	return NULL;
}

void file_close(struct block_backend *bb)
{
	struct block_file *b = (struct block_file *)bb;

	b->engine->fini(b);
	free_backend(b);
}
