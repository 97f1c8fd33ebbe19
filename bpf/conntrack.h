/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The flow table: a flow stays on the real it was first given. */
#ifndef XLB_CONNTRACK_H
#define XLB_CONNTRACK_H

#include "xlb_maps.h"
#include "parse.h"
#include "flowtab.h"

/* Set by the loader: the kernel has bpf_ktime_get_coarse_ns (5.11+). The
 * verifier prunes the branch not taken, so older kernels never see the
 * helper. A flow's times need no more than jiffy resolution, and the fine
 * clock costs tens of ns per packet under a paravirtual clocksource. */
volatile const __u8 have_coarse_clock = 0;

/* Set by the loader when it has measured the kernel's tick (clock.go):
 * the clock is then jiffies in nanoseconds (jiffy_ns, the kernel's
 * TICK_NSEC) on CLOCK_MONOTONIC's base (jiffy_base, modulo 2^64). The JIT
 * makes bpf_jiffies64 one load; the coarse clock is a helper call, a
 * tenth of an established packet's time. Both move once a tick. */
volatile const __u64 jiffy_ns = 0;
volatile const __u64 jiffy_base = 0;

static __always_inline __u64 xlb_now(void)
{
	if (jiffy_ns)
		return jiffy_base + bpf_jiffies64() * jiffy_ns;
	if (have_coarse_clock)
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns();
}

/* A key is written as the words its reader reads: the kernel's hash map
 * hashes and compares it by 4-byte words (and the flow cache by 8), and a
 * word read back from narrower stores (the ports' halves, the protocol's
 * and the padding's bytes) waits for them to reach the cache: a failed
 * store-to-load forward, a quarter of an established packet's time
 * measured before keys were written so. */
static __always_inline __u64 ports_word(__be16 sport, __be16 dport, __u8 proto)
{
	return (__u64)sport | (__u64)dport << 16 | (__u64)proto << 32;
}

static __always_inline void conn_key_words(const struct packet *p, __u64 *k0, __u64 *k1)
{
	*k0 = (__u64)p->src.v4 | (__u64)p->dst.v4 << 32;
	*k1 = ports_word(p->sport, p->dport, p->proto);
}

static __always_inline void conn_key_of(const struct packet *p, struct conn_key *k)
{
	__u64 *w = (__u64 *)k;
	conn_key_words(p, &w[0], &w[1]);
}

/* The key of a packet's flow in its family's tables. */
static __always_inline void flow_key_of(const struct packet *p, union flow_key *k, __u8 fam)
{
	if (fam != AF_INET6) {
		conn_key_of(p, &k->v4);
		return;
	}
	__builtin_memcpy(k->v6.src, p->src.v6, 16);
	__builtin_memcpy(k->v6.dst, p->dst.v6, 16);
	/* (the ports, and the protocol with its padding, a word each) */
	*(__u32 *)&k->v6.sport = (__u32)p->sport | (__u32)p->dport << 16;
	*(__u32 *)&k->v6.proto = p->proto;
}

/* Whether a flow's timer has run out at now. A flow seen after now (the
 * sweeper takes now once, then walks the table while packets keep
 * refreshing it) has not. */
static __always_inline int conn_expired(const struct conn *c, __u64 now)
{
	__u64 seen = c->last_seen;
	return now > seen && now - seen > (__u64)c->timeout_s * 1000000000ULL;
}

/* Whether a flow last seen at seen is to be touched at now: last_seen is
 * refreshed only when it moved by a coarse step, so most packets of a busy
 * flow write nothing to the shared entry (and may go by a hint of the
 * flow cache, bpf/flowcache.h). */
static __always_inline int touch_due(__u64 seen, __u64 now)
{
	return now > seen && now - seen > XLB_LAST_SEEN_STEP_NS;
}

static __always_inline void conn_touch(struct conn *c, __u64 now)
{
	if (touch_due(c->last_seen, now))
		c->last_seen = now;
}

static __always_inline __u32 state_timeout(__u32 state)
{
	__u32 *t = bpf_map_lookup_elem(&timeouts, &state);
	return t ? *t : 0;
}

/* ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK count in ActiveConn, every
 * other state in InActConn (ip_vs_proto_tcp.c set_tcp_state). */
