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

/* Set by the loader when the kernel has bpf_loop (Linux 5.17), so older
 * kernels never see the helper: the scans below run in it, and
 * mh-fallback (which the control plane refuses without it). */
volatile const __u8 have_bpf_loop = 0;

/* A scan of n steps, stopped by a step that returns 1. n is at most 256:
 * the control plane refuses longer scans (maxScan), and sh's table has 256
 * buckets. With bpf_loop the verifier checks one step; as a bounded loop
 * it checks every iteration on every path that reaches it (256 of them
 * per scan: a third of each program's verification, and most of its load
 * time, before bpf_loop). step(i, ctx) and cb, the same step as
 * bpf_loop's callback, are one function.
 *
 * The bounded loop's back edge must be a jump: 6.1's verifier refuses a
 * loop closed by an instruction falling through into its head ("back-edge
 * from insn"), even in code the other branch makes dead, and the compiler
 * put the increment there, tested before it. The barrier makes the test
 * read the incremented counter, so the test closes the loop. Its bound
 * the verifier reads as 1..256 without a branch ((u8)(n - 1) + 1, n itself
 * for 1..256): a clamp by branch (min) doubled the paths walked. */
#define XLB_SCAN_MAX 256
#define sched_scan(n, step, cb, ctx)                                           \
	do {                                                                   \
		__u32 n_ = (n);                                                \
		if (have_bpf_loop) {                                           \
			bpf_loop(n_ < XLB_SCAN_MAX ? n_ : XLB_SCAN_MAX, cb, (ctx), 0); \
		} else if (n_) {                                               \
			__u32 m_ = (__u32)(__u8)(n_ - 1) + 1;                  \
			__u32 i_ = 0;                                          \
			do {                                                   \
				asm volatile("" : "+r"(i_));                   \
				if (step(i_, (ctx)))                           \
					break;                                 \
				i_++;                                          \
				asm volatile("" : "+r"(i_));                   \
			} while (i_ < m_);                                     \
		}                                                              \
	} while (0)

_Static_assert(XLB_MAX_SCAN == XLB_SCAN_MAX && XLB_HASH_TAB_SIZE == XLB_SCAN_MAX, "a scan is at most 256 steps");

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

/* Entry off + i of the pool; none past the pool's end. */
static __always_inline __u32 tab_raw(__u32 off, __u32 i)
{
	__u32 key = off + i;
	__u32 *v = bpf_map_lookup_elem(&sched_tab, &key);
	return v ? *v : XLB_NO_REAL;
}

/* Entry i of the table of len entries from off; past its end, none. */
static __always_inline __u32 tab_at(__u32 off, __u32 len, __u32 i)
{
	if (i >= len)
		return XLB_NO_REAL;
	return tab_raw(off, i);
}

/* How many of a service's entries a scan of its reals reads: the dest
 * list's length, within its table. The scans' steps read entries below
 * it unchecked: a check per step made the verifier walk the rest of the
 * loop once for every table length (it learns the length from each
 * failed check), not once. */
static __always_inline __u32 scan_len(const struct svc *s)
{
	return s->seq_len < s->tab_len ? s->seq_len : s->tab_len;
}

