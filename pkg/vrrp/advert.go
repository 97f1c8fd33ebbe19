package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Wire constants common to VRRPv2 (RFC 3768 §5) and VRRPv3 (RFC 9568 §5).
const (
	// IPProtocol is the IPv4 protocol / IPv6 next-header number of VRRP.
	IPProtocol = 112
	// TTL is the IPv4 TTL / IPv6 hop limit of every advert; receivers drop
	// multicast adverts that arrive with any other value.
	TTL = 255

	// Version2 is VRRPv2, RFC 3768 (IPv4 only).
	Version2 uint8 = 2
	// Version3 is VRRPv3, RFC 5798 / RFC 9568 (IPv4 and IPv6).
	Version3 uint8 = 3

	// TypeAdvertisement is the only VRRP packet type.
	TypeAdvertisement uint8 = 1

	// PriorityStop is sent by a master that is leaving (shutdown or fault).
	PriorityStop uint8 = 0
	// PriorityOwner is the priority of the address owner.
	PriorityOwner uint8 = 255

	headerLen   = 8
	authDataLen = 8
	maxV3Int    = 0x0fff // 12-bit Max Adver Int
)

// Multicast groups adverts are sent to unless unicast peers are configured.
var (
	MulticastGroup4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	MulticastGroup6 = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
)

// Errors returned by UnmarshalBinary, MarshalBinary, VerifyChecksum and
// Validate, always wrapped with what was wrong; test with errors.Is.
var (
	ErrVersion    = errors.New("bad vrrp version")
	ErrType       = errors.New("bad vrrp packet type")
	ErrLength     = errors.New("bad vrrp length")
	ErrChecksum   = errors.New("bad vrrp checksum")
	ErrTTL        = errors.New("bad ttl/hop limit")
	ErrAddrCount  = errors.New("bad vrrp address count")
	ErrAddrFamily = errors.New("bad address family")
	ErrAddrList   = errors.New("virtual address missing from advert")
	ErrVRID       = errors.New("vrid mismatch")
	ErrAuthType   = errors.New("bad authentication type")
	ErrAuthPass   = errors.New("bad authentication password")
	ErrAdverInt   = errors.New("bad advertisement interval")
	ErrMulticast  = errors.New("multicast/unicast mismatch")
	ErrUnicastSrc = errors.New("source is not a unicast peer")
)

// AuthType is the VRRPv2 Auth Type field. RFC 3768 removed authentication;
// the values come from RFC 2338 and keepalived still sends them.
type AuthType uint8

const (
	AuthNone AuthType = 0 // no authentication
	AuthPass AuthType = 1 // simple text password, zero padded to 8 bytes
	AuthAH   AuthType = 2 // IPsec AH; the advert then rides in AH, not protocol 112
)

func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return fmt.Sprintf("AuthType(%d)", uint8(t))
}

// Password turns a keepalived auth_pass into the 8 bytes of Auth Data:
// keepalived keeps the first 8 characters and zero-pads shorter ones.
func Password(s string) [8]byte {
	var b [8]byte
	copy(b[:], s)
	return b
}

// Advertisement is a VRRP ADVERTISEMENT packet: RFC 3768 §5.1 for version 2,
// RFC 9568 §5.1 for version 3. It is the VRRP header and payload only; the
// IP header belongs to the socket layer.
//
// Count IPvX Addr is not a field: it is len(Addresses). All addresses are of
// one family; VRRPv2 carries IPv4 only. The 4 reserved bits in front of the v3
// Max Adver Int are zero on encoding and ignored on decoding (RFC 9568 §5.2.5).
type Advertisement struct {
	Version  uint8
	Type     uint8
	VRID     uint8
	Priority uint8

	// AuthType and AuthData exist in VRRPv2 only and must be zero for v3.
	AuthType AuthType

	// AdverInt is the raw interval field: whole seconds (8 bits) for v2,
	// centiseconds (12 bits) for v3. Interval converts it.
	AdverInt uint16

	// Checksum is carried as is by MarshalBinary; SetChecksum computes it.
	Checksum uint16

	Addresses []netip.Addr
	AuthData  [8]byte
}

// Interval returns AdverInt as a duration.
func (a Advertisement) Interval() time.Duration {
	if a.Version == Version3 {
		return time.Duration(a.AdverInt) * 10 * time.Millisecond
	}
	return time.Duration(a.AdverInt) * time.Second
}

// AdverIntField converts an advertisement interval into the raw AdverInt
// field of the given version: v2 takes whole seconds 1..255, v3 multiples of
// 10 ms from 10 ms to 40.95 s.
func AdverIntField(version uint8, d time.Duration) (uint16, error) {
	switch version {
	case Version2:
		if d%time.Second != 0 || d < time.Second || d > 255*time.Second {
			return 0, fmt.Errorf("%w: vrrpv2 needs whole seconds 1..255, got %v", ErrAdverInt, d)
		}
		return uint16(d / time.Second), nil
	case Version3:
		const cs = 10 * time.Millisecond
		if d%cs != 0 || d < cs || d > maxV3Int*cs {
			return 0, fmt.Errorf("%w: vrrpv3 needs a multiple of 10ms in 10ms..40.95s, got %v", ErrAdverInt, d)
		}
		return uint16(d / cs), nil
	}
	return 0, fmt.Errorf("%w: %d", ErrVersion, version)
}

