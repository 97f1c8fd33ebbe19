package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

func countersOf(c xlbCounters) dataplane.Counters {
	return dataplane.Counters{Packets: c.Packets, Bytes: c.Bytes, Conns: c.Conns, OutPackets: c.OutPackets, OutBytes: c.OutBytes}
}

// sumCounters adds up a per-CPU counter slot.
func sumCounters(m *ebpf.Map, idx uint32) (dataplane.Counters, error) {
	var per []xlbCounters
	if err := m.Lookup(&idx, &per); err != nil {
		return dataplane.Counters{}, fmt.Errorf("read counters %d: %w", idx, err)
	}
	var c dataplane.Counters
	for _, p := range per {
		c = c.Add(countersOf(p))
	}
	return c, nil
}

// Stats implements Dataplane. Services are sorted by key, reals are in
// dest-list order.
func (x *Dataplane) Stats() (dataplane.Stats, error) {
	// applyMu keeps Apply from moving counters (a removed real's go to
	// its service) while they are read; mu is held only to copy the
	// picture, so a role flip does not wait for the reads.
	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	out := dataplane.Stats{Reasons: map[string]uint64{}, NextHopChanges: x.nextHopChanges.Load()}
	snap := x.snapshot()
	rd, err := x.countersFor(snap)
	if err != nil {
		return dataplane.Stats{}, err
	}
	out.Services = make([]dataplane.ServiceStats, 0, len(snap))
	for _, s := range snap {
		retired, err := rd.service(s.idx)
		if err != nil {
			return dataplane.Stats{}, err
		}
		ss := dataplane.ServiceStats{Counters: retired, Service: dataplane.Service{ServiceKey: s.key,
			Scheduler: s.sched, Flags: s.flags, Persistence: s.persist, PersistenceMask: s.persistMask,
			LocalAddrs: slices.Clone(s.local), TOA: s.toa},
			Reals: make([]dataplane.RealStats, 0, len(s.reals))}
		for _, r := range s.reals {
			rc, cc, err := rd.real(r.slot)
			if err != nil {
				return dataplane.Stats{}, err
			}
			ss.Counters = ss.Counters.Add(rc)
			ss.Reals = append(ss.Reals, dataplane.RealStats{Real: r.Real, Counters: rc, Resolved: r.resolved,
				ActiveConns: max(cc.Active, 0), InactConns: max(cc.Inactive, 0)})
		}
		out.Services = append(out.Services, ss)
	}
	slices.SortFunc(out.Services, func(a, b dataplane.ServiceStats) int { return compareKeys(a.ServiceKey, b.ServiceKey) })
	for i := xlbXlbStat(0); i < xlbXlbStatXLB_STAT_MAX; i++ {
		var per []uint64
		if err := x.objs.Stats.Lookup(&i, &per); err != nil {
			return dataplane.Stats{}, fmt.Errorf("read stat %d: %w", i, err)
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		out.Reasons[statName(i)] = n
	}
	return out, nil
}

// counterReader reads the counters of services and reals: a lookup each
// for a small director, the whole arrays in batches for a big one (a
// lookup per real was two syscalls each: 2 s for 320k reals).
type counterReader struct {
	x       *Dataplane
	batched bool
	svcs    []xlbCounters   // by service index
	reals   [][]xlbCounters // by real slot, per CPU
	conns   []xlbConnCounts // by real slot
}

// batchFrom is the number of reals from which the arrays are read whole
// (a variable for the test that reads both ways).
var batchFrom = 1024

func (x *Dataplane) countersFor(snap []svcState) (*counterReader, error) {
	rd := &counterReader{x: x}
	n := 0
	for _, s := range snap {
		n += len(s.reals)
	}
	if n < batchFrom {
		return rd, nil
	}
	rd.batched = true
	var err error
	if rd.svcs, err = readArray[xlbCounters](x.objs.SvcRetired, int(x.objs.SvcRetired.MaxEntries())); err != nil {
		return nil, fmt.Errorf("read service counters: %w", err)
	}
	if rd.conns, err = readArray[xlbConnCounts](x.objs.RealConns, x.lim.reals); err != nil {
		return nil, fmt.Errorf("read connection counts: %w", err)
	}
	if rd.reals, err = readPerCPU(x.objs.RealStats, x.lim.reals); err != nil {
		return nil, fmt.Errorf("read real counters: %w", err)
	}
	return rd, nil
}

func (rd *counterReader) service(idx uint32) (dataplane.Counters, error) {
	if rd.batched {
		return countersOf(rd.svcs[idx]), nil
	}
	var c xlbCounters
	if err := rd.x.objs.SvcRetired.Lookup(&idx, &c); err != nil {
		return dataplane.Counters{}, fmt.Errorf("read service counters: %w", err)
	}
	return countersOf(c), nil
}

func (rd *counterReader) real(slot uint32) (dataplane.Counters, xlbConnCounts, error) {
	if rd.batched {
		var c dataplane.Counters
		for _, p := range rd.reals[slot] {
			c = c.Add(countersOf(p))
		}
		return c, rd.conns[slot], nil
	}
	c, err := sumCounters(rd.x.objs.RealStats, slot)
	if err != nil {
		return dataplane.Counters{}, xlbConnCounts{}, err
	}
	var cc xlbConnCounts
	if err := rd.x.objs.RealConns.Lookup(&slot, &cc); err != nil {
		return dataplane.Counters{}, xlbConnCounts{}, fmt.Errorf("read connection counts: %w", err)
	}
	return c, cc, nil
}

// readPerCPU reads the first n entries of a per-CPU array of counters,
// each entry's values by CPU, in batches where the kernel has them.
func readPerCPU(m *ebpf.Map, n int) ([][]xlbCounters, error) {
	cpus := ebpf.MustPossibleCPU()
	out := make([][]xlbCounters, n)
	keys, flat := make([]uint32, n), make([]xlbCounters, n*cpus)
	var cursor ebpf.MapBatchCursor
	count, err := m.BatchLookup(&cursor, keys, flat, nil)
	if (err == nil || errors.Is(err, ebpf.ErrKeyNotExist)) && count == n {
		for i := range n {
			out[keys[i]] = flat[i*cpus : (i+1)*cpus]
		}
		return out, nil
	}
	if err != nil && !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, err
	}
	for i := range uint32(n) {
		if err := m.Lookup(&i, &out[i]); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return out, nil
}

func statName(s xlbXlbStat) string {
	switch s {
	case xlbXlbStatXLB_STAT_FRAGMENT:
		return "fragment"
	case xlbXlbStatXLB_STAT_TRUNCATED:
		return "truncated"
	case xlbXlbStatXLB_STAT_NO_DEST:
		return "no_dest"
	case xlbXlbStatXLB_STAT_DEST_GONE:
		return "dest_gone"
	case xlbXlbStatXLB_STAT_NOT_SYN:
		return "not_syn"
	case xlbXlbStatXLB_STAT_RETIRING:
		return "retiring"
	case xlbXlbStatXLB_STAT_NAT_REPLY:
		return "nat_reply"
	case xlbXlbStatXLB_STAT_NAT_REPLY_KERNEL:
		return "nat_reply_kernel"
	case xlbXlbStatXLB_STAT_STANDBY:
		return "standby"
	case xlbXlbStatXLB_STAT_DEFENCE_DROP:
		return "defence_drop"
	case xlbXlbStatXLB_STAT_PROMOTED:
		return "promoted"
	case xlbXlbStatXLB_STAT_TUN_FRAG_NEEDED:
		return "tun_frag_needed"
	case xlbXlbStatXLB_STAT_TUN_TOO_BIG:
		return "tun_too_big"
	case xlbXlbStatXLB_STAT_CHECK_REPLY:
		return "check_reply"
	case xlbXlbStatXLB_STAT_FLOOD_STATELESS:
		return "flood_stateless"
	case xlbXlbStatXLB_STAT_FNAT_NO_PORT:
		return "fnat_no_port"
	case xlbXlbStatXLB_STAT_NAT64UDP_NO_CSUM:
		return "nat64_udp_no_csum"
	case xlbXlbStatXLB_STAT_NAT64ICMP_DROP:
		return "nat64_icmp_drop"
	}
	return fmt.Sprintf("stat_%d", s)
}

func compareKeys(a, b dataplane.ServiceKey) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	return int(a.Protocol) - int(b.Protocol)
}