/* Entry i of a service slot's table. */
static __always_inline __u32 sched_tab_get(const struct svc *s, __u32 i)
{
	return tab_at(s->tab_off, s->tab_len, i);
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

struct sh_probe {
	__u32 tab_off, tab_len;
	__u32 ih;
	__u32 found; /* the real slot, or XLB_NO_REAL */
};

/* A fallback's probe (sh's and mh's) stops at an available real, kept in
 * found, or at an empty entry. */
static __always_inline long probe_stops(__u32 slot, __u32 *found)
{
	if (slot == XLB_NO_REAL)
		return 1;
	if (real_if_available(slot)) {
		*found = slot;
		return 1;
	}
	return 0;
}

/* One probe of sh-fallback. */
static __always_inline long sh_probe_step(__u32 offset, struct sh_probe *f)
{
	return probe_stops(tab_at(f->tab_off, f->tab_len, (2 * f->ih + offset) & (XLB_HASH_TAB_SIZE - 1)), &f->found);
}

static long sh_probe_cb(__u32 offset, void *ctx)
{
	return sh_probe_step(offset, ctx);
}

/* sh (ip_vs_sh.c): bucket of the client [+ sport with sh-port]; with
 * sh-fallback, probe (2*ih + offset) & 255 until a usable real or an empty
 * bucket. */
static __always_inline __u32 sched_sh(const struct svc *s, __u32 src, __be16 sport, struct sh_probe *f)
{
	__u32 key = src;
	if (s->flags & XLB_SVC_F_SH_PORT)
		key += bpf_ntohs(sport);
	__u32 ih = hash_32(key, XLB_HASH_TAB_BITS);
	__u32 slot = sched_tab_get(s, ih);
	if (real_if_available(slot))
		return slot;
	if (!(s->flags & XLB_SVC_F_SH_FALLBACK))
		return XLB_NO_REAL;
	*f = (struct sh_probe){ .tab_off = s->tab_off, .tab_len = s->tab_len, .ih = ih, .found = XLB_NO_REAL };
	sched_scan(XLB_HASH_TAB_SIZE, sh_probe_step, sh_probe_cb, f);
	return f->found;
}

/* dh (ip_vs_dh.c): bucket of the VIP, no fallback. */
static __always_inline __u32 sched_dh(const struct svc *s, __u32 dst)
{
	__u32 slot = sched_tab_get(s, hash_32(dst, XLB_HASH_TAB_BITS));
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
	return probe_stops(tab_raw(f->tab_off, hsiphash_u32(f->key + roffset, XLB_MH_KEY1) % len), &f->found);
}

/* mh (ip_vs_mh.c): the entry at hsiphash(fold [+ sport with mh-port]) mod
 * the table's prime size; with mh-fallback, an unavailable real's client
 * rehashes with offsets until an available real or an empty entry. The
 * table (pkg/sched.MHTable) is the kernel's, entry for entry. */
static __always_inline __u32 sched_mh(const struct svc *s, __u32 src, __be16 sport, struct mh_fallback *f)
{
	__u32 len = s->tab_len;
	if (!len)
		return XLB_NO_REAL;
	__u32 key = src;
	if (s->flags & XLB_SVC_F_SH_PORT)
		key += bpf_ntohs(sport);
	__u32 ih = hsiphash_u32(key, XLB_MH_KEY1) % len;
	__u32 slot = sched_tab_get(s, ih);
	if (slot == XLB_NO_REAL)
		return XLB_NO_REAL;
	if (real_if_available(slot))
		return slot;
	if (!(s->flags & XLB_SVC_F_SH_FALLBACK) || !have_bpf_loop)
		return XLB_NO_REAL;
	*f = (struct mh_fallback){ .key = key, .ih = ih, .tab_off = s->tab_off, .tab_len = len, .found = XLB_NO_REAL };
	bpf_loop(len, mh_fallback_step, f, 0);
	return f->found;
}

/* lc, wlc, sed, nq (ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c, ip_vs_nq.c): a
 * scan of the dest list (the service's table, seq_len entries) reading each
 * real's ActiveConn/InActConn. Overheads are 32-bit as in the kernel, loads
 * compared by 64-bit cross-multiplication, ties keep the earlier dest.
 * Unavailable reals (weight 0, no next hop) are skipped, as IPVS skips
 * weight 0 and overloaded dests. */
struct least_scan {
	__u32 tab_off;
	__u32 sched;
	__u32 least; /* the real slot so far, or XLB_NO_REAL */
	__s32 loh, lw;
};

static __always_inline long least_step(__u32 i, struct least_scan *l)
{
	__u32 slot = tab_raw(l->tab_off, i);
	struct real *r = real_if_available(slot);
	if (!r)
		return 0;
	struct conn_counts *rc = bpf_map_lookup_elem(&real_conns, &slot);
	if (!rc)
		return 0;
	__s32 a = (__s32)rc->active, in = (__s32)rc->inactive;
	__s32 w = r->weight;
	__s32 doh;
	switch (l->sched) {
	case XLB_SCHED_LC:
		doh = (a << 8) + in;
		if (l->least == XLB_NO_REAL || (__u32)doh < (__u32)l->loh) {
			l->least = slot;
			l->loh = doh;
		}
		return 0;
	case XLB_SCHED_NQ:
		if (a == 0) {
			l->least = slot;
			return 1;
		}
		doh = a + 1;
		break;
	case XLB_SCHED_SED:
		doh = a + 1;
		break;
	default: /* wlc */
		doh = (a << 8) + in;
		break;
	}
	if (l->least == XLB_NO_REAL || (__s64)l->loh * w > (__s64)doh * l->lw) {
		l->least = slot;
		l->loh = doh;
		l->lw = w;
	}
	return 0;
}

static long least_cb(__u32 i, void *ctx)
{
	return least_step(i, ctx);
}

/* sched is a constant at each call: a scan whose steps switch on a
 * scheduler the verifier knows is walked once, not once per scheduler on
 * every path. */
static __always_inline __u32 sched_least(const struct svc *s, __u32 sched)
{
	struct least_scan l = { .tab_off = s->tab_off, .sched = sched, .least = XLB_NO_REAL };
	sched_scan(scan_len(s), least_step, least_cb, &l);
	return l.least;
}

/* fo, ovf (ip_vs_fo.c, ip_vs_ovf.c): the heaviest available real, the
 * first of equal weights; ovf passes over a real with more active
 * connections than its weight. Unavailable reals (weight 0, no next hop)
 * are skipped, as IPVS skips weight 0 and overloaded dests. */
struct heavy_scan {
	__u32 tab_off;
	__u32 ovf;
	__u32 best; /* the real slot so far, or XLB_NO_REAL */
	__s32 bw;
};

static __always_inline long heavy_step(__u32 i, struct heavy_scan *h)
{
	__u32 slot = tab_raw(h->tab_off, i);
	struct real *r = real_if_available(slot);
	if (!r)
		return 0;
	__s32 w = r->weight;
	if (h->ovf) {
		struct conn_counts *rc = bpf_map_lookup_elem(&real_conns, &slot);
		if (!rc || (__s64)rc->active > (__s64)w)
			return 0;
	}
	if (w > h->bw) {
		h->best = slot;
		h->bw = w;
	}
	return 0;
}

static long heavy_cb(__u32 i, void *ctx)
{
	return heavy_step(i, ctx);
}

static __always_inline __u32 sched_heaviest(const struct svc *s, int ovf, struct heavy_scan *h)
{
	*h = (struct heavy_scan){ .tab_off = s->tab_off, .ovf = ovf, .best = XLB_NO_REAL };
	sched_scan(scan_len(s), heavy_step, heavy_cb, h);
	return h->best;
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

/* twos's scans: with sum set, the sum of the available weights into acc;
 * else one draw in acc, walking the available reals subtracting their
 * weights, the first where the draw is 0 or less. */
struct twos_scan {
	__u32 tab_off;
	__s64 acc;
	__u32 sum;
	__u32 found; /* the real slot, or XLB_NO_REAL */
};

static __always_inline long twos_step(__u32 i, struct twos_scan *t)
{
	__u32 slot = tab_raw(t->tab_off, i);
	struct real *r = real_if_available(slot);
	if (!r)
		return 0;
	if (t->sum) {
		t->acc += (__u32)r->weight;
		return 0;
	}
	t->acc -= r->weight;
	if (t->acc <= 0) {
		t->found = slot;
		return 1;
	}
	return 0;
}

static long twos_cb(__u32 i, void *ctx)
{
	return twos_step(i, ctx);
}

/* twos (ip_vs_twos.c, Linux 6.2): two draws in [0, sum of the available
 * weights], each walking the reals; the second choice replaces the first
 * only when its overhead per weight is lower (int products, as the
 * kernel's). */
static __always_inline __u32 sched_twos(const struct svc *s, struct twos_scan *t)
{
	/* Each scan reads the lengths again: a length kept from the last
	 * scan, which the verifier learnt exactly from its end, made it walk
	 * the next scan once per length. */
	*t = (struct twos_scan){ .tab_off = s->tab_off, .sum = 1 };
	sched_scan(scan_len(s), twos_step, twos_cb, t);
	__u64 total = (__u64)t->acc;
	if (!total)
		return XLB_NO_REAL;
	total += 1;
	t->sum = 0;
	t->found = XLB_NO_REAL;
	t->acc = (__s64)((__u64)bpf_get_prandom_u32() % total);
	sched_scan(scan_len(s), twos_step, twos_cb, t);
	__u32 c1 = t->found;
	t->found = XLB_NO_REAL;
	t->acc = (__s64)((__u64)bpf_get_prandom_u32() % total);
	sched_scan(scan_len(s), twos_step, twos_cb, t);
	__u32 c2 = t->found;
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
/* What the scans keep, one at a time, in one frame's bytes. 6.1's
 * verifier allows 512 bytes for the call chain xlb_xdp (392, counted as
 * 416), this function and a scan's step (a bpf_loop callback, counted as
 * called even where dead code calls it), each rounded up to 32: this
 * frame must stay within 64 bytes. (lc's scan keeps its own: in the union
 * its bounded loop cost the verifier a third more.) */
union sched_scratch {
	struct sh_probe sh;
	struct mh_fallback mh;
	struct heavy_scan heavy;
	struct twos_scan twos;
};

__attribute__((noinline)) __u32 xlb_schedule(__u32 svc_slot, __u32 src_fold, __u32 dst_fold, __be16 sport)
{
	union sched_scratch u;
	struct svc *s = bpf_map_lookup_elem(&svcs, &svc_slot);
	if (!s)
		return XLB_NO_REAL;
	__u32 slot;
	switch (s->sched) {
	case XLB_SCHED_RR:
	case XLB_SCHED_WRR:
		slot = sched_sequence(s, svc_slot);
		/* The table never holds an unavailable real; checking again
		 * covers a weight change racing with this packet. */
		return real_if_available(slot) ? slot : XLB_NO_REAL;
	case XLB_SCHED_SH:
		return sched_sh(s, src_fold, sport, &u.sh);
	case XLB_SCHED_DH:
		return sched_dh(s, dst_fold);
	case XLB_SCHED_LC:
		return sched_least(s, XLB_SCHED_LC);
	case XLB_SCHED_WLC:
		return sched_least(s, XLB_SCHED_WLC);
	case XLB_SCHED_SED:
		return sched_least(s, XLB_SCHED_SED);
	case XLB_SCHED_NQ:
		return sched_least(s, XLB_SCHED_NQ);
	case XLB_SCHED_FO:
		return sched_heaviest(s, 0, &u.heavy);
	case XLB_SCHED_OVF:
		return sched_heaviest(s, 1, &u.heavy);
	case XLB_SCHED_TWOS:
		return sched_twos(s, &u.twos);
	case XLB_SCHED_MH:
		return sched_mh(s, src_fold, sport, &u.mh);
	}
	return XLB_NO_REAL;
}

#endif /* XLB_SCHED_H */
