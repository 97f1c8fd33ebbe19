package ipvs

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"

	kipvs "github.com/cloudflare/ipvs"
	"golang.org/x/sys/unix"
)

// fakeIPVS is an in-memory IPVS with the kernel's rules that matter to the
// diff: services by (family, protocol, address, port), dests by address and
// port, a new dest at the head of the list, EEXIST/ESRCH/ENOENT as the
// kernel returns them, HASHED added to a service's flags, and 0 timeouts
// leaving the old value.
type fakeIPVS struct {
	mu       sync.Mutex
	services []*fakeService
	config   kipvs.Config
	// failOn makes the write whose number (1-based, counting every write
	// since the fake was made) it names fail with EIO.
	failOn int
	writes int
}

type fakeService struct {
	kipvs.ServiceExtended
	dests []kipvs.DestinationExtended
}

var _ kipvs.Client = (*fakeIPVS)(nil)

func newFakeIPVS() *fakeIPVS {
	return &fakeIPVS{config: kipvs.Config{TCPTimeout: 900, TCPFinTimeout: 120, UDPTimeout: 300}}
}

func sameIdentity(a, b kipvs.Service) bool {
	return a.Family == b.Family && a.FWMark == b.FWMark && a.Protocol == b.Protocol && a.Address == b.Address && a.Port == b.Port
}

func (f *fakeIPVS) find(s kipvs.Service) *fakeService {
	for _, x := range f.services {
		if sameIdentity(x.Service, s) {
			return x
		}
	}
	return nil
}

func (f *fakeIPVS) write() error {
	f.writes++
	if f.writes == f.failOn {
		return fmt.Errorf("fake write %d: %w", f.writes, unix.EIO)
	}
	return nil
}

func (f *fakeIPVS) Info() (kipvs.Info, error) {
	return kipvs.Info{Version: [3]int{1, 2, 1}, ConnectionTableSize: 4096}, nil
}

func (f *fakeIPVS) Config() (kipvs.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.config, nil
}

func (f *fakeIPVS) SetConfig(c kipvs.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(); err != nil {
		return err
	}
	for _, p := range [][2]*uint32{{&f.config.TCPTimeout, &c.TCPTimeout}, {&f.config.TCPFinTimeout, &c.TCPFinTimeout}, {&f.config.UDPTimeout, &c.UDPTimeout}} {
		if *p[1] != 0 {
			*p[0] = *p[1]
		}
	}
	return nil
}

func (f *fakeIPVS) Services() ([]kipvs.ServiceExtended, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kipvs.ServiceExtended
	for _, s := range f.services {
		out = append(out, s.ServiceExtended)
	}
	if len(out) == 0 {
		return nil, os.ErrNotExist // as the netlink client reports an empty dump
	}
	return out, nil
}

func (f *fakeIPVS) Service(s kipvs.Service) (kipvs.ServiceExtended, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.find(s)
	if x == nil {
		return kipvs.ServiceExtended{}, unix.ESRCH
	}
	return x.ServiceExtended, nil
}

func knownSched(name string) bool {
	return slices.Contains(Caps.Schedulers, name) || name == "mh"
}

func (f *fakeIPVS) CreateService(s kipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(); err != nil {
		return err
	}
	if f.find(s) != nil {
		return unix.EEXIST
	}
	if !knownSched(s.Scheduler) {
		return unix.ENOENT
	}
	s.Flags |= kipvs.ServiceHashed
	f.services = append(f.services, &fakeService{ServiceExtended: kipvs.ServiceExtended{Service: s}})
	return nil
}

func (f *fakeIPVS) UpdateService(s kipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(); err != nil {
		return err
	}
	x := f.find(s)
	if x == nil {
		return unix.ESRCH
	}
	if !knownSched(s.Scheduler) {
		return unix.ENOENT
	}
	s.Flags |= kipvs.ServiceHashed
	x.Service = s
	return nil
}

