/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* NAT64 by FULLNAT (DPVS's): an IPv6 VIP served by IPv4 reals. A client's
 * IPv6 packet leaves as IPv4 from one of the service's IPv4 local
 * addresses and a port of the flow's own to the real (nat64_xmit); the
 * real's reply to that address and port comes back to the client as IPv6
 * from the VIP (nat46_xmit). The headers are translated as RFC 7915 (and
 * DPVS's mbuf_6to4/mbuf_4to6) do: traffic class <-> TOS, hop limit <->
 * TTL, the IPv4 header with DF set and ID 0, the IPv6 one with flow label
 * 0; the TCP or UDP checksum updated for the pseudo-header's addresses
 * and the ports, which is all that differs between the two families'
 * pseudo-headers. Not translated: an IPv6 packet with extension headers
 * or an IPv4 one with options (dropped and counted as truncated: the
 * translation is a fixed 20 bytes), a UDP reply without a checksum (IPv6
 * requires one: dropped, nat64_udp_no_csum).
 *
 * ICMP errors about a NAT64 flow cross the families too (nat46_icmp,
 * nat64_icmp): type and code as RFC 7915 sections 4.2 and 5.2 map them,
 * the quote made the other family's header of the packet its sender
 * sent, the checksum carried over (see icmpx_scratch), so that path MTU
 * discovery works on either side of the director.
 *
 * Both are global functions: the verifier checks each once, not on every
 * path of xlb_xdp6 and xlb_xdp that reaches it; they take the frame from
 * ctx, and what they need from the flow in arguments or in this CPU's
 * fnat_scratch. */
#ifndef XLB_NAT64_H
#define XLB_NAT64_H

#include "xlb_maps.h"
#include "parse.h"
#include "forward.h"
#include "tunnel.h"

/* nat46_xmit's FIB query: in a map, not on its frame, which would take a
 * call chain from xlb_xdp's past 512 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__uint(value_size, sizeof(struct bpf_fib_lookup)); /* (a type with anonymous unions, which bpf2go cannot write) */
	__uint(max_entries, 1);
} fib_scratch SEC(".maps");

/* The TCP or UDP checksum's place at l4 (proto), or 0: the frame too
 * short, or a UDP datagram without a checksum. */
static __always_inline __u16 *l4_csum(void *l4, void *data_end, __u8 proto)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return 0;
		return (__u16 *)&th->check;
	}
	struct udphdr *uh = l4;
	if ((void *)(uh + 1) > data_end || !uh->check)
		return 0;
	return (__u16 *)&uh->check;
}

/* ICMP <-> ICMPv6 for an error about a NAT64 flow: the headers that change
 * as they were (from: the ICMP header, the quote's IP header, its first 8
 * L4 bytes; 36 bytes for IPv4, 56 for IPv6) and as they become (to), and
 * IPv6's pseudo-header. The new checksum is the old message's sum (0xffff:
 * the message sums to that with its checksum) less from, plus to, plus or
 * less the pseudo-header: one bpf_csum_diff each, over what changed only.
 * A per-CPU map: the callers' frames leave no room for 136 bytes more. */
struct icmpx_scratch {
	__be32 from[14];
	__be32 to[14];
	__be32 pseudo[10];
	/* icmp46's and icmp64's addresses (see there), not in registers:
	 * what is live across their helpers fits in the 96 bytes a callee of
	 * xlb_xdp or xlb_xdp6 may have (6.1's verifier rounds each frame up
	 * to 32 bytes: 392 and 408 count as 416). */
	__be32 addr6[16];
	__be32 addr4[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__uint(value_size, sizeof(struct icmpx_scratch)); /* (no type: bpf2go needs none) */
	__uint(max_entries, 1);
} icmpx_scratch SEC(".maps");

/* TOA for an IPv6 client (DPVS's tcpopt_ip6_addr: kind 254, length 20,
 * the client's port and IPv6 address, which the toa module on the real
 * reads from the ACK that completes the handshake; DPVS sends the same
 * option to an IPv4 real of a NAT64 flow). The caller has checked that the
 * packet is a handshake ACK without payload whose TCP header leaves room
 * (toa6_fits), so the option goes at the frame's end, which grows by 20
 * bytes at its tail: no header moves. The client is in this CPU's
 * fnat_scratch (client, cport). */
#define TCPOLEN_TOA6 20

/* Whether the packet (IPv6, TCP at th, no extension header) can carry
 * the option: no payload, and a TCP header of at most 40 bytes. Its
 * client (the source, not yet rewritten) goes in fnat_scratch f. */
static __always_inline int toa6_fits(struct ipv6hdr *ip6, struct tcphdr *th, struct fnat_port *f)
{
	__u32 thl = th->doff * 4;
	if (ip6->nexthdr != IPPROTO_TCP || bpf_ntohs(ip6->payload_len) != thl || thl < 20 || thl + TCPOLEN_TOA6 > 60)
		return 0;
	__builtin_memcpy(f->client.v6, &ip6->saddr, 16);
	f->cport = th->source;
	return 1;
}

/* The option's bytes, in x->to[0..4], and the TCP checksum's change: its
 * words, the pseudo-header's length (20 more than thl) and the data
 * offset's word (written here, 5 words more). */
static __always_inline int toa6_sum(__u16 *sum, struct tcphdr *th, __u32 thl, struct icmpx_scratch *x,
				    const struct fnat_port *f)
{
	x->to[0] = bpf_htonl(254 << 24 | TCPOLEN_TOA6 << 16 | bpf_ntohs(f->cport));
	__builtin_memcpy(&x->to[1], f->client.v6, 16);
	__s64 d = bpf_csum_diff(0, 0, x->to, TCPOLEN_TOA6, (__u16)~*sum);
	if (d < 0)
		return -1;
	*sum = csum_fold32((__u32)d);
	csum_replace2(sum, bpf_htons(thl), bpf_htons(thl + TCPOLEN_TOA6));
	__u16 *offw = (__u16 *)((void *)th + 12);
	__u16 oldw = *offw;
	th->doff += TCPOLEN_TOA6 / 4;
	csum_replace2(sum, oldw, *offw);
	return 0;
}

/* Puts the option (x->to) at offset end, the frame's new end. */
static __always_inline int toa6_append(struct xdp_md *ctx, __u32 end, const struct icmpx_scratch *x)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* The frame's length, subtracted as the 64-bit pointers it comes
	 * from (clang would narrow it, which the verifier refuses). */
	long len = (long)data_end - (long)data;
	asm volatile("" : "+r"(len));
	if (bpf_xdp_adjust_tail(ctx, (int)(end + TCPOLEN_TOA6 - len)))
		return -1;
	/* A helper's store: 6.1's verifier loses a variable offset's
	 * bounds between a packet pointer's check and its writes. */
	return bpf_xdp_store_bytes(ctx, end, (void *)x->to, TCPOLEN_TOA6) ? -1 : 0;
}

