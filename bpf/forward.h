/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding methods. DR: the IP packet is left untouched; the frame is
 * re-addressed to the real's MAC from the egress interface's MAC. */
#ifndef XLB_FORWARD_H
#define XLB_FORWARD_H

#include "xlb_maps.h"
#include "parse.h"

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		*v += 1;
}

static __always_inline int forward_dr(struct xdp_md *ctx, struct ethhdr *eth, const struct real *r)
{
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
	if (r->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect_map(&tx_ports, r->tx_port, 0);
}

#endif /* XLB_FORWARD_H */
