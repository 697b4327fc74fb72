/* The Vireo CAN bus hub (see canbus_hub.h, and canbus_proto.h for what
 * members say to it).
 *
 * One thread, one poll() loop. Every member has a queue of encoded
 * messages waiting to be written to it; the hub writes without blocking
 * and keeps what the socket does not take. Frames from a member are
 * copied into every other member's queue (a full queue drops the copy and
 * counts it), then a TX_ACK goes into the sender's own queue. The hub only
 * reads from a member while that member's queue has room, so the ack
 * always fits: a member that stops reading is eventually stopped from
 * sending (its socket buffer fills), never from receiving acks for what
 * it did send. */
#include "can/canbus_hub.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "can/can.h"
#include "can/can_backend.h"
#include "can/canbus_proto.h"
#include "util/log.h"

/* Messages read from one member per round, so one busy member cannot
 * starve the others. */
#define READ_BUDGET 64
/* Frames and events taken from the bridged interface per round. */
#define BRIDGE_BUDGET 256

struct member {
	int fd;
	unsigned int id; /* for log lines: members are numbered as they come */
	char name[CANFD_MAX_DLEN + 1];
	bool hello;	  /* said hello: takes part in the bus */
	bool fd_frames;	  /* takes CAN FD frames */
	bool hup;	  /* the member hung up: read what is left, then drop it */
	bool dead;	  /* to be removed at the end of the round */
	bool busoff_owed; /* a bus-off that did not fit in the queue yet */
	uint64_t dropped;
	unsigned int head, count;
	uint8_t q[CANBUS_MEMBER_QUEUE][CANBUS_MSG_SIZE];
};

struct canbus_hub {
	int listen_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct can_backend *bridge;
	char bridge_name[64];
	struct member *members[CANBUS_MAX_MEMBERS];
	unsigned int nmembers;
	unsigned int next_id;
	struct pollfd pfd[CANBUS_MAX_MEMBERS + 3];
	int stop_fd;
	int spare_fd; /* held back for turning members away without descriptors */
	bool stop;
	bool warned_full;
	struct canbus_hub_stats st;
};

/* ---- member queues ---- */

static void enqueue(struct canbus_hub *h, struct member *m, const struct canbus_pkt *p)
{
	if (m->dead || m->hup)
		return;
	if (m->count == CANBUS_MEMBER_QUEUE) {
		m->dropped++;
		h->st.dropped++;
		return;
	}
	canbus_encode(m->q[(m->head + m->count) % CANBUS_MEMBER_QUEUE], p);
	m->count++;
	h->st.delivered++;
}

static void enqueue_simple(struct canbus_hub *h, struct member *m, uint8_t type, uint32_t seq)
{
	struct canbus_pkt p;

	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = type;
	p.seq = seq;
	enqueue(h, m, &p);
}

static void enqueue_busoff(struct canbus_hub *h, struct member *m)
{
	if (m->count == CANBUS_MEMBER_QUEUE)
		m->busoff_owed = true; /* delivered once there is room */
	else
		enqueue_simple(h, m, CANBUS_BUSOFF, 0);
}

/* Writes what the member's socket takes. */
static void flush(struct member *m)
{
	while (!m->dead && !m->hup && m->count) {
		ssize_t n = send(m->fd, m->q[m->head], CANBUS_MSG_SIZE, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* Gone: what it sent before leaving is still read
			 * (the next poll reports the hang-up). */
			log_debug("canbus: member %u: send: %s", m->id, strerror(errno));
			m->hup = true;
			m->count = 0;
			return;
		}
		m->head = (m->head + 1) % CANBUS_MEMBER_QUEUE;
		m->count--;
		if (m->busoff_owed && m->count < CANBUS_MEMBER_QUEUE) {
			struct canbus_pkt p;

			memset(&p, 0, sizeof(p));
			p.version = CANBUS_VERSION;
			p.type = CANBUS_BUSOFF;
			canbus_encode(m->q[(m->head + m->count) % CANBUS_MEMBER_QUEUE], &p);
			m->count++;
			m->busoff_owed = false;
		}
	}
}

