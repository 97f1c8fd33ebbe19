package sched

import (
	"encoding/binary"
	"net/netip"
)

// Table geometry of sh and dh: CONFIG_IP_VS_SH_TAB_BITS and
// CONFIG_IP_VS_DH_TAB_BITS at their default of 8.
const (
	TabBits = 8
	TabSize = 1 << TabBits
	tabMask = TabSize - 1
)

// GoldenRatio32 is GOLDEN_RATIO_32 from include/linux/hash.h.
const GoldenRatio32 = 0x61C88647

// Hash32 is the kernel's hash_32: the top bits of val*GOLDEN_RATIO_32 mod
// 2^32. bits must be in 1..32; outside it the result is 0.
func Hash32(val uint32, bits uint) uint32 {
	return (val * GoldenRatio32) >> (32 - bits)
}

// AddrFold is the address as sh and dh hash it: ntohl of the IPv4 address,
// or for an IPv6 address (IPv4-mapped ones included, as in an AF_INET6
// service) the XOR of its four 32-bit words in host order. The zero Addr
// folds to 0.
func AddrFold(a netip.Addr) uint32 {
	switch {
	case a.Is4():
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	case a.Is6():
		b := a.As16()
		// XOR commutes with the byte swap, so folding host-order words
		// equals ntohl of the kernel's fold of network-order words.
		return binary.BigEndian.Uint32(b[0:]) ^ binary.BigEndian.Uint32(b[4:]) ^
			binary.BigEndian.Uint32(b[8:]) ^ binary.BigEndian.Uint32(b[12:])
	}
	return 0
}

// SHKey is the value sh hashes: AddrFold(src) + port as a wrapping uint32.
// port is in host order, and must be 0 unless the service has sh-port (lvs.Sched2)
// (with it: the source port for TCP, UDP and SCTP, 0 for other protocols).
// For reply and ICMP packets IPVS hashes the destination address instead.
func SHKey(src netip.Addr, port uint16) uint32 {
	return AddrFold(src) + uint32(port)
}

// SHBucket is the bucket sh looks up first for key, and dh for a folded
// destination address.
func SHBucket(key uint32) int {
	return int(Hash32(key, TabBits))
}

// SHTable fills the 256 sh buckets as ip_vs_sh_reassign does: walk ds
// cyclically giving each dest Weight consecutive buckets, and at least one
// (a weight-0 dest still takes one bucket per round; lookups then treat it
// as unavailable). A bucket holds the dest's index in ds, or -1 when ds is
// empty.
func SHTable(ds []Dest) [TabSize]int {
	var tab [TabSize]int
	if len(ds) == 0 {
		fillEmpty(&tab)
		return tab
	}
	d, count := 0, int64(0)
	for i := range tab {
		tab[i] = d
		// The kernel increments before comparing, hence "at least one".
		count++
		if count >= int64(ds[d].Weight) {
			d = (d + 1) % len(ds)
			count = 0
		}
	}
	return tab
}

// DHTable fills the 256 dh buckets as ip_vs_dh_reassign does: one bucket per
// dest, round robin, weights ignored. IPVS rebuilds it on add and delete
// only; since weights don't enter, rebuilding on other changes is harmless.
func DHTable(ds []Dest) [TabSize]int {
	var tab [TabSize]int
	if len(ds) == 0 {
		fillEmpty(&tab)
		return tab
	}
	for i := range tab {
		tab[i] = i % len(ds)
	}
	return tab
}

func fillEmpty(tab *[TabSize]int) {
	for i := range tab {
		tab[i] = -1
	}
}

// SHPick is the reference sh lookup for key (see SHKey). Without fallback
// the bucket's dest is taken if available and nothing else is tried. With
// fallback (sh-fallback, lvs.Sched1) an unavailable dest is replaced by the first
// available one among the buckets (2*ih + offset) mod 256 for offset
// 0..255, ih being the first bucket; an empty bucket ends the search. It
// returns the dest's index in ds, or -1.
func SHPick(tab *[TabSize]int, ds []Dest, key uint32, fallback bool) int {
	ih := SHBucket(key)
	d, ok := bucketDest(tab, ds, ih)
	if !ok {
		return -1
	}
	if ds[d].Available() {
		return d
	}
	if !fallback {
		return -1
	}
	for offset := range TabSize {
		// ip_vs_sh_get_fallback: roffset = (offset + ih) % size, then the
		// bucket is hashkey(addr, port, roffset) = (roffset + ih) & mask.
		roffset := (offset + ih) % TabSize
		d, ok := bucketDest(tab, ds, (roffset+ih)&tabMask)
		if !ok {
			return -1
		}
		if ds[d].Available() {
			return d
		}
	}
	return -1
}

// DHPick is the reference dh lookup for destination address dst: the bucket
// hash_32(AddrFold(dst), 8), taken if its dest is available, else -1. dh has
// no fallback.
func DHPick(tab *[TabSize]int, ds []Dest, dst netip.Addr) int {
	d, ok := bucketDest(tab, ds, SHBucket(AddrFold(dst)))
	if !ok || !ds[d].Available() {
		return -1
	}
	return d
}

// bucketDest reads bucket b; an entry that names no dest of ds is an empty
// (NULL) bucket.
func bucketDest(tab *[TabSize]int, ds []Dest, b int) (int, bool) {
	d := tab[b]
	if d < 0 || d >= len(ds) {
		return -1, false
	}
	return d, true
}
