// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xlb's XDP ingress program.
 *
 * parse -> flow lookup -> (no flow: service lookup, scheduler) -> DR -> stats
 *
 * What happens to each kind of packet (tested in pkg/dataplane):
 *   not IPv4, bad IPv4 header        XDP_PASS (not ours; the kernel decides)
 *   not for a service (VIP, port)    XDP_PASS, untouched
 *   fragment to a VIP                XDP_DROP, stat FRAGMENT (no ports to find the flow)
 *   TCP/UDP header cut short, to VIP XDP_DROP, stat TRUNCATED
 *   other protocol (ICMP...) to VIP  XDP_PASS (as IPVS: not a service)
 *   IPv4 options                     parsed past; forwarded like any packet
 *   TCP without SYN, no flow         XDP_PASS, stat NOT_SYN (IPVS schedules only SYN)
 *   new flow, no available real      XDP_DROP, stat NO_DEST
 *   flow whose real was removed      XDP_DROP, stat DEST_GONE (expire_nodest_conn=0);
 *                                    a SYN reusing its port is scheduled afresh
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb_consts.h"
#include "xlb_structs.h"
#include "xlb_maps.h"
#include "parse.h"
#include "sched.h"
#include "conntrack.h"
#include "forward.h"

_Static_assert((XLB_SCHED_SLOTS & (XLB_SCHED_SLOTS - 1)) == 0, "XLB_SCHED_SLOTS must be a power of two");
_Static_assert(XLB_SCHED_SLOTS >= XLB_HASH_TAB_SIZE, "a scheduler table must hold the sh/dh buckets");

static __always_inline void count(void *map, __u32 idx, __u64 bytes, __u64 new_conn)
{
	struct counters *c = bpf_map_lookup_elem(map, &idx);
	if (c) {
		c->packets++;
		c->bytes += bytes;
		c->conns += new_conn;
	}
}

static __always_inline int to_vip(__be32 addr)
{
	return bpf_map_lookup_elem(&vips, &addr) != 0;
}

SEC("xdp")
int xlb_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct packet p = {};

	switch (parse_packet(data, data_end, &p)) {
	case PARSE_OK:
		break;
	case PARSE_FRAGMENT:
		if (!to_vip(p.dst))
			return XDP_PASS;
		stat_inc(XLB_STAT_FRAGMENT);
		return XDP_DROP;
	case PARSE_TRUNCATED:
		if (!to_vip(p.dst))
			return XDP_PASS;
		stat_inc(XLB_STAT_TRUNCATED);
		return XDP_DROP;
	default:
		return XDP_PASS;
	}

	/* Most traffic that is not for a VIP leaves here, after one array
	 * lookup. */
	__u32 fk = hash_32(bpf_ntohl(p.dst), XLB_VIP_FILTER_BITS);
	__u32 *maybe_vip = bpf_map_lookup_elem(&vip_filter, &fk);
	if (!maybe_vip || !*maybe_vip)
		return XDP_PASS;

	/* Established flows first: one LRU lookup says where to send it. */
	struct conn_key ck;
	conn_key_of(&p, &ck);
	struct conn *c = bpf_map_lookup_elem(&conns, &ck);
	struct real *r;
	__u64 now = 0;
	if (c && !conn_expired(c, (now = xlb_now()))) {
		__u32 real_slot = c->real;
		r = bpf_map_lookup_elem(&reals, &real_slot);
		if (r && r->gen == c->gen && (r->flags & XLB_REAL_F_PRESENT)) {
			conn_touch(c, now);
			count(&real_stats, real_slot, bytes, 0);
			return forward_dr(ctx, p.eth, r);
		}
		/* The flow's real was removed. A SYN starts a new connection
		 * that reuses the port (its old one cannot go on): schedule it
		 * afresh, as IPVS's conn_reuse_mode does for a reused port.
		 * Anything else is dropped silently and the entry left to time
		 * out, as IPVS does by default (expire_nodest_conn=0). */
		if (p.proto != IPPROTO_TCP ||
		    (p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST | TCP_FLAG_ACK)) != TCP_FLAG_SYN) {
			stat_inc(XLB_STAT_DEST_GONE);
			return XDP_DROP;
		}
	}

	struct svc_key sk = { .vip = p.dst, .port = p.dport, .proto = p.proto };
	__u32 *slotp = bpf_map_lookup_elem(&svc_map, &sk);
	if (!slotp)
		return XDP_PASS;
	__u32 svc_slot = *slotp;
	struct svc *s = bpf_map_lookup_elem(&svcs, &svc_slot);
	if (!s || !s->id)
		return XDP_PASS;
	__u32 svc_idx = s->id - 1;

	if (p.proto == IPPROTO_TCP &&
	    (p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST)) != TCP_FLAG_SYN) {
		stat_inc(XLB_STAT_NOT_SYN);
		return XDP_PASS;
	}

	__u32 real_slot = schedule(s, svc_slot, &p);
	r = real_if_available(real_slot);
	if (!r) {
		stat_inc(XLB_STAT_NO_DEST);
		return XDP_DROP;
	}
	conn_create(&ck, real_slot, r->gen, svc_idx, p.proto, now ? now : xlb_now());
	count(&real_stats, real_slot, bytes, 1);
	return forward_dr(ctx, p.eth, r);
}

char _license[] SEC("license") = "Dual BSD/GPL";
