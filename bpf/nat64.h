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
 * requires one: dropped, nat64_udp_no_csum), and ICMP errors, which
 * would need ICMP <-> ICMPv6 (left to the kernel).
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

/* 6 -> 4: the client's packet to the real in real_slot, from local
 * address slot laddr_lport >> 16 and port (__be16)laddr_lport. Returns the
 * verdict. */
__attribute__((noinline)) int nat64_xmit(struct xdp_md *ctx, __u32 real_slot, __u32 laddr_lport)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	struct real *r = bpf_map_lookup_elem(&reals, &real_slot);
	__u32 ls = laddr_lport >> 16;
	struct laddr *la = bpf_map_lookup_elem(&laddrs, &ls);
	if (!r || !la || r->family != AF_INET || la->family != AF_INET || (l2 != 14 && l2 != 18))
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
	__u8 tos = bpf_ntohl(*(__be32 *)ip6) >> 20;
	__u8 ttl = ip6->hop_limit;
	__u16 plen = bpf_ntohs(ip6->payload_len);
	__u8 vlan[4]; /* the tag, if any: its TPID and TCI */
	__builtin_memcpy(vlan, data + 2 * ETH_ALEN, 4);
	/* IPv6's 40 bytes of header become IPv4's 20. */
	if (bpf_xdp_adjust_head(ctx, (int)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) + 4 + sizeof(struct iphdr) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
	struct iphdr *ip;
	if (l2 == sizeof(struct ethhdr)) {
		eth->h_proto = bpf_htons(ETH_P_IP);
		ip = (void *)(eth + 1);
	} else {
		__builtin_memcpy((void *)eth + 2 * ETH_ALEN, vlan, 4);
		*(__be16 *)((void *)(eth + 1) + 2) = bpf_htons(ETH_P_IP);
		ip = (void *)(eth + 1) + 4;
	}
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(plen + sizeof(struct iphdr));
	ip->id = 0;
	ip->frag_off = bpf_htons(IP_DF);
	ip->ttl = ttl;
	ip->protocol = proto;
	ip->saddr = la->addr.v4;
	ip->daddr = r->addr.v4;
	ip->check = 0;
	ip->check = iph_csum(ip);
	if (r->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect_map(&tx_ports, r->tx_port, 0) == XDP_REDIRECT ? XDP_REDIRECT : XDP_ABORTED;
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
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) + 4 + sizeof(struct ipv6hdr) > data_end)
		return XDP_DROP;
	struct ipv6hdr *ip6;
	if (l2 == sizeof(struct ethhdr)) {
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		ip6 = (void *)(eth + 1);
	} else {
		__builtin_memcpy((void *)eth + 2 * ETH_ALEN, vlan, 4);
		*(__be16 *)((void *)(eth + 1) + 2) = bpf_htons(ETH_P_IPV6);
		ip6 = (void *)(eth + 1) + 4;
	}
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	*(__be32 *)ip6 = vtc;
	ip6->payload_len = bpf_htons(plen);
	ip6->nexthdr = proto;
	ip6->hop_limit = hops;
	__builtin_memcpy(&ip6->saddr, f->nr.vip.v6, 16);
	__builtin_memcpy(&ip6->daddr, f->client.v6, 16);
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET6;
	fib->l4_protocol = proto;
	fib->tot_len = plen + sizeof(struct ipv6hdr);
	__builtin_memcpy(fib->ipv6_src, &ip6->saddr, 16);
	__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, 16);
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

#endif /* XLB_NAT64_H */
