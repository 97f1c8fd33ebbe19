package sched

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHash32(t *testing.T) {
	assert.Equal(t, uint32(248), Hash32(0xC0A8010A, 8))
	assert.Equal(t, uint32(0xF8F385C6), Hash32(0xC0A8010A, 32))
	assert.Equal(t, uint32(39), Hash32(0x0A000001, 8))
	assert.Equal(t, uint32(0), Hash32(0xC0A8010A, 0))
}

func TestAddrFold(t *testing.T) {
	tests := []struct {
		addr string
		want uint32
	}{
		{"192.168.1.10", 0xC0A8010A},
		{"10.0.0.1", 0x0A000001},
		{"2001:db8::1", 0x20010db8 ^ 0x00000001},
		{"2001:db8:1:2:3:4:5:6", 0x20010db8 ^ 0x00010002 ^ 0x00030004 ^ 0x00050006},
		// As an AF_INET6 service sees it: folded, not unmapped.
		{"::ffff:192.168.1.10", 0x0000ffff ^ 0xC0A8010A},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			assert.Equal(t, tt.want, AddrFold(netip.MustParseAddr(tt.addr)))
		})
	}
	assert.Equal(t, uint32(0), AddrFold(netip.Addr{}))
}

func TestSHKey(t *testing.T) {
	src := netip.MustParseAddr("192.168.1.10")
	assert.Equal(t, uint32(0xC0A8010A), SHKey(src, 0))
	assert.Equal(t, uint32(0xC0A8010A+40000), SHKey(src, 40000))
	assert.Equal(t, uint32(65535-1), SHKey(netip.MustParseAddr("255.255.255.255"), 65535), "wraps at 2^32")
}

func TestSHTable(t *testing.T) {
	tests := []struct {
		name    string
		ds      []Dest
		pattern string // repeats over the 256 buckets
	}{
		{"2,1,1", weights(2, 1, 1), "AABC"},
		{"weight 0 takes one bucket per round", weights(2, 0, 1), "AABC"},
		{"all weights 0", weights(0, 0), "AB"},
		{"equal weights", weights(3, 3), "AAABBB"},
		{"heavy dest", weights(1, 300), "A" + strings.Repeat("B", 255)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := SHTable(tt.ds)
			for i, d := range tab {
				require.Equal(t, int(tt.pattern[i%len(tt.pattern)]-'A'), d, "bucket %d", i)
			}
		})
	}
	t.Run("empty list", func(t *testing.T) {
		tab := SHTable(nil)
		for _, d := range tab {
			require.Equal(t, -1, d)
		}
	})
}

func TestSHPick(t *testing.T) {
	src := netip.MustParseAddr("192.168.1.10")
	ds := weights(2, 1, 1)
	tab := SHTable(ds)
	key := SHKey(src, 0)
	require.Equal(t, 248, SHBucket(key))

	assert.Equal(t, 0, SHPick(&tab, ds, key, false), "bucket 248 is A")
	assert.Equal(t, 0, SHPick(&tab, ds, key, true))

	t.Run("sh-port", func(t *testing.T) {
		k := SHKey(src, 40000)
		assert.Equal(t, 156, SHBucket(k))
		assert.Equal(t, 0, SHPick(&tab, ds, k, false))
	})
	t.Run("10.0.0.1", func(t *testing.T) {
		assert.Equal(t, 39, SHBucket(SHKey(netip.MustParseAddr("10.0.0.1"), 0)))
	})

	for name, unavailable := range map[string]Dest{"A weight 0": {Weight: 0}, "A overloaded": {Weight: 2, Overloaded: true}} {
		down := append([]Dest(nil), ds...)
		down[0] = unavailable
		t.Run(name, func(t *testing.T) {
			// The table is the one built with A at weight 2; a rebuilt one
			// would give a weight-0 A fewer buckets, but 248 stays A's.
			assert.Equal(t, -1, SHPick(&tab, down, key, false), "no rehash without sh-fallback")
			// Probes 240 (A), 241 (A), 242 (B).
			assert.Equal(t, 1, SHPick(&tab, down, key, true))
		})
	}

	t.Run("fallback probe order", func(t *testing.T) {
		// Mark buckets by hand: only bucket 243 holds an available dest.
		var tab [TabSize]int
		ds := []Dest{{Weight: 1, Overloaded: true}, {Weight: 1}}
		for i := range tab {
			tab[i] = 0
		}
		tab[243] = 1
		assert.Equal(t, 1, SHPick(&tab, ds, key, true))
		tab[242] = -1 // an empty bucket ends the probing before 243
		assert.Equal(t, -1, SHPick(&tab, ds, key, true))
	})
	t.Run("fallback wraps round the table", func(t *testing.T) {
		var tab [TabSize]int
		ds := []Dest{{Weight: 1, Overloaded: true}, {Weight: 1}}
		tab[239] = 1 // the last bucket probed from 240
		assert.Equal(t, 1, SHPick(&tab, ds, key, true))
		tab[239] = 0
		assert.Equal(t, -1, SHPick(&tab, ds, key, true), "all 256 probes fail")
	})
	t.Run("empty table", func(t *testing.T) {
		tab := SHTable(nil)
		assert.Equal(t, -1, SHPick(&tab, nil, key, true))
		assert.Equal(t, -1, SHPick(&tab, nil, key, false))
	})
}

func TestDHTable(t *testing.T) {
	ds := weights(5, 0, 1)
	tab := DHTable(ds)
	for i, d := range tab {
		require.Equal(t, i%3, d, "bucket %d", i)
	}
	assert.Equal(t, DHTable(weights(1, 1, 1)), tab, "weights ignored")
	empty := DHTable(nil)
	assert.Equal(t, -1, empty[0])
}

func TestDHPick(t *testing.T) {
	ds := weights(1, 1, 1)
	tab := DHTable(ds)
	dst := netip.MustParseAddr("192.168.1.10") // bucket 248 -> 248 mod 3 = 2
	assert.Equal(t, 2, DHPick(&tab, ds, dst))
	ds[2].Overloaded = true
	assert.Equal(t, -1, DHPick(&tab, ds, dst), "dh has no fallback")
	ds[2] = Dest{Weight: 0}
	assert.Equal(t, -1, DHPick(&tab, ds, dst))
	assert.Equal(t, 39%3, DHPick(&tab, ds, netip.MustParseAddr("10.0.0.1")))
	empty := DHTable(nil)
	assert.Equal(t, -1, DHPick(&empty, nil, dst))
}
