package xdp

import (
	"maps"
	"net/netip"
)

// SetStandby implements dataplane.Dataplane: it writes the standby flag of
// each service whose VIP changed (its live slot) and of its reals, in one
// batch each, and adds or removes the VIP in the vips map. Nothing is
// planned again, no next hop is waited for, no filter is rewritten: it
// takes mu only, which no lookup or sweep holds.
func (x *Dataplane) SetStandby(vips map[netip.Addr]bool) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	was := x.standby
	x.standby = maps.Clone(vips)
	var svcKeys, realKeys []uint32
	var svcVals []xlbSvc
	var realVals []xlbReal
	active := map[netip.Addr]bool{}
	for k, st := range x.state.services {
		now := vips[k.Addr]
		active[k.Addr] = !now
		if now == was[k.Addr] {
			continue
		}
		svcKeys, svcVals = append(svcKeys, st.slot()), append(svcVals, svcEntry(st, now))
		for i, r := range st.reals {
			realKeys = append(realKeys, r.slot)
			realVals = append(realVals, realEntry(st, i, r, x.ports[r.nh.Ifindex], now, x.state.realGen[r.slot]))
		}
	}
	if len(svcKeys) == 0 {
		return nil
	}
	if err := updateBatch(x.objs.Reals, realKeys, realVals); err != nil {
		return err
	}
	if err := updateBatch(x.objs.Svcs, svcKeys, svcVals); err != nil {
		return err
	}
	return x.syncVIPs(x.state, active)
}
