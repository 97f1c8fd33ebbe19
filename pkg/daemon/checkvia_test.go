package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// check_via_vip against the failure it is for: a DR real that lost the VIP
// from lo after a reboot. keepalived's checks (to the real's own address)
// pass, so it stays in the pool and black-holes its share of the clients;
// with the checks through the data path it leaves the pool within its
// checker's timing, and comes back when the VIP does.
func TestCheckViaVIP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireXDPKernel(t)
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(extra string) {
		body := fmt.Sprintf(drConfig, extra+realBlock("10.77.0.11", 1)+realBlock("10.77.0.12", 1))
		require.NoError(t, os.WriteFile(cfgPath, []byte(body), 0o644))
	}
	write("")
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath})
	both := map[string]bool{"10.77.0.11": true, "10.77.0.12": true}
	d.waitReals(t, both)
	require.Eventually(t, func() bool {
		st := d.status(t)
		return len(st.VRRP) == 1 && st.VRRP[0].State == "MASTER"
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, map[string]int{"r1": 5, "r2": 5}, count(getN(t, topo, 10)))

	// r1 loses the VIP. Its checks, to 10.77.0.11 itself, go on passing.
	require.NoError(t, topo.Reals[0].IP("addr", "del", "10.77.1.100/32", "dev", "lo"))
	time.Sleep(4 * time.Second) // several delay_loops
	d.waitReals(t, both)
	failed := 0
	c := topo.HTTPClient()
	c.Timeout = time.Second
	for range 6 {
		if _, err := testutil.Get(context.Background(), c, "http://10.77.1.100/"); err != nil {
			failed++
		}
	}
	assert.Equal(t, 3, failed, "without check_via_vip, r1 keeps its share of the clients and answers none")

	// Checks through the data path: r1 leaves the pool.
	write("    check_via_vip\n")
	hup := time.Now()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	d.waitReals(t, map[string]bool{"10.77.0.11": false, "10.77.0.12": true})
	t.Logf("r1 left the pool %v after the reload (delay_loop 1, connect_timeout 1, retry 1)", time.Since(hup))
	assert.Equal(t, map[string]int{"r2": 6}, count(getN(t, topo, 6)), "every client is served")
	st := d.status(t)
	assert.Contains(t, st.Services[0].Reals[0].Reason, "through VIP 10.77.1.100", "the reason says how it was checked: %+v", st.Services[0].Reals[0])
	assert.NotZero(t, st.Reasons["check_reply"], "r2's checks came back through the data path")

	// The VIP comes back: so does r1.
	require.NoError(t, topo.Reals[0].IP("addr", "add", "10.77.1.100/32", "dev", "lo"))
	d.waitReals(t, both)
	assert.Equal(t, map[string]int{"r1": 5, "r2": 5}, count(getN(t, topo, 10)))
}
