package ipvs_test

import (
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/dptest"
	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/dataplane/ipvs"
)

// TestBehaviour runs the data-plane behaviour suite against the kernel's
// IPVS in the director's namespace. pkg/dataplane runs the same suite
// against XDP.
func TestBehaviour(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for IPVS and network namespaces")
	}
	// Open changes nothing in the kernel: it only asks IPVS for its info.
	v, err := ipvs.Open(ipvs.Options{Logger: slog.New(slog.DiscardHandler)})
	if errors.Is(err, ipvs.ErrNoIPVS) && !dptest.InVM() {
		t.Skip("kernel has no IPVS (run: make vmtest KERNEL=6.1)")
	}
	require.NoError(t, err, "the test VM's kernel has IPVS")
	require.NoError(t, v.Release())
	dptest.Run(t, dptest.DataPlane{Name: "ipvs", Open: openIPVS})
}

func openIPVS(t *testing.T, topo *testutil.DR) dataplane.Dataplane {
	t.Helper()
	// IPVS forwards only what the director itself receives: the VIP must
	// be local. On lo, so that the director does not answer ARP for it.
	require.NoError(t, topo.Director.IP("addr", "add", topo.VIP.String()+"/32", "dev", "lo"))
	v, err := ipvs.Open(ipvs.Options{
		NetNS:  "/run/netns/" + topo.Director.Name,
		Logger: slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, v.Close()) })
	return v
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
