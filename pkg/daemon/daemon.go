package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xlbproject/xlb/pkg/bgpd"
	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
	"github.com/xlbproject/xlb/pkg/director"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/metrics"
	"github.com/xlbproject/xlb/pkg/scripts"
	"github.com/xlbproject/xlb/pkg/vrrpd"
	"github.com/xlbproject/xlb/pkg/webui"
)

// Options configure a running director: what `xlb run`'s flags say.
type Options struct {
	// ConfigFile is the keepalived.conf to run; "" runs without one
	// (services come from xlbadm only).
	ConfigFile string
	// Interfaces are where VIP traffic arrives; empty: the interfaces
	// of the configuration's vrrp_instances.
	Interfaces []string
	// PinDir is the bpffs directory of the XDP data plane's maps and
	// links (xdp.DefaultPinDir if empty).
	PinDir string
	// Socket is the control socket (control.DefaultSocket if empty).
	Socket string
	// Dataplane is "auto" (or ""), "xdp" or "ipvs".
	Dataplane string
	// XDPMode is how XDP attaches.
	XDPMode dataplane.XDPMode
	// IPVSState is the IPVS data plane's record of its services
	// (ipvs.DefaultStateFile if empty).
	IPVSState string
	// KeepDataplane leaves the data plane forwarding (pinned) at the end,
	// for the next xlb to take over.
	KeepDataplane bool
	// MaxConns sizes the XDP connection table; MaxServices, MaxReals and
	// MaxSchedEntries its service, real and scheduler-table maps (0: built
	// in). They must stay the same across a takeover of a pinned one.
	MaxConns, MaxServices, MaxReals, MaxSchedEntries uint32
	// MaxHalfOpen sizes the XDP table of flows not yet proven (0: a
	// quarter of MaxConns).
	MaxHalfOpen uint32
	// MaxFullNATFlows sizes the XDP table of FULLNAT ports (0: MaxConns
	// plus MaxHalfOpen).
	MaxFullNATFlows uint32
	// Defence is the flood defence (IPVS's drop_entry, drop_packet,
	// secure_tcp sysctls, or the XDP data plane's own).
	Defence dataplane.Defence
	// SloppyTCP and SloppySCTP are IPVS's sloppy_tcp and sloppy_sctp for
	// every service of the protocol (--sloppy-tcp, --sloppy-sctp): a
	// connection first seen mid-stream is scheduled (ECMP scale-out).
	SloppyTCP, SloppySCTP bool
	// BGPConfig is GoBGP's configuration file (--bgp-config): with it,
	// the director announces its VIPs over BGP (pkg/bgpd). BGPVIPs
	// limits the VIPs announced to these prefixes (nil: all of the
	// virtual servers'); BGPDrain is how long a stopping director keeps
	// forwarding after withdrawing them.
	BGPConfig string
	BGPVIPs   []netip.Prefix
	BGPDrain  time.Duration
	// XlbadmState keeps the services made with xlbadm across restarts
	// (ipvsadm -S form; "": DefaultXlbadmState).
	XlbadmState string
	// SyncWait bounds how long a director started with lvs_sync_daemon
	// holds VRRP preemption for its bulk dump (--sync-wait; 0:
	// DefaultSyncWait).
	SyncWait time.Duration
	// MHTabIndex is the CONFIG_IP_VS_MH_TAB_INDEX whose table the XDP
	// data plane's mh builds (--mh-tab-index; 0: 12, the kernel's
	// default). The kernel's IPVS has its own, built in.
	MHTabIndex int
	// FloodRate is the XDP data plane's flood mode (xdp.Config.FloodRate,
	// --flood-rate): new flows a second per CPU above which sh, dh and mh
	// services forward by their table alone; 0: off.
	FloodRate uint32
	// Metrics is the address to serve Prometheus metrics on ("": none).
	Metrics string
	// Strict refuses a configuration with warnings (--strict), at start
	// and at each reload.
	Strict bool
	// ConfigID selects keepalived's @id conditional lines (--config-id);
	// "": the host name up to its first dot.
	ConfigID string
	Logger   *slog.Logger `json:"-"`
}

func (o Options) readOptions(caps dataplane.Caps, securityOnce bool) ReadOptions {
	return ReadOptions{Caps: caps, SecurityOnce: securityOnce, Strict: o.Strict, ConfigID: o.ConfigID,
		SloppyTCP: o.SloppyTCP, SloppySCTP: o.SloppySCTP, BGPConfig: o.BGPConfig, BGPVIPs: o.BGPVIPs}
}

