package daemon

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

const metricsConfig = `
track_file bonus {
    file "%s"
    weight 10
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.77.1.100/32
    }
    track_file {
        bonus
    }
}
virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    quorum 2
%s
}
`

// scraper reads a director's --metrics endpoint from inside its namespace.
type scraper struct {
	c   *http.Client
	url string
}

func newScraper(ns *testutil.NS, addr string) *scraper {
	return &scraper{c: &http.Client{Transport: &http.Transport{DialContext: ns.DialContext}, Timeout: 5 * time.Second},
		url: "http://" + addr + "/metrics"}
}

func (s *scraper) scrape(t *testing.T) testutil.Metrics {
	t.Helper()
	m, err := testutil.Scrape(s.c, s.url)
	require.NoError(t, err)
	return m
}

// until scrapes until cond holds of a scrape, and returns it; the test
// fails with the last scrape's xlb series after within.
func (s *scraper) until(t *testing.T, within time.Duration, what string, cond func(testutil.Metrics) bool) testutil.Metrics {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		// The daemon may answer its control socket (which startDaemon
		// waits for) a moment before its metrics listener is up.
		m, err := testutil.Scrape(s.c, s.url)
		if err != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		require.NoError(t, err)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, name := range slices.Sorted(maps.Keys(m)) {
				if strings.HasPrefix(name, "xlb_") {
					fmt.Fprintf(&b, "\n  %s %v", name, m[name])
				}
			}
			t.Fatalf("%s: not within %v; the last scrape:%s", what, within, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// val is one series' value; the test fails if the scrape lacks it.
func val(t *testing.T, m testutil.Metrics, name string, labels ...string) float64 {
	t.Helper()
	v, err := m.Get(name, labels...)
	require.NoError(t, err)
	return v
}

// vrrpStateOf is the one state xlb_vrrp_state says the instance is in; ""
// unless exactly one of its states is 1 and the others 0.
func vrrpStateOf(m testutil.Metrics, instance string) string {
	var on []string
	n := 0
	for _, s := range m["xlb_vrrp_state"] {
		if s.Labels["instance"] != instance {
			continue
		}
		n++
		if s.Value == 1 {
			on = append(on, s.Labels["state"])
		} else if s.Value != 0 {
			return ""
		}
	}
	if n != 4 || len(on) != 1 {
		return ""
	}
	return on[0]
}

// rawRequest sends req to the VIP on a new connection from the client and
// reads the answer to its end, then closes: the client's packets are
// known, up to TCP's choices.
func rawRequest(t *testing.T, topo *testutil.DR, req string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := topo.Client.DialContext(ctx, "tcp4", "10.77.1.100:80")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	resp, err := io.ReadAll(c)
	require.NoError(t, err)
	return string(resp)
}

// The Prometheus series an operator graphs and alerts on follow what the
// director does: the VRRP state and effective priority (BACKUP, then
// MASTER; a tracked file moves the priority), the service on standby
// while BACKUP, the packets and bytes that cross the director for the
// service and for the real that got them, the connections held open, a
// real taken out by its checker (effective weight 0) and the quorum lost
// with it, and all of it back when the real is.
func TestMetricsFollowTheDirector(t *testing.T) {
	topo := testutil.NewDRServing(t)
	dir := t.TempDir()
	bonus := filepath.Join(dir, "bonus")
	require.NoError(t, os.WriteFile(bonus, []byte("0\n"), 0o644))
	cfgPath := filepath.Join(dir, "keepalived.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(metricsConfig, bonus, realBlock("10.77.0.11", 1)+realBlock("10.77.0.12", 1))), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Metrics: "127.0.0.1:9610"})
	s := newScraper(topo.Director, "127.0.0.1:9610")

	svc := []string{"protocol", "TCP", "vip", "10.77.1.100", "port", "80"}
	realLabels := func(addr string) []string { return append(svc[:6:6], "real", addr+":80") }
	r1, r2 := realLabels("10.77.0.11"), realLabels("10.77.0.12")
	inst := []string{"instance", "VI_1", "interface", "eth0", "vrid", "51"}

	// BACKUP for its master down interval (3.6 s): the VIP's service is
	// loaded and on standby.
	m := s.until(t, 3*time.Second, "xlb_vrrp_state says BACKUP", func(m testutil.Metrics) bool { return vrrpStateOf(m, "VI_1") == "BACKUP" })
	assert.EqualValues(t, 1, val(t, m, "xlb_service_standby", svc...), "a BACKUP's service is on standby")
	assert.EqualValues(t, 100, val(t, m, "xlb_vrrp_effective_priority", inst...))
	assert.EqualValues(t, 0, val(t, m, "xlb_scrape_error"))

	// MASTER: the service forwards.
	m = s.until(t, 10*time.Second, "xlb_vrrp_state says MASTER", func(m testutil.Metrics) bool { return vrrpStateOf(m, "VI_1") == "MASTER" })
	assert.Equal(t, "MASTER", d.vrrpState(t), "the metric and xlb status agree")
	assert.EqualValues(t, 0, val(t, m, "xlb_service_standby", svc...), "a MASTER's service forwards")

	// The tracked file's 3 x weight 10 on top of priority 100.
	require.NoError(t, os.WriteFile(bonus, []byte("3\n"), 0o644))
	s.until(t, 5*time.Second, "xlb_vrrp_effective_priority follows the tracked file to 130", func(m testutil.Metrics) bool {
		return val(t, m, "xlb_vrrp_effective_priority", inst...) == 130
	})

	// Both reals up: their weights in the data plane, the quorum (2) met.
	d.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	m = s.scrape(t)
	assert.EqualValues(t, 1, val(t, m, "xlb_real_effective_weight", r1...))
	assert.EqualValues(t, 1, val(t, m, "xlb_real_effective_weight", r2...))
	assert.EqualValues(t, 1, val(t, m, "xlb_service_quorum_up", svc...))

	// Traffic: ten requests, then one whose size is known. Every packet
	// from the client crosses the director and is counted once, for the
	// service and for the real that got it.
	counters := func(m testutil.Metrics, labels []string, kind string) (pkts, bytes float64) {
		return val(t, m, "xlb_"+kind+"_packets_total", labels...), val(t, m, "xlb_"+kind+"_bytes_total", labels...)
	}
	// settled is a scrape once the counts stop moving: the client's last
	// FIN crosses the director after its close.
	settled := func() testutil.Metrics {
		var prev testutil.Metrics
		return s.until(t, 5*time.Second, "the counters settle", func(m testutil.Metrics) bool {
			same := prev != nil && val(t, prev, "xlb_service_packets_total", svc...) == val(t, m, "xlb_service_packets_total", svc...)
			prev = m
			return same
		})
	}
	before := s.scrape(t)
	assert.Equal(t, map[string]int{"r1": 5, "r2": 5}, count(getN(t, topo, 10)))
	mid := settled()
	sp0, sb0 := counters(before, svc, "service")
	sp1, sb1 := counters(mid, svc, "service")
	assert.GreaterOrEqual(t, sp1-sp0, 10*4.0, "ten connections: SYN, ACK, request and FIN each at least")
	assert.GreaterOrEqual(t, sb1-sb0, 40*(sp1-sp0), "at least the IP and TCP headers of each packet")
	for _, r := range [][]string{r1, r2} {
		p0, _ := counters(before, r, "real")
		p1, _ := counters(mid, r, "real")
		assert.GreaterOrEqual(t, p1-p0, 5*4.0, "%v: five connections' packets", r)
	}

	const pad = 60000
	req := "GET / HTTP/1.1\r\nHost: 10.77.1.100\r\nX-Pad: " + strings.Repeat("x", pad) + "\r\nConnection: close\r\n\r\n"
	resp := rawRequest(t, topo, req)
	require.True(t, strings.HasPrefix(resp, "HTTP/1.1 200 OK"), "%.80q", resp)
	after := settled()
	sp2, sb2 := counters(after, svc, "service")
	p, b := sp2-sp1, sb2-sb1
	l := float64(len(req))
	t.Logf("a %d-byte request: %v packets, %v bytes counted", len(req), p, b)
	// At least SYN, ACK and FIN and the request in segments of at most
	// 1460 bytes; not twice as many.
	minPkts := 2 + math.Ceil(l/1460)
	assert.GreaterOrEqual(t, p, minPkts, "xlb_service_packets_total counts each packet")
	assert.LessOrEqual(t, p, 2*minPkts+10, "xlb_service_packets_total counts each packet once")
	// The request plus each packet's headers: IP and TCP at least (40
	// bytes), Ethernet, IP and TCP with all its options at most (94).
	assert.GreaterOrEqual(t, b, l+40*p, "xlb_service_bytes_total counts the request's bytes")
	assert.LessOrEqual(t, b, l+94*p, "xlb_service_bytes_total counts the request's bytes once")
	var gotP, gotB float64
	var got []string
	for _, r := range [][]string{r1, r2} {
		p1, b1 := counters(mid, r, "real")
		p2, b2 := counters(after, r, "real")
		if p2 != p1 {
			got = append(got, r[7])
		}
		gotP, gotB = gotP+p2-p1, gotB+b2-b1
	}
	assert.Len(t, got, 1, "one connection, one real")
	assert.Equal(t, p, gotP, "the reals' packets add up to the service's")
	assert.Equal(t, b, gotB, "the reals' bytes add up to the service's")

	// Connections held open are ActiveConn, one in two on each real (rr).
	var held []net.Conn
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := topo.Client.DialContext(ctx, "tcp4", "10.77.1.100:80")
		cancel()
		require.NoError(t, err)
		held = append(held, c)
	}
	active := func(want float64) func(testutil.Metrics) bool {
		return func(m testutil.Metrics) bool {
			return val(t, m, "xlb_real_active_connections", r1...) == want && val(t, m, "xlb_real_active_connections", r2...) == want
		}
	}
	s.until(t, 5*time.Second, "xlb_real_active_connections 2 on each real", active(2))
	for _, c := range held {
		c.Close()
	}
	s.until(t, 5*time.Second, "xlb_real_active_connections 0 once closed", active(0))

	// r1's server stops: its checker takes it out (effective weight 0),
	// and with 1 of the 2 weight the quorum needs, the quorum is lost.
	svcBefore, _ := counters(s.scrape(t), svc, "service")
	require.NoError(t, topo.StopHTTP(0))
	m = s.until(t, 10*time.Second, "r1 down: effective weight 0, quorum lost", func(m testutil.Metrics) bool {
		return val(t, m, "xlb_real_effective_weight", r1...) == 0 && val(t, m, "xlb_service_quorum_up", svc...) == 0
	})
	assert.EqualValues(t, 0, val(t, m, "xlb_real_healthy", r1...))
	assert.EqualValues(t, 1, val(t, m, "xlb_real_weight", r1...), "the configured weight stays")
	assert.EqualValues(t, 1, val(t, m, "xlb_real_effective_weight", r2...))
	assert.Equal(t, map[string]int{"r2": 4}, count(getN(t, topo, 4)), "the live real serves on without quorum (no sorry server)")
	svcDown, _ := counters(settled(), svc, "service")
	assert.Greater(t, svcDown, svcBefore, "the service's packets go on counting")

	// r1 back: weight and quorum restored, and it gets connections again.
	require.NoError(t, topo.RestartHTTP(0))
	m = s.until(t, 10*time.Second, "r1 back: effective weight 1, quorum regained", func(m testutil.Metrics) bool {
		return val(t, m, "xlb_real_effective_weight", r1...) == 1 && val(t, m, "xlb_service_quorum_up", svc...) == 1
	})
	assert.EqualValues(t, 1, val(t, m, "xlb_real_healthy", r1...))
	d.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})
	r1Back, _ := counters(s.scrape(t), r1, "real")
	assert.Contains(t, count(getN(t, topo, 4)), "r1")
	r1Now, _ := counters(settled(), r1, "real")
	assert.Greater(t, r1Now, r1Back, "r1's packets are counted again")

}

