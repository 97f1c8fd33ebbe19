package xdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Sizes compiled into the BPF object (bpf/xlb_consts.h). The map specs are
// the source of truth; a test checks these against them.
const (
	maxServices = 256
	maxReals    = 4096
	maxIfaces   = 64
	maxScan     = 256

	vipFilterBits = 12
	vipFilterSize = 1 << vipFilterBits
	schedSlots    = 4096
	noReal        = 0xffffffff
)

// Values of enum xlb_sched and enum xlb_real_flags (bpf/xlb_structs.h).
const (
	schedRR  = 1
	schedWRR = 2
	schedSH  = 3
	schedDH  = 4
	schedLC  = 5
	schedWLC = 6
	schedSED = 7
	schedNQ  = 8

	realAvailable = 1 << 0
	realPresent   = 1 << 1
	realNAT       = 1 << 2
	realStandby   = 1 << 3
	svcStandby    = 0x8000 // XLB_SVC_F_STANDBY, beside the SchedFlags
)

var schedulers = map[string]uint8{
	"rr": schedRR, "wrr": schedWRR, "sh": schedSH, "dh": schedDH,
	"lc": schedLC, "wlc": schedWLC, "sed": schedSED, "nq": schedNQ,
}

// tables is the control plane's picture of what is in the maps.
type tables struct {
	services map[dataplane.ServiceKey]*svcState
	svcUsed  [maxServices]bool
	realUsed [maxReals]bool
	realGen  [maxReals]uint32
	desired  []dataplane.Service
}

type svcState struct {
	key         dataplane.ServiceKey
	idx         uint32
	half        uint32
	sched       string
	flags       lvs.SvcFlags
	persist     time.Duration
	persistMask int
	standby     bool
	reals       []*realState

	// The live rr/wrr sequence, for finding where IPVS's state is now.
	dests  []sched.Dest
	seq    []int
	rr     []sched.RR
	wrr    []sched.WRR
	loop   int
	tabLen uint32
}

func (s *svcState) slot() uint32 { return s.idx*2 + s.half }

type realState struct {
	dataplane.Real
	slot     uint32
	nh       NextHop
	resolved bool
	warned   bool // logged as unresolved
}

func (r *realState) effectiveWeight() int32 {
	if !r.resolved {
		return 0
	}
	return r.Weight
}

func (t *tables) unresolved() bool {
	for _, s := range t.services {
		for _, r := range s.reals {
			if !r.resolved {
				return true
			}
		}
	}
	return false
}

// Caps is what the XDP data plane forwards: the schedulers the program
// computes (pkg/sched's registry entries with an XDP table), DR and NAT,
// IPv4 TCP and UDP.
var Caps = dataplane.Caps{
	Name:       "the XDP data plane",
	Schedulers: sched.Names(sched.InXDP),
	Forwards:   []lvs.Forward{lvs.DR, lvs.NAT},
	Protocols:  []lvs.Protocol{lvs.TCP, lvs.UDP},
	Flags:      lvs.SchedFlags,
}

// Caps implements dataplane.Dataplane.
func (x *Dataplane) Caps() dataplane.Caps { return Caps }

// plan is what Apply will write for one service.
type upsert struct {
	r   *realState
	add bool
}

type plan struct {
	st      *svcState // new state (replaces the old on success)
	old     *svcState
	removed []*realState
	// upserts are the new reals and the kept reals whose weight changed,
	// in the order given: the operations IPVS sees before the removals.
	upserts []upsert
	rewrite bool // scheduler table must be rewritten (else reals only)
	table   []uint32
	svc     xlbSvc
}

