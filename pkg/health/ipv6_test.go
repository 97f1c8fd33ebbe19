package health

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The checkers against real servers on [::1]. keepalived checks IPv6 reals
// the same way as IPv4 ones; these tests make sure nothing here assumes
// IPv4 (addresses, Host headers, bindto, ICMPv6 errors).

// loopback6 is ::1. If ::1 cannot be listened on it fails the test, unless
// the kernel has IPv6 disabled, where it skips: a broken IPv6 loopback on a
// kernel with IPv6 must not pass unnoticed.
func loopback6(t *testing.T) netip.Addr {
	t.Helper()
	ln, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback})
	if err == nil {
		_ = ln.Close()
		return netip.IPv6Loopback()
	}
	if why, off := ipv6Disabled(); off {
		t.Skipf("skipping: IPv6 is disabled in the kernel (%s), so [::1] cannot be listened on: %v", why, err)
	}
	t.Fatalf("cannot listen on [::1], yet the kernel has IPv6 enabled on lo: %v", err)
	return netip.Addr{}
}

// ipv6Disabled reports whether the kernel has IPv6 off for loopback: lo's
// disable_ipv6 is 1, or the kernel runs without IPv6 at all (ipv6.disable=1
// or no IPv6 support), where /proc/sys/net has no ipv6 directory.
func ipv6Disabled() (why string, disabled bool) {
	const knob = "/proc/sys/net/ipv6/conf/lo/disable_ipv6"
	b, err := os.ReadFile(knob)
	if err == nil {
		return knob + " is " + strings.TrimSpace(string(b)), strings.TrimSpace(string(b)) == "1"
	}
	if _, err := os.Stat("/proc/sys/net"); err == nil {
		if _, err := os.Stat("/proc/sys/net/ipv6"); errors.Is(err, fs.ErrNotExist) {
			return "/proc/sys/net/ipv6 does not exist", true
		}
	}
	return "", false
}

// listenTCP6 is a listener on [::1] closed with the test.
func listenTCP6(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: loopback6(t).AsSlice()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// closedPort6 is a port on [::1] nothing listens on.
func closedPort6(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: loopback6(t).AsSlice()})
	require.NoError(t, err)
	ap := addrPort(t, ln.Addr())
	require.NoError(t, ln.Close())
	return ap
}

// acceptFrom accepts connections on ln until it is closed and sends the
// address of each peer on the returned channel.
func acceptFrom(ln net.Listener) <-chan netip.AddrPort {
	from := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case from <- netip.MustParseAddrPort(c.RemoteAddr().String()):
			default:
			}
			_ = c.Close()
		}
	}()
	return from
}

