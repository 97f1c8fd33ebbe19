package sched

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWRRWorkedExamples(t *testing.T) {
	tests := []struct {
		name    string
		weights []int32
		di, mw  int32
		picks   string // two rounds
	}{
		{"4,3,2", []int32{4, 3, 2}, 1, 4, "AABABCABC" + "AABABCABC"},
		{"4,2,2", []int32{4, 2, 2}, 2, 3, "AABC" + "AABC"},
		{"6,4,2", []int32{6, 4, 2}, 2, 5, "AABABC" + "AABABC"},
		{"1,1,1", []int32{1, 1, 1}, 1, 1, "ABC" + "ABC"},
		{"zero weight never picked", []int32{0, 2, 0, 1}, 1, 2, "BBD" + "BBD"},
		{"single", []int32{5}, 5, 1, "A" + "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := weights(tt.weights...)
			w := NewWRR(ds)
			assert.Equal(t, WRR{Cursor: -1, CW: tt.mw, MW: tt.mw, DI: tt.di}, w)
			got := picksOf(len(tt.picks), func() int { return w.Pick(ds) })
			assert.Equal(t, tt.picks, letters(got))
		})
	}
}

func TestWRRCwDuringPicks(t *testing.T) {
	// The reference's table for 4,3,2: the level each pick is made at.
	ds := weights(4, 3, 2)
	w := NewWRR(ds)
	var cws []int32
	for range 10 {
		w.Pick(ds)
		cws = append(cws, w.CW)
	}
	assert.Equal(t, []int32{4, 3, 3, 2, 2, 2, 1, 1, 1, 4}, cws)
}

func TestWRRMidCycleChange(t *testing.T) {
	ds := weights(4, 3, 2)
	w := NewWRR(ds)
	require.Equal(t, "AABA", letters(picksOf(4, func() int { return w.Pick(ds) })))
	require.Equal(t, WRR{Cursor: 0, CW: 2, MW: 4, DI: 1}, w)

	ds[2].Weight = 0
	w.Changed(ds)
	assert.Equal(t, WRR{Cursor: -1, CW: 2, MW: 4, DI: 1}, w, "cw stays 2, cursor back at the head")
	assert.Equal(t, "ABABAABAB", letters(picksOf(9, func() int { return w.Pick(ds) })))
}

func TestWRRChanged(t *testing.T) {
	tests := []struct {
		name   string
		before WRR
		ds     []Dest
		want   WRR
	}{
		{"cw above new mw drops to mw", WRR{Cursor: 1, CW: 4, MW: 4, DI: 1}, weights(2, 3), WRR{Cursor: -1, CW: 3, MW: 3, DI: 1}},
		{"cw 0 goes to mw", WRR{Cursor: -1, CW: 0, MW: 0, DI: 1}, weights(4), WRR{Cursor: -1, CW: 1, MW: 1, DI: 4}},
		{"di 1 keeps cw", WRR{Cursor: 2, CW: 2, MW: 4, DI: 1}, weights(4, 3, 1), WRR{Cursor: -1, CW: 2, MW: 4, DI: 1}},
		{"di > 1 rounds cw", WRR{Cursor: 0, CW: 4, MW: 6, DI: 1}, weights(6, 4, 2), WRR{Cursor: -1, CW: 5, MW: 5, DI: 2}},
		{"di > 1 rounds low cw up to 1", WRR{Cursor: 0, CW: 1, MW: 6, DI: 1}, weights(6, 4, 2), WRR{Cursor: -1, CW: 1, MW: 5, DI: 2}},
		{"di > 1 rounds mid cw", WRR{Cursor: 0, CW: 3, MW: 6, DI: 1}, weights(6, 4, 2), WRR{Cursor: -1, CW: 3, MW: 5, DI: 2}},
		{"all weights 0", WRR{Cursor: 1, CW: 2, MW: 4, DI: 1}, weights(0, 0), WRR{Cursor: -1, CW: 0, MW: 0, DI: 1}},
		{"empty list", WRR{Cursor: 0, CW: 1, MW: 1, DI: 1}, nil, WRR{Cursor: -1, CW: 0, MW: 0, DI: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.before
			w.Changed(tt.ds)
			assert.Equal(t, tt.want, w)
		})
	}
}

