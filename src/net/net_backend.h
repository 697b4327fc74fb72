/* Inside the network backends: what net.c dispatches through. Each kind
 * (tap.c, slirp.c) embeds struct net_backend first in its own state and
 * fills the ops; device models only ever see the functions in net.h. */
#ifndef VIREO_NET_NET_BACKEND_H
#define VIREO_NET_NET_BACKEND_H

#include "net/net.h"

struct net_backend_ops {
	const char *kind; /* what --net calls it: "tap", "user" */
	void (*close)(struct net_backend *b);
	void (*set_offloads)(struct net_backend *b, const struct net_offloads *o);
	ssize_t (*send)(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt);
	ssize_t (*recv)(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt);
	/* Optional (a tap has no state of its own): the backend's state
	 * for snapshots and migration, appended to w; and back from r,
	 * which holds exactly what save wrote (hostile input): checked
	 * whole first, refused (-1, err set) with the backend unchanged. */
	void (*save)(struct net_backend *b, struct state_writer *w);
	int (*load)(struct net_backend *b, struct state_reader *r, struct error *err);
};

struct net_backend {
	const struct net_backend_ops *ops;
	char name[32];	   /* "tap:IFNAME" or "user" */
	bool has_vnet_hdr; /* frames carry a struct virtio_net_hdr_v1 */
	int rx_fd;	   /* readable while frames are waiting */
};

struct net_backend *tap_open(const struct net_options *o);
struct net_backend *slirp_backend_open(const struct net_options *o);


#endif