func (o Options) pinDir() string {
	if o.PinDir == "" {
		return xdp.DefaultPinDir
	}
	return o.PinDir
}

// DefaultXlbadmState is where the services made with xlbadm are kept.
const DefaultXlbadmState = "/var/lib/xlb/xlbadm.rules"

// ScriptGrace is how long the scripts still running when the daemon stops
// (a notify_stop among them) are given before they are killed.
const ScriptGrace = 5 * time.Second

// Run is a director from start to end: it reads the configuration, opens
// the data plane, applies every virtual_server, runs the health checks
// and the VIP owners (VRRP), serves the control socket and metrics,
// reloads on SIGHUP (an invalid file changes nothing) and stops when ctx
// ends, detaching the data plane unless KeepDataplane.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	// SIGHUP is caught from the start: one sent while the daemon starts,
	// or the moment systemd (or a script) hears READY=1, reloads once it
	// runs instead of killing it as Go's default would.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGUSR2 (a hitless restart) likewise: one during the start hands
	// off once running.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	if o.Socket == "" {
		o.Socket = control.DefaultSocket
	}
	if err := control.CheckSocketPath(o.Socket); err != nil {
		return err
	}
	unlock, err := lockDirector(o)
	if err != nil {
		return err
	}
	defer unlock()
	cfg := &config.Config{}
	if o.ConfigFile != "" {
		// Forced onto XDP, its sizes are known before it opens.
		var caps dataplane.Caps
		if o.Dataplane == "xdp" {
			caps, _ = CapsFor("xdp", o)
		}
		if cfg, err = loadConfig(o.ConfigFile, o.readOptions(caps, false), log); err != nil {
			return err
		}
	}
	if len(o.Interfaces) == 0 {
		for _, in := range cfg.Instances {
			if in.Interface != "" && !slices.Contains(o.Interfaces, in.Interface) {
				o.Interfaces = append(o.Interfaces, in.Interface)
			}
		}
	}
	if len(o.Interfaces) == 0 && o.Dataplane != "ipvs" {
		return fmt.Errorf("no interface to attach to: give --interface IF, or name one in a vrrp_instance of %s (or run on IPVS: --dataplane ipvs)", o.ConfigFile)
	}
	var forCfg *config.Config
	if o.ConfigFile != "" {
		forCfg = cfg
	}
	// A hitless restart's MASTER instances advertise from here on, while
	// the data plane loads: its programs' verification can outlast the
	// backups' master-down interval (vrrpd.Bridge).
	resume := readHandoff(o, cfg, log)
	bridge := vrrpd.NewBridge(cfg, resume, log)
	defer bridge.Close()
	dp, err := openDataplane(log, o, forCfg)
	if err != nil {
		return err
	}
	if err := director.Validate(cfg, dp.Caps()); err != nil {
		dp.Close()
		return err
	}
	if err := dp.SetDefence(o.Defence); err != nil {
		dp.Close()
		return fmt.Errorf("flood defence: %w", err)
	}
	if ds, err := dp.Defence(); err == nil {
		log.Info("flood defence", "drop_entry", ds.DropEntry, "drop_packet", ds.DropPacket, "secure_tcp", ds.SecureTCP,
			"amemthresh", ds.Threshold, "am_droprate", ds.AmDropRate)
	}
	defer func() {
		if o.KeepDataplane {
			if err := dp.keep(); err != nil {
				log.Error("release data plane", "error", err)
			}
			log.Info("data plane left running", "dataplane", dp.kind)
			return
		}
		if err := dp.Close(); err != nil {
			log.Error("detach data plane", "error", err)
		}
	}()

	// keepalived keeps enable_script_security on, once seen, until it
	// restarts.
	securityOnce := cfg.Global.EnableScriptSecurity
	pool := scripts.NewPool(log)
	mail := &mailer{log: log}
	// Last out: the owners' notify_stop scripts run and their "Stopping"
	// mails go as they stop; both are given their grace at once.
	defer func() {
		sent := make(chan struct{})
		go func() { mail.close(MailGrace); close(sent) }()
		pool.Close(ScriptGrace)
		<-sent
	}()
	alerts := &director.CheckAlerts{Send: mail.Alert}
	if o.XlbadmState == "" {
		o.XlbadmState = DefaultXlbadmState
	}
	dir := director.New(ctx, director.Options{
		Dataplane:  dp,
		ManualFile: o.XlbadmState,
		Logger:     log,
		Checks:     director.HealthChecksAlerting(log, alerts),
		Scripts:    pool.Runner(),
		Alerts:     alerts,
	})
	defer dir.Close()
	go dir.RunEstimator(ctx)

	d := &daemon{log: log, dir: dir, dp: dp, file: o.ConfigFile, mail: mail}
	if o.SyncWait == 0 {
		o.SyncWait = DefaultSyncWait
	}
	d.sync = newSyncState(log, dp.Dataplane, o.SyncWait)
	// Before the data plane goes: the kernel's daemons (IPVS) would go on
	// without xlb, xlb's own stop with it.
	defer func() {
		if !(o.KeepDataplane && dp.kind == "ipvs") {
			d.sync.stop()
		}
	}()
	owners := 1
	if o.BGPConfig != "" {
		owners++
	}
	d.seats = newSeats(owners, func(standby map[netip.Addr]bool) { _ = dir.SetStandby(standby) })
	if dp.xdp != nil {
		if held := dp.xdp.Serving(); len(held) > 0 {
			d.seats.hold(held, vrrpStartHold(cfg))
			log.Info("serving the taken-over VIPs until VRRP decides", "vips", len(held), "for", vrrpStartHold(cfg))
		}
	}
	d.owners = []VIPOwner{vrrpd.New(vrrpd.Options{Logger: log, Scripts: pool.Runner(), OnActive: d.seats.activeFunc(0), Alert: mail.Alert,
		PreemptHold: d.sync.hold, Resume: resume, Bridge: bridge})}
	if o.BGPConfig != "" {
		sp, err := bgpd.New(bgpd.Options{ConfigFile: o.BGPConfig, VIPs: o.BGPVIPs, Drain: o.BGPDrain,
			Quorum: dir.QuorumByVIP, OnActive: d.seats.activeFunc(1), HostVIPs: dp.kind == "ipvs", Logger: log})
		if err != nil {
			return err
		}
		d.owners = append(d.owners, sp)
	}
	if err := d.load(cfg); err != nil {
		return err
	}
	if dp.xdp != nil {
		adoptIPVS(log, dp.xdp)
	}
	// Stopping for a handoff (SIGUSR2, or SIGTERM with
	// --keep-dataplane), the VRRP instances leave their state for the
	// next process; otherwise every owner withdraws its VIPs.
	handingOff := false
	defer func() {
		var masters []string
		for _, ow := range d.owners {
			if h, ok := ow.(Handoffer); ok && handingOff {
				masters = append(masters, h.Handoff()...)
				continue
			}
			ow.Stop()
		}
		if handingOff {
			writeHandoff(o, masters, log)
		}
	}()

	// The metrics port before the control socket: a director that cannot
	// have what it was asked for stops without having answered as
	// running.
	if o.Metrics != "" {
		l, err := net.Listen("tcp", o.Metrics)
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(&metrics.Collector{Status: d.Status}, log))
		// The status page and its data, read-only.
		ui := webui.Handler(d.Status, log)
		mux.Handle("/{$}", ui)
		mux.Handle("/status.json", ui)
		ms := control.Serve(l, mux, "metrics", log)
		defer ms.Close()
		log.Info("serving metrics", "address", l.Addr().String())
	}
	srv, err := control.Listen(o.Socket, d, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	log.Info("xlb running", "config", o.ConfigFile, "interfaces", o.Interfaces, "virtual_servers", len(cfg.VirtualServers), "socket", o.Socket)
	// systemd (Type=notify): ready only now, with the data plane attached,
	// the configuration applied and the control socket answering.
	notify := newNotifier(log)
	defer notify.close()
	notify.send("READY=1", "STATUS="+statusLine(d.summary()))
	notify.watchdog(ctx, d.alive)
	defer notify.send("STOPPING=1", "STATUS=stopping")
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping", "keep_dataplane", o.KeepDataplane)
			handingOff = o.KeepDataplane
			return nil
		case <-usr2:
			log.Info("stopping for a handoff (SIGUSR2): the next xlb takes over the data plane and the VRRP state")
			o.KeepDataplane, handingOff = true, true
			return nil
		case <-hup:
			if o.ConfigFile == "" {
				log.Info("SIGHUP: no configuration file to reload (--no-config)")
				continue
			}
			log.Info("reloading", "config", o.ConfigFile)
			notify.reloading()
			// Parsed aside, so that SIGTERM is not kept waiting by a
			// huge or slow file.
			type parsed struct {
				cfg *config.Config
				err error
			}
			done := make(chan parsed, 1)
			go func() {
				cfg, err := loadConfig(o.ConfigFile, o.readOptions(dp.Caps(), securityOnce), log)
				done <- parsed{cfg, err}
			}()
			var p parsed
			select {
			case <-ctx.Done():
				log.Info("stopping; the reload in progress is dropped", "keep_dataplane", o.KeepDataplane)
				handingOff = o.KeepDataplane
				return nil
			case p = <-done:
			}
			next, err := p.cfg, p.err
			if err == nil {
				err = d.load(next)
			}
			if err == nil {
				securityOnce = securityOnce || next.Global.EnableScriptSecurity
			}
			n := 0
			if next != nil {
				n = len(next.VirtualServers)
			}
			// What reading the file took goes back to the system now,
			// not minutes later.
			p, next = parsed{}, nil
			debug.FreeOSMemory()
			if err != nil {
				log.Error("reload refused; the running configuration is unchanged", "config", o.ConfigFile, "error", err)
				notify.send("READY=1", "STATUS=reload refused, running the previous configuration: "+firstLine(err.Error())+"; "+statusLine(d.summary()))
				continue
			}
			log.Info("reloaded", "config", o.ConfigFile, "virtual_servers", n)
			notify.send("READY=1", "STATUS="+statusLine(d.summary()))
		}
	}
}

