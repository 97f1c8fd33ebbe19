package xdp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Health checks through the data path (check_via_vip; bpf/check.h). A
// checker connects to the real's own address with the socket mark
// CheckTarget gave it; xlb_tc_check sends its packets to the VIP as a
// client's reach the real, and xlb_xdp gives the real's answers back the
// real's address. So a DR real that lost the VIP on lo, or a TUN real its
// tunnel, fails its check as it fails its clients.

const (
	checkMark    = uint32(0x786c0000) // XLB_CHECK_MARK
	checkKindDR  = 0
	checkKindTUN = 1
)

// checkKey is what a check target stands for: the same real of the same
// VIP checked by several checkers (or services) shares one.
type checkKey struct {
	vip, real netip.Addr
	fwd       lvs.Forward
	tun       lvs.Tunnel
}

type checkEntry struct {
	id   uint32
	refs int
}

// checks are the registered check targets (Dataplane.checkMu).
type checks struct {
	byKey map[checkKey]*checkEntry
	used  map[uint32]bool
	next  uint32
	// vips are the VIPs checked through, by count: their replies' source
	// is in the NAT source filter, where xlb_xdp looks for them.
	vips map[netip.Addr]int
}

var _ dataplane.CheckRouter = (*Dataplane)(nil)

// CheckTarget implements dataplane.CheckRouter: the socket mark for the
// checks of real r of service svc through the data path, and the function
// to call when they stop.
func (x *Dataplane) CheckTarget(svc dataplane.ServiceKey, r dataplane.Real) (uint32, func(), error) {
	if err := dataplane.CheckThrough(svc, r); err != nil {
		return 0, nil, err
	}
	if r.Forward != lvs.DR && r.Forward != lvs.TUN {
		return 0, nil, fmt.Errorf("a %s real is checked at its own address: checks through the data path cover DR and TUN reals", r.Forward.Kind())
	}
	// The checks must leave where xlb_tc_check runs: elsewhere they would
	// reach the real's own address unchanged, and pass for a real its
	// clients cannot reach.
	hooked := map[int]bool{}
	for _, a := range x.links {
		if a.check != nil {
			hooked[a.ifindex] = true
		}
	}
	if len(hooked) == 0 {
		return 0, nil, errors.New("no interface has the tc egress program (see the warning at attach)")
	}
	x.hops.mu.Lock()
	h := x.hops.m[hopOf(r)]
	x.hops.mu.Unlock()
	if h != nil && h.nh.Ifindex != 0 && !hooked[h.nh.Ifindex] {
		return 0, nil, fmt.Errorf("the real is reached by interface %d, where xlb has no tc egress program (xlb run --interface)", h.nh.Ifindex)
	}
	k := checkKey{vip: svc.Addr, real: r.Addr, fwd: r.Forward}
	if r.Forward == lvs.TUN {
		k.tun = r.Tunnel
	}
	x.checkMu.Lock()
	defer x.checkMu.Unlock()
	c := &x.checks
	if c.byKey == nil {
		c.byKey, c.used, c.vips = map[checkKey]*checkEntry{}, map[uint32]bool{}, map[netip.Addr]int{}
	}
	e := c.byKey[k]
	if e == nil {
		id, ok := c.freeID(uint32(x.objs.CheckTargets.MaxEntries()))
		if !ok {
			return 0, nil, fmt.Errorf("no room: %d reals are checked through the data path already", len(c.used))
		}
		t := xlbCheckTarget{Real: addrKey(r.Addr), Vip: addrKey(svc.Addr), Kind: checkKindDR, Family: family(r.Addr)}
		if r.Forward == lvs.TUN {
			t.Kind, t.TunType, t.TunPort = checkKindTUN, uint8(r.Tunnel.Type), port16(r.Tunnel.Port)
		}
		if err := x.objs.CheckTargets.Update(&id, &t, ebpf.UpdateAny); err != nil {
			return 0, nil, fmt.Errorf("write check target: %w", err)
		}
		if c.vips[svc.Addr] == 0 {
			if err := x.checkVIP(svc.Addr); err != nil {
				_ = x.objs.CheckTargets.Delete(&id)
				return 0, nil, err
			}
		}
		e = &checkEntry{id: id}
		c.byKey[k], c.used[id] = e, true
		c.vips[svc.Addr]++
	}
	e.refs++
	released := false
	return checkMark | e.id, func() {
		x.checkMu.Lock()
		defer x.checkMu.Unlock()
		if released {
			return
		}
		released = true
		if e.refs--; e.refs > 0 {
			return
		}
		_ = x.objs.CheckTargets.Delete(&e.id)
		delete(c.byKey, k)
		delete(c.used, e.id)
		if c.vips[k.vip]--; c.vips[k.vip] <= 0 {
			delete(c.vips, k.vip) // its filter slot goes at the next Apply
		}
	}, nil
}

// freeID is an unused id in [1, max).
func (c *checks) freeID(max uint32) (uint32, bool) {
	if max > 1<<16 {
		max = 1 << 16
	}
	for range max {
		c.next++
		if c.next >= max {
			c.next = 1
		}
		if !c.used[c.next] {
			return c.next, true
		}
	}
	return 0, false
}

// checkVIP puts vip in the NAT source filter now; the next Apply's plan
// keeps it there while it is checked through (checkedVIPs). It takes no
// other lock than checkMu, held by the caller: Apply takes mu, then
// checkMu.
func (x *Dataplane) checkVIP(vip netip.Addr) error {
	k := x.lim.filterSlot(vip)
	one := uint32(1)
	if err := x.objs.NatSrcFilter.Update(&k, &one, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write the source filter: %w", err)
	}
	return nil
}

// checkedVIPs are the VIPs checked through now, for the planner.
func (x *Dataplane) checkedVIPs() map[netip.Addr]bool {
	x.checkMu.Lock()
	defer x.checkMu.Unlock()
	out := make(map[netip.Addr]bool, len(x.checks.vips))
	for v := range x.checks.vips {
		out[v] = true
	}
	return out
}
