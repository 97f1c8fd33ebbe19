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
	ip = (ip & 0xffff) + (ip >> 16);
	ip = (ip & 0xffff) + (ip >> 16);
	l4 = (l4 & 0xffff) + (l4 >> 16);
	l4 = (l4 & 0xffff) + (l4 >> 16);
	v->ip_delta = ip;
	v->l4_delta = l4;
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
