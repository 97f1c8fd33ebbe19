package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encode builds the bytes a sender from src to dst puts on the wire.
func encode(t *testing.T, adv Advertisement, src, dst netip.Addr) []byte {
	t.Helper()
	require.NoError(t, adv.SetChecksum(src, dst, false))
	b, err := adv.MarshalBinary()
	require.NoError(t, err)
	return b
}

func TestValidate(t *testing.T) {
	vip := mustAddr("192.168.77.100")
	v2 := Advertisement{Version: 2, Type: 1, VRID: 51, Priority: 100, AdverInt: 1, Addresses: []netip.Addr{vip}}
	v3 := Advertisement{Version: 3, Type: 1, VRID: 51, Priority: 100, AdverInt: 100, Addresses: []netip.Addr{vip}}
	local2 := Local{Version: 2, VRID: 51, AdverInt: time.Second, VIPs: []netip.Addr{vip}}
	local3 := local2
	local3.Version = 3
	mcast := PacketInfo{Src: nodeB, Dst: MulticastGroup4, TTL: 255}
	ucast := PacketInfo{Src: nodeB, Dst: nodeA, TTL: 64}
	peers := []UnicastPeer{{Addr: nodeB, MinTTL: 60, MaxTTL: 64}}

	with := func(a Advertisement, f func(*Advertisement)) Advertisement {
		f(&a)
		return a
	}
	for _, tc := range []struct {
		name  string
		adv   Advertisement
		pkt   PacketInfo
		local Local
		mod   func(b []byte) []byte // after the checksum
		want  error
	}{
		{name: "v2 ok", adv: v2, pkt: mcast, local: local2},
		{name: "v3 ok", adv: v3, pkt: mcast, local: local3},
		{name: "multicast TTL 254", adv: v2, pkt: PacketInfo{Src: nodeB, Dst: MulticastGroup4, TTL: 254}, local: local2, want: ErrTTL},
		{name: "unicast any TTL", adv: v3, pkt: ucast, local: with2(local3, func(l *Local) { l.Unicast = true })},
		{name: "version mismatch", adv: v3, pkt: mcast, local: local2, want: ErrVersion},
		{name: "v2 auth type mismatch", adv: v2, pkt: mcast,
			local: with2(local2, func(l *Local) { l.AuthType, l.AuthPass = AuthPass, Password("secret12") }), want: ErrAuthType},
		{name: "v2 auth type 3", adv: with(v2, func(a *Advertisement) { a.AuthType = 3 }), pkt: mcast, local: local2, want: ErrAuthType},
		{name: "v2 password ok",
			adv:   with(v2, func(a *Advertisement) { a.AuthType, a.AuthData = AuthPass, Password("secret12") }),
			pkt:   mcast,
			local: with2(local2, func(l *Local) { l.AuthType, l.AuthPass = AuthPass, Password("secret12") })},
		{name: "v2 wrong password",
			adv:   with(v2, func(a *Advertisement) { a.AuthType, a.AuthData = AuthPass, Password("secret13") }),
			pkt:   mcast,
			local: with2(local2, func(l *Local) { l.AuthType, l.AuthPass = AuthPass, Password("secret12") }), want: ErrAuthPass},
		{name: "v2 interval mismatch", adv: with(v2, func(a *Advertisement) { a.AdverInt = 2 }), pkt: mcast, local: local2, want: ErrAdverInt},
		{name: "v3 interval mismatch is for the machine", adv: with(v3, func(a *Advertisement) { a.AdverInt = 50 }), pkt: mcast, local: local3},
		{name: "type 2", adv: with(v3, func(a *Advertisement) { a.Type = 2 }), pkt: mcast, local: local3, want: ErrType},
		{name: "other VRID", adv: with(v3, func(a *Advertisement) { a.VRID = 52 }), pkt: mcast, local: local3, want: ErrVRID},
		{name: "address count", adv: with(v3, func(a *Advertisement) { a.Addresses = append(a.Addresses, mustAddr("192.168.77.101")) }),
			pkt: mcast, local: local3, want: ErrAddrCount},
		{name: "address count skipped for the known master",
			adv: with(v3, func(a *Advertisement) { a.Addresses = nil }), pkt: mcast,
			local: with2(local3, func(l *Local) { l.SkipCheckAdvAddr, l.MasterAddr = true, nodeB })},
		{name: "address count checked for a new master",
			adv: with(v3, func(a *Advertisement) { a.Addresses = nil }), pkt: mcast,
			local: with2(local3, func(l *Local) { l.SkipCheckAdvAddr, l.MasterAddr = true, nodeA }), want: ErrAddrCount},
		{name: "VIP missing", adv: with(v3, func(a *Advertisement) { a.Addresses = []netip.Addr{mustAddr("192.168.77.101")} }),
			pkt: mcast, local: local3, want: ErrAddrList},
		{name: "checksum", adv: v3, pkt: mcast, local: local3, mod: func(b []byte) []byte { b[7]++; return b }, want: ErrChecksum},
		{name: "v3_checksum_as_v2 expects no pseudo-header", adv: v3, pkt: mcast,
			local: with2(local3, func(l *Local) { l.V3ChecksumAsV2 = true }), want: ErrChecksum},
		{name: "multicast instance, unicast packet", adv: v3, pkt: PacketInfo{Src: nodeB, Dst: nodeA, TTL: 255}, local: local3, want: ErrMulticast},
		{name: "unicast instance, multicast packet", adv: v3, pkt: mcast,
			local: with2(local3, func(l *Local) { l.Unicast = true }), want: ErrMulticast},
		{name: "unicast source check", adv: v3, pkt: ucast,
			local: with2(local3, func(l *Local) { l.Unicast, l.CheckUnicastSrc, l.Peers = true, true, peers })},
		{name: "unicast source not a peer", adv: v3, pkt: PacketInfo{Src: mustAddr("192.168.77.9"), Dst: nodeA, TTL: 64},
			local: with2(local3, func(l *Local) { l.Unicast, l.CheckUnicastSrc, l.Peers = true, true, peers }), want: ErrUnicastSrc},
		{name: "unicast TTL out of the peer's range", adv: v3, pkt: PacketInfo{Src: nodeB, Dst: nodeA, TTL: 59},
			local: with2(local3, func(l *Local) { l.Unicast, l.CheckUnicastSrc, l.Peers = true, true, peers }), want: ErrTTL},
		{name: "short", adv: v3, pkt: mcast, local: local3, mod: func(b []byte) []byte { return b[:10] }, want: ErrLength},
		{name: "IPv6 source for an IPv4 advert", adv: v3, pkt: PacketInfo{Src: nodeA6, Dst: MulticastGroup6, TTL: 255}, local: local3, want: ErrLength},
		{name: "mixed source and destination", adv: v2, pkt: PacketInfo{Src: nodeA6, Dst: MulticastGroup4, TTL: 255}, local: local2, want: ErrAddrFamily},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := encode(t, tc.adv, tc.pkt.Src, tc.pkt.Dst)
			if tc.mod != nil {
				b = tc.mod(b)
			}
			got, err := Validate(b, tc.pkt, tc.local)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			want := tc.adv
			require.NoError(t, want.SetChecksum(tc.pkt.Src, tc.pkt.Dst, false))
			assert.Equal(t, want, got)
		})
	}
}

