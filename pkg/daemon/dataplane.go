package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/ipvs"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
	"github.com/xlbproject/xlb/pkg/director"
	"github.com/xlbproject/xlb/pkg/probe"
)

// CapsFor is what the data plane --dataplane names (xdp or ipvs) can
// serve with o's sizes, for validating a configuration without opening it
// (xlb check).
func CapsFor(name string, o Options) (dataplane.Caps, bool) {
	switch name {
	case "xdp":
		c := xdp.Caps
		if o.MaxServices != 0 {
			c.MaxServices = int(o.MaxServices)
		}
		if o.MaxReals != 0 {
			c.MaxReals = int(o.MaxReals)
		}
		return c, true
	case "ipvs":
		return ipvs.Caps, true
	}
	return dataplane.Caps{}, false
}

// NeedsIPVS says why cfg must run on IPVS under --dataplane auto: what the
// XDP data plane (sized by o) refuses in it, when IPVS would run it. nil:
// XDP can run it (or neither can, and the run fails on XDP's reasons).
func NeedsIPVS(cfg *config.Config, o Options) error {
	if cfg == nil {
		return nil
	}
	xc, _ := CapsFor("xdp", o)
	if err := director.Validate(cfg, xc); err != nil && director.Validate(cfg, ipvs.Caps) == nil {
		// The first few lines say why; a file of hundreds of TUN reals
		// would make a log line of hundreds.
		lines := strings.Split(err.Error(), "\n")
		if len(lines) > 3 {
			return fmt.Errorf("%s; and %d more (xlb check --dataplane xdp lists them)", strings.Join(lines[:3], "; "), len(lines)-3)
		}
		return err
	}
	return nil
}

// opened is the data plane the daemon runs on.
type opened struct {
	dataplane.Dataplane
	kind string         // "xdp" or "ipvs"
	xdp  *xdp.Dataplane // nil on IPVS
	keep func() error   // leaves it forwarding (--keep-dataplane)
}

// CheckTarget passes health checks through the data path (check_via_vip)
// to a data plane that carries them; Validate refuses check_via_vip for
// one that does not (its Caps).
func (o *opened) CheckTarget(svc dataplane.ServiceKey, r dataplane.Real) (uint32, func(), error) {
	if cr, ok := o.Dataplane.(dataplane.CheckRouter); ok {
		return cr.CheckTarget(svc, r)
	}
	return 0, nil, fmt.Errorf("the %s data plane cannot carry health checks (check_via_vip)", o.kind)
}

// openDataplane picks and opens the data plane: "xdp" or "ipvs" forces one;
// "auto" gathers the evidence (a pinned data plane, attach probes on the
// interfaces, the kernel's BPF features, what cfg needs, IPVS) and opens
// what dataplane.Choose picks, logging every step down. If XDP then fails
// to open after all, the failure is one more piece of evidence.
func openDataplane(log *slog.Logger, o Options, cfg *config.Config) (*opened, error) {
	switch o.Dataplane {
	case "xdp":
		return openXDP(log, o, o.XDPMode)
	case "ipvs":
		return openIPVS(log, o)
	case "auto", "":
	default:
		return nil, fmt.Errorf("--dataplane: %q is not auto, xdp or ipvs", o.Dataplane)
	}
	// IPVS is not probed ahead (the probe loads ip_vs): it counts as there
	// until opening it says otherwise.
	e := dataplane.Evidence{Want: o.XDPMode, Program: probe.XDPDataPlane()}
	for _, name := range o.Interfaces {
		if _, err := os.Stat(filepath.Join(o.pinDir(), xdp.LinkPin(name))); err == nil {
			e.Pinned = true
		}
	}
	e.Config = NeedsIPVS(cfg, o)
	if !e.Pinned && e.Config == nil {
		e.Native, e.Generic = probeXDP(o.Interfaces, o.XDPMode)
	}
	for {
		d := dataplane.Choose(e)
		switch {
		case d.Dataplane == "xdp" && d.Mode == dataplane.XDPAuto:
			log.Info("data plane: XDP (taking over the pinned one)", "pin_dir", o.pinDir())
		case d.Dataplane == "xdp" && len(d.Why) > 0:
			log.Warn("data plane: native XDP refused; using generic XDP", "reason", strings.Join(d.Why, "; "))
		case d.Dataplane != "xdp":
			log.Warn("data plane: XDP cannot run here; trying IPVS", "reason", strings.Join(d.Why, "; "),
				"tc", "xlb has no TC data plane: a kernel that refuses generic XDP on an interface refuses TC there too")
		}
		switch d.Dataplane {
		case "xdp":
			x, err := openXDP(log, o, d.Mode)
			if err == nil {
				return x, nil
			}
			// What the probes could not see: count it against XDP.
			e.Pinned, e.Native, e.Generic = false, err, err
			continue
		case "ipvs":
			v, err := openIPVS(log, o)
			if err != nil {
				return nil, fmt.Errorf("no data plane can run: %s; IPVS: %w", strings.Join(d.Why, "; "), err)
			}
			return v, nil
		}
		return nil, fmt.Errorf("no data plane can run: %s", strings.Join(d.Why, "; "))
	}
}

