/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing: Ethernet (one 802.1Q/802.1ad tag), IPv4 (with options),
 * TCP and UDP ports. */
#ifndef XLB_PARSE_H
#define XLB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
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

/* What every handler reads of a packet. Addresses are family-generic
 * (union xlb_addr, zeroed beyond the family's length); the headers are
 * where the parser found them. */
struct packet {
	union xlb_addr src;
	union xlb_addr dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;    /* AF_INET */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u8 pad;
	struct ethhdr *eth;
	struct iphdr *ip;
	void *l4;
	void *ip_end; /* the end of the datagram (its total length) */
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

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
	if (proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IPV4;

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

	cur = (void *)iph + ihl;
	p->l4 = cur;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = cur;
		if ((void *)(th + 1) > data_end || (void *)(th + 1) > ip_end)
			return PARSE_TRUNCATED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return PARSE_OK;
	}
	if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = cur;
		if ((void *)(uh + 1) > data_end || (void *)(uh + 1) > ip_end)
			return PARSE_TRUNCATED;
		p->sport = uh->source;
		p->dport = uh->dest;
		return PARSE_OK;
	}
	return PARSE_OTHER_L4;
}

#endif /* XLB_PARSE_H */
