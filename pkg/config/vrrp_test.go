package config

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGlobalDefaults(t *testing.T) {
	cfg := mustParse(t, "")
	assert.Equal(t, GlobalDefs{
		SMTPPort:                    25,
		SMTPConnectTimeout:          30 * time.Second,
		VRRPVersion:                 2,
		VRRPGarpMasterDelay:         5 * time.Second,
		VRRPGarpMasterRepeat:        5,
		VRRPGarpMasterRefreshRepeat: 1,
		VRRPMcastGroup4:             netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:             netip.MustParseAddr("ff02::12"),
	}, cfg.Global)
	assert.Empty(t, cfg.Warnings)
}

func TestGlobalKeywords(t *testing.T) {
	cfg := mustParse(t, lines(
		"global_defs {",
		"  router_id LB1",
		"  notification_email {",
		"    ops@example.com",
		"    noc@example.com",
		"  }",
		"  notification_email_from lb@example.com",
		"  smtp_server 192.0.2.25 2525",
		"  smtp_connect_timeout 10",
		"  vrrp_version 3",
		"  vrrp_garp_master_delay 2",
		"  vrrp_garp_master_repeat 1",
		"  vrrp_strict",
		"  enable_script_security",
		"  script_user keepalived_script nogroup",
		"  vrrp_mcast_group4 224.0.0.19",
		"  vrrp_mcast_group6 ff02::13",
		"  lvs_timeouts tcp 7200 tcpfin 60 udp 120",
		"}",
	))
	assert.Equal(t, GlobalDefs{
		RouterID:                    "LB1",
		NotificationEmail:           []string{"ops@example.com", "noc@example.com"},
		NotificationEmailFrom:       "lb@example.com",
		SMTPServer:                  "192.0.2.25",
		SMTPPort:                    2525,
		SMTPConnectTimeout:          10 * time.Second,
		VRRPVersion:                 3,
		VRRPGarpMasterDelay:         2 * time.Second,
		VRRPGarpMasterRepeat:        1,
		VRRPGarpMasterRefreshRepeat: 1,
		VRRPStrict:                  true,
		VRRPMcastGroup4:             netip.MustParseAddr("224.0.0.19"),
		VRRPMcastGroup6:             netip.MustParseAddr("ff02::13"),
		EnableScriptSecurity:        true,
		ScriptUser:                  "keepalived_script",
		ScriptGroup:                 "nogroup",
		LVSTimeouts:                 LVSTimeouts{TCP: 7200 * time.Second, TCPFin: 60 * time.Second, UDP: 120 * time.Second},
		Pos:                         Pos{"keepalived.conf", 1},
	}, cfg.Global)
	assert.Empty(t, cfg.Warnings)
}

func TestVRRPScript(t *testing.T) {
	cfg := mustParse(t, lines(
		"vrrp_script chk_defaults {",
		"  script /usr/bin/true",
		"}",
		"vrrp_script chk_haproxy {",
		`  script "/usr/bin/pgrep -x 'ha proxy'"`,
		"  interval 2",
		"  timeout 1",
		"  weight -60 reverse",
		"  rise 3",
		"  fall 4",
		"  user nobody nogroup",
		"  init_fail",
		"}",
	))
	require.Len(t, cfg.Scripts, 2)
	assert.Equal(t, VRRPScript{
		Name: "chk_defaults", Script: Script{Args: []string{"/usr/bin/true"}},
		Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1,
		Pos: Pos{"keepalived.conf", 1},
	}, cfg.Scripts[0])
	assert.Equal(t, VRRPScript{
		Name:     "chk_haproxy",
		Script:   Script{Args: []string{"/usr/bin/pgrep", "-x", "ha proxy"}, User: "nobody", Group: "nogroup"},
		Interval: 2 * time.Second, Timeout: time.Second,
		Weight: -60, Reverse: true, Rise: 3, Fall: 4, InitFail: true,
		Pos: Pos{"keepalived.conf", 4},
	}, *cfg.Script("chk_haproxy"))

	// The timeout defaults to the interval.
	cfg = mustParse(t, "vrrp_script s {\n script x\n interval 5\n}\n")
	assert.Equal(t, 5*time.Second, cfg.Scripts[0].Timeout)
}

