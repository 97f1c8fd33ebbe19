package sched

import "math"

// WRR is ip_vs_wrr's state: Cursor is the index of the last chosen dest (-1
// = list head), CW the current weight level, MW the top level and DI the
// step between levels.
//
// For a given dest list, MW and DI follow from the weights (see Changed), so
// (Cursor, CW) is all that moves.
type WRR struct {
	Cursor     int
	CW, MW, DI int32
}

// NewWRR is ip_vs_wrr_init_svc for a service created with ds already in
// place: cursor at the head, DI the gcd of the weights > 0 (1 if none),
// MW = max weight - (DI-1), CW = MW.
//
// IPVS services are usually created empty and filled one dest at a time;
// the kernel's state for that is NewWRR(nil) followed by Changed after each
// add, and its CW can differ from NewWRR's (adding weights 2 then 3 leaves
// CW at 1, not 3).
func NewWRR(ds []Dest) WRR {
	w := WRR{Cursor: -1}
	w.DI, w.MW = wrrLevels(ds)
	w.CW = w.MW
	return w
}

// WRRFilled is the state of a wrr service made empty and then given its
// dests one at a time, each at the head of the list, as ipvsadm -A then -a,
// or keepalived, leave it: ds is the final list, so the dest added first is
// the last. Every add runs dest_changed over the list as it is then, and
// the first dest alone sets the levels the next ones keep: weights 3,2,1
// added in that order start at cw 1 (C B A A B A ...), where NewWRR's
// init over the whole list starts at cw 3.
func WRRFilled(ds []Dest) WRR {
	w := NewWRR(nil)
	for k := len(ds) - 1; k >= 0; k-- {
		w.Changed(ds[k:])
	}
	return w
}

// Changed is ip_vs_wrr_dest_changed, which IPVS calls after a dest is added,
// deleted or has its weight edited; ds is the new list. Overload flags
// changing is not such an event. The cursor returns to the head, DI and MW
// are recomputed, and CW is kept at about the same level: MW if it is above
// MW or 0, else rounded to (CW/DI)*DI + 1 when DI > 1.
func (w *WRR) Changed(ds []Dest) {
	w.Cursor = -1
	w.DI, w.MW = wrrLevels(ds)
	if w.CW > w.MW || w.CW == 0 {
		w.CW = w.MW
	} else if w.DI > 1 {
		w.CW = (w.CW/w.DI)*w.DI + 1
	}
}

// wrrLevels returns di, the gcd of the weights > 0 (1 if there are none),
// and mw = max(0, weights) - (di-1), the level of the first pass: lowering
// it by di-1 makes the last pass run at level 1.
func wrrLevels(ds []Dest) (di, mw int32) {
	var g, top int32
	for _, d := range ds {
		if d.Weight > 0 {
			g = gcd(g, d.Weight)
		}
		top = max(top, d.Weight)
	}
	if g == 0 {
		g = 1
	}
	return g, top - (g - 1)
}

func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Pick is ip_vs_wrr_schedule. Walking on from the cursor, the first dest
// that is not overloaded and has Weight >= CW is chosen and becomes the
// cursor. On reaching the end of the list CW drops by DI (back to MW once
// it is <= 0) and the walk restarts at the head. It returns the dest's
// index, or -1 when MW is 0 (state unchanged) or every dest was tried at the
// lowest level from every starting point ("all destinations are
// overloaded"; the state moves as the kernel's does).
//
// A WRR that Changed or NewWRR did not make for ds (DI < 1, MW < 0, a
// cursor outside ds) gets -1 or has its cursor taken as the head, where the
// kernel's loop could run for ever or read past the list.
func (w *WRR) Pick(ds []Dest) int {
	if w.MW <= 0 || w.DI <= 0 {
		return -1
	}
	const none = -2
	n := len(ds)
	if w.Cursor < -1 || w.Cursor >= n {
		w.Cursor = -1
	}
	last, pos, stop := w.Cursor, w.Cursor, none
	lastPass, restarted := false, false
	// The highest weight a pass can match; passes above it are skipped in
	// bulk below, where the kernel would walk them one by one.
	avail := int64(math.MinInt32)
	for _, d := range ds {
		if !d.Overloaded {
			avail = max(avail, int64(d.Weight))
		}
	}
	for {
		for pos+1 < n {
			pos++
			if !ds[pos].Overloaded && ds[pos].Weight >= w.CW {
				w.Cursor = pos
				return pos
			}
			if pos == stop {
				w.Cursor = pos
				return -1
			}
		}
		pos = -1
		w.CW -= w.DI
		if w.CW <= 0 {
			w.CW = w.MW
			// Either the last pass already covered every dest at the
			// lowest level, or the walk began at the head and so did
			// its one full traversal at level >= 1.
			if lastPass || last == -1 {
				w.Cursor = -1
				return -1
			}
			restarted = true
		}
		lastPass = w.CW <= w.DI
		if lastPass && restarted && last != -1 {
			// The first traversal at level <= DI only saw the dests
			// after last; this one must cover those up to last.
			stop = last
		}
		if stop == none && !lastPass {
			w.CW -= w.DI * skippablePasses(int64(w.CW), int64(w.DI), avail)
		}
	}
}

// skippablePasses counts the full passes from level cw on that match no
// dest (every level > avail) and leave the guard state untouched (each
// decrement stays above di, so no wrap and no last pass).
func skippablePasses(cw, di, avail int64) int32 {
	if cw <= avail {
		return 0
	}
	// Pass j (1-based) runs at level cw-(j-1)*di, which must be > avail,
	// and must leave cw-j*di > di.
	k := min((cw-avail-1)/di+1, (cw-di-1)/di)
	return int32(max(k, 0))
}
