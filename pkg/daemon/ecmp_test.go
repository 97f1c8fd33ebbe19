package daemon

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
	"github.com/xlbproject/xlb/pkg/control"
	"github.com/xlbproject/xlb/pkg/probe"
)

// held is a long-lived client connection making one request after another
// (HTTP keep-alive) for the whole test: it must never fail, and always be
// answered by the same real.
type held struct {
	c     net.Conn
	br    *bufio.Reader
	real  string
	mu    sync.Mutex
	n     int
	err   error
	moved string // another real answered
}

func (h *held) get() (string, error) {
	// Well under the pause after each event: a request the event broke
	// has failed by the check that follows it.
	_ = h.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := h.c.Write([]byte("GET / HTTP/1.1\r\nHost: vip\r\n\r\n")); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 16)
	n, _ := resp.Body.Read(b)
	return string(b[:n]), nil
}

// loop makes a request every interval until stop; the first error ends it.
func (h *held) loop(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		name, err := h.get()
		h.mu.Lock()
		h.n++
		if err != nil {
			h.err = fmt.Errorf("request %d: %w", h.n, err)
			h.mu.Unlock()
			return
		}
		if name != h.real && h.moved == "" {
			h.moved = name
		}
		h.mu.Unlock()
	}
}

func (h *held) state() (int, error, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, h.err, h.moved
}

