#include "qmp/qmp_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

/* A fresh server with its bounded buffers (malloc'd: resident only as far
 * as a client fills them). 0, or -1 with nothing allocated. */
static int init_server(struct qmp_server *s)
{
	memset(s, 0, sizeof(*s));
	s->listen_fd = s->client_fd = -1;
	s->in = malloc(QMP_INPUT_MAX);
	s->out = malloc(QMP_OUTPUT_MAX);
	if (!s->in || !s->out) {
		free(s->in);
		free(s->out);
		s->in = s->out = NULL;
		return -1;
	}
	return 0;
}

int qmp_server_open(struct qmp_server *s, const char *path, struct error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;

	if (init_server(s) < 0)
		return error_set(err, "--qmp: out of memory");
	if (strlen(path) >= sizeof(addr.sun_path)) {
		qmp_server_close(s);
		return error_set(err, "--qmp: socket path '%s' is longer than %zu characters", path,
				 sizeof(addr.sun_path) - 1);
	}
	/* Never take over a path: it may be another VM's socket. */
	if (lstat(path, &st) == 0) {
		qmp_server_close(s);
		return error_set(err, "--qmp: '%s' exists already (remove it, or choose another path)",
				 path);
	}
	strcpy(addr.sun_path, path);
	s->path = strdup(path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (!s->path || s->listen_fd < 0) {
		qmp_server_close(s);
		return error_set(err, "--qmp: cannot create a socket: %s", strerror(errno));
	}
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(s->listen_fd, 4) < 0) {
		int e = errno;

		close(s->listen_fd);
		s->listen_fd = -1;
		free(s->path);
		s->path = NULL; /* not ours to remove */
		qmp_server_close(s);
		return error_set(err, "--qmp: cannot listen on '%s': %s", path, strerror(e));
	}
	return 0;
}

static void drop_client(struct qmp_server *s)
{
	if (s->client_fd >= 0)
		close(s->client_fd);
	s->client_fd = -1;
	s->in_len = 0;
	s->out_len = 0;
	s->skipping = false;
	s->session = (struct qmp_session){ 0 };
}