func TestWRRBuiltOneDestAtATime(t *testing.T) {
	// keepalived creates the service empty, then adds dests: each add is a
	// dest_changed, which can leave cw below mw.
	w := NewWRR(nil)
	require.Equal(t, WRR{Cursor: -1, CW: 0, MW: 0, DI: 1}, w)
	ds := weights(2)
	w.Changed(ds)
	ds = weights(2, 3)
	w.Changed(ds)
	assert.Equal(t, WRR{Cursor: -1, CW: 1, MW: 3, DI: 1}, w, "weight 2 alone has di 2, mw 1; adding 3 keeps cw 1")
	assert.NotEqual(t, NewWRR(ds), w)
	assert.Equal(t, "AB"+"BABAB"+"BABAB", letters(picksOf(12, func() int { return w.Pick(ds) })))
}

func TestWRROverloadAndGuard(t *testing.T) {
	t.Run("overloaded dest skipped at every level", func(t *testing.T) {
		ds := weights(4, 3, 2)
		ds[0].Overloaded = true
		w := NewWRR(ds)
		assert.Equal(t, "BBCBC"+"BBCBC", letters(picksOf(10, func() int { return w.Pick(ds) })))
	})
	t.Run("all overloaded from head", func(t *testing.T) {
		ds := weights(4, 3, 2)
		for i := range ds {
			ds[i].Overloaded = true
		}
		w := NewWRR(ds)
		assert.Equal(t, -1, w.Pick(ds))
		assert.Equal(t, WRR{Cursor: -1, CW: 4, MW: 4, DI: 1}, w)
	})
	t.Run("all overloaded mid round", func(t *testing.T) {
		// From (A, cw 2) the walk tries B, C at 2, everything at 1, then
		// wraps in its last pass: cursor to the head, cw to mw.
		ds := weights(4, 3, 2)
		w := NewWRR(ds)
		picksOf(4, func() int { return w.Pick(ds) })
		require.Equal(t, WRR{Cursor: 0, CW: 2, MW: 4, DI: 1}, w)
		setOverloaded(ds, true)
		assert.Equal(t, -1, w.Pick(ds))
		assert.Equal(t, WRR{Cursor: -1, CW: 4, MW: 4, DI: 1}, w)
	})
	t.Run("all overloaded in the last pass stops at last", func(t *testing.T) {
		// From (A, cw 1) the first pass (B, C) was already at level 1; after
		// the wrap the guard stops at A itself, leaving cursor and cw there.
		ds := weights(4, 3, 2)
		w := NewWRR(ds)
		picksOf(7, func() int { return w.Pick(ds) })
		require.Equal(t, WRR{Cursor: 0, CW: 1, MW: 4, DI: 1}, w)
		setOverloaded(ds, true)
		assert.Equal(t, -1, w.Pick(ds))
		assert.Equal(t, WRR{Cursor: 0, CW: 1, MW: 4, DI: 1}, w)
		ds[1].Overloaded = false
		assert.Equal(t, 1, w.Pick(ds), "B at cw 1, the level the guard left")
	})
	t.Run("mw 0 leaves state", func(t *testing.T) {
		ds := weights(0, 0)
		w := NewWRR(ds)
		before := w
		assert.Equal(t, -1, w.Pick(ds))
		assert.Equal(t, before, w)
	})
	t.Run("weight-0 dests only, one available", func(t *testing.T) {
		ds := weights(0, 3, 0)
		w := NewWRR(ds)
		assert.Equal(t, "BBBB", letters(picksOf(4, func() int { return w.Pick(ds) })))
	})
}