func (f *fakeIPVS) RemoveService(s kipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(); err != nil {
		return err
	}
	for i, x := range f.services {
		if sameIdentity(x.Service, s) {
			f.services = slices.Delete(f.services, i, i+1)
			return nil
		}
	}
	return unix.ESRCH
}

func (f *fakeIPVS) Destinations(s kipvs.Service) ([]kipvs.DestinationExtended, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The kernel dumps nothing for a missing service, and the netlink
	// client reports an empty dump as ErrNotExist.
	x := f.find(s)
	if x == nil || len(x.dests) == 0 {
		return nil, os.ErrNotExist
	}
	return slices.Clone(x.dests), nil
}

func destIndex(x *fakeService, d kipvs.Destination) int {
	return slices.IndexFunc(x.dests, func(h kipvs.DestinationExtended) bool {
		return netip.AddrPortFrom(h.Address, h.Port) == netip.AddrPortFrom(d.Address, d.Port)
	})
}

func (f *fakeIPVS) CreateDestination(s kipvs.Service, d kipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(); err != nil {
		return err
	}
	x := f.find(s)
	if x == nil {
		return unix.ESRCH
	}
	if destIndex(x, d) >= 0 {
		return unix.EEXIST
	}
	x.dests = slices.Insert(x.dests, 0, kipvs.DestinationExtended{Destination: d})
	return nil
}

func (f *fakeIPVS) UpdateDestination(s kipvs.Service, d kipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(); err != nil {
		return err
	}
	x := f.find(s)
	if x == nil {
		return unix.ESRCH
	}
	i := destIndex(x, d)
	if i < 0 {
		return unix.ENOENT
	}
	x.dests[i].Destination = d
	return nil
}

func (f *fakeIPVS) RemoveDestination(s kipvs.Service, d kipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write(); err != nil {
		return err
	}
	x := f.find(s)
	if x == nil {
		return unix.ESRCH
	}
	i := destIndex(x, d)
	if i < 0 {
		return unix.ENOENT
	}
	x.dests = slices.Delete(x.dests, i, i+1)
	return nil
}

// countingClient counts the writes that reach a client, kernel or fake.
type countingClient struct {
	kipvs.Client
	mu     sync.Mutex
	writes []string
}

func (c *countingClient) note(op string, s kipvs.Service, d *kipvs.Destination) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := fmt.Sprintf("%s %s %s", op, s.Protocol, netip.AddrPortFrom(s.Address, s.Port))
	if d != nil {
		w += " " + netip.AddrPortFrom(d.Address, d.Port).String()
	}
	c.writes = append(c.writes, w)
}

// take returns the writes since the last call.
func (c *countingClient) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

func (c *countingClient) SetConfig(x kipvs.Config) error {
	c.note("set-config", kipvs.Service{}, nil)
	return c.Client.SetConfig(x)
}

func (c *countingClient) CreateService(s kipvs.Service) error {
	c.note("add-service", s, nil)
	return c.Client.CreateService(s)
}

func (c *countingClient) UpdateService(s kipvs.Service) error {
	c.note("edit-service", s, nil)
	return c.Client.UpdateService(s)
}

func (c *countingClient) RemoveService(s kipvs.Service) error {
	c.note("del-service", s, nil)
	return c.Client.RemoveService(s)
}

func (c *countingClient) CreateDestination(s kipvs.Service, d kipvs.Destination) error {
	c.note("add-real", s, &d)
	return c.Client.CreateDestination(s, d)
}

func (c *countingClient) UpdateDestination(s kipvs.Service, d kipvs.Destination) error {
	c.note("edit-real", s, &d)
	return c.Client.UpdateDestination(s, d)
}

func (c *countingClient) RemoveDestination(s kipvs.Service, d kipvs.Destination) error {
	c.note("del-real", s, &d)
	return c.Client.RemoveDestination(s, d)
}
