package xdp

import (
	"errors"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The hints of NAT replies (bpf/flowcache.h, "Replies") keep what the
// kernel's FIB answered for a reply: its next hop's MACs and interface.
// The programs cannot ask the kernel whether that answer still holds, so
// the control plane tells them that it may not: route_epoch, which every
// reply's hint carries, moves at each netlink event of the namespace
// that may change an answer — a route, a rule, a nexthop object, an
// address (its local routes), a link (up, down, MTU, gone), a netconf
// change (forwarding turned off), or a neighbour whose MAC or validity
// changed. Epoch 0 writes no hint: until the events are followed, and
// for good once they cannot be (the socket failed), every reply takes
// the table's path and asks the FIB.

// routeGroups are the rtnetlink groups followed.
var routeGroups = []uint{
	unix.RTNLGRP_LINK, unix.RTNLGRP_NEIGH, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV4_ROUTE,
	unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV4_NETCONF, unix.RTNLGRP_NEXTHOP,
}

// neighKey is a neighbour entry's identity; neighSeen what it last said.
type neighKey struct {
	ifindex int32
	addr    netip.Addr
}

type neighSeen struct {
	mac   [6]byte
	valid bool
}

// routeWatch decides, event by event, whether a FIB answer may have
// changed: always, but for a neighbour event that says what the last
// one for that entry said (a valid entry moving between REACHABLE,
// STALE, DELAY and PROBE: the FIB answers the same for each).
type routeWatch struct {
	neigh map[neighKey]neighSeen
}

// nudValid are the states in which bpf_fib_lookup gives a neighbour's MAC
// (the kernel's NUD_VALID).
const nudValid = unix.NUD_PERMANENT | unix.NUD_NOARP | unix.NUD_REACHABLE | unix.NUD_PROBE | unix.NUD_STALE | unix.NUD_DELAY

// moves reports whether the message may change what the FIB answers.
func (w *routeWatch) moves(m syscall.NetlinkMessage) bool {
	t := m.Header.Type
	if t != unix.RTM_NEWNEIGH && t != unix.RTM_DELNEIGH {
		return t != unix.NLMSG_NOOP && t != unix.NLMSG_DONE
	}
	if len(m.Data) < unix.SizeofNdMsg {
		return true
	}
	nd := (*unix.NdMsg)(unsafe.Pointer(&m.Data[0]))
	attrs, err := nl.ParseRouteAttr(m.Data[unix.SizeofNdMsg:])
	if err != nil {
		return true
	}
	var addr netip.Addr
	var seen neighSeen
	haveMAC := false
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.NDA_DST:
			addr, _ = netip.AddrFromSlice(a.Value)
		case unix.NDA_LLADDR:
			if len(a.Value) == 6 {
				copy(seen.mac[:], a.Value)
				haveMAC = true
			}
		}
	}
	if !addr.IsValid() {
		return true
	}
	k := neighKey{ifindex: nd.Ifindex, addr: addr.Unmap()}
	seen.valid = t == unix.RTM_NEWNEIGH && nd.State&nudValid != 0 && haveMAC
	was, known := w.neigh[k]
	if t == unix.RTM_DELNEIGH {
		delete(w.neigh, k)
	} else {
		w.neigh[k] = seen
	}
	// An entry not known before may have had another MAC: it moves.
	return !known || was != seen
}

// followRoutes follows the namespace's routing events and moves
// route_epoch at each that may change a FIB answer. Without the flow
// cache there are no reply hints and nothing to follow.
func (x *Dataplane) followRoutes() {
	if x.objs.FlowCache.MaxEntries() <= 1 {
		close(x.routesDone)
		return
	}
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, routeGroups...)
	if err != nil {
		x.log.Warn("cannot follow routing events; NAT replies are routed by the FIB at every packet", "error", err)
		close(x.routesDone)
		return
	}
	// A burst of events (a BGP session's routes) must not overrun the
	// socket: an overrun is survived (the epoch moves) but costs a read.
	_ = s.SetReceiveBufferSize(4<<20, true)
	go func() {
		<-x.stop
		s.Close()
	}()
	// From here on every change is seen: hints may be written.
	if err := x.moveRouteEpoch(); err != nil {
		x.log.Warn("cannot start NAT replies' hints", "error", err)
	}
	go func() {
		defer close(x.routesDone)
		w := routeWatch{neigh: map[neighKey]neighSeen{}}
		for {
			msgs, from, err := s.Receive()
			if errors.Is(err, unix.ENOBUFS) {
				// Events were lost: any of them may have moved a route.
				if err := x.moveRouteEpoch(); err != nil {
					x.log.Warn("NAT replies' hints", "error", err)
				}
				continue
			}
			if err != nil {
				select {
				case <-x.stop:
				default:
					x.log.Warn("routing events stopped; NAT replies are routed by the FIB at every packet", "error", err)
					x.stopRouteHints()
				}
				return
			}
			if from.Pid != nl.PidKernel {
				continue
			}
			moved := false
			for _, m := range msgs {
				if w.moves(m) {
					moved = true
				}
			}
			if moved {
				if err := x.moveRouteEpoch(); err != nil {
					x.log.Warn("NAT replies' hints", "error", err)
				}
			}
		}
	}()
}

// moveRouteEpoch voids every NAT reply's hint (never to 0, which writes
// none).
func (x *Dataplane) moveRouteEpoch() error {
	x.hintMu.Lock()
	defer x.hintMu.Unlock()
	return moveEpoch(x.objs.RouteEpoch)
}

// stopRouteHints leaves route_epoch at 0: no reply's hint is written or
// served again.
func (x *Dataplane) stopRouteHints() {
	x.hintMu.Lock()
	defer x.hintMu.Unlock()
	if err := x.objs.RouteEpoch.Set(uint32(0)); err != nil {
		x.log.Warn("NAT replies' hints", "error", err)
	}
}