func TestWRRFailureSettles(t *testing.T) {
	// WRRStateAt relies on a failed pick reaching a fixed point after at
	// most two attempts, from any state IPVS can hold.
	for _, ws := range [][]int32{{4, 3, 2}, {6, 4, 2}, {1}, {5, 0, 5}, {2, 3}, {9, 6, 3, 3}} {
		ds := weights(ws...)
		di, mw := wrrLevels(ds)
		for cur := -1; cur < len(ds); cur++ {
			for cw := mw; cw >= 1; cw -= di {
				over := append([]Dest(nil), ds...)
				setOverloaded(over, true)
				w := WRR{Cursor: cur, CW: cw, MW: mw, DI: di}
				require.Equal(t, -1, w.Pick(over))
				once := w
				require.Equal(t, -1, w.Pick(over))
				require.Equal(t, once, w, "weights %v from cursor %d cw %d", ws, cur, cw)
			}
		}
	}
}

func TestWRRPickMatchesKernelLoop(t *testing.T) {
	// Big weights with the heavy dest overloaded make the kernel walk many
	// empty passes; Pick skips them in bulk and must land on the same state.
	tests := []struct {
		name string
		ds   []Dest
	}{
		{"heavy overloaded", []Dest{{Weight: 100000, Overloaded: true}, {Weight: 3}, {Weight: 1}}},
		{"heavy overloaded di 7", []Dest{{Weight: 7 * 3001, Overloaded: true}, {Weight: 14}, {Weight: 7}}},
		{"all overloaded", []Dest{{Weight: 5000, Overloaded: true}, {Weight: 3, Overloaded: true}}},
		{"middle overloaded", []Dest{{Weight: 2}, {Weight: 900, Overloaded: true}, {Weight: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean := make([]Dest, len(tt.ds))
			for i, d := range tt.ds {
				clean[i] = Dest{Weight: d.Weight}
			}
			// Start from every state reached without overloads.
			w := NewWRR(clean)
			for range 50 {
				a, b := w, w
				for range 20 {
					pa, pb := a.Pick(tt.ds), kernelWRRPick(&b, tt.ds)
					require.Equal(t, pb, pa)
					require.Equal(t, b, a)
				}
				w.Pick(clean)
			}
		})
	}
}

func TestWRRHugeWeightIsFast(t *testing.T) {
	// The kernel would walk ~2^31 empty passes here.
	ds := []Dest{{Weight: math.MaxInt32, Overloaded: true}, {Weight: 1}}
	w := NewWRR(ds)
	assert.Equal(t, "BBB", letters(picksOf(3, func() int { return w.Pick(ds) })))
	assert.Equal(t, WRR{Cursor: 1, CW: 1, MW: math.MaxInt32, DI: 1}, w)
}

func TestWRRInvalidStateDoesNotHang(t *testing.T) {
	ds := weights(3, 2)
	for _, w := range []WRR{
		{},
		{Cursor: -1, CW: 3, MW: 3, DI: 0},
		{Cursor: -1, CW: 3, MW: -3, DI: 1},
		{Cursor: 7, CW: 3, MW: 3, DI: 1},
		{Cursor: -9, CW: 3, MW: 3, DI: 1},
		{Cursor: -1, CW: -5, MW: 3, DI: 1},
	} {
		assert.NotPanics(t, func() { w.Pick(ds); w.Pick(nil) })
	}
}

func setOverloaded(ds []Dest, on bool) {
	for i := range ds {
		ds[i].Overloaded = on
	}
}

// A service filled one dest at a time, as IPVS in a 6.1 VM showed for
// weights 3,2,1 added in that order (list C B A): C B A A B A, repeating.
func TestWRRFilled(t *testing.T) {
	ds := []Dest{{Weight: 1}, {Weight: 2}, {Weight: 3}} // list order: C(1) B(2) A(3)
	w := WRRFilled(ds)
	var got []int
	for range 12 {
		got = append(got, w.Pick(ds))
	}
	if want := []int{0, 1, 2, 2, 1, 2, 0, 1, 2, 2, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("picks %v, want %v", got, want)
	}
}
