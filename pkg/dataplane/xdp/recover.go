package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// recovered is what a restarted control plane finds in pinned maps.
type recovered struct {
	t       *tables
	standby map[netip.Addr]bool
	ports   map[int]uint16 // tx_ports slot by ifindex
}

// readArray reads the first n entries of an array map, in batches where
// the kernel has them (one syscall per entry for 320k reals took a
// second).
func readArray[V any](m *ebpf.Map, n int) ([]V, error) {
	keys, out := make([]uint32, n), make([]V, n)
	var cursor ebpf.MapBatchCursor
	count, err := m.BatchLookup(&cursor, keys, out, nil)
	switch {
	case (err == nil || errors.Is(err, ebpf.ErrKeyNotExist)) && count == n:
		return out, nil
	case err != nil && !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, ebpf.ErrKeyNotExist):
		return nil, err
	}
	for i := range uint32(n) {
		if err := m.Lookup(&i, &out[i]); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return out, nil
}

// recoverTables rebuilds the control plane's picture from pinned maps, so
// that a restarted process continues where the last one stopped: the
// services and reals, their scheduler sequences (regenerated from the
// state stored with them), the standby flags and the egress slots.
func recoverTables(objs *xlbObjects, lim limits, log *slog.Logger) (*recovered, error) {
	rec := &recovered{t: newTables(lim), standby: map[netip.Addr]bool{}, ports: map[int]uint16{}}
	t := rec.t
	// Read every real slot once; services pick theirs from this.
	entries, err := readArray[xlbReal](objs.Reals, lim.reals)
	if err != nil {
		return nil, fmt.Errorf("read reals: %w", err)
	}
	for i := range entries {
		t.realGen[i] = entries[i].Gen
		// A slot that never served a real is all zeros, and so are its
		// counters (the program counts only for live reals).
		t.realDirty[i] = entries[i] != xlbReal{}
	}
	for i := range uint32(lim.ifaces) {
		var v uint32
		err := objs.TxPorts.Lookup(&i, &v)
		switch {
		case err == nil && v != 0:
			rec.ports[int(v)] = uint16(i)
		case err != nil && !errors.Is(err, ebpf.ErrKeyNotExist):
			return nil, fmt.Errorf("read tx_ports: %w", err)
		}
	}
	var vip xlbVipKey
	var one uint32
	vit := objs.Vips.Iterate()
	for vit.Next(&vip, &one) {
		t.vips[vip.Addr.addr(vip.Family)] = true
	}
	if err := vit.Err(); err != nil {
		return nil, fmt.Errorf("read vips: %w", err)
	}
	// Local addresses keep their slots: flows hold them.
	laddrs, err := readArray[xlbLaddr](objs.Laddrs, int(objs.Laddrs.MaxEntries()))
	if err != nil {
		return nil, fmt.Errorf("read local addresses: %w", err)
	}
	for i, l := range laddrs {
		if l.Family != 0 {
			t.laddrAt[l.Addr.addr(l.Family)] = uint32(i)
		}
	}
	var key xlbSvcKey
	var slot uint32
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
			key:  dataplane.ServiceKey{Addr: key.Vip.addr(key.Family), Port: portOf(key.Port), Protocol: lvs.Protocol(key.Proto)},
			idx:  s.Id - 1,
			half: slot & 1,
		}
		for name, id := range schedID {
			if id == s.Sched {
				st.sched = name
			}
		}
		st.flags = lvs.SvcFlags(s.Flags &^ (svcStandby | svcSloppy))
		st.sloppy = s.Flags&svcSloppy != 0
		if s.Flags&svcStandby != 0 {
			rec.standby[st.key.Addr] = true
		}
		if s.PersistTimeoutS != 0 {
			st.persist = time.Duration(s.PersistTimeoutS) * time.Second
			b := binary.NativeEndian.AppendUint32(nil, s.PersistMask) // network order in memory
			st.persistMask = lvs.Netmask(binary.BigEndian.Uint32(b))
			if !st.key.Addr.Is4() {
				st.persistMask = lvs.Netmask(s.PersistMask) // a prefix length
			}
		}
		t.svcUsed[st.idx] = true
		if err := objs.SvcLaddrs.Lookup(&st.idx, &st.laddrs); err != nil {
			return nil, fmt.Errorf("service %s: read its local addresses: %w", st.key, err)
		}
		for _, slot := range st.laddrs.Slot[:min(int(st.laddrs.N), len(st.laddrs.Slot))] {
			if int(slot) < len(laddrs) && laddrs[slot].Family != 0 {
				st.local = append(st.local, laddrs[slot].Addr.addr(laddrs[slot].Family))
			}
		}
		st.tabOff, st.tabLen = s.TabOff, s.TabLen
		if !t.tabs.take(st.tabOff, st.tabLen) {
			return nil, fmt.Errorf("service %s: its scheduler table [%d, +%d) is outside the pool or shared", st.key, st.tabOff, st.tabLen)
		}
		for i := range uint32(lim.reals) {
			e := &entries[i]
			if e.Flags&realPresent == 0 || e.Svc != st.idx {
				continue
			}
			t.realUsed[i] = true
			r := &realState{
				Real:       dataplane.Real{Addr: e.Addr.addr(e.Family), Port: portOf(e.Port), Weight: e.Weight, Forward: lvs.DR},
				slot:       i,
				lastWeight: e.LastWeight,
				nh:         NextHop{Ifindex: int(e.Ifindex), MAC: slices.Clone(e.DstMac[:]), SrcMAC: slices.Clone(e.SrcMac[:])},
			}
			r.resolved = e.DstMac != [6]byte{}
			switch {
			case e.Flags&realFNAT != 0:
				r.Forward = lvs.FNAT
				st.toa = st.toa || e.Flags&realTOA != 0
			case e.Flags&realNAT != 0:
				r.Forward = lvs.NAT
			case e.Flags&realTUN != 0:
				var tun xlbTunnel
				if err := objs.Tunnels.Lookup(&i, &tun); err != nil {
					return nil, fmt.Errorf("read the tunnel of real slot %d: %w", i, err)
				}
				r.Forward = lvs.TUN
				r.Tunnel = lvs.Tunnel{Type: lvs.TunnelType(tun.Type), Port: portOf(tun.Port)}
				r.nh.Src, r.nh.MTU = tun.Src.addr(family(r.Addr)), int(tun.Mtu)
			}
			st.reals = append(st.reals, r)
		}
		slices.SortFunc(st.reals, func(a, b *realState) int {
			return int(entries[a.slot].Order) - int(entries[b.slot].Order)
		})
		st.nat = hasNAT(st.reals)
		for _, r := range st.reals {
			st.dests = append(st.dests, sched.Dest{Weight: r.effectiveWeight(), LastWeight: r.lastWeight})
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
	return rec, nil
}

// regenerate recomputes the live sequence of a sequence scheduler from the
// start state stored with it.
func regenerate(st *svcState, s xlbSvc) error {
	sc, ok := sched.Lookup(st.sched)
	if !ok || sc.Table != sched.TableSequence {
		return nil
	}
	var err error
	st.seq, st.states, st.loop, err = sched.Sequence(sc.Resume(st.dests, s.StartCursor, s.StartCw), st.dests, schedSlots)
	if err != nil {
		return err
	}
	if uint32(len(st.seq)) != s.SeqLen || uint32(st.loop) != s.SeqLoop {
		return fmt.Errorf("regenerated sequence has %d picks (loop %d), the map has %d (loop %d)", len(st.seq), st.loop, s.SeqLen, s.SeqLoop)
	}
	return nil
}
