package director

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/xlbproject/xlb/internal/failpoint"
	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvsadm"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
	"github.com/xlbproject/xlb/pkg/scripts"
	"github.com/xlbproject/xlb/pkg/smtp"
)

// Health is a real's state as its checkers report it.
type Health struct {
	Up bool
	// Weight is set by a misc_dynamic MISC_CHECK: the real's new weight.
	Weight *int
	Reason string
}

// CheckStarter starts a real's health checks and calls report on each
// transition, until ctx ends. Reals with no checker are always up and are
// never passed to it. mark, when not 0, is the socket mark that sends the
// checks that connect to the real's own address through the data path
// (check_via_vip; dataplane.CheckRouter).
type CheckStarter func(ctx context.Context, vs *config.VirtualServer, rs *config.RealServer, mark uint32, report func(Health))

// Options configure a Director.
type Options struct {
	Dataplane dataplane.Dataplane
	Logger    *slog.Logger
	Checks    CheckStarter
	// Scripts runs notify_up/notify_down and quorum scripts; the director
	// calls it without holding its lock.
	Scripts scripts.Runner
	// Alerts sends the smtp_alert mails about quorums and the real
	// servers a reload removes; give the same to HealthChecksAlerting for
	// the checkers' mails. Nil: no mail.
	Alerts *CheckAlerts
	// ManualFile keeps the services ipvsadm commands (xlbadm) make, in
	// ipvsadm -S form, so that they survive a restart as IPVS's survive
	// keepalived's: written at each change, read back by the first Load
	// ("": not kept).
	ManualFile string
}

// Director owns the wanted state of the data plane.
type Director struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	ctx      context.Context
	cfg      *config.Config
	services []*vsState
	lastErr  error
	// loaded is set by the first Load: only it reads what a data plane
	// taken over holds.
	loaded bool
	// manual are the services ipvsadm commands (xlbadm) made.
	manual *ipvsadm.State
	// zeroed are the counters at the last ipvsadm -Z, by service/real.
	zeroed map[string]ipvsadm.Stats
	// lives keeps each configured real's counters across its times out
	// of the pool (see realCounters).
	lives map[realLife]*counterLives
	// est are the rate estimators, by service/real.
	est map[string]*estimator

	// standby are the VIPs whose services stay loaded but forward
	// nothing: some VIP owner (VRRP, ...) says this director does not
	// serve them now. Guarded by its own lock: a role flip never waits
	// for mu, which an Apply may hold while next hops resolve.
	standbyMu sync.Mutex
	standby   map[netip.Addr]bool
}

type vsState struct {
	cfg config.VirtualServer
	// key names the virtual server (its first service); keys are all the
	// services it stands for (a virtual_server_group's are several).
	key      dataplane.ServiceKey
	keys     []dataplane.ServiceKey
	quorumUp bool
	reals    []*realState
}

type realState struct {
	cfg    config.RealServer
	health Health
	cancel context.CancelFunc
}

func (r *realState) addr() netip.AddrPort { return netip.AddrPortFrom(r.cfg.Addr, r.cfg.Port) }

// weight is the real's weight while up: misc_dynamic's, else configured.
func (r *realState) weight() int {
	if r.health.Weight != nil {
		return *r.health.Weight
	}
	return r.cfg.Weight
}

// New makes a director; Load gives it a configuration. Checks started by
// it end when ctx does.
func New(ctx context.Context, opts Options) *Director {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Scripts == nil {
		opts.Scripts = func(*config.Script, string) {}
	}
	return &Director{opts: opts, log: opts.Logger, ctx: ctx}
}

// keysOf names the services vs stands for: one, or a group's several.
func keysOf(vs *config.VirtualServer) []dataplane.ServiceKey {
	var out []dataplane.ServiceKey
	for _, e := range vs.Services() {
		if e.FWMark != 0 {
			out = append(out, dataplane.ServiceKey{Addr: e.Addr, FWMark: e.FWMark})
		} else {
			out = append(out, dataplane.ServiceKey{Addr: e.Addr, Port: e.Port, Protocol: vs.Protocol})
		}
	}
	return out
}

