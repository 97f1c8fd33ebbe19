/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The flow table: a flow stays on the real it was first given. */
#ifndef XLB_CONNTRACK_H
#define XLB_CONNTRACK_H

#include "xlb_maps.h"
#include "parse.h"

/* Set by the loader: the kernel has bpf_ktime_get_coarse_ns (5.11+). The
 * verifier prunes the branch not taken, so older kernels never see the
 * helper. A flow's times need no more than jiffy resolution, and the fine
 * clock costs tens of ns per packet under a paravirtual clocksource. */
volatile const __u8 have_coarse_clock = 0;

static __always_inline __u64 xlb_now(void)
{
	if (have_coarse_clock)
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns();
}

static __always_inline void conn_key_of(const struct packet *p, struct conn_key *k)
{
	k->src = p->src;
	k->dst = p->dst;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

static __always_inline int conn_expired(const struct conn *c, __u64 now)
{
	return now - c->last_seen > (__u64)c->timeout_s * 1000000000ULL;
}

/* Refresh last_seen only when it moved by a coarse step: most packets of a
 * busy flow then write nothing to the shared entry. */
static __always_inline void conn_touch(struct conn *c, __u64 now)
{
	if (now - c->last_seen > XLB_LAST_SEEN_STEP_NS)
		c->last_seen = now;
}

static __always_inline int conn_create(const struct conn_key *k, __u32 real_slot, __u32 gen,
				       __u32 svc_idx, __u8 proto, __u64 now)
{
	struct conn c = {
		.real = real_slot,
		.gen = gen,
		.last_seen = now,
		.svc = svc_idx,
		.timeout_s = proto == IPPROTO_UDP ? XLB_UDP_TIMEOUT_S : XLB_TCP_TIMEOUT_S,
	};
	return bpf_map_update_elem(&conns, k, &c, BPF_ANY);
}

#endif /* XLB_CONNTRACK_H */
