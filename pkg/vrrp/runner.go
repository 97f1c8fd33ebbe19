package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/failpoint"
)

// VIPManager configures the virtual addresses. Both calls are idempotent:
// adding a present address or removing an absent one is not an error.
// NetlinkVIPs is the real one.
type VIPManager interface {
	AddVIPs(vips []netip.Prefix) error
	RemoveVIPs(vips []netip.Prefix) error
}

// NetlinkVIPs adds and removes VIPs on one interface through netlink.
// IPv6 VIPs are added as keepalived adds them (see vipAddrToAdd): nodad,
// and deprecated if /128.
type NetlinkVIPs struct {
	// Handle is the netlink handle to use, e.g. netlink.NewHandleAt for
	// another namespace. Nil means the package-level netlink functions.
	Handle *netlink.Handle
	Link   string
}

var _ VIPManager = NetlinkVIPs{}

func (n NetlinkVIPs) h() *netlink.Handle {
	if n.Handle != nil {
		return n.Handle
	}
	return &netlink.Handle{}
}

// lifetimeForever is the infinite address lifetime, INFINITY_LIFE_TIME.
var lifetimeForever uint32 = 0xffffffff

func vipAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   net.IP(p.Addr().AsSlice()),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}

// vipAddrToAdd is vipAddr with the flags keepalived's netlink_ipaddress adds
// IPv6 VIPs with: nodad, so the address is usable at once and a split brain
// cannot leave it dadfailed; and, for a /128, preferred_lft 0 (deprecated,
// RFC 3484) so the kernel does not pick the VIP as a source address.
func vipAddrToAdd(p netip.Prefix) *netlink.Addr {
	a := vipAddr(p)
	if p.Addr().Is6() {
		a.Flags |= unix.IFA_F_NODAD
		if p.Bits() == 128 {
			a.PreferedLft, a.ValidLft = 0, int(lifetimeForever)
		}
	}
	return a
}

