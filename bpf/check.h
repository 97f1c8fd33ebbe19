/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Health checks through the data path (check_via_vip). keepalived's checkers
 * connect to the real's own address: a DR real that lost the VIP on lo (a
 * TUN real its tunnel device) passes them and black-holes every client.
 * xlb's checkers connect to the real's address too, with a socket mark
 * naming a check_target; xlb_tc_check, at TC egress of the director's
 * interfaces, sends such a packet to the VIP instead, as a client's packet
 * reaches that real (DR: same MAC, destination the VIP; TUN: and wrapped
 * as forward_tun wraps), and records the connection. The real answers from
 * the VIP; xlb_xdp gives the answer back the real's address (check_reply),
 * so that the checker's socket, connected to the real, takes it. A real
 * that does not hold the VIP (or has no tunnel) does not answer: its check
 * fails, as its clients would. */
#ifndef XLB_CHECK_H
#define XLB_CHECK_H

#include <stddef.h>
#include "xlb_maps.h"
#include "parse.h"
#include "forward.h"
#include "tunnel.h"

#define XLB_TC_NEXT -1 /* TC_ACT_UNSPEC, also TCX_NEXT */
#define XLB_TC_SHOT 2  /* TC_ACT_SHOT */

#define CHK_IP_OFF ETH_HLEN
#define CHK_L4_OFF (ETH_HLEN + sizeof(struct iphdr))

/* Wraps the check's packet (already to the VIP) for its TUN real, as
 * forward_tun wraps a client's; the outer source is the packet's own (the
 * director's address toward the real). A packet that cannot be wrapped is
 * dropped: sent bare, it would reach the real's tunnel VIP without the
 * tunnel and pass a check its clients fail. */
static __always_inline int check_encap(struct __sk_buff *skb, const struct check_target *t, const struct iphdr *in)
{
	struct tun_outer o;
	tun_fill(&o, t->tun_type, t->tun_port, XLB_GUE_SPORT_MIN, in->saddr, t->real.v4, in);
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;
	if (t->tun_type == XLB_TUN_GUE)
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
	else if (t->tun_type == XLB_TUN_GRE)
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_GRE;
	if (bpf_skb_adjust_room(skb, tun_hlen(t->tun_type), BPF_ADJ_ROOM_MAC, flags))
		return XLB_TC_SHOT;
	int err;
	if (t->tun_type == XLB_TUN_GUE)
		err = bpf_skb_store_bytes(skb, CHK_IP_OFF, &o, sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct guehdr), 0);
	else if (t->tun_type == XLB_TUN_GRE)
		err = bpf_skb_store_bytes(skb, CHK_IP_OFF, &o, sizeof(struct iphdr) + sizeof(struct grehdr), 0);
	else
		err = bpf_skb_store_bytes(skb, CHK_IP_OFF, &o, sizeof(struct iphdr), 0);
	return err ? XLB_TC_SHOT : XLB_TC_NEXT;
}

#define CHK_L4_OFF6 (ETH_HLEN + sizeof(struct ipv6hdr))

/* check_encap for IPv6 (forward_tun6's headers): the outer source is the
 * packet's own. */
static __always_inline int check_encap6(struct __sk_buff *skb, const struct check_target *t, const struct ipv6hdr *in)
{
	struct {
		struct ipv6hdr ip6;
		union {
			struct {
				struct udphdr udp;
				struct guehdr gue;
			} gue;
			struct grehdr gre;
		};
	} o;
	__builtin_memset(&o, 0, sizeof(o));
	__u32 hlen = tun6_hlen(t->tun_type);
	__be32 vtc = (*(__be32 *)in & bpf_htonl(0x0ff00000)) | bpf_htonl(0x60000000);
	tun6_write(&o.ip6, t->tun_type, t->tun_port, XLB_GUE_SPORT_MIN, in->saddr.in6_u.u6_addr32, t->real.v6, vtc,
		   in->hop_limit, bpf_ntohs(in->payload_len) + sizeof(struct ipv6hdr), IPPROTO_IPV6);
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
	if (t->tun_type == XLB_TUN_GUE)
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
	else if (t->tun_type == XLB_TUN_GRE)
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_GRE;
	if (bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_MAC, flags))
		return XLB_TC_SHOT;
	int err;
	if (t->tun_type == XLB_TUN_GUE)
		err = bpf_skb_store_bytes(skb, CHK_IP_OFF, &o, sizeof(struct ipv6hdr) + sizeof(struct udphdr) + sizeof(struct guehdr), 0);
	else if (t->tun_type == XLB_TUN_GRE)
		err = bpf_skb_store_bytes(skb, CHK_IP_OFF, &o, sizeof(struct ipv6hdr) + sizeof(struct grehdr), 0);
	else
		err = bpf_skb_store_bytes(skb, CHK_IP_OFF, &o, sizeof(struct ipv6hdr), 0);
	return err ? XLB_TC_SHOT : XLB_TC_NEXT;
}

