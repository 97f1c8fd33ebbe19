package sched

// RR is ip_vs_rr's state. Cursor is the index of the last chosen dest; -1
// is the list head, where a new service starts.
type RR struct{ Cursor int }

// Pick is ip_vs_rr_schedule: walk on from the cursor, wrapping round the
// list at most once, and take the first dest that is not overloaded and has
// Weight > 0. The cursor moves to it. It returns its index, or -1 with the
// cursor unchanged. A cursor outside ds (which IPVS cannot have) counts as
// the head.
func (r *RR) Pick(ds []Dest) int {
	c := r.Cursor
	if c < -1 || c >= len(ds) {
		c = -1
	}
	// From the head one pass covers the list; from a dest, the walk ends
	// after coming back to that dest.
	for k := 1; k <= len(ds); k++ {
		i := (c + k) % len(ds)
		if ds[i].Available() {
			r.Cursor = i
			return i
		}
	}
	return -1
}

// Deleted is ip_vs_rr_del_dest, called after dest i has been removed from
// the list: a cursor on i moves to its predecessor (the head if i was first),
// and the cursor follows the dests after i as their indices drop by one.
// Adding a dest moves no cursor either (see Inserted for its index).
func (r *RR) Deleted(i int) {
	if r.Cursor >= i {
		r.Cursor--
	}
}

// Inserted keeps the cursor on its dest when a dest is inserted at index i
// (the kernel inserts new dests at the head, i = 0). IPVS's cursor is a
// list pointer, so it does not move; only its index does.
func (r *RR) Inserted(i int) {
	if r.Cursor >= i {
		r.Cursor++
	}
}
