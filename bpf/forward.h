/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding methods. DR: the IP packet is left untouched; the frame is
 * re-addressed to the real's MAC from the egress interface's MAC. NAT
 * (masquerading): the destination becomes the real's address and port on
 * the way in, the source the VIP's on the way back; checksums are updated
 * incrementally. */
#ifndef XLB_FORWARD_H
#define XLB_FORWARD_H

#include <linux/if_ether.h>
#include "xlb_maps.h"
#include "parse.h"
#include "csum.h"

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		*v += 1;
}

/* An address that is the VIP of a service this director serves now (not
 * on standby). */
static __always_inline int to_vip(const union xlb_addr *addr, __u8 family)
{
	struct vip_key k = { .addr = *addr, .family = family };
	return bpf_map_lookup_elem(&vips, &k) != 0;
}

/* DR: the frame to the real's MAC, out of its interface. */
/* Sends the frame toward real r's next hop, its MACs already written:
 * back out of the port it came in on, or the real's port. The verdict is
 * one the verifier knows (XDP_TX, XDP_REDIRECT or XDP_ABORTED, which
 * bpf_redirect_map returns for a missing port): once a handler moved the
 * head, no path after it may touch the packet. */
static __always_inline int send_to_real(struct xdp_md *ctx, const struct real *r)
{
	if (r->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect_map(&tx_ports, r->tx_port, 0) == XDP_REDIRECT ? XDP_REDIRECT : XDP_ABORTED;
}

static __always_inline int forward_dr(struct xdp_md *ctx, struct ethhdr *eth, const struct real *r)
{
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
	return send_to_real(ctx, r);
}

/* The TCP or UDP header's checksum (0 for a UDP packet sent without
 * one) and its ports (source, then destination). -1 if the header is not
 * there. */
static __always_inline int l4_sum_ports(const struct packet *p, void *data_end, __u16 **l4sum, __be16 **ports)
{
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = p->l4;
		if ((void *)(th + 1) > data_end)
			return -1;
		*l4sum = (__u16 *)&th->check;
		*ports = &th->source;
		return 0;
	}
	struct udphdr *uh = p->l4;
	if ((void *)(uh + 1) > data_end)
		return -1;
	*l4sum = uh->check ? (__u16 *)&uh->check : 0; /* 0: the sender computed no UDP checksum */
	*ports = &uh->source;
	return 0;
}

/* A TCP or UDP checksum written back: UDP's 0 means none, so a sum that
 * comes to 0 is sent as 0xffff (RFC 768). */
static __always_inline void l4_sum_put(const struct packet *p, __u16 *l4sum, __u16 sum)
{
	if (p->proto == IPPROTO_UDP && sum == 0)
		sum = 0xffff;
	*l4sum = sum;
}

/* Rewrites the packet's destination (dst) or source address and port,
 * with both checksums. Returns -1 if the headers are not there. */
static __always_inline int nat_rewrite(struct packet *p, void *data_end, int dst, __be32 addr, __be16 port)
{
	struct iphdr *ip = p->ip;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__be32 old = dst ? ip->daddr : ip->saddr;
	__u16 *l4sum;
	__be16 *ports;
	if (l4_sum_ports(p, data_end, &l4sum, &ports) < 0)
		return -1;
	__be16 *pp = dst ? ports + 1 : ports;
	/* The pseudo-header's address and the port. */
	if (l4sum)
		l4_sum_put(p, l4sum, csum_swap42(*l4sum, old, addr, *pp, port));
	*pp = port;
	ip->check = csum_swap4(ip->check, old, addr);
	if (dst)
		ip->daddr = addr;
	else
		ip->saddr = addr;
	return 0;
}

/* nat_rewrite for IPv6 (NAT66): the destination (dst) or source address
 * and port of the packet whose IPv6 header p->ip points at. IPv6 has no
 * header checksum; the TCP or UDP one covers the addresses in its
 * pseudo-header. Returns -1 if the headers are not there. */
