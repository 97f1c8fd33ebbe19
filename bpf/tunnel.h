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
/* destination unreachable's codes (RFC 792, RFC 1812) */
#define ICMP_HOST_UNREACH 1
#define ICMP_PROT_UNREACH 2
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_NET_ANO 9
#define ICMP_HOST_ANO 10
#define ICMP_HOST_UNR_TOS 12
#define ICMP_PKT_FILTERED 13
#define ICMP_PREC_VIOLATION 14
#define ICMP_PREC_CUTOFF 15

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

/* Writes an IPv4 header without options at o (in the frame or in a
 * scratch map): five 32-bit words, the checksum summed in registers.
 * Written field by field and summed back from memory, the checksum's
 * 16-bit loads would wait on the byte stores before them (8 ns of a TUN
 * packet's 51 once). tot_len in host order; id and frag_off as on the
 * wire. */
static __always_inline void ip4_write(struct iphdr *o, __u8 tos, __u16 tot_len, __be16 id, __be16 frag_off, __u8 ttl,
				      __u8 proto, __be32 src, __be32 dst)
{
	__u32 w0 = 0x45000000 | (__u32)tos << 16 | tot_len;
	__u32 w1 = (__u32)bpf_ntohs(id) << 16 | bpf_ntohs(frag_off);
	__u32 w2 = (__u32)ttl << 24 | (__u32)proto << 16;
	__u32 s = bpf_ntohl(src), d = bpf_ntohl(dst);
	__u32 sum = (w0 >> 16) + (w0 & 0xffff) + (w1 >> 16) + (w1 & 0xffff) + (w2 >> 16) + (s >> 16) + (s & 0xffff) + (d >> 16) +
		    (d & 0xffff);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	__be32 *o32 = (__be32 *)o;
	o32[0] = bpf_htonl(w0);
	o32[1] = bpf_htonl(w1);
	o32[2] = bpf_htonl(w2 | (~sum & 0xffff));
	o32[3] = src;
	o32[4] = dst;
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

/* Writes an L2 header of len bytes (14, or 18 with the tag saved in
 * vlan) at data, of EtherType proto, to dst from src (the MACs left as
 * they are without dst); returns the network header's place after it, or
 * 0 if the frame is too short for need more bytes there. For a frame
 * whose network header moved or changed family. */
static __always_inline void *l2_put(void *data, void *data_end, __u32 len, const __u8 *vlan, const __u8 *dst,
				    const __u8 *src, __be16 proto, __u32 need)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) + 4 > data_end)
		return 0;
	if (dst) {
		__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
		__builtin_memcpy(eth->h_source, src, ETH_ALEN);
	}
	void *l3;
	if (len == sizeof(struct ethhdr)) {
		eth->h_proto = proto;
		l3 = eth + 1;
	} else {
		__builtin_memcpy((void *)eth + 2 * ETH_ALEN, vlan, 4);
		*(__be16 *)((void *)(eth + 1) + 2) = proto;
		l3 = (void *)(eth + 1) + 4;
	}
	if (l3 + need > data_end)
		return 0;
	return l3;
}

/* l2_put for an IPv4 (or, v6, IPv6) packet and an L2 header l2_save
 * saved. */
static __always_inline void *l2_write_fam(void *data, void *data_end, const struct l2_saved *l2,
					  const __u8 *dst, const __u8 *src, __u32 need, int v6)
{
	return l2_put(data, data_end, l2->len, l2->vlan, dst, src, v6 ? bpf_htons(ETH_P_IPV6) : bpf_htons(ETH_P_IP), need);
}