func (x *Dataplane) applyLocked(services []dataplane.Service, wait time.Duration) error {
	if err := Caps.Validate(services); err != nil {
		return err
	}
	t := x.state
	// Work on copies of the allocation bitmaps so that nothing is taken
	// before everything is known to fit.
	svcUsed, realUsed := t.svcUsed, t.realUsed
	var plans []*plan
	for _, want := range services {
		p, err := x.planService(t.services[want.ServiceKey], want, &svcUsed, &realUsed, wait)
		if err != nil {
			return err
		}
		plans = append(plans, p)
	}
	var gone []*svcState
	for k, s := range t.services {
		if !slices.ContainsFunc(services, func(w dataplane.Service) bool { return w.ServiceKey == k }) {
			gone = append(gone, s)
		}
	}

	for _, p := range plans {
		if err := x.writePlan(p); err != nil {
			return fmt.Errorf("service %s: %w (the data plane may hold part of this change; apply again)", p.st.key, err)
		}
		t.services[p.st.key] = p.st
		for _, r := range p.removed {
			t.realGen[r.slot]++
		}
	}
	for _, s := range gone {
		if err := x.removeService(s); err != nil {
			return fmt.Errorf("remove service %s: %w", s.key, err)
		}
		delete(t.services, s.key)
		for _, r := range s.reals {
			t.realGen[r.slot]++
		}
	}
	t.svcUsed, t.realUsed = svcUsed, realUsed
	for _, s := range gone {
		t.svcUsed[s.idx] = false
		for _, r := range s.reals {
			t.realUsed[r.slot] = false
		}
	}
	for _, p := range plans {
		for _, r := range p.removed {
			t.realUsed[r.slot] = false
		}
	}
	t.desired = slices.Clone(services)
	return x.syncVIPs()
}

func (x *Dataplane) planService(old *svcState, want dataplane.Service, svcUsed *[maxServices]bool, realUsed *[maxReals]bool, wait time.Duration) (*plan, error) {
	st := &svcState{key: want.ServiceKey, sched: want.Scheduler, flags: want.Flags,
		persist: want.Persistence, persistMask: want.PersistenceMask, standby: x.standby[want.Addr]}
	p := &plan{st: st, old: old}
	if old != nil {
		st.idx, st.half = old.idx, old.half
	} else {
		i := slices.Index(svcUsed[:], false)
		if i < 0 {
			return nil, fmt.Errorf("service %s: no room: the data plane holds %d services", want.ServiceKey, maxServices)
		}
		svcUsed[i] = true
		st.idx = uint32(i)
	}

	// IPVS dest-list order: existing reals keep their places, new ones go
	// in front of them (below).
	byAddr := map[netip.AddrPort]dataplane.Real{}
	for _, r := range want.Reals {
		byAddr[netip.AddrPortFrom(r.Addr, r.Port)] = r
	}
	if old != nil {
		for _, r := range old.reals {
			w, ok := byAddr[netip.AddrPortFrom(r.Addr, r.Port)]
			if !ok {
				p.removed = append(p.removed, r)
				continue
			}
			nr := *r
			nr.Real = w
			st.reals = append(st.reals, &nr)
			delete(byAddr, netip.AddrPortFrom(r.Addr, r.Port))
		}
	}
	var added []*realState
	for _, r := range want.Reals {
		if _, ok := byAddr[netip.AddrPortFrom(r.Addr, r.Port)]; !ok {
			continue
		}
		i := slices.Index(realUsed[:], false)
		if i < 0 {
			return nil, fmt.Errorf("service %s: real %s: no room: the data plane holds %d reals", want.ServiceKey, r, maxReals)
		}
		realUsed[i] = true
		added = append(added, &realState{Real: r, slot: uint32(i)})
	}
	// The kernel adds a dest at the head of the list (list_add_rcu in
	// __ip_vs_update_dest): new reals go in front, the last added first.
	isNew := map[*realState]bool{}
	for _, r := range added {
		isNew[r] = true
	}
	slices.Reverse(added)
	st.reals = append(added, st.reals...)

	x.resolveAll(st, wait)
	for _, r := range st.reals {
		st.dests = append(st.dests, sched.Dest{Weight: r.effectiveWeight()})
	}
	was := map[netip.AddrPort]int32{}
	if old != nil {
		for i, r := range old.reals {
			was[netip.AddrPortFrom(r.Addr, r.Port)] = old.dests[i].Weight
		}
	}
	now := make(map[netip.AddrPort]*realState, len(st.reals))
	for _, r := range st.reals {
		now[netip.AddrPortFrom(r.Addr, r.Port)] = r
	}
	for _, w := range want.Reals {
		k := netip.AddrPortFrom(w.Addr, w.Port)
		r := now[k]
		if r == nil {
			continue
		}
		if wt, kept := was[k]; isNew[r] || (kept && r.effectiveWeight() != wt) {
			p.upserts = append(p.upserts, upsert{r: r, add: isNew[r]})
		}
	}

	p.rewrite = old == nil || old.sched != st.sched || old.flags != st.flags || len(p.removed) > 0 ||
		!slices.Equal(old.dests, st.dests)
	if !p.rewrite {
		st.seq, st.rr, st.wrr, st.loop, st.tabLen = old.seq, old.rr, old.wrr, old.loop, old.tabLen
		p.svc = x.svcEntry(st)
		return p, nil
	}
	if old != nil {
		st.half = old.half ^ 1
	}
	if err := x.buildTable(p); err != nil {
		return nil, fmt.Errorf("service %s: %w", want.ServiceKey, err)
	}
	p.svc = x.svcEntry(st)
	return p, nil
}