// Len is the encoded length of a.
func (a Advertisement) Len() int {
	n := headerLen
	for _, ip := range a.Addresses {
		if ip.Is4() {
			n += 4
		} else {
			n += 16
		}
	}
	if a.Version == Version2 {
		n += authDataLen
	}
	return n
}

// addrFamily reports whether addrs are IPv6, checking they share one family.
func addrFamily(addrs []netip.Addr) (is6 bool, err error) {
	for i, ip := range addrs {
		if !ip.IsValid() {
			return false, fmt.Errorf("%w: address %d is invalid", ErrAddrFamily, i)
		}
		if ip.Zone() != "" {
			return false, fmt.Errorf("%w: address %s has a zone, which the wire cannot carry", ErrAddrFamily, ip)
		}
		if i == 0 {
			is6 = !ip.Is4()
		} else if is6 == ip.Is4() {
			return false, fmt.Errorf("%w: mixed IPv4 and IPv6 addresses (%s, %s)", ErrAddrFamily, addrs[0], ip)
		}
	}
	return is6, nil
}

// MarshalBinary encodes a. It carries a.Checksum unchanged; use SetChecksum
// first to fill it in.
func (a Advertisement) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(make([]byte, 0, a.Len()))
}

// AppendBinary appends the encoding of a to b.
func (a Advertisement) AppendBinary(b []byte) ([]byte, error) {
	if err := a.check(); err != nil {
		return b, fmt.Errorf("marshal vrrp advert vrid %d: %w", a.VRID, err)
	}
	b = append(b, a.Version<<4|a.Type, a.VRID, a.Priority, uint8(len(a.Addresses)))
	if a.Version == Version2 {
		b = append(b, uint8(a.AuthType), uint8(a.AdverInt))
	} else {
		b = binary.BigEndian.AppendUint16(b, a.AdverInt)
	}
	b = binary.BigEndian.AppendUint16(b, a.Checksum)
	for _, ip := range a.Addresses {
		b = append(b, ip.AsSlice()...)
	}
	if a.Version == Version2 {
		b = append(b, a.AuthData[:]...)
	}
	return b, nil
}

func (a *Advertisement) check() error {
	if a.Version != Version2 && a.Version != Version3 {
		return fmt.Errorf("%w: %d", ErrVersion, a.Version)
	}
	if a.Type > 0x0f {
		return fmt.Errorf("%w: %d does not fit 4 bits", ErrType, a.Type)
	}
	if len(a.Addresses) > 255 {
		return fmt.Errorf("%w: %d addresses, at most 255", ErrAddrCount, len(a.Addresses))
	}
	is6, err := addrFamily(a.Addresses)
	if err != nil {
		return err
	}
	if a.Version == Version2 {
		if is6 {
			return fmt.Errorf("%w: vrrpv2 carries IPv4 addresses only", ErrAddrFamily)
		}
		if a.AdverInt > 0xff {
			return fmt.Errorf("%w: %d s does not fit 8 bits", ErrAdverInt, a.AdverInt)
		}
		return nil
	}
	if a.AdverInt > maxV3Int {
		return fmt.Errorf("%w: %d cs does not fit 12 bits", ErrAdverInt, a.AdverInt)
	}
	if a.AuthType != AuthNone || a.AuthData != [8]byte{} {
		return fmt.Errorf("%w: vrrpv3 has no authentication", ErrAuthType)
	}
	return nil
}

// UnmarshalBinary decodes one VRRP message, which must be exactly the IP
// payload (no Ethernet padding: Validate strips that). VRRPv3 does not say
// which address family it carries, so the family comes from the length:
// 8+4n bytes is IPv4, 8+16n is IPv6.
func (a *Advertisement) UnmarshalBinary(b []byte) error {
	if err := a.unmarshal(b); err != nil {
		return fmt.Errorf("unmarshal vrrp advert (%d bytes): %w", len(b), err)
	}
	return nil
}

