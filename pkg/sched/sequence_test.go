package sched

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWRRSequenceFresh(t *testing.T) {
	ds := weights(4, 3, 2)
	start := NewWRR(ds)
	picks, states, loop, err := WRRSequence(start, ds, 100)
	require.NoError(t, err)
	assert.Equal(t, "AABABCABC", letters(picks))
	assert.Equal(t, 0, loop)
	require.Len(t, states, 9)
	assert.Equal(t, start, states[0])
	assert.Equal(t, WRR{Cursor: 1, CW: 1, MW: 4, DI: 1}, states[8], "before the last C")

	// After a full round IPVS's state is (C, cw 1), not states[0] (head,
	// cw 4): the two pick alike but Changed treats them differently.
	at9 := WRRStateAt(picks, states, loop, 9, ds)
	assert.Equal(t, WRR{Cursor: 2, CW: 1, MW: 4, DI: 1}, at9)
	assert.Equal(t, states[1], WRRStateAt(picks, states, loop, 10, ds))

	want := expand(picks, loop, 100)
	for n := range want {
		s := WRRStateAt(picks, states, loop, uint64(n), ds)
		require.Equal(t, want[n], s.Pick(ds), "pick after StateAt(%d)", n)
	}
}

func TestWRRSequenceAfterMidCycleChange(t *testing.T) {
	ds := weights(4, 3, 2)
	picks, states, loop, err := WRRSequence(NewWRR(ds), ds, 100)
	require.NoError(t, err)
	w := WRRStateAt(picks, states, loop, 4, ds) // after A A B A
	require.Equal(t, WRR{Cursor: 0, CW: 2, MW: 4, DI: 1}, w)

	ds[2].Weight = 0
	w.Changed(ds)
	picks, states, loop, err = WRRSequence(w, ds, 100)
	require.NoError(t, err)
	// The picks from (head, cw 2) are periodic from the first one, A B A B
	// A A B, so the shortest description has no prefix; but the state
	// after one round, (B, cw 3), is not the starting (head, cw 2).
	assert.Equal(t, "ABABAAB", letters(picks))
	assert.Equal(t, 0, loop)
	assert.Equal(t, WRR{Cursor: -1, CW: 2, MW: 4, DI: 1}, states[0])
	assert.Equal(t, WRR{Cursor: 1, CW: 3, MW: 4, DI: 1}, WRRStateAt(picks, states, loop, 7, ds))
	assert.Equal(t, "ABABAABAB", letters(expand(picks, loop, 9)))
}

func TestWRRStateAtThenChangedMatchesKernel(t *testing.T) {
	// The data plane's use: a weight change after n picks. Starting
	// Changed from WRRStateAt must give the kernel's next picks.
	base := weights(4, 3, 2)
	changed := weights(4, 3, 0)
	picks, states, loop, err := WRRSequence(NewWRR(base), base, 100)
	require.NoError(t, err)
	for n := range 40 {
		kernel := NewWRR(base)
		for range n {
			kernelWRRPick(&kernel, base)
		}
		kernel.Changed(changed)
		want := picksOf(20, func() int { return kernelWRRPick(&kernel, changed) })

		w := WRRStateAt(picks, states, loop, uint64(n), base)
		w.Changed(changed)
		got := picksOf(20, func() int { return w.Pick(changed) })
		require.Equal(t, letters(want), letters(got), "change after %d picks", n)
	}
}

func TestWRRSequenceEdges(t *testing.T) {
	t.Run("weight 0 never picked", func(t *testing.T) {
		ds := weights(0, 5, 0, 2, 0)
		picks, _, _, err := WRRSequence(NewWRR(ds), ds, 100)
		require.NoError(t, err)
		assert.Equal(t, "BBBBDBD", letters(picks))
	})
	t.Run("all weights 0", func(t *testing.T) {
		ds := weights(0, 0)
		start := NewWRR(ds)
		picks, states, loop, err := WRRSequence(start, ds, 100)
		require.NoError(t, err)
		assert.Empty(t, picks)
		assert.Equal(t, []WRR{start}, states)
		assert.Equal(t, 0, loop)
		assert.Equal(t, start, WRRStateAt(picks, states, loop, 5, ds))
	})
	t.Run("empty list", func(t *testing.T) {
		picks, _, _, err := WRRSequence(NewWRR(nil), nil, 100)
		require.NoError(t, err)
		assert.Empty(t, picks)
	})
	t.Run("all overloaded", func(t *testing.T) {
		ds := weights(4, 3, 2)
		w := NewWRR(ds)
		picksOf(4, func() int { return w.Pick(ds) })
		setOverloaded(ds, true)
		picks, states, loop, err := WRRSequence(w, ds, 100)
		require.NoError(t, err)
		assert.Empty(t, picks)
		assert.Equal(t, w, WRRStateAt(picks, states, loop, 0, ds))
		// A failed attempt moves IPVS's state; more attempts don't.
		failed := w
		failed.Pick(ds)
		assert.NotEqual(t, w, failed)
		assert.Equal(t, failed, WRRStateAt(picks, states, loop, 1, ds))
		assert.Equal(t, failed, WRRStateAt(picks, states, loop, 1000, ds))
	})
	t.Run("overloaded dests left out", func(t *testing.T) {
		ds := weights(4, 3, 2)
		ds[1].Overloaded = true
		picks, _, loop, err := WRRSequence(NewWRR(ds), ds, 100)
		require.NoError(t, err)
		assert.Equal(t, "AAACAC", letters(picks))
		assert.Equal(t, 0, loop)
	})
	t.Run("single dest", func(t *testing.T) {
		ds := weights(7)
		picks, states, loop, err := WRRSequence(NewWRR(ds), ds, 100)
		require.NoError(t, err)
		assert.Equal(t, "A", letters(picks))
		assert.Equal(t, WRR{Cursor: 0, CW: 1, MW: 1, DI: 7}, WRRStateAt(picks, states, loop, 3, ds))
	})
}