func with2(l Local, f func(*Local)) Local {
	f(&l)
	return l
}

// TestValidateEthernetPadding: a 46-byte v3 frame is padded to the 60-byte
// Ethernet minimum on some links; the padding must not count as VRRP.
func TestValidateEthernetPadding(t *testing.T) {
	pkts := readPcap(t, "testdata/v3-failover-sigkill.pcap")
	var p capturedPacket
	for _, q := range pkts {
		if q.isVRRP() {
			p = q
			break
		}
	}
	require.True(t, p.isVRRP())
	require.Len(t, p.Payload, 12)
	local := captureLocal(t, "v3-failover-sigkill")
	padded := append(append([]byte{}, p.Payload...), make([]byte, 14)...)

	t.Run("IP length known", func(t *testing.T) {
		_, err := Validate(padded, PacketInfo{Src: p.Src, Dst: p.Dst, TTL: p.TTL, PayloadLen: 12}, local)
		require.NoError(t, err)
	})
	t.Run("IP length unknown", func(t *testing.T) {
		_, err := Validate(padded, PacketInfo{Src: p.Src, Dst: p.Dst, TTL: p.TTL}, local)
		require.NoError(t, err)
	})
	t.Run("extra bytes inside the IP payload", func(t *testing.T) {
		_, err := Validate(padded, PacketInfo{Src: p.Src, Dst: p.Dst, TTL: p.TTL, PayloadLen: 16}, local)
		require.ErrorIs(t, err, ErrLength)
	})
	t.Run("IP length beyond the data", func(t *testing.T) {
		_, err := Validate(p.Payload, PacketInfo{Src: p.Src, Dst: p.Dst, TTL: p.TTL, PayloadLen: 20}, local)
		require.ErrorIs(t, err, ErrLength)
	})
}
