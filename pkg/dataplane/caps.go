package dataplane

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// Caps is what a data plane can forward. Each implementation declares its
// own (xdp.Caps, ipvs.Caps). The same rules, CheckService and CheckReal,
// decide both whether an Apply is accepted and what the director refuses
// in a keepalived.conf (with file:line): what `xlb check` accepts is what
// the data plane will take.
type Caps struct {
	// Name names the data plane in messages: "the XDP data plane".
	Name string
	// Schedulers it computes, by name (from pkg/sched's registry).
	Schedulers []string
	// Forwards are the forwarding methods it has, in the order messages
	// list them.
	Forwards  []lvs.Forward
	Protocols []lvs.Protocol
	// Tunnels are the encapsulations it has for TUN reals, and
	// TunnelCsum whether it computes GUE's and GRE's optional checksums
	// (csum, remcsum); TunnelCrossFamily whether a tunnel may carry a
	// service's packets to a real of the other family.
	Tunnels           []lvs.TunnelType
	TunnelCsum        bool
	TunnelCrossFamily bool
	// CheckViaVIP: it can carry health checks the way clients' packets
	// go (check_via_vip; CheckRouter).
	CheckViaVIP bool
	// IPv6 services and reals; a real of the other family than its
	// service is possible only by tunnel.
	IPv6 bool
	// MaxLocalAddrs is how many local addresses (FULLNAT) a service
	// may have; TOA whether it passes FULLNAT clients' addresses in TCP
	// option 254.
	MaxLocalAddrs int
	// NAT64: FULLNAT takes an IPv6 service to IPv4 reals (DPVS's NAT64);
	// NAT46 an IPv4 service to IPv6 reals (without TOA).
	NAT64, NAT46 bool
	TOA          bool
	// IPv6Forwards, when set, are the only forwarding methods an IPv6
	// service's reals may have (Forwards are then IPv4's).
	IPv6Forwards []lvs.Forward
	// Flags are the service flags it honours.
	Flags lvs.SvcFlags
	// Thresholds: it honours reals' connection thresholds (Real.UThreshold,
	// LThreshold).
	Thresholds bool
	// AllPorts: it serves port-0 services (every port of the VIP, IPVS's
	// catch-all after the services of single ports); FWMark: firewall-mark
	// services; FWMarkWhy says why not.
	AllPorts  bool
	FWMark    bool
	FWMarkWhy string
	// MaxServices and MaxReals are how many services, and reals of all
	// services together (counted per service, as IPVS counts dests), it
	// holds at once (xlb run --max-services, --max-reals); 0 is no limit
	// of its own.
	MaxServices, MaxReals int
	// SloppyHostWide: sloppy_tcp and sloppy_sctp are one switch for all
	// services of a protocol (IPVS's sysctls), so their services all have
	// Service.Sloppy or none has.
	SloppyHostWide bool
}

// MaxPersistence keeps a persistence timeout in seconds times HZ within
// the kernel's unsigned int for HZ up to 1000.
const MaxPersistence = time.Duration(math.MaxUint32/1000) * time.Second