static __always_inline int state_active(__u8 state)
{
	/* One bit per state, no branch: four compares were four forks the
	 * verifier walked at every caller. States are below XLB_CT_MAX. */
	return (((1u << XLB_CT_ESTABLISHED) | (1u << XLB_CT_SYN_SENT) | (1u << XLB_CT_SYN_RECV) |
		 (1u << XLB_CT_SYNACK)) >> (state & 31)) & 1;
}

static __always_inline void conns_add(__u32 real_slot, __u8 state, __s64 n)
{
	struct conn_counts *rc = bpf_map_lookup_elem(&real_conns, &real_slot);
	if (!rc)
		return;
	if (state_active(state))
		__sync_fetch_and_add(&rc->active, n);
	else
		__sync_fetch_and_add(&rc->inactive, n);
}

/* IPVS's event of a TCP segment: RST, then SYN, FIN, ACK; -1 for none. */
static __always_inline int tcp_event(__u8 flags)
{
	if (flags & TCP_FLAG_RST)
		return 3;
	if (flags & TCP_FLAG_SYN)
		return 0;
	if (flags & TCP_FLAG_FIN)
		return 1;
	if (flags & TCP_FLAG_ACK)
		return 2;
	return -1;
}

/* IPVS's TCP state tables (ip_vs_proto_tcp.c tcp_states[]), [dir][event]
 * as Linux 3.12 and later have them (NONE -ACK-> ESTABLISHED: the sloppy_tcp
 * change; older kernels had CLOSE there)
 * [state]: INPUT and OUTPUT for NAT, where the director sees both sides;
 * INPUT-ONLY for DR, where it sees only the client's. tcp_states_dos is
 * secure_tcp's: a NAT flow is established only once the real has answered
 * (its SYN-ACK, then its ACK), so a client's ACK alone proves nothing. */
#define sNO XLB_CT_NONE
#define sES XLB_CT_ESTABLISHED
#define sSS XLB_CT_SYN_SENT
#define sSR XLB_CT_SYN_RECV
#define sFW XLB_CT_FIN_WAIT
#define sTW XLB_CT_TIME_WAIT
#define sCL XLB_CT_CLOSE
#define sCW XLB_CT_CLOSE_WAIT
#define sLA XLB_CT_LAST_ACK
#define sLI XLB_CT_LISTEN
#define sSA XLB_CT_SYNACK
enum { CT_DIR_INPUT = 0, CT_DIR_OUTPUT = 1, CT_DIR_INPUT_ONLY = 2 };
static const __u8 tcp_states[3][4][11] = {
	/* INPUT     sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA */
	{ /*syn*/ { sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
	  /*fin*/ { sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW },
	  /*ack*/ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
	  /*rst*/ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR } },
	/* OUTPUT */
	{ /*syn*/ { sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR },
	  /*fin*/ { sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW },
	  /*ack*/ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES },
	  /*rst*/ { sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL } },
	/* INPUT-ONLY */
	{ /*syn*/ { sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
	  /*fin*/ { sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW },
	  /*ack*/ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
	  /*rst*/ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL } },
};
static const __u8 tcp_states_dos[3][4][11] = {
	/* INPUT     sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA */
	{ /*syn*/ { sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA },
	  /*fin*/ { sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA },
	  /*ack*/ { sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA },
	  /*rst*/ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL } },
	/* OUTPUT */
	{ /*syn*/ { sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA },
	  /*fin*/ { sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW },
	  /*ack*/ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES },
	  /*rst*/ { sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL } },
	/* INPUT-ONLY */
	{ /*syn*/ { sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA },
	  /*fin*/ { sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW },
	  /*ack*/ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
	  /*rst*/ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL } },
};

static __always_inline struct defence *defence_now(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&defence_state, &k);
}

/* Moves a TCP flow through the table, moving its count between ActiveConn
 * and InActConn when it changes side. */
/* The state a TCP packet with tcp_flags moves a flow in state old to, in
 * direction dir (IPVS's set_tcp_state); old itself when nothing moves it. */
