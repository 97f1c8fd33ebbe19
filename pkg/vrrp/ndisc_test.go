package vrrp

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNAFrameGolden: NAFrame builds, byte for byte, the unsolicited NAs
// keepalived 2.2.7 (Debian 12) sent for its two IPv6 VIPs in the interop
// harness (v3-ipv6-multicast-failover), captured on the peer's end of the
// veth. The interop test repeats the comparison against a live keepalived.
func TestNAFrameGolden(t *testing.T) {
	mac := net.HardwareAddr{0xaa, 0x5a, 0x13, 0x57, 0x59, 0xb6}
	for _, tc := range []struct {
		vip, frame string
	}{
		{"fd00:99::100", "333300000001aa5a135759b686dd6000000000203afffd000099000000000000000000000100ff0200000000000000000000000000018800420420000000fd0000990000000000000000000001000201aa5a135759b6"},
		{"fd00:99::101", "333300000001aa5a135759b686dd6000000000203afffd000099000000000000000000000101ff0200000000000000000000000000018800420220000000fd0000990000000000000000000001010201aa5a135759b6"},
	} {
		want, err := hex.DecodeString(tc.frame)
		require.NoError(t, err)
		got, err := NAFrame(mac, netip.MustParseAddr(tc.vip), false)
		require.NoError(t, err)
		assert.Equal(t, want, got, tc.vip)
	}
}

func TestNAFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	vip := netip.MustParseAddr("2001:db8::100")
	for _, router := range []bool{false, true} {
		f, err := NAFrame(mac, vip, router)
		require.NoError(t, err)
		require.Len(t, f, 86)
		p := capturedPacket{Frame: f}
		require.NoError(t, p.decodeLink(linkTypeEthernet))
		assert.Equal(t, uint8(protoICMPv6), p.Proto)
		assert.Equal(t, uint8(255), p.TTL, "hop limit")
		assert.Equal(t, vip, p.Src, "sent from the VIP, as keepalived does")
		assert.Equal(t, AllNodes, p.Dst)
		assert.Equal(t, [6]byte(mac), p.SrcMAC)
		assert.Equal(t, []byte{0x33, 0x33, 0, 0, 0, 1}, f[:6])

		na := p.Payload
		require.Len(t, na, 32)
		assert.Equal(t, uint8(icmp6NeighborAdv), na[0])
		flags := binary.BigEndian.Uint32(na[4:8])
		assert.Equal(t, router, flags&naFlagRouter != 0, "R")
		assert.Zero(t, flags&(1<<30), "S: unsolicited")
		assert.NotZero(t, flags&naFlagOverride, "O")
		assert.Equal(t, vip, netip.AddrFrom16([16]byte(na[8:24])), "target")
		assert.Equal(t, []byte{ndOptTargetLLAddr, 1}, na[24:26])
		assert.Equal(t, []byte(mac), na[26:32])

		// The checksum verifies over the pseudo-header.
		sum := sum16(0, p.Src.AsSlice())
		sum = sum16(sum, p.Dst.AsSlice())
		sum = sum16(sum+uint32(len(na))+protoICMPv6, na)
		assert.Equal(t, uint16(0xffff), fold(sum))
	}

	for _, bad := range []struct {
		mac net.HardwareAddr
		vip string
	}{
		{mac, "10.0.0.1"},
		{mac, "::ffff:10.0.0.1"},
		{mac, "fe80::1%eth0"},
		{net.HardwareAddr{1, 2, 3}, "2001:db8::1"},
	} {
		_, err := NAFrame(bad.mac, netip.MustParseAddr(bad.vip), false)
		assert.Error(t, err, "%s %s", bad.mac, bad.vip)
	}
}
