package dptest

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Model is IPVS's scheduler for one service, run in Go (pkg/sched) beside
// the data plane under test: it says which real each new connection must
// get. It follows the service through Apply calls as IPVS does, and counts
// each real's ActiveConn and InActConn from what the suite's connections do.
//
// Two things it takes from the data plane rather than deciding itself, and
// the suite checks each separately (see the DestListOrder and weight-change
// behaviours):
//
//   - the dest-list order, which rr, wrr, lc, wlc, sed and nq walk and sh
//     and dh fill their buckets along: IPVS inserts a new dest at the head
//     of the list. The model also follows a data plane that appends, so
//     that a wrong order shows as such (DestListOrder), not as every
//     sequence being wrong. The order is what Stats lists.
//   - Batched: whether one Apply is one dest_changed event (XDP) or one per
//     real added, edited or removed (IPVS, driven as pkg/dataplane/ipvs drives it: adds
//     and edits in the order given, then deletions in list order).
type Model struct {
	Batched bool

	svc     dataplane.Service
	applied bool
	list    []netip.Addr // the dest list, in the data plane's order
	weight  map[netip.Addr]int32
	// last is IPVS's last_weight (the weight given at add, then the
	// latest non-zero one), which mh builds its table by; port each
	// real's port, which mh hashes.
	last map[netip.Addr]int32
	port map[netip.Addr]uint16

	// rr's cursor is the real it last chose; the zero Addr is the list
	// head. Held by identity, since an add at the head moves indices.
	rrAt netip.Addr
	// wrr's state; its Cursor is kept as wrrAt, by identity.
	wrr   sched.WRR
	wrrAt netip.Addr

	active, inactive map[netip.Addr]int
	// Persistence templates: masked client address -> real.
	tmpl map[netip.Addr]netip.Addr
}

// NewModel makes a model of a service not yet applied.
func NewModel(batched bool) *Model {
	return &Model{Batched: batched, weight: map[netip.Addr]int32{},
		last: map[netip.Addr]int32{}, port: map[netip.Addr]uint16{},
		active: map[netip.Addr]int{}, inactive: map[netip.Addr]int{}, tmpl: map[netip.Addr]netip.Addr{}}
}

// Order is the dest list as the model holds it.
func (m *Model) Order() []netip.Addr { return slices.Clone(m.list) }

// Apply moves the model through an Apply of svc, after which the data plane
// listed its reals in order. It fails if order is neither IPVS's (new reals
// at the head, the last added first) nor new reals appended in the order
// given, or leaves out or adds a real.
//
// Within one Apply, IPVS (through pkg/dataplane/ipvs) adds and edits reals before it
// deletes any, so a deleted dest's predecessor, where rr's cursor goes, may
// be a real added by the same Apply.
func (m *Model) Apply(svc dataplane.Service, order []netip.Addr) error {
	want := map[netip.Addr]int32{}
	var added []netip.Addr
	for _, r := range svc.Reals {
		want[r.Addr] = r.Weight
		if _, ok := m.weight[r.Addr]; !ok {
			added = append(added, r.Addr)
		}
	}
	var deleted []netip.Addr
	for _, a := range m.list {
		if _, ok := want[a]; !ok {
			deleted = append(deleted, a)
		}
	}
	head := append(reversed(added), m.list...)
	tail := append(slices.Clone(m.list), added...)
	var mid []netip.Addr // the list when the deletions happen
	switch {
	case slices.Equal(without(head, deleted), order):
		mid = head
	case slices.Equal(without(tail, deleted), order):
		mid = tail
	default:
		return fmt.Errorf("dest list %v after applying %v to %v: neither new reals first (IPVS) nor appended",
			order, svc.Reals, m.list)
	}

	if !m.applied {
		// ip_vs_wrr_init_svc on a service created empty: di 1, mw 0, cw 0.
		m.wrr, m.wrrAt, m.rrAt = sched.NewWRR(nil), netip.Addr{}, netip.Addr{}
	} else if svc.Scheduler != m.svc.Scheduler {
		// An edited scheduler is bound afresh over the dests IPVS has
		// (pkg/dataplane/ipvs edits the service before its reals).
		m.wrr, m.wrrAt, m.rrAt = sched.NewWRR(m.dests(m.list, m.weight)), netip.Addr{}, netip.Addr{}
	}
	members := slices.Clone(m.list)
	cur := map[netip.Addr]int32{}
	for a, w := range m.weight {
		cur[a] = w
	}
	changes := 0
	changed := func() {
		changes++
		if !m.Batched {
			m.wrrChanged(members, cur)
		}
	}
	for _, r := range svc.Reals {
		w, ok := cur[r.Addr]
		if !ok || r.Weight != 0 {
			m.last[r.Addr] = r.Weight
		}
		m.port[r.Addr] = r.Port
		switch {
		case !ok:
			members = append(members, r.Addr)
			cur[r.Addr] = r.Weight
			changed()
		case w != r.Weight:
			cur[r.Addr] = r.Weight
			changed()
		}
	}
	list := mid
	for _, d := range deleted {
		i := slices.Index(list, d)
		if m.rrAt == d {
			// ip_vs_rr_del_dest: the cursor moves to the predecessor.
			m.rrAt = netip.Addr{}
			if i > 0 {
				m.rrAt = list[i-1]
			}
		}
		list = slices.Delete(slices.Clone(list), i, i+1)
		members = without(members, []netip.Addr{d})
		delete(cur, d)
		delete(m.last, d)
		delete(m.active, d)
		delete(m.inactive, d)
		for k, r := range m.tmpl {
			if r == d {
				delete(m.tmpl, k) // the template's dest is gone: invalid
			}
		}
		changed()
	}
	if m.Batched && changes > 0 {
		m.wrrChanged(members, cur)
	}
	m.list, m.weight, m.svc, m.applied = list, cur, svc, true
	return nil
}

