package sched

import (
	"errors"
	"fmt"
)

// ErrSequenceTooLong is matched (errors.Is) by a *SequenceTooLongError.
var ErrSequenceTooLong = errors.New("pick sequence longer than the limit")

// ErrInvalidState means a scheduler state does not belong to the dest list
// it was used with, e.g. a WRR whose MW and DI were computed for other
// weights (Changed was not called after a weight change).
var ErrInvalidState = errors.New("scheduler state does not match the dest list")

// SequenceTooLongError says how many picks a sequence needs, when that is
// more than the caller's limit.
type SequenceTooLongError struct {
	Scheduler string // "rr" or "wrr"
	Need      uint64 // len(picks) the sequence needs
	Limit     int
}

func (e *SequenceTooLongError) Error() string {
	return fmt.Sprintf("%s sequence needs %d picks, limit is %d", e.Scheduler, e.Need, e.Limit)
}

// Is makes errors.Is(err, ErrSequenceTooLong) true.
func (e *SequenceTooLongError) Is(target error) bool { return target == ErrSequenceTooLong }

// Stepper is a stateful picker, *RR or *WRR. The states themselves are
// plain values: a copy picks on independently of the original, which is what
// lets a sequence be run ahead from a state and a state be handed back for
// any point in it.
type Stepper interface {
	Pick(ds []Dest) int
}

var (
	_ Stepper = (*RR)(nil)
	_ Stepper = (*WRR)(nil)
)

// RRSequence runs rr picks on ds from start until they repeat. The result is
// the picks to expect from start for ever: picks[0:loop] once, then
// picks[loop:] over and over. It is the shortest such description; for rr
// the loop is always 0, and len(picks) is the number of available dests.
//
// states[i] is the exact state before pick i. The state after n picks is
// RRStateAt's to give: past the first round it is not always a states entry.
//
// If no dest is available, picks is empty, states holds only start, and err
// is nil: every packet finds no destination. If the sequence needs more
// than limit picks, err is a *SequenceTooLongError.
func RRSequence(start RR, ds []Dest, limit int) (picks []int, states []RR, loop int, err error) {
	var need uint64
	for _, d := range ds {
		if d.Available() {
			need++
		}
	}
	if need == 0 {
		return nil, []RR{start}, 0, nil
	}
	if need > uint64(max(limit, 0)) {
		return nil, nil, 0, &SequenceTooLongError{Scheduler: "rr", Need: need, Limit: limit}
	}
	picks, states, loop = lasso(start, func(s *RR) int { return s.Pick(ds) })
	if uint64(len(picks)) != need {
		return nil, nil, 0, fmt.Errorf("rr sequence from cursor %d: %d picks where %d were due: %w", start.Cursor, len(picks), need, errInternal)
	}
	return picks, states, loop, nil
}

// WRRSequence runs wrr picks on ds from start until they repeat; the result
// reads as RRSequence's does. start must be a state IPVS could hold for ds
// (from NewWRR or Changed on ds, then any picks, with any overload flags
// changed since); otherwise err wraps ErrInvalidState. From such a state the
// sequence has no prefix (loop is 0) and its length is the sum of
// Weight/DI over the available dests.
func WRRSequence(start WRR, ds []Dest, limit int) (picks []int, states []WRR, loop int, err error) {
	if err := start.validFor(ds); err != nil {
		return nil, nil, 0, fmt.Errorf("wrr sequence from cursor %d cw %d mw %d di %d: %w", start.Cursor, start.CW, start.MW, start.DI, err)
	}
	var need uint64
	for _, d := range ds {
		if d.Available() {
			need += uint64(d.Weight / start.DI)
		}
	}
	if need == 0 {
		return nil, []WRR{start}, 0, nil
	}
	if need > uint64(max(limit, 0)) {
		return nil, nil, 0, &SequenceTooLongError{Scheduler: "wrr", Need: need, Limit: limit}
	}
	picks, states, loop = lasso(start, func(s *WRR) int { return s.Pick(ds) })
	if uint64(len(picks)) != need || loop != 0 {
		return nil, nil, 0, fmt.Errorf("wrr sequence from cursor %d cw %d: %d picks looping at %d where %d were due: %w", start.Cursor, start.CW, len(picks), loop, need, errInternal)
	}
	return picks, states, loop, nil
}

