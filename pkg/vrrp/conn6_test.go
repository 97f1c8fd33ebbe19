package vrrp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// cmsg encodes one control message as the kernel lays it out.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	n := unix.CmsgLen(len(data))
	if unix.SizeofCmsghdr == 16 { // size_t cmsg_len on 64-bit platforms
		binary.NativeEndian.PutUint64(b, uint64(n))
		binary.NativeEndian.PutUint32(b[8:], uint32(level))
		binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
		binary.NativeEndian.PutUint32(b[4:], uint32(level))
		binary.NativeEndian.PutUint32(b[8:], uint32(typ))
	}
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// control6 builds the ancillary data a raw IPv6 socket returns with
// IPV6_RECVPKTINFO and IPV6_RECVHOPLIMIT.
func control6(dst netip.Addr, hopLimit int) []byte {
	oob := unix.PktInfo6(&unix.Inet6Pktinfo{Addr: dst.As16(), Ifindex: 7})
	hl := binary.NativeEndian.AppendUint32(nil, uint32(hopLimit))
	return append(oob, cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, hl)...)
}

func TestParseIPv6(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	payload := []byte{0x31, 51, 100, 0}
	b, info, ok := parseIPv6(payload, &unix.SockaddrInet6{Addr: src.As16(), ZoneId: 7}, control6(MulticastGroup6, 255))
	require.True(t, ok)
	assert.Equal(t, payload, b)
	assert.Equal(t, PacketInfo{Src: src, Dst: MulticastGroup6, TTL: 255, PayloadLen: 4}, info, "no zone on the source")

	_, info, ok = parseIPv6(payload, &unix.SockaddrInet6{Addr: src.As16()}, control6(netip.MustParseAddr("2001:db8::1"), 64))
	require.True(t, ok)
	assert.Equal(t, uint8(64), info.TTL)
	assert.Equal(t, netip.MustParseAddr("2001:db8::1"), info.Dst)

	// No ancillary data: zero fields, which Validate rejects.
	_, info, ok = parseIPv6(payload, &unix.SockaddrInet6{Addr: src.As16()}, nil)
	require.True(t, ok)
	assert.False(t, info.Dst.IsValid())
	assert.Zero(t, info.TTL)
	_, err := Validate(payload, info, Local{Version: Version3, VRID: 51})
	assert.ErrorIs(t, err, ErrAddrFamily)

	_, _, ok = parseIPv6(payload, &unix.SockaddrInet4{}, nil)
	assert.False(t, ok)
}

// FuzzParseControl6: no ancillary data, however mangled, panics the parser,
// and a hop limit is only read from a whole int. Seeds:
// testdata/fuzz/FuzzParseControl6, each named for what it exercises.
func FuzzParseControl6(f *testing.F) {
	f.Fuzz(func(t *testing.T, oob []byte) {
		dst, hl := parseControl6(oob)
		if len(oob) < unix.CmsgSpace(4) {
			assert.Zero(t, hl)
		}
		if dst.IsValid() {
			assert.True(t, dst.Is6())
		}
	})
}

// TestConnVeth6 sends adverts between two IPv6 Conns across a veth pair:
// multicast to ff02::12 from the link-local address, and unicast, both with
// hop limit 255 and the destination from IPV6_PKTINFO. Root only.
func TestConnVeth6(t *testing.T) {
	if testing.Short() {
		t.Skip("needs network namespaces; skipped in -short mode")
	}
	if unix.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, raw sockets)")
	}
	requireTool(t, "ip", "iproute2")
	n := newInteropNet(t)
	var a, b, bu *Conn
	var err error
	inNetNS(t, n.kaNS, func() { a, err = New(interopKAIf, ConnConfig{IPv6: true}) })
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	inNetNS(t, n.xNS, func() {
		if b, err = New(interopXIf, ConnConfig{IPv6: true}); err == nil {
			bu, err = New(interopXIf, ConnConfig{Peers: []netip.Addr{interopKAIP6}})
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close(); bu.Close() })
	require.Equal(t, n.kaLL, a.Source(), "the link-local address by default")
	require.Equal(t, []netip.Addr{MulticastGroup6}, a.Destinations())
	require.Equal(t, n.xLL, bu.Source(), "unicast too, without unicast_src_ip")
	require.Equal(t, []netip.Addr{interopKAIP6}, bu.Destinations())

	vips := []netip.Addr{netip.MustParseAddr("fd00:99::100")}
	adv := Advertisement{Version: Version3, Type: TypeAdvertisement, VRID: 9, Priority: 150, AdverInt: 100, Addresses: vips}
	require.NoError(t, adv.SetChecksum(a.Source(), MulticastGroup6, false))
	msg, err := adv.MarshalBinary()
	require.NoError(t, err)

	require.NoError(t, a.SetReadDeadline(time.Now().Add(3*time.Second)))
	require.NoError(t, b.SetReadDeadline(time.Now().Add(3*time.Second)))
	require.NoError(t, a.WriteAdvert(msg, MulticastGroup6))
	buf := make([]byte, 1500)
	payload, info, err := b.ReadAdvert(buf)
	require.NoError(t, err)
	require.Equal(t, PacketInfo{Src: n.kaLL, Dst: MulticastGroup6, TTL: 255, PayloadLen: len(msg)}, info)
	got, err := Validate(payload, info, Local{Version: Version3, VRID: 9, VIPs: vips})
	require.NoError(t, err, "checksum over the IPv6 pseudo-header")
	require.Equal(t, uint8(150), got.Priority)

	adv.Priority = 90
	require.NoError(t, adv.SetChecksum(bu.Source(), interopKAIP6, false))
	msg, err = adv.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, bu.WriteAdvert(msg, interopKAIP6))
	payload, info, err = a.ReadAdvert(buf)
	require.NoError(t, err)
	require.Equal(t, PacketInfo{Src: n.xLL, Dst: interopKAIP6, TTL: 255, PayloadLen: len(msg)}, info, "unicast hop limit 255 too")
	got, err = Validate(payload, info, Local{Version: Version3, VRID: 9, VIPs: vips, Unicast: true})
	require.NoError(t, err)
	require.Equal(t, uint8(90), got.Priority)

	// A corrupted checksum reaches Validate (no IPV6_CHECKSUM in the kernel).
	msg[6] ^= 0xff
	require.NoError(t, bu.WriteAdvert(msg, interopKAIP6))
	payload, info, err = a.ReadAdvert(buf)
	require.NoError(t, err)
	_, err = Validate(payload, info, Local{Version: Version3, VRID: 9, VIPs: vips, Unicast: true})
	require.ErrorIs(t, err, ErrChecksum)

	assert.Error(t, a.WriteAdvert(msg, MulticastGroup4), "an IPv4 destination on an IPv6 conn")
}

func TestNewConnRejects(t *testing.T) {
	lo, err := net.InterfaceByIndex(1)
	require.NoError(t, err, "every network namespace has lo, at index 1")
	for _, cfg := range []ConnConfig{
		{SourceIP: netip.MustParseAddr("::1"), Peers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{IPv6: true, SourceIP: netip.MustParseAddr("127.0.0.1")},
		{SourceIP: netip.MustParseAddr("127.0.0.1"), Peers: []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.2")}},
		{IPv6: true, SourceIP: netip.MustParseAddr("::1"), Peers: []netip.Addr{MulticastGroup6}},
	} {
		_, err := New(lo.Name, cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}
