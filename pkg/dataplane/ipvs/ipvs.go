package ipvs

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	kipvs "github.com/cloudflare/ipvs"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// ErrNoIPVS is returned by Open when the kernel has no IPVS to talk to.
var ErrNoIPVS = errors.New("the kernel has no IPVS")

// Options configure the IPVS data plane.
type Options struct {
	// NetNS is the path of the network namespace whose IPVS to drive
	// (/run/netns/NAME, /proc/PID/ns/net); "" is the caller's.
	NetNS string
	// StateFile records which services xlb made, so that a restarted
	// xlb removes the ones that left its configuration while it was down
	// (DefaultStateFile suits the daemon). "" keeps the record in memory.
	StateFile string
	// Client talks to IPVS; nil dials the kernel's over netlink. Tests
	// pass a fake, or the kernel's wrapped to count writes.
	Client kipvs.Client
	// ConnTable is the connection table to read; "" is the kernel's
	// /proc/net/ip_vs_conn in NetNS.
	ConnTable string
	// Sysctls is the directory of IPVS's sysctls; "" is the kernel's
	// /proc/sys/net/ipv4/vs in NetNS.
	Sysctls string
	// SloppyTCP and SloppySCTP set IPVS's sloppy_tcp and sloppy_sctp
	// (for every service of the protocol: the kernel has no other way).
	// Not set, they are on only while the services of the protocol all
	// ask for it (Service.Sloppy), and else as the host set them.
	SloppyTCP, SloppySCTP bool
	Logger                *slog.Logger
}

// DefaultStateFile is where the daemon keeps the list of its services.
const DefaultStateFile = "/run/xlb/ipvs-services.json"

// Dataplane is the IPVS implementation of dataplane.Dataplane.
type Dataplane struct {
	opts   Options
	log    *slog.Logger
	closer func() error // closes a client Open dialled

	mu    sync.Mutex
	c     kipvs.Client
	owned map[dataplane.ServiceKey]bool
	// sloppy: the sloppy_tcp/sloppy_sctp sysctls xlb turned on, to turn
	// off again when no service wants them.
	sloppy map[string]bool
}

var _ dataplane.Dataplane = (*Dataplane)(nil)

// Open connects to IPVS and reads which services an earlier xlb left
// (Options.StateFile). It changes nothing in the kernel.
func Open(opts Options) (*Dataplane, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	v := &Dataplane{opts: opts, log: opts.Logger, c: opts.Client, closer: func() error { return nil }}
	if v.c == nil {
		var c kipvs.Client
		var dialErr error
		if err := inNS(opts.NetNS, func() error {
			c, dialErr = kipvs.New()
			return nil
		}); err != nil {
			return nil, err
		}
		if dialErr != nil {
			// The generic netlink family is missing: no ip_vs module,
			// and the kernel could not load one.
			return nil, fmt.Errorf("%w: open the IPVS netlink family: %w (is CONFIG_IP_VS set and the ip_vs module available?)", ErrNoIPVS, dialErr)
		}
		v.c = c
		if cl, ok := c.(interface{ Close() error }); ok {
			v.closer = cl.Close
		}
	}
	fail := func(err error) (*Dataplane, error) {
		_ = v.closer()
		return nil, err
	}
	if _, err := v.c.Info(); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fail(fmt.Errorf("read IPVS info: %w (IPVS needs CAP_NET_ADMIN)", err))
		}
		return fail(fmt.Errorf("read IPVS info: %w", err))
	}
	owned, err := readState(opts.StateFile)
	if err != nil {
		return fail(err)
	}
	v.owned = map[dataplane.ServiceKey]bool{}
	if len(owned) > 0 {
		have, err := v.kernelServices()
		if err != nil {
			return fail(err)
		}
		for _, k := range owned {
			if _, ok := have[k]; ok {
				v.owned[k] = true
			}
		}
		v.log.Info("took over IPVS services an earlier xlb made", "services", len(v.owned))
	}
	return v, nil
}

// inNS runs fn in the network namespace at path ("" = here) on a thread of
// its own; the thread is thrown away afterwards. Sockets fn opens stay in
// that namespace.
func inNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, whatever
		// namespace it is in.
		runtime.LockOSThread()
		h, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", path, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// kernelServices are IPVS's services that xlb could have made, by key.
func (v *Dataplane) kernelServices() (map[dataplane.ServiceKey]kipvs.ServiceExtended, error) {
	list, err := v.c.Services()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list IPVS services: %w", err)
	}
	out := make(map[dataplane.ServiceKey]kipvs.ServiceExtended, len(list))
	for _, s := range list {
		if k, ok := keyOf(s.Service); ok {
			out[k] = s
		}
	}
	return out, nil
}

