/* Host port forwarding rules for user-mode networking, in QEMU's syntax:
 * "tcp:HOSTPORT-:GUESTPORT", "tcp:127.0.0.1:HOSTPORT-:GUESTPORT",
 * "udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT". A missing host address
 * means 127.0.0.1 (loopback only: not reachable from other machines); a
 * missing guest address means the guest's DHCP address. */
#ifndef VIREO_NET_HOSTFWD_H
#define VIREO_NET_HOSTFWD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct hostfwd {
	bool udp;
	struct in_addr host_addr;
	uint16_t host_port;
	struct in_addr guest_addr; /* INADDR_ANY: the DHCP address */
	uint16_t guest_port;
};

/* 0, or -1 for malformed input. */
int hostfwd_parse(const char *s, struct hostfwd *out);

#endif
