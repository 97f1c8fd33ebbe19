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

	"github.com/xlbproject/xlb/internal/nlretry"
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
	// IPv6 selects VRRP over IPv6: VRRPv3 to ff02::12 from the interface's
	// link-local address. An IPv6 SourceIP or IPv6 Peers imply it.
	IPv6 bool
	// SourceIP is keepalived's mcast_src_ip/unicast_src_ip. Invalid means
	// the interface's primary IPv4 address or, for IPv6, its link-local
	// address (keepalived's source for IPv6 instances).
	SourceIP netip.Addr
	// Peers are keepalived's unicast_peer addresses. None means multicast
	// to 224.0.0.18 or ff02::12.
	Peers []netip.Addr
}

// ErrNoSource is wrapped when an interface has no usable source address for
// adverts: no primary IPv4 address, or no IPv6 link-local address that has
// finished duplicate address detection. keepalived holds such an instance
// in FAULT until an address appears; a caller can retry New.
var ErrNoSource = errors.New("no usable vrrp source address")

// Conn is VRRP over a raw IP socket (protocol 112) bound to one interface,
// IPv4 or IPv6. Adverts go out with TTL/hop limit 255 and TOS/traffic class
// 0xc0 (network control, as keepalived sends them) from the source address,
// multicast loopback off.
//
// Raw IPv4 sockets deliver the IP header, so the TTL, the destination and
// the payload length come from it. Raw IPv6 sockets deliver the payload
// only: the hop limit comes from IPV6_HOPLIMIT and the destination from
// IPV6_PKTINFO ancillary data. In both families the checksum, pseudo-header
// included, is left to Advertisement and Validate: unlike keepalived this
// does not set IPV6_CHECKSUM, so the kernel neither fills it in nor checks
// it, and an advert with a bad one is counted and logged instead of being
// dropped silently.
type Conn struct {
	f       *os.File
	closed  atomic.Bool
	ifindex int
	v6      bool
	src     netip.Addr
	dsts    []netip.Addr
}

var _ PacketConn = (*Conn)(nil)

// tosNetworkControl is IPTOS_PREC_INTERNETCONTROL, the IPv4 TOS and IPv6
// traffic class of keepalived's adverts.
const tosNetworkControl = 0xc0

// New opens a Conn on the interface ifname in the calling thread's network
// namespace.
func New(ifname string, cfg ConnConfig) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp conn: %w", err)
	}
	v6 := cfg.IPv6 || (cfg.SourceIP.IsValid() && !cfg.SourceIP.Is4())
	for _, p := range cfg.Peers {
		v6 = v6 || !p.Is4()
	}
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	isFamily := func(a netip.Addr) bool {
		if v6 {
			return a.Is6() && !a.Is4In6()
		}
		return a.Is4()
	}

	src := cfg.SourceIP.WithZone("")
	if !src.IsValid() {
		if v6 {
			src, err = LinkLocalIPv6(ifname)
		} else {
			src, err = PrimaryIPv4(ifname)
		}
		if err != nil {
			return nil, fmt.Errorf("vrrp conn: %w", err)
		}
	}
	if !isFamily(src) {
		return nil, fmt.Errorf("vrrp conn %s: source %s is not %s", ifname, src, family)
	}
	dsts := []netip.Addr{MulticastGroup4}
	if v6 {
		dsts = []netip.Addr{MulticastGroup6}
	}
	if len(cfg.Peers) > 0 {
		dsts = nil
		for _, p := range cfg.Peers {
			p = p.WithZone("") // the interface is the zone
			if !isFamily(p) || p.IsMulticast() {
				return nil, fmt.Errorf("vrrp conn %s: bad %s unicast peer %s", ifname, family, p)
			}
			dsts = append(dsts, p)
		}
	}

	var fd int
	if v6 {
		fd, err = openRaw6(ifi, len(cfg.Peers) == 0)
	} else {
		fd, err = openRaw4(ifi, src, len(cfg.Peers) == 0)
	}
	if err != nil {
		return nil, fmt.Errorf("vrrp conn %s: %w", ifname, err)
	}
	f := os.NewFile(uintptr(fd), "vrrp:"+ifname)
	if f == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp conn %s: os.NewFile: invalid fd", ifname)
	}
	return &Conn{f: f, ifindex: ifi.Index, v6: v6, src: src, dsts: dsts}, nil
}

// sockopt is one setsockopt call, named for the error message.
type sockopt struct {
	name  string
	level int
	opt   int
	value int
}

// openRaw opens a raw protocol-112 socket of the family, bound to the
// interface, with the options given; fail closes it and names what failed.
func openRaw(family int, ifi *net.Interface, opts []sockopt) (fd int, fail func(string, error) (int, error), err error) {
	fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, IPProtocol)
	if err != nil {
		return -1, nil, fmt.Errorf("raw socket: %w", err)
	}
	fail = func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name); err != nil {
		_, err = fail("SO_BINDTODEVICE", err)
		return -1, nil, err
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
			_, err = fail(o.name, err)
			return -1, nil, err
		}
	}
	return fd, fail, nil
}

// openRaw4 opens the IPv4 socket; multicast joins 224.0.0.18.
func openRaw4(ifi *net.Interface, src netip.Addr, multicast bool) (int, error) {
	fd, fail, err := openRaw(unix.AF_INET, ifi, []sockopt{
		{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, TTL},
		{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, TTL},
		{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, tosNetworkControl},
		{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
		// Only the groups joined on this socket, not every group of the host.
		{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
	})
	if err != nil {
		return -1, err
	}
	mreq := &unix.IPMreqn{Address: src.As4(), Ifindex: int32(ifi.Index)}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
		return fail("IP_MULTICAST_IF", err)
	}
	// Joined even in unicast mode it would do no harm, but keepalived only
	// joins for multicast instances.
	if multicast {
		join := &unix.IPMreqn{Multiaddr: MulticastGroup4.As4(), Ifindex: int32(ifi.Index)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, join); err != nil {
			return fail("IP_ADD_MEMBERSHIP", err)
		}
	}
	return fd, nil
}

// PrimaryIPv4 returns the first non-secondary IPv4 address of ifname, as
// keepalived picks an instance's source address.
func PrimaryIPv4(ifname string) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("link %s: %w", ifname, err)
	}
	addrs, err := nlretry.Dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
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
	return netip.Addr{}, fmt.Errorf("%w: %s has no primary IPv4 address", ErrNoSource, ifname)
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

// ReadAdvert implements PacketConn. IPv4 packets that are not well-formed
// protocol 112 are skipped.
func (c *Conn) ReadAdvert(buf []byte) ([]byte, PacketInfo, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return nil, PacketInfo{}, c.closedErr(err)
	}
	var oob []byte
	if c.v6 {
		oob = make([]byte, oobSize6)
	}
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			if c.v6 {
				n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			} else {
				n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			}
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
		if c.v6 {
			if payload, info, ok := parseIPv6(buf[:n], from, oob[:oobn]); ok {
				return payload, info, nil
			}
			continue
		}
		if payload, info, ok := parseIPv4(buf[:n]); ok {
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
	var oob []byte
	var sa unix.Sockaddr
	switch {
	case c.v6 && dst.Is6() && !dst.Is4In6():
		oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: c.src.As16(), Ifindex: uint32(c.ifindex)})
		sa = &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(c.ifindex)}
	case !c.v6 && dst.Is4():
		oob = unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: int32(c.ifindex), Spec_dst: c.src.As4()})
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
	default:
		return fmt.Errorf("vrrp write: destination %s is not of the conn's family (source %s)", dst, c.src)
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
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
