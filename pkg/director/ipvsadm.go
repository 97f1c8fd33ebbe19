package director

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/xlbproject/xlb/internal/failpoint"
	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/ipvsadm"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Ipvsadm runs an ipvsadm command line against the running director, as
// ipvsadm runs against the kernel: listings show every service (from the
// configuration and from earlier commands) with the data plane's counters;
// changes apply to the services made by commands, and are validated and
// applied like a configuration change. Services from keepalived.conf are
// changed in the file (and SIGHUP), not here. It returns what ipvsadm
// would print on stdout and stderr, and its exit code.
func (d *Director) Ipvsadm(args []string, stdin string) (stdout, stderr string, code int) {
	cmd, err := systemNames.Parser().Parse(args)
	if err != nil {
		return "", message(err), ipvsadm.ExitCode(err)
	}
	cmd.List.Names = systemNames
	var out bytes.Buffer
	switch cmd.Kind {
	case ipvsadm.CmdList, ipvsadm.CmdSave, ipvsadm.CmdHelp, ipvsadm.CmdVersion, ipvsadm.CmdGetLaddr:
		// The data plane is read without the director's lock: a listing
		// of a million connections must not hold up health transitions.
		// Only -c reads the connection table.
		if cmd.Kind == ipvsadm.CmdList && cmd.List.Daemon {
			return d.listDaemons()
		}
		st, diffs, err := d.ipvsState(cmd.Kind == ipvsadm.CmdList && cmd.List.Connection)
		if err != nil {
			return "", err.Error(), 1
		}
		err = st.Exec(&out, cmd)
		msg := message(err)
		if len(diffs) > 0 && (cmd.Kind == ipvsadm.CmdList || cmd.Kind == ipvsadm.CmdSave) {
			// What is listed is what the data plane holds; say where that
			// is not what is wanted (ipvsadm's own output is unchanged).
			d.mu.Lock()
			why := "an earlier change was refused"
			if d.lastErr != nil {
				why = d.lastErr.Error()
			}
			d.mu.Unlock()
			msg = strings.TrimSpace(msg + "\nxlb: the data plane holds what is listed, which differs from what is wanted (" + why + "):\n  " + strings.Join(diffs, "\n  "))
		}
		return out.String(), msg, ipvsadm.ExitCode(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch cmd.Kind {
	case ipvsadm.CmdSetTimeout:
		t := cmd.Timeouts
		err := d.opts.Dataplane.SetTimeouts(dataplane.Timeouts{
			TCP: time.Duration(t.TCP) * time.Second, TCPFin: time.Duration(t.TCPFin) * time.Second, UDP: time.Duration(t.UDP) * time.Second})
		if err != nil {
			return "", err.Error(), 255
		}
		return "", "", 0
	case ipvsadm.CmdZero:
		return d.zero(cmd)
	case ipvsadm.CmdStartDaemon, ipvsadm.CmdStopDaemon:
		return d.syncDaemon(cmd)
	}

	if cmd.HasService {
		if vs := d.configService(&cmd.Service); vs != nil && cmd.Kind != ipvsadm.CmdAddService {
			return "", fmt.Sprintf("%s is defined in %s: change it there and reload (SIGHUP)",
				manualKey(&cmd.Service), vs.cfg.Pos), 255
		}
	}
	next := d.manualCopy()
	if cmd.Kind == ipvsadm.CmdRestore {
		err = next.Restore(&out, strings.NewReader(stdin), systemNames.Parser())
	} else {
		err = next.Apply(cmd)
	}
	if err == nil {
		for _, s := range next.Services {
			if d.configService(&s) != nil {
				err = fmt.Errorf("%s is defined in the configuration", manualKey(&s))
				break
			}
		}
	}
	if err == nil {
		var svcs []dataplane.Service
		if svcs, err = manualServices(next); err == nil {
			err = d.opts.Dataplane.Caps().Validate(svcs)
		}
	}
	if err != nil {
		return out.String(), message(err), max(ipvsadm.ExitCode(err), 1)
	}
	prev := d.manual
	d.manual = next
	if aerr := d.applyManual(prev, next); aerr != nil {
		d.manual = prev
		d.applyLocked()
		return out.String(), aerr.Error(), 255
	}
	d.saveManual()
	return out.String(), "", 0
}

// applyManual applies a change of the services made with xlbadm from prev
// to next: only the services that changed, by Update, when the data plane
// can and is in step; else the whole wanted state.
func (d *Director) applyManual(prev, next *ipvsadm.State) error {
	u, ok := d.opts.Dataplane.(dataplane.Updater)
	if !ok || d.lastErr != nil {
		return d.applyAndCheck()
	}
	was, err1 := manualServices(prev)
	now, err2 := manualServices(next)
	if err1 != nil || err2 != nil {
		return d.applyAndCheck()
	}
	set, del := serviceChanges(was, now)
	if len(set) == 0 && len(del) == 0 {
		return nil
	}
	failpoint.Stall("director-apply")
	if err := u.Update(set, del); err != nil {
		d.log.Error("applying to the data plane", "error", err)
		return err
	}
	return nil
}

// serviceChanges is what takes the data plane from was to now: the
// services that are new or differ, and the keys that went.
func serviceChanges(was, now []dataplane.Service) (set []dataplane.Service, del []dataplane.ServiceKey) {
	old := make(map[dataplane.ServiceKey]dataplane.Service, len(was))
	for _, s := range was {
		old[s.ServiceKey] = s
	}
	for _, s := range now {
		o, ok := old[s.ServiceKey]
		if !ok || !reflect.DeepEqual(o, s) {
			set = append(set, s)
		}
		delete(old, s.ServiceKey)
	}
	for _, s := range was {
		if _, ok := old[s.ServiceKey]; ok {
			del = append(del, s.ServiceKey)
		}
	}
	return set, del
}

// saveManual writes the services xlbadm made to ManualFile (whole, by a
// rename), for the next start; a failure is logged: the change stands.
func (d *Director) saveManual() {
	if d.opts.ManualFile == "" {
		return
	}
	var b bytes.Buffer
	if d.manual != nil {
		if err := d.manual.Save(&b, ipvsadm.ListOptions{Numeric: true}); err != nil {
			d.log.Error("keeping the services made with xlbadm for the next start", "file", d.opts.ManualFile, "error", err)
			return
		}
	}
	tmp := d.opts.ManualFile + ".tmp"
	err := os.MkdirAll(filepath.Dir(d.opts.ManualFile), 0o755)
	if err == nil {
		err = os.WriteFile(tmp, b.Bytes(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, d.opts.ManualFile)
	}
	if err != nil {
		d.log.Error("keeping the services made with xlbadm for the next start", "file", d.opts.ManualFile, "error", err)
	}
}

// restoreManual reads back the services xlbadm made before this start
// (ManualFile). A service the configuration now defines is the
// configuration's; a file that does not read back whole restores nothing
// and is left for the operator.
func (d *Director) restoreManual(cfg *config.Config) {
	if d.opts.ManualFile == "" {
		return
	}
	f, err := os.Open(d.opts.ManualFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Error("the services made with xlbadm before this start are not restored", "file", d.opts.ManualFile, "error", err)
		return
	}
	defer f.Close()
	st := ipvsadm.NewState()
	if err := st.Restore(io.Discard, f, systemNames.Parser()); err != nil {
		d.log.Error("the services made with xlbadm before this start are not restored", "file", d.opts.ManualFile, "error", err)
		return
	}
	configured := map[dataplane.ServiceKey]bool{}
	for i := range cfg.VirtualServers {
		for _, k := range keysOf(&cfg.VirtualServers[i]) {
			configured[k] = true
		}
	}
	kept := st.Services[:0]
	for _, s := range st.Services {
		if configured[manualKey(&s)] {
			d.log.Warn("a service made with xlbadm is now in the configuration: the configuration's is kept", "service", manualKey(&s).String())
			continue
		}
		kept = append(kept, s)
	}
	st.Services = kept
	svcs, err := manualServices(st)
	if err == nil {
		err = d.opts.Dataplane.Caps().Validate(svcs)
	}
	if err != nil {
		d.log.Error("the services made with xlbadm before this start are not restored", "file", d.opts.ManualFile, "error", err)
		return
	}
	d.manual = st
	if len(st.Services) > 0 {
		d.log.Info("restored the services made with xlbadm", "services", len(st.Services), "file", d.opts.ManualFile)
	}
}

// systemNames resolves host and port names as ipvsadm does on this host:
// in commands (-t vip.example:http), and in listings without -n.
var systemNames = &ipvsadm.System{}

func message(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*ipvsadm.Error); ok {
		return e.Message("ipvsadm")
	}
	return err.Error()
}

func (d *Director) manualCopy() *ipvsadm.State {
	next := ipvsadm.NewState()
	if d.manual != nil {
		next.Services = slices.Clone(d.manual.Services)
		for i := range next.Services {
			next.Services[i].Dests = slices.Clone(next.Services[i].Dests)
		}
	}
	return next
}

// configService is the configured virtual server with s's identity.
func (d *Director) configService(s *ipvsadm.Service) *vsState {
	want := manualKey(s)
	for _, vs := range d.services {
		for _, k := range vs.keys {
			if k == want {
				return vs
			}
		}
	}
	return nil
}

// manualKey is the data plane's name for a service of ipvsadm's table.
func manualKey(s *ipvsadm.Service) dataplane.ServiceKey {
	if s.FWMark != 0 {
		// ipvsadm's model gives a fwmark service the unspecified
		// address of its family, as the data plane names it.
		return dataplane.ServiceKey{Addr: s.Addr, FWMark: s.FWMark}
	}
	return dataplane.ServiceKey{Addr: s.Addr, Port: s.Port, Protocol: s.Protocol}
}

// manualServices turns the commands' table into data plane services. What
// the data plane cannot serve is its Caps' to say (Apply validates).
func manualServices(st *ipvsadm.State) ([]dataplane.Service, error) {
	var out []dataplane.Service
	if st == nil {
		return nil, nil
	}
	for _, s := range st.Services {
		if s.PE != "" {
			// What the kernel answers when the engine's module is missing.
			return nil, &ipvsadm.Error{Code: 255, Msg: "Scheduler or persistence engine not found\n" +
				"xlb: persistence engines (--pe " + s.PE + ") are not supported by xlb's data planes"}
		}
		svc := dataplane.Service{
			ServiceKey: manualKey(&s),
			Scheduler:  s.Scheduler,
			Flags:      s.Flags,
			LocalAddrs: s.LocalAddrs,
		}
		if s.Persistent {
			svc.Persistence = time.Duration(s.Timeout) * time.Second
			svc.PersistenceMask = lvs.Netmask(s.Netmask) // as given: ipvsadm's and lvs.Netmask's forms are the same
			if s.Addr.Is4() && s.Netmask == 0 {
				return nil, fmt.Errorf("service %s %s:%d: a persistence netmask of 0.0.0.0 (every client in one template) is not supported by xlb", s.Protocol, s.Addr, s.Port)
			}
		}
		for _, dst := range s.Dests {
			r := dataplane.Real{Addr: dst.Addr, Port: dst.Port, Weight: dst.Weight, Forward: dst.Forward,
				UThreshold: dst.UThreshold, LThreshold: dst.LThreshold}
			if dst.Forward == lvs.TUN {
				r.Tunnel = lvs.Tunnel{Type: dst.Tunnel, Port: dst.TunPort, Flags: dst.TunFlags}
			}
			svc.Reals = append(svc.Reals, r)
		}
		out = append(out, svc)
	}
	return out, nil
}

// zero is ipvsadm -Z: the listed counters of one service (or all) start
// again from zero. The data plane's counters (and Prometheus') go on; the
// listing subtracts what they were at -Z.
func (d *Director) zero(cmd ipvsadm.Command) (string, string, int) {
	st, err := d.tableLocked(false)
	if err != nil {
		return "", err.Error(), 1
	}
	if cmd.HasService && st.Find(&cmd.Service) == nil {
		return "", "No such service", 255
	}
	if d.zeroed == nil {
		d.zeroed = map[string]ipvsadm.Stats{}
	}
	for _, s := range st.Services {
		if cmd.HasService && !ipvsadm.SameService(&s, &cmd.Service) {
			continue
		}
		sk := statKey(&s, nil)
		d.zeroed[sk] = add(d.zeroed[sk], s.Stats)
		for i := range s.Dests {
			dk := statKey(&s, &s.Dests[i])
			d.zeroed[dk] = add(d.zeroed[dk], s.Dests[i].Stats)
		}
	}
	return "", "", 0
}

func statKey(s *ipvsadm.Service, dst *ipvsadm.Dest) string {
	k := manualKey(s).String()
	if dst != nil {
		k += " " + dst.AddrPort().String()
	}
	return k
}

func add(a, b ipvsadm.Stats) ipvsadm.Stats {
	return ipvsadm.Stats{Conns: a.Conns + b.Conns, InPkts: a.InPkts + b.InPkts, OutPkts: a.OutPkts + b.OutPkts,
		InBytes: a.InBytes + b.InBytes, OutBytes: a.OutBytes + b.OutBytes}
}

func sub(a, b ipvsadm.Stats) ipvsadm.Stats {
	d := func(x, y uint64) uint64 {
		if y > x {
			return 0
		}
		return x - y
	}
	return ipvsadm.Stats{Conns: d(a.Conns, b.Conns), InPkts: d(a.InPkts, b.InPkts), OutPkts: d(a.OutPkts, b.OutPkts),
		InBytes: d(a.InBytes, b.InBytes), OutBytes: d(a.OutBytes, b.OutBytes)}
}

// ipvsState is the whole table as ipvsadm lists it, with counters (less
// what -Z set aside) and rates, and the connections if conns. The
// director's lock is held only to copy what it wants.
func (d *Director) ipvsState(conns bool) (*ipvsadm.State, []string, error) {
	d.mu.Lock()
	services := d.wanted()
	rates := map[string]ipvsadm.Rates{}
	for k, e := range d.est {
		rates[k] = e.rates()
	}
	zeroed := maps.Clone(d.zeroed)
	d.mu.Unlock()
	st, diffs, err := IpvsadmTable(d.opts.Dataplane, services, func(k dataplane.ServiceKey, r *dataplane.Real) ipvsadm.Rates {
		return rates[rateKey(k, r)]
	}, conns)
	if err != nil {
		return nil, nil, err
	}
	for i := range st.Services {
		s := &st.Services[i]
		s.Stats = sub(s.Stats, zeroed[statKey(s, nil)])
		for j := range s.Dests {
			s.Dests[j].Stats = sub(s.Dests[j].Stats, zeroed[statKey(s, &s.Dests[j])])
		}
	}
	return st, diffs, nil
}

// tableLocked is the table without -Z's baselines, rates or connections,
// with the director's lock held.
func (d *Director) tableLocked(conns bool) (*ipvsadm.State, error) {
	st, _, err := IpvsadmTable(d.opts.Dataplane, d.wanted(), nil, conns)
	return st, err
}

// TableInfo is implemented by a data plane that can say what IPVS's own
// header would: the version and connection hash table size (pkg/ipvsdp
// reads them from the kernel; the size is a kernel build option).
type TableInfo interface {
	TableInfo() (version uint32, size int, err error)
}

// IpvsadmTable is the table ipvsadm would list for what dp holds: each
// service and real as dp has it (dp.Stats), with its counters and
// connection counts, dp's timeouts, its connections if conns (a walk of
// the whole table: only -c needs it), and the header from dp when it is a
// TableInfo. rates, when not nil, fills the --rate columns. It also says
// where what dp holds differs from wanted (after a change dp refused). The
// daemon answers xlbadm with it; tests compare it with the real ipvsadm.
func IpvsadmTable(dp dataplane.Dataplane, wanted []dataplane.Service,
	rates func(dataplane.ServiceKey, *dataplane.Real) ipvsadm.Rates, conns bool) (*ipvsadm.State, []string, error) {
	stats, err := dp.Stats()
	if err != nil {
		return nil, nil, err
	}
	if rates == nil {
		rates = func(dataplane.ServiceKey, *dataplane.Real) ipvsadm.Rates { return ipvsadm.Rates{} }
	}
	counters := func(c dataplane.Counters) ipvsadm.Stats {
		return ipvsadm.Stats{Conns: c.Conns, InPkts: c.Packets, InBytes: c.Bytes, OutPkts: c.OutPackets, OutBytes: c.OutBytes}
	}
	st := ipvsadm.NewState()
	if ti, ok := dp.(TableInfo); ok {
		if v, size, err := ti.TableInfo(); err == nil {
			st.Info = ipvsadm.Info{Version: v, Size: size}
		}
	}
	for _, ss := range stats.Services {
		svc := ss.Service
		is := ipvsadm.Service{
			Protocol: svc.Protocol, Addr: svc.Addr, Port: svc.Port, FWMark: svc.FWMark,
			Scheduler: svc.Scheduler, Flags: svc.Flags, LocalAddrs: svc.LocalAddrs,
			Stats: counters(ss.Counters), Rates: rates(svc.ServiceKey, nil),
		}
		if svc.FWMark != 0 {
			is.Protocol = lvs.TCP // as ipvsadm names a fwmark service
		}
		if svc.Persistence > 0 {
			is.Persistent, is.Timeout = true, uint32(svc.Persistence/time.Second)
			is.Netmask = uint32(svc.PersistenceMask.Or(svc.Addr)) // a mask for IPv4, a prefix length for IPv6, as ipvsadm
		}
		for _, rs := range ss.Reals {
			is.Dests = append(is.Dests, ipvsadm.Dest{Addr: rs.Addr, Port: rs.Port, Weight: rs.Weight, Forward: rs.Forward,
				Tunnel: rs.Tunnel.Type, TunPort: rs.Tunnel.Port, TunFlags: rs.Tunnel.Flags,
				UThreshold: rs.UThreshold, LThreshold: rs.LThreshold,
				Rates: rates(svc.ServiceKey, &rs.Real), ActiveConns: uint32(rs.ActiveConns), InactConns: uint32(rs.InactConns),
				Stats: counters(rs.Counters)})
		}
		st.Services = append(st.Services, is)
	}
	diffs := differences(wanted, stats.Services)
	if t, err := dp.Timeouts(); err == nil {
		st.Timeouts = ipvsadm.Timeouts{TCP: int(t.TCP / time.Second), TCPFin: int(t.TCPFin / time.Second), UDP: int(t.UDP / time.Second)}
	}
	if !conns {
		return st, diffs, nil
	}
	cs, err := dp.Conns()
	if err != nil {
		return nil, nil, err
	}
	st.Conns = make([]ipvsadm.Conn, 0, len(cs))
	for _, c := range cs {
		st.Conns = append(st.Conns, ipvsadm.Conn{Protocol: c.Protocol, Expires: c.Expires, State: c.State,
			Client: c.Client, Virtual: c.Virtual, Dest: c.Real})
	}
	return st, diffs, nil
}

// differences says, a line each, where what the data plane holds is not
// what is wanted.
func differences(wanted []dataplane.Service, held []dataplane.ServiceStats) []string {
	var out []string
	byKey := make(map[dataplane.ServiceKey]dataplane.ServiceStats, len(held))
	for _, h := range held {
		byKey[h.ServiceKey] = h
	}
	for _, w := range wanted {
		h, ok := byKey[w.ServiceKey]
		if !ok {
			out = append(out, fmt.Sprintf("%s: wanted, not in the data plane", w.ServiceKey))
			continue
		}
		delete(byKey, w.ServiceKey)
		if h.Scheduler != w.Scheduler || h.Flags != w.Flags || h.Persistence != w.Persistence ||
			h.PersistenceMask.Or(h.Addr) != w.PersistenceMask.Or(w.Addr) {
			out = append(out, fmt.Sprintf("%s: held as %s flags %#x persistence %v mask %s, wanted %s flags %#x persistence %v mask %s", w.ServiceKey,
				h.Scheduler, uint32(h.Flags), h.Persistence, h.PersistenceMask.Format(h.Addr), w.Scheduler, uint32(w.Flags), w.Persistence, w.PersistenceMask.Format(w.Addr)))
		}
		reals := make(map[netip.AddrPort]dataplane.Real, len(h.Reals))
		for _, r := range h.Reals {
			reals[netip.AddrPortFrom(r.Addr, r.Port)] = r.Real
		}
		for _, r := range w.Reals {
			k := netip.AddrPortFrom(r.Addr, r.Port)
			hr, ok := reals[k]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s: real %s wanted, not in the data plane", w.ServiceKey, k))
			case hr.Weight != r.Weight || hr.Forward != r.Forward || hr.UThreshold != r.UThreshold || hr.LThreshold != r.LThreshold ||
				(r.Forward == lvs.TUN && hr.Tunnel != r.Tunnel):
				out = append(out, fmt.Sprintf("%s: real %s held as %s weight %d thresholds %d/%d, wanted %s weight %d thresholds %d/%d", w.ServiceKey, k,
					method(hr), hr.Weight, hr.UThreshold, hr.LThreshold, method(r), r.Weight, r.UThreshold, r.LThreshold))
			}
			delete(reals, k)
		}
		for k := range reals {
			out = append(out, fmt.Sprintf("%s: real %s in the data plane, not wanted", w.ServiceKey, k))
		}
	}
	for k := range byKey {
		out = append(out, fmt.Sprintf("%s: in the data plane, not wanted", k))
	}
	slices.Sort(out)
	return out
}

// syncDaemon starts or stops a connection-sync daemon where the data plane
// runs them (IPVS: the kernel's own; XDP: xlb's, package syncd); one
// without them says so.
func (d *Director) syncDaemon(cmd ipvsadm.Command) (stdout, stderr string, code int) {
	sd, ok := d.opts.Dataplane.(dataplane.SyncDaemons)
	if !ok {
		return "", fmt.Sprintf("Operation not supported: %s has no connection sync daemon", d.opts.Dataplane.Caps().Name), 255
	}
	var err error
	if cmd.Kind == ipvsadm.CmdStopDaemon {
		err = sd.StopDaemon(cmd.Daemon.Backup)
	} else {
		c := cmd.Daemon
		err = sd.StartDaemon(dataplane.SyncDaemon{Backup: c.Backup, Interface: c.McastIfn, SyncID: c.SyncID,
			MaxLen: c.SyncMaxlen, Group: c.McastGroup, Port: c.McastPort, TTL: c.McastTTL})
	}
	if err != nil {
		return "", err.Error(), 255
	}
	return "", "", 0
}

// listDaemons is ipvsadm -L --daemon: nothing where the data plane runs
// none.
func (d *Director) listDaemons() (stdout, stderr string, code int) {
	sd, ok := d.opts.Dataplane.(dataplane.SyncDaemons)
	if !ok {
		return "", "", 0
	}
	running, err := sd.Daemons()
	if err != nil {
		return "", err.Error(), 1
	}
	var ds []ipvsadm.Daemon
	for _, r := range running {
		ds = append(ds, ipvsadm.Daemon{Backup: r.Backup, McastIfn: r.Interface, SyncID: r.SyncID,
			SyncMaxlen: r.MaxLen, McastGroup: r.Group, McastPort: r.Port, McastTTL: r.TTL})
	}
	var out bytes.Buffer
	if err := ipvsadm.WriteDaemons(&out, ds); err != nil {
		return "", err.Error(), 1
	}
	return out.String(), "", 0
}

// method is a real's forwarding method as a message names it: TUN with
// its tunnel (TUN/gue:6080:nocsum).
func method(r dataplane.Real) string {
	if t := tunnelName(r.Forward, r.Tunnel); t != "" {
		return "TUN/" + t
	}
	return r.Forward.Kind()
}
