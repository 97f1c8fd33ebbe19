package election

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/xlbproject/xlb/internal/nlretry"
	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/config"
)

// The check's verdicts against what two real keepalived 2.2.7 directors
// do: each in a network namespace, the two joined by a veth, each tracking
// a vrrp_script that fails once the test writes a file. The check reads
// the same two files; when A's script fails, the VIP must end up where it
// said.

const (
	interopVIP = "10.91.0.100"
	// settleWait is how long after A's priority drops B, priority 120,
	// would have taken over: Master_Down_Interval (3 × 1 s + 0.53 s skew)
	// from A's first lower advert, plus margin. A takeover is waited for
	// up to takeoverWait.
	settleWait   = 5 * time.Second
	takeoverWait = 8 * time.Second
)

func TestAgainstKeepalived(t *testing.T) {
	if testing.Short() {
		t.Skip("keepalived interop skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, keepalived")
	}
	for _, tool := range []string{"ip", "keepalived"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s, which tools/deps.sh test installs (apt-get install iproute2 keepalived): %v", tool, err)
		}
	}
	for _, tc := range []interopCase{
		{"weight larger than the gap: the VIP moves", -60, "secret", verdictMoves},
		{"weight not larger than the gap: the failed MASTER keeps the VIP", -20, "secret", verdictStays},
		{"auth_pass differs: both hold the VIP", -60, "other", verdictSplit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pairAgainstKeepalived(t, tc)
		})
	}
}

type verdict int

const (
	verdictMoves verdict = iota // A's script fails: B takes the VIP
	verdictStays                // A's script fails: A keeps it
	verdictSplit                // both are MASTER from the start
)

type interopCase struct {
	name   string
	weight int
	passB  string // B's auth_pass; A's is "secret"
	want   verdict
}

