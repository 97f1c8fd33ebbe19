package health

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), c: ch})
	return ch
}

// Advance moves the clock on by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- c.now
	}
	c.waiters = kept
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// blockUntil waits, in real time, until n timers wait on the clock: the
// goroutines that set them have done all they had to do before sleeping.
func (c *fakeClock) blockUntil(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return c.pending() == n }, 5*time.Second, time.Millisecond,
		"waiting for %d timers", n)
}

// scripted is a Checker that returns its results in turn, repeating the
// last, and records when it ran.
type scripted struct {
	clock   Clock
	mu      sync.Mutex
	results []Result
	calls   []time.Time
}

func (s *scripted) Check(context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, s.clock.Now())
	r := s.results[min(len(s.calls), len(s.results))-1]
	return r
}

func (s *scripted) callTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls...)
}

var (
	resUp   = Result{Up: true}
	resDown = Result{Err: ErrTimeout}
)

func weight(w int) Result { return Result{Up: true, Weight: &w} }

// drain returns the transitions waiting in out.
func drain(out chan Transition) []Transition {
	var ts []Transition
	for {
		select {
		case t := <-out:
			ts = append(ts, t)
		default:
			return ts
		}
	}
}

// nextTransition waits for the next transition.
func nextTransition(t *testing.T, out chan Transition, within time.Duration) Transition {
	t.Helper()
	select {
	case tr := <-out:
		return tr
	case <-time.After(within):
		t.Fatalf("no transition within %v", within)
		return Transition{}
	}
}

// checkNoLeak fails the test if, once it is over, more goroutines run than
// at the call. (It polls by hand: require.Eventually runs goroutines of its
// own.)
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutines leaked: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// listenTCP is a loopback listener closed with the test.
func listenTCP(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	require.NoError(t, err)
	return ap
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	ap := addrPort(t, ln.Addr())
	require.NoError(t, ln.Close())
	return ap
}

// loopback2 is a second loopback address to bind to, which Linux routes to
// lo without configuration; tests that need it skip where it is not.
func loopback2(t *testing.T) netip.Addr {
	t.Helper()
	a := netip.MustParseAddr("127.0.0.2")
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: a.AsSlice()})
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	_ = ln.Close()
	return a
}