func openXDP(log *slog.Logger, o Options, m dataplane.XDPMode) (*opened, error) {
	x, err := xdp.Open(xdp.Config{
		Interfaces: o.Interfaces, PinDir: o.pinDir(), Mode: m, MaxConns: o.MaxConns, MaxHalfOpen: o.MaxHalfOpen, MaxFullNATFlows: o.MaxFullNATFlows, Logger: log,
		MaxServices: o.MaxServices, MaxReals: o.MaxReals, MaxTableEntries: o.MaxSchedEntries,
		SloppyTCP: o.SloppyTCP, MHTabIndex: o.MHTabIndex, FloodRate: o.FloodRate,
	})
	if err != nil {
		return nil, err
	}
	return &opened{Dataplane: x, kind: "xdp", xdp: x, keep: x.Release}, nil
}

func openIPVS(log *slog.Logger, o Options) (*opened, error) {
	if o.MHTabIndex != 0 {
		return nil, fmt.Errorf("--mh-tab-index %d sizes the XDP data plane's mh tables; the kernel's IPVS has its own, built in (CONFIG_IP_VS_MH_TAB_INDEX)", o.MHTabIndex)
	}
	state := o.IPVSState
	if state == "" {
		state = ipvs.DefaultStateFile
	}
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		return nil, fmt.Errorf("--ipvs-state: %w", err)
	}
	v, err := ipvs.Open(ipvs.Options{StateFile: state, Logger: log, SloppyTCP: o.SloppyTCP, SloppySCTP: o.SloppySCTP})
	if err != nil {
		return nil, err
	}
	log.Info("data plane: IPVS", "state_file", state)
	return &opened{Dataplane: v, kind: "ipvs", keep: v.Release}, nil
}

// probeXDP asks the kernel whether every interface takes native, and
// generic, XDP (XLB_PROBE_DENY can refuse either, to test the fallback).
// A probe that could not run (probe.ErrSkipped) is no refusal: opening
// will tell.
func probeXDP(ifaces []string, want dataplane.XDPMode) (native, generic error) {
	var whyNative, whyGeneric []error
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			err = fmt.Errorf("interface %s: %w", name, err)
			return err, err
		}
		refused := func(err error) bool { return err != nil && !errors.Is(err, probe.ErrSkipped) }
		if want != dataplane.XDPGeneric {
			if err := probe.XDPNative(ifi.Index); refused(err) {
				whyNative = append(whyNative, fmt.Errorf("%s: %w", name, err))
			}
		}
		if want != dataplane.XDPNative {
			if err := probe.XDPGeneric(ifi.Index); refused(err) {
				whyGeneric = append(whyGeneric, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	return joinSemi(whyNative), joinSemi(whyGeneric)
}

// joinSemi joins errors on one line.
func joinSemi(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	return errors.New(strings.Join(s, "; "))
}
