/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map keys and values. Every struct is explicitly padded: Go types are
 * generated from these by bpf2go (-type), never written by hand. */
#ifndef XLB_STRUCTS_H
#define XLB_STRUCTS_H

#include <linux/types.h>

enum xlb_sched {
	XLB_SCHED_NONE = 0,
	XLB_SCHED_RR = 1,
	XLB_SCHED_WRR = 2,
	XLB_SCHED_SH = 3,
	XLB_SCHED_DH = 4,
	XLB_SCHED_LC = 5,
	XLB_SCHED_WLC = 6,
	XLB_SCHED_SED = 7,
	XLB_SCHED_NQ = 8,
	XLB_SCHED_FO = 9,
	XLB_SCHED_OVF = 10,
	XLB_SCHED_TWOS = 11,
	XLB_SCHED_MH = 12,
};

/* IPVS's TCP connection states (include/net/ip_vs.h), then UDP: the index
 * into the timeouts map. */
enum xlb_ct_state {
	XLB_CT_NONE = 0,
	XLB_CT_ESTABLISHED = 1,
	XLB_CT_SYN_SENT = 2,
	XLB_CT_SYN_RECV = 3,
	XLB_CT_FIN_WAIT = 4,
	XLB_CT_TIME_WAIT = 5,
	XLB_CT_CLOSE = 6,
	XLB_CT_CLOSE_WAIT = 7,
	XLB_CT_LAST_ACK = 8,
	XLB_CT_LISTEN = 9,
	XLB_CT_SYNACK = 10,
	XLB_CT_UDP = 11,
	XLB_CT_MAX = 12,
};

enum xlb_forward {
	XLB_FWD_DR = 0,
};

/* IP_VS_SVC_F_SCHED1/2: sh-fallback, sh-port (ipvsadm -b); mh-fallback,
 * mh-port are the same bits. */
enum xlb_svc_flags {
	XLB_SVC_F_SH_FALLBACK = 0x0008,
	XLB_SVC_F_SH_PORT = 0x0010,
	/* The VIP's VRRP instance is not MASTER here: new flows go to the
	 * kernel (which does not hold the VIP), as on an IPVS backup. */
	XLB_SVC_F_STANDBY = 0x8000,
	/* IPVS's sloppy_tcp for this service: a TCP packet other than a RST
	 * that has no flow is scheduled like a SYN (a flow another director
	 * carried until ECMP moved it here). */
	XLB_SVC_F_SLOPPY = 0x4000,
};

enum xlb_real_flags {
	/* weight > 0, next hop resolved: may take new flows. */
	XLB_REAL_F_AVAILABLE = 1 << 0,
	/* the slot holds a real (possibly quiesced or unresolved). */
	XLB_REAL_F_PRESENT = 1 << 1,
	/* forwarded by NAT (masquerading): rewrite to addr:port */
	XLB_REAL_F_NAT = 1 << 2,
	/* its service is on standby (XLB_SVC_F_STANDBY): established flows
	 * go to the kernel too. */
	XLB_REAL_F_STANDBY = 1 << 3,
	/* forwarded by tunnel (IPVS's TUN): encapsulated as its entry in
	 * tunnels says */
	XLB_REAL_F_TUN = 1 << 4,
	/* forwarded by FULLNAT: as NAT (XLB_REAL_F_NAT is set too), and the
	 * source becomes one of the service's local addresses and a port
	 * given to the flow (bpf/fullnat.h) */
	XLB_REAL_F_FNAT = 1 << 5,
	/* FULLNAT, and its service asks for TOA: the handshake's ACK carries
	 * the client's address and port to the real (bpf/fullnat.h) */
	XLB_REAL_F_TOA = 1 << 6,
};

/* A health check through the data path: a checker's socket mark names
 * one of these (XLB_CHECK_MARK | id); its packets to the real's address
 * leave for the VIP as a client's packets reach that real. */
