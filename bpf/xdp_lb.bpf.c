// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xlb's XDP ingress program.
 *
 * A chain of handlers (xlb_xdp, at the end): parse -> unparsed (no ports)
 * -> maybe_vip -> (to a VIP) the flow's hint -> nat_reply (NAT and FULLNAT
 * replies: their hint, then their tables) -> established (flow lookup) ->
 * new_flow (service, persistence, scheduler) -> forward (DR, NAT,
 * FULLNAT, TUN) -> stats.
 * IPv6 goes on in xlb_xdp6, tail-called: each family has its own copy of
 * the path from maybe_vip on (by_flow), its own flow tables, and its own
 * program for the verifier to walk.
 *
 * A new flow is half-open (its own table) until its next client packet
 * proves it (a TCP flow out of SYN_RECV/SYNACK, a UDP flow's second
 * packet): then it moves to the flow table, which a flood of first
 * packets therefore never reaches. IPVS's defences (drop_packet,
 * secure_tcp, drop_entry) act as the control plane sets them.
 *
 * What happens to each kind of packet (tested in pkg/dataplane):
 *   not IP, bad IPv4/IPv6 header     XDP_PASS (not ours; the kernel decides)
 *   (total length below the header's,
 *   an IPv6 jumbogram)
 *   IPv6 extension headers           hop-by-hop, routing, destination options
 *                                    walked (four at most); a fragment header or
 *                                    a longer chain: as a fragment / cut short
 *   IPv6 to an IPv4 FULLNAT real     NAT64: translated to IPv4 (bpf/nat64.h); its
 *                                    replies back to IPv6 from the VIP
 *   IPv4 to an IPv6 FULLNAT real     NAT46: translated to IPv6; its replies
 *                                    (xlb_xdp6, then xlb_nat46) back to IPv4
 *   ICMPv6 error about an IPv6 flow  to the flow's real (NAT66: translated inside
 *                                    and out); from a NAT66 real: back to the client
 *   other ICMPv6                     XDP_PASS
 *   not for a service (VIP, port)    XDP_PASS, untouched
 *   fragment to a VIP                XDP_DROP, stat FRAGMENT (no ports to find the flow)
 *   datagram cut short by the frame, XDP_DROP, stat TRUNCATED
 *   or TCP/UDP header cut short by
 *   the total length, to a VIP
 *   ICMP error about a flow          to the flow's real; NAT: translated inside and out
 *   ICMP error from a NAT real       back to the client as from the VIP
 *   other protocol (ICMP...) to VIP  XDP_PASS (as IPVS: not a service)
 *   IPv4 options                     parsed past; forwarded like any packet
 *   TCP without SYN, no flow         XDP_PASS, stat NOT_SYN (IPVS schedules only SYN);
 *                                    with sloppy_tcp, any but a RST is scheduled
 *   new flow, no available real      XDP_DROP, stat NO_DEST
 *   flow whose real was removed      XDP_DROP, stat DEST_GONE (expire_nodest_conn=0);
 *                                    a SYN reusing its port is scheduled afresh
 *   SYN on a TIME_WAIT/CLOSE flow    scheduled afresh (conn_reuse_mode 1)
 *   to a service on standby          XDP_PASS, stat STANDBY (its VRRP instance
 *   (VRRP BACKUP/FAULT here)         is not MASTER: the kernel, without the VIP,
 *                                    does what an IPVS backup's would)
 *   new flow, drop_packet engaged    1 in drop_rate XDP_DROP, stat DEFENCE_DROP
 *   NAT reply, client's next hop     translated, TTL decremented, XDP_PASS with
 *   not resolved yet                 metadata, stat NAT_REPLY_KERNEL: xlb_tc_neigh
 *                                    sends it through the kernel's ARP
 *   FULLNAT new flow                 a local address and port of its own
 *                                    (bpf/fullnat.h); none free among those tried:
 *                                    XDP_DROP, stat FNAT_NO_PORT
 *   FULLNAT handshake ACK, toa on    TCP option 254 (the client's port and address)
 *                                    put after the TCP header's options
 *   FULLNAT reply (to laddr:lport)   back to the client as from the VIP, routed as
 *                                    a NAT reply
 *   ICMP error about a FULLNAT flow  translated both ways: to the real from the
 *                                    local address; to the client from the VIP
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
#include "tunnel.h"
#include "flowcache.h"
#include "icmp.h"
#include "check.h"
#include "fullnat.h"
#include "nat64.h"
#include "icmp6.h"

_Static_assert((XLB_SCHED_SLOTS & (XLB_SCHED_SLOTS - 1)) == 0, "XLB_SCHED_SLOTS must be a power of two");

const volatile struct xlb_enums xlb_enums __attribute__((used)) = {};
_Static_assert(XLB_SCHED_SLOTS >= XLB_HASH_TAB_SIZE, "a scheduler table must hold the sh/dh buckets");

/* IPv6 runs in a program of its own, xlb_xdp6, which xlb_xdp tail-calls
 * (the loader puts it at XLB_PROG_IPV6): the verifier walks each family's
 * paths against a budget of its own, and IPv4's program holds none of
 * IPv6's. NAT46's replies, IPv6 packets of IPv4 flows, go on from
 * xlb_xdp6 in xlb_nat46 (XLB_PROG_NAT46). */
#define XLB_PROG_IPV6 0
#define XLB_PROG_NAT46 1
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 2);
} xlb_progs SEC(".maps");

static __always_inline void count_at(void *map, const __u32 *key, __u64 bytes, __u64 new_conn)
{
	struct counters *c = bpf_map_lookup_elem(map, key);
	if (c) {
		c->packets++;
		c->bytes += bytes;
		c->conns += new_conn;
	}
}

static __always_inline void count(void *map, __u32 idx, __u64 bytes, __u64 new_conn)
{
	count_at(map, &idx, bytes, new_conn);
}

/* IPv6 by DR or NAT66 to an IPv6 real. */
static __always_inline int forward6_direct(struct xdp_md *ctx, struct packet *p, void *data_end, const struct real *r)
{
	if ((r->flags & XLB_REAL_F_NAT) && nat_rewrite6(p, data_end, 1, r->addr.v6, r->port ? r->port : p->dport) < 0)
		return XDP_DROP;
	return forward_dr(ctx, p->eth, r);
}

/* forward: DR, NAT or TUN to the chosen real. */
static __always_inline int forward(struct xdp_md *ctx, struct packet *p, void *data_end, const struct real *r, __u32 slot,
				   __u8 fam)
{
	if (fam == AF_INET6) {
		/* IPv6 by DR, NAT66 or TUN (in IPv6, or in IPv4 for an IPv4
		 * real). */
		if (r->flags & XLB_REAL_F_TUN)
			return forward_tun6(ctx, p, data_end, r, slot);
		if (r->family != AF_INET6) /* NAT64's go by nat64_xmit */
			return XDP_DROP;
		return forward6_direct(ctx, p, data_end, r);
	}
	/* A NAT real without a port (of a port-0 service) keeps the
	 * client's: IPVS's dest->port ? dest->port : vport. */
	if ((r->flags & XLB_REAL_F_NAT) && nat_rewrite(p, data_end, 1, r->addr.v4, r->port ? r->port : p->dport) < 0)
		return XDP_DROP;
	return to_real(ctx, p, data_end, r, slot);
}

/* A packet whose source hashes to an empty slot of nat_src_filter is no
 * NAT real's. */
static __always_inline int maybe_nat_real(const struct packet *p, __u8 fam)
{
	__u32 k = hash_32(addr_fold(&p->src, fam), XLB_VIP_FILTER_BITS);
	__u32 *v = bpf_map_lookup_elem(&nat_src_filter, &k);
	return v && *v;
}

/* unparsed: what has no ports to match a service by. Fragments and
 * truncated L4 headers to a VIP are dropped and counted; ICMP errors about
 * a flow go with the flow (to a VIP: to its real; from a NAT real: back to
 * the client); everything else is the kernel's. */
