package health

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flapper is a real HTTP server the test makes healthy or not.
type flapper interface {
	addr() netip.AddrPort
	set(healthy bool)
}

// statusFlapper answers 200 when healthy and 500 when not.
type statusFlapper struct {
	srv    *httptest.Server
	status atomic.Int32
}

func newStatusFlapper(t *testing.T) *statusFlapper {
	f := &statusFlapper{}
	f.status.Store(http.StatusOK)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(f.status.Load()))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *statusFlapper) addr() netip.AddrPort {
	return netip.MustParseAddrPort(f.srv.Listener.Addr().String())
}

func (f *statusFlapper) set(healthy bool) {
	if healthy {
		f.status.Store(http.StatusOK)
	} else {
		f.status.Store(http.StatusInternalServerError)
	}
}

// listenFlapper listens on a fixed loopback port and answers 200 when
// healthy, and does not listen at all when not: connections are refused.
type listenFlapper struct {
	t    *testing.T
	ap   netip.AddrPort
	ln   net.Listener // nil while closed
	done chan struct{}
}

func newListenFlapper(t *testing.T) *listenFlapper {
	f := &listenFlapper{t: t, ap: closedPort(t)}
	f.set(true)
	t.Cleanup(func() { f.set(false) })
	return f
}

func (f *listenFlapper) addr() netip.AddrPort { return f.ap }

func (f *listenFlapper) set(healthy bool) {
	f.t.Helper()
	switch {
	case healthy && f.ln == nil:
		// Go listeners set SO_REUSEADDR: the port's TIME_WAIT connections
		// do not keep it from being listened on again.
		ln, err := net.Listen("tcp", f.ap.String())
		require.NoError(f.t, err, "listening on %v again", f.ap)
		f.ln, f.done = ln, make(chan struct{})
		go serveOK(ln, f.done)
	case !healthy && f.ln != nil:
		_ = f.ln.Close()
		<-f.done
		f.ln = nil
	}
}

// serveOK answers each connection's request with 200, one at a time, until
// ln is closed.
func serveOK(ln net.Listener, done chan<- struct{}) {
	defer close(done)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
		_ = c.Close()
	}
}

// recorder is a Checker that records when its checker ran and whether it
// passed.
type recorder struct {
	Checker
	clock Clock
	mu    sync.Mutex
	at    []time.Duration // since start
	up    []bool
	start time.Time
}

func (r *recorder) Check(ctx context.Context) Result {
	res := r.Checker.Check(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = append(r.at, r.clock.Now().Sub(r.start))
	r.up = append(r.up, res.Up)
	return res
}

func (r *recorder) checks() ([]time.Duration, []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.at...), append([]bool(nil), r.up...)
}

// TestMonitorFlappingServer drives HTTP_GET against a real server that flaps
// on a schedule, with retry 1 on the fake clock, and checks the transitions
// keepalived's rules predict: a single failure is retried and a success
// between two failures keeps the real up; two failures in a row take it
// down; while down, failures are neither retried nor reported again; one
// success brings it back. Nothing is reported twice.
func TestMonitorFlappingServer(t *testing.T) {
	const (
		delayLoop = 10 * time.Second
		retryIn   = 2 * time.Second
		end       = 90 * time.Second
	)
	// The server is unhealthy in these windows of time since the start,
	// [from, to), and healthy otherwise.
	unhealthy := [][2]time.Duration{
		{10 * time.Second, 12 * time.Second}, // the check at 10s fails, its retry at 12s passes
		{22 * time.Second, 24 * time.Second}, // again: never two failures in a row
		{34 * time.Second, 56 * time.Second}, // 34s and its retry at 36s fail: down; 46s fails, 56s passes: up
		{66 * time.Second, 78 * time.Second}, // 66s, 68s fail: down; 78s passes: up
	}
	healthyAt := func(d time.Duration) bool {
		for _, w := range unhealthy {
			if d >= w[0] && d < w[1] {
				return false
			}
		}
		return true
	}
	s := time.Second
	wantChecks := []time.Duration{0, 10 * s, 12 * s, 22 * s, 24 * s, 34 * s, 36 * s, 46 * s, 56 * s, 66 * s, 68 * s, 78 * s, 88 * s}
	type tr struct {
		up bool
		at time.Duration
	}
	wantTransitions := []tr{{false, 36 * s}, {true, 56 * s}, {false, 68 * s}, {true, 78 * s}}

	for _, tc := range []struct {
		name    string
		server  func(*testing.T) flapper
		downWhy string
	}{
		{"200 and 500", func(t *testing.T) flapper { return newStatusFlapper(t) }, ErrStatusCode.Error() + " 500"},
		{"listening and closed", func(t *testing.T) flapper { return newListenFlapper(t) }, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server(t)
			clock := newFakeClock()
			rec := &recorder{clock: clock, start: clock.Now(),
				Checker: &HTTPCheck{Addr: srv.addr(), Timeout: time.Second, URLs: []URL{{Path: "/"}}}}
			srv.set(healthyAt(0))
			h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "HTTP_GET " + srv.addr().String(), Checker: rec,
				Policy: Policy{DelayLoop: delayLoop, Retry: 1, DelayBeforeRetry: retryIn}}}})

			// One second at a time, so that a check due early or late is
			// seen at its own time.
			ts := drain(h.out)
			for now := time.Duration(0); now < end; {
				now += time.Second
				srv.set(healthyAt(now))
				ts = append(ts, h.step(time.Second, 1)...)
			}

			at, results := rec.checks()
			require.Equal(t, wantChecks, at, "checks every delay_loop, and retries delay_before_retry after a failure while up")
			for i, d := range at {
				assert.Equal(t, healthyAt(d), results[i], "check at %v", d)
			}

			var got []tr
			for _, x := range ts {
				got = append(got, tr{x.Up, x.At.Sub(rec.start)})
			}
			require.Equal(t, wantTransitions, got)
			for i := 1; i < len(ts); i++ {
				assert.NotEqual(t, ts[i-1].Up, ts[i].Up, "transition %d repeats the state before it", i)
			}
			for _, x := range ts {
				assert.Equal(t, "10.0.0.100:80/10.0.0.21:80", x.Real)
				assert.Nil(t, x.Weight)
				if x.Up {
					assert.Contains(t, x.Reason, "HTTP_GET")
					continue
				}
				assert.Contains(t, x.Reason, tc.downWhy)
				assert.Contains(t, x.Reason, "(after 1 retries)")
			}
			up, _ := h.m.State()
			assert.True(t, up)
		})
	}
}
