package health

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smtpServer is a real SMTP server on loopback whose answers the test sets.
type smtpServer struct {
	ln     net.Listener
	banner atomic.Value // string: the greeting, "220 mx.test ESMTP" when healthy
	helo   atomic.Value // string: the answer to HELO
	quit   atomic.Value // string: the answer to QUIT; "" closes without one
	mu     sync.Mutex
	heard  []string // the lines received, over all connections
	conns  atomic.Int32
	wg     sync.WaitGroup
}

func newSMTPServer(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &smtpServer{ln: ln}
	s.setHealthy(true)
	s.quit.Store("221 bye")
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *smtpServer) addr() netip.AddrPort { return netip.MustParseAddrPort(s.ln.Addr().String()) }

// setHealthy makes the server greet with 220 and accept HELO, or refuse
// the session with 554 as a mail server out of service does.
func (s *smtpServer) setHealthy(ok bool) {
	if ok {
		s.banner.Store("220 mx.test ESMTP")
		s.helo.Store("250 mx.test")
	} else {
		s.banner.Store("554 mx.test out of service")
		s.helo.Store("503 bad sequence")
	}
}

func (s *smtpServer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.heard...)
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	say := func(l string) { _, _ = io.WriteString(c, l+"\r\n") }
	say(s.banner.Load().(string))
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		l = strings.TrimRight(l, "\r\n")
		s.mu.Lock()
		s.heard = append(s.heard, l)
		s.mu.Unlock()
		switch {
		case strings.HasPrefix(l, "HELO "):
			say(s.helo.Load().(string))
		case l == "QUIT":
			if q := s.quit.Load().(string); q != "" {
				say(q)
			}
			return
		default:
			say("500 what")
		}
	}
}

func TestSMTPCheckConversation(t *testing.T) {
	s := newSMTPServer(t)
	r := (&SMTPCheck{Addr: s.addr(), Timeout: time.Second}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, []string{"HELO " + DefaultHeloName, "QUIT"}, s.lines(), "keepalived's default helo_name, then QUIT")

	r = (&SMTPCheck{Addr: s.addr(), Timeout: time.Second, HeloName: "lb1.example.org"}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, "HELO lb1.example.org", s.lines()[2])
}

func TestSMTPCheckReplies(t *testing.T) {
	for _, tc := range []struct {
		name, banner, helo, quit string
		up                       bool
		why                      string
	}{
		{"healthy", "220 mx ESMTP", "250 mx", "221 bye", true, ""},
		{"bare codes", "220", "250", "221", true, ""},
		{"out of service", "554 no service", "503 x", "221", false, `banner from 127.0.0.1`},
		{"HELO refused", "220 mx", "550 go away", "221", false, "HELO response"},
		{"multi-line banner", "220-mx first\r\n220 mx", "250 mx", "221", false, `"220-mx first"`},
		{"multi-line HELO answer", "220 mx", "250-mx\r\n250 SIZE 1", "221", false, `"250-mx"`},
		{"code not three digits", "2200 mx", "250", "221", false, "banner"},
		{"closed without answering QUIT", "220 mx", "250 mx", "", false, "QUIT response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSMTPServer(t)
			s.banner.Store(tc.banner)
			s.helo.Store(tc.helo)
			s.quit.Store(tc.quit)
			r := (&SMTPCheck{Addr: s.addr(), Timeout: time.Second}).Check(context.Background())
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			if !tc.up {
				require.Error(t, r.Err)
				assert.Contains(t, r.Err.Error(), tc.why)
			}
		})
	}
}

func TestSMTPCheckRefused(t *testing.T) {
	r := (&SMTPCheck{Addr: closedPort(t), Timeout: time.Second}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, syscall.ECONNREFUSED)
}

func TestSMTPCheckSilentServer(t *testing.T) {
	// A server that accepts and never greets: the banner read times out.
	ln := listenTCP(t)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			_ = c.Close()
		}
	}()
	start := time.Now()
	r := (&SMTPCheck{Addr: addrPort(t, ln.Addr()), Timeout: 200 * time.Millisecond}).Check(context.Background())
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrTimeout)
	assert.Contains(t, r.Err.Error(), "banner")
	assert.Less(t, time.Since(start), 1500*time.Millisecond)
}

// TestSMTPRealLeavesAndRejoins runs SMTP_CHECK with retry 1 on the
// Monitor against a real SMTP server: when the server turns away sessions
// with 554 the real goes down after one retry, and comes back on the first
// good session.
func TestSMTPRealLeavesAndRejoins(t *testing.T) {
	s := newSMTPServer(t)
	clock := newFakeClock()
	h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "SMTP_CHECK " + s.addr().String(),
		Checker: &SMTPCheck{Addr: s.addr(), Timeout: time.Second},
		Policy:  Policy{DelayLoop: 10 * time.Second, Retry: 1, DelayBeforeRetry: 2 * time.Second}}}})
	assert.Empty(t, drain(h.out))
	assert.EqualValues(t, 1, s.conns.Load())

	s.setHealthy(false)
	assert.Empty(t, h.step(10*time.Second, 1), "the first 554 is retried")
	ts := h.step(2*time.Second, 1)
	require.Len(t, ts, 1, "the retry fails too: down")
	assert.False(t, ts[0].Up)
	assert.Contains(t, ts[0].Reason, "554 mx.test out of service")
	assert.Contains(t, ts[0].Reason, "after 1 retries")
	assert.EqualValues(t, 3, s.conns.Load())
	assert.Empty(t, h.step(10*time.Second, 1), "still refused: no news")

	s.setHealthy(true)
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1)
	assert.True(t, ts[0].Up, "one good session brings it back")
	up, _ := h.m.State()
	assert.True(t, up)
}
