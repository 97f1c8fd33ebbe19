package director

import (
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/smtp"
)

// CheckAlerts sends the smtp_alert mails of keepalived's checker process,
// as the running configuration says (router_id, no_checker_emails, each
// virtual and real server's smtp_alert): a real server's checker going up
// or down (check_*.c; sent by the checks HealthChecksAlerting starts), a
// virtual server gaining or losing its quorum, and a real server a reload
// takes out while it is up (ipwrapper.c's do_vs_notifies and
// clear_service_rs; sent by the Director). Give the same CheckAlerts to
// HealthChecksAlerting and to the Director (Options.Alerts): each Load
// tells it what the new configuration says. Whether a mail leaves the host
// (smtp_server and notification_email set) is Send's business.
type CheckAlerts struct {
	// Send queues a mail ((*smtp.Alerter).Alert); it must not block.
	Send func(smtp.Mail)

	// view is read at each change, not when a real's checks start: a
	// reload keeps the checks of an unchanged real running, and what it
	// changed in the mails holds at once.
	view atomic.Pointer[alertView]
}

// alertView is what one configuration says about the checker mails.
type alertView struct {
	routerID        string
	noCheckerEmails bool
	reals           map[realLife]bool // each real's smtp_alert
}

// load takes a configuration the Director now runs.
func (a *CheckAlerts) load(cfg *config.Config) {
	if a == nil {
		return
	}
	v := &alertView{routerID: smtp.RouterID(cfg.Global.RouterID), noCheckerEmails: cfg.Global.NoCheckerEmails,
		reals: map[realLife]bool{}}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		for _, rs := range vs.Reals {
			v.reals[realKey(vs, &rs)] = rs.SMTPAlert
		}
	}
	a.view.Store(v)
}

func (a *CheckAlerts) send(m smtp.Mail) {
	if a != nil && a.Send != nil {
		a.Send(m)
	}
}

func realKey(vs *config.VirtualServer, rs *config.RealServer) realLife {
	return realLife{keyOf(vs), netip.AddrPortFrom(rs.Addr, rs.Port)}
}

// mailProto is a service's protocol as keepalived's mails write it
// (inet_sockaddrtotrio): "none" for a firewall mark's.
func mailProto(vs *config.VirtualServer) string {
	if vs.Protocol == lvs.IP {
		return "none"
	}
	return strings.ToLower(vs.Protocol.String())
}

// vsMailName names vs as keepalived's FMT_VS does.
func vsMailName(vs *config.VirtualServer) string {
	switch {
	case vs.Group != "":
		return smtp.GroupName(vs.Group, 0) // a group's virtual_server has no port
	case vs.FWMark != 0:
		return smtp.FWMarkName(vs.FWMark)
	}
	return smtp.Trio(netip.AddrPortFrom(vs.Addr, vs.Port), mailProto(vs))
}

// rsMailName names rs of vs as keepalived's FMT_RS does.
func rsMailName(vs *config.VirtualServer, rs *config.RealServer) string {
	return smtp.Trio(netip.AddrPortFrom(rs.Addr, rs.Port), mailProto(vs))
}

// quorumMail is do_vs_notifies' mail about vs's quorum going from wasUp
// to up, with w the live weight. init is a Load's check (keepalived's
// init_service_vs: "Starting with quorum ..."). The threshold is the one
// the state was measured against: quorum-hysteresis while up,
// quorum+hysteresis while down.
func quorumMail(routerID string, vs *config.VirtualServer, wasUp, up, init bool, w uint64) smtp.Mail {
	q, h := int64(vs.Quorum), int64(vs.Hysteresis)
	threshold := q + h
	if wasUp {
		threshold = q - h
	}
	return smtp.Quorum(routerID, vsMailName(vs), up, init, vs.Quorum, vs.Hysteresis, threshold, int64(w))
}
