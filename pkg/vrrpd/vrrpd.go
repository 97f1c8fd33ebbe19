package vrrpd

import (
	"context"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/scripts"
	"github.com/xlbproject/xlb/pkg/smtp"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// Supervisor runs the configuration's vrrp_instance blocks with pkg/vrrp:
// adverts on the instance's interface, the VIPs added while MASTER (with
// gratuitous ARPs or unsolicited NAs) and removed otherwise, trackers,
// sync groups and notify scripts. It tells its owner which VIPs this
// director holds as MASTER (Options.OnActive): it is the VIP owner of
// every address a vrrp_instance names.
type Supervisor struct {
	log         *slog.Logger
	scripts     scripts.Runner
	handle      *netlink.Handle
	preemptHold func(time.Time) bool
	resume      map[string]bool // until the first instances start
	bridge      *Bridge         // what advertised them meanwhile (nil: none)

	mu      sync.Mutex
	view    vrrpView // what the runners were started from
	runners []*vrrpRunner
	// tracked objects' states by key (trackKey), and what runs them.
	tracks     map[string]*trackState
	stopTracks context.CancelFunc
	// sync is each vrrp_sync_group by member instance name: its
	// configuration (trackers, notify scripts) and the coupling of its
	// members.
	sync     map[string]*syncGroup
	stopSync context.CancelFunc

	// onActive is told the VIPs held as MASTER whenever they change.
	onActive func(map[netip.Addr]bool)
	roleMu   sync.Mutex
	holding  map[string][]netip.Prefix // by instance

	// alert sends the smtp_alert mails (nil: none) as the last loaded
	// configuration says (mails).
	alert func(smtp.Mail)
	mails atomic.Pointer[mailView]
}

type vrrpRunner struct {
	cfg    config.VRRPInstance
	runner *vrrp.Runner
	// closeAnnounce closes the gratuitous ARP or unsolicited NA sender.
	closeAnnounce func() error
	err           error
	faulted       bool
	// mailed is the state last mailed (keepalived's last_email_state);
	// only the Runner's goroutine touches it.
	mailed string
}

// Options configure a Supervisor.
type Options struct {
	Logger *slog.Logger
	// Scripts runs notify scripts (nil: none run).
	Scripts scripts.Runner
	// Netlink is the socket for the VIPs (nil: the calling namespace's).
	Netlink *netlink.Handle
	// OnActive is called with the VIPs held as MASTER, before they are
	// added when an instance becomes MASTER and after they are removed
	// when it stops being MASTER, so that a VIP is never on this host
	// while its services are on standby (the kernel would answer its
	// clients with resets). It runs in the instance's goroutine: it must
	// return fast (a data plane that writes only flags).
	OnActive func(active map[netip.Addr]bool)
	// Alert sends keepalived's smtp_alert mails of the instances and sync
	// groups whose smtp_alert is on ((*smtp.Alerter).Alert; nil: none).
	// It runs in the instance's goroutine: it must not block.
	Alert func(smtp.Mail)
	// PreemptHold holds every instance's preemption while it returns true
	// (vrrp.Config.PreemptHold; nil: never). It runs in the instance's
	// goroutine: it must return fast.
	PreemptHold func(now time.Time) bool
	// Resume names the instances to start MASTER at once, their VIPs
	// kept: they were MASTER in the process this one took over from (a
	// hitless restart, see Handoff). Only the first Load resumes.
	Resume map[string]bool
	// Bridge advertised for the Resume instances while the process
	// started (NewBridge); each resumes as its bridge leaves it. Nil:
	// none.
	Bridge *Bridge
}

// New prepares to run instances; Load starts them.
func New(opts Options) *Supervisor {
	if opts.Scripts == nil {
		opts.Scripts = func(*config.Script, string) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Supervisor{log: opts.Logger, scripts: opts.Scripts, handle: opts.Netlink, onActive: opts.OnActive, alert: opts.Alert,
		preemptHold: opts.PreemptHold, resume: opts.Resume, bridge: opts.Bridge}
}

// Alive says whether every instance's loop answers before ctx ends (the
// systemd watchdog asks).
func (v *Supervisor) Alive(ctx context.Context) error {
	v.mu.Lock()
	runners := make([]*vrrp.Runner, 0, len(v.runners))
	for _, r := range v.runners {
		if r.runner != nil {
			runners = append(runners, r.runner)
		}
	}
	v.mu.Unlock()
	for _, r := range runners {
		if err := r.Alive(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Governs are the addresses the vrrp_instances of cfg move between
// directors (virtual_ipaddress and virtual_ipaddress_excluded): their
// services forward only while this director is MASTER for them.
func (v *Supervisor) Governs(cfg *config.Config) map[netip.Addr]bool { return Governed(cfg) }

// Governed are the addresses cfg's instances hold.
func Governed(cfg *config.Config) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, in := range cfg.Instances {
		for _, ip := range slices.Concat(in.VirtualIPs, in.ExcludedVirtualIPs) {
			out[ip.Prefix.Addr()] = true
		}
	}
	return out
}

// roleVIPs is the VIPManager of one instance: it adds and removes the
// instance's addresses (virtual_ipaddress_excluded too, as keepalived
// does) and keeps the data plane's roles in step.
type roleVIPs struct {
	v        *Supervisor
	name     string
	inner    vrrp.VIPManager
	excluded []netip.Prefix
}

func (r roleVIPs) AddVIPs(vips []netip.Prefix) error {
	all := slices.Concat(vips, r.excluded)
	if r.v != nil {
		r.v.setHolding(r.name, all)
	}
	return r.inner.AddVIPs(all)
}

func (r roleVIPs) RemoveVIPs(vips []netip.Prefix) error {
	err := r.inner.RemoveVIPs(slices.Concat(vips, r.excluded))
	if r.v != nil {
		r.v.setHolding(r.name, nil)
	}
	return err
}

func (v *Supervisor) setHolding(name string, vips []netip.Prefix) {
	v.roleMu.Lock()
	defer v.roleMu.Unlock()
	if v.holding == nil {
		v.holding = map[string][]netip.Prefix{}
	}
	if vips == nil {
		delete(v.holding, name)
	} else {
		v.holding[name] = vips
	}
	if v.onActive == nil {
		return
	}
	set := map[netip.Addr]bool{}
	for _, ps := range v.holding {
		for _, p := range ps {
			set[p.Addr()] = true
		}
	}
	v.onActive(set)
}

// Load runs cfg's instances. They are restarted only when what VRRP
// reads changed: the instances, the sync groups, the vrrp_scripts or the
// track_files (a restart goes through BACKUP). Positions in the file do
// not count: moving a block is not a change.
func (v *Supervisor) Load(cfg *config.Config) {
	v.mu.Lock()
	defer v.mu.Unlock()
	mails := mailViewOf(cfg)
	ran := v.mails.Swap(mails)
	view := vrrpViewOf(cfg)
	running := v.runners != nil
	if running && reflect.DeepEqual(v.view, view) {
		return
	}
	carried := v.unchangedScripts(v.view.scripts, view.scripts)
	if running && reflect.DeepEqual(withoutTrackers(v.view.instances), withoutTrackers(view.instances)) &&
		sameMembers(v.view.groups, view.groups) {
		// Only trackers or group scripts changed: the instances keep
		// their state (a MASTER stays MASTER), as keepalived's reload
		// keeps it; the trackers start again from the new definitions.
		v.stopTracks()
		for i, r := range v.runners {
			in := cfg.Instances[i]
			r.cfg.TrackScripts, r.cfg.TrackInterfaces, r.cfg.TrackFiles = in.TrackScripts, in.TrackInterfaces, in.TrackFiles
		}
		for _, g := range cfg.SyncGroups {
			if sg := v.sync[g.Instances[0]]; sg != nil {
				sg.setConfig(g)
			}
		}
		v.view = view
		v.startTracks(cfg, true, carried)
		return
	}
	old := v.view.instances
	// The instances that stop mail as the configuration they ran from
	// says (one the new one removes too); the new ones as the new one.
	if ran != nil {
		v.mails.Store(ran)
	}
	// An instance that stays itself (name, interface, VRID, addresses)
	// and is MASTER is handed over to its new runner, which resumes as
	// MASTER: a reload that changes its priority, timers or scripts
	// keeps it MASTER with its VIPs, as keepalived's reload does. A peer
	// of higher priority then preempts it as it would any master.
	same := map[string]bool{}
	for i := range cfg.Instances {
		for j := range old {
			if sameIdentity(&old[j], &cfg.Instances[i]) {
				same[cfg.Instances[i].Name] = true
			}
		}
	}
	for _, r := range v.runners {
		if r.runner != nil && same[r.cfg.Name] && r.runner.State() == vrrp.StateMaster {
			r.runner.Handoff()
			r.runner = nil
			if v.resume == nil {
				v.resume = map[string]bool{}
			}
			v.resume[r.cfg.Name] = true
		}
	}
	v.stopLocked()
	v.mails.Store(mails)
	// VMACs no instance of the new configuration makes go, as keepalived
	// removes them; the others are kept (ensureVMAC takes them as they are).
	keep := map[string]bool{}
	for i := range cfg.Instances {
		if cfg.Instances[i].UseVMAC {
			keep[VMACName(&cfg.Instances[i])] = true
		}
	}
	for i := range old {
		if old[i].UseVMAC && !keep[VMACName(&old[i])] {
			v.removeVMAC(&old[i])
		}
	}
	v.view = view
	v.startSync(cfg.SyncGroups)
	for _, in := range cfg.Instances {
		v.runners = append(v.runners, v.start(in))
	}
	v.resume = nil
	// An instance the bridge advertised for that did not start (its
	// socket failed) gives up MASTER as a stopping one does.
	v.bridge.Close()
	v.bridge = nil
	v.startTracks(cfg, running, carried)
}

// sameIdentity: b is a as far as the VIPs it holds go, so a MASTER of a
// can hand over to b.
func sameIdentity(a, b *config.VRRPInstance) bool {
	return a.Name == b.Name && a.Interface == b.Interface && a.VirtualRouterID == b.VirtualRouterID &&
		a.Version == b.Version && a.UseVMAC == b.UseVMAC &&
		reflect.DeepEqual(a.VirtualIPs, b.VirtualIPs) && reflect.DeepEqual(a.ExcludedVirtualIPs, b.ExcludedVirtualIPs)
}

// withoutTrackers drops what only the trackers read (applyTracksLocked,
// from vrrpRunner.cfg): a change there needs no restart of the instance.
func withoutTrackers(ins []config.VRRPInstance) []config.VRRPInstance {
	out := slices.Clone(ins)
	for i := range out {
		out[i].TrackScripts, out[i].TrackInterfaces, out[i].TrackFiles = nil, nil, nil
	}
	return out
}

// sameMembers reports whether two lists of sync groups couple the same
// instances under the same names.
func sameMembers(a, b []config.SyncGroup) bool {
	return slices.EqualFunc(a, b, func(x, y config.SyncGroup) bool {
		return x.Name == y.Name && slices.Equal(x.Instances, y.Instances)
	})
}

// vrrpView is the part of a configuration VRRP runs from, without file
// positions or what only the mails read (mailView).
type vrrpView struct {
	instances  []config.VRRPInstance
	groups     []config.SyncGroup
	scripts    []config.VRRPScript
	trackFiles []config.TrackFile
}

func vrrpViewOf(cfg *config.Config) vrrpView {
	return withoutMail(vrrpView{
		instances:  config.WithoutPos(cfg.Instances, func(x *config.VRRPInstance) *config.Pos { return &x.Pos }),
		groups:     config.WithoutPos(cfg.SyncGroups, func(x *config.SyncGroup) *config.Pos { return &x.Pos }),
		scripts:    config.WithoutPos(cfg.Scripts, func(x *config.VRRPScript) *config.Pos { return &x.Pos }),
		trackFiles: config.WithoutPos(cfg.TrackFiles, func(x *config.TrackFile) *config.Pos { return &x.Pos }),
	})
}

// syncGroup couples the members of one vrrp_sync_group as keepalived's
// vrrp_sync.c does: a member goes MASTER only when every other member
// wants MASTER or is MASTER (vrrp_sync_can_goto_master), and then all go
// (vrrp_sync_master); one member leaving MASTER for BACKUP takes the others
// to BACKUP (vrrp_sync_backup). FAULT spreads through applyTracksLocked.
//
// keepalived runs all instances in one thread; here each runs in its own
// Runner goroutine, so: mu is held only to read and change the group's
// state, never while waiting for a Runner; a Runner asks (CanGoMaster) and
// reports (OnNotify) from its goroutine without waiting for any other; and
// the other members are moved by the group's own goroutine (run), which
// holds no lock while it waits for them.
type syncGroup struct {
	log *slog.Logger
	cfg config.SyncGroup
	// notifyState is the group state its notify scripts were last run
	// for, mailed the one last mailed (keepalived's last_email_state);
	// guarded by Supervisor.mu (groupNotify).
	notifyState, mailed string

	mu      sync.Mutex
	runners map[string]*vrrp.Runner // the members that started
	// master is keepalived's sgroup->state == MASTER: the group has gone
	// MASTER and no member has left it since.
	master bool
	// kick wakes run to move the members to the group's state.
	kick chan struct{}
}

// startSync prepares the coupling of groups' members; start registers
// each member's Runner.
func (v *Supervisor) startSync(groups []config.SyncGroup) {
	ctx, cancel := context.WithCancel(context.Background())
	v.stopSync = cancel
	v.sync = map[string]*syncGroup{}
	for _, g := range groups {
		sg := &syncGroup{log: v.log, cfg: g,
			runners: map[string]*vrrp.Runner{}, kick: make(chan struct{}, 1)}
		for _, name := range g.Instances {
			v.sync[name] = sg
		}
		go sg.run(ctx)
	}
}

// setConfig takes a reloaded group's trackers and scripts; its name and
// members are the same (Load checked), and are left alone because run and
// canGoMaster read them without Supervisor.mu. Called with Supervisor.mu held, which
// guards the rest of cfg.
func (g *syncGroup) setConfig(c config.SyncGroup) {
	g.cfg.TrackScripts, g.cfg.TrackInterfaces, g.cfg.TrackFiles = c.TrackScripts, c.TrackInterfaces, c.TrackFiles
	g.cfg.NotifyMaster, g.cfg.NotifyBackup, g.cfg.NotifyFault, g.cfg.NotifyStop, g.cfg.Notify =
		c.NotifyMaster, c.NotifyBackup, c.NotifyFault, c.NotifyStop, c.Notify
	g.cfg.TrackingWeight, g.cfg.Pos = c.TrackingWeight, c.Pos
}

func (g *syncGroup) add(name string, r *vrrp.Runner) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runners[name] = r
}

// canGoMaster is member self's CanGoMaster. Every member publishes its
// wish before asking, and asks under mu: of two members asking at once,
// the second sees the first's wish.
func (g *syncGroup) canGoMaster(self string) func() bool {
	return func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.master {
			return true
		}
		for _, name := range g.cfg.Instances {
			if name == self {
				continue
			}
			if r := g.runners[name]; r == nil || !r.WantsMaster() {
				return false
			}
		}
		g.log.Info("vrrp_sync_group syncing instances to MASTER", "group", g.cfg.Name, "by", self)
		g.master = true
		g.kickLocked()
		return true
	}
}

// notified is called with member self's transitions, from its Runner's
// goroutine. A member leaving MASTER for BACKUP takes the group to BACKUP.
// FAULT or STOP ends the group's MASTER too, but the others are left to
// applyTracksLocked (FAULT, with the priority-0 advert keepalived's
// vrrp_sync_fault sends) or to their own Stop.
func (g *syncGroup) notified(self string, n vrrp.Notify) {
	if n.State == vrrp.StateMaster {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.master {
		return
	}
	g.master = false
	if n.State == vrrp.StateBackup {
		g.log.Info("vrrp_sync_group syncing instances to BACKUP", "group", g.cfg.Name, "by", self)
		g.kickLocked()
	}
}

func (g *syncGroup) kickLocked() {
	select {
	case g.kick <- struct{}{}:
	default: // a pass is pending; it reads the newest state
	}
}

// run moves the members to the group's state after each change: all
// MASTER (SyncMaster) or, once a member has left, all BACKUP
// (ForceBackup). A member already there is left alone by the Runner. The
// state is read again before each member, so a change in the middle of a
// pass is followed at once (and by another pass).
func (g *syncGroup) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		}
		for _, name := range g.cfg.Instances {
			if ctx.Err() != nil {
				return
			}
			g.mu.Lock()
			r, master := g.runners[name], g.master
			g.mu.Unlock()
			switch {
			case r == nil:
			case master:
				r.SyncMaster()
			default:
				r.ForceBackup()
			}
		}
	}
}

