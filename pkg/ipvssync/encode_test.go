package ipvssync

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conn4 is an active NAT TCP connection over IPv4, 36 bytes on the wire.
func conn4(cport uint16) Conn {
	return tcp(cport, 80, Masq, TCPEstablished, 900*time.Second)
}

// conn6 is an IPv6 direct-routing connection with every option: 72 + 26 +
// 2+7 + 2+3 = 112 bytes.
func conn6() Conn {
	return Conn{
		Protocol: ProtocolUDP, Flags: DRoute | InSeq | OutSeq, State: UDPNormal,
		Client:  netip.MustParseAddrPort("[2001:db8::2]:5060"),
		Virtual: netip.MustParseAddrPort("[2001:db8::1]:5060"),
		Dest:    netip.MustParseAddrPort("[2001:db8:1::2]:5060"),
		FWMark:  0xdeadbeef,
		Timeout: 300 * time.Second,
		Seq:     seqFromBytes(),
		PEName:  "sip",
		PEData:  []byte("call-id"),
	}
}

func TestMarshalRejects(t *testing.T) {
	many := make([]Conn, MaxConns+1)
	for i := range many {
		many[i] = conn4(uint16(i))
	}
	// 255 IPv6 records of 348 bytes do not fit the 16-bit size.
	big := make([]Conn, MaxConns)
	for i := range big {
		big[i] = conn6()
		big[i].PEData = bytes.Repeat([]byte{'x'}, MaxPEDataLen)
		big[i].PEName = strings.Repeat("n", MaxPENameLen)
	}
	// with returns a good conn, then one changed by f.
	with := func(f func(*Conn)) []Conn {
		c0, c := conn4(1), conn4(2)
		f(&c)
		return []Conn{c0, c}
	}
	// with0 does the same for version 0, which has no timeout.
	with0 := func(f func(*Conn)) []Conn {
		c0, c := conn4(1), conn4(2)
		c0.Timeout, c.Timeout = 0, 0
		f(&c)
		return []Conn{c0, c}
	}

	for _, tc := range []struct {
		name    string
		version int
		conns   []Conn
		want    error
		field   string // in the error, after "conn 1"
	}{
		{"version 2", 2, nil, ErrVersion, ""},
		{"version -1", -1, nil, ErrVersion, ""},
		{"256 conns", Version1, many, ErrTooMany, ""},
		{"longer than 65535 bytes", Version1, big, ErrTooLong, ""},

		{"client not set", Version1, with(func(c *Conn) { c.Client = netip.AddrPort{} }), ErrAddr, "client"},
		{"dest not set", Version1, with(func(c *Conn) { c.Dest = netip.AddrPort{} }), ErrAddr, "dest"},
		{"zone", Version1, with(func(c *Conn) { c.Client = netip.MustParseAddrPort("[fe80::1%eth0]:1") }), ErrAddr, "zone"},
		{"IPv6 dest of an IPv4 conn", Version1, with(func(c *Conn) { c.Dest = netip.MustParseAddrPort("[2001:db8::1]:80") }), ErrAddr, "mixed"},
		{"IPv4-mapped virtual of an IPv4 conn", Version1, with(func(c *Conn) { c.Virtual = netip.MustParseAddrPort("[::ffff:192.168.1.1]:80") }), ErrAddr, "mixed"},

		{"unknown protocol", Version1, with(func(c *Conn) { c.Protocol = 1 }), ErrProtocol, "protocol 1"},
		{"TCP state 11", Version1, with(func(c *Conn) { c.State = TCPSynAck + 1 }), ErrState, "TCP state 11"},
		{"UDP state 1", Version1, with(func(c *Conn) { c.Protocol = ProtocolUDP; c.State = 1 }), ErrState, "UDP state 1"},
		{"InSeq without Seq", Version1, with(func(c *Conn) { c.Flags |= InSeq }), ErrSeq, "Seq is nil"},
		{"Seq without InSeq or OutSeq", Version1, with(func(c *Conn) { c.Seq = &SeqOptions{} }), ErrSeq, "neither"},
		{"negative timeout", Version1, with(func(c *Conn) { c.Timeout = -time.Second }), ErrTimeout, "-1s"},
		{"timeout over 32 bits of seconds", Version1, with(func(c *Conn) { c.Timeout = (math.MaxUint32 + 1) * time.Second }), ErrTimeout, ""},

		{"pe data of 256 bytes", Version1, with(func(c *Conn) { c.PEName, c.PEData = "sip", make([]byte, 256) }), ErrPE, "256 bytes"},
		{"pe name of 17 bytes", Version1, with(func(c *Conn) { c.PEName, c.PEData = "sip-and-then-some", []byte("x") }), ErrPE, "IP_VS_PENAME_MAXLEN"},
		{"pe data without name", Version1, with(func(c *Conn) { c.PEData = []byte("x") }), ErrPE, "without pe name"},
		{"pe name without data", Version1, with(func(c *Conn) { c.PEName = "sip" }), ErrPE, "without pe data"},
		{"pe name with zero-length data", Version1, with(func(c *Conn) { c.PEName, c.PEData = "sip", []byte{} }), ErrPE, "without pe data"},

		{"version 0 IPv6", Version0, with0(func(c *Conn) { c.Client, c.Virtual, c.Dest = conn6().Client, conn6().Virtual, conn6().Dest }), ErrAddr, "IPv4 only"},
		{"version 0 timeout", Version0, with0(func(c *Conn) { c.Timeout = time.Second }), ErrVersion, "no timeout"},
		{"version 0 fwmark", Version0, with0(func(c *Conn) { c.FWMark = 1 }), ErrVersion, "no fwmark"},
		{"version 0 pe", Version0, with0(func(c *Conn) { c.PEName, c.PEData = "sip", []byte("x") }), ErrVersion, "persistence"},
		{"version 0 flags over 16 bits", Version0, with0(func(c *Conn) { c.Flags = NFCT }), ErrVersion, "16 bits"},
		{"version 0 local address", Version0, with0(func(c *Conn) { c.Local = netip.MustParseAddrPort("10.0.9.7:1025") }), ErrVersion, "local address"},
		{"IPv4-mapped local address", Version1, with(func(c *Conn) { c.Local = netip.MustParseAddrPort("[::ffff:10.0.9.7]:1025") }), ErrAddr, "plain"},
		{"local address with a zone", Version1, with(func(c *Conn) { c.Local = netip.MustParseAddrPort("[fe80::1%eth0]:1025") }), ErrAddr, "plain"},
		{"template with a local address", Version1, with(func(c *Conn) {
			c.Flags, c.State, c.Local = Template|Inactive, TemplateNone, netip.MustParseAddrPort("10.0.9.7:1025")
		}), ErrAddr, "template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Message{SyncID: 7, Version: tc.version, Conns: tc.conns}
			_, err := m.MarshalBinary()
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), "marshal ipvs sync message syncid 7: ")
			if tc.field != "" {
				assert.Contains(t, err.Error(), "conn 1 (")
				assert.Contains(t, err.Error(), tc.field)
			}
		})
	}
}

