/* The QMP control socket: a UNIX socket server, one client at a time
 * (the next one waits in the backlog, as with QEMU's monitor socket),
 * driven from the VMM's event loop, which it never blocks. A client can
 * send anything: input is kept in a bounded buffer, every bad request
 * gets one error object, and a request larger than the buffer is
 * answered with one error and skipped to the next newline. Replies wait
 * in a bounded queue; while it is half full no request is read (a flood
 * waits for the client to read), and a client that lets it fill up is
 * disconnected. */
#ifndef VIREO_QMP_QMP_SERVER_H
#define VIREO_QMP_QMP_SERVER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "qmp/qmp.h"
#include "util/error.h"

#define QMP_INPUT_MAX (64u << 10)  /* the largest request taken */
#define QMP_OUTPUT_MAX (1u << 20) /* replies and events not yet sent */

struct qmp_server {
	int listen_fd;
	int client_fd;
	char *path;
	struct qmp_session session;
	char *in;	 /* QMP_INPUT_MAX bytes */
	size_t in_len;
	char *out;	 /* QMP_OUTPUT_MAX bytes, waiting for the client */
	size_t out_len;
	bool skipping;	 /* an oversized request: drop up to a newline */
	unsigned long long clients, requests, errors; /* for the statistics */
};

/* Binds PATH (which must not exist yet). 0, or -1 with err set. */
int qmp_server_open(struct qmp_server *s, const char *path, struct error *err);
/* Serves an already connected stream socket (unit tests, the fuzz
 * target): no listening socket, no path. Greets the client. */
int qmp_server_attach(struct qmp_server *s, int client_fd);
/* Blocks until a client connects (wait=on), then greets it. */
int qmp_server_wait_client(struct qmp_server *s, struct error *err);
/* The descriptor the event loop polls for input (POLLIN): the client's,
 * or the listening socket's while no client is connected. */
int qmp_server_fd(const struct qmp_server *s);
/* The poll events to wait for on qmp_server_fd(). */
short qmp_server_events(const struct qmp_server *s);
/* Something happened on qmp_server_fd(): accepts, sends, reads, answers. */
void qmp_server_ready(struct qmp_server *s, const struct qmp_ops *ops);
/* Sends an event to the client, if one has negotiated (steals ev). */
void qmp_server_event(struct qmp_server *s, json_t *ev);
/* Closes the sockets and removes PATH. */
void qmp_server_close(struct qmp_server *s);

#endif
