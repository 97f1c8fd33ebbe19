package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// ServiceKey names a virtual service: VIP, port (0: all ports) and
// protocol; or, when FWMark is not zero, a firewall mark, Addr then being
// the unspecified address of the service's family, Port and Protocol 0.
type ServiceKey struct {
	Addr     netip.Addr
	Port     uint16
	Protocol lvs.Protocol
	FWMark   uint32 `json:",omitempty"`
}

func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("FWM %d IPv%d", k.FWMark, ipVersion(k.Addr))
	}
	return fmt.Sprintf("%s %s", k.Protocol, netip.AddrPortFrom(k.Addr, k.Port))
}

// Service is a virtual service and its reals, in IPVS dest-list order.
type Service struct {
	ServiceKey
	Scheduler string // a name in pkg/sched's registry
	// Flags are the scheduler flags (lvs.SchedFlags bits) and OnePacket.
	Flags lvs.SvcFlags
	// Persistence (ipvsadm -p, keepalived persistence_timeout): a
	// client's connections keep their real until the template has been
	// unused this long and controls no connection. 0 = none.
	Persistence time.Duration
	// PersistenceMask groups clients (ipvsadm -M,
	// persistence_granularity): see lvs.Netmask; 0 is the full mask.
	PersistenceMask lvs.Netmask
	// Sloppy is IPVS's sloppy_tcp (sloppy_sctp for an SCTP service):
	// a packet without a connection, other than a TCP RST, is scheduled
	// as a connection's first would be, so that a connection another
	// director carried until the network moved it here (ECMP after a
	// director is lost or added) reaches the real the scheduler picks
	// (with mh, sh or dh: the one the first director picked). Off by
	// default, as in IPVS. The IPVS data plane has it per host only.
	Sloppy bool
	// LocalAddrs are the director's addresses its FULLNAT reals see
	// their clients' connections come from (keepalived-DPVS's
	// local_address_group; DPVS's ipvsadm --laddr): each connection
	// gets one of them and a port of its own. Only FNAT reals use them.
	LocalAddrs []netip.Addr `json:",omitempty"`
	// TOA: the handshake's ACK of a FULLNAT connection carries the
	// client's address and port to the real in TCP option 254 (DPVS's
	// TOA, which the real's toa module reads). Only FNAT reals use it.
	TOA   bool `json:",omitempty"`
	Reals []Real
}