// daemon is the running composition: the director, its data plane, and
// the VIP owners that say which VIPs it serves.
type daemon struct {
	log    *slog.Logger
	dir    *director.Director
	dp     *opened
	owners []VIPOwner
	seats  *vipSeats
	file   string
	// mail sends the smtp_alert mails as running (the configuration
	// last loaded) says.
	mail    *mailer
	running *config.Config
	// sync is the connection-sync daemons lvs_sync_daemon runs.
	sync *syncState
}

// load makes cfg the running configuration, or changes nothing: it is
// validated first; then the VIPs the owners will govern go on standby
// (those not active already), so that a service of a VIP an owner takes
// over is never live before the owner says so; then the mail settings, the
// director and the owners load it.
func (d *daemon) load(cfg *config.Config) error {
	if err := director.Validate(cfg, d.dp.Caps()); err != nil {
		return err
	}
	governed := make([]map[netip.Addr]bool, len(d.owners))
	for i, ow := range d.owners {
		governed[i] = ow.Governs(cfg)
	}
	// The sync daemons first: one that cannot start (no such interface)
	// refuses the whole file.
	if err := d.sync.apply(cfg.Global.LVSSyncDaemon); err != nil {
		return err
	}
	was := d.seats.govern(governed)
	// Before the director: the mails of its Load (a quorum's, a real's
	// taken out) go where the new configuration says.
	d.mail.load(cfg)
	if err := d.dir.Load(cfg); err != nil {
		d.seats.govern(was) // the running configuration stays, standby included
		if d.running != nil {
			d.mail.load(d.running)
			if err2 := d.sync.apply(d.running.Global.LVSSyncDaemon); err2 != nil {
				d.log.Error("lvs_sync_daemon: back to the running configuration's", "error", err2)
			}
		}
		return err
	}
	d.running = cfg
	for _, ow := range d.owners {
		ow.Load(cfg)
	}
	return nil
}

