// Package dataplane is the only part of xlb that loads BPF programs or touches
// the kernel's load-balancing state.
//
// The rest of the program sees the Dataplane interface: Apply the desired
// services and reals, read Stats and Conns, Close. XDP is the implementation
// in this package: an XDP program (bpf/xdp_lb.bpf.c, built with bpf2go) that
// forwards in DR and NAT mode, with the IPVS schedulers (rr, wrr, sh, dh from
// tables pkg/sched computes; lc, wlc, sed, nq from connection counts kept
// as IPVS keeps them) and persistence.
//
// Maps and XDP links are pinned under /sys/fs/bpf/xlb, so a restarted
// process takes over the running data plane (replacing the program through
// the pinned link) without dropping traffic or established flows.
//
// Minimum kernel: 5.15 (BPF atomics with fetch, bpf_for_each_map_elem, XDP
// bpf_link); the forwarding-rate benchmark's live frames need 5.18.
package dataplane
