package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/probe"
)

const ipvsConfig = `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 255
    virtual_ipaddress {
        %s/32
    }
}
virtual_server %s 80 {
    lb_algo wrr
    lb_kind %s
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 3
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
`

// xlb run falls back to IPVS when XDP cannot attach (simulated with
// XLB_PROBE_DENY), or runs on it when told to, from a keepalived.conf: real
// HTTP through IPVS DR and NAT, and the real ipvsadm lists what xlb made.
// It needs a kernel with IPVS (make vmtest KERNEL=6.1);
// TestNoDataplaneCanRun checks the refusal on one without.
func TestRunOnIPVS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireIPVS(t, probe.IPVS())
	for _, c := range []struct {
		kind string
		nat  bool
		env  []string
		dp   string
	}{
		// XDP refused: the daemon steps down to IPVS by itself.
		{kind: "DR", env: []string{"XLB_PROBE_DENY=xdp-native,xdp-generic"}},
		{kind: "NAT", nat: true, dp: "ipvs"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, NAT: c.nat})
			require.NoError(t, err)
			t.Cleanup(func() { topo.Close() })
			require.NoError(t, topo.ServeHTTP(80))
			cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
			require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(ipvsConfig, topo.VIP, topo.VIP, c.kind)), 0o644))
			d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Dataplane: c.dp}, c.env...)
			assert.Equal(t, "ipvs", d.status(t).Dataplane)
			if c.env != nil {
				assert.Contains(t, d.logs(), "XDP cannot run here; trying IPVS")
				assert.Contains(t, d.logs(), "denied by override")
			}
			d.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
			require.Eventually(t, func() bool { return d.vrrpState(t) == "MASTER" }, 10*time.Second, 50*time.Millisecond)

			// The real ipvsadm sees xlb's service.
			out, err := exec.Command("ip", "netns", "exec", topo.Director.Name, "ipvsadm", "-Ln").CombinedOutput()
			require.NoError(t, err, "%s", out)
			fwd := map[string]string{"DR": "Route", "NAT": "Masq"}[c.kind]
			assert.Contains(t, string(out), "TCP  10.77.1.100:80 wrr")
			assert.Regexp(t, `-> 10\.77\.0\.11:80\s+`+fwd+`\s+3`, string(out))
			assert.Regexp(t, `-> 10\.77\.0\.12:80\s+`+fwd+`\s+1`, string(out))

			// Real HTTP through IPVS, in wrr's shares.
			c := topo.HTTPClient()
			c.Timeout = 20 * time.Second // TCG is slow
			got := map[string]int{}
			for i := range 8 {
				name, err := testutil.Get(context.Background(), c, "http://10.77.1.100/")
				require.NoError(t, err, "request %d", i)
				got[name]++
			}
			assert.Equal(t, map[string]int{"r1": 6, "r2": 2}, got)
			// IPVS copies its counters to what netlink reads every 2 s
			// (its rate estimator's tick); xlb's XDP counters are live.
			require.Eventually(t, func() bool {
				st := d.status(t)
				return len(st.Services) == 1 && st.Services[0].Counters.Conns == 8
			}, 10*time.Second, 100*time.Millisecond, "IPVS counted %+v", d.status(t).Services)
			stats, err := exec.Command("ip", "netns", "exec", topo.Director.Name, "ipvsadm", "-Ln", "--stats").CombinedOutput()
			require.NoError(t, err)
			assert.True(t, strings.Contains(string(stats), "10.77.1.100:80"), "%s", stats)
		})
	}
}

// On a kernel without IPVS (the development machine's) and XDP refused,
// xlb run has no data plane to fall back to: it stops, naming each step
// down and why IPVS could not be it.
func TestNoDataplaneCanRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if testutil.IPVSMissing() == "" {
		t.Skip("this kernel has IPVS (CONFIG_IP_VS): the fallback has somewhere to go, which TestRunOnIPVS checks")
	}
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(ipvsConfig, "10.77.1.100", "10.77.1.100", "DR")), 0o644))
	stderr, err := runDaemonOnce(t, topo.Director, Options{ConfigFile: cfgPath}, "XLB_PROBE_DENY=xdp-native,xdp-generic")
	require.Error(t, err, "xlb ran with neither XDP nor IPVS: %s", stderr)
	assert.Contains(t, stderr, "XDP cannot run here; trying IPVS")
	assert.Contains(t, stderr, "denied by override")
	assert.Contains(t, stderr, "no data plane can run")
	assert.Contains(t, stderr, "the kernel has no IPVS")
}
