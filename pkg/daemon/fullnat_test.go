package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
)

// fullnatConfig is FULLNAT as the keepalived that ships with DPVS writes
// it: a local_address_group (with DPVS's device name), lb_kind FNAT,
// laddr_group_name; the reals listen on 8080.
const fullnatConfig = `
local_address_group laddr_g1 {
    10.77.0.50 dpdk0
}
virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    real_server 10.77.0.11 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.77.0.12 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// xlb run with DPVS's FULLNAT keepalived.conf: real HTTP reaches reals that
// have no route to the client at all, from the local address; the reals'
// checks pass; xlbadm lists the reals FullNat and the service's local
// address; a real whose server stops leaves the pool.
func TestFULLNATFromKeepalivedConf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireXDPKernel(t)
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true, NAT: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	for _, ns := range topo.Reals {
		require.NoError(t, ns.IP("route", "del", "default"))
	}
	require.NoError(t, topo.Director.IP("addr", "add", "10.77.0.50/24", "dev", "eth0"))
	require.NoError(t, topo.ServeHTTP(8080))
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fullnatConfig), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}, Dataplane: "xdp"})
	waitAllIn(t, d, 1)

	assert.Equal(t, map[string]int{"r1": 3, "r2": 3}, getFrom(t, topo, "http://10.77.1.100/", 6))
	c := topo.HTTPClient()
	c.Timeout = 20 * time.Second
	peer, err := testutil.Get(context.Background(), c, "http://10.77.1.100/peer")
	require.NoError(t, err)
	assert.Contains(t, peer, " 10.77.0.50:", "the real's peer is the local address")

	r, err := control.NewClient(d.socket).Ipvsadm([]string{"-Ln"}, "")
	require.NoError(t, err)
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "  -> 10.77.0.11:8080              FullNat 1")
	g, err := control.NewClient(d.socket).Ipvsadm([]string{"-G", "-n"}, "")
	require.NoError(t, err)
	require.Equal(t, 0, g.Code, g.Stderr)
	assert.True(t, strings.Contains(g.Stdout, "10.77.1.100:80") && strings.Contains(g.Stdout, "10.77.0.50"), "%s", g.Stdout)

	require.NoError(t, topo.StopHTTP(0))
	require.Eventually(t, func() bool { return !d.status(t).Services[0].Reals[0].InService }, 10*time.Second, 50*time.Millisecond,
		"r1 leaves the pool when its checks fail")
	assert.Equal(t, map[string]int{"r2": 3}, getFrom(t, topo, "http://10.77.1.100/", 3))
}

// nat46Config is NAT46 in keepalived's syntax: an IPv4 virtual server, an
// IPv6 local address group, IPv6 reals by FNAT checked at their own
// addresses.
const nat46Config = `
local_address_group laddr_v6 {
    fd77::50
}
virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_v6
    real_server fd77::11 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server fd77::12 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// xlb run with NAT46 from a keepalived.conf (issue 13): the IPv4 client
// reaches IPv6-only reals that have no IPv4 address at all, each seeing
// the director's IPv6 local address; the reals' IPv6 checks pass and
// fail as their servers do; xlbadm lists the IPv6 reals of the IPv4
// service FullNat, in brackets.
func TestNAT46FromKeepalivedConf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	testutil.RequireXDPKernel(t)
	topo, err := testutil.NewDR(testutil.DROptions{Reals: 2, Native: true, NAT: true})
	require.NoError(t, err)
	t.Cleanup(func() { topo.Close() })
	_, err = topo.AddIPv6(netip.MustParseAddr("fd77:1::100"))
	require.NoError(t, err)
	for _, ns := range topo.Reals {
		require.NoError(t, ns.IP("-4", "addr", "flush", "dev", "eth0"))
	}
	require.NoError(t, topo.Director.IP("addr", "add", "fd77::50/64", "dev", "eth0", "nodad"))
	require.NoError(t, topo.ServeHTTP6(8080))
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(nat46Config), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}, Dataplane: "xdp"})
	waitAllIn(t, d, 1)

	assert.Equal(t, map[string]int{"r1": 3, "r2": 3}, getFrom(t, topo, "http://10.77.1.100/", 6))
	c := topo.HTTPClient()
	c.Timeout = 20 * time.Second
	peer, err := testutil.Get(context.Background(), c, "http://10.77.1.100/peer")
	require.NoError(t, err)
	assert.Contains(t, peer, " [fd77::50]:", "the real's peer is the IPv6 local address")

	r, err := control.NewClient(d.socket).Ipvsadm([]string{"-Ln"}, "")
	require.NoError(t, err)
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "TCP  10.77.1.100:80 rr\n")
	assert.Contains(t, r.Stdout, "  -> [fd77::11]:8080              FullNat 1")

	require.NoError(t, topo.StopHTTP(0))
	require.Eventually(t, func() bool { return !d.status(t).Services[0].Reals[0].InService }, 10*time.Second, 50*time.Millisecond,
		"r1 leaves the pool when its checks fail")
	assert.Equal(t, map[string]int{"r2": 3}, getFrom(t, topo, "http://10.77.1.100/", 3))
}
