/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The established-flow cache: a per-CPU, direct-mapped array in front of
 * the flow table for the packets the table's path would only forward and
 * count. A lookup in the kernel's hash map (its hash of the key, a bucket,
 * a compare) is 7 ns of an established packet's 30 here; an array slot
 * at a hash of our own is under 1.
 *
 * What a hint holds is enough to forward: the flow's key, its real and
 * the real's generation, and the flow's last_seen when the hint was
 * written (and a FULLNAT flow's local address and port). It is written
 * by the table's path (established) for a DR, TUN, NAT or FULLNAT flow
 * to a real of the flow's family (IPv4 in flow_cache, IPv6 in
 * flow_cache6) that is proven, ESTABLISHED (TCP) or UDP, has
 * counted its client's packets to 9 and has a timeout of 2 s or more: a
 * flow for which a client's packet with no SYN, FIN or RST changes
 * nothing in the table but last_seen (ESTABLISHED + ACK stays ESTABLISHED
 * in DR's input-only table and in NAT's input table, UDP stays UDP;
 * in_pkts saturates at 9; the timeout re-armed is the one it has). A hint serves a packet only while the table's entry
 * would not be touched (conn_touch writes last_seen once it is more than
 * XLB_LAST_SEEN_STEP_NS old): what the table holds is then exactly what
 * the table's path would have left in it. Past that the table's path
 * runs, touches the entry and writes the hint again.
 *
 * What else changes a flow goes around the hint, and each is handled:
 * a packet with SYN, FIN or RST drops the hint of its CPU and takes the
 * table's path (an IPv6 one does not look at the cache: the table's path
 * drops every CPU's hint of a flow whose state it moves); the real's
 * removal or standby changes what the hint checks in the real's entry on
 * every packet; a flow ended by the table's path (a SYN reusing its
 * ports), and a NAT or FULLNAT flow whose state its real's reply moves,
 * drop the hints of every CPU (flow_hint_forget); the control plane's
 * writes to flows and timeouts move flow_epoch, which every hint carries. A flow the sweeper ends has
 * been idle for its timeout, long past a hint's second. One difference
 * is left: a flow the LRU evicts while a CPU holds its hint (the table
 * full of flows busier than it) still goes to its real from that CPU
 * for what is left of the hint's second, where the table's path would
 * have found no flow.
 *
 * IPv6's hints are DR's, NAT66's and FULLNAT66's (TUN goes by the table),
 * served by a global function (hinted6) to keep xlb_xdp6's frame and
 * the verifier's walk of it as they were. */
#ifndef XLB_FLOWCACHE_H
#define XLB_FLOWCACHE_H

#include "xlb_maps.h"
#include "conntrack.h"
#include "forward.h"

/* Set by the loader: the cache's slots per CPU less one (a power of two
 * less one), 0 for no cache (a kernel without
 * bpf_map_lookup_percpu_elem, 5.19, could not drop other CPUs' hints);
 * and the possible CPUs. */
volatile const __u32 flow_cache_mask = 0;
volatile const __u32 flow_cache_cpus = 0;

/* The bits of a hint's k1 that hold the key (ports and protocol); the
 * epoch is above them. */
#define FLOW_HINT_KEY_BITS 40

/* A flow key's two words: (src, dst) and (sport, dport, proto, 0), as
 * the key's 16 bytes read as two little-endian words. */
static __always_inline void flow_hint_words(const struct conn_key *k, __u64 *k0, __u64 *k1)
{
	*k0 = *(const __u64 *)k;
	*k1 = *(const __u64 *)((const void *)k + 8);
}


static __always_inline __u32 flow_hint_slot(__u64 k0, __u64 k1)
{
	__u64 h = (k0 ^ (k1 * 0xC2B2AE3D27D4EB4FULL)) * 0x9E3779B97F4A7C15ULL;
	return (__u32)(h >> 32) & flow_cache_mask;
}

