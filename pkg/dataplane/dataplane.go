package dataplane

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocol is an IP protocol number of a service (ipvsadm -t / -u).
type Protocol uint8

const (
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// Forward is a real's packet-forwarding method (ipvsadm -g / -m / -i).
type Forward uint8

const (
	// DR is direct routing (ipvsadm -g, keepalived lb_kind DR): only the
	// destination MAC changes; the real holds the VIP on lo.
	DR Forward = iota
	// NAT is masquerading (ipvsadm -m, keepalived lb_kind NAT): the
	// destination becomes the real's address and port; the real routes
	// its replies through the director, which puts the VIP back.
	NAT
	// Tunnel is IP-in-IP (ipvsadm -i, keepalived lb_kind TUN): the
	// packet is encapsulated to the real, which holds the VIP. The IPVS
	// data plane has it; the XDP data plane refuses it.
	Tunnel
)

func (f Forward) String() string {
	switch f {
	case DR:
		return "Route"
	case NAT:
		return "Masq"
	case Tunnel:
		return "Tunnel"
	}
	return fmt.Sprintf("forward-%d", uint8(f))
}

// SchedFlags are ipvsadm's -b scheduler flags.
type SchedFlags uint16

const (
	SHFallback SchedFlags = 0x0008 // IP_VS_SVC_F_SCHED1
	SHPort     SchedFlags = 0x0010 // IP_VS_SVC_F_SCHED2
)

// ServiceKey names a virtual service: VIP, port, protocol.
type ServiceKey struct {
	Addr     netip.Addr
	Port     uint16
	Protocol Protocol
}

func (k ServiceKey) String() string {
	return fmt.Sprintf("%s %s", k.Protocol, netip.AddrPortFrom(k.Addr, k.Port))
}

// Service is a virtual service and its reals, in IPVS dest-list order.
type Service struct {
	ServiceKey
	Scheduler string // rr, wrr, sh, dh, lc, wlc, sed, nq
	Flags     SchedFlags
	// Persistence (ipvsadm -p, keepalived persistence_timeout): a
	// client's connections keep their real until the template has been
	// unused this long and controls no connection. 0 = none.
	Persistence time.Duration
	// PersistenceMask is the prefix length that groups clients
	// (ipvsadm -M, persistence_granularity); 0 means /32.
	PersistenceMask int
	// Standby keeps the service ready but not forwarding: packets to it,
	// new flows and established ones, go to the kernel, which does not
	// hold the VIP. It is the VRRP BACKUP (or FAULT) role of the VIP's
	// instance; clearing it is one map write per service and real, so a
	// takeover forwards at once.
	Standby bool
	Reals   []Real
}

// Real is a real server of a service. Weight 0 quiesces it: no new flows,
// existing flows continue.
type Real struct {
	Addr    netip.Addr
	Port    uint16
	Weight  int32
	Forward Forward
}

func (r Real) String() string { return netip.AddrPortFrom(r.Addr, r.Port).String() }

// Counters are cumulative counts: packets and bytes from clients, new
// connections, and packets and bytes of replies (NAT only: DR replies go
// from the real to the client directly).
type Counters struct {
	Packets    uint64
	Bytes      uint64
	Conns      uint64
	OutPackets uint64
	OutBytes   uint64
}

// ServiceStats are a service's counters and its reals'.
type ServiceStats struct {
	ServiceKey
	Counters
	Reals []RealStats
}

// RealStats are a real's counters and next-hop state.
type RealStats struct {
	Real
	Counters
	// Resolved is false while the real's MAC is unknown: it gets no new
	// flows until the neighbour table resolves it.
	Resolved bool
	// ActiveConns and InactConns are IPVS's ActiveConn and InActConn.
	ActiveConns int64
	InactConns  int64
}

// Stats is a snapshot of the data plane's counters.
type Stats struct {
	Services []ServiceStats
	// Drops and passes of packets to VIPs by reason (see bpf/xdp_lb.bpf.c).
	Reasons map[string]uint64
}

// Conn is one entry of the connection table.
type Conn struct {
	// State is IPVS's name of the connection's state (ESTABLISHED, ...).
	State    string
	Protocol Protocol
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Real     netip.AddrPort
	// Expires is how long the entry lives without more packets.
	Expires time.Duration
}

// Timeouts are the timeouts ipvsadm --set and --timeout show.
type Timeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
}

// Dataplane is what the director drives: it makes the kernel forward the
// desired services.
type Dataplane interface {
	// Apply makes the data plane forward exactly these services. It
	// validates everything before changing anything: on error nothing is
	// applied. Established flows keep their reals.
	Apply(services []Service) error
	Stats() (Stats, error)
	Conns() ([]Conn, error)
	// SetTimeouts changes IPVS's TCP established, TCP FIN_WAIT and UDP
	// timeouts (ipvsadm --set); a zero leaves that one as it is.
	SetTimeouts(Timeouts) error
	Timeouts() (Timeouts, error)
	// Close removes everything the data plane made.
	Close() error
}