func keyOf(vs *config.VirtualServer) dataplane.ServiceKey { return keysOf(vs)[0] }

// realPort is the port a real of the service k has in the data plane: a DR
// or TUN real takes the service's own (IPVS forwards to it whatever the
// real says), except on fwmark and port-0 services; NAT and FULLNAT map
// ports.
func realPort(k dataplane.ServiceKey, fwd lvs.Forward, port uint16) uint16 {
	if !fwd.Translates() && k.FWMark == 0 && k.Port != 0 {
		return k.Port
	}
	return port
}

// servicesOf are the services vs stands for as the data plane takes them,
// each with reals (its own port given to a DR or TUN real: IPVS forwards
// them to the service's port, whatever the real says).
func servicesOf(vs *config.VirtualServer, reals []dataplane.Real) []dataplane.Service {
	var out []dataplane.Service
	for _, k := range keysOf(vs) {
		svc := dataplane.Service{ServiceKey: k, Scheduler: vs.Scheduler, Flags: vs.SchedFlags,
			Persistence: vs.PersistenceTimeout, PersistenceMask: vs.PersistenceGranularity, Sloppy: vs.Sloppy,
			LocalAddrs: vs.LocalAddrs, TOA: vs.TOA}
		if len(reals) > 0 {
			svc.Reals = make([]dataplane.Real, 0, len(reals))
		}
		for _, r := range reals {
			r.Port = realPort(k, r.Forward, r.Port)
			svc.Reals = append(svc.Reals, r)
		}
		out = append(out, svc)
	}
	return out
}

func realOf(addr netip.Addr, port uint16, weight int, fwd lvs.Forward, tun lvs.Tunnel) dataplane.Real {
	r := dataplane.Real{Addr: addr, Port: port, Weight: int32(weight), Forward: fwd}
	if fwd == lvs.TUN {
		r.Tunnel = tun
	}
	return r
}

// realServer is a real_server block as the data plane takes it, at weight.
func realServer(rs *config.RealServer, weight int) dataplane.Real {
	r := realOf(rs.Addr, rs.Port, weight, rs.Forward, rs.Tunnel)
	r.UThreshold, r.LThreshold = rs.UThreshold, rs.LThreshold
	return r
}

