package ipvsdp

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// schedulers are the IPVS schedulers xlb names (the XDP data plane's set).
var schedulers = []string{"rr", "wrr", "sh", "dh", "lc", "wlc", "sed", "nq"}

// maxPersist keeps timeout·HZ within the kernel's unsigned int for HZ up to
// 1000.
const maxPersist = time.Duration(math.MaxUint32/1000) * time.Second

// desired is a service as IPVS will hold it.
type desired struct {
	key   dataplane.ServiceKey
	svc   ipvs.Service
	dests []ipvs.Destination
	reals []dataplane.Real // as given, for messages
}

// plan validates every service and converts it to IPVS's terms. It does not
// touch the kernel.
func plan(services []dataplane.Service) ([]desired, error) {
	seen := map[dataplane.ServiceKey]bool{}
	out := make([]desired, 0, len(services))
	for _, s := range services {
		if err := validService(s); err != nil {
			return nil, fmt.Errorf("service %s: %w", s.ServiceKey, err)
		}
		if seen[s.ServiceKey] {
			return nil, fmt.Errorf("service %s: listed twice", s.ServiceKey)
		}
		seen[s.ServiceKey] = true
		d := desired{key: s.ServiceKey, svc: kernelService(s), reals: s.Reals}
		reals := map[netip.AddrPort]bool{}
		for _, r := range s.Reals {
			if err := validReal(s, r); err != nil {
				return nil, fmt.Errorf("service %s: real %s: %w", s.ServiceKey, r, err)
			}
			ap := netip.AddrPortFrom(r.Addr, r.Port)
			if reals[ap] {
				return nil, fmt.Errorf("service %s: real %s listed twice", s.ServiceKey, r)
			}
			reals[ap] = true
			d.dests = append(d.dests, kernelDest(r))
		}
		out = append(out, d)
	}
	return out, nil
}

func validService(s dataplane.Service) error {
	if !s.Addr.IsValid() || s.Addr.Is4In6() || s.Addr.Zone() != "" {
		return fmt.Errorf("address %q is not a plain IPv4 or IPv6 address", s.Addr)
	}
	if s.Protocol != dataplane.TCP && s.Protocol != dataplane.UDP {
		return fmt.Errorf("protocol must be TCP or UDP")
	}
	if s.Port == 0 {
		return fmt.Errorf("port 0 (all-ports services) is not supported")
	}
	known := false
	for _, n := range schedulers {
		known = known || n == s.Scheduler
	}
	if !known {
		return fmt.Errorf("scheduler %q is not supported (rr, wrr, sh, dh, lc, wlc, sed, nq)", s.Scheduler)
	}
	if s.Flags&^(dataplane.SHFallback|dataplane.SHPort) != 0 {
		return fmt.Errorf("unknown scheduler flags %#x", uint16(s.Flags))
	}
	if s.Persistence < 0 || (s.Persistence > 0 && s.Persistence < time.Second) || s.Persistence > maxPersist ||
		s.PersistenceMask < 0 || s.PersistenceMask > s.Addr.BitLen() {
		return fmt.Errorf("persistence %v /%d out of range", s.Persistence, s.PersistenceMask)
	}
	return nil
}

func validReal(s dataplane.Service, r dataplane.Real) error {
	if !r.Addr.IsValid() || r.Addr.Is4In6() || r.Addr.Zone() != "" {
		return fmt.Errorf("address %q is not a plain IPv4 or IPv6 address", r.Addr)
	}
	if r.Weight < 0 {
		return fmt.Errorf("weight %d is negative", r.Weight)
	}
	if r.Port == 0 {
		return fmt.Errorf("port 0")
	}
	switch r.Forward {
	case dataplane.DR, dataplane.Tunnel:
		if r.Port != s.Port {
			return fmt.Errorf("%s cannot map ports; the real's port must be %d", lvsName(r.Forward), s.Port)
		}
	case dataplane.NAT:
	default:
		return fmt.Errorf("unknown forwarding method %s", r.Forward)
	}
	// Only a tunnel can cross families: the packet is wrapped whole.
	if r.Addr.Is4() != s.Addr.Is4() && r.Forward != dataplane.Tunnel {
		return fmt.Errorf("an IPv%d real of an IPv%d service needs tunnel forwarding", ipVersion(r.Addr), ipVersion(s.Addr))
	}
	return nil
}

