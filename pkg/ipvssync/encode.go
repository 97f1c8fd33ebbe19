package ipvssync

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Wire layout, from ip_vs_sync.c.
const (
	headerLenV1 = 8  // struct ip_vs_sync_mesg
	headerLenV0 = 4  // struct ip_vs_sync_mesg_v0
	recordLen4  = 36 // struct ip_vs_sync_v4
	recordLen6  = 72 // struct ip_vs_sync_v6
	recordLenV0 = 24 // struct ip_vs_sync_conn_v0
	seqDataLen  = 24 // struct ip_vs_sync_conn_options: two struct ip_vs_seq

	typeInet6 = 1 << 0 // STYPE_F_INET6 in a record's type byte

	sverShift = 12     // a record's ver_size: version in the top 4 bits,
	sverMask  = 0x0fff // length (options included, padding not) below

	optSeqData = 1    // IPVS_OPT_SEQ_DATA
	optPEData  = 2    // IPVS_OPT_PE_DATA
	optPEName  = 3    // IPVS_OPT_PE_NAME
	optFParam  = 0x40 // IPVS_OPT_F_PARAM: a receiver may ignore the option

	// optLocal is xlb's own option: a FULLNAT connection's local address
	// and port (Conn.Local), sent with optFParam so that a kernel backup
	// (ip_vs_proc_sync_conn: an unknown type with the bit is skipped)
	// installs the rest of the record. 0x18 is none of the kernel's
	// types (1-3; IPVS_OPT_PARAM 7 marks their end); with the bit the
	// type byte reads 'X'.
	optLocal   = 0x18
	localLenV4 = 2 + 4  // port, IPv4 address
	localLenV6 = 2 + 16 // port, IPv6 address

	// maxRecordLen is the longest record the option limits allow: IPv6,
	// seq data, 255 bytes of PE data and a 16-byte name. It is well within
	// the 12 bits of ver_size, so no valid Conn can overflow them.
	maxRecordLen = recordLen6 + 2 + seqDataLen + 2 + MaxPEDataLen + 2 + MaxPENameLen + 2 + localLenV6

	maxMessageLen = math.MaxUint16 // the header's size field
)

// MarshalBinary encodes m in m.Version, as the kernel's master would send
// it: version 1 as ip_vs_sync_conn fills a sync buffer (each record after the
// first padded with zeros to a 4-byte boundary, no padding after the last,
// options in the order seq data, PE data, PE name), version 0 as
// ip_vs_sync_conn_v0 does (sequence options little-endian). It refuses
// what the kernel could not send or a kernel backup would not accept, naming
// the conn and field.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.Len()))
}