// Load makes cfg the wanted state. It is validated first: an invalid one
// changes nothing. A valid one is applied as a diff: reals whose checks did
// not change keep their health state and their flows. If the data plane
// refuses it (no room, a kernel error), the previous configuration stays
// in force, on the data plane too, and the error says so: a reload is
// never half done.
func (d *Director) Load(cfg *config.Config) error {
	if err := Validate(cfg, d.opts.Dataplane.Caps()); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := map[dataplane.ServiceKey]*vsState{}
	for _, s := range d.services {
		old[s.key] = s
	}
	type keptReal struct {
		r   *realState
		was config.RealServer
	}
	type freshReal struct {
		r  *realState
		vs *config.VirtualServer
		rs *config.RealServer
	}
	var next []*vsState
	var kept []keptReal
	var fresh []freshReal
	var dropped []*realState
	// gone are the reals the new configuration no longer has, with their
	// virtual server: keepalived mails those it takes out while up.
	type goneReal struct {
		vs *config.VirtualServer
		r  *realState
	}
	var gone []goneReal
	isNew := map[*vsState]bool{}
	var held map[dataplane.ServiceKey]map[netip.AddrPort]int32
	if !d.loaded {
		held = d.heldReals()
		d.restoreManual(cfg)
	}
	for i := range cfg.VirtualServers {
		vcfg := cfg.VirtualServers[i]
		vs := &vsState{cfg: vcfg, key: keyOf(&vcfg), keys: keysOf(&vcfg), quorumUp: true}
		prev := old[vs.key]
		var prevReals []*realState
		if prev != nil {
			vs.quorumUp = prev.quorumUp
			prevReals = slices.Clone(prev.reals)
			delete(old, vs.key)
		} else {
			isNew[vs] = true
		}
		for j := range vcfg.Reals {
			rcfg := vcfg.Reals[j]
			var r *realState
			idx := slices.IndexFunc(prevReals, func(r *realState) bool {
				return r.addr() == netip.AddrPortFrom(rcfg.Addr, rcfg.Port)
			})
			if idx >= 0 && sameChecks(&prev.cfg, &prevReals[idx].cfg, &vcfg, &rcfg) {
				r = prevReals[idx]
				prevReals = slices.Delete(prevReals, idx, idx+1)
				kept = append(kept, keptReal{r, r.cfg})
			} else {
				r = newReal(&vs.cfg, &vs.cfg.Reals[j])
				takenOver(r, held, vs.key, &rcfg)
				fresh = append(fresh, freshReal{r, &vs.cfg, &vs.cfg.Reals[j]})
			}
			r.cfg = rcfg
			vs.reals = append(vs.reals, r)
		}
		dropped = append(dropped, prevReals...)
		for _, r := range prevReals {
			if !slices.ContainsFunc(vcfg.Reals, func(rs config.RealServer) bool { return netip.AddrPortFrom(rs.Addr, rs.Port) == r.addr() }) {
				gone = append(gone, goneReal{&prev.cfg, r})
			}
		}
		next = append(next, vs)
	}
	for _, s := range old {
		dropped = append(dropped, s.reals...)
		for _, r := range s.reals {
			gone = append(gone, goneReal{&s.cfg, r})
		}
	}

	was, wasServices := d.cfg, d.services
	d.cfg, d.services = cfg, next
	var scripts []func()
	var mails []smtp.Mail
	for _, vs := range d.services {
		s, m := d.updateQuorum(vs, true, isNew[vs])
		scripts, mails = append(scripts, s...), append(mails, m...)
	}
	failpoint.Stall("director-apply")
	if err := d.opts.Dataplane.Apply(d.wanted()); err != nil {
		d.cfg, d.services = was, wasServices
		for _, k := range kept {
			k.r.cfg = k.was
		}
		// The data plane refused the whole of it, or failed midway
		// (IPVS applies service by service): put it back as it was.
		if rerr := d.opts.Dataplane.Apply(d.wanted()); rerr != nil {
			d.lastErr = rerr
			d.log.Error("the data plane could not be put back after a refused configuration", "error", rerr)
		}
		return fmt.Errorf("the data plane refused the configuration; the running one stays: %w", err)
	}
	if d.lastErr != nil {
		d.log.Info("data plane in step again")
	}
	d.lastErr = nil
	d.loaded = true
	if a := d.opts.Alerts; a != nil {
		a.load(cfg)
		id := smtp.RouterID(cfg.Global.RouterID)
		// keepalived's clear_diff_services: the reals gone while up, then
		// the quorum of a virtual server gone while it had it.
		for _, g := range gone {
			if g.r.health.Up && g.r.cfg.SMTPAlert {
				a.send(smtp.RealServerRemoved(id, rsMailName(g.vs, &g.r.cfg), vsMailName(g.vs), false))
			}
		}
		for _, s := range old {
			if s.quorumUp && s.cfg.SMTPAlert {
				a.send(quorumMail(id, &s.cfg, true, false, false, 0))
			}
		}
		for _, m := range mails {
			a.send(m)
		}
	}
	for _, f := range fresh {
		d.startChecks(f.r, f.vs, f.rs)
	}
	for _, r := range dropped {
		r.stop()
	}
	for _, s := range old {
		d.log.Info("virtual server removed", "service", s.key.String())
	}
	if t := cfg.Global.LVSTimeouts; t != (config.LVSTimeouts{}) {
		err := d.opts.Dataplane.SetTimeouts(dataplane.Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP})
		if err != nil {
			d.log.Error("lvs_timeouts", "error", err)
		}
	}
	go runAll(scripts)
	return nil
}