func (a *Advertisement) unmarshal(b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d bytes, header is %d", ErrLength, len(b), headerLen)
	}
	version := b[0] >> 4
	n := int(b[3])
	var alen int
	switch version {
	case Version2:
		alen = 4
		if want := headerLen + 4*n + authDataLen; len(b) != want {
			return fmt.Errorf("%w: vrrpv2 with %d addresses is %d bytes", ErrLength, n, want)
		}
	case Version3:
		switch len(b) {
		case headerLen + 4*n:
			alen = 4
		case headerLen + 16*n:
			alen = 16
		default:
			return fmt.Errorf("%w: vrrpv3 with %d addresses is %d (IPv4) or %d (IPv6) bytes",
				ErrLength, n, headerLen+4*n, headerLen+16*n)
		}
	default:
		return fmt.Errorf("%w: %d", ErrVersion, version)
	}

	*a = Advertisement{
		Version:  version,
		Type:     b[0] & 0x0f,
		VRID:     b[1],
		Priority: b[2],
		Checksum: binary.BigEndian.Uint16(b[6:8]),
	}
	if version == Version2 {
		a.AuthType = AuthType(b[4])
		a.AdverInt = uint16(b[5])
		copy(a.AuthData[:], b[headerLen+4*n:])
	} else {
		a.AdverInt = binary.BigEndian.Uint16(b[4:6]) & maxV3Int
	}
	if n > 0 {
		a.Addresses = make([]netip.Addr, n)
		for i := range a.Addresses {
			off := headerLen + i*alen
			if alen == 4 {
				a.Addresses[i] = netip.AddrFrom4([4]byte(b[off : off+4]))
			} else {
				a.Addresses[i] = netip.AddrFrom16([16]byte(b[off : off+16]))
			}
		}
	}
	return nil
}

// usesPseudoHeader says whether the checksum of a message of this version
// sent to dst covers the IP pseudo-header: never for v2; always for v3 over
// IPv6; for v3 over IPv4 unless keepalived's v3_checksum_as_v2 is set.
// keepalived's default (pseudo-header for IPv4 too) is what its peers expect,
// whatever RFC 9568 says.
func usesPseudoHeader(version uint8, dst netip.Addr, v3ChecksumAsV2 bool) bool {
	if version != Version3 {
		return false
	}
	return !dst.Is4() || !v3ChecksumAsV2
}

// ComputeChecksum returns the checksum a sender from src to dst puts in a
// (a.Checksum itself is ignored). src and dst matter only when the checksum
// covers the pseudo-header; see SetChecksum.
func (a Advertisement) ComputeChecksum(src, dst netip.Addr, v3ChecksumAsV2 bool) (uint16, error) {
	a.Checksum = 0
	msg, err := a.MarshalBinary()
	if err != nil {
		return 0, err
	}
	sum, err := checksumSum(msg, src, dst, v3ChecksumAsV2)
	if err != nil {
		return 0, fmt.Errorf("checksum vrrp advert vrid %d: %w", a.VRID, err)
	}
	return ^fold(sum), nil
}

// SetChecksum fills in a.Checksum for a packet from src to dst: over the
// message only for v2; over the IPv6 pseudo-header for v3 over IPv6; over the
// IPv4 pseudo-header for v3 over IPv4 unless v3ChecksumAsV2.
func (a *Advertisement) SetChecksum(src, dst netip.Addr, v3ChecksumAsV2 bool) error {
	c, err := a.ComputeChecksum(src, dst, v3ChecksumAsV2)
	if err != nil {
		return err
	}
	a.Checksum = c
	return nil
}

// VerifyChecksum checks the checksum of the encoded message msg received
// from src to dst, with the same rules as SetChecksum.
func VerifyChecksum(msg []byte, src, dst netip.Addr, v3ChecksumAsV2 bool) error {
	if len(msg) < headerLen {
		return fmt.Errorf("verify checksum: %w: %d bytes", ErrLength, len(msg))
	}
	sum, err := checksumSum(msg, src, dst, v3ChecksumAsV2)
	if err != nil {
		return fmt.Errorf("verify checksum: %w", err)
	}
	if fold(sum) != 0xffff {
		got := binary.BigEndian.Uint16(msg[6:8])
		want := ^fold(sum - uint32(got))
		return fmt.Errorf("%w: got 0x%04x, want 0x%04x (src %s, dst %s)", ErrChecksum, got, want, src, dst)
	}
	return nil
}

// checksumSum is the unfolded one's complement sum of msg and, when the
// rules ask for it, the pseudo-header (src, dst, 0, 112, length).
func checksumSum(msg []byte, src, dst netip.Addr, v3ChecksumAsV2 bool) (uint32, error) {
	sum := sum16(0, msg)
	if !usesPseudoHeader(msg[0]>>4, dst, v3ChecksumAsV2) {
		return sum, nil
	}
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return 0, fmt.Errorf("%w: vrrpv3 pseudo-header needs src and dst of one family, got %v and %v",
			ErrAddrFamily, src, dst)
	}
	sum = sum16(sum, src.AsSlice())
	sum = sum16(sum, dst.AsSlice())
	// IPv4 has 16 bits of length and 8 of protocol after a zero byte, IPv6
	// 32 bits of length and the next header after three zero bytes; either
	// way they add up as words to length + protocol.
	return sum + uint32(len(msg))&0xffff + uint32(len(msg))>>16 + IPProtocol, nil
}

// sum16 adds b to sum as big-endian 16-bit words, a trailing odd byte padded
// with zero (RFC 1071).
func sum16(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