// CheckService says why c cannot serve s itself (its reals aside), or nil.
func (c Caps) CheckService(s Service) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !plainAddr(s.Addr) {
		bad("address %q is not a plain IPv4 or IPv6 address", s.Addr)
	} else if !s.Addr.Is4() && !c.IPv6 {
		bad("only IPv4 virtual servers are supported by %s so far", c.Name)
	}
	switch {
	case s.FWMark != 0:
		if !c.FWMark {
			bad("firewall-mark services are not supported by %s: %s", c.Name, c.FWMarkWhy)
		}
		if !s.Addr.IsUnspecified() || s.Port != 0 || s.Protocol != 0 {
			bad("a firewall-mark service has no address, port or protocol")
		}
	default:
		if !slices.Contains(c.Protocols, s.Protocol) {
			bad("protocol %s is not supported by %s (%s are)", s.Protocol, c.Name, list(c.Protocols, lvs.Protocol.String))
		}
		if s.Port == 0 && !c.AllPorts {
			bad("port 0 (all-ports services) is not supported by %s", c.Name)
		}
		if s.Port == 0 && s.Persistence == 0 {
			bad("port 0 (all ports) needs persistence, as IPVS requires")
		}
	}
	if !slices.Contains(c.Schedulers, s.Scheduler) {
		bad("scheduler %s is not supported by %s (%s are)", s.Scheduler, c.Name, strings.Join(c.Schedulers, ", "))
	}
	if f := s.Flags &^ c.Flags; f != 0 {
		what := fmt.Sprintf("service flags %#x", uint32(f))
		if f == lvs.OnePacket {
			what = "one-packet scheduling (ops)"
		}
		bad("%s: not supported by %s", what, c.Name)
	}
	fnat := slices.ContainsFunc(s.Reals, func(r Real) bool { return r.Forward == lvs.FNAT })
	switch {
	case fnat && len(s.LocalAddrs) == 0 && slices.Contains(c.Forwards, lvs.FNAT):
		bad("FULLNAT (lvs_method FNAT) needs local addresses: laddr_group_name naming a local_address_group, or xlbadm --add-laddr")
	case len(s.LocalAddrs) > c.MaxLocalAddrs && fnat && slices.Contains(c.Forwards, lvs.FNAT):
		bad("%d local addresses; %s takes at most %d per service", len(s.LocalAddrs), c.Name, c.MaxLocalAddrs)
	}
	if s.TOA && !c.TOA {
		bad("toa (the client's address in a TCP option, for FULLNAT) is not supported by %s", c.Name)
	}
	// A local address talks to reals of its own family: each family of
	// FULLNAT reals needs one (by IP version: 4 or 6).
	fnatFamily, localFamily := map[int]bool{}, map[int]bool{}
	for _, r := range s.Reals {
		if r.Forward == lvs.FNAT && plainAddr(r.Addr) {
			fnatFamily[ipVersion(r.Addr)] = true
		}
	}
	for _, a := range s.LocalAddrs {
		localFamily[ipVersion(a)] = true
	}
	for _, v := range slices.Sorted(maps.Keys(fnatFamily)) {
		if len(s.LocalAddrs) > 0 && !localFamily[v] {
			bad("FULLNAT to IPv%d reals needs an IPv%d local address, and none is listed", v, v)
		}
	}
	seenLocal := map[netip.Addr]bool{}
	for _, a := range s.LocalAddrs {
		switch {
		case !plainAddr(a):
			bad("local address %q is not a plain IPv4 or IPv6 address", a)
		case len(fnatFamily) > 0 && !fnatFamily[ipVersion(a)]:
			bad("local address %s is IPv%d, and no FULLNAT real is: a local address is of its reals' family", a, ipVersion(a))
		case seenLocal[a]:
			bad("local address %s listed twice", a)
		}
		seenLocal[a] = true
	}
	if s.Persistence < 0 || (s.Persistence > 0 && s.Persistence < time.Second) || s.Persistence > MaxPersistence ||
		(s.Addr.Is6() && s.PersistenceMask > 128) {
		bad("persistence %v mask %s out of range", s.Persistence, s.PersistenceMask.Format(s.Addr))
	}
	return errors.Join(errs...)
}

