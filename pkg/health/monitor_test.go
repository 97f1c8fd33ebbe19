package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProbeStateObserve(t *testing.T) {
	p := &Policy{DelayLoop: 10 * time.Second, Retry: 2, DelayBeforeRetry: time.Second}
	type step struct {
		r       Result
		next    time.Duration
		changed bool
		up      bool
	}
	for _, tc := range []struct {
		name  string
		start probeState
		steps []step
	}{
		{"up: retry twice, then down", probeState{up: true}, []step{
			{resDown, time.Second, false, true},
			{resDown, time.Second, false, true},
			{resDown, 10 * time.Second, true, false},
		}},
		{"a success resets the retries", probeState{up: true}, []step{
			{resDown, time.Second, false, true},
			{resUp, 10 * time.Second, false, true},
			{resDown, time.Second, false, true},
			{resDown, time.Second, false, true},
			{resDown, 10 * time.Second, true, false},
		}},
		{"down: no retries, up at once", probeState{up: false}, []step{
			{resDown, 10 * time.Second, false, false},
			{resDown, 10 * time.Second, false, false},
			{resUp, 10 * time.Second, true, true},
		}},
		{"alpha: failures are not retried", probeState{}, []step{
			{resDown, 10 * time.Second, false, false},
			{resDown, 10 * time.Second, false, false},
		}},
		{"alpha: up on the first success", probeState{}, []step{
			{resUp, 10 * time.Second, true, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start
			for i, st := range tc.steps {
				next, changed := s.observe(st.r, p)
				assert.Equal(t, st.next, next, "step %d", i)
				assert.Equal(t, st.changed, changed, "step %d", i)
				assert.Equal(t, st.up, s.up, "step %d", i)
			}
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	var p Policy
	assert.Equal(t, DefaultDelayLoop, p.delayLoop())
	assert.Equal(t, DefaultDelayLoop, p.delayBeforeRetry())
	p.DelayLoop = 7 * time.Second
	assert.Equal(t, 7*time.Second, p.delayBeforeRetry(), "delay_before_retry defaults to delay_loop")
}

// harness runs a Monitor on a fake clock.
type harness struct {
	t     *testing.T
	clock *fakeClock
	m     *Monitor
	out   chan Transition
	errc  chan error
}

// step advances the clock by d and waits for the n probes to sleep again.
func (h *harness) step(d time.Duration, n int) []Transition {
	h.t.Helper()
	h.clock.Advance(d)
	h.clock.blockUntil(h.t, n)
	return drain(h.out)
}

func checker(clock Clock, results ...Result) *scripted {
	return &scripted{clock: clock, results: results}
}

func TestMonitorRetryBeforeDown(t *testing.T) {
	clock := newFakeClock()
	chk := checker(clock, resDown)
	h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "TCP_CHECK 10.0.0.21:80", Checker: chk,
		Policy: Policy{DelayLoop: 10 * time.Second, Retry: 2, DelayBeforeRetry: time.Second}}}})
	t0 := clock.Now().Add(0)
	up, _ := h.m.State()
	assert.True(t, up, "without alpha a real starts up")
	assert.Empty(t, drain(h.out), "first failure: retry 1 of 2")
	assert.Empty(t, h.step(time.Second, 1), "second failure: retry 2 of 2")
	ts := h.step(time.Second, 1)
	require.Len(t, ts, 1, "third failure: down")
	assert.False(t, ts[0].Up)
	assert.Equal(t, "10.0.0.100:80/10.0.0.21:80", ts[0].Real)
	assert.Contains(t, ts[0].Reason, "TCP_CHECK 10.0.0.21:80")
	assert.Contains(t, ts[0].Reason, ErrTimeout.Error())
	assert.Equal(t, t0.Add(2*time.Second), ts[0].At)
	up, _ = h.m.State()
	assert.False(t, up)

	// Down: failures are not retried, and not reported again.
	assert.Empty(t, h.step(time.Second, 1))
	assert.Len(t, chk.callTimes(), 3, "no check before delay_loop")
	assert.Empty(t, h.step(9*time.Second, 1))
	assert.Empty(t, h.step(10*time.Second, 1))
	assert.Equal(t, []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(12 * time.Second), t0.Add(22 * time.Second)},
		chk.callTimes())
}

// startMonitorClock is startMonitor with the test's clock.
func startMonitorClock(t *testing.T, clock *fakeClock, cfg MonitorConfig) *harness {
	t.Helper()
	checkNoLeak(t)
	h := &harness{t: t, clock: clock, out: make(chan Transition, 100), errc: make(chan error, 1)}
	cfg.Clock = clock
	if cfg.Real == "" {
		cfg.Real = "10.0.0.100:80/10.0.0.21:80"
	}
	h.m = NewMonitor(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.errc <- h.m.Run(ctx, h.out) }()
	t.Cleanup(func() {
		cancel()
		<-h.errc
	})
	clock.blockUntil(t, len(cfg.Probes))
	return h
}

func TestMonitorUpAtOnce(t *testing.T) {
	clock := newFakeClock()
	chk := checker(clock, resDown, resDown, resUp, resUp, resUp)
	h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "HTTP_GET", Checker: chk,
		Policy: Policy{DelayLoop: 10 * time.Second, Retry: 1, DelayBeforeRetry: 3 * time.Second}}}})
	assert.Empty(t, drain(h.out))
	ts := h.step(3*time.Second, 1)
	require.Len(t, ts, 1)
	assert.False(t, ts[0].Up)
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1, "one success brings it up")
	assert.True(t, ts[0].Up)
	assert.Contains(t, ts[0].Reason, "HTTP_GET")
	assert.Empty(t, h.step(10*time.Second, 1), "and it stays up without repeating itself")
	assert.Empty(t, h.step(10*time.Second, 1))
}

func TestMonitorAlpha(t *testing.T) {
	t.Run("alpha starts down", func(t *testing.T) {
		clock := newFakeClock()
		m := NewMonitor(MonitorConfig{Probes: []Probe{{Checker: checker(clock, resUp), Policy: Policy{Alpha: true}}}})
		up, w := m.State()
		assert.False(t, up)
		assert.Nil(t, w)

		h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "MISC_CHECK", Checker: checker(clock, resUp),
			Policy: Policy{DelayLoop: 5 * time.Second, Alpha: true}}}})
		ts := drain(h.out)
		require.Len(t, ts, 1, "the first success is a transition")
		assert.True(t, ts[0].Up)
		assert.Empty(t, h.step(5*time.Second, 1))
	})
	t.Run("without alpha a success is no transition", func(t *testing.T) {
		clock := newFakeClock()
		h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Checker: checker(clock, resUp),
			Policy: Policy{DelayLoop: 5 * time.Second}}}})
		assert.Empty(t, drain(h.out))
		assert.Empty(t, h.step(5*time.Second, 1))
	})
	t.Run("alpha and failing: no transition", func(t *testing.T) {
		clock := newFakeClock()
		chk := checker(clock, resDown)
		h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Checker: chk,
			Policy: Policy{DelayLoop: 5 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Alpha: true}}}})
		assert.Empty(t, h.step(time.Second, 1))
		assert.Len(t, chk.callTimes(), 1, "no retry for a checker that is down")
		assert.Empty(t, h.step(4*time.Second, 1))
		assert.Len(t, chk.callTimes(), 2)
	})
}

func TestMonitorAllCheckersMustBeUp(t *testing.T) {
	// Both checkers run at the same instants, in either order, so at most
	// one of them changes the real's state at each.
	clock := newFakeClock()
	a := checker(clock, resUp, resDown, resDown, resUp)
	b := checker(clock, resUp, resUp, resDown, resDown, resUp)
	pol := Policy{DelayLoop: 10 * time.Second}
	h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{
		{Name: "TCP_CHECK", Checker: a, Policy: pol},
		{Name: "HTTP_GET", Checker: b, Policy: pol},
	}})
	assert.Empty(t, drain(h.out))
	ts := h.step(10*time.Second, 2)
	require.Len(t, ts, 1, "one checker down takes the real down")
	assert.False(t, ts[0].Up)
	assert.Contains(t, ts[0].Reason, "TCP_CHECK")
	assert.Empty(t, h.step(10*time.Second, 2), "both down: still down")
	assert.Empty(t, h.step(10*time.Second, 2), "TCP_CHECK up, HTTP_GET down: still down")
	ts = h.step(10*time.Second, 2)
	require.Len(t, ts, 1, "both up: up")
	assert.True(t, ts[0].Up)
	assert.Contains(t, ts[0].Reason, "HTTP_GET")
	assert.Empty(t, h.step(10*time.Second, 2))
}

func TestMonitorDynamicWeight(t *testing.T) {
	clock := newFakeClock()
	chk := checker(clock, weight(3), weight(3), weight(5), resDown, weight(5), resUp)
	h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "MISC_CHECK", Checker: chk,
		Policy: Policy{DelayLoop: 10 * time.Second}}}})
	ts := drain(h.out)
	require.Len(t, ts, 1, "a new weight is a transition")
	assert.True(t, ts[0].Up)
	assert.Equal(t, ptr(3), ts[0].Weight)
	assert.Contains(t, ts[0].Reason, "weight 3")
	assert.Empty(t, h.step(10*time.Second, 1), "the same weight is not")
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1)
	assert.Equal(t, ptr(5), ts[0].Weight)
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1)
	assert.False(t, ts[0].Up)
	assert.Equal(t, ptr(5), ts[0].Weight, "down keeps the last weight")
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1)
	assert.True(t, ts[0].Up)
	assert.Empty(t, h.step(10*time.Second, 1), "exit 0 leaves the weight alone")
	up, w := h.m.State()
	assert.True(t, up)
	assert.Equal(t, ptr(5), w)
}