/* The epoch every hint carries: the control plane moves it (through the
 * .bss's memory map) when it writes flows or timeouts, and every hint
 * written before is void. A global, not a map: a load, not a lookup. */
volatile __u32 flow_epoch = 0;

static __always_inline __u64 flow_hint_epoch(void)
{
	return (__u64)flow_epoch << FLOW_HINT_KEY_BITS;
}

/* Whether a packet may move its flow's state (SYN, FIN, RST): the
 * table's path takes it, and the hints of its flow go. */
static __always_inline int state_moves(const struct packet *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST));
}

/* A parsed packet's headers as a scalar, for the global functions (which
 * may be given nothing else): the IP header's offset, and the transport
 * header's above it. */
static __always_inline __u32 packet_hdrs(struct xdp_md *ctx, const struct packet *p)
{
	void *data = (void *)(long)ctx->data;
	return (__u32)((void *)p->ip - data) | (__u32)(p->l4 - data) << 16;
}

/* The hint of this CPU for the packet's flow, or 0. */
static __always_inline struct flow_hint *flow_hint_find(const struct packet *p)
{
	if (!flow_cache_mask)
		return 0;
	/* (the words from the packet's fields, conn_key_of's: reading them
	 * back from a key just stored would wait for the stores) */
	__u64 k0, k1;
	conn_key_words(p, &k0, &k1);
	__u32 slot = flow_hint_slot(k0, k1);
	struct flow_hint *h = bpf_map_lookup_elem(&flow_cache, &slot);
	if (!h || h->k0 != k0 || h->k1 != (k1 | flow_hint_epoch()))
		return 0;
	return h;
}

/* Whether a flow, as the table's path leaves it, is one a hint may
 * serve: proven (the caller's), to a real of its family, its client's
 * packets counted to 9, a timeout of 2 s or more, ESTABLISHED or UDP. */
static __always_inline int flow_hint_worthy(const struct conn *c, const struct real *r, __u8 proto, __u8 fam)
{
	/* (FULLNAT across families, NAT46 and NAT64, goes by the table) */
	if (!flow_cache_mask || c->in_pkts < 9 || c->timeout_s < 2 || r->family != fam)
		return 0;
	/* IPv6's: DR, NAT66 and FULLNAT66 (TUN goes by the table) */
	if (fam == AF_INET6 && (r->flags & XLB_REAL_F_TUN))
		return 0;
	return (proto == IPPROTO_TCP && c->state == XLB_CT_ESTABLISHED) || (proto == IPPROTO_UDP && c->state == XLB_CT_UDP);
}

static __always_inline void flow_hint_val_of(struct flow_hint_val *v, const struct conn *c)
{
	v->seen = c->last_seen;
	v->real = c->real;
	v->gen = c->gen;
	v->fnat = (c->flags & XLB_CONN_F_FNAT) != 0;
	v->laddr = c->laddr;
	v->lport = c->lport;
}

/* The ones'-complement sums of what a hinted IPv4 NAT or FULLNAT flow's
 * packet has rewritten (RFC 1624 eqn. 3's ~m + m' for each changed
 * 16-bit word, folded): the destination, VIP:vport to the real's address
 * and port, and FULLNAT's source, client to laddr:lport. The IPv4
 * header's checksum covers the addresses, TCP's or UDP's the addresses
 * (its pseudo-header) and the ports. Ones'-complement addition is
 * associative and a sum of words that are not all 0 folds to the same
 * nonzero value however it is grouped, so one delta added to each
 * checksum gives, bit for bit, what the table's path writes word by
 * word (nat_rewrite, fnat_source). -1: FULLNAT's local address is gone
 * (no hint). */