/* ---- forwarding ---- */

/* from: the sending member, or NULL for the bridge. */
static void forward_frame(struct canbus_hub *h, struct member *from, const struct can_msg *msg)
{
	struct canbus_pkt p;
	unsigned int i;
	int r;

	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = CANBUS_FRAME;
	p.msg = *msg;
	h->st.frames++;
	for (i = 0; i < h->nmembers; i++) {
		struct member *m = h->members[i];

		if (m == from || !m->hello || ((msg->flags & CAN_MSG_FD) && !m->fd_frames))
			continue;
		enqueue(h, m, &p);
	}
	if (from && h->bridge) {
		r = can_backend_send(h->bridge, msg);
		if (r < 0) {
			h->st.bridge_dropped++;
			log_debug("canbus: %s did not take a frame: %s", h->bridge_name, strerror(-r));
		}
	}
}

static void forward_busoff(struct canbus_hub *h, struct member *from)
{
	unsigned int i;

	for (i = 0; i < h->nmembers; i++) {
		struct member *m = h->members[i];

		if (m != from && m->hello && !m->dead && !m->hup)
			enqueue_busoff(h, m);
	}
}

static void protocol_error(struct canbus_hub *h, struct member *m, const char *why)
{
	log_warn("canbus: member %u (%s) %s; disconnecting it", m->id,
		 m->name[0] ? m->name : "no name", why);
	h->st.protocol_errors++;
	m->dead = true;
}