static __always_inline int unparsed(struct xdp_md *ctx, struct packet *p, void *data_end, int res)
{
	switch (res) {
	case PARSE_FRAGMENT:
		if (!to_vip(&p->dst, p->family))
			return XDP_PASS;
		stat_inc(XLB_STAT_FRAGMENT);
		return XDP_DROP;
	case PARSE_TRUNCATED:
		if (!to_vip(&p->dst, p->family))
			return XDP_PASS;
		stat_inc(XLB_STAT_TRUNCATED);
		return XDP_DROP;
	case PARSE_OTHER_L4:
		if (p->proto != IPPROTO_ICMP)
			return XDP_PASS;
		if (to_vip(&p->dst, p->family)) {
			int act = icmp_to_vip(ctx, p, data_end);
			return act < 0 ? XDP_PASS : act;
		}
		if (maybe_nat_real(p, AF_INET)) { /* ICMP: IPv4's */
			int act = icmp_from_nat_real(ctx, p, data_end);
			if (act >= 0)
				return act;
		}
		/* About a FULLNAT flow: to a local address, from its real or
		 * from any router on the way to it. */
		int act = icmp_from_fnat(ctx, p, data_end);
		return act < 0 ? XDP_PASS : act;
	}
	return XDP_PASS;
}

/* A half-open flow proved itself: it moves to the flow table, a NAT flow's
 * reverse entry with it. Its counts do not change. Two CPUs promoting the
 * same flow at once write the same entry twice. */
static __always_inline void conn_promote(const union flow_key *fk, __u8 family, const struct conn *h, const struct real *r)
{
	struct conn c = *h;
	if (family == AF_INET6) {
		if (promote6(&fk->v6, &c, r) != 0)
			return;
		goto promoted;
	}
	const struct conn_key *k = &fk->v4;
	if (ft_put(k, &c) != 0)
		return; /* it stays half-open, and works */
	if ((c.flags & (XLB_CONN_F_NAT | XLB_CONN_F_FNAT)) == XLB_CONN_F_NAT) {
		struct conn_key rk = {
			.src = r->addr.v4, .dst = k->src, .sport = r->port ? r->port : k->dport, .dport = k->sport, .proto = k->proto,
		};
		struct nat_reply *nr = bpf_map_lookup_elem(&half_open_replies, &rk);
		if (nr) {
			struct nat_reply v = *nr;
			bpf_map_update_elem(&nat_replies, &rk, &v, BPF_ANY);
			bpf_map_delete_elem(&half_open_replies, &rk);
		}
	}
	bpf_map_delete_elem(&half_open, k);
promoted:
	stat_inc(XLB_STAT_PROMOTED);
	/* A sweep walking the flow table, then the half-open one, may see
	 * this flow in neither: its real's counts are not compared this time. */
	__u32 rs = h->real;
	struct sweep_count *sc = bpf_map_lookup_elem(&sweep_counts, &rs);
	if (sc)
		__sync_fetch_and_add(&sc->moved, 1);
}

/* The part of a NAT reply that is the same in both families: its flow
 * (fk, of family fam) moves through IPVS's OUTPUT table, re-arms its
 * timer, is proven by the real's ACK under secure_tcp (a UDP reply
 * proves nothing of the client) and counts the reply as the real's
 * output (reply_flow); a reply of a flow on standby, or of no flow with
 * its VIP on standby, goes to the kernel. Then the reply gets the VIP and
 * port back (rewrite) and is routed on (route): nat_reply_tail. */
static __always_inline int reply_flow(union flow_key *fk, __u8 fam, __u8 proto, __u8 tcp_flags, __u64 bytes,
				      const struct nat_reply *nr)
{
	int half;
	struct conn *fc = flow_lookup(fk, fam, &half);
	if (fc && !fc->retired) {
		__u32 frs = fc->real;
		struct real *fr = bpf_map_lookup_elem(&reals, &frs);
		if (fr && (fr->flags & XLB_REAL_F_STANDBY)) {
			stat_inc(XLB_STAT_STANDBY);
			return XDP_PASS;
		}
		__u8 before = fc->state;
		if (proto == IPPROTO_TCP)
			conn_tcp_transition(fc, tcp_flags, CT_DIR_OUTPUT);
		/* The client's packets may go by a hint on another CPU: none
		 * may outlive the state it was written in. */
		if (fam == AF_INET && fc->state != before)
			flow_hint_forget(&fk->v4);
		else if (fc->state != before && flow_cache_mask)
			flow_hint_forget6(&fk->v6);
		conn_rearm(fc, xlb_now());
		__u32 rs = fc->real;
		if (half && fr && proto == IPPROTO_TCP && conn_proven(fc, proto))
			conn_promote(fk, fam, fc, fr);
		struct counters *rc = bpf_map_lookup_elem(&real_stats, &rs);
		if (rc) {
			rc->out_packets++;
			rc->out_bytes += bytes;
		}
	} else if (!to_vip(&nr->vip, nr->family)) {
		/* No flow left, and the VIP is on standby here. */
		stat_inc(XLB_STAT_STANDBY);
		return XDP_PASS;
	}
	return XLB_CONTINUE;
}

static __always_inline int nat_reply_tail(struct xdp_md *ctx, struct packet *p, void *data_end, __u64 bytes,
					  union flow_key *fk, __u8 fam, const struct nat_reply *nr, __be32 client,
					  __be16 cport, const __be32 *client6, int nat46)
{
	int flow = reply_flow(fk, fam, p->proto, p->tcp_flags, bytes, nr);
	if (flow != XLB_CONTINUE)
		return flow;
	if (nat46) {
		/* NAT64's reply (its entry in fnat_scratch): IPv4 to IPv6. */
		int act = nat46_xmit(ctx);
		if (act < 0) {
			stat_inc(XLB_STAT_NAT64_UDP_NO_CSUM);
			return XDP_DROP;
		}
		stat_inc(XLB_STAT_NAT_REPLY);
		return xdp_verdict(act);
	}
	int rewritten = fam == AF_INET6 ? nat_rewrite6(p, data_end, 0, nr->vip.v6, nr->vport)
					: nat_rewrite(p, data_end, 0, nr->vip.v4, nr->vport);
	if (rewritten < 0)
		return XDP_DROP;
	/* FULLNAT: the reply came to laddr:lport; it goes to the client. */
	if (fam == AF_INET && (client != p->dst.v4 || cport != p->dport) && nat_rewrite(p, data_end, 1, client, cport) < 0)
		return XDP_DROP;
	if (fam == AF_INET6 && client6 && nat_rewrite6(p, data_end, 1, client6, cport) < 0)
		return XDP_DROP;
	stat_inc(XLB_STAT_NAT_REPLY);
	/* (read before the FIB is asked: an answer the hint keeps is as new
	 * as its epoch) */
	__u32 epoch = route_epoch;
	__u32 oif;
	int act = fam == AF_INET6 ? forward_routed6(ctx, p, data_end, &oif) : forward_routed(ctx, p, data_end, &oif);
	if (!oif) {
		stat_inc(XLB_STAT_NAT_REPLY_KERNEL);
	} else if (fam == AF_INET && epoch && flow_cache_mask && !state_moves(p)) {
		__u64 k0, k1;
		conn_key_words(p, &k0, &k1);
		reply_hint_note(ctx, k0, k1, packet_hdrs(ctx, p), (__u64)epoch << 32 | oif);
	}
	return act;
}

/* A NAT64 flow's reply (its fnat_ports entry f, IPv4 to an IPv6 VIP): the
 * flow is IPv6's, client -> VIP; nat46_xmit translates the packet. */
static __always_inline int nat46_reply(struct xdp_md *ctx, struct packet *p, void *data_end, __u64 bytes,
				       const struct fnat_port *f)
{
	__u32 zero = 0;
	struct fnat_port *s = bpf_map_lookup_elem(&fnat_scratch, &zero);
	if (!s)
		return XDP_DROP;
	*s = *f;
	union flow_key fk;
	__builtin_memcpy(fk.v6.src, s->client.v6, 16);
	__builtin_memcpy(fk.v6.dst, s->nr.vip.v6, 16);
	fk.v6.sport = s->cport;
	fk.v6.dport = s->nr.vport;
	fk.v6.proto = p->proto;
	fk.v6.pad[0] = fk.v6.pad[1] = fk.v6.pad[2] = 0;
	return nat_reply_tail(ctx, p, data_end, bytes, &fk, AF_INET6, &s->nr, 0, 0, 0, 1);
}

