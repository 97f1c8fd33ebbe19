package director

import (
	"errors"
	"fmt"
	"strings"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Error is a configuration that a data plane cannot serve, at the place in
// the file that asks for it.
type Error struct {
	Pos config.Pos
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Pos, e.Msg) }

// Validate says what in cfg the data plane with caps cannot serve, naming
// file:line for each. It asks the data plane's own rules (caps.CheckService,
// caps.CheckReal) about each virtual server as the director will hand it
// over, so a nil error means Load, and the data plane's Apply, will accept
// it.
func Validate(cfg *config.Config, caps dataplane.Caps) error {
	var errs []error
	bad := func(pos config.Pos, what string, err error) {
		for _, e := range flatten(err) {
			errs = append(errs, &Error{Pos: pos, Msg: what + ": " + e.Error()})
		}
	}
	seen := map[dataplane.ServiceKey]config.Pos{}
	services, reals := 0, 0
	var dreals []dataplane.Real // each virtual server's, in turn: servicesOf copies them
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		name := "virtual_server " + vs.Name()
		// The data plane's size: said once, at the first service or real
		// past it.
		if caps.MaxServices > 0 && services <= caps.MaxServices && services+len(vs.Services()) > caps.MaxServices {
			total := 0
			for _, v := range cfg.VirtualServers {
				total += len(v.Services())
			}
			bad(vs.Pos, name, fmt.Errorf("the configuration has %d virtual servers; %s holds %d (--max-services)", total, caps.Name, caps.MaxServices))
		}
		services += len(vs.Services())
		if n := max(len(vs.Reals), 1) * len(vs.Services()); caps.MaxReals > 0 && reals <= caps.MaxReals && reals+n > caps.MaxReals {
			total := 0
			for _, v := range cfg.VirtualServers {
				total += max(len(v.Reals), 1) * len(v.Services())
			}
			bad(vs.Pos, name, fmt.Errorf("the configuration has %d real servers (counted per virtual server); %s holds %d (--max-reals)", total, caps.Name, caps.MaxReals))
		}
		reals += max(len(vs.Reals), 1) * len(vs.Services())
		dreals = dreals[:0]
		for i := range vs.Reals {
			rs := &vs.Reals[i]
			// Thresholds are the data plane's to take (CheckReal): IPVS
			// applies them, XDP refuses them by name.
			dreals = append(dreals, realServer(rs, rs.Weight))
		}
		svcs := servicesOf(vs, dreals)
		var first error
		for _, svc := range svcs {
			if prev, dup := seen[svc.ServiceKey]; dup {
				bad(vs.Pos, name, fmt.Errorf("%s is defined twice (first at %s)", svc.ServiceKey, prev))
			}
			seen[svc.ServiceKey] = vs.Pos
			// A group's services share their settings and reals: say
			// what the data plane refuses once, for the first service.
			if err := caps.CheckService(svc); err != nil && first == nil {
				first = err
				what := name
				if len(svcs) > 1 {
					what += " (" + svc.ServiceKey.String() + ")"
				}
				bad(vs.Pos, what, err)
			}
		}
		svc := svcs[0]
		if vs.CheckViaVIP && !caps.CheckViaVIP {
			bad(vs.Pos, name, fmt.Errorf("check_via_vip (health checks through the data path) is not supported by %s", caps.Name))
		}
		for i := range vs.Reals {
			rs := &vs.Reals[i]
			// Named when refused only: naming each of 320k reals costs.
			rname := func() string { return fmt.Sprintf("real_server %s %d", rs.Addr, rs.Port) }
			if err := caps.CheckReal(svc, svc.Reals[i]); err != nil {
				bad(rs.Pos, rname(), err)
			}
			if vs.CheckViaVIP && caps.CheckViaVIP && len(rs.Checkers) > 0 {
				if err := dataplane.CheckThrough(svc.ServiceKey, svc.Reals[i]); err != nil {
					bad(rs.Pos, rname(), fmt.Errorf("check_via_vip: %w", err))
				}
			}
		}
		if s := vs.SorryServer; s != nil {
			bad(vs.Pos, fmt.Sprintf("%s: sorry_server %s %d", name, s.Addr, s.Port), caps.CheckReal(svc, realOf(s.Addr, s.Port, 1, s.Forward, s.Tunnel)))
		}
	}
	if caps.SloppyHostWide {
		errs = append(errs, sloppyMixed(cfg, caps)...)
	}
	return errors.Join(errs...)
}

// sloppyMixed refuses, where sloppy_tcp (sloppy_sctp) is one switch for
// the host, a file in which some services of the protocol have it and
// others do not, at the first that differs from the first of its protocol.
func sloppyMixed(cfg *config.Config, caps dataplane.Caps) []error {
	var errs []error
	first := map[lvs.Protocol]*config.VirtualServer{}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		if vs.Protocol != lvs.TCP && vs.Protocol != lvs.SCTP {
			continue
		}
		f, ok := first[vs.Protocol]
		if !ok {
			first[vs.Protocol] = vs
			continue
		}
		if f != nil && f.Sloppy != vs.Sloppy {
			on, off := f, vs
			if vs.Sloppy {
				on, off = vs, f
			}
			kw := "sloppy_" + strings.ToLower(vs.Protocol.String())
			errs = append(errs, &Error{Pos: vs.Pos, Msg: fmt.Sprintf("virtual_server %s: %s is one switch for the whole host on %s (net.ipv4.vs.%s): virtual_server %s (%s) has it, virtual_server %s (%s) does not; give it to every %s service, or run with --%s",
				vs.Name(), kw, caps.Name, kw, on.Name(), on.Pos, off.Name(), off.Pos, vs.Protocol, strings.ReplaceAll(kw, "_", "-"))})
			first[vs.Protocol] = nil // said once per protocol
		}
	}
	return errs
}

// flatten lists the errors an errors.Join holds (nil: none).
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
