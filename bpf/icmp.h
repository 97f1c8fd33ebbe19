/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMP errors about a flow: they go to the same real as the flow, and for
 * NAT their addresses and ports are translated inside and out, so that
 * path MTU discovery (fragmentation needed) and port unreachable work
 * through the director, as ip_vs_in_icmp/ip_vs_out_icmp do. */
#ifndef XLB_ICMP_H
#define XLB_ICMP_H

#include "xlb_maps.h"
#include "parse.h"
#include "csum.h"
#include "forward.h"
#include "conntrack.h"
#include "tunnel.h"
#include "nat64.h"

struct icmp_err {
	struct icmphdr *icmp;
	struct iphdr *inner;
	__be16 *sport; /* the inner packet's ports */
	__be16 *dport;
	__u16 *udp_sum;
};

/* Finds an ICMP error's inner packet (IPv4 without options, TCP/UDP). */
static __always_inline int icmp_inner(struct packet *p, void *data_end, struct icmp_err *e)
{
	struct icmphdr *icmp = p->l4;
	/* Within the frame (for the verifier) and the datagram (what follows
	 * it is link padding, not quote). */
	if ((void *)(icmp + 1) > data_end || (void *)(icmp + 1) > p->ip_end)
		return -1;
	if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED)
		return -1;
	struct iphdr *in = (void *)(icmp + 1);
	if ((void *)(in + 1) + 8 > data_end || (void *)(in + 1) + 8 > p->ip_end)
		return -1;
	if (in->ihl != 5 || (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP))
		return -1;
	e->icmp = icmp;
	e->inner = in;
	e->sport = (void *)(in + 1);
	e->dport = (void *)(in + 1) + 2;
	/* A quoted UDP header is whole (8 bytes): its checksum is there. */
	e->udp_sum = in->protocol == IPPROTO_UDP ? (void *)(in + 1) + 6 : 0;
	return 0;
}

/* The flow the quoted packet belongs to, seen from the other side (the
 * quote is the packet the error's sender got: its reverse is our key). */