func TestMarshalTimeoutTruncatesToSeconds(t *testing.T) {
	c := conn4(1)
	c.Timeout = 1999 * time.Millisecond // cp->timeout/HZ truncates too
	m := Message{Version: Version1, Conns: []Conn{c}}
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, uint32(1), binary.BigEndian.Uint32(b[8+20:]))
}

// TestMarshalLayout: a record with options of odd length is followed by
// zero padding to the next 4-byte boundary, which the header size counts;
// the last record is never padded, so the size need not be a multiple of 4.
func TestMarshalLayout(t *testing.T) {
	odd := conn4(1)
	odd.PEName, odd.PEData = "sip", []byte("abc") // 36 + 2+3 + 2+3 = 46 bytes
	plain := conn4(2)

	t.Run("padding before the next record", func(t *testing.T) {
		m := Message{SyncID: 1, Version: Version1, Conns: []Conn{odd, plain}}
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		require.Len(t, b, 8+46+2+36)
		assert.Equal(t, m.Len(), len(b))
		assert.Equal(t, uint16(len(b)), binary.BigEndian.Uint16(b[2:]))
		assert.Equal(t, uint16(46), binary.BigEndian.Uint16(b[8+2:]), "ver_size excludes the padding")
		assert.Equal(t, "02036162630303736970", hex.EncodeToString(b[8+36:8+46]), "PE data, then PE name")
		assert.Equal(t, []byte{0, 0}, b[8+46:8+48], "padding")
		assert.Equal(t, uint16(36), binary.BigEndian.Uint16(b[56+2:]), "second record at offset 56")
	})
	t.Run("no padding after the last record", func(t *testing.T) {
		m := Message{SyncID: 1, Version: Version1, Conns: []Conn{plain, odd}}
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		assert.Len(t, b, 8+36+46)
		assert.Equal(t, uint16(90), binary.BigEndian.Uint16(b[2:]), "size 90, not a multiple of 4")
	})
	t.Run("header", func(t *testing.T) {
		m := Message{SyncID: 0xab, Version: Version1, Conns: []Conn{plain, plain, plain}}
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		assert.Equal(t, "00ab007403010000", hex.EncodeToString(b[:8]))
	})
	t.Run("seq data is big-endian in version 1", func(t *testing.T) {
		c := conn4(1)
		c.Flags |= OutSeq
		c.Seq = seqFromBytes()
		m := Message{Version: Version1, Conns: []Conn{c}}
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		assert.Equal(t, append([]byte{optSeqData, seqDataLen}, seqBytes()...), b[8+36:])
	})
	t.Run("seq data is little-endian in version 0", func(t *testing.T) {
		c := conn4(1)
		c.Timeout = 0
		c.Flags |= InSeq
		c.Seq = seqFromBytes()
		m := Message{Version: Version0, Conns: []Conn{c}}
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		require.Len(t, b, 4+24+24)
		assert.Equal(t, []byte{4, 3, 2, 1, 8, 7, 6, 5}, b[28:36])
	})
}

