/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Choosing a real for a new flow, exactly as IPVS would.
 *
 * The control plane (pkg/sched) precomputes every table: rr/wrr as the
 * sequence of picks IPVS would make from its current state (a prefix, then a
 * cycle repeated forever), sh/dh as the 256 hash buckets, mh as its Maglev
 * lookup table. The program hashes and indexes them. */
#ifndef XLB_SCHED_H
#define XLB_SCHED_H

#include "xlb_maps.h"
#include "parse.h"

/* include/linux/hash.h hash_32() with GOLDEN_RATIO_32. */
static __always_inline __u32 hash_32(__u32 val, __u32 bits)
{
	return (val * 0x61C88647u) >> (32 - bits);
}

static __always_inline struct real *real_if_available(__u32 slot)
{
	if (slot == XLB_NO_REAL)
		return 0;
	struct real *r = bpf_map_lookup_elem(&reals, &slot);
	if (!r || !(r->flags & XLB_REAL_F_AVAILABLE))
		return 0;
	return r;
}

/* Entry i of a service slot's table; past the table's end, none. */
static __always_inline __u32 sched_tab_get(const struct svc *s, __u32 i)
{
	if (i >= s->tab_len)
		return XLB_NO_REAL;
	__u32 key = s->tab_off + i;
	__u32 *v = bpf_map_lookup_elem(&sched_tab, &key);
	return v ? *v : XLB_NO_REAL;
}

/* rr and wrr: take the next pick of the sequence. */
static __always_inline __u32 sched_sequence(const struct svc *s, __u32 svc_slot)
{
	if (s->seq_len == 0 || s->seq_loop >= s->seq_len)
		return XLB_NO_REAL;
	__u64 *cursor = bpf_map_lookup_elem(&sched_cursor, &svc_slot);
	if (!cursor)
		return XLB_NO_REAL;
	__u64 n = __sync_fetch_and_add(cursor, 1);
	__u64 pos = n;
	if (n >= s->seq_len)
		pos = s->seq_loop + (n - s->seq_loop) % (s->seq_len - s->seq_loop);
	return sched_tab_get(s, (__u32)pos);
}

/* An address as sh and dh hash it: ntohl of an IPv4 address, the XOR of
 * an IPv6 address's words in host order (ip_vs_sh_hashkey's fold). */
static __always_inline __u32 addr_fold(const union xlb_addr *a, __u8 family)
{
	if (family == AF_INET)
		return bpf_ntohl(a->v4);
	return bpf_ntohl(a->v6[0] ^ a->v6[1] ^ a->v6[2] ^ a->v6[3]);
}

/* What a scheduler reads of a new connection: folded addresses. */
struct sched_in {
	__u32 src;   /* addr_fold of the client */
	__u32 dst;   /* addr_fold of the VIP */
	__be16 sport;
	__u16 pad;
};

/* sh (ip_vs_sh.c): bucket of the client [+ sport with sh-port]; with
 * sh-fallback, probe (2*ih + offset) & 255 until a usable real or an empty
 * bucket. */
static __always_inline __u32 sched_sh(const struct svc *s, __u32 svc_slot, const struct sched_in *p)
{
	__u32 key = p->src;
	if (s->flags & XLB_SVC_F_SH_PORT)
		key += bpf_ntohs(p->sport);
	__u32 ih = hash_32(key, XLB_HASH_TAB_BITS);
	__u32 slot = sched_tab_get(s, ih);
	if (real_if_available(slot))
		return slot;
	if (!(s->flags & XLB_SVC_F_SH_FALLBACK))
		return XLB_NO_REAL;
	for (__u32 offset = 0; offset < XLB_HASH_TAB_SIZE; offset++) {
		slot = sched_tab_get(s, (2 * ih + offset) & (XLB_HASH_TAB_SIZE - 1));
		if (slot == XLB_NO_REAL)
			return XLB_NO_REAL;
		if (real_if_available(slot))
			return slot;
	}
	return XLB_NO_REAL;
}

