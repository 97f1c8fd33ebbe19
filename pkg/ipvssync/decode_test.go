package ipvssync

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pkt5Records returns copies of the three 36-byte records of golden packet
// 5 (ESTABLISHED, CLOSE_WAIT, TIME_WAIT of one connection), the raw
// material of the acceptance tests.
func pkt5Records(t *testing.T) [3][]byte {
	t.Helper()
	p := readGolden(t)["pkt5"].payload
	require.Len(t, p, 116)
	var r [3][]byte
	for i := range r {
		r[i] = bytes.Clone(p[8+36*i : 8+36*(i+1)])
	}
	return r
}

// msgV1 builds a version 1 message of syncid 1 announcing nrConns records,
// with recs laid out as the kernel lays them out (each padded to 4 bytes
// before the next); the header size is the real length.
func msgV1(nrConns int, recs ...[]byte) []byte {
	b := []byte{0, 1, 0, 0, byte(nrConns), 1, 0, 0}
	for i, r := range recs {
		for i > 0 && len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = append(b, r...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// withOpts appends raw option bytes to a record and sets its length.
func withOpts(rec []byte, opts ...[]byte) []byte {
	r := bytes.Clone(rec)
	for _, o := range opts {
		r = append(r, o...)
	}
	setRecLen(r, len(r))
	return r
}

func setRecLen(r []byte, n int) {
	vs := binary.BigEndian.Uint16(r[2:])
	binary.BigEndian.PutUint16(r[2:], vs&^sverMask|uint16(n))
}

// opt is a well-formed TLV.
func opt(typ byte, data []byte) []byte {
	return append([]byte{typ, byte(len(data))}, data...)
}

func seqBytes() []byte {
	b := make([]byte, seqDataLen)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func seqFromBytes() *SeqOptions {
	return &SeqOptions{
		In:  Seq{0x01020304, 0x05060708, 0x090a0b0c},
		Out: Seq{0x0d0e0f10, 0x11121314, 0x15161718},
	}
}

// wantDrop is a Drop without its message.
type wantDrop struct {
	index, count int
	kind         DropKind
	err          error
}

func checkDrops(t *testing.T, want []wantDrop, got []Drop) {
	t.Helper()
	require.Len(t, got, len(want), "dropped: %v", got)
	for i, w := range want {
		assert.Equal(t, w.index, got[i].Index, "drop %d index", i)
		assert.Equal(t, w.count, got[i].Count, "drop %d count", i)
		assert.Equal(t, w.kind, got[i].Kind, "drop %d kind", i)
		assert.ErrorIs(t, got[i].Err, w.err, "drop %d", i)
	}
}

// TestDecodeV1Rules: each acceptance rule of ip_vs_process_message and
// ip_vs_proc_sync_conn, on records of golden packet 5; for each, what the
// kernel's backup installs (Conns) and what it loses (Dropped).
func TestDecodeV1Rules(t *testing.T) {
	r := pkt5Records(t)
	g := goldenConns["pkt5"]
	with := func(c Conn, f func(*Conn)) Conn { f(&c); return c }
	mod := func(rec []byte, f func([]byte)) []byte { rec = bytes.Clone(rec); f(rec); return rec }

	pe := func(name, data string) []byte {
		return append(opt(optPEData, []byte(data)), opt(optPEName, []byte(name))...)
	}
	withPE := func(c Conn, name, data string) Conn {
		return with(c, func(c *Conn) { c.PEName, c.PEData = name, []byte(data) })
	}

	for _, tc := range []struct {
		name  string
		msg   []byte
		conns []Conn
		drops []wantDrop
	}{
		{"as captured", msgV1(3, r[0], r[1], r[2]), g, nil},
		{"no records", msgV1(0), nil, nil},
		{"fewer announced than present: the rest is ignored", msgV1(2, r[0], r[1], r[2]), g[:2], nil},
		{"more announced than present", msgV1(4, r[0], r[1], r[2]), g,
			[]wantDrop{{3, 1, DropRest, ErrTruncated}}},
		{"less than 36 bytes left", msgV1(3, r[0], r[1], r[2][:35]), g[:2],
			[]wantDrop{{2, 1, DropRest, ErrTruncated}}},

		// Record header.
		{"record version 1 drops the rest, not the records before", msgV1(3, r[0], mod(r[1], func(b []byte) { b[2] |= 0x10 }), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrRecordVersion}}},
		{"record version 15", msgV1(3, mod(r[0], func(b []byte) { b[2] |= 0xf0 }), r[1], r[2]),
			nil, []wantDrop{{0, 3, DropRest, ErrRecordVersion}}},
		{"type 2", msgV1(3, r[0], mod(r[1], func(b []byte) { b[0] = 2 }), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrRecordType}}},
		{"type 0x80", msgV1(3, r[0], r[1], mod(r[2], func(b []byte) { b[0] = 0x80 })),
			g[:2], []wantDrop{{2, 1, DropRest, ErrRecordType}}},
		{"odd type is IPv6, here cut short by its 36-byte length", msgV1(3, r[0], mod(r[1], func(b []byte) { b[0] = 3 }), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrTruncated}}},
		{"length shorter than the fixed part", msgV1(3, r[0], mod(r[1], func(b []byte) { setRecLen(b, 20) }), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrTruncated}}},
		{"length past the end", msgV1(3, r[0], r[1], mod(r[2], func(b []byte) { setRecLen(b, 40) })),
			g[:2], []wantDrop{{2, 1, DropRest, ErrTruncated}}},

		// Options: malformed ones drop the rest of the message.
		{"zero-length option, even an optional one", msgV1(3, r[0], withOpts(r[1], []byte{0x49, 0}), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"option past the record's end", msgV1(3, r[0], withOpts(r[1], []byte{optSeqData, 24, 1, 2, 3}), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"option header cut", msgV1(3, r[0], withOpts(r[1], []byte{0x49}), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"seq data of 23 bytes", msgV1(3, r[0], withOpts(r[1], opt(optSeqData, seqBytes()[:23])), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"seq data twice", msgV1(3, r[0], withOpts(r[1], opt(optSeqData, seqBytes()), opt(optSeqData, seqBytes())), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"pe data twice", msgV1(3, r[0], withOpts(r[1], opt(optPEData, []byte("a")), pe("sip", "b")), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"pe name twice", msgV1(3, r[0], withOpts(r[1], pe("sip", "a"), opt(optPEName, []byte("sip"))), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"pe name of 17 bytes", msgV1(3, r[0], withOpts(r[1], pe("sip-and-then-some", "a")), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},

		// Options: unknown mandatory ones skip the record only.
		{"unknown mandatory option", msgV1(3, r[0], withOpts(r[1], opt(9, []byte{1, 2, 3})), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrMandatoryOption}}},
		{"option type 0 is mandatory", msgV1(3, r[0], withOpts(r[1], opt(0, []byte{1})), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrMandatoryOption}}},
		{"0x80|seq is not seq", msgV1(3, r[0], withOpts(r[1], opt(0x81, seqBytes())), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrMandatoryOption}}},
		{"unknown mandatory option stops reading before a malformed one", msgV1(3, r[0], withOpts(r[1], opt(9, []byte{1}), []byte{1, 0}), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrMandatoryOption}}},
		{"a malformed option before an unknown mandatory one drops the rest", msgV1(3, r[0], withOpts(r[1], []byte{1, 0}, opt(9, []byte{1})), r[2]),
			g[:1], []wantDrop{{1, 2, DropRest, ErrOption}}},
		{"unknown optional options are ignored", msgV1(3, r[0], withOpts(r[1], opt(0x49, []byte{1, 2, 3}), opt(0x40, []byte{4})), r[2]),
			g, nil},

		// Options that the backup takes.
		{"seq data with the optional bit is seq data", msgV1(3, r[0], withOpts(r[1], opt(optSeqData|optFParam, seqBytes())), r[2]),
			[]Conn{g[0], with(g[1], func(c *Conn) { c.Seq = seqFromBytes() }), g[2]}, nil},
		{"pe name and data, name first", msgV1(3, r[0], withOpts(r[1], opt(optPEName, []byte("sip")), opt(optPEData, []byte("call-id"))), r[2]),
			[]Conn{g[0], withPE(g[1], "sip", "call-id"), g[2]}, nil},
		{"pe name of 16 bytes", msgV1(3, r[0], withOpts(r[1], pe("sixteen-bytes-pe", "x")), r[2]),
			[]Conn{g[0], withPE(g[1], "sixteen-bytes-pe", "x"), g[2]}, nil},
		{"pe name without data is ignored", msgV1(3, r[0], withOpts(r[1], opt(optPEName, []byte("sip"))), r[2]),
			g, nil},

		// xlb's FULLNAT local address: optional, as a kernel takes it.
		{"local address", msgV1(3, r[0], withOpts(r[1], opt(0x58, []byte{0x04, 0x01, 10, 0, 9, 7})), r[2]),
			[]Conn{g[0], with(g[1], func(c *Conn) { c.Local = netip.MustParseAddrPort("10.0.9.7:1025") }), g[2]}, nil},
		{"IPv6 local address", msgV1(3, r[0], withOpts(r[1], opt(0x58, append([]byte{0x80, 0}, netip.MustParseAddr("2001:db8:9::7").AsSlice()...))), r[2]),
			[]Conn{g[0], with(g[1], func(c *Conn) { c.Local = netip.MustParseAddrPort("[2001:db8:9::7]:32768") }), g[2]}, nil},
		{"a local address of another length is ignored", msgV1(3, r[0], withOpts(r[1], opt(0x58, []byte{4, 1, 10, 0, 9})), r[2]),
			g, nil},
		{"a second local address is ignored", msgV1(3, r[0], withOpts(r[1], opt(0x58, []byte{4, 1, 10, 0, 9, 7}), opt(0x58, []byte{4, 2, 10, 0, 9, 8})), r[2]),
			[]Conn{g[0], with(g[1], func(c *Conn) { c.Local = netip.MustParseAddrPort("10.0.9.7:1025") }), g[2]}, nil},
		{"the local address without the optional bit is an unknown mandatory option", msgV1(3, r[0], withOpts(r[1], opt(0x18, []byte{4, 1, 10, 0, 9, 7})), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrMandatoryOption}}},
		{"pe data without name skips the record", msgV1(3, r[0], withOpts(r[1], opt(optPEData, []byte("call-id"))), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrPE}}},

		// Protocol and state.
		{"unknown protocol", msgV1(3, r[0], mod(r[1], func(b []byte) { b[1] = 1 }), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrProtocol}}},
		{"TCP state 11", msgV1(3, r[0], mod(r[1], func(b []byte) { b[9] = 11 }), r[2]),
			[]Conn{g[0], g[2]}, []wantDrop{{1, 1, SkipRecord, ErrState}}},
		{"TCP state 10 (SYNACK)", msgV1(1, mod(r[0], func(b []byte) { b[9] = 10 })),
			[]Conn{with(g[0], func(c *Conn) { c.State = TCPSynAck })}, nil},
		{"UDP state 1", msgV1(1, mod(r[0], func(b []byte) { b[1] = ProtocolUDP; b[9] = 1 })),
			nil, []wantDrop{{0, 1, SkipRecord, ErrState}}},
		{"SCTP state 13", msgV1(1, mod(r[0], func(b []byte) { b[1] = ProtocolSCTP; b[9] = 13 })),
			[]Conn{with(g[0], func(c *Conn) { c.Protocol, c.State = ProtocolSCTP, 13 })}, nil},
		{"a template's protocol and state are not checked", msgV1(1, mod(r[0], func(b []byte) { b[1] = 1; b[6] = 0x10; b[9] = 7 })),
			[]Conn{with(g[0], func(c *Conn) { c.Protocol, c.Flags, c.State = 1, Template, 7 })}, nil},

		// Several at once, in wire order.
		{"skip then drop the rest", msgV1(3, withOpts(r[0], opt(9, []byte{1})), mod(r[1], func(b []byte) { b[2] |= 0x10 }), r[2]),
			nil, []wantDrop{{0, 1, SkipRecord, ErrMandatoryOption}, {1, 2, DropRest, ErrRecordVersion}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			require.NoError(t, m.UnmarshalBinary(tc.msg))
			assert.Equal(t, Version1, m.Version)
			assert.Equal(t, uint8(1), m.SyncID)
			assert.Equal(t, tc.conns, m.Conns)
			checkDrops(t, tc.drops, m.Dropped)

			// Every announced record is either kept or accounted for.
			n := len(m.Conns)
			for _, d := range m.Dropped {
				n += d.Count
			}
			assert.Equal(t, int(tc.msg[4]), n)
		})
	}
}

func TestDecodePaddingIsNotChecked(t *testing.T) {
	r := pkt5Records(t)
	odd := withOpts(r[0], opt(0x49, []byte{1, 2, 3})) // 41 bytes
	msg := msgV1(2, odd, r[1])
	require.Equal(t, make([]byte, 3), msg[8+41:8+44], "the builder pads with zeros")
	copy(msg[8+41:], []byte{0xff, 0xff, 0xff})

	var m Message
	require.NoError(t, m.UnmarshalBinary(msg))
	assert.Equal(t, goldenConns["pkt5"][:2], m.Conns)
	assert.Empty(t, m.Dropped)
}

// TestDecodeDropErrorNamesTheRecord: a Drop says which record, where and
// why, for the log line a receiver writes.
func TestDecodeDropErrorNamesTheRecord(t *testing.T) {
	r := pkt5Records(t)
	var m Message
	require.NoError(t, m.UnmarshalBinary(msgV1(3, r[0], mod1(r[1], 2, 0x10), r[2])))
	require.Len(t, m.Dropped, 1)
	assert.EqualError(t, m.Dropped[0].Err, "record 1 at offset 44 (drop rest): unknown record version: 1")
}

func mod1(b []byte, i int, orBits byte) []byte {
	b = bytes.Clone(b)
	b[i] |= orBits
	return b
}

// TestDecodeHeader: what drops the whole datagram, and how the kernel tells
// the versions apart.
func TestDecodeHeader(t *testing.T) {
	pkt5 := readGolden(t)["pkt5"].payload
	mutate := func(f func([]byte) []byte) []byte { return f(bytes.Clone(pkt5)) }

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			msg  []byte
			want error
		}{
			{"empty", nil, ErrShort},
			{"3 bytes", []byte{0, 1, 0}, ErrShort},
			{"size one more than the datagram", mutate(func(b []byte) []byte { b[3]++; return b }), ErrSize},
			{"size one less", mutate(func(b []byte) []byte { b[3]--; return b }), ErrSize},
			{"one byte appended", mutate(func(b []byte) []byte { return append(b, 0) }), ErrSize},
			{"cut short by a small receive buffer", pkt5[:100], ErrSize},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := Message{SyncID: 9, Conns: []Conn{{}}}
				err := m.UnmarshalBinary(tc.msg)
				require.ErrorIs(t, err, tc.want)
				assert.Contains(t, err.Error(), "unmarshal ipvs sync message")
				assert.Equal(t, Message{}, m, "m is reset")
			})
		}
	})

	// A header that is not exactly version 1 goes to the version 0 parser,
	// which reads these bytes as 24-byte records of protocols IPVS does not
	// know (1, 0 and 7 here): the kernel installs nothing.
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"reserved not 0", mutate(func(b []byte) []byte { b[0] = 3; return b })},
		{"spare not 0", mutate(func(b []byte) []byte { b[7] = 1; return b })},
		{"version 2", mutate(func(b []byte) []byte { b[5] = 2; return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			require.NoError(t, m.UnmarshalBinary(tc.msg))
			assert.Equal(t, Version0, m.Version)
			assert.Empty(t, m.Conns)
		})
	}
	t.Run("reserved 3 read as version 0 records", func(t *testing.T) {
		var m Message
		require.NoError(t, m.UnmarshalBinary(mutate(func(b []byte) []byte { b[0] = 3; return b })))
		checkDrops(t, []wantDrop{
			{0, 1, SkipRecord, ErrProtocol},
			{1, 1, SkipRecord, ErrProtocol},
			{2, 1, SkipRecord, ErrProtocol},
		}, m.Dropped)
	})

	t.Run("4 to 7 bytes are version 0", func(t *testing.T) {
		for _, tc := range []struct {
			msg   []byte
			drops []wantDrop
		}{
			{[]byte{0, 1, 0, 4}, nil},
			{[]byte{1, 1, 0, 4}, []wantDrop{{0, 1, DropRest, ErrTruncated}}},
			{[]byte{0, 1, 0, 7, 1, 1, 0}, nil}, // would be a version 1 header if it were longer
		} {
			var m Message
			require.NoError(t, m.UnmarshalBinary(tc.msg))
			assert.Equal(t, Version0, m.Version)
			assert.Equal(t, uint8(1), m.SyncID)
			assert.Empty(t, m.Conns)
			checkDrops(t, tc.drops, m.Dropped)
		}
	})
}

