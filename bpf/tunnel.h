/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* TUN: the client's IP packet, whole and unchanged, inside an outer IPv4
 * header to the real: IPIP, or with a UDP and GUE header (GUE) or a GRE
 * header (GRE) between, as IPVS's ip_vs_tunnel_xmit builds them. The outer
 * source is the director's address toward the real; TOS, TTL, DF and the
 * ID are the inner packet's (ip_vs_prepare_tunneled_skb; pmtu_disc on, the
 * default). What would exceed the path MTU once wrapped gets ICMP
 * fragmentation needed with the MTU less the tunnel's overhead, as
 * ensure_mtu_is_adequate sends it; from the VIP, which the director holds. */
#ifndef XLB_TUNNEL_H
#define XLB_TUNNEL_H

#include "xlb_maps.h"
#include "parse.h"
#include "forward.h"
#include "sched.h"

/* RFC 792 (linux/icmp.h pulls in libc headers). */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_FRAG_NEEDED 4

/* draft-ietf-intarea-gue, version 0, no options: what IPVS sends. */
struct guehdr {
	__u8 hlen_flags; /* version 0, C 0, hlen 0 */
	__u8 proto_ctype;
	__be16 flags;
};

struct grehdr {
	__be16 flags; /* no checksum, key or sequence; version 0 */
	__be16 proto;
};

#ifndef IP_DF
#define IP_DF 0x4000
#endif

/* The UDP source port of a GUE packet: a hash of the flow into Linux's
 * default ephemeral range (32768-60999), as udp_flow_src_port spreads
 * flows over the receiver's queues. */
#define XLB_GUE_SPORT_MIN 32768
#define XLB_GUE_SPORT_SPAN 28232

/* The checksum of an IPv4 header without options whose check is 0. */
static __always_inline __u16 iph_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 c = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		c += w[i];
	return csum_fold32(c);
}

/* The L2 header in front of an IPv4 packet: Ethernet, with one VLAN tag
 * or without; its length is 14 or 18. */
struct l2_saved {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__u8 vlan[4];
	__u32 len;
};

static __always_inline int l2_save(const struct packet *p, void *data_end, struct l2_saved *l2)
{
	struct ethhdr *eth = p->eth;
	if ((void *)(eth + 1) + 4 > data_end)
		return -1;
	l2->len = (void *)p->ip - (void *)eth;
	if (l2->len != sizeof(struct ethhdr) && l2->len != sizeof(struct ethhdr) + 4)
		return -1;
	__builtin_memcpy(l2->dst, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(l2->src, eth->h_source, ETH_ALEN);
	__builtin_memcpy(l2->vlan, (void *)eth + 2 * ETH_ALEN, 4);
	return 0;
}

/* Writes an L2 header of l2->len bytes at data, to dst from src; returns
 * the IPv4 header's place after it, or 0 if the frame is too short for
 * need more bytes there. */
static __always_inline void *l2_write(void *data, void *data_end, const struct l2_saved *l2,
				      const __u8 *dst, const __u8 *src, __u32 need)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) + 4 > data_end)
		return 0;
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
	void *l3;
	if (l2->len == sizeof(struct ethhdr)) {
		eth->h_proto = bpf_htons(ETH_P_IP);
		l3 = eth + 1;
	} else {
		__builtin_memcpy((void *)eth + 2 * ETH_ALEN, l2->vlan, 4);
		*(__be16 *)((void *)(eth + 1) + 2) = bpf_htons(ETH_P_IP);
		l3 = (void *)(eth + 1) + 4;
	}
	if (l3 + need > data_end)
		return 0;
	return l3;
}

/* ICMP fragmentation needed (next-hop MTU mtu) back to the client, from
 * the VIP, quoting the packet's IPv4 header (without options) and its
 * first 8 bytes, as RFC 792 asks. The frame becomes the reply in place
 * and leaves by the port it came in on. */
static __always_inline int icmp_frag_needed(struct xdp_md *ctx, struct packet *p, void *data_end, __u16 mtu)
{
	struct l2_saved l2;
	if (l2_save(p, data_end, &l2) < 0)
		return XDP_DROP;
	const __u32 hdrs = sizeof(struct iphdr) + sizeof(struct icmphdr);
	const __u32 quote = sizeof(struct iphdr) + 8;
	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = l2_write(data, data_end, &l2, l2.src, l2.dst, hdrs + quote);
	if (!ip)
		return XDP_DROP;
	struct icmphdr *icmp = (void *)(ip + 1);
	struct iphdr *q = (void *)(icmp + 1);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0xc0; /* IPTOS_PREC_INTERNETCONTROL, as icmp_send */
	ip->tot_len = bpf_htons(hdrs + quote);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = q->daddr;
	ip->daddr = q->saddr;
	ip->check = 0;
	ip->check = iph_csum(ip);
	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->rest = bpf_htonl(mtu);
	const __u16 *w = (const __u16 *)icmp;
	__u32 c = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(struct icmphdr) + quote) / 2; i++)
		c += w[i];
	icmp->checksum = csum_fold32(c);
	int cut = (int)(l2.len + hdrs + quote) - (int)(data_end - data);
	if (cut < 0 && bpf_xdp_adjust_tail(ctx, cut))
		return XDP_DROP;
	return XDP_TX;
}

/* The headers IPVS puts in front of a tunnelled IPv4 packet. */
struct tun_outer {
	struct iphdr ip;
	union {
		struct {
			struct udphdr udp;
			struct guehdr gue;
		} gue;
		struct grehdr gre;
	};
};