/* dh (ip_vs_dh.c): bucket of the VIP, no fallback. */
static __always_inline __u32 sched_dh(const struct svc *s, const struct sched_in *p)
{
	__u32 slot = sched_tab_get(s, hash_32(p->dst, XLB_HASH_TAB_BITS));
	return real_if_available(slot) ? slot : XLB_NO_REAL;
}

/* The kernel's hsiphash() of one u32 on a 64-bit kernel: SipHash-1-3
 * truncated to 32 bits (lib/siphash.c, hsiphash_1u32), under a key whose
 * two words are both k. */
#define XLB_SIPROUND                                                           \
	do {                                                                   \
		v0 += v1; v1 = (v1 << 13) | (v1 >> 51); v1 ^= v0;             \
		v0 = (v0 << 32) | (v0 >> 32);                                  \
		v2 += v3; v3 = (v3 << 16) | (v3 >> 48); v3 ^= v2;              \
		v0 += v3; v3 = (v3 << 21) | (v3 >> 43); v3 ^= v0;              \
		v2 += v1; v1 = (v1 << 17) | (v1 >> 47); v1 ^= v2;              \
		v2 = (v2 << 32) | (v2 >> 32);                                  \
	} while (0)

static __always_inline __u32 hsiphash_u32(__u32 v, __u64 k)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k;
	__u64 v1 = 0x646f72616e646f6dULL ^ k;
	__u64 v2 = 0x6c7967656e657261ULL ^ k;
	__u64 v3 = 0x7465646279746573ULL ^ k;
	__u64 b = (4ULL << 56) | v;

	v3 ^= b;
	XLB_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	XLB_SIPROUND;
	XLB_SIPROUND;
	XLB_SIPROUND;
	return (__u32)((v0 ^ v1) ^ (v2 ^ v3));
}

/* ip_vs_mh.c's fixed key 1 (generate_hash_secret): the same in every
 * director, so all build one table and hash a client alike. */
#define XLB_MH_KEY1 2654435761ULL

/* The mh-fallback loop runs with bpf_loop (Linux 5.17): set by the loader
 * when the kernel has it (the control plane refuses mh-fallback without
 * it), so older kernels never see the helper. */
volatile const __u8 have_bpf_loop = 0;

struct mh_fallback {
	__u32 key;     /* the client's fold [+ source port] */
	__u32 ih;      /* its first entry */
	__u32 tab_off; /* the service's table */
	__u32 tab_len;
	__u32 found;   /* the real slot, or XLB_NO_REAL */
};

/* One step of ip_vs_mh_get_fallback: the entry at hash(key, roffset),
 * roffset = (ih + offset) mod size; stop at an available real or an empty
 * entry. */
static long mh_fallback_step(__u32 offset, void *ctx)
{
	struct mh_fallback *f = ctx;
	__u32 len = f->tab_len;
	if (!len)
		return 1;
	__u32 roffset = (offset + f->ih) % len;
	__u32 key = f->tab_off + hsiphash_u32(f->key + roffset, XLB_MH_KEY1) % len;
	__u32 *v = bpf_map_lookup_elem(&sched_tab, &key);
	__u32 slot = v ? *v : XLB_NO_REAL;
	if (slot == XLB_NO_REAL)
		return 1;
	if (real_if_available(slot)) {
		f->found = slot;
		return 1;
	}
	return 0;
}

/* mh (ip_vs_mh.c): the entry at hsiphash(fold [+ sport with mh-port]) mod
 * the table's prime size; with mh-fallback, an unavailable real's client
 * rehashes with offsets until an available real or an empty entry. The
 * table (pkg/sched.MHTable) is the kernel's, entry for entry. */