// holdConns opens n long-lived connections to e's VIP, each making a
// request every interval until the test ends, and returns a check that
// reports (and fails the test for) those broken or answered by another real.
func holdConns(t *testing.T, e *testutil.ECMP, n int, interval time.Duration) func(when string) {
	var hs []*held
	for range n {
		c, err := e.Client.DialContext(t.Context(), "tcp4", netip.AddrPortFrom(e.VIP, 80).String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		h := &held{c: c, br: bufio.NewReader(c)}
		h.real, err = h.get()
		require.NoError(t, err)
		hs = append(hs, h)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		go func() { defer wg.Done(); h.loop(interval, stop) }()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	return func(when string) {
		t.Helper()
		broken, moved := 0, 0
		for i, h := range hs {
			reqs, err, other := h.state()
			if err != nil {
				broken++
				if broken <= 3 {
					t.Errorf("%s: connection %d (%s, %d requests) broke: %v", when, i, h.c.LocalAddr(), reqs, err)
				}
			}
			if other != "" {
				moved++
				if moved <= 3 {
					t.Errorf("%s: connection %d went from %s to %s", when, i, h.real, other)
				}
			}
		}
		t.Logf("%s: %d connections, %d broken, %d answered by another real", when, n, broken, moved)
	}
}

// mhConfig is one DR mh service of e's VIP over its reals, health-checked.
func mhConfig(e *testutil.ECMP) string {
	var reals strings.Builder
	for _, a := range e.RealAddrs {
		fmt.Fprintf(&reals, "    real_server %s 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n", a)
	}
	return fmt.Sprintf("virtual_server %s 80 {\n    delay_loop 1\n    lvs_sched mh\n    lb_kind DR\n    protocol TCP\n%s}\n", e.VIP, reals.String())
}

// ecmpDirector starts director i of e: the xlb daemon on its eth0 with
// cfg and its GoBGP configuration.
func ecmpDirector(t *testing.T, e *testutil.ECMP, i int, cfg string, drain time.Duration) *proc {
	return ecmpDirectorOn(t, e, i, cfg, drain, "xdp")
}

// ecmpDirectorOn is ecmpDirector on the data plane dp ("xdp" or "ipvs").
func ecmpDirectorOn(t *testing.T, e *testutil.ECMP, i int, cfg string, drain time.Duration, dp string) *proc {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(conf, []byte(cfg), 0o644))
	bgp := filepath.Join(dir, "gobgp.toml")
	require.NoError(t, os.WriteFile(bgp, []byte(e.GoBGPConfig(i)), 0o644))
	p := startDaemon(t, e.Directors[i], Options{ConfigFile: conf, Interfaces: []string{"eth0"}, Dataplane: dp,
		BGPConfig: bgp, BGPDrain: drain, SloppyTCP: true})
	p.config = conf
	return p
}

// waitHops waits until the router's route to the VIP has exactly want
// next hops, and returns how long that took.
func waitHops(t *testing.T, e *testutil.ECMP, want []netip.Addr, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := e.NextHops()
		slices.SortFunc(got, netip.Addr.Compare)
		if slices.Equal(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			out, _ := e.Birdc("show", "protocols")
			t.Fatalf("router's next hops for the VIP: %v, want %v after %v\n%s", got, want, within, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func directorFlows(t *testing.T, p *proc) int {
	st, err := control.NewClient(p.socket).Status()
	require.NoError(t, err)
	n := 0
	for _, s := range st.Services {
		for _, r := range s.Reals {
			n += int(r.ActiveConns)
		}
	}
	return n
}

// TestECMPScaleOut: three xlb directors announce one VIP to a BIRD router,
// which spreads 200 long-lived connections over them (ECMP per 5-tuple);
// the service is mh with sloppy_tcp, so whichever director a connection's
// packets reach sends them to the same real. A director SIGKILLed: the
// router drops it as its BGP session closes, its connections move to the
// others and every one goes on, on its real. A director drained (SIGTERM
// with --bgp-drain): withdrawn first, so no connection breaks and no new
// one fails. A director added under load: the router moves some of every
// director's connections to it, and none breaks. A director hung
// (SIGSTOP): withdrawn by the router's hold timer, or by BFD where it runs,
// and none breaks.
func TestECMPScaleOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces, XDP and BIRD")
	}
	testutil.RequireXDPKernel(t)
	e := testutil.NewECMP(t, 4, 3)
	require.NoError(t, e.ServeHTTP(80))
	cfg := mhConfig(e)

	var ds []*proc
	for i := range 3 {
		ds = append(ds, ecmpDirector(t, e, i, cfg, 2*time.Second))
	}
	took := waitHops(t, e, e.DirectorAddrs[:3], 30*time.Second)
	t.Logf("three directors announced; the router has three next hops %v after the last start", took)
	st := ds[0].status(t)
	require.NotNil(t, st.BGP, "xlb status shows the speaker")
	require.Len(t, st.BGP.Peers, 1)
	assert.Equal(t, "established", st.BGP.Peers[0].State)
	assert.Equal(t, []control.BGPVIP{{VIP: e.VIP.String(), Announced: true}}, st.BGP.VIPs)

	// 200 long-lived connections, each answered by one real.
	const conns = 200
	check := holdConns(t, e, conns, 300*time.Millisecond)
	time.Sleep(2 * time.Second)
	check("three directors")
	var flows []int
	for _, d := range ds {
		flows = append(flows, directorFlows(t, d))
	}
	t.Logf("connections per director: %v", flows)
	require.Positive(t, flows[1], "the director to be killed carries connections")

	// SIGKILL director 2: its session closes with it.
	killed := time.Now()
	require.NoError(t, ds[1].cmd.Process.Signal(syscall.SIGKILL))
	gone := waitHops(t, e, []netip.Addr{e.DirectorAddrs[0], e.DirectorAddrs[2]}, 10*time.Second)
	t.Logf("director 2 SIGKILLed: withdrawn from the router after %v", gone)
	time.Sleep(3 * time.Second)
	check(fmt.Sprintf("%v after director 2 was killed", time.Since(killed).Round(time.Second)))

	// A fourth director joins under load. It must not announce the VIP
	// before its table is the others' (a connection moved to it would
	// reach another real), so its reals start down (alpha) and its quorum
	// is their whole weight. First one real's check fails (it probes a
	// closed port): no quorum, never announced; a reload mends the check,
	// and it joins once all three are up.
	joining := strings.Replace(cfg, "    delay_loop 1\n", "    delay_loop 1\n    alpha\n    quorum 3\n", 1)
	r3 := fmt.Sprintf("real_server %s 80 {\n        TCP_CHECK {\n", e.RealAddrs[2])
	noQuorum := strings.Replace(joining, r3, r3+"            connect_port 81\n", 1)
	require.NotEqual(t, joining, noQuorum)
	ds = append(ds, ecmpDirector(t, e, 3, noQuorum, 2*time.Second))
	require.Eventually(t, func() bool {
		st := ds[3].status(t)
		return st.BGP != nil && len(st.BGP.Peers) == 1 && st.BGP.Peers[0].State == "established"
	}, 30*time.Second, 50*time.Millisecond, "director 4's session")
	time.Sleep(2 * time.Second)
	assert.Len(t, e.NextHops(), 2, "no quorum: not announced")
	st = ds[3].status(t)
	assert.Equal(t, []control.BGPVIP{{VIP: e.VIP.String(), Reason: "a service of the VIP has lost quorum"}}, st.BGP.VIPs)
	require.NoError(t, os.WriteFile(ds[3].config, []byte(joining), 0o644))
	require.NoError(t, ds[3].cmd.Process.Signal(syscall.SIGHUP))
	joined := waitHops(t, e, []netip.Addr{e.DirectorAddrs[0], e.DirectorAddrs[2], e.DirectorAddrs[3]}, 30*time.Second)
	t.Logf("director 4 joined: announced %v after the reload that gave it quorum", joined)
	time.Sleep(3 * time.Second)
	check("director 4 joined")
	require.Positive(t, directorFlows(t, ds[3]), "the new director took connections over")

	// Drain director 3: new connections meanwhile must all succeed.
	load := testutil.StartLoad(e.HTTPClient(), fmt.Sprintf("http://%s/", e.VIP), 100000)
	time.Sleep(500 * time.Millisecond)
	drained := time.Now()
	require.NoError(t, ds[2].cmd.Process.Signal(syscall.SIGTERM))
	w := waitHops(t, e, []netip.Addr{e.DirectorAddrs[0], e.DirectorAddrs[3]}, 10*time.Second)
	t.Logf("director 3 draining: withdrawn from the router %v after SIGTERM", w)
	select {
	case <-ds[2].done:
		t.Logf("director 3 stopped %v after SIGTERM (drain 2 s)", time.Since(drained).Round(10*time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("director 3 did not stop")
	}
	time.Sleep(2 * time.Second)
	results := load.End()
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("new connection at %v failed: %v", r.At.Sub(drained).Round(time.Millisecond), r.Err)
			}
		}
	}
	t.Logf("new connections during the drain: %d, %d failed", len(results), failed)
	check("director 3 drained")
	assert.Contains(t, ds[2].logs(), "draining")

	// A hung director (SIGSTOP): nothing closes its session; the router's
	// hold timer (3 s) withdraws it. Its XDP program forwards on meanwhile:
	// the kernel runs it, not the frozen process.
	require.NoError(t, ds[3].cmd.Process.Signal(syscall.SIGSTOP))
	hung := waitHops(t, e, []netip.Addr{e.DirectorAddrs[0]}, 10*time.Second)
	t.Logf("director 4 hung: withdrawn by the router's hold timer after %v", hung)
	assert.Greater(t, hung, 1500*time.Millisecond, "no session close: the hold timer's doing (2-3 s after the last keepalive)")
	time.Sleep(3 * time.Second)
	check("director 4 hung")
	require.NoError(t, ds[3].cmd.Process.Signal(syscall.SIGCONT))

	// It comes back (its sessions reset); then director 1, which runs
	// BFD with the router, hangs: BFD, not the hold timer, withdraws it.
	back := waitHops(t, e, []netip.Addr{e.DirectorAddrs[0], e.DirectorAddrs[3]}, 30*time.Second)
	t.Logf("director 4 resumed: announced again after %v", back)
	time.Sleep(2 * time.Second)
	require.NoError(t, ds[0].cmd.Process.Signal(syscall.SIGSTOP))
	bfd := waitHops(t, e, []netip.Addr{e.DirectorAddrs[3]}, 10*time.Second)
	t.Logf("director 1 hung: withdrawn by BFD (300 ms x 3) after %v", bfd)
	assert.Less(t, bfd, 2*time.Second, "BFD, not the 3 s hold timer")
	time.Sleep(3 * time.Second)
	check("director 1 hung")
	require.NoError(t, ds[0].cmd.Process.Signal(syscall.SIGCONT))
}

// TestECMPMixedFleet: an IPVS director (the kernel's IPVS with its own mh,
// driven by xlb --dataplane ipvs) and an XDP director in one ECMP group
// carry the same connections across the loss of either: both build IPVS's
// Maglev table, so a connection the router moves from one to the other
// reaches the same real. A fleet can move from IPVS to XDP a director at a
// time. (Where the kernel has IPVS: the 6.1 VM.)
func TestECMPMixedFleet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces, XDP, IPVS and BIRD")
	}
	testutil.RequireXDPKernel(t)
	testutil.RequireIPVS(t, probe.IPVS())
	e := testutil.NewECMP(t, 2, 3)
	require.NoError(t, e.ServeHTTP(80))
	cfg := mhConfig(e)
	ipvsDir := ecmpDirectorOn(t, e, 0, cfg, time.Second, "ipvs")
	xdpDir := ecmpDirectorOn(t, e, 1, cfg, time.Second, "xdp")
	assert.Equal(t, "ipvs", ipvsDir.status(t).Dataplane)
	assert.Contains(t, xdpDir.status(t).Dataplane, "xdp")
	waitHops(t, e, e.DirectorAddrs, 60*time.Second)

	const conns = 40
	check := holdConns(t, e, conns, 500*time.Millisecond)
	time.Sleep(3 * time.Second)
	check("IPVS and XDP directors")
	flows := []int{directorFlows(t, ipvsDir), directorFlows(t, xdpDir)}
	t.Logf("connections per director (IPVS, XDP): %v", flows)
	require.Positive(t, flows[0])
	require.Positive(t, flows[1])

	// The IPVS director's xlb killed: the kernel would forward on, but
	// the session closes and the router sends everything to XDP.
	require.NoError(t, ipvsDir.cmd.Process.Signal(syscall.SIGKILL))
	waitHops(t, e, e.DirectorAddrs[1:], 20*time.Second)
	time.Sleep(4 * time.Second)
	check("IPVS director lost")

	// It comes back (taking over IPVS's services) and rejoins.
	ipvsDir = ecmpDirectorOn(t, e, 0, cfg, time.Second, "ipvs")
	waitHops(t, e, e.DirectorAddrs, 60*time.Second)
	time.Sleep(4 * time.Second)
	check("IPVS director back")

	// The XDP director lost: everything to IPVS, sloppily scheduled by
	// the kernel's mh.
	require.NoError(t, xdpDir.cmd.Process.Signal(syscall.SIGKILL))
	waitHops(t, e, e.DirectorAddrs[:1], 20*time.Second)
	time.Sleep(4 * time.Second)
	check("XDP director lost")
}
