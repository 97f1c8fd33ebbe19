package sched

import "net/netip"

// Dest is one real server as a scheduler sees it, in IPVS dest-list order:
// the kernel adds each new dest at the head of the list, so the list is
// newest first.
//
// Weight must not be negative: IPVS refuses negative weights with ERANGE.
// Given one anyway, each picker applies the kernel's own test for its
// scheduler (some test w > 0, some w != 0).
type Dest struct {
	Weight     int32
	Overloaded bool   // IPVS OVERLOAD flag (upper threshold reached)
	Active     uint32 // ActiveConn
	Inactive   uint32 // InActConn

	// What only mh reads: the dest's address and port (host order),
	// which place it in the table, and IPVS's last_weight, the weight
	// it was added with or its latest non-zero weight since, which mh
	// fills the table by (a dest quiesced to weight 0 keeps its
	// entries). Zero LastWeight means Weight.
	Addr       netip.Addr
	Port       uint16
	LastWeight int32
}

// TableWeight is the weight mh fills its table by: IPVS's last_weight.
func (d Dest) TableWeight() int32 {
	if d.LastWeight != 0 {
		return d.LastWeight
	}
	return d.Weight
}

// Available reports whether a dest may take new connections: Weight > 0 &&
// !Overloaded. This is the sh, dh and rr test (sh calls its negation
// is_unavailable).
func (d Dest) Available() bool {
	return d.Weight > 0 && !d.Overloaded
}

// Overhead is ip_vs_dest_conn_overhead, the load lc and wlc compare:
// Active*256 + Inactive, computed as the kernel does in 32-bit int (it wraps
// once Active reaches 2^23).
func (d Dest) Overhead() int32 {
	return int32(d.Active<<8 + d.Inactive)
}

// SEDOverhead is the load sed and nq compare: Active + 1 (the incoming
// connection), in 32-bit int as in the kernel.
func (d Dest) SEDOverhead() int32 {
	return int32(d.Active + 1)
}
