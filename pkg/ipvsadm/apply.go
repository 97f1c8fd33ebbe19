package ipvsadm

import (
	"net/netip"
	"slices"

	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// Schedulers are the scheduler names the kernel knows ("none" included:
// a service that never schedules). [State.Apply] refuses others with
// [ErrSchedulerNotFound], as the kernel does when no ip_vs_<name> module
// exists. A daemon that implements fewer may check further.
var Schedulers = append(sched.Names(nil), "none")

// PersistenceEngines are the --pe names the kernel knows.
var PersistenceEngines = []string{"sip"}

// Apply carries out a command that changes the table, with the kernel's
// checks and errors (see ip_vs_ctl.c): add, edit and delete services and
// real servers, clear, zero and --set. Commands that only read (list, save,
// help, version) leave the table alone and return nil; -R is
// [State.Restore]. The sync-daemon commands return [ErrNotSupported].
//
// As in IPVS, -E and -e replace every setting of the service or real server
// with the command's (ipvsadm fills in its defaults for those not given);
// -E keeps the real servers and their counters.
func (s *State) Apply(cmd Command) error {
	switch cmd.Kind {
	case CmdClear:
		s.Services = nil
		return nil
	case CmdSetTimeout:
		// Zero leaves a timeout as it is.
		if cmd.Timeouts.TCP != 0 {
			s.Timeouts.TCP = cmd.Timeouts.TCP
		}
		if cmd.Timeouts.TCPFin != 0 {
			s.Timeouts.TCPFin = cmd.Timeouts.TCPFin
		}
		if cmd.Timeouts.UDP != 0 {
			s.Timeouts.UDP = cmd.Timeouts.UDP
		}
		return nil
	case CmdZero:
		key := &cmd.Service
		if !cmd.HasService || (key.FWMark == 0 && key.Addr.IsUnspecified() && key.Port == 0) {
			for i := range s.Services {
				zeroService(&s.Services[i])
			}
			return nil
		}
		svc := s.Find(key)
		if svc == nil || svc.Protocol != key.Protocol {
			return kernelErr(ErrNoService)
		}
		zeroService(svc)
		return nil
	case CmdAddService:
		if s.Find(&cmd.Service) != nil {
			return kernelErr(ErrServiceExists)
		}
		if err := checkService(&cmd.Service); err != nil {
			return err
		}
		svc := cmd.Service
		svc.Dests = nil
		svc.Stats, svc.Rates = Stats{}, Rates{}
		s.Services = append(s.Services, svc)
		return nil
	case CmdEditService, CmdDeleteService:
		svc := s.Find(&cmd.Service)
		if svc == nil || svc.Protocol != cmd.Service.Protocol {
			return kernelErr(ErrNoService)
		}
		if cmd.Kind == CmdDeleteService {
			i := slices.IndexFunc(s.Services, func(x Service) bool { return SameService(&x, &cmd.Service) })
			s.Services = slices.Delete(s.Services, i, i+1)
			return nil
		}
		if err := checkService(&cmd.Service); err != nil {
			return err
		}
		u := &cmd.Service
		svc.Scheduler, svc.Flags, svc.Persistent = u.Scheduler, u.Flags, u.Persistent
		svc.Timeout, svc.Netmask, svc.PE = u.Timeout, u.Netmask, u.PE
		return nil
	case CmdAddServer, CmdEditServer, CmdDeleteServer:
		svc := s.Find(&cmd.Service)
		if svc == nil || svc.Protocol != cmd.Service.Protocol {
			return kernelErr(ErrServiceNotDefined)
		}
		return applyDest(svc, cmd)
	case CmdStartDaemon, CmdStopDaemon:
		return kernelErr(ErrNotSupported)
	case CmdAddLaddr, CmdDelLaddr:
		svc := s.Find(&cmd.Service)
		if svc == nil || svc.Protocol != cmd.Service.Protocol {
			return kernelErr(ErrNoService)
		}
		i := slices.Index(svc.LocalAddrs, cmd.Laddr)
		switch {
		case cmd.Kind == CmdAddLaddr && i >= 0:
			return kernelErr(ErrLaddrExists)
		case cmd.Kind == CmdAddLaddr:
			if !unicast(cmd.Laddr) {
				return kernelErr(ErrInvalid)
			}
			svc.LocalAddrs = append(slices.Clone(svc.LocalAddrs), cmd.Laddr)
		case i < 0:
			return kernelErr(ErrNoLaddr)
		default:
			svc.LocalAddrs = slices.Delete(slices.Clone(svc.LocalAddrs), i, i+1)
		}
		return nil
	}
	return nil
}

func zeroService(svc *Service) {
	svc.Stats, svc.Rates = Stats{}, Rates{}
	for i := range svc.Dests {
		svc.Dests[i].Stats, svc.Dests[i].Rates = Stats{}, Rates{}
	}
}

// checkService is what ip_vs_add_service and ip_vs_edit_service check.
func checkService(u *Service) error {
	if u.Protocol != lvs.TCP && u.Protocol != lvs.UDP && u.Protocol != lvs.SCTP {
		return kernelErr(ErrInvalid)
	}
	if !slices.Contains(Schedulers, u.Scheduler) {
		return kernelErr(ErrSchedulerNotFound)
	}
	if u.PE != "" && !slices.Contains(PersistenceEngines, u.PE) {
		return kernelErr(ErrSchedulerNotFound)
	}
	if u.Is6() && (u.Netmask < 1 || u.Netmask > 128) {
		return kernelErr(ErrInvalid)
	}
	return nil
}

func applyDest(svc *Service, cmd Command) error {
	u := cmd.Dest
	// The kernel only takes a real of another family for tunnelling;
	// xlb's FULLNAT (which the kernel has not) for NAT64 and NAT46.
	if u.Addr.Is6() != svc.Is6() && cmd.Kind != CmdDeleteServer && u.Forward != lvs.TUN && u.Forward != lvs.FNAT {
		return kernelErr(ErrInvalid)
	}
	i := slices.IndexFunc(svc.Dests, func(d Dest) bool { return d.Addr == u.Addr && d.Port == u.Port })
	if cmd.Kind == CmdDeleteServer {
		if i < 0 {
			return kernelErr(ErrNoDest)
		}
		svc.Dests = slices.Delete(svc.Dests, i, i+1)
		return nil
	}
	if u.Weight < 0 || u.LThreshold > u.UThreshold {
		return kernelErr(ErrRange)
	}
	if u.Forward == lvs.TUN && u.Tunnel == TunnelGUE && u.TunPort == 0 {
		return kernelErr(ErrInvalid)
	}
	if cmd.Kind == CmdAddServer {
		if i >= 0 {
			return kernelErr(ErrDestExists)
		}
		if !unicast(u.Addr) {
			return kernelErr(ErrInvalid)
		}
		d := u
		d.ActiveConns, d.InactConns, d.PersistConns = 0, 0, 0
		d.Stats, d.Rates = Stats{}, Rates{}
		svc.Dests = append(svc.Dests, d)
		return nil
	}
	if i < 0 {
		return kernelErr(ErrNoDest)
	}
	d := &svc.Dests[i]
	d.Forward, d.Weight, d.UThreshold, d.LThreshold = u.Forward, u.Weight, u.UThreshold, u.LThreshold
	d.Tunnel, d.TunPort, d.TunFlags = u.Tunnel, u.TunPort, u.TunFlags
	return nil
}

// unicast is the kernel's check on a new real server's address, less the
// routing-table part it cannot know here (local subnet broadcasts): no
// multicast, 0.0.0.0/8, limited broadcast, or IPv6 link-local.
func unicast(a netip.Addr) bool {
	if a.Is4() {
		b := a.As4()
		return b[0] != 0 && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	return !a.IsUnspecified() && !a.IsMulticast() && !a.IsLinkLocalUnicast()
}
