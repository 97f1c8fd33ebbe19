/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMPv6 errors about an IPv6 flow (RFC 4443: destination unreachable,
 * packet too big, time exceeded, parameter problem), as bpf/icmp.h does for
 * IPv4 and IPVS's ip_vs_in_icmp_v6/ip_vs_out_icmp_v6 do: to a VIP about a
 * flow, to the flow's real (NAT66: the quote and the outer destination
 * translated); from a NAT66 real about a client's packet, back to the
 * client as from the VIP. Packet Too Big thereby reaches whoever must
 * send smaller, and path MTU discovery works through the director. The
 * ICMPv6 checksum covers the pseudo-header and the quote: it is updated
 * for every address and port changed. The quoted TCP/UDP checksum is left
 * as it is (no receiver checks a quote's). */
#ifndef XLB_ICMP6_H
#define XLB_ICMP6_H

#include "xlb_maps.h"
#include "parse.h"
#include "csum.h"
#include "forward.h"
#include "tunnel.h"
#include "conntrack.h"
#include "nat64.h"

struct icmp6_err {
	__u16 *sum;            /* the ICMPv6 checksum */
	struct ipv6hdr *inner; /* the quoted packet */
	__be16 *sport;         /* its ports */
	__be16 *dport;
};

/* Finds an ICMPv6 error's quoted packet: IPv6 with TCP or UDP right after
 * its fixed header (a quote with extension headers is not translated). */
static __always_inline int icmp6_inner(struct packet *p, void *data_end, struct icmp6_err *e)
{
	__u8 *icmp = p->l4;
	if ((void *)(icmp + 8) > data_end || (void *)(icmp + 8) > p->ip_end)
		return -1;
	if (icmp[0] < 1 || icmp[0] > 4) /* errors are types 1-4; 128+ are informational */
		return -1;
	struct ipv6hdr *in = (void *)(icmp + 8);
	if ((void *)(in + 1) + 8 > data_end || (void *)(in + 1) + 8 > p->ip_end)
		return -1;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return -1;
	e->sum = (__u16 *)(icmp + 2);
	e->inner = in;
	e->sport = (void *)(in + 1);
	e->dport = (void *)(in + 1) + 2;
	return 0;
}

/* The flow the quote belongs to, seen from the other side (the quote is
 * the packet the error's sender got: its reverse is our key). */
static __always_inline void icmp6_flow_key(const struct icmp6_err *e, struct conn_key6 *k)
{
	__builtin_memcpy(k->src, &e->inner->daddr, 16);
	__builtin_memcpy(k->dst, &e->inner->saddr, 16);
	k->sport = *e->dport;
	k->dport = *e->sport;
	k->proto = e->inner->nexthdr;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* Rewrites the quote's source (src) or destination address and port and
 * the outer destination (src: the error goes to where the quote came
 * from) or source, fixing the ICMPv6 checksum for all of it. */
static __always_inline int icmp6_rewrite(struct packet *p, void *data_end, struct icmp6_err *e, int src, __be32 *addr,
					 __be16 port)
{
	struct ipv6hdr *ip6 = (struct ipv6hdr *)p->ip;
	if ((void *)(ip6 + 1) > data_end)
		return -1;
	__be32 *quoted = src ? e->inner->saddr.in6_u.u6_addr32 : e->inner->daddr.in6_u.u6_addr32;
	__be32 *outer = src ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32;
	__be16 *pp = src ? e->sport : e->dport;
	if (csum_replace16(e->sum, quoted, addr) < 0 || csum_replace16(e->sum, outer, addr) < 0)
		return -1;
	csum_replace2(e->sum, *pp, port);
	__builtin_memcpy(quoted, addr, 16);
	__builtin_memcpy(outer, addr, 16);
	*pp = port;
	return 0;
}

/* An ICMPv6 error to a VIP about one of its flows (the quote went
 * VIP:vport -> client): to the flow's real, translated for NAT66. -1 when
 * it is about no flow. */
static __always_inline int icmp6_to_vip(struct xdp_md *ctx, struct packet *p, void *data_end)
{
	struct icmp6_err e;
	if (icmp6_inner(p, data_end, &e) < 0)
		return -1;
	union flow_key k;
	icmp6_flow_key(&e, &k.v6);
	int half;
	struct conn *c = flow_lookup(&k, AF_INET6, &half);
	if (!c)
		return -1;
	__u32 slot = c->real;
	struct real *r = bpf_map_lookup_elem(&reals, &slot);
	if (!r || r->gen != c->gen || !(r->flags & XLB_REAL_F_PRESENT) || (r->flags & XLB_REAL_F_STANDBY))
		return -1;
	if (r->family != AF_INET6) {
		/* NAT64's: ICMP to the IPv4 real (bpf/nat64.h). */
		if (!(c->flags & XLB_CONN_F_FNAT))
			return -1;
		return xdp_verdict(nat64_icmp(ctx, slot, (__u32)c->laddr << 16 | c->lport));
	}
	if (r->flags & XLB_REAL_F_TUN)
		return forward_tun6(ctx, p, data_end, r, slot);
	if ((r->flags & XLB_REAL_F_NAT) &&
	    icmp6_rewrite(p, data_end, &e, 1, (__be32 *)r->addr.v6, r->port ? r->port : k.v6.dport) < 0)
		return -1;
	if (c->flags & XLB_CONN_F_FNAT) {
		/* FULLNAT: the quote is of laddr:lport's packet, and the
		 * error comes from the local address (the real may have no
		 * route to whoever sent it). */
		__u32 ls = c->laddr;
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &ls);
		if (!la || icmp6_rewrite(p, data_end, &e, 0, la->addr.v6, c->lport) < 0)
			return -1;
	}
	return forward_dr(ctx, p->eth, r);
}

/* An ICMPv6 error from a NAT66 real about a client's packet (the quote:
 * client -> real:rport): back to the client as from VIP:vport. */
static __always_inline int icmp6_from_nat_real(struct xdp_md *ctx, struct packet *p, void *data_end)
{
	struct icmp6_err e;
	if (icmp6_inner(p, data_end, &e) < 0)
		return -1;
	struct conn_key6 k;
	icmp6_flow_key(&e, &k);
	struct nat_reply *nr = reply_lookup6(&k);
	if (!nr || !to_vip(&nr->vip, AF_INET6))
		return -1;
	struct nat_reply n = *nr;
	if (icmp6_rewrite(p, data_end, &e, 0, n.vip.v6, n.vport) < 0)
		return -1;
	__u32 oif;
	return forward_routed6(ctx, p, data_end, &oif);
}

/* An ICMPv6 error about a FULLNAT flow's packet to its real (the quote:
 * laddr:lport -> real:rport), from the real or from a router on the way
 * (Packet Too Big): back to the client about VIP:vport, from the VIP. */
static __always_inline int icmp6_from_fnat(struct xdp_md *ctx, struct packet *p, void *data_end)
{
	struct icmp6_err e;
	if (icmp6_inner(p, data_end, &e) < 0)
		return -1;
	struct conn_key6 k;
	icmp6_flow_key(&e, &k);
	struct fnat_port *fp = bpf_map_lookup_elem(&fnat_ports6, &k);
	if (fp && fp->nr.family == AF_INET) {
		/* NAT46's, of an IPv4 VIP: ICMP to the client (bpf/nat64.h),
		 * the flow's entry in fnat_scratch. */
		__u32 zero = 0;
		struct fnat_port *s = bpf_map_lookup_elem(&fnat_scratch, &zero);
		if (!s || !to_vip(&fp->nr.vip, AF_INET))
			return -1;
		*s = *fp;
		int v = fnat46_icmp_client(ctx);
		return xdp_verdict(v == XLB_XLAT_ROUTE ? xlat4_route(ctx) : v);
	}
	if (!fp || !to_vip(&fp->nr.vip, AF_INET6))
		return -1;
	if (icmp6_rewrite(p, data_end, &e, 1, fp->client.v6, fp->cport) < 0 ||
	    icmp6_rewrite(p, data_end, &e, 0, fp->nr.vip.v6, fp->nr.vport) < 0)
		return -1;
	__u32 oif;
	return forward_routed6(ctx, p, data_end, &oif);
}

#endif /* XLB_ICMP6_H */
