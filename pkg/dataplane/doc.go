// Package dataplane is the only part of xlb that loads BPF programs or touches
// the kernel's load-balancing state.
//
// The rest of the program sees the Dataplane interface: Apply the desired
// services and reals, read Stats and Conns, Close. XDP is the implementation
// in this package: an XDP program (bpf/xdp_lb.bpf.c, built with bpf2go) that
// forwards in DR mode, with the IPVS schedulers rr, wrr, sh and dh computed
// by pkg/sched into BPF maps.
//
// Maps and XDP links are pinned under /sys/fs/bpf/xlb, so a restarted
// process takes over the running data plane (replacing the program through
// the pinned link) without dropping traffic or established flows.
//
// Minimum kernel: 5.9 (bpf_link for XDP, BPF_MAP_TYPE_DEVMAP_HASH, bounded
// loops); BPF_PROG_TEST_RUN for XDP with live frames needs 5.18.
package dataplane