/* Sends what is queued, as far as the socket takes it now. */
static void flush_output(struct qmp_server *s)
{
	while (s->out_len && s->client_fd >= 0) {
		ssize_t n = send(s->client_fd, s->out, s->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* the event loop polls for POLLOUT */
		if (n <= 0) {
			drop_client(s);
			return;
		}
		memmove(s->out, s->out + n, s->out_len - (size_t)n);
		s->out_len -= (size_t)n;
	}
}

/* Queues one JSON object and a CRLF, as QEMU sends them; steals v. The
 * queue is bounded: a client that lets QMP_OUTPUT_MAX bytes pile up
 * (it stopped reading, and input is not read while the queue is over
 * half full, so only events can do that) is dropped. */
static void send_json(struct qmp_server *s, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len;

	json_decref(v);
	if (!text || s->client_fd < 0) {
		free(text);
		return;
	}
	len = strlen(text);
	if (len + 2 > QMP_OUTPUT_MAX - s->out_len) {
		log_warn("QMP: the client does not read its replies; disconnecting it");
		drop_client(s);
	} else {
		memcpy(s->out + s->out_len, text, len);
		memcpy(s->out + s->out_len + len, "\r\n", 2);
		s->out_len += len + 2;
		flush_output(s);
	}
	free(text);
}

static void greet(struct qmp_server *s, int fd)
{
	s->client_fd = fd;
	s->clients++;
	send_json(s, qmp_greeting());
}

int qmp_server_attach(struct qmp_server *s, int client_fd)
{
	if (init_server(s) < 0)
		return -1;
	greet(s, client_fd);
	return 0;
}

int qmp_server_wait_client(struct qmp_server *s, struct error *err)
{
	int fd, flags = fcntl(s->listen_fd, F_GETFL);

	log_info("QMP: waiting for a client on %s (wait=on)", s->path);
	fcntl(s->listen_fd, F_SETFL, flags & ~O_NONBLOCK);
	do {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	fcntl(s->listen_fd, F_SETFL, flags);
	if (fd < 0)
		return error_set(err, "--qmp: accept on '%s': %s", s->path, strerror(errno));
	greet(s, fd);
	return 0;
}

int qmp_server_fd(const struct qmp_server *s)
{
	return s->client_fd >= 0 ? s->client_fd : s->listen_fd;
}

short qmp_server_events(const struct qmp_server *s)
{
	if (s->client_fd < 0)
		return POLLIN;
	/* Backpressure: no new requests while replies pile up. */
	return (short)((s->out_len ? POLLOUT : 0) |
		       (s->out_len < QMP_OUTPUT_MAX / 2 && !s->session.quit ? POLLIN : 0));
}

/* Parses and answers every complete request in the buffer. Requests are
 * JSON objects one after another (newlines between them are usual, not
 * required); a parse error is answered once and the rest of that line
 * dropped. */
static void process_input(struct qmp_server *s, const struct qmp_ops *ops)
{
	size_t off = 0;

	while (s->client_fd >= 0 && off < s->in_len && s->out_len < QMP_OUTPUT_MAX / 2) {
		json_error_t e;
		json_t *req;
		size_t used;

		while (off < s->in_len && strchr(" \t\r\n", s->in[off]))
			off++;
		if (off == s->in_len)
			break;
		req = json_loadb(s->in + off, s->in_len - off, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &e);
		if (!req && json_error_code(&e) == json_error_premature_end_of_input)
			break; /* the rest has not arrived yet */
		s->requests++;
		if (!req) {
			char *nl = memchr(s->in + off, '\n', s->in_len - off);

			s->errors++;
			send_json(s, qmp_error(NULL, "JSON parse error, %s", e.text));
			off = nl ? (size_t)(nl - s->in) + 1 : s->in_len;
			continue;
		}
		used = (size_t)e.position;
		off += used ? used : 1;
		{
			json_t *reply = qmp_handle(&s->session, ops, req);

			if (json_object_get(reply, "error"))
				s->errors++;
			send_json(s, reply);
		}
		json_decref(req);
		if (s->session.quit)
			break;
	}
	/* A client that stopped reading is dropped by send_json() on the
	 * way, and its buffer with it: nothing to keep then. */
	if (s->client_fd < 0)
		return;
	memmove(s->in, s->in + off, s->in_len - off);
	s->in_len -= off;
}

static void read_client(struct qmp_server *s, const struct qmp_ops *ops)
{
	for (;;) {
		ssize_t n;

		if (s->in_len == QMP_INPUT_MAX) {
			/* One request larger than the buffer: one error, then
			 * drop bytes up to the end of its line. */
			s->requests++;
			s->errors++;
			send_json(s, qmp_error(NULL, "QMP input exceeds %u bytes", QMP_INPUT_MAX));
			s->in_len = 0;
			s->skipping = true;
			if (s->client_fd < 0)
				return;
		}
		if (s->out_len >= QMP_OUTPUT_MAX / 2)
			return; /* read on once the client has taken its replies */
		n = recv(s->client_fd, s->in + s->in_len, QMP_INPUT_MAX - s->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			drop_client(s);
			return;
		}
		if (s->skipping) {
			char *nl = memchr(s->in, '\n', (size_t)n);

			if (!nl)
				continue; /* all of it is still the oversized request */
			s->skipping = false;
			memmove(s->in, nl + 1, (size_t)n - (size_t)(nl + 1 - s->in));
			n -= nl + 1 - s->in;
		}
		s->in_len += (size_t)n;
		process_input(s, ops);
		/* After quit the client stays connected for the SHUTDOWN
		 * event; nothing more it sends is read. */
		if (s->client_fd < 0 || s->session.quit)
			return;
	}
}

void qmp_server_ready(struct qmp_server *s, const struct qmp_ops *ops)
{
	flush_output(s);
	if (s->session.quit)
		return;
	if (s->client_fd < 0) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			greet(s, fd);
		return;
	}
	read_client(s, ops);
}

void qmp_server_event(struct qmp_server *s, json_t *ev)
{
	if (s->client_fd >= 0 && s->session.negotiated)
		send_json(s, ev);
	else
		json_decref(ev);
}

void qmp_server_close(struct qmp_server *s)
{
	drop_client(s);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	if (s->path)
		unlink(s->path);
	free(s->path);
	free(s->in);
	free(s->out);
	s->path = NULL;
	s->in = NULL;
	s->out = NULL;
}