/* xlb_tc_check for an IPv6 check (its packet to the real's IPv6 address,
 * no extension headers): to the VIP, its L4 checksum updated for the
 * address (a 16-byte difference, summed by bpf_csum_diff). */
static __always_inline int check6(struct __sk_buff *skb, const struct check_target *t)
{
	if (bpf_skb_pull_data(skb, CHK_L4_OFF6 + 8))
		return XLB_TC_NEXT;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) + 8 > data_end)
		return XLB_TC_NEXT;
	const __be32 *dst = ip6->daddr.in6_u.u6_addr32;
	if (dst[0] != t->real.v6[0] || dst[1] != t->real.v6[1] || dst[2] != t->real.v6[2] || dst[3] != t->real.v6[3] ||
	    (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP))
		return XLB_TC_NEXT;
	struct ipv6hdr in = *ip6;
	__be16 *ports = (void *)(ip6 + 1);
	struct conn_key6 rk = { .sport = ports[1], .dport = ports[0], .proto = ip6->nexthdr };
	__builtin_memcpy(rk.src, t->vip.v6, 16);
	__builtin_memcpy(rk.dst, &ip6->saddr, 16);
	union xlb_addr real = t->real;
	bpf_map_update_elem(&check_flows6, &rk, &real, BPF_ANY);
	__be32 vip[4];
	__builtin_memcpy(vip, t->vip.v6, 16);
	__s64 d = bpf_csum_diff(real.v6, 16, vip, 16, 0);
	if (d < 0)
		return XLB_TC_SHOT;
	__u32 l4sum = CHK_L4_OFF6 + (in.nexthdr == IPPROTO_TCP ? 16 : 6);
	__u64 pseudo = BPF_F_PSEUDO_HDR;
	if (in.nexthdr == IPPROTO_UDP)
		pseudo |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, l4sum, 0, (__u32)d, pseudo) ||
	    bpf_skb_store_bytes(skb, CHK_IP_OFF + offsetof(struct ipv6hdr, daddr), vip, 16, 0))
		return XLB_TC_SHOT;
	if (t->kind != XLB_CHECK_TUN)
		return XLB_TC_NEXT;
	__builtin_memcpy(&in.daddr, vip, 16);
	return check_encap6(skb, t, &in);
}

/* check_reply (in xlb_xdp): a real's answer to a check sent to the VIP
 * gets the real's address back, for the checker's socket. XLB_CONTINUE
 * when it is no such answer. */
static __always_inline int check_reply(struct packet *p, void *data_end, const struct conn_key *rk)
{
	__be32 *real = bpf_map_lookup_elem(&check_flows, rk);
	if (!real)
		return -1;
	if (nat_rewrite(p, data_end, 0, *real, p->sport) < 0)
		return XDP_DROP;
	stat_inc(XLB_STAT_CHECK_REPLY);
	return XDP_PASS;
}

/* check_reply for IPv6 (in xlb_xdp6). */
static __always_inline int check_reply6(struct packet *p, void *data_end, const struct conn_key6 *rk)
{
	union xlb_addr *real = bpf_map_lookup_elem(&check_flows6, rk);
	if (!real)
		return -1;
	if (nat_rewrite6(p, data_end, 0, real->v6, p->sport) < 0)
		return XDP_DROP;
	stat_inc(XLB_STAT_CHECK_REPLY);
	return XDP_PASS;
}

#endif /* XLB_CHECK_H */