func TestMonitorStopOmega(t *testing.T) {
	for _, tc := range []struct {
		name   string
		omega  bool
		result Result
		final  bool
	}{
		{"omega while up reports down", true, resUp, true},
		{"omega while down reports nothing", true, resDown, false},
		{"no omega reports nothing", false, resUp, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			h := startMonitorClock(t, clock, MonitorConfig{Omega: tc.omega, Probes: []Probe{{Name: "TCP_CHECK",
				Checker: checker(clock, tc.result), Policy: Policy{DelayLoop: 10 * time.Second}}}})
			before := drain(h.out)
			h.m.Stop()
			h.m.Stop() // twice is fine
			select {
			case err := <-h.errc:
				require.NoError(t, err)
				h.errc <- err // for the cleanup
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after Stop")
			}
			ts := drain(h.out)
			if !tc.final {
				assert.Empty(t, ts, "before: %v", before)
				return
			}
			require.Len(t, ts, 1)
			assert.False(t, ts[0].Up)
			assert.Contains(t, ts[0].Reason, "omega")
			up, _ := h.m.State()
			assert.False(t, up)
		})
	}
}

func TestMonitorCancelStopsEverything(t *testing.T) {
	checkNoLeak(t)
	started := make(chan struct{}, 1)
	blocking := CheckerFunc(func(ctx context.Context) Result {
		started <- struct{}{}
		<-ctx.Done()
		return Result{Err: ctx.Err()}
	})
	m := NewMonitor(MonitorConfig{Omega: true, Clock: newFakeClock(), Probes: []Probe{
		{Name: "MISC_CHECK", Checker: blocking},
		{Name: "TCP_CHECK", Checker: blocking},
	}})
	out := make(chan Transition) // nobody reads: nothing may block on it
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx, out) }()
	<-started
	<-started
	cancel()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	assert.Error(t, m.Run(context.Background(), out), "a Monitor runs once")
}

func TestMonitorNoProbes(t *testing.T) {
	checkNoLeak(t)
	m := NewMonitor(MonitorConfig{Omega: true})
	up, _ := m.State()
	assert.True(t, up, "a real without checkers is up")
	out := make(chan Transition, 1)
	m.Stop()
	require.NoError(t, m.Run(context.Background(), out))
	ts := drain(out)
	require.Len(t, ts, 1, "omega")
	assert.False(t, ts[0].Up)
}

// TestMonitorRealClock runs HTTP_GET and TCP_CHECK against real servers on
// the real clock.
func TestMonitorRealClock(t *testing.T) {
	checkNoLeak(t)
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	addr := addrPort(t, srv.Listener.Addr())
	pol := Policy{DelayLoop: 20 * time.Millisecond, Retry: 1, DelayBeforeRetry: 10 * time.Millisecond, Alpha: true}
	m := NewMonitor(MonitorConfig{Real: "web", Omega: true, Probes: []Probe{
		{Name: "HTTP_GET " + addr.String(), Checker: &HTTPCheck{Addr: addr, Timeout: time.Second, URLs: []URL{{Path: "/"}}}, Policy: pol},
		{Name: "TCP_CHECK " + addr.String(), Checker: &TCPCheck{Addr: addr, Timeout: time.Second}, Policy: pol},
	}})
	out := make(chan Transition)
	errc := make(chan error, 1)
	go func() { errc <- m.Run(context.Background(), out) }()

	tr := nextTransition(t, out, 5*time.Second)
	assert.Equal(t, Transition{Real: "web", Up: true}, Transition{Real: tr.Real, Up: tr.Up}, "alpha: up once both pass")
	status.Store(http.StatusServiceUnavailable)
	tr = nextTransition(t, out, 5*time.Second)
	assert.False(t, tr.Up)
	assert.Contains(t, tr.Reason, ErrStatusCode.Error()+" 503")
	status.Store(http.StatusOK)
	tr = nextTransition(t, out, 5*time.Second)
	assert.True(t, tr.Up)

	m.Stop()
	tr = nextTransition(t, out, 5*time.Second)
	assert.False(t, tr.Up, "omega")
	require.NoError(t, <-errc)
}
