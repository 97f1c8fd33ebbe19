package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// A second director on the same pin directory, or the same control
// socket, refuses at once and touches nothing: the first keeps forwarding
// and keeps its VIP, and its pinned data plane stays. (Before the lock, the
// second took over the pinned data plane, removed the VIP, failed on the
// socket and deleted the pin directory.)
func TestSecondDaemonRefused(t *testing.T) {
	topo := testutil.NewDRServing(t)
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.Replace(drConfig, "%s", realBlock("10.77.0.11", 1)+realBlock("10.77.0.12", 1), 1)), 0o644))
	pin := "/sys/fs/bpf/xlb-lock-" + testutil.Suffix()
	first := Options{ConfigFile: cfgPath, PinDir: pin, Socket: filepath.Join(t.TempDir(), "xlb.sock")}
	d := startDaemon(t, topo.Director, first)
	d.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	require.Eventually(t, func() bool { return d.vrrpState(t) == "MASTER" }, 10*time.Second, 20*time.Millisecond)
	vipHere := func() bool {
		out, err := exec.Command("ip", "-n", topo.Director.Name, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		require.NoError(t, err)
		return strings.Contains(string(out), "10.77.1.100/32")
	}
	require.True(t, vipHere())

	load := startLoad(topo)
	time.Sleep(300 * time.Millisecond)
	started := time.Now()
	// At once: before a second that serves would have done anything. In
	// the VM (TCG, no KVM) starting the process alone takes up to ~1.2 s.
	atOnce := time.Second
	if os.Getenv("VMTEST") != "" {
		atOnce = 5 * time.Second
	}
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"same pin directory", Options{ConfigFile: cfgPath, PinDir: pin, Socket: filepath.Join(t.TempDir(), "other.sock")}, "pin directory " + pin + " is in use by xlb (pid"},
		{"same socket", Options{ConfigFile: cfgPath, PinDir: pin + "-other", Socket: first.Socket}, "control socket " + first.Socket + " is in use by xlb (pid"},
	} {
		t0 := time.Now()
		logs, err := runDaemonOnce(t, topo.Director, c.o)
		took := time.Since(t0)
		require.Error(t, err, c.name)
		assert.Contains(t, logs, c.want, c.name)
		assert.Less(t, took, atOnce, "%s: refused at once", c.name)
		t.Logf("%s: refused in %v", c.name, took)
	}
	time.Sleep(500 * time.Millisecond)
	rs := load.End()
	assert.Empty(t, testutil.Failures(load.Since(started)), "requests failed while a second director tried")
	assert.NotEmpty(t, rs)
	assert.True(t, vipHere(), "the first keeps its VIP")
	assert.Equal(t, "MASTER", d.vrrpState(t))
	_, err := os.Stat(filepath.Join(pin, "link_eth0"))
	assert.NoError(t, err, "the pin directory is intact")
	assert.NotContains(t, d.logs(), "took over", "nothing reached the first's data plane")
}
