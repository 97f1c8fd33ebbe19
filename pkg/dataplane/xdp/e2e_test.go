package xdp

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/dataplane"
	"github.com/xlbproject/xlb/pkg/lvs"
	"github.com/xlbproject/xlb/pkg/sched"
)

// drRig is a DR topology with xlb attached to the director.
type drRig struct {
	topo *testutil.DR
	x    *Dataplane
	pin  string
	mode dataplane.XDPMode
	url  string
	svc  dataplane.ServiceKey
	log  *slog.Logger
	// resolveInterval, if set, replaces the rig's 50 ms.
	resolveInterval time.Duration
	// floodRate is Config.FloodRate.
	floodRate uint32
}

func newDRRig(t *testing.T, reals int, mode dataplane.XDPMode) *drRig {
	t.Helper()
	requireRoot(t)
	topo, err := testutil.NewDR(testutil.DROptions{Reals: reals, Native: mode == dataplane.XDPNative})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, topo.Close()) })
	require.NoError(t, topo.ServeHTTP(80))
	r := &drRig{
		topo: topo,
		pin:  "/sys/fs/bpf/xlb-e2e-" + testutil.Suffix(),
		mode: mode,
		url:  fmt.Sprintf("http://%s:80/", topo.VIP),
		svc:  dataplane.ServiceKey{Addr: topo.VIP, Port: 80, Protocol: lvs.TCP},
		log:  slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	r.x = r.open(t)
	t.Cleanup(func() {
		if r.x != nil {
			assert.NoError(t, r.x.Close())
		}
	})
	return r
}

// open starts a data plane on the director, as a (re)started process does.
func (r *drRig) open(t *testing.T) *Dataplane {
	t.Helper()
	h, err := r.topo.Director.Netlink()
	require.NoError(t, err)
	var x *Dataplane
	require.NoError(t, r.topo.Director.Do(func() (err error) {
		x, err = Open(Config{
			Interfaces:      []string{r.topo.DirectorIf},
			PinDir:          r.pin,
			Mode:            r.mode,
			MaxConns:        4096,
			Resolver:        NeighResolver{Handle: h},
			ResolveInterval: cmp.Or(r.resolveInterval, 50*time.Millisecond),
			FloodRate:       r.floodRate,
			Logger:          r.log,
		})
		return err
	}))
	if r.mode != dataplane.XDPAuto {
		require.Equal(t, map[string]dataplane.XDPMode{r.topo.DirectorIf: r.mode}, x.Modes())
	}
	return x
}

func (r *drRig) service(schedName string, weights ...int32) dataplane.Service {
	s := dataplane.Service{ServiceKey: r.svc, Scheduler: schedName}
	for i, w := range weights {
		s.Reals = append(s.Reals, dataplane.Real{Addr: r.topo.RealAddrs[i], Port: 80, Weight: w, Forward: lvs.DR})
	}
	return s
}

func (r *drRig) apply(t *testing.T, svcs ...dataplane.Service) {
	t.Helper()
	require.NoError(t, r.topo.Director.Do(func() error { return r.x.Apply(inListOrder(svcs)) }))
}

// waitResolved waits until every real's MAC is known.
func (r *drRig) waitResolved(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := r.x.Stats()
		require.NoError(t, err)
		for _, s := range st.Services {
			for _, rs := range s.Reals {
				if !rs.Resolved {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond)
}

// get makes n sequential requests, each on a new TCP connection, and
// returns the answering real's name for each.
func (r *drRig) get(t *testing.T, n int) []string {
	t.Helper()
	return getN(t, r.topo.HTTPClient(), r.url, n)
}

// getN makes n requests to url with c, each its own connection, and
// returns who answered.
func getN(t *testing.T, c *http.Client, url string, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		name, err := testutil.Get(context.Background(), c, url)
		require.NoError(t, err, "request %d", i)
		names = append(names, name)
	}
	return names
}

// peerOf asks url's real (its /peer) where the connection came from, as
// the real saw it.
func peerOf(t *testing.T, c *http.Client, url string) netip.AddrPort {
	t.Helper()
	resp, err := c.Get(url + "peer")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	f := strings.Fields(string(body))
	require.Len(t, f, 2, "%q", body)
	peer, err := netip.ParseAddrPort(f[1])
	require.NoError(t, err)
	return peer
}

// fnatServices are a web service (vip:80 to the reals' 8080) and a DNS
// one (vip:53/UDP to their 5300) by FULLNAT from local.
func fnatServices(vip, local netip.Addr, reals []netip.Addr) (web, dns dataplane.Service) {
	web = dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 80, Protocol: lvs.TCP}, Scheduler: "rr",
		LocalAddrs: []netip.Addr{local}}
	dns = dataplane.Service{ServiceKey: dataplane.ServiceKey{Addr: vip, Port: 53, Protocol: lvs.UDP}, Scheduler: "rr",
		LocalAddrs: []netip.Addr{local}}
	for _, a := range reals {
		web.Reals = append(web.Reals, dataplane.Real{Addr: a, Port: 8080, Weight: 1, Forward: lvs.FNAT})
		dns.Reals = append(dns.Reals, dataplane.Real{Addr: a, Port: 5300, Weight: 1, Forward: lvs.FNAT})
	}
	return web, dns
}

