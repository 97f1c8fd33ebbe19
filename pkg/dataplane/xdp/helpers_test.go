package xdp

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
)

// requireRoot skips when the test cannot load BPF at all; once root, a
// missing feature is a failure, not a skip.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	testutil.RequireXDPKernel(t)
}

// staticResolver is a fake next-hop table for tests of map contents.
type staticResolver map[netip.Addr]NextHop

func (s staticResolver) Resolve(a netip.Addr, _ bool) (NextHop, error) {
	nh, ok := s[a]
	if !ok {
		return NextHop{}, fmt.Errorf("%w: %s", ErrUnresolved, a)
	}
	if nh.Ifindex == 0 {
		return NextHop{}, fmt.Errorf("route to real %s: no route", a)
	}
	return nh, nil
}

var (
	srcMAC = net.HardwareAddr{0x02, 0xd1, 0, 0, 0, 0x01}
)

func realMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0xee, 0, 0, 0, byte(i)} }

// testNS makes a namespace with a spare veth (dummy0), for the devmap, and
// returns the dummy's ifindex.
func testNS(t testing.TB) (*testutil.NS, int) {
	t.Helper()
	ns, err := testutil.NewNS("xlb-t-" + testutil.Suffix())
	require.NoError(t, err)
	t.Cleanup(func() { ns.Close() })
	require.NoError(t, ns.IP("link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1"))
	require.NoError(t, ns.IP("link", "set", "dummy0", "up"))
	var idx int
	require.NoError(t, ns.Do(func() error {
		ifi, err := net.InterfaceByName("dummy0")
		if err != nil {
			return err
		}
		idx = ifi.Index
		return nil
	}))
	return ns, idx
}

// openTest loads the data plane (no interfaces) pinned in a private
// directory, inside ns, and closes it with the test.
func openTest(t testing.TB, ns *testutil.NS, res Resolver) *Dataplane {
	t.Helper()
	requireRoot(t)
	var x *Dataplane
	require.NoError(t, ns.Do(func() (err error) {
		x, err = Open(Config{
			PinDir:   "/sys/fs/bpf/xlb-test-" + testutil.Suffix(),
			Resolver: res,
			MaxConns: 4096,
			Logger:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
			// Tests of the table sweep it themselves.
			SweepInterval: time.Hour,
		})
		return err
	}))
	t.Cleanup(func() { require.NoError(t, x.Close()) })
	return x
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

func apply(t testing.TB, ns *testutil.NS, x *Dataplane, svcs ...dataplane.Service) {
	t.Helper()
	require.NoError(t, ns.Do(func() error { return x.Apply(inListOrder(svcs)) }))
}

// inListOrder lets a test give reals in the dest-list order it wants: the
// kernel puts each new dest at the head of the list, so reals added in
// one Apply end up in reverse; giving them reversed puts them in the order
// written. (The tests' expectations, from pkg/sched, index that list.)
func inListOrder(svcs []dataplane.Service) []dataplane.Service {
	out := make([]dataplane.Service, len(svcs))
	for i, s := range svcs {
		s.Reals = slices.Clone(s.Reals)
		slices.Reverse(s.Reals)
		out[i] = s
	}
	return out
}

// run sends one frame through the program (inside ns, so that the ingress
// interface is ns's loopback, ifindex 1).
func run(t testing.TB, ns *testutil.NS, x *Dataplane, frame []byte) (uint32, []byte) {
	t.Helper()
	var ret uint32
	out := make([]byte, len(frame)+64)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	require.NoError(t, ns.Do(func() (err error) {
		ret, err = x.objs.XlbXdp.Run(opts)
		return err
	}))
	return ret, opts.DataOut
}
