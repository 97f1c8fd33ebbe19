// Package xdp is the XDP implementation of xlb's data plane: an XDP program
// (bpf/xdp_lb.bpf.c, built with bpf2go) that forwards in DR and NAT mode,
// with the IPVS schedulers computed exactly as the kernel does (rr and wrr
// as precomputed pick sequences, sh and dh as their buckets, lc, wlc, sed
// and nq from connection counts kept as IPVS keeps them) and persistence.
//
// It is four parts: a pure planner (plan.go: from the picture of the maps,
// the services wanted and the next hops, cursors and standby set it is
// given, every entry and table to write; no I/O), the writes (write.go,
// batched where the kernel can), pinned-state recovery (recover.go), and
// the loops that keep next hops (nexthop.go) and the connection table
// (conntrack.go) current. A role flip (SetStandby, standby.go) writes only
// flags. The program's enums and structs reach Go through bpf2go -type
// (xlb_bpfel.go); a test checks the scheduler enum against pkg/sched's
// registry.
//
// Maps and XDP links are pinned under /sys/fs/bpf/xlb, so a restarted
// process takes over the running data plane (replacing the program through
// the pinned link) without dropping traffic or established flows.
//
// Minimum kernel: 5.15 (BPF atomics with fetch, bpf_for_each_map_elem, XDP
// bpf_link); batch map updates are used from 5.6 and fall back to single
// ones; the forwarding-rate benchmark's live frames need 5.18.
package xdp