func TestVRRPInstanceDefaults(t *testing.T) {
	cfg := mustParse(t, vrrp1(""))
	require.Len(t, cfg.Instances, 1)
	assert.Equal(t, VRRPInstance{
		Name:                    "VI_1",
		State:                   StateBackup,
		Interface:               "eth0",
		VirtualRouterID:         51,
		Priority:                100,
		AdvertInterval:          time.Second,
		Version:                 2,
		VirtualIPs:              []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.100/24")}},
		GarpMasterDelay:         5 * time.Second,
		GarpMasterRepeat:        5,
		GarpMasterRefreshRepeat: 1,
		Pos:                     Pos{"keepalived.conf", 1},
	}, cfg.Instances[0])
	assert.Empty(t, cfg.Warnings)
}

func TestVRRPInstanceKeywords(t *testing.T) {
	cfg := mustParse(t, lines(
		"vrrp_script chk { script /bin/true\n weight -5 }",
		"vrrp_script chk2 { script /bin/true }",
		"vrrp_instance VI_1 {",
		"  state BACKUP",
		"  interface eth0",
		"  virtual_router_id 51",
		"  priority 150",
		"  advert_int 2",
		"  nopreempt",
		"  unicast_src_ip 10.0.0.11",
		"  unicast_peer {",
		"    10.0.0.12",
		"    10.0.0.13 min_ttl 250 max_ttl 255",
		"  }",
		"  authentication {",
		"    auth_type PASS",
		"    auth_pass s3cr3t",
		"  }",
		"  virtual_ipaddress {",
		"    10.0.0.100/24 dev eth0 label eth0:vip",
		"    10.0.0.101",
		"  }",
		"  virtual_ipaddress_excluded {",
		"    192.0.2.1/32 dev eth1",
		"  }",
		"  track_script {",
		"    chk",
		"    chk2 weight 10 reverse",
		"  }",
		"  track_interface {",
		"    eth1",
		"    eth2 weight -20",
		"  }",
		`  notify_master "/etc/keepalived/notify.sh master" root`,
		"  notify_backup /etc/keepalived/backup.sh",
		`  notify_fault "/etc/keepalived/notify.sh fault" root wheel`,
		"  notify_stop /bin/stop",
		"  notify /bin/notify",
		"  garp_master_delay 1",
		"  garp_master_repeat 3",
		"  use_vmac vrrp51",
		"}",
	))
	require.Len(t, cfg.Instances, 1)
	assert.Equal(t, VRRPInstance{
		Name:            "VI_1",
		State:           StateBackup,
		Interface:       "eth0",
		VirtualRouterID: 51,
		Priority:        150,
		AdvertInterval:  2 * time.Second,
		Version:         2,
		AuthType:        AuthPass,
		AuthPass:        "s3cr3t",
		VirtualIPs: []VirtualIP{
			{Prefix: netip.MustParsePrefix("10.0.0.100/24"), Dev: "eth0", Label: "eth0:vip"},
			{Prefix: netip.MustParsePrefix("10.0.0.101/32")},
		},
		ExcludedVirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Dev: "eth1"}},
		TrackScripts:       []TrackScript{{Name: "chk", Weight: -5}, {Name: "chk2", Weight: 10, Reverse: true}},
		TrackInterfaces:    []TrackInterface{{Name: "eth1"}, {Name: "eth2", Weight: -20}},
		Nopreempt:          true,
		UnicastSrcIP:       netip.MustParseAddr("10.0.0.11"),
		UnicastPeers: []UnicastPeer{
			{Addr: netip.MustParseAddr("10.0.0.12"), MinTTL: 0, MaxTTL: 255},
			{Addr: netip.MustParseAddr("10.0.0.13"), MinTTL: 250, MaxTTL: 255},
		},
		CheckUnicastSrc:         true, // min_ttl turns it on, as in keepalived
		NotifyMaster:            &Script{Args: []string{"/etc/keepalived/notify.sh", "master"}, User: "root"},
		NotifyBackup:            &Script{Args: []string{"/etc/keepalived/backup.sh"}},
		NotifyFault:             &Script{Args: []string{"/etc/keepalived/notify.sh", "fault"}, User: "root", Group: "wheel"},
		NotifyStop:              &Script{Args: []string{"/bin/stop"}},
		Notify:                  &Script{Args: []string{"/bin/notify"}},
		GarpMasterDelay:         time.Second,
		GarpMasterRepeat:        3,
		GarpMasterRefreshRepeat: 1,
		UseVMAC:                 true,
		VMACInterface:           "vrrp51",
		Pos:                     Pos{"keepalived.conf", 4},
	}, cfg.Instances[0])
	assert.Empty(t, cfg.Warnings)
}

