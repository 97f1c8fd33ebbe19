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
	tun_fill(&o, t->tun_type, t->tun_port, XLB_GUE_SPORT_MIN, in->saddr, t->real, in);
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

#endif /* XLB_CHECK_H */
