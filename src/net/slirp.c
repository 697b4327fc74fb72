/* User-mode networking on libslirp: the guest sees a NATed 10.0.2.0/24
 * with a gateway at 10.0.2.2, DNS at 10.0.2.3 and DHCP from 10.0.2.15
 * (QEMU's defaults, so guest images configured for QEMU just work), plus
 * IPv6 on fec0::/64. No privileges needed.
 *
 * libslirp is not thread-safe, so every slirp_* call is made under one
 * mutex. A thread of our own runs slirp's sockets and timers: it holds the
 * mutex except while it sleeps in poll(). The device's I/O thread calls
 * slirp_input() under the same mutex when the guest sends, then wakes the
 * thread so it polls any socket that frame created. Frames for the guest
 * wait in a bounded queue (a NIC's receive FIFO: full means dropped, and
 * TCP retransmits) whose eventfd is the backend's rx_fd. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "net/hostfwd.h"
#include "net/libslirp.h"
#include "net/net_backend.h"
#include "util/eventfd.h"
#include "util/iov.h"
#include "util/log.h"
#include "util/thread.h"

#define RXQ_FRAMES 256

struct user_timer {
	struct user_timer *next;
	SlirpTimerId id;     /* timer_new_opaque timers */
	void *cb_opaque;
	SlirpTimerCb cb;     /* timer_new timers (older libslirp API) */
	int64_t expire_ms;   /* -1: not armed */
};

struct user_frame {
	size_t len;
	uint8_t data[];
};

struct user_net {
	struct net_backend base;

	/* Everything slirp: the stack, its timers, the poll set. */
	pthread_mutex_t lock;
	const struct libslirp *lib;
	Slirp *slirp;
	struct user_timer *timers;
	struct pollfd *pfd;
	unsigned int npfd, pfd_cap;
	uint8_t *tx_buf; /* flat copy of a scattered frame for slirp_input */
	bool stop;
	int wake_fd;
	pthread_t thread;
	bool thread_running;

	/* Frames for the guest; rx_fd is readable iff count > 0. */
	pthread_mutex_t rxq_lock;
	struct user_frame *rxq[RXQ_FRAMES];
	unsigned int rxq_head, rxq_count;
	uint64_t rx_dropped;
};

static struct user_net *to_user(struct net_backend *b)
{
	return (struct user_net *)b;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- slirp callbacks: all run with u->lock held ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user_net *u = opaque;
	struct user_frame *f;