// TestVRRPDerivedSettings covers the settings keepalived derives from
// others: state from priority and back, version from the global default and
// the address family, and the advert interval rounding.
func TestVRRPDerivedSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		global   string
		body     string
		vip      string
		state    State
		priority uint8
		version  int
		advert   time.Duration
		warning  string
	}{
		{name: "MASTER without priority is the owner", body: "state MASTER", state: StateMaster, priority: 255, version: 2, advert: time.Second},
		{name: "BACKUP without priority", body: "state BACKUP", state: StateBackup, priority: 100, version: 2, advert: time.Second},
		{name: "priority 255 without state", body: "priority 255", state: StateMaster, priority: 255, version: 2, advert: time.Second},
		{name: "priority 200 without state", body: "priority 200", state: StateBackup, priority: 200, version: 2, advert: time.Second},
		{name: "MASTER not owner", body: "state MASTER\n priority 150", state: StateMaster, priority: 150, version: 2, advert: time.Second},
		{name: "global version", global: "vrrp_version 3", state: StateBackup, priority: 100, version: 3, advert: time.Second},
		{name: "instance version wins", global: "vrrp_version 3", body: "version 2", state: StateBackup, priority: 100, version: 2, advert: time.Second},
		{name: "IPv6 is version 3", vip: "fe80::10", state: StateBackup, priority: 100, version: 3, advert: time.Second},
		{
			name: "IPv6 refuses version 2", body: "version 2", vip: "fe80::10", state: StateBackup, priority: 100, version: 3, advert: time.Second,
			warning: `keepalived.conf:2: IPv6 needs VRRP version 3; using version 3 for "VI_1"`,
		},
		{
			name: "v2 rounds to seconds", body: "advert_int 1.4", state: StateBackup, priority: 100, version: 2, advert: time.Second,
			warning: `keepalived.conf:2: VRRPv2 advert_int must be whole seconds; using 1s for "VI_1"`,
		},
		{
			name: "v2 rounds up to one second", body: "advert_int 0.2", state: StateBackup, priority: 100, version: 2, advert: time.Second,
			warning: `keepalived.conf:2: VRRPv2 advert_int must be whole seconds; using 1s for "VI_1"`,
		},
		{name: "v3 keeps centiseconds", body: "version 3\n advert_int 0.25", state: StateBackup, priority: 100, version: 3, advert: 250 * time.Millisecond},
		{
			name: "v3 rounds to centiseconds", body: "version 3\n advert_int 0.123", state: StateBackup, priority: 100, version: 3, advert: 120 * time.Millisecond,
			warning: `keepalived.conf:2: VRRPv3 advert_int must be in units of 10ms; using 120ms for "VI_1"`,
		},
		{
			name: "v3 caps at 40.95s", body: "version 3\n advert_int 50", state: StateBackup, priority: 100, version: 3, advert: 40950 * time.Millisecond,
			warning: `keepalived.conf:2: VRRPv3 advert_int must be below 40.96s; using 40.95s for "VI_1"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vip := tc.vip
			if vip == "" {
				vip = "10.0.0.100"
			}
			cfg := mustParse(t, lines(
				"global_defs { "+tc.global+" }",
				"vrrp_instance VI_1 {",
				" interface eth0",
				" virtual_router_id 51",
				" "+tc.body,
				" virtual_ipaddress {",
				"  "+vip,
				" }",
				"}",
			))
			v := cfg.Instances[0]
			assert.Equal(t, tc.state, v.State)
			assert.Equal(t, tc.priority, v.Priority)
			assert.Equal(t, tc.version, v.Version)
			assert.Equal(t, tc.advert, v.AdvertInterval)
			if tc.warning == "" {
				assert.Empty(t, cfg.Warnings)
			} else {
				assert.Equal(t, []string{tc.warning}, warningStrings(cfg))
			}
		})
	}
}

// TestVRRPIncompatibleOptions checks the corrections keepalived makes to
// incompatible settings (reference B.3): warnings, and the setting cleared.
func TestVRRPIncompatibleOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		check   func(t *testing.T, v VRRPInstance)
		warning string
	}{{
		name:    "nopreempt needs state BACKUP",
		body:    "state MASTER\n priority 150\n nopreempt",
		check:   func(t *testing.T, v VRRPInstance) { assert.False(t, v.Nopreempt) },
		warning: `keepalived.conf:1: nopreempt does not work with initial state MASTER; clearing it in "VI_1"`,
	}, {
		name:    "nopreempt and the owner",
		body:    "priority 255\n nopreempt",
		check:   func(t *testing.T, v VRRPInstance) { assert.False(t, v.Nopreempt) },
		warning: `keepalived.conf:1: nopreempt is incompatible with priority 255; clearing it in "VI_1"`,
	}, {
		name:    "preempt_delay needs state BACKUP",
		body:    "state MASTER\n priority 150\n preempt_delay 30",
		check:   func(t *testing.T, v VRRPInstance) { assert.Zero(t, v.PreemptDelay) },
		warning: `keepalived.conf:1: preempt_delay does not work with initial state MASTER; clearing it in "VI_1"`,
	}, {
		name:    "nopreempt and preempt_delay exclude each other",
		body:    "nopreempt\n preempt_delay 30",
		check:   func(t *testing.T, v VRRPInstance) { assert.True(t, v.Nopreempt); assert.Zero(t, v.PreemptDelay) },
		warning: `keepalived.conf:1: preempt_delay is incompatible with nopreempt; clearing it in "VI_1"`,
	}, {
		name:  "preempt_delay kept for a backup",
		body:  "preempt_delay 4.12",
		check: func(t *testing.T, v VRRPInstance) { assert.Equal(t, 4120*time.Millisecond, v.PreemptDelay) },
	}, {
		name:  "preempt undoes nopreempt",
		body:  "nopreempt\n preempt",
		check: func(t *testing.T, v VRRPInstance) { assert.False(t, v.Nopreempt) },
	}, {
		name:    "preempt_delay and strict mode",
		body:    "strict_mode\n preempt_delay 3",
		check:   func(t *testing.T, v VRRPInstance) { assert.True(t, v.Strict); assert.Zero(t, v.PreemptDelay) },
		warning: `keepalived.conf:1: preempt_delay is incompatible with strict mode; clearing it in "VI_1"`,
	}, {
		name:    "no authentication in version 3",
		body:    "version 3\n authentication {\n auth_type PASS\n auth_pass x\n }",
		check:   func(t *testing.T, v VRRPInstance) { assert.Equal(t, AuthNone, v.AuthType); assert.Empty(t, v.AuthPass) },
		warning: `keepalived.conf:1: VRRP version 3 has no authentication; ignoring it in "VI_1"`,
	}, {
		name:    "no authentication in strict mode",
		body:    "strict_mode on\n authentication {\n auth_type PASS\n auth_pass x\n }",
		check:   func(t *testing.T, v VRRPInstance) { assert.Equal(t, AuthNone, v.AuthType) },
		warning: `keepalived.conf:1: strict mode does not allow authentication; ignoring it in "VI_1"`,
	}, {
		name:    "authentication needs a password",
		body:    "authentication {\n auth_type PASS\n }",
		check:   func(t *testing.T, v VRRPInstance) { assert.Equal(t, AuthNone, v.AuthType) },
		warning: `keepalived.conf:1: authentication without auth_pass; ignoring it in "VI_1"`,
	}, {
		name: "AH and initial MASTER",
		body: "state MASTER\n priority 100\n authentication {\n auth_type AH\n auth_pass 1111\n }",
		check: func(t *testing.T, v VRRPInstance) {
			assert.Equal(t, StateBackup, v.State)
			assert.Equal(t, AuthAH, v.AuthType)
		},
		warning: `keepalived.conf:1: initial state MASTER is incompatible with AH authentication; using BACKUP for "VI_1"`,
	}, {
		name:    "password truncated to 8 characters",
		body:    "authentication {\n auth_type PASS\n auth_pass 123456789\n }",
		check:   func(t *testing.T, v VRRPInstance) { assert.Equal(t, "12345678", v.AuthPass) },
		warning: `keepalived.conf:6: auth_pass is truncated to 8 characters: "123456789"`,
	}, {
		name:    "strict mode: state must match the priority",
		body:    "strict_mode\n state MASTER\n priority 100",
		check:   func(t *testing.T, v VRRPInstance) { assert.Equal(t, StateBackup, v.State) },
		warning: `keepalived.conf:1: strict mode: state MASTER must match priority 255; correcting the state of "VI_1"`,
	}, {
		name: "the owner drops weighted trackers",
		body: "priority 255\n track_interface {\n eth1 weight 10\n eth2\n }",
		check: func(t *testing.T, v VRRPInstance) {
			assert.Equal(t, []TrackInterface{{Name: "eth2"}}, v.TrackInterfaces)
		},
		warning: `keepalived.conf:1: (VI_1) priority 255 cannot change; ignoring weighted track_interface "eth1"`,
	}, {
		name:    "tracking weight 254 is clamped",
		body:    "track_interface {\n eth1 weight -254\n }",
		check:   func(t *testing.T, v VRRPInstance) { assert.Equal(t, -253, v.TrackInterfaces[0].Weight) },
		warning: `keepalived.conf:5: tracking weight cannot be ±254, using ±253 instead of "-254"`,
	}, {
		name: "duplicate trackers",
		body: "track_interface {\n eth1\n eth1 weight 3\n }",
		check: func(t *testing.T, v VRRPInstance) {
			assert.Equal(t, []TrackInterface{{Name: "eth1"}}, v.TrackInterfaces)
		},
		warning: `keepalived.conf:6: (VI_1) duplicate track_interface, ignoring: "eth1"`,
	}, {
		name:    "garp_master_repeat 0 means 1",
		body:    "garp_master_repeat 0",
		check:   func(t *testing.T, v VRRPInstance) { assert.Equal(t, 1, v.GarpMasterRepeat) },
		warning: `keepalived.conf:4: garp_master_repeat must be at least 1; using 1 instead of "0"`,
	}, {
		name: "garp_master_refresh",
		body: "garp_master_refresh 60\n garp_master_refresh_repeat 2",
		check: func(t *testing.T, v VRRPInstance) {
			assert.Equal(t, time.Minute, v.GarpMasterRefresh)
			assert.Equal(t, 2, v.GarpMasterRefreshRepeat)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, vrrp1(" "+tc.body))
			require.Len(t, cfg.Instances, 1)
			tc.check(t, cfg.Instances[0])
			if tc.warning == "" {
				assert.Empty(t, cfg.Warnings)
			} else {
				assert.Contains(t, warningStrings(cfg), tc.warning)
			}
		})
	}
}

func TestTrackScriptResolution(t *testing.T) {
	cfg := mustParse(t, lines(
		"vrrp_script chk_web {\n script /bin/web\n weight -60 reverse\n}",
		"vrrp_script chk_bonus {\n script /bin/bonus\n weight 5\n}",
		"vrrp_instance VI_1 {", // line 9
		" interface eth0",
		" virtual_router_id 1",
		" track_script {",
		"  chk_web",
		"  chk_bonus weight 10",
		"  missing",
		"  chk_later",
		" }",
		"}",
		"vrrp_script no_script {\n interval 3\n}",
		"vrrp_script chk_later {\n script /bin/later\n}",
	))
	assert.Equal(t, []TrackScript{
		{Name: "chk_web", Weight: -60, Reverse: true},
		{Name: "chk_bonus", Weight: 10},
	}, cfg.Instances[0].TrackScripts)
	// keepalived looks a tracked script up as it reads the entry: one
	// defined further down is "not found, ignoring" (keepalived -t says
	// so too), as a track_file is.
	assert.Equal(t, []string{
		`keepalived.conf:19: no script set, removing vrrp_script "no_script"`,
		`keepalived.conf:15: (VI_1) track_script not found, ignoring: "missing"`,
		`keepalived.conf:16: (VI_1) vrrp_script must be defined before it is tracked (keepalived: "track script not found"); ignoring "chk_later"`,
	}, warningStrings(cfg))
}

func TestSyncGroup(t *testing.T) {
	inst := func(name string, vrid int) string {
		return "vrrp_instance " + name + " {\n interface eth0\n virtual_router_id " + strconv.Itoa(vrid) +
			"\n track_interface {\n  eth1 weight 10\n }\n virtual_ipaddress {\n  10.0.0." + strconv.Itoa(vrid) + "\n }\n}\n"
	}
	cfg := mustParse(t, inst("VI_1", 1)+inst("VI_2", 2)+inst("VI_3", 3)+lines(
		"vrrp_sync_group G1 {", // line 31
		" group {",
		"  VI_1 VI_2",
		"  nosuch",
		" }",
		" notify_master \"/bin/group master\"",
		" notify_backup /bin/backup",
		" notify_fault /bin/fault",
		" notify_stop /bin/stop",
		" notify /bin/any",
		" track_interface {\n  eth9\n }",
		"}",
		"vrrp_sync_group G2 {",
		" group {\n  VI_2\n  VI_3\n }",
		" sync_group_tracking_weight",
		"}",
	))
	require.Len(t, cfg.SyncGroups, 2)
	g1, g2 := cfg.SyncGroups[0], cfg.SyncGroups[1]
	assert.Equal(t, []string{"VI_1", "VI_2"}, g1.Instances)
	assert.Equal(t, &Script{Args: []string{"/bin/group", "master"}}, g1.NotifyMaster)
	assert.Equal(t, &Script{Args: []string{"/bin/backup"}}, g1.NotifyBackup)
	assert.Equal(t, &Script{Args: []string{"/bin/fault"}}, g1.NotifyFault)
	assert.Equal(t, &Script{Args: []string{"/bin/stop"}}, g1.NotifyStop)
	assert.Equal(t, &Script{Args: []string{"/bin/any"}}, g1.Notify)
	assert.Equal(t, []TrackInterface{{Name: "eth9"}}, g1.TrackInterfaces)
	assert.Equal(t, []string{"VI_3"}, g2.Instances)
	assert.True(t, g2.TrackingWeight)

	// Members of G1 lose their tracking weights; VI_3 (in G2, which keeps
	// them) does not.
	assert.Equal(t, 0, cfg.Instance("VI_1").TrackInterfaces[0].Weight)
	assert.Equal(t, 0, cfg.Instance("VI_2").TrackInterfaces[0].Weight)
	assert.Equal(t, 10, cfg.Instance("VI_3").TrackInterfaces[0].Weight)
	assert.Equal(t, []string{
		`keepalived.conf:34: (G1) sync group member is not a vrrp_instance; ignoring "nosuch"`,
		`keepalived.conf:47: (G2) vrrp_instance is already in sync group G1; ignoring "VI_2"`,
		`keepalived.conf:45: sync group has only one vrrp_instance (probably not what you want): "G2"`,
		`keepalived.conf:1: member of sync group G1 (without sync_group_tracking_weight): tracking weights set to 0 in "VI_1"`,
		`keepalived.conf:11: member of sync group G1 (without sync_group_tracking_weight): tracking weights set to 0 in "VI_2"`,
	}, warningStrings(cfg))
}

func TestVRRPErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"priority 0", vrrp1(" priority 0"), `keepalived.conf:4: priority must be an integer in [1, 255], got "0"`},
		{"priority 256", vrrp1(" priority 256"), `keepalived.conf:4: priority must be an integer in [1, 255], got "256"`},
		{"vrid 0", "vrrp_instance V {\n interface eth0\n virtual_router_id 0\n}\n", `keepalived.conf:3: virtual_router_id must be an integer in [1, 255], got "0"`},
		{"vrid missing", "vrrp_instance V {\n interface eth0\n}\n", `keepalived.conf:1: virtual_router_id must be set in "V"`},
		{"interface missing", "vrrp_instance V {\n virtual_router_id 3\n}\n", `keepalived.conf:1: interface must be set (it may only be left out with unicast peers) in "V"`},
		{"bad state", vrrp1(" state master"), `keepalived.conf:4: state must be MASTER or BACKUP, got "master"`},
		{"advert_int 0", vrrp1(" advert_int 0"), `keepalived.conf:4: advert_int must be seconds in [0.01, 255], got "0"`},
		{"advert_int 300", vrrp1(" advert_int 300"), `keepalived.conf:4: advert_int must be seconds in [0.01, 255], got "300"`},
		{"advert_int word", vrrp1(" advert_int fast"), `keepalived.conf:4: advert_int must be seconds in [0.01, 255], got "fast"`},
		{"preempt_delay 1001", vrrp1(" preempt_delay 1001"), `keepalived.conf:4: preempt_delay must be seconds in [0, 1000], got "1001"`},
		{"version 4", vrrp1(" version 4"), `keepalived.conf:4: version must be an integer in [2, 3], got "4"`},
		{"bad auth_type", vrrp1(" authentication {\n  auth_type MD5\n }"), `keepalived.conf:5: auth_type must be PASS or AH, got "MD5"`},
		{"bad VIP", vrrp1(" virtual_ipaddress {\n  10.0.0.300\n }"), `keepalived.conf:5: virtual_ipaddress: not an address or prefix: "10.0.0.300"`},
		{"bad VIP option", vrrp1(" virtual_ipaddress {\n  10.0.0.3 colour blue\n }"), `keepalived.conf:5: unknown virtual_ipaddress option "colour"`},
		{"dev without value", vrrp1(" virtual_ipaddress {\n  10.0.0.3 dev\n }"), `keepalived.conf:5: missing value after "dev"`},
		{"bad peer", vrrp1(" unicast_peer {\n  peer1\n }"), `keepalived.conf:5: unicast_peer: not an IP address: "peer1"`},
		{"bad ttl", vrrp1(" unicast_peer {\n  10.0.0.9 min_ttl 256\n }"), `keepalived.conf:5: min_ttl must be an integer in [0, 255], got "256"`},
		{"track weight", vrrp1(" track_interface {\n  eth1 weight 300\n }"), `keepalived.conf:5: tracking weight must be an integer in [-253, 253], got "300"`},
		{"track syntax", vrrp1(" track_interface {\n  eth1 wieght 3\n }"), `keepalived.conf:5: track_interface entry: expected "weight N" after the name, got "wieght"`},
		{"track reverse", vrrp1(" track_interface {\n  eth1 weight 3 backwards\n }"), `keepalived.conf:5: expected reverse or noreverse after the weight, got "backwards"`},
		{"script weight", "vrrp_script s {\n script x\n weight 254\n}\n", `keepalived.conf:3: weight must be an integer in [-253, 253], got "254"`},
		{"script interval", "vrrp_script s {\n script x\n interval 1.5\n}\n", `keepalived.conf:3: interval must be an integer in [1, 4294], got "1.5"`},
		{"script rise", "vrrp_script s {\n script x\n rise 0\n}\n", `keepalived.conf:3: rise must be an integer in [1, 2147483647], got "0"`},
		{"script twice", "vrrp_script s {\n script x\n}\nvrrp_script s {\n script y\n}\n", `keepalived.conf:4: vrrp_script defined twice: "s"`},
		{"instance twice", vrrp1("") + vrrp1(""), `keepalived.conf:9: vrrp_instance already defined at keepalived.conf:1: "VI_1"`},
		{"instance name", "vrrp_instance {\n}\n", `keepalived.conf:1: missing name after "vrrp_instance"`},
		{"misspelt keyword", vrrp1(" priorty 150"), `keepalived.conf:4: unknown keyword in vrrp_instance: "priorty"`},
		{"vrid clash", vrrp1("") + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 51\n}\n",
			`keepalived.conf:9: virtual_router_id 51 on eth0 is already used by vrrp_instance VI_1; duplicate in "VI_2"`},
		{"v3 without VIP", "vrrp_instance V {\n interface eth0\n virtual_router_id 3\n version 3\n}\n",
			`keepalived.conf:1: no virtual_ipaddress (at least one is required for VRRPv3 and strict mode) in "V"`},
		{"unicast in strict mode", vrrp1(" strict_mode\n unicast_peer {\n  10.0.0.2\n }"), `keepalived.conf:1: unicast peers are not allowed in strict mode, in "VI_1"`},
		{"block expected", vrrp1(" virtual_ipaddress 10.0.0.1"), `keepalived.conf:4: missing "{" after "virtual_ipaddress"`},
		{"block unexpected", vrrp1(" priority 100 {\n }"), `keepalived.conf:4: unexpected "{" after "priority"`},
		{"missing value", vrrp1(" priority"), `keepalived.conf:4: missing value after "priority"`},
		{"bad bool", vrrp1(" nopreempt maybe"), `keepalived.conf:4: nopreempt takes on|off|true|false|yes|no, got "maybe"`},
		{"notify unterminated", vrrp1(` notify_master "a 'b"`), `keepalived.conf:4: notify_master: cannot split the command (unterminated ' quote): "a 'b"`},
		{"global version", "global_defs {\n vrrp_version 4\n}\n", `keepalived.conf:2: vrrp_version must be an integer in [2, 3], got "4"`},
		{"mcast group", "global_defs {\n vrrp_mcast_group4 10.0.0.1\n}\n", `keepalived.conf:2: vrrp_mcast_group4 must be an IPv4 multicast address, got "10.0.0.1"`},
		{"garp delay", "global_defs {\n vrrp_garp_master_delay 1.5\n}\n", `keepalived.conf:2: vrrp_garp_master_delay must be an integer in [0, 2147483647], got "1.5"`},
		{"lvs_timeouts", "global_defs {\n lvs_timeouts tcp\n}\n", `keepalived.conf:2: lvs_timeouts: missing seconds after "tcp"`},
		{"unknown global", "global_defs {\n route_id x\n}\n", `keepalived.conf:2: unknown keyword in global_defs: "route_id"`},
		{"unknown top", "vrrp_instanse V {\n}\n", `keepalived.conf:1: unknown top-level keyword "vrrp_instanse"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrors(t, tc.src)
			assert.Equal(t, tc.want, errs[0].Error())
		})
	}
}

// check_unicast_src and skip_check_adv_addr: per instance, from the global
// vrrp_* defaults, turned on by a TTL bound, and warned about where they
// cannot act (no unicast peers).
func TestUnicastSrcKeywords(t *testing.T) {
	inst := func(name, extra string) string {
		return "vrrp_instance " + name + " {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n" + extra + "}\n"
	}
	peers := " unicast_peer {\n 10.0.0.2\n }\n"
	cfg, err := ParseBytes("keepalived.conf", []byte(
		"global_defs {\n vrrp_check_unicast_src\n vrrp_skip_check_adv_addr\n}\n"+
			inst("A", peers)+
			inst("B", peers+" check_unicast_src off\n skip_check_adv_addr false\n")+
			inst("C", "")))
	require.NoError(t, err)
	require.Len(t, cfg.Instances, 3)
	a, b, c := cfg.Instances[0], cfg.Instances[1], cfg.Instances[2]
	assert.True(t, a.CheckUnicastSrc)
	assert.True(t, a.SkipCheckAdvAddr)
	assert.False(t, b.CheckUnicastSrc)
	assert.False(t, b.SkipCheckAdvAddr)
	assert.False(t, c.CheckUnicastSrc, "multicast: nothing to check against")

	cfg, err = ParseBytes("keepalived.conf", []byte(inst("D", " check_unicast_src\n")))
	require.NoError(t, err)
	require.Len(t, cfg.Warnings, 1)
	assert.Contains(t, cfg.Warnings[0].String(), "check_unicast_src has no effect without unicast_peer")
	assert.False(t, cfg.Instances[0].CheckUnicastSrc)
}
