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