var errInternal = errors.New("internal error in package sched")

// validFor checks that w is a state ip_vs_wrr could hold for ds: MW and DI
// as Changed computes them, the cursor on a dest or the head, and CW one of
// the levels MW, MW-DI, ... >= 1.
func (w WRR) validFor(ds []Dest) error {
	di, mw := wrrLevels(ds)
	switch {
	case w.DI != di || w.MW != mw:
		return fmt.Errorf("the weights give mw %d di %d (call Changed after a weight change): %w", mw, di, ErrInvalidState)
	case w.Cursor < -1 || w.Cursor >= len(ds):
		return fmt.Errorf("cursor outside the %d dests: %w", len(ds), ErrInvalidState)
	case mw > 0 && (w.CW < 1 || w.CW > mw || (mw-w.CW)%di != 0):
		return fmt.Errorf("cw is not a level of mw %d di %d: %w", mw, di, ErrInvalidState)
	}
	return nil
}

// lasso runs pick from start until it repeats. Two states repeat when the
// next pick from each leaves the same exact state (so they agree on the
// whole future): a state IPVS shows after the last dest of one round (cursor
// on that dest, low cw) is in that sense the same as the round's starting
// state (cursor at the head, cw at the top), though not equal to it.
// The caller must know that some pick succeeds.
func lasso[S comparable](start S, pick func(*S) int) (picks []int, states []S, loop int) {
	seen := make(map[S]int) // state after pick i -> i
	s := start
	for i := 0; ; i++ {
		before := s
		p := pick(&s)
		if j, ok := seen[s]; ok {
			return picks, states, j
		}
		seen[s] = i
		picks = append(picks, p)
		states = append(states, before)
	}
}

// stateAt gives the exact state after n picks of a lasso. Inside the loop
// the states repeat exactly except at its first position: there the state
// of a later round is the one the round's last pick leaves, which may
// differ from states[loop] (see lasso), so it is recomputed with advance.
func stateAt[S comparable](picks []int, states []S, loop int, n uint64, advance func(*S)) S {
	if len(picks) == 0 {
		// No destination: every attempt fails. The first failed wrr pick
		// can move the state; later ones leave it where the first did.
		if len(states) == 0 {
			var zero S
			return zero
		}
		s := states[0]
		if n > 0 {
			advance(&s)
		}
		return s
	}
	if n < uint64(len(picks)) {
		return states[n]
	}
	k := loop + int((n-uint64(loop))%uint64(len(picks)-loop))
	if k != loop {
		return states[k]
	}
	s := states[len(picks)-1]
	advance(&s)
	return s
}

// RRStateAt returns the exact rr state after n picks (scheduling attempts)
// from RRSequence(states[0], ds, ...), whose result picks, states and loop
// are. n may exceed len(picks).
func RRStateAt(picks []int, states []RR, loop int, n uint64, ds []Dest) RR {
	return stateAt(picks, states, loop, n, func(s *RR) { s.Pick(ds) })
}

// WRRStateAt returns the exact wrr state after n picks (scheduling attempts)
// from WRRSequence(states[0], ds, ...), whose result picks, states and loop
// are. n may exceed len(picks). This state, not a lookalike, is what
// Changed must start from for the next picks to match the kernel's.
func WRRStateAt(picks []int, states []WRR, loop int, n uint64, ds []Dest) WRR {
	return stateAt(picks, states, loop, n, func(s *WRR) { s.Pick(ds) })
}

