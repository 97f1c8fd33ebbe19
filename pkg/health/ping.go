package health

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// pingDataLen is keepalived's ICMP_BUFSIZE: the echo's data, keepalived's
// check text.
const pingDataLen = 128

// pingSeq numbers the echoes of all PING_CHECKs, as keepalived's seq_no.
var pingSeq atomic.Uint32

// PingCheck is keepalived's PING_CHECK (check_ping.c): one ICMP echo
// request (ICMPv6 for an IPv6 address) to Addr, up when its reply arrives
// within Timeout.
//
// The echo goes from an unprivileged datagram ICMP socket (SOCK_DGRAM,
// IPPROTO_ICMP) where net.ipv4.ping_group_range lets this process's group
// open one, and from a raw socket (which needs CAP_NET_RAW) otherwise.
// keepalived rewrites ping_group_range to let root open the datagram
// socket; xlb leaves the sysctl alone. As in keepalived, the socket is not
// bound: bindto does not apply, and an ICMP error (host unreachable) is
// not waited for but shows as the missing reply.
type PingCheck struct {
	Addr    netip.Addr    // connect_ip
	Timeout time.Duration // connect_timeout; zero means DefaultConnectTimeout
}

// Check sends one echo request and waits for its reply.
func (c *PingCheck) Check(ctx context.Context) Result {
	if !c.Addr.IsValid() {
		return down(errors.New("ping check: no address to ping"))
	}
	addr := c.Addr.Unmap()
	timeout := connectTimeout(c.Timeout)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	p, err := listenICMP(addr.Is6())
	if err != nil {
		return down(fmt.Errorf("ping check %s: %w", addr, err))
	}
	defer p.conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = p.conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	seq := int(uint16(pingSeq.Add(1)))
	echo := &icmp.Echo{ID: p.id, Seq: seq, Data: checkPattern(pingDataLen)}
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: echo}
	if addr.Is6() {
		msg.Type = ipv6.ICMPTypeEchoRequest
	}
	b, err := msg.Marshal(nil) // the kernel sums ICMPv6 (and datagram ICMP)
	if err != nil {
		return down(fmt.Errorf("ping check %s: %w", addr, err))
	}
	if _, err := p.conn.WriteTo(b, p.dst(addr)); err != nil {
		return down(ioError(parent, "ping check: send echo to "+addr.String(), timeout, err))
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			if isTimeout(err) && parent.Err() == nil {
				return down(fmt.Errorf("ping check: no echo reply from %s: %w after %v", addr, ErrTimeout, timeout))
			}
			return down(ioError(parent, "ping check: read echo reply from "+addr.String(), timeout, err))
		}
		if p.isReply(buf[:n], from, addr, seq) {
			return up()
		}
	}
}

// pinger is an ICMP socket and how to talk through it.
type pinger struct {
	conn *icmp.PacketConn
	raw  bool // a raw socket: the ID is ours, and every ICMP message arrives
	id   int
	six  bool
}

// listenICMP opens a datagram ICMP socket where ping_group_range allows,
// and a raw one otherwise.
func listenICMP(six bool) (*pinger, error) {
	dgram, raw, any := "udp4", "ip4:icmp", "0.0.0.0"
	if six {
		dgram, raw, any = "udp6", "ip6:ipv6-icmp", "::"
	}
	conn, derr := icmp.ListenPacket(dgram, any)
	if derr == nil {
		// The kernel uses the socket's port as the echo ID.
		id := 0
		if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
			id = ua.Port
		}
		return &pinger{conn: conn, id: id, six: six}, nil
	}
	conn, rerr := icmp.ListenPacket(raw, any)
	if rerr != nil {
		return nil, fmt.Errorf("open an ICMP socket: datagram (ping_group_range): %w; raw: %w", derr, rerr)
	}
	return &pinger{conn: conn, raw: true, id: int(rand.N[uint16](0xffff)) + 1, six: six}, nil
}

func (p *pinger) dst(a netip.Addr) net.Addr {
	if p.raw {
		return &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	return &net.UDPAddr{IP: a.AsSlice(), Zone: a.Zone()}
}

// isReply reports whether b, from from, is the reply to the echo seq sent
// to a.
func (p *pinger) isReply(b []byte, from net.Addr, a netip.Addr, seq int) bool {
	proto, want := 1, icmp.Type(ipv4.ICMPTypeEchoReply)
	if p.six {
		proto, want = 58, ipv6.ICMPTypeEchoReply
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || m.Type != want {
		return false
	}
	e, ok := m.Body.(*icmp.Echo)
	if !ok || e.Seq != seq || (p.raw && e.ID != p.id) {
		return false
	}
	var ip net.IP
	switch f := from.(type) {
	case *net.UDPAddr:
		ip = f.IP
	case *net.IPAddr:
		ip = f.IP
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == a.WithZone("")
}
