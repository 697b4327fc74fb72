/* TCP sockets from "HOST:PORT" (util/tcp.h). */
#include "util/tcp.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* "HOST:PORT" or "[V6]:PORT" into its parts. */
static int split_host_port(const char *s, char *host, size_t hn, char *port, size_t pn)
{
	const char *colon;
	size_t len;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -1;
		len = (size_t)(end - s - 1);
		if (len >= hn)
			return -1;
		memcpy(host, s + 1, len);
		host[len] = 0;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= hn)
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
	}
	if (!colon[1] || strlen(colon + 1) >= pn)
		return -1;
	strcpy(port, colon + 1);
	return 0;
}

void tcp_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void tcp_set_rcvbuf(int fd, int bytes)
{
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

void tcp_wait_sent(int fd, int bytes, unsigned int timeout_ms)
{
	struct timespec ms = { .tv_sec = 0, .tv_nsec = 1000000 };
	unsigned int waited;
	int queued;

	for (waited = 0; waited < timeout_ms; waited++) {
		if (ioctl(fd, SIOCOUTQ, &queued) < 0 || queued <= bytes)
			return;
		nanosleep(&ms, NULL);
	}
}

/* A connected (or, with passive, listening) TCP socket for HOST:PORT. */
int tcp_socket(const char *hostport, bool passive, struct error *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0 };
	struct addrinfo *res, *a;
	char host[256], port[32];
	int fd = -1, r, one = 1, saved = 0;

	if (split_host_port(hostport, host, sizeof(host), port, sizeof(port)) < 0)
		return error_set(err, "'%s': must be HOST:PORT", hostport);
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (r)
		return error_set(err, "'%s': %s", hostport, gai_strerror(r));
	for (a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (passive) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0)
				break;
		} else if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			tcp_nodelay(fd);
			break;
		}
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return error_set(err, "cannot %s %s: %s", passive ? "listen on" : "connect to",
				 hostport, strerror(saved));
	return fd;
}