// sameChecks reports whether a real's health checking is unchanged, so its
// health state carries over a reload.
func sameChecks(ovs *config.VirtualServer, ors *config.RealServer, nvs *config.VirtualServer, nrs *config.RealServer) bool {
	return reflect.DeepEqual(config.WithoutPos(ors.Checkers, checkerPos), config.WithoutPos(nrs.Checkers, checkerPos)) && ovs.DelayLoop == nvs.DelayLoop &&
		ors.Alpha == nrs.Alpha && ovs.Alpha == nvs.Alpha && ovs.CheckViaVIP == nvs.CheckViaVIP &&
		(!nvs.CheckViaVIP || ors.Forward == nrs.Forward && ors.Tunnel == nrs.Tunnel)
}

func checkerPos(c *config.Checker) *config.Pos { return &c.Pos }

// newReal is a real's state before its checks have run: up, unless it has
// checkers and alpha.
func newReal(vs *config.VirtualServer, rs *config.RealServer) *realState {
	r := &realState{cfg: *rs, health: Health{Up: !rs.Alpha && !vs.Alpha, Reason: "not checked yet"}}
	if len(rs.Checkers) == 0 {
		r.health = Health{Up: true, Reason: "no checker: always up"}
		return r
	}
	if rs.Alpha || vs.Alpha {
		r.health.Reason = "alpha: down until its checkers pass"
	}
	return r
}

// heldReals is what a data plane already holds when the director starts
// (a data plane taken over from an xlb that died, or IPVS's table): each
// service's reals and their weights.
func (d *Director) heldReals() map[dataplane.ServiceKey]map[netip.AddrPort]int32 {
	st, err := d.opts.Dataplane.Stats()
	if err != nil || len(st.Services) == 0 {
		return nil
	}
	out := map[dataplane.ServiceKey]map[netip.AddrPort]int32{}
	for _, s := range st.Services {
		m := map[netip.AddrPort]int32{}
		for _, r := range s.Reals {
			m[netip.AddrPortFrom(r.Addr, r.Port)] = r.Weight
		}
		out[s.ServiceKey] = m
	}
	return out
}

// takenOver starts a checked real down when the data plane the director
// took over holds its service without it (or, with inhibit_on_failure, at
// weight 0): its checkers had taken it out, and it stays out until they
// pass, where a fresh start would send it traffic until they failed again.
func takenOver(r *realState, held map[dataplane.ServiceKey]map[netip.AddrPort]int32, key dataplane.ServiceKey, rs *config.RealServer) {
	reals, ok := held[key]
	if !ok || len(rs.Checkers) == 0 || !r.health.Up {
		return
	}
	w, in := reals[netip.AddrPortFrom(rs.Addr, rs.Port)]
	if !in || (w == 0 && rs.Weight > 0 && rs.InhibitOnFailure) {
		r.health = Health{Up: false, Reason: "out of the data plane taken over: down until its checkers pass"}
	}
}

// Alive returns once the director's lock is free: a Load or an apply that
// hangs (its data plane stuck) keeps it, and the watchdog waiting on this.
func (d *Director) Alive() {
	d.mu.Lock()
	// An empty critical section: taking the lock is the answer.
	d.mu.Unlock()
}