static __always_inline void icmp_flow_key(const struct icmp_err *e, struct conn_key *k)
{
	k->src = e->inner->daddr;
	k->dst = e->inner->saddr;
	k->sport = *e->dport;
	k->dport = *e->sport;
	k->proto = e->inner->protocol;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* Rewrites the inner packet's source (src) or destination address and
 * port, fixing the inner IP checksum and the ICMP checksum over both. */
static __always_inline void icmp_inner_rewrite(struct icmp_err *e, int src, __be32 addr, __be16 port)
{
	struct iphdr *in = e->inner;
	__be32 old = src ? in->saddr : in->daddr;
	__u16 old_sum = in->check;
	csum_replace4((__u16 *)&in->check, old, addr);
	__be16 *pp = src ? e->sport : e->dport;
	csum_replace4((__u16 *)&e->icmp->checksum, old, addr);
	csum_replace2((__u16 *)&e->icmp->checksum, old_sum, in->check);
	csum_replace2((__u16 *)&e->icmp->checksum, *pp, port);
	/* One register tested and used: clang would otherwise test one
	 * copy of the pointer and load through another, which the verifier
	 * cannot follow. */
	__u16 *us = e->udp_sum;
	asm volatile("" : "+r"(us));
	if (us && *us) {
		/* Undo what the NAT did to the quoted datagram's checksum
		 * too, so the quote is what its sender sent. */
		__u16 old_udp = *us;
		csum_replace4(us, old, addr);
		csum_replace2(us, *pp, port);
		if (*us == 0)
			*us = 0xffff;
		csum_replace2((__u16 *)&e->icmp->checksum, old_udp, *us);
	}
	*pp = port;
	if (src)
		in->saddr = addr;
	else
		in->daddr = addr;
}

/* An ICMP error to a VIP about one of its flows (the inner packet went
 * VIP:vport -> client): to the flow's real, translated for NAT. Returns -1
 * when it is about no flow. */
static __always_inline int icmp_to_vip(struct xdp_md *ctx, struct packet *p, void *data_end)
{
	struct icmp_err e;
	if (icmp_inner(p, data_end, &e) < 0)
		return -1;
	union flow_key k;
	icmp_flow_key(&e, &k.v4);
	int half;
	struct conn *c = flow_lookup(&k, AF_INET, &half);
	if (!c)
		return -1;
	__u32 slot = c->real;
	struct real *r = bpf_map_lookup_elem(&reals, &slot);
	if (!r || r->gen != c->gen || !(r->flags & XLB_REAL_F_PRESENT) || (r->flags & XLB_REAL_F_STANDBY))
		return -1;
	if ((c->flags & XLB_CONN_F_FNAT) && r->family == AF_INET6) /* NAT46's: ICMPv6 to the real (bpf/nat64.h) */
		return xdp_verdict(fnat46_icmp_real(ctx, slot, (__u32)c->laddr << 16 | c->lport));
	if (r->flags & XLB_REAL_F_NAT) {
		struct iphdr *ip = p->ip;
		if ((void *)(ip + 1) > data_end)
			return -1;
		icmp_inner_rewrite(&e, 1, r->addr.v4, r->port ? r->port : k.v4.dport);
		csum_replace4((__u16 *)&ip->check, ip->daddr, r->addr.v4);
		ip->daddr = r->addr.v4;
		if (c->flags & XLB_CONN_F_FNAT) {
			/* FULLNAT: the quote is of laddr:lport's packet, and
			 * the error comes from the local address (the real
			 * may have no route to whoever sent it). */
			__u32 ls = c->laddr;
			struct laddr *la = bpf_map_lookup_elem(&laddrs, &ls);
			if (!la)
				return -1;
			icmp_inner_rewrite(&e, 0, la->addr.v4, c->lport);
			csum_replace4((__u16 *)&ip->check, ip->saddr, la->addr.v4);
			ip->saddr = la->addr.v4;
		}
	}
	return to_real(ctx, p, data_end, r, slot);
}

/* An ICMP error from a NAT real about a client's packet (inner: client ->
 * real:rport): back to the client as from VIP:vport. */
static __always_inline int icmp_from_nat_real(struct xdp_md *ctx, struct packet *p, void *data_end)
{
	struct icmp_err e;
	if (icmp_inner(p, data_end, &e) < 0)
		return -1;
	struct conn_key k;
	icmp_flow_key(&e, &k);
	struct nat_reply *nr = reply_lookup(&k);
	if (!nr || !to_vip(&nr->vip, nr->family)) /* none, or its VIP on standby here */
		return -1;
	struct iphdr *ip = p->ip;
	if ((void *)(ip + 1) > data_end)
		return -1;
	icmp_inner_rewrite(&e, 0, nr->vip.v4, nr->vport);
	csum_replace4((__u16 *)&ip->check, ip->saddr, nr->vip.v4);
	ip->saddr = nr->vip.v4;
	__u32 oif;
	return forward_routed(ctx, p, data_end, &oif);
}

/* An ICMP error about a FULLNAT flow's packet to its real (inner:
 * laddr:lport -> real:rport), from the real or from a router on the way
 * (fragmentation needed): back to the client about VIP:vport. */
static __always_inline int icmp_from_fnat(struct xdp_md *ctx, struct packet *p, void *data_end)
{
	struct icmp_err e;
	if (icmp_inner(p, data_end, &e) < 0)
		return -1;
	struct conn_key k;
	icmp_flow_key(&e, &k);
	struct fnat_port *fp = bpf_map_lookup_elem(&fnat_ports, &k);
	if (fp && fp->nr.family == AF_INET6) {
		/* NAT64's, of an IPv6 VIP: ICMPv6 to the client
		 * (bpf/nat64.h), the flow's entry in fnat_scratch. */
		__u32 zero = 0;
		struct fnat_port *s = bpf_map_lookup_elem(&fnat_scratch, &zero);
		if (!s || !to_vip(&fp->nr.vip, AF_INET6))
			return -1;
		*s = *fp;
		int v = nat46_icmp(ctx);
		return xdp_verdict(v == XLB_XLAT_ROUTE ? xlat6_route(ctx) : v);
	}
	if (!fp || fp->nr.family != AF_INET || !to_vip(&fp->nr.vip, AF_INET))
		return -1;
	struct fnat_port f = *fp;
	struct iphdr *ip = p->ip;
	if ((void *)(ip + 1) > data_end)
		return -1;
	icmp_inner_rewrite(&e, 1, f.client.v4, f.cport);
	icmp_inner_rewrite(&e, 0, f.nr.vip.v4, f.nr.vport);
	csum_replace4((__u16 *)&ip->check, ip->saddr, f.nr.vip.v4);
	ip->saddr = f.nr.vip.v4;
	csum_replace4((__u16 *)&ip->check, ip->daddr, f.client.v4);
	ip->daddr = f.client.v4;
	__u32 oif;
	return forward_routed(ctx, p, data_end, &oif);
}

#endif /* XLB_ICMP_H */
