package health

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// udpServer is a real UDP server on loopback: it answers each datagram
// with reply(datagram), or not at all when reply returns nil.
type udpServer struct {
	conn  *net.UDPConn
	reply atomic.Pointer[func([]byte) []byte]
	mu    sync.Mutex
	got   [][]byte
	done  chan struct{}
}

func newUDPServer(t *testing.T, reply func([]byte) []byte) *udpServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s := &udpServer{conn: conn, done: make(chan struct{})}
	s.reply.Store(&reply)
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			d := append([]byte(nil), buf[:n]...)
			s.mu.Lock()
			s.got = append(s.got, d)
			s.mu.Unlock()
			if r := (*s.reply.Load())(d); r != nil {
				_, _ = conn.WriteToUDP(r, from)
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *udpServer) addr() netip.AddrPort {
	return netip.MustParseAddrPort(s.conn.LocalAddr().String())
}

// close stops the server: the port is then closed, and the kernel answers
// datagrams to it with ICMP port unreachable.
func (s *udpServer) close() {
	_ = s.conn.Close()
	<-s.done
}

func (s *udpServer) datagrams() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.got...)
}

func echo(b []byte) []byte                { return b }
func silent([]byte) []byte                { return nil }
func answer(s string) func([]byte) []byte { return func([]byte) []byte { return []byte(s) } }

func TestUDPCheckPayload(t *testing.T) {
	s := newUDPServer(t, echo)
	r := (&UDPCheck{Addr: s.addr(), Timeout: time.Second}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	r = (&UDPCheck{Addr: s.addr(), Timeout: time.Second, Payload: []byte{0xde, 0xad, 0xbe, 0xef}}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	got := s.datagrams()
	require.Len(t, got, 2)
	assert.Equal(t, "keepalived check - keepalived ch", string(got[0]), "keepalived's default payload")
	assert.Equal(t, []byte{0xde, 0xad, 0xbe, 0xef}, got[1])
}

func TestUDPCheckPortUnreachable(t *testing.T) {
	s := newUDPServer(t, echo)
	c := &UDPCheck{Addr: s.addr(), Timeout: 2 * time.Second}
	require.True(t, c.Check(context.Background()).Up)
	s.close()
	start := time.Now()
	r := c.Check(context.Background())
	assert.False(t, r.Up, "a closed port is down")
	assert.ErrorIs(t, r.Err, ErrUnreachable)
	assert.Contains(t, r.Err.Error(), "port unreachable")
	assert.Less(t, time.Since(start), time.Second, "the ICMP error ends the wait, not the timeout")
}

func TestUDPCheckNoReply(t *testing.T) {
	s := newUDPServer(t, silent)
	r := (&UDPCheck{Addr: s.addr(), Timeout: 200 * time.Millisecond}).Check(context.Background())
	assert.True(t, r.Up, "without require_reply, silence is up: %v", r.Err)
	r = (&UDPCheck{Addr: s.addr(), Timeout: 200 * time.Millisecond, RequireReply: true, MaxReplyLength: DefaultMaxReplyLength}).Check(context.Background())
	assert.False(t, r.Up, "with require_reply, silence is down")
	assert.ErrorIs(t, r.Err, ErrTimeout)
}

func TestUDPCheckReplyPattern(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reply    string
		data     []byte
		mask     []byte
		min, max int
		up       bool
	}{
		{"any reply", "whatever", nil, nil, 0, 255, true},
		{"exact", "PONG", []byte("PONG"), nil, 0, 255, true},
		{"mismatch", "PANG", []byte("PONG"), nil, 0, 255, false},
		{"pattern longer than the reply: compared as far as the reply goes", "PO", []byte("PONG"), nil, 0, 255, true},
		{"reply longer than the pattern", "PONGPONG", []byte("PONG"), nil, 0, 255, true},
		{"wildcard nibbles", "\x12\x34\x56", []byte{0x12, 0x00, 0x50}, []byte{0, 0xff, 0x0f}, 0, 255, true},
		{"wildcard nibbles, other bits differ", "\x12\x34\x66", []byte{0x12, 0x00, 0x50}, []byte{0, 0xff, 0x0f}, 0, 255, false},
		{"too short", "PO", []byte("P"), nil, 3, 255, false},
		{"too long", "PONG", []byte("P"), nil, 0, 3, false},
		{"longer than 255 by default", string(make([]byte, 300)), []byte{0}, nil, 0, 255, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newUDPServer(t, answer(tc.reply))
			r := (&UDPCheck{Addr: s.addr(), Timeout: time.Second, RequireReply: true, ReplyData: tc.data, ReplyMask: tc.mask,
				MinReplyLength: tc.min, MaxReplyLength: tc.max}).Check(context.Background())
			assert.Equal(t, tc.up, r.Up, "%v", r.Err)
			if !tc.up {
				assert.ErrorIs(t, r.Err, ErrReplyMismatch)
			}
		})
	}
}

// TestUDPRealLeavesAndRejoins runs UDP_CHECK with require_reply on the
// Monitor: the real leaves the pool when its server answers wrongly, and
// when the port closes, and rejoins when it answers right again.
func TestUDPRealLeavesAndRejoins(t *testing.T) {
	s := newUDPServer(t, answer("OK"))
	clock := newFakeClock()
	h := startMonitorClock(t, clock, MonitorConfig{Probes: []Probe{{Name: "UDP_CHECK " + s.addr().String(),
		Checker: &UDPCheck{Addr: s.addr(), Timeout: time.Second, RequireReply: true, ReplyData: []byte("OK"), MaxReplyLength: DefaultMaxReplyLength},
		Policy:  Policy{DelayLoop: 10 * time.Second}}}})
	assert.Empty(t, drain(h.out))

	bad := answer("NO")
	s.reply.Store(&bad)
	ts := h.step(10*time.Second, 1)
	require.Len(t, ts, 1, "a wrong answer takes it down")
	assert.False(t, ts[0].Up)
	assert.Contains(t, ts[0].Reason, ErrReplyMismatch.Error())

	good := answer("OK")
	s.reply.Store(&good)
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1)
	assert.True(t, ts[0].Up)

	s.close()
	ts = h.step(10*time.Second, 1)
	require.Len(t, ts, 1, "a closed port takes it down")
	assert.False(t, ts[0].Up)
	assert.Contains(t, ts[0].Reason, "port unreachable")
}
