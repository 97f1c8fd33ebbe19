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
	"github.com/xlbproject/xlb/pkg/lvs"
)

// NextHop is where a real's frames go: out of Ifindex, from SrcMAC to MAC
// (the real's, or for a TUN real its route's gateway's). A TUN real's also
// says the outer source address (Src, the route's preferred source) and
// the path MTU (the route's, else the interface's).
type NextHop struct {
	Ifindex int
	MAC     net.HardwareAddr
	SrcMAC  net.HardwareAddr
	Gateway netip.Addr // TUN only: the route's gateway, if not on-link
	Src     netip.Addr // TUN only
	MTU     int        // TUN only
}

func (n NextHop) equal(o NextHop) bool {
	return n.Ifindex == o.Ifindex && bytes.Equal(n.MAC, o.MAC) && bytes.Equal(n.SrcMAC, o.SrcMAC) &&
		n.Gateway == o.Gateway && n.Src == o.Src && n.MTU == o.MTU
}

// hopKey is a real's address and whether it is reached by tunnel (or by
// FULLNAT, routed as well): such a real may sit behind a gateway; a
// tunnelled one needs a source and MTU too.
type hopKey struct {
	addr netip.Addr
	tun  bool
}

// hopOf is the next hop real r needs.
func hopOf(r dataplane.Real) hopKey {
	return hopKey{r.Addr, r.Forward == lvs.TUN || r.Forward == lvs.FNAT}
}

// ErrUnresolved means the real's MAC is not in the neighbour table yet.
// Resolution has been asked for; the real gets no new flows meanwhile.
var ErrUnresolved = errors.New("next hop not resolved")

// Resolver finds the next hop of a real (tun: of a TUN real).
type Resolver interface {
	Resolve(addr netip.Addr, tun bool) (NextHop, error)
}

// NeighResolver resolves reals through the kernel's routing and neighbour
// tables (netlink). A DR or NAT real must be on a directly connected
// network: DR only rewrites MACs. A TUN real may be anywhere the routes
// reach: its frames go to the route's gateway.
type NeighResolver struct {
	// Handle is the netlink socket to use (its network namespace); the
	// calling thread's namespace if nil.
	Handle *netlink.Handle
}

func (n NeighResolver) Resolve(addr netip.Addr, tun bool) (NextHop, error) {
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
	if rt.Gw != nil && !tun {
		return NextHop{}, fmt.Errorf("real %s is reached through gateway %s: DR needs the real on a directly connected network", addr, rt.Gw)
	}
	lnk, err := h.LinkByIndex(rt.LinkIndex)
	if err != nil {
		return NextHop{}, fmt.Errorf("link %d of real %s: %w", rt.LinkIndex, addr, err)
	}
	nh := NextHop{Ifindex: rt.LinkIndex, SrcMAC: lnk.Attrs().HardwareAddr}
	if tun {
		if rt.Gw != nil {
			nh.Gateway, _ = netip.AddrFromSlice(rt.Gw)
			nh.Gateway = nh.Gateway.Unmap()
			ip = rt.Gw
		}
		src, ok := netip.AddrFromSlice(rt.Src)
		if !ok || src.Unmap().Is4() != addr.Is4() {
			return NextHop{}, fmt.Errorf("route to real %s: no %s source address on %s for the tunnel", addr, familyName(addr), lnk.Attrs().Name)
		}
		nh.Src = src.Unmap()
		nh.MTU = rt.MTU
		if nh.MTU == 0 {
			nh.MTU = lnk.Attrs().MTU
		}
	}
	fam := unix.AF_INET // ARP; IPv6: the neighbour discovery's table
	if !addr.Is4() {
		fam = unix.AF_INET6
	}
	neighs, err := nlretry.Dump(func() ([]netlink.Neigh, error) { return h.NeighList(rt.LinkIndex, fam) })
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
		Family:    fam,
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
	m  map[hopKey]*hop
	// gw: the TUN reals behind each gateway, for its neighbour events.
	gw map[netip.Addr]map[hopKey]bool
}