func TestSequenceLimit(t *testing.T) {
	ds := weights(1000, 1)
	_, _, _, err := WRRSequence(NewWRR(ds), ds, 1001)
	require.NoError(t, err)
	_, _, _, err = WRRSequence(NewWRR(ds), ds, 1000)
	require.ErrorIs(t, err, ErrSequenceTooLong)
	var tooLong *SequenceTooLongError
	require.ErrorAs(t, err, &tooLong)
	assert.Equal(t, uint64(1001), tooLong.Need)
	assert.Equal(t, "wrr sequence needs 1001 picks, limit is 1000", err.Error())

	// Known without running the picks.
	huge := weights(math.MaxInt32, math.MaxInt32-1, 3)
	_, _, _, err = WRRSequence(NewWRR(huge), huge, 4096)
	require.ErrorAs(t, err, &tooLong)
	assert.Equal(t, uint64(2*math.MaxInt32+2), tooLong.Need)

	_, _, _, err = RRSequence(RR{Cursor: -1}, weights(1, 1, 1), 2)
	require.ErrorAs(t, err, &tooLong)
	assert.Equal(t, uint64(3), tooLong.Need)
	_, _, _, err = RRSequence(RR{Cursor: -1}, weights(1, 1, 1), -1)
	require.ErrorIs(t, err, ErrSequenceTooLong)
}

func TestWRRSequenceInvalidState(t *testing.T) {
	ds := weights(4, 3, 2)
	for name, w := range map[string]WRR{
		"stale mw after weight change": {Cursor: -1, CW: 3, MW: 3, DI: 1},
		"stale di":                     {Cursor: -1, CW: 4, MW: 4, DI: 2},
		"cursor outside the list":      {Cursor: 3, CW: 4, MW: 4, DI: 1},
		"cw 0":                         {Cursor: -1, CW: 0, MW: 4, DI: 1},
		"cw above mw":                  {Cursor: -1, CW: 5, MW: 4, DI: 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := WRRSequence(w, ds, 100)
			assert.ErrorIs(t, err, ErrInvalidState)
		})
	}
	t.Run("cw off the levels", func(t *testing.T) {
		ds := weights(6, 4, 2) // levels 5, 3, 1
		_, _, _, err := WRRSequence(WRR{Cursor: -1, CW: 4, MW: 5, DI: 2}, ds, 100)
		assert.ErrorIs(t, err, ErrInvalidState)
	})
}

func TestRRSequence(t *testing.T) {
	tests := []struct {
		name   string
		ds     []Dest
		start  int
		picks  string
		states []RR
	}{
		{"three dests", weights(1, 1, 1), -1, "ABC", []RR{{-1}, {0}, {1}}},
		{"from a cursor", weights(1, 1, 1), 1, "CAB", []RR{{1}, {2}, {0}}},
		{"unavailable skipped", []Dest{{Weight: 1}, {Weight: 0}, {Weight: 1, Overloaded: true}, {Weight: 2}}, -1, "AD", []RR{{-1}, {0}}},
		{"cursor on an unavailable dest", weights(1, 0, 1), 1, "CA", []RR{{1}, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			picks, states, loop, err := RRSequence(RR{Cursor: tt.start}, tt.ds, 10)
			require.NoError(t, err)
			assert.Equal(t, tt.picks, letters(picks))
			assert.Equal(t, tt.states, states)
			assert.Equal(t, 0, loop)
		})
	}
	t.Run("none available", func(t *testing.T) {
		picks, states, loop, err := RRSequence(RR{Cursor: 1}, weights(0, 0), 10)
		require.NoError(t, err)
		assert.Empty(t, picks)
		assert.Equal(t, RR{Cursor: 1}, RRStateAt(picks, states, loop, 7, weights(0, 0)))
	})
	t.Run("state after a round is exact", func(t *testing.T) {
		// A, B(0), C from cursor B: after C A the cursor is on A, which
		// is not the starting B.
		ds := weights(1, 0, 1)
		picks, states, loop, err := RRSequence(RR{Cursor: 1}, ds, 10)
		require.NoError(t, err)
		assert.Equal(t, RR{Cursor: 0}, RRStateAt(picks, states, loop, 2, ds))
		assert.Equal(t, RR{Cursor: 2}, RRStateAt(picks, states, loop, 3, ds))
	})
}

