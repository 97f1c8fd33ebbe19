package daemon

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
)

// No vrrp_instance: the VIP is nobody's to withdraw when xlb stops, so
// what stays of the data plane is what --keep-dataplane leaves.
const keepConfig = `
virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
`

// xdpProgram is the id of the XDP program attached to ns's eth0 (0: none).
func xdpProgram(t *testing.T, ns *testutil.NS) uint32 {
	t.Helper()
	h, err := ns.Netlink()
	require.NoError(t, err)
	defer h.Close()
	l, err := h.LinkByName("eth0")
	require.NoError(t, err)
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return x.ProgId
	}
	return 0
}

// stopDaemon sends SIGTERM and waits for the director to exit 0.
func stopDaemon(t *testing.T, d *proc) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.done:
		require.NoError(t, err, d.logs())
	case <-time.After(10 * time.Second):
		t.Fatal("the director did not stop within 10 s of SIGTERM")
	}
}

// xlb run --keep-dataplane: on SIGTERM the director exits and its XDP
// program stays attached to eth0 and pinned, forwarding: requests under
// load go on being answered through the director while no xlb runs, and
// while a new xlb takes the pinned data plane over. That one, stopped
// without the flag, detaches: the program leaves eth0, its pins go, and
// the VIP is no longer served.
func TestKeepDataplane(t *testing.T) {
	topo := testutil.NewDRServing(t)
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(keepConfig), 0o644))
	pin := "/sys/fs/bpf/xlb-keep-" + testutil.Suffix()
	t.Cleanup(func() { os.RemoveAll(pin) })
	o := Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}, PinDir: pin}
	reals := map[string]bool{"10.77.0.11": true, "10.77.0.12": true}

	keep := o
	keep.KeepDataplane = true
	d1 := startDaemon(t, topo.Director, keep)
	d1.waitReals(t, reals)
	assert.Equal(t, map[string]int{"r1": 5, "r2": 5}, count(getN(t, topo, 10)))
	prog := xdpProgram(t, topo.Director)
	require.NotZero(t, prog, "xlb attached no XDP program to eth0")

	load := startLoad(topo)
	defer load.End()
	time.Sleep(300 * time.Millisecond)
	stopDaemon(t, d1)
	stopped := time.Now()
	assert.Contains(t, d1.logs(), "data plane left running")
	assert.NotContains(t, d1.logs(), "detached xdp")
	assert.Equal(t, prog, xdpProgram(t, topo.Director), "the program stays on eth0")
	_, err := os.Stat(filepath.Join(pin, xdp.LinkPin("eth0")))
	assert.NoError(t, err, "the link stays pinned for the next xlb")

	// No xlb runs: the program forwards on, to both reals.
	time.Sleep(time.Second)
	alone := load.Since(stopped)
	require.NotEmpty(t, alone)
	assert.Empty(t, testutil.Failures(alone), "requests failed with the data plane left running")
	assert.Equal(t, []string{"r1", "r2"}, slices.Sorted(maps.Keys(count(testutil.Names(alone)))))

	// A new xlb takes it over, under the same load.
	d2 := startDaemon(t, topo.Director, o)
	assert.Contains(t, d2.logs(), "took over xdp link")
	d2.waitReals(t, reals)
	time.Sleep(500 * time.Millisecond)
	load.End()
	assert.Empty(t, testutil.Failures(load.Since(stopped)), "requests failed between the two directors")
	assert.NotZero(t, xdpProgram(t, topo.Director))
	st := d2.status(t)
	require.Len(t, st.Services, 1)
	assert.NotZero(t, st.Services[0].Counters.Conns, "the new director reads the taken-over counters")
	// (Which real a new connection gets is not checked here: the load's
	// thousands of connections left flows in FIN_WAIT, and a client port
	// used again follows its old flow, as in IPVS.)
	getN(t, topo, 4)

	// Without --keep-dataplane: detached and unpinned.
	stopDaemon(t, d2)
	assert.Contains(t, d2.logs(), "detached xdp")
	assert.Zero(t, xdpProgram(t, topo.Director), "an XDP program is left on eth0")
	_, err = os.Stat(pin)
	assert.True(t, os.IsNotExist(err), "the pin directory is left: %v", err)
	_, err = testutil.Get(context.Background(), topo.HTTPClient(), "http://10.77.1.100/")
	assert.Error(t, err, "no director: the VIP is not served")
}