// A Prometheus counter goes back to zero only when its process restarts
// (and -Z keeps xlb's monotonic, docs/DESIGN.md): a real's totals neither
// fall while its checker keeps it out of the pool nor start again from
// zero when it returns. IPVS keeps a removed real's counters (in its
// trash) and gives them back when the real is added again.
func TestRealCountersSurviveItsCheckerTakingItOut(t *testing.T) {
	topo := testutil.NewDRServing(t)
	cfgPath := filepath.Join(t.TempDir(), "keepalived.conf")
	// keepConfig: no VRRP, so nothing waits for a master down interval.
	require.NoError(t, os.WriteFile(cfgPath, []byte(keepConfig), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfgPath, Interfaces: []string{"eth0"}, Metrics: "127.0.0.1:9610"})
	s := newScraper(topo.Director, "127.0.0.1:9610")
	r1 := []string{"protocol", "TCP", "vip", "10.77.1.100", "port", "80", "real", "10.77.0.11:80"}
	reals := map[string]bool{"10.77.0.11": true, "10.77.0.12": true}
	d.waitReals(t, reals)
	assert.Equal(t, map[string]int{"r1": 3, "r2": 3}, count(getN(t, topo, 6)))
	packets := func(m testutil.Metrics) float64 { return val(t, m, "xlb_real_packets_total", r1...) }
	var before float64
	s.until(t, 5*time.Second, "r1's packets counted", func(m testutil.Metrics) bool { before = packets(m); return before >= 3*4 })

	require.NoError(t, topo.StopHTTP(0))
	m := s.until(t, 10*time.Second, "r1 out: effective weight 0", func(m testutil.Metrics) bool {
		return val(t, m, "xlb_real_effective_weight", r1...) == 0
	})
	out := packets(m)
	require.NoError(t, topo.RestartHTTP(0))
	m = s.until(t, 10*time.Second, "r1 back: effective weight 1", func(m testutil.Metrics) bool {
		return val(t, m, "xlb_real_effective_weight", r1...) == 1
	})
	back := packets(m)
	t.Logf("xlb_real_packets_total of r1: %v in the pool, %v out of it, %v back", before, out, back)
	assert.GreaterOrEqual(t, out, before, "xlb_real_packets_total of r1 fell while its checker kept it out")
	assert.GreaterOrEqual(t, back, before, "xlb_real_packets_total of r1 started again from zero when it came back")
	st := d.status(t)
	require.Len(t, st.Services, 1)
	assert.GreaterOrEqual(t, float64(st.Services[0].Reals[0].Counters.Packets), before, "xlb status: r1's packets started again from zero")

	// Back in the pool, it counts on from there.
	assert.Contains(t, count(getN(t, topo, 6)), "r1")
	s.until(t, 5*time.Second, "r1's packets counted on from where they were", func(m testutil.Metrics) bool { return packets(m) > back })
}
