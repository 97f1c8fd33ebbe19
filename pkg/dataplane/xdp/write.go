package xdp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// write carries out a plan: new egress slots, then each service (its
// reals, table, slot, the slot flip, its removed reals), the services that
// went, the address filters and the VIPs. t follows what has been written.
// Called with x.mu held.
func (x *Dataplane) write(t *tables, p *applyPlan) (err error) {
	m := &x.objs.xlbMaps
	defer func() {
		if err != nil {
			t.refs = nil // counted again from what t holds
		}
	}()
	for ifindex, slot := range p.ports {
		k, v := uint32(slot), uint32(ifindex)
		if err := m.TxPorts.Update(&k, &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("add interface %d to tx_ports: %w", ifindex, err)
		}
		x.ports[ifindex] = slot
	}
	// New local addresses, before any service names their slots.
	for a, slot := range p.newLaddrs {
		e := xlbLaddr{Addr: addrKey(a), Family: family(a)}
		if err := m.Laddrs.Update(&slot, &e, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write local address %s: %w", a, err)
		}
		t.laddrAt[a] = slot
	}
	for _, sp := range p.services {
		if !sp.same() {
			if err := x.writeService(t, sp); err != nil {
				return fmt.Errorf("service %s: %w (the data plane may hold part of this change; apply again)", sp.st.key, err)
			}
		}
		sp.st.wrote, sp.st.written, sp.st.writtenReals, sp.st.writtenTunnels = true, sp.svc, sp.reals, sp.tunnels
		sp.st.writtenLaddrs = sp.st.laddrs
		t.services[sp.st.key] = sp.st
		for _, r := range sp.removed {
			t.realGen[r.slot]++
		}
	}
	for _, s := range p.gone {
		if err := x.removeService(t, s); err != nil {
			return fmt.Errorf("remove service %s: %w", s.key, err)
		}
		delete(t.services, s.key)
		for _, r := range s.reals {
			t.realGen[r.slot]++
		}
	}
	t.svcFree, t.realFree, t.tabs = p.svcs.commit(), p.reals.commit(), p.tabs
	if err := writeFilter(m.VipFilter, t.vipFilter, p.vipFilter); err != nil {
		return err
	}
	t.vipFilter = p.vipFilter
	if err := writeFilter(m.NatSrcFilter, t.natFilter, p.natFilter); err != nil {
		return err
	}
	t.natFilter = p.natFilter
	p.refs.settle()
	t.refs = p.refs
	return x.syncVIPs(t, p.vips)
}

