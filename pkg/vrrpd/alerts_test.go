package vrrpd

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xlbproject/xlb/pkg/smtp"
	"github.com/xlbproject/xlb/pkg/vrrp"
)

const alertConfig = `
global_defs {
    router_id lb1
    %s
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    %s
    virtual_ipaddress {
        10.0.0.100/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        10.0.0.101/24
    }
}
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
    %s
}
`

func alertCfg(global, instance, group string) string {
	return fmt.Sprintf(alertConfig, global, instance, group)
}

// keepalived's vrrp_smtp_notifier and vrrp_sync_smtp_notifier: a mail per
// state entered, none for the state last mailed, none for FAULT under
// no_email_faults, none without smtp_alert.
func TestVRRPMails(t *testing.T) {
	var got []string
	v := New(Options{Alert: func(m smtp.Mail) { got = append(got, m.Subject) }})
	v.mails.Store(mailViewOf(parse(t, alertCfg("no_email_faults\n    smtp_alert_vrrp off", "smtp_alert", "smtp_alert"))))

	var inst, grp string
	for _, s := range []vrrp.State{vrrp.StateBackup, vrrp.StateMaster, vrrp.StateMaster, vrrp.StateFault, vrrp.StateMaster, vrrp.StateInit} {
		v.mail(false, "VI_1", mailState(s), &inst)
	}
	var other string
	v.mail(false, "VI_2", smtp.StateMaster, &other) // off: smtp_alert_vrrp off
	for _, s := range []string{smtp.StateBackup, smtp.StateFault, smtp.StateBackup, smtp.StateMaster} {
		v.mail(true, "G", s, &grp)
	}
	assert.Equal(t, []string{
		"[lb1] VRRP Instance VI_1 - Entering BACKUP state",
		"[lb1] VRRP Instance VI_1 - Entering MASTER state",
		// MASTER again: not mailed; FAULT: no_email_faults; MASTER: the
		// state last mailed.
		"[lb1] VRRP Instance VI_1 - Stopping",
		"[lb1] VRRP Group G - Entering BACKUP state",
		// FAULT not mailed, so BACKUP is still the last mailed.
		"[lb1] VRRP Group G - Entering MASTER state",
	}, got)

	// A reload turns them off: the next change mails nothing.
	got = nil
	v.mails.Store(mailViewOf(parse(t, alertCfg("", "", ""))))
	v.mail(false, "VI_1", smtp.StateBackup, &inst)
	v.mail(true, "G", smtp.StateBackup, &grp)
	assert.Empty(t, got)
}

// smtp_alert is not what the instances run from: changing it restarts
// nothing.
func TestSMTPAlertRestartsNothing(t *testing.T) {
	a := vrrpViewOf(parse(t, alertCfg("", "", "")))
	b := vrrpViewOf(parse(t, alertCfg("smtp_alert", "smtp_alert off", "smtp_alert on")))
	assert.True(t, reflect.DeepEqual(a, b))
}
