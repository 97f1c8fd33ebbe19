package xdp

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// IPVS's default timeouts by connection state, in seconds
// (ip_vs_proto_tcp.c tcp_timeouts, ip_vs_proto_udp.c), indexed by enum
// xlb_ct_state.
var defaultTimeouts = [xlbXlbCtStateXLB_CT_MAX]uint32{
	xlbXlbCtStateXLB_CT_NONE:        2,
	xlbXlbCtStateXLB_CT_ESTABLISHED: 900,
	xlbXlbCtStateXLB_CT_SYN_SENT:    120,
	xlbXlbCtStateXLB_CT_SYN_RECV:    60,
	xlbXlbCtStateXLB_CT_FIN_WAIT:    120,
	xlbXlbCtStateXLB_CT_TIME_WAIT:   120,
	xlbXlbCtStateXLB_CT_CLOSE:       10,
	xlbXlbCtStateXLB_CT_CLOSE_WAIT:  60,
	xlbXlbCtStateXLB_CT_LAST_ACK:    30,
	xlbXlbCtStateXLB_CT_LISTEN:      120,
	xlbXlbCtStateXLB_CT_SYNACK:      120,
	xlbXlbCtStateXLB_CT_UDP:         300,
}

// initTimeouts writes IPVS's defaults into a fresh timeouts map; a map
// taken over from a running data plane keeps what it has.
func (x *Dataplane) initTimeouts() error {
	var v uint32
	k := xlbXlbCtStateXLB_CT_ESTABLISHED
	if err := x.objs.Timeouts.Lookup(&k, &v); err != nil {
		return fmt.Errorf("read timeouts: %w", err)
	}
	if v != 0 {
		return nil
	}
	for i, t := range defaultTimeouts {
		k := xlbXlbCtState(i)
		if err := x.objs.Timeouts.Update(&k, &t, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write timeouts: %w", err)
		}
	}
	return nil
}

// SetTimeouts implements Dataplane (ipvsadm --set tcp tcpfin udp).
func (x *Dataplane) SetTimeouts(t dataplane.Timeouts) error {
	set := []struct {
		d time.Duration
		s xlbXlbCtState
	}{{t.TCP, xlbXlbCtStateXLB_CT_ESTABLISHED}, {t.TCPFin, xlbXlbCtStateXLB_CT_FIN_WAIT}, {t.UDP, xlbXlbCtStateXLB_CT_UDP}}
	for _, c := range set {
		if c.d != 0 && (c.d < time.Second || c.d > 100*24*time.Hour) {
			return fmt.Errorf("timeout %v out of range (1 s to 100 days)", c.d)
		}
	}
	for _, c := range set {
		if c.d == 0 {
			continue
		}
		v := uint32(c.d / time.Second)
		if err := x.objs.Timeouts.Update(&c.s, &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write timeouts: %w", err)
		}
	}
	// The next packet of every flow re-arms it with the new timeout, as
	// IPVS's does: none may go by a hint that skips the re-arm.
	return x.forgetFlowHints()
}

// Timeouts implements Dataplane.
func (x *Dataplane) Timeouts() (dataplane.Timeouts, error) {
	get := func(s xlbXlbCtState) (time.Duration, error) {
		var v uint32
		if err := x.objs.Timeouts.Lookup(&s, &v); err != nil {
			return 0, fmt.Errorf("read timeouts: %w", err)
		}
		return time.Duration(v) * time.Second, nil
	}
	var t dataplane.Timeouts
	var err1, err2, err3 error
	t.TCP, err1 = get(xlbXlbCtStateXLB_CT_ESTABLISHED)
	t.TCPFin, err2 = get(xlbXlbCtStateXLB_CT_FIN_WAIT)
	t.UDP, err3 = get(xlbXlbCtStateXLB_CT_UDP)
	return t, errors.Join(err1, err2, err3)
}

// Sweep ends expired flows, taking them off their reals' ActiveConn and
// InActConn as IPVS does at expiry, and corrects the counts of reals whose
// flows the LRU evicted. It measures the flow table's room, on which the
// flood defence then moves (IPVS's defense_work, every second too). xlb runs it every SweepInterval; the counts are
// then at most that stale for expiries, and evictions are corrected at the
// first sweep during which the real's counts did not move.
func (x *Dataplane) Sweep() error {
	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	// Synced flows' counts first: the sweep compares the counts with the
	// flows it sees.
	if err := x.flushAdjustLocked(); err != nil {
		return err
	}
	var used []uint32
	for _, s := range x.snapshot() {
		for _, r := range s.reals {
			used = append(used, r.slot)
		}
	}
	var zero xlbSweepCount
	before := make([]xlbConnCounts, len(used))
	for i, slot := range used {
		if err := x.objs.SweepCounts.Update(&slot, &zero, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("reset sweep counts: %w", err)
		}
		if err := x.objs.RealConns.Lookup(&slot, &before[i]); err != nil {
			return fmt.Errorf("read connection counts: %w", err)
		}
	}
	if _, err := x.objs.XlbSweep.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		return fmt.Errorf("run sweeper: %w", err)
	}
	var k uint32
	var total xlbSweepTotal
	if err := x.objs.SweepTotals.Lookup(&k, &total); err != nil {
		return fmt.Errorf("read sweep totals: %w", err)
	}
	if err := x.defend(total); err != nil {
		return err
	}
	adjust := false
	for i, slot := range used {
		var sw xlbSweepCount
		var after xlbConnCounts
		if err := x.objs.SweepCounts.Lookup(&slot, &sw); err != nil {
			return fmt.Errorf("read sweep counts: %w", err)
		}
		if err := x.objs.RealConns.Lookup(&slot, &after); err != nil {
			return fmt.Errorf("read connection counts: %w", err)
		}
		// Only the sweep itself moved this real's counts, and none of its
		// flows moved between the tables while it walked them: the
		// counts can be compared with the flows it saw.
		quiet := after.Active == before[i].Active-sw.DecActive && after.Inactive == before[i].Inactive-sw.DecInactive && sw.Moved == 0
		if !quiet || (after.Active == sw.Active && after.Inactive == sw.Inactive) {
			continue
		}
		d := xlbConnCounts{Active: sw.Active - after.Active, Inactive: sw.Inactive - after.Inactive}
		if err := x.objs.ConnAdjust.Update(&slot, &d, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write count correction: %w", err)
		}
		adjust = true
	}
	if adjust {
		if _, err := x.objs.XlbAdjust.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
			return fmt.Errorf("run count correction: %w", err)
		}
	}
	return nil
}
