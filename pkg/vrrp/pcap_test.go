package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A minimal reader for classic pcap files, enough to reach VRRP and ARP in
// captures: no pcapng, no IP reassembly.

const (
	linkTypeEthernet = 1
	linkTypeLinuxSLL = 113
	linkTypeSLL2     = 276

	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
	etherTypeQinQ = 0x88a8
)

// capturedPacket is one record of a capture, decoded as far as IP or ARP.
type capturedPacket struct {
	Time   time.Time
	Frame  []byte
	SrcMAC [6]byte

	// IP: Proto is zero for anything else.
	Proto      uint8
	Src, Dst   netip.Addr
	TTL        uint8  // TTL or hop limit
	Payload    []byte // IP payload as long as the IP header says
	PayloadEnd []byte // IP payload to the end of the frame, padding included

	// ARP: ARPOp is zero for anything else.
	ARPOp                  uint16
	ARPSender, ARPTarget   netip.Addr
	ARPSenderMAC           [6]byte
	GratuitousARPForTarget bool
}

func (p *capturedPacket) isVRRP() bool { return p.Proto == IPProtocol }

func readPcap(t *testing.T, path string) []capturedPacket {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	pkts, err := parsePcap(data)
	require.NoError(t, err, "parse %s", path)
	return pkts
}

func parsePcap(data []byte) ([]capturedPacket, error) {
	if len(data) < 24 {
		return nil, fmt.Errorf("pcap: %d bytes, global header is 24", len(data))
	}
	var bo binary.ByteOrder
	var nanos bool
	switch magic := binary.LittleEndian.Uint32(data); magic {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("pcap: bad magic 0x%08x (pcapng is not supported)", magic)
	}
	linkType := bo.Uint32(data[20:24]) & 0x0fffffff
	var pkts []capturedPacket
	for off := 24; off < len(data); {
		if len(data)-off < 16 {
			return nil, fmt.Errorf("pcap: truncated record header at %d", off)
		}
		sec, frac := bo.Uint32(data[off:]), bo.Uint32(data[off+4:])
		incl := int(bo.Uint32(data[off+8:]))
		off += 16
		if len(data)-off < incl {
			return nil, fmt.Errorf("pcap: truncated record at %d", off)
		}
		ns := int64(frac) * 1000
		if nanos {
			ns = int64(frac)
		}
		p := capturedPacket{Time: time.Unix(int64(sec), ns).UTC(), Frame: data[off : off+incl]}
		if err := p.decodeLink(linkType); err != nil {
			return nil, fmt.Errorf("pcap: record %d: %w", len(pkts), err)
		}
		pkts = append(pkts, p)
		off += incl
	}
	return pkts, nil
}

func (p *capturedPacket) decodeLink(linkType uint32) error {
	b := p.Frame
	var etherType uint16
	switch linkType {
	case linkTypeEthernet:
		if len(b) < 14 {
			return nil
		}
		copy(p.SrcMAC[:], b[6:12])
		etherType, b = binary.BigEndian.Uint16(b[12:]), b[14:]
		for (etherType == etherTypeVLAN || etherType == etherTypeQinQ) && len(b) >= 4 {
			etherType, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		}
	case linkTypeLinuxSLL:
		if len(b) < 16 {
			return nil
		}
		copy(p.SrcMAC[:], b[6:12])
		etherType, b = binary.BigEndian.Uint16(b[14:]), b[16:]
	case linkTypeSLL2:
		if len(b) < 20 {
			return nil
		}
		copy(p.SrcMAC[:], b[12:18])
		etherType, b = binary.BigEndian.Uint16(b[0:]), b[20:]
	default:
		return fmt.Errorf("link type %d not supported", linkType)
	}
	switch etherType {
	case etherTypeIPv4:
		p.decodeIPv4(b)
	case etherTypeIPv6:
		p.decodeIPv6(b)
	case etherTypeARP:
		p.decodeARP(b)
	}
	return nil
}