/* The real in real_slot and (*la) the local address in slot
 * laddr_lport >> 16, both of family fam (a FULLNAT flow's ends toward its
 * real), or 0. */
static __always_inline struct real *fnat_ends(__u32 real_slot, __u32 laddr_lport, __u8 fam, struct laddr **la)
{
	struct real *r = bpf_map_lookup_elem(&reals, &real_slot);
	__u32 ls = laddr_lport >> 16;
	*la = bpf_map_lookup_elem(&laddrs, &ls);
	if (!r || !*la || r->family != fam || (*la)->family != fam)
		return 0;
	return r;
}

/* 6 -> 4: the client's packet to the real in real_slot, from local
 * address slot laddr_lport >> 16 and port (__be16)laddr_lport. Returns the
 * verdict. */
__attribute__((noinline)) int nat64_xmit(struct xdp_md *ctx, __u32 real_slot, __u32 laddr_lport)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	struct laddr *la;
	struct real *r = fnat_ends(real_slot, laddr_lport, AF_INET, &la);
	if (!r || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct ipv6hdr *ip6 = data + l2;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	__u8 proto = ip6->nexthdr;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		stat_inc(XLB_STAT_TRUNCATED);
		return XDP_DROP;
	}
	__be16 *ports = (void *)(ip6 + 1);
	__u16 *sum = l4_csum(ports, data_end, proto);
	if (!sum) /* (an IPv6 UDP datagram always has one) */
		return XDP_DROP;
	__be16 lport = (__be16)laddr_lport;
	__be16 rport = r->port ? r->port : ports[1];
	/* The pseudo-header: IPv6's addresses out, IPv4's in; its length
	 * and protocol sum the same in both. Then the ports. */
	__be32 addrs[2] = { la->addr.v4, r->addr.v4 };
	__s64 d = bpf_csum_diff((__be32 *)&ip6->saddr, 32, addrs, 8, (__u16)~*sum);
	if (d < 0)
		return XDP_DROP;
	*sum = csum_fold32((__u32)d);
	csum_replace2(sum, ports[0], lport);
	csum_replace2(sum, ports[1], rport);
	if (proto == IPPROTO_UDP && *sum == 0)
		*sum = 0xffff;
	ports[0] = lport;
	ports[1] = rport;
	__u16 plen = bpf_ntohs(ip6->payload_len);
	__u8 tos = bpf_ntohl(*(__be32 *)ip6) >> 20;
	__u8 ttl = ip6->hop_limit;
	__u8 vlan[4]; /* the tag, if any: its TPID and TCI */
	__builtin_memcpy(vlan, data + 2 * ETH_ALEN, 4);
	/* IPv6's 40 bytes of header become IPv4's 20. */
	if (bpf_xdp_adjust_head(ctx, (int)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = l2_put(data, data_end, l2, vlan, r->dst_mac, r->src_mac, bpf_htons(ETH_P_IP), sizeof(struct iphdr));
	if (!ip)
		return XDP_DROP;
	ip4_write(ip, tos, plen + sizeof(struct iphdr), 0, bpf_htons(IP_DF), ttl, proto, la->addr.v4, r->addr.v4);
	return send_to_real(ctx, r);
}

/* 4 -> 6, NAT46 (the reverse of NAT64: an IPv4 VIP served by IPv6
 * reals): the client's packet to the IPv6 real in real_slot, from IPv6
 * local address slot laddr_lport >> 16 and port (__be16)laddr_lport, as
 * nat46_xmit translates a NAT64 reply (the hop limit the TTL as it came:
 * the director forwards to a real as NAT does, without routing). Returns
 * the verdict, or -1 for a UDP datagram without a checksum, which IPv6
 * requires. The packet grows by 20 bytes: a TCP real's MSS (its link's
 * MTU less IPv6's 60 bytes) keeps the client's segments within it. */
__attribute__((noinline)) int fnat46_xmit(struct xdp_md *ctx, __u32 real_slot, __u32 laddr_lport)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IP));
	struct laddr *la;
	struct real *r = fnat_ends(real_slot, laddr_lport, AF_INET6, &la);
	if (!r || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct iphdr *ip = data + l2;
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	__u8 proto = ip->protocol;
	if (ip->ihl != 5 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) {
		stat_inc(XLB_STAT_TRUNCATED);
		return XDP_DROP;
	}
	__be16 *ports = (void *)(ip + 1);
	__u16 *sum = l4_csum(ports, data_end, proto);
	if (!sum)
		return -1;
	__be16 lport = (__be16)laddr_lport;
	__be16 rport = r->port ? r->port : ports[1];
	/* The pseudo-header: IPv4's addresses out, IPv6's in (two sums:
	 * they are in two entries). Then the ports. */
	__s64 d = bpf_csum_diff((__be32 *)&ip->saddr, 8, la->addr.v6, 16, (__u16)~*sum);
	if (d >= 0)
		d = bpf_csum_diff(0, 0, r->addr.v6, 16, (__u32)d);
	if (d < 0)
		return XDP_DROP;
	*sum = csum_fold32((__u32)d);
	csum_replace2(sum, ports[0], lport);
	csum_replace2(sum, ports[1], rport);
	if (proto == IPPROTO_UDP && *sum == 0)
		*sum = 0xffff;
	ports[0] = lport;
	ports[1] = rport;
	__be32 vtc = bpf_htonl(0x60000000 | ((__u32)ip->tos << 20));
	__u8 hops = ip->ttl;
	__u16 plen = bpf_ntohs(ip->tot_len) - sizeof(struct iphdr);
	__u8 vlan[4];
	__builtin_memcpy(vlan, data + 2 * ETH_ALEN, 4);
	/* IPv4's 20 bytes of header become IPv6's 40. */
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = l2_put(data, data_end, l2, vlan, r->dst_mac, r->src_mac, bpf_htons(ETH_P_IPV6), sizeof(struct ipv6hdr));
	if (!ip6)
		return XDP_DROP;
	*(__be32 *)ip6 = vtc;
	ip6->payload_len = bpf_htons(plen);
	ip6->nexthdr = proto;
	ip6->hop_limit = hops;
	__builtin_memcpy(&ip6->saddr, la->addr.v6, 16);
	__builtin_memcpy(&ip6->daddr, r->addr.v6, 16);
	return send_to_real(ctx, r);
}

