/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The IPv4 flow table, found with one memory access.
 *
 * The kernel's LRU hash finds a flow with two dependent misses (its
 * bucket, then the element the bucket points to); with many flows hit at
 * random they are most of an established packet's time. Here a flow's
 * key and its struct conn fill one 64-byte slot of an array
 * (BPF_F_MMAPABLE: the control plane reads and writes the same slots
 * with the same atomics, pkg/dataplane/xdp/flowtab.go), at a keyed hash
 * of its key or in one of the FT_WINDOW slots after it (linear probing;
 * the loader gives it twice the flows' slots). What finds no slot in its
 * window goes to the LRU hash behind (conns), and its home slot counts
 * it, so that a lookup asks the LRU only where something overflowed.
 *
 * A slot's tag is its state, a mark of the sweeper, and the count of the
 * flows whose home it is that live in the LRU:
 *   bits 0-1: FREE (never used, or given back: a lookup stops here),
 *             BUSY (claimed, being written), LIVE, GONE (ended: a lookup
 *             goes on past it, an insert takes it again);
 *   bit 2:    SEEN, a GONE slot that a sweep has passed once;
 *   bits 32-63: the home's overflow count.
 * A writer claims a FREE or GONE slot by compare-and-swap of its tag,
 * writes the flow, then its key, then publishes it LIVE; a reader takes a
 * LIVE slot whose key matches. A reader holding a slot while its flow
 * ends and another takes the slot sees the other's value, as a holder of
 * an LRU element does (the kernel's LRU reuses an element at once). x86's
 * store order makes the publish enough.
 *
 * A GONE slot becomes FREE again (the sweeper: ft_reclaim) once a whole
 * sweep has passed since it ended and no flow after it was placed past
 * it; the sweep between lets any insert that saw the slot LIVE finish (an
 * insert that sees it GONE takes it or fails). Without it, every slot
 * would in time be LIVE or GONE and a lookup of a new flow would walk its
 * whole window. */
#ifndef XLB_FLOWTAB_H
#define XLB_FLOWTAB_H

#include "xlb_maps.h"

#define FT_FREE 0ULL
#define FT_BUSY 1ULL
#define FT_LIVE 2ULL
#define FT_GONE 3ULL
#define FT_STATE 3ULL
#define FT_SEEN 4ULL
#define FT_OVER_SHIFT 32
#define FT_OVER (1ULL << FT_OVER_SHIFT)
#define FT_WINDOW 16

/* Set by the loader (flowtab.go): the slots less one (a power of two
 * less one; 0: no array, every flow in the LRU), 64 less the slots'
 * log2, and the hash's key (kept with the pinned table, ft_meta). */
volatile const __u32 ft_mask = 0;
volatile const __u32 ft_shift = 63;
volatile const __u64 ft_salt0 = 0;
volatile const __u64 ft_salt1 = 0;

/* A flow's home slot: a keyed multiply-xorshift of its key's two words
 * (not guessable without the key, so a client cannot aim its flows at
 * one window), the product's top bits. flowtab.go's home is the same. */
static __always_inline __u32 ft_home(__u64 k0, __u64 k1)
{
	__u64 h = (k0 ^ ft_salt0) * 0x9E3779B97F4A7C15ULL;
	h ^= h >> 29;
	h = (h ^ k1 ^ ft_salt1) * 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 32;
	h *= 0x94D049BB133111EBULL;
	return (__u32)(h >> (ft_shift & 63));
}

static __always_inline struct ft_slot *ft_slot_at(__u32 i)
{
	__u32 at = i & ft_mask;
	return bpf_map_lookup_elem(&flowtab, &at);
}

/* The index of flow (k0, k1)'s slot, or -1. A global function, verified
 * once: inlined, its walk of the window was walked again at every lookup
 * the program makes (xlb_xdp's walk 144k -> 509k instructions, its load
 * 1.6 -> 4.7 s here, past a hitless restart's three advert intervals). */
__attribute__((noinline)) int ft_find_at(__u64 k0, __u64 k1)
{
	if (!ft_mask)
		return -1;
	__u32 i = ft_home(k0, k1);
#pragma clang loop unroll(disable)
	for (int p = 0; p < FT_WINDOW; p++) {
		__u32 at = (i + p) & ft_mask;
		struct ft_slot *s = bpf_map_lookup_elem(&flowtab, &at);
		if (!s)
			return -1;
		__u64 st = s->tag & FT_STATE;
		if (st == FT_FREE)
			return -1;
		if (st == FT_LIVE && s->k0 == k0 && s->k1 == k1)
			return (int)at;
	}
	return -1;
}

/* The slot of flow (k0, k1), or none. */
static __always_inline struct ft_slot *ft_find_slot(__u64 k0, __u64 k1)
{
	int at = ft_find_at(k0, k1);
	if (at < 0)
		return 0;
	__u32 i = (__u32)at;
	return bpf_map_lookup_elem(&flowtab, &i);
}

/* The flow k's entry in the array, or none. */
static __always_inline struct conn *ft_find(const struct conn_key *k)
{
	const __u64 *w = (const __u64 *)k;
	struct ft_slot *s = ft_find_slot(w[0], w[1]);
	if (!s)
		return 0;
	/* (else clang takes &s->c before the test, from a pointer the
	 * verifier allows no arithmetic on until it is tested) */
	asm volatile("" : "+r"(s));
	return &s->c;
}

/* Whether flow (k0, k1)'s home counts flows in the LRU (with no array,
 * every flow is there). After a lookup the home's line is in the cache:
 * its tag is read again rather than carried out of the lookup (which
 * took 16 bytes of xlb_xdp's frame, past 6.1's limit). */
static __always_inline int ft_overflowed(__u64 k0, __u64 k1)
{
	if (!ft_mask)
		return 1;
	struct ft_slot *s = ft_slot_at(ft_home(k0, k1));
	return !s || (s->tag >> FT_OVER_SHIFT) != 0;
}

/* The flow k's entry in the array, else in the LRU where its home says
 * something overflowed. */
static __always_inline struct conn *ft_lookup(const struct conn_key *k)
{
	struct conn *c = ft_find(k);
	if (c)
		return c;
	const __u64 *w = (const __u64 *)k;
	if (!ft_overflowed(w[0], w[1]))
		return 0;
	return bpf_map_lookup_elem(&conns, k);
}

/* Ends a LIVE slot's flow, once: 0 if this call did. */
static __always_inline int ft_free(struct ft_slot *s)
{
#pragma clang loop unroll(disable)
	for (int t = 0; t < 4; t++) {
		__u64 old = s->tag;
		if ((old & FT_STATE) != FT_LIVE)
			return -1;
		if (__sync_val_compare_and_swap(&s->tag, old, (old & ~(FT_STATE | FT_SEEN)) | FT_GONE) == old)
			return 0;
	}
	return -1;
}

/* Counts one more (or one less) of home's flows in the LRU; never below
 * zero (an evicted one was never taken off). */
static __always_inline void ft_overflow(__u64 k0, __u64 k1, int more)
{
	if (!ft_mask)
		return;
	struct ft_slot *s = ft_slot_at(ft_home(k0, k1));
	if (!s)
		return;
	if (more) {
		__sync_fetch_and_add(&s->tag, FT_OVER);
		return;
	}
#pragma clang loop unroll(disable)
	for (int t = 0; t < 4; t++) {
		__u64 old = s->tag;
		if ((old >> FT_OVER_SHIFT) == 0)
			return;
		if (__sync_val_compare_and_swap(&s->tag, old, old - FT_OVER) == old)
			return;
	}
}

/* Deletes flow (k0, k1) from the array, or else from the LRU; 0 if
 * either held it. (Global, as ft_find_at.) */
__attribute__((noinline)) int ft_delete_at(__u64 k0, __u64 k1)
{
	struct ft_slot *s = ft_find_slot(k0, k1);
	if (s)
		return ft_free(s);
	struct conn_key k;
	__u64 *w = (__u64 *)&k;
	w[0] = k0;
	w[1] = k1;
	if (!ft_overflowed(k0, k1) || bpf_map_delete_elem(&conns, &k))
		return -1;
	ft_overflow(k0, k1, 0);
	return 0;
}

static __always_inline int ft_delete(const struct conn_key *k)
{
	const __u64 *w = (const __u64 *)k;
	return ft_delete_at(w[0], w[1]);
}

/* Writes flow k as c into the array: over its slot if it has one, else
 * into its window's first GONE or FREE slot: FT_PUT_ARRAY. Else the LRU
 * takes it (ft_put): FT_PUT_LRU where the LRU may hold it already (its
 * home counts flows there, unless the caller looked: lru_looked),
 * FT_PUT_OVERFLOW where it is to be counted.
 * (Global, as ft_find_at; inlined, its locals also took xlb_xdp's frame
 * 16 bytes past 6.1's limit. A global's pointer is not a map key or
 * value to 6.1's helpers: the LRU's writes are the caller's.) */
#define FT_PUT_ARRAY 0
#define FT_PUT_LRU 1
#define FT_PUT_OVERFLOW 2
__attribute__((noinline)) int ft_insert(const struct conn_key *k, const struct conn *c, int lru_looked)
{
	if (!k || !c) /* (a global function's pointers may be null) */
		return -1;
	const __u64 *w = (const __u64 *)k;
	__u64 k0 = w[0], k1 = w[1];
	if (!ft_mask)
		return FT_PUT_LRU;
	__u32 i = ft_home(k0, k1);
	__s32 room = -1;
	int over = 0;
#pragma clang loop unroll(disable)
	for (int p = 0; p < FT_WINDOW; p++) {
		struct ft_slot *s = ft_slot_at(i + p);
		if (!s)
			return -1;
		__u64 tag = s->tag;
		__u64 st = tag & FT_STATE;
		if (p == 0)
			over = (tag >> FT_OVER_SHIFT) != 0;
		if (st == FT_LIVE && s->k0 == k0 && s->k1 == k1) {
			s->c = *c;
			return FT_PUT_ARRAY;
		}
		if (st == FT_GONE && room < 0)
			room = p;
		if (st == FT_FREE) {
			if (room < 0)
				room = p;
			break;
		}
	}
	if (over && !lru_looked)
		return FT_PUT_LRU;
	if (room >= 0) {
		struct ft_slot *s = ft_slot_at(i + (__u32)room);
		if (!s)
			return -1;
		__u64 old = s->tag;
		__u64 st = old & FT_STATE;
		if ((st == FT_FREE || st == FT_GONE) &&
		    __sync_val_compare_and_swap(&s->tag, old, (old & ~(FT_STATE | FT_SEEN)) | FT_BUSY) == old) {
			s->c = *c;
			s->k0 = k0;
			s->k1 = k1;
			__sync_fetch_and_xor(&s->tag, FT_BUSY ^ FT_LIVE);
			return FT_PUT_ARRAY;
		}
	}
	/* No room in the window, or another CPU took it first. */
	return FT_PUT_OVERFLOW;
}

/* Writes flow k as c into the flow table: the array, else the LRU behind
 * it (a flow its home counts there is looked for there first); 0 if
 * written. */
static __always_inline int ft_put(const struct conn_key *k, const struct conn *c)
{
	int r = ft_insert(k, c, 0);
	if (r == FT_PUT_LRU && ft_mask) {
		/* Its home counts flows in the LRU: it may be one of them;
		 * if not, the array may have room for it after all. */
		if (bpf_map_lookup_elem(&conns, k))
			return bpf_map_update_elem(&conns, k, c, BPF_ANY);
		r = ft_insert(k, c, 1);
	}
	if (r == FT_PUT_ARRAY)
		return 0;
	if (r < 0)
		return -1;
	if (bpf_map_update_elem(&conns, k, c, BPF_ANY))
		return -1;
	if (r == FT_PUT_OVERFLOW) {
		const __u64 *w = (const __u64 *)k;
		ft_overflow(w[0], w[1], 1);
	}
	return 0;
}

/* The sweeper's pass over slot i when it is not LIVE: a GONE slot is
 * marked SEEN; a SEEN one is given back (FREE) when no flow in the slots
 * after it was placed past it (each one's home is after i), which a FREE
 * slot ends, as no insert passes one. A slot being written (BUSY) keeps
 * it GONE until the next sweep. */
static __always_inline void ft_reclaim(__u32 i, struct ft_slot *s)
{
	__u64 old = s->tag;
	if ((old & FT_STATE) != FT_GONE)
		return;
	if (!(old & FT_SEEN)) {
		__sync_val_compare_and_swap(&s->tag, old, old | FT_SEEN);
		return;
	}
#pragma clang loop unroll(disable)
	for (__u32 j = 1; j < FT_WINDOW; j++) {
		struct ft_slot *n = ft_slot_at(i + j);
		if (!n)
			return;
		__u64 st = n->tag & FT_STATE;
		if (st == FT_FREE)
			break;
		if (st == FT_BUSY)
			return;
		/* (its distance from its home, against its distance from i) */
		if (st == FT_LIVE && ((i + j - ft_home(n->k0, n->k1)) & ft_mask) >= j)
			return;
	}
	__sync_val_compare_and_swap(&s->tag, old, old & ~(FT_STATE | FT_SEEN));
}

#endif /* XLB_FLOWTAB_H */
