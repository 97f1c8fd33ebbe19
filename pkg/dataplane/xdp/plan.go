package xdp

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// The planner: from the control plane's picture of the maps (tables), the
// services wanted and what it is told of the world (next hops, scheduler
// cursors, the standby set, egress slots), it computes what to write. It
// does no I/O and reads no clock: Apply gathers its inputs and write.go
// writes its output.

// tables is the control plane's picture of what is in the maps.
type tables struct {
	services map[dataplane.ServiceKey]*svcState
	svcUsed  []bool // by service index
	realUsed []bool // by real slot
	// svcFree and realFree: no slot below them is free.
	svcFree, realFree int
	realGen           []uint32 // by real slot
	// realDirty: the slot's counters may be other than zero (it served a
	// real, or was found in use in pinned maps): zeroed when it is taken.
	realDirty []bool
	// desired is the wanted state as last applied, re-applied when next
	// hops change; desiredAt indexes it by key (nil: not built yet).
	desired   []dataplane.Service
	desiredAt map[dataplane.ServiceKey]int
	// The address filters as last written (nil: not yet).
	vipFilter, natFilter []uint32
	// refs is what services add up to (nil: to be counted again).
	refs *refs
	// vips is what the vips map holds: the active VIPs.
	vips map[netip.Addr]bool
	// tabs is the free space of the scheduler-table pool.
	tabs pool
	// laddrAt: the slot of each FULLNAT local address in the laddrs map.
	// A slot keeps its address for the process's life: flows hold slots,
	// and a slot never names another address under them.
	laddrAt map[netip.Addr]uint32
}

func newTables(lim limits) *tables {
	return &tables{
		services:  map[dataplane.ServiceKey]*svcState{},
		svcUsed:   make([]bool, lim.services),
		realUsed:  make([]bool, lim.reals),
		realGen:   make([]uint32, lim.reals),
		realDirty: make([]bool, lim.reals),
		vips:      map[netip.Addr]bool{},
		tabs:      newPool(lim.tabEntries),
		laddrAt:   map[netip.Addr]uint32{},
	}
}

// setDesired makes services (a copy) the wanted state, indexed for the
// Updates that follow.
func (t *tables) setDesired(services []dataplane.Service) {
	t.desired = slices.Clone(services)
	t.desiredAt = make(map[dataplane.ServiceKey]int, len(t.desired))
	for i, s := range t.desired {
		t.desiredAt[s.ServiceKey] = i
	}
}

// change makes desired what an Update of set and del leaves wanted.
func (t *tables) change(set []dataplane.Service, del []dataplane.ServiceKey) {
	if t.desiredAt == nil {
		t.setDesired(t.desired)
	}
	for _, s := range set {
		if i, ok := t.desiredAt[s.ServiceKey]; ok {
			t.desired[i] = s
		} else {
			t.desiredAt[s.ServiceKey] = len(t.desired)
			t.desired = append(t.desired, s)
		}
	}
	if len(del) == 0 {
		return
	}
	for _, k := range del {
		delete(t.desiredAt, k)
	}
	t.desired = slices.DeleteFunc(t.desired, func(s dataplane.Service) bool {
		_, ok := t.desiredAt[s.ServiceKey]
		return !ok
	})
	clear(t.desiredAt)
	for i, s := range t.desired {
		t.desiredAt[s.ServiceKey] = i
	}
}

type svcState struct {
	key         dataplane.ServiceKey
	idx         uint32
	half        uint32
	sched       string
	flags       lvs.SvcFlags
	persist     time.Duration
	persistMask lvs.Netmask
	sloppy      bool // sloppy_tcp
	toa         bool // FULLNAT reals' handshake ACKs carry TOA
	reals       []*realState
	// nat: some of reals forward by NAT (hasNAT), so their addresses
	// are in the NAT source filter.
	nat bool
	// written and writtenReals are the service's and its reals' entries
	// as this process last wrote them (wrote): an Apply that would write
	// the same again, with no table to rewrite and no real to remove,
	// writes nothing for the service.
	wrote        bool
	written      xlbSvc
	writtenReals []xlbReal
	// writtenTunnels: the reals' tunnels entries as last written.
	writtenTunnels []xlbTunnel
	// laddrs: the service's FULLNAT local addresses (slots of laddrs),
	// as written (writtenLaddrs).
	laddrs        xlbLaddrSet
	writtenLaddrs xlbLaddrSet
	local         []netip.Addr // the addresses laddrs names

	// dests are the reals' weights as the table was built (0 for an
	// unresolved real), in list order.
	dests []sched.Dest
	// The live rr/wrr sequence, for finding where IPVS's state is now.
	seq    []int
	states []sched.Sequencer
	loop   int
	// The live slot's table: tabLen entries of the pool from tabOff.
	tabOff, tabLen uint32
}