// startChecks starts a real's checkers; they report until it is stopped.
func (d *Director) startChecks(r *realState, vs *config.VirtualServer, rs *config.RealServer) {
	if len(rs.Checkers) == 0 || d.opts.Checks == nil {
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	r.cancel = cancel
	vsCopy, rsCopy := *vs, *rs
	key := keyOf(vs)
	var mark uint32
	if vs.CheckViaVIP && !rs.Forward.Translates() {
		// A NAT or FULLNAT real's clients' packets go to its own
		// address, as its checks do: nothing to send through the VIP.
		mark = d.checkMark(ctx, key, rs)
	}
	d.opts.Checks(ctx, &vsCopy, &rsCopy, mark, func(h Health) { d.report(ctx, key, r, h) })
}

// checkMark registers a real's checks through the data path
// (check_via_vip) for as long as ctx lasts, and returns their socket
// mark. Validate refused what the data plane cannot do; what fails here
// anyway (no room, no tc egress program) is logged, and the checks go to
// the real's own address, as keepalived's do.
func (d *Director) checkMark(ctx context.Context, key dataplane.ServiceKey, rs *config.RealServer) uint32 {
	router, ok := d.opts.Dataplane.(dataplane.CheckRouter)
	if !ok {
		d.log.Error("check_via_vip: the data plane cannot carry checks; they go to the real's own address", "real", rs.Addr.String())
		return 0
	}
	mark, release, err := router.CheckTarget(key, realServer(rs, rs.Weight))
	if err != nil {
		d.log.Error("check_via_vip: checks go to the real's own address", "service", key.String(), "real", rs.Addr.String(), "error", err)
		return 0
	}
	context.AfterFunc(ctx, release)
	return mark
}

func (r *realState) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// report takes a health transition of one real.
func (d *Director) report(ctx context.Context, key dataplane.ServiceKey, r *realState, h Health) {
	d.mu.Lock()
	if ctx.Err() != nil { // the real left the configuration
		d.mu.Unlock()
		return
	}
	was := r.health
	r.health = h
	var scripts []func()
	if was.Up != h.Up {
		state := "down"
		s := r.cfg.NotifyDown
		if h.Up {
			state, s = "up", r.cfg.NotifyUp
		}
		d.log.Info("real "+state, "service", key.String(), "real", r.addr().String(), "reason", h.Reason)
		if s != nil {
			scripts = append(scripts, func() { d.opts.Scripts(s, "notify_"+state+" "+r.addr().String()) })
		}
	} else if !reflect.DeepEqual(was.Weight, h.Weight) && h.Weight != nil {
		d.log.Info("real weight set by its check", "service", key.String(), "real", r.addr().String(), "weight", *h.Weight)
	}
	for _, vs := range d.services {
		if vs.key == key {
			s, mails := d.updateQuorum(vs, false, false)
			scripts = append(scripts, s...)
			// Under mu: the mails of two reports go in the order of
			// the changes. Send does not wait.
			for _, m := range mails {
				d.opts.Alerts.send(m)
			}
		}
	}
	d.applyService(key)
	d.mu.Unlock()
	runAll(scripts)
}

// applyService applies a change to the virtual server key alone (a health
// transition): by Update when the data plane can, so that its cost does
// not grow with the services that stay the same; else, or when the data
// plane is out of step, the whole wanted state.
func (d *Director) applyService(key dataplane.ServiceKey) {
	u, ok := d.opts.Dataplane.(dataplane.Updater)
	if !ok || d.lastErr != nil {
		d.applyLocked()
		return
	}
	var set []dataplane.Service
	for _, vs := range d.services {
		if vs.key == key {
			set = append(set, d.wantedOf(vs)...)
		}
	}
	failpoint.Stall("director-apply")
	if err := u.Update(set, nil); err != nil {
		d.log.Error("applying a change of one service to the data plane; applying the whole state", "service", key.String(), "error", err)
		d.applyLocked()
	}
}

func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// liveWeight is the sum of the weights of the reals that are up.
func (vs *vsState) liveWeight() uint64 {
	var sum uint64
	for _, r := range vs.reals {
		if r.health.Up {
			sum += uint64(max(r.weight(), 0))
		}
	}
	return sum
}

// updateQuorum applies keepalived's quorum rule with hysteresis and
// returns the quorum script to run and the mail to send for a change.
// init says a Load checks it (keepalived's init_service_vs, whose mails
// say "Starting with ..."); fresh, that vs is new, whose quorum keepalived
// counts from down: it mails "Starting with quorum up" when the live
// weight reaches quorum+hysteresis, and "Starting with quorum down" only
// when a sorry_server goes in.
func (d *Director) updateQuorum(vs *vsState, init, fresh bool) ([]func(), []smtp.Mail) {
	w, q, h := vs.liveWeight(), uint64(vs.cfg.Quorum), uint64(vs.cfg.Hysteresis)
	var s *config.Script
	var mails []smtp.Mail
	mail := func(wasUp bool) {
		if d.opts.Alerts != nil && vs.cfg.SMTPAlert {
			mails = append(mails, quorumMail(smtp.RouterID(d.cfg.Global.RouterID), &vs.cfg, wasUp, vs.quorumUp, init, w))
		}
	}
	switch {
	case vs.quorumUp && w+h < q:
		vs.quorumUp = false
		s = vs.cfg.QuorumDown
		d.log.Warn("quorum lost", "service", vs.key.String(), "live_weight", w, "quorum", q, "hysteresis", h, "sorry_server", vs.cfg.SorryServer != nil)
		if !fresh || vs.cfg.SorryServer != nil {
			mail(!fresh)
		}
	case !vs.quorumUp && w >= q+h:
		vs.quorumUp = true
		s = vs.cfg.QuorumUp
		d.log.Info("quorum regained", "service", vs.key.String(), "live_weight", w, "quorum", q)
		mail(false)
	case fresh && vs.quorumUp && w >= q+h:
		mail(false)
	}
	if s == nil {
		return nil, mails
	}
	return []func(){func() { d.opts.Scripts(s, "quorum "+vs.key.String()) }}, mails
}

// wanted is the data plane's state the configuration and health imply.
func (d *Director) wanted() []dataplane.Service {
	var out []dataplane.Service
	for _, vs := range d.services {
		out = append(out, d.wantedOf(vs)...)
	}
	extra, err := manualServices(d.manual)
	if err != nil {
		d.log.Error("services made by xlbadm", "error", err)
	}
	return append(out, extra...)
}

// wantedOf is what vs asks of the data plane now: its live reals (or
// inhibited ones at weight 0), or its sorry server without quorum.
func (d *Director) wantedOf(vs *vsState) []dataplane.Service {
	var reals []dataplane.Real
	if !vs.quorumUp && vs.cfg.SorryServer != nil {
		// keepalived: the live reals leave the pool, the sorry
		// server takes their place.
		s := vs.cfg.SorryServer
		reals = []dataplane.Real{realOf(s.Addr, s.Port, 1, s.Forward, s.Tunnel)}
	} else {
		for _, r := range vs.reals {
			switch {
			case r.health.Up:
				reals = append(reals, realServer(&r.cfg, r.weight()))
			case r.cfg.InhibitOnFailure || vs.cfg.InhibitOnFailure:
				reals = append(reals, realServer(&r.cfg, 0))
			}
		}
	}
	return servicesOf(&vs.cfg, reals)
}

// SetStandby tells the director which VIPs it does not serve now (the VIP
// owners decide: VRRP BACKUP or FAULT, ...): their services stay loaded but
// forward nothing. The data plane writes only flags, at once; the director
// takes none of the locks an Apply holds, so a role flip never waits for
// one.
func (d *Director) SetStandby(vips map[netip.Addr]bool) error {
	d.standbyMu.Lock()
	defer d.standbyMu.Unlock()
	if d.standby != nil && maps.Equal(d.standby, vips) {
		return nil
	}
	d.standby = maps.Clone(vips)
	if err := d.opts.Dataplane.SetStandby(vips); err != nil {
		d.log.Error("setting VIPs on standby", "error", err)
		return err
	}
	return nil
}

func (d *Director) onStandby(vip netip.Addr) bool {
	d.standbyMu.Lock()
	defer d.standbyMu.Unlock()
	return d.standby[vip]
}

func (d *Director) applyLocked() {
	_ = d.applyAndCheck()
}

// applyAndCheck applies the wanted state and returns the data plane's
// refusal, if any.
func (d *Director) applyAndCheck() error {
	failpoint.Stall("director-apply")
	err := d.opts.Dataplane.Apply(d.wanted())
	if err != nil {
		d.log.Error("applying to the data plane", "error", err)
	} else if d.lastErr != nil {
		d.log.Info("data plane in step again")
	}
	d.lastErr = err
	return err
}

// Close stops every health check. The data plane is the caller's.
func (d *Director) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, vs := range d.services {
		for _, r := range vs.reals {
			r.stop()
		}
	}
}

