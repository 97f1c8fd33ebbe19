package daemon

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// vmacConfig is failoverConfig's instance with use_vmac.
func vmacConfig(prio int) string {
	return strings.Replace(failoverConfig(prio), "    advert_int 1\n", "    advert_int 1\n    use_vmac\n", 1)
}

// linkIn is the interface name of ns: its MAC and whether it is up, and
// the addresses on it.
func linkIn(t *testing.T, ns *testutil.NS, name string) (mac string, up bool, addrs string) {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns.Name, "-o", "link", "show", "dev", name).CombinedOutput()
	if err != nil {
		return "", false, ""
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			mac = f[i+1]
		}
	}
	up = strings.Contains(string(out), ",UP")
	a, err := exec.Command("ip", "-n", ns.Name, "-o", "addr", "show", "dev", name).CombinedOutput()
	require.NoError(t, err, "%s", a)
	return mac, up, string(a)
}

// use_vmac as keepalived 2.2.7 makes it: xlb, MASTER, puts the VIP on a
// macvlan vrrp.51 with the virtual router MAC 00:00:5e:00:01:33, and its
// adverts and gratuitous ARPs come from that MAC, so that a client's ARP
// entry for the VIP never changes; keepalived, BACKUP with use_vmac too,
// accepts the adverts. When xlb dies, keepalived takes the VIP and the same
// MAC, and requests go on without the client learning anything new. The
// VMAC goes when xlb stops.
func TestVRRPUseVMAC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true, Backup: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))
	dir := t.TempDir()
	cfgA, cfgB := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	require.NoError(t, os.WriteFile(cfgA, []byte(vmacConfig(150)), 0o644))
	// keepalived runs the VRRP side only; the backup forwards nothing.
	kaConf := strings.Split(vmacConfig(100), "virtual_server")[0]
	require.NoError(t, os.WriteFile(cfgB, []byte(kaConf), 0o644))

	capture, err := testutil.StartCapture(topo.Client.Do, "eth0")
	require.NoError(t, err)
	defer capture.Close()

	pin := "/sys/fs/bpf/xlb-vmac-" + testutil.Suffix()
	t.Cleanup(func() { os.RemoveAll(pin) })
	a := startDaemon(t, topo.Director, Options{ConfigFile: cfgA, PinDir: pin})
	klog := testutil.StartKeepalived(t, topo.Backup, dir, "backup", cfgB).Log
	require.Eventually(t, func() bool { return a.vrrpState(t) == "MASTER" }, 10*time.Second, 20*time.Millisecond)
	a.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	mac, up, addrs := linkIn(t, topo.Director, "vrrp.51")
	assert.Equal(t, "00:00:5e:00:01:33", mac)
	assert.True(t, up, "vrrp.51 is up")
	assert.Contains(t, addrs, "10.77.1.100/32", "the VIP is on the VMAC")
	assert.False(t, holdsVIP(t, topo.Director), "not on eth0")

	// Requests through the VIP: the client's ARP entry is the virtual MAC.
	assert.Len(t, getN(t, topo, 4), 4)
	neigh, err := exec.Command("ip", "-n", topo.Client.Name, "neigh", "show", "10.77.1.100").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(neigh), "00:00:5e:00:01:33", "the client reaches the VIP at the virtual MAC")

	// xlb's adverts carry the virtual MAC as their source; keepalived,
	// BACKUP, took them.
	vmac := net.HardwareAddr{0, 0, 0x5e, 0, 1, 0x33}
	fromVMAC := func() int {
		n := 0
		for _, f := range capture.Frames(0) {
			b := f.Frame
			if len(b) > 34 && bytes.Equal(b[6:12], vmac) && b[12] == 0x08 && b[13] == 0x00 && b[23] == 112 {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return fromVMAC() >= 2 }, 5*time.Second, 50*time.Millisecond, "adverts from the virtual MAC")
	assert.NotContains(t, strings.ToLower(klog.String()), "invalid", "keepalived took xlb's adverts:\n%s", klog.String())
	_, _, kaddrs := linkIn(t, topo.Backup, "vrrp.51")
	assert.NotContains(t, kaddrs, "10.77.1.100", "keepalived stays BACKUP")

	// xlb dies; keepalived takes over with the same MAC: the client's ARP
	// entry still holds, and requests resume. (Its backup forwards
	// nothing here, so a request reaches the VIP on keepalived's host.)
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	require.NoError(t, topo.Switch.IP("link", "set", "p-director", "down"))
	<-a.done
	require.Eventually(t, func() bool {
		_, _, a := linkIn(t, topo.Backup, "vrrp.51")
		return strings.Contains(a, "10.77.1.100/32")
	}, 10*time.Second, 50*time.Millisecond, "keepalived took the VIP on its VMAC:\n%s", klog.String())
	neigh, err = exec.Command("ip", "-n", topo.Client.Name, "neigh", "show", "10.77.1.100").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(neigh), "00:00:5e:00:01:33", "the same MAC after the failover")

	// A clean stop removes the VMAC, as keepalived does.
	require.NoError(t, topo.Switch.IP("link", "set", "p-director", "up"))
	a2 := startDaemon(t, topo.Director, Options{ConfigFile: cfgA, PinDir: pin})
	require.Eventually(t, func() bool { return a2.vrrpState(t) == "MASTER" }, 10*time.Second, 20*time.Millisecond)
	stopDaemon(t, a2)
	mac, _, _ = linkIn(t, topo.Director, "vrrp.51")
	assert.Empty(t, mac, "vrrp.51 is gone after xlb stops")
}
