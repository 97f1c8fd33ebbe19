package director

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/health"
)

// HealthChecks runs a real's checkers with pkg/health, as keepalived's
// checker process does. MISC_CHECK scripts without a user of their own run
// as scriptUser ("" = as xlb).
func HealthChecks(log *slog.Logger) CheckStarter {
	return func(ctx context.Context, vs *config.VirtualServer, rs *config.RealServer, report func(Health)) {
		name := fmt.Sprintf("%s/%s", netip.AddrPortFrom(vs.Addr, vs.Port), netip.AddrPortFrom(rs.Addr, rs.Port))
		var probes []health.Probe
		for _, c := range rs.Checkers {
			probes = append(probes, health.Probe{
				Name:    fmt.Sprintf("%s at %s", c.Kind, c.Pos),
				Checker: checkerOf(vs, rs, &c),
				Policy: health.Policy{
					DelayLoop:        c.DelayLoop,
					Retry:            c.Retry,
					DelayBeforeRetry: c.DelayBeforeRetry,
					Warmup:           c.Warmup,
					Alpha:            c.Alpha || rs.Alpha || vs.Alpha,
				},
			})
		}
		m := health.NewMonitor(health.MonitorConfig{Real: name, Probes: probes, Omega: vs.Omega})
		out := make(chan health.Transition)
		go func() {
			if err := m.Run(ctx, out); err != nil && ctx.Err() == nil {
				log.Error("health monitor stopped", "real", name, "error", err)
			}
			close(out)
		}()
		go func() {
			for tr := range out {
				report(Health{Up: tr.Up, Weight: tr.Weight, Reason: tr.Reason})
			}
		}()
	}
}

func checkerOf(vs *config.VirtualServer, rs *config.RealServer, c *config.Checker) health.Checker {
	ip, port := c.ConnectIP, c.ConnectPort
	if !ip.IsValid() {
		ip = rs.Addr
	}
	if port == 0 {
		port = rs.Port
	}
	addr := netip.AddrPortFrom(ip, port)
	switch c.Kind {
	case config.HTTPGet, config.SSLGet:
		h := &health.HTTPCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Timeout: c.ConnectTimeout,
			TLS: c.Kind == config.SSLGet, SNI: c.EnableSNI, Protocol: c.HTTPProtocol}
		for _, u := range c.URLs {
			hu := health.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.Virtualhost}
			for _, r := range u.StatusCodes {
				hu.StatusCodes = append(hu.StatusCodes, health.StatusRange{Min: r.Min, Max: r.Max})
			}
			h.URLs = append(h.URLs, hu)
		}
		return h
	case config.MiscCheck:
		m := &health.MiscCheck{Timeout: c.MiscTimeout, Dynamic: c.MiscDynamic}
		if c.Misc != nil {
			m.Args, m.Exec, m.User, m.Group = c.Misc.Args, c.Misc.Exec, c.Misc.User, c.Misc.Group
		}
		return m
	case config.DNSCheck:
		return &health.DNSCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Timeout: c.ConnectTimeout, Type: c.DNSType, Name: c.DNSName}
	default:
		return &health.TCPCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Timeout: c.ConnectTimeout}
	}
}