static __always_inline void *l2_write(void *data, void *data_end, const struct l2_saved *l2,
				      const __u8 *dst, const __u8 *src, __u32 need)
{
	return l2_write_fam(data, data_end, l2, dst, src, need, 0);
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
	/* (tos: IPTOS_PREC_INTERNETCONTROL, as icmp_send) */
	ip4_write(ip, 0xc0, hdrs + quote, 0, 0, 64, IPPROTO_ICMP, q->daddr, q->saddr);
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

/* A global function's verdict, as one the verifier knows to be an XDP
 * action (0-4): it cannot see the callee's, and a caller's path that
 * went on after the call (-1 is XLB_CONTINUE) would touch a packet whose
 * head the callee moved. */
static __always_inline int xdp_verdict(int act)
{
	if ((__u32)act > XDP_REDIRECT)
		return XDP_ABORTED;
	return act;
}

/* The L2 header's length at the head of the frame (Ethernet, one VLAN tag
 * or none) if it carries proto; 0 if not. */
static __always_inline __u32 l2_len_of(void *data, void *data_end, __be16 proto)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) + 4 > data_end)
		return 0;
	if (eth->h_proto == proto)
		return sizeof(struct ethhdr);
	if ((eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)) &&
	    *(__be16 *)((void *)(eth + 1) + 2) == proto)
		return sizeof(struct ethhdr) + 4;
	return 0;
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

/* Writes the outer IPv4 header, and GUE's UDP and GUE headers or GRE's
 * after it, at o (in the frame, or a struct tun_outer): from src to dst,
 * tos, id, frag_off and ttl as given, for an inner packet of inner_len
 * bytes, IPv4 (inner IPPROTO_IPIP) or IPv6 (IPPROTO_IPV6: a tunnel across
 * families); GUE to port from sport with no UDP checksum (IPVS's nocsum
 * default), GRE with no options. Every byte of the headers is written: no
 * memset first, which in the frame would reach the inner packet. */
static __always_inline void tun4_write(struct iphdr *o, __u8 type, __be16 port, __u16 sport, __be32 src, __be32 dst,
				       __u8 tos, __be16 id, __be16 frag_off, __u8 ttl, __u32 inner_len, __u8 inner)
{
	__u32 hlen = tun_hlen(type);
	__u8 proto = type == XLB_TUN_GUE ? IPPROTO_UDP : type == XLB_TUN_GRE ? IPPROTO_GRE : inner;
	ip4_write(o, tos, inner_len + hlen, id, frag_off, ttl, proto, src, dst);
	if (type == XLB_TUN_GUE) {
		struct udphdr *udp = (void *)(o + 1);
		struct guehdr *gue = (void *)(udp + 1);
		udp->source = bpf_htons(sport);
		udp->dest = port;
		udp->len = bpf_htons(inner_len + sizeof(struct udphdr) + sizeof(struct guehdr));
		udp->check = 0;
		gue->hlen_flags = 0;
		gue->proto_ctype = inner;
		gue->flags = 0;
	} else if (type == XLB_TUN_GRE) {
		struct grehdr *gre = (void *)(o + 1);
		gre->flags = 0;
		gre->proto = inner == IPPROTO_IPIP ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	}
}

/* tun4_write for an IPv4 packet (inner, its header as it arrived), as
 * ip_vs_tunnel_xmit builds the headers: the inner TOS, TTL, ID and DF
 * (ip_vs_prepare_tunneled_skb, pmtu_disc on). */
static __always_inline void tun_fill(struct tun_outer *o, __u8 type, __be16 port, __u16 sport, __be32 src, __be32 dst,
				     const struct iphdr *inner)
{
	tun4_write(&o->ip, type, port, sport, src, dst, inner->tos, inner->id, inner->frag_off & bpf_htons(IP_DF), inner->ttl,
		   bpf_ntohs(inner->tot_len), IPPROTO_IPIP);
}

/* IPv6 TUN, as ip_vs_tunnel_xmit_v6 builds it: an outer IPv6 header from
 * the director's address toward the real, its traffic class and hop limit
 * the inner packet's, its flow label 0; next header 41 (IPv6 in IPv6), or
 * UDP with a GUE header (proto_ctype 41; the UDP checksum 0, as
 * udp6_set_csum leaves it without --tun-csum: RFC 6935's zero checksum for
 * tunnels, which a fou socket takes), or GRE (protocol 0x86dd). */
