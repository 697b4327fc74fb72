#include "net/hostfwd.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* "[ADDR]:PORT" up to end (exclusive); an empty ADDR keeps *addr. */
static int parse_endpoint(const char *s, const char *end, struct in_addr *addr, uint16_t *port)
{
	const char *colon = NULL, *p;
	char buf[INET_ADDRSTRLEN];
	unsigned long v;
	char *stop;

	for (p = s; p < end; p++)
		if (*p == ':')
			colon = p;
	if (!colon)
		return -1;
	if (colon > s) {
		if ((size_t)(colon - s) >= sizeof(buf))
			return -1;
		memcpy(buf, s, (size_t)(colon - s));
		buf[colon - s] = 0;
		if (inet_pton(AF_INET, buf, addr) != 1)
			return -1;
	}
	p = colon + 1;
	if (p >= end || *p < '0' || *p > '9' || end - p > 5)
		return -1;
	v = strtoul(p, &stop, 10);
	if (stop != end || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int hostfwd_parse(const char *s, struct hostfwd *out)
{
	const char *dash;
	char first[8];

	memset(out, 0, sizeof(*out));
	out->host_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!strncmp(s, "tcp:", 4)) {
		s += 4;
	} else if (!strncmp(s, "udp:", 4)) {
		out->udp = true;
		s += 4;
	} else {
		return -1;
	}
	dash = strchr(s, '-');
	if (!dash || strchr(dash + 1, '-'))
		return -1;
	/* "HOSTPORT" alone is "host port with the default address". */
	if (!memchr(s, ':', (size_t)(dash - s))) {
		if ((size_t)(dash - s) + 2 > sizeof(first))
			return -1;
		first[0] = ':';
		memcpy(first + 1, s, (size_t)(dash - s));
		first[dash - s + 1] = 0;
		if (parse_endpoint(first, first + strlen(first), &out->host_addr, &out->host_port))
			return -1;
	} else if (parse_endpoint(s, dash, &out->host_addr, &out->host_port)) {
		return -1;
	}
	return parse_endpoint(dash + 1, dash + 1 + strlen(dash + 1), &out->guest_addr,
			      &out->guest_port);
}