// defence is the data plane's flood defence as the status shows it.
func (d *Director) defence() *control.Defence {
	ds, err := d.opts.Dataplane.Defence()
	if err != nil {
		return &control.Defence{Error: err.Error()}
	}
	unit := "pages"
	if ds.MaxFlows != 0 {
		unit = "flows"
	}
	return &control.Defence{
		DropEntry: ds.DropEntry, DropPacket: ds.DropPacket, SecureTCP: ds.SecureTCP,
		DropEntryOn: ds.DropEntryOn, DropRate: ds.DropRate, SecureTCPOn: ds.SecureTCPOn,
		Threshold: ds.Threshold, AmDropRate: ds.AmDropRate, Room: ds.Room, RoomOf: ds.RoomOf, RoomUnit: unit,
		Flows: ds.Flows, MaxFlows: ds.MaxFlows, HalfOpen: ds.HalfOpen, MaxHalfOpen: ds.MaxHalfOpen, Dropped: ds.Dropped,
	}
}

// realLife names a configured real for counterLives.
type realLife struct {
	svc  dataplane.ServiceKey
	real netip.AddrPort
}

// counterLives are a real's counters over its lives in the data plane: a
// real its checker takes out of the pool leaves the data plane, and comes
// back with counters from zero. carried is what its earlier lives
// counted; seen, what the data plane last said of this one.
type counterLives struct {
	carried, seen dataplane.Counters
}