/* NAT46's reply (its fnat_ports6 entry f: IPv6 from the real to an IPv4
 * VIP's flow) goes on in xlb_nat46, tail-called with f in this CPU's
 * fnat_scratch: the flow's state is IPv4's, and xlb_xdp6 holds no copy
 * of IPv4's flow tables' paths for the verifier to walk (nor room on its
 * stack for them). A reply with an extension header is not translated
 * (the translation is a fixed 20 bytes): dropped, counted as truncated. */
static __always_inline int fnat46_reply(struct xdp_md *ctx, struct packet *p, const struct fnat_port *f)
{
	__u32 zero = 0;
	struct fnat_port *s = bpf_map_lookup_elem(&fnat_scratch, &zero);
	if (!s)
		return XDP_DROP;
	if (p->l4 != (void *)p->ip + sizeof(struct ipv6hdr)) {
		stat_inc(XLB_STAT_TRUNCATED);
		return XDP_DROP;
	}
	*s = *f;
	bpf_tail_call(ctx, &xlb_progs, XLB_PROG_NAT46);
	return XDP_DROP; /* (the loader always puts it there) */
}

/* nat_reply: a NAT real's reply on its way back to the client gets the VIP
 * and port back and is routed on (nat_reply_tail). XLB_CONTINUE when it
 * is no such reply. */
static __always_inline int nat_reply(struct xdp_md *ctx, struct packet *p, void *data_end, __u64 bytes)
{
	if (!maybe_nat_real(p, AF_INET))
		return XLB_CONTINUE;
	int act = reply_hinted(ctx, p, data_end, bytes);
	if (act != XLB_CONTINUE)
		return act;
	struct conn_key rk;
	conn_key_of(p, &rk);
	/* What the reply is given back, copied from whichever table has
	 * it: one state for the verifier to follow from here, not one per
	 * table. */
	struct nat_reply nr;
	__be32 client = p->dst.v4;
	__be16 cport = p->dport;
	struct nat_reply *n = reply_lookup(&rk);
	if (n) {
		nr = *n;
	} else {
		/* A FULLNAT reply, to a local address and port: its flow is
		 * the client's, to the VIP. */
		struct fnat_port *fp = bpf_map_lookup_elem(&fnat_ports, &rk);
		if (!fp)
			return check_reply(p, data_end, &rk);
		if (fp->nr.family == AF_INET6)
			return nat46_reply(ctx, p, data_end, bytes, fp);
		nr = fp->nr;
		client = fp->client.v4;
		cport = fp->cport;
	}
	union flow_key fk = { .v4 = {
		.src = client, .dst = nr.vip.v4, .sport = cport, .dport = nr.vport, .proto = p->proto,
	} };
	return nat_reply_tail(ctx, p, data_end, bytes, &fk, AF_INET, &nr, client, cport, 0, 0);
}

/* nat_reply for IPv6 (NAT66). */
static __always_inline int nat_reply6(struct xdp_md *ctx, struct packet *p, void *data_end, __u64 bytes)
{
	if (!maybe_nat_real(p, AF_INET6))
		return XLB_CONTINUE;
	/* One key, the reply's and then the flow's: the stack of a path
	 * with two calls below it must stay within 512 bytes. */
	union flow_key fk;
	flow_key_of(p, &fk, AF_INET6);
	/* What the reply is given back, copied from whichever table has
	 * it: one state for the verifier to follow from here. */
	struct nat_reply nr;
	__be32 client6[4];
	__be16 cport = p->dport;
	int fnat = 0;
	struct nat_reply *n = reply_lookup6(&fk.v6);
	if (n) {
		nr = *n;
		__builtin_memcpy(client6, p->dst.v6, 16);
	} else {
		/* A FULLNAT reply, to a local address and port: its flow is
		 * the client's, to the VIP. */
		struct fnat_port *fp = bpf_map_lookup_elem(&fnat_ports6, &fk.v6);
		if (!fp) {
			int act = check_reply6(p, data_end, &fk.v6);
			return act < 0 ? XLB_CONTINUE : act;
		}
		if (fp->nr.family == AF_INET)
			return fnat46_reply(ctx, p, fp);
		nr = fp->nr;
		__builtin_memcpy(client6, fp->client.v6, 16);
		cport = fp->cport;
		fnat = 1;
	}
	__builtin_memcpy(fk.v6.src, client6, 16);
	__builtin_memcpy(fk.v6.dst, nr.vip.v6, 16);
	fk.v6.sport = cport;
	fk.v6.dport = nr.vport;
	fk.v6.proto = p->proto;
	fk.v6.pad[0] = fk.v6.pad[1] = fk.v6.pad[2] = 0;
	return nat_reply_tail(ctx, p, data_end, bytes, &fk, AF_INET6, &nr, 0, cport, fnat ? client6 : 0, 0);
}

/* maybe_vip: most traffic that is not for a VIP leaves after this one
 * array lookup. */
static __always_inline int maybe_vip(const struct packet *p, __u8 fam)
{
	__u32 fk = hash_32(addr_fold(&p->dst, fam), XLB_VIP_FILTER_BITS);
	__u32 *v = bpf_map_lookup_elem(&vip_filter, &fk);
	return v && *v;
}

static __always_inline int pure_syn(const struct packet *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/* A TCP packet that may not start a flow (IPVS schedules only SYNs); with
 * sloppy_tcp (the service's XLB_SVC_F_SLOPPY), any but a RST may. */
static __always_inline int not_syn(const struct packet *p, __u16 svc_flags)
{
	if (p->proto != IPPROTO_TCP)
		return 0;
	if (svc_flags & XLB_SVC_F_SLOPPY)
		return p->tcp_flags & TCP_FLAG_RST;
	return (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST)) != TCP_FLAG_SYN;
}

/* The slot of the service a packet is for: its port's, else (IPVS's
 * catch-all) the VIP's port-0 service's, sk->port then 0; or none. */
static __always_inline __u32 *svc_lookup(const struct packet *p, struct svc_key *sk)
{
	*sk = (struct svc_key){ .vip = p->dst, .port = p->dport, .proto = p->proto, .family = p->family };
	__u32 *slotp = bpf_map_lookup_elem(&svc_map, sk);
	if (!slotp) {
		sk->port = 0;
		slotp = bpf_map_lookup_elem(&svc_map, sk);
	}
	return slotp;
}

/* The flags of the service a packet is for, or 0. */
static __always_inline __u16 svc_flags_of(const struct packet *p)
{
	struct svc_key sk;
	__u32 *slotp = svc_lookup(p, &sk);
	if (!slotp)
		return 0;
	struct svc *s = bpf_map_lookup_elem(&svcs, slotp);
	return s ? s->flags : 0;
}

/* NAT46's client packet to its real (fnat46_xmit), a UDP datagram
 * without a checksum counted. */
static __always_inline int fnat46_send(struct xdp_md *ctx, __u32 real_slot, __u32 laddr_lport)
{
	int act = fnat46_xmit(ctx, real_slot, laddr_lport);
	if (act < 0) {
		stat_inc(XLB_STAT_NAT64_UDP_NO_CSUM);
		return XDP_DROP;
	}
	return xdp_verdict(act);
}

/* The IPv6 packet whose headers are at hdrs (packet_hdrs: the caller's
 * parse proved them), of protocol proto, as a struct packet q for the
 * forwarding code: its headers and ports, no addresses (read them at
 * q->ip) and no TCP flags (the callers are given no packet that could
 * move its flow's state). 0 if its headers are not there. */
static __always_inline int packet6_at(struct xdp_md *ctx, __u32 hdrs, __u32 proto, struct packet *q)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = hdrs & 0xffff, l4 = hdrs >> 16;
	if (l3 > 64 || l4 > 1024 || data + sizeof(struct ethhdr) > data_end)
		return 0;
	struct ipv6hdr *ip6 = data + l3;
	__be16 *ports = data + l4;
	if ((void *)(ip6 + 1) > data_end || (void *)(ports + 2) > data_end)
		return 0;
	q->sport = ports[0];
	q->dport = ports[1];
	q->proto = (__u8)proto;
	q->family = AF_INET6;
	q->eth = data;
	q->ip = (struct iphdr *)ip6;
	q->l4 = ports;
	return 1;
}

/* flow_hint_write for an IPv6 flow (the caller has asked
 * flow_hint_worthy), from the packet's fields: seen, real and gen are the
 * flow's, and meta its protocol, FULLNAT flag, local address and port
 * (hint6_meta). A global function, for the reason hinted6 is one. */