static __always_inline __u8 tcp_next_state(__u8 old, __u8 tcp_flags, int dir)
{
	int ev = tcp_event(tcp_flags);
	if (ev < 0 || old > XLB_CT_SYNACK)
		return old;
	struct defence *d = defence_now();
	const __u8 *tbl = d && d->secure_tcp ? &tcp_states_dos[0][0][0] : &tcp_states[0][0][0];
	/* One flat index, bounded where it is used: older verifiers (6.1)
	 * lose the bound of a checked value the compiler spilled first. The
	 * barrier hides it from the compiler, which would prove the check
	 * redundant and drop it. */
	__u32 idx = ((__u32)(dir & 3) * 4 + (__u32)(ev & 3)) * 11 + old;
	asm volatile("" : "+r"(idx));
	if (idx >= sizeof(tcp_states))
		return old;
	return tbl[idx];
}

static __always_inline void conn_tcp_transition(struct conn *c, __u8 tcp_flags, int dir)
{
	__u8 old = c->state;
	__u8 next = tcp_next_state(old, tcp_flags, dir);
	if (next == old)
		return;
	c->state = next;
	if (state_active(next) != state_active(old)) {
		conns_add(c->real, old, -1);
		conns_add(c->real, next, 1);
	}
}

/* A client packet: counted up to 9, all drop_entry reads. */
static __always_inline void conn_count_in(struct conn *c)
{
	if (c->in_pkts < 9)
		c->in_pkts++;
}

/* Whether a half-open flow has proved itself after this packet: a TCP
 * flow out of SYN_RECV/SYNACK, any other flow at its second packet. */
static __always_inline int conn_proven(const struct conn *c, __u8 proto)
{
	return proto != IPPROTO_TCP || (c->state != XLB_CT_SYN_RECV && c->state != XLB_CT_SYNACK);
}

/* Every packet re-arms the flow's timer with its state's timeout. */
static __always_inline void conn_rearm(struct conn *c, __u64 now)
{
	__u32 t = state_timeout(c->state);
	if (c->timeout_s != t)
		c->timeout_s = t;
	conn_touch(c, now);
}

/* Claims an entry's end; returns whether this caller won. */
static __always_inline int conn_claim(struct conn *c)
{
	return __sync_lock_test_and_set(&c->retired, 1) == 0;
}

/* The template key of a persistent flow (ip_vs_sched_persist): port 0
 * for FTP's port 21. An IPv4 client is masked with mask. */
static __always_inline void tmpl_key_of(struct tmpl_key *tk, __u8 proto, __u8 family, __be32 client, __be32 mask,
					__be32 vip, __be16 vport)
{
	__builtin_memset(tk, 0, sizeof(*tk));
	tk->client.v4 = client & mask;
	tk->vip.v4 = vip;
	tk->vport = vport == bpf_htons(21) ? 0 : vport;
	tk->proto = proto;
	tk->family = family;
}

/* The template key of a persistent IPv6 flow: the client masked to its
 * first prefix bits (IPVS's netmask of an IPv6 service is a prefix
 * length: ipv6_addr_prefix). */
static __always_inline void tmpl_key_of6(struct tmpl_key *tk, __u8 proto, const __be32 *client, __u32 prefix,
					 const __be32 *vip, __be16 vport)
{
	__builtin_memset(tk, 0, sizeof(*tk));
	/* Word i keeps prefix - 32i of its bits, clamped to 0..32, with no
	 * branch: the clamps by comparison were three ways for each word,
	 * 81 paths the verifier walked at each caller. The barriers keep the
	 * compiler from turning the arithmetic back into branches. */
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__s64 bits = (__s64)prefix - 32 * i;
		__s64 neg = bits >> 63;
		asm volatile("" : "+r"(neg));
		bits &= ~neg; /* at least 0 */
		__s64 over = bits - 32;
		__s64 sign = over >> 63;
		asm volatile("" : "+r"(sign));
		bits -= over & ~sign; /* at most 32 */
		__u32 m = (__u32)(0xffffffff00000000ull >> (bits & 63));
		tk->client.v6[i] = client[i] & bpf_htonl(m);
		tk->vip.v6[i] = vip[i];
	}
	tk->vport = vport == bpf_htons(21) ? 0 : vport;
	tk->proto = proto;
	tk->family = AF_INET6;
}

