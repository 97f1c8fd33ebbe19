/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* FULLNAT (DPVS's FNAT; IPv4): a client's packet leaves with both ends
 * rewritten, client:cport -> VIP:vport becoming laddr:lport -> real:rport,
 * where laddr is one of the service's local addresses and lport a port
 * this flow alone holds toward that real. The real answers laddr:lport,
 * which is the director's: the reply is found by that key (fnat_ports),
 * given VIP:vport -> client:cport back and routed to the client. A real
 * therefore needs no route back through the director and may sit on any
 * network the director reaches.
 *
 * A port is taken by inserting its reply key with BPF_NOEXIST: two flows
 * (on two CPUs at once too) can never hold the same one. fnat_ports is no
 * LRU, so an entry is never evicted from under its flow; the sweep
 * (sweep_fnat) gives a port back once its flow is gone (expired, replaced
 * by a new connection on its client's ports, or evicted from the flow
 * tables). When every port tried is taken, the new flow is dropped and
 * counted (XLB_STAT_FNAT_NO_PORT), never sent on a port another flow
 * holds. */
#ifndef XLB_FULLNAT_H
#define XLB_FULLNAT_H

#include "xlb_maps.h"
#include "parse.h"
#include "forward.h"

/* Ports given out: 1024-32767, below Linux's ephemeral range
 * (ip_local_port_range 32768-60999), so that the director's own
 * connections from a local address (its health checks of the same real
 * among them) never meet a port a flow holds. */
#define XLB_FNAT_PORT_MIN 1024
#define XLB_FNAT_PORT_SPAN 31744
/* Ports tried for one new flow, each at another random place and local
 * address, before it is dropped. With a fraction f of a real's ports
 * taken, a new flow finds none free with probability f^32: 2e-10 at half
 * the ports in use, 0.08% at 80%, 3.4% at 90% (four tries dropped 6% of
 * new flows at half). A try is one hash insert, in a global function the
 * verifier checks once. */
#define XLB_FNAT_TRIES 32
/* A port whose flow the sweep cannot find is given back only once it is
 * this old: its flow may be a moment from being written. */
#define XLB_FNAT_GRACE_NS 2000000000ULL

/* Takes a local address and port toward real raddr:rport (proto) for a
 * new flow of service svc_idx, whose reply entry the caller has put in
 * this CPU's fnat_scratch (fnat_request). Returns the local address's
 * slot << 16 | the port (network order), or -1 when the service has no
 * local address or every port tried is taken.
 *
 * A global function: the verifier checks it once, not on every path of
 * xlb_xdp that reaches it, and its frame is its own (xlb_xdp's is near
 * the 512 bytes a call chain may have: what it needs is in the scratch
 * map, not on the caller's stack). */
__attribute__((noinline)) int fnat_take(__u32 svc_idx, __be32 raddr, __u32 rport_proto)
{
	__u32 zero = 0;
	struct fnat_port *v = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct laddr_set *sl = bpf_map_lookup_elem(&svc_laddrs, &svc_idx);
	if (!v || !sl)
		return -1;
	__u32 n = sl->n;
	if (n == 0 || n > XLB_FNAT_LADDRS)
		return -1;
	__u32 rnd = bpf_get_prandom_u32();
	struct conn_key rk = { .src = raddr, .sport = (__be16)rport_proto, .proto = rport_proto >> 16 };
	for (__u32 i = 0; i < XLB_FNAT_TRIES; i++) {
		__u32 j = ((rnd >> 16) + i) % n;
		/* j < n <= 16, which the verifier cannot see through %. */
		asm volatile("" : "+r"(j));
		j &= XLB_FNAT_LADDRS - 1;
		__u32 slot = sl->slot[j];
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &slot);
		if (!la || la->family != AF_INET)
			continue;
		rk.dst = la->addr.v4;
		rk.dport = bpf_htons(XLB_FNAT_PORT_MIN + (rnd + i * 7919) % XLB_FNAT_PORT_SPAN);
		v->laddr = slot;
		if (bpf_map_update_elem(&fnat_ports, &rk, v, BPF_NOEXIST) == 0)
			return slot << 16 | rk.dport;
	}
	return -1;
}

/* Fills this CPU's fnat_scratch with the reply entry of a new flow (the
 * packet p), for fnat_take. */
static __always_inline int fnat_request(const struct packet *p, __u64 now)
{
	__u32 zero = 0;
	struct fnat_port *v = bpf_map_lookup_elem(&fnat_scratch, &zero);
	if (!v)
		return -1;
	v->nr.vip.v4 = p->dst.v4;
	v->nr.vip.v6[1] = v->nr.vip.v6[2] = v->nr.vip.v6[3] = 0;
	v->nr.vport = p->dport;
	v->nr.family = AF_INET;
	v->client = p->src.v4;
	v->cport = p->sport;
	v->taken = now;
	return 0;
}

/* A FULLNAT flow's client packet: its source becomes the flow's local
 * address and port (the destination is NAT's, in forward). */
static __always_inline int fnat_source(struct packet *p, void *data_end, __u8 laddr, __be16 lport)
{
	__u32 slot = laddr;
	struct laddr *la = bpf_map_lookup_elem(&laddrs, &slot);
	if (!la)
		return -1;
	return nat_rewrite(p, data_end, 0, la->addr.v4, lport);
}

#endif /* XLB_FULLNAT_H */
