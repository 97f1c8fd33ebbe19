package xdp_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/dptest"
	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/xdp"
)

// TestBehaviour runs the data-plane behaviour suite against XDP, attached
// in native mode to the director's interface. pkg/ipvsdp runs the same
// suite against IPVS.
func TestBehaviour(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs and make network namespaces")
	}
	testutil.RequireXDPKernel(t)
	dptest.Run(t, dptest.DataPlane{Name: "xdp", Native: true, Open: openXDP})
}

func openXDP(t *testing.T, topo *testutil.DR) dataplane.Dataplane {
	t.Helper()
	h, err := topo.Director.Netlink()
	require.NoError(t, err)
	t.Cleanup(h.Close)
	var x *xdp.Dataplane
	require.NoError(t, topo.Director.Do(func() (err error) {
		x, err = xdp.Open(xdp.Config{
			Interfaces:      []string{topo.DirectorIf},
			PinDir:          "/sys/fs/bpf/xlb-behaviour-" + testutil.Suffix(),
			Mode:            dataplane.XDPNative,
			MaxConns:        4096,
			Resolver:        xdp.NeighResolver{Handle: h},
			ResolveInterval: 50 * time.Millisecond,
			Logger:          slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		return err
	}))
	t.Cleanup(func() { assert.NoError(t, x.Close()) })
	return directorXDP{x, topo.Director}
}

// directorXDP applies inside the director's namespace, where the data
// plane looks up its reals' next hops and interfaces.
type directorXDP struct {
	*xdp.Dataplane
	ns *testutil.NS
}

func (d directorXDP) Apply(s []dataplane.Service) error {
	return d.ns.Do(func() error { return d.Dataplane.Apply(s) })
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
