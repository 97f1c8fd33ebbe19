/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* FULLNAT (DPVS's FNAT; IPv4, and IPv6 to IPv6 reals): a client's packet leaves with both ends
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

/* fnat_take for an IPv6 real, in slot real_slot (its address read here:
 * a global function takes no pointer to the caller's stack), the ports
 * in fnat_ports6 and the service's IPv6 local addresses. */
__attribute__((noinline)) int fnat_take6(__u32 svc_idx, __u32 real_slot, __u32 rport_proto)
{
	__u32 zero = 0;
	struct fnat_port *v = bpf_map_lookup_elem(&fnat_scratch, &zero);
	struct laddr_set *sl = bpf_map_lookup_elem(&svc_laddrs, &svc_idx);
	struct real *r = bpf_map_lookup_elem(&reals, &real_slot);
	if (!v || !sl || !r)
		return -1;
	__u32 n = sl->n;
	if (n == 0 || n > XLB_FNAT_LADDRS)
		return -1;
	__u32 rnd = bpf_get_prandom_u32();
	struct conn_key6 rk = { .sport = (__be16)rport_proto, .proto = rport_proto >> 16 };
	__builtin_memcpy(rk.src, r->addr.v6, 16);
	for (__u32 i = 0; i < XLB_FNAT_TRIES; i++) {
		__u32 j = ((rnd >> 16) + i) % n;
		asm volatile("" : "+r"(j));
		j &= XLB_FNAT_LADDRS - 1;
		__u32 slot = sl->slot[j];
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &slot);
		if (!la || la->family != AF_INET6)
			continue;
		__builtin_memcpy(rk.dst, la->addr.v6, 16);
		rk.dport = bpf_htons(XLB_FNAT_PORT_MIN + (rnd + i * 7919) % XLB_FNAT_PORT_SPAN);
		v->laddr = slot;
		if (bpf_map_update_elem(&fnat_ports6, &rk, v, BPF_NOEXIST) == 0)
			return slot << 16 | rk.dport;
	}
	return -1;
}

/* Fills this CPU's fnat_scratch with the reply entry of a new IPv6 flow
 * (the packet p), for fnat_take6, or fnat_take for an IPv4 real (NAT64). */
static __always_inline int fnat_request6(const struct packet *p, __u64 now)
{
	__u32 zero = 0;
	struct fnat_port *v = bpf_map_lookup_elem(&fnat_scratch, &zero);
	if (!v)
		return -1;
	__builtin_memcpy(v->nr.vip.v6, p->dst.v6, 16);
	v->nr.vport = p->dport;
	v->nr.family = AF_INET6;
	__builtin_memcpy(v->client.v6, p->src.v6, 16);
	v->cport = p->sport;
	v->taken = now;
	return 0;
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
	v->client.v4 = p->src.v4;
	v->client.v6[1] = v->client.v6[2] = v->client.v6[3] = 0;
	v->cport = p->sport;
	v->taken = now;
	return 0;
}

/* A FULLNAT flow's client packet: its source becomes the flow's local
 * address and port (the destination is NAT's, in forward). */
static __always_inline int fnat_source(struct packet *p, void *data_end, __u8 laddr, __be16 lport, __u8 fam)
{
	__u32 slot = laddr;
	struct laddr *la = bpf_map_lookup_elem(&laddrs, &slot);
	if (!la)
		return -1;
	if (fam == AF_INET6)
		return nat_rewrite6(p, data_end, 0, la->addr.v6, lport);
	return nat_rewrite(p, data_end, 0, la->addr.v4, lport);
}

/* TOA ("TCP option address", DPVS's and Alibaba's LVS FULLNAT's): kind
 * 254, length 8, the client's port and IPv4 address, which the toa kernel
 * module on the real reads from the ACK that completes the handshake
 * (its hook on tcp_v4_syn_recv_sock) and gives back as the peer's
 * address; a real without the module ignores an unknown option. */