// Apply implements dataplane.Dataplane: IPVS ends up holding exactly these
// services of xlb's, changed in place where they exist.
func (v *Dataplane) Apply(services []dataplane.Service) error {
	want, err := plan(services)
	if err != nil {
		return err
	}
	sloppy, err := sloppyOf(services, map[lvs.Protocol]bool{lvs.TCP: v.opts.SloppyTCP, lvs.SCTP: v.opts.SloppySCTP})
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.setSloppy(sloppy); err != nil {
		return err
	}
	have, err := v.kernelServices()
	if err != nil {
		return err
	}
	wanted := map[dataplane.ServiceKey]bool{}
	for _, d := range want {
		wanted[d.key] = true
		cur, exists := have[d.key]
		if exists && !v.owned[d.key] {
			v.log.Warn("taking over an IPVS service xlb did not make", "service", d.key.String())
		}
		v.owned[d.key] = true
		if err := v.applyService(d, cur, exists); err != nil {
			v.saveState()
			return fmt.Errorf("service %s: %w (IPVS may hold part of this change; apply again)", d.key, err)
		}
	}
	var gone []dataplane.ServiceKey
	for k := range v.owned {
		if !wanted[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, compareKeys)
	for _, k := range gone {
		if s, ok := have[k]; ok {
			if err := v.c.RemoveService(s.Service); err != nil {
				v.saveState()
				return fmt.Errorf("remove service %s: %w", k, err)
			}
		}
		delete(v.owned, k)
	}
	v.saveState()
	return nil
}

// applyService makes one service what d says. New reals are added before
// old ones are deleted, so that the service never runs out of reals while
// it changes.
func (v *Dataplane) applyService(d desired, cur kipvs.ServiceExtended, exists bool) error {
	if !exists {
		if err := v.c.CreateService(d.svc); err != nil {
			return fmt.Errorf("add: %w", schedHint(err, d.svc.Scheduler))
		}
		for i, dst := range d.dests {
			if err := v.c.CreateDestination(d.svc, dst); err != nil {
				return fmt.Errorf("real %s: add: %w", d.reals[i], err)
			}
		}
		return nil
	}
	if !sameService(cur.Service, d.svc) {
		if err := v.c.UpdateService(d.svc); err != nil {
			return fmt.Errorf("edit: %w", schedHint(err, d.svc.Scheduler))
		}
	}
	dests, err := v.destinations(d.svc)
	if err != nil {
		return fmt.Errorf("list reals: %w", err)
	}
	byAddr := map[netip.AddrPort]kipvs.Destination{}
	for _, h := range dests {
		byAddr[netip.AddrPortFrom(h.Address, h.Port)] = h.Destination
	}
	keep := map[netip.AddrPort]bool{}
	for i, dst := range d.dests {
		ap := netip.AddrPortFrom(dst.Address, dst.Port)
		keep[ap] = true
		h, ok := byAddr[ap]
		switch {
		case !ok:
			if err := v.c.CreateDestination(d.svc, dst); err != nil {
				return fmt.Errorf("real %s: add: %w", d.reals[i], err)
			}
		case !sameDest(h, dst):
			if err := v.c.UpdateDestination(d.svc, dst); err != nil {
				return fmt.Errorf("real %s: edit: %w", d.reals[i], err)
			}
		}
	}
	for _, h := range dests {
		ap := netip.AddrPortFrom(h.Address, h.Port)
		if keep[ap] {
			continue
		}
		if err := v.c.RemoveDestination(d.svc, h.Destination); err != nil {
			return fmt.Errorf("real %s: remove: %w", ap, err)
		}
	}
	return nil
}

// destinations lists a service's dests. The client reports an empty dump as
// ErrNotExist, and the kernel dumps nothing for a service it does not have.
func (v *Dataplane) destinations(s kipvs.Service) ([]kipvs.DestinationExtended, error) {
	d, err := v.c.Destinations(s)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return d, err
}

// schedHint explains the kernel's ENOENT for a scheduler it cannot load.
func schedHint(err error, sched string) error {
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w (is the kernel module ip_vs_%s available?)", err, sched)
	}
	return err
}