func (r *drRig) realConns(t *testing.T) []uint64 {
	t.Helper()
	st, err := r.x.Stats()
	require.NoError(t, err)
	require.Len(t, st.Services, 1)
	var out []uint64
	for _, rs := range st.Services[0].Reals {
		out = append(out, rs.Conns)
	}
	return out
}

func names(idx []int) []string {
	out := make([]string, len(idx))
	for i, d := range idx {
		out[i] = fmt.Sprintf("r%d", d+1)
	}
	return out
}

func TestDRHTTP(t *testing.T) {
	for _, mode := range []dataplane.XDPMode{dataplane.XDPGeneric, dataplane.XDPNative} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newDRRig(t, 3, mode)

			// rr: every new connection goes to the next real, in order.
			r.apply(t, r.service("rr", 1, 1, 1))
			r.waitResolved(t)
			got := r.get(t, 9)
			assert.Equal(t, []string{"r1", "r2", "r3", "r1", "r2", "r3", "r1", "r2", "r3"}, got)
			assert.Equal(t, []uint64{3, 3, 3}, r.realConns(t))

			// wrr 3,2,1: IPVS's sequence when the rr service becomes wrr
			// (init_svc over weights 1,1,1) and then has r2's and r1's
			// weights edited, one dest_changed each (r3 keeps 1).
			r.apply(t, r.service("wrr", 3, 2, 1))
			w := sched.NewWRR([]sched.Dest{{Weight: 1}, {Weight: 1}, {Weight: 1}})
			w.Changed([]sched.Dest{{Weight: 1}, {Weight: 2}, {Weight: 1}})
			w.Changed([]sched.Dest{{Weight: 3}, {Weight: 2}, {Weight: 1}})
			var want []int
			for range 12 {
				want = append(want, w.Pick([]sched.Dest{{Weight: 3}, {Weight: 2}, {Weight: 1}}))
			}
			got = r.get(t, 12)
			assert.Equal(t, names(want), got)
			assert.Equal(t, []uint64{3 + 6, 3 + 4, 3 + 2}, r.realConns(t))
		})
	}
}

// An established connection keeps its real when weights change, including
// to 0; new connections follow the new weights.
func TestDREstablishedSurvivesWeightChange(t *testing.T) {
	r := newDRRig(t, 2, dataplane.XDPGeneric)
	r.apply(t, r.service("wrr", 1, 1))
	r.waitResolved(t)

	keep := &http.Client{Transport: &http.Transport{DialContext: r.topo.Client.DialContext, MaxConnsPerHost: 1}}
	defer keep.CloseIdleConnections()
	first, err := testutil.Get(context.Background(), keep, r.url)
	require.NoError(t, err)
	require.Equal(t, "r1", first)

	r.apply(t, r.service("wrr", 0, 5)) // quiesce r1
	for range 5 {
		name, err := testutil.Get(context.Background(), keep, r.url)
		require.NoError(t, err)
		assert.Equal(t, "r1", name, "the kept-alive connection moved")
	}
	assert.Equal(t, []string{"r2", "r2", "r2", "r2"}, r.get(t, 4), "new connections must avoid the quiesced real")

	r.apply(t, r.service("wrr", 3, 1))
	name, err := testutil.Get(context.Background(), keep, r.url)
	require.NoError(t, err)
	assert.Equal(t, "r1", name)
}

