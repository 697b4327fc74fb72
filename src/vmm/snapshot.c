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

#include "block/block.h"
#include "util/file.h"
#include "util/log.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_pci.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"

#define ZERO_CHUNK (2u << 20) /* RAM is written in runs of non-zero pages */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- save ------------------------------------------------------------ */

struct meta {
	uint32_t kind, index;
	struct state_writer w;
};

static int build_meta(struct vm *vm, struct meta *m, unsigned int *n, struct error *err)
{
	struct kvm_irqchips_state chips;
	unsigned int i, k = 0;

	if (2 + vm->ncpus + 4 > SNAPSHOT_MAX_SECTIONS)
		return error_set(err, "a snapshot holds at most %d vCPUs",
				 SNAPSHOT_MAX_SECTIONS - 6);
	m[k].kind = SNAP_MACHINE;
	state_put_u32(&m[k].w, vm->ncpus);
	state_put_u64(&m[k].w, vm->mem.size);
	state_put_u64(&m[k].w, vm->mem.low_size);
	k++;
	for (i = 0; i < vm->ncpus; i++, k++) {
		struct kvm_vcpu_state s;
		uint64_t tsc;

		m[k].kind = SNAP_VCPU;
		m[k].index = i;
		if (kvm_vcpu_state_get(&vm->kvm, vm->vcpus[i].fd, &s, err) < 0)
			return -1;
		if (kvm_vcpu_tsc_get(vm->vcpus[i].fd, &tsc) < 0) {
			kvm_vcpu_state_free(&s);
			return error_set(err, "vCPU %u: cannot read its TSC", i);
		}
		state_put_u64(&m[k].w, tsc);
		kvm_vcpu_state_save(&s, &m[k].w);
		kvm_vcpu_state_free(&s);
	}
	m[k].kind = SNAP_IRQCHIPS;
	if (kvm_irqchips_get(&vm->kvm, &chips, err) < 0)
		return -1;
	kvm_irqchips_save(&chips, &m[k++].w);
	m[k].kind = SNAP_CLOCK;
	state_put_u64(&m[k++].w, vm->kvmclock_at_pause);
	m[k].kind = SNAP_PCI_HOST;
	pthread_mutex_lock(&vm->pci.lock);
	state_put_u32(&m[k++].w, vm->pci.config_address);
	pthread_mutex_unlock(&vm->pci.lock);
	m[k].kind = SNAP_DEVICES;
	*n = k + 1;
	if (devices_save_all(&vm->devices, &m[k].w, err) < 0)
		return -1;
	for (i = 0; i < *n; i++)
		if (m[i].w.failed)
			return error_set(err, "out of memory");
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[SNAPSHOT_PAGE];

	return !memcmp(p, zero, SNAPSHOT_PAGE);
}

/* Guest RAM at off, leaving holes where pages are zero (a guest that used
 * little of its RAM makes a small file), and its CRC into *crc: one pass
 * over RAM for both. */
static int write_ram(struct vm *vm, int fd, uint64_t off, uint64_t *written, uint32_t *crc)
{
	const uint8_t *ram = vm->mem.host;
	uint64_t size = vm->mem.size, at = 0;

	*crc = 0;
	while (at < size) {
		uint64_t run;

		if (page_is_zero(ram + at)) {
			*crc = state_crc32_more(*crc, ram + at, SNAPSHOT_PAGE);
			at += SNAPSHOT_PAGE;
			continue;
		}
		for (run = SNAPSHOT_PAGE; at + run < size && run < ZERO_CHUNK &&
					  !page_is_zero(ram + at + run);
		     run += SNAPSHOT_PAGE)
			;
		*crc = state_crc32_more(*crc, ram + at, run);
		if (pwrite_full(fd, ram + at, run, off + at) < 0)
			return -1;
		*written += run;
		at += run;
	}
	return ftruncate(fd, (off_t)(off + size));
}

/* The disks' writes so far, durable: a snapshot must not name data the
 * image could still lose. */