func (v *Supervisor) start(in config.VRRPInstance) *vrrpRunner {
	vr := &vrrpRunner{cfg: in}
	fail := func(err error) *vrrpRunner {
		vr.err = err
		v.log.Error("vrrp_instance not started", "instance", in.Name, "error", err)
		return vr
	}
	ifname, conn, err := openInstance(&in, v.ensureVMAC)
	if err != nil {
		return fail(err)
	}
	var arp vrrp.ARPSender
	var na vrrp.NASender
	if in.IsIPv6() {
		u, err := vrrp.NewUnsolicitedNA(ifname)
		if err != nil {
			conn.Close()
			return fail(err)
		}
		na, vr.closeAnnounce = u, u.Close
	} else {
		garp, err := vrrp.NewGARP(ifname)
		if err != nil {
			conn.Close()
			return fail(err)
		}
		arp, vr.closeAnnounce = garp, garp.Close
	}
	name := in.Name
	group := v.sync[name]
	var canGoMaster func() bool
	if group != nil {
		canGoMaster = group.canGoMaster(name)
	}
	resume := v.resume[name]
	if resume && v.bridge != nil {
		// The bridge kept the instance's adverts going while this
		// process loaded: it resumes as the bridge leaves it.
		resume = v.bridge.end(name)
	}
	rc := runnerConfig(&in, conn, v.log)
	rc.Resume = resume
	rc.Instance.SyncGroup, rc.Instance.PreemptHold = group != nil, v.preemptHold
	vips := rc.VIPs
	rc.ARP, rc.NA = arp, na
	rc.Addrs = roleVIPs{v: v, name: name, inner: vrrp.NetlinkVIPs{Handle: v.handle, Link: ifname}, excluded: excludedOf(in)}
	rc.OnNotify = func(n vrrp.Notify) {
		v.log.Info("vrrp transition", "instance", name, "state", n.State.String(), "priority", n.Priority)
		v.mail(false, name, mailState(n.State), &vr.mailed)
		if group != nil {
			group.notified(name, n)
		}
		go v.notify(in, n)
	}
	rc.CanGoMaster = canGoMaster
	r, err := vrrp.NewRunner(rc)
	if err != nil {
		conn.Close()
		vr.closeAnnounce()
		return fail(err)
	}
	vr.runner = r
	if group != nil {
		group.add(name, r)
	}
	// A VIP left on the interface by an earlier life (xlb killed, the
	// address kept by the kernel) must go until this instance is MASTER
	// again: otherwise two directors answer ARP for it.
	// A handoff keeps them: this instance resumes as MASTER.
	stale := vrrp.NetlinkVIPs{Handle: v.handle, Link: ifname}
	if resume {
		v.log.Info("vrrp_instance resumes as MASTER: the process before handed it over", "instance", name)
	} else if err := stale.RemoveVIPs(slices.Concat(vips, excludedOf(in))); err != nil {
		v.log.Warn("removing VIPs left from before", "instance", name, "error", err)
	}
	r.Start()
	v.log.Info("vrrp_instance started", "instance", name, "interface", ifname, "vrid", in.VirtualRouterID, "priority", in.Priority)
	return vr
}