/* FULLNAT for IPv6 with TOA: the handshake's ACK from local address slot
 * laddr_lport >> 16 and port (__be16)laddr_lport to the IPv6 real in
 * real_slot, carrying the client's address and port (toa6_stash put them
 * in fnat_scratch) in DPVS's option for IPv6 if opt, as it is if not. The
 * caller sends no packet with an extension header here. Returns the
 * verdict. */
__attribute__((noinline)) int fnat6_toa(struct xdp_md *ctx, __u32 real_slot, __u32 laddr_lport, __u32 opt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct icmpx_scratch *x = bpf_map_lookup_elem(&icmpx_scratch, &zero);
	struct laddr *la;
	struct real *r = fnat_ends(real_slot, laddr_lport, AF_INET6, &la);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	if (!f || !x || !r || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct ipv6hdr *ip6 = data + l2;
	struct tcphdr *th = (void *)(ip6 + 1);
	if ((void *)(th + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
		return XDP_DROP;
	__u16 *sum = (__u16 *)&th->check;
	__u32 thl = th->doff * 4;
	if (opt && toa6_sum(sum, th, thl, x, f) < 0)
		return XDP_DROP;
	/* The addresses, new ones after the option in x->to: one sum. */
	__builtin_memcpy(&x->to[5], la->addr.v6, 16);
	__builtin_memcpy(&x->to[9], r->addr.v6, 16);
	__s64 d = bpf_csum_diff((__be32 *)&ip6->saddr, 32, &x->to[5], 32, (__u16)~*sum);
	if (d < 0)
		return XDP_DROP;
	*sum = csum_fold32((__u32)d);
	__be16 lport = (__be16)laddr_lport;
	__be16 rport = r->port ? r->port : th->dest;
	csum_replace2(sum, th->source, lport);
	csum_replace2(sum, th->dest, rport);
	th->source = lport;
	th->dest = rport;
	__builtin_memcpy(&ip6->saddr, &x->to[5], 32);
	struct ethhdr *eth = data;
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
	if (opt) {
		ip6->payload_len = bpf_htons(thl + TCPOLEN_TOA6);
		if (toa6_append(ctx, l2 + sizeof(struct ipv6hdr) + thl, x) < 0)
			return XDP_DROP;
	}
	return send_to_real(ctx, r);
}

/* Whether an IPv6 client's handshake ACK can carry TOA (toa6_fits), its
 * client then in fnat_scratch. Reads the packet, changes nothing. */
__attribute__((noinline)) int toa6_stash(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	if (!f || (l2 != 14 && l2 != 18))
		return 0;
	struct ipv6hdr *ip6 = data + l2;
	struct tcphdr *th = (void *)(ip6 + 1);
	if ((void *)(th + 1) > data_end)
		return 0;
	return toa6_fits(ip6, th, f);
}

/* NAT64's handshake ACK, translated by nat64_xmit with verdict v: the
 * client's IPv6 address and port (in fnat_scratch, from toa6_stash) go
 * to the IPv4 real in DPVS's option for IPv6, as DPVS sends them. */
__attribute__((noinline)) int nat64_toa(struct xdp_md *ctx, int v)
{
	if (v != XDP_TX && v != XDP_REDIRECT)
		return v;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct icmpx_scratch *x = bpf_map_lookup_elem(&icmpx_scratch, &zero);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IP));
	if (!f || !x || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct iphdr *ip = data + l2;
	struct tcphdr *th = (void *)(ip + 1);
	if ((void *)(th + 1) > data_end)
		return XDP_DROP;
	__u32 thl = th->doff * 4;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_TCP || bpf_ntohs(ip->tot_len) != 20 + thl || thl + TCPOLEN_TOA6 > 60 ||
	    toa6_sum((__u16 *)&th->check, th, thl, x, f) < 0)
		return XDP_DROP;
	csum_replace2((__u16 *)&ip->check, ip->tot_len, bpf_htons(20 + thl + TCPOLEN_TOA6));
	ip->tot_len = bpf_htons(20 + thl + TCPOLEN_TOA6);
	if (toa6_append(ctx, l2 + 20 + thl, x) < 0)
		return XDP_DROP;
	return v;
}

/* The end of a translated packet's way to the client, the FIB asked
 * (fib): to the next hop, or up to the kernel with a note for
 * xlb_tc_neigh when the neighbour is not known. */
static __always_inline int xlat_route(struct xdp_md *ctx, struct ethhdr *eth, struct bpf_fib_lookup *fib)
{
	void *data;
	fib->ifindex = ctx->ingress_ifindex;
	int rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return XDP_PASS;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* As route_to: up, with metadata for xlb_tc_neigh. */
		stat_inc(XLB_STAT_NAT_REPLY_KERNEL);
		__u32 ifindex = fib->ifindex;
		if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xlb_neigh_meta)) < 0)
			return XDP_PASS;
		data = (void *)(long)ctx->data;
		struct xlb_neigh_meta *m = (void *)(long)ctx->data_meta;
		if ((void *)(m + 1) > data)
			return XDP_PASS;
		m->magic = XLB_META_NEIGH;
		m->ifindex = ifindex;
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	if (fib->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib->ifindex, 0);
}

