// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Benchmark helpers (tests only, never attached by xlb).
 *
 * BPF_PROG_TEST_RUN repeats a program on one buffer and does not restore it
 * between repeats. bench_harness rewrites the frame from a template on every
 * repeat, optionally gives it a different flow (source port/address from a
 * counter), then tail-calls the program under test; a frame the program
 * grew at its head (TUN) is shrunk back first. bench_macswap is the
 * baseline every figure is a ratio to; bench_redirect and bench_drop are
 * the generator and the sink of live-frame forwarding runs. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#define TMPL_LEN 64

struct bench_tmpl {
	__u8 data[TMPL_LEN];
	/* Flows to cycle through: 0 = the template's flow only. Each repeat
	 * takes flow hash(counter) % flows, or counter % flows when
	 * sequential is set, written as source port (low 16 bits) and the
	 * source address's last two bytes. Sequential makes every one of the
	 * flows in one pass of that many repeats, in an order unrelated to
	 * the hashed one that later hits them. */
	__u32 flows;
	__u32 sequential;
	/* The frame's length: a program that grew the frame at its head (a
	 * tunnel's encapsulation) has it shrunk back before the next repeat. */
	__u32 len;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct bench_tmpl);
	__uint(max_entries, 1);
} bench_tmpls SEC(".maps");

/* One counter for all CPUs, not one each: a test run may move to another
 * CPU between repeats (it lets the scheduler in), and a per-CPU counter
 * would then walk some flows twice and skip others. Only one run uses it
 * at a time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} bench_counter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} bench_target SEC(".maps");

/* Rewrites the frame's first TMPL_LEN bytes from the template, in 8-byte
 * words. (__builtin_memcpy into a packet, whose alignment clang does not
 * know, copies byte by byte: the program under test then read its headers
 * back across several byte stores each, which cannot be forwarded to a
 * wider load, and waited for them, a cost no NIC's frame has and the
 * harness's own measured cost, behind a program that reads nothing, did
 * not include. The frame starts 8-aligned: XDP_PACKET_HEADROOM.) */
static __always_inline struct bench_tmpl *restore(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct bench_tmpl *t = bpf_map_lookup_elem(&bench_tmpls, &zero);
	if (!t || data + TMPL_LEN > data_end)
		return 0;
	__u64 *to = data;
	const __u64 *from = (const __u64 *)t->data;
#pragma unroll
	for (int i = 0; i < TMPL_LEN / 8; i++)
		to[i] = from[i];
	return t;
}

/* RFC 1624: a checksum over a 16-bit word that changed from old to now.
 * One's complement sums do not depend on byte order: the words are taken
 * as they lie in memory. */
static __always_inline __u16 csum_replace(__u16 check, __u16 old, __u16 now)
{
	__u32 sum = (__u16)~check + (__u16)~old + now;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* Gives the frame the next of the template's flows (none: it keeps the
 * template's); with csum, its IPv4 and TCP checksums follow (a TCP
 * template), as a receiving kernel checks them. */
static __always_inline int vary(struct xdp_md *ctx, const struct bench_tmpl *t, int csum)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&bench_counter, &zero);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (!n || data + TMPL_LEN > data_end)
		return -1;
	if (t->flows) {
		/* Fibonacci hashing spreads consecutive counters over the flows. */
		__u64 c = (*n)++;
		__u32 f = t->sequential ? (__u32)(c % t->flows) : (__u32)(c * 0x9E3779B97F4A7C15ULL >> 32) % t->flows;
		__u16 *ip_w = data + 28, *port_w = data + 34;
		__u16 old_ip = *ip_w, old_port = *port_w;
		/* Ethernet 14 + IPv4 20: saddr at 26, sport at 34; bytes 28
		 * and 29 of the address and both of the port take the flow,
		 * the address written whole (one store for the program's one
		 * load, as restore's words). */
		__u32 *saddr = data + 26;
		*saddr = (*saddr & 0xffff) | ((f >> 24) & 0xff) << 16 | ((f >> 16) & 0xff) << 24;
		*port_w = ((f >> 8) & 0xff) | (f & 0xff) << 8;
		if (csum) {
			/* The IPv4 header's checksum at 24, TCP's at 50 (its
			 * pseudo-header holds the source address). */
			__u16 *ipc = data + 24, *tcpc = data + 50;
			*ipc = csum_replace(*ipc, old_ip, *ip_w);
			*tcpc = csum_replace(csum_replace(*tcpc, old_ip, *ip_w), old_port, *port_w);
		}
	}
	return 0;
}

SEC("xdp")
int bench_harness(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct bench_tmpl *tl = bpf_map_lookup_elem(&bench_tmpls, &zero);
	if (tl && tl->len) {
		long grown = (long)ctx->data_end - (long)ctx->data - (long)tl->len;
		if (grown > 0 && grown <= 64 && bpf_xdp_adjust_head(ctx, (int)grown))
			return XDP_ABORTED;
	}
	struct bench_tmpl *t = restore(ctx);
	if (!t || vary(ctx, t, 0))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED;
}

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} bench_fwd_port SEC(".maps");

/* The ceiling of a forwarding run: redirect every frame, no lookup. */
SEC("xdp")
int bench_fwd(struct xdp_md *ctx)
{
	return bpf_redirect_map(&bench_fwd_port, 0, 0);
}

SEC("xdp")
int bench_macswap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__u8 tmp[ETH_ALEN];
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* What a tunnel's encapsulation costs at the least: the frame grown at
 * its head by an IPv4 header, nothing written. Behind the harness, which
 * shrinks it back, it measures the two head moves a TUN figure holds. */
