/* Ethernet frames the network tests send as a guest would: an ARP request
 * and a DHCP DISCOVER, plus the checks for what user-mode networking
 * answers. Byte offsets follow the wire formats (RFC 826, RFC 791,
 * RFC 768, RFC 2131). */
#ifndef VIREO_TESTS_NET_FRAMES_H
#define VIREO_TESTS_NET_FRAMES_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ETH_HDR 14
#define ARP_FRAME_LEN (ETH_HDR + 28)
#define BOOTP_LEN (236 + 312) /* fixed part + a full options field */
#define DHCP_FRAME_LEN (ETH_HDR + 20 + 8 + BOOTP_LEN)

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static inline void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t get16be(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put_ip(uint8_t *p, const char *dotted)
{
	struct in_addr a;

	inet_pton(AF_INET, dotted, &a);
	memcpy(p, &a, 4);
}

static inline bool ip_is(const uint8_t *p, const char *dotted)
{
	struct in_addr a;

	inet_pton(AF_INET, dotted, &a);
	return !memcmp(p, &a, 4);
}

static inline void eth_header(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16be(f + 12, type);
}

/* "Who has target_ip? Tell 10.0.2.15." */
static inline size_t build_arp_request(uint8_t *f, const char *target_ip)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *a = f + ETH_HDR;

	memset(f, 0, ARP_FRAME_LEN);
	eth_header(f, bcast, guest_mac, 0x0806);
	put16be(a, 1);	    /* Ethernet */
	put16be(a + 2, 0x0800); /* IPv4 */
	a[4] = 6;
	a[5] = 4;
	put16be(a + 6, 1); /* request */
	memcpy(a + 8, guest_mac, 6);
	put_ip(a + 14, "10.0.2.15");
	put_ip(a + 24, target_ip);
	return ARP_FRAME_LEN;
}

static inline bool is_arp_reply_from(const uint8_t *f, size_t len, const char *ip)
{
	const uint8_t *a = f + ETH_HDR;

	return len >= ARP_FRAME_LEN && get16be(f + 12) == 0x0806 && get16be(a + 6) == 2 &&
	       ip_is(a + 14, ip) && !memcmp(f, guest_mac, 6) && !memcmp(a + 18, guest_mac, 6) &&
	       ip_is(a + 24, "10.0.2.15");
}

static inline uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16be(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A DHCP DISCOVER from the NIC with MAC mac. */
static inline size_t build_dhcp_discover_from(uint8_t *f, uint32_t xid, const uint8_t *mac)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *ip = f + ETH_HDR, *udp = ip + 20, *bp = udp + 8, *opt = bp + 240;

	memset(f, 0, DHCP_FRAME_LEN);
	eth_header(f, bcast, mac, 0x0800);
	ip[0] = 0x45;
	put16be(ip + 2, 20 + 8 + BOOTP_LEN);
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	put_ip(ip + 16, "255.255.255.255");
	put16be(ip + 10, ip_checksum(ip, 20));
	put16be(udp, 68);
	put16be(udp + 2, 67);
	put16be(udp + 4, 8 + BOOTP_LEN); /* checksum 0: none */
	bp[0] = 1; /* BOOTREQUEST */
	bp[1] = 1;
	bp[2] = 6;
	memcpy(bp + 4, &xid, 4);
	put16be(bp + 10, 0x8000); /* broadcast reply */
	memcpy(bp + 28, mac, 6);
	bp[236] = 99; /* the magic cookie opens the options field */
	bp[237] = 130;
	bp[238] = 83;
	bp[239] = 99;
	opt[0] = 53; /* DHCP message type */
	opt[1] = 1;
	opt[2] = 1; /* DISCOVER */
	opt[3] = 255;
	return DHCP_FRAME_LEN;
}

static inline size_t build_dhcp_discover(uint8_t *f, uint32_t xid)
{
	return build_dhcp_discover_from(f, xid, guest_mac);
}

/* A DHCP OFFER for xid that gives the client the address ip_addr. */
static inline bool is_dhcp_offer_of(const uint8_t *f, size_t len, uint32_t xid, const char *ip_addr)
{
	const uint8_t *ip = f + ETH_HDR, *udp, *bp, *opt;
	size_t ihl, i;

	if (len < ETH_HDR + 20 || get16be(f + 12) != 0x0800 || ip[9] != 17)
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	udp = ip + ihl;
	bp = udp + 8;
	if (len < ETH_HDR + ihl + 8 + 240 || get16be(udp) != 67 || get16be(udp + 2) != 68)
		return false;
	if (bp[0] != 2 || memcmp(bp + 4, &xid, 4) || !ip_is(bp + 16, ip_addr))
		return false;
	opt = bp + 240;
	for (i = 0; opt + i + 2 < f + len && opt[i] != 255;) {
		if (opt[i] == 0) {
			i++;
			continue;
		}
		if (opt[i] == 53)
			return opt[i + 2] == 2;
		i += 2u + opt[i + 1];
	}
	return false;
}

/* A DHCP OFFER for xid that gives the guest 10.0.2.15. */
static inline bool is_dhcp_offer(const uint8_t *f, size_t len, uint32_t xid)
{
	return is_dhcp_offer_of(f, len, xid, "10.0.2.15");
}

/* A UDP datagram from 10.0.2.15:src_port to dst_ip:dst_port. */
static inline size_t build_udp(uint8_t *f, const char *dst_ip, uint16_t src_port,
			       uint16_t dst_port, const void *payload, size_t len)
{
	static const uint8_t gw_mac[6] = { 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02 };
	uint8_t *ip = f + ETH_HDR, *udp = ip + 20;

	memset(f, 0, ETH_HDR + 28);
	eth_header(f, gw_mac, guest_mac, 0x0800);
	ip[0] = 0x45;
	put16be(ip + 2, (uint16_t)(28 + len));
	ip[8] = 64;
	ip[9] = 17;
	put_ip(ip + 12, "10.0.2.15");
	put_ip(ip + 16, dst_ip);
	put16be(ip + 10, ip_checksum(ip, 20));
	put16be(udp, src_port);
	put16be(udp + 2, dst_port);
	put16be(udp + 4, (uint16_t)(8 + len));
	memcpy(udp + 8, payload, len);
	return ETH_HDR + 28 + len;
}

/* A TCP SYN from anywhere to 10.0.2.15:port. */
static inline bool is_tcp_syn_to(const uint8_t *f, size_t len, uint16_t port)
{
	const uint8_t *ip = f + ETH_HDR, *tcp;
	size_t ihl;

	if (len < ETH_HDR + 20 || get16be(f + 12) != 0x0800 || ip[9] != 6 ||
	    !ip_is(ip + 16, "10.0.2.15"))
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	tcp = ip + ihl;
	if (len < ETH_HDR + ihl + 20)
		return false;
	return get16be(tcp + 2) == port && (tcp[13] & 0x12) == 0x02;
}

#endif