// AppendBinary appends the encoding of m to b.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, fmt.Errorf("marshal ipvs sync message syncid %d: %w", m.SyncID, err)
	}
	start := len(b)
	if m.Version == Version0 {
		b = append(b, uint8(len(m.Conns)), m.SyncID, 0, 0)
		for i := range m.Conns {
			b = m.Conns[i].appendV0(b)
		}
	} else {
		// reserved is zero so that a version 0 receiver reads nr_conns 0
		// and ignores the message.
		b = append(b, 0, m.SyncID, 0, 0, uint8(len(m.Conns)), Version1, 0, 0)
		for i := range m.Conns {
			for (len(b)-start)%4 != 0 {
				b = append(b, 0)
			}
			b = m.Conns[i].appendV1(b)
		}
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

// Len is the encoded length of m, the header's size field. It assumes m
// encodes.
func (m *Message) Len() int {
	if m.Version == Version0 {
		n := headerLenV0
		for i := range m.Conns {
			n += m.Conns[i].lenV0()
		}
		return n
	}
	n := headerLenV1
	for i := range m.Conns {
		n = align4(n) + m.Conns[i].lenV1()
	}
	return n
}

func align4(n int) int { return (n + 3) &^ 3 }

func (m *Message) check() error {
	if m.Version != Version0 && m.Version != Version1 {
		return fmt.Errorf("%w: %d", ErrVersion, m.Version)
	}
	if len(m.Conns) > MaxConns {
		return fmt.Errorf("%w: %d, nr_conns is one byte", ErrTooMany, len(m.Conns))
	}
	for i := range m.Conns {
		if err := m.Conns[i].check(m.Version); err != nil {
			return fmt.Errorf("conn %d (%s): %w", i, m.Conns[i], err)
		}
	}
	if n := m.Len(); n > maxMessageLen {
		return fmt.Errorf("%w: %d bytes, the size field holds %d", ErrTooLong, n, maxMessageLen)
	}
	return nil
}

// Check says why c cannot go in a version 1 message (Batch refuses a
// slice holding it), or nil.
func (c Conn) Check() error { return c.check(Version1) }

// check refuses a Conn the kernel could not send in this version, or that a
// kernel backup would skip or stop at.
func (c Conn) check(version int) error {
	is6, err := c.family()
	if err != nil {
		return err
	}
	if err := checkState(c.Protocol, c.Flags, c.State); err != nil {
		return err // a backup would skip the record
	}
	if (c.Flags&SeqMask != 0) != (c.Seq != nil) {
		if c.Seq == nil {
			return fmt.Errorf("%w: flags 0x%04x have InSeq/OutSeq but Seq is nil", ErrSeq, c.Flags)
		}
		return fmt.Errorf("%w: Seq is set but flags 0x%04x have neither InSeq nor OutSeq", ErrSeq, c.Flags)
	}
	if c.Timeout < 0 || c.Timeout/time.Second > math.MaxUint32 {
		return fmt.Errorf("%w: %v, the wire holds 0..%d s", ErrTimeout, c.Timeout, uint32(math.MaxUint32))
	}

	if version == Version0 {
		// ip_vs_sync_conn_v0 returns early for IPv6 and copies neither
		// timeout nor fwmark nor PE data: refuse rather than lose them.
		switch {
		case is6:
			return fmt.Errorf("%w: version 0 carries IPv4 only", ErrAddr)
		case c.Timeout != 0:
			return fmt.Errorf("%w: version 0 carries no timeout (have %v)", ErrVersion, c.Timeout)
		case c.FWMark != 0:
			return fmt.Errorf("%w: version 0 carries no fwmark (have %d)", ErrVersion, c.FWMark)
		case c.PEName != "" || len(c.PEData) != 0:
			return fmt.Errorf("%w: version 0 carries no persistence engine data", ErrVersion)
		case c.Flags > math.MaxUint16:
			return fmt.Errorf("%w: flags 0x%x do not fit version 0's 16 bits", ErrVersion, c.Flags)
		case c.Local.IsValid():
			return fmt.Errorf("%w: version 0 carries no options, so no FULLNAT local address", ErrVersion)
		}
		return nil
	}

	// An empty PEData or PEName simply means no option, so a zero-length
	// option (which would make the receiver drop the rest of the message)
	// cannot be encoded; what is left is to keep the two together.
	switch {
	case len(c.PEData) > MaxPEDataLen:
		return fmt.Errorf("%w: pe data is %d bytes, at most %d", ErrPE, len(c.PEData), MaxPEDataLen)
	case len(c.PEName) > MaxPENameLen:
		return fmt.Errorf("%w: pe name %q is %d bytes, at most %d (IP_VS_PENAME_MAXLEN)", ErrPE, c.PEName, len(c.PEName), MaxPENameLen)
	case len(c.PEData) != 0 && c.PEName == "":
		return fmt.Errorf("%w: pe data without pe name, which the receiver skips", ErrPE)
	case len(c.PEData) == 0 && c.PEName != "":
		return fmt.Errorf("%w: pe name %q without pe data: the kernel sends the name only with data", ErrPE, c.PEName)
	case c.Local.IsValid() && (c.Local.Addr().Zone() != "" || c.Local.Addr().Is4In6()):
		return fmt.Errorf("%w: local address %s: the option carries a plain IPv4 or IPv6 address", ErrAddr, c.Local.Addr())
	case c.Local.IsValid() && c.IsTemplate():
		return fmt.Errorf("%w: a template has no local address", ErrAddr)
	}
	return nil
}

// family checks that the three addresses are set and of one family and
// reports whether that is IPv6.
func (c Conn) family() (is6 bool, err error) {
	for _, a := range []struct {
		name string
		ap   netip.AddrPort
	}{{"client", c.Client}, {"virtual", c.Virtual}, {"dest", c.Dest}} {
		switch {
		case !a.ap.Addr().IsValid():
			return false, fmt.Errorf("%w: %s address not set", ErrAddr, a.name)
		case a.ap.Addr().Zone() != "":
			return false, fmt.Errorf("%w: %s address %s has a zone, which the wire cannot carry", ErrAddr, a.name, a.ap.Addr())
		}
	}
	is6 = c.Client.Addr().Is6()
	if c.Virtual.Addr().Is6() != is6 || c.Dest.Addr().Is6() != is6 {
		return false, fmt.Errorf("%w: mixed families: client %s, virtual %s, dest %s", ErrAddr, c.Client, c.Virtual, c.Dest)
	}
	return is6, nil
}

// lenV1 is the length of c's version 1 record, which ver_size carries:
// options included, padding not.
func (c Conn) lenV1() int {
	n := recordLen4
	if c.Is6() {
		n = recordLen6
	}
	if c.Seq != nil {
		n += 2 + seqDataLen
	}
	if len(c.PEData) != 0 {
		n += 2 + len(c.PEData) + 2 + len(c.PEName)
	}
	if c.Local.IsValid() {
		n += 2 + localLen(c.Local.Addr())
	}
	return n
}

func (c Conn) lenV0() int {
	if c.Seq != nil {
		return recordLenV0 + seqDataLen
	}
	return recordLenV0
}

// appendV1 appends struct ip_vs_sync_v4/_v6 and its options.
func (c Conn) appendV1(b []byte) []byte {
	typ := uint8(0)
	if c.Is6() {
		typ = typeInet6
	}
	b = append(b, typ, c.Protocol)
	b = binary.BigEndian.AppendUint16(b, uint16(c.lenV1())) // version 0 in the top bits
	b = binary.BigEndian.AppendUint32(b, c.Flags)
	b = binary.BigEndian.AppendUint16(b, c.State)
	b = binary.BigEndian.AppendUint16(b, c.Client.Port())
	b = binary.BigEndian.AppendUint16(b, c.Virtual.Port())
	b = binary.BigEndian.AppendUint16(b, c.Dest.Port())
	b = binary.BigEndian.AppendUint32(b, c.FWMark)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Timeout/time.Second))
	for _, ap := range [3]netip.AddrPort{c.Client, c.Virtual, c.Dest} {
		b = appendAddr(b, ap.Addr())
	}
	if c.Seq != nil {
		b = append(b, optSeqData, seqDataLen)
		b = c.Seq.appendTo(b, binary.BigEndian)
	}
	if len(c.PEData) != 0 {
		b = append(b, optPEData, uint8(len(c.PEData)))
		b = append(b, c.PEData...)
		b = append(b, optPEName, uint8(len(c.PEName)))
		b = append(b, c.PEName...)
	}
	if c.Local.IsValid() {
		b = append(b, optLocal|optFParam, uint8(localLen(c.Local.Addr())))
		b = binary.BigEndian.AppendUint16(b, c.Local.Port())
		b = append(b, c.Local.Addr().AsSlice()...)
	}
	return b
}