static int sync_disks(struct vm *vm, struct error *err)
{
	struct device *d;

	for (d = vm->devices.head; d; d = d->next) {
		const struct virtio_device *vdev = virtio_pci_vdev(d);
		const struct block_backend *b = vdev ? virtio_blk_backend(vdev) : NULL;

		if (b && block_sync(b) < 0)
			return error_set(err, "%s: cannot flush its disk: %s", d->name,
					 strerror(errno));
	}
	return 0;
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
	struct meta m[SNAPSHOT_MAX_SECTIONS];
	struct snapshot_index idx = { 0 };
	uint8_t *hdr = NULL;
	char tmp[4096];
	uint64_t start = now_ms(), off = SNAPSHOT_HEADER_SIZE;
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
	if (sync_disks(vm, err) < 0 || build_meta(vm, m, &n, err) < 0)
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
	st->total_ms = now_ms() - start;
	ret = 0;
	goto out;
write_failed:
	error_set(err, "cannot write '%s': %s", tmp, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0 && created)
		unlink(tmp); /* ours: created with O_EXCL */
	for (i = 0; i < SNAPSHOT_MAX_SECTIONS; i++)
		state_writer_free(&m[i].w);
	free(hdr);
	return ret;
}

/* ---- restore --------------------------------------------------------- */

struct loaded {
	uint8_t *buf;
	size_t len;
};

/* Reads a metadata section whole and checks its CRC. */
static int read_section(int fd, const struct snapshot_section *s, struct loaded *out,
			struct error *err)
{
	out->len = (size_t)s->length;
	out->buf = malloc(out->len ? out->len : 1);
	if (!out->buf)
		return error_set(err, "out of memory");
	errno = 0;
	if (pread_full(fd, out->buf, out->len, s->offset) < 0)
		return error_set(err, "snapshot cannot be read: %s",
				 errno ? strerror(errno) : "unexpected end of file");
	if (state_crc32(out->buf, out->len) != s->crc)
		return error_set(err, "snapshot is damaged (a section's checksum is wrong)");
	return 0;
}

static const char *size_text(uint64_t bytes, char *buf, size_t n)
{
	if (bytes % (1ULL << 30) == 0)
		snprintf(buf, n, "%lluG", (unsigned long long)(bytes >> 30));
	else
		snprintf(buf, n, "%lluM", (unsigned long long)(bytes >> 20));
	return buf;
}

static int check_machine(struct vm *vm, const struct loaded *l, struct error *err)
{
	struct state_reader r;
	uint32_t ncpus;
	uint64_t size, low;
	char a[32], b[32];

	state_reader_init(&r, l->buf, l->len);
	ncpus = state_get_u32(&r);
	size = state_get_u64(&r);
	low = state_get_u64(&r);
	if (state_reader_done(&r, err) < 0)
		return -1;
	if (ncpus != vm->ncpus || size != vm->mem.size || low != vm->mem.low_size)
		return error_set(err, "the snapshot is of a VM with %u vCPU%s and %s of memory, "
				 "this one has %u and %s: start it with --cpus %u --memory %s",
				 ncpus, ncpus == 1 ? "" : "s", size_text(size, a, sizeof(a)),
				 vm->ncpus, size_text(vm->mem.size, b, sizeof(b)), ncpus, a);
	return 0;
}

/* A vCPU's record: the TSC, then the state. The XSAVE area is padded to
 * this KVM's size (KVM_SET_XSAVE reads that many bytes). */
static int load_vcpu(struct vm *vm, unsigned int i, const struct loaded *l, struct error *err)
{
	struct kvm_vcpu_state s;
	struct state_reader r;
	size_t want = vm->vcpus[i].at_reset.xsave_size;
	uint64_t tsc;
	int ret = -1;

	state_reader_init(&r, l->buf, l->len);
	tsc = state_get_u64(&r);
	if (kvm_vcpu_state_load(&s, &r, err) < 0)
		return -1;
	if (!s.xsave != !vm->vcpus[i].at_reset.xsave || s.xsave_size > want) {
		error_set(err, "the snapshot's FPU state does not fit this host's CPU");
		goto out;
	}
	if (s.xsave && s.xsave_size < want) {
		void *p = realloc(s.xsave, want);

		if (!p) {
			error_set(err, "out of memory");
			goto out;
		}
		memset((uint8_t *)p + s.xsave_size, 0, want - s.xsave_size);
		s.xsave = p;
		s.xsave_size = want;
	}
	/* The TSC first: the deadline timer among the MSRs counts from it. */
	if (kvm_vcpu_tsc_set(vm->vcpus[i].fd, tsc) < 0) {
		error_set(err, "cannot set the TSC");
		goto out;
	}
	ret = kvm_vcpu_state_set(vm->vcpus[i].fd, &s, err);
out:
	kvm_vcpu_state_free(&s);
	return ret;
}

/* The loaded metadata section of that kind (which load_all checked is
 * there). */
static const struct loaded *loaded_of(const struct loaded *l, const struct snapshot_index *idx,
				      uint32_t kind, uint32_t index)
{
	return &l[snapshot_find(idx, kind, index) - idx->sec];
}