/* xlat_route for a packet nat46_xmit or nat46_icmp made IPv6 (ip6, its
 * payload plen bytes of proto). */
static __always_inline int nat46_route(struct xdp_md *ctx, struct ethhdr *eth, struct ipv6hdr *ip6,
				       struct bpf_fib_lookup *fib, __u8 proto, __u16 plen)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET6;
	fib->l4_protocol = proto;
	fib->tot_len = plen + sizeof(struct ipv6hdr);
	__builtin_memcpy(fib->ipv6_src, &ip6->saddr, 16);
	__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, 16);
	return xlat_route(ctx, eth, fib);
}

/* What icmp46 and icmp64 return when the packet they made is to be
 * routed: the caller then calls xlat6_route or xlat4_route, each a
 * global function of its own, so that no call chain holds a translator's
 * frame and the FIB's at once. */
#define XLB_XLAT_ROUTE 64

/* xlat_route for the IPv6 packet at the head of the frame. */
__attribute__((noinline)) int xlat6_route(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct bpf_fib_lookup *fib = bpf_map_lookup_elem(&fib_scratch, &zero);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	if (!fib || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct ipv6hdr *ip6 = data + l2;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	return nat46_route(ctx, data, ip6, fib, ip6->nexthdr, bpf_ntohs(ip6->payload_len));
}

/* xlat_route for a packet fnat46_reply made IPv4 (ip). */
static __always_inline int nat64_route(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				       struct bpf_fib_lookup *fib)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->tos = ip->tos;
	fib->l4_protocol = ip->protocol;
	fib->tot_len = bpf_ntohs(ip->tot_len);
	fib->ipv4_src = ip->saddr;
	fib->ipv4_dst = ip->daddr;
	return xlat_route(ctx, eth, fib);
}

/* xlat_route for the IPv4 packet at the head of the frame. */
__attribute__((noinline)) int xlat4_route(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct bpf_fib_lookup *fib = bpf_map_lookup_elem(&fib_scratch, &zero);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IP));
	if (!fib || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct iphdr *ip = data + l2;
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	return nat64_route(ctx, data, ip, fib);
}

/* 4 -> 6: an IPv4 real's reply to a NAT64 flow's local address and port,
 * whose fnat_ports entry is in this CPU's fnat_scratch: to the client as
 * IPv6 from the VIP, routed by the FIB (the hop limit decremented, as
 * NAT's replies are). Returns the verdict, or -1 for a UDP reply without
 * a checksum. */