// lvsName is a forwarding method as keepalived's lb_kind names it.
func lvsName(f dataplane.Forward) string {
	switch f {
	case dataplane.DR:
		return "DR"
	case dataplane.NAT:
		return "NAT"
	case dataplane.Tunnel:
		return "TUN"
	}
	return f.String()
}

func ipVersion(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func family(a netip.Addr) ipvs.AddressFamily {
	if a.Is4() {
		return ipvs.INET
	}
	return ipvs.INET6
}

// kernelService is s as IPVS stores it. A service without persistence gets
// the full-length mask, as ipvsadm sends it.
func kernelService(s dataplane.Service) ipvs.Service {
	svc := ipvs.Service{
		Address:   s.Addr,
		Port:      s.Port,
		Protocol:  ipvs.Protocol(s.Protocol),
		Family:    family(s.Addr),
		Scheduler: s.Scheduler,
		Flags:     ipvs.Flags(s.Flags),
	}
	bits := s.Addr.BitLen()
	if s.Persistence > 0 {
		svc.Flags |= ipvs.ServicePersistent
		svc.Timeout = uint32(s.Persistence / time.Second)
		if s.PersistenceMask != 0 {
			bits = s.PersistenceMask
		}
	}
	svc.Netmask = netmask.MaskFrom(bits, s.Addr.BitLen())
	return svc
}

func kernelDest(r dataplane.Real) ipvs.Destination {
	return ipvs.Destination{
		Address:   r.Addr,
		Port:      r.Port,
		Family:    family(r.Addr),
		Weight:    uint32(r.Weight),
		FwdMethod: forwardMethod(r.Forward),
		// TunnelType zero is IPIP, what ipvsadm -i and keepalived
		// lb_kind TUN make.
	}
}

func forwardMethod(f dataplane.Forward) ipvs.ForwardType {
	switch f {
	case dataplane.NAT:
		return ipvs.Masquerade
	case dataplane.Tunnel:
		return ipvs.Tunnel
	}
	return ipvs.DirectRoute
}

func forwardOf(m ipvs.ForwardType) dataplane.Forward {
	switch m {
	case ipvs.Masquerade:
		return dataplane.NAT
	case ipvs.Tunnel:
		return dataplane.Tunnel
	}
	return dataplane.DR
}

// keyOf names a kernel service in xlb's terms; ok is false for services
// xlb cannot have made (fwmark, SCTP).
func keyOf(s ipvs.Service) (dataplane.ServiceKey, bool) {
	if s.FWMark != 0 || (s.Protocol != ipvs.TCP && s.Protocol != ipvs.UDP) {
		return dataplane.ServiceKey{}, false
	}
	return dataplane.ServiceKey{Addr: s.Address, Port: s.Port, Protocol: dataplane.Protocol(s.Protocol)}, true
}

// sameService reports whether the kernel's service already is what want
// says. The kernel adds the HASHED flag itself; timeout and mask mean
// nothing without persistence.
func sameService(have, want ipvs.Service) bool {
	const ignore = ipvs.ServiceHashed
	if have.Scheduler != want.Scheduler || have.Flags&^ignore != want.Flags&^ignore {
		return false
	}
	if want.Flags&ipvs.ServicePersistent == 0 {
		return true
	}
	return have.Timeout == want.Timeout && have.Netmask == want.Netmask
}

// sameDest reports whether the kernel's dest already is what want says.
// Thresholds xlb does not set must be 0 (someone may have set them by
// hand); a kernel that marks a dest Local forwards it locally whatever it
// was asked.
func sameDest(have, want ipvs.Destination) bool {
	if have.Weight != want.Weight || have.UpperThreshold != 0 || have.LowerThreshold != 0 {
		return false
	}
	if have.FwdMethod != want.FwdMethod && have.FwdMethod != ipvs.Local {
		return false
	}
	if want.FwdMethod == ipvs.Tunnel {
		return have.TunnelType == want.TunnelType && have.TunnelPort == want.TunnelPort && have.TunnelFlags == want.TunnelFlags
	}
	return true
}
