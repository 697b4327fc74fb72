/* Backend dispatch: the public net_* functions are thin wrappers around the
 * ops of whichever backend net_open() chose, so any device model (virtio-
 * net today, an e1000 later) can use every backend. */
#include "net/net.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/net_backend.h"
#include "util/le.h"

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


int net_announce(struct net_backend *b, const uint8_t mac[6])
{
	uint8_t hdr[sizeof(struct virtio_net_hdr_v1)] = { 0 }, f[60] = { 0 };
	struct iovec iov[2];
	unsigned int k = 0;
	ssize_t r;

	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	be16_put(f + 12, 0x8035); /* RARP */
	be16_put(f + 14, 1);	  /* hardware: Ethernet */
	be16_put(f + 16, 0x0800); /* protocol: IPv4 */
	f[18] = 6;
	f[19] = 4;
	be16_put(f + 20, 3);	/* reverse request */
	memcpy(f + 22, mac, 6); /* sender hardware address */
	memcpy(f + 32, mac, 6); /* target hardware address */
	if (b->has_vnet_hdr)
		iov[k++] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
	iov[k++] = (struct iovec){ .iov_base = f, .iov_len = sizeof(f) };
	r = net_send(b, iov, k);
	return r < 0 ? (int)r : 0;
}

void net_backend_save(struct net_backend *b, struct state_writer *w)
{
	state_put_str(w, b->ops->kind);
	if (b->ops->save)
		b->ops->save(b, w);
}

/* A kind read from a hostile record goes into a message only when it
 * looks like one (lower-case letters, a few of them). */
static bool kind_printable(const char *kind)
{
	size_t n = strlen(kind);

	return n > 0 && n <= 16 && strspn(kind, "abcdefghijklmnopqrstuvwxyz") == n;
}

/* Reads the kind that opens the record and compares it with b's. */
static int read_kind(const struct net_backend *b, struct state_reader *r, struct error *err)
{
	char kind[256];

	state_get_str(r, kind, sizeof(kind));
	if (r->short_read)
		return error_set(err, "the network backend's saved state is truncated");
	if (!strcmp(kind, b->ops->kind))
		return 0;
	if (!kind_printable(kind))
		return error_set(err, "the saved VM's network backend is of an unknown kind, "
				 "this one's is --net %s", b->ops->kind);
	return error_set(err, "the saved VM's network is --net %s, this one's --net %s: "
			 "start it with the same --net options", kind, b->ops->kind);
}

int net_backend_check(const struct net_backend *b, const void *rec, size_t len,
		      struct error *err)
{
	struct state_reader r;

	state_reader_init(&r, rec, len);
	return read_kind(b, &r, err);
}

int net_backend_load(struct net_backend *b, const void *rec, size_t len, struct error *err)
{
	struct state_reader r;

	state_reader_init(&r, rec, len);
	if (read_kind(b, &r, err) < 0)
		return -1;
	if (b->ops->load)
		return b->ops->load(b, &r, err);
	return state_reader_done(&r, err);
}