// realCounters is what a configured real has counted since the director
// started, as Prometheus wants a counter: it stays while the real is out of
// the pool, and goes on from there when it is back (as IPVS keeps a dest's
// counters in its trash and gives them back when the dest is re-added).
// in says whether the real is in the data plane, with its counters c.
func (d *Director) realCounters(k realLife, in bool, c dataplane.Counters) dataplane.Counters {
	if d.lives == nil {
		d.lives = map[realLife]*counterLives{}
	}
	l := d.lives[k]
	if l == nil {
		l = &counterLives{}
		d.lives[k] = l
	}
	switch {
	case !in:
		l.carried, l.seen = l.carried.Add(l.seen), dataplane.Counters{}
	case c.Packets < l.seen.Packets || c.Bytes < l.seen.Bytes || c.Conns < l.seen.Conns ||
		c.OutPackets < l.seen.OutPackets || c.OutBytes < l.seen.OutBytes:
		// Out and back since the last look: a new life.
		l.carried, l.seen = l.carried.Add(l.seen), c
	default:
		l.seen = c
	}
	return l.carried.Add(l.seen)
}

// serviceStatus is one service vs stands for, as Status reports it.
func (d *Director) serviceStatus(vs *vsState, key dataplane.ServiceKey, ss dataplane.ServiceStats, configured map[realLife]bool) control.Service {
	inService := map[netip.AddrPort]dataplane.RealStats{}
	for _, rs := range ss.Reals {
		inService[netip.AddrPortFrom(rs.Addr, rs.Port)] = rs
	}
	out := control.Service{
		Protocol: key.Protocol.String(), Addr: key.Addr.String(), Port: key.Port, FWMark: key.FWMark,
		Scheduler: vs.cfg.Scheduler, Flags: strings.Join(sched.FlagNames(vs.cfg.Scheduler, vs.cfg.SchedFlags&lvs.SchedFlags), ","),
		Quorum: vs.cfg.Quorum, QuorumUp: vs.quorumUp, Sloppy: vs.cfg.Sloppy,
		Standby:  key.FWMark == 0 && d.onStandby(key.Addr),
		Counters: control.Counters(ss.Counters),
	}
	if !vs.quorumUp && vs.cfg.SorryServer != nil {
		out.SorryServer = netip.AddrPortFrom(vs.cfg.SorryServer.Addr, vs.cfg.SorryServer.Port).String()
	}
	for _, r := range vs.reals {
		port := realPort(key, r.cfg.Forward, r.cfg.Port)
		addr := netip.AddrPortFrom(r.cfg.Addr, port)
		rs, in := inService[addr]
		k := realLife{key, addr}
		configured[k] = true
		cr := control.Real{
			Addr: r.cfg.Addr.String(), Port: port, Forward: r.cfg.Forward.Kind(), Tunnel: tunnelName(r.cfg.Forward, r.cfg.Tunnel),
			Weight: r.cfg.Weight, Healthy: r.health.Up, InService: in, Reason: r.health.Reason,
			Resolved: rs.Resolved, Counters: control.Counters(d.realCounters(k, in, rs.Counters)),
			ActiveConns: rs.ActiveConns, InactConns: rs.InactConns,
		}
		if in {
			cr.EffectiveWeight = int(rs.Weight)
		}
		out.Reals = append(out.Reals, cr)
	}
	return out
}