func (p *capturedPacket) decodeIPv4(b []byte) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return
	}
	ihl, total := int(b[0]&0x0f)*4, int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || total > len(b) {
		return
	}
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
		return // a fragment
	}
	p.Proto, p.TTL = b[9], b[8]
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.Payload, p.PayloadEnd = b[ihl:total], b[ihl:]
}

func (p *capturedPacket) decodeIPv6(b []byte) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if 40+plen > len(b) {
		return
	}
	next, payload, end := b[6], b[40:40+plen], b[40:]
	for next == 0 || next == 43 || next == 60 { // hop-by-hop, routing, dest opts
		if len(payload) < 8 {
			return
		}
		n := (int(payload[1]) + 1) * 8
		if n > len(payload) {
			return
		}
		next, payload, end = payload[0], payload[n:], end[n:]
	}
	p.Proto, p.TTL = next, b[7]
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.Payload, p.PayloadEnd = payload, end
}

func (p *capturedPacket) decodeARP(b []byte) {
	// Ethernet/IPv4 ARP only.
	if len(b) < 28 || binary.BigEndian.Uint16(b[0:]) != 1 || binary.BigEndian.Uint16(b[2:]) != etherTypeIPv4 {
		return
	}
	p.ARPOp = binary.BigEndian.Uint16(b[6:])
	copy(p.ARPSenderMAC[:], b[8:14])
	p.ARPSender = netip.AddrFrom4([4]byte(b[14:18]))
	p.ARPTarget = netip.AddrFrom4([4]byte(b[24:28]))
	p.GratuitousARPForTarget = p.ARPSender == p.ARPTarget
}

// TestParsePcapLinkTypes covers the link types no capture here uses, by
// rewrapping a captured Ethernet frame.
func TestParsePcapLinkTypes(t *testing.T) {
	pkts := readPcap(t, "testdata/v3-ipv6-vrid54.pcap")
	require.NotEmpty(t, pkts)
	eth := pkts[0].Frame
	want := pkts[0]
	require.True(t, want.isVRRP())

	vlan := append(append(append([]byte{}, eth[:12]...), 0x81, 0x00, 0x00, 0x2a), eth[12:]...)
	sll := append(append([]byte{0, 0, 0, 1, 0, 6}, eth[6:12]...), 0, 0)
	sll = append(append(sll, eth[12:14]...), eth[14:]...)
	sll2 := append(append([]byte{}, eth[12:14]...), 0, 0, 0, 0, 0, 2, 0, 1, 0, 6)
	sll2 = append(append(append(sll2, eth[6:12]...), 0, 0), eth[14:]...)

	for _, tc := range []struct {
		name     string
		linkType uint32
		frame    []byte
	}{
		{"ethernet+vlan", linkTypeEthernet, vlan},
		{"linux-sll", linkTypeLinuxSLL, sll},
		{"linux-sll2", linkTypeSLL2, sll2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := binary.BigEndian.AppendUint32(nil, 0xa1b23c4d) // big-endian, nanoseconds
			file = append(file, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff)
			file = binary.BigEndian.AppendUint32(file, tc.linkType)
			file = binary.BigEndian.AppendUint32(file, 7)
			file = binary.BigEndian.AppendUint32(file, 5)
			file = binary.BigEndian.AppendUint32(file, uint32(len(tc.frame)))
			file = binary.BigEndian.AppendUint32(file, uint32(len(tc.frame)))
			file = append(file, tc.frame...)

			got, err := parsePcap(file)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, time.Unix(7, 5).UTC(), got[0].Time)
			assert.Equal(t, want.SrcMAC, got[0].SrcMAC)
			assert.Equal(t, want.Src, got[0].Src)
			assert.Equal(t, want.Dst, got[0].Dst)
			assert.Equal(t, want.Payload, got[0].Payload)
		})
	}
}
