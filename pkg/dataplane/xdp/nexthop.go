package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
	neighs, err := h.NeighList(rt.LinkIndex, unix.AF_INET)
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