func (s *svcState) slot() uint32 { return s.idx*2 + s.half }

type realState struct {
	dataplane.Real
	slot     uint32
	nh       NextHop
	resolved bool
	// lastWeight is IPVS's last_weight: the weight the real was added
	// with, or its latest non-zero weight since (mh's table keeps a
	// quiesced real's entries).
	lastWeight int32
}

func (r *realState) effectiveWeight() int32 {
	if !r.resolved {
		return 0
	}
	return r.Weight
}

// world is what the planner is told: nothing in it is looked up by the
// planner itself.
type world struct {
	hops    map[hopKey]hop
	cursors map[uint32]uint64 // picks taken, by the slot of a service there
	standby map[netip.Addr]bool
	ports   map[int]uint16 // tx_ports slot by ifindex
	lim     limits
	// sloppyTCP: sloppy_tcp for every TCP service (Config.SloppyTCP).
	sloppyTCP bool
	// geometry is the kernel build the bucket tables follow.
	geometry sched.Geometry
	// checkedVIPs are the VIPs reals are checked through (check.go):
	// their answers are looked for by source, as NAT replies are.
	checkedVIPs map[netip.Addr]bool
}

// upsert is a new real, or a kept one whose weight changed: the
// operations IPVS sees before the removals.
type upsert struct {
	r   *realState
	add bool
}

// same says whether writing sp would write only what its service's
// entries already hold, as this process last wrote them.
func (sp *svcPlan) same() bool {
	o := sp.old
	return o != nil && o.wrote && !sp.rewrite && len(sp.removed) == 0 &&
		sp.svc == o.written && slices.Equal(sp.reals, o.writtenReals) && slices.Equal(sp.tunnels, o.writtenTunnels) &&
		sp.st.laddrs == o.writtenLaddrs
}

// svcPlan is what one service's change writes.
type svcPlan struct {
	st      *svcState // new state (replaces the old on success)
	old     *svcState
	removed []*realState
	upserts []upsert
	rewrite bool // the scheduler table is rewritten (else reals only)
	table   []uint32
	svc     xlbSvc
	reals   []xlbReal // st.reals' entries, in order
	tunnels []xlbTunnel
}

// applyPlan is the whole of one Apply.
type applyPlan struct {
	services []*svcPlan
	gone     []*svcState
	// ports are egress interfaces that need a tx_ports slot.
	ports map[int]uint16
	// svcs and reals are the slot allocations as the change leaves them;
	// tabs is the scheduler-table pool's.
	svcs, reals slots
	tabs        pool
	vipFilter   []uint32
	natFilter   []uint32
	// vips: what the vips map must hold for the VIPs this change
	// touches (a VIP -> it is there: it has services and is active);
	// the others stay as they are.
	vips map[netip.Addr]bool
	// refs: what the services add up to after the change.
	refs *refs
	// laddrAt: the local addresses' slots before the change (the
	// tables'); newLaddrs those it gives new addresses, written first.
	laddrAt   map[netip.Addr]uint32
	newLaddrs map[netip.Addr]uint32
}

// plan computes an Apply of services (valid per Caps) over t: the services
// t holds that are not among them go. Nothing in t changes; on error
// nothing is to be written.
func plan(t *tables, services []dataplane.Service, w world) (*applyPlan, error) {
	wanted := make(map[dataplane.ServiceKey]bool, len(services))
	for _, w := range services {
		wanted[w.ServiceKey] = true
	}
	var gone []dataplane.ServiceKey
	for k := range t.services {
		if !wanted[k] {
			gone = append(gone, k)
		}
	}
	return planChange(t, services, gone, true, w)
}