#define XLB_IPV6_MIN_MTU 1280

/* The length of a tunnel's headers in front of an IPv6 packet. */
static __always_inline __u32 tun6_hlen(__u8 type)
{
	return tun_hlen(type) - sizeof(struct iphdr) + sizeof(struct ipv6hdr);
}

/* What ICMPv6 Packet Too Big quotes: as much of the packet as fits in
 * IPv6's minimum MTU (RFC 4443 2.4, as icmpv6_send cuts it). A packet
 * too big for a path of at least 1280 bytes has that much. */
#define XLB_PTB_QUOTE (XLB_IPV6_MIN_MTU - sizeof(struct ipv6hdr) - 8)

/* Writes the outer IPv6 header, and GUE's UDP and GUE headers or GRE's
 * after it, at o (52 bytes there): from src to dst, vtc its first word
 * (version, traffic class, flow label), hops its hop limit, for an inner
 * packet of inner_len bytes, IPv6 (inner IPPROTO_IPV6) or IPv4
 * (IPPROTO_IPIP: a tunnel across families). */
static __always_inline void tun6_write(struct ipv6hdr *o, __u8 type, __be16 port, __u16 sport, const __be32 *src,
				       const __be32 *dst, __be32 vtc, __u8 hops, __u32 inner_len, __u8 inner)
{
	*(__be32 *)o = vtc;
	o->payload_len = bpf_htons(inner_len + tun6_hlen(type) - sizeof(struct ipv6hdr));
	o->hop_limit = hops;
	__builtin_memcpy(&o->saddr, src, 16);
	__builtin_memcpy(&o->daddr, dst, 16);
	if (type == XLB_TUN_GUE) {
		struct udphdr *udp = (void *)(o + 1);
		struct guehdr *gue = (void *)(udp + 1);
		o->nexthdr = IPPROTO_UDP;
		udp->source = bpf_htons(sport);
		udp->dest = port;
		udp->len = bpf_htons(inner_len + sizeof(struct udphdr) + sizeof(struct guehdr));
		udp->check = 0;
		gue->hlen_flags = 0;
		gue->proto_ctype = inner;
		gue->flags = 0;
	} else if (type == XLB_TUN_GRE) {
		struct grehdr *gre = (void *)(o + 1);
		o->nexthdr = IPPROTO_GRE;
		gre->flags = 0;
		gre->proto = inner == IPPROTO_IPIP ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	} else {
		o->nexthdr = inner;
	}
}

/* Tunnels across families, as IPVS wraps a packet of the service's family
 * for a real of the other (ip_vs_tunnel_xmit_v6 with an IPv4 packet,
 * ip_vs_tunnel_xmit with an IPv6 one, both through
 * ip_vs_prepare_tunneled_skb): the same tunnels, their headers naming the
 * inner family (next header or GUE proto_ctype 4 or 41, GRE 0x0800 or
 * 0x86dd). The caller has checked the path MTU. Global functions: the
 * verifier checks each once, and xlb_xdp6 is near its budget. */

/* 4 in 6: an IPv4 packet in IPv6 (its traffic class the TOS, its hop
 * limit the TTL, flow label 0) for the IPv6 real in slot. */
