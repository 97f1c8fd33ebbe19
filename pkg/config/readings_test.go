package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// TestKeepalivedReadings: what keepalived 2.2.7 logs and carries on from,
// xlb reads the same way, with a warning on the same line that says what
// is done with it — and keepalived itself (keepalived -t) says so too.
// With --strict (Options.Strict) each is an error.
func TestKeepalivedReadings(t *testing.T) {
	rs := " real_server 10.0.0.2 80 {\n  weight 1\n }"
	for _, tc := range []struct {
		name  string
		src   string
		check func(t *testing.T, cfg *Config)
		warn  string // the warning xlb gives, on line
		line  int
		ka    string // what keepalived -t logs about it
	}{
		{
			name: "state EQUAL", src: vrrp1(" state EQUAL\n priority 100"),
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, StateBackup, cfg.Instances[0].State) },
			line:  4, warn: `state must be MASTER or BACKUP, got "EQUAL": read as BACKUP, as keepalived reads it`,
			ka: "unknown state 'EQUAL', defaulting to BACKUP",
		},
		{
			name: "state BACKUP after MASTER", src: vrrp1(" state MASTER\n state BACKUP\n priority 100"),
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, StateMaster, cfg.Instances[0].State) },
			line:  5, warn: `state previously set as MASTER; ignoring "BACKUP"`,
			ka: "state previously set as MASTER - ignoring BACKUP",
		},
		{
			name: "priority out of range, even with state MASTER", src: vrrp1(" state MASTER\n priority 300"),
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, uint8(100), cfg.Instances[0].Priority) },
			line:  5, warn: `priority must be an integer in [1, 255], got "300": read as 100, as keepalived reads it`,
			ka: "Priority not valid! must be between 1 & 255. Using default 100",
		},
		{
			name: "alpha and omega with a value", src: vs1(" alpha 1\n omega no\n" + rs),
			check: func(t *testing.T, cfg *Config) {
				assert.True(t, cfg.VirtualServers[0].Alpha)
				assert.True(t, cfg.VirtualServers[0].Omega, "keepalived turns omega on whatever follows")
			},
			line: 5, warn: `alpha takes no value in a virtual_server, got "1": read as on, as keepalived reads it`,
			// keepalived says nothing: it does not look at the value.
		},
		{
			name: "persistence_timeout 0", src: vs1(" persistence_timeout 0\n" + rs),
			check: func(t *testing.T, cfg *Config) { assert.Zero(t, cfg.VirtualServers[0].PersistenceTimeout) },
			line:  5, warn: `persistence_timeout must be an integer in [1, 2678400], got "0": ignored, as keepalived ignores it`,
			ka: "persistence_timeout invalid",
		},
		{
			name: "nb_get_retry in TCP_CHECK", src: vs1(" real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   nb_get_retry 7\n  }\n }"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, 1, cfg.VirtualServers[0].Reals[0].Checkers[0].Retry, "keepalived 2.2.7 ignores nb_get_retry in TCP_CHECK")
			},
			line: 7, warn: `unknown keyword in TCP_CHECK: "nb_get_retry": ignored, as keepalived ignores it (did you mean "retry"?)`,
			ka: "Unknown keyword 'nb_get_retry'",
		},
		{
			name: "nb_get_retry in HTTP_GET", src: vs1(" real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 7\n  }\n }"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, 7, cfg.VirtualServers[0].Reals[0].Checkers[0].Retry)
			},
			line: 10, warn: `deprecated, use retry: "nb_get_retry"`,
			ka: "nb_get_retry is deprecated - please use 'retry'",
		},
		{
			name: "misspelt keyword", src: vrrp1(" priority 100\n lvs_sync_daemon_inteface eth1"),
			check: func(t *testing.T, cfg *Config) { assert.Len(t, cfg.Instances, 1) },
			line:  5, warn: `unknown keyword in vrrp_instance: "lvs_sync_daemon_inteface": ignored, as keepalived ignores it (did you mean "lvs_sync_daemon_interface"?)`,
			ka: "Unknown keyword 'lvs_sync_daemon_inteface'",
		},
		{
			name: "lvs_sync_daemon id out of range", src: "global_defs {\n lvs_sync_daemon eth0 inst VI_1 id 300\n}\n" + vrrp1(" priority 100"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, uint8(51), cfg.Global.LVSSyncDaemon.SyncID, "the instance's VRID")
			},
			line: 2, warn: `lvs_sync_daemon id must be an integer in [0, 255], got "300": ignored, as keepalived ignores it`,
			ka: "Invalid syncid (300) - defaulting to vrid",
		},
		{
			name: "lvs_sync_daemon unknown option", src: "global_defs {\n lvs_sync_daemon eth0 port 9000 bogus\n}\n",
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, uint16(9000), cfg.Global.LVSSyncDaemon.Port) },
			line:  2, warn: `lvs_sync_daemon takes inst, id, maxlen, port, ttl or group, got "bogus": ignored, as keepalived ignores it`,
			ka: "Unknown option bogus specified for lvs_sync_daemon",
		},
		{
			name: "lvs_sync_daemon_interface in a vrrp_instance", src: vrrp1(" priority 100\n lvs_sync_daemon_interface eth1"),
			check: func(t *testing.T, cfg *Config) {
				sd := cfg.Global.LVSSyncDaemon
				require.NotNil(t, sd)
				assert.Equal(t, "VI_1", sd.Instance)
				assert.Zero(t, sd.SyncID, "keepalived does not take the VRID for it")
			},
			line: 5, warn: `(VI_1) deprecated, use lvs_sync_daemon in global_defs: "lvs_sync_daemon_interface"`,
			ka: "(VI_1) Specifying lvs_sync_daemon_interface against a vrrp is deprecated.",
		},
		{
			name: "instance keyword in global_defs", src: "global_defs {\n garp_master_delay 3\n}\n",
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, 5*time.Second, cfg.Global.VRRPGarpMasterDelay) },
			line:  2, warn: `unknown keyword in global_defs: "garp_master_delay": ignored, as keepalived ignores it (did you mean "vrrp_garp_master_delay"?)`,
			ka: "Unknown keyword 'garp_master_delay'",
		},
		{
			name: "junk at the top level", src: "junkline here\n",
			check: func(t *testing.T, cfg *Config) {},
			line:  1, warn: `unknown top-level keyword "junkline": ignored, as keepalived ignores it`,
			ka: "Unknown keyword 'junkline'",
		},
		{
			// keepalived removes it (vrrp_complete_instance): a failing
			// script then changes nothing, where weight 0 would FAULT the
			// whole group.
			name: "weighted track_script in a sync group",
			src: "vrrp_script chk {\n script /bin/true\n weight -20\n}\n" + vrrp1(" priority 100\n track_script {\n  chk\n }") +
				strings.NewReplacer("VI_1", "VI_2", "router_id 51", "router_id 52", "10.0.0.100", "10.0.0.101").Replace(vrrp1(" priority 100")) + "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\n",
			check: func(t *testing.T, cfg *Config) { assert.Empty(t, cfg.Instances[0].TrackScripts) },
			line:  5, warn: `(VI_1) ignoring tracked script with weights due to sync group G (without sync_group_tracking_weight): "chk"`,
			ka: "(VI_1) ignoring tracked script chk with weights due to SYNC group",
		},
		{
			name:  "vrrp_script defined after the instance that tracks it",
			src:   vrrp1(" priority 100\n track_script {\n  chk\n }") + "vrrp_script chk {\n script /bin/true\n weight -20\n}\n",
			check: func(t *testing.T, cfg *Config) { assert.Empty(t, cfg.Instances[0].TrackScripts) },
			line:  6, warn: `(VI_1) vrrp_script must be defined before it is tracked (keepalived: "track script not found"); ignoring "chk"`,
			ka: "(VI_1) track script chk not found, ignoring",
		},
		{
			name:  "an extra closing brace",
			src:   "global_defs {\n router_id a\n}\n}\n",
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, "a", cfg.Global.RouterID) },
			line:  4, warn: `closes no block: "}": ignored, as keepalived ignores an extra '}'`,
			ka: "Extra '}' found",
		},
		{
			name: "lb_kind in lower case",
			src:  "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind dr\n" + rs + "\n}\n",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, lvs.NAT, cfg.VirtualServers[0].Forward, "keepalived is case-sensitive: NAT")
			},
			line: 4, warn: `lb_kind must be NAT, DR, TUN or FNAT, got "dr": ignored, as keepalived ignores it`,
			ka: "PARSER : unknown [dr] routing method",
		},
		{
			name: "a gue tunnel without its port",
			src:  vs1(" real_server 10.0.0.2 80 {\n  lvs_method TUN type gue\n }"),
			check: func(t *testing.T, cfg *Config) {
				rs := cfg.VirtualServers[0].Reals[0]
				assert.Equal(t, lvs.TUN, rs.Forward, "keepalived sets the method before it reads the options")
				assert.Equal(t, lvs.Tunnel{}, rs.Tunnel)
			},
			line: 6, warn: `gue tunnels require port, otherwise cannot have port; the tunnel is ipip, as keepalived makes it: "type gue"`,
			ka: "gue tunnels require port, otherwise cannot have port.",
		},
		{
			name: "a checksum on an ipip tunnel",
			src:  vs1(" real_server 10.0.0.2 80 {\n  lvs_method TUN type ipip csum\n }"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, lvs.Tunnel{}, cfg.VirtualServers[0].Reals[0].Tunnel)
			},
			line: 6, warn: `ipip tunnels do not support checksum option; the tunnel is ipip, as keepalived makes it: "type ipip csum"`,
			ka: "ipip tunnels do not support checksum option.",
		},
		{
			name: "remcsum on a gre tunnel",
			src:  vs1(" real_server 10.0.0.2 80 {\n  lvs_method TUN type gre remcsum\n }"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, lvs.Tunnel{}, cfg.VirtualServers[0].Reals[0].Tunnel)
			},
			line: 6, warn: `gre tunnels do not support remote checksum option; the tunnel is ipip, as keepalived makes it: "type gre remcsum"`,
			ka: "gre tunnels do not support remote checksum option.",
		},
		{
			name: "an unknown tunnel type",
			src:  vs1(" real_server 10.0.0.2 80 {\n  lvs_method TUN type vxlan\n }"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, lvs.Tunnel{}, cfg.VirtualServers[0].Reals[0].Tunnel)
			},
			line: 6, warn: `unknown tunnel type (want ipip, gue or gre); the tunnel is ipip, as keepalived makes it: "vxlan"`,
			ka: "Unknown tunnel type vxlan for real server.",
		},
		{
			name: "an unknown tunnel option",
			src:  vs1(" real_server 10.0.0.2 80 {\n  lvs_method TUN bogus\n }"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, lvs.TUN, cfg.VirtualServers[0].Reals[0].Forward)
			},
			line: 6, warn: `invalid tunnel option; the tunnel is ipip, as keepalived makes it: "bogus"`,
			ka: "Invalid tunnel option bogus for real server.",
		},
		{
			name:  "an unknown scheduler",
			src:   "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo conhash\n lb_kind DR\n" + rs + "\n}\n",
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, "wlc", cfg.VirtualServers[0].Scheduler) },
			line:  3, warn: `unknown scheduler (want one of rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos): "conhash": ignored, as keepalived ignores it`,
			ka: "Invalid lvs_scheduler 'conhash' - ignoring",
		},
		{
			name:  "vrrp_instance defined twice",
			src:   vrrp1(" priority 100") + vrrp1(" priority 200"),
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, uint8(100), cfg.Instances[0].Priority) },
			line:  9, warn: `vrrp_instance already defined at keepalived.conf:1: "VI_1": skipped, as keepalived skips the second block`,
			ka: "vrrp instance VI_1 already defined",
		},
		{
			// Pasted from a web page: keepalived's isspace() is ASCII, so
			// the no-break spaces are part of the keyword.
			name: "no-break space indentation", src: vrrp1(" priority 100\n\u00a0\u00a0advert_int 3"),
			check: func(t *testing.T, cfg *Config) { assert.Equal(t, time.Second, cfg.Instances[0].AdvertInterval) },
			line:  5, warn: `unknown keyword in vrrp_instance: "\u00a0\u00a0advert_int": ignored, as keepalived ignores it (it holds a no-break space or another non-ASCII blank, which keepalived reads as part of the word)`,
			ka: "Unknown keyword '\u00a0\u00a0advert_int'",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.src)
			tc.check(t, cfg)
			want := "keepalived.conf:" + strconv.Itoa(tc.line) + ": " + tc.warn
			var w *Warning
			for i := range cfg.Warnings {
				if cfg.Warnings[i].String() == want {
					w = &cfg.Warnings[i]
				}
			}
			require.NotNil(t, w, "want %q in %q", want, warningStrings(cfg))

			_, err := parse(memSource{}, "keepalived.conf", []byte(tc.src), Options{ConfigID: "testhost", Strict: true})
			require.Error(t, err, "--strict refuses it")
			assert.Contains(t, err.Error(), w.strict().Error())

			if tc.ka != "" {
				assert.Contains(t, keepalivedSays(t, tc.src), tc.ka)
			}
		})
	}
}

// keepalivedSays runs keepalived -t on src and returns what it logs.
func keepalivedSays(t *testing.T, src string) string {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		bin = "/usr/sbin/keepalived"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("keepalived is needed to compare with (apt-get install keepalived; make test installs it): %v", err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(f, []byte(src), 0o644))
	args := []string{"-t", "-l", "-f", f, "-p", filepath.Join(dir, "k.pid"),
		"-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid")}
	cmd := exec.Command(bin, args...)
	if os.Geteuid() == 0 {
		// The texts name eth0, which keepalived -t requires to exist:
		// give it one of its own (a VM guest or a container may have
		// none).
		ns, err := testutil.NewNS("xlb-kat-" + testutil.Suffix())
		require.NoError(t, err)
		t.Cleanup(func() { _ = ns.Close() })
		if ns.IP("link", "add", "eth0", "type", "dummy") != nil {
			require.NoError(t, ns.IP("link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"))
		}
		cmd = ns.Command(bin, args...)
	}
	out, _ := cmd.CombinedOutput()
	return string(out)
}