// resolveAll resolves a service's reals. Resolution of a new neighbour takes
// an ARP round trip: wait a little for it before calling a real unresolved.
func (x *Dataplane) resolveAll(st *svcState, wait time.Duration) {
	for _, r := range st.reals {
		x.resolve(st.key, r, wait == 0)
	}
	deadline := time.Now().Add(wait)
	for {
		// Decide once per round whether this is the last, so that an
		// unresolved real is always reported on the last round.
		last := !time.Now().Before(deadline)
		pending := false
		for _, r := range st.reals {
			if !r.resolved {
				x.resolve(st.key, r, last)
				pending = pending || !r.resolved
			}
		}
		if !pending || last {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// resolve finds a real's next hop, logging only changes. A real that had a
// MAC keeps it while the neighbour entry is merely missing (XDP traffic does
// not keep the kernel's entry fresh, and it has been asked to re-resolve);
// it loses it when its route goes away or stops being on-link.
func (x *Dataplane) resolve(key dataplane.ServiceKey, r *realState, final bool) {
	was := r.resolved
	nh, err := x.cfg.Resolver.Resolve(r.Addr)
	if err != nil {
		if was && errors.Is(err, ErrUnresolved) && nh.Ifindex == r.nh.Ifindex {
			return
		}
		r.resolved = false
		if !final {
			return
		}
		if was || !r.warned {
			x.log.Warn("real has no next hop; it gets no new flows until it resolves", "service", key.String(), "real", r.String(), "reason", err)
			r.warned = true
		}
		if nh.Ifindex != 0 {
			r.nh = nh
		}
		return
	}
	r.warned = false
	if !was || !bytes.Equal(nh.MAC, r.nh.MAC) {
		x.log.Info("real resolved", "service", key.String(), "real", r.String(), "mac", nh.MAC.String(), "ifindex", nh.Ifindex)
	}
	r.nh, r.resolved = nh, true
}

// buildTable computes the scheduler table IPVS's state implies: rr/wrr
// continue from where the live sequence has got to, as IPVS's cursor would,
// through the change applied one operation at a time (replay).
func (x *Dataplane) buildTable(p *plan) error {
	st, old := p.st, p.old
	var picks []int
	switch st.sched {
	case "rr":
		start := sched.RR{Cursor: -1}
		if old != nil && old.sched == "rr" && len(old.seq) > 0 {
			n, err := x.cursor(old.slot())
			if err != nil {
				return err
			}
			start = sched.RRStateAt(old.seq, old.rr, old.loop, n, old.dests)
		}
		replay(p, start.Inserted, start.Deleted, func([]sched.Dest) {})
		seq, states, loop, err := sched.RRSequence(start, st.dests, schedSlots)
		if err != nil {
			return err
		}
		picks, st.seq, st.rr, st.loop = seq, seq, states, loop
	case "wrr":
		var start sched.WRR
		if old != nil && old.sched == "wrr" && len(old.seq) > 0 {
			n, err := x.cursor(old.slot())
			if err != nil {
				return err
			}
			start = sched.WRRStateAt(old.seq, old.wrr, old.loop, n, old.dests)
		} else if old != nil {
			start = sched.NewWRR(old.dests) // the scheduler changed to wrr: init_svc
		} else {
			start = sched.NewWRR(nil) // the service is made empty, then filled
		}
		replay(p, func(int) {}, func(int) {}, start.Changed)
		seq, states, loop, err := sched.WRRSequence(start, st.dests, schedSlots)
		if err != nil {
			return fmt.Errorf("wrr: %w (the table holds %d picks: make the weights' ratio smaller)", err, schedSlots)
		}
		picks, st.seq, st.wrr, st.loop = seq, seq, states, loop
	case "sh":
		ds := make([]sched.Dest, len(st.reals))
		for i, r := range st.reals {
			// The buckets follow configured weights, as IPVS fills them;
			// an unresolved real's buckets are skipped at lookup.
			ds[i] = sched.Dest{Weight: r.Weight}
		}
		tab := sched.SHTable(ds)
		picks = tab[:]
	case "dh":
		tab := sched.DHTable(st.dests)
		picks = tab[:]
	default: // lc, wlc, sed, nq scan the dest list in order
		if len(st.reals) > maxScan {
			return fmt.Errorf("%s scans at most %d reals; the service has %d", st.sched, maxScan, len(st.reals))
		}
		for i := range st.reals {
			picks = append(picks, i)
		}
	}
	p.table = make([]uint32, len(picks))
	for i, d := range picks {
		if d < 0 {
			p.table[i] = noReal
		} else {
			p.table[i] = st.reals[d].slot
		}
	}
	st.tabLen = uint32(len(picks))
	return nil
}

// replay walks the dest list through a plan's change one IPVS operation
// at a time, in the order ipvsdp and keepalived make them: in the order
// given, each new real added at the head and each kept real whose weight
// changed edited; then each removed real, in list order. The kernel runs the
// scheduler's add_dest/upd_dest/del_dest hook after each, with the list as
// it is then: rr moves its cursor's index (inserted, deleted), wrr's
// dest_changed sees every intermediate list (changed) — a new service's
// first real alone sets its gcd and top level, for instance.
func replay(p *plan, inserted, deleted func(int), changed func([]sched.Dest)) {
	type entry struct {
		r *realState
		w int32
	}
	var cur []entry
	if p.old != nil {
		for i, r := range p.old.reals {
			cur = append(cur, entry{r, p.old.dests[i].Weight})
		}
	}
	dests := func() []sched.Dest {
		ds := make([]sched.Dest, len(cur))
		for i, e := range cur {
			ds[i] = sched.Dest{Weight: e.w}
		}
		return ds
	}
	for _, u := range p.upserts {
		if u.add {
			cur = slices.Insert(cur, 0, entry{u.r, u.r.effectiveWeight()})
			inserted(0)
		} else {
			i := slices.IndexFunc(cur, func(e entry) bool { return e.r.slot == u.r.slot })
			cur[i].w = u.r.effectiveWeight()
		}
		changed(dests())
	}
	for _, r := range p.removed {
		i := slices.IndexFunc(cur, func(e entry) bool { return e.r.slot == r.slot })
		cur = slices.Delete(cur, i, i+1)
		deleted(i)
		changed(dests())
	}
}

func (x *Dataplane) svcEntry(st *svcState) xlbSvc {
	e := xlbSvc{Id: st.idx + 1, Sched: schedulers[st.sched], Flags: uint16(st.flags)}
	if st.standby {
		e.Flags |= svcStandby
	}
	if st.persist > 0 {
		n := st.persistMask
		if n == 0 {
			n = 32
		}
		e.PersistTimeoutS = uint32(st.persist / time.Second)
		e.PersistMask = ip4(netip.PrefixFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), n).Masked().Addr())
	}
	switch st.sched {
	case "lc", "wlc", "sed", "nq":
		e.SeqLen = uint32(len(st.reals))
	case "rr", "wrr":
		e.SeqLen, e.SeqLoop = uint32(len(st.seq)), uint32(st.loop)
		if len(st.seq) > 0 {
			switch st.sched {
			case "rr":
				e.StartCursor = int32(st.rr[0].Cursor)
			case "wrr":
				e.StartCursor, e.StartCw = int32(st.wrr[0].Cursor), st.wrr[0].CW
			}
		}
	}
	return e
}

func (x *Dataplane) cursor(slot uint32) (uint64, error) {
	var n uint64
	if err := x.objs.SchedCursor.Lookup(&slot, &n); err != nil {
		return 0, fmt.Errorf("read scheduler cursor: %w", err)
	}
	return n, nil
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
	return xlbSvcKey{Vip: ip4(k.Addr), Port: port16(k.Port), Proto: uint8(k.Protocol)}
}

func (x *Dataplane) realEntry(st *svcState, i int, r *realState) (xlbReal, error) {
	e := xlbReal{
		Addr:   ip4(r.Addr),
		Port:   port16(r.Port),
		Svc:    st.idx,
		Gen:    x.state.realGen[r.slot],
		Flags:  realPresent,
		Weight: r.Weight,
		Order:  uint32(i),
	}
	if r.nh.Ifindex > 0 {
		e.Ifindex = uint32(r.nh.Ifindex)
		port, err := x.txPort(r.nh.Ifindex)
		if err != nil {
			return e, err
		}
		e.TxPort = port
	}
	copy(e.DstMac[:], r.nh.MAC)
	copy(e.SrcMac[:], r.nh.SrcMAC)
	if r.effectiveWeight() > 0 {
		e.Flags |= realAvailable
	}
	if r.Forward == lvs.NAT {
		e.Flags |= realNAT
	}
	if st.standby {
		e.Flags |= realStandby
	}
	return e, nil
}

func (x *Dataplane) writePlan(p *plan) error {
	st, m := p.st, &x.objs.xlbMaps
	for i, r := range st.reals {
		isNew := p.old == nil || !slices.ContainsFunc(p.old.reals, func(o *realState) bool { return o.slot == r.slot })
		if isNew {
			if err := zeroCounters(m.RealStats, r.slot); err != nil {
				return err
			}
			var zero xlbConnCounts
			if err := m.RealConns.Update(&r.slot, &zero, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("reset connection counts: %w", err)
			}
		}
		e, err := x.realEntry(st, i, r)
		if err != nil {
			return err
		}
		if err := m.Reals.Update(&r.slot, &e, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write real %s: %w", r, err)
		}
	}
	slot := st.slot()
	if p.rewrite {
		if err := writeTable(m.SchedTab, slot, p.table); err != nil {
			return err
		}
		var zero uint64
		if err := m.SchedCursor.Update(&slot, &zero, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("reset scheduler cursor: %w", err)
		}
	}
	if p.old == nil {
		var zero xlbCounters
		if err := m.SvcRetired.Update(&st.idx, &zero, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("reset service counters: %w", err)
		}
	}
	if err := m.Svcs.Update(&slot, &p.svc, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write service slot: %w", err)
	}
	key := svcKeyOf(st.key)
	if err := m.SvcMap.Update(&key, &slot, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write service map: %w", err)
	}
	for _, r := range p.removed {
		if err := x.retire(st.idx, r.slot); err != nil {
			return err
		}
		if err := x.freeReal(r.slot); err != nil {
			return err
		}
	}
	return nil
}

// retire moves a removed real's counters into its service's, so that the
// service's totals do not go down when a real leaves.
func (x *Dataplane) retire(svcIdx, slot uint32) error {
	rc, err := sumCounters(x.objs.RealStats, slot)
	if err != nil {
		return err
	}
	var c xlbCounters
	if err := x.objs.SvcRetired.Lookup(&svcIdx, &c); err != nil {
		return fmt.Errorf("read service counters: %w", err)
	}
	sum := countersOf(c).Add(rc)
	c.Packets, c.Bytes, c.Conns, c.OutPackets, c.OutBytes = sum.Packets, sum.Bytes, sum.Conns, sum.OutPackets, sum.OutBytes
	if err := x.objs.SvcRetired.Update(&svcIdx, &c, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write service counters: %w", err)
	}
	return nil
}

func writeTable(m *ebpf.Map, slot uint32, table []uint32) error {
	keys := make([]uint32, len(table))
	for i := range table {
		keys[i] = slot*schedSlots + uint32(i)
	}
	if len(keys) == 0 {
		return nil
	}
	if _, err := m.BatchUpdate(keys, table, nil); err != nil {
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("write scheduler table: %w", err)
		}
		for i := range keys {
			if err := m.Update(&keys[i], &table[i], ebpf.UpdateAny); err != nil {
				return fmt.Errorf("write scheduler table: %w", err)
			}
		}
	}
	return nil
}