__attribute__((noinline)) int nat46_xmit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct bpf_fib_lookup *fib = bpf_map_lookup_elem(&fib_scratch, &zero);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IP));
	if (!f || !fib || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct iphdr *ip = data + l2;
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	__u8 proto = ip->protocol;
	if (ip->ihl != 5 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) {
		stat_inc(XLB_STAT_TRUNCATED);
		return XDP_DROP;
	}
	if (ip->ttl <= 1)
		return XDP_PASS; /* the kernel answers it */
	__be16 *ports = (void *)(ip + 1);
	__u16 *sum = l4_csum(ports, data_end, proto);
	if (!sum)
		return -1;
	/* IPv4's addresses out, the VIP's and the client's in (two sums:
	 * they are not side by side in the entry). */
	__s64 d = bpf_csum_diff((__be32 *)&ip->saddr, 8, f->nr.vip.v6, 16, (__u16)~*sum);
	if (d >= 0)
		d = bpf_csum_diff(0, 0, f->client.v6, 16, (__u32)d);
	if (d < 0)
		return XDP_DROP;
	*sum = csum_fold32((__u32)d);
	csum_replace2(sum, ports[0], f->nr.vport);
	csum_replace2(sum, ports[1], f->cport);
	if (proto == IPPROTO_UDP && *sum == 0)
		*sum = 0xffff;
	ports[0] = f->nr.vport;
	ports[1] = f->cport;
	__be32 vtc = bpf_htonl(0x60000000 | ((__u32)ip->tos << 20));
	__u8 hops = ip->ttl - 1;
	__u16 plen = bpf_ntohs(ip->tot_len) - sizeof(struct iphdr);
	__u8 vlan[4];
	__builtin_memcpy(vlan, data + 2 * ETH_ALEN, 4);
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = l2_put(data, data_end, l2, vlan, 0, 0, bpf_htons(ETH_P_IPV6), sizeof(struct ipv6hdr));
	if (!ip6)
		return XDP_DROP;
	*(__be32 *)ip6 = vtc;
	ip6->payload_len = bpf_htons(plen);
	ip6->nexthdr = proto;
	ip6->hop_limit = hops;
	__builtin_memcpy(&ip6->saddr, f->nr.vip.v6, 16);
	__builtin_memcpy(&ip6->daddr, f->client.v6, 16);
	return nat46_route(ctx, data, ip6, fib, proto, plen);
}

/* 6 -> 4, NAT46's reply: an IPv6 real's reply to a NAT46 flow's local
 * address and port, whose fnat_ports6 entry is in this CPU's
 * fnat_scratch: to the client as IPv4 from the VIP, routed by the FIB
 * (the TTL the hop limit less one, as NAT's replies are), as nat64_xmit
 * translates a NAT64 client's packet (DF set, ID 0). The caller has
 * found no extension header. Returns the verdict. */