// loadConfig is ReadConfig, logging keepalived-style warnings.
func loadConfig(path string, o ReadOptions, log *slog.Logger) (*config.Config, error) {
	cfg, err := ReadConfig(path, o)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w.String())
	}
	return cfg, nil
}

// ReadOptions are how a configuration is read.
type ReadOptions struct {
	// Caps bounds the servers read (a file with more is refused as it
	// is read).
	Caps dataplane.Caps
	// SecurityOnce says enable_script_security was seen by this daemon
	// before (keepalived keeps it on until restart).
	SecurityOnce bool
	// Strict makes every warning an error (--strict).
	Strict bool
	// ConfigID selects the @id conditional lines (--config-id, keepalived's
	// -i); "": the host name up to its first dot.
	ConfigID string
	// SloppyTCP and SloppySCTP give every TCP (SCTP) virtual server
	// sloppy_tcp (sloppy_sctp), as --sloppy-tcp does.
	SloppyTCP, SloppySCTP bool
	// BGPConfig and BGPVIPs are the BGP speaker's (--bgp-config,
	// --bgp-vips): its file is checked, and a VIP both it and a VRRP
	// instance would govern is refused.
	BGPConfig string
	BGPVIPs   []netip.Prefix
}

// ReadConfig reads a configuration as xlb run loads it, and as xlb
// check checks it: parsed (a file with more servers than o.Caps holds is
// refused as it is read), its scripts checked and resolved as keepalived
// checks them (scripts.Secure), its VRRP instances checked for what xlb
// cannot run. With o.Strict every warning is an error. What the data
// plane can do is checked by director.Validate.
func ReadConfig(path string, o ReadOptions) (*config.Config, error) {
	caps := o.Caps
	cfg, err := config.ParseWith(path, config.Options{
		Limits: config.Limits{
			VirtualServers: caps.MaxServices, VirtualFlag: "--max-services",
			RealServers: caps.MaxReals, RealFlag: "--max-reals", Holder: caps.Name,
		},
		ConfigID: o.ConfigID,
		Strict:   o.Strict,
	})
	if err != nil {
		return nil, err
	}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		vs.Sloppy = vs.Sloppy || (o.SloppyTCP && vs.Protocol == lvs.TCP) || (o.SloppySCTP && vs.Protocol == lvs.SCTP)
	}
	var list config.ErrorList
	if o.BGPConfig != "" {
		if _, err := bgpd.ReadConfig(o.BGPConfig); err != nil {
			return nil, err
		}
		if err := ownedOnce(cfg, []map[netip.Addr]bool{vrrpd.Governed(cfg), bgpd.Governed(cfg, o.BGPVIPs)}); err != nil {
			return nil, err
		}
	}
	for _, err := range []error{vrrpd.Validate(cfg), scripts.Secure(cfg, o.SecurityOnce)} {
		var l config.ErrorList
		if errors.As(err, &l) {
			list = append(list, l...)
		}
	}
	if o.Strict {
		// The warnings the checks above added (the parse's are errors
		// already).
		list = append(list, config.Strict(cfg.Warnings)...)
	}
	if len(list) > 0 {
		return nil, list
	}
	return cfg, nil
}