__attribute__((noinline)) int flow_hint_write6(struct xdp_md *ctx, __u32 hdrs, __u64 meta, __u64 seen, __u64 real_gen)
{
	struct packet q = {};
	if (!packet6_at(ctx, hdrs, (__u8)meta, &q))
		return 0;
	const __u64 *a = (const __u64 *)&((struct ipv6hdr *)q.ip)->saddr;
	__u64 kp = ports_word(q.sport, q.dport, q.proto);
	struct flow_hint6 *h = flow_hint6_at(a, kp);
	if (!h)
		return 0;
	h->s0 = a[0];
	h->s1 = a[1];
	h->d0 = a[2];
	h->d1 = a[3];
	h->kp = kp | flow_hint_epoch();
	h->v = (struct flow_hint_val){ .seen = seen, .real = (__u32)real_gen, .gen = (__u32)(real_gen >> 32),
				       .fnat = (meta >> 8) & 1, .laddr = (__u8)(meta >> 16), .lport = (__be16)(meta >> 32) };
	return 0;
}

/* flow_hint_write6's meta for flow c of protocol proto. */
static __always_inline __u64 hint6_meta(const struct conn *c, __u8 proto)
{
	return proto | (__u64)((c->flags & XLB_CONN_F_FNAT) != 0) << 8 | (__u64)c->laddr << 16 | (__u64)c->lport << 32;
}

/* established: a packet of a flow the tables hold goes to the flow's
 * real, after one LRU lookup (two for a half-open flow, which the packet
 * may prove). A flow that cannot go on (expired, its real removed, its
 * ports reused by a SYN) ends here if the packet may start a new one,
 * which new_flow then makes: XLB_CONTINUE. */
static __always_inline int established(struct xdp_md *ctx, struct packet *p, void *data_end,
				       const union flow_key *ck, __u64 bytes, __u64 now, __u8 fam)
{
	int half;
	struct conn *c = flow_lookup(ck, fam, &half);
	if (!c)
		return XLB_CONTINUE;
	__u32 real_slot = c->real;
	struct real *r = bpf_map_lookup_elem(&reals, &real_slot);
	int live = r && r->gen == c->gen && (r->flags & XLB_REAL_F_PRESENT);
	if (live && (r->flags & XLB_REAL_F_STANDBY)) {
		stat_inc(XLB_STAT_STANDBY);
		return XDP_PASS;
	}
	if (!conn_expired(c, now) && !c->retired) {
		/* A SYN on the ports of a flow that cannot go on (in TIME_WAIT
		 * or CLOSE, as IPVS's conn_reuse_mode, or whose real was
		 * removed) starts a new connection. */
		int reuse = pure_syn(p) && (!live || c->state == XLB_CT_TIME_WAIT || c->state == XLB_CT_CLOSE);
		if (live && !reuse) {
			__u8 before = c->state;
			if (p->proto == IPPROTO_TCP)
				conn_tcp_transition(c, p->tcp_flags, (c->flags & XLB_CONN_F_NAT) ? CT_DIR_INPUT : CT_DIR_INPUT_ONLY);
			/* IPv6's hints are not looked at by a packet that may
			 * move the state (hinted): one that did forgets them. */
			if (fam == AF_INET6 && c->state != before && flow_cache_mask)
				flow_hint_forget6(&ck->v6);
			conn_rearm(c, now);
			conn_count_in(c);
			if (half && conn_proven(c, p->proto))
				conn_promote(ck, fam, c, r);
			count(&real_stats, real_slot, bytes, 0);
			if (fam == AF_INET && !half)
				flow_hint_write(&ck->v4, c, r, p->proto);
			else if (!half && flow_hint_worthy(c, r, p->proto, AF_INET6))
				flow_hint_write6(ctx, packet_hdrs(ctx, p), hint6_meta(c, p->proto), c->last_seen,
						 (__u64)c->gen << 32 | c->real);
			if (c->flags & XLB_CONN_F_FNAT) {
				/* The handshake's ACK carries TOA when asked. */
				int toa = (r->flags & XLB_REAL_F_TOA) && before == XLB_CT_SYN_RECV && p->proto == IPPROTO_TCP &&
					  (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST | TCP_FLAG_ACK)) == TCP_FLAG_ACK &&
					  (fam == AF_INET || p->l4 == (void *)p->ip + sizeof(struct ipv6hdr));
				if (fam == AF_INET && r->family == AF_INET6) /* NAT46 (no TOA: refused) */
					return fnat46_send(ctx, real_slot, (__u32)c->laddr << 16 | c->lport);
				if (fam == AF_INET6 && (r->family == AF_INET || toa)) {
					/* NAT64, or TOA for an IPv6 client (DPVS's 20-byte
					 * option): bpf/nat64.h. */
					toa = toa && toa6_stash(ctx);
					if (r->family == AF_INET) {
						int v = nat64_xmit(ctx, real_slot, (__u32)c->laddr << 16 | c->lport);
						return xdp_verdict(toa ? nat64_toa(ctx, v) : v);
					}
					return xdp_verdict(fnat6_toa(ctx, real_slot, (__u32)c->laddr << 16 | c->lport, toa));
				}
				if (fnat_source(p, data_end, c->laddr, c->lport, fam) < 0)
					return XDP_DROP;
				if (fam == AF_INET && toa)
					return forward_toa(ctx, p, data_end, r, p->src.v4, p->sport);
			}
			return forward(ctx, p, data_end, r, real_slot, fam);
		}
		if (!reuse) {
			/* The real was removed: drop silently and let the entry
			 * time out, as IPVS does by default (expire_nodest_conn=0). */
			stat_inc(XLB_STAT_DEST_GONE);
			return XDP_DROP;
		}
	}
	/* The entry ends here (expired, or its ports reused) if this packet
	 * may start a flow; else the sweeper will end it. (Only a packet
	 * that is no SYN looks up its service's flags here.) */
	if (not_syn(p, 0) && not_syn(p, svc_flags_of(p))) {
		stat_inc(XLB_STAT_NOT_SYN);
		return XDP_PASS;
	}
	if (!conn_claim(c)) {
		/* The sweeper is ending it this very moment: the client will
		 * send its SYN again. */
		stat_inc(XLB_STAT_RETIRING);
		return XDP_DROP;
	}
	if (fam == AF_INET)
		flow_hint_forget(&ck->v4);
	else if (flow_cache_mask)
		flow_hint_forget6(&ck->v6);
	if (live)
		conns_add(real_slot, c->state, -1);
	flow_tmpl_release(ck, fam, c);
	/* The new flow starts half-open: the ended one must not shadow it. */
	if (!half)
		flow_delete(ck, fam);
	return XLB_CONTINUE;
}

/* The real a hint (v) sends its flow's packet to, or 0 when the table's
 * path must take it: the table's entry is due a touch, or the real is no
 * longer the flow's. */
static __always_inline struct real *hint_real(const struct flow_hint_val *v, __u64 now)
{
	if (touch_due(v->seen, now))
		return 0; /* the table's entry is to be touched */
	/* (keyed by the hint's own field: no key on the frame) */
	struct real *r = bpf_map_lookup_elem(&reals, &v->real);
	if (!r || r->gen != v->gen || (r->flags & (XLB_REAL_F_PRESENT | XLB_REAL_F_STANDBY)) != XLB_REAL_F_PRESENT)
		return 0;
	return r;
}

/* A hinted IPv4 NAT or FULLNAT flow's packet rewritten as the table's
 * path rewrites it (nat_rewrite of the destination; FULLNAT's
 * fnat_source first): the fields written, both checksums moved by the
 * sums its hint carries (flow_hint_deltas), computed from the same
 * fields. -1 if the headers are not there or the local address went. */
static __always_inline int nat_hinted(struct packet *p, void *data_end, const struct real *r, const struct flow_hint_val *v)
{
	struct iphdr *ip = p->ip;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__u16 *l4sum;
	__be16 *ports;
	if (l4_sum_ports(p, data_end, &l4sum, &ports) < 0)
		return -1;
	if (v->fnat) {
		__u32 slot = v->laddr;
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &slot);
		if (!la)
			return -1;
		ip->saddr = la->addr.v4;
		ports[0] = v->lport;
	}
	if (l4sum)
		l4_sum_put(p, l4sum, csum_add_delta(*l4sum, v->l4_delta));
	ports[1] = r->port ? r->port : p->dport;
	ip->check = csum_add_delta(ip->check, v->ip_delta);
	ip->daddr = r->addr.v4;
	return 0;
}

