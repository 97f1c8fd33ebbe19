package bgpd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/control"
)

// router is a GoBGP server standing for the router: it listens on
// loopback and accepts the speaker's session.
func router(t *testing.T) (*server.BgpServer, int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	lvl := new(slog.LevelVar)
	lvl.Set(slog.LevelError)
	b := server.NewBgpServer(server.LoggerOption(slog.New(slog.NewTextHandler(os.Stderr, nil)), lvl))
	go b.Serve()
	t.Cleanup(b.Stop)
	ctx := context.Background()
	require.NoError(t, b.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "192.0.2.254", ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}))
	require.NoError(t, b.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 3, KeepaliveInterval: 1}},
	}}))
	return b, port
}

// routes are the /32s the router has, with their next hops.
func routes(b *server.BgpServer) map[string]string {
	out := map[string]string{}
	_ = b.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				for _, a := range p.Attrs {
					if nh, ok := a.(*bgp.PathAttributeNextHop); ok {
						out[prefix.String()] = nh.Value.String()
					}
				}
			}
		})
	return out
}

// The speaker announces each VIP while its services have quorum, with its
// own address on the session as the next hop; withdraws one that loses it;
// and on Stop withdraws everything first, forwards on (its VIPs stay
// active) for the drain, then closes the session.
func TestAnnounceByQuorumAndDrain(t *testing.T) {
	b, port := router(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "gobgp.toml")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`[global.config]
  as = 65001
  router-id = "192.0.2.1"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65000
  [neighbors.transport.config]
    remote-port = %d
  [neighbors.timers.config]
    hold-time = 3
    keepalive-interval = 1
    connect-retry = 1
`, port)), 0o644))

	var mu sync.Mutex
	quorum := map[netip.Addr]bool{netip.MustParseAddr("10.77.1.100"): true, netip.MustParseAddr("10.77.1.101"): true}
	var active []map[netip.Addr]bool
	sp, err := New(Options{ConfigFile: conf, Drain: 500 * time.Millisecond, Interval: 50 * time.Millisecond,
		Quorum: func() map[netip.Addr]bool {
			mu.Lock()
			defer mu.Unlock()
			out := map[netip.Addr]bool{}
			for k, v := range quorum {
				out[k] = v
			}
			return out
		},
		OnActive: func(a map[netip.Addr]bool) { mu.Lock(); active = append(active, a); mu.Unlock() }})
	require.NoError(t, err)

	cfg, err := config.ParseBytes("keepalived.conf", []byte(`virtual_server 10.77.1.100 80 {
    lb_kind DR
    real_server 10.77.0.11 80 {
    }
}
virtual_server 10.77.1.101 80 {
    lb_kind DR
    real_server 10.77.0.11 80 {
    }
}
virtual_server fwmark 7 {
    lb_kind DR
    real_server 10.77.0.11 80 {
    }
}
`))
	require.NoError(t, err)
	assert.Equal(t, map[netip.Addr]bool{netip.MustParseAddr("10.77.1.100"): true, netip.MustParseAddr("10.77.1.101"): true}, sp.Governs(cfg), "every VIP, no firewall mark")
	sp.Load(cfg)
	want := map[string]string{"10.77.1.100/32": "127.0.0.1", "10.77.1.101/32": "127.0.0.1"}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, routes(b)) }, 15*time.Second, 20*time.Millisecond, "announced, next hop its own address: %v", routes(b))
	var st control.Status
	sp.Status(&st)
	require.NotNil(t, st.BGP)
	assert.Equal(t, []control.BGPPeer{{Addr: "127.0.0.1", State: "established", Since: st.BGP.Peers[0].Since}}, st.BGP.Peers)

	mu.Lock()
	quorum[netip.MustParseAddr("10.77.1.101")] = false
	mu.Unlock()
	require.Eventually(t, func() bool { return len(routes(b)) == 1 }, 5*time.Second, 20*time.Millisecond, "withdrawn when quorum goes")
	sp.Status(&st)
	assert.Equal(t, []control.BGPVIP{{VIP: "10.77.1.100", Announced: true}, {VIP: "10.77.1.101", Reason: "a service of the VIP has lost quorum"}}, st.BGP.VIPs)
	mu.Lock()
	quorum[netip.MustParseAddr("10.77.1.101")] = true
	mu.Unlock()
	require.Eventually(t, func() bool { return len(routes(b)) == 2 }, 5*time.Second, 20*time.Millisecond, "announced again when it comes back")

	stopped := make(chan time.Time)
	start := time.Now()
	go func() { sp.Stop(); stopped <- time.Now() }()
	require.Eventually(t, func() bool { return len(routes(b)) == 0 }, 400*time.Millisecond, 5*time.Millisecond, "withdrawn at once, before the drain ends")
	mu.Lock()
	assert.NotEmpty(t, active[len(active)-1], "still forwarding while draining")
	mu.Unlock()
	end := <-stopped
	assert.GreaterOrEqual(t, end.Sub(start), 500*time.Millisecond, "Stop returns after the drain")
	mu.Lock()
	assert.Empty(t, active[len(active)-1], "not active once stopped")
	mu.Unlock()
}

// A GoBGP file is read as gobgpd reads it: a misspelt key is an error; a
// file with no AS or no neighbour is refused by name.
func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ text, err string }{
		{"[global.config]\n  as = 65001\n[[neighbors]]\n  [neighbors.timers.config]\n    hold_time = 3\n", "hold_time"},
		{"[global.config]\n  router-id = \"1.2.3.4\"\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"10.0.0.1\"\n    peer-as = 1\n", "[global.config] has no as"},
		{"[global.config]\n  as = 65001\n", "no [[neighbors]]"},
	} {
		f := filepath.Join(dir, "g.toml")
		require.NoError(t, os.WriteFile(f, []byte(c.text), 0o644))
		_, err := ReadConfig(f)
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.err)
		assert.Contains(t, err.Error(), "--bgp-config "+f)
	}
}