// Sequencer is the state of a scheduler whose picks depend on nothing but
// that state and the dest list (rr and wrr, TableSequence), which is what
// lets the XDP data plane run its picks ahead of time. A Sequencer is a
// value: each method returns the next state and leaves the receiver as it
// was. Two Sequencers are equal (==) when they are the same state.
type Sequencer interface {
	// Next makes one pick: the state after it, and the dest's index or
	// -1 for none.
	Next(ds []Dest) (Sequencer, int)
	// Inserted, Deleted and Updated are the kernel's add_dest, del_dest
	// and upd_dest hooks, after a dest went in at index i, left index i,
	// or had its weight edited; ds is the list after the change.
	Inserted(i int, ds []Dest) Sequencer
	Deleted(i int, ds []Dest) Sequencer
	Updated(ds []Dest) Sequencer
	// Mark is the state in two numbers, stored beside the picks so that
	// a restarted control plane can Resume it (the scheduler's registry
	// entry).
	Mark() (a, b int32)
	sequence(ds []Dest, limit int) ([]int, []Sequencer, int, error)
}

// Sequence runs picks on ds from start until they repeat, as RRSequence
// and WRRSequence do for their own states.
func Sequence(start Sequencer, ds []Dest, limit int) (picks []int, states []Sequencer, loop int, err error) {
	return start.sequence(ds, limit)
}

// StateAt returns the exact state after n picks (scheduling attempts) of a
// Sequence from states[0] on ds, as RRStateAt and WRRStateAt do.
func StateAt(picks []int, states []Sequencer, loop int, n uint64, ds []Dest) Sequencer {
	return stateAt(picks, states, loop, n, func(s *Sequencer) { *s, _ = (*s).Next(ds) })
}

func wrapStates[S any](states []S, wrap func(S) Sequencer) []Sequencer {
	out := make([]Sequencer, len(states))
	for i, s := range states {
		out[i] = wrap(s)
	}
	return out
}

// rrSeq is RR as a Sequencer. rr has no upd_dest hook.
type rrSeq RR

func (r rrSeq) Next(ds []Dest) (Sequencer, int) {
	s := RR(r)
	i := s.Pick(ds)
	return rrSeq(s), i
}
func (r rrSeq) Inserted(i int, _ []Dest) Sequencer { s := RR(r); s.Inserted(i); return rrSeq(s) }
func (r rrSeq) Deleted(i int, _ []Dest) Sequencer  { s := RR(r); s.Deleted(i); return rrSeq(s) }
func (r rrSeq) Updated([]Dest) Sequencer           { return r }
func (r rrSeq) Mark() (int32, int32)               { return int32(r.Cursor), 0 }
func (r rrSeq) sequence(ds []Dest, limit int) ([]int, []Sequencer, int, error) {
	picks, states, loop, err := RRSequence(RR(r), ds, limit)
	return picks, wrapStates(states, func(s RR) Sequencer { return rrSeq(s) }), loop, err
}

// wrrSeq is WRR as a Sequencer: every change to the list is dest_changed.
type wrrSeq WRR

func (w wrrSeq) Next(ds []Dest) (Sequencer, int) {
	s := WRR(w)
	i := s.Pick(ds)
	return wrrSeq(s), i
}
func (w wrrSeq) Inserted(_ int, ds []Dest) Sequencer { return w.Updated(ds) }
func (w wrrSeq) Deleted(_ int, ds []Dest) Sequencer  { return w.Updated(ds) }
func (w wrrSeq) Updated(ds []Dest) Sequencer         { s := WRR(w); s.Changed(ds); return wrrSeq(s) }
func (w wrrSeq) Mark() (int32, int32)                { return int32(w.Cursor), w.CW }
func (w wrrSeq) sequence(ds []Dest, limit int) ([]int, []Sequencer, int, error) {
	picks, states, loop, err := WRRSequence(WRR(w), ds, limit)
	return picks, wrapStates(states, func(s WRR) Sequencer { return wrrSeq(s) }), loop, err
}
