package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/director"
	"github.com/xlbproject/xlb/pkg/ipvsdp"
	"github.com/xlbproject/xlb/pkg/metrics"
)

type runFlags struct {
	file       string
	interfaces []string
	pinDir     string
	socket     string
	mode       string
	keep       bool
	logLevel   string
	logFormat  string
	maxConns   uint32
	noConfig   bool
	metrics    string
	dataplane  string
	ipvsState  string
}

func runRun(e env, args []string) int {
	var f runFlags
	fs := pflag.NewFlagSet("xlb run", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVarP(&f.file, "config", "f", "/etc/keepalived/keepalived.conf", "keepalived.conf to run")
	fs.StringArrayVarP(&f.interfaces, "interface", "i", nil, "interface where VIP traffic arrives (repeatable); default: the vrrp_instance interfaces")
	fs.StringVar(&f.pinDir, "pin-dir", dataplane.DefaultPinDir, "bpffs directory for the pinned maps and links")
	fs.StringVar(&f.socket, "socket", control.DefaultSocket, "control socket")
	fs.StringVar(&f.dataplane, "dataplane", "auto", "auto (probe: native XDP, generic XDP, else IPVS), xdp or ipvs")
	fs.StringVar(&f.mode, "xdp-mode", "auto", "XDP attach mode: auto (native, else generic), native, generic")
	fs.StringVar(&f.ipvsState, "ipvs-state", ipvsdp.DefaultStateFile, "the IPVS data plane's record of the services it made")
	fs.BoolVar(&f.keep, "keep-dataplane", false, "on SIGTERM, leave the data plane forwarding (pinned) for the next xlb to take over")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.Uint32Var(&f.maxConns, "max-conns", 0, "connection table size (0: the built-in 262144); keep it across restarts")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. :9610), at /metrics")
	fs.BoolVar(&f.noConfig, "no-config", false, "start with no keepalived.conf: services come from xlbadm (ipvsadm commands) only")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: xlb run [-f FILE] [--interface IF]... [flags]\n\nRuns the director: reads keepalived.conf, opens the data plane (XDP, or IPVS where\nXDP cannot run), applies\nevery virtual_server, runs the health checks and applies their results.\nSIGHUP reloads the file (an invalid one changes nothing); SIGTERM detaches.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "xlb run: %v\n", err)
		return 2
	}
	log, err := newLogger(e, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintf(e.stderr, "xlb run: %v\n", err)
		return 2
	}
	mode, err := parseMode(f.mode)
	if err != nil {
		fmt.Fprintf(e.stderr, "xlb run: --xdp-mode: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runDaemon(ctx, e, log, f, mode); err != nil {
		fmt.Fprintf(e.stderr, "xlb run: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(e env, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

func parseMode(s string) (dataplane.XDPMode, error) {
	switch s {
	case "auto":
		return dataplane.ModeAuto, nil
	case "native":
		return dataplane.ModeNative, nil
	case "generic":
		return dataplane.ModeGeneric, nil
	}
	return 0, fmt.Errorf("%q is not auto, native or generic", s)
}

// loadConfig parses, logging keepalived-style warnings; what the data
// plane can do is checked by the caller (director.ValidateFor).
func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	cfg, err := config.Parse(path)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w.String())
	}
	return cfg, nil
}

// scriptUser is keepalived's default: script_user, else keepalived_script
// if that user exists, else root.
func scriptUser(cfg *config.Config) string {
	if cfg.Global.ScriptUser != "" {
		return cfg.Global.ScriptUser
	}
	if _, err := user.Lookup("keepalived_script"); err == nil {
		return "keepalived_script"
	}
	return ""
}

