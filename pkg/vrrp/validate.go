package vrrp

import (
	"crypto/subtle"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// PacketInfo is what the IP layer knows about a received advert.
type PacketInfo struct {
	// Src and Dst are the IP source and destination. For IPv6 the
	// destination comes from IPV6_PKTINFO.
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or the IPv6 hop limit (IPV6_HOPLIMIT).
	TTL uint8
	// PayloadLen is the IP payload length the IP header announces (IPv4
	// total length minus header length, IPv6 payload length). Bytes past it
	// are Ethernet padding and are ignored. Zero means unknown: then any
	// bytes past the VRRP message are taken as padding.
	PayloadLen int
}

// UnicastPeer is a keepalived unicast_peer entry.
type UnicastPeer struct {
	Addr netip.Addr
	// MinTTL and MaxTTL bound the TTL of adverts from this peer when
	// CheckUnicastSrc is set. Zero MaxTTL means 255.
	MinTTL, MaxTTL uint8
}

// Local is what the receiving virtual router is configured with: the
// keepalived vrrp_instance settings that vrrp_check_packet looks at.
type Local struct {
	Version  uint8
	VRID     uint8
	AdverInt time.Duration // VRRPv2 drops adverts with another interval

	AuthType AuthType // VRRPv2 only
	AuthPass [8]byte  // see Password; used when AuthType is AuthPass

	// VIPs are the instance's virtual addresses. An advert must carry as
	// many, and each of them, unless the check is skipped (see below).
	VIPs []netip.Addr
	// SkipCheckAdvAddr is keepalived's skip_check_adv_addr: the VIP checks
	// are skipped for adverts from MasterAddr, the sender of the last advert
	// the backup looked at (Machine.MasterAddr). A master always checks;
	// leave MasterAddr invalid then.
	SkipCheckAdvAddr bool
	MasterAddr       netip.Addr

	// Unicast is set when unicast_peer is configured. Then the TTL is not
	// required to be 255 and adverts must be unicast; otherwise they must be
	// multicast.
	Unicast bool
	// CheckUnicastSrc is keepalived's check_unicast_src: the source must be
	// one of Peers, and the TTL within that peer's range.
	CheckUnicastSrc bool
	Peers           []UnicastPeer

	// V3ChecksumAsV2 is keepalived's v3_checksum_as_v2 (IPv4 only).
	V3ChecksumAsV2 bool
}

// Validate applies the receive checks keepalived's vrrp_check_packet applies
// (RFC 9568 §7.1, RFC 3768 §7.1) to b, the IP payload of an advert, and
// decodes it. b may run on into Ethernet padding (see PacketInfo.PayloadLen).
// Checks, in keepalived's order:
//   - length: exactly the header, the addresses and (v2) the auth data;
//   - TTL/hop limit 255, unless unicast;
//   - version;
//   - v2: auth type and password, then the interval must equal ours
//     (a v3 receiver only adopts the master's interval, in the Machine);
//   - packet type, VRID, address count;
//   - checksum;
//   - multicast versus unicast against the configuration;
//   - every VIP present; unicast source and its TTL range.
func Validate(b []byte, pkt PacketInfo, local Local) (Advertisement, error) {
	adv, err := validate(b, pkt, local)
	if err != nil {
		return Advertisement{}, fmt.Errorf("validate vrrp advert from %s to %s: %w", pkt.Src, pkt.Dst, err)
	}
	return adv, nil
}

func validate(b []byte, pkt PacketInfo, local Local) (Advertisement, error) {
	if !pkt.Src.IsValid() || !pkt.Dst.IsValid() || pkt.Src.Is4() != pkt.Dst.Is4() {
		return Advertisement{}, fmt.Errorf("%w: source %v and destination %v", ErrAddrFamily, pkt.Src, pkt.Dst)
	}
	if pkt.PayloadLen > 0 {
		if len(b) < pkt.PayloadLen {
			return Advertisement{}, fmt.Errorf("%w: truncated, %d of %d bytes", ErrLength, len(b), pkt.PayloadLen)
		}
		b = b[:pkt.PayloadLen]
	}
	if len(b) < headerLen {
		return Advertisement{}, fmt.Errorf("%w: %d bytes, header is %d", ErrLength, len(b), headerLen)
	}

	version := b[0] >> 4
	n := int(b[3])
	alen := 4
	if pkt.Src.Is6() {
		alen = 16
	}
	want := headerLen + alen*n
	if version == Version2 {
		want += authDataLen
	}
	switch {
	case len(b) < want, pkt.PayloadLen > 0 && len(b) != want:
		return Advertisement{}, fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrLength, len(b), n, want)
	case len(b) > want:
		b = b[:want] // padding
	}

	if !local.Unicast && pkt.TTL != TTL {
		return Advertisement{}, fmt.Errorf("%w: got %d, want %d", ErrTTL, pkt.TTL, TTL)
	}
	if version != local.Version {
		return Advertisement{}, fmt.Errorf("%w: got %d, want %d", ErrVersion, version, local.Version)
	}
	var adv Advertisement
	if err := adv.unmarshal(b); err != nil {
		return Advertisement{}, err
	}

	if version == Version2 {
		if adv.AuthType > AuthAH {
			return Advertisement{}, fmt.Errorf("%w: %d", ErrAuthType, adv.AuthType)
		}
		if adv.AuthType != local.AuthType {
			return Advertisement{}, fmt.Errorf("%w: got %v, want %v", ErrAuthType, adv.AuthType, local.AuthType)
		}
		if local.AuthType == AuthPass && subtle.ConstantTimeCompare(adv.AuthData[:], local.AuthPass[:]) != 1 {
			return Advertisement{}, ErrAuthPass
		}
		if adv.Interval() != local.AdverInt {
			// keepalived: "to prevent concurrent VRID running => multiple
			// master in 1 VRID".
			return Advertisement{}, fmt.Errorf("%w: got %v, want %v", ErrAdverInt, adv.Interval(), local.AdverInt)
		}
	}

	if adv.Type != TypeAdvertisement {
		return Advertisement{}, fmt.Errorf("%w: got %d, want %d", ErrType, adv.Type, TypeAdvertisement)
	}
	if adv.VRID != local.VRID {
		return Advertisement{}, fmt.Errorf("%w: got %d, want %d", ErrVRID, adv.VRID, local.VRID)
	}
	checkAddrs := !local.SkipCheckAdvAddr || pkt.Src != local.MasterAddr
	if checkAddrs && n != len(local.VIPs) {
		return Advertisement{}, fmt.Errorf("%w: got %d, want %d", ErrAddrCount, n, len(local.VIPs))
	}

	if err := VerifyChecksum(b, pkt.Src, pkt.Dst, local.V3ChecksumAsV2); err != nil {
		return Advertisement{}, err
	}

	if pkt.Dst.IsMulticast() == local.Unicast {
		if local.Unicast {
			return Advertisement{}, fmt.Errorf("%w: unicast instance got multicast to %s", ErrMulticast, pkt.Dst)
		}
		return Advertisement{}, fmt.Errorf("%w: multicast instance got unicast to %s", ErrMulticast, pkt.Dst)
	}

	if !checkAddrs {
		return adv, nil
	}
	for _, vip := range local.VIPs {
		if !slices.Contains(adv.Addresses, vip) {
			return Advertisement{}, fmt.Errorf("%w: %s", ErrAddrList, vip)
		}
	}
	// keepalived checks the source within the address checks: an advert
	// from the master skip_check_adv_addr trusts skips both.
	if local.Unicast && local.CheckUnicastSrc {
		i := slices.IndexFunc(local.Peers, func(p UnicastPeer) bool { return p.Addr == pkt.Src })
		if i < 0 {
			return Advertisement{}, fmt.Errorf("%w: %s", ErrUnicastSrc, pkt.Src)
		}
		lo, hi := local.Peers[i].MinTTL, local.Peers[i].MaxTTL
		if hi == 0 {
			hi = 255
		}
		if pkt.TTL < lo || pkt.TTL > hi {
			return Advertisement{}, fmt.Errorf("%w: got %d, want %d..%d", ErrTTL, pkt.TTL, lo, hi)
		}
	}
	return adv, nil
}
