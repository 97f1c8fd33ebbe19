package daemon

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
)

// A VIPOwner decides which of some VIPs this director serves now: VRRP
// (pkg/vrrpd) for the addresses its instances name; later a BGP speaker or
// a connection-sync gate. A VIP it governs is served only while it says
// the VIP is active here; a VIP no owner governs is always served. The
// owner reports its active set through the function the daemon gave it at
// construction (an ActiveFunc), synchronously and in order around its own
// actions: before it adds a VIP to the host, and after it removes one.
type VIPOwner interface {
	// Governs says which VIPs of cfg the owner decides about. It has no
	// side effects: the daemon asks before loading cfg.
	Governs(cfg *config.Config) map[netip.Addr]bool
	// Load starts the owner on cfg, or reloads it.
	Load(cfg *config.Config)
	// Status adds the owner's part to a status report.
	Status(st *control.Status)
	// Stop withdraws every VIP the owner holds (and says so).
	Stop()
}

// ActiveFunc is how a VIP owner says which of its VIPs are active here. It
// returns at once: it writes flags in the data plane, nothing more.
type ActiveFunc func(active map[netip.Addr]bool)

// vipSeats keeps each owner's governed and active VIPs and turns them into
// the standby set: governed by some owner, and not active by that owner.
type vipSeats struct {
	mu       sync.Mutex
	governed []map[netip.Addr]bool // by owner index
	active   []map[netip.Addr]bool
	// apply is told the standby set whenever it may have changed.
	apply func(standby map[netip.Addr]bool)
	// held are VIPs a taken-over data plane was serving: they stay served
	// until an owner reports them active or the hold ends (hold).
	held map[netip.Addr]bool
}

// hold keeps VIPs served for d although no owner reports them active yet:
// a director restarted after a crash takes over a data plane that was
// serving them as MASTER, and its VRRP instances start in BACKUP (as
// keepalived's do) for three advert intervals before they can be MASTER
// again. Forwarding stops only if that time passes and the owner has not
// made them active (another router is master). A VIP an owner reports
// active leaves the hold.
func (s *vipSeats) hold(vips map[netip.Addr]bool, d time.Duration) {
	if len(vips) == 0 {
		return
	}
	s.mu.Lock()
	s.held = maps.Clone(vips)
	s.apply(s.standbyLocked())
	s.mu.Unlock()
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.held != nil {
			s.held = nil
			s.apply(s.standbyLocked())
		}
	})
}

func newSeats(owners int, apply func(map[netip.Addr]bool)) *vipSeats {
	return &vipSeats{governed: make([]map[netip.Addr]bool, owners), active: make([]map[netip.Addr]bool, owners), apply: apply}
}

// activeFunc is the ActiveFunc of owner i.
func (s *vipSeats) activeFunc(i int) ActiveFunc {
	return func(active map[netip.Addr]bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.active[i] = maps.Clone(active)
		for vip := range active {
			delete(s.held, vip)
		}
		s.apply(s.standbyLocked())
	}
}

// govern sets what each owner governs (a configuration is about to load),
// and returns what they governed before.
func (s *vipSeats) govern(governed []map[netip.Addr]bool) (was []map[netip.Addr]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was = slices.Clone(s.governed)
	copy(s.governed, governed)
	s.apply(s.standbyLocked())
	return was
}

func (s *vipSeats) standbyLocked() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for i, g := range s.governed {
		for vip := range g {
			if !s.active[i][vip] && !s.held[vip] {
				out[vip] = true
			}
		}
	}
	return out
}

// ownedOnce refuses a VIP two owners would govern (VRRP's instances and
// the BGP speaker), naming the instance that holds it: owner 0 is VRRP,
// owner 1 BGP.
func ownedOnce(cfg *config.Config, governed []map[netip.Addr]bool) error {
	if len(governed) < 2 {
		return nil
	}
	var list config.ErrorList
	for _, in := range cfg.Instances {
		for _, ip := range slices.Concat(in.VirtualIPs, in.ExcludedVirtualIPs) {
			vip := ip.Prefix.Addr()
			if governed[0][vip] && governed[1][vip] {
				list = append(list, &config.ParseError{File: in.Pos.File, Line: in.Pos.Line, Word: vip.String(),
					Msg: fmt.Sprintf("vrrp_instance %s holds a VIP the BGP speaker announces too (--bgp-config): a VIP is VRRP's or BGP's; take it out of the instance, or out of --bgp-vips", in.Name)})
			}
		}
	}
	if len(list) > 0 {
		return list
	}
	return nil
}