static int load_u64(const struct loaded *l, uint64_t *v, struct error *err)
{
	struct state_reader r;

	state_reader_init(&r, l->buf, l->len);
	*v = state_get_u64(&r);
	return state_reader_done(&r, err);
}

/* Everything but RAM, in the order the machine needs: devices (which may
 * drive interrupt lines), then the controllers those lines reach, the
 * vCPUs, the clock. */
static int load_all(struct vm *vm, int fd, const struct snapshot_index *idx, struct error *err)
{
	struct loaded l[SNAPSHOT_MAX_SECTIONS] = { 0 };
	const struct snapshot_section *ram = snapshot_find(idx, SNAP_RAM, 0);
	struct kvm_irqchips_state chips;
	struct state_reader r;
	unsigned int i, cfg_addr;
	uint64_t clock;
	int ret = -1;

	/* Every section present and whole before anything changes. */
	if (!ram || !snapshot_find(idx, SNAP_MACHINE, 0) || !snapshot_find(idx, SNAP_IRQCHIPS, 0) ||
	    !snapshot_find(idx, SNAP_CLOCK, 0) || !snapshot_find(idx, SNAP_PCI_HOST, 0) ||
	    !snapshot_find(idx, SNAP_DEVICES, 0))
		return error_set(err, "snapshot lacks a section");
	for (i = 0; i < idx->nsections; i++) {
		if (idx->sec[i].kind == SNAP_RAM)
			continue;
		if (read_section(fd, &idx->sec[i], &l[i], err) < 0)
			goto out;
	}
	if (check_machine(vm, loaded_of(l, idx, SNAP_MACHINE, 0), err) < 0)
		goto out;
	for (i = 0; i < idx->nsections; i++)
		if (idx->sec[i].kind != SNAP_VCPU ? idx->sec[i].index != 0
						  : idx->sec[i].index >= vm->ncpus) {
			error_set(err, "snapshot has a section it should not have");
			goto out;
		}
	for (i = 0; i < vm->ncpus; i++)
		if (!snapshot_find(idx, SNAP_VCPU, i)) {
			error_set(err, "snapshot lacks vCPU %u", i);
			goto out;
		}
	if (ram->length != vm->mem.size) {
		error_set(err, "snapshot's memory is not the size it says");
		goto out;
	}
	if (load_u64(loaded_of(l, idx, SNAP_CLOCK, 0), &clock, err) < 0)
		goto out;
	{
		const struct loaded *pl = loaded_of(l, idx, SNAP_PCI_HOST, 0);

		state_reader_init(&r, pl->buf, pl->len);
		cfg_addr = state_get_u32(&r);
		if (state_reader_done(&r, err) < 0)
			goto out;
	}

	/* Guest RAM: the file's pages, copied on write. */
	if (mmap(vm->mem.host, vm->mem.size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, (off_t)ram->offset) == MAP_FAILED) {
		error_set(err, "cannot map the snapshot's memory: %s", strerror(errno));
		goto out;
	}
	if (devices_pause_all(&vm->devices, err) < 0)
		goto out;
	{
		const struct loaded *dl = loaded_of(l, idx, SNAP_DEVICES, 0);

		state_reader_init(&r, dl->buf, dl->len);
		if (devices_load_all(&vm->devices, &r, err) < 0)
			goto out;
		if (state_reader_done(&r, err) < 0)
			goto out;
	}
	{
		const struct loaded *cl = loaded_of(l, idx, SNAP_IRQCHIPS, 0);

		state_reader_init(&r, cl->buf, cl->len);
		if (kvm_irqchips_load(&chips, &r, err) < 0 ||
		    kvm_irqchips_set(&vm->kvm, &chips, err) < 0)
			goto out;
	}
	for (i = 0; i < vm->ncpus; i++) {
		if (load_vcpu(vm, i, loaded_of(l, idx, SNAP_VCPU, i), err) < 0) {
			error_prefix(err, "vCPU %u: ", i);
			goto out;
		}
	}
	if (clock && kvm_set_clock(&vm->kvm, clock) < 0) {
		error_set(err, "cannot set the guest's clock");
		goto out;
	}
	pthread_mutex_lock(&vm->pci.lock);
	vm->pci.config_address = cfg_addr;
	pthread_mutex_unlock(&vm->pci.lock);
	devices_resume_all(&vm->devices);
	ret = 0;
out:
	for (i = 0; i < SNAPSHOT_MAX_SECTIONS; i++)
		free(l[i].buf);
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