// wrrChanged is ip_vs_wrr_dest_changed; levels depend only on the weights,
// so the members' order does not matter, and the cursor goes to the head.
func (m *Model) wrrChanged(members []netip.Addr, w map[netip.Addr]int32) {
	m.wrr.Changed(m.dests(members, w))
	m.wrrAt = netip.Addr{}
}

func (m *Model) dests(list []netip.Addr, w map[netip.Addr]int32) []sched.Dest {
	ds := make([]sched.Dest, len(list))
	for i, a := range list {
		ds[i] = sched.Dest{Weight: w[a], Active: uint32(m.active[a]), Inactive: uint32(m.inactive[a]),
			Addr: a, Port: m.port[a], LastWeight: m.last[a]}
	}
	return ds
}

// Pick is the real IPVS gives a new connection from src, or the zero Addr
// when it has none ("no destination available"). It moves the scheduler's
// state as the kernel's moves, and makes a persistence template.
func (m *Model) Pick(src netip.Addr) netip.Addr {
	return m.PickFrom(netip.AddrPortFrom(src, 0))
}

// PickFrom is Pick for a connection from a known source port (0: one the
// schedulers need not know).
func (m *Model) PickFrom(from netip.AddrPort) netip.Addr {
	src := from.Addr()
	var key netip.Addr
	if m.svc.Persistence > 0 {
		mask := m.svc.PersistenceMask.Or(src)
		if src.Is4() {
			a, mb := src.As4(), mask.Addr4().As4()
			for i := range a {
				a[i] &= mb[i]
			}
			key = netip.AddrFrom4(a)
		} else {
			key = netip.PrefixFrom(src, int(mask)).Masked().Addr()
		}
		// A template decides while its dest is in the service, weight
		// 0 included (expire_quiescent_template=0).
		if r, ok := m.tmpl[key]; ok {
			return r
		}
	}
	ds := m.dests(m.list, m.weight)
	i := -1
	switch m.svc.Scheduler {
	case "rr":
		rr := sched.RR{Cursor: slices.Index(m.list, m.rrAt)}
		if i = rr.Pick(ds); i >= 0 {
			m.rrAt = m.list[i]
		}
	case "wrr":
		w := m.wrr
		w.Cursor = slices.Index(m.list, m.wrrAt)
		i = w.Pick(ds)
		m.wrr = w
		m.wrrAt = netip.Addr{}
		if w.Cursor >= 0 {
			m.wrrAt = m.list[w.Cursor]
		}
	default:
		// Schedulers with no state between picks: the registry's
		// reference picker.
		s, ok := sched.Lookup(m.svc.Scheduler)
		if !ok || s.New == nil {
			panic("dptest: no model of scheduler " + m.svc.Scheduler)
		}
		i = s.New(ds, m.svc.Flags).Pick(ds, sched.Conn{Src: src, Dst: m.svc.Addr, SPort: from.Port()})
	}
	if i < 0 {
		return netip.Addr{}
	}
	if m.svc.Persistence > 0 {
		m.tmpl[key] = m.list[i]
	}
	return m.list[i]
}

// Opened counts a new connection to real as IPVS does once its SYN is
// through: active.
func (m *Model) Opened(real netip.Addr) { m.active[real]++ }

// Closed moves a connection to real from active to inactive: the client's
// FIN puts it in FIN_WAIT, where it stays (120 s) for the rest of a test.
func (m *Model) Closed(real netip.Addr) {
	if _, ok := m.weight[real]; !ok {
		return // removed: IPVS's counts went with the dest
	}
	m.active[real]--
	m.inactive[real]++
}

// Counts are a real's ActiveConn and InActConn as the model has them.
func (m *Model) Counts(real netip.Addr) (active, inactive int) {
	return m.active[real], m.inactive[real]
}

func reversed(s []netip.Addr) []netip.Addr {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func without(s, drop []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(s))
	for _, a := range s {
		if !slices.Contains(drop, a) {
			out = append(out, a)
		}
	}
	return out
}