/* hinted for IPv6, DR, NAT66 and FULLNAT66 (flow_hint_worthy), for a packet that
 * cannot move its flow's state: a global function, verified once on its
 * own. Inlined in xlb_xdp6 it took that frame 32 bytes past 6.1's limit;
 * as a static subprogram, walked again at each of the many states the
 * IPv6 parser leaves, it added 230k instructions to the verifier's walk.
 * It is given the parsed packet as scalars (its headers' offsets and its
 * protocol) and reads the rest from the frame, whose headers the
 * caller's parse proved. */
__attribute__((noinline)) int hinted6(struct xdp_md *ctx, __u32 hdrs, __u32 proto)
{
	struct packet q = {};
	if (!packet6_at(ctx, hdrs, proto, &q))
		return XLB_CONTINUE;
	struct flow_hint6 *h = flow_hint_find6(&((struct ipv6hdr *)q.ip)->saddr, ports_word(q.sport, q.dport, q.proto));
	if (!h)
		return XLB_CONTINUE;
	struct real *r = hint_real(&h->v, xlb_now());
	if (!r || (r->flags & XLB_REAL_F_TUN) || r->family != AF_INET6)
		return XLB_CONTINUE;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	count_at(&real_stats, &h->v.real, data_end - data, 0);
	/* FULLNAT66: the source as the table's path rewrites it (no TOA:
	 * that is the handshake's ACK, never hinted). */
	if (h->v.fnat && fnat_source(&q, data_end, h->v.laddr, h->v.lport, AF_INET6) < 0)
		return XDP_DROP;
	return forward6_direct(ctx, &q, data_end, r);
}

/* hinted: a packet of a flow this CPU's cache holds goes to its real
 * without a lookup in the flow table (bpf/flowcache.h). XLB_CONTINUE
 * when the table's path must take it. */
static __always_inline int hinted(struct xdp_md *ctx, struct packet *p, void *data_end, __u64 bytes, __u64 now, __u8 fam)
{
	if (fam == AF_INET6) {
		/* A packet that may move its flow's state (a new flow's first
		 * among them) makes no call: one that does move it forgets
		 * the flow's hints on the table's path (established). */
		if (!flow_cache_mask || state_moves(p))
			return XLB_CONTINUE;
		return hinted6(ctx, packet_hdrs(ctx, p), p->proto);
	}
	struct flow_hint *h = flow_hint_find(p);
	if (!h)
		return XLB_CONTINUE;
	if (state_moves(p)) {
		h->k0 = 0;
		return XLB_CONTINUE;
	}
	struct real *r = hint_real(&h->v, now);
	if (!r)
		return XLB_CONTINUE;
	count(&real_stats, h->v.real, bytes, 0);
	/* NAT and FULLNAT: the rewrite the table's path makes (no TOA: that
	 * is the handshake's ACK, never hinted), its checksums' sums from
	 * the hint. */
	if (r->flags & XLB_REAL_F_NAT) {
		if (nat_hinted(p, data_end, r, &h->v) < 0)
			return XDP_DROP;
		return forward_dr(ctx, p->eth, r); /* (a NAT real is never a tunnel's) */
	}
	return forward(ctx, p, data_end, r, h->v.real, AF_INET);
}

/* drop_packet (ip_vs_todrop): 1 in drop_rate new flows dropped. */
static __always_inline int defence_drops(void)
{
	struct defence *d = defence_now();
	if (!d || !d->drop_rate)
		return 0;
	__u32 k = 0;
	__u32 *left = bpf_map_lookup_elem(&drop_counter, &k);
	if (!left)
		return 0;
	__u32 n = *left;
	if (n == 0 || n > d->drop_rate)
		n = d->drop_rate;
	if (--n > 0) {
		*left = n;
		return 0;
	}
	*left = d->drop_rate;
	return 1;
}

/* Flood mode (defence.flood_rate): a service whose scheduler is a pure
 * function of the packet (sh, dh, mh) and of nothing a flow entry keeps
 * (no persistence) can forward a flow by its table alone, as Katran's
 * consistent hashing does above its MAX_CONN_RATE. */
static __always_inline int stateless_service(const struct svc *s)
{
	return !s->persist_timeout_s && (s->sched == XLB_SCHED_SH || s->sched == XLB_SCHED_DH || s->sched == XLB_SCHED_MH);
}

/* Counts a new flow in this CPU's current second; whether that second has
 * had more than rate. */
static __always_inline int flooded(__u64 now, __u32 rate)
{
	__u32 k = 0;
	struct flood_window *w = bpf_map_lookup_elem(&flood_window, &k);
	if (!w)
		return 0;
	if (now - w->start >= 1000000000ULL) {
		w->start = now;
		w->count = 0;
	}
	return ++w->count > rate;
}

/* Forwards a packet with no flow by the service's table, making no entry:
 * a new flow above the flood rate, or a later packet of one (the table
 * sends it where it sent the first). A NAT real needs the flow for its
 * replies: XLB_CONTINUE, the flow is made as usual (a packet that may not
 * start one goes to the kernel). */
static __always_inline int forward_stateless(struct xdp_md *ctx, struct packet *p, void *data_end, __u32 svc_slot,
					     __u64 bytes, int starts, __u8 fam)
{
	__u32 real_slot = xlb_schedule(svc_slot, addr_fold(&p->src, fam), addr_fold(&p->dst, fam), p->sport);
	struct real *r = real_if_available(real_slot);
	if (!r) {
		stat_inc(XLB_STAT_NO_DEST);
		return XDP_DROP;
	}
	if (r->flags & XLB_REAL_F_NAT)
		return XLB_CONTINUE;
	stat_inc(XLB_STAT_FLOOD_STATELESS);
	count(&real_stats, real_slot, bytes, starts);
	return forward(ctx, p, data_end, r, real_slot, fam);
}

/* new_flow: the service's persistence template or scheduler picks a
 * real, the flow (and a NAT flow's reverse) is recorded, and the packet
 * forwarded. */