// localLen is the length of the local address option's data.
func localLen(a netip.Addr) int {
	if a.Is4() {
		return localLenV4
	}
	return localLenV6
}

// appendV0 appends struct ip_vs_sync_conn_v0 and, with InSeq or OutSeq, the
// sequence options as the kernel memcpys them from the connection: in host
// byte order, taken here to be little-endian.
func (c Conn) appendV0(b []byte) []byte {
	b = append(b, 0, c.Protocol)
	b = binary.BigEndian.AppendUint16(b, c.Client.Port())
	b = binary.BigEndian.AppendUint16(b, c.Virtual.Port())
	b = binary.BigEndian.AppendUint16(b, c.Dest.Port())
	for _, ap := range [3]netip.AddrPort{c.Client, c.Virtual, c.Dest} {
		b = appendAddr(b, ap.Addr())
	}
	b = binary.BigEndian.AppendUint16(b, uint16(c.Flags))
	b = binary.BigEndian.AppendUint16(b, c.State)
	if c.Seq != nil {
		b = c.Seq.appendTo(b, binary.LittleEndian)
	}
	return b
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		a4 := a.As4()
		return append(b, a4[:]...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

func (s *SeqOptions) appendTo(b []byte, order binary.AppendByteOrder) []byte {
	for _, q := range [2]Seq{s.In, s.Out} {
		b = order.AppendUint32(b, q.InitSeq)
		b = order.AppendUint32(b, q.Delta)
		b = order.AppendUint32(b, q.PreviousDelta)
	}
	return b
}

// Batch packs conns, in order, into version 1 messages the way the kernel's
// master fills its sync buffers (ip_vs_sync_conn) with sync_maxlen maxlen
// (DefaultMaxLen unless configured): a record goes into the current message
// if the message's size, plus the padding that would precede the record,
// plus the record's length is at most maxlen; otherwise the message is
// closed and the record starts a new one. The padding counts: a record that
// would fit unpadded may still start a new message. No padding follows the
// last record. Like the kernel, a record too long for maxlen on its own gets a
// message of its own, longer than maxlen (the kernel allocates such a buffer
// at the record's size); every other message is at most maxlen long.
//
// Unlike the kernel, Batch also closes a message at MaxConns records: the
// kernel's nr_conns would wrap past 255, which a sync_maxlen above 9188
// bytes allows with IPv4 records, and its backup would then read only
// nr_conns mod 256 of them.
//
// Every message Batch returns marshals; a conn that would not is an error
// naming its index in conns. The messages share the conns' PEData.
func Batch(syncID uint8, conns []Conn, maxlen int) ([]*Message, error) {
	if maxlen < 1 || maxlen > maxMessageLen {
		return nil, fmt.Errorf("batch ipvs sync conns: %w: %d, want 1..%d", ErrMaxLen, maxlen, maxMessageLen)
	}
	var (
		msgs  []*Message
		cur   *Message
		size  int // cur's size field so far
		limit int // the end of cur's buffer: max(first record + header, maxlen)
	)
	for i := range conns {
		c := &conns[i]
		if err := c.check(Version1); err != nil {
			return nil, fmt.Errorf("batch ipvs sync conns: conn %d (%s): %w", i, c, err)
		}
		n := c.lenV1()
		if cur != nil && len(cur.Conns) < MaxConns && align4(size)+n <= limit {
			cur.Conns = append(cur.Conns, *c)
			size = align4(size) + n
			continue
		}
		cur = &Message{SyncID: syncID, Version: Version1, Conns: []Conn{*c}}
		msgs = append(msgs, cur)
		size = headerLenV1 + n
		limit = max(size, maxlen)
	}
	return msgs, nil
}
