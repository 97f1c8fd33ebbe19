package testutil

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Frame describes a test frame: Ethernet (optionally one 802.1Q tag), IPv4,
// and TCP, UDP or raw payload.
type Frame struct {
	SrcMAC, DstMAC net.HardwareAddr
	VLAN           uint16 // 0 = untagged
	Src, Dst       netip.Addr
	Proto          uint8 // 6 TCP, 17 UDP, else raw Payload after IP
	SrcPort        uint16
	DstPort        uint16
	TCPFlags       uint8
	IPOptions      []byte // multiple of 4 bytes
	FragOff        uint16 // the IPv4 flags+offset field (0x2000 = MF)
	Payload        []byte
	TTL            uint8
	TOS            uint8
}

const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPAck = 0x10
)

// Checksum is the Internet checksum (RFC 1071), independent of the code
// under test.
func Checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Bytes serializes the frame with correct IP and L4 checksums.
func (f Frame) Bytes() []byte {
	var l4 []byte
	switch f.Proto {
	case 6:
		l4 = make([]byte, 20+len(f.Payload))
		binary.BigEndian.PutUint16(l4[0:], f.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], f.DstPort)
		binary.BigEndian.PutUint32(l4[4:], 1000) // seq
		l4[12] = 5 << 4
		l4[13] = f.TCPFlags
		binary.BigEndian.PutUint16(l4[14:], 65535)
		copy(l4[20:], f.Payload)
	case 17:
		l4 = make([]byte, 8+len(f.Payload))
		binary.BigEndian.PutUint16(l4[0:], f.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], f.DstPort)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[8:], f.Payload)
	default:
		l4 = append([]byte(nil), f.Payload...)
	}
	if f.Proto == 6 || f.Proto == 17 {
		s, d := f.Src.As4(), f.Dst.As4()
		var pseudo uint32
		pseudo += uint32(binary.BigEndian.Uint16(s[0:])) + uint32(binary.BigEndian.Uint16(s[2:]))
		pseudo += uint32(binary.BigEndian.Uint16(d[0:])) + uint32(binary.BigEndian.Uint16(d[2:]))
		pseudo += uint32(f.Proto) + uint32(len(l4))
		off := 16
		if f.Proto == 17 {
			off = 6
		}
		binary.BigEndian.PutUint16(l4[off:], Checksum(l4, pseudo))
	}
	ttl := f.TTL
	if ttl == 0 {
		ttl = 64
	}
	ihl := 20 + len(f.IPOptions)
	ip := make([]byte, ihl, ihl+len(l4))
	ip[0] = 0x40 | byte(ihl/4)
	ip[1] = f.TOS
	binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], f.FragOff)
	ip[8] = ttl
	ip[9] = f.Proto
	s, d := f.Src.As4(), f.Dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	copy(ip[20:], f.IPOptions)
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:ihl], 0))
	ip = append(ip, l4...)

	eth := make([]byte, 0, 18+len(ip))
	eth = append(eth, f.DstMAC...)
	eth = append(eth, f.SrcMAC...)
	if f.VLAN != 0 {
		eth = binary.BigEndian.AppendUint16(eth, 0x8100)
		eth = binary.BigEndian.AppendUint16(eth, f.VLAN)
	}
	eth = binary.BigEndian.AppendUint16(eth, 0x0800)
	return append(eth, ip...)
}