// msgV0 builds a version 0 message of syncid 1.
func msgV0(nrConns int, recs ...[]byte) []byte {
	b := []byte{byte(nrConns), 1, 0, 0}
	for _, r := range recs {
		b = append(b, r...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func TestDecodeV0Rules(t *testing.T) {
	pkt4 := readGolden(t)["pkt4"].payload
	r0, r1 := bytes.Clone(pkt4[4:28]), bytes.Clone(pkt4[28:52])
	g := goldenConns["pkt4"]
	with := func(c Conn, f func(*Conn)) Conn { f(&c); return c }
	mod := func(rec []byte, f func([]byte)) []byte { rec = bytes.Clone(rec); f(rec); return rec }
	inSeq := func(b []byte) { b[20] |= byte(InSeq >> 8) }

	// Sequence options as an x86 kernel memcpys them: little-endian.
	seqLE := []byte{
		4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9,
		16, 15, 14, 13, 20, 19, 18, 17, 24, 23, 22, 21,
	}

	for _, tc := range []struct {
		name  string
		msg   []byte
		conns []Conn
		drops []wantDrop
	}{
		{"as captured", msgV0(2, r0, r1), g, nil},
		{"last record cut", msgV0(2, r0, r1[:23]), g[:1], []wantDrop{{1, 1, DropRest, ErrTruncated}}},
		{"more announced than present", msgV0(3, r0, r1), g, []wantDrop{{2, 1, DropRest, ErrTruncated}}},
		{"seq options, little-endian", msgV0(2, mod(r0, inSeq), seqLE, r1),
			[]Conn{with(g[0], func(c *Conn) { c.Flags |= InSeq; c.Seq = seqFromBytes() }), g[1]}, nil},
		{"seq flags without the options", msgV0(2, r0, mod(r1, inSeq)), g[:1], []wantDrop{{1, 1, DropRest, ErrTruncated}}},
		{"unknown protocol", msgV0(2, mod(r0, func(b []byte) { b[1] = 1 }), r1), g[1:], []wantDrop{{0, 1, SkipRecord, ErrProtocol}}},
		{"TCP state 11", msgV0(2, r0, mod(r1, func(b []byte) { b[23] = 11 })), g[:1], []wantDrop{{1, 1, SkipRecord, ErrState}}},
		{"the reserved byte is ignored", msgV0(2, mod(r0, func(b []byte) { b[0] = 0xff }), r1), g, nil},
		{"a template's state is not checked", msgV0(1, mod(r0, func(b []byte) { b[20] = 0x10; b[23] = 9 })),
			[]Conn{with(g[0], func(c *Conn) { c.Flags, c.State = Template, 9 })}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			require.NoError(t, m.UnmarshalBinary(tc.msg))
			assert.Equal(t, Version0, m.Version)
			assert.Equal(t, tc.conns, m.Conns)
			checkDrops(t, tc.drops, m.Dropped)
		})
	}
}