func zeroCounters(m *ebpf.Map, idx uint32) error {
	zero := make([]xlbCounters, ebpf.MustPossibleCPU())
	if err := m.Update(&idx, zero, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("reset counters %d: %w", idx, err)
	}
	return nil
}

// freeReal marks a real slot empty. Flows still pointing at it see a
// different generation and are dropped (IPVS expire_nodest_conn=0).
func (x *Dataplane) freeReal(slot uint32) error {
	e := xlbReal{Gen: x.state.realGen[slot] + 1}
	if err := x.objs.Reals.Update(&slot, &e, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("free real slot %d: %w", slot, err)
	}
	return nil
}

func (x *Dataplane) removeService(s *svcState) error {
	key := svcKeyOf(s.key)
	if err := x.objs.SvcMap.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	for half := range uint32(2) {
		slot, zero := s.idx*2+half, xlbSvc{}
		if err := x.objs.Svcs.Update(&slot, &zero, ebpf.UpdateAny); err != nil {
			return err
		}
	}
	for _, r := range s.reals {
		if err := x.freeReal(r.slot); err != nil {
			return err
		}
	}
	return nil
}

func (x *Dataplane) syncVIPs() error {
	// The filter passes standby VIPs too, so that what reaches a BACKUP
	// is counted (stat standby) before it goes to the kernel; the vips
	// map, which claims fragments and ICMP, holds only active ones.
	want := map[uint32]bool{}
	filter := make([]uint32, vipFilterSize)
	for k, s := range x.state.services {
		if !s.standby {
			want[ip4(k.Addr)] = true
		}
		filter[sched.Hash32(binary.BigEndian.Uint32(k.Addr.AsSlice()), vipFilterBits)] = 1
	}
	var k, v uint32
	var stale []uint32
	it := x.objs.Vips.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read vips: %w", err)
	}
	for _, k := range stale {
		if err := x.objs.Vips.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove vip: %w", err)
		}
	}
	one := uint32(1)
	for k := range want {
		if err := x.objs.Vips.Update(&k, &one, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("add vip: %w", err)
		}
	}
	if err := writeFilter(x.objs.VipFilter, filter); err != nil {
		return err
	}
	nat := make([]uint32, vipFilterSize)
	for _, s := range x.state.services {
		for _, r := range s.reals {
			if r.Forward == lvs.NAT && !s.standby {
				nat[sched.Hash32(binary.BigEndian.Uint32(r.Addr.AsSlice()), vipFilterBits)] = 1
			}
		}
	}
	return writeFilter(x.objs.NatSrcFilter, nat)
}