static void say_hello(struct canbus_hub *h, struct member *m, const struct canbus_pkt *hello)
{
	struct canbus_pkt p;
	uint8_t buf[CANBUS_MSG_SIZE];
	unsigned int i;

	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = CANBUS_HELLO;
	if (hello->version != CANBUS_VERSION) {
		/* Answer with our version so the member can say what is
		 * wrong, then part. */
		canbus_encode(buf, &p);
		if (send(m->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug("canbus: member %u: send: %s", m->id, strerror(errno));
		log_warn("canbus: member %u speaks protocol version %u, this hub %u; disconnecting it",
			 m->id, hello->version, CANBUS_VERSION);
		m->dead = true;
		return;
	}
	for (i = 0; i < hello->msg.len; i++) {
		char c = (char)hello->msg.data[i];

		if (!c)
			break;
		m->name[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	m->name[i] = '\0';
	m->fd_frames = hello->msg.flags & CANBUS_HELLO_FD;
	m->hello = true;
	enqueue(h, m, &p);
	log_debug("canbus: member %u (%s) joined%s", m->id, m->name, m->fd_frames ? ", CAN FD" : "");
}

/* cancelled: a CANCEL later in the same batch withdraws this frame. */
static void handle_message(struct canbus_hub *h, struct member *m, const uint8_t *buf, size_t n,
			   bool cancelled)
{
	struct canbus_pkt p;

	if (canbus_decode(buf, n, &p) < 0) {
		protocol_error(h, m, "sent a malformed message");
		return;
	}
	if (!m->hello) {
		if (p.type != CANBUS_HELLO)
			protocol_error(h, m, "did not start with a hello");
		else
			say_hello(h, m, &p);
		return;
	}
	switch (p.type) {
	case CANBUS_FRAME:
		if (cancelled) {
			h->st.cancelled++;
			break;
		}
		forward_frame(h, m, &p.msg);
		enqueue_simple(h, m, CANBUS_TX_ACK, p.seq);
		break;
	case CANBUS_BUSOFF:
		log_debug("canbus: member %u (%s) signals bus-off", m->id, m->name);
		forward_busoff(h, m);
		enqueue_simple(h, m, CANBUS_TX_ACK, p.seq);
		break;
	case CANBUS_CANCEL:
		enqueue_simple(h, m, CANBUS_TX_ACK, p.seq);
		break;
	case CANBUS_HELLO:
		protocol_error(h, m, "said hello twice");
		break;
	default:
		protocol_error(h, m, "sent a message only the hub may send");
		break;
	}
}

static bool is_cancel(const uint8_t *buf, ssize_t n)
{
	return n == CANBUS_MSG_SIZE && buf[0] == (CANBUS_MAGIC & 0xff) &&
	       buf[1] == (CANBUS_MAGIC >> 8) && buf[2] == CANBUS_VERSION &&
	       buf[3] == CANBUS_CANCEL;
}

/* Reads one batch of the member's messages: as many as its queue has
 * room to answer, or up to READ_BUDGET when it has hung up (nobody is
 * left to answer). The whole batch is read before any of it is handled,
 * so that a CANCEL withdraws the frames that came before it in the
 * batch. Returns false when there is nothing more to read now. */
static bool read_batch(struct canbus_hub *h, struct member *m)
{
	uint8_t buf[READ_BUDGET][CANBUS_MSG_SIZE + 1];
	ssize_t len[READ_BUDGET];
	unsigned int room = m->hup ? READ_BUDGET : CANBUS_MEMBER_QUEUE - m->count;
	unsigned int i, n = 0, last_cancel = 0;
	bool more = true, gone = false;

	if (room > READ_BUDGET)
		room = READ_BUDGET;
	while (n < room) {
		ssize_t r = recv(m->fd, buf[n], sizeof(buf[n]), MSG_DONTWAIT | MSG_TRUNC);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET) {
				/* The member left with answers unread. The
				 * error comes once, ahead of what it sent
				 * before leaving: read that too. */
				m->hup = true;
				m->count = 0;
				room = READ_BUDGET;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				gone = m->hup;
			} else {
				log_debug("canbus: member %u: receive: %s", m->id, strerror(errno));
				gone = true;
			}
			more = false;
			break;
		}
		if (r == 0) {
			gone = true;
			more = false;
			break;
		}
		len[n] = r;
		if (is_cancel(buf[n], r))
			last_cancel = n + 1;
		n++;
	}
	/* What it sent before it went is handled all the same. */
	for (i = 0; i < n && !m->dead; i++)
		handle_message(h, m, buf[i], (size_t)len[i], i + 1 < last_cancel);
	if (gone)
		m->dead = true;
	return more && n == room && !m->dead;
}

/* Reads the member's messages: one batch while its queue has room for
 * the answers, or everything when it has hung up. */
static void read_member(struct canbus_hub *h, struct member *m)
{
	if (m->count >= CANBUS_MEMBER_QUEUE && !m->hup)
		return;
	while (read_batch(h, m) && m->hup)
		;
}

static void read_bridge(struct canbus_hub *h)
{
	unsigned int budget = BRIDGE_BUDGET;
	enum can_event ev;
	struct can_msg msg;

	while (budget-- && can_backend_recv(h->bridge, &ev, &msg) > 0) {
		if (ev == CAN_EVENT_FRAME)
			forward_frame(h, NULL, &msg);
		else if (ev == CAN_EVENT_BUSOFF)
			forward_busoff(h, NULL);
		/* TX_DONE: our own frames are out; nothing to do. */
	}
}

/* Turns a connection away, telling it why when it is a full bus. */
static void refuse(struct canbus_hub *h, int fd, const char *why, bool full)
{
	uint8_t buf[CANBUS_MSG_SIZE];
	struct canbus_pkt p;

	if (!h->warned_full)
		log_warn("canbus: %s; refusing new members", why);
	h->warned_full = true;
	if (full) {
		memset(&p, 0, sizeof(p));
		p.version = CANBUS_VERSION;
		p.type = CANBUS_HELLO;
		p.msg.flags = CANBUS_HELLO_FULL;
		canbus_encode(buf, &p);
		if (send(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug("canbus: send: %s", strerror(errno));
	}
	close(fd);
}

static void accept_members(struct canbus_hub *h)
{
	for (;;) {
		struct member *m;
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) && h->spare_fd >= 0) {
				/* Out of descriptors: the connection would wait
				 * in the backlog and poll() would report it
				 * forever. Use the spare one to turn it away. */
				close(h->spare_fd);
				fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
				if (fd >= 0)
					refuse(h, fd, "out of file descriptors", true);
				h->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_debug("canbus: accept: %s", strerror(errno));
			return;
		}
		if (h->nmembers == CANBUS_MAX_MEMBERS) {
			refuse(h, fd, "too many members", true);
			continue;
		}
		m = calloc(1, sizeof(*m));
		if (!m) {
			refuse(h, fd, "out of memory", false);
			continue;
		}
		m->fd = fd;
		m->id = ++h->next_id;
		h->members[h->nmembers++] = m;
	}
}

static void sweep(struct canbus_hub *h)
{
	unsigned int i, j = 0;

	for (i = 0; i < h->nmembers; i++) {
		struct member *m = h->members[i];

		if (!m->dead) {
			h->members[j++] = m;
			continue;
		}
		log_debug("canbus: member %u (%s) left (%llu messages dropped for it)", m->id,
			  m->name, (unsigned long long)m->dropped);
		close(m->fd);
		free(m);
		h->warned_full = false;
	}
	h->nmembers = j;
}

int canbus_hub_step(struct canbus_hub *h, int timeout_ms)
{
	unsigned int i, n = 0, first_member;
	int bridge_at = -1, stop_at = -1;
	int ready;

	h->pfd[n++] = (struct pollfd){ .fd = h->listen_fd, .events = POLLIN };
	if (h->bridge) {
		bridge_at = (int)n;
		h->pfd[n++] = (struct pollfd){ .fd = can_backend_rx_fd(h->bridge), .events = POLLIN };
	}
	if (h->stop_fd >= 0) {
		stop_at = (int)n;
		h->pfd[n++] = (struct pollfd){ .fd = h->stop_fd, .events = POLLIN };
	}
	first_member = n;
	for (i = 0; i < h->nmembers; i++) {
		struct member *m = h->members[i];
		short ev = 0;

		if (m->count < CANBUS_MEMBER_QUEUE || m->hup)
			ev |= POLLIN;
		if (m->count)
			ev |= POLLOUT;
		h->pfd[n++] = (struct pollfd){ .fd = m->fd, .events = ev };
	}
	ready = poll(h->pfd, n, timeout_ms);
	if (ready < 0) {
		if (errno == EINTR)
			return 0;
		log_error("canbus: poll: %s", strerror(errno));
		return -1;
	}
	if (!ready)
		return 0;
	if (stop_at >= 0 && (h->pfd[stop_at].revents & POLLIN))
		h->stop = true;
	/* Members first (the array only grows below, while accepting). */
	for (i = 0; i < h->nmembers; i++) {
		struct member *m = h->members[i];
		short rev = h->pfd[first_member + i].revents;

		if (rev & (POLLHUP | POLLERR))
			m->hup = true;
		if (rev & (POLLIN | POLLHUP | POLLERR))
			read_member(h, m);
	}
	if (bridge_at >= 0 && h->pfd[bridge_at].revents)
		read_bridge(h);
	if (h->pfd[0].revents & POLLIN)
		accept_members(h);
	for (i = 0; i < h->nmembers; i++)
		flush(h->members[i]);
	sweep(h);
	return ready;
}

int canbus_hub_run(struct canbus_hub *h, int stop_fd)
{
	h->stop_fd = stop_fd;
	h->stop = false;
	while (!h->stop)
		if (canbus_hub_step(h, -1) < 0)
			return -1;
	return 0;
}

void canbus_hub_stats(const struct canbus_hub *h, struct canbus_hub_stats *s)
{
	*s = h->st;
	s->members = h->nmembers;
}

/* Binds fd to path, replacing a stale socket file (nothing listening). */
static int bind_path(int fd, const struct sockaddr_un *sa, const char *path)
{
	struct stat st;
	int probe, err;

	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno != EADDRINUSE) {
		log_error("canbus: cannot create the socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		log_error("canbus: %s exists and is not a socket; not replacing it", path);
		return -1;
	}
	probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (probe < 0) {
		log_error("canbus: cannot create a unix socket: %s", strerror(errno));
		return -1;
	}
	err = connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : errno;
	close(probe);
	if (err != ECONNREFUSED) {
		log_error("canbus: something already listens on %s (another vireo canbus?)", path);
		return -1;
	}
	log_debug("canbus: replacing the stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_error("canbus: cannot remove the stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		log_error("canbus: cannot create the socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

struct canbus_hub *canbus_hub_open(const struct canbus_hub_options *o)
{
	const char *path = o->path ? o->path : "";
	struct sockaddr_un sa;
	struct canbus_hub *h;
	struct stat st;
	char what[80];

	if (!*path) {
		log_error("canbus: empty socket path");
		return NULL;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("canbus: socket path %s is too long (at most %zu bytes)", path,
			  sizeof(sa.sun_path) - 1);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		log_error("canbus: out of memory");
		return NULL;
	}
	h->listen_fd = -1;
	h->stop_fd = -1;
	h->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	snprintf(h->path, sizeof(h->path), "%s", path);
	if (o->socketcan) {
		struct can_options co = { .kind = CAN_SOCKETCAN, .ifname = o->socketcan, .fd = o->fd };

		snprintf(what, sizeof(what), "canbus: --socketcan %s", o->socketcan);
		h->bridge = socketcan_open(&co, what);
		if (!h->bridge)
			goto fail;
		snprintf(h->bridge_name, sizeof(h->bridge_name), "%s", o->socketcan);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	h->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->listen_fd < 0) {
		log_error("canbus: cannot create a unix socket: %s", strerror(errno));
		goto fail;
	}
	if (bind_path(h->listen_fd, &sa, path) < 0)
		goto fail;
	if (stat(path, &st) == 0) {
		h->dev = st.st_dev;
		h->ino = st.st_ino;
	}
	if (listen(h->listen_fd, 128) < 0) {
		log_error("canbus: cannot listen on %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	return h;
fail:
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->spare_fd >= 0)
		close(h->spare_fd);
	if (h->bridge)
		can_backend_close(h->bridge);
	free(h);
	return NULL;
}

void canbus_hub_close(struct canbus_hub *h)
{
	struct stat st;
	unsigned int i;

	if (!h)
		return;
	for (i = 0; i < h->nmembers; i++) {
		close(h->members[i]->fd);
		free(h->members[i]);
	}
	/* Only our own socket file: someone may have replaced it. */
	if (stat(h->path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino)
		unlink(h->path);
	close(h->listen_fd);
	if (h->spare_fd >= 0)
		close(h->spare_fd);
	if (h->bridge)
		can_backend_close(h->bridge);
	free(h);
}

/* ---- vireo canbus ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: vireo canbus PATH [--socketcan IFNAME [--fd]]\n"
		   "       vireo canbus PATH --inject-busoff\n"
		   "\n"
		   "Runs a Vireo CAN bus on the unix socket PATH until SIGINT or SIGTERM.\n"
		   "VMs join it with --can bus=PATH; every frame one member sends reaches\n"
		   "all the others.\n"
		   "\n"
		   "  --socketcan IFNAME  also bridge the bus to this host CAN interface\n"
		   "  --fd                bridge CAN FD frames too (the interface's MTU must be 72)\n"
		   "  --inject-busoff     join the bus at PATH, put every member in bus-off, exit\n");
}

static int inject_busoff(const char *path)
{
	char what[512];
	uint8_t buf[CANBUS_MSG_SIZE + 1];
	struct canbus_pkt p;
	struct pollfd pfd;
	int fd;

	snprintf(what, sizeof(what), "canbus %s --inject-busoff", path);
	fd = canbus_connect(path, what, 0, "inject-busoff");
	if (fd < 0)
		return 1;
	memset(&p, 0, sizeof(p));
	p.version = CANBUS_VERSION;
	p.type = CANBUS_BUSOFF;
	p.seq = 1;
	canbus_encode(buf, &p);
	if (send(fd, buf, CANBUS_MSG_SIZE, MSG_NOSIGNAL) != CANBUS_MSG_SIZE) {
		log_error("%s: cannot send: %s", what, strerror(errno));
		close(fd);
		return 1;
	}
	/* The hub acknowledges once every member has it queued. */
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	for (;;) {
		ssize_t n;
		int r = poll(&pfd, 1, 5000);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			log_error("%s: the hub did not confirm the bus-off", what);
			break;
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			log_error("%s: the hub closed the connection", what);
			break;
		}
		if (canbus_decode(buf, (size_t)n, &p) == 0 && p.type == CANBUS_TX_ACK) {
			close(fd);
			return 0;
		}
	}
	close(fd);
	return 1;
}

int canbus_main(int argc, char **argv)
{
	struct canbus_hub_options o = { 0 };
	struct canbus_hub_stats st;
	struct canbus_hub *h;
	sigset_t stop_sigs, old;
	bool inject = false;
	int i, sfd, r;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--socketcan")) {
			if (i + 1 >= argc) {
				log_error("canbus: --socketcan needs an interface name");
				return 2;
			}
			o.socketcan = argv[++i];
		} else if (!strncmp(a, "--socketcan=", 12)) {
			o.socketcan = a + 12;
		} else if (!strcmp(a, "--fd")) {
			o.fd = true;
		} else if (!strcmp(a, "--inject-busoff")) {
			inject = true;
		} else if (a[0] == '-' && a[1]) {
			log_error("canbus: unknown option %s (see vireo canbus --help)", a);
			return 2;
		} else if (o.path) {
			log_error("canbus: one socket path only (%s, then %s)", o.path, a);
			return 2;
		} else {
			o.path = a;
		}
	}
	if (!o.path) {
		log_error("canbus: which socket? usage: vireo canbus PATH [--socketcan IFNAME [--fd]]");
		return 2;
	}
	if (o.socketcan && !*o.socketcan) {
		log_error("canbus: --socketcan needs an interface name");
		return 2;
	}
	if (o.fd && !o.socketcan) {
		log_error("canbus: --fd is about the bridged interface and needs --socketcan (members choose CAN FD themselves)");
		return 2;
	}
	if (inject) {
		if (o.socketcan) {
			log_error("canbus: --inject-busoff does not go with --socketcan");
			return 2;
		}
		return inject_busoff(o.path);
	}

	/* The signals become a descriptor the loop polls: no handler runs
	 * in the middle of the hub's work. */
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &stop_sigs, &old) < 0) {
		log_error("canbus: sigprocmask: %s", strerror(errno));
		return 1;
	}
	sfd = signalfd(-1, &stop_sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_error("canbus: signalfd: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 1;
	}
	h = canbus_hub_open(&o);
	if (!h) {
		close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 1;
	}
	if (o.socketcan)
		printf("vireo canbus: listening on %s, bridged to %s%s\n", o.path, o.socketcan,
		       o.fd ? " (CAN FD)" : "");
	else
		printf("vireo canbus: listening on %s\n", o.path);
	fflush(stdout);
	r = canbus_hub_run(h, sfd);
	/* Take the signal, or unblocking it below would deliver it. */
	{
		struct signalfd_siginfo si;

		while (read(sfd, &si, sizeof(si)) == sizeof(si))
			;
	}
	canbus_hub_stats(h, &st);
	log_debug("canbus: %llu frames, %llu messages delivered, %llu dropped, %llu cancelled, %llu not taken by the bridge, %llu protocol errors",
		  (unsigned long long)st.frames, (unsigned long long)st.delivered,
		  (unsigned long long)st.dropped, (unsigned long long)st.cancelled,
		  (unsigned long long)st.bridge_dropped,
		  (unsigned long long)st.protocol_errors);
	canbus_hub_close(h);
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r < 0 ? 1 : 0;
}
