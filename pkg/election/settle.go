package election

import (
	"time"

	"github.com/xlbproject/xlb/pkg/vrrp"
)

// node is one director in one combination.
type node struct {
	eligible bool  // up and not in FAULT
	prio     uint8 // effective priority
}

// settle runs an election to its end, the way keepalived 2.2.7's
// vrrp_state_backup and vrrp_state_master_rx decide it, from masters (the
// directors that were MASTER before; nil: a fresh start) and returns who
// is MASTER at the end; ok is false if it never settles.
//
//   - A MASTER that takes an advert of higher priority, or of equal
//     priority from a higher primary address, becomes BACKUP.
//   - A BACKUP takes (and stays BACKUP on) an advert with nopreempt or when
//     its priority is at least its own — so it does not preempt an equal
//     priority. It drops lower ones (after preempt_delay, which only delays
//     the end) and its down timer runs out.
//   - Down timers run out in their order: the shortest Master_Down_Interval
//     (the highest priority) first. Those that run out together all become
//     MASTER, and the adverts sort them out.
func (r *router) settle(nodes []node, masters []bool) ([]bool, bool) {
	n := len(nodes)
	m := make([]bool, n)
	for i := range m {
		m[i] = masters != nil && masters[i] && nodes[i].eligible
	}
	for iter := 0; iter < 4*n+4; iter++ {
		demote := make([]bool, n)
		for i := range n {
			if !m[i] {
				continue
			}
			for j := range n {
				if j != i && m[j] && r.takes(i, j) && r.beats(j, i, nodes) {
					demote[i] = true
				}
			}
		}
		for i := range n {
			if demote[i] {
				m[i] = false
			}
		}
		var due []int
		var first time.Duration
		for i := range n {
			if !nodes[i].eligible || m[i] || r.held(i, m, nodes) {
				continue
			}
			t := r.downTimer(i, nodes[i].prio)
			switch {
			case len(due) == 0 || t < first:
				due, first = []int{i}, t
			case t == first:
				due = append(due, i)
			}
		}
		if len(due) == 0 {
			return m, true
		}
		for _, i := range due {
			m[i] = true
		}
	}
	return m, false
}

// held: a BACKUP stays BACKUP while it takes adverts from a MASTER that
// it does not preempt.
func (r *router) held(i int, m []bool, nodes []node) bool {
	for j := range m {
		if j != i && m[j] && r.takes(i, j) && (r.sides[i].in.Nopreempt || nodes[j].prio >= nodes[i].prio) {
			return true
		}
	}
	return false
}

// takes reports whether director i takes director j's adverts.
func (r *router) takes(i, j int) bool { return len(r.drop[i][j]) == 0 }

// beats: j's advert wins over i's: a higher priority, or the same from a
// higher primary address (compared as unsigned numbers). Where an address
// is not known (no unicast_src_ip), the director listed first stands in
// for the higher.
func (r *router) beats(j, i int, nodes []node) bool {
	if nodes[j].prio != nodes[i].prio {
		return nodes[j].prio > nodes[i].prio
	}
	aj, ai := r.sides[j].in.UnicastSrcIP, r.sides[i].in.UnicastSrcIP
	if aj.IsValid() && ai.IsValid() {
		return aj.Compare(ai) > 0
	}
	return j < i
}

// downTimer is when director i's down timer runs out: its
// Master_Down_Interval at its priority. keepalived starts an instance with
// state MASTER (not the owner, not in a sync group) on the same timer as a
// BACKUP (vrrp_scheduler.c, vrrp_init_state); the owner's 1 µs start only
// puts first who is first anyway.
func (r *router) downTimer(i int, prio uint8) time.Duration {
	in := r.sides[i].in
	return vrrp.MasterDownInterval(uint8(in.Version), prio, in.AdvertInterval, 0)
}