// monotonicNow is bpf_ktime_get_ns's clock.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// Conns implements Dataplane: the live entries of the connection table.
// It reads only the maps: a flow whose real an Apply is removing at the
// same moment may be listed or not.
func (x *Dataplane) Conns() ([]dataplane.Conn, error) {
	now := monotonicNow()
	// The reals once, and the flows in batches: a lookup per flow was a
	// syscall per flow (seconds at a million).
	reals := make([]xlbReal, x.lim.reals)
	if err := readBatches(x.objs.Reals, make([]uint32, x.lim.reals), reals, func(int) {}); err != nil {
		return nil, fmt.Errorf("read reals: %w", err)
	}
	// Size the result once: the reals' connection counts say about how
	// many flows there are (regrowing a slice of a million was most of the
	// listing's time).
	counts := make([]xlbConnCounts, x.lim.reals)
	hint := 0
	if err := readBatches(x.objs.RealConns, make([]uint32, x.lim.reals), counts, func(i int) {
		hint += int(max(counts[i].Active, 0) + max(counts[i].Inactive, 0))
	}); err != nil {
		return nil, fmt.Errorf("read connection counts: %w", err)
	}
	out := make([]dataplane.Conn, 0, hint+hint/8)
	keys, vals := make([]xlbConnKey, 4096), make([]xlbConn, 4096)
	add := func(proto uint8, client, virtual netip.AddrPort, v *xlbConn) {
		r := liveReal(reals, v.Real, v.Gen)
		if r == nil || v.Retired != 0 || expired(now, v.LastSeen, v.TimeoutS) {
			return
		}
		age, ttl := time.Duration(max(now, v.LastSeen)-v.LastSeen), time.Duration(v.TimeoutS)*time.Second
		out = append(out, dataplane.Conn{
			State:    stateName(v.State),
			Protocol: lvs.Protocol(proto),
			Client:   client,
			Virtual:  virtual,
			Real:     netip.AddrPortFrom(r.Addr.addr(r.Family), portOf(r.Port)),
			Expires:  (ttl - age).Truncate(time.Second),
		})
	}
	each := func(i int) {
		k := &keys[i]
		add(k.Proto, netip.AddrPortFrom(addrOf(k.Src), portOf(k.Sport)), netip.AddrPortFrom(addrOf(k.Dst), portOf(k.Dport)), &vals[i])
	}
	// Proven flows, then half-open ones (IPVS lists both in one table).
	// A flow promoted while the listing reads may show twice or not at
	// all, as any flow may that moves while a table is read.
	err := x.each4(keys, vals, func(k *xlbConnKey, v *xlbConn) {
		add(k.Proto, netip.AddrPortFrom(addrOf(k.Src), portOf(k.Sport)), netip.AddrPortFrom(addrOf(k.Dst), portOf(k.Dport)), v)
	})
	if err == nil {
		err = readBatches(x.objs.HalfOpen, keys, vals, each)
	}
	if err != nil {
		return nil, fmt.Errorf("read connections: %w", err)
	}
	// IPv6 flows, from their own tables.
	keys6 := make([]xlbConnKey6, len(keys))
	each6 := func(i int) {
		k := &keys6[i]
		add(k.Proto, netip.AddrPortFrom(addr6(k.Src), portOf(k.Sport)), netip.AddrPortFrom(addr6(k.Dst), portOf(k.Dport)), &vals[i])
	}
	for _, m := range []*ebpf.Map{x.objs.Conns6, x.objs.HalfOpen6} {
		if err := readBatches(m, keys6, vals, each6); err != nil {
			return nil, fmt.Errorf("read IPv6 connections: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b dataplane.Conn) int { return a.Client.Compare(b.Client) })
	return out, nil
}

// addr6 is an IPv6 address as a flow key holds it (network order).
func addr6(w [4]uint32) netip.Addr {
	var b [16]byte
	for i, v := range w {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return netip.AddrFrom16(b)
}

// words6 is addr6 the other way.
func words6(a netip.Addr) [4]uint32 {
	b := a.As16()
	var w [4]uint32
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}

// readBatches reads a whole map len(keys) entries at a time, calling each
// with the index in keys/vals of every entry read.
func readBatches[K, V any](m *ebpf.Map, keys []K, vals []V, each func(i int)) error {
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			each(i)
		}
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			return nil // the end
		case err != nil:
			return err
		case n == 0:
			return nil
		}
	}
}

// stateName is IPVS's name of a connection state, as ipvsadm -Lc shows it.
func stateName(s uint8) string {
	names := [...]string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
		"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("STATE_%d", s)
}

// snapshot copies the services and their reals, for reading the maps
// without holding mu.
func (x *Dataplane) snapshot() []svcState {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]svcState, 0, len(x.state.services))
	for _, s := range x.state.services {
		c := *s
		c.reals = make([]*realState, len(s.reals))
		for i, r := range s.reals {
			rc := *r
			c.reals[i] = &rc
		}
		out = append(out, c)
	}
	return out
}