#define TCPOPT_TOA 254
#define TCPOLEN_TOA 8

/* A FULLNAT flow's handshake ACK to real r, its source already the local
 * address's: the destination rewritten (as forward does), then the TOA
 * option put after the TCP header's own, and the frame sent to the
 * real's MAC. Only an ACK without payload whose headers leave room gets
 * it (IPv4 without options, TCP options up to 32 bytes): the frame grows
 * by 8 bytes, which a segment of a full MSS would not have. Any other
 * goes as it is. */
static __always_inline int forward_toa(struct xdp_md *ctx, struct packet *p, void *data_end, const struct real *r,
				       __be32 client, __be16 cport)
{
	if (nat_rewrite(p, data_end, 1, r->addr.v4, r->port ? r->port : p->dport) < 0)
		return XDP_DROP;
	struct iphdr *ip = p->ip;
	struct tcphdr *th = p->l4;
	if ((void *)(th + 1) > data_end)
		return XDP_DROP;
	__u32 l2 = (void *)ip - (void *)p->eth;
	__u32 thl = th->doff * 4;
	if (ip->ihl != 5 || (l2 != 14 && l2 != 18) || thl < 20 || thl > 52 || bpf_ntohs(ip->tot_len) != 20 + thl)
		return forward_dr(ctx, p->eth, r);
	__u16 tot = 20 + thl;
	/* The checksums, for what moves: the TCP length in the
	 * pseudo-header, the data offset's word, the option's words (below). */
	__u16 *tsum = (__u16 *)&th->check;
	csum_replace2(tsum, bpf_htons(thl), bpf_htons(thl + TCPOLEN_TOA));
	__u16 *offw = (__u16 *)((void *)th + 12);
	__u16 oldw = *offw;
	th->doff += TCPOLEN_TOA / 4;
	csum_replace2(tsum, oldw, *offw);
	/* The option's four 16-bit words, as they will lie in the packet. */
	__u8 opt[TCPOLEN_TOA] = { TCPOPT_TOA, TCPOLEN_TOA };
	__builtin_memcpy(opt + 2, &cport, 2);
	__builtin_memcpy(opt + 4, &client, 4);
	__u16 w0 = *(__u16 *)opt, w1 = *(__u16 *)(opt + 2), w2 = *(__u16 *)(opt + 4), w3 = *(__u16 *)(opt + 6);
	csum_replace2(tsum, 0, w0);
	csum_replace2(tsum, 0, w1);
	csum_replace2(tsum, 0, w2);
	csum_replace2(tsum, 0, w3);
	csum_replace2((__u16 *)&ip->check, ip->tot_len, bpf_htons(tot + TCPOLEN_TOA));
	ip->tot_len = bpf_htons(tot + TCPOLEN_TOA);
	/* Grow at the head and move the headers forward: the option lands
	 * where the headers ended. Every write is at a constant offset (the
	 * loop is unrolled): 6.1's verifier loses a variable offset's bounds
	 * check between a packet pointer and its writes. */
	__u32 hlen = l2 + tot;
	if (bpf_xdp_adjust_head(ctx, -TCPOLEN_TOA))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
#pragma unroll
	for (__u32 i = 0; i < (18 + 20 + 52 + TCPOLEN_TOA) / 2; i++) {
		__u16 *dst = data + i * 2;
		if (i * 2 >= hlen + TCPOLEN_TOA)
			break;
		if (i * 2 < hlen) {
			__u16 *src = (void *)dst + TCPOLEN_TOA;
			if ((void *)(src + 1) > data_end)
				return XDP_DROP;
			*dst = *src;
			continue;
		}
		if ((void *)(dst + 1) > data_end)
			return XDP_DROP;
		__u32 k = i * 2 - hlen;
		*dst = k == 0 ? w0 : k == 2 ? w1 : k == 4 ? w2 : w3;
	}
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);
	return send_to_real(ctx, r);
}

#endif /* XLB_FULLNAT_H */