__attribute__((noinline)) int fnat46_reply_xmit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct bpf_fib_lookup *fib = bpf_map_lookup_elem(&fib_scratch, &zero);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	if (!f || !fib || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct ipv6hdr *ip6 = data + l2;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	__u8 proto = ip6->nexthdr;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		stat_inc(XLB_STAT_TRUNCATED);
		return XDP_DROP;
	}
	if (ip6->hop_limit <= 1)
		return XDP_PASS; /* the kernel answers it */
	__be16 *ports = (void *)(ip6 + 1);
	__u16 *sum = l4_csum(ports, data_end, proto);
	if (!sum)
		return XDP_DROP;
	__be32 addrs[2] = { f->nr.vip.v4, f->client.v4 };
	__s64 d = bpf_csum_diff((__be32 *)&ip6->saddr, 32, addrs, 8, (__u16)~*sum);
	if (d < 0)
		return XDP_DROP;
	*sum = csum_fold32((__u32)d);
	csum_replace2(sum, ports[0], f->nr.vport);
	csum_replace2(sum, ports[1], f->cport);
	if (proto == IPPROTO_UDP && *sum == 0)
		*sum = 0xffff;
	ports[0] = f->nr.vport;
	ports[1] = f->cport;
	__u16 plen = bpf_ntohs(ip6->payload_len);
	__u8 tos = bpf_ntohl(*(__be32 *)ip6) >> 20;
	__u8 ttl = ip6->hop_limit - 1;
	__u8 vlan[4];
	__builtin_memcpy(vlan, data + 2 * ETH_ALEN, 4);
	if (bpf_xdp_adjust_head(ctx, (int)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = l2_put(data, data_end, l2, vlan, 0, 0, bpf_htons(ETH_P_IP), sizeof(struct iphdr));
	if (!ip)
		return XDP_DROP;
	ip4_write(ip, tos, plen + sizeof(struct iphdr), 0, bpf_htons(IP_DF), ttl, proto, f->nr.vip.v4, f->client.v4);
	return nat64_route(ctx, data, ip, fib);
}

/* RFC 7915 4.2: an ICMP error's type and code as ICMPv6's (type << 8 |
 * code) and the word after the checksum (*word: Packet Too Big's MTU, 20
 * more than IPv4's for IPv6's longer header, and at least 1280, which an
 * IPv6 host takes anyway, or RFC 1191's zero; Parameter Problem's pointer,
 * 6: the next header); -1 for an error it does not translate. */
static __always_inline int icmp_4to6(__u8 type, __u8 code, __u16 mtu4, __u32 *word)
{
	*word = 0;
	if (type == ICMP_TIME_EXCEEDED)
		return code <= 1 ? (3 << 8 | code) : -1;
	if (type != ICMP_DEST_UNREACH)
		return -1;
	switch (code) {
	case ICMP_PROT_UNREACH:
		*word = 6;
		return 4 << 8 | 1; /* parameter problem: unrecognised next header */
	case ICMP_PORT_UNREACH:
		return 1 << 8 | 4;
	case ICMP_FRAG_NEEDED:
		*word = mtu4 + 20 < 1280 ? 1280 : mtu4 + 20;
		return 2 << 8; /* packet too big */
	case ICMP_NET_ANO:
	case ICMP_HOST_ANO:
	case ICMP_PKT_FILTERED:
	case ICMP_PREC_CUTOFF:
		return 1 << 8 | 1; /* administratively prohibited */
	case ICMP_PREC_VIOLATION: /* (14: RFC 7915 drops it) */
		return -1;
	}
	return code <= ICMP_HOST_UNR_TOS ? (1 << 8 | 0) : -1; /* no route */
}

/* RFC 7915 5.2: an ICMPv6 error's type and code as ICMP's, and the word
 * after the checksum (fragmentation needed's next-hop MTU, 20 less than
 * IPv6's, in its low 16 bits); -1 for one it does not translate
 * (Parameter Problem other than an unrecognised next header: its pointer
 * would need translating field by field). */
static __always_inline int icmp_6to4(__u8 type, __u8 code, __u32 mtu6, __u32 *word)
{
	*word = 0;
	switch (type) {
	case 1: /* destination unreachable */
		if (code == 1)
			return ICMP_DEST_UNREACH << 8 | ICMP_HOST_ANO;
		if (code == 4)
			return ICMP_DEST_UNREACH << 8 | ICMP_PORT_UNREACH;
		return code <= 3 ? (ICMP_DEST_UNREACH << 8 | ICMP_HOST_UNREACH) : -1;
	case 2: /* packet too big */
		if (mtu6 < 68 + 20)
			return -1;
		*word = mtu6 - 20 > 0xffff ? 0xffff : mtu6 - 20;
		return ICMP_DEST_UNREACH << 8 | ICMP_FRAG_NEEDED;
	case 3: /* time exceeded */
		return code <= 1 ? (ICMP_TIME_EXCEEDED << 8 | code) : -1;
	case 4: /* parameter problem */
		return code == 1 ? (ICMP_DEST_UNREACH << 8 | ICMP_PROT_UNREACH) : -1;
	}
	return -1;
}

/* 4 -> 6: an ICMP error about a packet that crossed the families, made
 * ICMPv6 from src to dst about the packet its receiver sent (the quote:
 * qsrc:qsport -> qdst:qdport; qsport 0 keeps the quote's own: a real
 * without a port of its own answers from the VIP's); the addresses in
 * x->addr6 (src, dst, qsrc, qdst: four words each). To real r
 * (its MACs; the TTL kept, as packets to reals are), or, r 0, to be
 * routed (the TTL less the director's hop; XLB_XLAT_ROUTE). The quote's L4 checksum is
 * left as it was (no receiver checks a quote's; bpf/icmp6.h does the
 * same). An error the RFC does not translate, or whose ICMPv6 form would
 * pass IPv6's minimum MTU (1280; an IPv4 router quotes at most 576
 * bytes), is dropped and counted. */
static __always_inline int icmp46(struct xdp_md *ctx, struct icmpx_scratch *x, __be16 qsport, __be16 qdport,
				  const struct real *r)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IP));
	if (l2 != 14 && l2 != 18)
		return XDP_DROP;
	struct iphdr *ip = data + l2;
	if ((void *)ip + 20 + 36 > data_end)
		return XDP_DROP;
	__u8 *icmp = (void *)(ip + 1);
	struct iphdr *in = (void *)(icmp + 8);
	__u16 len = bpf_ntohs(ip->tot_len), qlen = bpf_ntohs(in->tot_len);
	__u32 word;
	int tc = icmp_4to6(icmp[0], icmp[1], bpf_ntohs(*(__be16 *)(icmp + 6)), &word);
	/* (the ICMPv6 message is the ICMP one and 20 more bytes of quoted
	 * header: as long as the IPv4 datagram was) */
	if (tc < 0 || ip->ihl != 5 || in->ihl != 5 || len < 20 + 36 || len + 40 > 1280 || qlen < 20) {
		stat_inc(XLB_STAT_NAT64_ICMP_DROP);
		return XDP_DROP;
	}
	if (!r && ip->ttl <= 1)
		return XDP_PASS;
