package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// realWarnings are the warnings for each file of testdata/real (see its
// README.md): mostly keepalived features xlb does not implement. Files not
// listed must give none.
var realWarnings = map[string][]string{
	"keepalived.conf.SSL_GET": {
		`13: initial state MASTER is incompatible with AH authentication; using BACKUP for "VI_1"`,
	},
	"keepalived.conf.conditional_conf": {
		// The config id is the host name: the @high and @low lines are
		// skipped, as keepalived skips them without -i.
		`6: no script set, removing vrrp_script "check_VI_0"`,
		`25: (VI_0) track_script not found, ignoring: "check_VI_0"`,
	},
	"keepalived.conf.vrrp.lvs_syncd": {
		// keepalived 2.2.7 too: "Unknown keyword 'VI_2'", and the group
		// is dropped.
		`4: unknown keyword in vrrp_sync_group: "VI_2": ignored, as keepalived ignores it`,
		`5: unknown keyword in vrrp_sync_group: "VI_3": ignored, as keepalived ignores it`,
		// keepalived 2.2.7: "(VI_1) Specifying lvs_sync_daemon_interface
		// against a vrrp is deprecated."
		`11: (VI_1) deprecated, use lvs_sync_daemon in global_defs: "lvs_sync_daemon_interface"`,
		`3: sync group has no vrrp_instance; removing "VG1"`,
	},
	"keepalived.conf.fwmark": {
		// keepalived 2.2.7: "Warning: Virtual server FWM 1: protocol
		// specified for fwmark - protocol will be ignored".
		`7: protocol specified for fwmark - protocol will be ignored for "fwmark 1"`,
	},
	"keepalived.conf.track_interface": {
		`7: keepalived block not implemented by xlb, ignored: "static_routes"`,
		`28: keepalived block not implemented by xlb, ignored: "virtual_routes"`,
	},
	"keepalived.conf.vrrp.routes": {
		`7: keepalived block not implemented by xlb, ignored: "static_routes"`,
		`25: keepalived block not implemented by xlb, ignored: "virtual_routes"`,
	},
	"keepalived.conf.vrrp.rules": {
		`9: keepalived block not implemented by xlb, ignored: "static_rules"`,
		`24: keepalived block not implemented by xlb, ignored: "virtual_rules"`,
	},
	"keepalived.conf.vrrp.static_ipaddress": {
		`7: keepalived block not implemented by xlb, ignored: "static_ipaddress"`,
		`21: keepalived block not implemented by xlb, ignored: "virtual_routes"`,
	},
}

func realFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/real/*")
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".md") {
			out = append(out, f)
		}
	}
	require.Len(t, out, 26)
	return out
}

func TestRealWorld(t *testing.T) {
	for _, f := range realFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Parse(f)
			require.NoError(t, err)
			var got []string
			for _, w := range cfg.Warnings {
				require.Equal(t, f, w.File)
				got = append(got, strconv.Itoa(w.Line)+": "+strings.TrimPrefix(w.String(), w.File+":"+strconv.Itoa(w.Line)+": "))
			}
			assert.Equal(t, realWarnings[filepath.Base(f)], got)
		})
	}
}

// TestRealWorldGroups: keepalived's samples of a virtual_server_group and
// a fwmark service, read into the IPVS services keepalived makes of them.
func TestRealWorldGroups(t *testing.T) {
	cfg, err := Parse("testdata/real/keepalived.conf.virtual_server_group")
	require.NoError(t, err)
	require.Len(t, cfg.VirtualServers, 1)
	vs := cfg.VirtualServers[0]
	assert.Equal(t, "VSG_1", vs.Group)
	assert.Equal(t, "group VSG_1", vs.Name())
	var got []string
	for _, e := range vs.Services() {
		if e.FWMark != 0 {
			got = append(got, fmt.Sprintf("fwmark %d IPv%d %s", e.FWMark, e.Family, e.Addr))
		} else {
			got = append(got, netip.AddrPortFrom(e.Addr, e.Port).String())
		}
	}
	want := []string{"10.0.0.1:8080", "10.0.0.2:80", "192.168.200.1:1358"}
	for i := 3; i <= 10; i++ {
		want = append(want, fmt.Sprintf("192.168.200.%d:80", i))
	}
	want = append(want, "fwmark 1 IPv4 0.0.0.0", "fwmark 2 IPv4 0.0.0.0")
	assert.Equal(t, want, got)
	assert.Equal(t, lvs.TCP, vs.Protocol)
	assert.Equal(t, 50*time.Second, vs.PersistenceTimeout)
	assert.Equal(t, uint16(1358), vs.Reals[0].Port, "a NAT real keeps its port")

	cfg, err = Parse("testdata/real/keepalived.conf.fwmark")
	require.NoError(t, err)
	vs = cfg.VirtualServers[0]
	assert.Equal(t, uint32(1), vs.FWMark)
	assert.Equal(t, []ServiceEntry{{Addr: netip.IPv4Unspecified(), FWMark: 1, Family: 4}}, vs.Services())
	assert.Equal(t, lvs.Protocol(0), vs.Protocol, "a fwmark service has no protocol")
	assert.Equal(t, uint16(0), vs.Reals[0].Port, "no port: the packet's own")
	assert.Equal(t, 900*time.Second, vs.PersistenceTimeout)
}

func TestRealWorldValues(t *testing.T) {
	parse := func(name string) *Config {
		t.Helper()
		cfg, err := Parse(filepath.Join("testdata/real", name))
		require.NoError(t, err)
		return cfg
	}

	t.Run("reference example", func(t *testing.T) {
		cfg := parse("reference-example.conf")
		assert.Equal(t, "LB1", cfg.Global.RouterID)
		assert.True(t, cfg.Global.EnableScriptSecurity)
		assert.Equal(t, "keepalived_script", cfg.Global.ScriptUser)

		s := cfg.Script("chk_haproxy")
		require.NotNil(t, s)
		assert.Equal(t, []string{"/usr/bin/pgrep", "-x", "haproxy"}, s.Script.Args)
		assert.Equal(t, -60, s.Weight)
		assert.Equal(t, 2*time.Second, s.Interval)
		assert.Equal(t, time.Second, s.Timeout)

		v := cfg.Instance("VI_1")
		require.NotNil(t, v)
		assert.Equal(t, StateBackup, v.State)
		assert.Equal(t, uint8(150), v.Priority)
		assert.True(t, v.Nopreempt)
		assert.Equal(t, netip.MustParseAddr("10.0.0.11"), v.UnicastSrcIP)
		assert.Equal(t, []UnicastPeer{{Addr: netip.MustParseAddr("10.0.0.12"), MaxTTL: 255}}, v.UnicastPeers)
		assert.Equal(t, AuthPass, v.AuthType)
		assert.Equal(t, "s3cr3t", v.AuthPass)
		assert.Equal(t, []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.100/24"), Dev: "eth0", Label: "eth0:vip"}}, v.VirtualIPs)
		assert.Equal(t, []TrackScript{{Name: "chk_haproxy", Weight: -60}}, v.TrackScripts)
		assert.Equal(t, []string{"/etc/keepalived/notify.sh", "fault"}, v.NotifyFault.Args)

		require.Len(t, cfg.VirtualServers, 1)
		vs := cfg.VirtualServers[0]
		assert.Equal(t, netip.MustParseAddr("10.0.0.100"), vs.Addr)
		assert.Equal(t, uint16(80), vs.Port)
		assert.Equal(t, lvs.TCP, vs.Protocol)
		assert.Equal(t, "wlc", vs.Scheduler)
		assert.Equal(t, lvs.DR, vs.Forward)
		assert.Equal(t, 300*time.Second, vs.PersistenceTimeout)
		assert.Equal(t, 6*time.Second, vs.DelayLoop)
		assert.Equal(t, &SorryServer{Addr: netip.MustParseAddr("10.0.0.200"), Port: 80, Forward: lvs.DR}, vs.SorryServer)
		require.Len(t, vs.Reals, 3)

		http := vs.Reals[0].Checkers[0]
		assert.Equal(t, 3, vs.Reals[0].Weight)
		assert.Equal(t, HTTPGet, http.Kind)
		assert.Equal(t, []URL{
			{Path: "/health", StatusCodes: []StatusRange{{200, 200}}},
			{Path: "/index.html", Digest: "9b3a0c85a887a256d6939da88aabd8cd", StatusCodes: []StatusRange{{200, 299}}},
		}, http.URLs)
		assert.Equal(t, 3*time.Second, http.ConnectTimeout)
		assert.Equal(t, 3, http.Retry)
		assert.Equal(t, 2*time.Second, http.DelayBeforeRetry)
		assert.Equal(t, 6*time.Second, http.DelayLoop)

		tcp := vs.Reals[1].Checkers[0]
		assert.Equal(t, TCPCheck, tcp.Kind)
		assert.Equal(t, uint16(80), tcp.ConnectPort)
		assert.Equal(t, 2, tcp.Retry)

		misc := vs.Reals[2].Checkers[0]
		assert.Equal(t, []string{"/usr/local/bin/check_rs.sh", "10.0.0.23"}, misc.Misc.Args)
		assert.Equal(t, 5*time.Second, misc.MiscTimeout)
		assert.True(t, misc.MiscDynamic)
		assert.Equal(t, 0, misc.Retry)
	})

	t.Run("quorum", func(t *testing.T) {
		vs := parse("keepalived.conf.quorum").VirtualServers[0]
		assert.Equal(t, "wrr", vs.Scheduler)
		assert.True(t, vs.Alpha)
		assert.True(t, vs.Omega)
		assert.Equal(t, uint32(7), vs.Quorum)
		assert.Equal(t, uint32(2), vs.Hysteresis)
		assert.Equal(t, []string{"/usr/local/sbin/quorum-up.sh"}, vs.QuorumUp.Args)
		assert.Equal(t, 900*time.Second, vs.PersistenceTimeout)
		require.Len(t, vs.Reals, 10)
		for i, rs := range vs.Reals {
			assert.Equal(t, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), rs.Addr)
			assert.Equal(t, uint16(8080), rs.Port)
			assert.True(t, rs.Alpha, "alpha is inherited")
			c := rs.Checkers[0]
			assert.Equal(t, uint16(80), c.ConnectPort)
			assert.Equal(t, 3*time.Second, c.ConnectTimeout)
			assert.Equal(t, 1, c.Retry)
			assert.Equal(t, time.Second, c.DelayBeforeRetry)
		}
	})

	t.Run("status codes", func(t *testing.T) {
		c := parse("keepalived.conf.status_code").VirtualServers[0].Reals[0].Checkers[0]
		assert.Equal(t, SSLGet, c.Kind)
		assert.Equal(t, []StatusRange{{200, 299}, {400, 499}, {503, 503}, {505, 505}}, c.URLs[0].StatusCodes)
		assert.Equal(t, []StatusRange{{200, 200}}, c.URLs[1].StatusCodes)
	})

	t.Run("virtualhost", func(t *testing.T) {
		c := parse("keepalived.conf.virtualhost").VirtualServers[0].Reals[0].Checkers[0]
		assert.Equal(t, "www.firewall.loc", c.URLs[0].Virtualhost)
		assert.Equal(t, "www.firewall.loc", c.URLs[1].Virtualhost)
	})

	t.Run("inhibit and sorry server", func(t *testing.T) {
		assert.True(t, parse("keepalived.conf.inhibit").VirtualServers[0].Reals[0].InhibitOnFailure)
		vs := parse("keepalived.conf.sample").VirtualServers[0]
		assert.Equal(t, &SorryServer{Addr: netip.MustParseAddr("192.168.200.200"), Port: 1358, Forward: lvs.NAT}, vs.SorryServer)
	})

	t.Run("misc check arguments", func(t *testing.T) {
		c := parse("keepalived.conf.misc_check_arg").VirtualServers[0].Reals[0].Checkers[0]
		assert.Equal(t, []string{"/usr/local/bin/script.sh", "arg1", "arg2"}, c.Misc.Args)
		assert.Equal(t, 6*time.Second, c.MiscTimeout) // the virtual server's delay_loop
	})

	t.Run("IPv6", func(t *testing.T) {
		vs := parse("keepalived.conf.IPv6").VirtualServers[0]
		assert.Equal(t, netip.MustParseAddr("ae00::1"), vs.Addr)
		assert.Equal(t, lvs.Netmask(128), vs.PersistenceGranularity)
		assert.Equal(t, uint16(25), vs.Reals[0].Port) // NAT keeps its own port
		require.Len(t, vs.Reals[0].Checkers, 1)
		c := vs.Reals[0].Checkers[0]
		assert.Equal(t, SMTPCheck, c.Kind)
		assert.Equal(t, "foo.bar.com", c.HeloName)
		assert.Equal(t, netip.AddrPortFrom(netip.MustParseAddr("ae00::10"), 25), netip.AddrPortFrom(c.ConnectIP, c.ConnectPort))
		assert.Equal(t, 3*time.Second, c.ConnectTimeout)
		assert.Equal(t, 3, c.Retry)
	})

	t.Run("SSL_GET sample", func(t *testing.T) {
		cfg := parse("keepalived.conf.SSL_GET")
		v := cfg.Instances[0]
		assert.Equal(t, StateBackup, v.State) // AH: keepalived refuses to start as MASTER
		assert.Equal(t, AuthAH, v.AuthType)
		assert.Len(t, v.VirtualIPs, 3)
		require.Len(t, cfg.VirtualServers, 2)
		assert.Equal(t, SSLGet, cfg.VirtualServers[0].Reals[0].Checkers[0].Kind)
		assert.Equal(t, HTTPGet, cfg.VirtualServers[1].Reals[0].Checkers[0].Kind)
	})

	t.Run("vrrp", func(t *testing.T) {
		cfg := parse("keepalived.conf.vrrp")
		require.Len(t, cfg.Instances, 4)
		v := cfg.Instances[0]
		assert.Equal(t, StateMaster, v.State)
		assert.Equal(t, uint8(100), v.Priority)
		assert.Equal(t, 10*time.Second, v.GarpMasterDelay)
		assert.Equal(t, VirtualIP{Prefix: netip.MustParsePrefix("192.168.200.18/32"), Label: "eth0:1"}, v.VirtualIPs[3])
		assert.Equal(t, uint8(50), cfg.Instances[1].Priority)
		assert.Equal(t, StateBackup, cfg.Instances[1].State)
	})

	t.Run("localcheck", func(t *testing.T) {
		cfg := parse("keepalived.conf.vrrp.localcheck")
		assert.Equal(t, []string{"</dev/tcp/127.0.0.1/80"}, cfg.Script("chk_http_port").Script.Args)
		assert.Equal(t, []string{"killall", "-0", "sshd"}, cfg.Script("chk_sshd").Script.Args)
		v := cfg.Instance("VI_1")
		assert.Equal(t, []TrackInterface{{Name: "eth1", Weight: 2}, {Name: "eth2", Weight: -2}, {Name: "eth3"}}, v.TrackInterfaces)
		assert.Equal(t, []TrackScript{
			{Name: "chk_sshd", Weight: -4}, {Name: "chk_haproxy", Weight: 2}, {Name: "chk_http_port", Weight: -2},
			{Name: "chk_https_port", Weight: -2}, {Name: "chk_smtp_port", Weight: -2},
		}, v.TrackScripts)
		assert.Len(t, cfg.Instances, 9)
	})

	t.Run("sync groups", func(t *testing.T) {
		cfg := parse("keepalived.conf.vrrp.sync")
		require.Len(t, cfg.SyncGroups, 2)
		assert.Equal(t, []string{"VI_1", "VI_2", "VI_5", "VI_6", "VI_7", "VI_8", "VI_9"}, cfg.SyncGroups[0].Instances)
		assert.Equal(t, []string{"/usr/local/bin/vrrp.back", "arg1", "arg2"}, cfg.SyncGroups[0].NotifyBackup.Args)
		assert.Equal(t, []string{"VI_3", "VI_4"}, cfg.SyncGroups[1].Instances)

		scripts := parse("keepalived.conf.vrrp.scripts")
		assert.Equal(t, []string{"/usr/local/bin/vrrp.sh", "BACKUP", "VI_1"}, scripts.Instance("VI_1").NotifyBackup.Args)
	})

	t.Run("lvs_sync_daemon_interface", func(t *testing.T) {
		cfg := parse("keepalived.conf.vrrp.lvs_syncd")
		assert.Equal(t, &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncIDSet: true,
			Pos: Pos{File: "testdata/real/keepalived.conf.vrrp.lvs_syncd", Line: 11}}, cfg.Global.LVSSyncDaemon)
	})

	t.Run("conditional config", func(t *testing.T) {
		v := parse("keepalived.conf.conditional_conf").Instance("VI_0")
		assert.Equal(t, 3, v.Version)
		assert.Equal(t, 12*time.Second, v.AdvertInterval)
		assert.True(t, v.UseVMAC)
		assert.Equal(t, []TrackInterface{{Name: "eth3"}, {Name: "eth2", Weight: 20}}, v.TrackInterfaces)
	})
}

// TestRealWorldRoundTrip formats each real file and reads it back.
func TestRealWorldRoundTrip(t *testing.T) {
	for _, f := range realFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			requireRoundTrip(t, f, data)
		})
	}
}
