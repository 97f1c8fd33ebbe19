package ipvsadm

import (
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of a virtual service or a connection.
type Protocol uint16

// Protocols a virtual service can have. ProtoIP appears only on connection
// entries (persistence templates of fwmark services).
const (
	ProtoIP   Protocol = 0
	ProtoTCP  Protocol = 6
	ProtoUDP  Protocol = 17
	ProtoSCTP Protocol = 132
)

// Name is the protocol as the table listing shows it ("TCP", "UDP", "SCTP";
// "?" for anything else, as ipvsadm's protocol_name).
func (p Protocol) Name() string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	}
	return "?"
}

// String is the protocol as the kernel's connection table names it (its
// ip_vs_proto_name): "TCP", "UDP", "SCTP", "IP", "ICMP", "ICMPv6", "IP_<n>".
func (p Protocol) String() string {
	switch p {
	case ProtoIP:
		return "IP"
	case ProtoTCP, ProtoUDP, ProtoSCTP:
		return p.Name()
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	}
	return "IP_" + utoa(uint64(p))
}

// option is the save-format option that names a service of this protocol.
func (p Protocol) option() string {
	switch p {
	case ProtoTCP:
		return "-t"
	case ProtoUDP:
		return "-u"
	case ProtoSCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

// Forward is a real server's packet-forwarding method. The values are the
// kernel's IP_VS_CONN_F_* forwarding codes.
type Forward uint32

// Forwarding methods: -m, -i, -g. ForwardLocal is shown for dests the kernel
// marked local; ipvsadm cannot ask for it.
const (
	ForwardMasq   Forward = 0 // -m, NAT
	ForwardLocal  Forward = 1
	ForwardTunnel Forward = 2 // -i, IP-in-IP (or GUE/GRE)
	ForwardRoute  Forward = 3 // -g, direct routing (the default)
)

// String is the name the table listing uses: Masq, Local, Tunnel, Route.
func (f Forward) String() string {
	switch f {
	case ForwardMasq:
		return "Masq"
	case ForwardLocal:
		return "Local"
	case ForwardTunnel:
		return "Tunnel"
	case ForwardRoute:
		return "Route"
	}
	return "(null)"
}

// option is the save-format switch: -m, -i or -g (Local saves as -g).
func (f Forward) option() string {
	switch f {
	case ForwardMasq:
		return "-m"
	case ForwardTunnel:
		return "-i"
	case ForwardRoute, ForwardLocal:
		return "-g"
	}
	return "(null)"
}

// ServiceFlags are the kernel's IP_VS_SVC_F_* bits other than persistence,
// which [Service.Persistent] carries.
type ServiceFlags uint32

// Service flags. The three scheduler flags mean what the scheduler makes of
// them: for sh, Sched1 is sh-fallback and Sched2 sh-port; for mh, mh-fallback
// and mh-port; others show them as flag-1..flag-3.
const (
	FlagOnePacket ServiceFlags = 0x0004 // -o, one-packet scheduling (UDP)
	FlagSched1    ServiceFlags = 0x0008
	FlagSched2    ServiceFlags = 0x0010
	FlagSched3    ServiceFlags = 0x0020

	FlagSHFallback = FlagSched1
	FlagSHPort     = FlagSched2
	FlagMHFallback = FlagSched1
	FlagMHPort     = FlagSched2

	flagPersistent ServiceFlags = 0x0001
	flagsSched                  = FlagSched1 | FlagSched2 | FlagSched3
)

// TunnelType is the encapsulation of a tunnelling (-i) real server.
type TunnelType uint8

// Tunnel types, as --tun-type names them.
const (
	TunnelIPIP TunnelType = 0
	TunnelGUE  TunnelType = 1
	TunnelGRE  TunnelType = 2
)

var tunnelNames = [...]string{"ipip", "gue", "gre"}

func (t TunnelType) String() string {
	if int(t) < len(tunnelNames) {
		return tunnelNames[t]
	}
	return "?"
}

// TunnelFlags is the checksum mode of a GUE or GRE tunnel.
type TunnelFlags uint16

// Tunnel checksum modes: --tun-nocsum, --tun-csum, --tun-remcsum.
const (
	TunnelNoCsum  TunnelFlags = 0
	TunnelCsum    TunnelFlags = 1
	TunnelRemCsum TunnelFlags = 2
)

// Stats are a service's or a real server's counters, as --stats shows them.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

// Rates are the kernel's rate estimates, as --rate shows them.
type Rates struct {
	CPS, InPPS, OutPPS, InBPS, OutBPS uint64
}

// Dest is a real server of a virtual service.
type Dest struct {
	Addr netip.Addr
	Port uint16
	// Forward is the forwarding method; its zero value is Masq, as in the
	// kernel. ipvsadm's default, when no -g/-m/-i is given, is Route.
	Forward    Forward
	Weight     int32
	UThreshold uint32 // -x; 0 = none
	LThreshold uint32 // -y

	// Tunnel settings, meaningful only with ForwardTunnel.
	Tunnel   TunnelType
	TunPort  uint16
	TunFlags TunnelFlags

	ActiveConns, InactConns, PersistConns uint32
	Stats                                 Stats
	Rates                                 Rates
}

// AddrPort is the real server's address and port.
func (d *Dest) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// Service is a virtual service and its real servers.
//
// A service is named either by Protocol, Addr and Port or, when FWMark is
// not zero, by FWMark and the address family. A fwmark service's Addr is the
// unspecified address of its family (0.0.0.0, or :: when -6 was given), its
// Port is 0 and its Protocol TCP, as ipvsadm sends it.
type Service struct {
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32

	Scheduler  string
	Flags      ServiceFlags
	Persistent bool
	Timeout    uint32 // persistence timeout in seconds
	// Netmask is the persistence granularity. For IPv4 it is the mask with
	// the first octet in the high bits (255.255.255.0 = 0xffffff00), which
	// may be any value ipvsadm's -M accepted; for IPv6 it is a prefix length.
	Netmask uint32
	PE      string // persistence engine (--pe), usually ""

	Stats Stats
	Rates Rates
	Dests []Dest
}

// Is6 reports whether the service is an IPv6 one (IPv6 address, or a fwmark
// service given -6).
func (s *Service) Is6() bool { return s.Addr.Is6() }

// SameService reports whether a and b name the same virtual service, the
// way the kernel looks services up: by family and fwmark, or by family,
// protocol, address and port.
func SameService(a, b *Service) bool {
	if a.Is6() != b.Is6() {
		return false
	}
	if a.FWMark != 0 || b.FWMark != 0 {
		return a.FWMark == b.FWMark
	}
	return a.Protocol == b.Protocol && a.Addr == b.Addr && a.Port == b.Port
}

// Timeouts are the connection timeouts that --set changes, in seconds.
type Timeouts struct {
	TCP, TCPFin, UDP int
}

// DefaultTimeouts are the kernel's defaults: 900 120 300.
var DefaultTimeouts = Timeouts{TCP: 900, TCPFin: 120, UDP: 300}

// Info is what the table header reports about the kernel side.
type Info struct {
	Version uint32 // IPVS version as 0xMMmmpp
	Size    int    // connection hash table size
}

// DefaultInfo gives the header "IP Virtual Server version 1.2.1 (size=4096)".
var DefaultInfo = Info{Version: 0x010201, Size: 4096}

// Conn is one entry of the connection table, as ipvsadm -Lc shows it.
type Conn struct {
	Protocol Protocol
	Expires  time.Duration // shown as mm:ss, whole seconds
	State    string        // "ESTABLISHED", "FIN_WAIT", "NONE", "UDP", ...
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Dest     netip.AddrPort
	// PEName and PEData are the persistence engine's, shown by
	// -Lc --persistent-conn when PEName is set.
	PEName, PEData string
}

// State is the whole IPVS table as ipvsadm sees it: what the daemon keeps
// in place of the kernel, and what the formatters print.
type State struct {
	Services []Service // in the order they were added
	Timeouts Timeouts
	Conns    []Conn
	Info     Info // zero means DefaultInfo
}

// NewState returns an empty table with the kernel's default timeouts.
func NewState() *State {
	return &State{Timeouts: DefaultTimeouts, Info: DefaultInfo}
}

// Find returns the service that key names (see [SameService]), or nil.
func (s *State) Find(key *Service) *Service {
	for i := range s.Services {
		if SameService(&s.Services[i], key) {
			return &s.Services[i]
		}
	}
	return nil
}

func (s *State) info() Info {
	if s.Info == (Info{}) {
		return DefaultInfo
	}
	return s.Info
}
