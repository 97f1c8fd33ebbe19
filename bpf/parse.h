/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing: Ethernet (one 802.1Q/802.1ad tag), IPv4 (with options)
 * or IPv6 (with its extension headers), TCP and UDP ports. */
#ifndef XLB_PARSE_H
#define XLB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xlb_structs.h"

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IPV4,   /* not ours: pass */
	PARSE_BAD_IP,     /* IP header cut short or invalid: pass, the kernel drops it */
	PARSE_FRAGMENT,   /* IP fragment: ports unknown */
	PARSE_TRUNCATED,  /* TCP/UDP header cut short */
	PARSE_OTHER_L4,   /* not TCP or UDP */
};

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* IPv6 extension headers walked to the transport header (RFC 8200 4.1's
 * order puts hop-by-hop, destination options and routing first); a
 * fragment header ends the walk (ports unknown), and so does a chain
 * longer than this. */
#define XLB_MAX_EXT_HDRS 4
#ifndef NEXTHDR_HOP
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#endif

/* What every handler reads of a packet. Addresses are family-generic
 * (union xlb_addr, zeroed beyond the family's length); the headers are
 * where the parser found them. */
struct packet {
	union xlb_addr src;
	union xlb_addr dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;    /* AF_INET or AF_INET6 */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u8 pad;
	struct ethhdr *eth;
	/* The IPv4 header; for IPv6 the IPv6 header (never read as IPv4:
	 * the IPv4-only handlers are not on IPv6's path). */
	struct iphdr *ip;
	void *l4;
	void *ip_end; /* the end of the datagram (its total length) */
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* The TCP or UDP ports of the transport header at cur (of protocol
 * proto, the datagram ending at ip_end). */
static __always_inline int parse_ports(void *cur, void *data_end, void *ip_end, __u8 proto, struct packet *p)
{
	p->l4 = cur;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = cur;
		if ((void *)(th + 1) > data_end || (void *)(th + 1) > ip_end)
			return PARSE_TRUNCATED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return PARSE_OK;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = cur;
		if ((void *)(uh + 1) > data_end || (void *)(uh + 1) > ip_end)
			return PARSE_TRUNCATED;
		p->sport = uh->source;
		p->dport = uh->dest;
		return PARSE_OK;
	}
	return PARSE_OTHER_L4;
}

/* IPv6: the fixed header, then hop-by-hop, routing and destination
 * options headers (each 8 * (length + 1) bytes) to the transport header.
 * The payload length bounds the datagram; a jumbogram (length 0) is not
 * for a load balancer and passes. */
static __always_inline int parse_ipv6(void *cur, void *data_end, struct packet *p)
{
	struct ipv6hdr *ip6 = cur;
	if ((void *)(ip6 + 1) > data_end)
		return PARSE_BAD_IP;
	if (ip6->version != 6)
		return PARSE_BAD_IP;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	asm volatile("" : "+r"(plen));
	plen &= 0xffff;
	if (plen == 0)
		return PARSE_BAD_IP;
	void *ip_end = (void *)(ip6 + 1) + plen;
	/* A packet pointer all the same: each read of p->ip is
	 * bounds-checked, and the verifier sees one type in it on every
	 * path. */
	p->ip = (struct iphdr *)ip6;
	p->ip_end = ip_end;
	p->family = AF_INET6;
	__builtin_memcpy(p->src.v6, &ip6->saddr, 16);
	__builtin_memcpy(p->dst.v6, &ip6->daddr, 16);
	__u8 next = ip6->nexthdr;
	cur = ip6 + 1;
#pragma unroll
	for (int i = 0; i < XLB_MAX_EXT_HDRS; i++) {
		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_DEST)
			break;
		__u8 *h = cur;
		if ((void *)(h + 2) > data_end)
			return PARSE_TRUNCATED;
		next = h[0];
		cur = h + 8 * ((__u32)h[1] + 1);
	}
	p->proto = next;
	if (next == NEXTHDR_FRAGMENT)
		return PARSE_FRAGMENT;
	if (next == NEXTHDR_HOP || next == NEXTHDR_ROUTING || next == NEXTHDR_DEST)
		return PARSE_TRUNCATED; /* a chain longer than we walk: ports unknown */
	if (ip_end > data_end)
		return PARSE_TRUNCATED;
	return parse_ports(cur, data_end, ip_end, next, p);
}

static __always_inline int parse_packet(void *data, void *data_end, struct packet *p)
{
	struct ethhdr *eth = data;
	void *cur = eth + 1;
	if (cur > data_end)
		return PARSE_NOT_IPV4;
	p->eth = eth;

	__be16 proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = cur;
		if ((void *)(vh + 1) > data_end)
			return PARSE_NOT_IPV4;
		proto = vh->proto;
		cur = vh + 1;
	}
	if (__builtin_expect(proto != bpf_htons(ETH_P_IP), 0)) {
		if (proto == bpf_htons(ETH_P_IPV6))
			return parse_ipv6(cur, data_end, p);
		return PARSE_NOT_IPV4;
	}

	struct iphdr *iph = cur;
	if ((void *)(iph + 1) > data_end)
		return PARSE_BAD_IP;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_BAD_IP;
	__u32 ihl = iph->ihl * 4;
	/* The datagram is tot_len long; what follows it in the frame is link
	 * padding, from which no header is read. A length shorter than its
	 * header is what the kernel's ip_rcv drops (RFC 1812 5.2.2): pass it
	 * untouched. A datagram the frame cuts short is truncated. */
	/* A packet pointer may only move by a bounded value, and 6.1's
	 * verifier loses the bound of a byte-swapped one: the mask, which
	 * the barrier keeps the compiler from dropping, gives it back. */
	__u32 tot = bpf_ntohs(iph->tot_len);
	asm volatile("" : "+r"(tot));
	tot &= 0xffff;
	void *ip_end = (void *)iph + tot;
	if (tot < ihl)
		return PARSE_BAD_IP;
	p->ip_end = ip_end;
	p->ip = iph;
	p->family = AF_INET;
	p->src.v4 = iph->saddr;
	p->dst.v4 = iph->daddr;
	p->proto = iph->protocol;
	/* MF set or a non-zero offset: a fragment (ports unknown or absent). */
	if (iph->frag_off & bpf_htons(0x3fff))
		return PARSE_FRAGMENT;
	if (ip_end > data_end)
		return PARSE_TRUNCATED;

	return parse_ports((void *)iph + ihl, data_end, ip_end, iph->protocol, p);
}

#endif /* XLB_PARSE_H */
