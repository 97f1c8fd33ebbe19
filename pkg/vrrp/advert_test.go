package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMarshalRejects(t *testing.T) {
	v4 := []netip.Addr{mustAddr("192.0.2.1")}
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	for _, tc := range []struct {
		name string
		adv  Advertisement
		want error
	}{
		{"version 4", Advertisement{Version: 4, Type: 1}, ErrVersion},
		{"type wider than 4 bits", Advertisement{Version: 3, Type: 16}, ErrType},
		{"v2 with IPv6", Advertisement{Version: 2, Type: 1, Addresses: []netip.Addr{mustAddr("2001:db8::1")}}, ErrAddrFamily},
		{"mixed families", Advertisement{Version: 3, Type: 1, Addresses: []netip.Addr{v4[0], mustAddr("2001:db8::1")}}, ErrAddrFamily},
		{"zero address", Advertisement{Version: 3, Type: 1, Addresses: []netip.Addr{{}}}, ErrAddrFamily},
		{"zoned address", Advertisement{Version: 3, Type: 1, Addresses: []netip.Addr{mustAddr("fe80::1%eth0")}}, ErrAddrFamily},
		{"256 addresses", Advertisement{Version: 3, Type: 1, Addresses: many}, ErrAddrCount},
		{"v2 interval over 8 bits", Advertisement{Version: 2, Type: 1, AdverInt: 256, Addresses: v4}, ErrAdverInt},
		{"v3 interval over 12 bits", Advertisement{Version: 3, Type: 1, AdverInt: 4096, Addresses: v4}, ErrAdverInt},
		{"v3 with auth type", Advertisement{Version: 3, Type: 1, AuthType: AuthPass, Addresses: v4}, ErrAuthType},
		{"v3 with auth data", Advertisement{Version: 3, Type: 1, AuthData: Password("x"), Addresses: v4}, ErrAuthType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.adv.MarshalBinary()
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", ErrLength},
		{"short header", "31330a0100640000", ErrLength}, // count 1, no address
		{"version 1", "1133640100010000c0a84d64", ErrVersion},
		{"version 15", "f133640100010000c0a84d64", ErrVersion},
		{"v2 without auth data", "2133640100016cbdc0a84d64", ErrLength},
		{"v2 with trailing byte", "2133640100016cbdc0a84d640000000000000000ff", ErrLength},
		{"v3 between families", "313364020064000000000000000000000000", ErrLength}, // count 2, 10 address bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			var adv Advertisement
			require.ErrorIs(t, adv.UnmarshalBinary(mustHex(t, tc.hex)), tc.want)
		})
	}
}

func TestUnmarshalFamilyFromLength(t *testing.T) {
	var adv Advertisement
	require.NoError(t, adv.UnmarshalBinary(mustHex(t, "3133640200640000"+strings.Repeat("00", 32))))
	require.Len(t, adv.Addresses, 2)
	assert.True(t, adv.Addresses[0].Is6())

	require.NoError(t, adv.UnmarshalBinary(mustHex(t, "3133640200640000c0a84d64c0a84d65")))
	assert.Equal(t, []netip.Addr{mustAddr("192.168.77.100"), mustAddr("192.168.77.101")}, adv.Addresses)

	require.NoError(t, adv.UnmarshalBinary(mustHex(t, "3133640000640000")))
	assert.Empty(t, adv.Addresses)
}

func TestUnmarshalIgnoresV3ReservedBits(t *testing.T) {
	var adv Advertisement
	require.NoError(t, adv.UnmarshalBinary(mustHex(t, "313396010064"+"3c20"+"c0a84d64")))
	withReserved := mustHex(t, "31339601f064"+"3c20"+"c0a84d64")
	var got Advertisement
	require.NoError(t, got.UnmarshalBinary(withReserved))
	assert.Equal(t, adv, got)
	assert.Equal(t, time.Second, got.Interval())
}

