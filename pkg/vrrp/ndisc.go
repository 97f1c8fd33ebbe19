package vrrp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// NASender sends unsolicited neighbour advertisements, the IPv6 counterpart
// of ARPSender. UnsolicitedNA is the real one.
type NASender interface {
	SendNA(vip netip.Addr) error
	Close() error
}

const (
	ethTypeIPv6        = 0x86dd
	protoICMPv6        = 58
	icmp6NeighborAdv   = 136
	ndOptTargetLLAddr  = 2
	naFlagRouter       = 1 << 31
	naFlagOverride     = 1 << 29
	naICMPLen          = 24 + 8 // header and target, target link-layer address option
	naFrameLen         = 14 + 40 + naICMPLen
	ipv6HopLimitNDisc  = 255
	sysctlIPv6Forwards = "/proc/sys/net/ipv6/conf/%s/forwarding"
)

// AllNodes is ff02::1, where unsolicited neighbour advertisements go.
var AllNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01})

// UnsolicitedNA sends unsolicited neighbour advertisements (RFC 4861 §7.2.6)
// for IPv6 VIPs out of one interface from its MAC, through an AF_PACKET
// socket that receives nothing, as keepalived's vrrp_ndisc.c does.
type UnsolicitedNA struct {
	fd      int
	ifindex int
	mac     net.HardwareAddr
	// forwarding is the interface's net.ipv6.conf.IF.forwarding, opened in
	// the interface's namespace and read for every advertisement: keepalived
	// sets the Router flag from it.
	forwarding *os.File
}

var _ NASender = (*UnsolicitedNA)(nil)

// NewUnsolicitedNA opens an unsolicited NA sender on ifname in the calling
// thread's network namespace.
func NewUnsolicitedNA(ifname string) (*UnsolicitedNA, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("unsolicited na: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("unsolicited na %s: not an Ethernet interface (hardware address %q)", ifname, ifi.HardwareAddr)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unsolicited na %s: packet socket: %w", ifname, err)
	}
	// /proc/sys/net resolves in the namespace of the opener; an absent file
	// (IPv6 off) means not a router.
	fwd, _ := os.Open(fmt.Sprintf(sysctlIPv6Forwards, ifname))
	return &UnsolicitedNA{fd: fd, ifindex: ifi.Index, mac: ifi.HardwareAddr, forwarding: fwd}, nil
}

// NAFrame returns the Ethernet frame of an unsolicited neighbour
// advertisement for vip from mac, byte for byte what keepalived sends:
// to 33:33:00:00:00:01 / ff02::1 from vip itself, hop limit 255, traffic
// class and flow label 0; Override set, Solicited clear, Router as given;
// target vip and a target link-layer address option carrying mac.
func NAFrame(mac net.HardwareAddr, vip netip.Addr, router bool) ([]byte, error) {
	if len(mac) != 6 || !vip.Is6() || vip.Is4In6() || vip.Zone() != "" {
		return nil, fmt.Errorf("unsolicited na: bad MAC %q or non-IPv6 address %s", mac, vip)
	}
	b := make([]byte, naFrameLen)
	copy(b[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], ethTypeIPv6)

	ip := b[14:54]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], naICMPLen)
	ip[6], ip[7] = protoICMPv6, ipv6HopLimitNDisc
	src, dst := vip.As16(), AllNodes.As16()
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])

	na := b[54:]
	na[0] = icmp6NeighborAdv
	flags := uint32(naFlagOverride)
	if router {
		flags |= naFlagRouter
	}
	binary.BigEndian.PutUint32(na[4:8], flags)
	copy(na[8:24], src[:])
	na[24], na[25] = ndOptTargetLLAddr, 1 // length in units of 8 bytes
	copy(na[26:32], mac)

	// ICMPv6 checksum over the pseudo-header (RFC 8200 §8.1).
	sum := sum16(0, src[:])
	sum = sum16(sum, dst[:])
	sum += naICMPLen + protoICMPv6
	sum = sum16(sum, na)
	binary.BigEndian.PutUint16(na[2:4], ^fold(sum))
	return b, nil
}

// router reports whether the interface forwards IPv6, which keepalived
// advertises with the Router flag.
func (n *UnsolicitedNA) router() bool {
	if n.forwarding == nil {
		return false
	}
	var b [2]byte
	c, _ := n.forwarding.ReadAt(b[:], 0)
	return c > 0 && b[0] == '1'
}

// SendNA implements NASender.
func (n *UnsolicitedNA) SendNA(vip netip.Addr) error {
	frame, err := NAFrame(n.mac, vip, n.router())
	if err != nil {
		return err
	}
	sa := &unix.SockaddrLinklayer{
		Protocol: htons(ethTypeIPv6),
		Ifindex:  n.ifindex,
		Halen:    6,
	}
	copy(sa.Addr[:], frame[0:6])
	if err := unix.Sendto(n.fd, frame, 0, sa); err != nil {
		return fmt.Errorf("unsolicited na %s: %w", vip, err)
	}
	return nil
}

// Close implements NASender.
func (n *UnsolicitedNA) Close() error {
	if n.forwarding != nil {
		n.forwarding.Close()
	}
	return unix.Close(n.fd)
}
