package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/probe"
)

// groupConfig is a virtual_server_group of two VIPs (an address range),
// as keepalived's samples write one, and, for IPVS, a port-0 (all ports)
// persistent service of a third VIP. %s: the extra block.
const groupConfig = `
virtual_server_group WEB {
    10.77.1.100-101 80
}
virtual_server group WEB {
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
%s`

// ipvsExtra is what the IPVS test adds: a port-0 persistent service and a
// firewall-mark service (mark 5, which tc sets on the director for
// 10.77.1.103 port 80).
const ipvsExtra = `
virtual_server fwmark 5 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    real_server 10.77.0.11 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
` + allPortsService

const allPortsService = `
virtual_server 10.77.1.102 0 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    persistence_timeout 30
    real_server 10.77.0.11 {
        weight 1
        TCP_CHECK { connect_timeout 1 connect_port 80 }
    }
    real_server 10.77.0.12 {
        weight 1
        TCP_CHECK { connect_timeout 1 connect_port 80 }
    }
}
`

// addVIP makes vip reachable as the topology's VIP is: routed to the
// director by the client, held on each real's lo (DR).
func addVIP(t *testing.T, topo *testutil.DR, vip string) {
	t.Helper()
	require.NoError(t, topo.Client.IP("route", "add", vip+"/32", "via", topo.DirectorAddr.String()))
	for _, r := range topo.Reals {
		require.NoError(t, r.IP("addr", "add", vip+"/32", "dev", "lo"))
	}
}

// waitAllIn waits until there are n services, every real of each healthy,
// in service and resolved.
func waitAllIn(t *testing.T, d *proc, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		st := d.status(t)
		if len(st.Services) != n {
			return false
		}
		for _, s := range st.Services {
			for _, r := range s.Reals {
				if !r.Healthy || !r.InService || !r.Resolved {
					return false
				}
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "every real of %d services up: %+v", n, d.status(t).Services)
}

// getFrom fetches url n times and counts which real answered.
func getFrom(t *testing.T, topo *testutil.DR, url string, n int) map[string]int {
	t.Helper()
	c := topo.HTTPClient()
	c.Timeout = 20 * time.Second // the VM's TCG is slow
	got := map[string]int{}
	for i := range n {
		name, err := testutil.Get(context.Background(), c, url)
		require.NoError(t, err, "%s, request %d", url, i)
		got[name]++
	}
	return got
}

// A virtual_server_group serves every VIP of its range with the one set of
// reals, on XDP: real HTTP to each VIP, spread by rr; a real that goes down
// leaves every VIP of the group, as keepalived's one checker per real does.
func TestGroupOnXDP(t *testing.T) {
	topo := testutil.NewDRServing(t)
	addVIP(t, topo, "10.77.1.101")
	addVIP(t, topo, "10.77.1.102")
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, groupConfig, allPortsService), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}, Dataplane: "xdp"})
	waitAllIn(t, d, 3)
	st := d.status(t)
	require.Len(t, st.Services, 3)
	assert.Equal(t, "10.77.1.100", st.Services[0].Addr)
	assert.Equal(t, "10.77.1.101", st.Services[1].Addr)
	for _, vip := range []string{"10.77.1.100", "10.77.1.101"} {
		assert.Equal(t, map[string]int{"r1": 2, "r2": 2}, getFrom(t, topo, "http://"+vip+"/", 4), vip)
	}
	// The port-0 service: port 80 of its VIP reaches the reals through
	// it, one real for this client (persistence).
	got := getFrom(t, topo, "http://10.77.1.102/", 4)
	assert.Len(t, got, 1, "persistent: one real for one client, got %v", got)

	require.NoError(t, topo.StopHTTP(0))
	require.Eventually(t, func() bool {
		for _, s := range d.status(t).Services {
			if s.Reals[0].InService {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "r1 left every service")
	for _, vip := range []string{"10.77.1.100", "10.77.1.101"} {
		assert.Equal(t, map[string]int{"r2": 3}, getFrom(t, topo, "http://"+vip+"/", 3), vip)
	}
}

// On IPVS (the VM's 6.1 kernel): the group's services, a port-0 persistent
// service and a firewall-mark service are the kernel's, as the real ipvsadm
// lists them, and forward real HTTP; the port-0 service takes any port of
// its VIP, the fwmark service what tc marked.
func TestGroupAndAllPortsOnIPVS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireIPVS(t, probe.IPVS())
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	require.NoError(t, topo.ServeHTTP(80))
	for _, vip := range []string{"10.77.1.100", "10.77.1.101", "10.77.1.102", "10.77.1.103"} {
		if vip != "10.77.1.100" {
			addVIP(t, topo, vip)
		}
		// IPVS sees only packets for the host's own addresses (LOCAL_IN):
		// the VIPs are on the director, as VRRP would put them there.
		require.NoError(t, topo.Director.IP("addr", "add", vip+"/32", "dev", "lo"))
	}
	out, err := exec.Command("ip", "netns", "exec", topo.Director.Name, "tc", "qdisc", "add", "dev", "eth0", "clsact").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("ip", "netns", "exec", topo.Director.Name, "tc", "filter", "add", "dev", "eth0", "ingress",
		"protocol", "ip", "flower", "ip_proto", "tcp", "dst_ip", "10.77.1.103", "dst_port", "80", "action", "skbedit", "mark", "5").CombinedOutput()
	require.NoError(t, err, "%s", out)

	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, groupConfig, ipvsExtra), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}, Dataplane: "ipvs"})
	waitAllIn(t, d, 4)

	out, err = exec.Command("ip", "netns", "exec", topo.Director.Name, "ipvsadm", "-Ln").CombinedOutput()
	require.NoError(t, err, "%s", out)
	list := string(out)
	assert.Contains(t, list, "TCP  10.77.1.100:80 rr")
	assert.Contains(t, list, "TCP  10.77.1.101:80 rr")
	assert.Contains(t, list, "TCP  10.77.1.102:0 rr persistent 30")
	assert.Contains(t, list, "FWM  5 rr")
	assert.Regexp(t, `-> 10\.77\.0\.11:0\s+Route\s+1`, list)
	resp, err := control.NewClient(d.socket).Ipvsadm([]string{"-Ln"}, "")
	require.NoError(t, err)
	require.Equal(t, 0, resp.Code, resp.Stderr)
	assert.Equal(t, list, resp.Stdout, "xlbadm -Ln lists what the real ipvsadm does")

	for _, vip := range []string{"10.77.1.100", "10.77.1.101", "10.77.1.103"} {
		assert.Equal(t, map[string]int{"r1": 2, "r2": 2}, getFrom(t, topo, "http://"+vip+"/", 4), vip)
	}
	// Port 0: the reals serve port 80, reached through the all-ports
	// service; persistence keeps this client on one real.
	got := getFrom(t, topo, "http://10.77.1.102/", 4)
	assert.Len(t, got, 1, "persistent: one real for one client, got %v", got)
}