// AddVIPs implements VIPManager.
func (n NetlinkVIPs) AddVIPs(vips []netip.Prefix) error {
	h := n.h()
	link, err := h.LinkByName(n.Link)
	if err != nil {
		return fmt.Errorf("add vips: link %s: %w", n.Link, err)
	}
	var errs []error
	for _, p := range vips {
		if err := h.AddrAdd(link, vipAddrToAdd(p)); err != nil && !errors.Is(err, syscall.EEXIST) {
			errs = append(errs, fmt.Errorf("add vip %s to %s: %w", p, n.Link, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveVIPs implements VIPManager.
func (n NetlinkVIPs) RemoveVIPs(vips []netip.Prefix) error {
	h := n.h()
	link, err := h.LinkByName(n.Link)
	if err != nil {
		return fmt.Errorf("remove vips: link %s: %w", n.Link, err)
	}
	var errs []error
	for _, p := range vips {
		if err := h.AddrDel(link, vipAddr(p)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove vip %s from %s: %w", p, n.Link, err))
		}
	}
	return errors.Join(errs...)
}

// Clock is the Runner's time source.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) *time.Timer
}

type realClock struct{}

func (realClock) Now() time.Time                       { return time.Now() }
func (realClock) NewTimer(d time.Duration) *time.Timer { return time.NewTimer(d) }

// RunnerConfig is one vrrp_instance with the means to run it.
type RunnerConfig struct {
	// Instance is the state machine configuration. A zero PrimaryIP is
	// filled in from Conn.Source.
	Instance Config
	// Resume starts the instance MASTER at once (Machine.Resume): a
	// handoff from this director's previous process, which was MASTER.
	Resume bool
	// VIPs are the virtual_ipaddress entries: a /32 for a bare IPv4
	// address, a /128 for a bare IPv6 one (keepalived's defaults). All of
	// one family, that of Conn.Source; IPv6 needs Instance.Version 3.
	VIPs []netip.Prefix

	AuthType         AuthType // VRRPv2
	AuthPass         string
	SkipCheckAdvAddr bool
	V3ChecksumAsV2   bool
	CheckUnicastSrc  bool
	// Peers bound unicast TTLs when CheckUnicastSrc is set. Unicast mode
	// itself follows from Conn.Destinations.
	Peers []UnicastPeer

	Conn PacketConn // required
	ARP  ARPSender  // nil: no gratuitous ARPs for IPv4 VIPs
	// NA sends the unsolicited neighbour advertisements that stand in for
	// gratuitous ARPs with IPv6 VIPs, with the same garp_* timing. Nil: none.
	NA    NASender
	Addrs VIPManager // nil: VIPs are not configured
	Clock Clock      // nil: the real clock
	// OnNotify is called, from the Runner's goroutine, on every transition.
	OnNotify func(Notify)
	// CanGoMaster is asked, from the Runner's goroutine, whenever a sync
	// group member (Instance.SyncGroup) wants MASTER (WantMaster): true
	// makes it MASTER at once. It is keepalived's vrrp_sync_can_goto_master:
	// true when the group is MASTER or every other member WantsMaster. Nil
	// means never; only SyncMaster then makes the instance MASTER. Like
	// OnNotify it must not wait for a Runner: this one's methods wait for
	// the very goroutine it runs in, and another's may be waiting for this
	// one. Make the other members MASTER from another goroutine.
	CanGoMaster func() bool
	// Logf reports I/O errors; nil discards them.
	Logf func(format string, args ...any)
	// DropLogf reports dropped adverts, the first of each reason and then
	// at most one line per reason every 10 s; nil sends them to Logf.
	DropLogf func(format string, args ...any)
}

// Runner runs one VRRP instance: it owns a Machine, a PacketConn and a clock
// and carries out the Machine's actions.
type Runner struct {
	cfg   RunnerConfig
	m     *Machine
	local Local
	vips  []netip.Addr

	state, prio atomic.Uint32
	wantsMaster atomic.Bool
	drops       dropCounters

	rx     chan rxPacket
	events chan runnerEvent
	stop   chan struct{}
	done   chan struct{}
	start  sync.Once
	halt   sync.Once
	// handoff asks the loop to end by Handoff; handedOff is what it said.
	handoff, handedOff atomic.Bool
}

type runnerEvent struct {
	f       func(time.Time) []Action
	handled chan struct{}
}

type rxPacket struct {
	b    []byte
	info PacketInfo
}

// NewRunner checks the configuration; Start runs it.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Conn == nil {
		return nil, fmt.Errorf("%w: no conn", ErrConfig)
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.DropLogf == nil {
		cfg.DropLogf = cfg.Logf
	}
	if !cfg.Instance.PrimaryIP.IsValid() {
		cfg.Instance.PrimaryIP = cfg.Conn.Source()
	}
	m, err := NewMachine(cfg.Instance)
	if err != nil {
		return nil, err
	}
	mc := m.Config()
	r := &Runner{
		cfg: cfg,
		m:   m,
		rx:  make(chan rxPacket, 16),
		// Unbuffered: a sent event has been handled or the runner stopped.
		events: make(chan runnerEvent),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	// keepalived runs one address family per instance, and IPv6 only as
	// VRRPv3; the adverts go out in the family of the source address.
	src := cfg.Conn.Source()
	for _, p := range cfg.VIPs {
		switch {
		case mc.Version == Version2 && !p.Addr().Is4():
			return nil, fmt.Errorf("%w: VRRPv2 VIP %s is not IPv4 (IPv6 needs VRRPv3)", ErrConfig, p)
		case p.Addr().Is4In6():
			return nil, fmt.Errorf("%w: VIP %s is an IPv4-mapped IPv6 address", ErrConfig, p)
		case p.Addr().Is4() != cfg.VIPs[0].Addr().Is4():
			return nil, fmt.Errorf("%w: VIPs %s and %s mix address families in one instance", ErrConfig, cfg.VIPs[0], p)
		case src.IsValid() && p.Addr().Is4() != src.Is4():
			return nil, fmt.Errorf("%w: VIP %s is not of the family of the source address %s", ErrConfig, p, src)
		}
		r.vips = append(r.vips, p.Addr())
	}
	// Received sources carry no zone; a configured fe80::1%eth0 must match.
	peers := make([]UnicastPeer, len(cfg.Peers))
	for i, p := range cfg.Peers {
		peers[i] = p
		peers[i].Addr = p.Addr.WithZone("")
	}
	unicast := false
	for _, d := range cfg.Conn.Destinations() {
		unicast = unicast || !d.IsMulticast()
	}
	r.local = Local{
		Version:          mc.Version,
		VRID:             mc.VRID,
		AdverInt:         mc.AdverInt,
		AuthType:         cfg.AuthType,
		AuthPass:         Password(cfg.AuthPass),
		VIPs:             r.vips,
		SkipCheckAdvAddr: cfg.SkipCheckAdvAddr,
		Unicast:          unicast,
		CheckUnicastSrc:  cfg.CheckUnicastSrc,
		Peers:            peers,
		V3ChecksumAsV2:   cfg.V3ChecksumAsV2,
	}
	// Catch an unencodable advert (too many VIPs, bad interval) now.
	if _, err := r.advert(mc.Priority).MarshalBinary(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	r.publish()
	return r, nil
}

// State is the instance's current state, safe to call at any time.
func (r *Runner) State() State { return State(r.state.Load()) }

// Priority is the effective priority adverts carry.
func (r *Runner) Priority() uint8 { return uint8(r.prio.Load()) }

// WantsMaster is the Machine's WantsMaster, safe to call at any time: what
// another member's CanGoMaster reads.
func (r *Runner) WantsMaster() bool { return r.wantsMaster.Load() }

// Dropped counts received adverts that failed validation.
func (r *Runner) Dropped() uint64 { return r.drops.total() }

// Drops counts received adverts that failed validation by reason (see
// DropReason); reasons never seen are absent.
func (r *Runner) Drops() map[string]uint64 { return r.drops.snapshot() }

// Done is closed when the Runner has stopped.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Start starts the instance in its own goroutines. It can be called once.
func (r *Runner) Start() {
	r.start.Do(func() {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); r.read() }()
		go func() {
			r.loop()
			r.cfg.Conn.Close()
			wg.Wait()
			close(r.done)
		}()
	})
}

// Stop shuts the instance down: a master sends a priority-0 advert; the VIPs
// are removed in any state. It waits for the goroutines to end and closes the
// Conn. A Runner cannot be restarted.
func (r *Runner) Stop() {
	r.start.Do(func() { close(r.done) }) // never started
	r.halt.Do(func() { close(r.stop) })
	<-r.done
}

// Handoff stops the instance for the next process to resume (see
// Machine.Handoff): no priority-0 advert, the VIPs stay. It reports
// whether the instance was MASTER.
func (r *Runner) Handoff() (wasMaster bool) {
	r.handoff.Store(true)
	r.Stop()
	return r.handedOff.Load()
}

// SetEffectivePriority feeds a new effective priority (see EffectivePriority).
func (r *Runner) SetEffectivePriority(p uint8) {
	r.event(func(now time.Time) []Action { return r.m.SetEffectivePriority(now, p) })
}

// Fault enters FAULT; Recover leaves it.
func (r *Runner) Fault() { r.event(r.m.Fault) }

// Recover leaves FAULT.
func (r *Runner) Recover() { r.event(r.m.Recover) }

// SyncMaster makes a BACKUP member of a sync group MASTER now: the group is
// going MASTER (see Machine.SyncMaster).
func (r *Runner) SyncMaster() { r.event(r.m.SyncMaster) }

// ForceBackup makes a MASTER member of a sync group BACKUP: another member
// left MASTER (see Machine.ForceBackup).
func (r *Runner) ForceBackup() { r.event(r.m.ForceBackup) }

// event runs f in the Runner's goroutine and waits until its actions are
// carried out.
func (r *Runner) event(f func(time.Time) []Action) {
	ev := runnerEvent{f: f, handled: make(chan struct{})}
	select {
	case r.events <- ev:
	case <-r.done:
		return
	}
	<-ev.handled
}

// Alive returns once the Runner's goroutine has taken an event, or an
// error when it has not by ctx's end: the systemd watchdog asks, so that
// a stuck instance stops the pings. A stopped Runner is not stuck.
func (r *Runner) Alive(ctx context.Context) error {
	ev := runnerEvent{f: func(time.Time) []Action { return nil }, handled: make(chan struct{})}
	select {
	case r.events <- ev:
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vrrp vrid %d: the instance's loop does not answer", r.local.VRID)
	}
	select {
	case <-ev.handled:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vrrp vrid %d: the instance's loop does not answer", r.local.VRID)
	}
}

func (r *Runner) publish() {
	r.state.Store(uint32(r.m.State()))
	r.prio.Store(uint32(r.m.Priority()))
	r.wantsMaster.Store(r.m.WantsMaster())
}

func (r *Runner) read() {
	buf := make([]byte, 1500)
	for {
		b, info, err := r.cfg.Conn.ReadAdvert(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.cfg.Logf("vrrp vrid %d: read: %v", r.local.VRID, err)
			select {
			case <-r.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p := rxPacket{b: append([]byte(nil), b...), info: info}
		select {
		case r.rx <- p:
		case <-r.stop:
			return
		}
	}
}

func (r *Runner) loop() {
	clk := r.cfg.Clock
	if r.cfg.Resume {
		r.exec(r.m.Resume(clk.Now()))
	} else {
		r.exec(r.m.Start(clk.Now()))
	}
	for {
		var timerC <-chan time.Time
		var t *time.Timer
		if dl := r.m.NextDeadline(); !dl.IsZero() {
			t = clk.NewTimer(max(dl.Sub(clk.Now()), 0))
			timerC = t.C
		}
		select {
		case <-r.stop:
			if t != nil {
				t.Stop()
			}
			if r.handoff.Load() {
				was, acts := r.m.Handoff(clk.Now())
				r.exec(acts)
				r.handedOff.Store(was)
				return
			}
			r.exec(r.m.Shutdown(clk.Now()))
			if r.cfg.Addrs != nil {
				if err := r.cfg.Addrs.RemoveVIPs(r.cfg.VIPs); err != nil {
					r.cfg.Logf("vrrp vrid %d: %v", r.local.VRID, err)
				}
			}
			return
		case p := <-r.rx:
			r.receive(clk.Now(), p)
		case ev := <-r.events:
			r.exec(ev.f(clk.Now()))
			close(ev.handled)
		case <-timerC:
			r.exec(r.m.Timer(clk.Now()))
		}
		if t != nil {
			t.Stop()
		}
		failpoint.Stall("vrrp-loop")
	}
}

func (r *Runner) receive(now time.Time, p rxPacket) {
	local := r.local
	if r.m.State() == StateBackup {
		local.MasterAddr = r.m.MasterAddr()
	}
	adv, err := Validate(p.b, p.info, local)
	if err != nil {
		if log, unlogged := r.drops.add(now, err); log {
			if unlogged > 0 {
				r.cfg.DropLogf("vrrp vrid %d: advert from %s dropped (%s): %v (%d more since the last line)", r.local.VRID, p.info.Src, DropReason(err), err, unlogged)
			} else {
				r.cfg.DropLogf("vrrp vrid %d: advert from %s dropped (%s): %v", r.local.VRID, p.info.Src, DropReason(err), err)
			}
		}
		return
	}
	r.exec(r.m.Advert(now, p.info.Src, adv))
}

func (r *Runner) advert(prio uint8) Advertisement {
	mc := r.m.Config()
	f, _ := AdverIntField(mc.Version, mc.AdverInt) // checked by NewMachine
	a := Advertisement{
		Version:   mc.Version,
		Type:      TypeAdvertisement,
		VRID:      mc.VRID,
		Priority:  prio,
		AdverInt:  f,
		Addresses: r.vips,
	}
	if mc.Version == Version2 {
		a.AuthType = r.local.AuthType
		if a.AuthType == AuthPass {
			a.AuthData = r.local.AuthPass
		}
	}
	return a
}

func (r *Runner) sendAdvert(prio uint8) {
	src := r.cfg.Conn.Source()
	for _, dst := range r.cfg.Conn.Destinations() {
		a := r.advert(prio)
		if err := a.SetChecksum(src, dst, r.cfg.V3ChecksumAsV2); err != nil {
			r.cfg.Logf("vrrp vrid %d: %v", a.VRID, err)
			return
		}
		b, err := a.MarshalBinary()
		if err != nil {
			r.cfg.Logf("vrrp vrid %d: %v", a.VRID, err)
			return
		}
		if err := r.cfg.Conn.WriteAdvert(b, dst); err != nil {
			r.cfg.Logf("vrrp vrid %d: %v", a.VRID, err)
		}
	}
}

// sendGARPs sends repeat rounds of a gratuitous ARP or unsolicited
// neighbour advertisement for every VIP, keepalived's vrrp_send_link_update.
func (r *Runner) sendGARPs(repeat int) {
	for range repeat {
		for _, vip := range r.vips {
			var err error
			switch {
			case vip.Is4() && r.cfg.ARP != nil:
				err = r.cfg.ARP.SendGARP(vip)
			case vip.Is6() && r.cfg.NA != nil:
				err = r.cfg.NA.SendNA(vip)
			}
			if err != nil {
				r.cfg.Logf("vrrp vrid %d: %v", r.local.VRID, err)
			}
		}
	}
}

func (r *Runner) exec(acts []Action) {
	defer r.publish()
	for _, act := range acts {
		switch a := act.(type) {
		case SendAdvert:
			r.sendAdvert(a.Priority)
		case SendGARP:
			r.sendGARPs(a.Repeat)
		case AddVIPs:
			if r.cfg.Addrs != nil {
				if err := r.cfg.Addrs.AddVIPs(r.cfg.VIPs); err != nil {
					r.cfg.Logf("vrrp vrid %d: %v", r.local.VRID, err)
				}
			}
		case RemoveVIPs:
			if r.cfg.Addrs != nil {
				if err := r.cfg.Addrs.RemoveVIPs(r.cfg.VIPs); err != nil {
					r.cfg.Logf("vrrp vrid %d: %v", r.local.VRID, err)
				}
			}
		case Notify:
			r.publish()
			if r.cfg.OnNotify != nil {
				r.cfg.OnNotify(a)
			}
		case WantMaster:
			// Published first: a member asking at the same moment then
			// sees this one's wish, so one of the two goes MASTER.
			r.publish()
			if r.cfg.CanGoMaster != nil && r.cfg.CanGoMaster() {
				r.exec(r.m.SyncMaster(r.cfg.Clock.Now()))
			}
		}
	}
}