// The director's process is replaced (five separate processes take over
// one after another) while a client makes sequential requests: no request
// fails, and flows and counters carry over.
func TestDRRestartKeepsTraffic(t *testing.T) {
	r := newDRRig(t, 3, dataplane.XDPGeneric)
	svc := r.service("rr", 1, 1, 1)
	r.apply(t, svc)
	r.waitResolved(t)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok int
	var failures []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Each request from a port of its own: the client's stack may
		// otherwise reuse a port whose flow is still in FIN_WAIT, and
		// IPVS (as xlb) counts that SYN as the same connection, not a
		// new one.
		c := r.topo.HTTPClient()
		port := 20000
		c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			port++
			var conn net.Conn
			err := r.topo.Client.Do(func() (err error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}}
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		}
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			_, err := testutil.Get(context.Background(), c, r.url)
			mu.Lock()
			if err != nil {
				failures = append(failures, err)
			} else {
				ok++
			}
			mu.Unlock()
		}
	}()

	require.NoError(t, r.x.Release())
	r.x = nil
	job, err := json.Marshal(helperJob{Netns: r.topo.Director.Name, PinDir: r.pin, Interface: r.topo.DirectorIf, Services: []dataplane.Service{svc}})
	require.NoError(t, err)
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+string(job))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		t.Logf("director process: %s", out)
	}
	time.Sleep(100 * time.Millisecond)
	r.x = r.open(t)
	cancel()
	wg.Wait()
	assert.Empty(t, failures)
	assert.Greater(t, ok, 20)

	// rr continued where it was across restarts: the counts differ by at most one.
	conns := r.realConns(t)
	var total uint64
	for _, c := range conns {
		total += c
	}
	assert.EqualValues(t, ok, total)
	for _, c := range conns {
		assert.InDelta(t, float64(total)/3, float64(c), 1)
	}
}

// heldConn is a keep-alive HTTP connection held open through the director.
type heldConn struct {
	c    *http.Client
	real string
}

// wlc and lc over real TCP: connections held open count as active on
// their reals, the next connections go where the reference picker says
// for the counters read from the data plane, and closed connections move
// to InActConn (the client's FIN: FIN_WAIT).
func TestLeastConnHTTP(t *testing.T) {
	for _, name := range []string{"wlc", "lc"} {
		t.Run(name, func(t *testing.T) {
			r := newDRRig(t, 3, dataplane.XDPGeneric)
			weights := []int32{1, 2, 3}
			r.apply(t, r.service(name, weights...))
			r.waitResolved(t)
			ref := map[string]func([]sched.Dest) int{"wlc": sched.WLC, "lc": sched.LC}[name]
			counts := func() []sched.Dest {
				st, err := r.x.Stats()
				require.NoError(t, err)
				var ds []sched.Dest
				for i, rs := range st.Services[0].Reals {
					ds = append(ds, sched.Dest{Weight: weights[i], Active: uint32(rs.ActiveConns), Inactive: uint32(rs.InactConns)})
				}
				return ds
			}
			var held []heldConn
			closed := make([]uint32, 3)
			for i := range 12 {
				want := ref(counts())
				if i%3 == 2 {
					// A short connection: request, close.
					got := r.get(t, 1)[0]
					assert.Equal(t, fmt.Sprintf("r%d", want+1), got, "connection %d", i)
					closed[want]++
				} else {
					c := &http.Client{Transport: &http.Transport{DialContext: r.topo.Client.DialContext, MaxConnsPerHost: 1}}
					t.Cleanup(c.CloseIdleConnections)
					got, err := testutil.Get(context.Background(), c, r.url)
					require.NoError(t, err)
					assert.Equal(t, fmt.Sprintf("r%d", want+1), got, "connection %d", i)
					held = append(held, heldConn{c, got})
				}
				// The closed connections' FINs reach the director
				// asynchronously: wait for the counts to settle.
				require.Eventually(t, func() bool {
					ds := counts()
					var inact uint32
					for _, d := range ds {
						inact += d.Inactive
					}
					var want uint32
					for _, n := range closed {
						want += n
					}
					return inact == want
				}, 5*time.Second, 10*time.Millisecond)
			}
			ds := counts()
			for i := range 3 {
				var h uint32
				for _, c := range held {
					if c.real == fmt.Sprintf("r%d", i+1) {
						h++
					}
				}
				assert.Equal(t, h, ds[i].Active, "ActiveConn of r%d: its held connections", i+1)
				assert.Equal(t, closed[i], ds[i].Inactive, "InActConn of r%d: its closed connections", i+1)
			}
			// Held connections still work and stay on their reals.
			for _, c := range held {
				got, err := testutil.Get(context.Background(), c.c, r.url)
				require.NoError(t, err)
				assert.Equal(t, c.real, got)
			}
		})
	}
}