/* The length of a tunnel's headers (enum xlb_tun_type). */
static __always_inline __u32 tun_hlen(__u8 type)
{
	if (type == XLB_TUN_GUE)
		return sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct guehdr);
	if (type == XLB_TUN_GRE)
		return sizeof(struct iphdr) + sizeof(struct grehdr);
	return sizeof(struct iphdr);
}

/* Fills o for inner (its header as it arrived) sent from src to dst, as
 * ip_vs_tunnel_xmit builds them: the inner TOS, TTL, ID and DF
 * (ip_vs_prepare_tunneled_skb, pmtu_disc on); GUE to port from sport with
 * no UDP checksum (IPVS's nocsum default); GRE with no options. */
static __always_inline void tun_fill(struct tun_outer *o, __u8 type, __be16 port, __u16 sport, __be32 src, __be32 dst,
				     const struct iphdr *inner)
{
	__u16 inner_len = bpf_ntohs(inner->tot_len);
	__u32 hlen = tun_hlen(type);
	__builtin_memset(o, 0, sizeof(*o));
	o->ip.version = 4;
	o->ip.ihl = 5;
	o->ip.tos = inner->tos;
	o->ip.tot_len = bpf_htons(inner_len + hlen);
	o->ip.id = inner->id;
	o->ip.frag_off = inner->frag_off & bpf_htons(IP_DF);
	o->ip.ttl = inner->ttl;
	o->ip.protocol = type == XLB_TUN_GUE ? IPPROTO_UDP : type == XLB_TUN_GRE ? IPPROTO_GRE : IPPROTO_IPIP;
	o->ip.saddr = src;
	o->ip.daddr = dst;
	o->ip.check = iph_csum(&o->ip);
	if (type == XLB_TUN_GUE) {
		o->gue.udp.source = bpf_htons(sport);
		o->gue.udp.dest = port;
		o->gue.udp.len = bpf_htons(inner_len + hlen - sizeof(struct iphdr));
		o->gue.gue.proto_ctype = IPPROTO_IPIP;
	} else if (type == XLB_TUN_GRE) {
		o->gre.proto = bpf_htons(ETH_P_IP);
	}
}

/* TUN: wraps the packet for the real and sends it to the real's next hop. */
static __always_inline int forward_tun(struct xdp_md *ctx, struct packet *p, void *data_end, const struct real *r, __u32 slot)
{
	struct tunnel *t = bpf_map_lookup_elem(&tunnels, &slot);
	if (!t)
		return XDP_DROP;
	struct iphdr *in = p->ip;
	if ((void *)(in + 1) > data_end)
		return XDP_DROP;
	__u8 type = t->type;
	__u32 hlen = tun_hlen(type);
	__u16 inner_len = bpf_ntohs(in->tot_len);
	/* An MTU no tunnel fits in (never written so) checks nothing. */
	if (t->mtu > hlen && (__u32)inner_len + hlen > t->mtu) {
		/* No error about an ICMP packet (ip_vs_iph_icmp), and none
		 * whose quote would need the header's options. */
		if ((in->frag_off & bpf_htons(IP_DF)) && in->ihl == 5 && p->proto != IPPROTO_ICMP) {
			stat_inc(XLB_STAT_TUN_FRAG_NEEDED);
			return icmp_frag_needed(ctx, p, data_end, t->mtu - hlen);
		}
		stat_inc(XLB_STAT_TUN_TOO_BIG);
		return XDP_DROP;
	}
	struct l2_saved l2;
	if (l2_save(p, data_end, &l2) < 0)
		return XDP_DROP;
	__u16 sport = 0;
	if (type == XLB_TUN_GUE)
		sport = XLB_GUE_SPORT_MIN +
			hash_32(p->src.v4 ^ (((__u32)p->sport << 16) | p->dport) ^ p->proto, 16) % XLB_GUE_SPORT_SPAN;
	struct tun_outer o;
	tun_fill(&o, type, t->port, sport, t->src, r->addr.v4, in);
	if (bpf_xdp_adjust_head(ctx, -(int)hlen))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* The inner packet follows, with at least its L4 header: 12 more
	 * bytes are there whichever the tunnel. */
	void *out = l2_write(data, data_end, &l2, r->dst_mac, r->src_mac, sizeof(struct iphdr) + 12);
	if (!out)
		return XDP_DROP;
	if (type == XLB_TUN_GUE)
		__builtin_memcpy(out, &o, sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct guehdr));
	else if (type == XLB_TUN_GRE)
		__builtin_memcpy(out, &o, sizeof(struct iphdr) + sizeof(struct grehdr));
	else
		__builtin_memcpy(out, &o, sizeof(struct iphdr));
	if (r->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	/* A verdict the verifier knows: once the head moved, no handler
	 * after this one may touch the packet (-1 is XLB_CONTINUE). */
	return bpf_redirect_map(&tx_ports, r->tx_port, 0) == XDP_REDIRECT ? XDP_REDIRECT : XDP_ABORTED;
}

/* To the real a flow's packet (or an ICMP error about it) goes to: by
 * tunnel, or to its MAC. */
static __always_inline int to_real(struct xdp_md *ctx, struct packet *p, void *data_end, const struct real *r, __u32 slot)
{
	if (r->flags & XLB_REAL_F_TUN)
		return forward_tun(ctx, p, data_end, r, slot);
	return forward_dr(ctx, p->eth, r);
}

#endif /* XLB_TUNNEL_H */
