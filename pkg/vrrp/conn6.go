package vrrp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xlbproject/xlb/internal/nlretry"
)

// oobSize6 holds the IPV6_PKTINFO and IPV6_HOPLIMIT control messages.
var oobSize6 = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(4)

// openRaw6 opens the IPv6 socket (RFC 9568 §5.1.2); multicast joins
// ff02::12 on the interface.
func openRaw6(ifi *net.Interface, multicast bool) (int, error) {
	fd, fail, err := openRaw(unix.AF_INET6, ifi, []sockopt{
		// RFC 9568 §5.1.2.3: hop limit 255 whatever the destination.
		{"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, TTL},
		{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, TTL},
		{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tosNetworkControl},
		{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
		{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index},
		{"IPV6_MULTICAST_ALL", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0},
		// What the IPv4 header would have said: the destination (multicast
		// or not) and the hop limit receivers must check.
		{"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
		{"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
	})
	if err != nil {
		return -1, err
	}
	if multicast {
		join := &unix.IPv6Mreq{Multiaddr: MulticastGroup6.As16(), Interface: uint32(ifi.Index)}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, join); err != nil {
			return fail("IPV6_JOIN_GROUP ff02::12", err)
		}
	}
	return fd, nil
}

// LinkLocalIPv6 returns the link-local address of ifname that keepalived
// sends IPv6 adverts from: the first one that is not tentative (still in
// duplicate address detection, when the kernel refuses it as a source) or
// failed.
func LinkLocalIPv6(ifname string) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("link %s: %w", ifname, err)
	}
	addrs, err := nlretry.Dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V6) })
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	tentative := false
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.IsLinkLocalUnicast() {
			continue
		}
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			tentative = true
			continue
		}
		return ip, nil
	}
	if tentative {
		return netip.Addr{}, fmt.Errorf("%w: the link-local address of %s is still tentative (DAD)", ErrNoSource, ifname)
	}
	return netip.Addr{}, fmt.Errorf("%w: %s has no IPv6 link-local address", ErrNoSource, ifname)
}

// parseIPv6 builds the PacketInfo of a payload read from a raw IPv6 socket
// from the sender's address and the IPV6_PKTINFO and IPV6_HOPLIMIT control
// messages. It fails only for a non-IPv6 sender; a missing control message
// leaves its field zero, which Validate rejects.
func parseIPv6(payload []byte, from unix.Sockaddr, oob []byte) ([]byte, PacketInfo, bool) {
	sa, ok := from.(*unix.SockaddrInet6)
	if !ok {
		return nil, PacketInfo{}, false
	}
	info := PacketInfo{Src: netip.AddrFrom16(sa.Addr), PayloadLen: len(payload)}
	info.Dst, info.TTL = parseControl6(oob)
	return payload, info, true
}

// parseControl6 reads the destination and the hop limit from the ancillary
// data of a raw IPv6 socket.
func parseControl6(oob []byte) (dst netip.Addr, hopLimit uint8) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, 0
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch m.Header.Type {
		case unix.IPV6_PKTINFO:
			if len(m.Data) >= unix.SizeofInet6Pktinfo {
				dst = netip.AddrFrom16([16]byte(m.Data[:16]))
			}
		case unix.IPV6_HOPLIMIT:
			if len(m.Data) >= 4 {
				// A C int in host byte order, 0..255.
				hopLimit = uint8(binary.NativeEndian.Uint32(m.Data[:4]))
			}
		}
	}
	return dst, hopLimit
}