static __always_inline int flow_hint_deltas(struct flow_hint_val *v, const struct conn_key *k, const struct conn *c,
					    const struct real *r)
{
	v->ip_delta = v->l4_delta = 0;
	if (!(r->flags & XLB_REAL_F_NAT))
		return 0;
	__be16 rport = r->port ? r->port : k->dport;
	__u64 ip = (__u16)~k->dst + (__u16)~(k->dst >> 16) + (__u16)r->addr.v4 + (__u16)(r->addr.v4 >> 16);
	__u64 l4 = (__u16)~k->dport + rport;
	if (c->flags & XLB_CONN_F_FNAT) {
		__u32 slot = c->laddr;
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &slot);
		if (!la)
			return -1;
		ip += (__u16)~k->src + (__u16)~(k->src >> 16) + (__u16)la->addr.v4 + (__u16)(la->addr.v4 >> 16);
		l4 += (__u16)~k->sport + c->lport;
	}
	l4 += ip;
	v->ip_delta = csum_fold16(ip);
	v->l4_delta = csum_fold16(l4);
	return 0;
}

/* Writes this CPU's hint for the flow k after the table's path has
 * handled a packet of it (c as the packet left it), if the flow is one a
 * hint may serve. */
static __always_inline void flow_hint_write(const struct conn_key *k, const struct conn *c, const struct real *r,
					    __u8 proto)
{
	if (!flow_hint_worthy(c, r, proto, AF_INET))
		return;
	struct flow_hint_val v;
	flow_hint_val_of(&v, c);
	if (flow_hint_deltas(&v, k, c, r) < 0)
		return;
	__u64 k0, k1;
	flow_hint_words(k, &k0, &k1);
	__u32 slot = flow_hint_slot(k0, k1);
	struct flow_hint *h = bpf_map_lookup_elem(&flow_cache, &slot);
	if (!h)
		return;
	h->k0 = k0;
	h->k1 = k1 | flow_hint_epoch();
	h->v = v;
}

struct flow_hint_forget_ctx {
	__u64 k0;
	__u64 k1;
	__u32 slot;
};

static long flow_hint_forget_cpu(__u32 cpu, struct flow_hint_forget_ctx *f)
{
	struct flow_hint *h = bpf_map_lookup_percpu_elem(&flow_cache, &f->slot, cpu);
	if (h && h->k0 == f->k0 && (h->k1 & ((1ULL << FLOW_HINT_KEY_BITS) - 1)) == f->k1)
		h->k0 = 0;
	return 0;
}

/* Drops every CPU's hint for the flow k: the flow ends, and a packet of
 * the one that takes its ports may come in on another CPU. */
static __always_inline void flow_hint_forget(const struct conn_key *k)
{
	if (!flow_cache_mask)
		return;
	struct flow_hint_forget_ctx f;
	flow_hint_words(k, &f.k0, &f.k1);
	f.slot = flow_hint_slot(f.k0, f.k1);
	bpf_loop(flow_cache_cpus, flow_hint_forget_cpu, &f, 0);
}

/* Replies. A NAT or FULLNAT real's reply to its client takes, on the
 * table's path, the NAT-source filter, a hash lookup of its reply entry
 * (nat_replies or fnat_ports), its flow's, the real's entry and
 * counters, one or two rewrites and a FIB lookup: 4 to 5 times what a
 * client's hinted packet costs, and a download through a NAT director is
 * mostly replies. A reply's hint (reply_cache, per CPU, at
 * flow_hint_slot of the reply's own key) keeps what the table's path and
 * the FIB made of an earlier reply of its flow: the flow's key, the
 * rewrite as the sums it adds to the
 * checksums (TTL's decrement among them), the next hop's MACs and
 * interface, and what the FIB was asked with (the interface the reply
 * came in by, its TOS, the longest reply it let through, for its MTU).
 *
 * It serves a reply only where the table's path would do just that: a
 * reply with no SYN, FIN or RST (OUTPUT's ACK leaves ESTABLISHED as it is
 * in both of IPVS's tables), whose flow the array holds (ft_find_at),
 * not retired, ESTABLISHED (TCP) or UDP, with a timeout of 2 s or more
 * and not due a touch (the table's conn_rearm then writes nothing: a
 * timeout moves only with the control plane's writes, which move
 * flow_epoch), whose real is an IPv4 NAT real, the reply's source
 * (address and port; FULLNAT: the flow's local address and port its
 * destination) and not on standby. The flow's entry is read at every
 * reply, not copied into the hint: a client's packet that moves the
 * state on another CPU is seen at the next reply, and the client's path
 * has nothing to forget. A flow in the LRU behind the array (its window
 * full) is not found there, and its replies take the table's path.
 *
 * What the FIB answered is the kernel's to change. route_epoch is in
 * every reply's hint, read before the lookup whose answer it keeps; the
 * control plane moves it at every route, rule, address, link, neighbour
 * and netconf event of its namespace (pkg/dataplane/xdp/routes.go), and
 * leaves it 0, which writes no hint, where it cannot follow them. A
 * change's event reaches the control plane after the change: the replies
 * a hint sends in between go the old way (the kernel's own forwarding
 * checks its cached route at every packet). */