static __always_inline __u32 sched_mh(const struct svc *s, const struct sched_in *p)
{
	__u32 len = s->tab_len;
	if (!len)
		return XLB_NO_REAL;
	__u32 key = p->src;
	if (s->flags & XLB_SVC_F_SH_PORT)
		key += bpf_ntohs(p->sport);
	__u32 ih = hsiphash_u32(key, XLB_MH_KEY1) % len;
	__u32 slot = sched_tab_get(s, ih);
	if (slot == XLB_NO_REAL)
		return XLB_NO_REAL;
	if (real_if_available(slot))
		return slot;
	if (!(s->flags & XLB_SVC_F_SH_FALLBACK) || !have_bpf_loop)
		return XLB_NO_REAL;
	struct mh_fallback f = { .key = key, .ih = ih, .tab_off = s->tab_off, .tab_len = len, .found = XLB_NO_REAL };
	bpf_loop(len, mh_fallback_step, &f, 0);
	return f.found;
}

/* lc, wlc, sed, nq (ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c, ip_vs_nq.c): a
 * scan of the dest list (the service's table, seq_len entries) reading each
 * real's ActiveConn/InActConn. Overheads are 32-bit as in the kernel, loads
 * compared by 64-bit cross-multiplication, ties keep the earlier dest.
 * Unavailable reals (weight 0, no next hop) are skipped, as IPVS skips
 * weight 0 and overloaded dests. */
static __always_inline __u32 sched_least(const struct svc *s, __u32 svc_slot)
{
	__u32 n = s->seq_len;
	__u32 least = XLB_NO_REAL;
	__s32 loh = 0, lw = 0;
	for (__u32 i = 0; i < XLB_MAX_SCAN; i++) {
		if (i >= n)
			break;
		__u32 slot = sched_tab_get(s, i);
		struct real *r = real_if_available(slot);
		if (!r)
			continue;
		struct conn_counts *rc = bpf_map_lookup_elem(&real_conns, &slot);
		if (!rc)
			continue;
		__s32 a = (__s32)rc->active, in = (__s32)rc->inactive;
		__s32 w = r->weight;
		__s32 doh;
		switch (s->sched) {
		case XLB_SCHED_LC:
			doh = (a << 8) + in;
			if (least == XLB_NO_REAL || (__u32)doh < (__u32)loh) {
				least = slot;
				loh = doh;
			}
			continue;
		case XLB_SCHED_NQ:
			if (a == 0)
				return slot;
			doh = a + 1;
			break;
		case XLB_SCHED_SED:
			doh = a + 1;
			break;
		default: /* wlc */
			doh = (a << 8) + in;
			break;
		}
		if (least == XLB_NO_REAL || (__s64)loh * w > (__s64)doh * lw) {
			least = slot;
			loh = doh;
			lw = w;
		}
	}
	return least;
}

/* fo, ovf (ip_vs_fo.c, ip_vs_ovf.c): the heaviest available real, the
 * first of equal weights; ovf passes over a real with more active
 * connections than its weight. Unavailable reals (weight 0, no next hop)
 * are skipped, as IPVS skips weight 0 and overloaded dests. */
static __always_inline __u32 sched_heaviest(const struct svc *s, int ovf)
{
	__u32 n = s->seq_len;
	__u32 best = XLB_NO_REAL;
	__s32 bw = 0;
	for (__u32 i = 0; i < XLB_MAX_SCAN; i++) {
		if (i >= n)
			break;
		__u32 slot = sched_tab_get(s, i);
		struct real *r = real_if_available(slot);
		if (!r)
			continue;
		__s32 w = r->weight;
		if (ovf) {
			struct conn_counts *rc = bpf_map_lookup_elem(&real_conns, &slot);
			if (!rc || (__s64)rc->active > (__s64)w)
				continue;
		}
		if (w > bw) {
			best = slot;
			bw = w;
		}
	}
	return best;
}

/* A real's ip_vs_dest_conn_overhead, ActiveConn*256 + InActConn, as the
 * kernel's int; 0 when its counts are not there. */
static __always_inline __s32 real_overhead(__u32 slot)
{
	struct conn_counts *rc = bpf_map_lookup_elem(&real_conns, &slot);
	if (!rc)
		return 0;
	return ((__s32)rc->active << 8) + (__s32)rc->inactive;
}

