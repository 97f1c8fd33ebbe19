package dptest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
)

// Factory opens a data plane that forwards for topo's director; it is
// closed when the test ends.
type Factory func(t *testing.T, topo *testutil.DR) dataplane.Dataplane

// DataPlane is an implementation under test.
type DataPlane struct {
	// Name is "xdp" or "ipvs"; the behaviours name their differences by it.
	Name string
	// Native builds each topology for native XDP on the director
	// (testutil.DROptions.Native).
	Native bool
	Open   Factory
}

// Waits are generous: under TCG in the test VM everything runs 15-30 times
// slower than on the host.
const (
	waitIO     = 20 * time.Second // a request's answer, a connection
	waitState  = 20 * time.Second // counters and tables catching up
	waitNoDest = 3 * time.Second  // how long a dropped request is given
)

// Rig is one behaviour's world: a DR topology (client, director, reals on a
// bridge, each real's HTTP server answering with its name) and the data
// plane forwarding the VIP.
type Rig struct {
	Name string
	Topo *testutil.DR
	DP   dataplane.Dataplane
	Key  dataplane.ServiceKey

	// reals6 are the reals' IPv6 addresses on a rig of an IPv6 service
	// (newRig6): RealAddr and RealName go by them.
	reals6 []netip.Addr

	sources []netip.Addr // extra client addresses, made on demand
	// tuples is every client address and port this rig has connected
	// from; nextPort is the next port it binds an extra address to.
	tuples   map[netip.AddrPort]bool
	nextPort uint16
}

func newRig(t *testing.T, dp DataPlane, reals int) *Rig {
	t.Helper()
	topo, err := testutil.NewDR(testutil.DROptions{Reals: reals, Native: dp.Native})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, topo.Close()) })
	require.NoError(t, topo.ServeHTTP(80))
	warmNeighbours(t, topo)
	r := &Rig{Name: dp.Name, Topo: topo, Key: dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP}}
	r.DP = dp.Open(t, topo)
	return r
}

// VIP6 is the IPv6 rig's VIP (newRig6).
var VIP6 = netip.MustParseAddr("fd77:1::100")

// newRig6 is newRig for an IPv6 service: the topology given IPv6 beside
// IPv4 (testutil.DR.AddIPv6), each real's server answering on [::]:80 as
// well, the service VIP6:80. IPVS, as for IPv4, needs the VIP local on
// the director.
func newRig6(t *testing.T, dp DataPlane, reals int) *Rig {
	t.Helper()
	r := newRig(t, dp, reals)
	var err error
	r.reals6, err = r.Topo.AddIPv6(VIP6)
	require.NoError(t, err)
	require.NoError(t, r.Topo.ServeHTTP6(80))
	require.NoError(t, r.Topo.WarmNeighbours6(r.reals6, 80))
	if dp.Name == "ipvs" {
		require.NoError(t, r.Topo.Director.IP("-6", "addr", "add", VIP6.String()+"/128", "dev", "lo", "nodad"))
	}
	r.Key = dataplane.ServiceKey{Addr: VIP6, Port: 80, Protocol: lvs.TCP}
	return r
}

// warmNeighbours connects the director to every real once, so that its
// neighbour table knows their MACs. XDP reads its next hops from that table
// and gives a real no flows until its MAC is known (Resolved); IPVS
// resolves when it transmits. With the table warm, a real is usable the
// moment Apply returns on both, and XDP does not rebuild its scheduler
// table when a late ARP reply comes (which IPVS would not do).
func warmNeighbours(t *testing.T, topo *testutil.DR) {
	t.Helper()
	for _, a := range topo.RealAddrs {
		ctx, cancel := context.WithTimeout(context.Background(), waitIO)
		c, err := topo.Director.DialContext(ctx, "tcp4", netip.AddrPortFrom(a, 80).String())
		cancel()
		require.NoError(t, err, "director to real %s", a)
		c.Close()
	}
}

// Batched says whether the data plane takes one Apply as one dest_changed.
// Neither does: pkg/dataplane/ipvs adds and edits reals one at a time as keepalived
// does, and the XDP data plane replays an Apply through the same
// operations to compute its tables.
func (r *Rig) Batched() bool { return false }

// NewModel is the IPVS model for this rig's service.
func (r *Rig) NewModel() *Model { return NewModel(r.Batched()) }

// RealAddr is real i's address (0-based); RealName its answer ("r1"...).
func (r *Rig) RealAddr(i int) netip.Addr { return r.realAddrs()[i] }

// realAddrs are the reals' addresses in the service's family.
func (r *Rig) realAddrs() []netip.Addr {
	if r.reals6 != nil {
		return r.reals6
	}
	return r.Topo.RealAddrs
}

// RealName names a real by address as its server answers; "none" for the
// zero Addr (no destination).
func (r *Rig) RealName(a netip.Addr) string {
	if i := slices.Index(r.realAddrs(), a); i >= 0 {
		return fmt.Sprintf("r%d", i+1)
	}
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}

func (r *Rig) names(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = r.RealName(a)
	}
	return out
}

// Service is the rig's service with reals r1..rn at these weights; a
// negative weight leaves that real out.
func (r *Rig) Service(scheduler string, weights ...int32) dataplane.Service {
	s := dataplane.Service{ServiceKey: r.Key, Scheduler: scheduler}
	for i, w := range weights {
		if w >= 0 {
			s.Reals = append(s.Reals, dataplane.Real{Addr: r.RealAddr(i), Port: 80, Weight: w, Forward: lvs.DR})
		}
	}
	return s
}

