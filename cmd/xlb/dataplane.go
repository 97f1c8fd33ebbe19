package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/director"
	"github.com/xlbproject/xlb/pkg/ipvsdp"
	"github.com/xlbproject/xlb/pkg/probe"
)

// openedDataplane is the data plane the daemon runs on.
type openedDataplane struct {
	dataplane.Dataplane
	kind string // "xdp" or "ipvs"
	caps director.Caps
	xdp  *dataplane.XDP // nil on IPVS
	// release leaves the data plane forwarding (--keep-dataplane).
	release func() error
}

// openDataplane picks and opens the data plane: --dataplane xdp or ipvs
// forces one; auto probes the interfaces and steps down native XDP →
// generic XDP → IPVS, logging the reason for every step. (TC would come
// between generic XDP and IPVS; xlb has no TC data plane, because generic
// XDP attaches to every interface a TC program could: a kernel that
// refuses it refuses TC too, and the probe shows it.)
func openDataplane(log *slog.Logger, f runFlags, mode dataplane.XDPMode, ifaces []string) (*openedDataplane, error) {
	openXDP := func(m dataplane.XDPMode) (*openedDataplane, error) {
		x, err := dataplane.OpenXDP(dataplane.Config{
			Interfaces: ifaces, PinDir: f.pinDir, Mode: m, MaxConns: f.maxConns, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		return &openedDataplane{Dataplane: x, kind: "xdp", caps: director.XDPCaps, xdp: x, release: x.Release}, nil
	}
	openIPVS := func() (*openedDataplane, error) {
		if err := os.MkdirAll(filepath.Dir(f.ipvsState), 0o755); err != nil {
			return nil, fmt.Errorf("--ipvs-state: %w", err)
		}
		v, err := ipvsdp.Open(ipvsdp.Options{StateFile: f.ipvsState, Logger: log})
		if err != nil {
			return nil, err
		}
		log.Info("data plane: IPVS", "state_file", f.ipvsState)
		return &openedDataplane{Dataplane: v, kind: "ipvs", caps: director.IPVSCaps, release: v.Release}, nil
	}
	switch f.dataplane {
	case "xdp":
		return openXDP(mode)
	case "ipvs":
		return openIPVS()
	case "auto":
	default:
		return nil, fmt.Errorf("--dataplane: %q is not auto, xdp or ipvs", f.dataplane)
	}

	// A data plane pinned by an earlier xlb is taken over as it is: its
	// interfaces already run XDP, which a probe would take for a refusal.
	for _, name := range ifaces {
		if _, err := os.Stat(filepath.Join(f.pinDir, "link_"+name)); err == nil {
			log.Info("data plane: XDP (taking over the pinned one)", "pin_dir", f.pinDir)
			return openXDP(mode)
		}
	}
	m, why := probeXDP(ifaces, mode)
	if m >= 0 {
		if why != "" {
			log.Warn("data plane: native XDP refused; using generic XDP", "reason", why)
		}
		x, err := openXDP(m)
		if err == nil {
			return x, nil
		}
		why = err.Error()
	}
	log.Warn("data plane: XDP cannot run here; trying IPVS", "reason", why,
		"tc", "xlb has no TC data plane: a kernel that refuses generic XDP on an interface refuses TC there too")
	v, err := openIPVS()
	if err != nil {
		return nil, fmt.Errorf("no data plane can run: XDP: %s; IPVS: %w", why, err)
	}
	return v, nil
}

// probeXDP asks the kernel whether each interface takes native, else
// generic XDP (XLB_PROBE_DENY can refuse either, to test the fallback).
// It returns the mode to open with, or -1 and why XDP cannot run; a
// non-empty reason with a mode says why native was refused.
func probeXDP(ifaces []string, want dataplane.XDPMode) (dataplane.XDPMode, string) {
	native, generic := true, true
	var whyNative, whyGeneric []string
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return -1, fmt.Sprintf("interface %s: %v", name, err)
		}
		refused := func(err error) bool { return err != nil && !errors.Is(err, probe.ErrSkipped) }
		if want != dataplane.ModeGeneric {
			if err := probe.XDPNative(ifi.Index); refused(err) {
				native = false
				whyNative = append(whyNative, fmt.Sprintf("%s: %v", name, err))
			}
		}
		if err := probe.XDPGeneric(ifi.Index); refused(err) {
			generic = false
			whyGeneric = append(whyGeneric, fmt.Sprintf("%s: %v", name, err))
		}
	}
	switch {
	case want != dataplane.ModeGeneric && native:
		return want, ""
	case want == dataplane.ModeNative:
		return -1, "native XDP: " + strings.Join(whyNative, "; ")
	case generic:
		return dataplane.ModeGeneric, strings.Join(whyNative, "; ")
	}
	return -1, "native XDP: " + strings.Join(whyNative, "; ") + "; generic XDP: " + strings.Join(whyGeneric, "; ")
}