SEC("xdp")
int bench_grow(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_head(ctx, -20))
		return XDP_ABORTED;
	return XDP_TX;
}

SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} bench_sunk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} bench_out SEC(".maps");

/* The generator: every injected frame is rewritten from the template
 * (given the next of its flows, if it has several: a flood's sources) and
 * sent out of the device in bench_out (a veth whose peer is the director's
 * ingress). Live-frame pages are recycled without being reset, and the
 * kernel's forwarding decrements the TTL in place: without the rewrite,
 * frames would die of TTL after a few hundred trips through the pool. The
 * IPv4 and TCP checksums follow the changes (the reals' kernels check
 * them). */
SEC("xdp")
int bench_redirect(struct xdp_md *ctx)
{
	struct bench_tmpl *t = restore(ctx);
	if (!t || vary(ctx, t, 1))
		return XDP_ABORTED;
	return bpf_redirect_map(&bench_out, 0, 0);
}

/* The sink on the real's side: counts what arrived, then drops it. */
SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&bench_sunk, &zero);
	if (n)
		*n += 1;
	return XDP_DROP;
}

/* Two shapes of a flow table, filled with the same flows and probed by the
 * same packets (BenchmarkFlowTableShape): the kernel's LRU hash, as the
 * flow table (conns) is, and an array of 64-byte slots of our own, a flow's
 * key and a value of conn's size in one cache line, found by a hash of the
 * key and a short linear probe. The sizes are set at load. */
struct bench_flow_key {
	__u64 k0, k1;
};

struct bench_flow_val {
	__u64 w[5]; /* as struct conn: 40 bytes */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct bench_flow_key);
	__type(value, struct bench_flow_val);
	__uint(max_entries, 1);
} bench_lru SEC(".maps");

struct bench_slot {
	__u64 k0, k1;
	struct bench_flow_val v;
	__u64 pad;
} __attribute__((aligned(64)));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct bench_slot);
	__uint(max_entries, 1);
} bench_slots SEC(".maps");

/* Packets whose flow a probe did not find (every one must be). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} bench_missed SEC(".maps");

#define BENCH_PROBES 64

/* The IPv4 flow key of the harness's frame (Ethernet, a 20-byte IPv4
 * header, TCP), as conn_key_of lays it: addresses, then ports and
 * protocol. */
static __always_inline int bench_key(struct xdp_md *ctx, struct bench_flow_key *k)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + 38 > data_end)
		return -1;
	k->k0 = *(__u64 *)(data + 26);
	k->k1 = (__u64) * (__u32 *)(data + 34) | (__u64)6 << 32;
	return 0;
}

/* The slots' count, a power of two, and 64 less its log2, set at load. */
volatile const __u32 bench_max_slots = 1;
volatile const __u32 bench_slot_shift = 63;

static __always_inline __u32 bench_slot_of(const struct bench_flow_key *k)
{
	/* Multiplicative hashing: the product's top bits. */
	__u64 h = (k->k0 ^ (k->k1 * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
	return (__u32)(h >> (bench_slot_shift & 63)) & (bench_max_slots - 1);
}

static __always_inline int bench_found(struct xdp_md *ctx, const struct bench_flow_val *v)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + 12 > data_end)
		return XDP_ABORTED;
	if (!v) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&bench_missed, &zero);
		if (n)
			*n += 1;
		return XDP_DROP;
	}
	/* What a forward takes from the flow: its real, written as the
	 * frame's destination MAC's first bytes. */
	*(__u32 *)data = (__u32)v->w[0];
	return XDP_TX;
}

SEC("xdp")
int bench_lru_fill(struct xdp_md *ctx)
{
	struct bench_flow_key k;
	if (bench_key(ctx, &k))
		return XDP_ABORTED;
	struct bench_flow_val v = {.w = {k.k0}};
	if (bpf_map_update_elem(&bench_lru, &k, &v, BPF_NOEXIST))
		return bench_found(ctx, 0);
	return XDP_TX;
}

SEC("xdp")
int bench_lru_probe(struct xdp_md *ctx)
{
	struct bench_flow_key k;
	if (bench_key(ctx, &k))
		return XDP_ABORTED;
	return bench_found(ctx, bpf_map_lookup_elem(&bench_lru, &k));
}

/* The slot of flow k in its probe: its own (fill: the first empty one),
 * or none. A probe stops at an empty slot. */
static __always_inline struct bench_slot *bench_walk(const struct bench_flow_key *k, int fill)
{
	__u32 i = bench_slot_of(k);
	for (int p = 0; p < BENCH_PROBES; p++) {
		__u32 at = (i + p) & (bench_max_slots - 1);
		struct bench_slot *s = bpf_map_lookup_elem(&bench_slots, &at);
		if (!s)
			return 0;
		int empty = s->k0 == 0 && s->k1 == 0;
		if (fill ? empty : (s->k0 == k->k0 && s->k1 == k->k1))
			return s;
		if (empty)
			return 0;
	}
	return 0;
}

SEC("xdp")
int bench_slots_fill(struct xdp_md *ctx)
{
	struct bench_flow_key k;
	if (bench_key(ctx, &k))
		return XDP_ABORTED;
	struct bench_slot *s = bench_walk(&k, 1);
	if (!s)
		return bench_found(ctx, 0);
	s->v.w[0] = k.k0;
	s->k0 = k.k0;
	s->k1 = k.k1;
	return XDP_TX;
}

SEC("xdp")
int bench_slots_probe(struct xdp_md *ctx)
{
	struct bench_flow_key k;
	if (bench_key(ctx, &k))
		return XDP_ABORTED;
	struct bench_slot *s = bench_walk(&k, 0);
	return bench_found(ctx, s ? &s->v : 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
