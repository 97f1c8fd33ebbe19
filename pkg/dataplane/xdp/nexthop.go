package xdp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/nlretry"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

// NextHop is where DR sends a real's frames: out of Ifindex, from SrcMAC to
// MAC.
type NextHop struct {
	Ifindex int
	MAC     net.HardwareAddr
	SrcMAC  net.HardwareAddr
}

// ErrUnresolved means the real's MAC is not in the neighbour table yet.
// Resolution has been asked for; the real gets no new flows meanwhile.
var ErrUnresolved = errors.New("next hop not resolved")

// Resolver finds the next hop of a real.
type Resolver interface {
	Resolve(addr netip.Addr) (NextHop, error)
}

// NeighResolver resolves reals through the kernel's routing and neighbour
// tables (netlink). A real must be on a directly connected network: DR only
// rewrites MACs.
type NeighResolver struct {
	// Handle is the netlink socket to use (its network namespace); the
	// calling thread's namespace if nil.
	Handle *netlink.Handle
}

func (n NeighResolver) Resolve(addr netip.Addr) (NextHop, error) {
	h := n.Handle
	if h == nil {
		h = &netlink.Handle{}
	}
	ip := net.IP(addr.AsSlice())
	routes, err := h.RouteGet(ip)
	if err != nil {
		return NextHop{}, fmt.Errorf("route to real %s: %w", addr, err)
	}
	if len(routes) == 0 {
		return NextHop{}, fmt.Errorf("route to real %s: no route", addr)
	}
	rt := routes[0]
	if rt.Gw != nil {
		return NextHop{}, fmt.Errorf("real %s is reached through gateway %s: DR needs the real on a directly connected network", addr, rt.Gw)
	}
	lnk, err := h.LinkByIndex(rt.LinkIndex)
	if err != nil {
		return NextHop{}, fmt.Errorf("link %d of real %s: %w", rt.LinkIndex, addr, err)
	}
	nh := NextHop{Ifindex: rt.LinkIndex, SrcMAC: lnk.Attrs().HardwareAddr}
	neighs, err := nlretry.Dump(func() ([]netlink.Neigh, error) { return h.NeighList(rt.LinkIndex, unix.AF_INET) })
	if err != nil {
		return nh, fmt.Errorf("neighbours of %s: %w", lnk.Attrs().Name, err)
	}
	for _, ne := range neighs {
		if !ne.IP.Equal(ip) || len(ne.HardwareAddr) != 6 {
			continue
		}
		if ne.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
			nh.MAC = ne.HardwareAddr
			return nh, nil
		}
	}
	// NTF_USE makes the kernel send an ARP request as if a packet were
	// waiting for this neighbour.
	err = h.NeighSet(&netlink.Neigh{
		LinkIndex: rt.LinkIndex,
		Family:    unix.AF_INET,
		IP:        ip,
		State:     netlink.NUD_INCOMPLETE,
		Flags:     netlink.NTF_USE,
	})
	if err != nil {
		return nh, fmt.Errorf("%w: real %s on %s (asking for resolution: %v)", ErrUnresolved, addr, lnk.Attrs().Name, err)
	}
	return nh, fmt.Errorf("%w: real %s on %s", ErrUnresolved, addr, lnk.Attrs().Name)
}

// hop is what is known of a real's next hop.
type hop struct {
	nh       NextHop
	resolved bool
	warned   bool // logged as unresolved
}

// hops caches next hops by real address. Apply fills it for new reals
// (netlink I/O, waiting a little for ARP) before it plans; the resolve loop
// keeps it fresh; the planner and a role flip only read it.
type hops struct {
	mu sync.Mutex
	m  map[netip.Addr]*hop
}

// snapshot is the cache as the planner reads it.
func (h *hops) snapshot() map[netip.Addr]hop {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[netip.Addr]hop, len(h.m))
	for a, e := range h.m {
		out[a] = *e
	}
	return out
}

