/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions. All maps are pinned by name under the loader's pin path
 * (/sys/fs/bpf/xlb), so a restarted control plane finds the same flows,
 * services and counters.
 *
 * Control-plane maps (written by Go, read by the program) come first; the
 * hot-path maps the program writes per packet or per new flow follow. */
#ifndef XLB_MAPS_H
#define XLB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb_consts.h"
#include "xlb_structs.h"

/* ---- written by the control plane ---- */

/* (VIP, port, protocol) -> live slot in svcs. Updating a hash element swaps
 * it whole, which is what makes the slot flip atomic. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct svc_key);
	__type(value, __u32);
	__uint(max_entries, XLB_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct svc);
	__uint(max_entries, XLB_MAX_SVC_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct real);
	__uint(max_entries, XLB_MAX_REALS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} reals SEC(".maps");

/* A TUN real's tunnel, at its real slot (read only for XLB_REAL_F_TUN). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tunnel);
	__uint(max_entries, XLB_MAX_REALS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnels SEC(".maps");

/* The pool of scheduler tables: each service slot's from its tab_off, real
 * slots in rr/wrr pick order, the 256 sh/dh buckets, or the dest list to
 * scan. XLB_NO_REAL marks none. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, XLB_SCHED_TAB_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sched_tab SEC(".maps");

/* Every address that is the VIP of some service this director serves now
 * (not on standby); a role flip adds or removes its VIPs here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct vip_key);
	__type(value, __u32);
	__uint(max_entries, XLB_MAX_VIPS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vips SEC(".maps");

/* One slot per hash_32(VIP, XLB_VIP_FILTER_BITS): non-zero when some VIP
 * hashes there. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1 << XLB_VIP_FILTER_BITS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_filter SEC(".maps");

/* As vip_filter, for the addresses of NAT reals (of services on standby
 * too: a role flip does not rewrite it): a packet whose source hashes to an
 * empty slot is not a NAT reply. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1 << XLB_VIP_FILTER_BITS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat_src_filter SEC(".maps");

/* Egress interfaces for reals that are not on the ingress link, by a slot
 * the control plane gives each interface (an array: cheaper than a hash
 * keyed by ifindex on every redirected packet). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, XLB_MAX_IFACES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tx_ports SEC(".maps");

/* A service's counters are the sum of its reals' (one counter update per
 * packet, not two) plus what reals removed from it had counted, which the
 * control plane moves here when it frees them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct counters);
	__uint(max_entries, XLB_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_retired SEC(".maps");

/* Timeouts in seconds by enum xlb_ct_state (ipvsadm --set changes
 * ESTABLISHED, FIN_WAIT and UDP). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, enum xlb_ct_state);
	__type(value, __u32);
	__uint(max_entries, XLB_CT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} timeouts SEC(".maps");

/* Corrections of real_conns the control plane asks for (the sweeper
 * finding that evicted flows were still counted): applied atomically by
 * xlb_adjust, then zeroed. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct conn_counts);
	__uint(max_entries, XLB_MAX_REALS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_adjust SEC(".maps");

/* FULLNAT: the local addresses (by slot), and each service's (by
 * service index). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct laddr);
	__uint(max_entries, XLB_MAX_LADDRS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} laddrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct laddr_set);
	__uint(max_entries, XLB_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_laddrs SEC(".maps");

/* drop_packet, secure_tcp, drop_entry as they stand (key 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct defence);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} defence_state SEC(".maps");

/* ---- written by the program ---- */

