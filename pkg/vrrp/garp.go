package vrrp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ARPSender sends gratuitous ARPs. GARP is the real one.
type ARPSender interface {
	SendGARP(vip netip.Addr) error
	Close() error
}

const (
	ethTypeARP   = 0x0806
	arpProtoIPv4 = 0x0800
	arpFrameLen  = 14 + 28
)

// GARP sends gratuitous ARP requests for VIPs out of one interface from its
// MAC, through an AF_PACKET socket that receives nothing.
type GARP struct {
	fd      int
	ifindex int
	mac     net.HardwareAddr
}

var _ ARPSender = (*GARP)(nil)

// NewGARP opens a GARP sender on ifname in the calling thread's network
// namespace.
func NewGARP(ifname string) (*GARP, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("garp: %w", err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("garp %s: not an Ethernet interface (hardware address %q)", ifname, ifi.HardwareAddr)
	}
	// Protocol 0: the socket sends only.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("garp %s: packet socket: %w", ifname, err)
	}
	return &GARP{fd: fd, ifindex: ifi.Index, mac: ifi.HardwareAddr}, nil
}

// ARPFrame returns the Ethernet frame of a gratuitous ARP request for vip
// from mac: broadcast destination, sender and target protocol address both
// vip, target hardware address broadcast as keepalived sends it.
func ARPFrame(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	if len(mac) != 6 || !vip.Is4() {
		return nil, fmt.Errorf("garp: bad MAC %q or non-IPv4 address %s", mac, vip)
	}
	b := make([]byte, arpFrameLen)
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	copy(b[0:6], bcast)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], ethTypeARP)
	a := b[14:]
	binary.BigEndian.PutUint16(a[0:2], 1) // Ethernet
	binary.BigEndian.PutUint16(a[2:4], arpProtoIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], 1) // request
	ip := vip.As4()
	copy(a[8:14], mac)
	copy(a[14:18], ip[:])
	copy(a[18:24], bcast)
	copy(a[24:28], ip[:])
	return b, nil
}

// SendGARP implements ARPSender.
func (g *GARP) SendGARP(vip netip.Addr) error {
	frame, err := ARPFrame(g.mac, vip)
	if err != nil {
		return err
	}
	sa := &unix.SockaddrLinklayer{
		Protocol: htons(ethTypeARP),
		Ifindex:  g.ifindex,
		Halen:    6,
	}
	copy(sa.Addr[:], frame[0:6])
	if err := unix.Sendto(g.fd, frame, 0, sa); err != nil {
		return fmt.Errorf("garp %s: %w", vip, err)
	}
	return nil
}

// Close implements ARPSender.
func (g *GARP) Close() error { return unix.Close(g.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }
