package xdp

import (
	"bytes"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// syncBuffer collects log lines from the data plane's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Native XDP refused (a bridge has no driver XDP): the loader falls back
// to generic mode and says why. (Generic mode's forwarding is tested in
// TestDRHTTP.)
func TestNativeRefusedFallsBackToGeneric(t *testing.T) {
	requireRoot(t)
	ns, _ := testNS(t)
	require.NoError(t, ns.IP("link", "add", "br0", "type", "bridge"))
	require.NoError(t, ns.IP("link", "set", "br0", "up"))
	var logs syncBuffer
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{
			Interfaces: []string{"br0"},
			PinDir:     "/sys/fs/bpf/xlb-test-" + testutil.Suffix(),
			MaxConns:   4096,
			Resolver:   staticResolver{},
			Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		})
		return err
	}))
	t.Cleanup(func() { assert.NoError(t, x.Close()) })
	assert.Equal(t, map[string]dataplane.XDPMode{"br0": dataplane.XDPGeneric}, x.Modes())
	assert.Contains(t, logs.String(), "native xdp refused, falling back to generic mode")
	assert.Contains(t, logs.String(), "interface=br0")

	// Forced native mode fails with the reason instead.
	require.NoError(t, ns.IP("link", "add", "br1", "type", "bridge"))
	err := ns.Do(func() error {
		_, err := Open(Config{Interfaces: []string{"br1"}, Mode: dataplane.XDPNative, PinDir: "/sys/fs/bpf/xlb-test-" + testutil.Suffix(), Resolver: staticResolver{}, MaxConns: 4096})
		return err
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "attach xdp br1")
}

// A real whose MAC is unknown gets no new flows, says so in the log and in
// Stats, and starts getting flows once it answers ARP.
func TestUnresolvedRealGetsNoFlowsUntilResolved(t *testing.T) {
	var logs syncBuffer
	r := newDRRig(t, 2, dataplane.XDPGeneric)
	r.x.log = slog.New(slog.NewTextHandler(&logs, nil))
	ghost := netip.MustParseAddr("10.77.0.99") // nobody has it yet
	svc := r.service("rr", 1)
	svc.Reals = append(svc.Reals, dataplane.Real{Addr: ghost, Port: 80, Weight: 1, Forward: lvs.DR})
	r.apply(t, svc)

	st, err := r.x.Stats()
	require.NoError(t, err)
	require.Len(t, st.Services[0].Reals, 2)
	assert.True(t, st.Services[0].Reals[0].Resolved)
	assert.False(t, st.Services[0].Reals[1].Resolved)
	assert.Contains(t, logs.String(), "real has no next hop; it gets no new flows until it resolves")
	assert.Contains(t, logs.String(), "real=10.77.0.99 ")

	assert.Equal(t, []string{"r1", "r1", "r1"}, r.get(t, 3))
	assert.EqualValues(t, 0, r.realConns(t)[1])

	// Real 2 takes the address: the resolver's retry finds its MAC.
	require.NoError(t, r.topo.Reals[1].IP("addr", "add", ghost.String()+"/24", "dev", "eth0"))
	require.Eventually(t, func() bool {
		st, err := r.x.Stats()
		require.NoError(t, err)
		return st.Services[0].Reals[1].Resolved
	}, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, logs.String(), "real resolved")
	got := r.get(t, 4)
	assert.Contains(t, got, "r2", "the resolved real gets new flows")
	assert.Contains(t, got, "r1")
}