// planChange computes an Update over t: the services set (valid per Caps)
// are added or replace theirs, those of gone that t holds go, every other
// service stays as it is. Nothing in t changes; on error nothing is to be
// written.
func planChange(t *tables, set []dataplane.Service, gone []dataplane.ServiceKey, everyVIP bool, w world) (*applyPlan, error) {
	p := &applyPlan{svcs: slots{used: t.svcUsed, next: t.svcFree}, reals: slots{used: t.realUsed, next: t.realFree},
		tabs: t.tabs.clone(), ports: map[int]uint16{}, laddrAt: t.laddrAt, newLaddrs: map[netip.Addr]uint32{}}
	planned := make(map[dataplane.ServiceKey]bool, len(set))
	for _, want := range set {
		if planned[want.ServiceKey] {
			return nil, fmt.Errorf("service %s: given twice", want.ServiceKey)
		}
		planned[want.ServiceKey] = true
		sp, err := planService(t.services[want.ServiceKey], want, p, w)
		if err != nil {
			return nil, err
		}
		for i, r := range sp.st.reals {
			sp.reals[i].Gen = t.realGen[r.slot]
		}
		p.services = append(p.services, sp)
	}
	for _, k := range gone {
		if planned[k] {
			if slices.ContainsFunc(p.gone, func(s *svcState) bool { return s.key == k }) {
				continue // named twice
			}
			return nil, fmt.Errorf("service %s: both given and removed", k)
		}
		if s := t.services[k]; s != nil {
			p.gone = append(p.gone, s)
			planned[k] = true
		}
	}
	// Slots are free for the next Apply, not this one: a flow of a
	// removed real must never meet a new real in its slot before the
	// generation moves on.
	for _, s := range p.gone {
		p.svcs.free(int(s.idx))
		for _, r := range s.reals {
			p.reals.free(int(r.slot))
		}
	}
	for _, sp := range p.services {
		for _, r := range sp.removed {
			p.reals.free(int(r.slot))
		}
		if sp.rewrite && sp.old != nil {
			p.tabs.free(sp.old.tabOff, sp.old.tabLen)
		}
	}
	for _, s := range p.gone {
		p.tabs.free(s.tabOff, s.tabLen)
	}
	// What every service after the change adds up to, from what the
	// services before it did, less those replaced or gone, plus the new
	// ones: no pass over the services the change leaves alone.
	p.refs = t.refsOf(w.lim).clone()
	touched := map[netip.Addr]bool{}
	for _, sp := range p.services {
		if sp.old != nil {
			p.refs.add(sp.old, -1, w.lim)
		}
		p.refs.add(sp.st, 1, w.lim)
		touched[sp.st.key.Addr] = true
	}
	for _, s := range p.gone {
		p.refs.add(s, -1, w.lim)
		touched[s.key.Addr] = true
	}
	// A service's table is rebuilt beside the one that serves (a real
	// going down, a weight changing): room for the largest must stay, or
	// a health transition could not be applied later.
	if largest := p.refs.largestTable(); largest > 0 && !p.tabs.fits(largest) {
		name := "?"
		for _, sp := range p.services {
			if sp.st.tabLen == largest {
				name = sp.st.key.String()
			}
		}
		for k, s := range t.services {
			if s.tabLen == largest && !planned[k] {
				name = k.String()
			}
		}
		return nil, fmt.Errorf("service %s: the scheduler tables take %d entries, and rebuilding this one's %d beside it needs a free run that long; the data plane's pool has %d (--max-sched-entries)",
			name, w.lim.tabEntries-p.tabs.size(), largest, w.lim.tabEntries)
	}
	p.vipFilter, p.natFilter = p.refs.filters(w.lim, w.checkedVIPs)
	// The vips map changes only for the VIPs a service came to or left
	// (a role flip is SetStandby's); a whole Apply looks at every VIP it
	// holds too.
	if everyVIP {
		for a := range t.vips {
			touched[a] = true
		}
	}
	p.vips = make(map[netip.Addr]bool, len(touched))
	for a := range touched {
		p.vips[a] = p.refs.services(a) > 0 && !w.standby[a]
	}
	return p, nil
}

