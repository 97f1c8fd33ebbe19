package vrrpd

import (
	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/smtp"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

// mailView is what a configuration says about the VRRP mails (keepalived's
// vrrp_smtp_notifier and vrrp_sync_smtp_notifier). It is swapped whole at
// each Load, and read when an instance or group changes state: turning
// smtp_alert on or off restarts nothing.
type mailView struct {
	routerID      string
	noEmailFaults bool
	instances     map[string]bool // each vrrp_instance's smtp_alert
	groups        map[string]bool // each vrrp_sync_group's
}

func mailViewOf(cfg *config.Config) *mailView {
	mv := &mailView{routerID: smtp.RouterID(cfg.Global.RouterID), noEmailFaults: cfg.Global.NoEmailFaults,
		instances: map[string]bool{}, groups: map[string]bool{}}
	for _, in := range cfg.Instances {
		mv.instances[in.Name] = in.SMTPAlert
	}
	for _, g := range cfg.SyncGroups {
		mv.groups[g.Name] = g.SMTPAlert
	}
	return mv
}

// withoutMail drops what only the mails read from what the instances and
// groups run from (vrrpView): a change there restarts nothing.
func withoutMail(v vrrpView) vrrpView {
	for i := range v.instances {
		v.instances[i].SMTPAlert = false
	}
	for i := range v.groups {
		v.groups[i].SMTPAlert = false
	}
	return v
}

// mailState names a state as the mails do: an instance that stopped
// (INIT) is STOP, as for its notify scripts.
func mailState(s vrrp.State) string {
	if s == vrrp.StateInit {
		return smtp.StateStop
	}
	return s.String()
}

// mail sends the mail of name (a vrrp_instance, or a vrrp_sync_group if
// group) entering state, as keepalived does: if its smtp_alert is on, the
// state is not FAULT under no_email_faults, and the state differs from
// the last one mailed (*last, keepalived's last_email_state, which only a
// mail sent moves). It never waits: Options.Alert queues.
func (v *Supervisor) mail(group bool, name, state string, last *string) {
	mv := v.mails.Load()
	if v.alert == nil || mv == nil || state == *last || (state == smtp.StateFault && mv.noEmailFaults) {
		return
	}
	build, on := smtp.Instance, mv.instances[name]
	if group {
		build, on = smtp.SyncGroup, mv.groups[name]
	}
	if !on {
		return
	}
	m, ok := build(mv.routerID, name, state)
	if !ok {
		return
	}
	*last = state
	v.alert(m)
}