static __always_inline int new_flow(struct xdp_md *ctx, struct packet *p, void *data_end,
				    const union flow_key *ck, __u64 bytes, __u64 now, __u8 fam)
{
	struct svc_key sk;
	__u32 *slotp = svc_lookup(p, &sk);
	if (!slotp)
		return XDP_PASS;
	__u32 svc_slot = *slotp;
	struct svc *s = bpf_map_lookup_elem(&svcs, &svc_slot);
	if (!s || !s->id)
		return XDP_PASS;
	if (s->flags & XLB_SVC_F_STANDBY) {
		stat_inc(XLB_STAT_STANDBY);
		return XDP_PASS;
	}
	__u32 svc_idx = s->id - 1;
	int may_start = !not_syn(p, s->flags);
	struct defence *d = defence_now();
	if (d && d->flood_rate && stateless_service(s) && (!may_start || flooded(now, d->flood_rate))) {
		int act = forward_stateless(ctx, p, data_end, svc_slot, bytes, may_start, fam);
		if (act != XLB_CONTINUE)
			return act;
	}
	if (!may_start) {
		stat_inc(XLB_STAT_NOT_SYN);
		return XDP_PASS;
	}
	if (defence_drops()) {
		stat_inc(XLB_STAT_DEFENCE_DROP);
		return XDP_DROP;
	}

	__u32 real_slot = XLB_NO_REAL;
	__u8 cflags = 0;
	__u32 persist = s->persist_timeout_s;
	struct tmpl_key tk;
	struct tmpl *t = 0;
	struct real *r;
	if (persist) {
		/* ip_vs_sched_persist: a valid template decides; it is valid
		 * while its real is in the service (weight 0 included, as
		 * IPVS's default) and it has not expired, or still controls
		 * flows. */
		/* A port-0 service's templates have port 0, as FTP's. */
		if (fam == AF_INET6)
			tmpl_key_of6(&tk, p->proto, p->src.v6, s->persist_mask, p->dst.v6, sk.port);
		else
			tmpl_key_of(&tk, p->proto, AF_INET, p->src.v4, s->persist_mask, p->dst.v4, sk.port);
		cflags = XLB_CONN_F_PERSIST | (tk.vport ? 0 : XLB_CONN_F_TMPL_NOPORT);
		t = bpf_map_lookup_elem(&templates, &tk);
		if (t && (!tmpl_expired(t, now) || t->controls > 0)) {
			__u32 ts = t->real;
			struct real *tr = bpf_map_lookup_elem(&reals, &ts);
			if (tr && tr->gen == t->gen && (tr->flags & XLB_REAL_F_PRESENT)) {
				real_slot = ts;
				t->last_seen = now;
				t->timeout_s = s->persist_timeout_s;
			}
		}
	}
	if (real_slot == XLB_NO_REAL) {
		real_slot = xlb_schedule(svc_slot, addr_fold(&p->src, fam), addr_fold(&p->dst, fam), p->sport);
		r = real_if_available(real_slot);
		if (r && persist) {
			struct tmpl nt = { .real = real_slot, .gen = r->gen, .last_seen = now,
					   .timeout_s = s->persist_timeout_s };
			bpf_map_update_elem(&templates, &tk, &nt, BPF_ANY);
		}
	} else {
		r = bpf_map_lookup_elem(&reals, &real_slot);
	}
	if (!r) {
		stat_inc(XLB_STAT_NO_DEST);
		return XDP_DROP;
	}
	/* FULLNAT: a local address and port first; without one the flow
	 * is not made (and controls no template). */
	int fnat = 0;
	if (r->flags & XLB_REAL_F_FNAT) {
		__u32 rport_proto = (__u32)p->proto << 16 | (r->port ? r->port : p->dport);
		if (fam == AF_INET6 && r->family == AF_INET) /* NAT64: an IPv4 local address and port */
			fnat = fnat_request6(p, now) < 0 ? -1 : fnat_take(svc_idx, r->addr.v4, rport_proto);
		else if (fam == AF_INET && r->family == AF_INET6) /* NAT46: an IPv6 one */
			fnat = fnat_request(p, now) < 0 ? -1 : fnat_take6(svc_idx, real_slot, rport_proto);
		else if (fam == AF_INET6)
			fnat = fnat_request6(p, now) < 0 ? -1 : fnat_take6(svc_idx, real_slot, rport_proto);
		else
			fnat = fnat_request(p, now) < 0 ? -1 : fnat_take(svc_idx, r->addr.v4, rport_proto);
		if (fnat < 0) {
			stat_inc(XLB_STAT_FNAT_NO_PORT);
			return XDP_DROP;
		}
		cflags |= XLB_CONN_F_FNAT;
	}
	if (persist) {
		t = bpf_map_lookup_elem(&templates, &tk);
		if (t)
			__sync_fetch_and_add(&t->controls, 1);
		else /* the template went meanwhile: the flow controls none */
			cflags &= ~(XLB_CONN_F_PERSIST | XLB_CONN_F_TMPL_NOPORT);
	}
	if (r->flags & XLB_REAL_F_NAT)
		cflags |= XLB_CONN_F_NAT;
	conn_create(ck, fam, real_slot, r->gen, svc_idx, p->proto, p->tcp_flags, now, cflags, s->persist_mask, fnat >> 16, (__be16)fnat);
	if (fam == AF_INET6 && (cflags & (XLB_CONN_F_NAT | XLB_CONN_F_FNAT)) == XLB_CONN_F_NAT) {
		reply6_insert(&ck->v6, r->addr.v6, r->port ? r->port : p->dport);
	} else if ((cflags & (XLB_CONN_F_NAT | XLB_CONN_F_FNAT)) == XLB_CONN_F_NAT) {
		struct conn_key rk = {
			.src = r->addr.v4, .dst = p->src.v4, .sport = r->port ? r->port : p->dport, .dport = p->sport, .proto = p->proto,
		};
		struct nat_reply nr = { .vip = p->dst, .vport = p->dport, .family = fam };
		bpf_map_update_elem(&half_open_replies, &rk, &nr, BPF_ANY);
	}
	count(&real_stats, real_slot, bytes, 1);
	if (fam == AF_INET6 && (cflags & XLB_CONN_F_FNAT) && r->family == AF_INET)
		return xdp_verdict(nat64_xmit(ctx, real_slot, fnat));
	if (fam == AF_INET && (cflags & XLB_CONN_F_FNAT) && r->family == AF_INET6)
		return fnat46_send(ctx, real_slot, fnat);
	if ((cflags & XLB_CONN_F_FNAT) && fnat_source(p, data_end, fnat >> 16, (__be16)fnat, fam) < 0)
		return XDP_DROP;
	return forward(ctx, p, data_end, r, real_slot, fam);
}

/* A parsed packet of family fam (a constant at each call: each family
 * gets its own copy of the path, with no test of the family in it): to a
 * VIP, its flow's hint; (IPv4) a NAT real's reply; to a VIP, its flow,
 * else a new one. */
static __always_inline int by_flow(struct xdp_md *ctx, struct packet *p, void *data_end, __u64 bytes, __u8 fam)
{
	int vip = maybe_vip(p, fam);
	/* (IPv6: xlb_xdp6 has taken NAT66's replies; with them here its
	 * frame and the verifier's walk of it outgrow their limits) */
	if (fam == AF_INET6 && !vip)
		return XDP_PASS;
	__u64 now = 0;
	int act;
	/* An IPv4 client's packet of a hinted flow goes before the
	 * NAT-source filter is read: a packet a hint serves is one a flow to
	 * a VIP holds, whose source the table's path let by as no NAT real's
	 * reply (the addresses and ports of a reply as well would be a
	 * client that is a VIP talking to a real that is a client). */
	if (vip) {
		now = xlb_now();
		act = hinted(ctx, p, data_end, bytes, now, fam);
		if (act != XLB_CONTINUE)
			return act;
	}
	if (fam == AF_INET) {
		act = nat_reply(ctx, p, data_end, bytes);
		if (act != XLB_CONTINUE)
			return act;
		if (!vip)
			return XDP_PASS;
	}
	union flow_key ck;
	flow_key_of(p, &ck, fam);
	act = established(ctx, p, data_end, &ck, bytes, now, fam);
	if (act != XLB_CONTINUE)
		return act;
	return new_flow(ctx, p, data_end, &ck, bytes, now, fam);
}

/* The chain: parse -> (no ports: unparsed) -> the VIP filter -> (to a
 * VIP) the flow's hint -> NAT reply (its hint, then its tables) -> (to a
 * VIP) established flow -> new flow. */
SEC("xdp")
int xlb_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct packet p = {};

	int res = parse_packet(data, data_end, &p);
	if (__builtin_expect(p.family == AF_INET6, 0)) {
		bpf_tail_call(ctx, &xlb_progs, XLB_PROG_IPV6);
		return XDP_PASS; /* no IPv6 program loaded: the kernel's */
	}
	if (res != PARSE_OK)
		return unparsed(ctx, &p, data_end, res);
	return by_flow(ctx, &p, data_end, bytes, AF_INET);
}

/* xlb_xdp for IPv6 (tail-called): parse -> (no ports: a fragment or a
 * cut header to a VIP is a counted drop, anything else the kernel's) ->
 * NAT66 reply -> the VIP filter -> the flow's hint -> established flow
 * -> new flow. */
SEC("xdp")
int xlb_xdp6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct packet p = {};

	int res = parse_packet(data, data_end, &p);
	if (p.family != AF_INET6)
		return XDP_PASS;
	if (res == PARSE_OTHER_L4 && p.proto == IPPROTO_ICMPV6) {
		/* An error about a flow goes with the flow (bpf/icmp6.h). */
		int act = -1;
		if (to_vip(&p.dst, AF_INET6)) {
			act = icmp6_to_vip(ctx, &p, data_end);
		} else {
			if (maybe_nat_real(&p, AF_INET6))
				act = icmp6_from_nat_real(ctx, &p, data_end);
			/* About a FULLNAT flow: to a local address, from its
			 * real or from any router on the way to it. */
			if (act < 0)
				act = icmp6_from_fnat(ctx, &p, data_end);
		}
		return act < 0 ? XDP_PASS : act;
	}
	if (res != PARSE_OK) {
		if ((res != PARSE_FRAGMENT && res != PARSE_TRUNCATED) || !to_vip(&p.dst, AF_INET6))
			return XDP_PASS;
		stat_inc(res == PARSE_FRAGMENT ? XLB_STAT_FRAGMENT : XLB_STAT_TRUNCATED);
		return XDP_DROP;
	}
	int act = nat_reply6(ctx, &p, data_end, bytes);
	if (act != XLB_CONTINUE)
		return act;
	return by_flow(ctx, &p, data_end, bytes, AF_INET6);
}