func excludedOf(in config.VRRPInstance) []netip.Prefix {
	var out []netip.Prefix
	for _, ip := range in.ExcludedVirtualIPs {
		out = append(out, ip.Prefix)
	}
	return out
}

// notify runs keepalived's notify scripts for a transition.
func (v *Supervisor) notify(in config.VRRPInstance, n vrrp.Notify) {
	state := n.State.String()
	var s *config.Script
	switch n.State {
	case vrrp.StateMaster:
		s = in.NotifyMaster
	case vrrp.StateBackup:
		s = in.NotifyBackup
	case vrrp.StateFault:
		s = in.NotifyFault
	case vrrp.StateInit:
		s, state = in.NotifyStop, "STOP"
	}
	if s != nil {
		v.scripts(s, "notify "+in.Name+" "+state)
	}
	if in.Notify != nil {
		g := *in.Notify
		g.Args = append(append([]string{}, g.Args...), "INSTANCE", in.Name, state, strconv.Itoa(int(n.Priority)))
		v.scripts(&g, "notify "+in.Name+" "+state)
	}
	v.groupNotify(in.Name)
}

// groupNotify runs a sync group's notify scripts when the group's state
// changes: FAULT if a member is in FAULT, MASTER when all members are,
// else BACKUP; STOP when its members stop. The generic notify gets
// "GROUP name STATE 0", as keepalived's.
func (v *Supervisor) groupNotify(member string) {
	v.mu.Lock()
	sg := v.sync[member]
	if sg == nil {
		v.mu.Unlock()
		return
	}
	g := &sg.cfg
	masters, faults, stopped, n := 0, 0, 0, 0
	for _, r := range v.runners {
		if r.runner == nil || !slices.Contains(g.Instances, r.cfg.Name) {
			continue
		}
		n++
		switch r.runner.State() {
		case vrrp.StateMaster:
			masters++
		case vrrp.StateFault:
			faults++
		case vrrp.StateInit:
			stopped++
		}
	}
	state := "BACKUP"
	switch {
	case n == 0:
		v.mu.Unlock()
		return
	case stopped == n:
		state = "STOP"
	case faults > 0:
		state = "FAULT"
	case masters == n:
		state = "MASTER"
	}
	if sg.notifyState == state {
		v.mu.Unlock()
		return
	}
	sg.notifyState = state
	v.mail(true, g.Name, state, &sg.mailed)
	grp := *g
	v.mu.Unlock()
	v.log.Info("vrrp_sync_group transition", "group", grp.Name, "state", state)
	var s *config.Script
	switch state {
	case "MASTER":
		s = grp.NotifyMaster
	case "BACKUP":
		s = grp.NotifyBackup
	case "FAULT":
		s = grp.NotifyFault
	case "STOP":
		s = grp.NotifyStop
	}
	if s != nil {
		v.scripts(s, "notify group "+grp.Name+" "+state)
	}
	if grp.Notify != nil {
		sc := *grp.Notify
		sc.Args = append(append([]string{}, sc.Args...), "GROUP", grp.Name, state, "0")
		v.scripts(&sc, "notify group "+grp.Name+" "+state)
	}
}

