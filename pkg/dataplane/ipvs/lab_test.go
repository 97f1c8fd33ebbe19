package ipvs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// lab is a director with a client and reals, each in a network namespace of
// its own, joined by veth pairs (routed links, so the guest needs no bridge
// module and no iproute2):
//
//	client 10.78.1.1 ── cl0 10.78.1.2 [director] rs<i> 10.78.1<i>.1 ── real i 10.78.1<i>.2
//	                    VIP 10.78.0.100 on the director's lo
//
// The client routes everything via the director. With NAT the reals do
// too, and the director puts the VIP back on their replies. With DR the
// reals hold the VIP on lo (arp_ignore=1, arp_announce=2) and have a second
// link, to the client (10.78.2<i>.2 ── 10.78.2<i>.1), as their default
// route: replies go to the client directly, as they would through a site's
// router, and never cross the director.
type lab struct {
	director, client *testNS
	reals            []*testNS
	vip, clientAddr  netip.Addr
	realAddrs        []netip.Addr
}

func newLab(t *testing.T, reals int, dr bool) *lab {
	t.Helper()
	l := &lab{
		director:   newTestNS(t),
		client:     newTestNS(t),
		vip:        netip.MustParseAddr("10.78.0.100"),
		clientAddr: netip.MustParseAddr("10.78.1.1"),
	}
	d, c := l.director, l.client
	d.sysctl(t, "net.ipv4.ip_forward", "1")
	// DR replies reach the client on a link other than its route to the
	// VIP: no reverse-path filter there.
	c.sysctl(t, "net.ipv4.conf.all.rp_filter", "0", "net.ipv4.conf.default.rp_filter", "0")
	lo, err := d.nl.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, d.nl.AddrAdd(lo, mustAddr(l.vip.String()+"/32")))

	link(t, d, "cl0", "10.78.1.2/24", c, "eth0", "10.78.1.1/24")
	defaultRoute(t, c, "eth0", "10.78.1.2")
	for i := range reals {
		r := newTestNS(t)
		l.reals = append(l.reals, r)
		l.realAddrs = append(l.realAddrs, netip.AddrFrom4([4]byte{10, 78, byte(10 + i), 2}))
		link(t, d, fmt.Sprintf("rs%d", i), fmt.Sprintf("10.78.%d.1/24", 10+i), r, "eth0", fmt.Sprintf("10.78.%d.2/24", 10+i))
		if !dr {
			defaultRoute(t, r, "eth0", fmt.Sprintf("10.78.%d.1", 10+i))
			continue
		}
		link(t, c, fmt.Sprintf("r%d", i), fmt.Sprintf("10.78.%d.1/24", 20+i), r, "ret", fmt.Sprintf("10.78.%d.2/24", 20+i))
		defaultRoute(t, r, "ret", fmt.Sprintf("10.78.%d.1", 20+i))
		rlo, err := r.nl.LinkByName("lo")
		require.NoError(t, err)
		require.NoError(t, r.nl.AddrAdd(rlo, mustAddr(l.vip.String()+"/32")))
		r.sysctl(t, "net.ipv4.conf.all.arp_ignore", "1", "net.ipv4.conf.all.arp_announce", "2")
	}
	return l
}

// link joins two namespaces with a veth pair, addressed and up.
func link(t *testing.T, near *testNS, nearName, nearAddr string, far *testNS, farName, farAddr string) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nearName}, PeerName: farName,
		PeerNamespace: netlink.NsFd(int(far.h))}
	require.NoError(t, near.nl.LinkAdd(veth), "add veth %s", nearName)
	for _, end := range []struct {
		ns         *testNS
		name, addr string
	}{{near, nearName, nearAddr}, {far, farName, farAddr}} {
		l, err := end.ns.nl.LinkByName(end.name)
		require.NoError(t, err)
		require.NoError(t, end.ns.nl.AddrAdd(l, mustAddr(end.addr)))
		require.NoError(t, end.ns.nl.LinkSetUp(l))
		end.ns.sysctl(t, "net.ipv4.conf."+end.name+".rp_filter", "0")
	}
}

func defaultRoute(t *testing.T, ns *testNS, dev, gw string) {
	t.Helper()
	l, err := ns.nl.LinkByName(dev)
	require.NoError(t, err)
	require.NoError(t, ns.nl.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}))
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// serve runs a TCP server on port in every real: it greets each connection
// with the real's index ("real0\n") and then echoes.
func (l *lab) serve(t *testing.T, port uint16) {
	t.Helper()
	for i, r := range l.reals {
		var ln net.Listener
		require.NoError(t, r.do(func() (err error) {
			// No keepalives: idle connections must stay idle so that
			// counters hold still between two reads.
			lc := net.ListenConfig{KeepAlive: -1}
			ln, err = lc.Listen(context.Background(), "tcp4", fmt.Sprintf(":%d", port))
			return err
		}))
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					if _, err := fmt.Fprintf(c, "real%d\n", i); err != nil {
						return
					}
					_, _ = io.Copy(c, c)
				}()
			}
		}()
	}
}

// echoConn is a client connection through the director.
type echoConn struct {
	net.Conn
	r    *bufio.Reader
	real int // which real greeted it
}

// dial connects the client to the VIP and reads which real answered.
func (l *lab) dial(t *testing.T, port uint16) *echoConn {
	t.Helper()
	var c net.Conn
	require.NoError(t, l.client.do(func() (err error) {
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
		c, err = d.Dial("tcp4", netip.AddrPortFrom(l.vip, port).String())
		return err
	}))
	t.Cleanup(func() { c.Close() })
	ec := &echoConn{Conn: c, r: bufio.NewReader(c)}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	line, err := ec.r.ReadString('\n')
	require.NoError(t, err, "greeting through the VIP")
	_, err = fmt.Sscanf(line, "real%d\n", &ec.real)
	require.NoError(t, err)
	return ec
}

// echo sends a line and waits up to wait for it to come back.
func (c *echoConn) echo(msg string, wait time.Duration) error {
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return err
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", line, msg)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