// Status reports services, reals, health and counters.
func (d *Director) Status() (control.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	stats, err := d.opts.Dataplane.Stats()
	if err != nil {
		return control.Status{}, fmt.Errorf("read data plane counters: %w", err)
	}
	byKey := map[dataplane.ServiceKey]dataplane.ServiceStats{}
	for _, s := range stats.Services {
		byKey[s.ServiceKey] = s
	}
	st := control.Status{Reasons: stats.Reasons, NextHopChanges: stats.NextHopChanges, Defence: d.defence()}
	if d.lastErr != nil {
		st.LastError = d.lastErr.Error()
	}
	configured := make(map[realLife]bool, len(d.lives))
	for _, vs := range d.services {
		for _, key := range vs.keys {
			st.Services = append(st.Services, d.serviceStatus(vs, key, byKey[key], configured))
		}
	}
	for k := range d.lives {
		if !configured[k] {
			delete(d.lives, k) // gone from the configuration
		}
	}
	manual, _ := manualServices(d.manual)
	for _, svc := range manual {
		ss := byKey[svc.ServiceKey]
		out := control.Service{
			Protocol: svc.Protocol.String(), Addr: svc.Addr.String(), Port: svc.Port,
			Scheduler: svc.Scheduler, Quorum: 0, QuorumUp: true, Counters: control.Counters(ss.Counters),
			Flags: strings.Join(sched.FlagNames(svc.Scheduler, svc.Flags&lvs.SchedFlags), ","), Standby: d.onStandby(svc.Addr),
		}
		for _, r := range svc.Reals {
			cr := control.Real{Addr: r.Addr.String(), Port: r.Port, Forward: r.Forward.Kind(), Tunnel: tunnelName(r.Forward, r.Tunnel), Weight: int(r.Weight),
				Healthy: true, Reason: "added by xlbadm: not health-checked"}
			for _, rs := range ss.Reals {
				if rs.Addr == r.Addr && rs.Port == r.Port {
					cr.InService, cr.EffectiveWeight, cr.Resolved = true, int(rs.Weight), rs.Resolved
					cr.ActiveConns, cr.InactConns, cr.Counters = rs.ActiveConns, rs.InactConns, control.Counters(rs.Counters)
				}
			}
			out.Reals = append(out.Reals, cr)
		}
		st.Services = append(st.Services, out)
	}
	return st, nil
}

// QuorumByVIP says, for each VIP of the configured virtual servers,
// whether every service of it has quorum now (keepalived's quorum with
// hysteresis): what a BGP speaker announces the VIP by.
func (d *Director) QuorumByVIP() map[netip.Addr]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[netip.Addr]bool{}
	for _, vs := range d.services {
		for _, k := range vs.keys {
			if k.FWMark != 0 {
				continue
			}
			up, seen := out[k.Addr]
			out[k.Addr] = vs.quorumUp && (up || !seen)
		}
	}
	return out
}

// tunnelName is a TUN real's tunnel as the status shows it; "" otherwise.
func tunnelName(f lvs.Forward, t lvs.Tunnel) string {
	if f != lvs.TUN {
		return ""
	}
	return t.String()
}
