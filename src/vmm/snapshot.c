/* Snapshots of the whole machine (vmm/snapshot.h). Save runs on the main
 * thread with the VM paused; restore on the main thread before the vCPUs
 * first run. */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/file.h"
#include "util/log.h"
#include "util/zero.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

#define ZERO_CHUNK (2u << 20) /* RAM is written in runs of non-zero pages */

/* ---- save ------------------------------------------------------------ */

/* Guest RAM at off, leaving holes where pages are zero (a guest that used
 * little of its RAM makes a small file), and its CRC into *crc: one pass
 * over RAM for both, the zero runs checksummed without reading them
 * twice. */
static int write_ram(struct vm *vm, int fd, uint64_t off, uint64_t *written, uint32_t *crc)
{
	const uint8_t *ram = vm->mem.host;
	uint64_t size = vm->mem.size, at = 0;

	*crc = 0;
	while (at < size) {
		uint64_t left = (size - at) / SNAPSHOT_PAGE;
		uint64_t run = zero_run(ram + at, left, SNAPSHOT_PAGE, true) * SNAPSHOT_PAGE;

		*crc = crc32_of_zeros(*crc, run);
		at += run;
		if (at == size)
			break;
		left = (size - at) / SNAPSHOT_PAGE;
		run = zero_run(ram + at, left < ZERO_CHUNK / SNAPSHOT_PAGE ? left : ZERO_CHUNK / SNAPSHOT_PAGE,
			       SNAPSHOT_PAGE, false) * SNAPSHOT_PAGE;
		*crc = state_crc32_more(*crc, ram + at, run);
		if (pwrite_full(fd, ram + at, run, off + at) < 0)
			return -1;
		*written += run;
		at += run;
	}
	return ftruncate(fd, (off_t)(off + size));
}

static int sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, r = -1;

	if (!copy)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		r = fsync(fd);
		close(fd);
	}
	free(copy);
	return r;
}

int vm_snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *st,
		     struct error *err)
{
	struct vm_state_section m[SNAPSHOT_MAX_SECTIONS];
	struct snapshot_index idx = { 0 };
	uint8_t *hdr = NULL;
	char tmp[4096];
	uint64_t start = monotonic_ms(), off = SNAPSHOT_HEADER_SIZE;
	unsigned int n = 0, i;
	int fd = -1, ret = -1;
	bool created = false;

	memset(st, 0, sizeof(*st));
	memset(m, 0, sizeof(m));
	if (!vm->paused) {
		error_set(err, "internal error: snapshot of a running VM");
		goto out;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		error_set(err, "'%s': path too long", path);
		goto out;
	}
	if (vm_sync_disks(vm, err) < 0 || vm_state_build(vm, m, &n, err) < 0)
		goto out;
	hdr = calloc(1, SNAPSHOT_HEADER_SIZE);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (!hdr || fd < 0) {
		error_set(err, "cannot create '%s': %s", tmp, hdr ? strerror(errno) : "out of memory");
		goto out;
	}
	created = true;
	for (i = 0; i < n; i++) {
		struct snapshot_section *s = &idx.sec[idx.nsections++];

		*s = (struct snapshot_section){ .kind = m[i].kind, .index = m[i].index,
						.offset = off, .length = m[i].w.len,
						.crc = state_crc32(m[i].w.buf, m[i].w.len) };
		if (pwrite_full(fd, m[i].w.buf, m[i].w.len, off) < 0)
			goto write_failed;
		off += m[i].w.len;
		st->written += m[i].w.len;
	}
	off = (off + SNAPSHOT_PAGE - 1) / SNAPSHOT_PAGE * SNAPSHOT_PAGE;
	idx.sec[idx.nsections] = (struct snapshot_section){
		.kind = SNAP_RAM, .offset = off, .length = vm->mem.size,
	};
	if (write_ram(vm, fd, off, &st->written, &idx.sec[idx.nsections++].crc) < 0)
		goto write_failed;
	snapshot_header_write(&idx, hdr);
	if (pwrite_full(fd, hdr, SNAPSHOT_HEADER_SIZE, 0) < 0 || fsync(fd) < 0)
		goto write_failed;
	if (close(fd) < 0) {
		fd = -1;
		goto write_failed;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		error_set(err, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
		goto out;
	}
	sync_dir_of(path);
	st->written += SNAPSHOT_HEADER_SIZE;
	st->ram_bytes = vm->mem.size;
	st->total_ms = monotonic_ms() - start;
	ret = 0;
	goto out;
write_failed:
	error_set(err, "cannot write '%s': %s", tmp, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0 && created)
		unlink(tmp); /* ours: created with O_EXCL */
	vm_state_free(m);
	free(hdr);
	return ret;
}

/* ---- restore --------------------------------------------------------- */

/* Reads a metadata section whole and checks its CRC. */
static int read_section(int fd, const struct snapshot_section *s, struct vm_state_loaded *out,
			struct error *err)
{
	uint8_t *buf = malloc(s->length ? (size_t)s->length : 1);

