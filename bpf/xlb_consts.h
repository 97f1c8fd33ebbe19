/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every tunable of the data plane. Each can be overridden at build time with
 * -DNAME=value; the loader can also resize maps (MaxEntries) without a rebuild. */
#ifndef XLB_CONSTS_H
#define XLB_CONSTS_H

/* Services (VIP, port, protocol). Each service owns two slots (double
 * buffering: the control plane fills the idle slot, then flips the service
 * map to it, so a reader never sees a half-written scheduler table). The
 * loader sizes the service maps (--max-services); this is the default. */
#ifndef XLB_MAX_SERVICES
#define XLB_MAX_SERVICES 4096
#endif
#define XLB_MAX_SVC_SLOTS (XLB_MAX_SERVICES * 2)

/* Real servers, counted per (service, real) pair as IPVS counts dests
 * (--max-reals). */
#ifndef XLB_MAX_REALS
#define XLB_MAX_REALS 65536
#endif

/* The longest scheduler table: an rr/wrr pick sequence (prefix + cycle;
 * a wrr cycle is sum(weights)/gcd(weights) long). */
#ifndef XLB_SCHED_SLOTS
#define XLB_SCHED_SLOTS 4096
#endif

/* Entries of the pool every service slot's scheduler table is allocated
 * from (4 bytes each; --max-sched-entries). A service needs as many as its
 * table has (its rr/wrr sequence, 256 sh/dh buckets, its reals for a scan),
 * twice while a new table replaces the old. */
#ifndef XLB_SCHED_TAB_ENTRIES
#define XLB_SCHED_TAB_ENTRIES (1 << 20)
#endif

/* sh/dh buckets: IP_VS_SH_TAB_BITS / IP_VS_DH_TAB_BITS default 8. */
#define XLB_HASH_TAB_BITS 8
#define XLB_HASH_TAB_SIZE (1 << XLB_HASH_TAB_BITS)

/* Connection table (LRU). The loader sizes it; this is the default. */
#ifndef XLB_MAX_CONNS
#define XLB_MAX_CONNS (1 << 18)
#endif

/* Half-open flows (their first packet seen, not yet proven): a SYN flood
 * recycles this table, never the flow table. A legitimate handshake needs
 * its entry for one round trip: at 1M spoofed SYNs/s, 64k entries hold
 * 65 ms of them. The loader sizes it (--max-half-open). */
#ifndef XLB_MAX_HALF_OPEN
#define XLB_MAX_HALF_OPEN (1 << 16)
#endif

/* Addresses that are VIPs of any service: consulted only for packets whose
 * ports cannot be read (fragments, truncated L4 headers). One per service
 * at most: sized with the services. */
#define XLB_MAX_VIPS XLB_MAX_SERVICES

/* Bits of the VIP filter: packets whose destination hashes to an empty
 * slot are not for any service and pass without a hash-map lookup. */
#ifndef XLB_VIP_FILTER_BITS
#define XLB_VIP_FILTER_BITS 12
#endif

/* Egress interfaces for devmap redirects. */
#ifndef XLB_MAX_IFACES
#define XLB_MAX_IFACES 64
#endif

/* A flow's last-seen time is written back only when it has moved by this
 * much, to keep stores to a shared cache line off the per-packet path. */
#ifndef XLB_LAST_SEEN_STEP_NS
#define XLB_LAST_SEEN_STEP_NS 1000000000ULL
#endif

/* Reals an lc/wlc/sed/nq scan reads at most: the scan runs once per new
 * flow and costs two array lookups per real. */
#ifndef XLB_MAX_SCAN
#define XLB_MAX_SCAN 256
#endif

#define XLB_NO_REAL 0xffffffffu

/* Reals checked through the data path at once (check_via_vip). */
#ifndef XLB_MAX_CHECKS
#define XLB_MAX_CHECKS 4096
#endif

/* FULLNAT's local addresses, all services' together. */
#ifndef XLB_MAX_LADDRS
#define XLB_MAX_LADDRS 256
#endif

/* A handler that has not decided the packet's fate returns this: the next
 * handler in xlb_xdp's chain takes it. */
#define XLB_CONTINUE -1

#endif /* XLB_CONSTS_H */