// Ipvsadm implements control.Backend.
func (d *daemon) Ipvsadm(args []string, stdin string) (string, string, int) {
	return d.dir.Ipvsadm(args, stdin)
}

// alive is what the systemd watchdog asks: the director answers (its
// lock, which a hung apply or data plane holds) and so does every VIP
// owner's loop that can say (each VRRP instance's).
func (d *daemon) alive(ctx context.Context) error {
	// The director's lock, not its Status: that reads every real's
	// counters (1.8 s at 320k reals), every watchdog interval.
	d.dir.Alive()
	for _, ow := range d.owners {
		if a, ok := ow.(interface{ Alive(context.Context) error }); ok {
			if err := a.Alive(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Status implements control.Backend: the director's services, the VIP
// owners' parts, and how the data plane is attached.
func (d *daemon) Status() (control.Status, error) {
	st, err := d.dir.Status()
	if err != nil {
		return st, err
	}
	for _, ow := range d.owners {
		ow.Status(&st)
	}
	d.sync.status(&st)
	st.Dataplane = d.dp.kind
	st.ConfigFile = d.file
	st.Interfaces = map[string]string{}
	if d.dp.xdp != nil {
		for name, m := range d.dp.xdp.Modes() {
			st.Interfaces[name] = m.String()
		}
	}
	return st, nil
}

// vrrpStartHold is how long a restarted director keeps serving the VIPs of
// a data plane it took over: a starting instance is BACKUP for three
// advert intervals and the skew (at most 1 s) before it can be MASTER.
func vrrpStartHold(cfg *config.Config) time.Duration {
	longest := time.Second
	for _, in := range cfg.Instances {
		longest = max(longest, in.AdvertInterval)
	}
	return 3*longest + 1500*time.Millisecond
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
