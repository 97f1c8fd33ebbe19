package sched

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOverhead(t *testing.T) {
	assert.Equal(t, int32(3*256+7), Dest{Active: 3, Inactive: 7}.Overhead())
	assert.Equal(t, int32(-1<<31), Dest{Active: 1 << 23}.Overhead(), "32-bit int, as the kernel")
	assert.Equal(t, int32(4), Dest{Active: 3, Inactive: 100}.SEDOverhead())
}

func TestLeastConnection(t *testing.T) {
	type pickers struct{ lc, wlc, sed, nq int }
	tests := []struct {
		name string
		ds   []Dest
		want pickers
	}{
		{
			name: "empty",
			want: pickers{-1, -1, -1, -1},
		},
		{
			name: "nothing available",
			ds:   []Dest{{Weight: 0}, {Weight: 5, Overloaded: true}},
			want: pickers{-1, -1, -1, -1},
		},
		{
			name: "ties go to the earliest",
			ds:   []Dest{{Weight: 1, Active: 2}, {Weight: 1, Active: 2}},
			want: pickers{0, 0, 0, 0},
		},
		{
			name: "active counts 256 inactive",
			ds:   []Dest{{Weight: 1, Active: 1}, {Weight: 1, Inactive: 255}, {Weight: 1, Inactive: 256}},
			// lc/wlc: 256, 255, 256 -> B. sed: 2, 1, 1 -> B. nq: B idle.
			want: pickers{1, 1, 1, 1},
		},
		{
			name: "weight 0 and overloaded skipped even when least loaded",
			ds:   []Dest{{Weight: 0}, {Weight: 3, Overloaded: true}, {Weight: 1, Active: 9}, {Weight: 1, Active: 10}},
			want: pickers{2, 2, 2, 2},
		},
		{
			name: "weights scale the load",
			// loads/weight: A 10/1, B 15/2 -> B for wlc and sed; lc ignores weight.
			ds:   []Dest{{Weight: 1, Active: 10}, {Weight: 2, Active: 15}},
			want: pickers{0, 1, 1, 1},
		},
		{
			name: "sed ignores inactive, wlc does not",
			ds:   []Dest{{Weight: 1, Active: 1, Inactive: 300}, {Weight: 1, Active: 2}},
			// lc/wlc: 556 vs 512 -> B. sed/nq: 2 vs 3 -> A.
			want: pickers{1, 1, 0, 0},
		},
		{
			name: "nq takes the first idle dest whatever its weight",
			ds:   []Dest{{Weight: 100, Active: 1}, {Weight: 1, Inactive: 50}, {Weight: 100}},
			// lc: 256, 50, 0 -> C. sed: 2/100, 1/1, 1/100 -> C. nq: B is idle and first.
			want: pickers{2, 2, 2, 1},
		},
		{
			name: "64-bit cross multiplication for wlc",
			// Overheads 256e6 both; 256e6*101 overflows 32 bits, where it
			// would make A look lighter.
			ds:   []Dest{{Weight: 100, Active: 1000000}, {Weight: 101, Active: 1000000}},
			want: pickers{0, 1, 1, 1},
		},
		{
			name: "64-bit cross multiplication for sed",
			// 65537*65536 overflows 32 bits.
			ds:   []Dest{{Weight: 65535, Active: 65536}, {Weight: 65536, Active: 65536}},
			want: pickers{0, 1, 1, 1},
		},
		{
			name: "64-bit, earlier wins a true tie",
			// wlc: 512e6*1e5 == 256e6*2e5. sed: (2e6+1)*1e5 < (1e6+1)*2e5.
			ds:   []Dest{{Weight: 200000, Active: 2000000}, {Weight: 100000, Active: 1000000}},
			want: pickers{1, 0, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pickers{LC(tt.ds), WLC(tt.ds), SED(tt.ds), NQ(tt.ds)}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCrossMultiplicationOverflows32Bits(t *testing.T) {
	// The 64-bit cases above must really overflow 32 bits: with uint32
	// products the comparison flips.
	tests := []struct {
		name     string
		ds       []Dest
		overhead func(Dest) int32
	}{
		{"wlc", []Dest{{Weight: 100, Active: 1000000}, {Weight: 101, Active: 1000000}}, Dest.Overhead},
		{"sed", []Dest{{Weight: 65535, Active: 65536}, {Weight: 65536, Active: 65536}}, Dest.SEDOverhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.ds[0], tt.ds[1]
			loh, doh := tt.overhead(a), tt.overhead(b)
			wrapped := uint32(loh)*uint32(b.Weight) > uint32(doh)*uint32(a.Weight)
			exact := int64(loh)*int64(b.Weight) > int64(doh)*int64(a.Weight)
			require.True(t, exact)
			assert.False(t, wrapped)
		})
	}
}

// fo and ovf as ip_vs_fo.c and ip_vs_ovf.c choose: the heaviest available
// dest, the first of equal weights; ovf passes over a dest holding more
// active connections than its weight.
func TestFailoverAndOverflow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ds      []Dest
		fo, ovf int
	}{
		{"empty", nil, -1, -1},
		{"nothing available", []Dest{{Weight: 0}, {Weight: 5, Overloaded: true}}, -1, -1},
		{"heaviest", []Dest{{Weight: 1}, {Weight: 3}, {Weight: 2}}, 1, 1},
		{"first of equal weights", []Dest{{Weight: 2}, {Weight: 3}, {Weight: 3}}, 1, 1},
		{"overloaded skipped", []Dest{{Weight: 1}, {Weight: 3, Overloaded: true}, {Weight: 2}}, 2, 2},
		// ovf: active 3 is not more than weight 3; 4 is.
		{"ovf at its weight", []Dest{{Weight: 1}, {Weight: 3, Active: 3}}, 1, 1},
		{"ovf past its weight", []Dest{{Weight: 1}, {Weight: 3, Active: 4}, {Weight: 2, Active: 2}}, 1, 2},
		{"ovf everyone past", []Dest{{Weight: 1, Active: 2}, {Weight: 2, Active: 3}}, 1, -1},
		{"inactive connections do not count", []Dest{{Weight: 2, Inactive: 100}, {Weight: 1}}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FO(tc.ds); got != tc.fo {
				t.Errorf("FO = %d, want %d", got, tc.fo)
			}
			if got := OVF(tc.ds); got != tc.ovf {
				t.Errorf("OVF = %d, want %d", got, tc.ovf)
			}
		})
	}
}

// twos as ip_vs_twos.c (6.2+) chooses for given draws.
func TestTwos(t *testing.T) {
	ds := []Dest{{Weight: 3, Active: 1}, {Weight: 0}, {Weight: 1}, {Weight: 2, Overloaded: true}}
	if got := TwosTotal(ds); got != 5 {
		t.Fatalf("TwosTotal = %d, want 3+1+1", got)
	}
	for _, tc := range []struct {
		r1, r2 int64
		want   int
	}{
		{0, 0, 0}, // both draws land on the first dest
		{3, 3, 0},
		{4, 4, 2}, // past the first's 3: the third (the second has weight 0)
		// A: 256/3 per weight, C: 0/1: C is less loaded and replaces A.
		{0, 4, 2},
		// The first choice stays when the second is not less loaded.
		{4, 0, 2},
	} {
		if got := Twos(ds, tc.r1, tc.r2); got != tc.want {
			t.Errorf("Twos(%d, %d) = %d, want %d", tc.r1, tc.r2, got, tc.want)
		}
	}
	if got := Twos([]Dest{{Weight: 0}}, 0, 0); got != -1 {
		t.Errorf("nothing available: %d", got)
	}
}
