package sched

import "strings"

// kernelWRRPick is ip_vs_wrr_schedule transliterated step by step, with no
// shortcut: the reference WRR.Pick (which skips empty passes in bulk) is
// checked against it. Index -1 stands for the list head.
func kernelWRRPick(w *WRR, ds []Dest) int {
	if w.MW == 0 {
		return -1
	}
	head := -1
	dest := w.Cursor
	last := dest
	stop := -2 // NULL
	lastPass, restarted := false, false
	for {
		// list_for_each_entry_continue: the entries after dest, up to the head.
		for dest = dest + 1; dest < len(ds); dest++ {
			if !ds[dest].Overloaded && ds[dest].Weight >= w.CW {
				w.Cursor = dest
				return dest
			}
			if dest == stop {
				w.Cursor = dest
				return -1
			}
		}
		dest = head
		w.CW -= w.DI
		if w.CW <= 0 {
			w.CW = w.MW
			if lastPass || last == head {
				w.Cursor = dest
				return -1
			}
			restarted = true
		}
		lastPass = w.CW <= w.DI
		if lastPass && restarted && last != head {
			stop = last
		}
	}
}

// picksOf runs n picks of p from its current state.
func picksOf(n int, pick func() int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = pick()
	}
	return out
}

// letters names dest indices A, B, C ... and -1 as '-', the way the
// reference document writes sequences.
func letters(picks []int) string {
	var b strings.Builder
	for _, p := range picks {
		if p < 0 {
			b.WriteByte('-')
		} else {
			b.WriteByte(byte('A' + p))
		}
	}
	return b.String()
}

func weights(ws ...int32) []Dest {
	ds := make([]Dest, len(ws))
	for i, w := range ws {
		ds[i].Weight = w
	}
	return ds
}