func planService(old *svcState, want dataplane.Service, p *applyPlan, w world) (*svcPlan, error) {
	st := &svcState{key: want.ServiceKey, sched: want.Scheduler, flags: want.Flags,
		persist: want.Persistence, persistMask: want.PersistenceMask,
		sloppy: want.Sloppy || (w.sloppyTCP && want.Protocol == lvs.TCP), toa: want.TOA}
	sp := &svcPlan{st: st, old: old}
	if want.Scheduler == "mh" && want.Flags&lvs.Sched1 != 0 && !w.lim.bpfLoop {
		return nil, fmt.Errorf("service %s: mh-fallback searches the table with bpf_loop (Linux 5.17), which this kernel does not have", want.ServiceKey)
	}
	if old != nil {
		st.idx, st.half = old.idx, old.half
	} else {
		i := p.svcs.take()
		if i < 0 {
			return nil, fmt.Errorf("service %s: no room: the data plane holds %d services", want.ServiceKey, w.lim.services)
		}
		st.idx = uint32(i)
	}

	// IPVS dest-list order: existing reals keep their places, new ones go
	// in front of them (below). mine[j] is want.Reals[j]'s state; kept[j]
	// says it was there, with weight wasWeight[j] in the table.
	find := realFinder(want.Reals)
	mine := make([]*realState, len(want.Reals))
	wasWeight := make([]int32, len(want.Reals))
	kept := make([]bool, len(want.Reals))
	if old != nil {
		for i, r := range old.reals {
			j := find(netip.AddrPortFrom(r.Addr, r.Port))
			if j < 0 {
				sp.removed = append(sp.removed, r)
				continue
			}
			nr := *r
			nr.Real = want.Reals[j]
			if nr.Weight != 0 {
				nr.lastWeight = nr.Weight
			}
			st.reals = append(st.reals, &nr)
			mine[j], wasWeight[j], kept[j] = &nr, old.dests[i].Weight, true
		}
	}
	var added []*realState
	for j, r := range want.Reals {
		if kept[j] {
			continue
		}
		i := p.reals.take()
		if i < 0 {
			return nil, fmt.Errorf("service %s: real %s: no room: the data plane holds %d reals", want.ServiceKey, r, w.lim.reals)
		}
		mine[j] = &realState{Real: r, slot: uint32(i), lastWeight: r.Weight}
		added = append(added, mine[j])
	}
	// The kernel adds a dest at the head of the list (list_add_rcu in
	// __ip_vs_update_dest): new reals go in front, the last added first.
	slices.Reverse(added)
	st.reals = append(added, st.reals...)

	st.nat = hasNAT(st.reals)
	if slices.ContainsFunc(st.reals, func(r *realState) bool { return r.Forward == lvs.FNAT }) {
		for _, a := range want.LocalAddrs {
			slot, err := p.laddrSlot(a, w.lim)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", want.ServiceKey, err)
			}
			st.laddrs.Slot[st.laddrs.N] = uint8(slot)
			st.laddrs.N++
			st.local = append(st.local, a)
		}
	}
	for _, r := range st.reals {
		h := w.hops[hopOf(r.Real)]
		r.nh, r.resolved = h.nh, h.resolved
		st.dests = append(st.dests, sched.Dest{Weight: r.effectiveWeight(), LastWeight: r.lastWeight})
	}
	for j, r := range mine {
		if !kept[j] || r.effectiveWeight() != wasWeight[j] {
			sp.upserts = append(sp.upserts, upsert{r: r, add: !kept[j]})
		}
	}

	sp.rewrite = old == nil || old.sched != st.sched || old.flags != st.flags || len(sp.removed) > 0 ||
		!slices.Equal(old.dests, st.dests)
	if !sp.rewrite {
		st.seq, st.states, st.loop, st.tabOff, st.tabLen = old.seq, old.states, old.loop, old.tabOff, old.tabLen
	} else {
		if old != nil {
			st.half = old.half ^ 1
		}
		if err := buildTable(sp, w); err != nil {
			return nil, fmt.Errorf("service %s: %w", want.ServiceKey, err)
		}
		off, ok := p.tabs.alloc(st.tabLen)
		if !ok {
			return nil, fmt.Errorf("service %s: no room for its scheduler table of %d entries: the data plane's pool has %d free of %d (--max-sched-entries)",
				want.ServiceKey, st.tabLen, p.tabs.size(), w.lim.tabEntries)
		}
		st.tabOff = off
	}
	standby := w.standby[st.key.Addr]
	sp.svc = svcEntry(st, standby)
	for i, r := range st.reals {
		port, ok := w.ports[r.nh.Ifindex]
		if !ok && r.nh.Ifindex > 0 {
			if port, ok = p.ports[r.nh.Ifindex]; !ok {
				free, found := freePort(w.ports, p.ports, w.lim.ifaces)
				if !found {
					return nil, fmt.Errorf("service %s: real %s: interface %d: no room in tx_ports (%d interfaces)", want.ServiceKey, r, r.nh.Ifindex, w.lim.ifaces)
				}
				port = free
				p.ports[r.nh.Ifindex] = port
			}
		}
		sp.reals = append(sp.reals, realEntry(st, i, r, port, standby, 0)) // Gen: plan fills it in
		sp.tunnels = append(sp.tunnels, tunnelEntry(r))
	}
	return sp, nil
}