volatile __u32 route_epoch = 0;

static __always_inline struct reply_hint *reply_hint_at(__u64 k0, __u64 k1)
{
	__u32 slot = flow_hint_slot(k0, k1);
	return bpf_map_lookup_elem(&reply_cache, &slot);
}

/* The flow slot at's entry (0 if none), the asm as in ft_find. */
static __always_inline struct ft_slot *ft_slot_of(__u32 at)
{
	struct ft_slot *s = bpf_map_lookup_elem(&flowtab, &at);
	asm volatile("" : "+r"(s));
	return s;
}

/* The state a flow a hint may serve is in: ESTABLISHED, or UDP's. */
static __always_inline __u8 hint_state(__u8 proto)
{
	return proto == IPPROTO_TCP ? XLB_CT_ESTABLISHED : XLB_CT_UDP;
}

/* reply_hinted: an IPv4 NAT or FULLNAT real's reply that this CPU's
 * reply_cache holds goes to its client as the table's path and the FIB
 * would send it: counted as the real's output and as a NAT reply, its
 * source the VIP's address and port (FULLNAT: its destination the
 * client's), its TTL one less, to the next hop. XLB_CONTINUE when the
 * table's path must take it. */
static __always_inline int reply_hinted(struct xdp_md *ctx, struct packet *p, void *data_end, __u64 bytes)
{
	if (!flow_cache_mask)
		return XLB_CONTINUE;
	__u64 k0, k1;
	conn_key_words(p, &k0, &k1);
	struct reply_hint *h = reply_hint_at(k0, k1);
	if (!h || h->k0 != k0 || h->k1 != (k1 | flow_hint_epoch()) || h->route_epoch != route_epoch)
		return XLB_CONTINUE;
	if (state_moves(p)) {
		h->k0 = 0;
		return XLB_CONTINUE;
	}
	struct iphdr *ip = p->ip;
	if ((void *)(ip + 1) > data_end || ip->ttl <= 1 || ip->tos != h->tos || bpf_ntohs(ip->tot_len) > h->max_len ||
	    ctx->ingress_ifindex != h->iif)
		return XLB_CONTINUE;
	int at = ft_find_at(h->fk0, (__u64)h->fports | (__u64)p->proto << 32);
	if (at < 0)
		return XLB_CONTINUE;
	struct ft_slot *s = ft_slot_of((__u32)at);
	if (!s)
		return XLB_CONTINUE;
	struct conn *c = &s->c;
	if (c->retired || c->state != hint_state(p->proto) || c->timeout_s < 2 || touch_due(c->last_seen, xlb_now()))
		return XLB_CONTINUE;
	/* The reply's way back: to the flow's local address and port, or to
	 * its client. */
	if (c->flags & XLB_CONN_F_FNAT) {
		__u32 ls = c->laddr;
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &ls);
		if (!la || la->addr.v4 != p->dst.v4 || c->lport != p->dport)
			return XLB_CONTINUE;
	} else if (p->dst.v4 != (__be32)h->fk0 || p->dport != (__be16)h->fports) {
		return XLB_CONTINUE;
	}
	__u32 rs = c->real;
	struct real *r = bpf_map_lookup_elem(&reals, &rs);
	if (!r || (r->flags & (XLB_REAL_F_NAT | XLB_REAL_F_STANDBY)) != XLB_REAL_F_NAT || r->family != AF_INET ||
	    r->addr.v4 != p->src.v4 || (r->port ? r->port : (__be16)(h->fports >> 16)) != p->sport)
		return XLB_CONTINUE;
	struct counters *rc = bpf_map_lookup_elem(&real_stats, &rs);
	if (rc) {
		rc->out_packets++;
		rc->out_bytes += bytes;
	}
	__u16 *l4sum;
	__be16 *ports;
	if (l4_sum_ports(p, data_end, &l4sum, &ports) < 0)
		return XDP_DROP;
	if (l4sum)
		l4_sum_put(p, l4sum, csum_add_delta(*l4sum, h->l4_delta));
	ports[0] = (__be16)(h->fports >> 16);
	ports[1] = (__be16)h->fports;
	ip->check = csum_add_delta(ip->check, h->ip_delta);
	ip->saddr = (__be32)(h->fk0 >> 32);
	ip->daddr = (__be32)h->fk0;
	ip->ttl--;
	stat_inc(XLB_STAT_NAT_REPLY);
	__builtin_memcpy(p->eth->h_dest, h->dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, h->smac, ETH_ALEN);
	if (h->oif == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(h->oif, 0);
}