#define XLB_CHECK_MARK 0x786c0000u /* "xl" in the top half; the id below */
#define XLB_CHECK_MARK_MASK 0xffff0000u
#define XLB_CHECK_DR 0
#define XLB_CHECK_TUN 1

/* IPVS's tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*). */
enum xlb_tun_type {
	XLB_TUN_IPIP = 0,
	XLB_TUN_GUE = 1,
	XLB_TUN_GRE = 2,
};

/* Why a packet to a VIP was dropped or passed; per-CPU counters. */
enum xlb_stat {
	XLB_STAT_FRAGMENT = 0,    /* IP fragment to a VIP: dropped */
	XLB_STAT_TRUNCATED = 1,   /* L4 header cut short, to a VIP: dropped */
	XLB_STAT_NO_DEST = 2,     /* scheduler found no real: dropped (IPVS: port unreachable) */
	XLB_STAT_DEST_GONE = 3,   /* flow's real was removed: dropped (expire_nodest_conn=0) */
	XLB_STAT_NOT_SYN = 4,     /* TCP without SYN and no flow: passed to the kernel */
	XLB_STAT_RETIRING = 5,    /* SYN racing the sweeper ending its old flow: dropped */
	XLB_STAT_NAT_REPLY = 6,   /* NAT replies translated back to the VIP */
	XLB_STAT_NAT_REPLY_KERNEL = 7, /* of those, sent through the kernel's neighbour resolution (xlb_tc_neigh) */
	XLB_STAT_STANDBY = 8,     /* to a VIP whose VRRP instance is not MASTER here: passed */
	XLB_STAT_DEFENCE_DROP = 9, /* new flow dropped by drop_packet (ip_vs_todrop) */
	XLB_STAT_PROMOTED = 10,   /* half-open flows that proved themselves: moved to the flow table */
	XLB_STAT_TUN_FRAG_NEEDED = 11, /* too big for the tunnel, DF set (IPv6: always): ICMP fragmentation needed / Packet Too Big sent back */
	XLB_STAT_TUN_TOO_BIG = 12, /* too big for the tunnel, DF clear (or IP options; IPv6: an ICMPv6 packet, or a path below 1280 once wrapped): dropped (XDP cannot fragment) */
	XLB_STAT_CHECK_REPLY = 13, /* a health check's reply through the data path, given back the real's address */
	XLB_STAT_FLOOD_STATELESS = 14, /* forwarded by the scheduler's table alone, no flow entry (flood mode) */
	XLB_STAT_FNAT_NO_PORT = 15, /* FULLNAT new flow: no free local port found toward its real: dropped */
	XLB_STAT_NAT64_UDP_NO_CSUM = 16, /* an IPv4 real's UDP reply to a NAT64 flow without a checksum (IPv6 needs one): dropped */
	XLB_STAT_NAT64_ICMP_DROP = 17, /* an ICMP/ICMPv6 error about a NAT64 flow that RFC 7915 does not translate (or over 1280 bytes as ICMPv6): dropped */
	XLB_STAT_MAX = 18,
};

/* An IPv4 or IPv6 address, in network order. An IPv4 address is the
 * first word, the others zero; the family travels beside it (AF_INET, and
 * AF_INET6 to come), so that ::a.b.c.d is never taken for a.b.c.d. */
union xlb_addr {
	__be32 v4;
	__be32 v6[4];
};

struct check_target {
	union xlb_addr real; /* what the checker connects to */
	union xlb_addr vip;  /* what the real must answer on (of the real's family) */
	__u8 kind;      /* XLB_CHECK_DR or XLB_CHECK_TUN */
	__u8 tun_type;  /* enum xlb_tun_type, for TUN */
	__be16 tun_port; /* GUE's UDP destination port */
	__u8 family;    /* AF_INET or AF_INET6 */
	__u8 pad[3];
};

