package health

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTCPCheckUp(t *testing.T) {
	ln := listenTCP(t)
	r := (&TCPCheck{Addr: addrPort(t, ln.Addr()), Timeout: time.Second}).Check(context.Background())
	assert.True(t, r.Up, "%v", r.Err)
	assert.NoError(t, r.Err)
	assert.Nil(t, r.Weight)
}

func TestTCPCheckRefused(t *testing.T) {
	r := (&TCPCheck{Addr: closedPort(t), Timeout: time.Second}).Check(context.Background())
	assert.False(t, r.Up)
	require.Error(t, r.Err)
	assert.ErrorIs(t, r.Err, syscall.ECONNREFUSED)
	assert.NotErrorIs(t, r.Err, ErrTimeout)
}

func TestTCPCheckNoAddress(t *testing.T) {
	r := (&TCPCheck{}).Check(context.Background())
	assert.False(t, r.Up)
	assert.Error(t, r.Err)
}

// blackhole is a loopback port whose SYNs the kernel drops: a listener with
// a backlog of 0 whose one queued connection is never accepted.
func blackhole(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	filler, err := net.DialTimeout("tcp", ap.String(), time.Second)
	require.NoError(t, err, "the first connection fills the accept queue")
	t.Cleanup(func() { _ = filler.Close() })
	return ap
}

func TestTCPCheckConnectTimeout(t *testing.T) {
	addr := blackhole(t)
	start := time.Now()
	r := (&TCPCheck{Addr: addr, Timeout: 200 * time.Millisecond}).Check(context.Background())
	took := time.Since(start)
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, ErrTimeout)
	assert.Contains(t, r.Err.Error(), "after 200ms")
	assert.GreaterOrEqual(t, took, 200*time.Millisecond)
	assert.Less(t, took, 2*time.Second)
}

func TestTCPCheckCancelled(t *testing.T) {
	addr := blackhole(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	r := (&TCPCheck{Addr: addr, Timeout: 5 * time.Second}).Check(ctx)
	assert.False(t, r.Up)
	assert.ErrorIs(t, r.Err, context.Canceled)
	assert.NotErrorIs(t, r.Err, ErrTimeout)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestTCPCheckBindTo(t *testing.T) {
	src := loopback2(t)
	ln := listenTCP(t)
	from := make(chan netip.AddrPort, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		from <- netip.MustParseAddrPort(c.RemoteAddr().String())
		_ = c.Close()
	}()
	r := (&TCPCheck{Addr: addrPort(t, ln.Addr()), Bind: src, Timeout: time.Second}).Check(context.Background())
	require.True(t, r.Up, "%v", r.Err)
	assert.Equal(t, src, (<-from).Addr())
}

func TestTCPCheckBindUnavailable(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is on no interface: bind fails before any
	// packet is sent.
	ln := listenTCP(t)
	r := (&TCPCheck{Addr: addrPort(t, ln.Addr()), Bind: netip.MustParseAddr("192.0.2.1")}).Check(context.Background())
	assert.False(t, r.Up)
	assert.True(t, errors.Is(r.Err, syscall.EADDRNOTAVAIL), "%v", r.Err)
}