func pairAgainstKeepalived(t *testing.T, tc interopCase) {
	dir := t.TempDir()
	confs := map[string]string{}
	for _, d := range []struct {
		name, ifname, state, pass string
		prio                      int
	}{{"a", "ea", "MASTER", "secret", 150}, {"b", "eb", "BACKUP", tc.passB, 120}} {
		confs[d.name] = filepath.Join(dir, d.name+".conf")
		// A script of its own: keepalived runs a program under its real
		// path, which turns a busybox applet (the VM guest's
		// /usr/bin/test) into plain busybox.
		chk := filepath.Join(dir, "chk-"+d.name)
		require.NoError(t, os.WriteFile(chk, []byte("#!/bin/sh\n[ ! -e "+filepath.Join(dir, "fail-"+d.name)+" ]\n"), 0o755))
		// Interfaces of other names on each side: the check matches
		// instances by VRID, family and VIPs.
		text := fmt.Sprintf(`global_defs {
    router_id %[1]s
    vrrp_garp_master_delay 0
}
vrrp_script chk {
    script "%[2]s"
    interval 1
    weight %[3]d
}
vrrp_instance VI_1 {
    state %[4]s
    interface %[5]s
    virtual_router_id 51
    priority %[6]d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass %[8]s
    }
    virtual_ipaddress {
        %[7]s/24
    }
    track_script {
        chk
    }
}
`, d.name, chk, tc.weight, d.state, d.ifname, d.prio, interopVIP, d.pass)
		require.NoError(t, os.WriteFile(confs[d.name], []byte(text), 0o644))
	}

	// What the check predicts for A's script failing.
	var ds []Director
	for _, name := range []string{"a", "b"} {
		cfg, err := config.Parse(confs[name])
		require.NoError(t, err)
		ds = append(ds, Director{Name: confs[name], Config: cfg})
	}
	rep := Check(ds)
	predicted := verdictMoves
	for _, f := range rep.Findings {
		if f.Kind == KindStaysMaster && strings.Contains(f.Message, confs["a"]+":10 VI_1") {
			predicted = verdictStays
		}
	}
	if slices.ContainsFunc(rep.Findings, func(f Finding) bool { return f.Kind == KindSplit && f.Severity == Error }) {
		predicted = verdictSplit
	}
	require.Equal(t, tc.want, predicted, "the check's verdict; findings: %v", rep.Findings)

	// The two directors.
	suffix := testutil.Suffix()
	nsA, nsB := newNS(t, "xlbel-a-"+suffix), newNS(t, "xlbel-b-"+suffix)
	require.NoError(t, nsA.IP("link", "add", "ea", "type", "veth", "peer", "name", "eb", "netns", nsB.Name))
	require.NoError(t, nsA.IP("addr", "add", "10.91.0.1/24", "dev", "ea"))
	require.NoError(t, nsB.IP("addr", "add", "10.91.0.2/24", "dev", "eb"))
	require.NoError(t, nsA.IP("link", "set", "ea", "up"))
	require.NoError(t, nsB.IP("link", "set", "eb", "up"))
	hasVIP := map[string]func() bool{"a": vipOn(t, nsA, "ea"), "b": vipOn(t, nsB, "eb")}

	logA := startKeepalived(t, nsA, dir, "a", confs["a"])
	logB := startKeepalived(t, nsB, dir, "b", confs["b"])
	if predicted == verdictSplit {
		waitUntil(t, 10*time.Second, "both hold the VIP", func() bool { return hasVIP["a"]() && hasVIP["b"]() })
		// keepalived (vrrp.c vrrp_check_packet) says why.
		waitUntil(t, 3*time.Second, "B's keepalived: received an invalid passwd", func() bool { return strings.Contains(logB.String(), "received an invalid passwd") })
		held := time.Now()
		for time.Since(held) < 2*time.Second {
			require.True(t, hasVIP["a"]() && hasVIP["b"](), "a MASTER stepped down %v after both held the VIP", time.Since(held))
			time.Sleep(50 * time.Millisecond)
		}
		return
	}
	waitUntil(t, 10*time.Second, "A (priority 150, state MASTER) holds the VIP", func() bool { return hasVIP["a"]() && !hasVIP["b"]() })

	require.NoError(t, os.WriteFile(filepath.Join(dir, "fail-a"), nil, 0o644))
	// keepalived (vrrp_track.c) says so when the script's failure lands.
	lowered := fmt.Sprintf("(VI_1) Changing effective priority from 150 to %d", 150+tc.weight)
	waitUntil(t, 5*time.Second, "A's keepalived: "+lowered, func() bool { return strings.Contains(logA.String(), lowered) })
	failedAt := time.Now()
	if predicted == verdictMoves {
		waitUntil(t, takeoverWait, "B takes the VIP over", func() bool { return hasVIP["b"]() && !hasVIP["a"]() })
		return
	}
	for time.Since(failedAt) < settleWait {
		require.True(t, hasVIP["a"](), "A lost the VIP %v after its script failed, the check said it keeps it", time.Since(failedAt))
		require.False(t, hasVIP["b"](), "B took the VIP %v after A's script failed, the check said it does not", time.Since(failedAt))
		time.Sleep(50 * time.Millisecond)
	}
}

func newNS(t *testing.T, name string) *testutil.NS {
	t.Helper()
	ns, err := testutil.NewNS(name)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Logf("delete netns %s: %v", name, err)
		}
	})
	return ns
}

// vipOn says whether the VIP is on ifname in ns.
func vipOn(t *testing.T, ns *testutil.NS, ifname string) func() bool {
	t.Helper()
	h, err := ns.Netlink()
	require.NoError(t, err)
	t.Cleanup(h.Close)
	want := netip.MustParseAddr(interopVIP)
	return func() bool {
		l, err := h.LinkByName(ifname)
		require.NoError(t, err)
		addrs, err := nlretry.Dump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
		require.NoError(t, err)
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == want {
				return true
			}
		}
		return false
	}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startKeepalived runs keepalived on conf in ns (testutil.StartKeepalived)
// and returns its log.
func startKeepalived(t *testing.T, ns *testutil.NS, dir, name, conf string) *testutil.LockedBuffer {
	t.Helper()
	return testutil.StartKeepalived(t, ns, dir, name, conf).Log
}
