package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The global_defs keywords of smtp_alert, as keepalived 2.2.7's
// global_parser.c reads them: a boolean with no value is on, a value
// check_true_false does not know is reported and leaves the setting as it
// was, no_email_faults is on whatever follows it.
func TestSMTPAlertGlobals(t *testing.T) {
	on, off := true, false
	for _, tc := range []struct {
		name  string
		lines []string
		want  GlobalDefs
		warns []string
	}{
		{name: "unset", want: GlobalDefs{}},
		{name: "helo", lines: []string{"smtp_helo_name lb1.example.org"}, want: GlobalDefs{SMTPHeloName: "lb1.example.org"}},
		{name: "helo without a name", lines: []string{"smtp_helo_name"},
			warns: []string{`keepalived.conf:2: missing name after "smtp_helo_name": ignored, as keepalived ignores it`}},
		{name: "helo with more", lines: []string{"smtp_helo_name a b"}, want: GlobalDefs{SMTPHeloName: "a"},
			warns: []string{`keepalived.conf:2: extra words after smtp_helo_name ignored, from "b"`}},
		{name: "no value is on", lines: []string{"smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "no_email_faults", "no_checker_emails"},
			want: GlobalDefs{SMTPAlert: &on, SMTPAlertVRRP: &on, SMTPAlertChecker: &on, NoEmailFaults: true, NoCheckerEmails: true}},
		{name: "words", lines: []string{"smtp_alert yes", "smtp_alert_vrrp false", "smtp_alert_checker no", "no_checker_emails true"},
			want: GlobalDefs{SMTPAlert: &on, SMTPAlertVRRP: &off, SMTPAlertChecker: &off, NoCheckerEmails: true}},
		{name: "the last wins", lines: []string{"smtp_alert on", "smtp_alert off", "no_checker_emails", "no_checker_emails off"},
			want: GlobalDefs{SMTPAlert: &off}},
		{name: "a bad value leaves the setting as it was", lines: []string{"smtp_alert_vrrp on", "smtp_alert_vrrp On", "smtp_alert 1", "no_checker_emails", "no_checker_emails maybe"},
			want: GlobalDefs{SMTPAlertVRRP: &on, NoCheckerEmails: true},
			warns: []string{
				`keepalived.conf:3: smtp_alert_vrrp takes on|off|true|false|yes|no, got "On": ignored, as keepalived ignores it`,
				`keepalived.conf:4: smtp_alert takes on|off|true|false|yes|no, got "1": ignored, as keepalived ignores it`,
				`keepalived.conf:6: no_checker_emails takes on|off|true|false|yes|no, got "maybe": ignored, as keepalived ignores it`,
			}},
		{name: "no_email_faults reads no value", lines: []string{"no_email_faults off"}, want: GlobalDefs{NoEmailFaults: true},
			warns: []string{`keepalived.conf:2: no_email_faults takes no value, got "off": read as on, as keepalived reads it`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "global_defs {\n"
			for _, l := range tc.lines {
				src += " " + l + "\n"
			}
			src += "}\n"
			cfg := mustParse(t, src)
			g := cfg.Global
			assert.Equal(t, tc.want.SMTPHeloName, g.SMTPHeloName)
			assert.Equal(t, tc.want.SMTPAlert, g.SMTPAlert, "smtp_alert")
			assert.Equal(t, tc.want.SMTPAlertVRRP, g.SMTPAlertVRRP, "smtp_alert_vrrp")
			assert.Equal(t, tc.want.SMTPAlertChecker, g.SMTPAlertChecker, "smtp_alert_checker")
			assert.Equal(t, tc.want.NoEmailFaults, g.NoEmailFaults, "no_email_faults")
			assert.Equal(t, tc.want.NoCheckerEmails, g.NoCheckerEmails, "no_checker_emails")
			assert.Equal(t, tc.warns, warningStrings(cfg))
			requireRoundTrip(t, "keepalived.conf", []byte(src))
		})
	}
}

// alertConfig is one of each block that has a smtp_alert: global is
// global_defs' lines, own the line each block gets ("" for none).
func alertConfig(global, own string) string {
	return lines(
		"global_defs {",
		" "+global,
		"}",
		"vrrp_instance VI_1 {",
		" interface eth0",
		" virtual_router_id 51",
		" "+own,
		" virtual_ipaddress {",
		"  10.0.0.100/24",
		" }",
		"}",
		"vrrp_instance VI_2 {",
		" interface eth0",
		" virtual_router_id 52",
		" virtual_ipaddress {",
		"  10.0.0.101/24",
		" }",
		"}",
		"vrrp_sync_group G {",
		" group {",
		"  VI_1",
		"  VI_2",
		" }",
		" "+own,
		"}",
		"virtual_server 10.0.0.100 80 {",
		" protocol TCP",
		" lb_algo rr",
		" lb_kind DR",
		" "+own,
		" real_server 10.0.0.2 80 {",
		"  "+own,
		" }",
		"}",
	)
}

// Which smtp_alert wins, as keepalived 2.2.7 resolves it once the file is
// read (vrrp.c, check_data.c): the block's own, else the global
// smtp_alert_vrrp (instances, sync groups) or smtp_alert_checker (virtual
// and real servers), else the global smtp_alert, else off, but on for a
// real server.
func TestSMTPAlertInheritance(t *testing.T) {
	type got struct{ instance, group, vs, rs bool }
	for _, tc := range []struct {
		global, own string
		want        got
	}{
		{"", "", got{rs: true}},
		{"smtp_alert", "", got{true, true, true, true}},
		{"smtp_alert off", "", got{}},
		{"smtp_alert_vrrp", "", got{instance: true, group: true, rs: true}},
		{"smtp_alert_checker", "", got{vs: true, rs: true}},
		{"smtp_alert_checker off", "", got{}},
		{"smtp_alert on\n smtp_alert_checker off", "", got{instance: true, group: true}},
		{"smtp_alert on\n smtp_alert_vrrp off", "", got{vs: true, rs: true}},
		{"smtp_alert off\n smtp_alert_vrrp on\n smtp_alert_checker on", "", got{true, true, true, true}},
		{"smtp_alert", "smtp_alert off", got{}},
		{"smtp_alert_vrrp on\n smtp_alert_checker on", "smtp_alert no", got{}},
		{"smtp_alert off", "smtp_alert", got{true, true, true, true}},
		{"", "smtp_alert bogus", got{rs: true}}, // ignored: the defaults stand
	} {
		t.Run(tc.global+"/"+tc.own, func(t *testing.T) {
			src := alertConfig(tc.global, tc.own)
			cfg := mustParse(t, src)
			require.Len(t, cfg.Instances, 2)
			require.Len(t, cfg.SyncGroups, 1)
			require.Len(t, cfg.VirtualServers, 1)
			vs := cfg.VirtualServers[0]
			assert.Equal(t, tc.want, got{cfg.Instances[0].SMTPAlert, cfg.SyncGroups[0].SMTPAlert, vs.SMTPAlert, vs.Reals[0].SMTPAlert})
			assert.Equal(t, cfg.Instances[0].SMTPAlert || tc.own != "", cfg.Instances[1].SMTPAlert || tc.own != "",
				"an instance without its own smtp_alert inherits the same")
			requireRoundTrip(t, "keepalived.conf", []byte(src))
		})
	}
}

// keepalived resolves the blocks' smtp_alert after the whole file is read:
// a global_defs below them still sets their default. A virtual server's
// own smtp_alert is not its real servers' default.
func TestSMTPAlertOrder(t *testing.T) {
	cfg := mustParse(t, vs1(" smtp_alert on\n real_server 10.0.0.2 80 {\n }")+vrrp1("")+
		"global_defs {\n smtp_alert_checker off\n smtp_alert_vrrp on\n}\n")
	assert.True(t, cfg.VirtualServers[0].SMTPAlert)
	assert.False(t, cfg.VirtualServers[0].Reals[0].SMTPAlert)
	assert.True(t, cfg.Instances[0].SMTPAlert)
}

// Every bad smtp_alert value is reported at its line, an error with
// --strict, and a warning otherwise.
func TestSMTPAlertBadValues(t *testing.T) {
	list := parseErrors(t, alertConfig("smtp_alert_checker enabled", "smtp_alert 2"))
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	assert.Equal(t, []string{
		`keepalived.conf:2: smtp_alert_checker takes on|off|true|false|yes|no, got "enabled"`,
		`keepalived.conf:7: smtp_alert takes on|off|true|false|yes|no, got "2"`,
		`keepalived.conf:24: smtp_alert takes on|off|true|false|yes|no, got "2"`,
		`keepalived.conf:30: smtp_alert takes on|off|true|false|yes|no, got "2"`,
		`keepalived.conf:32: smtp_alert takes on|off|true|false|yes|no, got "2"`,
	}, got)
	errs := parseErrors(t, vs1(" real_server 10.0.0.2 80 {\n  smtp_alert {\n  }\n }"))
	require.Len(t, errs, 1)
	assert.Equal(t, `keepalived.conf:6: unexpected "{" after "smtp_alert"`, errs[0].Error())
}