// ensure gives every address an entry. New ones are resolved; those not
// resolved at once are asked again until wait has passed (an ARP round
// trip), and logged as unresolved only then.
func (x *Dataplane) ensureHops(addrs []netip.Addr, wait time.Duration) {
	var fresh []netip.Addr
	x.hops.mu.Lock()
	for _, a := range addrs {
		if _, ok := x.hops.m[a]; !ok {
			x.hops.m[a] = &hop{}
			fresh = append(fresh, a)
		}
	}
	x.hops.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	x.refreshHops(fresh, wait == 0)
	deadline := time.Now().Add(wait)
	for {
		// Decide once per round whether this is the last, so that an
		// unresolved real is always reported on the last round.
		last := !time.Now().Before(deadline)
		var pending []netip.Addr
		snap := x.hops.snapshot()
		for _, a := range fresh {
			if !snap[a].resolved {
				pending = append(pending, a)
			}
		}
		if len(pending) == 0 {
			return
		}
		x.refreshHops(pending, last)
		if last {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// refreshHops asks the resolver about each address and reports whether
// any next hop changed (resolved or not, MAC, interface). Only a final
// round logs an address as unresolved.
func (x *Dataplane) refreshHops(addrs []netip.Addr, final bool) (changed bool) {
	for _, a := range addrs {
		nh, err := x.cfg.Resolver.Resolve(a) // no lock held: netlink I/O
		x.hops.mu.Lock()
		e := x.hops.m[a]
		if e != nil && x.updateHop(a, e, nh, err, final) {
			changed = true
		}
		x.hops.mu.Unlock()
	}
	return changed
}

// updateHop applies a resolution to an entry, logging only changes. A
// real that had a MAC keeps it while the neighbour entry is merely missing
// (XDP traffic does not keep the kernel's entry fresh, and it has been
// asked to re-resolve); it loses it when its route goes away or stops
// being on-link.
func (x *Dataplane) updateHop(a netip.Addr, e *hop, nh NextHop, err error, final bool) (changed bool) {
	was := *e
	if err != nil {
		if was.resolved && errors.Is(err, ErrUnresolved) && nh.Ifindex == e.nh.Ifindex {
			return false
		}
		e.resolved = false
		if !final {
			return was.resolved
		}
		if was.resolved || !e.warned {
			x.log.Warn("real has no next hop; it gets no new flows until it resolves", "real", a.String(), "reason", err)
			e.warned = true
		}
		if nh.Ifindex != 0 {
			e.nh = nh
		}
		return was.resolved || e.nh.Ifindex != was.nh.Ifindex
	}
	e.warned = false
	if !was.resolved || !bytes.Equal(nh.MAC, was.nh.MAC) {
		x.log.Info("real resolved", "real", a.String(), "mac", nh.MAC.String(), "ifindex", nh.Ifindex)
	}
	e.nh, e.resolved = nh, true
	return !was.resolved || !bytes.Equal(nh.MAC, was.nh.MAC) || !bytes.Equal(nh.SrcMAC, was.nh.SrcMAC) || nh.Ifindex != was.nh.Ifindex
}

// realAddrs lists the reals' addresses, once each.
func realAddrs(services []dataplane.Service) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, s := range services {
		for _, r := range s.Reals {
			if !seen[r.Addr] {
				seen[r.Addr] = true
				out = append(out, r.Addr)
			}
		}
	}
	return out
}

// followNeighbours follows the kernel's neighbour table through netlink
// events, so that a real's new MAC (another host took its address and sent
// a gratuitous ARP) is used within milliseconds rather than at the next
// full refresh. It subscribes in the caller's network namespace. Without
// events (refused), the resolve loop's refresh remains.
func (x *Dataplane) followNeighbours() {
	updates := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	err := netlink.NeighSubscribeWithOptions(updates, done, netlink.NeighSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case <-x.stop: // the subscription's socket closing
			default:
				x.log.Warn("neighbour events", "error", err)
			}
		},
	})
	if err != nil {
		x.log.Warn("cannot follow neighbour events; real MACs are refreshed every 30 resolve intervals", "error", err)
		close(x.neighDone)
		return
	}
	go func() {
		defer close(x.neighDone)
		defer close(done)
		for {
			select {
			case <-x.stop:
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				x.neighbourEvent(u)
			}
		}
	}()
}

// neighbourEvent asks again about a real whose neighbour entry now names a
// MAC other than the one in use, and applies the change.
func (x *Dataplane) neighbourEvent(u netlink.NeighUpdate) {
	const valid = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP
	if u.Type != unix.RTM_NEWNEIGH || u.State&valid == 0 || len(u.HardwareAddr) != 6 {
		return // a deletion or a failed probe: the MAC in use is kept
	}
	a, ok := netip.AddrFromSlice(u.IP)
	if !ok {
		return
	}
	a = a.Unmap()
	x.hops.mu.Lock()
	h, known := x.hops.m[a]
	same := known && h.resolved && bytes.Equal(h.nh.MAC, u.HardwareAddr) && h.nh.Ifindex == u.LinkIndex
	x.hops.mu.Unlock()
	if !known || same {
		return
	}
	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	if !x.refreshHops([]netip.Addr{a}, true) {
		return
	}
	x.nextHopChanges.Add(1)
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.applyLocked(x.state.desired); err != nil {
		x.log.Warn("applying a neighbour change", "real", a.String(), "error", err)
	}
}