// laddrSlot is local address a's slot in the laddrs map: the one it has,
// or the next free one.
func (p *applyPlan) laddrSlot(a netip.Addr, lim limits) (uint32, error) {
	if slot, ok := p.laddrAt[a]; ok {
		return slot, nil
	}
	if slot, ok := p.newLaddrs[a]; ok {
		return slot, nil
	}
	slot := uint32(len(p.laddrAt) + len(p.newLaddrs))
	if int(slot) >= min(lim.laddrs, 256) {
		return 0, fmt.Errorf("local address %s: no room: the data plane holds %d local addresses (all services', for its life)", a, min(lim.laddrs, 256))
	}
	p.newLaddrs[a] = slot
	return slot, nil
}

// realFinder finds a real in reals by address and port (-1: not there):
// by a scan for a service of a few dozen reals, by a map for more.
func realFinder(reals []dataplane.Real) func(netip.AddrPort) int {
	if len(reals) <= 64 {
		return func(k netip.AddrPort) int {
			return slices.IndexFunc(reals, func(r dataplane.Real) bool { return r.Port == k.Port() && r.Addr == k.Addr() })
		}
	}
	m := make(map[netip.AddrPort]int, len(reals))
	for j, r := range reals {
		m[netip.AddrPortFrom(r.Addr, r.Port)] = j
	}
	return func(k netip.AddrPort) int {
		if j, ok := m[k]; ok {
			return j
		}
		return -1
	}
}

// slots is a slot allocation (services', reals') as a plan changes it:
// the slots taken and freed are kept beside the allocation the plan
// started from, which is not copied (320k reals) and changes only when the
// plan is written. Slots freed are free for the next plan, not this one: a
// flow of a removed real must never meet a new real in its slot before
// the generation moves on. So while a plan is made slots are only taken,
// and the first free one only moves up: each search starts where the last
// ended (from 0 every time made a 320k-real Apply quadratic).
type slots struct {
	used         []bool
	next         int // no slot below it is free
	taken, freed []int
}

// take is the first free slot, taken, or -1.
func (s *slots) take() int {
	i := slices.Index(s.used[s.next:], false)
	if i < 0 {
		s.next = len(s.used)
		return -1
	}
	i += s.next
	s.next = i + 1
	s.taken = append(s.taken, i)
	return i
}

func (s *slots) free(i int) { s.freed = append(s.freed, i) }

// commit writes the change into the allocation and returns the slot
// below which none is free now.
func (s *slots) commit() int {
	for _, i := range s.taken {
		s.used[i] = true
	}
	next := s.next
	for _, i := range s.freed {
		s.used[i] = false
		next = min(next, i)
	}
	return next
}

// after is the allocation the change leaves, as a copy.
func (s *slots) after() []bool {
	out := slices.Clone(s.used)
	for _, i := range s.taken {
		out[i] = true
	}
	for _, i := range s.freed {
		out[i] = false
	}
	return out
}

