package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kernel's own hsiphash test vectors on 64-bit (lib/siphash_kunit.c,
// formerly lib/test_siphash.c): key 00..0f, input the bytes 0, 1, ... of
// each length 0..63.
var hsiphashVectors = [64]uint32{
	0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67,
	0xc59f22a7, 0x9bb11140, 0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352,
	0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c,
	0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123,
	0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4,
	0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91,
	0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944,
	0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd,
	0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0,
	0x73f0bce6, 0x70a7e980, 0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148,
	0xf7a644ee, 0x0f1837f2, 0x4b6694e0, 0xb7bbb3a8,
}

func TestHSipHashIsTheKernels(t *testing.T) {
	in := make([]byte, 64)
	for i := range in {
		in[i] = byte(i)
	}
	for n, want := range hsiphashVectors {
		assert.Equal(t, want, HSipHash(in[:n], 0x0706050403020100, 0x0f0e0d0c0b0a0908), "length %d", n)
	}
}

func mhDests(ws ...int32) []Dest {
	ds := make([]Dest, len(ws))
	for i, w := range ws {
		ds[i] = Dest{Weight: w, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)}), Port: 80}
	}
	return ds
}

func counts(tab []int, n int) []int {
	c := make([]int, n)
	for _, d := range tab {
		c[d]++
	}
	return c
}

func TestMHTable(t *testing.T) {
	assert.Equal(t, 4093, MHTabSize, "CONFIG_IP_VS_MH_TAB_INDEX 12: primes[4]")

	t.Run("equal weights share the table evenly, every entry filled", func(t *testing.T) {
		tab := MHTable(mhDests(1, 1, 1))
		assert.NotContains(t, tab, -1)
		c := counts(tab, 3)
		for _, n := range c {
			assert.InDelta(t, 4093.0/3, n, 1, "round robin over free entries: %v", c)
		}
	})
	t.Run("weights as turns per round", func(t *testing.T) {
		c := counts(MHTable(mhDests(3, 1)), 2)
		assert.InDelta(t, 4093*3/4, c[0], 3, "%v", c)
		// Weights divided by their gcd: 300:100 is 3:1.
		assert.Equal(t, c, counts(MHTable(mhDests(300, 100)), 2))
	})
	t.Run("large weights shifted to 6 bits", func(t *testing.T) {
		// 1000/1 needs 10 bits: shifted by 4, 62 turns to 0 -> 1.
		c := counts(MHTable(mhDests(1000, 1)), 2)
		assert.InDelta(t, 4093*62/63, c[0], 3, "%v", c)
	})
	t.Run("no weight: an empty table", func(t *testing.T) {
		tab := MHTable(mhDests(0, 0))
		assert.Equal(t, []int{-1}, uniq(tab))
		assert.Equal(t, -1, MHPick(tab, mhDests(0, 0), 1, 0, true))
	})
	t.Run("a quiesced dest keeps its entries (last_weight)", func(t *testing.T) {
		ds := mhDests(1, 1, 1)
		before := MHTable(ds)
		ds[1].LastWeight, ds[1].Weight = 1, 0
		assert.Equal(t, before, MHTable(ds))
	})
	t.Run("a dest added with weight 0 takes none", func(t *testing.T) {
		ds := mhDests(1, 0, 1)
		assert.Zero(t, counts(MHTable(ds), 3)[1])
	})
}