/* Flood mode's count of new flows per CPU and second. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct flood_window);
	__uint(max_entries, 1);
} flood_window SEC(".maps");

/* drop_packet's countdown to the next drop, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_counter SEC(".maps");

/* xlb_sweep's totals (key 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sweep_total);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sweep_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct conn_counts);
	__uint(max_entries, XLB_MAX_REALS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} real_conns SEC(".maps");

/* Persistence templates. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tmpl_key);
	__type(value, struct tmpl);
	__uint(max_entries, XLB_MAX_CONNS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} templates SEC(".maps");

/* Reverse flows of NAT connections (real -> client) to the VIP:port the
 * client used; written with the flow, moved here when it is proven. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key);
	__type(value, struct nat_reply);
	__uint(max_entries, XLB_MAX_CONNS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat_replies SEC(".maps");

/* FULLNAT's ports in use, by the key of their flows' replies (bpf/fullnat.h).
 * Not an LRU: an entry leaves only when its flow has (the sweep), so a
 * port is never given to two flows. Preallocated: allocated as used
 * (BPF_F_NO_PREALLOC), a burst of new flows found the allocator's per-CPU
 * cache empty now and then (2 of 200,000 SYNs in a row, measured) and
 * dropped them as if their ports were taken. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct conn_key);
	__type(value, struct fnat_port);
	__uint(max_entries, XLB_MAX_CONNS + XLB_MAX_HALF_OPEN);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fnat_ports SEC(".maps");

/* fnat_take's request: the reply entry of the new flow (per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fnat_port);
	__uint(max_entries, 1);
} fnat_scratch SEC(".maps");

/* fnat_ports for IPv6 reals (FULLNAT of an IPv6 service to IPv6 reals),
 * sized with IPv4's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct conn_key6);
	__type(value, struct fnat_port);
	__uint(max_entries, XLB_MAX_CONNS + XLB_MAX_HALF_OPEN);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fnat_ports6 SEC(".maps");

/* Health checks through the data path: the targets the control plane
 * registered (key: the id in the checker's socket mark), and the checks'
 * connections xlb_tc_check sent to a VIP, by their replies' key (VIP,
 * director; ports; protocol) -> the real's address the checker connected
 * to. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct check_target);
	__uint(max_entries, XLB_MAX_CHECKS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} check_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct conn_key);
	__type(value, __be32);
	__uint(max_entries, XLB_MAX_CHECKS * 4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} check_flows SEC(".maps");

/* check_flows for IPv6 checks: the reply's key to the real's address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct conn_key6);
	__type(value, union xlb_addr);
	__uint(max_entries, XLB_MAX_CHECKS * 4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} check_flows6 SEC(".maps");

/* Scratch of xlb_sweep, zeroed by the control plane before each sweep. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sweep_count);
	__uint(max_entries, XLB_MAX_REALS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sweep_counts SEC(".maps");

/* rr/wrr: picks consumed from a service slot's sequence. Shared across CPUs
 * (one atomic add per new flow, never per packet) so that the order of picks
 * is one global order, as under IPVS's scheduler lock. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XLB_MAX_SVC_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sched_cursor SEC(".maps");

/* The flow table: flows that have shown more than their first packet
 * (a TCP flow past SYN_RECV/SYNACK, a UDP flow's second packet). A flood
 * of first packets never reaches it, so never evicts from it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key);
	__type(value, struct conn);
	__uint(max_entries, XLB_MAX_CONNS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conns SEC(".maps");

/* The established-flow cache (bpf/flowcache.h), per CPU, sized by the
 * loader; not pinned: a restarted director starts with none. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct flow_hint);
	__uint(max_entries, 1);
} flow_cache SEC(".maps");

/* IPv6's: its hints hold 36 bytes of key, as many slots as flow_cache. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct flow_hint6);
	__uint(max_entries, 1);
} flow_cache6 SEC(".maps");

/* NAT and FULLNAT replies' hints (IPv4), as many slots as flow_cache. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct reply_hint);
	__uint(max_entries, 1);
} reply_cache SEC(".maps");

/* Half-open flows: a new flow lives here until its next client packet
 * (or, under secure_tcp, the real's) proves it. A SYN flood fills and
 * recycles this table only. */
/* The IPv4 flow table's array (bpf/flowtab.h), sized by the loader;
 * the control plane maps it (pkg/dataplane/xdp/flowtab.go). Its hash's
 * key is kept beside it, so that a restarted director finds its flows. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ft_slot);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flowtab SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ft_meta);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flowtab_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key);
	__type(value, struct conn);
	__uint(max_entries, XLB_MAX_HALF_OPEN);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} half_open SEC(".maps");

/* IPv6 flows: the flow table and the half-open one, as conns and
 * half_open are for IPv4 (sized with them). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key6);
	__type(value, struct conn);
	__uint(max_entries, XLB_MAX_CONNS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conns6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key6);
	__type(value, struct conn);
	__uint(max_entries, XLB_MAX_HALF_OPEN);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} half_open6 SEC(".maps");

/* The NAT reverse entries of IPv6 flows (NAT66): proven, and half-open. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key6);
	__type(value, struct nat_reply);
	__uint(max_entries, XLB_MAX_CONNS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat_replies6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key6);
	__type(value, struct nat_reply);
	__uint(max_entries, XLB_MAX_HALF_OPEN);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} half_open_replies6 SEC(".maps");

/* The NAT reverse entries of half-open flows. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct conn_key);
	__type(value, struct nat_reply);
	__uint(max_entries, XLB_MAX_HALF_OPEN);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} half_open_replies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counters);
	__uint(max_entries, XLB_MAX_REALS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} real_stats SEC(".maps");

/* Sized beyond enum xlb_stat, so that a build with a new reason takes
 * over the pinned map of one without it (a hitless upgrade). */
#define XLB_STAT_SLOTS 64
_Static_assert(XLB_STAT_MAX <= XLB_STAT_SLOTS, "enum xlb_stat outgrew the stats map");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, enum xlb_stat);
	__type(value, __u64);
	__uint(max_entries, XLB_STAT_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

#endif /* XLB_MAPS_H */
