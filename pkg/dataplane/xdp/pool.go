package xdp

import "slices"

// span is a run of scheduler-table entries: [off, off+n).
type span struct{ off, n uint32 }

// pool is the free space of the scheduler-table map, a list of free spans
// in order of offset, with neighbours merged. A value: the planner works on
// a copy and the change is kept only if the plan is written.
type pool []span

func newPool(size uint32) pool {
	if size == 0 {
		return nil
	}
	return pool{{0, size}}
}

func (p pool) clone() pool { return slices.Clone(p) }

// alloc takes n entries, first fit; ok is false when no free span holds
// them.
func (p *pool) alloc(n uint32) (off uint32, ok bool) {
	if n == 0 {
		return 0, true
	}
	for i, s := range *p {
		if s.n < n {
			continue
		}
		off = s.off
		if s.n == n {
			*p = slices.Delete(*p, i, i+1)
		} else {
			(*p)[i] = span{s.off + n, s.n - n}
		}
		return off, true
	}
	return 0, false
}

// free gives back [off, off+n).
func (p *pool) free(off, n uint32) {
	if n == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(*p, off, func(s span, off uint32) int { return int(s.off) - int(off) })
	*p = slices.Insert(*p, i, span{off, n})
	// Merge with the next, then with the previous.
	if i+1 < len(*p) && (*p)[i].off+(*p)[i].n == (*p)[i+1].off {
		(*p)[i].n += (*p)[i+1].n
		*p = slices.Delete(*p, i+1, i+2)
	}
	if i > 0 && (*p)[i-1].off+(*p)[i-1].n == (*p)[i].off {
		(*p)[i-1].n += (*p)[i].n
		*p = slices.Delete(*p, i, i+1)
	}
}

// take marks [off, off+n) used (a table found in pinned maps).
func (p *pool) take(off, n uint32) bool {
	if n == 0 {
		return true
	}
	for i, s := range *p {
		if off < s.off || off+n > s.off+s.n {
			continue
		}
		var rest []span
		if off > s.off {
			rest = append(rest, span{s.off, off - s.off})
		}
		if end := off + n; end < s.off+s.n {
			rest = append(rest, span{end, s.off + s.n - end})
		}
		*p = slices.Replace(*p, i, i+1, rest...)
		return true
	}
	return false
}

// size is the free entries.
func (p pool) size() uint32 {
	var n uint32
	for _, s := range p {
		n += s.n
	}
	return n
}

// fits says whether n entries could be allocated.
func (p pool) fits(n uint32) bool {
	for _, s := range p {
		if s.n >= n {
			return true
		}
	}
	return n == 0
}