func uniq(s []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Maglev's promise, which mh is for: removing one of N dests moves about
// 1/N of the clients, and only the removed dest's clients move far.
func TestMHDisruption(t *testing.T) {
	const n = 10
	ds := mhDests(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	before := MHTable(ds)
	after := MHTable(append(append([]Dest{}, ds[:4]...), ds[5:]...))
	rng := rand.New(rand.NewPCG(3, 4))
	moved, movedOthers := 0, 0
	const clients = 20000
	for range clients {
		fold := rng.Uint32()
		a := MHPick(before, ds, fold, 0, false)
		b := MHPick(after, ds, fold, 0, false)
		if b >= 4 {
			b++ // index in the list without dest 4
		}
		if a != b {
			moved++
			if a != 4 {
				movedOthers++
			}
		}
	}
	share := float64(moved) / clients
	t.Logf("removing 1 of %d dests moved %.1f%% of clients (bound 1/N = %.1f%%); %.2f%% of the others", n, 100*share, 100.0/n, 100*float64(movedOthers)/clients)
	assert.InDelta(t, 1.0/n, share, 0.03)
	assert.Less(t, float64(movedOthers)/clients, 0.03, "Maglev moves few of the clients of dests that stay")

	// Adding an eleventh: about 1/(N+1) move, nearly all to it.
	more := append([]Dest{{Weight: 1, Addr: netip.MustParseAddr("10.0.1.1"), Port: 80}}, ds...) // IPVS adds at the head
	grown := MHTable(more)
	moved, movedElsewhere := 0, 0
	for range clients {
		fold := rng.Uint32()
		a := MHPick(before, ds, fold, 0, false) + 1 // its index in the grown list
		b := MHPick(grown, more, fold, 0, false)
		if a != b {
			moved++
			if b != 0 {
				movedElsewhere++
			}
		}
	}
	share = float64(moved) / clients
	t.Logf("adding an %dth dest moved %.1f%% of clients (bound 1/(N+1) = %.1f%%); %.2f%% to a dest other than the new one", n+1, 100*share, 100.0/(n+1), 100*float64(movedElsewhere)/clients)
	assert.InDelta(t, 1.0/(n+1), share, 0.03)
	assert.Less(t, float64(movedElsewhere)/clients, 0.03)
}

func TestMHPick(t *testing.T) {
	ds := mhDests(1, 1, 1, 1)
	tab := MHTable(ds)
	rng := rand.New(rand.NewPCG(5, 6))
	t.Run("the client's entry", func(t *testing.T) {
		for range 1000 {
			fold, port := rng.Uint32(), uint16(rng.Uint32())
			want := tab[MHHash(fold, port, MHKey1, 0)%uint32(MHTabSize)]
			require.Equal(t, want, MHPick(tab, ds, fold, port, false))
		}
	})
	t.Run("an unavailable dest: none, or with fallback another", func(t *testing.T) {
		q := append([]Dest{}, ds...)
		q[2].LastWeight, q[2].Weight = 1, 0 // quiesced: keeps its entries
		require.Equal(t, tab, MHTable(q))
		seen := 0
		for range 2000 {
			fold := rng.Uint32()
			first := tab[MHHash(fold, 0, MHKey1, 0)%uint32(MHTabSize)]
			if first != 2 {
				require.Equal(t, first, MHPick(tab, q, fold, 0, true), "fallback only when the first is unavailable")
				continue
			}
			seen++
			assert.Equal(t, -1, MHPick(tab, q, fold, 0, false))
			got := MHPick(tab, q, fold, 0, true)
			assert.NotEqual(t, 2, got)
			assert.GreaterOrEqual(t, got, 0)
		}
		assert.Greater(t, seen, 300)
	})
	t.Run("all unavailable: none, after the whole loop", func(t *testing.T) {
		q := append([]Dest{}, ds...)
		for i := range q {
			q[i].LastWeight, q[i].Weight = 1, 0
		}
		assert.Equal(t, -1, MHPick(tab, q, 12345, 0, true))
	})
}

// BenchmarkMHTable: what a real's change costs the control plane (mh
// rebuilds the whole table on every add, edit and removal).
func BenchmarkMHTable(b *testing.B) {
	for _, n := range []int{16, 256} {
		ws := make([]int32, n)
		for i := range ws {
			ws[i] = int32(1 + i%5)
		}
		ds := mhDests(ws...)
		for i := range ds {
			ds[i].Addr = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		}
		b.Run(fmt.Sprintf("reals-%d", n), func(b *testing.B) {
			for range b.N {
				MHTable(ds)
			}
		})
	}
}
