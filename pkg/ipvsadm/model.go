package ipvsadm

import (
	"net/netip"
	"time"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// protoName is the protocol as the table listing shows it ("TCP", "UDP",
// "SCTP"; "?" for anything else, as ipvsadm's protocol_name).
func protoName(p lvs.Protocol) string {
	switch p {
	case lvs.TCP, lvs.UDP, lvs.SCTP:
		return p.String()
	}
	return "?"
}

// protoOption is the save-format option that names a service of this
// protocol.
func protoOption(p lvs.Protocol) string {
	switch p {
	case lvs.TCP:
		return "-t"
	case lvs.UDP:
		return "-u"
	case lvs.SCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

// forwardOption is the save-format switch: -m, -i or -g (Local saves as
// -g).
func forwardOption(f lvs.Forward) string {
	switch f {
	case lvs.NAT:
		return "-m"
	case lvs.TUN:
		return "-i"
	case lvs.DR, lvs.Local:
		return "-g"
	case lvs.FNAT:
		return "--fullnat"
	}
	return "(null)"
}

// TunnelType is the encapsulation of a tunnelling (-i) real server.
type TunnelType = lvs.TunnelType

// Tunnel types, as --tun-type names them.
const (
	TunnelIPIP = lvs.TunIPIP
	TunnelGUE  = lvs.TunGUE
	TunnelGRE  = lvs.TunGRE
)

// TunnelFlags is the checksum mode of a GUE or GRE tunnel.
type TunnelFlags = lvs.TunnelFlags

// Tunnel checksum modes: --tun-nocsum, --tun-csum, --tun-remcsum.
const (
	TunnelNoCsum  = lvs.TunNoCsum
	TunnelCsum    = lvs.TunCsum
	TunnelRemCsum = lvs.TunRemCsum
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
	Forward    lvs.Forward
	Weight     int32
	UThreshold uint32 // -x; 0 = none
	LThreshold uint32 // -y

	// Tunnel settings, meaningful only with lvs.TUN.
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
	Protocol lvs.Protocol
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32

	Scheduler  string
	Flags      lvs.SvcFlags // other than Persistent, which Persistent carries
	Persistent bool
	Timeout    uint32 // persistence timeout in seconds
	// Netmask is the persistence granularity. For IPv4 it is the mask with
	// the first octet in the high bits (255.255.255.0 = 0xffffff00), which
	// may be any value ipvsadm's -M accepted; for IPv6 it is a prefix length.
	Netmask uint32
	PE      string // persistence engine (--pe), usually ""
	// LocalAddrs are the addresses its FULLNAT reals see connections come
	// from (DPVS's ipvsadm --add-laddr -z); xlbadm's -S writes them as
	// --add-laddr lines after the service's.
	LocalAddrs []netip.Addr

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
	Protocol lvs.Protocol
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