// Stop sends priority 0 from masters and removes their VIPs.
func (v *Supervisor) Stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	ins := v.view.instances
	v.stopLocked()
	for i := range ins {
		if ins[i].UseVMAC {
			v.removeVMAC(&ins[i])
		}
	}
}

// Handoff stops every instance for the next process to resume: no
// priority-0 advert, the VIPs (and VMAC interfaces) stay. It returns the
// instances that were MASTER.
func (v *Supervisor) Handoff() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var masters []string
	if v.stopTracks != nil {
		v.stopTracks()
	}
	if v.stopSync != nil {
		v.stopSync()
	}
	for _, r := range v.runners {
		if r.runner != nil && r.runner.Handoff() {
			masters = append(masters, r.cfg.Name)
		}
		if r.closeAnnounce != nil {
			r.closeAnnounce()
		}
	}
	v.runners = nil
	return masters
}

func (v *Supervisor) stopLocked() {
	if v.stopTracks != nil {
		v.stopTracks()
	}
	if v.stopSync != nil {
		v.stopSync()
	}
	for _, r := range v.runners {
		if r.runner != nil {
			r.runner.Stop()
		}
		if r.closeAnnounce != nil {
			r.closeAnnounce()
		}
	}
	v.runners = nil
}

// Status puts each instance's state and effective priority in st.
func (v *Supervisor) Status(st *control.Status) { st.VRRP = v.Instances() }

// Instances are each instance's state and effective priority.
func (v *Supervisor) Instances() []control.VRRPInstance {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []control.VRRPInstance
	for _, r := range v.runners {
		s := control.VRRPInstance{Name: r.cfg.Name, Interface: r.cfg.Interface, VRID: r.cfg.VirtualRouterID, Priority: r.cfg.Priority}
		if r.runner != nil {
			s.State, s.Priority = r.runner.State().String(), r.runner.Priority()
			s.Dropped = r.runner.Drops()
		} else {
			s.State, s.Note = "FAULT", r.err.Error()
		}
		out = append(out, s)
	}
	return out
}

// Validate refuses, with file:line, what keepalived.conf allows and this
// supervisor cannot run, so that xlb check refuses it as xlb run would.
func Validate(cfg *config.Config) error {
	var errs config.ErrorList
	for _, in := range cfg.Instances {
		if in.UseVMAC && in.IsIPv6() {
			errs = append(errs, &config.ParseError{File: in.Pos.File, Line: in.Pos.Line, Word: in.Name,
				Msg: "use_vmac for an IPv6 instance is not supported by xlb yet (IPv4 instances have it), in vrrp_instance"})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