// setGateway records that k's next hop is now through gw (or no gateway).
// Called with h.mu held.
func (h *hops) setGateway(k hopKey, old, gw netip.Addr) {
	if old == gw {
		return
	}
	if old.IsValid() {
		delete(h.gw[old], k)
		if len(h.gw[old]) == 0 {
			delete(h.gw, old)
		}
	}
	if gw.IsValid() {
		if h.gw == nil {
			h.gw = map[netip.Addr]map[hopKey]bool{}
		}
		if h.gw[gw] == nil {
			h.gw[gw] = map[hopKey]bool{}
		}
		h.gw[gw][k] = true
	}
}

// snapshot is the cache as the planner reads it.
func (h *hops) snapshot() map[hopKey]hop {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[hopKey]hop, len(h.m))
	for a, e := range h.m {
		out[a] = *e
	}
	return out
}

// snapshotOf is the part of the cache for keys: what an Update plans
// with (a copy of every real's next hop was most of one real's change on
// a big director).
func (h *hops) snapshotOf(keys []hopKey) map[hopKey]hop {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[hopKey]hop, len(keys))
	for _, k := range keys {
		if e, ok := h.m[k]; ok {
			out[k] = *e
		}
	}
	return out
}

// ensure gives every address an entry. New ones are resolved; those not
// resolved at once are asked again until wait has passed (an ARP round
// trip), and logged as unresolved only then.
func (x *Dataplane) ensureHops(addrs []hopKey, wait time.Duration) {
	var fresh []hopKey
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
		var pending []hopKey
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
func (x *Dataplane) refreshHops(addrs []hopKey, final bool) (changed bool) {
	for _, a := range addrs {
		nh, err := x.cfg.Resolver.Resolve(a.addr, a.tun) // no lock held: netlink I/O
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
func (x *Dataplane) updateHop(a hopKey, e *hop, nh NextHop, err error, final bool) (changed bool) {
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
			x.log.Warn("real has no next hop; it gets no new flows until it resolves", "real", a.addr.String(), "reason", err)
			e.warned = true
		}
		if nh.Ifindex != 0 {
			x.hops.setGateway(a, e.nh.Gateway, nh.Gateway)
			e.nh = nh
		}
		return was.resolved || e.nh.Ifindex != was.nh.Ifindex
	}
	e.warned = false
	if !was.resolved || !bytes.Equal(nh.MAC, was.nh.MAC) {
		switch {
		case a.tun && nh.Gateway.IsValid():
			x.log.Info("real resolved", "real", a.addr.String(), "gateway", nh.Gateway.String(), "mac", nh.MAC.String(), "ifindex", nh.Ifindex,
				"tunnel_src", nh.Src.String(), "mtu", nh.MTU)
		case a.tun:
			x.log.Info("real resolved", "real", a.addr.String(), "mac", nh.MAC.String(), "ifindex", nh.Ifindex,
				"tunnel_src", nh.Src.String(), "mtu", nh.MTU)
		default:
			x.log.Info("real resolved", "real", a.addr.String(), "mac", nh.MAC.String(), "ifindex", nh.Ifindex)
		}
	}
	x.hops.setGateway(a, e.nh.Gateway, nh.Gateway)
	e.nh, e.resolved = nh, true
	return !was.resolved || !nh.equal(was.nh)
}

// realHops lists the reals' next hops to know, once each.
func realHops(services []dataplane.Service) []hopKey {
	seen := map[hopKey]bool{}
	var out []hopKey
	for _, s := range services {
		for _, r := range s.Reals {
			k := hopOf(r)
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
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
	// The real itself, or a TUN real's gateway.
	var ask []hopKey
	x.hops.mu.Lock()
	consider := func(k hopKey) {
		h, known := x.hops.m[k]
		if known && !(h.resolved && bytes.Equal(h.nh.MAC, u.HardwareAddr) && h.nh.Ifindex == u.LinkIndex) {
			ask = append(ask, k)
		}
	}
	consider(hopKey{a, false})
	consider(hopKey{a, true})
	for k := range x.hops.gw[a] {
		consider(k)
	}
	x.hops.mu.Unlock()
	if len(ask) == 0 {
		return
	}
	x.applyMu.Lock()
	defer x.applyMu.Unlock()
	if !x.refreshHops(ask, true) {
		return
	}
	x.nextHopChanges.Add(1)
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.applyLocked(x.state.desired); err != nil {
		x.log.Warn("applying a neighbour change", "real", a.String(), "error", err)
	}
}

// familyName is "IPv4" or "IPv6", as a's family.
func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