	out->kind = s->kind;
	out->index = s->index;
	out->len = (size_t)s->length;
	out->buf = buf;
	if (!buf)
		return error_set(err, "out of memory");
	errno = 0;
	if (pread_full(fd, buf, out->len, s->offset) < 0)
		return error_set(err, "snapshot cannot be read: %s",
				 errno ? strerror(errno) : "unexpected end of file");
	if (state_crc32(out->buf, out->len) != s->crc)
		return error_set(err, "snapshot is damaged (a section's checksum is wrong)");
	return 0;
}

/* Everything but RAM read and checked, RAM mapped, then the rest loaded
 * (vmm/vm_state.h). */
static int load_all(struct vm *vm, int fd, const struct snapshot_index *idx, struct error *err)
{
	struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS] = { 0 };
	const struct snapshot_section *ram = snapshot_find(idx, SNAP_RAM, 0);
	unsigned int i, n = 0;
	int ret = -1;

	if (!ram) {
		error_set(err, "the snapshot lacks a section");
		goto out;
	}
	for (i = 0; i < idx->nsections; i++) {
		if (idx->sec[i].kind == SNAP_RAM)
			continue;
		if (read_section(fd, &idx->sec[i], &l[n++], err) < 0)
			goto out;
	}
	if (vm_state_check(vm, l, n, err) < 0)
		goto out;
	if (ram->length != vm->mem.size) {
		error_set(err, "snapshot's memory is not the size it says");
		goto out;
	}
	/* Guest RAM: the file's pages, copied on write. */
	if (mmap(vm->mem.host, vm->mem.size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, (off_t)ram->offset) == MAP_FAILED) {
		error_set(err, "cannot map the snapshot's memory: %s", strerror(errno));
		goto out;
	}
	ret = vm_state_apply(vm, l, n, err);
out:
	for (i = 0; i < n; i++)
		free((void *)l[i].buf);
	return ret;
}

int vm_snapshot_restore(struct vm *vm, const char *path, struct error *err)
{
	struct snapshot_index *idx = calloc(1, sizeof(*idx));
	uint8_t *hdr = calloc(1, SNAPSHOT_HEADER_SIZE);
	struct stat sb;
	int fd, ret = -1;
	ssize_t got;

	if (!idx || !hdr) {
		error_set(err, "out of memory");
		goto out_free;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error_set(err, "cannot open '%s': %s", path, strerror(errno));
		goto out_free;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		error_set(err, "'%s' is not a snapshot file", path);
		goto out;
	}
	got = pread(fd, hdr, SNAPSHOT_HEADER_SIZE, 0);
	if (got < 0) {
		error_set(err, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (snapshot_header_parse(hdr, (uint64_t)(got == SNAPSHOT_HEADER_SIZE ? sb.st_size : 0),
				  idx, err) < 0 ||
	    load_all(vm, fd, idx, err) < 0) {
		error_prefix(err, "%s: ", path);
		goto out;
	}
	ret = 0;
out:
	close(fd); /* the RAM mapping keeps the file */
out_free:
	free(idx);
	free(hdr);
	return ret;
}
