package ipvs

import (
	"net/netip"
	"time"

	kipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Caps is what the kernel's IPVS forwards, as xlb drives it: DR, NAT and
// TUN (IPIP, GUE, GRE with their checksum options: a kernel older than
// 5.3 or 5.7 refuses GUE or GRE), IPv4 and IPv6 (a real of the other
// family by tunnel), TCP and UDP, fwmark and port-0 services, the scheduler flags and one-packet
// scheduling, and every scheduler of the kernel's (the registry's 14, as
// keepalived passes lvs_sched to the kernel): a kernel without one's module
// (twos before 6.2) refuses it, and the error names the module. The
// behaviour suite checks the kernel against the ones xlb has a model of
// (sched.Modelled).
var Caps = dataplane.Caps{
	Name:              "the IPVS data plane",
	Schedulers:        sched.Names(nil),
	Forwards:          []lvs.Forward{lvs.DR, lvs.NAT, lvs.TUN},
	Tunnels:           []lvs.TunnelType{lvs.TunIPIP, lvs.TunGUE, lvs.TunGRE},
	TunnelCsum:        true,
	TunnelCrossFamily: true,
	Protocols:         []lvs.Protocol{lvs.TCP, lvs.UDP},
	IPv6:              true,
	Flags:             lvs.SchedFlags | lvs.OnePacket,
	// sloppy_tcp and sloppy_sctp are sysctls.
	SloppyHostWide: true,
	Thresholds:     true,
	AllPorts:       true,
	FWMark:         true,
}

// Caps implements dataplane.Dataplane.
func (v *Dataplane) Caps() dataplane.Caps { return Caps }

// SetStandby implements dataplane.Dataplane: IPVS sees only packets to
// addresses this host holds, so a VIP's services forward nothing while its
// owner keeps the VIP off the host (a BACKUP) without being told.
func (v *Dataplane) SetStandby(map[netip.Addr]bool) error { return nil }

// desired is a service as IPVS will hold it.
type desired struct {
	key   dataplane.ServiceKey
	svc   kipvs.Service
	dests []kipvs.Destination
	reals []dataplane.Real // as given, for messages
}

// plan validates every service and converts it to IPVS's terms. It does not
// touch the kernel.
func plan(services []dataplane.Service) ([]desired, error) {
	if err := Caps.Validate(services); err != nil {
		return nil, err
	}
	out := make([]desired, 0, len(services))
	for _, s := range services {
		d := desired{key: s.ServiceKey, svc: kernelService(s), reals: s.Reals}
		for _, r := range s.Reals {
			d.dests = append(d.dests, kernelDest(r))
		}
		out = append(out, d)
	}
	return out, nil
}

func family(a netip.Addr) kipvs.AddressFamily {
	if a.Is4() {
		return kipvs.INET
	}
	return kipvs.INET6
}

// kernelService is s as IPVS stores it. A service without persistence gets
// the full-length mask, as ipvsadm sends it.
func kernelService(s dataplane.Service) kipvs.Service {
	svc := kipvs.Service{
		Address:   s.Addr,
		Port:      s.Port,
		Protocol:  kipvs.Protocol(s.Protocol),
		FWMark:    s.FWMark,
		Family:    family(s.Addr),
		Scheduler: s.Scheduler,
		Flags:     kipvs.Flags(s.Flags),
	}
	m := lvs.FullNetmask(s.Addr)
	if s.Persistence > 0 {
		svc.Flags |= kipvs.ServicePersistent
		svc.Timeout = uint32(s.Persistence / time.Second)
		m = s.PersistenceMask.Or(s.Addr)
	}
	if s.Addr.Is4() {
		svc.Netmask = netmask.MaskFrom4(m.Addr4().As4())
	} else {
		svc.Netmask = netmask.MaskFrom(int(m), 128)
	}
	return svc
}

func kernelDest(r dataplane.Real) kipvs.Destination {
	d := kipvs.Destination{
		Address:   r.Addr,
		Port:      r.Port,
		Family:    family(r.Addr),
		Weight:    uint32(r.Weight),
		FwdMethod: forwardMethod(r.Forward),
		// -x/-y, uthreshold/lthreshold.
		UpperThreshold: r.UThreshold,
		LowerThreshold: r.LThreshold,
	}
	if r.Forward == lvs.TUN {
		d.TunnelType = kipvs.TunnelType(r.Tunnel.Type)
		d.TunnelPort = r.Tunnel.Port
		d.TunnelFlags = kipvs.TunnelFlags(r.Tunnel.Flags)
	}
	return d
}

// tunnelOf is a kernel dest's tunnel settings, for a TUN dest.
func tunnelOf(d kipvs.Destination) lvs.Tunnel {
	if d.FwdMethod != kipvs.Tunnel {
		return lvs.Tunnel{}
	}
	return lvs.Tunnel{Type: lvs.TunnelType(d.TunnelType), Port: d.TunnelPort, Flags: lvs.TunnelFlags(d.TunnelFlags)}
}

// forwardMethod is f as netlink carries it: the kernel's values, which
// lvs.Forward has.
func forwardMethod(f lvs.Forward) kipvs.ForwardType { return kipvs.ForwardType(f) }

// forwardOf is the method a kernel dest has; a dest the kernel made Local
// (one of this host's addresses) was asked for as DR.
func forwardOf(m kipvs.ForwardType) lvs.Forward {
	if m == kipvs.Local {
		return lvs.DR
	}
	return lvs.Forward(m)
}

// heldService is a kernel service's settings in xlb's terms (kernelService
// read back).
func heldService(k dataplane.ServiceKey, s kipvs.Service) dataplane.Service {
	out := dataplane.Service{ServiceKey: k, Scheduler: s.Scheduler,
		Flags: lvs.SvcFlags(s.Flags) &^ (lvs.Persistent | lvs.Hashed)}
	if s.Flags&kipvs.ServicePersistent != 0 {
		out.Persistence = time.Duration(s.Timeout) * time.Second
		var m lvs.Netmask
		if k.Addr.Is4() {
			if b, ok := netip.AddrFromSlice(s.Netmask.AsSlice()); ok {
				m = lvs.Netmask4(b.Unmap())
			}
		} else {
			m = lvs.Netmask(s.Netmask.Bits())
		}
		if m != lvs.FullNetmask(k.Addr) {
			out.PersistenceMask = m
		}
	}
	return out
}

// keyOf names a kernel service in xlb's terms; ok is false for services
// xlb cannot have made (SCTP). A fwmark service is named by its mark and
// family alone.
func keyOf(s kipvs.Service) (dataplane.ServiceKey, bool) {
	if s.FWMark != 0 {
		a := netip.IPv4Unspecified()
		if s.Family == kipvs.INET6 {
			a = netip.IPv6Unspecified()
		}
		return dataplane.ServiceKey{Addr: a, FWMark: s.FWMark}, true
	}
	if s.Protocol != kipvs.TCP && s.Protocol != kipvs.UDP {
		return dataplane.ServiceKey{}, false
	}
	return dataplane.ServiceKey{Addr: s.Address, Port: s.Port, Protocol: lvs.Protocol(s.Protocol)}, true
}

// sameService reports whether the kernel's service already is what want
// says. The kernel adds the HASHED flag itself; timeout and mask mean
// nothing without persistence.
func sameService(have, want kipvs.Service) bool {
	const ignore = kipvs.ServiceHashed
	if have.Scheduler != want.Scheduler || have.Flags&^ignore != want.Flags&^ignore {
		return false
	}
	if want.Flags&kipvs.ServicePersistent == 0 {
		return true
	}
	return have.Timeout == want.Timeout && have.Netmask == want.Netmask
}

// sameDest reports whether the kernel's dest already is what want says,
// thresholds included; a kernel that marks a dest Local forwards it
// locally whatever it was asked.
func sameDest(have, want kipvs.Destination) bool {
	if have.Weight != want.Weight || have.UpperThreshold != want.UpperThreshold || have.LowerThreshold != want.LowerThreshold {
		return false
	}
	if have.FwdMethod != want.FwdMethod && have.FwdMethod != kipvs.Local {
		return false
	}
	if want.FwdMethod == kipvs.Tunnel {
		return have.TunnelType == want.TunnelType && have.TunnelPort == want.TunnelPort && have.TunnelFlags == want.TunnelFlags
	}
	return true
}