/* One twos draw: walking the available reals subtracting their weights,
 * the first where the draw is 0 or less. A loop of its own per draw keeps
 * the verifier's states few. */
static __always_inline __u32 twos_walk(const struct svc *s, __s64 r)
{
	__u32 n = s->seq_len;
	for (__u32 i = 0; i < XLB_MAX_SCAN; i++) {
		if (i >= n)
			break;
		__u32 slot = sched_tab_get(s, i);
		struct real *rl = real_if_available(slot);
		if (!rl)
			continue;
		r -= rl->weight;
		if (r <= 0)
			return slot;
	}
	return XLB_NO_REAL;
}

/* twos (ip_vs_twos.c, Linux 6.2): two draws in [0, sum of the available
 * weights], each walking the reals (twos_walk); the second choice replaces
 * the first only when its overhead per weight is lower (int products, as
 * the kernel's). A global function: verified once, on its own. */
__attribute__((noinline)) __u32 xlb_twos(__u32 svc_slot)
{
	struct svc *s = bpf_map_lookup_elem(&svcs, &svc_slot);
	if (!s)
		return XLB_NO_REAL;
	__u32 n = s->seq_len;
	__u64 total = 0;
	for (__u32 i = 0; i < XLB_MAX_SCAN; i++) {
		if (i >= n)
			break;
		struct real *r = real_if_available(sched_tab_get(s, i));
		if (r)
			total += (__u32)r->weight;
	}
	if (!total)
		return XLB_NO_REAL;
	total += 1;
	__u32 c1 = twos_walk(s, (__s64)((__u64)bpf_get_prandom_u32() % total));
	__u32 c2 = twos_walk(s, (__s64)((__u64)bpf_get_prandom_u32() % total));
	if (c1 == XLB_NO_REAL || c2 == XLB_NO_REAL || c1 == c2)
		return c1;
	struct real *r1 = bpf_map_lookup_elem(&reals, &c1);
	struct real *r2 = bpf_map_lookup_elem(&reals, &c2);
	if (!r1 || !r2)
		return c1;
	if ((__s32)((__u32)r2->weight * (__u32)real_overhead(c1)) > (__s32)((__u32)r1->weight * (__u32)real_overhead(c2)))
		return c2;
	return c1;
}

/* Returns a real slot that is available for a new flow, or XLB_NO_REAL.
 * A global function: the verifier checks it once, on its own, instead of
 * once per path through the caller (the scans make many). It takes the
 * addresses folded (addr_fold), so one picker serves both families. */
__attribute__((noinline)) __u32 xlb_schedule(__u32 svc_slot, __u32 src_fold, __u32 dst_fold, __be16 sport)
{
	struct svc *s = bpf_map_lookup_elem(&svcs, &svc_slot);
	if (!s)
		return XLB_NO_REAL;
	struct sched_in p = { .src = src_fold, .dst = dst_fold, .sport = sport };
	__u32 slot;
	switch (s->sched) {
	case XLB_SCHED_RR:
	case XLB_SCHED_WRR:
		slot = sched_sequence(s, svc_slot);
		/* The table never holds an unavailable real; checking again
		 * covers a weight change racing with this packet. */
		return real_if_available(slot) ? slot : XLB_NO_REAL;
	case XLB_SCHED_SH:
		return sched_sh(s, svc_slot, &p);
	case XLB_SCHED_DH:
		return sched_dh(s, &p);
	case XLB_SCHED_LC:
	case XLB_SCHED_WLC:
	case XLB_SCHED_SED:
	case XLB_SCHED_NQ:
		return sched_least(s, svc_slot);
	case XLB_SCHED_FO:
		return sched_heaviest(s, 0);
	case XLB_SCHED_OVF:
		return sched_heaviest(s, 1);
	case XLB_SCHED_TWOS:
		return xlb_twos(svc_slot);
	case XLB_SCHED_MH:
		return sched_mh(s, &p);
	}
	return XLB_NO_REAL;
}

#endif /* XLB_SCHED_H */
