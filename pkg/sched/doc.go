// Package sched is the IPVS scheduler arithmetic that xlb must reproduce bit
// for bit: the rr and wrr cursors, the sh and dh bucket tables and their
// lookups, and the lc, wlc, sed and nq connection-count choices; and the
// scheduler registry (Schedulers), the one list of IPVS's schedulers: each
// one's name, the flags it reads and their names, how the XDP data plane
// computes it (Table), its table builders and its reference picker. Every
// other list of scheduler names in xlb is derived from the registry.
//
// The BPF data plane does not run these algorithms itself. The control plane
// (pkg/dataplane) uses this package to fill the tables the data plane reads:
// the 256 sh/dh buckets, and for rr/wrr the whole pick sequence the kernel
// would produce from its current cursor (see [RRSequence], [WRRSequence]).
// Tests then compare the data plane's choices with the reference pickers
// here ([RR.Pick], [WRR.Pick], [SHPick], [DHPick], [LC], [WLC], [SED], [NQ]).
//
// The semantics are those of net/netfilter/ipvs in kernels that hash sh and
// dh with hash_32 and know the sh-fallback and sh-port flags (about 3.11 and
// later), with the default CONFIG_IP_VS_{SH,DH}_TAB_BITS of 8. Where the
// kernel computes in 32-bit int, so does this package, overflow included.
//
// A destination list is a []Dest in IPVS order: the order the dests were
// added. Pickers return an index into it, or -1 where IPVS would return NULL
// ("no destination available").
//
// The package is pure: no I/O, no clock, no globals.
package sched