// freePort is the first tx_ports slot neither set of ports uses.
func freePort(a, b map[int]uint16, n int) (uint16, bool) {
	used := make([]bool, n)
	for _, ports := range []map[int]uint16{a, b} {
		for _, slot := range ports {
			used[slot] = true
		}
	}
	i := slices.Index(used, false)
	return uint16(i), i >= 0
}

// buildTable computes the scheduler table IPVS's state implies: a
// sequence scheduler continues from where the live sequence has got to, as
// IPVS's would, through the change applied one operation at a time
// (replay); a bucket scheduler's buckets follow configured weights (an
// unresolved real keeps its buckets and is skipped at lookup); a scanning
// scheduler reads the list in order.
func buildTable(sp *svcPlan, w world) error {
	st, old := sp.st, sp.old
	s, _ := sched.Lookup(st.sched) // Caps.Validate let only InXDP names through
	var picks []int
	switch s.Table {
	case sched.TableSequence:
		var start sched.Sequencer
		switch {
		case old != nil && old.sched == st.sched && len(old.seq) > 0:
			start = sched.StateAt(old.seq, old.states, old.loop, w.cursors[old.slot()], old.dests)
		case old != nil:
			start = s.Start(old.dests) // the scheduler changed: init_svc over the list
		default:
			start = s.Start(nil) // the service is made empty, then filled
		}
		start = replay(sp, start)
		seq, states, loop, err := sched.Sequence(start, st.dests, schedSlots)
		if err != nil {
			return fmt.Errorf("%s: %w (the table holds %d picks: make the weights' ratio smaller)", st.sched, err, schedSlots)
		}
		picks, st.seq, st.states, st.loop = seq, seq, states, loop
	case sched.TableBuckets:
		ds := make([]sched.Dest, len(st.reals))
		for i, r := range st.reals {
			ds[i] = sched.Dest{Weight: r.Weight, Addr: r.Addr, Port: r.Port, LastWeight: r.lastWeight}
		}
		picks = s.Buckets(ds, w.geometry)
	case sched.TableScan:
		if len(st.reals) > maxScan {
			return fmt.Errorf("%s scans at most %d reals; the service has %d", st.sched, maxScan, len(st.reals))
		}
		for i := range st.reals {
			picks = append(picks, i)
		}
	default:
		return fmt.Errorf("scheduler %s has no XDP table", st.sched)
	}
	sp.table = make([]uint32, len(picks))
	for i, d := range picks {
		if d < 0 {
			sp.table[i] = noReal
		} else {
			sp.table[i] = st.reals[d].slot
		}
	}
	st.tabLen = uint32(len(picks))
	return nil
}

// replay walks the dest list through a change one IPVS operation at a
// time, in the order pkg/dataplane/ipvs and keepalived make them: in the
// order given, each new real added at the head and each kept real whose
// weight changed edited; then each removed real, in list order. The
// scheduler's add_dest/upd_dest/del_dest hook runs after each with the list
// as it is then (a new wrr service's first real alone sets its levels, for
// instance). It returns the state after the last.
func replay(sp *svcPlan, s sched.Sequencer) sched.Sequencer {
	type entry struct {
		r *realState
		w int32
	}
	var cur []entry
	if sp.old != nil {
		for i, r := range sp.old.reals {
			cur = append(cur, entry{r, sp.old.dests[i].Weight})
		}
	}
	dests := func() []sched.Dest {
		ds := make([]sched.Dest, len(cur))
		for i, e := range cur {
			ds[i] = sched.Dest{Weight: e.w}
		}
		return ds
	}
	for _, u := range sp.upserts {
		if u.add {
			cur = slices.Insert(cur, 0, entry{u.r, u.r.effectiveWeight()})
			s = s.Inserted(0, dests())
		} else {
			i := slices.IndexFunc(cur, func(e entry) bool { return e.r.slot == u.r.slot })
			cur[i].w = u.r.effectiveWeight()
			s = s.Updated(dests())
		}
	}
	for _, r := range sp.removed {
		i := slices.IndexFunc(cur, func(e entry) bool { return e.r.slot == r.slot })
		cur = slices.Delete(cur, i, i+1)
		s = s.Deleted(i, dests())
	}
	return s
}