static __always_inline int nat_rewrite6(struct packet *p, void *data_end, int dst, const __be32 *addr, __be16 port)
{
	struct ipv6hdr *ip6 = (struct ipv6hdr *)p->ip;
	if ((void *)(ip6 + 1) > data_end)
		return -1;
	__be32 *old = dst ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32;
	__u16 *l4sum = 0;
	__be16 *pp;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = p->l4;
		if ((void *)(th + 1) > data_end)
			return -1;
		l4sum = (__u16 *)&th->check;
		pp = dst ? &th->dest : &th->source;
	} else {
		struct udphdr *uh = p->l4;
		if ((void *)(uh + 1) > data_end)
			return -1;
		l4sum = (__u16 *)&uh->check; /* never 0 in IPv6 (RFC 8200 8.1) */
		pp = dst ? &uh->dest : &uh->source;
	}
	if (csum_replace16(l4sum, old, (__be32 *)addr) < 0)
		return -1;
	__builtin_memcpy(old, addr, 16);
	csum_replace2(l4sum, *pp, port);
	if (p->proto == IPPROTO_UDP && *l4sum == 0)
		*l4sum = 0xffff;
	*pp = port;
	return 0;
}

/* XDP metadata that asks xlb_tc_neigh (TC ingress) to send the packet
 * through the kernel's neighbour resolution. */
struct xlb_neigh_meta {
	__u32 magic;
	__u32 ifindex;
};
#define XLB_META_NEIGH 0x786c626eu /* "xlbn" */

/* The end of a routed packet's way, once the FIB has answered (rc): to
 * the next hop's MAC out of its interface, or, when the next hop has no
 * neighbour entry yet, up with metadata for xlb_tc_neigh. */
static __always_inline int route_to(struct xdp_md *ctx, struct packet *p, int rc, const struct bpf_fib_lookup *fib,
				    __u32 *oif)
{
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xlb_neigh_meta)) < 0)
			return XDP_PASS; /* no metadata here: the kernel drops it */
		void *data = (void *)(long)ctx->data;
		struct xlb_neigh_meta *m = (void *)(long)ctx->data_meta;
		if ((void *)(m + 1) > data)
			return XDP_PASS;
		m->magic = XLB_META_NEIGH;
		m->ifindex = fib->ifindex;
		return XDP_PASS;
	}
	*oif = fib->ifindex;
	__builtin_memcpy(p->eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, fib->smac, ETH_ALEN);
	if (fib->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib->ifindex, 0);
}

/* Sends a packet on to its destination as the kernel's forwarding would:
 * FIB and neighbour lookup, TTL decremented. When the next hop has no
 * neighbour entry yet, the packet (TTL already decremented) goes up with
 * metadata for xlb_tc_neigh, which hands it to the kernel's neighbour
 * resolution (bpf_redirect_neigh: ARP, the packet queued until answered).
 * The kernel's forwarding cannot take it: its source is a local address
 * here (the VIP), a martian. Anything else the fast path cannot do goes
 * to the kernel as it is. *oif: the interface the packet leaves by, 0
 * when it goes to the kernel. */
static __always_inline int forward_routed(struct xdp_md *ctx, struct packet *p, void *data_end, __u32 *oif)
{
	struct iphdr *ip = p->ip;
	*oif = 0;
	if ((void *)(ip + 1) > data_end || ip->ttl <= 1)
		return XDP_PASS;
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;
	int rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return XDP_PASS;
	csum_replace2((__u16 *)&ip->check, bpf_htons((__u16)ip->ttl << 8), bpf_htons((__u16)(ip->ttl - 1) << 8));
	ip->ttl--;
	return route_to(ctx, p, rc, &fib, oif);
}

/* forward_routed for IPv6: the FIB's next hop, the hop limit
 * decremented (no header checksum to fix). */
static __always_inline int forward_routed6(struct xdp_md *ctx, struct packet *p, void *data_end, __u32 *oif)
{
	struct ipv6hdr *ip6 = (struct ipv6hdr *)p->ip;
	*oif = 0;
	if ((void *)(ip6 + 1) > data_end || ip6->hop_limit <= 1)
		return XDP_PASS;
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET6;
	fib.l4_protocol = p->proto;
	fib.tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
	__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	fib.ifindex = ctx->ingress_ifindex;
	int rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return XDP_PASS;
	ip6->hop_limit--;
	return route_to(ctx, p, rc, &fib, oif);
}

#endif /* XLB_FORWARD_H */