#pragma unroll
	for (int i = 0; i < 9; i++)
		x->from[i] = ((__be32 *)icmp)[i];
	x->to[0] = bpf_htonl((__u32)tc << 16);
	x->to[1] = bpf_htonl(word);
	struct ipv6hdr *q = (void *)&x->to[2];
	*(__be32 *)q = bpf_htonl(0x60000000 | (__u32)in->tos << 20);
	q->payload_len = bpf_htons(qlen - 20);
	q->nexthdr = in->protocol;
	q->hop_limit = in->ttl;
	__builtin_memcpy(&q->saddr, &x->addr6[8], 32);
	__be16 *ports = (void *)&x->to[12];
	ports[0] = qsport ? qsport : *(__be16 *)(in + 1);
	ports[1] = qdport;
	x->to[13] = x->from[8];
	__builtin_memcpy(x->pseudo, x->addr6, 32);
	x->pseudo[8] = bpf_htonl(len);
	x->pseudo[9] = bpf_htonl(IPPROTO_ICMPV6);
	__s64 d = bpf_csum_diff(x->from, 36, x->to, 56, 0xffff);
	if (d >= 0)
		d = bpf_csum_diff(0, 0, x->pseudo, 40, (__u32)d);
	if (d < 0)
		return XDP_DROP;
	((__u16 *)x->to)[1] = csum_fold32((__u32)d);
	/* The outer header and the tag, in the scratch (pseudo and from,
	 * summed above, are free), as icmp64 does. */
	struct ipv6hdr *o = (void *)x->pseudo;
	*(__be32 *)o = bpf_htonl(0x60000000 | ((__u32)ip->tos << 20));
	o->payload_len = bpf_htons(len);
	o->nexthdr = IPPROTO_ICMPV6;
	o->hop_limit = r ? ip->ttl : ip->ttl - 1;
	__builtin_memcpy(&o->saddr, x->addr6, 32);
	__builtin_memcpy(x->from, data + 2 * ETH_ALEN, 4);
	/* 40 more bytes: IPv6's two headers for IPv4's. */
	if (bpf_xdp_adjust_head(ctx, -2 * (int)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = l2_put(data, data_end, l2, (void *)x->from, r ? r->dst_mac : 0, r ? r->src_mac : 0,
				     bpf_htons(ETH_P_IPV6), sizeof(struct ipv6hdr) + 56);
	if (!ip6)
		return XDP_DROP;
	__builtin_memcpy(ip6, o, sizeof(struct ipv6hdr));
	__builtin_memcpy((void *)(ip6 + 1), x->to, 56);
	if (r)
		return send_to_real(ctx, r);
	return XLB_XLAT_ROUTE;
}

/* 6 -> 4: icmp46's reverse: an ICMPv6 error made ICMP from src to dst
 * about qsrc:qsport -> qdst:qdport (qsport 0 keeps the quote's own), the
 * quote's IPv4 header made whole (ID 0, DF, its checksum); to real r, or,
 * r 0, to be routed (XLB_XLAT_ROUTE); the addresses in x->addr4 (src,
 * dst, qsrc, qdst). Dropped and counted: an error RFC 7915 does not translate. */
static __always_inline int icmp64(struct xdp_md *ctx, struct icmpx_scratch *x, __be16 qsport, __be16 qdport,
				  const struct real *r)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	if (l2 != 14 && l2 != 18)
		return XDP_DROP;
	struct ipv6hdr *ip6 = data + l2;
	if ((void *)(ip6 + 1) + 56 > data_end)
		return XDP_DROP;
	__u8 *icmp = (void *)(ip6 + 1);
	struct ipv6hdr *in = (void *)(icmp + 8);
	__u16 len = bpf_ntohs(ip6->payload_len), qlen = bpf_ntohs(in->payload_len);
	__u32 word;
	int tc = icmp_6to4(icmp[0], icmp[1], bpf_ntohl(*(__be32 *)(icmp + 4)), &word);
	if (tc < 0 || ip6->nexthdr != IPPROTO_ICMPV6 || len < 56 || qlen > 0xffff - 20) {
		stat_inc(XLB_STAT_NAT64_ICMP_DROP);
		return XDP_DROP;
	}
	if (!r && ip6->hop_limit <= 1)
		return XDP_PASS;
	__be16 *qports = (void *)(in + 1);
#pragma unroll
	for (int i = 0; i < 14; i++)
		x->from[i] = ((__be32 *)icmp)[i];
	x->pseudo[0] = bpf_htonl(len);
	x->pseudo[1] = bpf_htonl(IPPROTO_ICMPV6);
	x->to[0] = bpf_htonl((__u32)tc << 16);
	x->to[1] = bpf_htonl(word);
	struct iphdr *q = (void *)&x->to[2];
	ip4_write(q, bpf_ntohl(*(__be32 *)in) >> 20, qlen + 20, 0, bpf_htons(IP_DF), in->hop_limit, in->nexthdr, x->addr4[2],
		  x->addr4[3]);
	__be16 *ports = (void *)&x->to[7];
	ports[0] = qsport ? qsport : qports[0];
	ports[1] = qdport;
	x->to[8] = x->from[13];
	/* ICMP has no pseudo-header: IPv6's comes out with the words. */
	__s64 d = bpf_csum_diff(x->from, 56, x->to, 36, 0xffff);
	if (d >= 0)
		d = bpf_csum_diff((__be32 *)&ip6->saddr, 32, 0, 0, (__u32)d);
	if (d >= 0)
		d = bpf_csum_diff(x->pseudo, 8, 0, 0, (__u32)d);
	if (d < 0)
		return XDP_DROP;
	((__u16 *)x->to)[1] = csum_fold32((__u32)d);
	/* The outer header and the tag, in the scratch (pseudo, summed
	 * above, is free): what is live across the helpers below fits in
	 * the 96 bytes a callee of xlb_xdp6 may have. */
	struct iphdr *o = (void *)&x->pseudo[0];
	ip4_write(o, bpf_ntohl(*(__be32 *)ip6) >> 20, len + sizeof(struct iphdr) - 20, 0, 0, r ? ip6->hop_limit : ip6->hop_limit - 1,
		  IPPROTO_ICMP, x->addr4[0], x->addr4[1]);
	__builtin_memcpy(&x->pseudo[5], data + 2 * ETH_ALEN, 4);
	/* 40 bytes fewer: IPv4's two headers for IPv6's. */
	if (bpf_xdp_adjust_head(ctx, 2 * (int)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = l2_put(data, data_end, l2, (void *)&x->pseudo[5], r ? r->dst_mac : 0, r ? r->src_mac : 0,
				  bpf_htons(ETH_P_IP), sizeof(struct iphdr) + 36);
	if (!ip)
		return XDP_DROP;
	__builtin_memcpy(ip, o, sizeof(struct iphdr));
	__builtin_memcpy((void *)(ip + 1), x->to, 36);
	if (r)
		return send_to_real(ctx, r);
	return XLB_XLAT_ROUTE;
}

/* NAT64: an ICMP error to a flow's IPv4 local address about the
 * director's packet to the real (laddr:lport -> real:rport), from the
 * real or a router on the way, the flow's fnat_ports entry in this CPU's
 * fnat_scratch: to the client as ICMPv6 from the VIP, about the client's
 * packet as it sent it (client:cport -> VIP:vport); XLB_XLAT_ROUTE when
 * made, for the caller to route (xlat6_route). */
__attribute__((noinline)) int nat46_icmp(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct icmpx_scratch *x = bpf_map_lookup_elem(&icmpx_scratch, &zero);
	if (!f || !x)
		return XDP_DROP;
	__builtin_memcpy(&x->addr6[0], f->nr.vip.v6, 16);
	__builtin_memcpy(&x->addr6[4], f->client.v6, 16);
	__builtin_memcpy(&x->addr6[8], f->client.v6, 16);
	__builtin_memcpy(&x->addr6[12], f->nr.vip.v6, 16);
	return icmp46(ctx, x, f->cport, f->nr.vport, 0);
}

/* NAT46: an ICMP error to the (IPv4) VIP about its packet to a flow's
 * client (VIP:vport -> client:cport), from the client or a router on its
 * side: to the flow's IPv6 real in real_slot as ICMPv6 from IPv6 local
 * address slot laddr_lport >> 16, about the real's packet as the real
 * sent it (real:rport -> laddr:lport, port (__be16)laddr_lport). */
__attribute__((noinline)) int fnat46_icmp_real(struct xdp_md *ctx, __u32 real_slot, __u32 laddr_lport)
{
	__u32 zero = 0;
	struct icmpx_scratch *x = bpf_map_lookup_elem(&icmpx_scratch, &zero);
	struct laddr *la;
	struct real *r = fnat_ends(real_slot, laddr_lport, AF_INET6, &la);
	if (!x || !r)
		return XDP_DROP;
	__builtin_memcpy(&x->addr6[0], la->addr.v6, 16);
	__builtin_memcpy(&x->addr6[4], r->addr.v6, 16);
	__builtin_memcpy(&x->addr6[8], r->addr.v6, 16);
	__builtin_memcpy(&x->addr6[12], la->addr.v6, 16);
	return icmp46(ctx, x, r->port, (__be16)laddr_lport, r);
}

/* NAT64: an ICMPv6 error to the VIP about its packet to a flow's client
 * (VIP:vport -> client:cport), from the client or a router on its side:
 * to the flow's IPv4 real in real_slot as ICMP from local address slot
 * laddr_lport >> 16, about the real's packet as the real sent it
 * (real:rport -> laddr:lport, port (__be16)laddr_lport). */
__attribute__((noinline)) int nat64_icmp(struct xdp_md *ctx, __u32 real_slot, __u32 laddr_lport)
{
	__u32 zero = 0;
	struct icmpx_scratch *x = bpf_map_lookup_elem(&icmpx_scratch, &zero);
	struct laddr *la;
	struct real *r = fnat_ends(real_slot, laddr_lport, AF_INET, &la);
	if (!x || !r)
		return XDP_DROP;
	x->addr4[0] = x->addr4[3] = la->addr.v4;
	x->addr4[1] = x->addr4[2] = r->addr.v4;
	return icmp64(ctx, x, r->port, (__be16)laddr_lport, r);
}

/* NAT46: an ICMPv6 error to a flow's IPv6 local address about the
 * director's packet to the real (laddr:lport -> real:rport), from the
 * real or a router on the way, the flow's fnat_ports6 entry in this
 * CPU's fnat_scratch: to the client as ICMP from the VIP, about the
 * client's packet as it sent it (client:cport -> VIP:vport);
 * XLB_XLAT_ROUTE when made, for the caller to route (xlat4_route). */
__attribute__((noinline)) int fnat46_icmp_client(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct icmpx_scratch *x = bpf_map_lookup_elem(&icmpx_scratch, &zero);
	if (!f || !x)
		return XDP_DROP;
	x->addr4[0] = x->addr4[3] = f->nr.vip.v4;
	x->addr4[1] = x->addr4[2] = f->client.v4;
	return icmp64(ctx, x, f->cport, f->nr.vport, 0);
}

#endif /* XLB_NAT64_H */