/* NAT46's reply, tail-called from xlb_xdp6 (fnat46_reply) with its
 * fnat_ports6 entry in this CPU's fnat_scratch: the IPv4 flow's state
 * (reply_flow), then the packet made IPv4 to the client
 * (fnat46_reply_xmit). */
SEC("xdp")
int xlb_nat46(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	__u32 zero = 0;
	struct fnat_port *f = bpf_map_lookup_elem(&fnat_scratch, &zero);
	__u32 l2 = l2_len_of(data, data_end, bpf_htons(ETH_P_IPV6));
	if (!f || (l2 != 14 && l2 != 18))
		return XDP_DROP;
	struct ipv6hdr *ip6 = data + l2;
	__u8 *l4 = (void *)(ip6 + 1);
	if ((void *)l4 + 8 > data_end)
		return XDP_DROP;
	__u8 proto = ip6->nexthdr;
	__u8 tcp_flags = 0;
	if (proto == IPPROTO_TCP) {
		if ((void *)l4 + 14 > data_end)
			return XDP_DROP;
		tcp_flags = l4[13];
	}
	union flow_key fk = { .v4 = {
		.src = f->client.v4, .dst = f->nr.vip.v4, .sport = f->cport, .dport = f->nr.vport, .proto = proto,
	} };
	int act = reply_flow(&fk, AF_INET, proto, tcp_flags, bytes, &f->nr);
	if (act != XLB_CONTINUE)
		return act;
	stat_inc(XLB_STAT_NAT_REPLY);
	return xdp_verdict(fnat46_reply_xmit(ctx));
}

/* ---- programs the control plane runs with BPF_PROG_TEST_RUN ---- */

struct bpf_map;

struct sweep_ctx {
	__u64 now;
	__u64 conns;     /* live flows seen, in the flow table */
	__u64 half_open; /* and in the half-open one */
	__u64 dropped;   /* drop_entry's */
	/* drop_entry: engaged, and the 1/32 of the flows it looks at this
	 * time (ip_vs_random_dropentry scans 1/32 of the table a second). */
	__u32 drop_entry;
	__u32 salt;
	__u32 slice;
	__u32 pad;
};

static __always_inline struct sweep_count *sweep_slot(__u32 slot)
{
	return bpf_map_lookup_elem(&sweep_counts, &slot);
}

/* Deletes k from table only while it still holds the entry the sweep is
 * looking at: a packet may have replaced it (same key, new flow) since. */
static __always_inline void sweep_delete(void *table, void *k, struct conn *c)
{
	if (!table) { /* a slot of flowtab: c is its value */
		ft_free((struct ft_slot *)((void *)c - 16));
		return;
	}
	struct conn *cur = bpf_map_lookup_elem(table, k);
	if (cur == c && bpf_map_delete_elem(table, k) == 0 && table == (void *)&conns) {
		const __u64 *w = k;
		ft_overflow(w[0], w[1], 0);
	}
}

/* todrop_entry (ip_vs_conn.c): a flow idle for a minute whose client sent
 * 1 to 8 packets; of those with n packets, every n-th. */
static __always_inline int todrop_entry(const struct conn *c, __u64 now)
{
	__u64 seen = c->last_seen;
	if (now < seen || now - seen < 60ULL * 1000000000ULL)
		return 0;
	__u32 i = c->in_pkts;
	if (i == 0 || i > 8)
		return 0;
	__u32 k = 0;
	struct sweep_total *t = bpf_map_lookup_elem(&sweep_totals, &k);
	if (!t)
		return 0;
	if (--t->todrop_counter[i] > 0)
		return 0;
	t->todrop_counter[i] = i;
	return 1;
}

/* Whether drop_entry ends this flow now (ip_vs_random_dropentry): in this
 * sweep's 1/32, a half-open TCP flow always, an established one or any
 * other protocol's by todrop_entry, other TCP states never. */
static __always_inline int sweep_drops(__u32 fold, __u8 proto, const struct conn *c, const struct sweep_ctx *sc)
{
	if (!sc->drop_entry)
		return 0;
	__u32 h = (fold ^ sc->salt) * 0x9E3779B1u;
	if ((h >> 27) != sc->slice)
		return 0;
	if (proto != IPPROTO_TCP)
		return todrop_entry(c, sc->now);
	switch (c->state) {
	case XLB_CT_SYN_RECV:
	case XLB_CT_SYNACK:
		return 1;
	case XLB_CT_ESTABLISHED:
		return todrop_entry(c, sc->now);
	}
	return 0;
}

/* A flow key folded to 32 bits, for drop_entry's choice of a slice. */
static __always_inline __u32 key_fold(const struct conn_key *k)
{
	return k->src ^ k->dst ^ ((__u32)k->sport << 16 | k->dport);
}

static __always_inline __u32 key6_fold(const struct conn_key6 *k)
{
	return k->src[0] ^ k->src[1] ^ k->src[2] ^ k->src[3] ^ k->dst[0] ^ k->dst[1] ^ k->dst[2] ^ k->dst[3] ^
	       ((__u32)k->sport << 16 | k->dport);
}

/* One flow of a table the sweeper walks, under key k (fold: the key
 * folded) of family fam. */
static __always_inline long sweep_entry(void *table, void *k, __u8 fam, __u32 fold, __u8 proto,
					struct conn *c, struct sweep_ctx *sc, int half)
{
	__u32 slot = c->real;
	struct real *r = bpf_map_lookup_elem(&reals, &slot);
	int live = r && r->gen == c->gen && (r->flags & XLB_REAL_F_PRESENT);
	if (c->retired) {
		sweep_delete(table, k, c);
		return 0;
	}
	struct sweep_count *sw = sweep_slot(slot);
	int drop = !conn_expired(c, sc->now) && sweep_drops(fold, proto, c, sc);
	if (drop || conn_expired(c, sc->now)) {
		if (conn_claim(c)) {
			flow_tmpl_release(k, fam, c);
			if (live) {
				conns_add(slot, c->state, -1);
				if (sw) {
					if (state_active(c->state))
						sw->dec_active++;
					else
						sw->dec_inactive++;
				}
			}
			if (drop)
				sc->dropped++;
		}
		sweep_delete(table, k, c);
		return 0;
	}
	if (half)
		sc->half_open++;
	else
		sc->conns++;
	if (live && sw) {
		if (state_active(c->state))
			sw->active++;
		else
			sw->inactive++;
	}
	return 0;
}

static long sweep_conn(struct bpf_map *map, struct conn_key *k, struct conn *c, struct sweep_ctx *sc)
{
	/* A flow the array holds too is found there: this copy goes
	 * uncounted. */
	if (ft_find(k)) {
		c->retired = 1;
		sweep_delete(&conns, k, c);
		return 0;
	}
	return sweep_entry(&conns, k, AF_INET, key_fold(k), k->proto, c, sc, 0);
}

/* A slot of the IPv4 flow table's array: a LIVE one's flow as any
 * other's, unless a copy of the same flow before it in its window
 * shadows it (two CPUs promoted the flow at once): no lookup finds it,
 * and it goes uncounted. Other slots: ft_reclaim. */
static long sweep_ft(struct bpf_map *map, __u32 *i, struct ft_slot *s, struct sweep_ctx *sc)
{
	if ((s->tag & FT_STATE) != FT_LIVE) {
		ft_reclaim(*i, s);
		return 0;
	}
	struct conn_key k;
	__u64 *w = (__u64 *)&k;
	w[0] = s->k0;
	w[1] = s->k1;
	if (ft_find_slot(w[0], w[1]) != s) {
		ft_free(s);
		return 0;
	}
	return sweep_entry(0, &k, AF_INET, key_fold(&k), k.proto, &s->c, sc, 0);
}

static long sweep_half_open(struct bpf_map *map, struct conn_key *k, struct conn *c, struct sweep_ctx *sc)
{
	return sweep_entry(&half_open, k, AF_INET, key_fold(k), k->proto, c, sc, 1);
}

