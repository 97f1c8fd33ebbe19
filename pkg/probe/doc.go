// Package probe asks the running kernel which of the facilities xlb's data
// plane can use: native and generic XDP, TCX, the clsact qdisc with cls_bpf,
// BPF_PROG_TEST_RUN, and IPVS over generic netlink.
//
// Each probe does the real thing once with a two-instruction program built
// in Go (no clang): it loads the program, attaches it, and detaches it
// again, so the answer is what the kernel does, not what its version number
// suggests. Nothing a probe attaches or creates outlives the call.
//
// Run probes everything and returns a Report for `xlb probe` and the vmtest
// kernel matrix, with the data plane dataplane.Choose picks from it. The
// daemon calls the single probes (XDPNative, XDPGeneric, XDPDataPlane) on
// its own interfaces and hands the results to the same dataplane.Choose.
//
// XLB_PROBE_DENY (see DenyFromEnv) makes named features report as missing
// without touching the kernel, to exercise the fallbacks on a kernel that
// has everything.
//
// Probing needs root (CAP_BPF, CAP_NET_ADMIN and, for the temporary network
// namespace, CAP_SYS_ADMIN). Minimum kernel: 5.9 (XDP through bpf_link);
// TCX needs 6.6.
package probe