func (x *Dataplane) writeService(t *tables, sp *svcPlan) error {
	st, m := sp.st, &x.objs.xlbMaps
	slots := make([]uint32, len(st.reals))
	var dirty []uint32
	for i, r := range st.reals {
		slots[i] = r.slot
		if sp.old == nil || !slices.ContainsFunc(sp.old.reals, func(o *realState) bool { return o.slot == r.slot }) {
			if t.realDirty[r.slot] {
				dirty = append(dirty, r.slot)
			}
			t.realDirty[r.slot] = true // it counts from now on
		}
	}
	// A slot that served a real before starts from zero.
	if err := zeroCounters(m.RealStats, dirty...); err != nil {
		return err
	}
	if err := updateBatch(m.RealConns, dirty, make([]xlbConnCounts, len(dirty))); err != nil {
		return fmt.Errorf("reset connection counts: %w", err)
	}
	// A TUN real's tunnel is there before the real says TUN.
	var tslots []uint32
	var tuns []xlbTunnel
	for i, r := range st.reals {
		if r.Forward == lvs.TUN {
			tslots, tuns = append(tslots, r.slot), append(tuns, sp.tunnels[i])
		}
	}
	if len(tslots) > 0 {
		if err := updateBatch(m.Tunnels, tslots, tuns); err != nil {
			return fmt.Errorf("write tunnels: %w", err)
		}
	}
	// So are a FULLNAT service's local addresses.
	if sp.old == nil || st.laddrs != sp.old.writtenLaddrs || !sp.old.wrote {
		if err := m.SvcLaddrs.Update(&st.idx, &st.laddrs, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write local addresses: %w", err)
		}
	}
	if err := updateBatch(m.Reals, slots, sp.reals); err != nil {
		return fmt.Errorf("write reals: %w", err)
	}
	slot := st.slot()
	if sp.rewrite {
		keys := make([]uint32, len(sp.table))
		for i := range sp.table {
			keys[i] = st.tabOff + uint32(i)
		}
		if err := updateBatch(m.SchedTab, keys, sp.table); err != nil {
			return fmt.Errorf("write scheduler table: %w", err)
		}
		var zero uint64
		if err := m.SchedCursor.Update(&slot, &zero, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("reset scheduler cursor: %w", err)
		}
	}
	if sp.old == nil {
		var zero xlbCounters
		if err := m.SvcRetired.Update(&st.idx, &zero, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("reset service counters: %w", err)
		}
	}
	if err := m.Svcs.Update(&slot, &sp.svc, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write service slot: %w", err)
	}
	// A hash map's update replaces the element whole: new flows find the
	// new slot from here on.
	key := svcKeyOf(st.key)
	if err := m.SvcMap.Update(&key, &slot, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write service map: %w", err)
	}
	for _, r := range sp.removed {
		if err := x.retire(st.idx, r.slot); err != nil {
			return err
		}
		if err := x.freeReal(t, r.slot); err != nil {
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

// zeroCounters zeroes the per-CPU counters of the slots idx, in one
// syscall where the kernel has batch updates.
func zeroCounters(m *ebpf.Map, idx ...uint32) error {
	if len(idx) == 0 {
		return nil
	}
	cpus := ebpf.MustPossibleCPU()
	_, err := m.BatchUpdate(idx, make([]xlbCounters, len(idx)*cpus), nil)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("reset counters: %w", err)
	}
	zero := make([]xlbCounters, cpus)
	for _, i := range idx {
		if err := m.Update(&i, zero, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("reset counters %d: %w", i, err)
		}
	}
	return nil
}

// freeReal marks a real slot empty. Flows still pointing at it see a
// different generation and are dropped (IPVS expire_nodest_conn=0).
func (x *Dataplane) freeReal(t *tables, slot uint32) error {
	e := xlbReal{Gen: t.realGen[slot] + 1}
	if err := x.objs.Reals.Update(&slot, &e, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("free real slot %d: %w", slot, err)
	}
	return nil
}

func (x *Dataplane) removeService(t *tables, s *svcState) error {
	key := svcKeyOf(s.key)
	if err := x.objs.SvcMap.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	var none xlbLaddrSet
	if err := x.objs.SvcLaddrs.Update(&s.idx, &none, ebpf.UpdateAny); err != nil {
		return err
	}
	for half := range uint32(2) {
		slot, zero := s.idx*2+half, xlbSvc{}
		if err := x.objs.Svcs.Update(&slot, &zero, ebpf.UpdateAny); err != nil {
			return err
		}
	}
	for _, r := range s.reals {
		if err := x.freeReal(t, r.slot); err != nil {
			return err
		}
	}
	return nil
}

// syncVIPs makes the vips map hold the VIPs of want that are to be there
// (VIP -> it has services and is active) and not those that are not, in a
// batch of additions and one of removals; VIPs want does not name stay as
// they are. t.vips is what the map holds. The map is read only for what
// has no ports (fragments, ICMP) and for NAT traffic whose flow is gone,
// so it may lag a flag write by a syscall.
func (x *Dataplane) syncVIPs(t *tables, want map[netip.Addr]bool) error {
	var add, del []xlbVipKey
	var added, deleted []netip.Addr
	for a, there := range want {
		switch {
		case there && !t.vips[a]:
			add, added = append(add, vipKeyOf(a)), append(added, a)
		case !there && t.vips[a]:
			del, deleted = append(del, vipKeyOf(a)), append(deleted, a)
		}
	}
	ones := make([]uint32, len(add))
	for i := range ones {
		ones[i] = 1
	}
	if err := updateBatch(x.objs.Vips, add, ones); err != nil {
		return fmt.Errorf("add vips: %w", err)
	}
	for _, a := range added {
		t.vips[a] = true
	}
	if err := deleteBatch(x.objs.Vips, del); err != nil {
		return fmt.Errorf("remove vips: %w", err)
	}
	for _, a := range deleted {
		delete(t.vips, a)
	}
	return nil
}

// writeFilter writes the slots of an address filter that differ from
// what was written before (all of them when was is nil): the set ones
// first, then the cleared ones, so that an address never reads as absent
// while the filter changes.
func writeFilter(m *ebpf.Map, was, now []uint32) error {
	var set, clear []uint32
	for i, v := range now {
		if was != nil && was[i] == v {
			continue
		}
		if v != 0 {
			set = append(set, uint32(i))
		} else {
			clear = append(clear, uint32(i))
		}
	}
	for _, keys := range [][]uint32{set, clear} {
		vals := make([]uint32, len(keys))
		for i, k := range keys {
			vals[i] = now[k]
		}
		if err := updateBatch(m, keys, vals); err != nil {
			return fmt.Errorf("write address filter: %w", err)
		}
	}
	return nil
}

// updateBatch writes keys[i] = vals[i] in one syscall where the kernel has
// batch updates for the map (arrays and hashes: 5.6), one per element
// where it has not.
func updateBatch[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := m.BatchUpdate(keys, vals, nil)
	if err == nil || !errors.Is(err, ebpf.ErrNotSupported) {
		return err
	}
	for i := range keys {
		if err := m.Update(&keys[i], &vals[i], ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return nil
}

// deleteBatch deletes keys (absent ones are no error), in one syscall
// where the kernel has batch deletes.
func deleteBatch[K any](m *ebpf.Map, keys []K) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := m.BatchDelete(keys, nil)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}