// svcEntry is a service slot's map entry.
func svcEntry(st *svcState, standby bool) xlbSvc {
	s, _ := sched.Lookup(st.sched)
	e := xlbSvc{Id: st.idx + 1, Sched: schedID[st.sched], Flags: uint16(st.flags), TabOff: st.tabOff, TabLen: st.tabLen}
	if standby {
		e.Flags |= svcStandby
	}
	if st.sloppy {
		e.Flags |= svcSloppy
	}
	if st.persist > 0 {
		e.PersistTimeoutS = uint32(st.persist / time.Second)
		// IPv4: the netmask as the address it is; IPv6: the prefix
		// length, as IPVS keeps it.
		if st.key.Addr.Is4() {
			e.PersistMask = ip4(st.persistMask.Or(st.key.Addr).Addr4())
		} else {
			e.PersistMask = uint32(st.persistMask.Or(st.key.Addr))
		}
	}
	switch s.Table {
	case sched.TableScan:
		e.SeqLen = uint32(len(st.reals))
	case sched.TableSequence:
		e.SeqLen, e.SeqLoop = uint32(len(st.seq)), uint32(st.loop)
		if len(st.seq) > 0 {
			e.StartCursor, e.StartCw = st.states[0].Mark()
		}
	}
	return e
}

// realEntry is the map entry of real i of st, which leaves through egress
// slot port; gen is its slot's generation.
func realEntry(st *svcState, i int, r *realState, port uint16, standby bool, gen uint32) xlbReal {
	e := xlbReal{
		Addr:   addrKey(r.Addr),
		Family: family(r.Addr),
		Port:   port16(r.Port),
		Svc:    st.idx,
		Gen:    gen,
		Flags:  realPresent,
		Weight: r.Weight,
		Order:  uint32(i),

		LastWeight: r.lastWeight,
	}
	if r.nh.Ifindex > 0 {
		e.Ifindex = uint32(r.nh.Ifindex)
		e.TxPort = port
	}
	copy(e.DstMac[:], r.nh.MAC)
	copy(e.SrcMac[:], r.nh.SrcMAC)
	if r.effectiveWeight() > 0 {
		e.Flags |= realAvailable
	}
	switch r.Forward {
	case lvs.NAT:
		e.Flags |= realNAT
	case lvs.TUN:
		e.Flags |= realTUN
	case lvs.FNAT:
		e.Flags |= realNAT | realFNAT
		if st.toa {
			e.Flags |= realTOA
		}
	}
	if standby {
		e.Flags |= realStandby
	}
	return e
}

// tunnelEntry is a TUN real's entry in the tunnels map (zero for others).
func tunnelEntry(r *realState) xlbTunnel {
	if r.Forward != lvs.TUN {
		return xlbTunnel{}
	}
	t := xlbTunnel{Type: uint8(r.Tunnel.Type), Port: port16(r.Tunnel.Port), Mtu: uint16(min(r.nh.MTU, math.MaxUint16))}
	if r.nh.Src.IsValid() {
		t.Src = addrKey(r.nh.Src)
	}
	return t
}

// filterSlot is an address's slot in the address filters, as the program
// hashes it (hash_32 of addr_fold: an IPv4 address in host order, an IPv6
// one's words xored).
func (lim limits) filterSlot(a netip.Addr) uint32 {
	return sched.Hash32(sched.AddrFold(a), lim.filterBits)
}

// refs is what the services add up to, kept so that a change of one
// service costs that service's work: how many services use each VIP and
// each slot of the VIP filter, how many NAT reals each slot of the NAT
// source filter, and how many services have a scheduler table of each
// length. A plan's copy shares the VIP counts (10k services' worth) and
// keeps its own for the VIPs it changes (vipNow), settled when written.
type refs struct {
	vip, vipNow  map[netip.Addr]int
	vipSlot, nat []int32
	tabLens      map[uint32]int
}

func newRefs(lim limits) *refs {
	return &refs{vip: map[netip.Addr]int{}, vipNow: map[netip.Addr]int{}, vipSlot: make([]int32, lim.filter), nat: make([]int32, lim.filter), tabLens: map[uint32]int{}}
}