/* reply_hint_note: after the table's path and the FIB sent an IPv4 NAT
 * or FULLNAT reply whose key was (k0, k1) on (its headers, at hdrs,
 * rewritten; its next hop's MACs written; oif_epoch the interface it
 * leaves by and, above, the route_epoch read before the FIB was asked),
 * this CPU's hint for it. Whether its flow is one a hint may serve is
 * reply_hinted's to ask, at every reply. The sums are the rewrite's: each
 * address and port word from the key's to the frame's (RFC 1624 eqn. 3,
 * as flow_hint_deltas; a word that did not change adds ~x + x, 0 in
 * ones' complement), and the IPv4 header's TTL one less (its word's raw
 * value one less: ~1). A reply of the same key, epochs and way in keeps
 * the longest length the FIB has let through. A global function: its
 * walk is the verifier's once, and xlb_xdp's frame keeps its size. */
__attribute__((noinline)) int reply_hint_note(struct xdp_md *ctx, __u64 k0, __u64 k1, __u32 hdrs, __u64 oif_epoch)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = hdrs & 0xffff, l4 = hdrs >> 16;
	if (l3 > 64 || l4 > 1024)
		return 0;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + l3;
	__be16 *ports = data + l4;
	if ((void *)(eth + 1) > data_end || (void *)(ip + 1) > data_end || (void *)(ports + 2) > data_end)
		return 0;
	struct reply_hint *h = reply_hint_at(k0, k1);
	if (!h)
		return 0;
	__u32 epoch = (__u32)(oif_epoch >> 32);
	__u16 len = bpf_ntohs(ip->tot_len);
	if (h->k0 == k0 && h->k1 == (k1 | flow_hint_epoch()) && h->route_epoch == epoch &&
	    h->iif == ctx->ingress_ifindex && h->tos == ip->tos && h->max_len > len)
		len = h->max_len;
	__be32 saddr = ip->saddr, daddr = ip->daddr;
	__u32 src0 = (__u32)k0, dst0 = (__u32)(k0 >> 32);
	__u64 a = (__u16)~src0 + (__u16)~(src0 >> 16) + (__u16)saddr + (__u16)(saddr >> 16) + (__u16)~dst0 +
		  (__u16)~(dst0 >> 16) + (__u16)daddr + (__u16)(daddr >> 16);
	__u64 l4s = a + (__u16)~(__u16)k1 + ports[0] + (__u16)~(__u16)(k1 >> 16) + ports[1];
	h->k0 = k0;
	h->k1 = k1 | flow_hint_epoch();
	h->fk0 = (__u64)daddr | (__u64)saddr << 32;
	h->fports = (__u32)ports[1] | (__u32)ports[0] << 16;
	h->route_epoch = epoch;
	h->iif = ctx->ingress_ifindex;
	h->oif = (__u32)oif_epoch;
	h->ip_delta = csum_fold16(a + (__u16)~1);
	h->l4_delta = csum_fold16(l4s);
	__builtin_memcpy(h->dmac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(h->smac, eth->h_source, ETH_ALEN);
	h->max_len = len;
	h->tos = ip->tos;
	return 0;
}