// Stats implements dataplane.Dataplane for xlb's services, sorted by key;
// each service's reals are in the kernel's dest-list order.
func (v *Dataplane) Stats() (dataplane.Stats, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	have, err := v.kernelServices()
	if err != nil {
		return dataplane.Stats{}, err
	}
	out := dataplane.Stats{Reasons: map[string]uint64{}}
	for k := range v.owned {
		s, ok := have[k]
		if !ok {
			continue
		}
		dests, err := v.destinations(s.Service)
		if err != nil {
			return dataplane.Stats{}, fmt.Errorf("service %s: list reals: %w", k, err)
		}
		ss := dataplane.ServiceStats{Service: heldService(k, s.Service), Counters: counters(s.Stats64, s.Stats)}
		for _, d := range dests {
			ss.Reals = append(ss.Reals, dataplane.RealStats{
				Real: dataplane.Real{Addr: d.Address, Port: d.Port, Weight: int32(d.Weight),
					Forward: forwardOf(d.FwdMethod), Tunnel: tunnelOf(d.Destination), UThreshold: d.UpperThreshold, LThreshold: d.LowerThreshold},
				Counters:    counters(d.Stats64, d.Stats),
				Resolved:    true,
				ActiveConns: int64(d.ActiveConnections),
				InactConns:  int64(d.InactiveConnections),
			})
		}
		out.Services = append(out.Services, ss)
	}
	slices.SortFunc(out.Services, func(a, b dataplane.ServiceStats) int { return compareKeys(a.ServiceKey, b.ServiceKey) })
	return out, nil
}

// counters prefers the 64-bit statistics; kernels before 4.2 send only the
// 32-bit ones.
func counters(s64, s32 kipvs.Stats) dataplane.Counters {
	s := s64
	if s64 == (kipvs.Stats{}) {
		s = s32
	}
	return dataplane.Counters{Packets: s.IncomingPackets, Bytes: s.IncomingBytes, Conns: s.Connections,
		OutPackets: s.OutgoingPackets, OutBytes: s.OutgoingBytes}
}

func compareKeys(a, b dataplane.ServiceKey) int {
	return cmp.Or(cmp.Compare(a.FWMark, b.FWMark), a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
}

// maxTimeout is the largest timeout every kernel takes (INT_MAX jiffies
// at HZ=250 is 99 days; the XDP data plane's limit is the same 100 days).
const maxTimeout = 100 * 24 * time.Hour

// SetTimeouts implements dataplane.Dataplane (ipvsadm --set).
func (v *Dataplane) SetTimeouts(t dataplane.Timeouts) error {
	for _, d := range []time.Duration{t.TCP, t.TCPFin, t.UDP} {
		if d != 0 && (d < time.Second || d > maxTimeout) {
			return fmt.Errorf("timeout %v out of range (1 s to 100 days)", d)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// The kernel leaves a zero as it is, as the interface asks.
	err := v.c.SetConfig(kipvs.Config{TCPTimeout: uint32(t.TCP / time.Second),
		TCPFinTimeout: uint32(t.TCPFin / time.Second), UDPTimeout: uint32(t.UDP / time.Second)})
	if err != nil {
		return fmt.Errorf("set IPVS timeouts: %w", err)
	}
	return nil
}

// Timeouts implements dataplane.Dataplane (ipvsadm -L --timeout).
func (v *Dataplane) Timeouts() (dataplane.Timeouts, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, err := v.c.Config()
	if err != nil {
		return dataplane.Timeouts{}, fmt.Errorf("read IPVS timeouts: %w", err)
	}
	return dataplane.Timeouts{TCP: time.Duration(c.TCPTimeout) * time.Second,
		TCPFin: time.Duration(c.TCPFinTimeout) * time.Second, UDP: time.Duration(c.UDPTimeout) * time.Second}, nil
}

// TableInfo is IPVS's version and connection hash table size, as the
// kernel reports them to ipvsadm for its header (the size is the build's
// CONFIG_IP_VS_TAB_BITS, or the ip_vs module's conn_tab_bits).
func (v *Dataplane) TableInfo() (version uint32, size int, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	info, err := v.c.Info()
	if err != nil {
		return 0, 0, fmt.Errorf("read IPVS info: %w", err)
	}
	version = uint32(info.Version[0])<<16 | uint32(info.Version[1])<<8 | uint32(info.Version[2])
	return version, int(info.ConnectionTableSize), nil
}

// Close implements dataplane.Dataplane: it removes xlb's services (their
// connections go with them) and forgets them.
func (v *Dataplane) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	have, err := v.kernelServices()
	if err != nil {
		errs = append(errs, err)
	}
	for k := range v.owned {
		s, ok := have[k]
		if !ok {
			delete(v.owned, k)
			continue
		}
		if err := v.c.RemoveService(s.Service); err != nil {
			errs = append(errs, fmt.Errorf("remove service %s: %w", k, err))
			continue
		}
		delete(v.owned, k)
	}
	v.saveState()
	errs = append(errs, v.closer())
	return errors.Join(errs...)
}

// Release lets go of IPVS and leaves xlb's services forwarding, for a
// restarted xlb (with the same StateFile) to take over.
func (v *Dataplane) Release() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closer()
}