/* A TUN real's encapsulation, in the tunnels map at its real slot. */
struct tunnel {
	union xlb_addr src; /* outer source: the director's address toward the real (the real's family) */
	__u16 mtu;     /* the path MTU toward the real (its route's, or the egress interface's) */
	__u8 type;     /* enum xlb_tun_type */
	__u8 pad;
	__be16 port;   /* GUE: the UDP destination port */
	__u16 pad2;
};

struct svc_key {
	union xlb_addr vip;
	__be16 port;
	__u8 proto;
	__u8 family;
};

/* A VIP, for what has no ports (fragments, ICMP) and for NAT traffic
 * whose flow is gone. */
struct vip_key {
	union xlb_addr addr;
	__u8 family;
	__u8 pad[3];
};

/* One service slot. The service map points a key at the live slot. */
struct svc {
	__u32 id;        /* service index (slot / 2) + 1; 0 = unused */
	__u8 sched;      /* enum xlb_sched */
	__u8 forward;    /* enum xlb_forward */
	__u16 flags;     /* enum xlb_svc_flags */
	__u32 seq_len;   /* rr/wrr: picks in the table; 0 = no destination */
	__u32 seq_loop;  /* rr/wrr: index where the repeating cycle starts */
	/* rr/wrr state the sequence was generated from, so that a restarted
	 * control plane can regenerate it and know where IPVS would be. */
	__s32 start_cursor;
	__s32 start_cw;
	/* Persistence (ipvsadm -p/-M): 0 = none. */
	__u32 persist_timeout_s;
	__be32 persist_mask;
	/* The slot's scheduler table: tab_len entries of sched_tab from
	 * tab_off (the control plane allocates them from one pool). */
	__u32 tab_off;
	__u32 tab_len;
};

/* A real of a service (one IPVS dest). The fields an established packet
 * reads come first; 64 bytes, a cache line. */
struct real {
	__u32 flags;     /* enum xlb_real_flags */
	__u32 gen;       /* bumped when the slot is freed or reused */
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u16 tx_port;   /* egress interface's slot in tx_ports */
	__be16 port;
	__u32 ifindex;   /* egress interface */
	__u32 svc;       /* service index */
	__s32 weight;    /* configured weight */
	__u32 order;     /* position in the service's dest list (IPVS insertion order) */
	__u8 family;
	__u8 pad[3];
	union xlb_addr addr;
	/* IPVS's last_weight (the weight it was added with, or its latest
	 * non-zero weight since): mh fills its table by it. The program does
	 * not read it; a restarted control plane does. */
	__s32 last_weight;
};

/* The flow table's key, for IPv4 flows: 16 bytes, which the hash reads
 * in two rounds (a key of IPv6 size would take four on every packet). */
struct conn_key {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
} __attribute__((aligned(8))); /* written as two words: conn_key_of */

/* The key of an IPv6 flow, in tables of their own (conns6, half_open6):
 * the IPv4 tables keep their 16-byte key. */
