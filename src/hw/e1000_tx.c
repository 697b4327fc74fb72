/* The 82540EM's transmit offloads, done in software on a frame the device
 * gathered from the guest's descriptors (8254x manual, 3.3.5-3.3.7):
 * checksum insertion at the offsets a context descriptor gives, and TCP
 * segmentation (TSO) of one large frame into MSS-sized ones, each with
 * its own lengths, IP identification, sequence number, flags and
 * checksums. Every offset comes from the guest: each is checked against
 * the frame before it is used, and an offload that does not fit is not
 * done (the frame goes out as the guest built it) rather than touching
 * bytes outside it. */
#include <string.h>

#include "hw/e1000_regs.h"
#include "util/le.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80
#define IPV4_MIN_HDR 20
#define IPV6_HDR 40
#define TCP_MIN_HDR 20
#define UDP_HDR 8

void e1000_tx_ctx_parse(struct e1000_tx_ctx *c, const uint8_t desc[16])
{
	uint32_t lower = le32_get(desc + 8);

	c->ipcss = desc[0];
	c->ipcso = desc[1];
	c->ipcse = le16_get(desc + 2);
	c->tucss = desc[4];
	c->tucso = desc[5];
	c->tucse = le16_get(desc + 6);
	c->paylen = lower & 0xfffff;
	c->ipv4 = (lower & E1000_TXD_TUCMD_IP) != 0;
	c->tcp = (lower & E1000_TXD_TUCMD_TCP) != 0;
	c->hdr_len = desc[13];
	c->mss = le16_get(desc + 14);
}

uint32_t e1000_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

uint16_t e1000_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

void e1000_tx_insert_csum(uint8_t *f, size_t len, unsigned int start, unsigned int at,
			  unsigned int end, bool udp)
{
	uint16_t v;

	if (!len || start >= len || (size_t)at + 2 > len)
		return;
	if (end == 0 || end >= len)
		end = (unsigned int)len - 1;
	if (start > end)
		return;
	v = (uint16_t)~e1000_csum_fold(e1000_csum_add(0, f + start, (size_t)end - start + 1));
	if (udp && v == 0)
		v = 0xffff; /* zero means "no checksum" in UDP over IPv4 */
	be16_put(f + at, v);
}

/* Whether the context's offsets fit headers of hl bytes. */
static bool headers_fit(const struct e1000_tx_ctx *c, size_t hl)
{
	size_t ip_min = c->ipv4 ? IPV4_MIN_HDR : IPV6_HDR;
	size_t l4_min = c->tcp ? TCP_MIN_HDR : UDP_HDR;

	return c->ipcss + ip_min <= hl && c->tucss >= c->ipcss + ip_min &&
	       c->tucss + l4_min <= hl && (size_t)c->tucso + 2 <= hl &&
	       (size_t)c->ipcso + 2 <= hl;
}

unsigned int e1000_tso_count(const struct e1000_tx_ctx *c, size_t len)
{
	if (!c->mss || !c->hdr_len || len <= c->hdr_len || !headers_fit(c, c->hdr_len))
		return 0;
	return (unsigned int)((len - c->hdr_len + c->mss - 1) / c->mss);
}

size_t e1000_tso_segment(const struct e1000_tx_ctx *c, uint8_t popts, const uint8_t *f, size_t len,
			 unsigned int k, uint8_t *out)
{
	size_t hl = c->hdr_len, pay, off, n, flen;
	uint8_t *ip, *l4;
	bool last;

	if (k >= e1000_tso_count(c, len))
		return 0;
	pay = len - hl;
	off = (size_t)k * c->mss;
	n = pay - off < c->mss ? pay - off : c->mss;
	last = off + n == pay;
	flen = hl + n;
	memcpy(out, f, hl);
	memcpy(out + hl, f + hl + off, n);

	ip = out + c->ipcss;
	l4 = out + c->tucss;
	if (c->ipv4) {
		be16_put(ip + 2, (uint16_t)(flen - c->ipcss));
		be16_put(ip + 4, (uint16_t)(be16_get(ip + 4) + k));
	} else {
		be16_put(ip + 4, (uint16_t)(flen - c->ipcss - IPV6_HDR));
	}
	if (c->tcp) {
		be32_put(l4 + 4, be32_get(l4 + 4) + (uint32_t)off);
		if (!last)
			l4[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
		if (k)
			l4[13] &= (uint8_t)~TCP_CWR;
	} else {
		be16_put(l4 + 4, (uint16_t)(flen - c->tucss));
	}
	if ((popts & E1000_TXD_POPTS_IXSM) && c->ipv4)
		e1000_tx_insert_csum(out, hl, c->ipcss, c->ipcso, c->ipcse, false);
	if (popts & E1000_TXD_POPTS_TXSM) {
		/* The driver left the pseudo-header's sum without the length
		 * in the field; each segment's length goes in first. */
		uint32_t phsum = be16_get(out + c->tucso) + (uint32_t)(flen - c->tucss);

		be16_put(out + c->tucso, e1000_csum_fold(phsum));
		e1000_tx_insert_csum(out, flen, c->tucss, c->tucso, 0, !c->tcp);
	}
	return flen;
}
