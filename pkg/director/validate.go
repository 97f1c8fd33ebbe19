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

// Validate says what in cfg the data plane cannot do, naming file:line for
// each. A nil error means Load will accept it.
func Validate(cfg *config.Config) error {
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
		if !vs.Addr.Is4() {
			bad(vs.Pos, "%s: only IPv4 virtual servers are supported so far", name)
		}
		if vs.Protocol != config.ProtoTCP && vs.Protocol != config.ProtoUDP {
			bad(vs.Pos, "%s: protocol %s is not supported (TCP and UDP are)", name, vs.Protocol)
		}
		if vs.Port == 0 {
			bad(vs.Pos, "%s: port 0 (all ports) is not supported", name)
		}
		if !slices.Contains(Supported, vs.Scheduler) {
			bad(vs.Pos, "%s: lvs_sched %s is not supported by the XDP data plane yet (supported: %s)", name, vs.Scheduler, strings.Join(Supported, ", "))
		}
		if vs.SchedFlags&^(config.FlagSHFallback|config.FlagSHPort) != 0 {
			bad(vs.Pos, "%s: scheduler flags %#x are not supported (sh-port and sh-fallback are)", name, uint32(vs.SchedFlags&^(config.FlagSHFallback|config.FlagSHPort)))
		}
		for _, rs := range vs.Reals {
			rname := fmt.Sprintf("real_server %s %d", rs.Addr, rs.Port)
			if rs.Forward != config.ForwardDR && rs.Forward != config.ForwardNAT {
				bad(rs.Pos, "%s: lvs_method %s is not supported yet (DR and NAT are)", rname, rs.Forward)
			}
			if !rs.Addr.Is4() {
				bad(rs.Pos, "%s: only IPv4 real servers are supported so far", rname)
			}
			if rs.Forward == config.ForwardDR && rs.Port != vs.Port {
				bad(rs.Pos, "%s: DR cannot change the port: the real's port must be %d", rname, vs.Port)
			}
			if rs.UThreshold != 0 || rs.LThreshold != 0 {
				bad(rs.Pos, "%s: uthreshold/lthreshold are not supported yet", rname)
			}
		}
		if s := vs.SorryServer; s != nil {
			if s.Forward != config.ForwardDR && s.Forward != config.ForwardNAT {
				bad(vs.Pos, "%s: sorry_server %s: lvs_method %s is not supported yet (DR and NAT are)", name, s.Addr, s.Forward)
			}
			if s.Port != vs.Port && s.Forward == config.ForwardDR {
				bad(vs.Pos, "%s: sorry_server %s %d: DR cannot change the port", name, s.Addr, s.Port)
			}
		}
	}
	return errors.Join(errs...)
}