func TestIPv6TCPCheck(t *testing.T) {
	ln := listenTCP6(t)
	addr := addrPort(t, ln.Addr())
	require.True(t, addr.Addr().Is6() && addr.Addr().IsLoopback(), "%v", addr)
	from := acceptFrom(ln)

	r := (&TCPCheck{Addr: addr, Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
	assert.NoError(t, r.Err)
	<-from

	t.Run("bind ::1", func(t *testing.T) {
		r := (&TCPCheck{Addr: addr, Bind: netip.IPv6Loopback(), Timeout: time.Second}).Check(context.Background())
		require.True(t, r.Up, "%v", r.Err)
		assert.Equal(t, netip.IPv6Loopback(), (<-from).Addr())
	})
	t.Run("bind ::1 and bind_port", func(t *testing.T) {
		port := closedPort6(t).Port()
		r := (&TCPCheck{Addr: addr, Bind: netip.IPv6Loopback(), BindPort: port, Timeout: time.Second}).Check(context.Background())
		require.True(t, r.Up, "%v", r.Err)
		assert.Equal(t, netip.AddrPortFrom(netip.IPv6Loopback(), port), <-from)
	})
	t.Run("refused", func(t *testing.T) {
		r := (&TCPCheck{Addr: closedPort6(t), Timeout: time.Second}).Check(context.Background())
		assert.False(t, r.Up)
		assert.ErrorIs(t, r.Err, syscall.ECONNREFUSED)
		assert.NotErrorIs(t, r.Err, ErrTimeout)
		assert.Contains(t, r.Err.Error(), "[::1]:")
	})
	t.Run("bind ::1 to an IPv4 real", func(t *testing.T) {
		// A bindto of the other family cannot reach the real: down, at once.
		r := (&TCPCheck{Addr: addrPort(t, listenTCP(t).Addr()), Bind: netip.IPv6Loopback(), Timeout: time.Second}).Check(context.Background())
		assert.False(t, r.Up)
		assert.Error(t, r.Err)
		assert.NotErrorIs(t, r.Err, ErrTimeout)
	})
	t.Run("bind 127.0.0.1 to an IPv6 real", func(t *testing.T) {
		r := (&TCPCheck{Addr: addr, Bind: netip.MustParseAddr("127.0.0.1"), Timeout: time.Second}).Check(context.Background())
		assert.False(t, r.Up)
		assert.Error(t, r.Err)
		assert.NotErrorIs(t, r.Err, ErrTimeout)
	})
}

// startWeb6 is startWeb on [::1], over TLS with tls set.
func startWeb6(t *testing.T, s *seen, useTLS bool) netip.AddrPort {
	t.Helper()
	srv := httptest.NewUnstartedServer(webServer(s))
	_ = srv.Listener.Close()
	srv.Listener = listenTCP6(t)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return addrPort(t, srv.Listener.Addr())
}

func TestIPv6HTTPCheck(t *testing.T) {
	for _, scheme := range []struct {
		name string
		tls  bool
	}{{"HTTP_GET", false}, {"SSL_GET", true}} {
		t.Run(scheme.name, func(t *testing.T) {
			var s seen
			addr := startWeb6(t, &s, scheme.tls)
			check := func(bind netip.Addr, u URL) Result {
				c := &HTTPCheck{Addr: addr, Bind: bind, TLS: scheme.tls, Timeout: time.Second, URLs: []URL{u}}
				return c.Check(context.Background())
			}

			r := check(netip.Addr{}, URL{Path: "/body/v6", Digest: md5hex("v6")})
			require.True(t, r.Up, "%v", r.Err)
			reqs := s.all()
			require.Len(t, reqs, 1)
			assert.Equal(t, "[::1]:"+strconv.Itoa(int(addr.Port())), reqs[0].Host, "the default Host is the bracketed address")
			assert.Equal(t, scheme.tls, reqs[0].TLS != nil)

			r = check(netip.IPv6Loopback(), URL{Path: "/"})
			require.True(t, r.Up, "%v", r.Err)
			reqs = s.all()
			require.Len(t, reqs, 2)
			from, err := netip.ParseAddrPort(reqs[1].RemoteAddr)
			require.NoError(t, err)
			assert.Equal(t, netip.IPv6Loopback(), from.Addr(), "bindto ::1")

			r = check(netip.Addr{}, URL{Path: "/status/500"})
			assert.False(t, r.Up)
			assert.ErrorIs(t, r.Err, ErrStatusCode)

			r = check(netip.Addr{}, URL{Path: "/body/v6", Digest: md5hex("v4")})
			assert.False(t, r.Up)
			assert.ErrorIs(t, r.Err, ErrDigest)

			r = (&HTTPCheck{Addr: closedPort6(t), TLS: scheme.tls, Timeout: time.Second, URLs: []URL{{Path: "/"}}}).Check(context.Background())
			assert.False(t, r.Up)
			assert.ErrorIs(t, r.Err, syscall.ECONNREFUSED)
			assert.NotErrorIs(t, r.Err, ErrTimeout)
		})
	}
}

func TestIPv6DNSCheck(t *testing.T) {
	lo := loopback6(t)
	s := startDNSOn(t, lo, answers(0, 1))
	require.True(t, s.addr.Addr().Is6(), "%v", s.addr)

	r := (&DNSCheck{Addr: s.addr, Type: "AAAA", Name: "example.org", Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)

	r = (&DNSCheck{Addr: s.addr, Bind: lo, Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, lo, s.lastFrom(t).Addr(), "bindto ::1")

	t.Run("SERVFAIL", func(t *testing.T) {
		s := startDNSOn(t, lo, answers(rcodeServFail, 0))
		r := (&DNSCheck{Addr: s.addr, Timeout: time.Second}).Check(context.Background())
		assert.False(t, r.Up)
		assert.ErrorIs(t, r.Err, ErrRcode)
		assert.Contains(t, r.Err.Error(), "SERVFAIL")
	})
	t.Run("nothing listens", func(t *testing.T) {
		// ICMPv6 port unreachable: refused at once, not a timeout.
		conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: lo.AsSlice()})
		require.NoError(t, err)
		addr := addrPort(t, conn.LocalAddr())
		require.NoError(t, conn.Close())
		r := (&DNSCheck{Addr: addr, Timeout: time.Second}).Check(context.Background())
		assert.False(t, r.Up)
		assert.ErrorIs(t, r.Err, syscall.ECONNREFUSED)
		assert.NotErrorIs(t, r.Err, ErrTimeout)
	})
	t.Run("no answer", func(t *testing.T) {
		s := startDNSOn(t, lo, func([]byte) [][]byte { return nil })
		r := (&DNSCheck{Addr: s.addr, Timeout: 100 * time.Millisecond}).Check(context.Background())
		assert.False(t, r.Up)
		assert.ErrorIs(t, r.Err, ErrTimeout)
	})
}