__attribute__((noinline)) int tun46_xmit(struct xdp_md *ctx, __u32 slot)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct real *r = bpf_map_lookup_elem(&reals, &slot);
	struct tunnel *t = bpf_map_lookup_elem(&tunnels, &slot);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IP));
	if (!r || !t || r->family != AF_INET6 || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct iphdr *in = data + l2;
	if ((void *)(in + 1) + 4 > data_end)
		return XDP_DROP;
	__u8 type = t->type;
	__u32 inner_len = bpf_ntohs(in->tot_len);
	__be32 vtc = bpf_htonl(0x60000000 | (__u32)in->tos << 20);
	__u8 hops = in->ttl;
	__u16 sport = 0;
	if (type == XLB_TUN_GUE) /* (the ports: those of an IPv4 header without options) */
		sport = XLB_GUE_SPORT_MIN + hash_32(in->saddr ^ *(__be32 *)(in + 1) ^ in->protocol, 16) % XLB_GUE_SPORT_SPAN;
	__u8 vlan[4];
	__builtin_memcpy(vlan, data + 2 * ETH_ALEN, 4);
	if (bpf_xdp_adjust_head(ctx, -(int)tun6_hlen(type)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *o = l2_put(data, data_end, l2, vlan, r->dst_mac, r->src_mac, bpf_htons(ETH_P_IPV6),
				   sizeof(struct ipv6hdr) + sizeof(struct udphdr) + sizeof(struct guehdr));
	if (!o)
		return XDP_DROP;
	tun6_write(o, type, t->port, sport, t->src.v6, r->addr.v6, vtc, hops, inner_len, IPPROTO_IPIP);
	return send_to_real(ctx, r);
}

/* 6 in 4: an IPv6 packet in IPv4 for the IPv4 real in slot: TOS the
 * traffic class, TTL the hop limit, DF clear (ip_vs_prepare_tunneled_skb
 * leaves it so for an IPv6 packet: the path may fragment it), a random
 * ID. The headers are written in place, not built by tun_fill on the
 * stack and copied as forward_tun does: this frame and xlb_xdp6's must
 * stay within 512 bytes together (tun_fill's copy took them to 576). */
__attribute__((noinline)) int tun64_xmit(struct xdp_md *ctx, __u32 slot)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct real *r = bpf_map_lookup_elem(&reals, &slot);
	struct tunnel *t = bpf_map_lookup_elem(&tunnels, &slot);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	if (!r || !t || r->family != AF_INET || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct ipv6hdr *in = data + l2;
	if ((void *)(in + 1) + 4 > data_end)
		return XDP_DROP;
	__u8 type = t->type;
	__u32 hlen = tun_hlen(type);
	__u32 inner_len = bpf_ntohs(in->payload_len) + sizeof(struct ipv6hdr);
	__u8 tos = bpf_ntohl(*(__be32 *)in) >> 20;
	__u8 ttl = in->hop_limit;
	__u16 sport = 0;
	if (type == XLB_TUN_GUE) /* (the ports: those right after the header) */
		sport = XLB_GUE_SPORT_MIN +
			hash_32(in->saddr.in6_u.u6_addr32[0] ^ in->saddr.in6_u.u6_addr32[1] ^ in->saddr.in6_u.u6_addr32[2] ^
					in->saddr.in6_u.u6_addr32[3] ^ *(__be32 *)(in + 1) ^ in->nexthdr,
				16) % XLB_GUE_SPORT_SPAN;
	__u8 vlan[4];
	__builtin_memcpy(vlan, data + 2 * ETH_ALEN, 4);
	if (bpf_xdp_adjust_head(ctx, -(int)hlen))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct iphdr *o = l2_put(data, data_end, l2, vlan, r->dst_mac, r->src_mac, bpf_htons(ETH_P_IP),
				 sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct guehdr));
	if (!o)
		return XDP_DROP;
	tun4_write(o, type, t->port, sport, t->src.v4, r->addr.v4, tos, bpf_get_prandom_u32(), 0, ttl, inner_len, IPPROTO_IPV6);
	return send_to_real(ctx, r);
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
	/* (an IPv6 real: IPv6's headers, tun46_xmit) */
	__u32 hlen = r->family == AF_INET6 ? tun6_hlen(type) : tun_hlen(type);
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
	if (r->family == AF_INET6)
		return xdp_verdict(tun46_xmit(ctx, slot));
	/* What the headers need, read before the frame moves: the tag (the
	 * MACs are the real's), the inner header's fields. Then the headers
	 * are written in place, the inner packet where it was. */
	__u32 l2 = (void *)in - (void *)p->eth;
	if ((l2 != sizeof(struct ethhdr) && l2 != sizeof(struct ethhdr) + 4) || (void *)p->eth + 18 > data_end)
		return XDP_DROP;
	__u8 vlan[4];
	__builtin_memcpy(vlan, (void *)p->eth + 2 * ETH_ALEN, 4);
	__u8 tos = in->tos, ttl = in->ttl;
	__be16 id = in->id, df = in->frag_off & bpf_htons(IP_DF);
	__u16 sport = 0;
	if (type == XLB_TUN_GUE)
		sport = XLB_GUE_SPORT_MIN +
			hash_32(p->src.v4 ^ (((__u32)p->sport << 16) | p->dport) ^ p->proto, 16) % XLB_GUE_SPORT_SPAN;
	if (bpf_xdp_adjust_head(ctx, -(int)hlen))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* The inner packet follows, with at least its L4 header: 12 more
	 * bytes are there whichever the tunnel. */
	struct iphdr *o = l2_put(data, data_end, l2, vlan, r->dst_mac, r->src_mac, bpf_htons(ETH_P_IP), sizeof(struct iphdr) + 12);
	if (!o)
		return XDP_DROP;
	tun4_write(o, type, t->port, sport, t->src.v4, r->addr.v4, tos, id, df, ttl, inner_len, IPPROTO_IPIP);
	return send_to_real(ctx, r);
}

/* ICMPv6 Packet Too Big (next-hop MTU mtu) back to the client, from the
 * VIP, hop limit 64 (the kernel's default), quoting the packet's first
 * 1232 bytes: the frame becomes the error in place and leaves by the
 * port it came in on. The checksum (pseudo-header, header and quote) is
 * summed by bpf_csum_diff, 512 bytes a call at most. */
static __always_inline int icmp6_packet_too_big(struct xdp_md *ctx, struct packet *p, void *data_end, __u32 mtu)
{
	struct l2_saved l2;
	if (l2_save(p, data_end, &l2) < 0)
		return XDP_DROP;
	const __u32 hdrs = sizeof(struct ipv6hdr) + 8;
	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = l2_write_fam(data, data_end, &l2, l2.src, l2.dst, hdrs + XLB_PTB_QUOTE, 1);
	if (!ip6)
		return XDP_DROP;
	__u8 *icmp = (void *)(ip6 + 1);
	struct ipv6hdr *q = (void *)(icmp + 8);
	*(__be32 *)ip6 = bpf_htonl(0x60000000); /* version 6, traffic class 0, no flow label */
	ip6->payload_len = bpf_htons(8 + XLB_PTB_QUOTE);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 64;
	__builtin_memcpy(&ip6->saddr, &q->daddr, 16);
	__builtin_memcpy(&ip6->daddr, &q->saddr, 16);
	icmp[0] = 2; /* ICMPV6_PKT_TOOBIG */
	icmp[1] = 0;
	*(__u16 *)(icmp + 2) = 0;
	*(__be32 *)(icmp + 4) = bpf_htonl(mtu);
	/* The addresses and the ICMPv6 header are 40 contiguous bytes. */
	__s64 s = bpf_csum_diff(0, 0, (__be32 *)&ip6->saddr, 40, 0);
	if (s >= 0)
		s = bpf_csum_diff(0, 0, (__be32 *)q, 512, (__u32)s);
	if (s >= 0)
		s = bpf_csum_diff(0, 0, (__be32 *)((void *)q + 512), 512, (__u32)s);
	if (s >= 0)
		s = bpf_csum_diff(0, 0, (__be32 *)((void *)q + 1024), XLB_PTB_QUOTE - 1024, (__u32)s);
	if (s < 0)
		return XDP_DROP;
	__u64 c = (__u64)(__u32)s + bpf_htonl(8 + XLB_PTB_QUOTE) + bpf_htonl(IPPROTO_ICMPV6);
	c = (c & 0xffffffff) + (c >> 32);
	c = (c & 0xffffffff) + (c >> 32);
	*(__u16 *)(icmp + 2) = csum_fold32((__u32)c);
	int cut = (int)(l2.len + hdrs + XLB_PTB_QUOTE) - (int)(data_end - data);
	if (cut < 0 && bpf_xdp_adjust_tail(ctx, cut))
		return XDP_DROP;
	return XDP_TX;
}

/* TUN for IPv6: wraps the packet for the real and sends it to the real's
 * next hop. A packet that would not fit the path once wrapped gets Packet
 * Too Big with the path's MTU less the tunnel's headers, as IPVS's
 * ensure_mtu_is_adequate sends it (IPv6 has no DF: always); an ICMPv6
 * packet gets none (icmpv6_send answers no error with one). Where the
 * path less the headers is below IPv6's minimum MTU, IPVS drops every
 * packet; here what fits still goes, and what does not is dropped and
 * counted. The outer header is written in place after the head moves,
 * from the inner fields read before: no copy of it on the stack. */
static __always_inline int forward_tun6(struct xdp_md *ctx, struct packet *p, void *data_end, const struct real *r,
					__u32 slot)
{
	struct tunnel *t = bpf_map_lookup_elem(&tunnels, &slot);
	if (!t)
		return XDP_DROP;
	struct ipv6hdr *in = (struct ipv6hdr *)p->ip;
	if ((void *)(in + 1) > data_end)
		return XDP_DROP;
	__u8 type = t->type;
	/* (an IPv4 real: IPv4's headers, tun64_xmit) */
	__u32 hlen = r->family == AF_INET ? tun_hlen(type) : tun6_hlen(type);
	__u32 inner_len = bpf_ntohs(in->payload_len) + sizeof(struct ipv6hdr);
	if (t->mtu > hlen && inner_len + hlen > t->mtu) {
		__u32 mtu = t->mtu - hlen;
		if (mtu >= XLB_IPV6_MIN_MTU && p->proto != IPPROTO_ICMPV6) {
			stat_inc(XLB_STAT_TUN_FRAG_NEEDED);
			return icmp6_packet_too_big(ctx, p, data_end, mtu);
		}
		stat_inc(XLB_STAT_TUN_TOO_BIG);
		return XDP_DROP;
	}
	if (r->family == AF_INET)
		return xdp_verdict(tun64_xmit(ctx, slot));
	/* As forward_tun: the tag saved (the MACs are the real's), the
	 * headers written in place. */
	__u32 l2 = (void *)in - (void *)p->eth;
	if ((l2 != sizeof(struct ethhdr) && l2 != sizeof(struct ethhdr) + 4) || (void *)p->eth + 18 > data_end)
		return XDP_DROP;
	__u8 vlan[4];
	__builtin_memcpy(vlan, (void *)p->eth + 2 * ETH_ALEN, 4);
	/* Version, traffic class (the inner's) and a zero flow label. */
	__be32 vtc = (*(__be32 *)in & bpf_htonl(0x0ff00000)) | bpf_htonl(0x60000000);
	__u8 hops = in->hop_limit;
	__be16 port = t->port;
	__u16 sport = 0;
	if (type == XLB_TUN_GUE)
		sport = XLB_GUE_SPORT_MIN +
			hash_32(addr_fold(&p->src, AF_INET6) ^ (((__u32)p->sport << 16) | p->dport) ^ p->proto, 16) %
				XLB_GUE_SPORT_SPAN;
	if (bpf_xdp_adjust_head(ctx, -(int)hlen))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* The inner packet follows with at least its IPv6 header: the GUE
	 * headers' 52 bytes are there whichever the tunnel. */
	struct ipv6hdr *o = l2_put(data, data_end, l2, vlan, r->dst_mac, r->src_mac, bpf_htons(ETH_P_IPV6),
				   sizeof(struct ipv6hdr) + sizeof(struct udphdr) + sizeof(struct guehdr));
	if (!o)
		return XDP_DROP;
	tun6_write(o, type, port, sport, t->src.v6, r->addr.v6, vtc, hops, inner_len, IPPROTO_IPV6);
	return send_to_real(ctx, r);
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
