package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/daemon"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

// xlb run's flags become the daemon's Options; the daemon itself is
// tested in pkg/daemon.
func TestRunFlags(t *testing.T) {
	o, code := runOptions(env{stdout: io.Discard, stderr: io.Discard}, []string{"-f", "/etc/k.conf", "-i", "eth0", "--interface", "eth1",
		"--pin-dir", "/sys/fs/bpf/x", "--socket", "/tmp/x.sock", "--dataplane", "xdp", "--xdp-mode", "generic",
		"--ipvs-state", "/tmp/s.json", "--keep-dataplane", "--max-conns", "1024", "--metrics", ":9610",
		"--max-services", "10000", "--max-reals", "320000", "--max-sched-entries", "4000000", "--max-half-open", "2048",
		"--drop-entry", "1", "--drop-packet", "2", "--secure-tcp", "3", "--amemthresh", "100", "--am-droprate", "7",
		"--sloppy-tcp", "--sloppy-sctp", "--bgp-config", "/etc/gobgp.toml", "--bgp-vips", "10.0.0.0/24, 10.1.0.7,2001:db8::1",
		"--bgp-drain", "3s", "--mh-tab-index", "13", "--sync-wait", "4s", "--xlbadm-state", "/tmp/x.rules"})
	require.Equal(t, -1, code)
	require.NotNil(t, o.Logger)
	o.Logger = nil
	assert.Equal(t, daemon.Options{ConfigFile: "/etc/k.conf", Interfaces: []string{"eth0", "eth1"}, PinDir: "/sys/fs/bpf/x",
		Socket: "/tmp/x.sock", Dataplane: "xdp", XDPMode: dataplane.XDPGeneric, IPVSState: "/tmp/s.json", KeepDataplane: true,
		MaxConns: 1024, Metrics: ":9610", MaxServices: 10000, MaxReals: 320000, MaxSchedEntries: 4000000, MaxHalfOpen: 2048,
		Defence:   dataplane.Defence{DropEntry: 1, DropPacket: 2, SecureTCP: 3, Threshold: 100, AmDropRate: 7},
		SloppyTCP: true, SloppySCTP: true, BGPConfig: "/etc/gobgp.toml", BGPDrain: 3 * time.Second, MHTabIndex: 13,
		SyncWait: 4 * time.Second, XlbadmState: "/tmp/x.rules",
		BGPVIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.1.0.7/32"), netip.MustParsePrefix("2001:db8::1/128")}}, o)

	o, code = runOptions(env{stdout: io.Discard, stderr: io.Discard}, []string{"--no-config", "-i", "eth0"})
	require.Equal(t, -1, code)
	assert.Empty(t, o.ConfigFile, "--no-config runs without a file")
	assert.Equal(t, "auto", o.Dataplane)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dataplane", "tc"}, `--dataplane: "tc" is not auto, xdp or ipvs`},
		{[]string{"--xdp-mode", "turbo"}, `--xdp-mode: "turbo" is not auto, native or generic`},
		{[]string{"--log-level", "loud"}, `--log-level: "loud" is not debug, info, warn or error`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
	} {
		var errOut strings.Builder
		_, code := runOptions(env{stdout: io.Discard, stderr: &errOut}, c.args)
		assert.Equal(t, 2, code, "%v", c.args)
		assert.Contains(t, errOut.String(), c.want)
	}
}

const checkConfig = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.77.1.100/32
    }
}
virtual_server 10.77.1.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 3
    }
}
`

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	require.NoError(t, os.WriteFile(good, []byte(checkConfig), 0o644))
	var out, errOut strings.Builder
	assert.Equal(t, 0, run(env{stdout: &out, stderr: &errOut}, []string{"check", "-f", good}), errOut.String())
	assert.Contains(t, out.String(), "OK: 1 virtual servers, 1 vrrp instances")

	bad := filepath.Join(dir, "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("virtual_server 10.0.0.1 80 {\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n        weigth 3\n    }\n}\n"), 0o644))
	out.Reset()
	errOut.Reset()
	// keepalived logs the misspelt keyword and runs without it; so does
	// xlb, unless --strict.
	assert.Equal(t, 0, run(env{stdout: &out, stderr: &errOut}, []string{"check", "-f", bad}))
	assert.Contains(t, errOut.String(), `warning: `+bad+`:6: unknown keyword in real_server: "weigth": ignored, as keepalived ignores it (did you mean "weight"?)`)
	assert.Contains(t, out.String(), "OK: 1 virtual servers, 0 vrrp instances, 1 warnings")
	// What keepalived acts on and xlb does not is marked as such.
	unlike := filepath.Join(dir, "unlike.conf")
	require.NoError(t, os.WriteFile(unlike, []byte("static_routes {\n    10.9.0.0/16 via 10.0.0.1\n}\n"), 0o644))
	errOut.Reset()
	assert.Equal(t, 0, run(env{stdout: io.Discard, stderr: &errOut}, []string{"check", "-f", unlike}))
	assert.Equal(t, "warning (unlike keepalived): "+unlike+`:1: keepalived block not implemented by xlb, ignored: "static_routes"`+"\n", errOut.String())
	errOut.Reset()
	assert.Equal(t, 1, run(env{stdout: io.Discard, stderr: &errOut}, []string{"check", "--strict", "-f", bad}))
	assert.Equal(t, "error: "+bad+`:6: unknown keyword in real_server: "weigth"`+"\n", errOut.String())

	// TUN is forwarded by XDP; GUE's optional checksums are IPVS's only.
	tun := filepath.Join(dir, "tun.conf")
	require.NoError(t, os.WriteFile(tun, []byte("virtual_server 10.0.0.1 80 {\n    lb_algo wrr\n    lb_kind TUN\n    protocol TCP\n    real_server 10.0.0.2 80 {\n        weight 3\n        lvs_method TUN type gue port 6080\n    }\n}\n"), 0o644))
	out.Reset()
	assert.Equal(t, 0, run(env{stdout: &out, stderr: io.Discard}, []string{"check", "-f", tun}))
	assert.Contains(t, out.String(), "data plane: xdp: xlb run --dataplane auto runs this file on XDP")
	csum := filepath.Join(dir, "csum.conf")
	require.NoError(t, os.WriteFile(csum, []byte("virtual_server 10.0.0.1 80 {\n    lb_algo wrr\n    lb_kind TUN\n    protocol TCP\n    real_server 10.0.0.2 80 {\n        weight 3\n        lvs_method TUN type gue port 6080 csum\n    }\n}\n"), 0o644))
	errOut.Reset()
	assert.Equal(t, 1, run(env{stdout: io.Discard, stderr: &errOut}, []string{"check", "-f", csum, "--dataplane", "xdp"}))
	assert.Contains(t, errOut.String(), "csum.conf:5: real_server 10.0.0.2 80: tunnel checksum option csum is not supported by the XDP data plane (nocsum is)")
	out.Reset()
	assert.Equal(t, 0, run(env{stdout: &out, stderr: io.Discard}, []string{"check", "-f", csum, "--dataplane", "ipvs"}))
	assert.Contains(t, out.String(), "OK: 1 virtual servers")
	assert.Contains(t, out.String(), "data plane: ipvs (--dataplane ipvs)")
	// auto, the default: as xlb run, IPVS for what XDP cannot do, and why.
	out.Reset()
	assert.Equal(t, 0, run(env{stdout: &out, stderr: io.Discard}, []string{"check", "-f", csum}))
	assert.Contains(t, out.String(), "data plane: ipvs: xlb run --dataplane auto runs this file on IPVS, because XDP cannot: "+csum+":5: real_server 10.0.0.2 80: tunnel checksum option csum is not supported by the XDP data plane (nocsum is)\n")
	out.Reset()
	assert.Equal(t, 0, run(env{stdout: &out, stderr: io.Discard}, []string{"check", "-f", good}))
	assert.Contains(t, out.String(), "data plane: xdp: xlb run --dataplane auto runs this file on XDP")
}

func TestStatusWithoutDaemon(t *testing.T) {
	var errOut strings.Builder
	code := run(env{stdout: io.Discard, stderr: &errOut}, []string{"status", "--socket", filepath.Join(t.TempDir(), "none.sock")})
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "the xlb daemon is not running")
}

// xlb status as an operator reads it: the lines that say which service,
// which reals and which VRRP role.
func TestPrintStatus(t *testing.T) {
	st := control.Status{Dataplane: "xdp", Interfaces: map[string]string{"eth0": "native"}, ConfigFile: "/etc/keepalived/keepalived.conf",
		Services: []control.Service{{Protocol: "TCP", Addr: "10.77.1.100", Port: 80, Scheduler: "sh", Flags: "sh-port", QuorumUp: true, Standby: true,
			Reals: []control.Real{{Addr: "10.77.0.11", Port: 80, Forward: "DR", Weight: 3, EffectiveWeight: 3, Healthy: true, InService: true, Resolved: true, ActiveConns: 2}}}},
		VRRP: []control.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 100, State: "BACKUP"}}}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	assert.Contains(t, out, "Data plane: xdp (eth0 native)  config: /etc/keepalived/keepalived.conf")
	assert.Regexp(t, `TCP 10\.77\.1\.100:80 sh sh-port +quorum up, standby \(VRRP not MASTER\)`, out)
	assert.Regexp(t, `-> 10\.77\.0\.11:80 +DR +3 +up +in service +2 `, out)
	assert.Contains(t, out, "VI_1 on eth0, vrid 51, priority 100: BACKUP")

	st.Defence = &control.Defence{DropEntry: 1, DropPacket: 2, DropRate: 5, SecureTCP: 3, SecureTCPOn: true, Threshold: 16384,
		AmDropRate: 10, Room: 4000, RoomOf: 262144, RoomUnit: "flows", Flows: 258144, MaxFlows: 262144, HalfOpen: 65536, MaxHalfOpen: 65536, Dropped: 12}
	b.Reset()
	printStatus(&b, st)
	assert.Contains(t, b.String(), "Defence: drop_entry 1 when short of room, drop_packet 2 ENGAGED, 1 in 5, secure_tcp 3 always (engaged)")
	assert.Contains(t, b.String(), "room 4000 of 262144 flows free (amemthresh 16384, am_droprate 10); flows 258144/262144, half-open 65536/65536, drop_entry ended 12")
}

// The defence flags are IPVS's sysctls: modes 0-3, named in the error; not
// given, they leave an IPVS host's sysctls alone.
func TestDefenceFlags(t *testing.T) {
	var errOut strings.Builder
	_, code := runOptions(env{stdout: io.Discard, stderr: &errOut}, []string{"--drop-packet", "4"})
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut.String(), "--drop-packet 4: the modes are 0 (never), 1 (when short of room), 2 (engaged now) and 3 (always)")
	o, code := runOptions(env{stdout: io.Discard, stderr: io.Discard}, nil)
	assert.Equal(t, -1, code)
	assert.True(t, o.Defence.Keep)
	o, code = runOptions(env{stdout: io.Discard, stderr: io.Discard}, []string{"--secure-tcp", "1", "--amemthresh", "5000", "--max-half-open", "4096"})
	assert.Equal(t, -1, code)
	assert.False(t, o.Defence.Keep)
	assert.Equal(t, 1, o.Defence.SecureTCP)
	assert.Equal(t, 5000, o.Defence.Threshold)
	assert.EqualValues(t, 4096, o.MaxHalfOpen)
}

// xlb check counts a file against the data plane's sizes, its own or the
// ones given, naming the first virtual server that does not fit.
func TestCheckCapacity(t *testing.T) {
	var b strings.Builder
	for i := range 3 {
		fmt.Fprintf(&b, "virtual_server 10.0.0.%d 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 10.0.1.1 80 { weight 1 }\n    real_server 10.0.1.2 80 { weight 1 }\n}\n", i+1)
	}
	path := filepath.Join(t.TempDir(), "three.conf")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	var out, errOut strings.Builder
	assert.Equal(t, 0, run(env{stdout: &out, stderr: &errOut}, []string{"check", "-f", path}), errOut.String())
	errOut.Reset()
	assert.Equal(t, 1, run(env{stdout: io.Discard, stderr: &errOut}, []string{"check", "-f", path, "--dataplane", "xdp", "--max-services", "2"}))
	assert.Contains(t, errOut.String(), "three.conf:13: virtual_server 10.0.0.3 80: the configuration has 3 virtual servers; the XDP data plane holds 2 (--max-services)")
	errOut.Reset()
	assert.Equal(t, 1, run(env{stdout: io.Discard, stderr: &errOut}, []string{"check", "-f", path, "--dataplane", "xdp", "--max-reals", "5"}))
	assert.Contains(t, errOut.String(), "three.conf:13: virtual_server 10.0.0.3 80: the configuration has 6 real servers (counted per virtual server); the XDP data plane holds 5 (--max-reals)")
	// With auto, xlb run would step down to IPVS for it, and check says so.
	var out2 strings.Builder
	assert.Equal(t, 0, run(env{stdout: &out2, stderr: io.Discard}, []string{"check", "-f", path, "--max-reals", "5"}))
	assert.Contains(t, out2.String(), "data plane: ipvs: xlb run --dataplane auto runs this file on IPVS, because XDP cannot: ")
	assert.Contains(t, out2.String(), "the XDP data plane holds 5 (--max-reals)")
}

// xlb check refuses what xlb run refuses: use_vmac on an IPv6 instance,
// named at its line.
func TestCheckRefusesWhatRunRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmac.conf")
	require.NoError(t, os.WriteFile(path, []byte(`vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    use_vmac
    virtual_ipaddress {
        fd00::1
    }
}
`), 0o644))
	var errOut strings.Builder
	assert.Equal(t, 1, run(env{stdout: io.Discard, stderr: &errOut}, []string{"check", "-f", path}))
	assert.Contains(t, errOut.String(), "vmac.conf:1: use_vmac for an IPv6 instance is not supported by xlb yet")
}
