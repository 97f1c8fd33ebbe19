package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/health"
	"github.com/xlbproject/xlb/pkg/smtp"
)

// HealthChecks runs a real's checkers with pkg/health, as keepalived's
// checker process does. MISC_CHECK scripts without a user of their own run
// as scriptUser ("" = as xlb).
func HealthChecks(log *slog.Logger) CheckStarter {
	return HealthChecksAlerting(log, nil)
}

// HealthChecksAlerting is HealthChecks that also sends the mails of the
// real servers' checkers through alerts (none when it is nil), as the
// configuration the Director given alerts last loaded says.
func HealthChecksAlerting(log *slog.Logger, alerts *CheckAlerts) CheckStarter {
	return func(ctx context.Context, vs *config.VirtualServer, rs *config.RealServer, mark uint32, report func(Health)) {
		name := fmt.Sprintf("%s/%s", netip.AddrPortFrom(vs.Addr, vs.Port), netip.AddrPortFrom(rs.Addr, rs.Port))
		var probes []health.Probe
		for _, c := range rs.Checkers {
			pol := health.Policy{
				DelayLoop:        c.DelayLoop,
				Retry:            c.Retry,
				DelayBeforeRetry: c.DelayBeforeRetry,
				Warmup:           c.Warmup,
				Alpha:            c.Alpha || rs.Alpha || vs.Alpha,
			}
			if c.Kind == config.FileCheck {
				// Checked at once, and again whenever inotify says the
				// file changed; delay_loop only bounds how long a change
				// inotify missed goes unseen.
				pol = health.Policy{DelayLoop: vs.DelayLoop, Alpha: rs.Alpha || vs.Alpha}
			}
			pname := fmt.Sprintf("%s at %s", c.Kind, c.Pos)
			if mark != 0 && viaVIP(rs, &c) {
				pname += fmt.Sprintf(" through VIP %s", keyOf(vs).Addr)
			}
			probes = append(probes, health.Probe{
				Name:    pname,
				Checker: checkerOf(vs, rs, &c, mark),
				Policy:  pol,
			})
		}
		mc := health.MonitorConfig{Real: name, Weight: rs.Weight, Probes: probes, Omega: vs.Omega}
		if alerts != nil && alerts.Send != nil {
			mc.OnChecker = alerts.onChecker(vs, rs)
		}
		m := health.NewMonitor(mc)
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

// onChecker is keepalived's per-checker smtp_alert (check_*.c: sent when a
// checker changes state, if its real server's smtp_alert is on and, with
// no_checker_emails, the real server's state changed too).
func (a *CheckAlerts) onChecker(vs *config.VirtualServer, rs *config.RealServer) func(health.CheckerChange) {
	key := realKey(vs, rs)
	rsName, vsName := rsMailName(vs, rs), vsMailName(vs)
	kinds := make([]string, len(rs.Checkers))
	for i, c := range rs.Checkers {
		kinds[i] = c.Kind.String()
	}
	return func(ch health.CheckerChange) {
		v := a.view.Load()
		if v == nil || !v.reals[key] || (v.noCheckerEmails && !ch.RealChanged) {
			return
		}
		detail := ""
		switch {
		case ch.Up:
		case kinds[ch.Probe] == "MISC_CHECK" && errors.Is(ch.Err, health.ErrTimeout):
			detail = "timed out"
		case kinds[ch.Probe] == "SMTP_CHECK" && ch.Err != nil:
			detail = ch.Err.Error()
		}
		body, ok := smtp.CheckerBody(kinds[ch.Probe], ch.Up, detail)
		if !ok {
			return
		}
		a.Send(smtp.RealServer(v.routerID, rsName, vsName, ch.RealUp, body))
	}
}

// viaVIP says whether check_via_vip sends checker c through the data
// path: the checkers that connect to the real's own address.
func viaVIP(rs *config.RealServer, c *config.Checker) bool {
	switch c.Kind {
	case config.TCPCheck, config.HTTPGet, config.SSLGet, config.SMTPCheck, config.DNSCheck, config.UDPCheck:
		return !c.ConnectIP.IsValid() || c.ConnectIP == rs.Addr
	}
	return false
}

// checkerOf is checker c of real rs as pkg/health runs it. mark goes on
// the sockets of the checkers that connect to the real's own address
// (check_via_vip sends them through the data path); one given another
// address (connect_ip) checks that address, as it says.
func checkerOf(vs *config.VirtualServer, rs *config.RealServer, c *config.Checker, mark uint32) health.Checker {
	ip, port := c.ConnectIP, c.ConnectPort
	if !ip.IsValid() {
		ip = rs.Addr
	}
	if !viaVIP(rs, c) {
		mark = 0
	}
	if port == 0 {
		port = rs.Port
	}
	addr := netip.AddrPortFrom(ip, port)
	switch c.Kind {
	case config.HTTPGet, config.SSLGet:
		h := &health.HTTPCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Mark: mark, Timeout: c.ConnectTimeout,
			TLS: c.Kind == config.SSLGet, SNI: c.EnableSNI, Protocol: c.HTTPProtocol}
		for _, u := range c.URLs {
			hu := health.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.Virtualhost}
			if rx := u.Regex; rx != nil {
				hu.Regex = &health.Regex{Expr: rx.RE2, NoMatch: rx.NoMatch, MinOffset: rx.MinOffset,
					MaxOffset: rx.MaxOffset, FirstLine: rx.FirstLine}
			}
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
		return &health.DNSCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Mark: mark, Timeout: c.ConnectTimeout, Type: c.DNSType, Name: c.DNSName}
	case config.SMTPCheck:
		return &health.SMTPCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Mark: mark, Timeout: c.ConnectTimeout, HeloName: c.HeloName}
	case config.UDPCheck:
		return &health.UDPCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Mark: mark, Timeout: c.ConnectTimeout,
			Payload: c.Payload, RequireReply: c.RequireReply, ReplyData: c.ReplyData, ReplyMask: c.ReplyMask,
			MinReplyLength: c.MinReplyLength, MaxReplyLength: c.MaxReplyLength}
	case config.PingCheck:
		return &health.PingCheck{Addr: ip, Timeout: c.ConnectTimeout}
	case config.FileCheck:
		return &health.FileCheck{Path: c.TrackFilePath, Weight: c.FileWeight, Reverse: c.FileReverse}
	default:
		return &health.TCPCheck{Addr: addr, Bind: c.BindTo, BindPort: c.BindPort, Mark: mark, Timeout: c.ConnectTimeout}
	}
}
