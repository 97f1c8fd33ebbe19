package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLVSSyncDaemon: global_defs' lvs_sync_daemon and a vrrp_instance's
// lvs_sync_daemon_interface read as keepalived 2.2.7 reads them
// (global_parser.c lvs_syncd_handler, vrrp_parser.c
// vrrp_lvs_syncd_handler, vrrp.c vrrp_complete_init), each warning on the
// line keepalived -t complains about, and keepalived -t saying so too.
func TestLVSSyncDaemon(t *testing.T) {
	// syncd puts lines in global_defs (line 2 on) before VI_1 (VRID 51),
	// whose own lines start at line 4 + the global lines + 3.
	syncd := func(global string, inst ...string) string {
		return "global_defs {\n " + global + "\n}\n" + vrrp1(strings.Join(inst, "\n"))
	}
	vi2 := strings.NewReplacer("VI_1", "VI_2", "router_id 51", "router_id 52", "10.0.0.100", "10.0.0.101")
	at := func(line int) Pos { return Pos{File: "keepalived.conf", Line: line} }
	eth0 := func(sd LVSSyncDaemon) *LVSSyncDaemon {
		if sd.Interface == "" {
			sd.Interface = "eth0"
		}
		if sd.Pos == (Pos{}) {
			sd.Pos = at(2)
		}
		return &sd
	}
	ignored := ": ignored, as keepalived ignores it"
	for _, tc := range []struct {
		name  string
		src   string
		want  *LVSSyncDaemon
		warns []string // every warning, in order
		// ka are what keepalived -t logs about it; none: it says
		// nothing about lvs_sync_daemon.
		ka []string
	}{
		{
			name: "full form",
			src:  syncd("lvs_sync_daemon eth0 inst VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 239.1.1.1"),
			want: eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 7, SyncIDSet: true, MaxLen: 1400, Port: 8849, TTL: 2, Group: netip.MustParseAddr("239.1.1.1")}),
		},
		{
			name: "the largest values and an IPv6 group",
			src:  syncd("lvs_sync_daemon eth0 maxlen 65507 id 255 port 65535 ttl 255 group ff05::1"),
			want: eth0(LVSSyncDaemon{SyncID: 255, SyncIDSet: true, MaxLen: 65507, Port: 65535, TTL: 255, Group: netip.MustParseAddr("ff05::1")}),
		},
		{
			// Both daemons all the time, sync id 0 and the kernel's
			// defaults for the rest (zero values).
			name: "minimal form",
			src:  syncd("lvs_sync_daemon eth0"),
			want: eth0(LVSSyncDaemon{}),
		},
		{
			name: "inst: the sync id is the instance's VRID",
			src:  syncd("lvs_sync_daemon eth0 inst VI_1"),
			want: eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51}),
		},
		{
			name: "the instance without inst",
			src:  syncd("lvs_sync_daemon eth0 VI_1 port 9000"),
			want: eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51, Port: 9000}),
		},
		{
			name: "id 0 is a sync id, not the VRID",
			src:  syncd("lvs_sync_daemon eth0 inst VI_1 id 0"),
			want: eth0(LVSSyncDaemon{Instance: "VI_1", SyncIDSet: true}),
		},
		{
			name:  "the old SYNC_ID after the instance",
			src:   syncd("lvs_sync_daemon eth0 VI_1 7"),
			want:  eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 7, SyncIDSet: true}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon: a sync id without "id" before it (deprecated): "7": read as the sync id, as keepalived reads it`},
			ka:    []string{`Please use keyword "id" before lvs_sync_daemon SYNCID`},
		},
		{
			name:  "a bad old SYNC_ID",
			src:   syncd("lvs_sync_daemon eth0 VI_1 x"),
			want:  eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon id must be an integer in [0, 255], got "x"` + ignored},
			ka:    []string{"Invalid syncid (x) - defaulting to vrid"},
		},
		{
			// keepalived drops what follows a '-' or '/' and says nothing.
			name: "a group with a mask",
			src:  syncd("lvs_sync_daemon eth0 group 239.1.2.3/8"),
			want: eth0(LVSSyncDaemon{Group: netip.MustParseAddr("239.1.2.3")}),
		},
		{
			name:  "id above 255",
			src:   syncd("lvs_sync_daemon eth0 inst VI_1 id 256"),
			want:  eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon id must be an integer in [0, 255], got "256"` + ignored},
			ka:    []string{"Invalid syncid (256) - defaulting to vrid"},
		},
		{
			name: "port 0 and 65536",
			src:  syncd("lvs_sync_daemon eth0 port 0 port 65536"),
			want: eth0(LVSSyncDaemon{}),
			warns: []string{
				`keepalived.conf:2: lvs_sync_daemon port must be an integer in [1, 65535], got "0"` + ignored,
				`keepalived.conf:2: lvs_sync_daemon port must be an integer in [1, 65535], got "65536"` + ignored,
			},
			ka: []string{"Invalid lvs_sync_daemon port (0) - ignoring", "Invalid lvs_sync_daemon port (65536) - ignoring"},
		},
		{
			name: "ttl 0 and 256",
			src:  syncd("lvs_sync_daemon eth0 ttl 0 ttl 256"),
			want: eth0(LVSSyncDaemon{}),
			warns: []string{
				`keepalived.conf:2: lvs_sync_daemon ttl must be an integer in [1, 255], got "0"` + ignored,
				`keepalived.conf:2: lvs_sync_daemon ttl must be an integer in [1, 255], got "256"` + ignored,
			},
			ka: []string{"Invalid lvs_sync_daemon ttl (0) - ignoring", "Invalid lvs_sync_daemon ttl (256) - ignoring"},
		},
		{
			name: "maxlen 0 and 65508",
			src:  syncd("lvs_sync_daemon eth0 maxlen 0 maxlen 65508"),
			want: eth0(LVSSyncDaemon{}),
			warns: []string{
				`keepalived.conf:2: lvs_sync_daemon maxlen must be an integer in [1, 65507], got "0"` + ignored,
				`keepalived.conf:2: lvs_sync_daemon maxlen must be an integer in [1, 65507], got "65508"` + ignored,
			},
			ka: []string{"Invalid lvs_sync_daemon maxlen (0) - ignoring", "Invalid lvs_sync_daemon maxlen (65508) - ignoring"},
		},
		{
			name:  "a group that is not multicast",
			src:   syncd("lvs_sync_daemon eth0 group 10.0.0.1"),
			want:  eth0(LVSSyncDaemon{}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon group is not a multicast address: "10.0.0.1": ignored (the kernel's default group is used), as keepalived does`},
			ka:    []string{"lvs_sync_daemon group address 10.0.0.1 is not multicast - ignoring"},
		},
		{
			name:  "a group that is no address",
			src:   syncd("lvs_sync_daemon eth0 group 224.0.0.999"),
			want:  eth0(LVSSyncDaemon{}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon group is not an IP address: "224.0.0.999": ignored (the kernel's default group is used), as keepalived does`},
			ka:    []string{"Invalid lvs_sync_daemon group (224.0.0.999) - ignoring"},
		},
		{
			name:  "a group with a zone",
			src:   syncd("lvs_sync_daemon eth0 group ff02::8848%eth0"),
			want:  eth0(LVSSyncDaemon{}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon group is not an IP address: "ff02::8848%eth0": ignored (the kernel's default group is used), as keepalived does`},
			ka:    []string{"Invalid lvs_sync_daemon group (ff02::8848%eth0) - ignoring"},
		},
		{
			// keepalived clears the group before it checks it.
			name:  "a bad group undoes a good one",
			src:   syncd("lvs_sync_daemon eth0 group 239.1.1.1 group ::ffff:224.0.0.1"),
			want:  eth0(LVSSyncDaemon{}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon group is not a multicast address: "::ffff:224.0.0.1": ignored (the kernel's default group is used), as keepalived does`},
			ka:    []string{"lvs_sync_daemon group address ::ffff:224.0.0.1 is not multicast - ignoring"},
		},
		{
			// After id, a word is no longer the instance.
			name:  "an unknown word",
			src:   syncd("lvs_sync_daemon eth0 id 5 VI_1"),
			want:  eth0(LVSSyncDaemon{SyncID: 5, SyncIDSet: true}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon takes inst, id, maxlen, port, ttl or group, got "VI_1"` + ignored},
			ka:    []string{"Unknown option VI_1 specified for lvs_sync_daemon"},
		},
		{
			name: "a value that is the next option",
			src:  syncd("lvs_sync_daemon eth0 id port 5"),
			want: eth0(LVSSyncDaemon{}),
			warns: []string{
				`keepalived.conf:2: lvs_sync_daemon id must be an integer in [0, 255], got "port"` + ignored,
				`keepalived.conf:2: lvs_sync_daemon takes inst, id, maxlen, port, ttl or group, got "5"` + ignored,
			},
			ka: []string{"Invalid syncid (port) - defaulting to vrid", "Unknown option 5 specified for lvs_sync_daemon"},
		},
		{
			name:  "a missing value",
			src:   syncd("lvs_sync_daemon eth0 inst VI_1 ttl"),
			want:  eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon: missing value after "ttl"` + ignored},
			ka:    []string{"No value specified for lvs_sync_daemon ttl - ignoring"},
		},
		{
			name:  "a missing id",
			src:   syncd("lvs_sync_daemon eth0 VI_1 id"),
			want:  eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon: missing value after "id"` + ignored},
			ka:    []string{"No value specified for lvs_sync_daemon id, defaulting to vrid"},
		},
		{
			name:  "a second instance",
			src:   syncd("lvs_sync_daemon eth0 VI_1 inst VI_2"),
			want:  eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51}),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon instance already given as VI_1; another: "VI_2"` + ignored},
			ka:    []string{"lvs_sync_daemon vrrp instance has already been specified as VI_1 - ignoring"},
		},
		{
			name:  "no interface",
			src:   syncd("lvs_sync_daemon"),
			warns: []string{`keepalived.conf:2: missing interface after "lvs_sync_daemon"` + ignored},
			ka:    []string{"lvs_sync_daemon requires interface"},
		},
		{
			name:  "an interface name too long for the kernel",
			src:   syncd("lvs_sync_daemon abcdefghijklmnop inst VI_1"),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon interface name longer than 15 bytes (the kernel's limit): "abcdefghijklmnop"` + ignored},
			ka:    []string{"lvs_sync_daemon interface name 'abcdefghijklmnop' too long - ignoring"},
		},
		{
			name:  "lvs_sync_daemon twice",
			src:   syncd("lvs_sync_daemon eth0 inst VI_1\n lvs_sync_daemon eth1"),
			want:  eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51}),
			warns: []string{`keepalived.conf:3: lvs_sync_daemon already set at keepalived.conf:2; ignoring this one: "lvs_sync_daemon"`},
			ka:    []string{"lvs_sync_daemon has already been specified as eth0 VI_1 - ignoring"},
		},
		{
			// keepalived -t says nothing: it stops before it looks
			// the instance up (vrrp_complete_init), which a running
			// keepalived does: "Unable to find vrrp instance VI_9 for
			// lvs_syncd - clearing lvs_syncd config".
			name:  "an unknown instance",
			src:   syncd("lvs_sync_daemon eth0 inst VI_9 id 3"),
			warns: []string{`keepalived.conf:2: lvs_sync_daemon: no vrrp_instance called "VI_9": lvs_sync_daemon ignored: no sync daemon runs, as keepalived runs none`},
		},
		{
			// Sync id 0, not the VRID: keepalived does not look the
			// instance up by name then.
			name:  "lvs_sync_daemon_interface",
			src:   vrrp1(" lvs_sync_daemon_interface eth1"),
			want:  &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncIDSet: true, Pos: at(4)},
			warns: []string{`keepalived.conf:4: (VI_1) deprecated, use lvs_sync_daemon in global_defs: "lvs_sync_daemon_interface"`},
			ka: []string{
				"(VI_1) Specifying lvs_sync_daemon_interface against a vrrp is deprecated.",
				"Please use global lvs_sync_daemon",
			},
		},
		{
			// keepalived reads global_defs first, wherever it is.
			name: "lvs_sync_daemon_interface, and lvs_sync_daemon below it",
			src:  vrrp1(" lvs_sync_daemon_interface eth1") + "global_defs {\n lvs_sync_daemon eth0 inst VI_1\n}\n",
			want: eth0(LVSSyncDaemon{Instance: "VI_1", SyncID: 51, Pos: at(10)}),
			warns: []string{
				`keepalived.conf:4: (VI_1) deprecated, use lvs_sync_daemon in global_defs: "lvs_sync_daemon_interface"`,
				`keepalived.conf:4: (VI_1) lvs_sync_daemon already set at keepalived.conf:10; ignoring this one: "lvs_sync_daemon_interface"`,
			},
			ka: []string{"(VI_1) lvs_sync_daemon_interface has already been specified as eth0 - ignoring"},
		},
		{
			name: "lvs_sync_daemon_interface in two instances",
			src:  vrrp1(" lvs_sync_daemon_interface eth1") + vi2.Replace(vrrp1(" lvs_sync_daemon_interface eth2")),
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncIDSet: true, Pos: at(4)},
			warns: []string{
				`keepalived.conf:4: (VI_1) deprecated, use lvs_sync_daemon in global_defs: "lvs_sync_daemon_interface"`,
				`keepalived.conf:12: (VI_2) deprecated, use lvs_sync_daemon in global_defs: "lvs_sync_daemon_interface"`,
				`keepalived.conf:12: (VI_2) lvs_sync_daemon already set at keepalived.conf:4; ignoring this one: "lvs_sync_daemon_interface"`,
			},
			ka: []string{"(VI_2) lvs_sync_daemon_interface has already been specified as eth1 - ignoring"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.src)
			assert.Equal(t, tc.want, cfg.Global.LVSSyncDaemon)
			assert.Equal(t, tc.warns, warningStrings(cfg))
			if len(tc.warns) > 0 {
				parseErrors(t, tc.src) // --strict refuses it
			}
			requireRoundTrip(t, "keepalived.conf", []byte(tc.src))

			says := keepalivedSays(t, tc.src)
			for _, ka := range tc.ka {
				assert.Contains(t, says, ka)
			}
			if len(tc.ka) == 0 {
				assert.NotContains(t, says, "lvs_sync")
				assert.NotContains(t, says, "syncid")
			}
		})
	}
}

// TestLVSSyncDaemonErrors: where keepalived stops ("is missing a
// parameter": it exits), xlb refuses the file.
func TestLVSSyncDaemonErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want, ka string
	}{
		{
			name: "inst without a name",
			src:  "global_defs {\n lvs_sync_daemon eth0 inst\n}\n" + vrrp1(""),
			want: `keepalived.conf:2: lvs_sync_daemon: missing instance name after "inst"`,
			ka:   "is missing a parameter after keyword `inst`",
		},
		{
			name: "lvs_sync_daemon_interface without an interface",
			src:  vrrp1(" lvs_sync_daemon_interface"),
			want: `keepalived.conf:4: missing value after "lvs_sync_daemon_interface"`,
			ka:   "is missing a parameter after keyword `lvs_sync_daemon_interface`",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFiles(map[string]string{"keepalived.conf": tc.src})
			var list ErrorList
			require.ErrorAs(t, err, &list)
			require.Len(t, list, 1)
			assert.Equal(t, tc.want, list[0].Error())
			assert.Contains(t, keepalivedSays(t, tc.src), tc.ka)
		})
	}
}
