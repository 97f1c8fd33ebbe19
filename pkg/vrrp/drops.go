package vrrp

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// dropReasons name, in a fixed order, why Validate refused an advert: the
// keys of Runner.Drops, of xlb status and of the xlb_vrrp_adverts_dropped_total
// metric. "other" counts what no sentinel names.
var dropReasons = [...]struct {
	name string
	err  error
}{
	{"version", ErrVersion},
	{"type", ErrType},
	{"length", ErrLength},
	{"checksum", ErrChecksum},
	{"ttl", ErrTTL},
	{"addr_count", ErrAddrCount},
	{"addr_family", ErrAddrFamily},
	{"addr_list", ErrAddrList},
	{"vrid", ErrVRID},
	{"auth_type", ErrAuthType},
	{"auth_pass", ErrAuthPass},
	{"advert_int", ErrAdverInt},
	{"multicast", ErrMulticast},
	{"unicast_src", ErrUnicastSrc},
	{"other", nil},
}

// DropReason names err, an error from Validate, as Runner.Drops does.
func DropReason(err error) string { return dropReasons[dropIndex(err)].name }

func dropIndex(err error) int {
	for i, r := range dropReasons {
		if r.err != nil && errors.Is(err, r.err) {
			return i
		}
	}
	return len(dropReasons) - 1
}

// dropLogEvery bounds how often one reason's drops are logged: a flood of
// forged adverts must not become a flood of log lines.
const dropLogEvery = 10 * time.Second

// dropCounters counts dropped adverts per reason and decides which drops
// are logged: the first of each reason, then at most one per dropLogEvery,
// saying how many went unlogged in between.
type dropCounters struct {
	n  [len(dropReasons)]atomic.Uint64
	mu sync.Mutex
	// last is when each reason was last logged; logged is its count then.
	last   [len(dropReasons)]time.Time
	logged [len(dropReasons)]uint64
}

// add counts a drop and says whether to log it, and how many drops of the
// same reason were not logged since the last line.
func (d *dropCounters) add(now time.Time, err error) (log bool, unlogged uint64) {
	i := dropIndex(err)
	n := d.n[i].Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.last[i].IsZero() && now.Sub(d.last[i]) < dropLogEvery {
		return false, 0
	}
	unlogged = n - d.logged[i] - 1
	d.last[i], d.logged[i] = now, n
	return true, unlogged
}

func (d *dropCounters) total() uint64 {
	var t uint64
	for i := range d.n {
		t += d.n[i].Load()
	}
	return t
}

// snapshot is the non-zero counts by reason.
func (d *dropCounters) snapshot() map[string]uint64 {
	var m map[string]uint64
	for i := range d.n {
		if v := d.n[i].Load(); v > 0 {
			if m == nil {
				m = make(map[string]uint64)
			}
			m[dropReasons[i].name] = v
		}
	}
	return m
}