// expand lists the first n picks a lasso describes.
func expand(picks []int, loop, n int) []int {
	out := make([]int, n)
	for i := range out {
		if i < len(picks) {
			out[i] = picks[i]
		} else {
			out[i] = picks[loop+(i-loop)%(len(picks)-loop)]
		}
	}
	return out
}

// checkWRRSequence checks WRRSequence from start against the kernel's loop
// run pick by pick for three rounds: same picks, and WRRStateAt equal to
// the kernel's state at every step.
func checkWRRSequence(t *testing.T, start WRR, ds []Dest) {
	t.Helper()
	checkWRRSequenceLimit(t, start, ds, 1<<16)
}

// checkWRRSequenceLimit is checkWRRSequence where a sequence longer than
// limit is only checked for its stated length.
func checkWRRSequenceLimit(t *testing.T, start WRR, ds []Dest, limit int) {
	t.Helper()
	picks, states, loop, err := WRRSequence(start, ds, limit)
	if tooLong := (*SequenceTooLongError)(nil); errors.As(err, &tooLong) {
		var need uint64
		for _, d := range ds {
			if d.Available() {
				need += uint64(d.Weight / start.DI)
			}
		}
		require.Equal(t, need, tooLong.Need)
		require.Greater(t, need, uint64(limit))
		return
	}
	require.NoError(t, err, "weights %v from %+v", ds, start)
	require.LessOrEqual(t, 0, loop)
	require.Len(t, states, max(len(picks), 1))
	n := 3 * len(picks)
	if n == 0 {
		n = 3
	}
	want, mine := start, start
	var got []int
	for i := range n {
		require.Equal(t, want, WRRStateAt(picks, states, loop, uint64(i), ds), "state before pick %d, weights %v from %+v", i, ds, start)
		p := kernelWRRPick(&want, ds)
		require.Equal(t, p, mine.Pick(ds))
		require.Equal(t, want, mine)
		got = append(got, p)
		if p >= 0 {
			require.True(t, ds[p].Available(), "picked unavailable dest %d", p)
		}
	}
	if len(picks) == 0 {
		assert.Equal(t, "---", letters(got))
		return
	}
	require.Equal(t, letters(got), letters(expand(picks, loop, n)), "weights %v from %+v", ds, start)
}

func checkRRSequence(t *testing.T, start RR, ds []Dest) {
	t.Helper()
	picks, states, loop, err := RRSequence(start, ds, 1<<16)
	require.NoError(t, err)
	n := max(3*len(picks), 3)
	want := start
	var got []int
	for i := range n {
		require.Equal(t, want, RRStateAt(picks, states, loop, uint64(i), ds), "state before pick %d", i)
		got = append(got, want.Pick(ds))
	}
	if len(picks) == 0 {
		assert.Equal(t, "---", letters(got))
		return
	}
	require.Equal(t, letters(got), letters(expand(picks, loop, n)))
}

// randomDests draws 1..8 dests with weights 0..20, a few overloaded.
func randomDests(r *rand.Rand) []Dest {
	ds := make([]Dest, 1+r.IntN(8))
	for i := range ds {
		ds[i].Weight = int32(r.IntN(21))
		ds[i].Overloaded = r.IntN(6) == 0
	}
	return ds
}

func TestWRRSequenceMatchesPicks(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 400 {
		ds := randomDests(r)
		// A state IPVS can reach: picks, with overloads coming and going,
		// then a weight change and more picks.
		w := NewWRR(ds)
		for range r.IntN(30) {
			ds[r.IntN(len(ds))].Overloaded = r.IntN(4) == 0
			w.Pick(ds)
		}
		checkWRRSequence(t, w, ds)

		ds[r.IntN(len(ds))].Weight = int32(r.IntN(21))
		w.Changed(ds)
		checkWRRSequence(t, w, ds)
		for range r.IntN(30) {
			w.Pick(ds)
		}
		checkWRRSequence(t, w, ds)
	}
}

func TestRRSequenceMatchesPicks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 400 {
		ds := randomDests(r)
		checkRRSequence(t, RR{Cursor: r.IntN(len(ds)+1) - 1}, ds)
	}
}

func TestSequenceErrorsWrap(t *testing.T) {
	_, _, _, err := WRRSequence(WRR{Cursor: -1, CW: 3, MW: 3, DI: 1}, weights(4), 10)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInvalidState))
	assert.Contains(t, err.Error(), "call Changed")
}
