/* Migration, the destination's side (vmm/migration.h): --incoming
 * tcp:ADDR:PORT. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/tcp.h"
#include "virtio/virtio.h"
#include "hw/e1000.h"
#include "virtio/virtio_pci.h"
#include "vmm/migration.h"
#include "vmm/migration_stream.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

/* The stream's reader: a buffer in front of the socket, so that the
 * many small records of a pass (a header and a page or a few, where the
 * guest dirtied scattered pages) cost a system call per buffer, not
 * three per record; the bulk of a long run of pages goes straight into
 * guest RAM. */
#define IN_BUF (256u << 10)
#define SIGNAL_EVERY 32 /* reads between looks at the signal fd */

struct incoming {
	int fd, signal_fd;
	uint8_t *buf;
	size_t head, tail; /* buf[head..tail): read, not yet taken */
	unsigned int reads;
};

static bool signalled(int signal_fd)
{
	struct pollfd p = { .fd = signal_fd, .events = POLLIN };

	return signal_fd >= 0 && poll(&p, 1, 0) > 0;
}

/* Some bytes of the stream, up to n, into p: as many as have come, else
 * waits for some. 0 at the end of the stream, -1 on an error or a signal
 * (SIGINT, SIGTERM), which is also looked for now and then while the
 * bytes keep coming. */
static ssize_t read_some(struct incoming *in, void *p, size_t n)
{
	if (++in->reads % SIGNAL_EVERY == 0 && signalled(in->signal_fd))
		return -1;
	for (;;) {
		struct pollfd fds[2] = { { .fd = in->fd, .events = POLLIN },
					 { .fd = in->signal_fd, .events = POLLIN } };
		ssize_t r = recv(in->fd, p, n, MSG_DONTWAIT);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (fds[1].revents & POLLIN)
			return -1;
	}
}

/* Reads exactly n bytes of the stream (mig_read_fn). */
static int incoming_read(void *ctx, void *buf, size_t n)
{
	struct incoming *in = ctx;
	uint8_t *p = buf;

	while (n) {
		ssize_t r;

		if (in->head < in->tail) {
			size_t k = in->tail - in->head < n ? in->tail - in->head : n;

			memcpy(p, in->buf + in->head, k);
			in->head += k;
			p += k;
			n -= k;
			continue;
		}
		if (n >= IN_BUF / 2) {
			/* Bulk: straight to where it goes. */
			if ((r = read_some(in, p, n)) <= 0)
				return -1;
			p += r;
			n -= (size_t)r;
			continue;
		}
		if ((r = read_some(in, in->buf, IN_BUF)) <= 0)
			return -1;
		in->head = 0;
		in->tail = (size_t)r;
	}
	return 0;
}

/* The NICs tell the network they are here now. */
static void announce(struct vm *vm)
{
	struct device *d;

	for (d = vm->devices.head; d; d = d->next) {
		struct virtio_device *vdev = virtio_pci_vdev(d);

		if (vdev && vdev->ops->announce)
			vdev->ops->announce(vdev);
		e1000_announce(d);
	}
}

/* The source gave its images up before its end record; a moment's grace
 * all the same for a lock that is still on its way out. */
static int take_disks(struct vm *vm, struct error *err)
{
	int tries;

	for (tries = 0; vm_lock_disks(vm, err) < 0; tries++) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };

		if (tries == 20)
			return -1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* A refused stream may still have bytes in flight: closing with them
 * unread would make the kernel answer with a reset, which can reach the
 * source before the refusal itself. So the sending side is shut first,
 * and what the source still sends is read and dropped until it closes
 * (or for 2 s at most). */
static void drain_refused(int fd)
{
	char buf[4096];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t deadline = monotonic_ms() + 2000;

	shutdown(fd, SHUT_WR);
	while (monotonic_ms() < deadline && poll(&p, 1, 100) >= 0) {
		if (p.revents && read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
}

int migration_incoming(struct vm *vm, const char *addr, int signal_fd, struct error *err)
{
	struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];
	struct mig_target t = { .ram = vm->mem.host, .ram_size = vm->mem.size,
				.low_size = vm->mem.low_size, .ncpus = vm->ncpus };
	struct incoming in = { .fd = -1, .signal_fd = signal_fd, .buf = malloc(IN_BUF) };
	unsigned int n = 0;
	uint64_t bytes = 0, start;
	int lfd, ret = -1;

	if (!in.buf)
		return error_set(err, "incoming migration: out of memory");
	lfd = tcp_socket(addr, true, err);
	if (lfd < 0) {
		free(in.buf);
		return -1;
	}
	/* What the source has sent and this side not yet read is part of the
	 * downtime when the source stops: TCP's own receive buffer grows to
	 * megabytes, tens to hundreds of milliseconds of reading under
	 * emulation (an idle 512M guest: 200-390 ms of downtime in 3 of 13
	 * bench/migrate runs, all of it the destination reading its backlog).
	 * 1 MiB (2 MiB, doubled) bounds it; the source also waits for its
	 * own queue to drain before it stops (migration.c). */
	tcp_set_rcvbuf(lfd, 1 << 20);
	log_info("waiting for the migration on %s", addr);
	for (;;) {
		struct pollfd fds[2] = { { .fd = lfd, .events = POLLIN },
					 { .fd = signal_fd, .events = POLLIN } };

		if (poll(fds, 2, -1) < 0 && errno != EINTR) {
			error_set(err, "waiting for the migration: %s", strerror(errno));
			goto out;
		}
		if (fds[1].revents & POLLIN) {
			error_set(err, "stopped by a signal while waiting for the migration");
			goto out;
		}
		if (fds[0].revents & POLLIN) {
			in.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (in.fd >= 0) {
				tcp_nodelay(in.fd);
				break;
			}
		}
	}
	close(lfd);
	lfd = -1;
	start = monotonic_ms();
	/* RAM as the stream assumes it: zero where the source's is zero (the
	 * first pass skips those pages). Nothing was loaded into it (main.c
	 * skips the kernel of an incoming VM), and it is cleared all the
	 * same: a page left holding other bytes, as the kernel and initrd
	 * once were, corrupts the guest silently. */
	if (madvise(vm->mem.host, vm->mem.size, MADV_DONTNEED) < 0) {
		error_set(err, "incoming migration: cannot clear guest RAM: %s", strerror(errno));
		goto reply;
	}
	if (mig_receive(incoming_read, &in, &t, l, &n, &bytes, err) < 0) {
		if (signalled(signal_fd))
			error_set(err, "stopped by a signal during the migration");
		error_prefix(err, "incoming migration: ");
		goto reply;
	}
	if (vm_state_check(vm, l, n, err) < 0 || vm_state_apply(vm, l, n, err) < 0 ||
	    take_disks(vm, err) < 0) {
		error_prefix(err, "incoming migration: ");
		goto reply;
	}
	announce(vm);
	ret = 0;
	log_info("migrated in on %s: %llu MiB in %llu ms", addr,
		 (unsigned long long)(bytes >> 20), (unsigned long long)(monotonic_ms() - start));
reply:
	/* The source waits for this word: it resumes on anything but 0. */
	mig_send_reply(in.fd, ret ? 1 : 0, ret ? err->msg : "running");
	if (ret)
		drain_refused(in.fd);
out:
	mig_sections_free(l, n);
	if (in.fd >= 0)
		close(in.fd);
	if (lfd >= 0)
		close(lfd);
	free(in.buf);
	return ret;
}
