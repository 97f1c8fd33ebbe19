package xdp

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// HalfOpenSize is the half-open table's size for these settings: half if
// set, else a quarter of maxConns (at least 1024); 0 keeps the built-in
// size, which goes with the built-in flow table.
func HalfOpenSize(maxConns, half uint32) uint32 {
	switch {
	case half != 0:
		return half
	case maxConns != 0:
		return max(maxConns/4, 1024)
	}
	return 0
}

// defence is the flood defence as set (modes flip between 1 and 2 as
// IPVS's do) and what the last tick engaged.
type defence struct {
	set    dataplane.Defence
	engage engaged
	// The last sweep's totals.
	total xlbSweepTotal
	swept bool
}

// engaged is what one tick of the defence turns on.
type engaged struct {
	dropEntry bool
	dropRate  int
	secure    bool
}

// defenceTick is IPVS's update_defense_level (ip_vs_ctl.c) on xlb's
// measure of room: free flow-table entries against the threshold. It
// moves modes 1 and 2 as the kernel moves the sysctls.
func defenceTick(d *dataplane.Defence, room, thresh int) engaged {
	nomem := room < thresh
	var e engaged
	e.dropEntry = autoMode(&d.DropEntry, nomem)
	if autoMode(&d.DropPacket, nomem) {
		if d.DropPacket == 3 {
			e.dropRate = d.AmDropRate
		} else {
			e.dropRate = thresh / (thresh - room)
		}
	}
	e.secure = autoMode(&d.SecureTCP, nomem)
	return e
}

// autoMode moves one strategy's mode as update_defense_level does (1
// reads 2 while short of room, 2 reads 1 again once there is room) and
// says whether it is engaged: modes 2 and 3.
func autoMode(m *int, nomem bool) bool {
	switch {
	case *m == 1 && nomem:
		*m = 2
	case *m == 2 && !nomem:
		*m = 1
	}
	return *m >= 2
}

// SetDefence implements dataplane.Dataplane: the modes take effect at
// once, on the room the last sweep measured (as IPVS's sysctl handler
// updates the defence level when a mode is written).
func (x *Dataplane) SetDefence(d dataplane.Defence) error {
	if err := d.Check(); err != nil {
		return err
	}
	if d.AmDropRate == 0 {
		d.AmDropRate = dataplane.DefaultAmDropRate
	}
	if d.Threshold == 0 {
		d.Threshold = max(x.lim.conns/16, 1)
	}
	if d.Keep {
		d.DropEntry, d.DropPacket, d.SecureTCP = 0, 0, 0
	}
	x.defMu.Lock()
	defer x.defMu.Unlock()
	x.def.set = d
	return x.defendLocked()
}

// defend ticks the defence on the totals of a sweep just done.
func (x *Dataplane) defend(t xlbSweepTotal) error {
	x.defMu.Lock()
	defer x.defMu.Unlock()
	x.def.total, x.def.swept = t, true
	return x.defendLocked()
}

func (x *Dataplane) defendLocked() error {
	room := x.lim.conns - int(x.def.total.Conns)
	e := defenceTick(&x.def.set, max(room, 0), x.def.set.Threshold)
	v := xlbDefence{DropRate: uint32(e.dropRate), FloodRate: x.cfg.FloodRate}
	if e.secure {
		v.SecureTcp = 1
	}
	if e.dropEntry {
		v.DropEntry = 1
	}
	var k uint32
	if err := x.objs.DefenceState.Update(&k, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write flood defence: %w", err)
	}
	x.def.engage = e
	return nil
}

// Defence implements dataplane.Dataplane.
func (x *Dataplane) Defence() (dataplane.DefenceStatus, error) {
	x.defMu.Lock()
	defer x.defMu.Unlock()
	t := x.def.total
	return dataplane.DefenceStatus{
		Defence:     x.def.set,
		DropEntryOn: x.def.engage.dropEntry,
		DropRate:    x.def.engage.dropRate,
		SecureTCPOn: x.def.engage.secure,
		Room:        uint64(max(x.lim.conns-int(t.Conns), 0)),
		RoomOf:      uint64(x.lim.conns),
		Flows:       t.Conns,
		MaxFlows:    uint64(x.lim.conns),
		HalfOpen:    t.HalfOpen,
		MaxHalfOpen: uint64(x.lim.halfOpen),
		Dropped:     t.Dropped,
	}, nil
}