/* IPv6. A flow's five words mixed, whose upper half picks its slot. */
static __always_inline __u64 flow_hint6_mix(__u64 s0, __u64 s1, __u64 d0, __u64 d1, __u64 kp)
{
	return ((s0 ^ (s1 * 0xC2B2AE3D27D4EB4FULL)) + (d0 ^ (d1 * 0x165667B19E3779F9ULL)) + kp) * 0x9E3779B97F4A7C15ULL;
}

static __always_inline __u32 flow_hint6_slot(__u64 mix)
{
	return (__u32)(mix >> 32) & flow_cache_mask;
}

/* This CPU's hint slot for the IPv6 flow whose addresses are at addrs
 * (an IPv6 header's source and destination, 32 bytes) and whose ports
 * and protocol are kp, whatever flow it holds. */
static __always_inline struct flow_hint6 *flow_hint6_at(const void *addrs, __u64 kp)
{
	const __u64 *a = addrs;
	__u32 slot = flow_hint6_slot(flow_hint6_mix(a[0], a[1], a[2], a[3], kp));
	return bpf_map_lookup_elem(&flow_cache6, &slot);
}

/* The hint of this CPU for that flow, or 0. The addresses are read again
 * after the lookup rather than kept across it: hinted6's frame is what
 * xlb_xdp6's leaves of 6.1's 512 bytes. */
static __always_inline struct flow_hint6 *flow_hint_find6(const void *addrs, __u64 kp)
{
	const __u64 *a = addrs;
	struct flow_hint6 *h = flow_hint6_at(addrs, kp);
	if (!h || h->kp != (kp | flow_hint_epoch()) || h->s0 != a[0] || h->s1 != a[1] || h->d0 != a[2] || h->d1 != a[3])
		return 0;
	return h;
}

/* Forgetting an IPv6 flow's hints carries its mix rather than its five
 * words (the frames that call it are near 6.1's limit): a hint of
 * another flow with the same mix in the same slot is dropped too, which
 * costs that flow one trip through the table and changes nothing else. */
struct flow_hint_forget6_ctx {
	__u64 mix;
	__u32 slot;
};

static long flow_hint_forget6_cpu(__u32 cpu, struct flow_hint_forget6_ctx *f)
{
	struct flow_hint6 *h = bpf_map_lookup_percpu_elem(&flow_cache6, &f->slot, cpu);
	if (h && flow_hint6_mix(h->s0, h->s1, h->d0, h->d1, h->kp & ((1ULL << FLOW_HINT_KEY_BITS) - 1)) == f->mix)
		h->kp = 0;
	return 0;
}

static __attribute__((noinline)) int flow_hint_forget6(const struct conn_key6 *k)
{
	if (!flow_cache_mask)
		return 0;
	__u64 s0, s1, d0, d1;
	__builtin_memcpy(&s0, &k->src[0], 8);
	__builtin_memcpy(&s1, &k->src[2], 8);
	__builtin_memcpy(&d0, &k->dst[0], 8);
	__builtin_memcpy(&d1, &k->dst[2], 8);
	struct flow_hint_forget6_ctx f;
	f.mix = flow_hint6_mix(s0, s1, d0, d1, ports_word(k->sport, k->dport, k->proto));
	f.slot = flow_hint6_slot(f.mix);
	bpf_loop(flow_cache_cpus, flow_hint_forget6_cpu, &f, 0);
	return 0;
}

#endif /* XLB_FLOWCACHE_H */
