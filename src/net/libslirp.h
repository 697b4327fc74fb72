/* libslirp, loaded when a VM first asks for user-mode networking (--net
 * user) rather than linked: libslirp brings GLib and PCRE2 with it, about
 * a megabyte of resident pages (relocations, constructors) that every VM
 * without --net user would otherwise carry. Only the entry points Vireo
 * calls; the types come from libslirp's own header. */
#ifndef VIREO_NET_LIBSLIRP_H
#define VIREO_NET_LIBSLIRP_H

#include <slirp/libslirp.h>

struct libslirp {
	Slirp *(*new_)(const SlirpConfig *cfg, const SlirpCb *callbacks, void *opaque);
	void (*cleanup)(Slirp *slirp);
	void (*input)(Slirp *slirp, const uint8_t *pkt, int pkt_len);
	void (*pollfds_fill)(Slirp *slirp, uint32_t *timeout, SlirpAddPollCb add_poll,
			     void *opaque);
	void (*pollfds_poll)(Slirp *slirp, int select_error, SlirpGetREventsCb get_revents,
			     void *opaque);
	void (*handle_timer)(Slirp *slirp, SlirpTimerId id, void *cb_opaque);
	int (*add_hostfwd)(Slirp *slirp, int is_udp, struct in_addr host_addr, int host_port,
			   struct in_addr guest_addr, int guest_port);
	/* Its state for snapshots and migration (src/net/slirp.c). */
	void (*state_save)(Slirp *slirp, SlirpWriteCb write_cb, void *opaque);
	int (*state_load)(Slirp *slirp, int version_id, SlirpReadCb read_cb, void *opaque);
	int (*state_version)(void);
	const char *(*version_string)(void);
};

/* The library, loaded on the first call (thread-safe); NULL, with one
 * line logged naming what is missing, when it cannot be. */
const struct libslirp *libslirp_get(void);

#endif