/* A flow under a template ended: one control fewer. */
static __always_inline void tmpl_drop_control(const struct tmpl_key *tk)
{
	struct tmpl *t = bpf_map_lookup_elem(&templates, tk);
	if (t)
		__sync_fetch_and_add(&t->controls, -1);
}

static __always_inline void tmpl_release(const struct conn_key *k, const struct conn *c)
{
	if (!(c->flags & XLB_CONN_F_PERSIST))
		return;
	struct tmpl_key tk;
	tmpl_key_of(&tk, k->proto, AF_INET, k->src, c->tmpl_mask, k->dst, (c->flags & XLB_CONN_F_TMPL_NOPORT) ? 0 : k->dport);
	tmpl_drop_control(&tk);
}

static __always_inline void tmpl_release6(const struct conn_key6 *k, const struct conn *c)
{
	if (!(c->flags & XLB_CONN_F_PERSIST))
		return;
	struct tmpl_key tk;
	tmpl_key_of6(&tk, k->proto, k->src, c->tmpl_mask, k->dst, (c->flags & XLB_CONN_F_TMPL_NOPORT) ? 0 : k->dport);
	tmpl_drop_control(&tk);
}

/* A flow of either family under a template ended. */
static __always_inline void flow_tmpl_release(const union flow_key *k, __u8 fam, const struct conn *c)
{
	if (fam == AF_INET6)
		tmpl_release6(&k->v6, c);
	else
		tmpl_release(&k->v4, c);
}

static __always_inline int tmpl_expired(const struct tmpl *t, __u64 now)
{
	__u64 seen = t->last_seen;
	return now > seen && now - seen > (__u64)t->timeout_s * 1000000000ULL;
}

/* A new flow, half-open until proven. A TCP flow starts with its SYN:
 * NONE -> SYN_RECV (SYNACK under secure_tcp without NAT: tcp_states_dos
 * INPUT-ONLY), counted active (IPVS counts it inactive at birth and moves
 * it at once). A UDP flow is inactive for its whole life. */
/* The IPv6 tables' operations are functions of their own (BPF
 * subprograms): inlined beside the IPv4 ones, the compiler merges the two
 * lookups into one call, which then serves two maps, and the verifier no
 * longer inlines the IPv4 table's lookup (2-5 ns a packet, measured). */
static __attribute__((noinline)) struct conn *flow_lookup6(const struct conn_key6 *k, int *half)
{
	struct conn *c = bpf_map_lookup_elem(&conns6, k);
	*half = 0;
	if (c)
		return c;
	*half = 1;
	return bpf_map_lookup_elem(&half_open6, k);
}

static __attribute__((noinline)) int half_open6_insert(const struct conn_key6 *k, const struct conn *c)
{
	return bpf_map_update_elem(&half_open6, k, c, BPF_ANY);
}

static __attribute__((noinline)) int flow_delete6(const struct conn_key6 *k)
{
	return bpf_map_delete_elem(&conns6, k);
}

static __always_inline void reply_key6(struct conn_key6 *rk, const __be32 *real, __be16 rport, const struct conn_key6 *k);

/* A half-open IPv6 flow moves to the flow table; a NAT flow's reverse
 * entry (to its real r) with it. */
static __attribute__((noinline)) int promote6(const struct conn_key6 *k, const struct conn *c, const struct real *r)
{
	if (bpf_map_update_elem(&conns6, k, c, BPF_ANY) != 0)
		return -1;
	if (c->flags & XLB_CONN_F_NAT) {
		struct conn_key6 rk;
		reply_key6(&rk, r->addr.v6, r->port ? r->port : k->dport, k);
		struct nat_reply *nr = bpf_map_lookup_elem(&half_open_replies6, &rk);
		if (nr) {
			struct nat_reply v = *nr;
			bpf_map_update_elem(&nat_replies6, &rk, &v, BPF_ANY);
			bpf_map_delete_elem(&half_open_replies6, &rk);
		}
	}
	bpf_map_delete_elem(&half_open6, k);
	return 0;
}

/* A new NAT66 flow's reverse entry (the flow k to real:rport), half-open
 * with it. Its key and value are made here, on a frame of its own:
 * xlb_xdp6's is near what a call chain may have. */