func TestMaxRecordLenFitsTwelveBits(t *testing.T) {
	c := conn6()
	c.PEData = bytes.Repeat([]byte{'x'}, MaxPEDataLen)
	c.PEName = strings.Repeat("n", MaxPENameLen)
	c.Local = netip.MustParseAddrPort("[2001:db8:9::7]:1025")
	assert.Equal(t, maxRecordLen, c.lenV1())
	assert.Less(t, maxRecordLen, 1<<sverShift, "no valid Conn can overflow ver_size")
}

// TestRoundTrip: what the encoder writes decodes to the same Message, with
// nothing dropped, for IPv6 records, every option and both versions.
func TestRoundTrip(t *testing.T) {
	v6 := conn6()
	v6odd := conn6()
	v6odd.PEName, v6odd.PEData = "sixteen-bytes-pe", []byte("a")
	template := Conn{
		Protocol: ProtocolTCP, Flags: Template | Inactive | NoCPort, State: TemplateAssured,
		Client:  netip.MustParseAddrPort("[2001:db8::2]:0"),
		Virtual: netip.MustParseAddrPort("[2001:db8::1]:0"),
		Dest:    netip.MustParseAddrPort("[2001:db8:1::2]:0"),
		FWMark:  7, Timeout: 360 * time.Second,
	}
	mapped := conn4(1)
	for _, a := range []*netip.AddrPort{&mapped.Client, &mapped.Virtual, &mapped.Dest} {
		*a = netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	}
	nat := conn4(2)
	nat.Flags |= InSeq | OutSeq
	nat.Seq = &SeqOptions{In: Seq{1, 0xfffffffe, 0}, Out: Seq{math.MaxUint32, 2, 3}}
	sctp := Conn{
		Protocol: ProtocolSCTP, Flags: Tunnel | OnePacket | NFCT, State: 13,
		Client: ap("10.9.0.1", 1), Virtual: ap("10.9.0.2", 2), Dest: ap("10.9.0.3", 3),
		Timeout: math.MaxUint32 * time.Second,
	}
	fnat := conn4(4)
	fnat.Local = netip.MustParseAddrPort("10.0.9.7:1025")
	fnat6 := conn6()
	fnat6.Local = netip.MustParseAddrPort("[2001:db8:9::7]:65535")
	// NAT64: IPv6 client and VIP, an IPv4 real (IPv4-mapped) and local address.
	nat64 := conn6()
	nat64.Flags, nat64.Seq, nat64.PEName, nat64.PEData = Masq, nil, "", nil
	nat64.Dest = netip.MustParseAddrPort("[::ffff:10.0.0.11]:8080")
	nat64.Local = netip.MustParseAddrPort("10.0.9.7:1024")
	v0 := conn4(3)
	v0.Timeout = 0
	v0nat := nat
	v0nat.Timeout = 0

	for _, tc := range []struct {
		name string
		m    Message
	}{
		{"empty", Message{SyncID: 255, Version: Version1}},
		{"IPv6 with every option", Message{SyncID: 2, Version: Version1, Conns: []Conn{v6}}},
		{"mixed families and odd lengths", Message{SyncID: 3, Version: Version1, Conns: []Conn{v6odd, conn4(1), v6, template, v6odd}}},
		{"IPv4-mapped addresses make an IPv6 record", Message{Version: Version1, Conns: []Conn{mapped}}},
		{"seq data and all 32 flag bits", Message{Version: Version1, Conns: []Conn{nat, sctp}}},
		{"FULLNAT local addresses (IPv4, IPv6 after every option, NAT64)", Message{Version: Version1, Conns: []Conn{fnat, fnat6, nat64, conn4(5)}}},
		{"255 conns", Message{Version: Version1, Conns: func() []Conn {
			cs := make([]Conn, MaxConns)
			for i := range cs {
				cs[i] = conn4(uint16(i))
			}
			return cs
		}()}},
		{"version 0", Message{SyncID: 4, Version: Version0, Conns: []Conn{v0, v0nat, v0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.m.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, tc.m.Len(), len(b))

			var got Message
			require.NoError(t, got.UnmarshalBinary(b))
			assert.Empty(t, got.Dropped)
			assert.Equal(t, tc.m.SyncID, got.SyncID)
			assert.Equal(t, tc.m.Version, got.Version)
			assert.Equal(t, tc.m.Conns, got.Conns)
		})
	}
}