struct conn_key6 {
	__be32 src[4];
	__be32 dst[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* A flow's key in either family's tables (the packet's family says
 * which). */
union flow_key {
	struct conn_key v4;
	struct conn_key6 v6;
};

struct conn {
	__u32 real;      /* real slot */
	__u32 gen;       /* real slot generation when the flow was made */
	__u64 last_seen; /* bpf_ktime_get_ns, coarse */
	__u32 svc;       /* service index */
	__u32 timeout_s; /* armed at the last packet, from the timeouts map */
	__u8 state;      /* enum xlb_ct_state */
	__u8 flags;      /* enum xlb_conn_flags */
	/* The client's packets, saturating at 9: IPVS's in_pkts as
	 * drop_entry reads it (todrop_entry spares a flow above 8). */
	__u8 in_pkts;
	/* FULLNAT (XLB_CONN_F_FNAT): the flow's local address, a slot of
	 * laddrs, and its port (network order). */
	__u8 laddr;
	/* Set (atomically) by whoever ends the entry, the program replacing
	 * it or the sweeper expiring it, so its counts go once. */
	__u32 retired;
	/* A persistent flow's template is (proto, src & tmpl_mask, dst,
	 * dport or 0): the flow counts among the template's controls. */
	__be32 tmpl_mask;
	__be16 lport;
	__u16 pad2;
};

/* A slot of the IPv4 flow table's array (bpf/flowtab.h): the flow's
 * key as conn_key_of stores it, its entry, and the slot's tag. */
struct ft_slot {
	__u64 k0, k1;
	struct conn c;
	__u64 tag;
} __attribute__((aligned(64)));

/* What the array's hash was keyed with, and its slots (a pinned array
 * is found again only with both). */
struct ft_meta {
	__u64 salt0, salt1;
	__u32 slots;
	__u32 pad;
};

/* What a hint of the established-flow cache (bpf/flowcache.h) says of
 * its flow, after the flow's key. */
struct flow_hint_val {
	__u64 seen; /* the flow's last_seen when the hint was written */
	__u32 real;
	__u32 gen;
	__be16 lport; /* FULLNAT (fnat set): the flow's local address and port */
	__u8 laddr;
	__u8 fnat;
	/* An IPv4 NAT or FULLNAT flow's rewrite as the ones'-complement sums
	 * it adds to the IPv4 header's checksum and to the TCP or UDP one
	 * (flow_hint_deltas); 0 for any other flow. */
	__u16 ip_delta;
	__u16 l4_delta;
};

/* An IPv4 flow's hint: its key as two words, the epoch above the key's
 * bits in k1. */
struct flow_hint {
	__u64 k0;
	__u64 k1;
	struct flow_hint_val v;
};

/* An IPv6 flow's hint: the addresses as four words, the ports and
 * protocol as one with the epoch above them (as in k1); 64 bytes. */
struct flow_hint6 {
	__u64 s0, s1, d0, d1;
	__u64 kp;
	struct flow_hint_val v;
};

/* A NAT or FULLNAT real's reply's hint (bpf/flowcache.h, "Replies"): the
 * reply's key as two words (the epoch above the key's bits in k1), the
 * key of the flow it belongs to, and what the table's path and the FIB
 * made of the reply; 64 bytes. */
struct reply_hint {
	__u64 k0;
	__u64 k1;
	__u64 fk0;     /* the flow's key's first word: client | VIP << 32 */
	__u32 fports;  /* its ports: the client's | the VIP's << 16 */
	__u32 pad;
	__u32 route_epoch;
	__u32 iif;     /* where the reply came in */
	__u32 oif;     /* where it goes out */
	__u16 ip_delta; /* the IPv4 header's sum of changes (TTL's among them) */
	__u16 l4_delta; /* the TCP or UDP header's */
	__u8 dmac[6];
	__u8 smac[6];
	__u16 max_len; /* the longest reply the FIB has let through */
	__u8 tos;
	__u8 pad2;
};

enum xlb_conn_flags {
	XLB_CONN_F_PERSIST = 1 << 0,     /* controlled by a persistence template */
	XLB_CONN_F_TMPL_NOPORT = 1 << 1, /* its template has port 0 (FTP, port 21) */
	XLB_CONN_F_NAT = 1 << 2,         /* both directions seen: IPVS's INPUT/OUTPUT tables */
	XLB_CONN_F_FNAT = 1 << 3,        /* FULLNAT: the source is rewritten to laddr:lport */
};

/* A persistence template (IPVS's template connection): the client's
 * masked address keeps its real. */
struct tmpl_key {
	union xlb_addr client;
	union xlb_addr vip;
	__be16 vport;
	__u8 proto;
	__u8 family;
};

struct tmpl {
	__u32 real;
	__u32 gen;
	__u64 last_seen;
	__u32 timeout_s;
	__u32 pad;
	/* Live flows it controls: while any, it does not expire. */
	__s64 controls;
};

/* ActiveConn / InActConn of a real, as IPVS counts them. Shared by all
 * CPUs and changed atomically, only when a flow starts, changes between
 * active and inactive, or ends: lc/wlc read them exactly. */
struct conn_counts {
	__s64 active;
	__s64 inactive;
};

/* What one sweep saw of a real: its live flows, and what the sweep itself
 * took off its counters. */
struct sweep_count {
	__s64 active;
	__s64 inactive;
	__s64 dec_active;
	__s64 dec_inactive;
	/* flows of the real that moved from the half-open table to the flow
	 * table while the sweep ran: it may have seen them in neither */
	__s64 moved;
};

/* Where a NAT real's reply goes back from: the reverse flow (real ->
 * client) maps to the VIP and port the client spoke to. */
struct nat_reply {
	union xlb_addr vip;
	__be16 vport;
	__u8 family;
	__u8 pad;
};

/* FULLNAT. A local address (a slot of the laddrs map: slots keep their
 * address while flows may use it, see plan.go). */
struct laddr {
	union xlb_addr addr;
	__u8 family;
	__u8 pad[3];
};

/* A service's local addresses (by service index): n slots of laddrs. */
#define XLB_FNAT_LADDRS 16
struct laddr_set {
	__u8 slot[XLB_FNAT_LADDRS];
	__u32 n;
};

/* A FULLNAT flow's port, by the key of its replies (real -> local
 * address, real's port -> local port): the VIP and port the client spoke
 * to (nr, as a NAT flow's reverse entry has them), the client (of the
 * VIP's family, nr.family: an IPv4 reply key with an IPv6 VIP is NAT64's),
 * and when the port was taken. Inserting it (BPF_NOEXIST) is what takes
 * the port; the sweep gives it back when its flow is gone. */
struct fnat_port {
	struct nat_reply nr;
	union xlb_addr client;
	__be16 cport;
	__u8 laddr;
	__u8 pad;
	__u64 taken;
};

/* IPVS's defences against a flood (ip_vs_ctl.c update_defense_level), as
 * the control plane sets them every second from the flow tables' room:
 * drop_packet's rate, secure_tcp's state table, drop_entry's sweep. */
struct defence {
	__u32 drop_rate;  /* drop 1 of every drop_rate new flows; 0: none */
	__u32 secure_tcp; /* TCP moves by tcp_states_dos */
	__u32 drop_entry; /* the sweep drops entries as ip_vs_random_dropentry */
	/* Flood mode: above this many new flows a second on a CPU, the new
	 * flows of sh, dh and mh services (without persistence) get no flow
	 * entry: they go by the scheduler's table alone; 0: off. */
	__u32 flood_rate;
};

/* This CPU's count of new flows in the current second (flood mode). */
struct flood_window {
	__u64 start;
	__u64 count;
};

/* What the last sweep saw and did, and drop_entry's todrop_counter[]
 * (kept from one sweep to the next, as IPVS keeps it). */
struct sweep_total {
	__u64 conns;      /* live flows in the flow table */
	__u64 half_open;  /* live flows in the half-open table */
	__u64 dropped;    /* entries drop_entry ended */
	__s32 todrop_counter[9];
	__u32 pad;
};

struct counters {
	__u64 packets;   /* client -> real */
	__u64 bytes;
	__u64 conns;
	__u64 out_packets; /* real -> client, seen for NAT only (DR replies bypass us) */
	__u64 out_bytes;
};

/* The enums the control plane reads that no map is keyed by: a struct
 * holding one of each, in a read-only global the program never reads, keeps
 * them in the object's BTF, whence bpf2go (-type) gives them to Go. */
struct xlb_enums {
	enum xlb_sched sched;
	enum xlb_svc_flags svc_flags;
	enum xlb_real_flags real_flags;
	enum xlb_conn_flags conn_flags;
	enum xlb_tun_type tun_type;
};

#endif /* XLB_STRUCTS_H */