func TestAdverIntField(t *testing.T) {
	for _, tc := range []struct {
		version uint8
		d       time.Duration
		want    uint16
		ok      bool
	}{
		{2, time.Second, 1, true},
		{2, 255 * time.Second, 255, true},
		{2, 256 * time.Second, 0, false},
		{2, 1500 * time.Millisecond, 0, false},
		{2, 0, 0, false},
		{3, 10 * time.Millisecond, 1, true},
		{3, 500 * time.Millisecond, 50, true},
		{3, time.Second, 100, true},
		{3, 40950 * time.Millisecond, 4095, true},
		{3, 40960 * time.Millisecond, 0, false},
		{3, 15 * time.Millisecond, 0, false},
		{4, time.Second, 0, false},
	} {
		got, err := AdverIntField(tc.version, tc.d)
		if !tc.ok {
			assert.Error(t, err, "v%d %v", tc.version, tc.d)
			continue
		}
		require.NoError(t, err, "v%d %v", tc.version, tc.d)
		assert.Equal(t, tc.want, got, "v%d %v", tc.version, tc.d)
		a := Advertisement{Version: tc.version, AdverInt: got}
		assert.Equal(t, tc.d, a.Interval())
	}
}

func TestChecksumRules(t *testing.T) {
	vip := []netip.Addr{mustAddr("192.168.77.100")}
	v2 := Advertisement{Version: 2, Type: 1, VRID: 51, Priority: 100, AdverInt: 1, Addresses: vip}
	v3 := Advertisement{Version: 3, Type: 1, VRID: 51, Priority: 100, AdverInt: 100, Addresses: vip}

	t.Run("v2 ignores addresses", func(t *testing.T) {
		a, b := v2, v2
		require.NoError(t, a.SetChecksum(netip.Addr{}, netip.Addr{}, false))
		require.NoError(t, b.SetChecksum(nodeB, MulticastGroup4, false))
		assert.Equal(t, uint16(0x6cbd), a.Checksum) // keepalived, v2-failover-sigkill
		assert.Equal(t, a.Checksum, b.Checksum)
	})
	t.Run("v3 IPv4 pseudo-header by default", func(t *testing.T) {
		a := v3
		require.NoError(t, a.SetChecksum(nodeB, MulticastGroup4, false))
		assert.Equal(t, uint16(0x6e1f), a.Checksum) // keepalived, v3-failover-sigkill
	})
	t.Run("v3 IPv4 as v2", func(t *testing.T) {
		a := v3
		require.NoError(t, a.SetChecksum(netip.Addr{}, MulticastGroup4, true))
		msg, err := a.MarshalBinary()
		require.NoError(t, err)
		require.NoError(t, VerifyChecksum(msg, nodeB, MulticastGroup4, true))
		require.ErrorIs(t, VerifyChecksum(msg, nodeB, MulticastGroup4, false), ErrChecksum)
	})
	t.Run("v3 IPv6 always pseudo-header", func(t *testing.T) {
		a := Advertisement{Version: 3, Type: 1, VRID: 54, Priority: 150, AdverInt: 100,
			Addresses: []netip.Addr{mustAddr("fd00:77::100")}}
		require.NoError(t, a.SetChecksum(nodeA6, MulticastGroup6, true))
		assert.Equal(t, uint16(0x6f75), a.Checksum) // keepalived, v3-ipv6-vrid54
	})
	t.Run("v3 needs both addresses", func(t *testing.T) {
		a := v3
		require.ErrorIs(t, a.SetChecksum(netip.Addr{}, MulticastGroup4, false), ErrAddrFamily)
		require.ErrorIs(t, a.SetChecksum(nodeA6, MulticastGroup4, false), ErrAddrFamily)
	})
	t.Run("verify says what it wanted", func(t *testing.T) {
		msg := mustHex(t, "3133640100646e20c0a84d64") // 0x6e1f is right
		err := VerifyChecksum(msg, nodeB, MulticastGroup4, false)
		require.ErrorIs(t, err, ErrChecksum)
		assert.Contains(t, err.Error(), "got 0x6e20, want 0x6e1f")
		require.ErrorIs(t, VerifyChecksum(msg[:4], nodeB, MulticastGroup4, false), ErrLength)
	})
}
