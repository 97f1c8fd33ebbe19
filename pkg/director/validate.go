package director

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xlbproject/xlb/pkg/config"
)

// Error is a configuration that xlb's data plane cannot serve, at the
// place in the file that asks for it.
type Error struct {
	Pos config.Pos
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Pos, e.Msg) }

// Supported are the schedulers the XDP data plane computes today.
var Supported = []string{"rr", "wrr", "sh", "dh", "lc", "wlc", "sed", "nq"}

// Caps is what a data plane can forward, for Validate's messages.
type Caps struct {
	Name       string // "the XDP data plane"
	Schedulers []string
	Forwards   []config.Forward
	IPv6       bool
}

// XDPCaps and IPVSCaps are the two data planes'.
var (
	XDPCaps = Caps{Name: "the XDP data plane", Schedulers: Supported,
		Forwards: []config.Forward{config.ForwardDR, config.ForwardNAT}}
	IPVSCaps = Caps{Name: "the IPVS data plane", Schedulers: Supported,
		Forwards: []config.Forward{config.ForwardDR, config.ForwardNAT, config.ForwardTUN}, IPv6: true}
)

func (c Caps) forwards() string {
	var s []string
	for _, f := range c.Forwards {
		s = append(s, f.String())
	}
	return strings.Join(s, ", ")
}

// Validate says what in cfg the XDP data plane cannot do, naming
// file:line for each. A nil error means Load will accept it.
func Validate(cfg *config.Config) error { return ValidateFor(cfg, XDPCaps) }

// ValidateFor is Validate for the data plane with these caps.
func ValidateFor(cfg *config.Config, caps Caps) error {
	if caps.Name == "" {
		caps = XDPCaps
	}
	var errs []error
	bad := func(pos config.Pos, format string, args ...any) {
		errs = append(errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]config.Pos{}
	for _, vs := range cfg.VirtualServers {
		name := fmt.Sprintf("virtual_server %s %d", vs.Addr, vs.Port)
		key := fmt.Sprintf("%s %s", vs.Protocol, name)
		if prev, dup := seen[key]; dup {
			bad(vs.Pos, "%s %s is defined twice (first at %s)", name, vs.Protocol, prev)
		}
		seen[key] = vs.Pos
		if !vs.Addr.Is4() && !caps.IPv6 {
			bad(vs.Pos, "%s: only IPv4 virtual servers are supported by %s so far", name, caps.Name)
		}
		if vs.Protocol != config.ProtoTCP && vs.Protocol != config.ProtoUDP {
			bad(vs.Pos, "%s: protocol %s is not supported (TCP and UDP are)", name, vs.Protocol)
		}
		if vs.Port == 0 {
			bad(vs.Pos, "%s: port 0 (all ports) is not supported", name)
		}
		if !slices.Contains(caps.Schedulers, vs.Scheduler) {
			bad(vs.Pos, "%s: lvs_sched %s is not supported by %s yet (supported: %s)", name, vs.Scheduler, caps.Name, strings.Join(caps.Schedulers, ", "))
		}
		if vs.SchedFlags&^(config.FlagSHFallback|config.FlagSHPort) != 0 {
			bad(vs.Pos, "%s: scheduler flags %#x are not supported (sh-port and sh-fallback are)", name, uint32(vs.SchedFlags&^(config.FlagSHFallback|config.FlagSHPort)))
		}
		for _, rs := range vs.Reals {
			rname := fmt.Sprintf("real_server %s %d", rs.Addr, rs.Port)
			if !slices.Contains(caps.Forwards, rs.Forward) {
				bad(rs.Pos, "%s: lvs_method %s is not supported by %s (%s are)", rname, rs.Forward, caps.Name, caps.forwards())
			}
			if !rs.Addr.Is4() && !caps.IPv6 {
				bad(rs.Pos, "%s: only IPv4 real servers are supported by %s so far", rname, caps.Name)
			}
			if rs.Forward == config.ForwardDR && rs.Port != vs.Port {
				bad(rs.Pos, "%s: DR cannot change the port: the real's port must be %d", rname, vs.Port)
			}
			if rs.UThreshold != 0 || rs.LThreshold != 0 {
				bad(rs.Pos, "%s: uthreshold/lthreshold are not supported yet", rname)
			}
		}
		if s := vs.SorryServer; s != nil {
			if !slices.Contains(caps.Forwards, s.Forward) {
				bad(vs.Pos, "%s: sorry_server %s: lvs_method %s is not supported by %s (%s are)", name, s.Addr, s.Forward, caps.Name, caps.forwards())
			}
			if s.Port != vs.Port && s.Forward == config.ForwardDR {
				bad(vs.Pos, "%s: sorry_server %s %d: DR cannot change the port", name, s.Addr, s.Port)
			}
		}
	}
	return errors.Join(errs...)
}