// writeFilter sets the new slots of an address filter before clearing old
// ones, so an address never reads as absent while the filter changes.
func writeFilter(m *ebpf.Map, filter []uint32) error {
	for i, v := range filter {
		if v == 0 {
			continue
		}
		k := uint32(i)
		if err := m.Update(&k, &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write address filter: %w", err)
		}
	}
	for i, v := range filter {
		if v != 0 {
			continue
		}
		k := uint32(i)
		if err := m.Update(&k, &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write address filter: %w", err)
		}
	}
	return nil
}

// recoverTables rebuilds the control plane's picture from pinned maps, so
// that a restarted process continues where the last one stopped.
func recoverTables(objs *xlbObjects, log *slog.Logger) (*tables, error) {
	t := &tables{services: map[dataplane.ServiceKey]*svcState{}}
	var slot uint32
	// Read every real slot once; services pick theirs from this.
	entries := make([]xlbReal, maxReals)
	for i := range uint32(maxReals) {
		if err := objs.Reals.Lookup(&i, &entries[i]); err != nil {
			return nil, fmt.Errorf("read real %d: %w", i, err)
		}
		t.realGen[i] = entries[i].Gen
	}
	var key xlbSvcKey
	it := objs.SvcMap.Iterate()
	for it.Next(&key, &slot) {
		var s xlbSvc
		if err := objs.Svcs.Lookup(&slot, &s); err != nil {
			return nil, fmt.Errorf("read service slot %d: %w", slot, err)
		}
		if s.Id == 0 {
			continue
		}
		st := &svcState{
			key:  dataplane.ServiceKey{Addr: addrOf(key.Vip), Port: portOf(key.Port), Protocol: lvs.Protocol(key.Proto)},
			idx:  s.Id - 1,
			half: slot & 1,
		}
		for name, v := range schedulers {
			if v == s.Sched {
				st.sched = name
			}
		}
		st.flags = lvs.SvcFlags(s.Flags &^ svcStandby)
		st.standby = s.Flags&svcStandby != 0
		if s.PersistTimeoutS != 0 {
			st.persist = time.Duration(s.PersistTimeoutS) * time.Second
			st.persistMask = bits.OnesCount32(s.PersistMask)
		}
		t.svcUsed[st.idx] = true
		for i := range uint32(maxReals) {
			e := &entries[i]
			if e.Flags&realPresent == 0 || e.Svc != st.idx {
				continue
			}
			t.realUsed[i] = true
			r := &realState{
				Real: dataplane.Real{Addr: addrOf(e.Addr), Port: portOf(e.Port), Weight: e.Weight, Forward: lvs.DR},
				slot: i,
				nh:   NextHop{Ifindex: int(e.Ifindex), MAC: slices.Clone(e.DstMac[:]), SrcMAC: slices.Clone(e.SrcMac[:])},
			}
			r.resolved = e.DstMac != [6]byte{}
			if e.Flags&realNAT != 0 {
				r.Forward = lvs.NAT
			}
			st.reals = append(st.reals, r)
		}
		slices.SortFunc(st.reals, func(a, b *realState) int {
			return int(entries[a.slot].Order) - int(entries[b.slot].Order)
		})
		for _, r := range st.reals {
			st.dests = append(st.dests, sched.Dest{Weight: r.effectiveWeight()})
		}
		if err := regenerate(st, s); err != nil {
			log.Warn("cannot continue the pinned scheduler state; the next change restarts its sequence", "service", st.key.String(), "reason", err)
			st.seq = nil
		}
		t.services[st.key] = st
		log.Info("took over pinned service", "service", st.key.String(), "reals", len(st.reals))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	return t, nil
}

// regenerate recomputes the live rr/wrr sequence from the start state
// stored with it.
func regenerate(st *svcState, s xlbSvc) error {
	var err error
	switch st.sched {
	case "rr":
		st.seq, st.rr, st.loop, err = sched.RRSequence(sched.RR{Cursor: int(s.StartCursor)}, st.dests, schedSlots)
	case "wrr":
		w := sched.NewWRR(st.dests)
		w.Cursor, w.CW = int(s.StartCursor), s.StartCw
		st.seq, st.wrr, st.loop, err = sched.WRRSequence(w, st.dests, schedSlots)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	if uint32(len(st.seq)) != s.SeqLen || uint32(st.loop) != s.SeqLoop {
		return fmt.Errorf("regenerated sequence has %d picks (loop %d), the map has %d (loop %d)", len(st.seq), st.loop, s.SeqLen, s.SeqLoop)
	}
	st.tabLen = s.SeqLen
	return nil
}
