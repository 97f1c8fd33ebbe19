package sched

import (
	"encoding/binary"
	"math/bits"
)

// mh is IPVS's Maglev hashing scheduler (net/netfilter/ipvs/ip_vs_mh.c,
// Linux 4.18 and later): every director that holds the same dests builds
// the same lookup table, because the hash keys are fixed constants rather
// than a per-boot secret. The table, the lookup and the fallback here are
// the kernel's, step for step, so an XDP director and an IPVS director can
// share one ECMP group.

// mhPrimes are the table sizes ip_vs_mh.c can be built with;
// CONFIG_IP_VS_MH_TAB_INDEX (8..17) picks primes[index - 8].
var mhPrimes = [...]int{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}

// MHTabIndex is CONFIG_IP_VS_MH_TAB_INDEX as Debian's and most
// distributions' kernels have it, the kernel's default: 12, a table of
// 4093 entries (checked against the 6.1 VM kernel's config).
const MHTabIndex = 12

// MHTabSize is IP_VS_MH_TAB_SIZE at MHTabIndex: the table's length.
var MHTabSize = mhPrimes[MHTabIndex-8]

// MHTabIndexValid says whether a kernel can be built with index as
// CONFIG_IP_VS_MH_TAB_INDEX (8 to 17).
func MHTabIndexValid(index int) bool { return index >= 8 && index < 8+len(mhPrimes) }

// mhGeometry is IP_VS_MH_TAB_SIZE and IP_VS_MH_TAB_BITS (the bits a
// weight may take in the table before mh shifts all weights down) for
// index (0: MHTabIndex).
func mhGeometry(index int) (size, bits int) {
	if index == 0 {
		index = MHTabIndex
	}
	return mhPrimes[index-8], index / 2
}

// mh's fixed hsiphash keys (generate_hash_secret): both words of each key
// are the same constant. Key 1 places a dest's first entry and hashes the
// client; key 2 gives a dest's step through the table.
const (
	MHKey1 = 2654435761
	MHKey2 = 2654446892
)

// HSipHash is the kernel's hsiphash() on a 64-bit kernel, where it is
// SipHash-1-3 truncated to 32 bits (lib/siphash.c: "on 64-bit, we make
// HalfSipHash1-3 actually be SipHash1-3"). The key is hsiphash_key_t's two
// unsigned longs.
func HSipHash(data []byte, k0, k1 uint64) uint32 {
	v0 := uint64(0x736f6d6570736575) ^ k0
	v1 := uint64(0x646f72616e646f6d) ^ k1
	v2 := uint64(0x6c7967656e657261) ^ k0
	v3 := uint64(0x7465646279746573) ^ k1
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	b := uint64(len(data)) << 56
	for ; len(data) >= 8; data = data[8:] {
		m := binary.LittleEndian.Uint64(data)
		v3 ^= m
		round()
		v0 ^= m
	}
	for i, c := range data {
		b |= uint64(c) << (8 * i)
	}
	v3 ^= b
	round()
	v0 ^= b
	v2 ^= 0xff
	round()
	round()
	round()
	return uint32((v0 ^ v1) ^ (v2 ^ v3))
}

// MHHash is ip_vs_mh_hashkey: hsiphash, under key (both words), of the
// unsigned int offset + port + fold (wrapping), fold being AddrFold of the
// address and port in host order.
func MHHash(fold uint32, port uint16, key uint64, offset uint32) uint32 {
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], offset+uint32(port)+fold)
	return HSipHash(v[:], key, key)
}

// MHTable fills the lookup table as ip_vs_mh_reassign does over the dest
// list ds (IPVS order; each dest's Addr, Port and TableWeight are read):
// weights divided by their gcd and shifted down to at most mhTabBits bits
// (at least one turn for a non-zero weight), each dest's permutation
// starting at hash1 mod size and stepping by hash2 mod (size-1) + 1, and
// the dests taking their turns at their next free entry, round after
// round, until the table is full. An entry holds a dest's index in ds, or
// -1: every entry when no dest has a weight.
func MHTable(ds []Dest) []int { return MHTableOf(ds, 0) }

// MHTableOf is MHTable for a kernel built with CONFIG_IP_VS_MH_TAB_INDEX
// index (0: MHTabIndex; it must be MHTabIndexValid).
func MHTableOf(ds []Dest, index int) []int {
	size, mhTabBits := mhGeometry(index)
	tab := make([]int, size)
	for i := range tab {
		tab[i] = -1
	}
	g, mw := int32(0), int32(0)
	for _, d := range ds {
		w := d.TableWeight()
		if w > 0 {
			if g > 0 {
				g = gcd(w, g)
			} else {
				g = w
			}
		}
		mw = max(mw, w)
	}
	if g < 1 || len(ds) > size {
		return tab // ip_vs_mh_reset, or the kernel's EINVAL
	}
	shift := max(bits.Len32(uint32(mw/g))-mhTabBits, 0)
	type setup struct {
		skip, perm uint32
		turns      int32
	}
	st := make([]setup, len(ds))
	for i, d := range ds {
		fold, lw := AddrFold(d.Addr), d.TableWeight()
		st[i].perm = MHHash(fold, d.Port, MHKey1, 0) % uint32(size)
		st[i].skip = MHHash(fold, d.Port, MHKey2, 0)%uint32(size-1) + 1
		st[i].turns = (lw / g) >> shift
		if st[i].turns == 0 && lw != 0 {
			st[i].turns = 1
		}
	}
	taken := make([]bool, size)
	n, count := 0, int32(0)
	for {
		for i := 0; i < len(ds); {
			s := &st[i]
			if s.turns < 1 {
				i++
				continue
			}
			for taken[s.perm] {
				s.perm += s.skip
				if s.perm >= uint32(size) {
					s.perm -= uint32(size)
				}
			}
			taken[s.perm] = true
			tab[s.perm] = i
			if n++; n == size {
				return tab
			}
			if count++; count >= s.turns {
				count = 0
				i++
			}
		}
	}
}

// MHPick is ip_vs_mh_get, or with fallback (mh-fallback, lvs.Sched1)
// ip_vs_mh_get_fallback, for a client whose address folds to fold (its
// source port with mh-port, lvs.Sched2, else 0): the entry at
// MHHash(fold, port, key 1, 0) mod size, taken if its dest is available.
// With fallback an unavailable dest is replaced by the first available one
// at MHHash(fold, port, key 1, (ihash + offset) mod size) for offset 0, 1,
// ...; an empty entry ends the search. It returns the dest's index in ds,
// or -1.
func MHPick(tab []int, ds []Dest, fold uint32, port uint16, fallback bool) int {
	size := uint32(len(tab))
	if size == 0 {
		return -1
	}
	ih := MHHash(fold, port, MHKey1, 0) % size
	d := tab[ih]
	if d < 0 || d >= len(ds) {
		return -1
	}
	if ds[d].Available() {
		return d
	}
	if !fallback {
		return -1
	}
	for offset := range size {
		h := MHHash(fold, port, MHKey1, (offset+ih)%size) % size
		d = tab[h]
		if d < 0 || d >= len(ds) {
			return -1
		}
		if ds[d].Available() {
			return d
		}
	}
	return -1
}
