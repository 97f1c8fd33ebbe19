package vrrp

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzUnmarshal: whatever decodes re-encodes to the same bytes (the v3
// reserved bits aside, which are zeroed) and decodes to the same value, and
// nothing panics Validate. Seeds: testdata/fuzz/FuzzUnmarshal, each named for
// what it exercises.
func FuzzUnmarshal(f *testing.F) {
	locals := []struct {
		pkt   PacketInfo
		local Local
	}{
		{PacketInfo{Src: nodeB, Dst: MulticastGroup4, TTL: 255}, Local{Version: 2, VRID: 51, AdverInt: time.Second}},
		{PacketInfo{Src: nodeB, Dst: nodeA, TTL: 64}, Local{Version: 3, VRID: 51, AdverInt: time.Second, Unicast: true}},
		{PacketInfo{Src: nodeA6, Dst: MulticastGroup6, TTL: 255, PayloadLen: 24}, Local{Version: 3, VRID: 54, AdverInt: time.Second}},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, l := range locals {
			_, _ = Validate(b, l.pkt, l.local)
			_ = VerifyChecksum(b, l.pkt.Src, l.pkt.Dst, false)
		}

		var adv Advertisement
		if err := adv.UnmarshalBinary(b); err != nil {
			return
		}
		enc, err := adv.MarshalBinary()
		require.NoError(t, err, "decoded %+v", adv)
		want := bytes.Clone(b)
		if adv.Version == Version3 {
			want[4] &= 0x0f
		}
		require.Equal(t, want, enc)
		require.Equal(t, len(enc), adv.Len())

		var again Advertisement
		require.NoError(t, again.UnmarshalBinary(enc))
		require.Equal(t, adv, again)
	})
}