// CheckReal says why c cannot serve r as a real of s, or nil.
func (c Caps) CheckReal(s Service, r Real) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !plainAddr(r.Addr) {
		bad("address %q is not a plain IPv4 or IPv6 address", r.Addr)
	} else if !r.Addr.Is4() && !c.IPv6 {
		bad("only IPv4 real servers are supported by %s so far", c.Name)
	}
	if r.Weight < 0 {
		bad("weight %d is negative", r.Weight)
	}
	if r.Port == 0 && s.Port != 0 && s.FWMark == 0 {
		bad("port 0")
	}
	if (r.UThreshold != 0 || r.LThreshold != 0) && !c.Thresholds {
		bad("connection thresholds (uthreshold/lthreshold, ipvsadm -x/-y) are not supported by %s", c.Name)
	} else if r.LThreshold > r.UThreshold {
		bad("lthreshold %d is above uthreshold %d, which IPVS refuses", r.LThreshold, r.UThreshold)
	}
	switch {
	case !slices.Contains(c.Forwards, r.Forward):
		bad("lvs_method %s is not supported by %s (%s are)", r.Forward.Kind(), c.Name, list(c.Forwards, lvs.Forward.Kind))
	case s.Addr.Is6() && c.IPv6Forwards != nil && !slices.Contains(c.IPv6Forwards, r.Forward):
		bad("lvs_method %s for an IPv6 service is not supported by %s yet (for IPv6 it has %s)", r.Forward.Kind(), c.Name, list(c.IPv6Forwards, lvs.Forward.Kind))
	case r.Forward == lvs.FNAT && s.FWMark != 0:
		bad("FULLNAT for a firewall-mark service is not supported by %s", c.Name)
	case !r.Forward.Translates() && r.Port != s.Port && r.Port != 0 && s.Port != 0 && s.FWMark == 0:
		bad("%s cannot map ports; the real's port must be %d", r.Forward.Kind(), s.Port)
	}
	if r.Forward == lvs.TUN && slices.Contains(c.Forwards, lvs.TUN) {
		switch err := r.Tunnel.Check(); {
		case err != nil:
			bad("%v", err)
		case !slices.Contains(c.Tunnels, r.Tunnel.Type):
			bad("tunnel type %s is not supported by %s (%s are)", r.Tunnel.Type, c.Name, list(c.Tunnels, lvs.TunnelType.String))
		case r.Tunnel.Flags != lvs.TunNoCsum && !c.TunnelCsum:
			bad("tunnel checksum option %s is not supported by %s (nocsum is)", r.Tunnel.Flags, c.Name)
		}
	}
	// Only a tunnel (the packet wrapped whole) and FULLNAT (both ends
	// translated: NAT64) can cross families.
	if plainAddr(r.Addr) && plainAddr(s.Addr) && r.Addr.Is4() != s.Addr.Is4() {
		switch {
		case r.Forward == lvs.FNAT && !slices.Contains(c.Forwards, lvs.FNAT):
			// refused above: no FULLNAT at all
		case r.Forward == lvs.FNAT && r.Addr.Is6() && !c.NAT46:
			bad("an IPv6 real of an IPv4 service by FULLNAT (NAT46) is not supported by %s", c.Name)
		case r.Forward == lvs.FNAT && r.Addr.Is6() && s.TOA:
			// DPVS, whose option this is, has no NAT46 to follow.
			bad("toa to an IPv6 real of an IPv4 service (NAT46) is not supported by %s: the real would get the IPv4 client's address in an option no toa module reads over IPv6", c.Name)
		case r.Forward == lvs.FNAT && !c.NAT64:
			bad("an IPv4 real of an IPv6 service by FULLNAT (NAT64) is not supported by %s", c.Name)
		case r.Forward == lvs.FNAT:
		case r.Forward != lvs.TUN:
			bad("an IPv%d real of an IPv%d service needs tunnel forwarding", ipVersion(r.Addr), ipVersion(s.Addr))
		case !c.TunnelCrossFamily:
			bad("an IPv%d real of an IPv%d service (a tunnel across families) is not supported by %s", ipVersion(r.Addr), ipVersion(s.Addr), c.Name)
		}
	}
	return errors.Join(errs...)
}

// CheckSize says whether services and reals, so many of each, fit.
func (c Caps) CheckSize(services, reals int) error {
	var errs []error
	if c.MaxServices > 0 && services > c.MaxServices {
		errs = append(errs, fmt.Errorf("%d virtual services; %s holds %d (--max-services)", services, c.Name, c.MaxServices))
	}
	if c.MaxReals > 0 && reals > c.MaxReals {
		errs = append(errs, fmt.Errorf("%d real servers (counted per service); %s holds %d (--max-reals)", reals, c.Name, c.MaxReals))
	}
	return errors.Join(errs...)
}

// Validate checks an Apply's input: how many services and reals, every
// service and real against c, and none listed twice. Errors name the
// service and the real.
func (c Caps) Validate(services []Service) error {
	reals := 0
	for _, s := range services {
		reals += len(s.Reals)
	}
	if err := c.CheckSize(len(services), reals); err != nil {
		return err
	}
	seen := make(map[ServiceKey]bool, len(services))
	for _, s := range services {
		if err := c.CheckService(s); err != nil {
			return fmt.Errorf("service %s: %w", s.ServiceKey, err)
		}
		if seen[s.ServiceKey] {
			return fmt.Errorf("service %s: listed twice", s.ServiceKey)
		}
		seen[s.ServiceKey] = true
		reals := make(map[netip.AddrPort]bool, len(s.Reals))
		for _, r := range s.Reals {
			if err := c.CheckReal(s, r); err != nil {
				return fmt.Errorf("service %s: real %s: %w", s.ServiceKey, r, err)
			}
			ap := netip.AddrPortFrom(r.Addr, r.Port)
			if reals[ap] {
				return fmt.Errorf("service %s: real %s listed twice", s.ServiceKey, r)
			}
			reals[ap] = true
		}
	}
	return nil
}

func plainAddr(a netip.Addr) bool { return a.IsValid() && !a.Is4In6() && a.Zone() == "" }

func ipVersion(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func list[T any](xs []T, name func(T) string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = name(x)
	}
	return strings.Join(s, ", ")
}
