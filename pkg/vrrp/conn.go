package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PacketConn is how a Runner sends and receives adverts. Conn is the real
// one; tests use a fake.
type PacketConn interface {
	// ReadAdvert blocks until an advert arrives and returns the IP payload
	// (the VRRP message, possibly followed by padding), sharing buf, and
	// what the IP header said. It fails with net.ErrClosed after Close.
	ReadAdvert(buf []byte) ([]byte, PacketInfo, error)
	// WriteAdvert sends an encoded advert to dst (the group or a peer).
	WriteAdvert(b []byte, dst netip.Addr) error
	// Source is the address adverts are sent from.
	Source() netip.Addr
	// Destinations are where each advert goes: the multicast group, or
	// every unicast peer.
	Destinations() []netip.Addr
	Close() error
}

// ConnConfig configures a Conn.
type ConnConfig struct {
	// SourceIP is keepalived's mcast_src_ip/unicast_src_ip. Invalid means
	// the interface's primary IPv4 address.
	SourceIP netip.Addr
	// Peers are keepalived's unicast_peer addresses. None means multicast
	// to 224.0.0.18.
	Peers []netip.Addr
}

// Conn is IPv4 VRRP over a raw IP socket (protocol 112) bound to one
// interface. Raw IPv4 sockets deliver the IP header, so the TTL, the
// destination and the payload length come from it; sends go out with TTL 255
// from the source address (IP_PKTINFO), multicast loopback off.
type Conn struct {
	f       *os.File
	closed  atomic.Bool
	ifindex int
	src     netip.Addr
	dsts    []netip.Addr
}

var _ PacketConn = (*Conn)(nil)

// New opens a Conn on the interface ifname in the calling thread's network
// namespace.
func New(ifname string, cfg ConnConfig) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp conn: %w", err)
	}
	src := cfg.SourceIP
	if !src.IsValid() {
		if src, err = PrimaryIPv4(ifname); err != nil {
			return nil, fmt.Errorf("vrrp conn: %w", err)
		}
	}
	if !src.Is4() {
		return nil, fmt.Errorf("vrrp conn %s: source %s is not IPv4", ifname, src)
	}
	dsts := []netip.Addr{MulticastGroup4}
	if len(cfg.Peers) > 0 {
		dsts = nil
		for _, p := range cfg.Peers {
			if !p.Is4() || p.IsMulticast() {
				return nil, fmt.Errorf("vrrp conn %s: bad unicast peer %s", ifname, p)
			}
			dsts = append(dsts, p)
		}
	}

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, IPProtocol)
	if err != nil {
		return nil, fmt.Errorf("vrrp conn %s: raw socket: %w", ifname, err)
	}
	fail := func(what string, err error) (*Conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp conn %s: %s: %w", ifname, what, err)
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname); err != nil {
		return fail("SO_BINDTODEVICE", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, TTL); err != nil {
		return fail("IP_TTL", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, TTL); err != nil {
		return fail("IP_MULTICAST_TTL", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0); err != nil {
		return fail("IP_MULTICAST_LOOP", err)
	}
	// Only the groups joined on this socket, not every group of the host.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
		return fail("IP_MULTICAST_ALL", err)
	}
	mreq := &unix.IPMreqn{Address: src.As4(), Ifindex: int32(ifi.Index)}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
		return fail("IP_MULTICAST_IF", err)
	}
	// Joined even in unicast mode it would do no harm, but keepalived only
	// joins for multicast instances.
	if len(cfg.Peers) == 0 {
		join := &unix.IPMreqn{Multiaddr: MulticastGroup4.As4(), Ifindex: int32(ifi.Index)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, join); err != nil {
			return fail("IP_ADD_MEMBERSHIP", err)
		}
	}
	f := os.NewFile(uintptr(fd), "vrrp:"+ifname)
	if f == nil {
		return fail("os.NewFile", errors.New("invalid fd"))
	}
	return &Conn{f: f, ifindex: ifi.Index, src: src, dsts: dsts}, nil
}

// PrimaryIPv4 returns the first non-secondary IPv4 address of ifname, as
// keepalived picks an instance's source address.
func PrimaryIPv4(ifname string) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("link %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if a.Flags&unix.IFA_F_SECONDARY != 0 {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no primary IPv4 address", ifname)
}

// Source implements PacketConn.
func (c *Conn) Source() netip.Addr { return c.src }

// Destinations implements PacketConn.
func (c *Conn) Destinations() []netip.Addr { return c.dsts }

// SetReadDeadline bounds ReadAdvert, as net.Conn does.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// Close implements PacketConn; a blocked ReadAdvert returns.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.f.Close()
}

// ReadAdvert implements PacketConn. Packets that are not well-formed IPv4
// protocol 112 are skipped.
func (c *Conn) ReadAdvert(buf []byte) ([]byte, PacketInfo, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return nil, PacketInfo{}, c.closedErr(err)
	}
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN && rerr != unix.EWOULDBLOCK
		})
		if err != nil {
			return nil, PacketInfo{}, c.closedErr(err)
		}
		if rerr != nil {
			if rerr == unix.EINTR {
				continue
			}
			return nil, PacketInfo{}, fmt.Errorf("vrrp read: %w", rerr)
		}
		payload, info, ok := parseIPv4(buf[:n])
		if ok {
			return payload, info, nil
		}
	}
}

// closedErr reports any error after Close as net.ErrClosed, as the
// PacketConn contract says.
func (c *Conn) closedErr(err error) error {
	if c.closed.Load() || errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// parseIPv4 splits a packet read from a raw IPv4 socket into its header
// fields and payload.
func parseIPv4(b []byte) ([]byte, PacketInfo, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, PacketInfo{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl || b[9] != IPProtocol {
		return nil, PacketInfo{}, false
	}
	info := PacketInfo{
		TTL: b[8],
		Src: netip.AddrFrom4([4]byte(b[12:16])),
		Dst: netip.AddrFrom4([4]byte(b[16:20])),
	}
	if tot := int(binary.BigEndian.Uint16(b[2:4])); tot > ihl && tot <= len(b) {
		info.PayloadLen = tot - ihl
	}
	return b[ihl:], info, true
}

// WriteAdvert implements PacketConn.
func (c *Conn) WriteAdvert(b []byte, dst netip.Addr) error {
	if !dst.Is4() {
		return fmt.Errorf("vrrp write: destination %s is not IPv4", dst)
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	oob := unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: int32(c.ifindex), Spec_dst: c.src.As4()})
	sa := &unix.SockaddrInet4{Addr: dst.As4()}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Sendmsg(int(fd), b, oob, sa, 0)
		return werr != unix.EAGAIN && werr != unix.EWOULDBLOCK
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("vrrp write to %s: %w", dst, werr)
	}
	return nil
}