// Apply applies svc as the only service and moves m with it. It waits for
// every real to be Resolved (XDP; IPVS always says so).
func (r *Rig) Apply(t *testing.T, m *Model, svc dataplane.Service) {
	t.Helper()
	require.NoError(t, r.DP.Apply([]dataplane.Service{svc}))
	var s dataplane.ServiceStats
	Eventually(t, waitState, "every real resolved", func() (bool, string) {
		s = r.Stats(t)
		for _, rs := range s.Reals {
			if !rs.Resolved {
				return false, rs.String() + " unresolved"
			}
		}
		return true, ""
	})
	if m != nil {
		require.NoError(t, m.Apply(svc, r.order(s)))
	}
}

func (r *Rig) order(s dataplane.ServiceStats) []netip.Addr {
	var out []netip.Addr
	for _, rs := range s.Reals {
		out = append(out, rs.Addr)
	}
	return out
}

// Stats are the rig's service's stats.
func (r *Rig) Stats(t *testing.T) dataplane.ServiceStats {
	t.Helper()
	st, err := r.DP.Stats()
	require.NoError(t, err)
	for _, s := range st.Services {
		if s.ServiceKey == r.Key {
			return s
		}
	}
	require.Failf(t, "service missing", "%s is not in Stats: %+v", r.Key, st.Services)
	return dataplane.ServiceStats{}
}

// WaitCounts waits until every real's ActiveConn and InActConn are what
// the model counts. Both data planes change them as packets arrive, but a
// client's FIN may still be on its way when the next SYN leaves.
func (r *Rig) WaitCounts(t *testing.T, m *Model) {
	t.Helper()
	Eventually(t, waitState, "ActiveConn/InActConn as IPVS counts them", func() (bool, string) {
		s := r.Stats(t)
		ok, state := true, ""
		for _, rs := range s.Reals {
			a, i := m.Counts(rs.Addr)
			state += fmt.Sprintf("%s %d/%d (want %d/%d) ", r.RealName(rs.Addr), rs.ActiveConns, rs.InactConns, a, i)
			ok = ok && rs.ActiveConns == int64(a) && rs.InactConns == int64(i)
		}
		return ok, state
	})
}

// Sources gives n client addresses: the client's own, then extra ones it is
// given on its LAN (10.77.0.21...), for schedulers that hash the source.
func (r *Rig) Sources(t *testing.T, n int) []netip.Addr {
	t.Helper()
	for len(r.sources) < n-1 {
		a := netip.AddrFrom4([4]byte{10, 77, 0, byte(21 + len(r.sources))})
		require.NoError(t, r.Topo.Client.IP("addr", "add", a.String()+"/24", "dev", "eth0"))
		r.sources = append(r.sources, a)
	}
	return append([]netip.Addr{r.Topo.ClientAddr}, r.sources[:n-1]...)
}

// Sequence makes one connection from each source in turn, each closed
// before the next, and returns the reals the model says IPVS would choose
// and the reals that answered. Before each, the data plane's connection
// counts must be the model's: lc, wlc, sed and nq choose by them.
func (r *Rig) Sequence(t *testing.T, m *Model, srcs []netip.Addr) (want, got []string, conns []*Conn) {
	t.Helper()
	from := make([]netip.AddrPort, len(srcs))
	for i, a := range srcs {
		from[i] = netip.AddrPortFrom(a, 0)
	}
	return r.SequenceFrom(t, m, from)
}

// SequenceFrom is Sequence from source ports of the test's choosing (0:
// any), which schedulers that hash the port (sh-port, mh-port) read.
func (r *Rig) SequenceFrom(t *testing.T, m *Model, srcs []netip.AddrPort) (want, got []string, conns []*Conn) {
	t.Helper()
	for i, src := range srcs {
		r.WaitCounts(t, m)
		w := m.PickFrom(src)
		c := r.OnceFrom(t, src)
		require.NoError(t, c.Err, "connection %d from %s (want %s)", i, src, r.RealName(w))
		want = append(want, r.RealName(w))
		got = append(got, c.Real)
		// Count what happened, so that one wrong pick does not make
		// every later count wrong too.
		a := r.RealAddr(realIndex(c.Real))
		m.Opened(a)
		m.Closed(a)
		conns = append(conns, c)
	}
	return want, got, conns
}

// Held makes connections from each source and keeps them open, as
// Sequence otherwise does.
func (r *Rig) Held(t *testing.T, m *Model, srcs []netip.Addr) (want, got []string, conns []*Conn) {
	t.Helper()
	for i, src := range srcs {
		r.WaitCounts(t, m)
		w := m.Pick(src)
		c := r.Hold(t, src)
		require.NoError(t, c.Err, "connection %d from %s (want %s)", i, src, r.RealName(w))
		want = append(want, r.RealName(w))
		got = append(got, c.Real)
		m.Opened(r.RealAddr(realIndex(c.Real)))
		conns = append(conns, c)
	}
	return want, got, conns
}

func realIndex(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "r%d", &i); err != nil {
		panic(fmt.Sprintf("dptest: answer %q names no real", name))
	}
	return i - 1
}

// Repeat is srcs repeated n times.
func Repeat(n int, srcs ...netip.Addr) []netip.Addr {
	var out []netip.Addr
	for range n {
		out = append(out, srcs...)
	}
	return out
}

// Eventually polls cond until it holds or wait has passed; the failure
// says what cond last saw.
func Eventually(t *testing.T, wait time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, what, "still %s after %v", state, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// InVM reports whether the test runs in the vmtest guest.
func InVM() bool { return os.Getenv("VMTEST") != "" }
