package sched

// The connection-count schedulers read each dest's counters afresh for
// every new connection, so they keep no state: each is one function of the
// dest list. Loads are compared by cross-multiplying in 64 bits, as the
// kernel does, so h1/w1 < h2/w2 needs no division; ties keep the earlier
// dest.

// LC is ip_vs_lc_schedule: the dest with the smallest Overhead (compared as
// unsigned 32-bit, as the kernel's unsigned int), skipping dests that are
// overloaded or have Weight 0. The weight's size plays no part.
func LC(ds []Dest) int {
	least, loh := -1, uint32(0)
	for i, d := range ds {
		if d.Overloaded || d.Weight == 0 {
			continue
		}
		if doh := uint32(d.Overhead()); least < 0 || doh < loh {
			least, loh = i, doh
		}
	}
	return least
}

// WLC is ip_vs_wlc_schedule, keepalived's default: the dest with the
// smallest Overhead/Weight. The first dest not overloaded with Weight > 0
// starts as the least; after it only overloaded dests are skipped, a
// weight-0 dest being unable to win.
func WLC(ds []Dest) int {
	return weightedLeast(ds, Dest.Overhead)
}

// SED is ip_vs_sed_schedule (shortest expected delay): as WLC with
// SEDOverhead, Active+1, in place of Overhead; inactive connections don't
// count.
func SED(ds []Dest) int {
	return weightedLeast(ds, Dest.SEDOverhead)
}

// weightedLeast is the scan wlc and sed share.
func weightedLeast(ds []Dest, overhead func(Dest) int32) int {
	least := -1
	for i, d := range ds {
		if !d.Overloaded && d.Weight > 0 {
			least = i
			break
		}
	}
	if least < 0 {
		return -1
	}
	loh := overhead(ds[least])
	for i := least + 1; i < len(ds); i++ {
		d := ds[i]
		if d.Overloaded {
			continue
		}
		doh := overhead(d)
		if int64(loh)*int64(d.Weight) > int64(doh)*int64(ds[least].Weight) {
			least, loh = i, doh
		}
	}
	return least
}

// NQ is ip_vs_nq_schedule (never queue): skipping dests that are overloaded
// or have Weight 0, the first idle dest (Active == 0) is taken whatever its
// weight; with none idle, the SED rule decides.
func NQ(ds []Dest) int {
	least, loh := -1, int32(0)
	for i, d := range ds {
		if d.Overloaded || d.Weight == 0 {
			continue
		}
		doh := d.SEDOverhead()
		if d.Active == 0 {
			return i
		}
		if least < 0 || int64(loh)*int64(d.Weight) > int64(doh)*int64(ds[least].Weight) {
			least, loh = i, doh
		}
	}
	return least
}

// FO is ip_vs_fo_schedule (weighted failover): the dest with the highest
// weight that is not overloaded; of equal weights the first; none with a
// weight above 0 gives -1.
func FO(ds []Dest) int {
	best, hw := -1, int32(0)
	for i, d := range ds {
		if !d.Overloaded && d.Weight > hw {
			best, hw = i, d.Weight
		}
	}
	return best
}

// OVF is ip_vs_ovf_schedule (weighted overflow): as FO, among the dests
// whose active connections do not exceed their weight: connections go to
// the heaviest dest until it holds more than its weight, then overflow to
// the next.
func OVF(ds []Dest) int {
	best, hw := -1, int32(0)
	for i, d := range ds {
		if d.Overloaded || d.Weight == 0 || int64(d.Active) > int64(d.Weight) {
			continue
		}
		if best < 0 || d.Weight > hw {
			best, hw = i, d.Weight
		}
	}
	return best
}

// TwosTotal is the range ip_vs_twos_schedule draws its two random weights
// from, [0, TwosTotal): the sum of the available dests' weights, plus one.
// 0: no dest is available.
func TwosTotal(ds []Dest) int64 {
	var total int64
	for _, d := range ds {
		if d.Available() {
			total += int64(d.Weight)
		}
	}
	if total == 0 {
		return 0
	}
	return total + 1
}

// Twos is ip_vs_twos_schedule (power of two choices, Linux 6.2) given its
// two random draws r1, r2 in [0, TwosTotal(ds)): each walks the available
// dests subtracting their weights and picks the one where it reaches 0 or
// less (so the first dest takes one draw more than its weight); of the two,
// the second replaces the first only if its Overhead per weight is lower.
func Twos(ds []Dest, r1, r2 int64) int {
	if TwosTotal(ds) == 0 {
		return -1
	}
	c1, c2 := -1, -1
	for i, d := range ds {
		if !d.Available() {
			continue
		}
		r1 -= int64(d.Weight)
		r2 -= int64(d.Weight)
		if r1 <= 0 && c1 < 0 {
			c1 = i
		}
		if r2 <= 0 && c2 < 0 {
			c2 = i
		}
		if c1 >= 0 && c2 >= 0 {
			break
		}
	}
	// The kernel multiplies ints: 32 bits, as Overhead.
	if c2 >= 0 && ds[c2].Weight*ds[c1].Overhead() > ds[c1].Weight*ds[c2].Overhead() {
		return c2
	}
	return c1
}