// clone is a copy for a plan to change. Called on settled refs.
func (r *refs) clone() *refs {
	return &refs{vip: r.vip, vipNow: map[netip.Addr]int{}, vipSlot: slices.Clone(r.vipSlot), nat: slices.Clone(r.nat), tabLens: maps.Clone(r.tabLens)}
}

// services is how many services use VIP a.
func (r *refs) services(a netip.Addr) int {
	if n, ok := r.vipNow[a]; ok {
		return n
	}
	return r.vip[a]
}

// settle writes the VIP counts a plan changed into the shared ones.
func (r *refs) settle() {
	for a, n := range r.vipNow {
		if n == 0 {
			delete(r.vip, a)
		} else {
			r.vip[a] = n
		}
	}
	clear(r.vipNow)
}

// add counts service s in (n = 1) or out (n = -1).
func (r *refs) add(s *svcState, n int32, lim limits) {
	r.vipNow[s.key.Addr] = r.services(s.key.Addr) + int(n)
	r.vipSlot[lim.filterSlot(s.key.Addr)] += n
	if s.nat {
		for _, rs := range s.reals {
			if rs.Forward.Translates() {
				r.nat[lim.filterSlot(rs.Addr)] += n
			}
		}
	}
	r.tabLens[s.tabLen] += int(n)
	if r.tabLens[s.tabLen] == 0 {
		delete(r.tabLens, s.tabLen)
	}
}

// largestTable is the longest scheduler table a service has.
func (r *refs) largestTable() uint32 {
	var m uint32
	for l := range r.tabLens {
		m = max(m, l)
	}
	return m
}

// filters are the VIP filter (every VIP, on standby or not: what reaches a
// BACKUP is counted before it goes to the kernel) and the NAT source
// filter (the addresses of NAT reals, and the VIPs reals are checked
// through, whose answers to the checks come from them).
func (r *refs) filters(lim limits, checked map[netip.Addr]bool) (vip, nat []uint32) {
	vip, nat = make([]uint32, lim.filter), make([]uint32, lim.filter)
	for i := range vip {
		if r.vipSlot[i] > 0 {
			vip[i] = 1
		}
		if r.nat[i] > 0 {
			nat[i] = 1
		}
	}
	for a := range checked {
		nat[lim.filterSlot(a)] = 1
	}
	return vip, nat
}

// refsOf is what t's services add up to (counted once, then kept by each
// write).
func (t *tables) refsOf(lim limits) *refs {
	if t.refs == nil {
		t.refs = newRefs(lim)
		for _, s := range t.services {
			t.refs.add(s, 1, lim)
		}
		t.refs.settle()
	}
	return t.refs
}

// hasNAT says whether any of reals forwards by NAT or FULLNAT (their
// replies come back through the director).
func hasNAT(reals []*realState) bool {
	return slices.ContainsFunc(reals, func(r *realState) bool { return r.Forward.Translates() })
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:]) // network order in memory
}

func port16(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func addrOf(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func portOf(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

func svcKeyOf(k dataplane.ServiceKey) xlbSvcKey {
	return xlbSvcKey{Vip: addrKey(k.Addr), Port: port16(k.Port), Proto: uint8(k.Protocol), Family: family(k.Addr)}
}

func vipKeyOf(a netip.Addr) xlbVipKey { return xlbVipKey{Addr: addrKey(a), Family: family(a)} }

// family is an address's family as the program's keys hold it.
func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// addrKey is a as the program's union xlb_addr holds it: an IPv4
// address in the first word (network order in memory), an IPv6 address in
// all 16 bytes.
func addrKey(a netip.Addr) xlbXlbAddr {
	var k xlbXlbAddr
	if a.Is4() {
		k.V4 = ip4(a)
		return k
	}
	*(*[16]byte)(unsafe.Pointer(&k)) = a.As16()
	return k
}

// addr is the address k holds, of the family given.
func (k xlbXlbAddr) addr(fam uint8) netip.Addr {
	if fam == unix.AF_INET6 {
		return netip.AddrFrom16(*(*[16]byte)(unsafe.Pointer(&k)))
	}
	return addrOf(k.V4)
}
