/* The Vireo CAN bus hub: `vireo canbus PATH [--socketcan IFNAME [--fd]]`.
 * Members (Vireo CAN controllers with --can bus=PATH, host tools) connect
 * to the unix socket PATH; every frame one sends reaches all the others
 * and, when bridged, a host SocketCAN interface. Protocol: canbus_proto.h.
 *
 * The hub is single-threaded and never blocks on a member: each member
 * has a bounded queue, and what does not fit is dropped and counted. */
#ifndef VIREO_CAN_CANBUS_HUB_H
#define VIREO_CAN_CANBUS_HUB_H

#include <stdbool.h>
#include <stdint.h>

/* Messages queued per member before further ones are dropped. */
#define CANBUS_MEMBER_QUEUE 256
/* Members at once; later connections are refused. */
#define CANBUS_MAX_MEMBERS 256

struct canbus_hub_options {
	const char *path;      /* the unix socket to listen on */
	const char *socketcan; /* bridge to this SocketCAN interface, or NULL */
	bool fd;	       /* bridge with CAN FD frames */
};

struct canbus_hub_stats {
	unsigned int members;	  /* connected now */
	uint64_t frames;	  /* frames received (from members and the bridge) */
	uint64_t delivered;	  /* messages queued for members */
	uint64_t dropped;	  /* messages lost to a full member queue */
	uint64_t cancelled;	  /* member frames withdrawn by a CANCEL before going out */
	uint64_t bridge_dropped;  /* member frames the bridged interface did not take */
	uint64_t protocol_errors; /* members disconnected for malformed messages */
};

struct canbus_hub;

/* Listens on o->path: a stale socket file there (nothing listening) is
 * replaced; anything else is left alone. NULL after logging one line. */
struct canbus_hub *canbus_hub_open(const struct canbus_hub_options *o);
/* One round: waits up to timeout_ms (-1: forever) for something to do,
 * then accepts, reads, forwards and writes what it can. Returns the
 * number of descriptors that were ready (0: none), or -1 on a fatal error. */
int canbus_hub_step(struct canbus_hub *h, int timeout_ms);
/* Steps until stop_fd becomes readable (it is not read). 0, or -1 on a
 * fatal error. */
int canbus_hub_run(struct canbus_hub *h, int stop_fd);
void canbus_hub_stats(const struct canbus_hub *h, struct canbus_hub_stats *s);
/* Disconnects everyone and removes the socket file. */
void canbus_hub_close(struct canbus_hub *h);

/* `vireo canbus ...` (argv[0] is "canbus"): runs a hub in the foreground
 * until SIGINT or SIGTERM, or with --inject-busoff sends one bus-off to
 * the hub's members and exits. Exit status: 0, 1 runtime failure, 2 usage. */
int canbus_main(int argc, char **argv);

#endif