static long sweep_conn6(struct bpf_map *map, struct conn_key6 *k, struct conn *c, struct sweep_ctx *sc)
{
	return sweep_entry(&conns6, k, AF_INET6, key6_fold(k), k->proto, c, sc, 0);
}

static long sweep_half_open6(struct bpf_map *map, struct conn_key6 *k, struct conn *c, struct sweep_ctx *sc)
{
	return sweep_entry(&half_open6, k, AF_INET6, key6_fold(k), k->proto, c, sc, 1);
}

/* A FULLNAT port goes back once its flow is gone: no flow of its client
 * to its VIP holds it any more (expired and ended above, replaced by a
 * new connection on the client's ports, or evicted). The flow is of the
 * VIP's family, whichever table holds the port (NAT64's and NAT46's
 * cross). Whether the port (dport, of protocol proto) is still held. */
static __always_inline int fnat_port_held(const struct fnat_port *v, __u8 proto, __be16 dport, __u64 now)
{
	if (now < v->taken || now - v->taken < XLB_FNAT_GRACE_NS)
		return 1;
	struct conn *c;
	if (v->nr.family == AF_INET6) {
		struct conn_key6 fk = { .sport = v->cport, .dport = v->nr.vport, .proto = proto };
		__builtin_memcpy(fk.src, v->client.v6, 16);
		__builtin_memcpy(fk.dst, v->nr.vip.v6, 16);
		c = bpf_map_lookup_elem(&conns6, &fk);
		if (!c)
			c = bpf_map_lookup_elem(&half_open6, &fk);
	} else {
		struct conn_key fk = { .src = v->client.v4, .dst = v->nr.vip.v4, .sport = v->cport, .dport = v->nr.vport, .proto = proto };
		c = ft_lookup(&fk);
		if (!c)
			c = bpf_map_lookup_elem(&half_open, &fk);
	}
	return c && !c->retired && (c->flags & XLB_CONN_F_FNAT) && c->lport == dport && c->laddr == v->laddr;
}

static long sweep_fnat(struct bpf_map *map, struct conn_key *k, struct fnat_port *v, struct sweep_ctx *sc)
{
	if (!fnat_port_held(v, k->proto, k->dport, sc->now))
		bpf_map_delete_elem(&fnat_ports, k);
	return 0;
}

static long sweep_fnat6(struct bpf_map *map, struct conn_key6 *k, struct fnat_port *v, struct sweep_ctx *sc)
{
	if (!fnat_port_held(v, k->proto, k->dport, sc->now))
		bpf_map_delete_elem(&fnat_ports6, k);
	return 0;
}

/* A template goes when it has expired and controls no flow. */
static long sweep_tmpl(struct bpf_map *map, struct tmpl_key *k, struct tmpl *t, struct sweep_ctx *sc)
{
	if (tmpl_expired(t, sc->now) && t->controls <= 0)
		bpf_map_delete_elem(&templates, k);
	return 0;
}

/* xlb_sweep ends expired flows, taking them off their real's counters as
 * IPVS does when a connection expires, and counts the live ones per real
 * so the control plane can correct what LRU evictions left counted. With
 * drop_entry engaged it also ends flows as IPVS's defence does. */
SEC("xdp")
int xlb_sweep(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct defence *d = defence_now();
	__u32 rnd = bpf_get_prandom_u32();
	struct sweep_ctx sc = {
		.now = xlb_now(),
		.drop_entry = d && d->drop_entry,
		.salt = rnd,
		.slice = bpf_get_prandom_u32() & 31,
	};
	bpf_for_each_map_elem(&flowtab, sweep_ft, &sc, 0);
	bpf_for_each_map_elem(&conns, sweep_conn, &sc, 0);
	bpf_for_each_map_elem(&half_open, sweep_half_open, &sc, 0);
	bpf_for_each_map_elem(&conns6, sweep_conn6, &sc, 0);
	bpf_for_each_map_elem(&half_open6, sweep_half_open6, &sc, 0);
	bpf_for_each_map_elem(&templates, sweep_tmpl, &sc, 0);
	bpf_for_each_map_elem(&fnat_ports, sweep_fnat, &sc, 0);
	bpf_for_each_map_elem(&fnat_ports6, sweep_fnat6, &sc, 0);
	struct sweep_total *t = bpf_map_lookup_elem(&sweep_totals, &k);
	if (t) {
		t->conns = sc.conns;
		t->half_open = sc.half_open;
		t->dropped += sc.dropped;
	}
	return XDP_PASS;
}

static long adjust_one(struct bpf_map *map, __u32 *k, struct conn_counts *d, void *unused)
{
	if (!d->active && !d->inactive)
		return 0;
	__u32 slot = *k;
	struct conn_counts *rc = bpf_map_lookup_elem(&real_conns, &slot);
	if (rc) {
		__sync_fetch_and_add(&rc->active, d->active);
		__sync_fetch_and_add(&rc->inactive, d->inactive);
	}
	d->active = 0;
	d->inactive = 0;
	return 0;
}

/* xlb_adjust applies conn_adjust to real_conns atomically and zeroes it. */
SEC("xdp")
int xlb_adjust(struct xdp_md *ctx)
{
	bpf_for_each_map_elem(&conn_adjust, adjust_one, 0, 0);
	return XDP_PASS;
}

/* xlb_tc_neigh runs at TC ingress on every interface xlb_xdp runs on. A
 * packet xlb_xdp could not send for want of a neighbour entry (its
 * metadata says so: forward_routed) goes to the kernel's neighbour
 * resolution, out of the interface the FIB chose; every other packet goes
 * on untouched (TC_ACT_UNSPEC, which is also TCX_NEXT). */
SEC("tc")
int xlb_tc_neigh(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct xlb_neigh_meta *m = (void *)(long)skb->data_meta;
	if ((void *)(m + 1) > data || m->magic != XLB_META_NEIGH)
		return -1;
	return bpf_redirect_neigh(m->ifindex, 0, 0, 0);
}

/* xlb_tc_check runs at TC egress on every interface xlb_xdp runs on: a
 * health check's packet (its socket mark names a check_target) to the
 * real's address goes to the VIP instead, as a client's would reach that
 * real (bpf/check.h); every other packet goes on untouched. */
SEC("tc")
int xlb_tc_check(struct __sk_buff *skb)
{
	if ((skb->mark & XLB_CHECK_MARK_MASK) != XLB_CHECK_MARK)
		return XLB_TC_NEXT;
	__u32 id = skb->mark & ~XLB_CHECK_MARK_MASK;
	struct check_target *t = bpf_map_lookup_elem(&check_targets, &id);
	if (!t)
		return XLB_TC_NEXT;
	if (t->family == AF_INET6) {
		if (skb->protocol != bpf_htons(ETH_P_IPV6))
			return XLB_TC_NEXT;
		return check6(skb, t);
	}
	if (bpf_skb_pull_data(skb, CHK_L4_OFF + 8))
		return XLB_TC_NEXT;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) + 8 > data_end)
		return XLB_TC_NEXT;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->daddr != t->real.v4 ||
	    (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return XLB_TC_NEXT;
	struct iphdr in = *ip;
	__be16 *ports = (void *)(ip + 1);
	struct conn_key rk = { .src = t->vip.v4, .dst = ip->saddr, .sport = ports[1], .dport = ports[0], .proto = ip->protocol };
	__be32 real = t->real.v4, vip = t->vip.v4;
	bpf_map_update_elem(&check_flows, &rk, &real, BPF_ANY);
	__u32 l4sum = CHK_L4_OFF + (in.protocol == IPPROTO_TCP ? 16 : 6);
	__u64 pseudo = BPF_F_PSEUDO_HDR | sizeof(__be32);
	if (in.protocol == IPPROTO_UDP)
		pseudo |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, l4sum, real, vip, pseudo) ||
	    bpf_l3_csum_replace(skb, CHK_IP_OFF + offsetof(struct iphdr, check), real, vip, sizeof(__be32)) ||
	    bpf_skb_store_bytes(skb, CHK_IP_OFF + offsetof(struct iphdr, daddr), &vip, sizeof(vip), 0))
		return XLB_TC_SHOT;
	if (t->kind != XLB_CHECK_TUN)
		return XLB_TC_NEXT;
	return check_encap(skb, t, &in);
}

char _license[] SEC("license") = "Dual BSD/GPL";