	pthread_mutex_lock(&u->rxq_lock);
	if (u->rxq_count == RXQ_FRAMES) {
		u->rx_dropped++;
		pthread_mutex_unlock(&u->rxq_lock);
		return (ssize_t)len;
	}
	f = malloc(sizeof(*f) + len);
	if (!f) {
		u->rx_dropped++;
		pthread_mutex_unlock(&u->rxq_lock);
		return (ssize_t)len;
	}
	f->len = len;
	memcpy(f->data, buf, len);
	u->rxq[(u->rxq_head + u->rxq_count) % RXQ_FRAMES] = f;
	if (u->rxq_count++ == 0)
		eventfd_signal(u->base.rx_fd);
	pthread_mutex_unlock(&u->rxq_lock);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	/* The guest's doing, and it could repeat it at will: not for stderr. */
	log_debug("user network: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static struct user_timer *timer_alloc(struct user_net *u)
{
	struct user_timer *t = calloc(1, sizeof(*t));

	if (!t)
		abort(); /* slirp has no way to hear of a failure here */
	t->expire_ms = -1;
	t->next = u->timers;
	u->timers = t;
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct user_timer *t = timer_alloc(opaque);

	t->cb = cb;
	t->cb_opaque = cb_opaque;
	return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct user_timer *t = timer_alloc(opaque);

	t->id = id;
	t->cb_opaque = cb_opaque;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct user_net *u = opaque;
	struct user_timer **pp;

	for (pp = &u->timers; *pp; pp = &(*pp)->next) {
		if (*pp == timer) {
			*pp = ((struct user_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct user_net *u = opaque;

	((struct user_timer *)timer)->expire_ms = expire_ms;
	/* The thread may be asleep with a later deadline. */
	eventfd_signal(u->wake_fd);
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	/* The poll set is rebuilt from slirp_pollfds_fill() every round. */
	(void)fd;
	(void)opaque;
}

static void cb_notify(void *opaque)
{
	struct user_net *u = opaque;

	eventfd_signal(u->wake_fd);
}

static void cb_init_completed(Slirp *slirp, void *opaque)
{
	struct user_net *u = opaque;

	u->slirp = slirp;
}

static const SlirpCb user_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_register_poll_fd,
	.notify = cb_notify,
	.init_completed = cb_init_completed,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the slirp thread ---- */

static int add_poll(int fd, int events, void *opaque)
{
	struct user_net *u = opaque;
	short ev = 0;

	if (u->npfd == u->pfd_cap) {
		unsigned int cap = u->pfd_cap ? u->pfd_cap * 2 : 16;
		struct pollfd *p = realloc(u->pfd, cap * sizeof(*p));

		if (!p)
			abort();
		u->pfd = p;
		u->pfd_cap = cap;
	}
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	u->pfd[u->npfd] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)u->npfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct user_net *u = opaque;
	short rev;
	int ev = 0;

	if (idx < 0 || (unsigned int)idx >= u->npfd)
		return 0;
	rev = u->pfd[idx].revents;
	if (rev & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (rev & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (rev & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (rev & POLLERR)
		ev |= SLIRP_POLL_ERR;
	if (rev & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

/* poll() timeout in ms: slirp's own wish, cut short by the next timer. */
static int poll_timeout(struct user_net *u, uint32_t slirp_ms)
{
	int64_t now = now_ns() / 1000000;
	int64_t best = slirp_ms == UINT32_MAX ? -1 : (int64_t)slirp_ms;
	struct user_timer *t;

	for (t = u->timers; t; t = t->next) {
		int64_t left;

		if (t->expire_ms < 0)
			continue;
		left = t->expire_ms > now ? t->expire_ms - now : 0;
		if (best < 0 || left < best)
			best = left;
	}
	return best > 60000 ? 60000 : (int)best;
}

static void run_timers(struct user_net *u)
{
	int64_t now = now_ns() / 1000000;
	struct user_timer *t;

again:
	/* A handler may re-arm or free timers: rescan after each one. */
	for (t = u->timers; t; t = t->next) {
		if (t->expire_ms < 0 || t->expire_ms > now)
			continue;
		t->expire_ms = -1;
		if (t->cb)
			t->cb(t->cb_opaque);
		else
			u->lib->handle_timer(u->slirp, t->id, t->cb_opaque);
		goto again;
	}
}

static void *user_thread(void *arg)
{
	struct user_net *u = arg;

	pthread_mutex_lock(&u->lock);
	while (!u->stop) {
		uint32_t slirp_ms = UINT32_MAX;
		int n, timeout;

		u->npfd = 0;
		add_poll(u->wake_fd, SLIRP_POLL_IN, u);
		u->lib->pollfds_fill(u->slirp, &slirp_ms, add_poll, u);
		timeout = poll_timeout(u, slirp_ms);
		pthread_mutex_unlock(&u->lock);

		n = poll(u->pfd, u->npfd, timeout);

		pthread_mutex_lock(&u->lock);
		if (n > 0 && (u->pfd[0].revents & POLLIN))
			(void)eventfd_consume(u->wake_fd);
		u->lib->pollfds_poll(u->slirp, n < 0, get_revents, u);
		run_timers(u);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* ---- backend ops ---- */

static ssize_t user_send(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	struct user_net *u = to_user(b);
	size_t len = iov_size(iov, iovcnt);

	if (len > NET_MAX_FRAME)
		return -EMSGSIZE;
	pthread_mutex_lock(&u->lock);
	if (iovcnt == 1) {
		u->lib->input(u->slirp, iov[0].iov_base, (int)len);
	} else {
		iov_to_buf(iov, iovcnt, 0, u->tx_buf, len);
		u->lib->input(u->slirp, u->tx_buf, (int)len);
	}
	pthread_mutex_unlock(&u->lock);
	/* The frame may have opened a socket the thread must now poll. */
	eventfd_signal(u->wake_fd);
	return (ssize_t)len;
}

static ssize_t user_recv(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	struct user_net *u = to_user(b);
	size_t room = iov_size(iov, iovcnt);
	struct user_frame *f;
	ssize_t ret;

	pthread_mutex_lock(&u->rxq_lock);
	if (!u->rxq_count) {
		(void)eventfd_consume(u->base.rx_fd);
		pthread_mutex_unlock(&u->rxq_lock);
		return -EAGAIN;
	}
	f = u->rxq[u->rxq_head];
	u->rxq_head = (u->rxq_head + 1) % RXQ_FRAMES;
	if (--u->rxq_count == 0)
		(void)eventfd_consume(u->base.rx_fd);
	pthread_mutex_unlock(&u->rxq_lock);

	if (f->len > room) {
		ret = -EMSGSIZE;
	} else {
		iov_from_buf(iov, iovcnt, 0, f->data, f->len);
		ret = (ssize_t)f->len;
	}
	free(f);
	return ret;
}

static void user_close(struct net_backend *b)
{
	struct user_net *u = to_user(b);

	if (u->thread_running) {
		pthread_mutex_lock(&u->lock);
		u->stop = true;
		pthread_mutex_unlock(&u->lock);
		eventfd_signal(u->wake_fd);
		pthread_join(u->thread, NULL);
	}
	if (u->slirp)
		u->lib->cleanup(u->slirp);
	while (u->timers)
		cb_timer_free(u->timers, u);
	while (u->rxq_count) {
		free(u->rxq[u->rxq_head]);
		u->rxq_head = (u->rxq_head + 1) % RXQ_FRAMES;
		u->rxq_count--;
	}
	if (u->rx_dropped)
		log_debug("user network: %llu frames for the guest dropped (queue full)",
			  (unsigned long long)u->rx_dropped);
	if (u->wake_fd >= 0)
		close(u->wake_fd);
	if (u->base.rx_fd >= 0)
		close(u->base.rx_fd);
	pthread_mutex_destroy(&u->lock);
	pthread_mutex_destroy(&u->rxq_lock);
	free(u->pfd);
	free(u->tx_buf);
	free(u);
}

/* ---- state (snapshots, migration) ----
 *
 * What libslirp saves: its IP id counter, the DHCP lease table (so the
 * guest's lease renews to the address it has) and guestfwd sockets. Not
 * the guest's NAT'ed connections: their host sockets belong to this
 * process, so after a restore or a migration the guest's TCP connections
 * through --net user are reset when it next uses them, as in QEMU.
 *
 * The record: the state version libslirp wrote it in, the stream's
 * length, the stream. */

/* slirp_state_load()'s input: a record's bytes. libslirp does not look
 * at what its reads return (a short read gives it zeros, unnoticed), so
 * the overrun is remembered here, and stays: nothing is read after it. */
struct slirp_in {
	const uint8_t *p;
	size_t len, off;
	bool overrun;
};

static ssize_t cb_state_read(void *buf, size_t len, void *opaque)
{
	struct slirp_in *in = opaque;

	if (in->overrun || len > in->len - in->off) {
		in->overrun = true;
		return -1;
	}
	memcpy(buf, in->p + in->off, len);
	in->off += len;
	return (ssize_t)len;
}

static ssize_t cb_state_write(const void *buf, size_t len, void *opaque)
{
	state_put_bytes(opaque, buf, len);
	return (ssize_t)len;
}

static void user_save(struct net_backend *b, struct state_writer *w)
{
	struct user_net *u = to_user(b);
	struct state_writer s;

	state_writer_init(&s);
	pthread_mutex_lock(&u->lock);
	u->lib->state_save(u->slirp, cb_state_write, &s);
	pthread_mutex_unlock(&u->lock);
	state_put_u32(w, (uint32_t)u->lib->state_version());
	state_put_u32(w, (uint32_t)s.len);
	state_put_bytes(w, s.buf, s.len);
	if (s.failed || s.len > UINT32_MAX)
		w->failed = true;
	state_writer_free(&s);
}

/* What can be told before libslirp reads a byte. A stream opens with
 * libslirp's "a socket follows" marker (every state version so far):
 * sockets are guestfwd ones, which Vireo never sets up, so a stream it
 * saved has none, and one from elsewhere is refused here: libslirp would
 * allocate the buffers such a socket names, and keep the socket when it
 * then refused it. */
static int check_stream(struct user_net *u, uint32_t version, const uint8_t *stream,
			size_t len, struct error *err)
{
	int max = u->lib->state_version();

	if (version < 1 || version > (uint32_t)max)
		return error_set(err, "--net user: the saved state is libslirp's version %u, "
				 "this libslirp (%s) reads versions 1 to %d", version,
				 u->lib->version_string(), max);
	if (len == 0)
		return error_set(err, "--net user: the saved libslirp state is empty");
	if (stream[0] != 0)
		return error_set(err, "--net user: the saved libslirp state has guestfwd "
				 "sockets, which Vireo never sets up");
	return 0;
}

/* Loads a stream into the stack (u->lock held): -1 when libslirp refused
 * it or did not read exactly all of it. */
static int load_stream(struct user_net *u, int version, const uint8_t *p, size_t len,
		       struct error *err)
{
	struct slirp_in in = { .p = p, .len = len };
	int ret = u->lib->state_load(u->slirp, version, cb_state_read, &in);

	if (ret < 0)
		return error_set(err, "--net user: libslirp refused the saved state: %s",
				 strerror(-ret));
	if (in.overrun)
		return error_set(err, "--net user: the saved libslirp state is truncated");
	if (in.off != len)
		return error_set(err, "--net user: the saved libslirp state has %zu bytes "
				 "libslirp does not read", len - in.off);
	return 0;
}

static int user_load(struct net_backend *b, struct state_reader *r, struct error *err)
{
	struct user_net *u = to_user(b);
	uint32_t version = state_get_u32(r), len = state_get_u32(r);
	const uint8_t *stream = state_get_span(r, len);
	struct state_writer undo;
	int ret;

	if (state_reader_done(r, err) < 0 || check_stream(u, version, stream, len, err) < 0)
		return -1;
	/* libslirp applies what it reads as it goes: what the stack had is
	 * kept and put back when the stream is refused, which leaves the
	 * backend as it was (a stream of its own always loads). */
	state_writer_init(&undo);
	pthread_mutex_lock(&u->lock);
	u->lib->state_save(u->slirp, cb_state_write, &undo);
	if (undo.failed) {
		ret = error_set(err, "--net user: out of memory");
	} else {
		ret = load_stream(u, (int)version, stream, len, err);
		if (ret < 0)
			load_stream(u, u->lib->state_version(), undo.buf, undo.len, NULL);
	}
	pthread_mutex_unlock(&u->lock);
	state_writer_free(&undo);
	return ret;
}

static const struct net_backend_ops user_ops = {
	.kind = "user",
	.close = user_close,
	.send = user_send,
	.recv = user_recv,
	.save = user_save,
	.load = user_load,
};

/* Called before the thread starts, so no lock is needed. */
static int add_hostfwd(struct user_net *u, const char *rule)
{
	char host[INET_ADDRSTRLEN];
	struct hostfwd f;
	int err;

	if (hostfwd_parse(rule, &f) < 0) {
		log_error("--net user: invalid hostfwd '%s' (want tcp:HOSTPORT-:GUESTPORT)", rule);
		return -1;
	}
	errno = 0;
	if (u->lib->add_hostfwd(u->slirp, f.udp, f.host_addr, f.host_port, f.guest_addr,
			      f.guest_port) == 0)
		return 0;
	err = errno;
	inet_ntop(AF_INET, &f.host_addr, host, sizeof(host));
	log_error("hostfwd %s:%u: cannot %s %s:%u: %s", f.udp ? "udp" : "tcp", f.host_port,
		  f.udp ? "bind" : "listen on", host, f.host_port,
		  err ? strerror(err) : "refused by slirp");
	return -1;
}

static int start_thread(struct user_net *u)
{
	sigset_t all, old;
	int err;

	/* Signals belong to the threads that expect them, not to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = thread_create(&u->thread, user_thread, u);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_error("--net user: cannot start the network thread: %s", strerror(err));
		return -1;
	}
	pthread_setname_np(u->thread, "slirp");
	u->thread_running = true;
	return 0;
}

struct net_backend *slirp_backend_open(const struct net_options *o)
{
	SlirpConfig cfg = { .version = 4 };
	struct user_net *u;
	unsigned int i;

	u = calloc(1, sizeof(*u));
	if (!u) {
		log_error("--net user: out of memory");
		return NULL;
	}
	pthread_mutex_init(&u->lock, NULL);
	pthread_mutex_init(&u->rxq_lock, NULL);
	u->base.ops = &user_ops;
	snprintf(u->base.name, sizeof(u->base.name), "user");
	u->base.has_vnet_hdr = false;
	u->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	u->base.rx_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	u->tx_buf = malloc(NET_MAX_FRAME);
	if (u->wake_fd < 0 || u->base.rx_fd < 0 || !u->tx_buf) {
		log_error("--net user: %s", strerror(u->tx_buf ? errno : ENOMEM));
		goto fail;
	}

	u->lib = libslirp_get();
	if (!u->lib)
		goto fail;
	cfg.restricted = o->restricted;
	cfg.in_enabled = true;
	inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
	inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
	cfg.in6_enabled = true;
	inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
	cfg.vprefix_len = 64;
	inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
	inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
	cfg.vhostname = "vireo";
	u->slirp = u->lib->new_(&cfg, &user_callbacks, u);
	if (!u->slirp) {
		log_error("--net user: cannot start user-mode networking (slirp_new failed)");
		goto fail;
	}
	for (i = 0; i < o->nhostfwd && i < sizeof(o->hostfwd) / sizeof(o->hostfwd[0]); i++)
		if (add_hostfwd(u, o->hostfwd[i]) < 0)
			goto fail;
	if (start_thread(u) < 0)
		goto fail;
	return &u->base;
fail:
	user_close(&u->base);
	return NULL;
}