func runDaemon(ctx context.Context, e env, log *slog.Logger, f runFlags, mode dataplane.XDPMode) error {
	cfg, err := &config.Config{}, error(nil)
	if f.noConfig {
		f.file = ""
	} else if cfg, err = loadConfig(f.file, log); err != nil {
		return err
	}
	ifaces := f.interfaces
	if len(ifaces) == 0 {
		for _, in := range cfg.Instances {
			if in.Interface != "" && !slices.Contains(ifaces, in.Interface) {
				ifaces = append(ifaces, in.Interface)
			}
		}
	}
	if len(ifaces) == 0 && f.dataplane != "ipvs" {
		return fmt.Errorf("no interface to attach to: give --interface IF, or name one in a vrrp_instance of %s (or run on IPVS: --dataplane ipvs)", f.file)
	}
	if f.dataplane == "auto" && !f.noConfig {
		if err := director.ValidateFor(cfg, director.XDPCaps); err != nil && director.ValidateFor(cfg, director.IPVSCaps) == nil {
			log.Warn("data plane: the configuration needs IPVS", "reason", err)
			f.dataplane = "ipvs"
		}
	}
	x, err := openDataplane(log, f, mode, ifaces)
	if err != nil {
		return err
	}
	if !f.noConfig {
		// The file was checked for XDP; IPVS can do more.
		if err := director.ValidateFor(cfg, x.caps); err != nil {
			x.Close()
			return err
		}
	}
	keep := f.keep
	defer func() {
		if keep {
			if err := x.release(); err != nil {
				log.Error("release data plane", "error", err)
			}
			log.Info("data plane left running", "pin_dir", f.pinDir)
			return
		}
		if err := x.Close(); err != nil {
			log.Error("detach data plane", "error", err)
		}
	}()

	d := director.New(ctx, director.Options{
		Dataplane: x,
		Caps:      x.caps,
		Logger:    log,
		Checks:    director.HealthChecks(log, scriptUser(cfg)),
		Scripts:   director.ExecScripts(log, scriptUser(cfg)),
	})
	defer d.Close()
	go d.RunEstimator(ctx)
	if err := d.Load(cfg); err != nil {
		return err
	}
	vr := director.NewVRRP(log, director.ExecScripts(log, scriptUser(cfg)), nil, scriptUser(cfg))
	vr.FollowRoles(d.SetMasterVIPs)
	vr.Load(cfg)
	defer vr.Stop()
	backend := &statusBackend{d: d, x: x, vrrp: vr, file: f.file}
	srv, err := control.Listen(f.socket, backend, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	if f.metrics != "" {
		l, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(&metrics.Collector{Status: backend.Status}, log))
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go ms.Serve(l)
		defer ms.Close()
		log.Info("serving metrics", "address", l.Addr().String())
	}
	log.Info("xlb running", "config", f.file, "interfaces", ifaces, "virtual_servers", len(cfg.VirtualServers), "socket", f.socket)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping", "keep_dataplane", keep)
			return nil
		case <-hup:
			if f.file == "" {
				log.Info("SIGHUP: no configuration file to reload (--no-config)")
				continue
			}
			log.Info("reloading", "config", f.file)
			next, err := loadConfig(f.file, log)
			if err == nil {
				err = d.Load(next)
			}
			if err != nil {
				log.Error("reload refused; the running configuration is unchanged", "config", f.file, "error", err)
				continue
			}
			vr.Load(next)
			log.Info("reloaded", "config", f.file, "virtual_servers", len(next.VirtualServers))
		}
	}
}

// statusBackend adds the data plane's attach state to the director's.
type statusBackend struct {
	d    *director.Director
	x    *openedDataplane
	vrrp *director.VRRP
	file string
}

func (b *statusBackend) Ipvsadm(args []string, stdin string) (string, string, int) {
	return b.d.Ipvsadm(args, stdin)
}

func (b *statusBackend) Status() (control.Status, error) {
	st, err := b.d.Status()
	if err != nil {
		return st, err
	}
	st.VRRP = b.vrrp.Status()
	st.Dataplane = b.x.kind
	st.ConfigFile = b.file
	st.Interfaces = map[string]string{}
	if b.x.xdp != nil {
		for name, m := range b.x.xdp.Modes() {
			st.Interfaces[name] = m.String()
		}
	}
	return st, nil
}