func TestDecodeOddTypeIsIPv6(t *testing.T) {
	m := Message{SyncID: 1, Version: Version1, Conns: []Conn{conn6()}}
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(typeInet6), b[8])
	b[8] = 0xff // the kernel tests STYPE_F_INET6 alone

	var got Message
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Empty(t, got.Dropped)
	assert.Equal(t, m.Conns, got.Conns)
}

func TestAppendBinary(t *testing.T) {
	m := Message{SyncID: 1, Version: Version1, Conns: []Conn{conn4(1), conn6()}}
	want, err := m.MarshalBinary()
	require.NoError(t, err)

	// The padding is relative to the message, not to the buffer.
	b, err := m.AppendBinary([]byte{0xee})
	require.NoError(t, err)
	assert.Equal(t, append([]byte{0xee}, want...), b)

	bad := Message{Version: 3}
	b, err = bad.AppendBinary([]byte{0xee})
	require.ErrorIs(t, err, ErrVersion)
	assert.Equal(t, []byte{0xee}, b)
}

func TestBackupFlags(t *testing.T) {
	wire := DRoute | Hashed | NoOutput | Inactive | InSeq | NoCPort | Template | OnePacket | NFCT
	assert.Equal(t, DRoute|NoOutput|Inactive|InSeq|NoCPort|Template|Sync, BackupFlags(Version1, wire))
	assert.Equal(t, DRoute|NoOutput|Inactive|InSeq|NoCPort|Template|OnePacket|Sync, BackupFlags(Version0, wire&0xffff))
	assert.Equal(t, Sync, BackupFlags(Version1, Masq))
}
