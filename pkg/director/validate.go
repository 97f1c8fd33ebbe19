package director

import (
	"errors"
	"fmt"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/dataplane"
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
	reals := 0
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		name := fmt.Sprintf("virtual_server %s %d", vs.Addr, vs.Port)
		// The data plane's size: said once, at the first service or real
		// past it.
		if caps.MaxServices > 0 && i == caps.MaxServices {
			bad(vs.Pos, name, fmt.Errorf("the configuration has %d virtual servers; %s holds %d (--max-services)", len(cfg.VirtualServers), caps.Name, caps.MaxServices))
		}
		if n := max(len(vs.Reals), 1); caps.MaxReals > 0 && reals <= caps.MaxReals && reals+n > caps.MaxReals {
			total := 0
			for _, v := range cfg.VirtualServers {
				total += max(len(v.Reals), 1)
			}
			bad(vs.Pos, name, fmt.Errorf("the configuration has %d real servers (counted per virtual server); %s holds %d (--max-reals)", total, caps.Name, caps.MaxReals))
		}
		reals += max(len(vs.Reals), 1)
		svc := serviceOf(vs)
		if prev, dup := seen[svc.ServiceKey]; dup {
			bad(vs.Pos, name, fmt.Errorf("%s is defined twice (first at %s)", vs.Protocol, prev))
		}
		seen[svc.ServiceKey] = vs.Pos
		bad(vs.Pos, name, caps.CheckService(svc))
		for _, rs := range vs.Reals {
			rname := fmt.Sprintf("real_server %s %d", rs.Addr, rs.Port)
			bad(rs.Pos, rname, caps.CheckReal(svc, realServer(&rs, rs.Weight)))
			if rs.UThreshold != 0 || rs.LThreshold != 0 {
				bad(rs.Pos, rname, errors.New("uthreshold/lthreshold are not supported yet"))
			}
		}
		if s := vs.SorryServer; s != nil {
			bad(vs.Pos, fmt.Sprintf("%s: sorry_server %s %d", name, s.Addr, s.Port), caps.CheckReal(svc, realOf(s.Addr, s.Port, 1, s.Forward)))
		}
	}
	return errors.Join(errs...)
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