// Real is a real server of a service. Weight 0 quiesces it: no new flows,
// existing flows continue.
type Real struct {
	Addr    netip.Addr
	Port    uint16
	Weight  int32
	Forward lvs.Forward
	// Tunnel is a TUN real's encapsulation (IPIP when zero); ignored for
	// other methods.
	Tunnel lvs.Tunnel
	// UThreshold and LThreshold are IPVS's connection thresholds
	// (ipvsadm -x/-y, keepalived uthreshold/lthreshold): a real with
	// UThreshold connections or more is overloaded and gets no new ones
	// until it is below LThreshold (3/4 of UThreshold when 0). 0: none.
	UThreshold, LThreshold uint32
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

// Add sums two sets of counters.
func (c Counters) Add(o Counters) Counters {
	return Counters{Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes, Conns: c.Conns + o.Conns,
		OutPackets: c.OutPackets + o.OutPackets, OutBytes: c.OutBytes + o.OutBytes}
}

// ServiceStats are a service as the data plane holds it, its counters and
// its reals' (in Reals, which shadows the embedded Service's, left empty).
// What it holds is what was last applied, which differs from what is
// wanted when an Apply failed.
type ServiceStats struct {
	Service
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
	// NextHopChanges counts the reals' next hops changed at once on a
	// neighbour event (a real's address moved to another MAC).
	NextHopChanges uint64
}

// Conn is one entry of the connection table.
type Conn struct {
	// State is IPVS's name of the connection's state (ESTABLISHED, ...).
	State    string
	Protocol lvs.Protocol
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
	// Caps says what this data plane can forward. Apply refuses what
	// Caps.Validate refuses.
	Caps() Caps
	// Apply makes the data plane forward exactly these services. It
	// validates everything before changing anything: on error nothing is
	// applied. Established flows keep their reals.
	Apply(services []Service) error
	// SetStandby says which VIPs this director does not serve now (a VIP
	// owner's decision: VRRP BACKUP or FAULT, ...). Their services, those
	// applied already and those applied later, stay loaded (tables,
	// reals, flows) but forward nothing: their packets go to the kernel,
	// which does not hold the VIP, as on an IPVS backup. It changes only
	// that, without re-planning or waiting for anything, so that a role
	// flip forwards at once.
	SetStandby(vips map[netip.Addr]bool) error
	Stats() (Stats, error)
	Conns() ([]Conn, error)
	// SetTimeouts changes IPVS's TCP established, TCP FIN_WAIT and UDP
	// timeouts (ipvsadm --set); a zero leaves that one as it is.
	SetTimeouts(Timeouts) error
	Timeouts() (Timeouts, error)
	// SetDefence sets the flood defence (IPVS's drop_entry, drop_packet,
	// secure_tcp); it refuses what Defence.Check refuses.
	SetDefence(Defence) error
	Defence() (DefenceStatus, error)
	// Close removes everything the data plane made.
	Close() error
}

// Updater is a data plane that can change some services without being
// given the whole wanted state: what a health transition or one xlbadm
// edit needs, in a time that does not grow with the services that stay.
type Updater interface {
	// Update adds the services set or replaces theirs and removes those
	// of del (absent ones are no error); every other service stays as it
	// is. As Apply, it validates everything first and applies nothing on
	// error.
	Update(set []Service, del []ServiceKey) error
}

// CheckRouter is a data plane that can carry health checks the way
// clients' packets go (check_via_vip): a checker that connects to a real's
// own address with the socket mark CheckTarget returns reaches it through
// the VIP, as a client would (DR: the VIP to the real's MAC; TUN: through
// its tunnel), so a real that lost the VIP or its tunnel fails. release
// ends the registration when the checks stop.
type CheckRouter interface {
	CheckTarget(svc ServiceKey, r Real) (mark uint32, release func(), err error)
}

// CheckThrough says why real r of service svc cannot be checked through
// the VIP (check_via_vip) by any data plane, or nil: the service needs a
// VIP, and both addresses IPv4 so far.
func CheckThrough(svc ServiceKey, r Real) error {
	switch {
	case svc.FWMark != 0:
		return errors.New("a fwmark service has no VIP to check through")
	case svc.Addr.Is4() != r.Addr.Is4():
		return errors.New("checks through the data path go to a real of the VIP's family (a tunnel, NAT64 or NAT46 across families is checked at the real's address)")
	}
	return nil
}

// SyncDaemon is one of IPVS's connection-sync daemons (ipvsadm
// --start-daemon, keepalived's lvs_sync_daemon): a master multicasts the
// connections of this director, a backup installs its master's.
type SyncDaemon struct {
	Backup    bool   // a backup; else a master
	Interface string // --mcast-interface
	SyncID    uint8  // --syncid
	// MaxLen, Group, Port and TTL are --sync-maxlen, --mcast-group,
	// --mcast-port and --mcast-ttl; zero leaves the kernel's default.
	MaxLen uint16
	Group  netip.Addr
	Port   uint16
	TTL    uint8
}

// SyncDaemons is a data plane that runs IPVS's connection-sync daemons:
// the IPVS data plane drives the kernel's own.
type SyncDaemons interface {
	StartDaemon(SyncDaemon) error
	// StopDaemon stops the backup (backup true) or the master.
	StopDaemon(backup bool) error
	// Daemons are the daemons running, the master first.
	Daemons() ([]SyncDaemon, error)
}
