/* Backend dispatch: the public net_* functions are thin wrappers around the
 * ops of whichever backend net_open() chose, so any device model (virtio-
 * net today, an e1000 later) can use every backend. */
#include "net/net.h"

#include <stddef.h>
#include <stdint.h>

#include "net/net_backend.h"

struct net_backend *net_open(const struct net_options *o)
{
	switch (o->kind) {
	case NET_TAP:
		return tap_open(o);
	case NET_USER:
		return slirp_backend_open(o);
	}
	return NULL;
}

void net_close(struct net_backend *b)
{
	if (b)
		b->ops->close(b);
}

const char *net_backend_name(const struct net_backend *b)
{
	return b->name;
}

bool net_has_vnet_hdr(const struct net_backend *b)
{
	return b->has_vnet_hdr;
}

void net_set_offloads(struct net_backend *b, const struct net_offloads *o)
{
	if (b->ops->set_offloads)
		b->ops->set_offloads(b, o);
}

ssize_t net_send(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	return b->ops->send(b, iov, iovcnt);
}

int net_rx_fd(const struct net_backend *b)
{
	return b->rx_fd;
}

ssize_t net_recv(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	return b->ops->recv(b, iov, iovcnt);
}

