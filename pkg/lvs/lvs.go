// Package lvs holds the words of LVS that every part of xlb shares, each
// defined once and numbered as the kernel's IPVS numbers it: a service's
// protocol, a real's forwarding method and a service's flags.
// keepalived.conf (pkg/config), ipvsadm's command line (pkg/ipvsadm), the
// data planes (pkg/dataplane) and the schedulers (pkg/sched) all use these
// types, so a value passes from one to another without a conversion table.
//
// Scheduler names are not here: they live in pkg/sched's registry, with what
// each scheduler reads and how the data planes compute it.
package lvs

import (
	"errors"
	"fmt"
	"strconv"
)

// Protocol is the IP protocol number of a virtual service or of a
// connection (IPVS_SVC_ATTR_PROTOCOL).
type Protocol uint8

// Protocols of services (TCP, UDP, SCTP) and of connection entries (IP:
// the persistence templates of fwmark services).
const (
	IP   Protocol = 0
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String is the protocol as the kernel names it (ip_vs_proto_name): TCP,
// UDP, SCTP, IP, ICMP, ICMPv6, or IP_<number>.
func (p Protocol) String() string {
	switch p {
	case IP:
		return "IP"
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	}
	return "IP_" + strconv.Itoa(int(p))
}

// Forward is a real's packet-forwarding method, with the values of the
// kernel's IP_VS_CONN_F_* forwarding codes.
type Forward uint32

// Forwarding methods. NAT is 0 as in the kernel (ipvsadm's default, when no
// -g/-m/-i is given, is DR all the same). Local is what the kernel reports
// for a dest that is one of the director's own addresses; nobody can ask
// for it.
const (
	NAT   Forward = 0 // masquerading: ipvsadm -m, keepalived lb_kind NAT
	Local Forward = 1
	TUN   Forward = 2 // IP-in-IP (or GUE/GRE): ipvsadm -i, lb_kind TUN
	DR    Forward = 3 // direct routing: ipvsadm -g, lb_kind DR
	// FNAT is FULLNAT, which the kernel's IPVS does not have: DPVS's
	// number (IP_VS_CONN_F_FULLNAT), its ipvsadm's -b/--fullnat and the
	// lb_kind FNAT of the keepalived that ships with it. Both ends are
	// translated: the real sees one of the service's local addresses.
	FNAT Forward = 5
)

// String is the method as ipvsadm's listing names it: Masq, Local, Tunnel,
// Route; FullNat as DPVS's ipvsadm names FULLNAT.
func (f Forward) String() string {
	switch f {
	case NAT:
		return "Masq"
	case Local:
		return "Local"
	case TUN:
		return "Tunnel"
	case DR:
		return "Route"
	case FNAT:
		return "FullNat"
	}
	return "(null)"
}

// Kind is the method as keepalived.conf's lb_kind (lvs_method) names it:
// NAT, DR, TUN, FNAT (DPVS's keepalived); "local" for Local, which
// keepalived has no word for.
func (f Forward) Kind() string {
	switch f {
	case NAT:
		return "NAT"
	case DR:
		return "DR"
	case TUN:
		return "TUN"
	case FNAT:
		return "FNAT"
	case Local:
		return "local"
	}
	return "invalid"
}

// Translates says whether the method rewrites the client's packets to
// the real's address (NAT and FULLNAT): the real's port may then differ
// from the service's, and the real's replies come back through the
// director.
func (f Forward) Translates() bool { return f == NAT || f == FNAT }

// TunnelType is a TUN real's encapsulation, with the kernel's
// IP_VS_CONN_F_TUNNEL_TYPE_* values (Linux 5.3+: GUE; 5.7+: GRE).
type TunnelType uint8

// Tunnel types, as ipvsadm --tun-type and keepalived's "lvs_method TUN
// type" name them.
const (
	TunIPIP TunnelType = 0 // IPv4 in IPv4 (IPv6 in IPv6): IPVS's TUN before 5.3
	TunGUE  TunnelType = 1 // IP in UDP with a GUE header, to Tunnel.Port
	TunGRE  TunnelType = 2 // IP in GRE
)

var tunnelNames = [...]string{"ipip", "gue", "gre"}

func (t TunnelType) String() string {
	if int(t) < len(tunnelNames) {
		return tunnelNames[t]
	}
	return "?"
}

// ParseTunnelType reads ipip, gue or gre.
func ParseTunnelType(s string) (TunnelType, bool) {
	for i, n := range tunnelNames {
		if s == n {
			return TunnelType(i), true
		}
	}
	return 0, false
}

// TunnelFlags are a GUE or GRE tunnel's checksum mode, with the kernel's
// IP_VS_TUNNEL_ENCAP_FLAG_* values.
type TunnelFlags uint16

// Checksum modes: --tun-nocsum (the default), --tun-csum, --tun-remcsum.
const (
	TunNoCsum  TunnelFlags = 0
	TunCsum    TunnelFlags = 1
	TunRemCsum TunnelFlags = 2
)

var tunnelFlagNames = [...]string{"nocsum", "csum", "remcsum"}

func (f TunnelFlags) String() string {
	if int(f) < len(tunnelFlagNames) {
		return tunnelFlagNames[f]
	}
	return "?"
}

// Tunnel is how a TUN real's packets are encapsulated: IPVS's tun_type,
// tun_port and tun_flags. Its zero value is plain IPIP, what ipvsadm -i
// and keepalived's lvs_method TUN make.
type Tunnel struct {
	Type  TunnelType
	Port  uint16 // GUE's UDP destination port; 0 otherwise
	Flags TunnelFlags
}

// String is the tunnel as ipvsadm --tun-info shows it: ipip, gue:PORT:FLAGS,
// gre:FLAGS.
func (t Tunnel) String() string {
	switch t.Type {
	case TunGUE:
		return "gue:" + strconv.Itoa(int(t.Port)) + ":" + t.Flags.String()
	case TunGRE:
		return "gre:" + t.Flags.String()
	}
	return t.Type.String()
}

// Check is the kernel's and keepalived's rule for a tunnel's settings: a
// GUE tunnel needs a port and no other has one; IPIP takes no checksum
// option and GRE no remote checksum.
func (t Tunnel) Check() error {
	switch {
	case t.Type > TunGRE:
		return fmt.Errorf("unknown tunnel type %d", t.Type)
	case t.Flags > TunRemCsum:
		return fmt.Errorf("unknown tunnel checksum mode %d", t.Flags)
	case (t.Type == TunGUE) != (t.Port != 0):
		return errors.New("gue tunnels require port, otherwise cannot have port")
	case t.Type == TunIPIP && t.Flags != TunNoCsum:
		return errors.New("ipip tunnels do not support checksum option")
	case t.Type == TunGRE && t.Flags == TunRemCsum:
		return errors.New("gre tunnels do not support remote checksum option")
	}
	return nil
}

// SvcFlags are a service's IP_VS_SVC_F_* bits. The three scheduler flags
// mean what the scheduler makes of them: sh and mh read Sched1 as
// fallback and Sched2 as port (pkg/sched names them per scheduler).
type SvcFlags uint32

// Service flags, with the kernel's values.
const (
	Persistent SvcFlags = 0x0001 // ipvsadm -p
	Hashed     SvcFlags = 0x0002 // set by the kernel: the service is in its table
	OnePacket  SvcFlags = 0x0004 // ipvsadm -o, keepalived ops
	Sched1     SvcFlags = 0x0008 // flag-1: sh-fallback, mh-fallback
	Sched2     SvcFlags = 0x0010 // flag-2: sh-port, mh-port
	Sched3     SvcFlags = 0x0020 // flag-3

	// SchedFlags are the bits a scheduler reads.
	SchedFlags = Sched1 | Sched2 | Sched3
)