static __attribute__((noinline)) int reply6_insert(const struct conn_key6 *k, const __be32 *real, __be16 rport)
{
	struct conn_key6 rk;
	reply_key6(&rk, real, rport, k);
	struct nat_reply nr = { .vport = k->dport, .family = AF_INET6 };
	__builtin_memcpy(nr.vip.v6, k->dst, 16);
	return bpf_map_update_elem(&half_open_replies6, &rk, &nr, BPF_ANY);
}

/* An IPv6 NAT flow's reverse entry, proven or half-open. */
static __attribute__((noinline)) struct nat_reply *reply_lookup6(const struct conn_key6 *rk)
{
	struct nat_reply *nr = bpf_map_lookup_elem(&nat_replies6, rk);
	if (nr)
		return nr;
	return bpf_map_lookup_elem(&half_open_replies6, rk);
}

/* The reverse key of an IPv6 NAT flow: from the real to the client. */
static __always_inline void reply_key6(struct conn_key6 *rk, const __be32 *real, __be16 rport, const struct conn_key6 *k)
{
	__builtin_memcpy(rk->src, real, 16);
	__builtin_memcpy(rk->dst, k->src, 16);
	rk->sport = rport;
	rk->dport = k->sport;
	rk->proto = k->proto;
	rk->pad[0] = rk->pad[1] = rk->pad[2] = 0;
}

static __always_inline int conn_create(const union flow_key *k, __u8 family, __u32 real_slot, __u32 gen,
				       __u32 svc_idx, __u8 proto, __u8 tcp_flags, __u64 now, __u8 flags, __be32 tmpl_mask,
				       __u8 laddr, __be16 lport)
{
	__u8 state = XLB_CT_UDP;
	if (proto != IPPROTO_UDP) {
		struct defence *d = defence_now();
		state = d && d->secure_tcp && !(flags & XLB_CONN_F_NAT) ? XLB_CT_SYNACK : XLB_CT_SYN_RECV;
		if (!(tcp_flags & TCP_FLAG_SYN))
			/* sloppy_tcp: a flow first seen mid-connection takes
			 * the state its packet moves NONE to (an ACK:
			 * ESTABLISHED; a FIN: CLOSE), as IPVS's does. */
			state = tcp_next_state(XLB_CT_NONE, tcp_flags, (flags & XLB_CONN_F_NAT) ? CT_DIR_INPUT : CT_DIR_INPUT_ONLY);
	}
	struct conn c = {
		.real = real_slot,
		.gen = gen,
		.last_seen = now,
		.svc = svc_idx,
		.timeout_s = state_timeout(state),
		.state = state,
		.flags = flags,
		.tmpl_mask = tmpl_mask,
		.in_pkts = 1,
		.laddr = laddr,
		.lport = lport,
	};
	int err = family == AF_INET6 ? half_open6_insert(&k->v6, &c) : bpf_map_update_elem(&half_open, &k->v4, &c, BPF_ANY);
	if (!err)
		conns_add(real_slot, state, 1);
	return err;
}

/* The flow a packet belongs to, in the flow table or else the half-open
 * one (*half set). */
static __always_inline struct conn *flow_lookup(const union flow_key *k, __u8 family, int *half)
{
	if (family == AF_INET6)
		return flow_lookup6(&k->v6, half);
	struct conn *c = ft_lookup(&k->v4);
	*half = 0;
	if (c)
		return c;
	*half = 1;
	return bpf_map_lookup_elem(&half_open, &k->v4);
}

/* Deletes a flow's entry from its family's flow table. */
static __always_inline void flow_delete(const union flow_key *k, __u8 family)
{
	if (family == AF_INET6)
		flow_delete6(&k->v6);
	else
		ft_delete(&k->v4);
}

/* A NAT flow's reverse entry, proven or half-open. */
static __always_inline struct nat_reply *reply_lookup(const struct conn_key *rk)
{
	struct nat_reply *nr = bpf_map_lookup_elem(&nat_replies, rk);
	if (nr)
		return nr;
	return bpf_map_lookup_elem(&half_open_replies, rk);
}

#endif /* XLB_CONNTRACK_H */
